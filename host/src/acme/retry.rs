//! `--allow-retry`: one re-check an hour later, in the real `at` queue (the original
//! `checkallsslcerts` does the same through cPanel's `try-later`).
//!
//! The job runs `<this executable> --no-retry --config <the configuration file>`. Its id is
//! recorded in `<state-dir>/acme/retry.json`; while that job is still in `atq`, no second one is
//! queued. When the order is no longer pending, a job still waiting is removed with `atrm`.
//! `at` jobs are shell scripts by design: every word is single-quoted, nothing else is in it.
//!
//! Without `at`, `systemd-run --on-active=3600` is the fallback (argv, no shell); without
//! either, the error says what to install.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::state::{HistoryEvent, RetryRecord, StateDir};

/// How long after this run the re-check runs.
pub const RETRY_DELAY_MINUTES: i64 = 60;
/// How long `at`, `atq`, `atrm` or `systemd-run` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// A command's exit status and its output (stdout then stderr), at most 64 KiB.
fn run(argv: &[String], stdin: Option<&[u8]>) -> Result<(ExitStatus, String), std::io::Error> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::Error::other("empty command"));
    };
    let mut output = tempfile::tempfile()?;
    let input = match stdin {
        Some(bytes) => {
            let mut file = tempfile::tempfile()?;
            file.write_all(bytes)?;
            file.rewind()?;
            Stdio::from(file)
        }
        None => Stdio::null(),
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(input)
        .stdout(output.try_clone()?)
        .stderr(output.try_clone()?)
        .spawn()?;
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "{program} did not finish within {} s",
                TOOL_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    output.rewind()?;
    let mut text = String::new();
    output.take(64 * 1024).read_to_string(&mut text)?;
    Ok((status, text))
}

/// Quotes a word for `/bin/sh`.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The command the re-check runs.
pub fn retry_command(config_path: &Path) -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program's path: {e}"))?;
    let config = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    Ok(vec![exe.display().to_string(), "--no-retry".into(), "--config".into(), config.display().to_string()])
}

/// The `at` job numbers in `atq`'s output, with their queue letter (`=` while running).
pub fn parse_atq(output: &str) -> Vec<(String, String)> {
    output
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let id = fields.next()?;
            if !id.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let fields: Vec<&str> = fields.collect();
            // "<date words> <queue> <user>"
            let queue = fields.len().checked_sub(2).and_then(|i| fields.get(i))?;
            Some((id.to_owned(), (*queue).to_owned()))
        })
        .collect()
}

/// The job number in `at`'s "job N at DATE" message.
pub fn parse_at_job(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("job ")?;
        let id = rest.split_whitespace().next()?;
        id.bytes().all(|b| b.is_ascii_digit()).then(|| id.to_owned())
    })
}

/// Whether the recorded job is still queued (or running): `Some(queue)`.
fn queued(record: &RetryRecord) -> Option<String> {
    match record.scheduler.as_str() {
        "at" => {
            let (status, out) = run(&["atq".to_string()], None).ok()?;
            if !status.success() {
                return None;
            }
            parse_atq(&out).into_iter().find(|(id, _)| *id == record.id).map(|(_, queue)| queue)
        }
        "systemd-run" => {
            let argv =
                ["systemctl", "is-active", "--quiet", &format!("{}.timer", record.id)].map(str::to_owned);
            run(&argv, None).ok().filter(|(s, _)| s.success()).map(|_| "timer".to_owned())
        }
        _ => None,
    }
}

/// What [`schedule`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    /// A new job was queued; with a warning when `at` said `atd` is not running.
    New(RetryRecord, Option<String>),
    /// The job recorded earlier is still queued; nothing was added.
    Existing(RetryRecord),
}

/// Queues the re-check, unless the one recorded earlier is still queued.
pub fn schedule(state: &StateDir, config_path: &Path, now: i64) -> Result<Scheduled, String> {
    if let Some(record) = state.retry().map_err(|e| e.to_string())?
        && queued(&record).is_some()
    {
        return Ok(Scheduled::Existing(record));
    }
    let command = retry_command(config_path)?;
    let script: Vec<String> = command.iter().map(|w| sh_quote(w)).collect();
    let script = format!("{}\n", script.join(" "));
    let at = ["at", "-M", "now", "+", &RETRY_DELAY_MINUTES.to_string(), "minutes"].map(str::to_owned);
    let mut warning = None;
    let record = match run(&at, Some(script.as_bytes())) {
        Ok((status, out)) if status.success() => {
            if out.contains("No atd running") {
                warning = Some(format!(
                    "`at` queued job {} but says atd is not running, so it will not run until atd is started \
                     (systemctl enable --now atd)",
                    parse_at_job(&out).unwrap_or_default()
                ));
            }
            let id = parse_at_job(&out)
                .ok_or_else(|| format!("`at` queued the re-check but printed no job number: {out}"))?;
            RetryRecord {
                scheduler: "at".into(),
                id,
                scheduled: now,
                runs_at: now + RETRY_DELAY_MINUTES * 60,
                command,
            }
        }
        Ok((status, out)) => {
            return Err(format!("`at` could not queue the re-check ({status}): {}", out.trim()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => systemd_fallback(command, now)?,
        Err(e) => return Err(format!("cannot run `at`: {e}")),
    };
    state.save_retry(&record).map_err(|e| e.to_string())?;
    let mut event = HistoryEvent::new("retry-scheduled", now);
    event.detail = Some(format!("{} job {} runs {:?}", record.scheduler, record.id, record.command));
    state.log(&event).map_err(|e| e.to_string())?;
    Ok(Scheduled::New(record, warning))
}

fn systemd_fallback(command: Vec<String>, now: i64) -> Result<RetryRecord, String> {
    let unit = format!("checkallsslcerts-retry-{now}");
    let mut argv = vec![
        "systemd-run".to_string(),
        format!("--on-active={}", RETRY_DELAY_MINUTES * 60),
        format!("--unit={unit}"),
        "--description=checkallsslcerts: check the pending certificate order again".to_string(),
    ];
    argv.extend(command.iter().cloned());
    match run(&argv, None) {
        Ok((status, _)) if status.success() => Ok(RetryRecord {
            scheduler: "systemd-run".into(),
            id: unit,
            scheduled: now,
            runs_at: now + RETRY_DELAY_MINUTES * 60,
            command,
        }),
        Ok((status, out)) => Err(format!(
            "`at` is not installed and `systemd-run` failed ({status}): {}; install the `at` package and start \
             `atd`, or run `checkallsslcerts --no-retry` again in an hour",
            out.trim()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(
            "cannot schedule the re-check: neither `at` (package `at`, with `atd` running) nor `systemd-run` is \
             installed; install `at`, or run `checkallsslcerts --no-retry` again in an hour"
                .to_string(),
        ),
        Err(e) => Err(format!("cannot run `systemd-run`: {e}")),
    }
}

/// Removes the recorded re-check if it is still waiting (not if it is the job running now),
/// and forgets it. Returns a message for the admin when something was removed or failed.
pub fn cancel(state: &StateDir, now: i64) -> Option<String> {
    let record = state.retry().ok()??;
    let queue = queued(&record);
    let message = match (record.scheduler.as_str(), queue.as_deref()) {
        ("at", Some(q)) if q != "=" => match run(&["atrm".to_string(), record.id.clone()], None) {
            Ok((status, _)) if status.success() => {
                Some(format!("removed the re-check (at job {}): no order is pending any more", record.id))
            }
            Ok((status, out)) => {
                Some(format!("cannot remove at job {} ({status}): {}", record.id, out.trim()))
            }
            Err(e) => Some(format!("cannot run atrm: {e}")),
        },
        ("systemd-run", Some(_)) => {
            let argv = ["systemctl", "stop", &format!("{}.timer", record.id)].map(str::to_owned);
            match run(&argv, None) {
                Ok((status, _)) if status.success() => {
                    Some(format!("stopped the re-check timer {}", record.id))
                }
                Ok((status, out)) => Some(format!("cannot stop {} ({status}): {}", record.id, out.trim())),
                Err(e) => Some(format!("cannot run systemctl: {e}")),
            }
        }
        _ => None,
    };
    let _ = state.clear_retry();
    let mut event = HistoryEvent::new("retry-removed", now);
    event.detail = Some(format!("{} job {}", record.scheduler, record.id));
    let _ = state.log(&event);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_every_character() {
        assert_eq!(sh_quote("/usr/bin/checkallsslcerts"), "'/usr/bin/checkallsslcerts'");
        assert_eq!(sh_quote("it's $(x); `y`"), r"'it'\''s $(x); `y`'");
        // Round trip through a real sh.
        let word = "a b'c\"d$e`f\\g;h\ni";
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote(word)))
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), word);
    }

    #[test]
    fn at_and_atq_output_is_parsed() {
        assert_eq!(
            parse_at_job(
                "warning: commands will be executed using /bin/sh\njob 17 at Mon Jun 16 12:00:00 2025\n"
            ),
            Some("17".into())
        );
        assert_eq!(parse_at_job("Can't open /var/run/atd.pid to signal atd. No atd running?\n"), None);
        let atq = "17\tMon Jun 16 12:00:00 2025 a root\n18\tMon Jun 16 12:05:00 2025 = root\n";
        assert_eq!(parse_atq(atq), vec![("17".into(), "a".into()), ("18".into(), "=".into())]);
    }

    #[test]
    fn retry_command_runs_this_program_with_no_retry() {
        let command = retry_command(Path::new("/etc/checkallsslcerts/config.toml")).expect("command");
        assert_eq!(&command[1..], ["--no-retry", "--config", "/etc/checkallsslcerts/config.toml"]);
        assert!(Path::new(&command[0]).is_absolute());
    }
}
