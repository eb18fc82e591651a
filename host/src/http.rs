//! What every HTTP client of this program shares: the ACME client ([`crate::acme::client`]),
//! the network facts' OCSP/CRL/directory/ARI client ([`crate::facts::network`]) and the policy
//! download ([`crate::policy_store::fetch`]). Each keeps its own timeouts, redirects, pool and
//! scheme rules; this module gives them
//!
//! * the `User-Agent` ([`USER_AGENT`]);
//! * the extra CA bundle (`acme.ca-bundle`, `policy install --ca-file`): read bounded, every PEM
//!   certificate in it trusted besides the system's roots, an empty or broken bundle refused with
//!   an error naming the file ([`ca_bundle`]);
//! * the proxy, from the standard environment variables ([`Proxies`]): `HTTPS_PROXY` for
//!   `https://` URLs, `HTTP_PROXY` for `http://` URLs (OCSP, CRLs), `ALL_PROXY` for either when
//!   the specific one is not set, each also in lower case (the upper-case name wins when both are
//!   set and not empty); `NO_PROXY` lists the hosts reached directly, with curl's rules (as
//!   reqwest applies them: comma-separated names, which match their subdomains too, IP addresses,
//!   CIDR ranges, `*` for every host). Loopback (127.0.0.0/8, `::1`, `localhost` and names under
//!   `.localhost`) is always reached directly, proxy or not — as Go's `net/http` (lego) does. A
//!   proxy is `http://` (the default when no scheme is given) or `https://`, with optional
//!   `user:password@`; SOCKS is not supported. As in Go, the upper-case `HTTP_PROXY` is ignored
//!   when `REQUEST_METHOD` is set (a CGI environment, where a request's `Proxy:` header could set
//!   it: "httpoxy"; reqwest's own handling drops every proxy then). A variable set to something
//!   that is not a proxy URL is an error naming it, never silently a direct connection (reqwest's
//!   own handling would ignore it). reqwest's environment handling is replaced, not added to;
//!   where this differs from it: empty variables count as unset, loopback is never proxied.
//! * [`retry_after`]: a `Retry-After` header (RFC 9110 §10.2.3) as a time.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Url;
use reqwest::tls::Certificate;

use crate::facts::read::{ReadError, read_bounded};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("checkallsslcerts/", env!("CARGO_PKG_VERSION"));

/// The largest CA bundle read (a whole system bundle is about 200 KiB).
pub const MAX_CA_BUNDLE_BYTES: u64 = 4 << 20;

/// Why an HTTP client could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    /// The extra CA bundle is missing, unreadable, not PEM or empty (`reason` does not repeat
    /// the path).
    #[error("the CA bundle {}: {reason}", .path.display())]
    CaBundle { path: PathBuf, reason: String },
    /// A proxy environment variable holds something that is not a usable proxy URL.
    #[error("the environment variable {variable}: {reason}")]
    Proxy { variable: &'static str, reason: String },
    /// reqwest refused the settings (e.g. no TLS backend).
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
}

/// The certificates of the PEM bundle at `path` (at least one), read at most
/// [`MAX_CA_BUNDLE_BYTES`].
pub fn ca_bundle(path: &Path) -> Result<Vec<Certificate>, SetupError> {
    let error = |reason: String| SetupError::CaBundle { path: path.to_owned(), reason };
    let shown = path.display().to_string();
    let pem = read_bounded(path, MAX_CA_BUNDLE_BYTES).map_err(|e| {
        error(match e {
            ReadError::Missing(m) => match m.strip_prefix(&shown).map(str::trim) {
                Some("") | None => "does not exist".to_owned(),
                Some(note) => format!("does not exist {note}"),
            },
            ReadError::Unreadable(m) => m
                .strip_prefix(&format!("{shown}: "))
                .map(str::to_owned)
                .unwrap_or(m)
                .replace("for a certificate or key file", "for a CA bundle"),
        })
    })?;
    let certificates = Certificate::from_pem_bundle(&pem)
        .map_err(|e| error(format!("not a PEM certificate bundle: {}", error_chain(&e))))?;
    if certificates.is_empty() {
        return Err(error("holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// An error and its sources joined with ": " (reqwest's own message alone hides the TLS or
/// connection reason).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = e.source();
    }
    text
}

/// The proxies the environment asks for (see the module documentation).
#[derive(Clone)]
pub struct Proxies {
    /// For `http://` URLs.
    http: Option<Url>,
    /// For `https://` URLs.
    https: Option<Url>,
    /// `NO_PROXY` (curl's rules, applied by hyper-util's matcher, as reqwest does).
    no_proxy: Arc<hyper_util::client::proxy::matcher::Matcher>,
}

impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credentials in debug output.
        let shown = |u: &Option<Url>| u.as_ref().map(|u| redacted(u.as_str()));
        f.debug_struct("Proxies")
            .field("http", &shown(&self.http))
            .field("https", &shown(&self.https))
            .finish()
    }
}

impl Proxies {
    /// No proxy at all.
    pub fn none() -> Proxies {
        Proxies {
            http: None,
            https: None,
            no_proxy: Arc::new(hyper_util::client::proxy::matcher::Matcher::builder().build()),
        }
    }

    /// The proxies of this process's environment.
    pub fn from_env() -> Result<Proxies, SetupError> {
        Proxies::from_lookup(|name| std::env::var(name).ok())
    }

    /// The proxies that environment variables read through `get` ask for.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Proxies, SetupError> {
        let first = |names: &[&'static str]| {
            names.iter().find_map(|name| get(name).filter(|v| !v.trim().is_empty()).map(|v| (*name, v)))
        };
        let cgi = get("REQUEST_METHOD").is_some();
        let parse = |found: Option<(&'static str, String)>| {
            found
                .map(|(variable, value)| {
                    parse_proxy(&value).map_err(|reason| SetupError::Proxy { variable, reason })
                })
                .transpose()
        };
        let all = parse(first(&["ALL_PROXY", "all_proxy"]))?;
        let http_names: &[&'static str] = if cgi { &["http_proxy"] } else { &["HTTP_PROXY", "http_proxy"] };
        let http = parse(first(http_names))?.or_else(|| all.clone());
        let https = parse(first(&["HTTPS_PROXY", "https_proxy"]))?.or(all);
        let no = first(&["NO_PROXY", "no_proxy"]).map(|(_, v)| v).unwrap_or_default();
        // The matcher only decides whether a host is excluded: any proxy URL will do for it.
        let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
            .all("http://proxy.invalid".to_owned())
            .no(no)
            .build();
        Ok(Proxies { http, https, no_proxy: Arc::new(matcher) })
    }

    /// Whether any proxy is configured.
    pub fn any(&self) -> bool {
        self.http.is_some() || self.https.is_some()
    }

    /// The proxy a request to `url` goes through, if any: none for loopback, none for a host
    /// `NO_PROXY` lists, else the one for the URL's scheme.
    pub fn proxy_for(&self, url: &Url) -> Option<&Url> {
        let proxy = match url.scheme() {
            "http" => self.http.as_ref()?,
            "https" => self.https.as_ref()?,
            _ => return None,
        };
        if is_loopback(url) {
            return None;
        }
        let uri: http::Uri = url.as_str().parse().ok()?;
        self.no_proxy.intercept(&uri)?;
        Some(proxy)
    }

    fn reqwest_proxy(&self) -> Option<reqwest::Proxy> {
        if !self.any() {
            return None;
        }
        let me = self.clone();
        Some(reqwest::Proxy::custom(move |url| me.proxy_for(url).cloned()))
    }
}

/// Whether `url`'s host is this machine's loopback: 127.0.0.0/8, `::1` (also IPv4-mapped),
/// `localhost` or a name under `.localhost` (RFC 6761).
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    }
}

/// A proxy URL from an environment variable's value; the error says why not (without the
/// value's password).
fn parse_proxy(value: &str) -> Result<Url, String> {
    let value = value.trim();
    let with_scheme = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
    let shown = redacted(&with_scheme);
    let url = Url::parse(&with_scheme).map_err(|e| format!("{shown:?} is not a proxy URL ({e})"))?;
    match url.scheme() {
        "http" | "https" => {}
        "socks4" | "socks4a" | "socks5" | "socks5h" => {
            return Err(format!("{shown:?}: SOCKS proxies are not supported; use an HTTP proxy"));
        }
        other => {
            return Err(format!("{shown:?}: a proxy URL starts with http:// or https://, not {other}://"));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} names no proxy host"));
    }
    Ok(url)
}

/// `value` with the password of its `user:password@`, if any, replaced by `***`.
fn redacted(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***{}", &rest[at..])
        }
        None => value.to_owned(),
    }
}

/// What both reqwest client builders (async and blocking) offer that [`ClientBuilderExt`] sets.
pub trait ClientBuilderExt: Sized {
    /// The [`USER_AGENT`], the certificates of `ca_bundle` trusted besides the system's roots,
    /// and `proxies` (no proxy at all when it has none: reqwest's own environment handling is
    /// replaced, never added to).
    fn shared_settings(self, ca_bundle: Option<&Path>, proxies: &Proxies) -> Result<Self, SetupError>;
}

macro_rules! builder_ext {
    ($builder:ty) => {
        impl ClientBuilderExt for $builder {
            fn shared_settings(
                self,
                ca_bundle: Option<&Path>,
                proxies: &Proxies,
            ) -> Result<Self, SetupError> {
                let mut builder = self.user_agent(USER_AGENT);
                if let Some(path) = ca_bundle {
                    builder = builder.tls_certs_merge(self::ca_bundle(path)?);
                }
                Ok(match proxies.reqwest_proxy() {
                    Some(proxy) => builder.proxy(proxy),
                    None => builder.no_proxy(),
                })
            }
        }
    };
}

builder_ext!(reqwest::ClientBuilder);
builder_ext!(reqwest::blocking::ClientBuilder);

/// The Unix time a `Retry-After` value asks to wait until: `delay-seconds` from `now`, or an
/// HTTP-date (IMF-fixdate, and the obsolete RFC 850 and asctime forms, RFC 9110 §5.6.7). A time
/// in the past is `now`; anything else (negative or fractional seconds, a malformed date) is
/// `None`.
pub fn retry_after(value: &str, now: i64) -> Option<i64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // An absurd number of seconds is as good as "far away".
        let seconds = value.parse::<i64>().unwrap_or(i64::MAX);
        return Some(now.saturating_add(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let unix = match date.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    };
    Some(unix.max(now))
}

#[cfg(test)]
mod tests;
