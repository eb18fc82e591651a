//! `--allow-retry`: one re-check, in the real `at` queue (the original `checkallsslcerts` does
//! the same through cPanel's `try-later`), an hour later — or, when the CA asked with
//! `Retry-After` to look at the order again later than that, at the first minute not before
//! the CA's time (held to at most 7 days, as the back-off is): see [`delay`].
//!
//! The job runs `<this executable> --no-retry --config <the configuration file>`. Its id is
//! recorded in `<state-dir>/acme/retry.json`; while that job is still in `atq`, no second one is
//! queued — unless it would run before the CA's time, in which case it is removed (`atrm`) and
//! the new one takes its place. When the order is no longer pending, a job still waiting is
//! removed with `atrm`. `at` jobs are shell scripts by design: every word is single-quoted,
//! nothing else is in it.
//!
//! The job's environment has `CHECKALLSSLCERTS_RETRY_JOB=<token>` (the token is in
//! `retry.json`): a run that carries it is the re-check itself. `--no-retry` keeps it from
//! queueing anything after it has looked at the order, but a re-check that wakes before the CA's
//! time (it cannot look at the order at all) queues itself again for that time ([`recheck`]).
//!
//! Without `at`, `systemd-run --on-active=<the same delay in seconds>` is the fallback (argv, no
//! shell); without either, the error says what to install.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::client::MAX_CA_RETRY_AFTER_SECS;
use super::state::{HistoryEvent, RetryRecord, StateDir};

/// How long after this run the re-check runs at the least (the original: an hour).
pub const RETRY_DELAY_MINUTES: i64 = 60;
/// The environment variable that marks the re-check's own run; its value is the record's token.
pub const RETRY_JOB_ENV: &str = "CHECKALLSSLCERTS_RETRY_JOB";
/// How long `at`, `atq`, `atrm` or `systemd-run` may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// When a re-check runs, and why then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// Minutes from now: `at now + N minutes`, `systemd-run --on-active=<N × 60>`.
    pub minutes: i64,
    /// When it runs: `at` drops the seconds of "now", so this is a whole minute.
    pub runs_at: i64,
    /// The time the CA asked for with `Retry-After`, held to at most 7 days after now; `None`
    /// when it asked for none, or for a time already past.
    pub ca_until: Option<i64>,
    /// The CA asked for more than 7 days (the re-check runs at the cap).
    pub capped: bool,
}

impl Delay {
    /// Whether the CA's time (not the hour) set the delay.
    pub fn set_by_ca(&self) -> bool {
        self.minutes > RETRY_DELAY_MINUTES
    }

    /// Why the re-check runs then, for the admin.
    pub fn reason(&self) -> String {
        match self.ca_until {
            Some(until) if self.set_by_ca() => format!(
                "the certificate authority asked for {} with Retry-After{}",
                crate::time::utc_seconds(until),
                if self.capped {
                    format!(
                        " (it asked for later; held to at most {} days)",
                        MAX_CA_RETRY_AFTER_SECS / 86_400
                    )
                } else {
                    String::new()
                }
            ),
            Some(until) => format!(
                "an hour after this run; the certificate authority asked for {} with Retry-After, which is not later",
                crate::time::utc_seconds(until)
            ),
            None => "an hour after this run".to_string(),
        }
    }
}

/// When a re-check queued at `now` runs: an hour later, or at the first whole minute not before
/// `ca_until` (the CA's `Retry-After`), whichever is later; the CA's time is held to at most
/// [`MAX_CA_RETRY_AFTER_SECS`] after `now`.
pub fn delay(now: i64, ca_until: Option<i64>) -> Delay {
    let cap = now.saturating_add(MAX_CA_RETRY_AFTER_SECS);
    let asked = ca_until.filter(|until| *until > now);
    let capped = asked.is_some_and(|until| until > cap);
    let ca_until = asked.map(|until| until.min(cap));
    // `at now + N minutes` runs at the start of the minute: the seconds of now are dropped.
    let minute = now - now.rem_euclid(60);
    let for_ca = ca_until.map_or(0, |until| (until - minute + 59).div_euclid(60));
    let minutes = RETRY_DELAY_MINUTES.max(for_ca);
    Delay { minutes, runs_at: minute + minutes * 60, ca_until, capped }
}

/// A command's exit status and its output (stdout then stderr), at most 64 KiB.
/// `env` is added to the environment.
fn run(
    argv: &[String],
    stdin: Option<&[u8]>,
    env: &[(&str, &str)],
) -> Result<(ExitStatus, String), std::io::Error> {
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
        .envs(env.iter().copied())
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
            let (status, out) = run(&["atq".to_string()], None, &[]).ok()?;
            if !status.success() {
                return None;
            }
            parse_atq(&out).into_iter().find(|(id, _)| *id == record.id).map(|(_, queue)| queue)
        }
        "systemd-run" => {
            let argv =
                ["systemctl", "is-active", "--quiet", &format!("{}.timer", record.id)].map(str::to_owned);
            run(&argv, None, &[]).ok().filter(|(s, _)| s.success()).map(|_| "timer".to_owned())
        }
        _ => None,
    }
}

/// Whether the recorded job is still waiting to run (queued, not running now).
fn waiting(record: &RetryRecord) -> bool {
    queued(record).is_some_and(|queue| queue != "=")
}

/// What [`schedule`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    /// A new job was queued.
    New {
        record: RetryRecord,
        /// When it runs and why then.
        delay: Delay,
        /// A job that was waiting but would have run before the CA's time, removed for this one.
        replaced: Option<RetryRecord>,
        /// `at` said `atd` is not running.
        warning: Option<String>,
    },
    /// The job recorded earlier is still waiting, and not before the CA's time; nothing was added.
    Existing(RetryRecord),
}

/// A token that only the queued job's environment carries.
fn new_token() -> String {
    let mut bytes = [0u8; 16];
    match openssl::rand::rand_bytes(&mut bytes) {
        Ok(()) => hex::encode(bytes),
        // Not a secret, only a name: the time and the process id are unique enough.
        Err(_) => format!("{}-{}", super::unix_now(), std::process::id()),
    }
}

/// `at` queueing the job `minutes` from now (no mail: the run reports for itself).
pub fn at_argv(minutes: i64) -> Vec<String> {
    ["at", "-M", "now", "+", &minutes.to_string(), "minutes"].map(str::to_owned).to_vec()
}

/// `systemd-run` starting `command` `minutes` from now in the transient unit `unit`, with the
/// job's token in its environment.
pub fn systemd_argv(unit: &str, minutes: i64, token: &str, command: &[String]) -> Vec<String> {
    let mut argv = vec![
        "systemd-run".to_string(),
        format!("--on-active={}", minutes * 60),
        format!("--unit={unit}"),
        format!("--setenv={RETRY_JOB_ENV}={token}"),
        "--description=checkallsslcerts: check the pending certificate order again".to_string(),
    ];
    argv.extend(command.iter().cloned());
    argv
}

/// Queues the re-check for [`delay`]`(now, ca_until)`, unless the one recorded earlier is still
/// waiting and runs no earlier than the CA's time. A waiting job that would run before the CA's
/// time is removed first (it would only wake up to find the order not to be looked at yet); if
/// it cannot be removed, nothing is queued and the error says so.
pub fn schedule(
    state: &StateDir,
    config_path: &Path,
    now: i64,
    ca_until: Option<i64>,
) -> Result<Scheduled, String> {
    let delay = delay(now, ca_until);
    let mut replaced = None;
    if let Some(record) = state.retry().map_err(|e| e.to_string())?
        && waiting(&record)
    {
        match delay.ca_until {
            Some(until) if record.runs_at < until => {
                if let Err(e) = remove(&record) {
                    return Err(format!(
                        "the queued re-check ({} job {}) runs at {}, before the time the certificate                          authority asked for ({}), and could not be removed: {e}",
                        record.scheduler,
                        record.id,
                        crate::time::utc_seconds(record.runs_at),
                        crate::time::utc_seconds(until)
                    ));
                }
                let mut event = HistoryEvent::new("retry-removed", now);
                event.detail = Some(format!(
                    "{} job {}: it would have run at {}, before the certificate authority's Retry-After ({})",
                    record.scheduler,
                    record.id,
                    crate::time::utc_seconds(record.runs_at),
                    crate::time::utc_seconds(until)
                ));
                let _ = state.log(&event);
                replaced = Some(record);
            }
            _ => return Ok(Scheduled::Existing(record)),
        }
    }
    let command = retry_command(config_path)?;
    let token = new_token();
    let script: Vec<String> = command.iter().map(|w| sh_quote(w)).collect();
    let script = format!("{}\n", script.join(" "));
    let mut warning = None;
    // `at` keeps the environment it was called with in the job: the token goes in that way.
    let record = match run(&at_argv(delay.minutes), Some(script.as_bytes()), &[(RETRY_JOB_ENV, &token)]) {
        Ok((status, out)) if status.success() => {
            if out.contains("No atd running") || out.contains("at daemon not running") {
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
                runs_at: delay.runs_at,
                command,
                token: Some(token),
            }
        }
        Ok((status, out)) => {
            return Err(format!("`at` could not queue the re-check ({status}): {}", out.trim()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => systemd_fallback(command, token, now, &delay)?,
        Err(e) => return Err(format!("cannot run `at`: {e}")),
    };
    state.save_retry(&record).map_err(|e| e.to_string())?;
    let mut event = HistoryEvent::new("retry-scheduled", now);
    event.detail = Some(format!(
        "{} job {} runs {:?} at {} ({})",
        record.scheduler,
        record.id,
        record.command,
        crate::time::utc_seconds(record.runs_at),
        delay.reason()
    ));
    state.log(&event).map_err(|e| e.to_string())?;
    Ok(Scheduled::New { record, delay, replaced, warning })
}

fn systemd_fallback(
    command: Vec<String>,
    token: String,
    now: i64,
    delay: &Delay,
) -> Result<RetryRecord, String> {
    let unit = format!("checkallsslcerts-retry-{now}");
    let argv = systemd_argv(&unit, delay.minutes, &token, &command);
    match run(&argv, None, &[]) {
        Ok((status, _)) if status.success() => Ok(RetryRecord {
            scheduler: "systemd-run".into(),
            id: unit,
            scheduled: now,
            // The timer counts from now, not from the start of the minute.
            runs_at: now + delay.minutes * 60,
            command,
            token: Some(token),
        }),
        Ok((status, out)) => Err(format!(
            "`at` is not installed and `systemd-run` failed ({status}): {}; install the `at` package and start \
             `atd`, or run `checkallsslcerts --no-retry` again after {}",
            out.trim(),
            crate::time::utc_seconds(delay.runs_at)
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "cannot schedule the re-check: neither `at` (package `at`, with `atd` running) nor `systemd-run` is \
             installed; install `at`, or run `checkallsslcerts --no-retry` again after {}",
            crate::time::utc_seconds(delay.runs_at)
        )),
        Err(e) => Err(format!("cannot run `systemd-run`: {e}")),
    }
}

/// Removes a waiting job: `atrm`, or stops the systemd timer. `Ok` with what was done.
fn remove(record: &RetryRecord) -> Result<String, String> {
    match record.scheduler.as_str() {
        "at" => match run(&["atrm".to_string(), record.id.clone()], None, &[]) {
            Ok((status, _)) if status.success() => Ok(format!("at job {}", record.id)),
            Ok((status, out)) => {
                Err(format!("cannot remove at job {} ({status}): {}", record.id, out.trim()))
            }
            Err(e) => Err(format!("cannot run atrm: {e}")),
        },
        "systemd-run" => {
            let argv = ["systemctl", "stop", &format!("{}.timer", record.id)].map(str::to_owned);
            match run(&argv, None, &[]) {
                Ok((status, _)) if status.success() => Ok(format!("the timer {}", record.id)),
                Ok((status, out)) => Err(format!("cannot stop {} ({status}): {}", record.id, out.trim())),
                Err(e) => Err(format!("cannot run systemctl: {e}")),
            }
        }
        other => Err(format!("unknown scheduler {other:?} in retry.json")),
    }
}

/// The recorded re-check, if this run is it: `token` (the value of [`RETRY_JOB_ENV`] in this
/// run's environment) is the one recorded when it was queued. A run the admin starts by hand
/// does not carry it; `at -c N | sh` does (it runs the job's script), and then the job itself is
/// still waiting, so nothing more is queued.
pub fn recheck(state: &StateDir, token: Option<&str>) -> Option<RetryRecord> {
    let token = token.filter(|t| !t.is_empty())?;
    state.retry().ok()?.filter(|record| record.token.as_deref() == Some(token))
}

/// Removes the recorded re-check if it is still waiting (not if it is the job running now),
/// and forgets it. Returns a message for the admin when something was removed or failed.
pub fn cancel(state: &StateDir, now: i64) -> Option<String> {
    let record = state.retry().ok()??;
    let message = if waiting(&record) {
        Some(match remove(&record) {
            Ok(what) => format!("removed the re-check ({what}): no order is pending any more"),
            Err(e) => e,
        })
    } else {
        None
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

    /// 2025-06-16 12:00:45 UTC: 45 seconds into a minute.
    const NOW: i64 = 1_750_075_245;
    const MINUTE: i64 = NOW - 45;

    #[test]
    fn the_delay_is_an_hour_or_the_cas_time_whichever_is_later() {
        // No Retry-After, or one already past: an hour (at drops the seconds of now).
        for asked in [None, Some(NOW - 10), Some(NOW)] {
            let d = delay(NOW, asked);
            assert_eq!(d, Delay { minutes: 60, runs_at: MINUTE + 3600, ca_until: None, capped: false });
            assert!(!d.set_by_ca());
            assert_eq!(d.reason(), "an hour after this run");
        }
        // Retry-After: 60 — sooner than the hour: the hour.
        let d = delay(NOW, Some(NOW + 60));
        assert_eq!((d.minutes, d.runs_at, d.ca_until), (60, MINUTE + 3600, Some(NOW + 60)));
        assert!(!d.set_by_ca());
        assert!(d.reason().starts_with("an hour after this run; the certificate authority asked for 2025-06-16 12:01:45 UTC with Retry-After"), "{}", d.reason());
        // Retry-After: 7200 — two hours and 45 s after the minute: the job's minute is the first
        // not before the CA's time (a job at 14:00:00 would wake 45 s too early).
        let d = delay(NOW, Some(NOW + 7200));
        assert_eq!((d.minutes, d.runs_at, d.capped), (121, MINUTE + 121 * 60, false));
        assert!(d.runs_at >= NOW + 7200 && d.runs_at < NOW + 7200 + 60);
        assert!(d.set_by_ca());
        assert_eq!(
            d.reason(),
            "the certificate authority asked for 2025-06-16 14:00:45 UTC with Retry-After"
        );
        // A CA time on a whole minute is not rounded further.
        let d = delay(MINUTE, Some(MINUTE + 7200));
        assert_eq!((d.minutes, d.runs_at), (120, MINUTE + 7200));
        // Just past the hour: rounded up to the next minute.
        let d = delay(MINUTE, Some(MINUTE + 3601));
        assert_eq!((d.minutes, d.runs_at), (61, MINUTE + 61 * 60));
        // Ten days: held to the 7-day cap of the back-off.
        let d = delay(NOW, Some(NOW + 10 * 86_400));
        assert_eq!(d.ca_until, Some(NOW + MAX_CA_RETRY_AFTER_SECS));
        assert!(d.capped && d.set_by_ca());
        assert_eq!(d.minutes, 7 * 24 * 60 + 1);
        assert!(d.runs_at >= NOW + MAX_CA_RETRY_AFTER_SECS && d.runs_at < NOW + MAX_CA_RETRY_AFTER_SECS + 60);
        assert!(d.reason().contains("held to at most 7 days"), "{}", d.reason());
        // Exactly the cap is not "capped".
        assert!(!delay(NOW, Some(NOW + MAX_CA_RETRY_AFTER_SECS)).capped);
    }

    #[test]
    fn at_and_systemd_run_get_the_same_delay() {
        let d = delay(NOW, Some(NOW + 7200));
        assert_eq!(at_argv(d.minutes), ["at", "-M", "now", "+", "121", "minutes"]);
        let command = vec!["/usr/sbin/checkallsslcerts".to_string(), "--no-retry".to_string()];
        let argv = systemd_argv("checkallsslcerts-retry-1", d.minutes, "abc", &command);
        assert_eq!(argv[1], "--on-active=7260");
        assert!(argv.contains(&"--setenv=CHECKALLSSLCERTS_RETRY_JOB=abc".to_string()), "{argv:?}");
        assert_eq!(&argv[argv.len() - 2..], command.as_slice());
        assert_eq!(at_argv(delay(NOW, None).minutes), ["at", "-M", "now", "+", "60", "minutes"]);
    }

    #[test]
    fn only_the_run_with_the_recorded_token_is_the_recheck() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(tmp.path()).expect("open");
        assert_eq!(recheck(&state, Some("t1")), None, "nothing recorded");
        let record = RetryRecord {
            scheduler: "at".into(),
            id: "17".into(),
            scheduled: NOW,
            runs_at: NOW + 3600,
            command: vec!["/usr/sbin/checkallsslcerts".into(), "--no-retry".into()],
            token: Some("t1".into()),
        };
        state.save_retry(&record).expect("save");
        assert_eq!(recheck(&state, Some("t1")), Some(record.clone()));
        for other in [None, Some(""), Some("t2")] {
            assert_eq!(recheck(&state, other), None, "{other:?}");
        }
        // A record written before tokens existed is never matched.
        state.save_retry(&RetryRecord { token: None, ..record }).expect("save");
        assert_eq!(recheck(&state, Some("")), None);
        assert_eq!(recheck(&state, Some("t1")), None);
        assert_ne!(new_token(), new_token());
    }

    #[test]
    fn retry_command_runs_this_program_with_no_retry() {
        let command = retry_command(Path::new("/etc/checkallsslcerts/config.toml")).expect("command");
        assert_eq!(&command[1..], ["--no-retry", "--config", "/etc/checkallsslcerts/config.toml"]);
        assert!(Path::new(&command[0]).is_absolute());
    }
}
