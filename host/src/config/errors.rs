//! What can go wrong loading the configuration, with the file, line:column, service and key.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, permissions, not a regular file, too large).
    #[error("{}: cannot read the configuration file: {source}", .path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Someone other than root (or the running user) could change the file, or a directory
    /// above it: its reload commands would run as root, so it is not read.
    #[error("{}: refusing the configuration file: {message}", .path.display())]
    Untrusted {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong, naming the file or directory and the fix.
        message: String,
    },
    /// The file is not valid TOML, or a value has the wrong type, or a key is unknown.
    #[error("{}:{line}:{column}: {}{}", .path.display(), key_prefix(.key), shown(.message))]
    Parse {
        /// The configuration file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// The offending key, as a dotted path where known (e.g. `service "nginx" key-mode`).
        key: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// The file parsed, but some values are not acceptable. Every problem found is listed.
    #[error("{}", ProblemList(.problems))]
    Invalid {
        /// The configuration file.
        path: PathBuf,
        /// Every problem, in file order (at least one).
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// Whether the error is "the configuration file does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(self, ConfigError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The configuration file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ConfigError::Read { path, .. }
            | ConfigError::Untrusted { path, .. }
            | ConfigError::Parse { path, .. }
            | ConfigError::Invalid { path, .. } => path,
        }
    }
}

fn key_prefix(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("{}: ", shown(k)),
        None => String::new(),
    }
}

/// A message or key as shown: it may quote a value from the file, which may be anything (a
/// 15 MB hostname): escaped and cut, so an error never echoes unbounded input.
fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    crate::text::untrusted_max(text, 400)
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// One validation problem (an error, or a warning in [`crate::config::Config::warnings`]).
///
/// Displays as `FILE:LINE:COL: service "NAME": key `KEY`: MESSAGE` (parts omitted when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The configuration file.
    pub path: PathBuf,
    /// 1-based line and column of the offending value, when known.
    pub location: Option<(usize, usize)>,
    /// The service's name (or `#N`, 1-based, when the service has no usable name), if the
    /// problem is in a `[[service]]` table.
    pub service: Option<String>,
    /// The key, dotted from the top (e.g. `placeholder.validity-days`, `service.key-mode`).
    pub key: String,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((line, column)) = self.location {
            write!(f, ":{line}:{column}")?;
        }
        f.write_str(": ")?;
        if let Some(service) = &self.service {
            write!(f, "service \"{}\": ", shown(service))?;
        }
        write!(f, "`{}`: {}", shown(&self.key), shown(&self.message))
    }
}

/// 1-based line and column (counted in characters) of a byte offset in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
