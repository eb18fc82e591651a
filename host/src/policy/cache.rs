//! A cache of compiled components, so a run does not recompile the policy.
//!
//! Entries are wasmtime's own serialization, named by the module's SHA-256 and the engine's
//! compatibility hash (a different wasmtime or different settings never reads a stale entry).
//! Loading an entry executes its machine code, so an entry is loaded only when it is owned by
//! root (or the running user) and writable by nobody else, in a state directory checked the same
//! way, and when its bytes match the SHA-256 stored with them; anything else is deleted and the
//! module compiled again, as if there were no cache.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// Where `policy test`, `policy eval` and `policy show` keep compiled components, and where a
/// dry run looks for them (it never writes them): `<state-dir>/cache` when the state directory
/// exists and is this user's (a real run and `policy install` fill it too), otherwise the
/// user's cache (`$XDG_CACHE_HOME/checkallsslcerts/policies`, or `~/.cache/...`). A second
/// `policy test` of an 18 MB Python policy loads in milliseconds instead of compiling for
/// seconds, and so does a dry run with it once it was tested. `None` without a state directory
/// or a home.
pub fn dir_for(state_dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    // Only a state dir this user owns (root's, for root): another user's is not ours to fill.
    let euid = rustix::process::geteuid().as_raw();
    match std::fs::metadata(state_dir) {
        Ok(meta) if meta.is_dir() && meta.uid() == euid => Some(state_dir.join("cache")),
        _ => user_dir(),
    }
}

/// The user-level cache directory, if the user has a home.
pub fn user_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|d| Path::new(d).is_absolute()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").filter(|d| Path::new(d).is_absolute())?).join(".cache")
        }
    };
    Some(base.join("checkallsslcerts").join("policies"))
}

/// A directory of compiled components.
pub struct Cache {
    dir: PathBuf,
    engine_key: String,
    /// Whether entries are written (and bad ones deleted); a dry run's cache is only read.
    writable: bool,
}

impl Cache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Cache {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Cache { dir, engine_key: format!("{:016x}", hasher.finish()), writable: true }
    }

    /// This cache, only read: nothing is written or deleted (a bad entry is just not used).
    pub fn read_only(mut self) -> Cache {
        self.writable = false;
        self
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for a module, if the cache has a sound entry for it. An entry
    /// that is not owned by root (or this user), is writable by others, is too large, or whose
    /// bytes do not match the digest written with them (a flipped bit, a torn write) is deleted
    /// and `None` returned: the module is then compiled again. Never crashes on a bad entry.
    pub fn load(&self, engine: &Engine, sha256: &str) -> Option<Component> {
        let path = self.path(sha256);
        if std::fs::symlink_metadata(&path).is_err() {
            return None;
        }
        let verified = crate::fs::read_trusted(&path, crate::fs::limits::COMPILED_POLICY)
            .ok()
            .and_then(|bytes| verified_payload(&bytes).map(<[u8]>::to_vec));
        let Some(bytes) = verified else {
            self.remove(&path);
            return None;
        };
        // SAFETY: wasmtime runs the machine code in these bytes, so they must be what `store`
        // below wrote from a component this engine compiled. They are: the file is owned by root
        // (or this user) and not writable by anyone else, in a state directory that is checked
        // the same way (`crate::fs::check_trusted_tree`), and its bytes match the SHA-256
        // written with them, so corruption is caught before deserialising; wasmtime checks the
        // engine compatibility header itself. (The digest guards against damage, not against
        // someone who can write the file: the ownership checks do that.)
        #[allow(unsafe_code)]
        let component = unsafe { Component::deserialize(engine, &bytes) };
        match component {
            Ok(c) => Some(c),
            Err(_) => {
                self.remove(&path);
                None
            }
        }
    }

    /// Keeps a compiled component: a header naming the SHA-256 of the serialized bytes, then
    /// the bytes, written atomically and link-safely, 0600, in a 0700 directory. Failures are
    /// ignored (the cache only saves time).
    pub fn store(&self, component: &Component, sha256: &str) {
        if !self.writable {
            return;
        }
        let Ok(bytes) = component.serialize() else { return };
        if crate::fs::create_private_dir(&self.dir, true).is_err() {
            return;
        }
        let mut entry = Vec::with_capacity(bytes.len() + HEADER.len() + 65);
        entry.extend_from_slice(HEADER);
        entry.extend_from_slice(hex::encode(openssl::sha::sha256(&bytes)).as_bytes());
        entry.push(b'\n');
        entry.extend_from_slice(&bytes);
        let _ = crate::fs::write_atomic(&self.path(sha256), &entry, 0o600);
    }
}

impl Cache {
    /// Deletes a bad entry (so it is compiled and written again), unless only reading.
    fn remove(&self, path: &Path) {
        if self.writable {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The first line of every cache entry (the format; a change of format changes it).
const HEADER: &[u8] = b"checkallsslcerts compiled policy v1\n";

/// The serialized component in an entry, if its digest matches.
fn verified_payload(entry: &[u8]) -> Option<&[u8]> {
    let rest = entry.strip_prefix(HEADER)?;
    if rest.len() < 65 || rest[64] != b'\n' {
        return None;
    }
    let (digest, payload) = (&rest[..64], &rest[65..]);
    (hex::encode(openssl::sha::sha256(payload)).as_bytes() == digest).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(engine: &Engine) -> Component {
        let wasm = wat::parse_str("(component)").expect("wat");
        Component::new(engine, &wasm).expect("compile")
    }

    #[test]
    fn a_flipped_byte_anywhere_makes_the_entry_rebuilt_not_loaded() {
        let engine = Engine::default();
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(tmp.path().join("cache"), &engine);
        cache.store(&component(&engine), "abc");
        assert!(cache.load(&engine, "abc").is_some(), "a sound entry loads");
        let path = cache.path("abc");
        let len = std::fs::metadata(&path).expect("entry").len() as usize;
        for position in [HEADER.len() + 3, HEADER.len() + 70, len / 2, len - 1] {
            cache.store(&component(&engine), "abc");
            let mut bytes = std::fs::read(&path).expect("read");
            bytes[position] ^= 0x01;
            std::fs::write(&path, &bytes).expect("write");
            assert!(cache.load(&engine, "abc").is_none(), "byte {position}: a damaged entry is not loaded");
            assert!(!path.exists(), "byte {position}: and it is deleted, to be rebuilt");
        }
        cache.store(&component(&engine), "abc");
        assert!(cache.load(&engine, "abc").is_some(), "rebuilt");
    }

    /// A dry run's runtime reads the cache and never writes it: nothing is stored after it
    /// compiled, a damaged entry is left for a real run to replace, and what it loads really
    /// comes from the cache (a planted entry of another component is what it gets).
    #[test]
    fn a_read_only_cache_is_read_and_never_written() {
        use crate::policy::Runtime;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cache");
        let reading = Runtime::reading_cache(Some(dir.clone())).expect("runtime");
        let module = reading.load_embedded().expect("compiles");
        assert!(!dir.exists(), "nothing written");

        let writing = Runtime::new(Some(dir.clone())).expect("runtime");
        writing.load_embedded().expect("compiles and stores");
        let cache = Cache::new(dir.clone(), &writing.engine);
        let path = cache.path(&module.sha256);
        assert!(path.exists());
        // Another (empty) component planted under the default policy's name: a runtime that
        // reads the cache loads it, and finds no policy in it.
        cache.store(&component(&writing.engine), &module.sha256);
        let reading = Runtime::reading_cache(Some(dir.clone())).expect("runtime");
        assert!(reading.load_embedded().is_err(), "the planted entry was loaded from the cache");

        let mut bytes = std::fs::read(&path).expect("entry");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&path, &bytes).expect("damage");
        let reading = Runtime::reading_cache(Some(dir.clone())).expect("runtime");
        assert!(reading.load_embedded().is_ok(), "a damaged entry is not used: compiled instead");
        assert_eq!(std::fs::read(&path).expect("entry"), bytes, "and left in place");
    }

    #[test]
    fn an_entry_others_can_write_is_not_loaded() {
        use std::os::unix::fs::PermissionsExt;
        let engine = Engine::default();
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(tmp.path().join("cache"), &engine);
        cache.store(&component(&engine), "abc");
        let path = cache.path("abc");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(cache.load(&engine, "abc").is_none());
    }
}
