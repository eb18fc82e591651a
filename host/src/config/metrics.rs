//! `[metrics]`: the Prometheus textfile a run leaves for node_exporter's textfile collector.

use serde::Deserialize;
use toml::Spanned;

use super::errors::Problem;
use super::mail::Sink;
use std::path::{Path, PathBuf};

/// `[metrics]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMetrics {
    pub textfile: Option<Spanned<String>>,
}

/// `[metrics]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetricsConfig {
    /// `textfile`: where each changing run writes its metrics (absolute); `None` = nowhere
    /// (unless `--metrics-file` says).
    pub textfile: Option<PathBuf>,
}

/// Checks `[metrics]`.
pub(super) fn resolve(
    raw: &RawMetrics,
    text: &str,
    path: &Path,
    errors: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> MetricsConfig {
    let mut sink = Sink { text, path, errors, warnings };
    let textfile = raw.textfile.as_ref().and_then(|t| {
        let file = sink.absolute_path(t, "metrics.textfile")?;
        if file.extension().is_none_or(|e| e != "prom") {
            sink.warn(
                Some(t.span()),
                "metrics.textfile",
                format!(
                    "{} does not end in \".prom\": node_exporter's textfile collector reads only *.prom files",
                    file.display()
                ),
            );
        }
        Some(file)
    });
    MetricsConfig { textfile }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_text(text: &str) -> (MetricsConfig, Vec<Problem>, Vec<Problem>) {
        #[derive(Deserialize)]
        struct File {
            #[serde(default)]
            metrics: RawMetrics,
        }
        let file: File = toml::from_str(text).expect("parses");
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let metrics = resolve(&file.metrics, text, Path::new("/c.toml"), &mut errors, &mut warnings);
        (metrics, errors, warnings)
    }

    #[test]
    fn textfile_is_optional_absolute_and_should_end_in_prom() {
        assert_eq!(resolve_text("").0, MetricsConfig::default());
        let (m, errors, warnings) = resolve_text("[metrics]\ntextfile = \"/var/lib/ne/cert.prom\"\n");
        assert!(errors.is_empty() && warnings.is_empty());
        assert_eq!(m.textfile.as_deref(), Some(Path::new("/var/lib/ne/cert.prom")));
        let (_, errors, _) = resolve_text("[metrics]\ntextfile = \"cert.prom\"\n");
        assert_eq!(
            errors[0].to_string(),
            "/c.toml:2:12: `metrics.textfile`: \"cert.prom\" is not an absolute path (it must start with '/')"
        );
        let (_, _, warnings) = resolve_text("[metrics]\ntextfile = \"/tmp/cert.txt\"\n");
        assert!(warnings[0].message.contains("only *.prom"), "{warnings:?}");
    }
}
