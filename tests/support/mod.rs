//! A small builder for black-box runs of the `checkallsslcerts` binary.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

/// One invocation of the binary.
pub struct Run {
    command: Command,
}

/// The outcome of a run.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn new() -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_checkallsslcerts"));
        command.env_remove("CHECKALLSSLCERTS_CONFIG").env("NO_COLOR", "1");
        // Tests stay on loopback: no DNS, OCSP, CRL or ARI lookups unless a test asks for them
        // with `.env("CHECKALLSSLCERTS_NETWORK_FACTS", "on")` (tests/network_facts.rs).
        command.env("CHECKALLSSLCERTS_NETWORK_FACTS", "off");
        Run { command }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Run {
        self.command.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Run {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Run {
        self.command.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Run {
        self.command.current_dir(dir);
        self
    }

    /// Runs with stdout a pipe whose reader has already gone (like `| head` that stopped
    /// reading): every write to stdout fails with EPIPE. `stdout` in the outcome is empty.
    pub fn run_with_stdout_closed(mut self) -> Outcome {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        self.command.stdout(writer);
        self.run()
    }

    pub fn run(mut self) -> Outcome {
        let Output { status, stdout, stderr } = self.command.output().expect("the binary runs");
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }
}

impl Outcome {
    /// Asserts the exit code, showing the output when it differs.
    pub fn code(self, code: i32) -> Outcome {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

/// Ports handed out to this test process; their lock files stay locked until it exits.
static HELD_PORTS: Mutex<Vec<File>> = Mutex::new(Vec::new());
/// Test ports come from here: below Linux's ephemeral range (32768–60999), where the kernel
/// picks "port 0" and the source port of every outgoing connection.
const PORT_RANGE: std::ops::Range<u16> = 20_000..32_000;

/// A port for a daemon a test starts (or for the tool to listen on later), free on loopback and
/// on every address, for TCP and UDP. Not the kernel's "bind to port 0": that port comes from
/// the ephemeral range, and between the test's bind-and-close and the daemon's bind an outgoing
/// connection of a parallel test can take it (CI saw "Address already in use"). Each port is
/// reserved for this process by a lock file (`flock`) in the temporary directory, held until
/// the process exits, so parallel tests never share one.
pub fn free_port() -> u16 {
    let dir = std::env::temp_dir().join("checkallsslcerts-test-ports");
    std::fs::create_dir_all(&dir).expect("the test ports' lock directory");
    let span = u64::from(PORT_RANGE.end - PORT_RANGE.start);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let start = (u64::from(std::process::id()) * 7_919 + nanos) % span;
    for i in 0..span {
        let port = PORT_RANGE.start + u16::try_from((start + i) % span).expect("in range");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
            .expect("a port lock file");
        if lock.try_lock().is_err() {
            continue;
        }
        let free = TcpListener::bind(("0.0.0.0", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if free {
            HELD_PORTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(lock);
            return port;
        }
    }
    panic!("no free port in {PORT_RANGE:?}")
}

/// `n` distinct ports, as [`free_port`].
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}
