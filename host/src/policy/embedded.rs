//! The default policy, built from `policy-wasm/` by `build.rs` and embedded in the binary.

/// The default policy component's bytes.
pub static DEFAULT_POLICY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default-policy.wasm"));
