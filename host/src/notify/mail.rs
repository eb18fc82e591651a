//! The notification mail: its text ([`compose`]) and its delivery ([`send`]) through the local
//! `sendmail` binary or an SMTP relay, both by `lettre` (TLS by native-tls, i.e. OpenSSL).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use lettre::message::{Mailbox, SinglePart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Message, SendmailTransport, SmtpTransport, Transport as _};

use super::dedup::{Problem, Standing, replaced};
use super::errors::{NotifyError, chain};
use crate::config::mail::{MailConfig, SmtpConfig, SmtpTls, Transport};
use crate::config::{Config, ServiceConfig, TrustConfig};
use crate::plan::model::{Decision, Level, Notice, Reason};
use crate::report::model::{ActionKind, RunReport, ServiceReport};
use crate::report::text::word;

/// How long one SMTP connection step (connect, each command) may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the `sendmail` binary may take to accept the message.
pub const SENDMAIL_TIMEOUT: Duration = Duration::from_secs(60);

/// The width body text is wrapped at.
const WIDTH: usize = 76;

/// Where `sendmail` is looked for before `PATH`.
const SENDMAIL_PATHS: [&str; 2] = ["/usr/sbin/sendmail", "/usr/lib/sendmail"];

/// The largest SMTP password file read, in bytes.
const MAX_PASSWORD_FILE: u64 = 4096;

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub subject: String,
    pub body: String,
}

/// "1 error", "2 warnings".
fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// "2 errors, 1 warning" (errors first; parts with no problems left out).
pub fn tally(problems: &[Problem]) -> String {
    let errors = problems.iter().filter(|p| p.level == Level::Error).count();
    let warnings = problems.iter().filter(|p| p.level == Level::Warning).count();
    let mut parts = Vec::new();
    if errors > 0 {
        parts.push(count(errors, "error"));
    }
    if warnings > 0 || errors == 0 {
        parts.push(count(warnings, "warning"));
    }
    parts.join(", ")
}

/// Appends `text` wrapped at [`WIDTH`]: the first line after `first`, the others after `rest`.
/// Words longer than a line (paths) stay whole.
fn wrap(out: &mut String, first: &str, rest: &str, text: &str) {
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Info => "info",
        Level::Warning => "WARNING",
        Level::Error => "ERROR",
    }
}

fn standing_word(standing: Standing) -> &'static str {
    match standing {
        Standing::New => "new",
        Standing::Due => "still unresolved",
        Standing::Quiet => "reported earlier",
    }
}

/// The subject and body of the mail about `problems` (with their `standings`).
pub fn compose(
    config: &Config,
    report: &RunReport,
    problems: &[Problem],
    standings: &[Standing],
    management_disabled: bool,
) -> Composed {
    let host = &report.hostname;
    let subject = format!("[checkallsslcerts] {host}: {}", tally(problems));
    let mut body = String::new();
    wrap(
        &mut body,
        "",
        "",
        &format!(
            "checkallsslcerts found {} on {host} in the run of {}.",
            tally(problems).replace(", ", " and "),
            crate::time::utc_minutes(report.started_at)
        ),
    );

    let configured = config.services_by_name();
    let reported: std::collections::HashMap<&str, &ServiceReport> =
        report.services.iter().rev().map(|s| (s.name.as_str(), s)).collect();
    let mut notices_of: std::collections::HashMap<&str, Vec<&Notice>> = std::collections::HashMap::new();
    for notice in &report.notices {
        if let Some(name) = &notice.service {
            notices_of.entry(name.as_str()).or_default().push(notice);
        }
    }
    for (problem, standing) in problems.iter().zip(standings) {
        body.push('\n');
        match &problem.service {
            Some(name) => {
                let _ = writeln!(
                    body,
                    "== Service {name}: {} ({})",
                    level_word(problem.level),
                    standing_word(*standing)
                );
                if let Some(service) = reported.get(name.as_str()) {
                    let files = configured.get(name.as_str()).copied();
                    let notices = notices_of.get(name.as_str()).map_or(&[][..], Vec::as_slice);
                    service_section(&mut body, files, notices, report, service, management_disabled);
                }
            }
            None => {
                let _ = writeln!(
                    body,
                    "== This host: {} ({})",
                    level_word(problem.level),
                    standing_word(*standing)
                );
                wrap(
                    &mut body,
                    "  ",
                    "  ",
                    &crate::text::untrusted(problem.message.as_deref().unwrap_or_default()),
                );
            }
        }
    }

    let fine: Vec<&str> = report
        .services
        .iter()
        .filter(|s| !problems.iter().any(|p| p.service.as_deref() == Some(s.name.as_str())))
        .map(|s| s.name.as_str())
        .collect();
    if !fine.is_empty() {
        body.push('\n');
        wrap(&mut body, "", "  ", &format!("Services without problems: {}.", fine.join(", ")));
    }
    let infos: Vec<_> =
        report.notices.iter().filter(|n| n.level == Level::Info && n.service.is_none()).collect();
    if !infos.is_empty() {
        body.push('\n');
        for notice in infos {
            wrap(&mut body, "Note: ", "  ", &crate::text::untrusted(&notice.message));
        }
    }

    body.push_str("\n-- \n");
    let hours = config.mail.quiet_period.as_secs() / 3600;
    let quiet = if hours == 0 {
        "Every run with problems sends this mail (quiet-period = 0).".to_string()
    } else {
        format!(
            "The same problems are not mailed again for {}; a new or worse problem is mailed at once.",
            count(usize::try_from(hours).unwrap_or(usize::MAX), "hour")
        )
    };
    wrap(&mut body, "", "", &quiet);
    let p = &report.policy;
    wrap(
        &mut body,
        "",
        "",
        &format!(
            "Policy: {} {} (contract {}, sha256 {}) from {}.",
            p.name, p.version, p.contract_version, p.sha256, p.source
        ),
    );
    wrap(
        &mut body,
        "",
        "",
        &format!(
            "checkallsslcerts {}, configuration {}; exit code {}. Mail settings: [mail] in that file.",
            report.tool_version,
            config.path.display(),
            report.exit_code
        ),
    );
    Composed { subject, body }
}

fn service_section(
    out: &mut String,
    files: Option<&ServiceConfig>,
    notices: &[&Notice],
    report: &RunReport,
    service: &ServiceReport,
    management_disabled: bool,
) {
    let c = &service.certificate;
    let certificate = match (&c.problem, c.not_after, c.days_left) {
        (Some(problem), _, _) => format!("{}: {problem}", c.state),
        (None, Some(not_after), Some(days)) => format!(
            "{} from {}, valid until {} ({} left)",
            crate::text::untrusted(c.subject.as_deref().unwrap_or("(no subject)")),
            crate::text::untrusted(c.issuer.as_deref().unwrap_or("(unknown issuer)")),
            crate::time::utc_minutes(not_after),
            if days < 0 { "none".to_string() } else { count(usize::try_from(days).unwrap_or(0), "day") }
        ),
        _ => c.state.to_string(),
    };
    wrap(out, "  Certificate: ", "    ", &certificate);
    let reasons: Vec<String> = service.reasons.iter().map(word).collect();
    wrap(
        out,
        "  Decision:    ",
        "    ",
        &format!(
            "{}{}",
            word(&service.decision),
            if reasons.is_empty() { String::new() } else { format!(" (reasons: {})", reasons.join(", ")) }
        ),
    );
    if !notices.is_empty() {
        out.push_str("  The policy says:\n");
        for n in notices {
            wrap(out, &format!("    - {}: ", word(&n.level)), "      ", &crate::text::untrusted(&n.message));
        }
    }
    out.push_str("  Done in this run:\n");
    if service.actions.is_empty() {
        out.push_str("    - nothing was changed\n");
    }
    for a in &service.actions {
        wrap(
            out,
            &format!("    - {} {}: ", word(&a.kind), a.outcome),
            "      ",
            &crate::text::untrusted(&a.message),
        );
    }
    out.push_str("  What to do:\n");
    for advice in advice(files, report, service, management_disabled) {
        wrap(out, "    - ", "      ", &advice);
    }
}

/// What the administrator should do about a service (configured as `files`), one sentence per
/// step.
pub fn advice(
    files: Option<&ServiceConfig>,
    report: &RunReport,
    service: &ServiceReport,
    management_disabled: bool,
) -> Vec<String> {
    let host = &report.hostname;
    let files = match files {
        Some(s) => match &s.key {
            Some(key) => format!("{} (and its key in {})", s.certificate.display(), key.display()),
            None => format!("{} (leaf, chain and key in one file)", s.certificate.display()),
        },
        None => "the configured files".to_string(),
    };
    let placeholder_done =
        service.actions.iter().any(|a| a.kind == ActionKind::InstallPlaceholder && a.outcome == "done");
    let mut steps: Vec<String> = Vec::new();
    let mut push = |step: String| {
        if !steps.contains(&step) {
            steps.push(step);
        }
    };
    if replaced(service) {
        push("Nothing for the certificate: a new one was installed in this run.".into());
    }
    for reason in &service.reasons {
        if management_disabled && super::dedup::is_about_expiry(reason) || replaced(service) {
            continue;
        }
        let step = match reason {
            Reason::Missing | Reason::Unreadable | Reason::Malformed => {
                format!(
                    "Install a valid certificate for {host} as {files}; the file named above is missing or unusable."
                )
            }
            Reason::KeyMismatch => {
                format!(
                    "Install the private key that belongs to the certificate, or a certificate issued for the key, as {files}."
                )
            }
            Reason::Expired => {
                format!("Install a current certificate for {host} as {files}: the installed one has expired.")
            }
            Reason::ExpiringSoon => match service.decision {
                Decision::Replace | Decision::ReplaceOrPlaceholder => {
                    "A replacement is being ordered; nothing to do unless this mail comes again.".into()
                }
                _ => format!("Renew the certificate before it expires and install it as {files}."),
            },
            Reason::NotYetValid => {
                "Check the system clock (timedatectl), or install a certificate that is valid now.".into()
            }
            Reason::Revoked => {
                format!("Replace the certificate now: its CA has revoked it. Install the new one as {files}.")
            }
            Reason::WeakSignature => "Replace the certificate with one signed with SHA-256 or better.".into(),
            Reason::WeakKey => {
                "Replace the certificate with one for a stronger key (RSA of 2048 bits or more, or EC P-256)."
                    .into()
            }
            Reason::SelfSigned => {
                format!(
                    "Install a certificate from a trusted CA as {files}; clients warn about self-signed certificates."
                )
            }
            Reason::UntrustedChain => {
                "Install the intermediate certificates that lead to a trusted root (the chain), \
                 or add your private CA to extra-roots in [trust]."
                    .into()
            }
            Reason::HostnameMismatch => format!("Install a certificate that covers the hostname {host}."),
            Reason::HostnameNotOnThisServer => format!(
                "Make {host} resolve to this server's main IP address in DNS, so that a free certificate can be ordered."
            ),
            Reason::RenewalWindow => "The CA asks for this certificate to be renewed early; renew it.".into(),
            Reason::StaleEndpoint => {
                "Reload or restart the service so that it serves the installed certificate.".into()
            }
            Reason::Other(what) => format!("See the policy's notice about \"{what}\"."),
        };
        push(step);
    }
    for action in service.actions.iter().filter(|a| a.failed()) {
        push(format!("Fix what made \"{}\" fail (see above); the next run tries again.", word(&action.kind)));
    }
    if placeholder_done {
        push("Until then the service uses a self-signed placeholder, which clients warn about.".into());
    }
    if steps.is_empty() {
        steps.push("Read the policy's notices above.".into());
    }
    steps
}

/// The first `sendmail` found: `/usr/sbin/sendmail`, `/usr/lib/sendmail`, then on `PATH`.
pub fn find_sendmail() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("sendmail")).collect::<Vec<_>>())
        .unwrap_or_default();
    SENDMAIL_PATHS.iter().map(PathBuf::from).chain(on_path).find(|p| p.is_absolute() && executable(p))
}

/// The way the message goes out, chosen from the configuration and what is installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Sendmail(PathBuf),
    Smtp(SmtpConfig),
}

impl Route {
    /// "/usr/sbin/sendmail" or "the SMTP server mx.example.com:587 (starttls)", for messages.
    pub fn describe(&self) -> String {
        match self {
            Route::Sendmail(path) => path.display().to_string(),
            Route::Smtp(smtp) => format!("the SMTP server {} ({})", server(smtp), word_tls(smtp.tls)),
        }
    }
}

fn word_tls(tls: SmtpTls) -> &'static str {
    match tls {
        SmtpTls::Starttls => "STARTTLS",
        SmtpTls::Tls => "implicit TLS",
        SmtpTls::None => "no TLS",
    }
}

/// "host:port", with an IPv6 address in brackets.
fn server(smtp: &SmtpConfig) -> String {
    if smtp.host.contains(':') {
        format!("[{}]:{}", smtp.host, smtp.port)
    } else {
        format!("{}:{}", smtp.host, smtp.port)
    }
}

/// Chooses the route: `sendmail` as configured or found, else the SMTP relay.
pub fn route(mail: &MailConfig) -> Result<Route, NotifyError> {
    match mail.transport {
        Transport::Sendmail => find_sendmail().map(Route::Sendmail).ok_or(NotifyError::NoSendmail),
        Transport::Smtp => mail.smtp.clone().map(Route::Smtp).ok_or(NotifyError::NoTransport),
        Transport::Auto => find_sendmail()
            .map(Route::Sendmail)
            .or_else(|| mail.smtp.clone().map(Route::Smtp))
            .ok_or(NotifyError::NoTransport),
    }
}

/// A message id `<random.time@hostname>`.
fn message_id(hostname: &str, now: i64) -> String {
    let mut random = [0u8; 12];
    // Uniqueness, not secrecy: fall back to the process id if the RNG fails.
    let tag = match openssl::rand::rand_bytes(&mut random) {
        Ok(()) => hex::encode(random),
        Err(_) => format!("p{}", std::process::id()),
    };
    format!("<{tag}.{now}@{hostname}>")
}

/// Builds the message (plain text, UTF-8) from `mail.from` to every `mail.to`.
pub fn build(
    mail: &MailConfig,
    hostname: &str,
    composed: &Composed,
    now: i64,
) -> Result<Message, NotifyError> {
    let parse =
        |a: &str| a.parse::<Mailbox>().map_err(|e| NotifyError::Message(format!("address {a:?}: {e}")));
    let mut builder = Message::builder()
        .from(parse(&mail.from)?)
        .subject(composed.subject.clone())
        .date_now()
        .message_id(Some(message_id(hostname, now)))
        .user_agent(format!("checkallsslcerts {}", env!("CARGO_PKG_VERSION")));
    for to in &mail.to {
        builder = builder.to(parse(to)?);
    }
    let mut message = builder
        .singlepart(SinglePart::plain(composed.body.clone()))
        .map_err(|e| NotifyError::Message(chain(&e)))?;
    // RFC 3834: a machine wrote this, so vacation responders stay quiet.
    message.headers_mut().insert_raw(header::HeaderValue::new(
        header::HeaderName::new_from_ascii_str("Auto-Submitted"),
        "auto-generated".to_string(),
    ));
    Ok(message)
}

/// Sends `message` along `route`. Returns what it went through, for the report.
pub fn send(
    route: &Route,
    trust: &TrustConfig,
    hostname: &str,
    message: &Message,
) -> Result<String, NotifyError> {
    match route {
        Route::Sendmail(command) => send_sendmail(command, message),
        Route::Smtp(smtp) => send_smtp(smtp, trust, hostname, message),
    }
    .map(|()| route.describe())
}

/// lettre's sendmail transport has no timeout: it runs in a thread, and a `sendmail` that
/// hangs is reported (and left to finish on its own) instead of holding the run.
fn send_sendmail(command: &Path, message: &Message) -> Result<(), NotifyError> {
    let (tx, rx) = mpsc::channel();
    let transport = SendmailTransport::new_with_command(command.as_os_str());
    let message = message.clone();
    std::thread::spawn(move || {
        let _ = tx.send(transport.send(&message).map_err(|e| chain(&e)));
    });
    match rx.recv_timeout(SENDMAIL_TIMEOUT) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => {
            Err(NotifyError::Sendmail { command: command.to_owned(), reason: reason.trim().to_string() })
        }
        Err(_) => Err(NotifyError::SendmailTimeout {
            command: command.to_owned(),
            seconds: SENDMAIL_TIMEOUT.as_secs(),
        }),
    }
}

/// The SMTP password: the first line of the file, without its line end.
pub fn read_password(path: &Path) -> Result<zeroize::Zeroizing<String>, NotifyError> {
    use crate::facts::read::ReadError;
    let err = |reason: String| NotifyError::PasswordFile { path: path.to_owned(), reason };
    let bytes = crate::facts::read_bounded(path, MAX_PASSWORD_FILE).map_err(|e| match e {
        ReadError::Missing(_) => err("it does not exist".into()),
        ReadError::Unreadable(why) => err(why),
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| err("it is not UTF-8 text".into()))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(err("its first line is empty".into()));
    }
    Ok(zeroize::Zeroizing::new(password.to_string()))
}

/// TLS for the relay: the system's roots (unless `system-roots = false`) plus `[trust]
/// extra-roots`, so a relay with a certificate from a private CA can be verified.
fn tls_parameters(smtp: &SmtpConfig, trust: &TrustConfig) -> Result<TlsParameters, NotifyError> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if !trust.system_roots {
        builder = builder.certificate_store(CertificateStore::None);
    }
    for file in &trust.extra_roots {
        // A file that cannot be read (or is larger than a PEM file may be) is reported by the
        // facts step already.
        let Ok(pem) = crate::fs::read_bounded(file, crate::fs::limits::KEY_FILE) else { continue };
        for cert in openssl::x509::X509::stack_from_pem(&pem).unwrap_or_default() {
            if let Ok(root) = cert
                .to_der()
                .map_err(|e| e.to_string())
                .and_then(|der| Certificate::from_der(der).map_err(|e| e.to_string()))
            {
                builder = builder.add_root_certificate(root);
            }
        }
    }
    builder.build_native().map_err(|e| NotifyError::Tls { server: server(smtp), reason: chain(&e) })
}

fn send_smtp(
    smtp: &SmtpConfig,
    trust: &TrustConfig,
    hostname: &str,
    message: &Message,
) -> Result<(), NotifyError> {
    let tls = match smtp.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(tls_parameters(smtp, trust)?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters(smtp, trust)?),
    };
    let mut builder = SmtpTransport::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT))
        .hello_name(ClientId::Domain(hostname.to_string()));
    if let Some(auth) = &smtp.auth {
        let password = read_password(&auth.password_file)?;
        builder = builder.credentials(Credentials::new(auth.user.clone(), password.to_string()));
    }
    builder.build().send(message).map(|_| ()).map_err(|e| NotifyError::Smtp {
        server: format!("{} ({})", server(smtp), word_tls(smtp.tls)),
        reason: chain(&e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_and_tally() {
        assert_eq!(crate::time::utc_minutes(1_750_000_000), "2025-06-15 15:06 UTC");
        assert_eq!(crate::time::utc_minutes(0), "1970-01-01 00:00 UTC");
        let p = |level| Problem { service: None, level, message: None, fingerprint: String::new() };
        assert_eq!(tally(&[p(Level::Error), p(Level::Warning), p(Level::Error)]), "2 errors, 1 warning");
        assert_eq!(tally(&[p(Level::Warning)]), "1 warning");
        assert_eq!(tally(&[p(Level::Error)]), "1 error");
    }

    #[test]
    fn wrap_keeps_long_words_whole_and_indents() {
        let mut out = String::new();
        let long = "x".repeat(90);
        wrap(&mut out, "  - ", "    ", &format!("a b {long} c"));
        assert_eq!(out, format!("  - a b\n    {long}\n    c\n"));
        assert!(out.lines().all(|l| l.len() <= WIDTH || l.trim() == long));
    }

    #[test]
    fn sendmail_route_and_missing_transport() {
        let mut mail = MailConfig::defaults("h.example.com");
        mail.transport = Transport::Smtp;
        assert!(matches!(route(&mail), Err(NotifyError::NoTransport)));
        mail.smtp = Some(SmtpConfig { host: "::1".into(), port: 25, tls: SmtpTls::None, auth: None });
        let r = route(&mail).expect("smtp route");
        assert_eq!(r.describe(), "the SMTP server [::1]:25 (no TLS)");
    }

    #[test]
    fn password_is_the_first_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\nignored\n").expect("write");
        assert_eq!(read_password(&file).expect("read").as_str(), "s3cret");
        std::fs::write(&file, "\n").expect("write");
        assert!(read_password(&file).expect_err("empty").to_string().contains("first line is empty"));
        let missing = dir.path().join("none");
        let e = read_password(&missing).expect_err("missing").to_string();
        assert!(e.contains("none") && e.contains("does not exist"), "{e}");
    }

    #[test]
    fn message_has_the_headers_an_admin_and_a_mail_server_expect() {
        let mut mail = MailConfig::defaults("h.example.com");
        mail.to.push("ops@example.org".into());
        let composed =
            Composed { subject: "[checkallsslcerts] h.example.com: 1 error".into(), body: "body\n".into() };
        let message = build(&mail, "h.example.com", &composed, 7).expect("built");
        let text = String::from_utf8(message.formatted()).expect("utf8");
        for needle in [
            "From: checkallsslcerts@h.example.com",
            "To: root@h.example.com, ops@example.org",
            "Subject: [checkallsslcerts] h.example.com: 1 error",
            "Auto-Submitted: auto-generated",
            "Content-Type: text/plain; charset=utf-8",
            ".7@h.example.com>",
        ] {
            assert!(text.contains(needle), "{needle:?} not in\n{text}");
        }
        let envelope = message.envelope();
        assert_eq!(envelope.to().len(), 2);
    }
}
