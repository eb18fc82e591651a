//! Running a service's reload commands.
//!
//! A service has one reload command, or several (a certificate file shared by Postfix and
//! Dovecot needs both daemons reloaded): they run in order, each with the timeout, and the first
//! that fails stops the others (its error names its program). Each command is an argv:
//! `argv[0]` is executed directly (looked up in `PATH` when it has no `/`), never through a
//! shell, so arguments with spaces, `;` or `$(...)` arrive as they are.
//! Standard input is `/dev/null`; standard output and error are captured, each bounded to its
//! last [`OUTPUT_LIMIT`] bytes, by reader threads (so a chatty command never blocks on a full
//! pipe). The command runs in a process group of its own; when it outlives its timeout the whole
//! group is killed with `SIGKILL`. A command that exits but leaves a child holding the output
//! pipes open is not waited for longer than [`PIPE_GRACE`]; on a normal exit nothing is killed
//! (a reload may legitimately start a daemon).

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::errors::ReloadError;

/// How much of each of stdout and stderr is kept (the last bytes).
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// How long to wait for the output pipes to close once the command has exited.
pub const PIPE_GRACE: Duration = Duration::from_secs(2);
/// How much of stderr an error message quotes (the last bytes).
const ERROR_TAIL: usize = 2000;

/// A service's reload: one or more commands, each an argv (no shell), run in order, and how
/// long each may run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadCommand {
    pub argvs: Vec<Vec<String>>,
    pub timeout: Duration,
}

impl ReloadCommand {
    /// One command.
    pub fn single(argv: Vec<String>, timeout: Duration) -> ReloadCommand {
        ReloadCommand { argvs: vec![argv], timeout }
    }

    /// The reload of a configured service; `None` when it has no reload command.
    pub fn for_service(service: &crate::config::ServiceConfig) -> Option<ReloadCommand> {
        (!service.reload.is_empty())
            .then(|| ReloadCommand { argvs: service.reload.clone(), timeout: service.reload_timeout })
    }
}

/// What a successful reload printed (with several commands: the last one's output, and the
/// time they all took).
#[derive(Debug, Clone)]
pub struct ReloadOutput {
    pub status: ExitStatus,
    /// The last [`OUTPUT_LIMIT`] bytes of stdout, lossily decoded.
    pub stdout: String,
    /// The last [`OUTPUT_LIMIT`] bytes of stderr, lossily decoded.
    pub stderr: String,
    /// Whether stdout was longer than [`OUTPUT_LIMIT`] and its beginning dropped.
    pub stdout_truncated: bool,
    /// Whether stderr was longer than [`OUTPUT_LIMIT`] and its beginning dropped.
    pub stderr_truncated: bool,
    pub elapsed: Duration,
}

/// Runs the commands of `cmd` in order for `service`: succeeds only when each exits with status
/// 0 within the timeout; the first that does not stops the run, and its error is returned.
pub fn run(cmd: &ReloadCommand, service: &str) -> Result<ReloadOutput, ReloadError> {
    let start = Instant::now();
    let mut last = None;
    for argv in &cmd.argvs {
        last = Some(run_one(argv, cmd.timeout, service)?);
    }
    let mut output = last.ok_or_else(|| ReloadError::EmptyArgv { service: service.to_string() })?;
    output.elapsed = start.elapsed();
    Ok(output)
}

/// Runs one command: succeeds only on exit status 0 within `timeout`.
fn run_one(argv: &[String], timeout: Duration, service: &str) -> Result<ReloadOutput, ReloadError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ReloadError::EmptyArgv { service: service.to_string() });
    };
    let start = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|source| ReloadError::Spawn {
            service: service.to_string(),
            program: program.clone(),
            source,
        })?;
    let stdout = Capture::start(child.stdout.take());
    let stderr = Capture::start(child.stderr.take());

    let waited = wait_with_timeout(&mut child, timeout);
    let grace_end = Instant::now() + PIPE_GRACE;
    let (out, out_truncated) = stdout.finish(grace_end);
    let (err, err_truncated) = stderr.finish(grace_end);
    let elapsed = start.elapsed();

    let status = match waited {
        Ok(Some(status)) => status,
        Ok(None) => {
            return Err(ReloadError::TimedOut {
                service: service.to_string(),
                program: program.clone(),
                timeout,
                stderr_tail: tail(&err, ERROR_TAIL),
            });
        }
        Err(source) => {
            return Err(ReloadError::Wait { service: service.to_string(), program: program.clone(), source });
        }
    };
    if !status.success() {
        return Err(ReloadError::Failed {
            service: service.to_string(),
            program: program.clone(),
            status: describe_status(status),
            stderr_tail: tail(&err, ERROR_TAIL),
        });
    }
    Ok(ReloadOutput {
        status,
        stdout: out,
        stderr: err,
        stdout_truncated: out_truncated,
        stderr_truncated: err_truncated,
        elapsed,
    })
}

/// Waits for `child` up to `timeout`; `Ok(None)` means it timed out and its process group
/// was killed (and the child reaped).
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) => {}
            Err(e) => {
                kill_group(child);
                let _ = child.wait();
                return Err(e);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(child);
            child.wait()?;
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Kills the child's process group (the child leads it: `process_group(0)`), and the child
/// itself should the group be gone already.
fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map(|s| format!(" ({})", s.as_str())).unwrap_or_default();
            format!("was killed by signal {sig}{name}")
        }
        (None, None) => format!("ended with {status}"),
    }
}

/// The last `max` bytes of `s`, cut at a character boundary.
fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

#[derive(Default)]
struct Buffer {
    data: Vec<u8>,
    truncated: bool,
}

/// A reader thread that keeps the last [`OUTPUT_LIMIT`] bytes of a pipe.
struct Capture {
    buffer: Arc<Mutex<Buffer>>,
    done: Option<mpsc::Receiver<()>>,
}

impl Capture {
    fn start<R: Read + Send + 'static>(pipe: Option<R>) -> Capture {
        let buffer = Arc::new(Mutex::new(Buffer::default()));
        let Some(mut pipe) = pipe else {
            return Capture { buffer, done: None };
        };
        let (tx, rx) = mpsc::channel();
        let shared = Arc::clone(&buffer);
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match pipe.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        let Ok(mut b) = shared.lock() else { break };
                        b.data.extend_from_slice(&chunk[..n]);
                        if b.data.len() > OUTPUT_LIMIT {
                            let excess = b.data.len() - OUTPUT_LIMIT;
                            b.data.drain(..excess);
                            b.truncated = true;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(());
        });
        Capture { buffer, done: Some(rx) }
    }

    /// Waits for the pipe to close (at most until `deadline`) and returns what was captured.
    fn finish(self, deadline: Instant) -> (String, bool) {
        if let Some(rx) = self.done {
            let _ = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        }
        match self.buffer.lock() {
            Ok(b) => (String::from_utf8_lossy(&b.data).into_owned(), b.truncated),
            Err(_) => (String::new(), false),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    /// Writes an executable `sh` script into `dir`.
    pub(crate) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn cmd(argv: &[&str], timeout: Duration) -> ReloadCommand {
        ReloadCommand::single(argv.iter().map(|s| s.to_string()).collect(), timeout)
    }

    #[test]
    fn arguments_arrive_as_argv_not_through_a_shell() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let record = tmp.path().join("args");
        let pwned = tmp.path().join("pwned");
        let s = script(
            tmp.path(),
            "record.sh",
            &format!("printf '%s\\n' \"$@\" > '{}'\necho done", record.display()),
        );
        let evil = format!("x; touch {}", pwned.display());
        let subst = format!("$(touch {})", pwned.display());
        let out = run(
            &cmd(&[s.to_str().expect("utf8"), "with space", &evil, &subst, "*"], Duration::from_secs(10)),
            "nginx",
        )
        .expect("reload");
        assert!(out.status.success());
        assert_eq!(out.stdout, "done\n");
        let got = fs::read_to_string(&record).expect("record");
        assert_eq!(got, format!("with space\n{evil}\n{subst}\n*\n"));
        assert!(!pwned.exists());
    }

    #[test]
    fn several_commands_run_in_order_and_the_last_output_is_kept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("log");
        let s =
            script(tmp.path(), "step.sh", &format!("echo \"$1\" >> '{}'\necho \"out $1\"", log.display()));
        let s = s.to_str().expect("utf8").to_string();
        let cmd = ReloadCommand {
            argvs: vec![vec![s.clone(), "postfix".into()], vec![s.clone(), "dovecot".into()]],
            timeout: Duration::from_secs(10),
        };
        let out = run(&cmd, "mail").expect("reload");
        assert_eq!(fs::read_to_string(&log).expect("log"), "postfix\ndovecot\n");
        assert_eq!(out.stdout, "out dovecot\n");
    }

    #[test]
    fn the_first_failing_command_stops_the_others_and_is_named() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let log = tmp.path().join("log");
        let ok = script(tmp.path(), "ok.sh", &format!("echo \"$1\" >> '{}'", log.display()));
        let bad = script(tmp.path(), "bad.sh", "echo 'doveadm: reload failed' >&2; exit 75");
        let (ok, bad) = (ok.to_str().expect("utf8").to_string(), bad.to_str().expect("utf8").to_string());
        let cmd = ReloadCommand {
            argvs: vec![
                vec![ok.clone(), "first".into()],
                vec![bad.clone()],
                vec![ok.clone(), "third".into()],
            ],
            timeout: Duration::from_secs(10),
        };
        let msg = run(&cmd, "mail").expect_err("the second fails").to_string();
        assert!(
            msg.starts_with(&format!("service mail: reload command {bad} exited with status 75")),
            "{msg}"
        );
        assert!(msg.contains("doveadm: reload failed"), "{msg}");
        assert_eq!(fs::read_to_string(&log).expect("log"), "first\n", "the third never ran");

        // An empty command in the list stops the run too; no commands at all is an error.
        let cmd = ReloadCommand {
            argvs: vec![vec![ok.clone(), "again".into()], vec![]],
            timeout: Duration::from_secs(10),
        };
        assert!(matches!(run(&cmd, "mail"), Err(ReloadError::EmptyArgv { .. })));
        assert_eq!(fs::read_to_string(&log).expect("log"), "first\nagain\n");
        let none = ReloadCommand { argvs: vec![], timeout: Duration::from_secs(10) };
        assert!(matches!(run(&none, "mail"), Err(ReloadError::EmptyArgv { .. })));
    }

    #[test]
    fn stdin_is_null() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = script(tmp.path(), "cat.sh", "cat; echo end");
        let out = run(&cmd(&[s.to_str().expect("utf8")], Duration::from_secs(10)), "svc").expect("reload");
        assert_eq!(out.stdout, "end\n");
    }

    #[test]
    fn failure_names_service_program_status_and_stderr_tail() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = script(
            tmp.path(),
            "fail.sh",
            "i=0; while [ $i -lt 500 ]; do echo \"noise $i\" >&2; i=$((i+1)); done\n\
             echo 'nginx: [emerg] cannot load certificate' >&2; exit 3",
        );
        let e = run(&cmd(&[s.to_str().expect("utf8")], Duration::from_secs(10)), "nginx").expect_err("fails");
        let msg = e.to_string();
        assert!(msg.starts_with("service nginx: reload command "), "{msg}");
        assert!(msg.contains("fail.sh exited with status 3"), "{msg}");
        assert!(msg.contains("cannot load certificate"), "{msg}");
        assert!(!msg.contains("noise 1\n"), "stderr is cut to its tail: {msg}");
        assert!(msg.len() < ERROR_TAIL + 300, "{}", msg.len());
    }

    #[test]
    fn spawn_error_and_empty_argv() {
        let e = run(&cmd(&["/nonexistent/reload"], Duration::from_secs(1)), "dovecot").expect_err("spawn");
        let msg = e.to_string();
        assert!(msg.contains("dovecot") && msg.contains("/nonexistent/reload"), "{msg}");
        let e = run(&cmd(&[], Duration::from_secs(1)), "dovecot").expect_err("empty");
        assert!(matches!(e, ReloadError::EmptyArgv { .. }));
    }

    #[test]
    fn killed_by_signal_is_reported() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = script(tmp.path(), "sig.sh", "kill -TERM $$");
        let e = run(&cmd(&[s.to_str().expect("utf8")], Duration::from_secs(10)), "svc").expect_err("signal");
        assert!(e.to_string().contains("killed by signal 15 (SIGTERM)"), "{e}");
    }

    #[test]
    fn output_is_bounded() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = script(tmp.path(), "loud.sh", "head -c 300000 /dev/zero | tr '\\0' 'x'; echo END");
        let out = run(&cmd(&[s.to_str().expect("utf8")], Duration::from_secs(20)), "svc").expect("reload");
        assert_eq!(out.stdout.len(), OUTPUT_LIMIT);
        assert!(out.stdout_truncated);
        assert!(out.stdout.ends_with("xEND\n"));
        assert!(!out.stderr_truncated);
    }

    fn process_gone(pid: i32) -> bool {
        // Gone, or a zombie waiting for a reaper that is not us.
        match fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => {
                stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
            }
        }
    }

    #[test]
    fn timeout_kills_the_process_group() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pidfile = tmp.path().join("child.pid");
        let s = script(
            tmp.path(),
            "hang.sh",
            &format!("sleep 60 & echo $! > '{}'\necho waiting >&2\nsleep 60", pidfile.display()),
        );
        let start = Instant::now();
        let e =
            run(&cmd(&[s.to_str().expect("utf8")], Duration::from_millis(500)), "exim").expect_err("timeout");
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
        let msg = e.to_string();
        assert!(msg.contains("service exim"), "{msg}");
        assert!(msg.contains("timed out after 500ms"), "{msg}");
        assert!(msg.contains("stderr: waiting"), "{msg}");
        let pid: i32 = fs::read_to_string(&pidfile).expect("pidfile").trim().parse().expect("pid");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !process_gone(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert!(process_gone(pid), "the background child {pid} survived");
    }

    #[test]
    fn an_escaped_daemon_holding_the_pipe_does_not_hang_us() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // The daemon keeps stdout open and leaves our process group; the command exits 0.
        let s = script(tmp.path(), "daemon.sh", "setsid sleep 5 & echo started");
        let start = Instant::now();
        let out = run(&cmd(&[s.to_str().expect("utf8")], Duration::from_secs(30)), "svc").expect("reload");
        assert!(start.elapsed() < PIPE_GRACE + Duration::from_secs(2));
        assert_eq!(out.stdout, "started\n");
    }
}
