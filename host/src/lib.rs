//! `checkallsslcerts`: keeps every TLS certificate on a server valid.
//!
//! The data flows one way, one module per step:
//! [`config`] → [`facts`] → [`policy`] → [`plan`] → [`actions`] → [`report`].
//! [`conformance`] runs a policy module against the conformance vectors; [`cli`] ties it together.
//! The ground floor, used by every step and using none: [`fs`] (every file read and write),
//! [`time`] (the clock and date formats), [`exit`] (the exit codes), [`http`] (the HTTP client),
//! [`text`] (untrusted text made safe to show).

pub mod acme;
pub mod actions;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod discovery;
pub mod exit;
pub mod facts;
pub mod fs;
#[cfg(test)]
pub(crate) mod fuzz_support;
pub mod http;
pub mod notify;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod policy_store;
pub mod probe;
pub mod report;
pub mod text;
pub mod time;

pub use cli::run;
