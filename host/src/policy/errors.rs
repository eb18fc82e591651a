//! Everything that can go wrong with a policy module. Every message names the module.

use crate::plan::PlanError;

/// An error loading or running a policy module.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy module {module}: cannot read it: {source}")]
    Read {
        module: String,
        #[source]
        source: std::io::Error,
    },
    #[error("policy module {module}: {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { module: String, size: u64, limit: usize },
    #[error("policy module {module}: not a valid WebAssembly component: {message}")]
    Invalid { module: String, message: String },
    #[error(
        "policy module {module}: imports `{import}`, which the contract does not offer (a policy may import only {allowed})"
    )]
    ForbiddenImport { module: String, import: String, allowed: String },
    #[error(
        "policy module {module}: does not export `checkallsslcerts:policy/rules` (it exports: {exports}); is it a checkallsslcerts policy?"
    )]
    NotAPolicy { module: String, exports: String },
    #[error(
        "policy module {module}: built for contract version {found}, which this host does not support (supported: {supported}); upgrade checkallsslcerts or rebuild the module"
    )]
    UnsupportedVersion { module: String, found: String, supported: String },
    #[error("policy module {module}: cannot be instantiated: {message}")]
    Instantiate { module: String, message: String },
    #[error(
        "policy module {module}: ran out of fuel ({fuel} units) in `{function}`: an endless loop, or far too much work for {services} services"
    )]
    OutOfFuel { module: String, function: &'static str, fuel: u64, services: usize },
    #[error("policy module {module}: exceeded its memory limit of {limit} bytes in `{function}`")]
    OutOfMemory { module: String, function: &'static str, limit: usize },
    #[error("policy module {module}: trapped in `{function}`: {message}")]
    Trap { module: String, function: &'static str, message: String },
    #[error("policy module {module}: refused the facts: {message}")]
    Refused { module: String, message: String },
    #[error("policy module {module}: returned an invalid plan: {source}")]
    InvalidPlan {
        module: String,
        #[source]
        source: PlanError,
    },
    #[error(
        "policy module {module}: its metadata says contract version {declared}, but it implements {actual}"
    )]
    MetadataMismatch { module: String, declared: String, actual: String },
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
}
