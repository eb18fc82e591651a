//! The default replacement policy of `checkallsslcerts`, as a WebAssembly component.
//!
//! This file only binds the contract (`wit/since_v0.2.0/policy.wit`) and exports the policy; the
//! rules themselves are pure functions in [`rules`], specified in `policy-wasm/README.md`.

pub mod rules;

/// The Rust bindings generated from the contract. `wit-bindgen` emits `unsafe` glue (the
/// canonical ABI), so the workspace's `unsafe_code = "deny"` is lifted for this module only.
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.2.0",
        world: "policy",
        additional_derives: [PartialEq, Eq],
    });
}

/// The contract's types (`checkallsslcerts:policy/types@0.2.0`).
pub use bindings::checkallsslcerts::policy::types;

use bindings::exports::checkallsslcerts::policy::rules::Guest;
use types::{HostFacts, Plan, PolicyMetadata};

/// The policy's name, as `metadata` reports it.
pub const NAME: &str = "default";
/// The policy's own version.
pub const VERSION: &str = "0.2.0";
/// The contract version this policy is built against.
pub const CONTRACT_VERSION: &str = "0.2.0";

/// The exported component.
struct DefaultPolicy;

impl Guest for DefaultPolicy {
    fn metadata() -> PolicyMetadata {
        PolicyMetadata {
            name: NAME.to_string(),
            version: VERSION.to_string(),
            description: "cPanel's replacement conditions: replace unusable, weak, untrusted or \
                          expiring certificates, chain included (Let's Encrypt < 25 days, others < 3 \
                          days, short-lived ones by lifetime fraction, ARI) with their group's certificate"
                .to_string(),
            contract_version: CONTRACT_VERSION.to_string(),
        }
    }

    fn evaluate(facts: HostFacts) -> Result<Plan, String> {
        Ok(rules::evaluate(&facts))
    }
}

/// The export glue (`#[unsafe(export_name)]` functions), the only other `unsafe` item. Only
/// built for WebAssembly: the export names (`checkallsslcerts:policy/rules@0.2.0#evaluate`) are
/// not valid symbol names for native linkers, and native builds are only for unit tests.
#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
mod export {
    crate::bindings::export!(DefaultPolicy with_types_in crate::bindings);
    use super::DefaultPolicy;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_the_policy_and_contract() {
        let metadata = DefaultPolicy::metadata();
        assert_eq!(metadata.name, "default");
        assert_eq!(metadata.version, "0.2.0");
        assert_eq!(metadata.contract_version, "0.2.0");
        assert_eq!(metadata.version, env!("CARGO_PKG_VERSION"));
        assert!(!metadata.description.contains('\n'));
    }
}
