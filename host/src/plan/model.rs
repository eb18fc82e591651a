//! The plan a policy returns, as the host models it (see `plan` in the contract).

use serde::{Deserialize, Serialize};

/// See `decision` in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Keep,
    Replace,
    ReplaceOrPlaceholder,
    Placeholder,
}

/// See `reason` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    WeakSignature,
    WeakKey,
    Revoked,
    SelfSigned,
    UntrustedChain,
    HostnameMismatch,
    HostnameNotOnThisServer,
    Expired,
    ExpiringSoon,
    NotYetValid,
    KeyMismatch,
    Missing,
    Unreadable,
    Malformed,
    RenewalWindow,
    StaleEndpoint,
    Other(String),
}

/// See `service-plan` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServicePlan {
    pub service: String,
    pub decision: Decision,
    #[serde(default)]
    pub reasons: Vec<Reason>,
}

/// See `level` in the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// See `notice` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Notice {
    pub level: Level,
    #[serde(default)]
    pub service: Option<String>,
    pub message: String,
}

/// See `order-request` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OrderRequest {
    pub group: String,
}

/// See `plan` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Plan {
    pub services: Vec<ServicePlan>,
    #[serde(default)]
    pub orders: Vec<OrderRequest>,
    #[serde(default)]
    pub notices: Vec<Notice>,
}

/// See `metadata` in the contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub description: String,
    pub contract_version: String,
}
