//! ACME Renewal Information (RFC 9773): the CA's suggested renewal window for a certificate.
//!
//! The certificate is named by its ARI identifier, `base64url(AKI keyIdentifier) "."
//! base64url(serial number DER content)` ([`cert_id`], also the `replaces` field of a new
//! order), and its window is `GET <renewalInfo>/<id>`. The answer is kept in
//! `<state-dir>/cache/ari/` until its `Retry-After` (6 hours when absent, clamped to one minute
//! .. one day), so runs in between do not ask again; a dry run reads the cache but never writes
//! it. A CA that does not know the certificate answers 404: no window, no warning. A window
//! whose end is not after its start is invalid and treated as no answer (RFC 9773 §4.2).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::x509::X509Ref;
use serde::{Deserialize, Serialize};

use super::model::{RenewalWindow, Timestamp};
use super::network::Http;
use super::read::read_bounded;
use super::revocation::write_cache_file;

/// The largest renewalInfo answer accepted, in bytes.
pub const MAX_RENEWAL_INFO_BYTES: usize = 64 * 1024;
/// How long an answer is kept when the CA sends no `Retry-After`, in seconds.
pub const DEFAULT_RETRY_AFTER: i64 = 6 * 3600;
/// The shortest and longest time an answer is kept, in seconds.
pub const MIN_RETRY_AFTER: i64 = 60;
pub const MAX_RETRY_AFTER: i64 = 24 * 3600;

/// The certificate's ARI identifier (RFC 9773 §4.1), or `None` without an Authority Key
/// Identifier with a key identifier. The ACME order that replaces this certificate carries it
/// as `replaces`.
pub fn cert_id(cert: &X509Ref) -> Option<String> {
    let key_id = cert.authority_key_id()?.as_slice();
    if key_id.is_empty() {
        return None;
    }
    let mut serial = cert.serial_number().to_bn().ok()?.to_vec();
    // The DER content of a non-negative INTEGER: at least one byte, and a leading zero when the
    // high bit is set.
    if serial.first().is_none_or(|b| b & 0x80 != 0) {
        serial.insert(0, 0);
    }
    Some(format!("{}.{}", URL_SAFE_NO_PAD.encode(key_id), URL_SAFE_NO_PAD.encode(serial)))
}

/// The ARI identifier of the leaf certificate in a PEM file (a service's certificate file), for
/// the `replaces` field of the order that replaces it; `None` if the file cannot be read or the
/// leaf has no Authority Key Identifier.
pub fn cert_id_of_file(path: &Path) -> Option<String> {
    let bytes = read_bounded(path, super::read::MAX_PEM_FILE_SIZE).ok()?;
    let parsed = super::certificate::parse_certificate(&bytes).ok()?;
    cert_id(&parsed.leaf)
}

/// [`cert_id`] split at the dot: (base64url AKI keyIdentifier, base64url serial) — the two
/// fields of `instant_acme::CertificateIdentifier`.
pub fn cert_id_parts(cert: &X509Ref) -> Option<(String, String)> {
    let id = cert_id(cert)?;
    let (aki, serial) = id.split_once('.')?;
    Some((aki.to_owned(), serial.to_owned()))
}

/// `<renewalInfo>/<id>`.
pub fn renewal_info_url(base: &str, id: &str) -> String {
    format!("{}/{id}", base.trim_end_matches('/'))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenewalInfo {
    suggested_window: SuggestedWindow,
    #[serde(rename = "explanationURL")]
    explanation_url: Option<String>,
}

#[derive(Deserialize)]
struct SuggestedWindow {
    start: String,
    end: String,
}

/// Parses a RenewalInfo object.
pub fn parse_renewal_info(body: &[u8]) -> Result<RenewalWindow, String> {
    let info: RenewalInfo =
        serde_json::from_slice(body).map_err(|e| format!("the answer is not a RenewalInfo object ({e})"))?;
    let time = |text: &str| {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp())
            .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e})"))
    };
    let start = time(&info.suggested_window.start)?;
    let end = time(&info.suggested_window.end)?;
    if end <= start {
        return Err(format!(
            "the suggested window is invalid: its end ({end}) is not after its start ({start})"
        ));
    }
    Ok(RenewalWindow { start, end, explanation_url: info.explanation_url })
}

/// How long to keep an answer, from its `Retry-After` (seconds or an HTTP date), clamped to
/// [`MIN_RETRY_AFTER`] ..= [`MAX_RETRY_AFTER`].
pub fn retry_after_seconds(header: Option<&str>, now: Timestamp) -> i64 {
    let seconds = header
        .and_then(|value| crate::http::retry_after(value, now))
        .map_or(DEFAULT_RETRY_AFTER, |at| at.saturating_sub(now));
    seconds.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER)
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CacheEntry {
    /// The renewalInfo URL asked.
    url: String,
    /// Ask again from this time on.
    until: Timestamp,
    /// The window; `None` when the CA did not know the certificate.
    window: Option<RenewalWindow>,
}

/// Fetches renewal windows, with the cache.
pub struct AriClient {
    http: Arc<Http>,
    now: Timestamp,
    cache_dir: PathBuf,
    write_cache: bool,
    notices: Mutex<Vec<String>>,
}

impl AriClient {
    /// A client caching in `cache_dir` (written only when `write_cache`).
    pub fn new(http: Arc<Http>, now: Timestamp, cache_dir: PathBuf, write_cache: bool) -> AriClient {
        AriClient { http, now, cache_dir, write_cache, notices: Mutex::new(Vec::new()) }
    }

    /// Warnings about the cache.
    pub fn take_notices(&self) -> Vec<String> {
        self.notices.lock().map(|mut n| std::mem::take(&mut *n)).unwrap_or_default()
    }

    /// The CA's window for `cert` from the renewalInfo resource at `base`: `None` when the
    /// certificate has no ARI identifier or the CA does not know it. On a failed request, a
    /// window fetched earlier (even if due for refresh) is used; without one, the error.
    pub async fn window(&self, base: &str, cert: &X509Ref) -> Result<Option<RenewalWindow>, String> {
        let Some(id) = cert_id(cert) else {
            return Ok(None);
        };
        let url = renewal_info_url(base, &id);
        let path = self.cache_dir.join(format!("{}.json", hex::encode(openssl::sha::sha256(url.as_bytes()))));
        let cached = read_cache(&path).filter(|entry| entry.url == url);
        if let Some(entry) = cached.as_ref().filter(|e| e.until > self.now) {
            return Ok(entry.window.clone());
        }
        let fetched = self.fetch(&url).await;
        match fetched {
            Ok((window, keep)) => {
                if self.write_cache {
                    let entry =
                        CacheEntry { url: url.clone(), until: self.now + keep, window: window.clone() };
                    let written = serde_json::to_vec(&entry)
                        .map_err(std::io::Error::other)
                        .and_then(|bytes| write_cache_file(&path, &bytes));
                    if let Err(e) = written
                        && let Ok(mut n) = self.notices.lock()
                    {
                        n.push(format!("cannot cache the renewal information in {}: {e}", path.display()));
                    }
                }
                Ok(window)
            }
            Err(e) => match cached.and_then(|entry| entry.window) {
                Some(window) => Ok(Some(window)),
                None => Err(format!("{url}: {e}")),
            },
        }
    }

    /// The window (or `None` for 404) and how long to keep the answer.
    async fn fetch(&self, url: &str) -> Result<(Option<RenewalWindow>, i64), String> {
        let answer = self.http.get(url, MAX_RENEWAL_INFO_BYTES).await?;
        let keep = retry_after_seconds(answer.retry_after.as_deref(), self.now);
        match answer.status {
            200 => Ok((Some(parse_renewal_info(&answer.body)?), keep)),
            404 => Ok((None, keep.max(DEFAULT_RETRY_AFTER))),
            status => Err(format!("HTTP status {status}")),
        }
    }
}

fn read_cache(path: &Path) -> Option<CacheEntry> {
    let bytes = read_bounded(path, MAX_RENEWAL_INFO_BYTES as u64).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testpki::{Pki, Spec, issue};

    #[test]
    fn cert_id_is_aki_dot_serial() {
        let pki = Pki::new("Test CA");
        let mut spec = Spec::leaf("a.example.com", &["a.example.com"]);
        spec.serial = 0x87654321; // high bit set: a leading zero byte in DER
        let leaf = pki.leaf(&spec);
        let aki = leaf.cert.authority_key_id().expect("aki").as_slice().to_vec();
        let id = cert_id(&leaf.cert).expect("id");
        let (left, right) = id.split_once('.').expect("dot");
        assert_eq!(URL_SAFE_NO_PAD.decode(left).expect("b64"), aki);
        assert_eq!(URL_SAFE_NO_PAD.decode(right).expect("b64"), [0x00, 0x87, 0x65, 0x43, 0x21]);
        assert!(!id.contains('=') && !id.contains('+') && !id.contains('/'));
        spec.serial = 0x1234;
        let leaf = pki.leaf(&spec);
        let id = cert_id(&leaf.cert).expect("id");
        assert_eq!(URL_SAFE_NO_PAD.decode(id.split_once('.').expect("dot").1).expect("b64"), [0x12, 0x34]);
        let (aki_part, serial_part) = cert_id_parts(&leaf.cert).expect("parts");
        assert_eq!(format!("{aki_part}.{serial_part}"), id);
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cert.pem");
        std::fs::write(&file, leaf.cert.to_pem().expect("pem")).expect("write");
        assert_eq!(cert_id_of_file(&file).as_deref(), Some(id.as_str()));
        assert_eq!(cert_id_of_file(&dir.path().join("missing.pem")), None);
        // A self-signed certificate without AKI has no identifier.
        let key = crate::facts::testpki::ec_key();
        let root = issue(&Spec::ca("Root", "Org"), &key, None);
        assert_eq!(cert_id(&root), None);
    }

    #[test]
    fn rfc_example_identifier() {
        // RFC 9773 §4.1: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
        // serial 00:87:65:43:21 → "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".
        let aki = hex::decode("69885b6b87464041e1b37b847ba0ae2cde01c8d4").expect("hex");
        assert_eq!(URL_SAFE_NO_PAD.encode(aki), "aYhba4dGQEHhs3uEe6CuLN4ByNQ");
        assert_eq!(URL_SAFE_NO_PAD.encode([0x00, 0x87, 0x65, 0x43, 0x21]), "AIdlQyE");
    }

    #[test]
    fn urls() {
        assert_eq!(renewal_info_url("https://ca.test/ari/", "a.b"), "https://ca.test/ari/a.b");
        assert_eq!(renewal_info_url("https://ca.test/ari", "a.b"), "https://ca.test/ari/a.b");
    }

    #[test]
    fn renewal_info_parsing() {
        let w = parse_renewal_info(
            br#"{"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00+00:00"},
                "explanationURL":"https://ca.test/why"}"#,
        )
        .expect("parses");
        assert_eq!(w.start, 1_735_790_400);
        assert_eq!(w.end, 1_735_876_800);
        assert_eq!(w.explanation_url.as_deref(), Some("https://ca.test/why"));
        let w = parse_renewal_info(
            br#"{"suggestedWindow":{"start":"2025-01-02T04:00:00.5Z","end":"2025-01-02T05:00:00Z"}}"#,
        )
        .expect("fraction");
        assert_eq!(w.explanation_url, None);
        let e = parse_renewal_info(
            br#"{"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}}"#,
        )
        .expect_err("inverted");
        assert!(e.contains("not after its start"), "{e}");
        assert!(parse_renewal_info(b"garbage").is_err());
        assert!(parse_renewal_info(br#"{"suggestedWindow":{"start":"yesterday","end":"today"}}"#).is_err());
    }

    #[test]
    fn retry_after() {
        let now = 1_735_790_400; // Thu, 02 Jan 2025 04:00:00 GMT
        assert_eq!(retry_after_seconds(None, now), DEFAULT_RETRY_AFTER);
        assert_eq!(retry_after_seconds(Some("3600"), now), 3600);
        assert_eq!(retry_after_seconds(Some("1"), now), MIN_RETRY_AFTER);
        assert_eq!(retry_after_seconds(Some("9999999"), now), MAX_RETRY_AFTER);
        assert_eq!(retry_after_seconds(Some("Thu, 02 Jan 2025 06:00:00 GMT"), now), 7200);
        assert_eq!(retry_after_seconds(Some("soon"), now), DEFAULT_RETRY_AFTER);
    }
}
