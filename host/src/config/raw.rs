//! The configuration file as written (serde), before validation. Values that are checked later
//! keep their position in the file ([`Spanned`]) so problems can name the line and column.
//!
//! Every section is optional; a new section (`[acme]`, `[mail]`, `[metrics]`...) is one more
//! `#[serde(default)]` field here, a resolved struct in `mod.rs` and a step in `resolve.rs`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};
use toml::Spanned;

use super::types::{KeyAlgorithm, Layout};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawConfig {
    pub hostname: Option<Spanned<String>>,
    pub main_ips: Option<Vec<Spanned<String>>>,
    pub state_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub trust: RawTrust,
    #[serde(default)]
    pub placeholder: RawPlaceholder,
    #[serde(default)]
    pub backups: RawBackups,
    #[serde(default)]
    pub mail: super::mail::RawMail,
    #[serde(default)]
    pub metrics: super::metrics::RawMetrics,
    pub acme: Option<super::acme::RawAcme>,
    #[serde(default)]
    pub network: super::network::RawNetwork,
    #[serde(default)]
    pub probe: super::probe::RawProbeSettings,
    #[serde(default, rename = "service")]
    pub services: Vec<Spanned<RawService>>,
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<Spanned<RawCertificateGroup>>,
}

/// `[[certificate]]`: a certificate group.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCertificateGroup {
    pub name: Option<Spanned<String>>,
    pub names: Option<Vec<Spanned<String>>>,
    pub key: Option<KeyAlgorithm>,
}

/// `[policy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPolicy {
    pub module: Option<Spanned<String>>,
    /// `trusted-keys` and `trusted-key-files`: see `policy_trust.rs`.
    pub trusted_keys: Option<Vec<Spanned<String>>>,
    pub trusted_key_files: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub params: RawParams,
}

/// `[policy.params]`: key/value pairs in file order.
#[derive(Debug, Default)]
pub(super) struct RawParams(pub Vec<(String, Spanned<ParamValue>)>);

/// A policy parameter's value: the policy receives it as a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ParamValue {
    String(String),
    Integer(i64),
    Boolean(bool),
}

impl ParamValue {
    pub fn to_param_string(&self) -> String {
        match self {
            ParamValue::String(s) => s.clone(),
            ParamValue::Integer(i) => i.to_string(),
            ParamValue::Boolean(b) => b.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for ParamValue {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ParamValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an integer or a boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamValue, E> {
                Ok(ParamValue::String(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamValue, E> {
                Ok(ParamValue::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamValue, E> {
                i64::try_from(v)
                    .map(ParamValue::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ParamValue, E> {
                Ok(ParamValue::Boolean(v))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawParams {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawParams;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table of policy parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawParams, A::Error> {
                let mut entries: Vec<(String, Spanned<ParamValue>)> = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                // The TOML parser hands tables over sorted by key; the file's order is the
                // order of the values' positions (each value follows its key).
                entries.sort_by_key(|(_, v)| v.span().start);
                Ok(RawParams(entries))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `[trust]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawTrust {
    pub extra_roots: Option<Vec<Spanned<String>>>,
    pub system_roots: Option<bool>,
}

/// `[placeholder]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawPlaceholder {
    pub key: Option<KeyAlgorithm>,
    pub validity_days: Option<Spanned<i64>>,
}

/// `[backups]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBackups {
    pub keep: Option<Spanned<i64>>,
    pub keep_days: Option<Spanned<i64>>,
}

/// One `[[service]]` table. Even required keys are optional here, so that every missing key is
/// reported together with the other problems.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawService {
    pub name: Option<Spanned<String>>,
    pub certificate: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub chain: Option<Spanned<String>>,
    pub layout: Option<Layout>,
    pub names: Option<Vec<Spanned<String>>>,
    pub owner: Option<Spanned<StringOrInteger>>,
    pub group: Option<Spanned<StringOrInteger>>,
    pub certificate_mode: Option<Spanned<StringOrInteger>>,
    pub key_mode: Option<Spanned<StringOrInteger>>,
    pub allow_world_readable_key: Option<bool>,
    pub reload: Option<Spanned<RawReload>>,
    pub reload_timeout: Option<Spanned<i64>>,
    /// Live endpoints to probe: see `probe.rs`.
    pub probe: Option<super::probe::RawEndpoints>,
    pub certificate_group: Option<Spanned<String>>,
    pub check_only: Option<bool>,
}

/// `reload`: one argv (`["systemctl", "reload", "nginx"]`), or a list of argvs run in order
/// (`[["postfix", "reload"], ["doveadm", "reload"]]`) for a file several daemons share.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "a command as an array of strings, e.g. [\"systemctl\", \"reload\", \"nginx\"], \
                 or an array of such commands, e.g. [[\"postfix\", \"reload\"], [\"doveadm\", \"reload\"]]"
)]
pub(super) enum RawReload {
    One(Vec<String>),
    Many(Vec<Vec<String>>),
}

/// A value written either as a string or as an integer (user/group ids, file modes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StringOrInteger {
    String(String),
    Integer(i64),
}

impl<'de> Deserialize<'de> for StringOrInteger {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StringOrInteger;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringOrInteger, E> {
                Ok(StringOrInteger::String(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StringOrInteger, E> {
                Ok(StringOrInteger::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringOrInteger, E> {
                i64::try_from(v)
                    .map(StringOrInteger::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }
        deserializer.deserialize_any(V)
    }
}
