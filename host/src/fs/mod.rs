//! The ground floor: every file the tool reads or writes goes through this module, so that the
//! rules a root tool must keep hold everywhere by construction (see `docs/security.md`):
//!
//! * **Every read is bounded** ([`read_bounded`], [`limits`]): only regular files, never more
//!   than the limit for that kind of file, a FIFO never blocks the open.
//! * **Every write is link-safe and atomic.** A target is reached by walking its path one
//!   component at a time from `/` with `openat(O_NOFOLLOW)` ([`resolve`]); a symbolic link on
//!   the way is followed only when it is owned by root (or the user running the tool), since
//!   nobody else can make one — a link planted by another user is refused and nothing is
//!   written. New content goes into an `O_CREAT|O_EXCL|O_NOFOLLOW` temporary file in the
//!   target's directory, owner and mode are set on the descriptor before the first byte, then
//!   `fsync`, `renameat` over the name (which replaces a link, never writes through it), and
//!   `fsync` of the directory ([`Target`], [`write_atomic`]).
//! * **Trust only what root controls** ([`check_trusted`], [`check_trusted_tree`]): the
//!   configuration, the state directory and everything in it, trusted keys and policy modules
//!   must be owned by root (or the running user) and not writable by group or others, nor may
//!   any directory above them be — unless it is sticky (`/tmp`) and the entry in it is
//!   trusted — like sshd's `StrictModes`.
//! * **Private directories** ([`create_private_dir`]) are `0700`, never a link.

mod errors;
mod read;
mod trust;
mod walk;
mod write;

pub use errors::{FsError, ReadError};
pub use read::{read_bounded, read_trusted};
pub use trust::{check_trusted, check_trusted_tree, is_trusted_owner};
pub use walk::{Contents, FileMeta, Ownership, Target, TempFile, resolve, resolve_dir};
pub use write::{create_private_dir, fsync_dir, write_atomic, write_new_private};

/// The read limits, one per kind of file, in bytes. Every read of the tool names one.
pub mod limits {
    /// A certificate, chain or key file, and their backups (1 MiB: a long chain is ~10 KiB).
    pub const PEM_FILE: u64 = 1024 * 1024;
    /// A state file of the tool's own: journal, backup manifest, ACME state, records (1 MiB).
    pub const STATE_FILE: u64 = 1024 * 1024;
    /// The configuration file (64 MiB: ~300 bytes a service leaves room for 200,000 services).
    pub const CONFIG_FILE: u64 = 64 * 1024 * 1024;
    /// A trusted-key file (minisign public keys, a CA bundle: 1 MiB).
    pub const KEY_FILE: u64 = 1024 * 1024;
    /// A facts or conformance-vector JSON file given to `policy eval` / `policy test` (16 MiB:
    /// the facts of 10,000 services are ~15 MB).
    pub const JSON_INPUT: u64 = 16 * 1024 * 1024;
    /// A certificate revocation list: downloaded, cached, or kept on the host (`[network]
    /// crl-files`, `crl-dir`) (10 MiB: a CA's full CRL of ~200,000 entries).
    pub const CRL_FILE: u64 = 10 * 1024 * 1024;
    /// The verification memo (`facts::memo`: 64 MiB, two 32-byte entries for each of a million
    /// services).
    pub const VERIFICATION_MEMO: u64 = 64 * 1024 * 1024 + 1024;
    /// A compiled policy in the cache (256 MiB: wasmtime's code for a 16 MiB module is ~10x).
    pub const COMPILED_POLICY: u64 = 256 * 1024 * 1024;
}

#[cfg(test)]
mod tests;
