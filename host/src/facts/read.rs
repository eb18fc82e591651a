//! Bounded, non-blocking reads of certificate and key files: the file layer's
//! ([`crate::fs`]) bounded read, with the limit for certificate and key files.

pub use crate::fs::{ReadError, read_bounded};

/// The largest certificate, chain or key file read, in bytes (1 MiB).
pub const MAX_PEM_FILE_SIZE: u64 = crate::fs::limits::PEM_FILE;
