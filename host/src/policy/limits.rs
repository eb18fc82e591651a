//! Every limit a policy module runs under, in one place.
//!
//! Fuel is deterministic: the same module on the same facts uses the same fuel on every machine,
//! so a module that passes the conformance suite here will not run out of fuel elsewhere. The
//! budgets grow with the number of services so a large host is not mistaken for an endless loop.

/// Limits for loading and running one policy module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest module file accepted, in bytes.
    pub max_module_bytes: usize,
    /// Fuel for one call, before the per-service part.
    pub base_fuel: u64,
    /// Extra fuel per service in the facts.
    pub fuel_per_service: u64,
    /// Largest linear memory, before the per-service part, in bytes.
    pub base_memory_bytes: usize,
    /// Extra memory per service, in bytes.
    pub memory_per_service: usize,
    /// Most table elements.
    pub max_table_elements: usize,
    /// Most notices in a plan, before the per-service part.
    pub base_notices: usize,
    /// Extra notices allowed per service.
    pub notices_per_service: usize,
    /// Longest notice message, in bytes.
    pub max_message_bytes: usize,
    /// Most reasons for one service.
    pub max_reasons: usize,
    /// Longest `other(...)` reason, in bytes.
    pub max_other_reason_bytes: usize,
    /// Most `log` lines kept per call (more are counted and dropped).
    pub max_log_lines: usize,
    /// Longest `log` line kept, in bytes (longer ones are cut).
    pub max_log_line_bytes: usize,
    /// Most error-level `log` lines a trap's failure message quotes: the last ones the module
    /// wrote before it trapped (a Rust policy's panic hook writes its panic message so), kept
    /// even when `max_log_lines` was reached.
    pub max_trap_log_lines: usize,
    /// Deepest wasm stack, in bytes.
    pub max_wasm_stack: usize,
    /// Most core instances a component may create.
    pub max_instances: usize,
    /// Most linear memories a component may create.
    pub max_memories: usize,
    /// Most tables a component may create.
    pub max_tables: usize,
    /// Most bytes kept of each of standard output and standard error per call.
    pub max_stdio_bytes: usize,
    /// Most clock reads per call.
    pub max_clock_reads: u64,
    /// Most calls for random bytes per call.
    pub max_random_calls: u64,
    /// Most random bytes given by one call.
    pub max_random_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // A componentize-py policy is 18.3 MB (CPython and its standard library), a
            // componentize-js one 12.2 MB (SpiderMonkey): room for either plus its own code.
            max_module_bytes: 40 << 20,
            // Start-up of the slowest language measured (SpiderMonkey: 3.9 M) with room to spare.
            base_fuel: 50_000_000,
            // Measured per service: Rust 15 k, Python 250 k, JavaScript 1 M (docs/policy-authoring.md).
            fuel_per_service: 4_000_000,
            // CPython and SpiderMonkey start with tens of MiB of heap snapshot.
            base_memory_bytes: 64 << 20,
            memory_per_service: 16 << 10,
            // wasm tables hold function references; interpreters have tens of thousands.
            max_table_elements: 10_000,
            base_notices: 100,
            notices_per_service: 8,
            max_message_bytes: 4096,
            max_reasons: 32,
            max_other_reason_bytes: 64,
            max_log_lines: 200,
            max_log_line_bytes: 1024,
            max_trap_log_lines: 3,
            // Deep enough for an interpreter's recursion; a runaway recursion stops at it.
            max_wasm_stack: 1 << 20,
            // Measured: componentize-py 14, componentize-qjs 9, componentize-js 4; Rust ran under the old cap of 4.
            max_instances: 32,
            // Measured: componentize-qjs 2, the others 1; each memory has the memory limit.
            max_memories: 4,
            // Measured: 2 for componentize-py, -js and -qjs; Rust ran under the old cap of 4.
            max_tables: 8,
            // Enough for a page of debug prints and a Python traceback, not a flood.
            max_stdio_bytes: 64 << 10,
            // CPython and SpiderMonkey read the clock a few times; a wait loop reads it forever.
            max_clock_reads: 100_000,
            // Runtimes seed their hashes from it once; a policy has no use for more.
            max_random_calls: 10_000,
            // More than a runtime asks for at once.
            max_random_bytes: 1 << 16,
        }
    }
}

impl Limits {
    /// The fuel for a call over `services` services.
    pub fn fuel(&self, services: usize) -> u64 {
        self.base_fuel.saturating_add(self.fuel_per_service.saturating_mul(services as u64))
    }

    /// The memory limit for a call over `services` services.
    pub fn memory_bytes(&self, services: usize) -> usize {
        self.base_memory_bytes.saturating_add(self.memory_per_service.saturating_mul(services))
    }

    /// The most notices a plan over `services` services may carry.
    pub fn max_notices(&self, services: usize) -> usize {
        self.base_notices.saturating_add(self.notices_per_service.saturating_mul(services))
    }
}
