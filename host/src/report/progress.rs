//! A progress bar on the terminal for long runs (`indicatif`), drawn on stderr. Off unless the
//! caller turns it on (the command line does when stdout is a terminal and neither `--quiet`
//! nor `--json` is given); indicatif also stays silent when stderr is not a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A stage that cannot count its steps.
const SPINNER: &str = "{spinner} {msg} [{elapsed}]";

/// The run's progress: one stage at a time, each with its own length.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A progress display, drawn only if `enabled`.
    pub fn new(enabled: bool) -> Progress {
        if !enabled {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        if let Ok(style) = ProgressStyle::with_template(SPINNER) {
            bar.set_style(style);
        }
        Progress(Some(bar))
    }

    /// A hidden display (for library callers and tests).
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// Starts a stage of `len` steps (0: a spinner for a stage that cannot count).
    pub fn stage(&self, message: &str, len: usize) {
        let Some(bar) = &self.0 else { return };
        bar.set_message(message.to_string());
        bar.set_length(len as u64);
        bar.set_position(0);
        let style = if len == 0 {
            ProgressStyle::with_template(SPINNER)
        } else {
            ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} [{elapsed}]")
        };
        if let Ok(style) = style {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(120));
    }

    /// One step of the stage done.
    pub fn step(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// Removes the display (before the report is printed).
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disabled_or_hidden_display_does_nothing() {
        for p in [Progress::new(false), Progress::hidden()] {
            p.stage("checking", 3);
            p.step();
            p.finish();
            assert!(p.0.is_none());
        }
    }

    #[test]
    fn an_enabled_display_counts_its_stage() {
        // Drawn to stderr, which indicatif hides when it is not a terminal (as under the test
        // runner); the counting is the same either way.
        let p = Progress::new(true);
        p.stage("acting", 2);
        p.step();
        let bar = p.0.as_ref().expect("bar");
        assert_eq!((bar.position(), bar.length()), (1, Some(2)));
        p.stage("gathering", 0);
        assert_eq!(bar.position(), 0);
        p.finish();
        assert!(bar.is_finished());
    }
}
