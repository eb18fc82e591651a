//! The shipped schedules (`examples/systemd/`, `examples/cron/`) stay valid: the unit files pass
//! the real `systemd-analyze verify` (Debian package `systemd`; no running systemd is needed),
//! and the command line each one runs is accepted by this binary.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::Run;

const INSTALLED: &str = "/usr/local/bin/checkallsslcerts";

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The arguments after the binary in a command line that starts with [`INSTALLED`].
fn arguments(command: &str, origin: &str) -> Vec<String> {
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some(INSTALLED), "{origin} runs {INSTALLED}: {command}");
    words.map(str::to_owned).collect()
}

/// Runs the binary with `args` as a dry run on a small configuration: the arguments must parse
/// (exit 2 is a usage error) and the run must go through.
fn accepted(args: &[String], origin: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n[mail]\nenabled = false\n\n\
             [[service]]\nname = \"web\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
            dir.path().join("state").display(),
            dir.path().join("cert.pem").display(),
            dir.path().join("key.pem").display()
        ),
    )
    .expect("config");
    let out = Run::new().args(args).arg("--config").arg(&config).arg("--dry-run").run();
    assert!(
        out.code != 2 && !out.stderr.contains("error: unexpected argument"),
        "{origin}: {args:?} refused (exit {})\n{}",
        out.code,
        out.stderr
    );
    // The missing certificate of `web` is reported: on stdout, or with --quiet on stderr.
    assert!(
        out.stdout.contains("web") || out.stderr.contains("Service web"),
        "{origin}: {}\n{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn the_systemd_service_and_timer_verify_and_run_a_valid_command() {
    let service = read(&example("systemd/checkallsslcerts.service"));
    let timer = read(&example("systemd/checkallsslcerts.timer"));
    let exec =
        service.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("the service has an ExecStart");
    let args = arguments(exec, "checkallsslcerts.service");
    accepted(&args, "checkallsslcerts.service");

    // systemd-analyze checks that ExecStart is executable: point it at this build.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("checkallsslcerts.service"),
        service.replace(INSTALLED, env!("CARGO_BIN_EXE_checkallsslcerts")),
    )
    .expect("service");
    std::fs::write(dir.path().join("checkallsslcerts.timer"), &timer).expect("timer");
    for unit in ["checkallsslcerts.service", "checkallsslcerts.timer"] {
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join(unit))
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .expect("systemd-analyze runs (Debian package `systemd`)");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.trim().is_empty(), "{unit}: {stderr}");
    }

    // The check is real: a misspelt key is reported.
    std::fs::write(dir.path().join("bad.service"), "[Service]\nType=oneshot\nExecStrat=/bin/true\n")
        .expect("bad");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("bad.service"))
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("ExecStrat"), "systemd-analyze checks keys");
}

#[test]
fn the_cron_line_runs_a_valid_command_as_root() {
    let cron = read(&example("cron/checkallsslcerts"));
    let line = cron
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.contains('='))
        .expect("a schedule line");
    let fields: Vec<&str> = line.splitn(7, char::is_whitespace).collect();
    assert_eq!(fields.len(), 7, "minute hour day month weekday user command: {line}");
    for (field, range) in fields[..2].iter().zip([0..60, 0..24]) {
        let value: u32 = field.parse().unwrap_or_else(|_| panic!("a fixed time, not {field:?}: {line}"));
        assert!(range.contains(&value), "{line}");
    }
    assert_eq!(&fields[2..5], ["*", "*", "*"], "every day: {line}");
    assert_eq!(fields[5], "root", "{line}");
    let args = arguments(fields[6], "cron");
    assert!(args.iter().any(|a| a == "--quiet"), "cron mails any output: {line}");
    accepted(&args, "cron");
}
