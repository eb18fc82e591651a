//! `policy install` and `policy rollback`.
//!
//! Install, in this order, stopping at the first problem with nothing changed:
//! 1. the trusted keys (a module is installed unsigned only with `--allow-unsigned`, and only
//!    while no key is configured);
//! 2. fetch the module and its signature (bounded, see [`super::fetch`]);
//! 3. verify the signature;
//! 4. load the module: a valid component, a supported contract version, only the contract's
//!    imports, metadata that claims the version it implements;
//! 5. run the built-in `contract` conformance suite of that version against it;
//! 6. under the run lock: store the bytes, then switch `active.json` (the old active module
//!    becomes `previous`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::errors::{FetchError, InstallError, SignatureError};
use super::fetch::{Fetcher, Location};
use super::signature::{self, MAX_SIGNATURE_BYTES, Verified};
use super::{ActiveState, Installed, Store};
use crate::actions::lock::{self, RunLock};
use crate::config::Config;
use crate::conformance::{self, Suite};
use crate::policy::{PolicyModule, PolicySource, Runtime};

/// What `policy install` was asked to do.
#[derive(Debug, Clone)]
pub struct InstallRequest<'a> {
    /// A file path or an `https://` URL.
    pub source: &'a str,
    /// The signature's file or URL; default: the module's with `.minisig` appended.
    pub signature: Option<&'a str>,
    /// Install without a signature (refused while trusted keys are configured).
    pub allow_unsigned: bool,
    /// Extra CA certificates (PEM) to trust for HTTPS.
    pub ca_file: Option<&'a Path>,
    /// Bound on each download.
    pub timeout: Duration,
    /// How long to wait for a running `checkallsslcerts` to release the lock.
    pub lock_wait: Duration,
}

/// What `policy install` did.
#[derive(Debug, Clone)]
pub struct InstallOutcome {
    /// The module now active.
    pub installed: Installed,
    /// The module `policy rollback` would go back to (none = the embedded default policy).
    pub previous: Option<Installed>,
    /// The module was already the active one (its record was refreshed).
    pub already_active: bool,
    /// How many contract vectors it passed.
    pub vectors: usize,
    /// Things the admin should know (e.g. installed unsigned).
    pub warnings: Vec<String>,
}

/// What `policy rollback` did.
#[derive(Debug, Clone)]
pub struct RollbackOutcome {
    /// Now active (none = the embedded default policy).
    pub active: Option<Installed>,
    /// What was active before (a second rollback goes back to it).
    pub previous: Option<Installed>,
}

/// Fetches, verifies, checks and activates a module. See the module documentation.
pub fn install(
    config: &Config,
    runtime: &Runtime,
    request: &InstallRequest<'_>,
) -> Result<InstallOutcome, InstallError> {
    let mut warnings = Vec::new();
    let keys = signature::trusted_keys(&config.policy.trust)?;
    if keys.is_empty() && !request.allow_unsigned {
        return Err(InstallError::Usage(format!(
            "{}: no trusted signing key is configured, so the module's signature cannot be checked. \
             Add the author's minisign public key to [policy] trusted-keys (or trusted-key-files), \
             or pass --allow-unsigned to install a module you built and checked yourself",
            config.path.display()
        )));
    }
    if !keys.is_empty() && request.allow_unsigned {
        return Err(InstallError::Usage(format!(
            "--allow-unsigned is refused: {} configures trusted signing keys, so every installed \
             module must be signed by one of them",
            config.path.display()
        )));
    }

    let location = Location::parse(request.source, "policy module")?;
    let limit = runtime.limits().max_module_bytes as u64;
    let mut fetcher = Fetcher::new(request.ca_file, request.timeout);
    let bytes = fetcher.fetch("policy module", &location, limit)?;
    let label = location.to_string();

    let (verified, signature_bytes) = if keys.is_empty() {
        warnings.push(format!(
            "{label} was installed WITHOUT a signature check (--allow-unsigned); configure [policy] trusted-keys so only signed modules are accepted"
        ));
        (None, None)
    } else {
        let signature_location = match request.signature {
            Some(text) => Location::parse(text, "signature")?,
            None => location.signature_beside(),
        };
        let signature_bytes = match fetcher.fetch("signature", &signature_location, MAX_SIGNATURE_BYTES) {
            Ok(bytes) => bytes,
            Err(FetchError::NotFound { location: missing, .. }) => {
                return Err(SignatureError::Missing { module: label, location: missing }.into());
            }
            Err(e) => return Err(e.into()),
        };
        let verified =
            signature::verify(&bytes, &label, &signature_bytes, &signature_location.to_string(), &keys)?;
        (Some(verified), Some(signature_bytes))
    };

    let module = runtime.load_bytes(&bytes, PolicySource::File(PathBuf::from(&label)))?;
    let metadata = runtime.metadata(&module)?;
    let vectors = check_contract(runtime, &module)?;

    let store = Store::new(&config.state_dir);
    let _lock = take_lock(config, request.lock_wait)?;
    let sha = store.store_module(&bytes, signature_bytes.as_deref())?;
    let state = match store.read_active() {
        Ok(state) => state,
        Err(e) => {
            warnings.push(format!("{e}; it is replaced, and there is no previous module to roll back to"));
            ActiveState::default()
        }
    };
    let Verified { key_id, trusted_comment, .. } = match verified {
        Some(v) => v,
        None => Verified { key_id: String::new(), key_origin: String::new(), trusted_comment: String::new() },
    };
    let installed = Installed {
        sha256: sha.clone(),
        source: label,
        signature_key_id: (!key_id.is_empty()).then_some(key_id),
        trusted_comment: signature_bytes.as_ref().map(|_| trusted_comment),
        installed_at: crate::time::unix_now(),
        name: metadata.name,
        version: metadata.version,
        contract_version: metadata.contract_version,
    };
    let already_active = state.active.as_ref().is_some_and(|a| a.sha256 == sha);
    let new_state = if already_active {
        ActiveState { format: 0, active: Some(installed.clone()), previous: state.previous }
    } else {
        ActiveState { format: 0, active: Some(installed.clone()), previous: state.active }
    };
    store.write_active(&new_state)?;
    store.prune()?;
    if let Some(module) = &config.policy.module {
        warnings.push(format!(
            "{} sets [policy] module = {}, which takes precedence over the installed module; remove it for the installed module to be used",
            config.path.display(),
            module.display()
        ));
    }
    Ok(InstallOutcome { installed, previous: new_state.previous, already_active, vectors, warnings })
}

/// Runs the built-in `contract` suite of the module's contract version, vector by vector,
/// and stops at the first failure. Returns how many vectors passed.
pub fn check_contract(runtime: &Runtime, module: &PolicyModule) -> Result<usize, InstallError> {
    let suites =
        conformance::builtin_suites(module.version, Some("contract")).map_err(InstallError::Suites)?;
    let mut passed = 0;
    for suite in &suites {
        for vector in &suite.vectors {
            let one = Suite { name: suite.name.clone(), vectors: vec![vector.clone()] };
            let report = conformance::run(runtime, module, &[one]);
            if let Some(case) = report.cases.iter().find(|c| !c.passed()) {
                let mut failures = case.failures.join("; ");
                if failures.len() > 2000 {
                    let mut cut = 2000;
                    while !failures.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    failures.truncate(cut);
                    failures.push('…');
                }
                return Err(InstallError::Conformance {
                    module: module.label(),
                    suite: suite.name.clone(),
                    vector: case.name.clone(),
                    failures,
                });
            }
            passed += 1;
        }
    }
    Ok(passed)
}

/// Swaps the active and the previous module. The module switched to must still be stored
/// intact (its SHA-256 is checked) and load.
pub fn rollback(
    config: &Config,
    runtime: &Runtime,
    lock_wait: Duration,
) -> Result<RollbackOutcome, InstallError> {
    let store = Store::new(&config.state_dir);
    let _lock = take_lock(config, lock_wait)?;
    let state = store.read_active()?;
    if state.active.is_none() && state.previous.is_none() {
        return Err(InstallError::NothingInstalled);
    }
    if let Some(previous) = &state.previous {
        let bytes = store.read_module(&previous.sha256, runtime.limits().max_module_bytes)?;
        let module = runtime.load_bytes(&bytes, PolicySource::File(store.module_path(&previous.sha256)))?;
        runtime.metadata(&module)?;
    }
    let new_state = ActiveState { format: 0, active: state.previous, previous: state.active };
    store.write_active(&new_state)?;
    store.prune()?;
    Ok(RollbackOutcome { active: new_state.active, previous: new_state.previous })
}

fn take_lock(config: &Config, wait: Duration) -> Result<RunLock, InstallError> {
    crate::actions::ensure_state_dir(&config.state_dir).map_err(|e| InstallError::StateDir(e.to_string()))?;
    Ok(lock::acquire(&config.state_dir, wait)?)
}
