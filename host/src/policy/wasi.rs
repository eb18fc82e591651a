//! The empty, deterministic WASI a policy sees.
//!
//! Standard toolchains (componentize-py, componentize-js, wasi-libc) build components that
//! import WASI 0.2 even when the code never touches a file. A policy may import the interfaces
//! of [`ALLOWED`] (any `0.2.x`), and gets them from `wasmtime-wasi` with nothing behind them:
//!
//! - no preopened directories (so no file can be opened), no sockets (every address is refused,
//!   TCP, UDP and name lookup are off), an empty environment, no arguments, no working
//!   directory, an empty standard input;
//! - standard output and error captured, bounded by [`Limits::max_stdio_bytes`], and put in the
//!   policy's log after the call (stdout lines at `info`, stderr lines at `warning`; the last
//!   stderr lines are quoted when the module traps, which is where a Python traceback or a
//!   JavaScript exception is printed);
//! - both clocks read the facts' `now` (`metadata` sees 0) and never advance, and a wait on the
//!   monotonic clock is over at once, so no policy can stall the host;
//! - random bytes from SHA-256 in counter mode over a seed that is the SHA-256 of the facts, so
//!   the same facts give the same bytes, and the same plan;
//! - `wasi:http/types` and `wasi:http/outgoing-handler` (componentize-js imports them for
//!   `fetch`) are present so such a module instantiates, and every call of them traps, naming
//!   the function;
//! - `wasi:cli/exit` ends the call as a trap ("the policy called exit(1)").
//!
//! Clock reads and random calls are counted: past [`Limits::max_clock_reads`] and
//! [`Limits::max_random_calls`] the call traps with a message that says so (a loop waiting for
//! the time to pass would otherwise only run out of fuel). Any other import is refused by name
//! before the module is instantiated (`contract::detect`).

use std::sync::{Arc, Mutex};

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, IoError, OutputStream, Pollable, StreamResult,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::contract::HostState;
use super::limits::Limits;

/// The WASI interfaces a policy may import (without their `@0.2.x` version): offered by
/// `wasmtime-wasi` with nothing behind them, or (`wasi:http`) as functions that trap.
pub const ALLOWED: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

/// The interfaces of [`ALLOWED`] whose every function traps when called.
const TRAPPING: &[&str] = &["wasi:http/types", "wasi:http/outgoing-handler"];

/// `wasi:cli/stdout@0.2.9` → `Some("wasi:cli/stdout")` when the version is a `0.2.x`.
fn unversioned(import: &str) -> Option<&str> {
    let (name, version) = import.split_once('@')?;
    let patch = version.strip_prefix("0.2.")?;
    (!patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit())).then_some(name)
}

/// Whether a policy may import `import` (a WASI 0.2 interface of [`ALLOWED`]).
pub fn allowed(import: &str) -> bool {
    unversioned(import).is_some_and(|name| ALLOWED.contains(&name))
}

/// Adds the WASI of a policy to a contract's linker.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    // The clocks and the random of `wasmtime-wasi` read the machine's: replaced by the facts'.
    linker.allow_shadowing(true);
    wall_clock::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    monotonic_clock::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    random::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    insecure::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    insecure_seed::add_to_linker::<HostState, HasSelf<HostState>>(linker, |state| state)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// A linker for one component: `base`, plus trapping functions for the [`TRAPPING`] interfaces
/// the component imports (their exact version and types are the component's). `None` when the
/// component imports none of them (then `base` serves as it is).
pub fn linker_for(
    base: &Linker<HostState>,
    engine: &wasmtime::Engine,
    component: &Component,
) -> wasmtime::Result<Option<Linker<HostState>>> {
    let ty = component.component_type();
    let trapping: Vec<(String, ComponentItem)> = ty
        .imports(engine)
        .filter(|(name, _)| unversioned(name).is_some_and(|n| TRAPPING.contains(&n)))
        .map(|(name, item)| (name.to_string(), item.ty))
        .collect();
    if trapping.is_empty() {
        return Ok(None);
    }
    // The `wasi:io` resources the trapping interfaces use are the real ones.
    let mut io_resources: Vec<(ResourceType, ResourceType)> = Vec::new();
    for (name, item) in ty.imports(engine) {
        let host = match unversioned(name) {
            Some("wasi:io/streams") => [
                ("input-stream", ResourceType::host::<DynInputStream>()),
                ("output-stream", ResourceType::host::<DynOutputStream>()),
            ]
            .to_vec(),
            Some("wasi:io/poll") => [("pollable", ResourceType::host::<DynPollable>())].to_vec(),
            Some("wasi:io/error") => [("error", ResourceType::host::<IoError>())].to_vec(),
            _ => continue,
        };
        let ComponentItem::ComponentInstance(instance) = item.ty else { continue };
        for (export, item) in instance.exports(engine) {
            if let (ComponentItem::Resource(guest), Some((_, host))) =
                (item.ty, host.iter().find(|(n, _)| *n == export))
            {
                io_resources.push((guest, *host));
            }
        }
    }
    let mut linker = base.clone();
    for (name, item) in trapping {
        let ComponentItem::ComponentInstance(instance) = item else { continue };
        let mut defined = linker.instance(&name)?;
        for (export, item) in instance.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => {
                    let function = format!("{name}#{export}");
                    defined.func_new(export, move |_, _, _, _| {
                        wasmtime::bail!(
                            "the policy called `{function}`: a policy has no network (it decides from the facts alone)"
                        )
                    })?;
                }
                ComponentItem::Resource(guest) => {
                    let host = io_resources
                        .iter()
                        .find(|(g, _)| *g == guest)
                        .map_or(ResourceType::host::<NoHttp>(), |(_, h)| *h);
                    defined.resource(export, host, |_, _| Ok(()))?;
                }
                _ => {}
            }
        }
    }
    Ok(Some(linker))
}

/// The host type behind the `wasi:http` resources, of which no value is ever made.
struct NoHttp;

/// What a policy wrote to its standard output or error: at most `capacity` bytes, and how many
/// more were dropped.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub dropped: usize,
    capacity: usize,
}

/// A standard output or error stream kept in memory (cloning shares it).
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Captured>>);

impl Capture {
    fn new(capacity: usize) -> Capture {
        Capture(Arc::new(Mutex::new(Captured { bytes: Vec::new(), dropped: 0, capacity })))
    }

    pub(crate) fn push(&self, bytes: &[u8]) {
        let Ok(mut captured) = self.0.lock() else { return };
        let room = captured.capacity.saturating_sub(captured.bytes.len());
        let kept = room.min(bytes.len());
        captured.bytes.extend_from_slice(&bytes[..kept]);
        captured.dropped += bytes.len() - kept;
    }

    /// What was written, as lines (the last one even without its newline), and how many bytes
    /// were dropped.
    pub fn lines(&self) -> (Vec<String>, usize) {
        let Ok(captured) = self.0.lock() else { return (Vec::new(), 0) };
        let text = String::from_utf8_lossy(&captured.bytes);
        let lines = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
        (lines, captured.dropped)
    }
}

impl wasmtime_wasi::cli::IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always ready: what does not fit is counted and dropped, never an error to the policy.
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.push(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The WASI state of one call.
pub struct PolicyWasi {
    ctx: WasiCtx,
    table: ResourceTable,
    /// The facts' `now`, in Unix seconds.
    now: i64,
    seed: [u8; 32],
    counter: u64,
    pub(crate) stdout: Capture,
    pub(crate) stderr: Capture,
    pub(crate) clock_reads: u64,
    pub(crate) random_calls: u64,
    max_clock_reads: u64,
    max_random_calls: u64,
    max_random_bytes: u64,
}

impl PolicyWasi {
    /// The WASI of a call at `now` whose random is seeded with `seed`.
    pub fn new(limits: &Limits, now: i64, seed: [u8; 32]) -> PolicyWasi {
        let stdout = Capture::new(limits.max_stdio_bytes);
        let stderr = Capture::new(limits.max_stdio_bytes);
        let ctx = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        PolicyWasi {
            ctx,
            table: ResourceTable::new(),
            now,
            seed,
            counter: 0,
            stdout,
            stderr,
            clock_reads: 0,
            random_calls: 0,
            max_clock_reads: limits.max_clock_reads,
            max_random_calls: limits.max_random_calls,
            max_random_bytes: limits.max_random_bytes,
        }
    }

    fn read_clock(&mut self) -> wasmtime::Result<()> {
        self.clock_reads += 1;
        if self.clock_reads > self.max_clock_reads {
            wasmtime::bail!(
                "the policy read the clock more than {} times; a policy's clock is the facts' `now` and never \
                 advances, so a loop waiting for time to pass never ends",
                self.max_clock_reads
            );
        }
        Ok(())
    }

    fn random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.random_calls += 1;
        if self.random_calls > self.max_random_calls {
            wasmtime::bail!("the policy asked for random bytes more than {} times", self.max_random_calls);
        }
        if len > self.max_random_bytes {
            wasmtime::bail!(
                "the policy asked for {len} random bytes at once (at most {} are given)",
                self.max_random_bytes
            );
        }
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let mut block = [0u8; 40];
            block[..32].copy_from_slice(&self.seed);
            block[32..].copy_from_slice(&self.counter.to_le_bytes());
            self.counter += 1;
            let digest = openssl::sha::sha256(&block);
            let take = (len as usize - out.len()).min(digest.len());
            out.extend_from_slice(&digest[..take]);
        }
        Ok(out)
    }

    fn random_u64(&mut self) -> wasmtime::Result<u64> {
        let bytes = self.random_bytes(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes);
        Ok(u64::from_le_bytes(word))
    }
}

/// The seed of a call's random: the SHA-256 of the facts as JSON.
pub fn seed_for(facts: &crate::facts::model::HostFacts) -> [u8; 32] {
    struct Hasher(openssl::sha::Sha256);
    impl std::io::Write for Hasher {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hasher = Hasher(openssl::sha::Sha256::new());
    // The facts always serialize (plain data); a failure would only change the seed.
    let _ = serde_json::to_writer(&mut hasher, facts);
    hasher.0.finish()
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi.ctx, table: &mut self.wasi.table }
    }
}

impl wall_clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        self.wasi.read_clock()?;
        Ok(wall_clock::Datetime { seconds: self.wasi.now.max(0) as u64, nanoseconds: 0 })
    }

    fn resolution(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        Ok(wall_clock::Datetime { seconds: 1, nanoseconds: 0 })
    }
}

/// A wait on the clock: over at once (the clock never advances, so waiting would be forever).
struct AtOnce;

#[wasmtime_wasi::async_trait]
impl Pollable for AtOnce {
    async fn ready(&mut self) {}
}

impl monotonic_clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        self.wasi.read_clock()?;
        Ok((self.wasi.now.max(0) as u64).saturating_mul(1_000_000_000))
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(1)
    }

    fn subscribe_instant(
        &mut self,
        _when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.wasi.read_clock()?;
        let at_once = self.wasi.table.push(AtOnce)?;
        wasmtime_wasi::p2::subscribe(&mut self.wasi.table, at_once)
    }

    fn subscribe_duration(
        &mut self,
        _duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.wasi.read_clock()?;
        let at_once = self.wasi.table.push(AtOnce)?;
        wasmtime_wasi::p2::subscribe(&mut self.wasi.table, at_once)
    }
}

impl random::Host for HostState {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.wasi.random_bytes(len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.wasi.random_u64()
    }
}

impl insecure::Host for HostState {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.wasi.random_bytes(len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.wasi.random_u64()
    }
}

impl insecure_seed::Host for HostState {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        Ok((self.wasi.random_u64()?, self.wasi.random_u64()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_wasi_0_2_interfaces_are_allowed() {
        assert!(allowed("wasi:cli/stdout@0.2.0"));
        assert!(allowed("wasi:io/streams@0.2.12"));
        assert!(allowed("wasi:http/outgoing-handler@0.2.10"));
        assert!(!allowed("wasi:http/incoming-handler@0.2.0"));
        assert!(!allowed("wasi:keyvalue/store@0.2.0-draft"));
        assert!(!allowed("wasi:cli/stdout@0.3.0"));
        assert!(!allowed("wasi:cli/stdout"));
        assert!(!allowed("wasi:cli/stdout@0.2."));
    }

    #[test]
    fn capture_keeps_its_capacity_and_counts_the_rest() {
        let capture = Capture::new(10);
        capture.push(b"hello\nwor");
        capture.push(b"ld and more\n");
        let (lines, dropped) = capture.lines();
        assert_eq!(lines, ["hello", "worl"]);
        assert_eq!(dropped, 11);
    }

    #[test]
    fn random_is_the_same_for_the_same_seed_and_differs_for_another() {
        let limits = Limits::default();
        let mut a = PolicyWasi::new(&limits, 0, [1; 32]);
        let mut b = PolicyWasi::new(&limits, 0, [1; 32]);
        let mut c = PolicyWasi::new(&limits, 0, [2; 32]);
        let first = a.random_bytes(100).expect("bytes");
        assert_eq!(first, b.random_bytes(100).expect("bytes"));
        assert_ne!(first, c.random_bytes(100).expect("bytes"));
        assert_ne!(first[..32], first[32..64], "counter mode, not a repeated block");
    }
}
