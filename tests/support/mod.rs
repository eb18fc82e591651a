//! A small builder for black-box runs of the `checkallsslcerts` binary.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

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
