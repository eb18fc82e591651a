//! A cache of compiled components, so a run does not recompile the policy.
//!
//! Entries are wasmtime's own serialization, named by the module's SHA-256 and the engine's
//! compatibility hash (a different wasmtime or different settings never reads a stale entry).
//! Loading an entry executes its machine code, so the directory must be writable only by the
//! user running `checkallsslcerts` (it lives in the state dir, mode 0700). Any problem with the
//! cache is ignored: the module is then compiled as if there were no cache.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of compiled components.
pub struct Cache {
    dir: PathBuf,
    engine_key: String,
}

impl Cache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Cache {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Cache { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for a module, if the cache has it.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if !path.is_file() {
            return None;
        }
        // SAFETY: the entry was written by `store` below, from a component this engine compiled,
        // into a directory only this user can write; wasmtime checks the engine compatibility
        // header before using it.
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize_file(engine, &path) };
        component.ok()
    }

    /// Keeps a compiled component. Failures are ignored.
    pub fn store(&self, component: &Component, sha256: &str) {
        let Ok(bytes) = component.serialize() else { return };
        if std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).is_err() {
            return;
        }
        let Ok(mut file) = tempfile::Builder::new()
            .prefix(".cwasm-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(&self.dir)
        else {
            return;
        };
        if file.write_all(&bytes).is_ok() && file.as_file().sync_all().is_ok() {
            let _ = file.persist(self.path(sha256));
        }
    }
}
