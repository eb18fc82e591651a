//! The policy runtime: loads a policy component and runs it in a sandbox.
//!
//! A module gets nothing but the facts and the contract's `host.log`: no files, network, clock
//! or environment of its own. The WASI a standard toolchain's component imports is there, empty
//! and deterministic ([`wasi`]). Every call runs in a fresh [`Store`] with the [`Limits`] of
//! [`limits`]: fuel (deterministic, so an endless loop ends after a bounded amount of work),
//! memory and tables, and the plan is validated before the host acts on it. Every failure is a
//! [`PolicyError`] naming the module; a bad module never panics the host.

pub mod cache;
pub mod contract;
pub mod embedded;
pub mod errors;
pub mod limits;
pub mod wasi;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use openssl::sha::sha256;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Config, Engine, Store, Trap};

pub use contract::{ContractVersion, LogLine};
use contract::{Failure, HostState};
pub use errors::PolicyError;
pub use limits::Limits;

use crate::facts::model::HostFacts;
use crate::plan::model::{Metadata, Plan};

/// Where a module came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The default policy built into this binary.
    Embedded,
    /// A file.
    File(PathBuf),
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Embedded => f.write_str("(embedded default policy)"),
            PolicySource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A compiled policy module, ready to run.
pub struct PolicyModule {
    /// Where it came from.
    pub source: PolicySource,
    /// SHA-256 of the component's bytes, lowercase hex.
    pub sha256: String,
    /// The contract version it implements.
    pub version: ContractVersion,
    /// The component, its imports resolved against the contract's linker (and the policy's WASI).
    pre: InstancePre<HostState>,
    /// Whether it imports a `wasi:random` interface: only then is the seed (a hash of all the
    /// facts, ~40 ms for 10,000 services) worked out.
    uses_random: bool,
}

impl PolicyModule {
    /// The name used in messages: the file path, or "(embedded default policy)".
    pub fn label(&self) -> String {
        self.source.to_string()
    }
}

/// A plan and what the module logged while making it.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub plan: Plan,
    pub logs: Vec<LogLine>,
    pub logs_dropped: usize,
    pub fuel_used: u64,
}

impl Evaluation {
    /// What the module logged, for the run's report.
    pub fn log(&self) -> PolicyLog {
        PolicyLog { lines: self.logs.clone(), dropped: self.logs_dropped }
    }
}

/// What a module wrote with `host.log` in one call: at most [`Limits::max_log_lines`] lines, each
/// cut at [`Limits::max_log_line_bytes`], and how many more were dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyLog {
    pub lines: Vec<LogLine>,
    pub dropped: usize,
}

/// One module's compilation, done once per runtime: the component, or why it does not compile.
type CompileSlot = OnceLock<Result<Component, String>>;

/// The engine, the linkers and the limits, shared by every call.
pub struct Runtime {
    engine: Engine,
    linker_v0_1_0: Linker<HostState>,
    linker_v0_2_0: Linker<HostState>,
    limits: Limits,
    /// Where compiled modules are kept (or only read from).
    cache: OnceLock<cache::Cache>,
    /// Components compiled (or loaded from the cache) by this runtime, by SHA-256: loading the
    /// same bytes again does not compile them again, and a load while another thread compiles
    /// the same bytes waits for that compilation (see [`Runtime::load_embedded`]).
    compiled: Mutex<HashMap<String, Arc<CompileSlot>>>,
}

impl Runtime {
    /// A runtime with the default limits; `cache_dir`, if given, keeps compiled modules.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Runtime, PolicyError> {
        Runtime::with_limits(Limits::default(), cache_dir)
    }

    /// A runtime with the default limits that loads compiled modules from `cache_dir` but never
    /// writes there (a dry run's).
    pub fn reading_cache(cache_dir: Option<PathBuf>) -> Result<Runtime, PolicyError> {
        let runtime = Runtime::with_limits(Limits::default(), None)?;
        if let Some(dir) = cache_dir {
            let _ = runtime.cache.set(cache::Cache::new(dir, &runtime.engine).read_only());
        }
        Ok(runtime)
    }

    /// A runtime with the given limits.
    pub fn with_limits(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Runtime, PolicyError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.max_wasm_stack(limits.max_wasm_stack);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| PolicyError::Engine(e.to_string()))?;
        let engine_error = |e: wasmtime::Error| PolicyError::Engine(e.to_string());
        let mut linker_v0_1_0 = contract::since_v0_1_0::linker(&engine).map_err(engine_error)?;
        let mut linker_v0_2_0 = contract::since_v0_2_0::linker(&engine).map_err(engine_error)?;
        wasi::add_to_linker(&mut linker_v0_1_0).map_err(engine_error)?;
        wasi::add_to_linker(&mut linker_v0_2_0).map_err(engine_error)?;
        let cache = OnceLock::new();
        if let Some(dir) = cache_dir {
            let _ = cache.set(cache::Cache::new(dir, &engine));
        }
        Ok(Runtime {
            engine,
            linker_v0_1_0,
            linker_v0_2_0,
            limits,
            cache,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The default policy built into this binary. Compiling it takes tens of milliseconds when
    /// the cache does not have it, so a run calls this early on another thread (the runtime is
    /// `Sync`) while it gathers the facts: the later call then finds it loaded.
    pub fn load_embedded(&self) -> Result<PolicyModule, PolicyError> {
        self.load_bytes(embedded::DEFAULT_POLICY, PolicySource::Embedded)
    }

    /// A module from a file (a component, binary or text format).
    pub fn load_file(&self, path: &Path) -> Result<PolicyModule, PolicyError> {
        let module = path.display().to_string();
        let size = std::fs::metadata(path)
            .map_err(|source| PolicyError::Read { module: module.clone(), source })?
            .len();
        if size > self.limits.max_module_bytes as u64 {
            return Err(PolicyError::TooLarge { module, size, limit: self.limits.max_module_bytes });
        }
        let bytes = crate::fs::read_bounded(path, self.limits.max_module_bytes as u64)
            .map_err(|e| PolicyError::Read { module, source: std::io::Error::other(e.to_string()) })?;
        self.load_bytes(&bytes, PolicySource::File(path.to_path_buf()))
    }

    /// A module from bytes.
    pub fn load_bytes(&self, bytes: &[u8], source: PolicySource) -> Result<PolicyModule, PolicyError> {
        let module = source.to_string();
        if bytes.len() > self.limits.max_module_bytes {
            return Err(PolicyError::TooLarge {
                module,
                size: bytes.len() as u64,
                limit: self.limits.max_module_bytes,
            });
        }
        let sha256 = hex::encode(sha256(bytes));
        let slot = match self.compiled.lock() {
            Ok(mut compiled) => Arc::clone(compiled.entry(sha256.clone()).or_default()),
            Err(_) => Arc::new(OnceLock::new()),
        };
        let component = slot
            .get_or_init(|| {
                if let Some(component) = self.cache.get().and_then(|c| c.load(&self.engine, &sha256)) {
                    return Ok(component);
                }
                let component = Component::new(&self.engine, bytes).map_err(|e| {
                    // A core module (version 1) where a component (version 0xd, layer 1) is expected.
                    if bytes.starts_with(b"\0asm\x01\0\0\0") {
                        format!(
                            "it is a core WebAssembly module, not a component; turn it into one with \
                             `checkallsslcerts policy componentize {} -o policy.wasm` ({e:#})",
                            match &source {
                                PolicySource::File(path) => path.display().to_string(),
                                PolicySource::Embedded => "MODULE".to_owned(),
                            }
                        )
                    } else {
                        format!("{e:#}")
                    }
                })?;
                if let Some(cache) = self.cache.get() {
                    cache.store(&component, &sha256);
                }
                Ok(component)
            })
            .clone()
            .map_err(|message| PolicyError::Invalid { module: module.clone(), message })?;
        let version = contract::detect(&self.engine, &component, &module)?;
        let base = match version {
            ContractVersion::V0_1_0 => &self.linker_v0_1_0,
            ContractVersion::V0_2_0 => &self.linker_v0_2_0,
        };
        let instantiate_error = |e: wasmtime::Error| PolicyError::Instantiate {
            module: module.clone(),
            message: format!("{e:#}"),
        };
        let own = wasi::linker_for(base, &self.engine, &component).map_err(instantiate_error)?;
        let pre = own.as_ref().unwrap_or(base).instantiate_pre(&component).map_err(instantiate_error)?;
        let uses_random = component
            .component_type()
            .imports(&self.engine)
            .any(|(name, _)| name.starts_with("wasi:random/"));
        Ok(PolicyModule { source, sha256, version, pre, uses_random })
    }

    /// Asks the module who it is, and checks it claims the contract version it implements.
    pub fn metadata(&self, module: &PolicyModule) -> Result<Metadata, PolicyError> {
        let mut store = self.store(0, 0, [0; 32]);
        let metadata = match module.version {
            ContractVersion::V0_1_0 => contract::since_v0_1_0::metadata(&mut store, &module.pre),
            ContractVersion::V0_2_0 => contract::since_v0_2_0::metadata(&mut store, &module.pre),
        };
        store.data_mut().collect_stdio();
        let metadata = metadata.map_err(|failure| self.classify(failure, module, &store, "metadata", 0))?;
        if metadata.contract_version != module.version.as_str() {
            return Err(PolicyError::MetadataMismatch {
                module: module.label(),
                declared: metadata.contract_version,
                actual: module.version.as_str().to_string(),
            });
        }
        Ok(metadata)
    }

    /// Runs `evaluate` on the facts and validates the plan.
    pub fn evaluate(&self, module: &PolicyModule, facts: &HostFacts) -> Result<Evaluation, PolicyError> {
        let services = facts.services.len();
        // Without a random import the seed cannot be observed: not worked out.
        let seed = if module.uses_random { wasi::seed_for(facts) } else { [0; 32] };
        let mut store = self.store(services, facts.now, seed);
        let fuel = self.limits.fuel(services);
        let answer = match module.version {
            ContractVersion::V0_1_0 => contract::since_v0_1_0::evaluate(&mut store, &module.pre, facts),
            ContractVersion::V0_2_0 => contract::since_v0_2_0::evaluate(&mut store, &module.pre, facts),
        };
        store.data_mut().collect_stdio();
        let answer =
            answer.map_err(|failure| self.classify(failure, module, &store, "evaluate", services))?;
        let plan = answer.map_err(|message| PolicyError::Refused { module: module.label(), message })?;
        let plan = crate::plan::validate(facts, plan, &self.limits)
            .map_err(|source| PolicyError::InvalidPlan { module: module.label(), source })?;
        let fuel_used = fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let state = store.into_data();
        Ok(Evaluation { plan, logs: state.logs, logs_dropped: state.logs_dropped, fuel_used })
    }

    fn store(&self, services: usize, now: i64, seed: [u8; 32]) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(&self.limits, services, now, seed));
        store.limiter(|state| state);
        // Fuel is only refused for an engine without fuel, which this one is not.
        let _ = store.set_fuel(self.limits.fuel(services));
        store
    }

    fn classify(
        &self,
        failure: Failure,
        module: &PolicyModule,
        store: &Store<HostState>,
        function: &'static str,
        services: usize,
    ) -> PolicyError {
        let label = module.label();
        let error = match failure {
            Failure::Instantiate(e) if !store.data().limit_hit => {
                return PolicyError::Instantiate { module: label, message: format!("{e:#}") };
            }
            Failure::Instantiate(e) | Failure::Call(e) => e,
        };
        if store.data().limit_hit {
            return PolicyError::OutOfMemory { module: label, function, limit: store.data().memory_limit() };
        }
        if matches!(error.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
            return PolicyError::OutOfFuel {
                module: label,
                function,
                fuel: self.limits.fuel(services),
                services,
            };
        }
        let mut message = trap_text(&error);
        let last_errors = &store.data().last_errors;
        if !last_errors.is_empty() {
            let lines: Vec<&str> = last_errors.iter().map(String::as_str).collect();
            message.push_str(&format!(
                "; before the trap it logged (error{}): {}",
                if lines.len() > 1 { ", the last lines" } else { "" },
                lines.join(" | ")
            ));
        }
        PolicyError::Trap { module: label, function, message }
    }
}

/// What trapped, without wasmtime's backtrace of the module's functions (`wasm backtrace:` and
/// a line per frame, which tell the administrator nothing): the trap's kind (e.g. "wasm
/// `unreachable` instruction executed"), or the error's causes.
fn trap_text(error: &wasmtime::Error) -> String {
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::StackOverflow => {
                format!("stack overflow ({trap}): a recursion too deep for the policy's stack")
            }
            _ => trap.to_string(),
        };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("the policy called exit({})", exit.0);
    }
    let causes: Vec<String> = error
        .chain()
        .map(|cause| cause.to_string())
        .filter(|text| !text.contains("wasm backtrace:"))
        .map(|text| text.lines().next().unwrap_or_default().to_owned())
        .collect();
    if causes.is_empty() { "it trapped".to_owned() } else { causes.join(": ") }
}
