//! `[policy] trusted-keys` and `trusted-key-files`: the minisign public keys whose signatures
//! `checkallsslcerts policy install` accepts.
//!
//! Inline keys (`trusted-keys = ["RWQ..."]`, the base64 line of a `minisign.pub`) are checked
//! here, so a typo is a configuration error with its line and column. Key files are only checked
//! to be absolute paths here and read by `policy install` itself: a main run never depends on
//! them, so a missing key file can never stop certificates from being handled.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

/// The trusted signing keys of `[policy]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyTrust {
    /// `trusted-keys`: minisign public keys, base64 (the second line of a `minisign.pub`).
    pub keys: Vec<String>,
    /// `trusted-key-files`: `minisign.pub` files (absolute paths), read at install time.
    pub key_files: Vec<PathBuf>,
}

impl PolicyTrust {
    /// Whether any key is configured: then only modules signed by one of them are installed.
    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty() || !self.key_files.is_empty()
    }
}

/// Checks the two keys; `error(span, key, message)` records a problem.
pub(super) fn resolve(
    keys: &Option<Vec<Spanned<String>>>,
    key_files: &Option<Vec<Spanned<String>>>,
    error: &mut dyn FnMut(Range<usize>, &'static str, String),
) -> PolicyTrust {
    let mut trust = PolicyTrust::default();
    for key in keys.iter().flatten() {
        let text = key.get_ref().trim();
        match minisign_verify::PublicKey::from_base64(text) {
            Ok(_) => trust.keys.push(text.to_owned()),
            Err(e) => error(
                key.span(),
                "policy.trusted-keys",
                format!(
                    "{:?} is not a minisign public key ({e}): give the base64 line of the author's \
                     minisign.pub (it starts with \"RW\"), or list the file in trusted-key-files",
                    key.get_ref()
                ),
            ),
        }
    }
    for file in key_files.iter().flatten() {
        let path = file.get_ref();
        if path.is_empty() || path.contains('\0') || !Path::new(path).is_absolute() {
            error(
                file.span(),
                "policy.trusted-key-files",
                format!("{path:?} is not an absolute path (it must start with '/')"),
            );
        } else {
            trust.key_files.push(PathBuf::from(path));
        }
    }
    trust
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::from_str;

    const KEY: &str = "RWQAVKWEj8jfgb7glleS2Q3YW44mM7f7B0tbLsKYTuzFXvx6NMCb3nVh";

    fn load(text: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        from_str(&format!("hostname = \"host.example.com\"\n{text}"), Path::new("/etc/c.toml"))
    }

    #[test]
    fn no_key_by_default() {
        let config = load("").expect("loads");
        assert!(!config.policy.trust.is_configured());
    }

    #[test]
    fn keys_and_files_are_read() {
        let config = load(&format!(
            "[policy]\ntrusted-keys = [\"{KEY}\"]\ntrusted-key-files = [\"/etc/checkallsslcerts/author.pub\"]\n"
        ))
        .expect("loads");
        assert_eq!(config.policy.trust.keys, vec![KEY.to_owned()]);
        assert_eq!(config.policy.trust.key_files, vec![Path::new("/etc/checkallsslcerts/author.pub")]);
        assert!(config.policy.trust.is_configured());
    }

    #[test]
    fn a_bad_key_and_a_relative_file_are_errors_with_their_position() {
        let error = load("[policy]\ntrusted-keys = [\"RWQnotakey\"]\ntrusted-key-files = [\"author.pub\"]\n")
            .expect_err("refused")
            .to_string();
        assert!(error.contains("/etc/c.toml:3:17: `policy.trusted-keys`"), "{error}");
        assert!(error.contains("is not a minisign public key"), "{error}");
        assert!(error.contains("/etc/c.toml:4:22: `policy.trusted-key-files`"), "{error}");
        assert!(error.contains("not an absolute path"), "{error}");
    }
}
