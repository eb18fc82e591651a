//! Revocation: asks the CA whether a certificate is revoked — OCSP (RFC 6960) where the
//! certificate names a responder, its CRL (RFC 5280) where it names a distribution point.
//!
//! Only a trustworthy answer is a fact: an OCSP response must be signed by the issuer (or by a
//! responder the issuer delegated to) and be fresh (`thisUpdate`/`nextUpdate`, five minutes of
//! clock skew allowed); a CRL must be issued and signed by the issuer and not be out of date.
//! Anything else — a responder that is down, garbage, a bad signature, a stale answer, an
//! answer too large — is [`Revocation::Unknown`] with the reason, never `Revoked`.
//!
//! OCSP is asked first (Let's Encrypt stopped OCSP in 2025, others still run it); if it gives no
//! answer, the CRL decides. Many services are checked concurrently; a CRL is downloaded once per
//! URL per run (concurrent askers wait for the one download) and cached in
//! `<state-dir>/cache/crl/` until its `nextUpdate` (written atomically, never in a dry run).
//!
//! CRLs kept on the host (`[network] crl-files`, `crl-dir`) are checked with the same functions
//! ([`verify_crl`], [`crl_status`]) by [`super::local_crl`], which also says how the answers combine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use openssl::hash::MessageDigest;
use openssl::ocsp::{
    OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus, OcspRevokedStatus,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{CrlStatus, ReasonCode, X509, X509Crl, X509CrlRef, X509Ref, X509VerifyResult};
use tokio::sync::OnceCell;

use super::certificate::{openssl_reason, unix_time};
use super::model::{Revocation, RevokedDetails, Timestamp};
use super::network::Http;
use super::read::{ReadError, read_bounded};

/// The largest CRL downloaded or read from the cache, in bytes ([`crate::fs::limits::CRL_FILE`]).
pub const MAX_CRL_BYTES: usize = crate::fs::limits::CRL_FILE as usize;
/// The largest OCSP response accepted, in bytes.
pub const MAX_OCSP_BYTES: usize = 64 * 1024;
/// The clock skew allowed when checking `thisUpdate`/`nextUpdate`, in seconds.
pub const SKEW: i64 = 300;

/// The http(s) URLs of the certificate's OCSP responders (authorityInfoAccess).
pub fn ocsp_urls(cert: &X509Ref) -> Vec<String> {
    cert.ocsp_responders()
        .map(|stack| stack.iter().map(|s| s.to_string()).filter(|u| is_http(u)).collect())
        .unwrap_or_default()
}

/// The http(s) URLs of the certificate's CRL distribution points (LDAP and others are skipped).
pub fn crl_urls(cert: &X509Ref) -> Vec<String> {
    let Some(points) = cert.crl_distribution_points() else {
        return Vec::new();
    };
    let mut urls = Vec::new();
    for point in &points {
        let names = point.distpoint().and_then(|name| name.fullname());
        for name in names.into_iter().flatten() {
            if let Some(uri) = name.uri().filter(|u| is_http(u))
                && !urls.iter().any(|u| u == uri)
            {
                urls.push(uri.to_owned());
            }
        }
    }
    urls
}

fn is_http(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// The name RFC 5280 gives a CRL reason code.
pub fn reason_name(code: i64) -> &'static str {
    match code {
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unspecified",
    }
}

/// The DER of an OCSP request for `leaf` (a SHA-1 CertID, as every responder understands).
pub fn ocsp_request(leaf: &X509Ref, issuer: &X509Ref) -> Result<Vec<u8>, String> {
    let build = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let id = OcspCertId::from_cert(MessageDigest::sha1(), leaf, issuer)?;
        let mut request = OcspRequest::new()?;
        request.add_id(id)?;
        request.to_der()
    };
    build().map_err(|e| format!("cannot build the OCSP request ({})", openssl_reason(&e)))
}

/// Checks an OCSP response for `leaf`: well-formed, successful, signed by the issuer or a
/// responder it delegated to, about this certificate, and fresh at `now`. The answer is `Good`
/// or `Revoked`; everything else is an error message.
pub fn ocsp_status(der: &[u8], leaf: &X509Ref, issuer: &X509, now: Timestamp) -> Result<Revocation, String> {
    let response = OcspResponse::from_der(der)
        .map_err(|e| format!("the answer is not an OCSP response ({})", openssl_reason(&e)))?;
    let status = response.status();
    if status != OcspResponseStatus::SUCCESSFUL {
        return Err(format!("the responder answered {}", response_status_name(status)));
    }
    let basic = response
        .basic()
        .map_err(|e| format!("the OCSP response has no basic response ({})", openssl_reason(&e)))?;
    verify_signature(&basic, issuer)?;
    let id = OcspCertId::from_cert(MessageDigest::sha1(), leaf, issuer)
        .map_err(|e| format!("cannot build the OCSP CertID ({})", openssl_reason(&e)))?;
    let single = basic.find_status(&id).ok_or("the OCSP response is about another certificate")?;
    let this_update = generalized_time(&single.this_update.to_string());
    let next_update = single.next_update().and_then(|t| generalized_time(&t.to_string()));
    if let Some(this) = this_update
        && this > now + SKEW
    {
        return Err(format!("the OCSP response is not valid yet (thisUpdate {this})"));
    }
    if let Some(next) = next_update
        && next < now - SKEW
    {
        return Err(format!("the OCSP response is out of date (nextUpdate {next})"));
    }
    // OpenSSL's own check as well (it also rejects malformed times).
    single
        .check_validity(SKEW as u32, None)
        .map_err(|e| format!("the OCSP response is not fresh ({})", openssl_reason(&e)))?;
    match single.status {
        s if s == OcspCertStatus::GOOD => Ok(Revocation::Good),
        s if s == OcspCertStatus::REVOKED => {
            let revoked_at =
                single.revocation_time.and_then(|t| generalized_time(&t.to_string())).unwrap_or(0);
            let reason = if single.reason == OcspRevokedStatus::NO_STATUS {
                "unspecified"
            } else {
                reason_name(i64::from(single.reason.as_raw()))
            };
            Ok(Revocation::Revoked(RevokedDetails { revoked_at, reason: reason.to_owned() }))
        }
        _ => Err("the responder does not know the certificate (status unknown)".to_owned()),
    }
}

/// The response must be signed by the issuer itself, or by a responder certificate in the
/// response that the issuer issued for OCSP signing (RFC 6960 §4.2.2.2).
fn verify_signature(basic: &openssl::ocsp::OcspBasicResponseRef, issuer: &X509) -> Result<(), String> {
    let setup = || -> Result<_, openssl::error::ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(issuer.clone())?;
        // The issuer is usually an intermediate: it is the trust anchor here.
        store.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        let mut certs = Stack::new()?;
        certs.push(issuer.clone())?;
        Ok((store.build(), certs))
    };
    let (store, certs) =
        setup().map_err(|e| format!("cannot set up OCSP verification ({})", openssl_reason(&e)))?;
    basic.verify(&certs, &store, OcspFlag::TRUST_OTHER | OcspFlag::NO_EXPLICIT).map_err(|e| {
        format!("the OCSP response's signature does not verify against the issuer ({})", openssl_reason(&e))
    })
}

fn response_status_name(status: OcspResponseStatus) -> String {
    let name = match status {
        s if s == OcspResponseStatus::MALFORMED_REQUEST => "malformedRequest",
        s if s == OcspResponseStatus::INTERNAL_ERROR => "internalError",
        s if s == OcspResponseStatus::TRY_LATER => "tryLater",
        s if s == OcspResponseStatus::SIG_REQUIRED => "sigRequired",
        s if s == OcspResponseStatus::UNAUTHORIZED => "unauthorized",
        other => return format!("status {}", other.as_raw()),
    };
    name.to_owned()
}

/// Unix seconds from OpenSSL's printed GeneralizedTime, e.g. "Jan  2 03:04:05 2025 GMT"
/// (fractional seconds allowed).
pub fn generalized_time(printed: &str) -> Option<Timestamp> {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let parts: Vec<&str> = printed.split_whitespace().collect();
    let [month, day, time, year, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let mut hms = time.split('.').next()?.split(':').map(|n| n.parse::<u32>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let date = chrono::NaiveDate::from_ymd_opt(year.parse().ok()?, month, day.parse().ok()?)?;
    Some(date.and_hms_opt(h, m, s)?.and_utc().timestamp())
}

/// Parses a downloaded CRL, DER (as RFC 5280 requires) or PEM.
pub fn parse_crl(bytes: &[u8]) -> Result<X509Crl, String> {
    X509Crl::from_der(bytes)
        .or_else(|e| if bytes.starts_with(b"-----BEGIN") { X509Crl::from_pem(bytes) } else { Err(e) })
        .map_err(|e| format!("the answer is not a CRL ({})", openssl_reason(&e)))
}

/// Checks that the CRL was issued and signed by `issuer`, the issuer of `leaf`.
pub fn verify_crl(crl: &X509CrlRef, leaf: &X509Ref, issuer: &X509Ref) -> Result<(), String> {
    let same_issuer = crl.issuer_name().try_cmp(leaf.issuer_name()).is_ok_and(|o| o.is_eq());
    if !same_issuer {
        return Err("the CRL was issued by another CA than the certificate".to_owned());
    }
    let key =
        issuer.public_key().map_err(|e| format!("the issuer's key is unusable ({})", openssl_reason(&e)))?;
    match crl.verify(&key) {
        Ok(true) => Ok(()),
        Ok(false) => Err("the CRL's signature does not verify with the issuer's key".to_owned()),
        Err(e) => Err(format!("the CRL's signature cannot be checked ({})", openssl_reason(&e))),
    }
}

/// The CRL's `nextUpdate` (Unix seconds), if it has one.
pub fn crl_next_update(crl: &X509CrlRef) -> Option<Timestamp> {
    crl.next_update().and_then(unix_time)
}

/// What a verified CRL says about `leaf` at `now`: it must be current (its `thisUpdate` not in
/// the future, its `nextUpdate` not in the past, with [`SKEW`]).
pub fn crl_status(crl: &X509CrlRef, leaf: &X509Ref, now: Timestamp) -> Result<Revocation, String> {
    if let Some(this) = unix_time(crl.last_update())
        && this > now + SKEW
    {
        return Err(format!("the CRL is not valid yet (thisUpdate {this})"));
    }
    if let Some(next) = crl_next_update(crl)
        && next < now - SKEW
    {
        return Err(format!("the CRL is out of date (nextUpdate {next})"));
    }
    match crl.get_by_serial(leaf.serial_number()) {
        CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => Ok(Revocation::Good),
        CrlStatus::Revoked(entry) => {
            let code = entry
                .extension::<ReasonCode>()
                .ok()
                .flatten()
                .and_then(|(_, code)| code.get_i64().ok())
                .unwrap_or(0);
            Ok(Revocation::Revoked(RevokedDetails {
                revoked_at: unix_time(entry.revocation_date()).unwrap_or(0),
                reason: reason_name(code).to_owned(),
            }))
        }
    }
}

/// Whether `issuer` issued `leaf`: names and key identifiers match and its key verifies the
/// leaf's signature.
pub fn is_issuer_of(issuer: &X509Ref, leaf: &X509Ref) -> bool {
    issuer.issued(leaf) == X509VerifyResult::OK
        && issuer.public_key().ok().is_some_and(|key| leaf.verify(&key).unwrap_or(false))
}

/// One certificate to check.
pub struct Subject {
    /// The certificate.
    pub leaf: X509,
    /// Its issuer, or why it was not found.
    pub issuer: Result<X509, String>,
}

/// A CRL download shared by every asker in a run.
type CrlSlot = Arc<OnceCell<Result<Arc<X509Crl>, String>>>;

/// Checks revocation for many certificates in one run: one CRL download per URL, a bounded
/// number of requests at a time.
pub struct Checker {
    http: Arc<Http>,
    now: Timestamp,
    /// `<state-dir>/cache/crl`.
    cache_dir: PathBuf,
    /// False in a dry run: the cache is read but never written.
    write_cache: bool,
    /// One slot per CRL URL: the first asker downloads, the others wait for it.
    crls: Mutex<HashMap<String, CrlSlot>>,
    notices: Mutex<Vec<String>>,
}

impl Checker {
    /// A checker that caches CRLs in `cache_dir` (written only when `write_cache`).
    pub fn new(http: Arc<Http>, now: Timestamp, cache_dir: PathBuf, write_cache: bool) -> Checker {
        Checker {
            http,
            now,
            cache_dir,
            write_cache,
            crls: Mutex::new(HashMap::new()),
            notices: Mutex::new(Vec::new()),
        }
    }

    /// Warnings about the checking itself (e.g. the cache could not be written).
    pub fn take_notices(&self) -> Vec<String> {
        self.notices.lock().map(|mut n| std::mem::take(&mut *n)).unwrap_or_default()
    }

    /// The certificate's revocation status: OCSP first, then the CRL. `NotChecked` when the
    /// certificate names neither; `Unknown` when no source gave a trustworthy answer.
    pub async fn check(&self, subject: &Subject) -> Revocation {
        let ocsp = ocsp_urls(&subject.leaf);
        let crls = crl_urls(&subject.leaf);
        if ocsp.is_empty() && crls.is_empty() {
            return Revocation::NotChecked;
        }
        let issuer = match &subject.issuer {
            Ok(issuer) => issuer,
            Err(why) => return Revocation::Unknown(why.clone()),
        };
        let mut problems = Vec::new();
        for url in &ocsp {
            match self.ask_ocsp(url, &subject.leaf, issuer).await {
                Ok(answer) => return answer,
                Err(e) => problems.push(format!("OCSP {url}: {e}")),
            }
        }
        for url in &crls {
            match self.crl(url, &subject.leaf, issuer).await {
                Ok(crl) => match crl_status(&crl, &subject.leaf, self.now) {
                    Ok(answer) => return answer,
                    Err(e) => problems.push(format!("CRL {url}: {e}")),
                },
                Err(e) => problems.push(format!("CRL {url}: {e}")),
            }
        }
        Revocation::Unknown(problems.join("; "))
    }

    async fn ask_ocsp(&self, url: &str, leaf: &X509, issuer: &X509) -> Result<Revocation, String> {
        let request = ocsp_request(leaf, issuer)?;
        let answer = self.http.post(url, "application/ocsp-request", request, MAX_OCSP_BYTES).await?;
        if answer.status != 200 {
            return Err(format!("HTTP status {}", answer.status));
        }
        ocsp_status(&answer.body, leaf, issuer, self.now)
    }

    /// The CRL at `url`, verified for `leaf`: from the cache while current, else downloaded once
    /// for every asker in this run.
    async fn crl(&self, url: &str, leaf: &X509, issuer: &X509) -> Result<Arc<X509Crl>, String> {
        let cell = {
            let mut map = self.crls.lock().map_err(|_| "internal error: CRL table poisoned".to_owned())?;
            map.entry(url.to_owned()).or_default().clone()
        };
        let crl = cell.get_or_init(|| self.load_crl(url, leaf, issuer)).await.clone()?;
        // Another asker's issuer may have been used to load it: check it for this one.
        verify_crl(&crl, leaf, issuer)?;
        Ok(crl)
    }

    async fn load_crl(&self, url: &str, leaf: &X509, issuer: &X509) -> Result<Arc<X509Crl>, String> {
        let path = self.cache_path(url);
        if let Some(crl) = self.cached(&path, leaf, issuer) {
            return Ok(Arc::new(crl));
        }
        let answer = self.http.get(url, MAX_CRL_BYTES).await?;
        if answer.status != 200 {
            return Err(format!("HTTP status {}", answer.status));
        }
        let crl = parse_crl(&answer.body)?;
        verify_crl(&crl, leaf, issuer)?;
        if self.write_cache
            && crl_next_update(&crl).is_some_and(|next| next > self.now)
            && let Err(e) = write_cache_file(&path, &answer.body)
        {
            self.notice(format!("cannot cache the CRL from {url} in {}: {e}", path.display()));
        }
        Ok(Arc::new(crl))
    }

    /// A cached CRL that is still current and verifies for this issuer.
    fn cached(&self, path: &Path, leaf: &X509, issuer: &X509) -> Option<X509Crl> {
        let bytes = match read_bounded(path, MAX_CRL_BYTES as u64) {
            Ok(bytes) => bytes,
            Err(ReadError::Missing(_)) => return None,
            Err(ReadError::Unreadable(why)) => {
                self.notice(format!("the cached CRL {why}; downloading it again"));
                return None;
            }
        };
        let crl = parse_crl(&bytes).ok()?;
        let current = crl_next_update(&crl).is_some_and(|next| next > self.now);
        (current && verify_crl(&crl, leaf, issuer).is_ok()).then_some(crl)
    }

    fn cache_path(&self, url: &str) -> PathBuf {
        self.cache_dir.join(format!("{}.crl", hex::encode(openssl::sha::sha256(url.as_bytes()))))
    }

    fn notice(&self, message: String) {
        if let Ok(mut notices) = self.notices.lock() {
            notices.push(message);
        }
    }
}

/// Keeps a cache file: its directory created private (0700) if needed, then the bytes written
/// atomically and link-safely, 0600 ([`crate::fs::write_atomic`]).
pub fn write_cache_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no parent directory"))?;
    crate::fs::create_private_dir(dir, false)?;
    crate::fs::write_atomic(path, bytes, 0o600)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::testpki::{Issued, Pki, Spec, crl};

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn generalized_time_parses_openssls_print() {
        assert_eq!(generalized_time("Jan  1 00:00:00 1970 GMT"), Some(0));
        assert_eq!(generalized_time("Jun 15 15:06:40 2025 GMT"), Some(1_750_000_000));
        assert_eq!(generalized_time("Jun 15 15:06:40.25 2025 GMT"), Some(1_750_000_000));
        assert_eq!(generalized_time("garbage"), None);
        assert_eq!(generalized_time("Foo 15 15:06:40 2025 GMT"), None);
    }

    #[test]
    fn reason_names() {
        assert_eq!(reason_name(1), "keyCompromise");
        assert_eq!(reason_name(0), "unspecified");
        assert_eq!(reason_name(7), "unspecified");
        assert_eq!(reason_name(6), "certificateHold");
    }

    fn leaf(pki: &Pki, name: &str, serial: u64) -> Issued {
        let mut spec = Spec::leaf(name, &[name]);
        spec.serial = serial;
        pki.leaf(&spec)
    }

    #[test]
    fn crl_good_revoked_stale_and_forged() {
        let pki = Pki::new("Test CA");
        let ca = &pki.intermediate;
        let good = leaf(&pki, "good.example.com", 10);
        let bad = leaf(&pki, "bad.example.com", 11);
        let list = crl(ca, &[&bad.cert], NOW - 3600, NOW + 3600, None);
        let parsed = parse_crl(&list.to_der().expect("der")).expect("parses");
        verify_crl(&parsed, &good.cert, &ca.cert).expect("verifies");
        assert_eq!(crl_status(&parsed, &good.cert, NOW), Ok(Revocation::Good));
        let Ok(Revocation::Revoked(details)) = crl_status(&parsed, &bad.cert, NOW) else {
            panic!("revoked expected")
        };
        assert_eq!(details.revoked_at, NOW - 3660);
        assert_eq!(details.reason, "unspecified");
        assert_eq!(crl_next_update(&parsed), Some(NOW + 3600));
        // PEM works too.
        assert!(parse_crl(&list.to_pem().expect("pem")).is_ok());
        // Out of date, not yet valid (beyond the allowed skew).
        let stale = crl(ca, &[], NOW - 7200, NOW - SKEW - 1, None);
        assert!(crl_status(&stale, &good.cert, NOW).expect_err("stale").contains("out of date"));
        let future = crl(ca, &[], NOW + SKEW + 1, NOW + 7200, None);
        assert!(crl_status(&future, &good.cert, NOW).expect_err("future").contains("not valid yet"));
        // Within the skew: accepted.
        let skewed = crl(ca, &[], NOW + SKEW, NOW + 7200, None);
        assert_eq!(crl_status(&skewed, &good.cert, NOW), Ok(Revocation::Good));
        // The issuer's name, another key: refused.
        let impostor = Issued { cert: ca.cert.clone(), key: crate::facts::testpki::ec_key() };
        let forged = crl(ca, &[&good.cert], NOW - 3600, NOW + 3600, Some(&impostor));
        assert!(verify_crl(&forged, &good.cert, &ca.cert).expect_err("forged").contains("signature"));
        // Issued by another CA.
        let stranger = Pki::new("Other CA");
        let theirs = crl(&stranger.intermediate, &[], NOW - 3600, NOW + 3600, None);
        assert!(verify_crl(&theirs, &good.cert, &ca.cert).expect_err("other CA").contains("another CA"));
        // Garbage.
        assert!(parse_crl(b"<html>not found</html>").err().is_some_and(|e| e.contains("not a CRL")));
    }

    #[test]
    fn urls_and_issuer() {
        let pki = Pki::new("Test CA");
        let leaf = leaf(&pki, "a.example.com", 12);
        assert!(ocsp_urls(&leaf.cert).is_empty());
        assert!(crl_urls(&leaf.cert).is_empty());
        assert!(is_issuer_of(&pki.intermediate.cert, &leaf.cert));
        assert!(!is_issuer_of(&pki.root.cert, &leaf.cert));
        let other = Pki::new("Test CA");
        assert!(!is_issuer_of(&other.intermediate.cert, &leaf.cert), "same name, other key");
    }

    #[test]
    fn garbage_ocsp_answers_are_errors() {
        let pki = Pki::new("Test CA");
        let leaf = leaf(&pki, "a.example.com", 13);
        let issuer = &pki.intermediate.cert;
        let e = ocsp_status(b"garbage", &leaf.cert, issuer, NOW).expect_err("garbage");
        assert!(e.contains("not an OCSP response"), "{e}");
        // A well-formed "tryLater" (OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED 3 }).
        let e = ocsp_status(&[0x30, 0x03, 0x0a, 0x01, 0x03], &leaf.cert, issuer, NOW).expect_err("try");
        assert!(e.contains("tryLater"), "{e}");
        assert!(!ocsp_request(&leaf.cert, issuer).expect("request").is_empty());
    }

    #[test]
    fn atomic_write_creates_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cache/crl/x.crl");
        write_cache_file(&path, b"one").expect("write");
        write_cache_file(&path, b"two").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let entries = std::fs::read_dir(path.parent().expect("dir")).expect("list").count();
        assert_eq!(entries, 1, "no temporary file left");
    }
}
