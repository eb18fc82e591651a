//! Small configuration value types shared by several steps (config, facts, actions).

use serde::{Deserialize, Serialize};

/// How a service keeps its certificate, chain and key on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// `certificate` holds the leaf (optionally followed by the chain), `key` the private key,
    /// and `chain`, if configured, the intermediates (nginx, Apache, Postfix, Dovecot...).
    #[default]
    Separate,
    /// One file holds the leaf, the chain and the private key, in that order (HAProxy,
    /// Pure-FTPd). `key` and `chain` must not be set.
    Combined,
}

/// The kind and size of a private key the tool generates (placeholders, ACME orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 (prime256v1): the default.
    #[default]
    EcP256,
    /// ECDSA on P-384 (secp384r1).
    EcP384,
    /// RSA, 2048 bits.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072 bits.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096 bits.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}
