//! `[mail]`: the notification mail sent to the administrator when a run finds problems.
//!
//! The raw section ([`RawMail`]) is one field of the raw file; [`resolve`] checks it and fills in
//! the defaults. Problems are reported like every other configuration problem, with the file,
//! line:column and key (`mail.smtp-port`, ...).

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::errors::{Problem, line_col};
use super::names::is_dns_name;
use super::resolve::check_absolute;

/// The default recipient: the local administrator.
pub const DEFAULT_RECIPIENT: &str = "root";

/// The default `quiet-period`, in hours.
pub const DEFAULT_QUIET_PERIOD_HOURS: u32 = 24;

/// The longest `quiet-period`: a year, in hours.
pub const MAX_QUIET_PERIOD_HOURS: i64 = 24 * 366;

/// The most recipients one message goes to.
const MAX_RECIPIENTS: usize = 50;

/// How the mail leaves the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    /// The local `sendmail` binary if there is one, else SMTP to `smtp-host`.
    #[default]
    Auto,
    /// The local `sendmail` binary (`/usr/sbin/sendmail`, `/usr/lib/sendmail` or on `PATH`).
    Sendmail,
    /// SMTP to `smtp-host`.
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which the server must offer (default port 587).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (default port 465).
    Tls,
    /// No encryption at all (default port 25): only for a relay on the same machine or network.
    None,
}

impl SmtpTls {
    /// The port used when `smtp-port` is not set.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        }
    }
}

/// `[mail]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMail {
    pub enabled: Option<bool>,
    pub to: Option<Vec<Spanned<String>>>,
    pub from: Option<Spanned<String>>,
    pub transport: Option<Transport>,
    pub smtp_host: Option<Spanned<String>>,
    pub smtp_port: Option<Spanned<i64>>,
    pub smtp_tls: Option<SmtpTls>,
    pub smtp_user: Option<Spanned<String>>,
    pub smtp_password_file: Option<Spanned<String>>,
    pub quiet_period: Option<Spanned<i64>>,
}

/// The SMTP relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// `smtp-host`: a host name or an IP address.
    pub host: String,
    /// `smtp-port`, or the default of `tls`.
    pub port: u16,
    /// `smtp-tls`.
    pub tls: SmtpTls,
    /// `smtp-user` and `smtp-password-file`, both or neither.
    pub auth: Option<SmtpAuth>,
}

/// SMTP authentication: the password stays in its file until a message is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpAuth {
    /// `smtp-user`.
    pub user: String,
    /// `smtp-password-file` (absolute): the password is its first line.
    pub password_file: PathBuf,
}

/// `[mail]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailConfig {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `to`: addresses; a bare local part such as `root` has `@<hostname>` appended.
    pub to: Vec<String>,
    /// `from`, default `checkallsslcerts@<hostname>`.
    pub from: String,
    /// `transport`.
    pub transport: Transport,
    /// The SMTP relay, when `smtp-host` is set.
    pub smtp: Option<SmtpConfig>,
    /// `quiet-period`: the same problems are not mailed again within this time.
    pub quiet_period: Duration,
}

impl MailConfig {
    /// The defaults for a host called `hostname`.
    pub fn defaults(hostname: &str) -> MailConfig {
        MailConfig {
            enabled: true,
            to: vec![qualify(DEFAULT_RECIPIENT, hostname)],
            from: format!("checkallsslcerts@{hostname}"),
            transport: Transport::Auto,
            smtp: None,
            quiet_period: Duration::from_secs(u64::from(DEFAULT_QUIET_PERIOD_HOURS) * 3600),
        }
    }
}

/// `user` → `user@hostname`; an address with a domain stays as it is.
fn qualify(address: &str, hostname: &str) -> String {
    if address.contains('@') { address.to_owned() } else { format!("{address}@{hostname}") }
}

/// Whether `local` is a dot-atom local part (RFC 5322 `atext` with single dots between atoms).
fn is_local_part(local: &str) -> bool {
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| !atom.is_empty() && atom.bytes().all(atext))
}

/// Whether `address` is `local@domain` (a dot-atom local part, a DNS domain) or a bare local
/// part. Quoted local parts and address literals are not accepted: an administrator's address
/// never needs them.
fn is_address(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => is_local_part(local) && is_dns_name(domain),
        None => is_local_part(address),
    }
}

/// What [`resolve`] reports into: the file's text and path (for line:column), and the lists
/// of errors and warnings of the whole configuration.
pub(super) struct Sink<'a> {
    pub text: &'a str,
    pub path: &'a Path,
    pub errors: &'a mut Vec<Problem>,
    pub warnings: &'a mut Vec<Problem>,
}

impl Sink<'_> {
    fn problem(&self, span: Option<Range<usize>>, key: &str, message: String) -> Problem {
        Problem {
            path: self.path.to_owned(),
            location: span.map(|s| line_col(self.text, s.start)),
            service: None,
            key: key.to_owned(),
            message,
        }
    }

    pub(super) fn error(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        let p = self.problem(span, key, message);
        self.errors.push(p);
    }

    pub(super) fn warn(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        let p = self.problem(span, key, message);
        self.warnings.push(p);
    }

    /// An absolute path, or an error naming `key`.
    pub(super) fn absolute_path(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let message = match check_absolute(value.get_ref()) {
            Ok(path) => return Some(path),
            Err(message) => message,
        };
        self.error(Some(value.span()), key, message);
        None
    }
}

/// Checks `[mail]` and fills in the defaults for a host called `hostname`.
pub(super) fn resolve(
    raw: &RawMail,
    hostname: &str,
    text: &str,
    path: &Path,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> MailConfig {
    let mut sink = Sink { text, path, errors, warnings };
    let mut mail = MailConfig::defaults(hostname);
    if let Some(enabled) = raw.enabled {
        mail.enabled = enabled;
    }

    if let Some(to) = &raw.to {
        if to.is_empty() {
            sink.error(
                None,
                "mail.to",
                "must name at least one recipient; set enabled = false to send no mail".into(),
            );
        } else if to.len() > MAX_RECIPIENTS {
            sink.error(
                Some(to[MAX_RECIPIENTS].span()),
                "mail.to",
                format!("{} recipients; at most {MAX_RECIPIENTS} are allowed", to.len()),
            );
        }
        let mut recipients = Vec::new();
        for address in to {
            let a = address.get_ref().trim();
            if is_address(a) {
                recipients.push(qualify(a, hostname));
            } else {
                sink.error(
                    Some(address.span()),
                    "mail.to",
                    format!("{:?} is not a mail address such as \"admin@example.com\" or \"root\"", a),
                );
            }
        }
        mail.to = recipients;
    }

    if let Some(from) = &raw.from {
        let a = from.get_ref().trim();
        if is_address(a) && a.contains('@') {
            mail.from = a.to_owned();
        } else {
            sink.error(
                Some(from.span()),
                "mail.from",
                format!("{a:?} is not a mail address such as \"checkallsslcerts@example.com\""),
            );
        }
    }

    mail.transport = raw.transport.unwrap_or_default();
    let tls = raw.smtp_tls.unwrap_or_default();
    let host = match &raw.smtp_host {
        Some(h) => {
            let name = h.get_ref().trim();
            let ip = name.trim_start_matches('[').trim_end_matches(']');
            if is_dns_name(name) || ip.parse::<std::net::IpAddr>().is_ok() {
                Some(ip.to_owned())
            } else {
                sink.error(
                    Some(h.span()),
                    "mail.smtp-host",
                    format!("{name:?} is not a host name or IP address"),
                );
                None
            }
        }
        None => None,
    };
    let port = match &raw.smtp_port {
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(port) if port > 0 => port,
            _ => {
                sink.error(
                    Some(p.span()),
                    "mail.smtp-port",
                    format!("{} is not a TCP port (1 to 65535)", p.get_ref()),
                );
                tls.default_port()
            }
        },
        None => tls.default_port(),
    };
    let auth = match (&raw.smtp_user, &raw.smtp_password_file) {
        (Some(user), Some(file)) => {
            let u = user.get_ref();
            if u.is_empty() || u.chars().any(char::is_control) {
                sink.error(
                    Some(user.span()),
                    "mail.smtp-user",
                    "must not be empty or contain control characters".into(),
                );
            }
            sink.absolute_path(file, "mail.smtp-password-file")
                .map(|password_file| SmtpAuth { user: u.clone(), password_file })
        }
        (Some(user), None) => {
            sink.error(
                Some(user.span()),
                "mail.smtp-user",
                "needs smtp-password-file, the file that holds the password (a password is never \
                 written into the configuration or given on the command line)"
                    .into(),
            );
            None
        }
        (None, Some(file)) => {
            sink.error(Some(file.span()), "mail.smtp-password-file", "needs smtp-user".into());
            None
        }
        (None, None) => None,
    };
    mail.smtp = host.map(|host| SmtpConfig { host, port, tls, auth });
    if raw.smtp_host.is_none() {
        let other_smtp_keys = raw.smtp_port.is_some()
            || raw.smtp_tls.is_some()
            || raw.smtp_user.is_some()
            || raw.smtp_password_file.is_some();
        if mail.transport == Transport::Smtp {
            sink.error(
                None,
                "mail.smtp-host",
                "transport = \"smtp\" needs smtp-host, the relay to send to".into(),
            );
        } else if other_smtp_keys {
            sink.error(
                None,
                "mail.smtp-host",
                "the smtp-* settings need smtp-host, the relay to send to".into(),
            );
        }
    }
    if mail.smtp.as_ref().is_some_and(|s| s.tls == SmtpTls::None && s.auth.is_some()) {
        sink.warn(
            None,
            "mail.smtp-tls",
            "smtp-tls = \"none\" sends the SMTP password unencrypted; use \"starttls\" or \"tls\"".into(),
        );
    }

    if let Some(hours) = &raw.quiet_period {
        match u64::try_from(*hours.get_ref()) {
            Ok(h) if *hours.get_ref() <= MAX_QUIET_PERIOD_HOURS => {
                mail.quiet_period = Duration::from_secs(h * 3600)
            }
            _ => sink.error(
                Some(hours.span()),
                "mail.quiet-period",
                format!(
                    "{} is out of range: 0 (mail every run) to {MAX_QUIET_PERIOD_HOURS} hours",
                    hours.get_ref()
                ),
            ),
        }
    }
    mail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_text(text: &str) -> (MailConfig, Vec<Problem>, Vec<Problem>) {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            mail: RawMail,
        }
        let file: File = toml::from_str(text).expect("parses");
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let mail =
            resolve(&file.mail, "host.example.com", text, Path::new("/c.toml"), &mut errors, &mut warnings);
        (mail, errors, warnings)
    }

    #[test]
    fn defaults_mail_root_at_the_hostname() {
        let (mail, errors, _) = resolve_text("");
        assert!(errors.is_empty());
        assert_eq!(mail, MailConfig::defaults("host.example.com"));
        assert_eq!(mail.to, ["root@host.example.com"]);
        assert_eq!(mail.from, "checkallsslcerts@host.example.com");
        assert_eq!(mail.quiet_period, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn smtp_relay_with_defaults_per_tls_mode() {
        let (mail, errors, _) = resolve_text(
            "[mail]\ntransport = \"smtp\"\nsmtp-host = \"mx.example.com\"\nsmtp-tls = \"tls\"\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let smtp = mail.smtp.expect("smtp");
        assert_eq!((smtp.host.as_str(), smtp.port, smtp.tls), ("mx.example.com", 465, SmtpTls::Tls));
        let (mail, _, _) = resolve_text("[mail]\nsmtp-host = \"127.0.0.1\"\nsmtp-tls = \"none\"\n");
        assert_eq!(mail.smtp.expect("smtp").port, 25);
        let (mail, _, _) = resolve_text("[mail]\nsmtp-host = \"[::1]\"\n");
        let smtp = mail.smtp.expect("smtp");
        assert_eq!((smtp.host.as_str(), smtp.port), ("::1", 587));
    }

    #[test]
    fn every_bad_value_is_named_with_its_key_and_line() {
        let text = "[mail]\nto = [\"not an address\", \"ok@example.com\"]\nfrom = \"root\"\n\
                    smtp-port = 70000\nsmtp-user = \"u\"\nquiet-period = -1\ntransport = \"smtp\"\n";
        let (_, errors, _) = resolve_text(text);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let all = shown.join("\n");
        for needle in [
            "/c.toml:2:7: `mail.to`: \"not an address\" is not a mail address",
            "/c.toml:3:8: `mail.from`",
            "/c.toml:4:13: `mail.smtp-port`: 70000 is not a TCP port",
            "`mail.smtp-user`: needs smtp-password-file",
            "/c.toml:6:16: `mail.quiet-period`: -1 is out of range",
            "`mail.smtp-host`: transport = \"smtp\" needs smtp-host",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in\n{all}");
        }
    }

    #[test]
    fn password_file_must_be_absolute_and_come_with_a_user() {
        let (_, errors, _) = resolve_text(
            "[mail]\nsmtp-host = \"mx.example.com\"\nsmtp-user = \"u\"\nsmtp-password-file = \"pw\"\n",
        );
        assert!(errors.iter().any(|e| e.key == "mail.smtp-password-file"), "{errors:?}");
        let (mail, errors, warnings) = resolve_text(
            "[mail]\nsmtp-host = \"mx.example.com\"\nsmtp-tls = \"none\"\nsmtp-user = \"u\"\n\
             smtp-password-file = \"/etc/pw\"\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            mail.smtp.and_then(|s| s.auth),
            Some(SmtpAuth { user: "u".into(), password_file: "/etc/pw".into() })
        );
        assert!(warnings.iter().any(|w| w.message.contains("unencrypted")), "{warnings:?}");
    }

    #[test]
    fn bare_local_parts_are_qualified_with_the_hostname() {
        let (mail, errors, _) = resolve_text("[mail]\nto = [\"root\", \"ops+certs@example.org\"]\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(mail.to, ["root@host.example.com", "ops+certs@example.org"]);
        let (_, errors, _) = resolve_text("[mail]\nto = []\n");
        assert!(errors[0].message.contains("at least one recipient"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct File {
            mail: RawMail,
        }
        let err = toml::from_str::<File>("[mail]\nsmtp-password = \"x\"\n").expect_err("refused");
        assert!(err.to_string().contains("smtp-password"), "{err}");
    }
}
