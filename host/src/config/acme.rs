//! `[acme]`: the certificate authority that replacement certificates are ordered from.
//!
//! The section is optional: without it no CA is configured (`host-facts.acme` is none) and the
//! policy cannot ask for an order. With it, every key has a default, so `[acme]` plus an
//! `email` is a working Let's Encrypt setup. Files (`ca-bundle`, `eab-hmac-file`,
//! `issuer-roots`) are named here and read when an order is made, so `config check` never reads
//! a secret.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::errors::{Problem, line_col};
use super::names::is_dns_name_or_wildcard;
use super::types::KeyAlgorithm;

/// Let's Encrypt's production directory: the default `directory`.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (`staging = true`).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";
/// The hosts (and their subdomains) of the public ACME CAs' directories: a `directory` there is
/// a public CA unless `public = false` says otherwise; any other directory (a step-ca, Pebble,
/// a company's own CA) is private unless `public = true`.
pub const PUBLIC_CA_HOSTS: [&str; 10] = [
    "letsencrypt.org",
    "zerossl.com",
    "pki.goog",
    "buypass.com",
    "buypass.no",
    "ssl.com",
    "sectigo.com",
    "digicert.com",
    "actalis.com",
    "globalsign.com",
];
/// The default `keep-issued`.
pub const DEFAULT_KEEP_ISSUED: u32 = 5;
/// The default `keep-issued-days`.
pub const DEFAULT_KEEP_ISSUED_DAYS: u32 = 90;
/// The default `listen` of the standalone HTTP-01 responder.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:80";
/// The default `max-orders-per-day`.
pub const DEFAULT_MAX_ORDERS_PER_DAY: u32 = 3;
/// The largest `max-orders-per-day`.
pub const MAX_ORDERS_PER_DAY: i64 = 50;
/// The default `pending-wait-seconds`.
pub const DEFAULT_PENDING_WAIT: Duration = Duration::from_secs(60);
/// The largest `pending-wait-seconds`.
pub const MAX_PENDING_WAIT_SECONDS: i64 = 1800;
/// The largest `dns-propagation-seconds`.
pub const MAX_DNS_PROPAGATION_SECONDS: i64 = 3600;

/// `[acme]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAcme {
    pub directory: Option<Spanned<String>>,
    pub staging: Option<Spanned<bool>>,
    pub email: Option<Spanned<String>>,
    pub eab_key_id: Option<Spanned<String>>,
    pub eab_hmac_file: Option<Spanned<String>>,
    pub ca_bundle: Option<Spanned<String>>,
    pub issuer_roots: Option<Vec<Spanned<String>>>,
    pub challenge: Option<Spanned<String>>,
    pub listen: Option<Spanned<String>>,
    pub webroot: Option<Spanned<String>>,
    pub dns_hook: Option<Spanned<Vec<String>>>,
    pub dns_cleanup_hook: Option<Spanned<Vec<String>>>,
    pub dns_propagation_seconds: Option<Spanned<i64>>,
    pub extra_names: Option<Vec<Spanned<String>>>,
    pub key: Option<KeyAlgorithm>,
    pub max_orders_per_day: Option<Spanned<i64>>,
    pub pending_wait_seconds: Option<Spanned<i64>>,
    pub public: Option<Spanned<bool>>,
    pub keep_issued: Option<Spanned<i64>>,
    pub keep_issued_days: Option<Spanned<i64>>,
}

/// The resolved `[acme]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// `directory`, or Let's Encrypt production / staging (`staging = true`).
    pub directory_url: String,
    /// `email`: the account's contact, if given.
    pub email: Option<String>,
    /// `eab-key-id` + `eab-hmac-file`: external account binding (ZeroSSL, Google...).
    pub eab: Option<EabConfig>,
    /// `ca-bundle`: extra PEM roots trusted for the CA's HTTPS API (a private CA, Pebble).
    pub ca_bundle: Option<PathBuf>,
    /// `issuer-roots`: extra PEM roots an issued chain may end at (besides `[trust]`).
    pub issuer_roots: Vec<PathBuf>,
    /// `challenge` and its settings.
    pub challenge: ChallengeConfig,
    /// `extra-names`: names ordered besides the hostname (and the services' `names`).
    pub extra_names: Vec<String>,
    /// `key`: the kind of the certificate's private key.
    pub key: KeyAlgorithm,
    /// `max-orders-per-day`: new orders opened in any 24 hours, at most.
    pub max_orders_per_day: u32,
    /// `pending-wait-seconds`: how long one run waits for the CA before leaving an order pending.
    pub pending_wait: Duration,
    /// `public`: whether the CA is a public one, which cannot issue for names reserved for
    /// internal use (`.internal`, `.test`, `.lan`...). Default: whether `directory` is one of
    /// the public CAs' ([`PUBLIC_CA_HOSTS`]).
    pub public: bool,
    /// `keep-issued`: certificates in `<state-dir>/acme/issued/` kept whatever their age.
    pub keep_issued: u32,
    /// `keep-issued-days`: certificates beyond `keep-issued` are pruned (with their keys) once
    /// they were issued this long ago.
    pub keep_issued_for: Duration,
    /// Where the ACME accounts are kept, when not in this state directory's `acme/accounts`:
    /// set for a certificate group's own state (`Config::for_group`), which shares the
    /// accounts of the main one. Not read from the file.
    pub accounts_dir: Option<PathBuf>,
}

/// External account binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EabConfig {
    /// `eab-key-id`.
    pub key_id: String,
    /// `eab-hmac-file`: a file holding the base64url HMAC key.
    pub hmac_file: PathBuf,
}

/// How the CA is shown that this server controls the names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeConfig {
    /// `challenge = "http-01"`: a built-in listener on `listen` answers the CA.
    Http01Standalone {
        /// `listen`: the address to bind (default `0.0.0.0:80`).
        listen: SocketAddr,
    },
    /// `challenge = "webroot"`: the token file goes under
    /// `<webroot>/.well-known/acme-challenge/`, served by the web server already running.
    Http01Webroot {
        /// `webroot`: the web server's document root for the names.
        webroot: PathBuf,
    },
    /// `challenge = "dns-01"`: a hook command publishes the TXT record.
    Dns01Hook {
        /// `dns-hook`: argv run once per name with `ACME_DOMAIN`, `ACME_RECORD_NAME` and
        /// `ACME_VALIDATION` in its environment.
        hook: Vec<String>,
        /// `dns-cleanup-hook`: argv run the same way once the order is done.
        cleanup: Option<Vec<String>>,
        /// `dns-propagation-seconds`: wait after the hooks before telling the CA.
        propagation: Duration,
    },
}

impl ChallengeConfig {
    /// The configuration word of this challenge.
    pub fn name(&self) -> &'static str {
        match self {
            ChallengeConfig::Http01Standalone { .. } => "http-01",
            ChallengeConfig::Http01Webroot { .. } => "webroot",
            ChallengeConfig::Dns01Hook { .. } => "dns-01",
        }
    }
}

struct Checker<'a> {
    text: &'a str,
    path: &'a Path,
    errors: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    fn error(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        self.errors.push(Problem {
            path: self.path.to_owned(),
            location: span.map(|s| line_col(self.text, s.start)),
            service: None,
            key: format!("acme.{key}"),
            message,
        });
    }

    fn absolute(&mut self, value: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let s = value.get_ref();
        if s.is_empty() || s.contains('\0') || !Path::new(s).is_absolute() {
            self.error(
                Some(value.span()),
                key,
                format!("{s:?} is not an absolute path (it must start with '/')"),
            );
            None
        } else {
            Some(PathBuf::from(s))
        }
    }

    fn argv(&mut self, value: &Spanned<Vec<String>>, key: &str) -> Option<Vec<String>> {
        let argv = value.get_ref();
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            self.error(
                Some(value.span()),
                key,
                "must name a program and its arguments, e.g. [\"/usr/local/bin/dns-txt\", \"--zone\", \"example.com\"]"
                    .into(),
            );
            None
        } else if argv.iter().any(|a| a.contains('\0')) {
            self.error(Some(value.span()), key, "arguments must not contain NUL characters".into());
            None
        } else {
            Some(argv.clone())
        }
    }

    fn range(&mut self, value: &Spanned<i64>, key: &str, min: i64, max: i64, unit: &str) -> Option<u64> {
        let v = *value.get_ref();
        if (min..=max).contains(&v) {
            u64::try_from(v).ok()
        } else {
            self.error(Some(value.span()), key, format!("{v} is out of range: {min} to {max}{unit}"));
            None
        }
    }
}

/// Whether a directory URL is one of the public CAs' ([`PUBLIC_CA_HOSTS`], or a subdomain).
pub fn is_public_directory(url: &str) -> bool {
    let host = url
        .trim()
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .map(|authority| authority.rsplit_once('@').map_or(authority, |(_, h)| h))
        .map(|host| host.split(':').next().unwrap_or("").trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default();
    PUBLIC_CA_HOSTS.iter().any(|public| host == *public || host.ends_with(&format!(".{public}")))
}

/// Whether `email` looks like an address a CA accepts as a `mailto:` contact.
fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"<>,;:\"()[]\\".contains(&b))
        && domain.contains('.')
        && super::names::is_dns_name(domain)
}

/// Checks and resolves `[acme]`; problems go to `errors`. `None` when the section is absent
/// or has errors.
pub(super) fn resolve(
    raw: Option<&RawAcme>,
    text: &str,
    path: &Path,
    errors: &mut Vec<Problem>,
) -> Option<AcmeConfig> {
    let raw = raw?;
    let before = errors.len();
    let mut c = Checker { text, path, errors };

    let staging = raw.staging.as_ref().is_some_and(|s| *s.get_ref());
    let directory_url = match (&raw.directory, staging) {
        (Some(d), true) => {
            c.error(
                Some(d.span()),
                "directory",
                "set either `directory` or `staging = true` (Let's Encrypt's staging directory), not both"
                    .into(),
            );
            String::new()
        }
        (Some(d), false) => {
            let url = d.get_ref().trim();
            let host =
                url.strip_prefix("https://").map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
            if host.is_none_or(str::is_empty) || url.chars().any(char::is_whitespace) {
                c.error(
                    Some(d.span()),
                    "directory",
                    format!("{url:?} is not an https:// URL of an ACME directory (RFC 8555 requires HTTPS)"),
                );
            }
            url.to_owned()
        }
        (None, true) => LETS_ENCRYPT_STAGING.to_owned(),
        (None, false) => LETS_ENCRYPT_PRODUCTION.to_owned(),
    };

    let email = match &raw.email {
        Some(e) if is_email(e.get_ref().trim()) => Some(e.get_ref().trim().to_owned()),
        Some(e) => {
            c.error(Some(e.span()), "email", format!("{:?} is not an e-mail address", e.get_ref()));
            None
        }
        None => None,
    };

    let eab = match (&raw.eab_key_id, &raw.eab_hmac_file) {
        (Some(id), Some(file)) => {
            let key_id = id.get_ref().trim().to_owned();
            if key_id.is_empty() || key_id.chars().any(|ch| ch.is_control()) {
                c.error(Some(id.span()), "eab-key-id", "the key id must not be empty".into());
            }
            c.absolute(file, "eab-hmac-file").map(|hmac_file| EabConfig { key_id, hmac_file })
        }
        (Some(id), None) => {
            c.error(
                Some(id.span()),
                "eab-hmac-file",
                "eab-key-id needs eab-hmac-file: the file that holds the HMAC key your CA gave you".into(),
            );
            None
        }
        (None, Some(file)) => {
            c.error(Some(file.span()), "eab-key-id", "eab-hmac-file needs eab-key-id".into());
            None
        }
        (None, None) => None,
    };

    let ca_bundle = raw.ca_bundle.as_ref().and_then(|b| c.absolute(b, "ca-bundle"));
    let issuer_roots: Vec<PathBuf> =
        raw.issuer_roots.iter().flatten().filter_map(|r| c.absolute(r, "issuer-roots")).collect();

    let kind = raw.challenge.as_ref().map(|k| (k.get_ref().trim().to_ascii_lowercase(), k.span()));
    let challenge = match kind.as_ref().map(|(k, s)| (k.as_str(), s.clone())) {
        None | Some(("http-01", _)) => {
            let listen = match &raw.listen {
                Some(l) => match l.get_ref().trim().parse::<SocketAddr>() {
                    Ok(addr) => Some(addr),
                    Err(_) => {
                        c.error(
                            Some(l.span()),
                            "listen",
                            format!(
                                "{:?} is not an address and port such as \"0.0.0.0:80\" or \"[::]:80\"",
                                l.get_ref()
                            ),
                        );
                        None
                    }
                },
                None => DEFAULT_LISTEN.parse().ok(),
            };
            listen.map(|listen| ChallengeConfig::Http01Standalone { listen })
        }
        Some(("webroot", span)) => match &raw.webroot {
            Some(w) => c.absolute(w, "webroot").map(|webroot| ChallengeConfig::Http01Webroot { webroot }),
            None => {
                c.error(
                    Some(span),
                    "webroot",
                    "challenge = \"webroot\" needs webroot: the document root your web server serves for the names"
                        .into(),
                );
                None
            }
        },
        Some(("dns-01", span)) => {
            let hook = match &raw.dns_hook {
                Some(h) => c.argv(h, "dns-hook"),
                None => {
                    c.error(
                        Some(span),
                        "dns-hook",
                        "challenge = \"dns-01\" needs dns-hook: the command that publishes the TXT record"
                            .into(),
                    );
                    None
                }
            };
            let cleanup = raw.dns_cleanup_hook.as_ref().and_then(|h| c.argv(h, "dns-cleanup-hook"));
            let propagation = raw
                .dns_propagation_seconds
                .as_ref()
                .map_or(Some(0), |s| {
                    c.range(s, "dns-propagation-seconds", 0, MAX_DNS_PROPAGATION_SECONDS, " seconds")
                })
                .map(Duration::from_secs);
            match (hook, propagation) {
                (Some(hook), Some(propagation)) => {
                    Some(ChallengeConfig::Dns01Hook { hook, cleanup, propagation })
                }
                _ => None,
            }
        }
        Some((other, span)) => {
            c.error(
                Some(span),
                "challenge",
                format!("{other:?} is not a challenge this tool answers: use \"http-01\", \"webroot\" or \"dns-01\""),
            );
            None
        }
    };
    let challenge_word = challenge.as_ref().map(ChallengeConfig::name);
    for (key, present) in [
        ("listen", raw.listen.as_ref().map(Spanned::span)),
        ("webroot", raw.webroot.as_ref().map(Spanned::span)),
        ("dns-hook", raw.dns_hook.as_ref().map(Spanned::span)),
        ("dns-cleanup-hook", raw.dns_cleanup_hook.as_ref().map(Spanned::span)),
        ("dns-propagation-seconds", raw.dns_propagation_seconds.as_ref().map(Spanned::span)),
    ] {
        let belongs = match key {
            "listen" => "http-01",
            "webroot" => "webroot",
            _ => "dns-01",
        };
        if let (Some(span), Some(word)) = (present, challenge_word)
            && word != belongs
        {
            c.error(
                Some(span),
                key,
                format!("only applies to challenge = \"{belongs}\" (this is \"{word}\")"),
            );
        }
    }

    let mut extra_names = Vec::new();
    for n in raw.extra_names.iter().flatten() {
        let name = n.get_ref().trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name_or_wildcard(&name) {
            c.error(
                Some(n.span()),
                "extra-names",
                format!(
                    "{:?} is not a valid DNS name (a leading \"*.\" wildcard is allowed with dns-01)",
                    n.get_ref()
                ),
            );
        } else if name.starts_with("*.") && challenge_word.is_some_and(|w| w != "dns-01") {
            c.error(
                Some(n.span()),
                "extra-names",
                format!("{name:?} is a wildcard: CAs issue wildcards only with challenge = \"dns-01\""),
            );
        } else if !extra_names.contains(&name) {
            extra_names.push(name);
        }
    }

    let max_orders_per_day = raw
        .max_orders_per_day
        .as_ref()
        .map_or(Some(u64::from(DEFAULT_MAX_ORDERS_PER_DAY)), |m| {
            c.range(m, "max-orders-per-day", 1, MAX_ORDERS_PER_DAY, "")
        })
        .and_then(|m| u32::try_from(m).ok());
    let pending_wait = raw
        .pending_wait_seconds
        .as_ref()
        .map_or(Some(DEFAULT_PENDING_WAIT.as_secs()), |w| {
            c.range(w, "pending-wait-seconds", 1, MAX_PENDING_WAIT_SECONDS, " seconds")
        })
        .map(Duration::from_secs);

    let public = raw.public.as_ref().map_or_else(|| is_public_directory(&directory_url), |p| *p.get_ref());
    let keep_issued = raw
        .keep_issued
        .as_ref()
        .map_or(Some(u64::from(DEFAULT_KEEP_ISSUED)), |k| c.range(k, "keep-issued", 1, 1000, ""))
        .and_then(|k| u32::try_from(k).ok());
    let keep_issued_for = raw
        .keep_issued_days
        .as_ref()
        .map_or(Some(u64::from(DEFAULT_KEEP_ISSUED_DAYS)), |d| {
            c.range(d, "keep-issued-days", 1, 3650, " days")
        })
        .map(|days| Duration::from_secs(days * 86_400));

    if errors.len() != before {
        return None;
    }
    Some(AcmeConfig {
        directory_url,
        email,
        eab,
        ca_bundle,
        issuer_roots,
        challenge: challenge?,
        extra_names,
        key: raw.key.unwrap_or_default(),
        max_orders_per_day: max_orders_per_day?,
        pending_wait: pending_wait?,
        public,
        keep_issued: keep_issued?,
        keep_issued_for: keep_issued_for?,
        accounts_dir: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Option<AcmeConfig>, String> {
        let config = crate::config::from_str(text, Path::new("/etc/c.toml")).map_err(|e| e.to_string())?;
        Ok(config.acme)
    }

    #[test]
    fn a_ca_is_public_by_its_directory_unless_public_says_otherwise() {
        for (directory, public) in [
            ("https://acme-v02.api.letsencrypt.org/directory", true),
            ("https://acme-staging-v02.api.letsencrypt.org/directory", true),
            ("https://acme.zerossl.com/v2/DV90", true),
            ("https://dv.acme-v02.api.pki.goog/directory", true),
            ("https://api.buypass.com/acme/directory", true),
            ("https://127.0.0.1:14000/dir", false),
            ("https://ca.corp.internal/acme/acme/directory", false),
            ("https://letsencrypt.org.evil.example/dir", false),
            ("https://notletsencrypt.org/dir", false),
        ] {
            assert_eq!(is_public_directory(directory), public, "{directory}");
            let text = format!("hostname = \"h.example.com\"\n[acme]\ndirectory = \"{directory}\"\n");
            assert_eq!(load(&text).expect("loads").expect("acme").public, public, "{directory}");
        }
        let acme = load("hostname = \"h.example.com\"\n[acme]\n").expect("loads").expect("acme");
        assert!(acme.public, "Let's Encrypt by default");
        let acme =
            load("hostname = \"h.example.com\"\n[acme]\npublic = false\n").expect("loads").expect("acme");
        assert!(!acme.public, "set explicitly");
        let text =
            "hostname = \"h.example.com\"\n[acme]\ndirectory = \"https://127.0.0.1:1/dir\"\npublic = true\n";
        assert!(load(text).expect("loads").expect("acme").public);
    }

    #[test]
    fn retention_of_issued_certificates_has_defaults_and_bounds() {
        let acme = load("hostname = \"h.example.com\"\n[acme]\n").expect("loads").expect("acme");
        assert_eq!((acme.keep_issued, acme.keep_issued_for), (5, Duration::from_secs(90 * 86_400)));
        let acme = load("hostname = \"h.example.com\"\n[acme]\nkeep-issued = 2\nkeep-issued-days = 30\n")
            .expect("loads")
            .expect("acme");
        assert_eq!((acme.keep_issued, acme.keep_issued_for), (2, Duration::from_secs(30 * 86_400)));
        let e = load("hostname = \"h.example.com\"\n[acme]\nkeep-issued = 0\n").expect_err("0");
        assert!(e.contains("acme.keep-issued") && e.contains("out of range"), "{e}");
        let e = load("hostname = \"h.example.com\"\n[acme]\nkeep-issued-days = 0\n").expect_err("0");
        assert!(e.contains("acme.keep-issued-days"), "{e}");
    }

    #[test]
    fn absent_section_means_no_ca() {
        assert_eq!(load("hostname = \"h.example.com\"\n").expect("loads"), None);
    }

    #[test]
    fn defaults_are_lets_encrypt_production_http01_on_port_80() {
        let acme = load("hostname = \"h.example.com\"\n[acme]\n").expect("loads").expect("section");
        assert_eq!(acme.directory_url, LETS_ENCRYPT_PRODUCTION);
        assert_eq!(
            acme.challenge,
            ChallengeConfig::Http01Standalone { listen: "0.0.0.0:80".parse().expect("addr") }
        );
        assert_eq!(acme.key, KeyAlgorithm::EcP256);
        assert_eq!(acme.max_orders_per_day, DEFAULT_MAX_ORDERS_PER_DAY);
        assert_eq!(acme.pending_wait, DEFAULT_PENDING_WAIT);
        assert_eq!(acme.eab, None);
    }

    #[test]
    fn example_file_documents_a_working_section() {
        let acme = load(include_str!("../../../examples/config.toml")).expect("loads").expect("section");
        assert_eq!(acme.directory_url, LETS_ENCRYPT_PRODUCTION);
        assert_eq!(acme.email.as_deref(), Some("hostmaster@example.com"));
        assert_eq!(acme.extra_names, vec!["www.example.com".to_string()]);
        assert_eq!(acme.max_orders_per_day, DEFAULT_MAX_ORDERS_PER_DAY);
    }

    #[test]
    fn staging_switch_and_full_settings() {
        let acme = load(
            "hostname = \"h.example.com\"\n[acme]\nstaging = true\nemail = \"admin@example.com\"\n\
             eab-key-id = \"kid-1\"\neab-hmac-file = \"/etc/checkallsslcerts/eab.key\"\n\
             ca-bundle = \"/etc/ssl/private-ca.pem\"\nchallenge = \"webroot\"\nwebroot = \"/var/www/html\"\n\
             extra-names = [\"www.example.com\", \"WWW.example.com.\"]\nkey = \"rsa-3072\"\n\
             max-orders-per-day = 2\npending-wait-seconds = 5\n",
        )
        .expect("loads")
        .expect("section");
        assert_eq!(acme.directory_url, LETS_ENCRYPT_STAGING);
        assert_eq!(acme.email.as_deref(), Some("admin@example.com"));
        assert_eq!(
            acme.eab,
            Some(EabConfig { key_id: "kid-1".into(), hmac_file: "/etc/checkallsslcerts/eab.key".into() })
        );
        assert_eq!(acme.challenge, ChallengeConfig::Http01Webroot { webroot: "/var/www/html".into() });
        assert_eq!(acme.extra_names, vec!["www.example.com".to_string()]);
        assert_eq!(acme.key, KeyAlgorithm::Rsa3072);
        assert_eq!(acme.max_orders_per_day, 2);
        assert_eq!(acme.pending_wait, Duration::from_secs(5));
    }

    #[test]
    fn dns01_hook_with_wildcard() {
        let acme = load(
            "hostname = \"h.example.com\"\n[acme]\nchallenge = \"dns-01\"\ndns-hook = [\"/usr/local/bin/txt\", \"add\"]\n\
             dns-cleanup-hook = [\"/usr/local/bin/txt\", \"del\"]\ndns-propagation-seconds = 30\n\
             extra-names = [\"*.example.com\"]\n",
        )
        .expect("loads")
        .expect("section");
        assert_eq!(
            acme.challenge,
            ChallengeConfig::Dns01Hook {
                hook: vec!["/usr/local/bin/txt".into(), "add".into()],
                cleanup: Some(vec!["/usr/local/bin/txt".into(), "del".into()]),
                propagation: Duration::from_secs(30),
            }
        );
        assert_eq!(acme.extra_names, vec!["*.example.com".to_string()]);
    }

    #[test]
    fn every_problem_is_named() {
        let err = load(
            "hostname = \"h.example.com\"\n[acme]\ndirectory = \"http://ca.example.com/dir\"\nemail = \"nobody\"\n\
             eab-key-id = \"kid\"\nca-bundle = \"relative.pem\"\nlisten = \"port 80\"\n\
             extra-names = [\"*.example.com\", \"bad_name\"]\nmax-orders-per-day = 0\npending-wait-seconds = 99999\n",
        )
        .expect_err("invalid");
        for needle in [
            "/etc/c.toml:3:13: `acme.directory`: \"http://ca.example.com/dir\" is not an https:// URL",
            "`acme.email`: \"nobody\" is not an e-mail address",
            "`acme.eab-hmac-file`: eab-key-id needs eab-hmac-file",
            "`acme.ca-bundle`: \"relative.pem\" is not an absolute path",
            "`acme.listen`: \"port 80\" is not an address and port",
            "`acme.extra-names`: \"bad_name\" is not a valid DNS name",
            "`acme.max-orders-per-day`: 0 is out of range: 1 to 50",
            "`acme.pending-wait-seconds`: 99999 is out of range: 1 to 1800 seconds",
        ] {
            assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
        }
        // The wildcard is only refused once the challenge is known to be valid.
        let err = load("hostname = \"h.example.com\"\n[acme]\nextra-names = [\"*.example.com\"]\n")
            .expect_err("wildcard");
        assert!(err.contains("CAs issue wildcards only with challenge = \"dns-01\""), "{err}");
    }

    #[test]
    fn conflicting_and_misplaced_keys() {
        let err = load(
            "hostname = \"h.example.com\"\n[acme]\nstaging = true\ndirectory = \"https://ca.example.com/dir\"\n\
             webroot = \"/var/www\"\n",
        )
        .expect_err("invalid");
        assert!(err.contains("set either `directory` or `staging = true`"), "{err}");
        assert!(
            err.contains("`acme.webroot`: only applies to challenge = \"webroot\" (this is \"http-01\")"),
            "{err}"
        );
        let err =
            load("hostname = \"h.example.com\"\n[acme]\nchallenge = \"tls-alpn-01\"\n").expect_err("kind");
        assert!(err.contains("\"tls-alpn-01\" is not a challenge this tool answers"), "{err}");
        let err = load("hostname = \"h.example.com\"\n[acme]\nchallenge = \"dns-01\"\n").expect_err("hook");
        assert!(err.contains("`acme.dns-hook`: challenge = \"dns-01\" needs dns-hook"), "{err}");
        let err = load("hostname = \"h.example.com\"\n[acme]\nunknown = 1\n").expect_err("unknown key");
        assert!(err.contains("unknown field `unknown`"), "{err}");
    }
}
