//! What can stop the facts step from verifying chains. Nothing stops it from gathering facts:
//! every per-service problem is a fact.

use std::path::PathBuf;

/// The trust store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// A `[trust] extra-roots` file is missing, unreadable or holds no certificate.
    #[error("extra trusted roots {}: {reason}", .path.display())]
    ExtraRoots {
        /// The file.
        path: PathBuf,
        /// Why, for the admin.
        reason: String,
    },
    /// The system trust store could not be loaded.
    #[error("the system trust store ({dir}) could not be loaded: {reason}", dir = openssl::version::dir())]
    SystemRoots {
        /// Why.
        reason: String,
    },
    /// OpenSSL failed (out of memory...).
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}
