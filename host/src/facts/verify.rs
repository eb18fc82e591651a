//! Chain verification and the hostname check, with OpenSSL.
//!
//! Performance (see shared/notes/performance.md): the trusted roots are decoded once in
//! [`Verifier::new`]; the `X509_STORE` for a verification time is built once and shared by every
//! thread; an intermediate shared by many certificates (every Let's Encrypt leaf has one of a
//! handful) is decoded once and kept by its SHA-256. The [`Verifier`] is `Sync`: the services
//! are checked on all cores with rayon.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use openssl::error::ErrorStack;
use openssl::stack::Stack;
use openssl::x509::store::{X509Lookup, X509Store, X509StoreBuilder};
use openssl::x509::verify::{X509CheckFlags, X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509, X509NameRef, X509PurposeId, X509Ref, X509StoreContext, X509VerifyResult};

use super::certificate::{chain_from_blocks, openssl_reason};
use super::errors::FactsError;
use super::model::ChainStatus;
use super::pem;
use super::read::{ReadError, read_bounded};
use crate::config::TrustConfig;

/// The largest extra-roots file read, in bytes (a whole CA bundle is about 250 KB).
pub const MAX_TRUST_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// How many distinct intermediates are kept decoded.
const MAX_CACHED_INTERMEDIATES: usize = 4096;

/// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT`
const ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
/// `X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY`
const ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;

/// Verifies chains against the configured trust (system store and extra roots).
pub struct Verifier {
    /// `None` when the trust could not be loaded: every chain is then `NotChecked`.
    trust: Option<Trust>,
    /// The store for the last verification time asked for.
    store: Mutex<Option<(i64, Arc<X509Store>)>>,
    /// Decoded intermediates by the SHA-256 of their DER.
    intermediates: RwLock<HashMap<[u8; 32], X509>>,
    notices: Vec<String>,
}

struct Trust {
    /// Every trusted certificate, decoded.
    roots: Vec<X509>,
    /// Hashed certificate directories looked up lazily (the system store's `certs/`).
    hash_dirs: Vec<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("roots", &self.trust.as_ref().map(|t| t.roots.len()))
            .field("hash_dirs", &self.trust.as_ref().map(|t| &t.hash_dirs))
            .field("notices", &self.notices)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Loads the trusted roots: the system trust store (when `system_roots`; OpenSSL's default
    /// locations, honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`) and every `extra_roots` file.
    /// Fails if an extra-roots file cannot be read or holds no certificate.
    pub fn new(trust: &TrustConfig) -> Result<Verifier, FactsError> {
        let mut roots = Vec::new();
        let mut hash_dirs = Vec::new();
        let mut notices = Vec::new();
        if trust.system_roots {
            let mut builder = X509StoreBuilder::new()?;
            builder
                .set_default_paths()
                .map_err(|e| FactsError::SystemRoots { reason: openssl_reason(&e) })?;
            roots.extend(builder.build().all_certificates());
            hash_dirs = system_hash_dirs();
            if roots.is_empty() && hash_dirs.is_empty() {
                notices.push(format!(
                    "The system trust store ({}) holds no certificates: chains can only be verified \
                     against [trust] extra-roots.",
                    openssl::version::dir()
                ));
            }
        }
        for path in &trust.extra_roots {
            roots.extend(load_extra_roots(path)?);
        }
        Ok(Verifier {
            trust: Some(Trust { roots, hash_dirs }),
            store: Mutex::new(None),
            intermediates: RwLock::new(HashMap::new()),
            notices,
        })
    }

    /// A verifier that verifies nothing: every chain is `NotChecked` (used when the trust store
    /// cannot be loaded, so that no certificate is called untrusted for the wrong reason).
    pub fn not_checking(reason: &str) -> Verifier {
        Verifier {
            trust: None,
            store: Mutex::new(None),
            intermediates: RwLock::new(HashMap::new()),
            notices: vec![format!("Certificate chains were not verified: {reason}")],
        }
    }

    /// Messages for the admin about the trust store (e.g. an empty system store).
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// How many trusted certificates were loaded (not counting lazily looked-up directories).
    pub fn root_count(&self) -> usize {
        self.trust.as_ref().map_or(0, |t| t.roots.len())
    }

    /// Decodes a DER certificate that is not a leaf (an intermediate), once per distinct DER.
    pub fn intermediate(&self, der: &[u8]) -> Result<X509, ErrorStack> {
        let digest = openssl::sha::sha256(der);
        if let Some(cert) = self.intermediates.read().ok().and_then(|m| m.get(&digest).cloned()) {
            return Ok(cert);
        }
        let cert = X509::from_der(der)?;
        if let Ok(mut map) = self.intermediates.write()
            && map.len() < MAX_CACHED_INTERMEDIATES
        {
            map.insert(digest, cert.clone());
        }
        Ok(cert)
    }

    /// How many distinct intermediates have been decoded and kept.
    pub fn cached_intermediates(&self) -> usize {
        self.intermediates.read().map_or(0, |m| m.len())
    }

    /// Verifies `leaf` at time `now` against the trusted roots, with `chain` as untrusted
    /// intermediates, for use as a TLS server certificate.
    ///
    /// "unable to get local issuer certificate" for the leaf itself (its issuer is neither in
    /// the files nor trusted), or anywhere when the files hold no intermediate, is
    /// `Incomplete`; every other failure (expired, self-signed, unknown root...) is
    /// `Untrusted`, with OpenSSL's message and, above the leaf, the certificate concerned.
    pub fn verify(&self, leaf: &X509Ref, chain: &[X509], now: i64) -> ChainStatus {
        let Some(trust) = &self.trust else {
            return ChainStatus::NotChecked;
        };
        match self.run_verify(trust, leaf, chain, now) {
            Ok(None) => ChainStatus::Trusted,
            Ok(Some(failure)) => failure.into_status(chain.is_empty()),
            Err(_) => ChainStatus::NotChecked,
        }
    }

    fn run_verify(
        &self,
        trust: &Trust,
        leaf: &X509Ref,
        chain: &[X509],
        now: i64,
    ) -> Result<Option<Failure>, ErrorStack> {
        let store = self.store_at(trust, now)?;
        let mut untrusted = Stack::new()?;
        for cert in chain {
            untrusted.push(cert.clone())?;
        }
        let mut context = X509StoreContext::new()?;
        context.init(&store, leaf, &untrusted, |ctx| {
            if ctx.verify_cert()? {
                return Ok(None);
            }
            let depth = ctx.error_depth();
            let at = ctx.current_cert().map(|c| (name_text(c.subject_name()), name_text(c.issuer_name())));
            Ok(Some(Failure { error: ctx.error(), depth, at }))
        })
    }

    /// The store for verification time `now`, built once per distinct time (a run has one).
    fn store_at(&self, trust: &Trust, now: i64) -> Result<Arc<X509Store>, ErrorStack> {
        let mut cached = self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((time, store)) = cached.as_ref()
            && *time == now
        {
            return Ok(Arc::clone(store));
        }
        let mut builder = X509StoreBuilder::new()?;
        for root in &trust.roots {
            // A certificate listed twice (system store and extra roots) is not an error.
            let _ = builder.add_cert(root.clone());
        }
        if !trust.hash_dirs.is_empty() {
            let lookup = builder.add_lookup(X509Lookup::hash_dir())?;
            for dir in &trust.hash_dirs {
                lookup.add_dir(dir, openssl::ssl::SslFiletype::PEM)?;
            }
        }
        let mut param = X509VerifyParam::new()?;
        param.set_time(now);
        // An extra root may be an intermediate the admin chose to trust.
        param.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        param.set_purpose(X509PurposeId::SSL_SERVER)?;
        builder.set_param(&param)?;
        let store = Arc::new(builder.build());
        *cached = Some((now, Arc::clone(&store)));
        Ok(store)
    }
}

struct Failure {
    error: X509VerifyResult,
    depth: u32,
    /// Subject and issuer of the certificate concerned.
    at: Option<(String, String)>,
}

impl Failure {
    fn into_status(self, no_intermediates: bool) -> ChainStatus {
        let message = self.error.error_string();
        let code = self.error.as_raw();
        let missing_issuer =
            code == ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || code == ERR_UNABLE_TO_GET_ISSUER_CERT;
        if missing_issuer && (no_intermediates || self.depth == 0) {
            let detail = match &self.at {
                Some((_, issuer)) => format!(
                    "{message}: the issuer \"{issuer}\" is neither in the certificate files nor a trusted root (missing intermediate?)"
                ),
                None => message.to_owned(),
            };
            return ChainStatus::Incomplete(detail);
        }
        match (&self.at, self.depth) {
            (Some((subject, _)), depth) if depth > 0 => {
                ChainStatus::Untrusted(format!("{message} (chain certificate \"{subject}\", depth {depth})"))
            }
            _ => ChainStatus::Untrusted(message.to_owned()),
        }
    }
}

/// `CN=..., O=...` (RFC 2253 order reversed, as `openssl x509 -subject -nameopt oneline` reads).
fn name_text(name: &X509NameRef) -> String {
    let parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect();
    parts.join(", ")
}

/// Whether the certificate covers `hostname`, by OpenSSL's host check (`X509_check_host` via
/// the verify parameters): subjectAltName DNS names only (never the subject CN), a wildcard only
/// as a whole leftmost label and matching exactly one label. An IP address is matched against
/// the IP SANs. One trailing dot is ignored.
pub fn covers_hostname(cert: &X509Ref, hostname: &str) -> bool {
    let name = hostname.strip_suffix('.').unwrap_or(hostname);
    if name.is_empty() {
        return false;
    }
    host_check(cert, name).unwrap_or(false)
}

/// Runs only the identity check: the certificate is its own trust anchor (partial chain), and
/// time, critical extensions and purpose are not checked, so the result is the host match alone.
fn host_check(cert: &X509Ref, name: &str) -> Result<bool, ErrorStack> {
    let mut builder = X509StoreBuilder::new()?;
    builder.add_cert(cert.to_owned())?;
    let mut param = X509VerifyParam::new()?;
    param.set_flags(
        X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::NO_CHECK_TIME | X509VerifyFlags::IGNORE_CRITICAL,
    )?;
    param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS | X509CheckFlags::NEVER_CHECK_SUBJECT);
    match name.parse::<IpAddr>() {
        Ok(ip) => param.set_ip(ip)?,
        Err(_) => param.set_host(name)?,
    }
    builder.set_param(&param)?;
    let store = builder.build();
    let empty = Stack::new()?;
    let mut context = X509StoreContext::new()?;
    context.init(&store, cert, &empty, |ctx| ctx.verify_cert())
}

/// The system's hashed certificate directories: `$SSL_CERT_DIR` (colon-separated), else
/// OpenSSL's `OPENSSLDIR/certs`; only those that exist.
fn system_hash_dirs() -> Vec<String> {
    let dirs: Vec<String> = match std::env::var("SSL_CERT_DIR") {
        Ok(list) if !list.is_empty() => {
            list.split(':').filter(|d| !d.is_empty()).map(str::to_owned).collect()
        }
        _ => openssl_dir().map(|d| vec![format!("{d}/certs")]).unwrap_or_default(),
    };
    dirs.into_iter().filter(|d| Path::new(d).is_dir()).collect()
}

/// `OPENSSLDIR`, from `OPENSSLDIR: "/usr/lib/ssl"`.
fn openssl_dir() -> Option<String> {
    let text = openssl::version::dir();
    let start = text.find('"')? + 1;
    let end = text.rfind('"')?;
    (end > start).then(|| text[start..end].to_owned())
}

fn load_extra_roots(path: &Path) -> Result<Vec<X509>, FactsError> {
    let error = |reason: String| FactsError::ExtraRoots { path: path.to_owned(), reason };
    let bytes = read_bounded(path, MAX_TRUST_FILE_SIZE).map_err(|e| match e {
        ReadError::Missing(_) => error("no such file".to_owned()),
        ReadError::Unreadable(message) => error(strip_path(&message, path)),
    })?;
    let blocks = pem::scan(&bytes).map_err(|e| error(e.to_string()))?;
    let roots = chain_from_blocks(&blocks, &|der| X509::from_der(der)).map_err(error)?;
    if roots.is_empty() {
        return Err(error("holds no certificate".to_owned()));
    }
    Ok(roots)
}

/// A read error's message without its leading `PATH: `.
fn strip_path(message: &str, path: &Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_owned()
}
