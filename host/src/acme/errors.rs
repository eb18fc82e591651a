//! What can go wrong ordering a certificate, with the CA's own problem document (RFC 7807 /
//! RFC 8555 §6.7) where the CA sent one.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The ACME error type names are URNs under this prefix.
pub const ACME_ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

/// A problem document as the CA sent it (the fields RFC 8555 uses).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct ProblemDocument {
    /// `type`, e.g. `urn:ietf:params:acme:error:rateLimited`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `detail`: the CA's explanation.
    pub detail: Option<String>,
    /// `status`: the HTTP status.
    pub status: Option<u16>,
    /// `subproblems`, one per identifier concerned: (identifier, type, detail).
    #[serde(default)]
    pub subproblems: Vec<SubProblem>,
}

/// One entry of `subproblems`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub struct SubProblem {
    pub identifier: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub detail: Option<String>,
}

impl ProblemDocument {
    /// The ACME error name (`rateLimited`, `badNonce`...), if the type is an ACME URN.
    pub fn acme_error(&self) -> Option<&str> {
        self.kind.as_deref().and_then(|k| k.strip_prefix(ACME_ERROR_PREFIX))
    }
}

impl From<&instant_acme::Problem> for ProblemDocument {
    fn from(p: &instant_acme::Problem) -> Self {
        ProblemDocument {
            kind: p.r#type.clone(),
            detail: p.detail.clone(),
            status: p.status,
            subproblems: p
                .subproblems
                .iter()
                .map(|s| SubProblem {
                    identifier: s.identifier.as_ref().map(|i| i.authorized(false).to_string()),
                    kind: s.r#type.clone(),
                    detail: s.detail.clone(),
                })
                .collect(),
        }
    }
}

impl fmt::Display for ProblemDocument {
    /// `TYPE (HTTP STATUS): DETAIL; for "NAME": TYPE: DETAIL`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_deref().unwrap_or("(no problem type)"))?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for sub in &self.subproblems {
            f.write_str("; ")?;
            if let Some(identifier) = &sub.identifier {
                write!(f, "for {identifier:?}: ")?;
            }
            f.write_str(sub.kind.as_deref().unwrap_or("(no type)"))?;
            if let Some(detail) = &sub.detail {
                write!(f, ": {detail}")?;
            }
        }
        Ok(())
    }
}

/// Why the ACME step did not produce a certificate.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// No answer from the CA (DNS, connection refused, TLS, timeout).
    #[error("cannot reach the certificate authority ({url}) to {step}: {reason}")]
    Unreachable { step: &'static str, url: String, reason: String },
    /// The CA answered with a problem document.
    #[error("the certificate authority refused to {step}: {problem}")]
    Refused { step: &'static str, problem: ProblemDocument },
    /// The order (or one of its authorisations) became invalid.
    #[error("the certificate authority marked order {url} invalid: {problem}")]
    OrderInvalid { url: String, problem: ProblemDocument },
    /// The CA's answer made no sense to the ACME client.
    #[error("the certificate authority's answer to {step} was not usable: {reason}")]
    Protocol { step: &'static str, reason: String },
    /// A file the `[acme]` section names could not be used.
    #[error("{}: `acme.{key}`: {reason}", .path.display())]
    File { key: &'static str, path: PathBuf, reason: String },
    /// The challenge could not be answered (webroot not writable, DNS hook failed...).
    #[error("cannot answer the {challenge} challenge for {name}: {reason}")]
    Challenge { challenge: &'static str, name: String, reason: String },
    /// The issued certificate failed the checks before install; it is kept in the state
    /// directory, nothing was installed.
    #[error("the issued certificate was not installed: {reason}; it is kept in {}", .kept.display())]
    Verification { reason: String, kept: PathBuf },
    /// The CSR or key could not be made.
    #[error("cannot make the certificate's key or signing request: {0}")]
    Key(String),
    /// The state directory could not be read or written.
    #[error("{}: {reason}", .path.display())]
    State { path: PathBuf, reason: String },
    /// The HTTP client could not be set up (e.g. a proxy environment variable that is not a
    /// proxy URL); the CA was not contacted.
    #[error("{0}")]
    Http(String),
}

impl AcmeError {
    /// The CA's problem document, if the CA sent one.
    pub fn problem(&self) -> Option<&ProblemDocument> {
        match self {
            AcmeError::Refused { problem, .. } | AcmeError::OrderInvalid { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// Whether the error came from the CA or the way to it (as opposed to local files): those
    /// count as a failed order for the back-off.
    pub fn counts_as_failed_order(&self) -> bool {
        !matches!(
            self,
            AcmeError::File { .. } | AcmeError::State { .. } | AcmeError::Key(_) | AcmeError::Http(_)
        )
    }
}

/// A transport failure, carried through `instant_acme::Error::Other` so the step can tell an
/// unreachable CA from a CA that answered.
#[derive(Debug)]
pub struct TransportError {
    pub url: String,
    pub reason: String,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.reason)
    }
}

impl std::error::Error for TransportError {}

/// Converts an `instant_acme` error from `step` (a verb phrase: "create the account").
pub fn from_acme(step: &'static str, directory_url: &str, error: instant_acme::Error) -> AcmeError {
    match error {
        instant_acme::Error::Api(problem) => AcmeError::Refused { step, problem: (&problem).into() },
        instant_acme::Error::Other(inner) => match inner.downcast::<TransportError>() {
            Ok(t) => AcmeError::Unreachable { step, url: t.url, reason: t.reason },
            Err(other) => AcmeError::Protocol { step, reason: other.to_string() },
        },
        instant_acme::Error::Json(e) => AcmeError::Protocol {
            step,
            reason: format!(
                "the answer is not the JSON RFC 8555 describes ({e}); is {directory_url} an ACME directory?"
            ),
        },
        instant_acme::Error::Timeout(_) => {
            AcmeError::Protocol { step, reason: "timed out waiting for the certificate authority".into() }
        }
        other => AcmeError::Protocol { step, reason: other.to_string() },
    }
}

/// Whether the error is a `badNonce` the client should simply retry.
pub fn is_bad_nonce(error: &instant_acme::Error) -> bool {
    matches!(error, instant_acme::Error::Api(p) if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:badNonce"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_document_display_names_type_status_detail_and_subproblems() {
        let p = ProblemDocument {
            kind: Some("urn:ietf:params:acme:error:rejectedIdentifier".into()),
            detail: Some("policy forbids issuing for name".into()),
            status: Some(400),
            subproblems: vec![SubProblem {
                identifier: Some("blocked.example.com".into()),
                kind: Some("urn:ietf:params:acme:error:rejectedIdentifier".into()),
                detail: Some("blocked".into()),
            }],
        };
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:acme:error:rejectedIdentifier (HTTP 400): policy forbids issuing for name; \
             for \"blocked.example.com\": urn:ietf:params:acme:error:rejectedIdentifier: blocked"
        );
        assert_eq!(p.acme_error(), Some("rejectedIdentifier"));
    }

    #[test]
    fn transport_errors_become_unreachable() {
        let e = instant_acme::Error::Other(Box::new(TransportError {
            url: "https://127.0.0.1:1/dir".into(),
            reason: "Connection refused (os error 111)".into(),
        }));
        let converted = from_acme("read the directory", "https://127.0.0.1:1/dir", e);
        assert!(matches!(converted, AcmeError::Unreachable { .. }), "{converted:?}");
        assert!(converted.to_string().contains("Connection refused"), "{converted}");
        assert!(converted.counts_as_failed_order());
    }
}
