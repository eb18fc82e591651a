//! What can go wrong installing, rolling back or reading installed policy modules. Every
//! message names the file, URL or module it is about.

use std::path::PathBuf;

use crate::actions::errors::LockError;
use crate::exit;
use crate::policy::PolicyError;

/// The store under `<state-dir>/policy/` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a valid installed-policy record: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "{}: the stored module is damaged: its SHA-256 is {actual}, the record says {expected}",
        path.display()
    )]
    Damaged { path: PathBuf, expected: String, actual: String },
}

/// A module or signature could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{location}: only https:// URLs and local files are accepted (a policy module is never fetched over plain HTTP or other schemes)"
    )]
    Scheme { location: String },
    #[error("{what} {location}: {message}")]
    BadUrl { what: &'static str, location: String, message: String },
    #[error("{what} {location}: cannot read it: {source}")]
    Read {
        what: &'static str,
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {location}: not found")]
    NotFound { what: &'static str, location: String },
    #[error("{what} {location}: {} is larger than the limit of {limit} bytes; refused without reading it", size_text(*.size))]
    TooLarge { what: &'static str, location: String, size: Option<u64>, limit: u64 },
    #[error("{what} {location}: the server answered HTTP {status}")]
    Status { what: &'static str, location: String, status: u16 },
    #[error("{what} {location}: {message}")]
    Transport { what: &'static str, location: String, message: String },
    #[error("extra CA file {}: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    /// The HTTPS client could not be set up (e.g. a proxy variable that is not a proxy URL).
    #[error("cannot download over HTTPS: {0}")]
    Setup(String),
}

fn size_text(size: Option<u64>) -> String {
    match size {
        Some(size) => format!("its announced size of {size} bytes"),
        None => "its body".to_owned(),
    }
}

/// A signature was missing or did not prove the module comes from a trusted author.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("trusted key file {}: {message}", path.display())]
    KeyFile { path: PathBuf, message: String },
    #[error(
        "policy module {module}: no signature: {location} does not exist. Modules are installed only when signed by a trusted key; the author signs with `minisign -Sm MODULE.wasm` and ships MODULE.wasm.minisig beside it (or name the signature with --signature)"
    )]
    Missing { module: String, location: String },
    #[error("signature {location}: not a minisign signature: {message}")]
    Malformed { location: String, message: String },
    #[error(
        "signature {location}: a legacy minisign signature (made with -l); re-sign the module with a current minisign, without -l"
    )]
    Legacy { location: String },
    #[error(
        "signature {location}: made by the key with ID {key_id}, which is not a trusted key (trusted: {trusted}); add the author's public key to [policy] trusted-keys if you trust it"
    )]
    UnknownKey { location: String, key_id: String, trusted: String },
    #[error(
        "signature {location} does not verify with the trusted key {key_id}: policy module {module} is not the file that was signed (it was changed after signing, or the signature belongs to another file)"
    )]
    BadSignature { location: String, key_id: String, module: String },
    #[error(
        "signature {location}: its trusted comment does not verify with the trusted key {key_id}: the comment was altered after signing"
    )]
    TrustedComment { location: String, key_id: String },
}

/// `policy install` or `policy rollback` refused or failed. Nothing was activated.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Bad usage or configuration (exit code 2).
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(
        "policy module {module}: refused: it fails the contract conformance suite ({suite}, vector {vector}): {failures}. Run `checkallsslcerts policy test {module} --suite contract` for the full report"
    )]
    Conformance { module: String, suite: String, vector: String, failures: String },
    #[error("{0}")]
    Suites(String),
    #[error("installed policy store: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot prepare the state directory: {0}")]
    StateDir(String),
    #[error(
        "nothing to roll back: no policy module was ever installed here (see `checkallsslcerts policy install`)"
    )]
    NothingInstalled,
}

impl InstallError {
    /// The exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            InstallError::Usage(_) => exit::USAGE,
            InstallError::Signature(SignatureError::KeyFile { .. }) => exit::USAGE,
            InstallError::Lock(LockError::Busy { .. }) => exit::LOCKED,
            _ => exit::ERRORS,
        }
    }
}
