//! What a run tells: the report (human text or versioned JSON), and later notifications.
//!
//! The JSON report's schema is documented in `docs/json-report.md`; [`REPORT_VERSION`] changes
//! whenever a field is removed or changes meaning (adding a field does not).

pub mod json;
pub mod metrics;
pub mod model;
pub mod progress;
pub mod text;

pub use model::{
    ActionKind, ActionReport, CertificateSummary, PolicyInfo, REPORT_VERSION, RunReport, ServiceReport,
};
