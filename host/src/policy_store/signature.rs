//! minisign signatures of policy modules.
//!
//! The verification itself is `minisign-verify`'s (written by minisign's author): Ed25519 over
//! the BLAKE2b-512 hash of the module (minisign's default "prehashed" signatures), then the
//! global signature over the signature and its trusted comment. Legacy signatures (`minisign
//! -l`, the raw file signed) are refused. This file only finds the key by its ID and turns every
//! failure into a sentence that says what is wrong. When a signature does not verify, the
//! global signature is checked once more with OpenSSL's Ed25519, only to tell "the module was
//! changed" from "the trusted comment was changed" in the message.

use std::path::Path;

use minisign_verify::{Error as MinisignError, PublicKey, Signature};
use openssl::pkey::{Id, PKey};
use openssl::sign::Verifier;

use super::errors::SignatureError;
use crate::config::policy_trust::PolicyTrust;

/// The largest signature file read.
pub const MAX_SIGNATURE_BYTES: u64 = 64 << 10;
/// The largest public key file read.
const MAX_KEY_FILE_BYTES: u64 = 16 << 10;

/// A trusted minisign public key.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// The key ID as minisign prints it (16 uppercase hex digits).
    pub key_id: String,
    /// Where it was configured: `trusted-keys` or the key file.
    pub origin: String,
    key: PublicKey,
    raw: Vec<u8>,
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The ID of the key that signed.
    pub key_id: String,
    /// Where that key is configured.
    pub key_origin: String,
    /// The signature's trusted comment (signed together with the module).
    pub trusted_comment: String,
}

/// The configured keys: `trusted-keys`, then every `trusted-key-files` file (read now).
pub fn trusted_keys(trust: &PolicyTrust) -> Result<Vec<TrustedKey>, SignatureError> {
    let mut keys = Vec::new();
    for key in &trust.keys {
        let parsed = parse_key(key, "[policy] trusted-keys".into())
            .map_err(|message| SignatureError::KeyFile { path: "[policy] trusted-keys".into(), message })?;
        keys.push(parsed);
    }
    for path in &trust.key_files {
        keys.push(read_key_file(path)?);
    }
    Ok(keys)
}

fn read_key_file(path: &Path) -> Result<TrustedKey, SignatureError> {
    let error = |message: String| SignatureError::KeyFile { path: path.to_owned(), message };
    let bytes = super::read_bounded(path, MAX_KEY_FILE_BYTES).map_err(|e| match e {
        super::StoreError::Io { source, .. } => error(format!("cannot read it: {source}")),
        other => error(other.to_string()),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| error("not a text file".into()))?;
    // A minisign.pub: "untrusted comment: ..." then the key; a bare key line is accepted too.
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
        .ok_or_else(|| error("holds no key (expected the minisign.pub format)".into()))?;
    parse_key(line, path.display().to_string()).map_err(error)
}

fn parse_key(base64: &str, origin: String) -> Result<TrustedKey, String> {
    let base64 = base64.trim();
    let key = PublicKey::from_base64(base64).map_err(|e| format!("not a minisign public key: {e}"))?;
    let raw = openssl::base64::decode_block(base64).map_err(|e| format!("not base64: {e}"))?;
    if raw.len() != 42 {
        return Err("not a minisign public key (wrong length)".into());
    }
    Ok(TrustedKey { key_id: key_id(&raw[2..10]), origin, key, raw: raw[10..42].to_vec() })
}

/// A key ID as minisign prints it (`"%" PRIX64`): the 8 bytes as a little-endian number, in
/// uppercase hex without leading zeros — so it reads exactly as in the `.pub` file's comment.
fn key_id(bytes: &[u8]) -> String {
    let mut le = [0u8; 8];
    le.copy_from_slice(&bytes[..8]);
    format!("{:X}", u64::from_le_bytes(le))
}

/// Checks that `signature` (the text of a `.minisig` file at `location`) is a signature of
/// `module` (named `module_label` in messages) by one of `keys`.
pub fn verify(
    module: &[u8],
    module_label: &str,
    signature: &[u8],
    location: &str,
    keys: &[TrustedKey],
) -> Result<Verified, SignatureError> {
    let malformed = |message: String| SignatureError::Malformed { location: location.to_owned(), message };
    let text = std::str::from_utf8(signature).map_err(|_| malformed("it is not text".into()))?;
    let parts = SignatureParts::parse(text).map_err(malformed)?;
    let decoded = Signature::decode(text).map_err(|e| match e {
        MinisignError::UnsupportedAlgorithm => malformed("an unknown signature algorithm".into()),
        other => malformed(other.to_string()),
    })?;
    let key_id = key_id(&parts.key_id);
    let Some(key) = keys.iter().find(|k| k.key_id == key_id) else {
        return Err(SignatureError::UnknownKey {
            location: location.to_owned(),
            key_id,
            trusted: keys.iter().map(|k| k.key_id.as_str()).collect::<Vec<_>>().join(", "),
        });
    };
    match key.key.verify(module, &decoded, false) {
        Ok(()) => Ok(Verified {
            key_id,
            key_origin: key.origin.clone(),
            trusted_comment: decoded.trusted_comment().to_owned(),
        }),
        Err(MinisignError::UnexpectedAlgorithm) => {
            Err(SignatureError::Legacy { location: location.to_owned() })
        }
        Err(MinisignError::InvalidSignature) if !parts.global_signature_verifies(&key.raw) => {
            Err(SignatureError::TrustedComment { location: location.to_owned(), key_id })
        }
        Err(MinisignError::InvalidSignature) => Err(SignatureError::BadSignature {
            location: location.to_owned(),
            key_id,
            module: module_label.to_owned(),
        }),
        Err(other) => Err(malformed(other.to_string())),
    }
}

/// The parts of a signature file needed for messages: the key ID, and the pieces of the global
/// signature (only used to explain a failure).
struct SignatureParts {
    key_id: Vec<u8>,
    signature: Vec<u8>,
    trusted_comment: String,
    global_signature: Vec<u8>,
}

impl SignatureParts {
    fn parse(text: &str) -> Result<SignatureParts, String> {
        let mut lines = text.lines();
        let _untrusted = lines.next().ok_or("it is empty")?;
        let line = lines.next().ok_or("it has no signature line")?;
        let bin = openssl::base64::decode_block(line.trim())
            .map_err(|_| "its signature line is not base64".to_owned())?;
        if bin.len() != 74 {
            return Err(format!("its signature line holds {} bytes, not 74", bin.len()));
        }
        let comment = lines.next().ok_or("it has no trusted comment line")?;
        let trusted_comment = comment
            .strip_prefix("trusted comment: ")
            .ok_or("its third line is not a \"trusted comment: \" line")?
            .to_owned();
        let global = lines.next().ok_or("it has no global signature line")?;
        let global_signature = openssl::base64::decode_block(global.trim())
            .map_err(|_| "its global signature line is not base64".to_owned())?;
        Ok(SignatureParts {
            key_id: bin[2..10].to_vec(),
            signature: bin[10..74].to_vec(),
            trusted_comment,
            global_signature,
        })
    }

    /// Whether the global signature (over the signature and the trusted comment) verifies.
    fn global_signature_verifies(&self, raw_key: &[u8]) -> bool {
        let Ok(key) = PKey::public_key_from_raw_bytes(raw_key, Id::ED25519) else { return false };
        let Ok(mut verifier) = Verifier::new_without_digest(&key) else { return false };
        let mut message = self.signature.clone();
        message.extend_from_slice(self.trusted_comment.as_bytes());
        verifier.verify_oneshot(&self.global_signature, &message).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key pair and signature made with `minisign -G -W` and `minisign -S -t "policy v1"` of
    // the 6 bytes "hello\n".
    const KEY: &str = "RWQAVKWEj8jfgb7glleS2Q3YW44mM7f7B0tbLsKYTuzFXvx6NMCb3nVh";
    const SIG: &str = "untrusted comment: signature from minisign secret key
RUQAVKWEj8jfgXtDZHUWRr3u2hHbiEpLJ6ezrJDFQ45ZoNRiKclLyypAXRyIocxyIe8bFPc+wUG3WB+xMbjtbIQGad+NG3zkzQc=
trusted comment: policy v1
4gZvzOnGl/QYYiJ+OSuohNcAlQ1Gvlnp5eGHWjkWAhLc/ubiPqlM9DbcFOsf/tN8UNdRsDwG9TSYvCPYyTO0CQ==
";

    fn keys() -> Vec<TrustedKey> {
        trusted_keys(&PolicyTrust { keys: vec![KEY.into()], key_files: vec![] }).expect("key parses")
    }

    #[test]
    fn key_id_is_printed_as_minisign_does() {
        assert_eq!(keys()[0].key_id, "81DFC88F84A55400");
        // minisign prints `%PRIX64`: no leading zeros (one key in 16 starts with one).
        assert_eq!(key_id(&[0x1d, 0x01, 0x2b, 0x73, 0xe3, 0x80, 0x5f, 0x09]), "95F80E3732B011D");
        assert_eq!(key_id(&[0; 8]), "0");
    }

    #[test]
    fn a_good_signature_verifies() {
        let verified = verify(b"hello\n", "m.wasm", SIG.as_bytes(), "m.wasm.minisig", &keys()).expect("ok");
        assert_eq!(verified.key_id, "81DFC88F84A55400");
        assert_eq!(verified.trusted_comment, "policy v1");
    }

    #[test]
    fn a_changed_module_is_named() {
        let error = verify(b"hellO\n", "m.wasm", SIG.as_bytes(), "m.wasm.minisig", &keys()).expect_err("bad");
        assert!(matches!(error, SignatureError::BadSignature { .. }), "{error}");
        assert!(
            error.to_string().contains("policy module m.wasm is not the file that was signed"),
            "{error}"
        );
    }

    #[test]
    fn a_changed_trusted_comment_is_named() {
        let sig = SIG.replace("policy v1", "policy v2");
        let error = verify(b"hello\n", "m.wasm", sig.as_bytes(), "m.wasm.minisig", &keys()).expect_err("bad");
        assert!(matches!(error, SignatureError::TrustedComment { .. }), "{error}");
    }

    #[test]
    fn an_unknown_key_is_named_with_the_trusted_ones() {
        let other = PolicyTrust {
            keys: vec!["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3".into()],
            key_files: vec![],
        };
        let keys = trusted_keys(&other).expect("parses");
        let error = verify(b"hello\n", "m.wasm", SIG.as_bytes(), "sig", &keys).expect_err("unknown");
        let text = error.to_string();
        assert!(text.contains("made by the key with ID 81DFC88F84A55400"), "{text}");
        assert!(text.contains(&format!("trusted: {}", keys[0].key_id)), "{text}");
    }

    #[test]
    fn garbage_is_not_a_signature() {
        for garbage in ["", "one line", "untrusted comment: x\nnot base64!\n"] {
            let error = verify(b"x", "m", garbage.as_bytes(), "sig", &keys()).expect_err("garbage");
            assert!(matches!(error, SignatureError::Malformed { .. }), "{error}");
        }
    }

    #[test]
    fn key_files_are_read_and_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.pub");
        std::fs::write(&good, format!("untrusted comment: minisign public key 81DFC88F84A55400\n{KEY}\n"))
            .expect("write");
        let bad = dir.path().join("bad.pub");
        std::fs::write(&bad, "untrusted comment: x\nRWQnope\n").expect("write");
        let keys = trusted_keys(&PolicyTrust { keys: vec![], key_files: vec![good.clone()] }).expect("ok");
        assert_eq!(keys[0].key_id, "81DFC88F84A55400");
        assert_eq!(keys[0].origin, good.display().to_string());
        for path in [bad, dir.path().join("missing.pub")] {
            let error = trusted_keys(&PolicyTrust { keys: vec![], key_files: vec![path.clone()] })
                .expect_err("refused");
            assert!(error.to_string().contains(&path.display().to_string()), "{error}");
        }
    }
}
