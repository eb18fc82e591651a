//! The released contract versions, side by side.
//!
//! Each released `wit/since_vX.Y.Z/` folder has a module here with its generated bindings and
//! conversions to and from the host's model; [`latest`] names the newest. A module's version is
//! read from the component's own exports *before* it is instantiated, and the module then runs
//! through the bindings of exactly that version, so modules built against an older released
//! contract keep working.

pub mod since_v0_1_0;
pub mod since_v0_2_0;

pub use since_v0_2_0 as latest;

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;
use wasmtime::{Engine, ResourceLimiter, StoreLimits};

use super::errors::PolicyError;
use crate::plan::model::Level;

/// The contract versions this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    V0_1_0,
    V0_2_0,
}

impl ContractVersion {
    /// Every supported version, oldest first.
    pub const ALL: &'static [ContractVersion] = &[ContractVersion::V0_1_0, ContractVersion::V0_2_0];

    /// The newest version, the one the host's model mirrors.
    pub const LATEST: ContractVersion = ContractVersion::V0_2_0;

    /// The version as written in the WIT package (`0.1.0`).
    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1_0 => since_v0_1_0::VERSION,
            ContractVersion::V0_2_0 => since_v0_2_0::VERSION,
        }
    }

    fn allowed_imports(self) -> &'static [&'static str] {
        match self {
            ContractVersion::V0_1_0 => since_v0_1_0::ALLOWED_IMPORTS,
            ContractVersion::V0_2_0 => since_v0_2_0::ALLOWED_IMPORTS,
        }
    }

    fn rules_export(self) -> &'static str {
        match self {
            ContractVersion::V0_1_0 => since_v0_1_0::RULES_EXPORT,
            ContractVersion::V0_2_0 => since_v0_2_0::RULES_EXPORT,
        }
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const PACKAGE_RULES: &str = "checkallsslcerts:policy/rules@";

fn supported_list() -> String {
    ContractVersion::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
}

/// Reads which contract version a component implements, and refuses any import that version
/// does not offer. Nothing of the module runs.
pub fn detect(engine: &Engine, component: &Component, module: &str) -> Result<ContractVersion, PolicyError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_string()).collect();
    let rules = exports.iter().find(|name| name.starts_with(PACKAGE_RULES));
    let Some(rules) = rules else {
        return Err(PolicyError::NotAPolicy {
            module: module.to_string(),
            exports: if exports.is_empty() { "nothing".into() } else { exports.join(", ") },
        });
    };
    let found = &rules[PACKAGE_RULES.len()..];
    let version = ContractVersion::ALL.iter().copied().find(|v| v.as_str() == found).ok_or_else(|| {
        PolicyError::UnsupportedVersion {
            module: module.to_string(),
            found: found.to_string(),
            supported: supported_list(),
        }
    })?;
    debug_assert_eq!(version.rules_export(), rules.as_str());
    let allowed = version.allowed_imports();
    for (name, item) in ty.imports(engine) {
        let known = allowed.contains(&name) || super::wasi::allowed(name);
        if !known || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            return Err(PolicyError::ForbiddenImport {
                module: module.to_string(),
                import: name.to_string(),
                allowed: format!(
                    "{}, and these WASI 0.2 interfaces, which have nothing behind them: {}",
                    allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(" and "),
                    super::wasi::ALLOWED.join(", ")
                ),
            });
        }
    }
    Ok(version)
}

/// One line a policy wrote with `host.log`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
}

/// The data of one `Store`: limits, the policy's empty WASI and what the module logged. A fresh
/// one per call.
pub struct HostState {
    limits: StoreLimits,
    pub(crate) wasi: super::wasi::PolicyWasi,
    memory_limit: usize,
    /// Set when a memory or table growth was refused.
    pub(crate) limit_hit: bool,
    pub(crate) logs: Vec<LogLine>,
    pub(crate) logs_dropped: usize,
    /// The last error-level lines, oldest first, kept even when `logs` is full: a trap's
    /// failure message quotes them.
    pub(crate) last_errors: std::collections::VecDeque<String>,
    max_log_lines: usize,
    max_log_line_bytes: usize,
    max_trap_log_lines: usize,
}

impl HostState {
    /// The state of a call over `services` services at `now`, whose random is seeded by `seed`.
    pub(crate) fn new(limits: &super::Limits, services: usize, now: i64, seed: [u8; 32]) -> Self {
        let memory_limit = limits.memory_bytes(services);
        HostState {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .table_elements(limits.max_table_elements)
                .instances(limits.max_instances)
                .memories(limits.max_memories)
                .tables(limits.max_tables)
                .trap_on_grow_failure(true)
                .build(),
            wasi: super::wasi::PolicyWasi::new(limits, now, seed),
            memory_limit,
            limit_hit: false,
            logs: Vec::new(),
            logs_dropped: 0,
            last_errors: std::collections::VecDeque::new(),
            max_log_lines: limits.max_log_lines,
            max_log_line_bytes: limits.max_log_line_bytes,
            max_trap_log_lines: limits.max_trap_log_lines,
        }
    }

    pub(crate) fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// Moves what the module wrote to its standard output (`info`) and error (`warning`) into
    /// its log, after the call. The last stderr lines count as error lines for a trap's message
    /// (a Python traceback or an uncaught JavaScript exception ends there).
    pub(crate) fn collect_stdio(&mut self) {
        let (out, out_dropped) = self.wasi.stdout.lines();
        let (err, err_dropped) = self.wasi.stderr.lines();
        for line in out {
            self.log(Level::Info, line);
        }
        // Quoted: the message lines, not the stack frames (indented: Python's `  File ...`,
        // SpiderMonkey's `  f@file.js:1:2`) nor the runtimes' own noise after them.
        const NOISE: [&str; 2] = ["note: run with `RUST_BACKTRACE", "Redirecting call to abort()"];
        let quoted: Vec<&String> = err
            .iter()
            .filter(|line| !line.starts_with([' ', '\t']) && !NOISE.iter().any(|n| line.starts_with(n)))
            .collect();
        for line in quoted.iter().skip(quoted.len().saturating_sub(self.max_trap_log_lines)) {
            self.remember_error(line);
        }
        for line in err {
            self.log(Level::Warning, line);
        }
        if out_dropped + err_dropped > 0 {
            self.logs_dropped += 1;
        }
    }

    fn remember_error(&mut self, line: &str) {
        if self.max_trap_log_lines == 0 {
            return;
        }
        let mut message = line.to_owned();
        cut_line(&mut message, self.max_log_line_bytes);
        self.keep_error(message);
    }

    /// Keeps one of the last error lines (already cut), quoted if the module traps.
    fn keep_error(&mut self, message: String) {
        if self.last_errors.len() >= self.max_trap_log_lines {
            self.last_errors.pop_front();
        }
        self.last_errors.push_back(message);
    }

    fn log(&mut self, level: Level, mut message: String) {
        let full = self.logs.len() >= self.max_log_lines;
        if full && level != Level::Error {
            self.logs_dropped += 1;
            return;
        }
        cut_line(&mut message, self.max_log_line_bytes);
        if level == Level::Error && self.max_trap_log_lines > 0 {
            self.keep_error(message.clone());
        }
        if full {
            self.logs_dropped += 1;
            return;
        }
        self.logs.push(LogLine { level, message });
    }
}

/// Cuts a logged line to `max` bytes (on a character boundary), marking the cut with `…`.
fn cut_line(message: &mut String, max: usize) {
    if message.len() > max {
        let mut cut = max;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.limit_hit = true;
        }
        allowed
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.table_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.limit_hit = true;
        }
        allowed
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// How a call into a module failed, before it is named and classified.
pub enum Failure {
    Instantiate(wasmtime::Error),
    Call(wasmtime::Error),
}

/// The result of a call into a module.
pub type Outcome<T> = Result<T, Failure>;

#[cfg(test)]
mod tests {
    use super::*;

    /// What a Python or JavaScript runtime prints to stderr when the policy throws reaches the
    /// log, and a trap's message quotes the exception, not the stack frames or the noise.
    #[test]
    fn stderr_goes_to_the_log_and_the_exception_is_quoted() {
        let mut state = HostState::new(&super::super::Limits::default(), 1, 0, [0; 32]);
        state.wasi.stdout.push(b"debug 1\n");
        state.wasi.stderr.push(
            b"Traceback (most recent call last):\n  File \"app.py\", line 3, in evaluate\n\
              ValueError: bad facts\nthread '<unnamed>' panicked at lib.rs:1:2:\nPython function threw\n\
              note: run with `RUST_BACKTRACE=1` to display a backtrace\n",
        );
        state.collect_stdio();
        assert_eq!(state.logs[0], LogLine { level: Level::Info, message: "debug 1".into() });
        assert_eq!(state.logs.len(), 7, "every line logged: {:?}", state.logs);
        assert_eq!(
            state.last_errors,
            ["ValueError: bad facts", "thread '<unnamed>' panicked at lib.rs:1:2:", "Python function threw"]
        );
    }

    /// A module that floods its log before it panics still has its panic message kept: the last
    /// error lines survive the line limit (a trap's failure message quotes them).
    #[test]
    fn the_last_error_lines_are_kept_past_the_line_limit() {
        let limits = super::super::Limits {
            max_log_lines: 2,
            max_trap_log_lines: 2,
            max_log_line_bytes: 8,
            ..Default::default()
        };
        let mut state = HostState::new(&limits, 1, 0, [0; 32]);
        for i in 0..5 {
            state.log(Level::Info, format!("info {i}"));
        }
        state.log(Level::Error, "first error".into());
        state.log(Level::Warning, "a warning".into());
        state.log(Level::Error, "panicked at x".into());
        state.log(Level::Error, "é".repeat(8));
        assert_eq!(state.logs.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), ["info 0", "info 1"]);
        assert_eq!(state.logs_dropped, 7);
        assert_eq!(state.last_errors, ["panicked…", "éééé…"], "the last two, cut like any line");
    }
}
