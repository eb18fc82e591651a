//! The documented exit codes (the ground floor: the run decides them, the CLI returns them).
//! Each describes the state a run leaves, not what it met on the way.

/// Every service holds a usable certificate and nothing failed (problems found and fixed in
/// the same run are reported, but are not errors).
pub const OK: i32 = 0;
/// The run found or hit errors: a service is left on an unusable certificate, an action
/// failed, the policy failed, the state directory could not be used...
pub const ERRORS: i32 = 1;
/// Bad usage or configuration (including a configuration others could change); nothing was
/// changed.
pub const USAGE: i32 = 2;
/// The certificate authority could not be reached or refused the order (or the issued
/// certificate failed its checks): nothing was installed from it.
pub const ACME_FAILED: i32 = 69;
/// Another run holds the lock (and only that: an unusable lock file is [`ERRORS`]).
pub const LOCKED: i32 = 73;
/// A certificate order is still pending at the CA, or a wanted order was held back (back-off,
/// daily cap); a later run will pick it up by itself.
pub const RETRY_PENDING: i32 = 75;
