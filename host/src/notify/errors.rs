//! What can go wrong telling the administrator. None of it fails the run: each becomes a
//! warning in the run's report.

use std::path::PathBuf;

/// The notification mail could not be sent, or its state not kept.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `transport = "auto"` found no `sendmail` binary and no `smtp-host` is configured.
    #[error(
        "no sendmail binary was found (looked for /usr/sbin/sendmail, /usr/lib/sendmail and on PATH) \
         and no SMTP relay is configured; set smtp-host in [mail], or enabled = false to send no mail"
    )]
    NoTransport,
    /// `transport = "sendmail"`, but there is no `sendmail` binary.
    #[error(
        "transport = \"sendmail\", but no sendmail binary was found (looked for /usr/sbin/sendmail, \
         /usr/lib/sendmail and on PATH); install a mail transfer agent or use transport = \"smtp\""
    )]
    NoSendmail,
    /// An address or the message itself was refused by the mail library.
    #[error("cannot build the message: {0}")]
    Message(String),
    /// The SMTP password file could not be read.
    #[error("cannot read the SMTP password file {}: {reason}", .path.display())]
    PasswordFile { path: PathBuf, reason: String },
    /// The TLS settings for the relay could not be set up.
    #[error("cannot set up TLS for the SMTP server {server}: {reason}")]
    Tls { server: String, reason: String },
    /// The SMTP server could not be reached, or refused the message.
    #[error("the SMTP server {server} did not take the message: {reason}")]
    Smtp { server: String, reason: String },
    /// The sendmail binary failed.
    #[error("{} did not take the message: {reason}", .command.display())]
    Sendmail { command: PathBuf, reason: String },
    /// The sendmail binary did not finish in time.
    #[error("{} did not finish within {seconds} seconds", .command.display())]
    SendmailTimeout { command: PathBuf, seconds: u64 },
}

/// An error with its chain of sources, "outer: inner: innermost" (lettre's errors keep the
/// useful part, such as "Connection refused", in their sources).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}
