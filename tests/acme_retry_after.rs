//! The CA's `Retry-After` (RFC 8555 §6.6 rate limits, §7.4 polling) against a real ACME CA:
//! Debian's Pebble on loopback and the binary itself.
//!
//! **Test fixture:** Pebble 2.4 has no rate limits and sends no `Retry-After` while it
//! finalizes. The HTTPS reverse proxy of `support/acme_proxy.rs` stands between the binary and
//! Pebble: it answers one newOrder with HTTP 429 `rateLimited` and a `Retry-After`, or adds a
//! `Retry-After` to one finalize answer; everything else is Pebble's.
//!
//! `--allow-retry` queues its re-check in the real `at` queue (`support/at_queue.rs`: `atq`,
//! `at -c`, `atrm`); no job is due before a test ends, so `atd` need not run.

#[path = "support/acme_proxy.rs"]
mod acme_proxy;
#[path = "support/at_queue.rs"]
mod at_queue;
#[path = "support/pebble.rs"]
mod pebble;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acme_proxy::{Host, Proxy, assert_installed};
use pebble::{Pebble, Settings};
use serde_json::Value;

const ACME_FAILED: i32 = 69;
const RETRY_PENDING: i32 = 75;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// `YYYY-mm-dd HH:MM:SS UTC`, as the binary writes times.
fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).expect("time").format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn limits(host: &Host) -> Value {
    serde_json::from_str(&std::fs::read_to_string(host.path("state/acme/limits.json")).expect("limits.json"))
        .expect("json")
}

fn state_file(host: &Host, name: &str) -> Value {
    let path = host.path("state/acme").join(name);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .expect("json")
}

/// Asserts that `at` runs job `at` (a Unix time) at the first whole minute not before `from`
/// as it was between `before` and `after` (the times around the run): `at now + N minutes` drops
/// the seconds of now.
fn assert_job_time(at: i64, from: impl Fn(i64) -> i64, before: i64, after: i64) {
    let earliest = from(before);
    let latest = from(after) + 60;
    assert!(
        at >= earliest && at <= latest,
        "the job runs at {} ({at}); expected between {} and {}",
        utc(at),
        utc(earliest),
        utc(latest)
    );
    assert_eq!(at % 60, 0, "at runs jobs on whole minutes");
}

#[test]
fn a_rate_limited_new_order_backs_off_until_the_cas_retry_after() {
    let pebble = Pebble::start(Settings::default());
    let proxy = Proxy::start(&pebble, false);
    let host = Host::new("rate-limited.acme-test.com");
    host.configure(&pebble, &proxy, "");
    let before = std::fs::read(host.path("web/cert.pem")).expect("cert");

    // The CA answers the new order with 429 rateLimited and a Retry-After three hours away, as
    // an HTTP-date (longer than the first back-off of an hour).
    let asked = now() + 3 * 3600;
    let header = chrono::DateTime::from_timestamp(asked, 0)
        .expect("time")
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    proxy.with(|b| b.rate_limit_next_order = Some(header.clone()));
    let out = host.run().run();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, ACME_FAILED, "{text}");
    assert!(text.contains("urn:ietf:params:acme:error:rateLimited (HTTP 429)"), "{text}");
    assert!(
        text.contains(&format!(
            "The certificate authority asked not to be sent another request before {} (Retry-After: {header} with HTTP 429), so no new order is opened before then.",
            utc(asked)
        )),
        "{text}"
    );
    assert_eq!(std::fs::read(host.path("web/cert.pem")).expect("cert"), before, "nothing installed");
    let state = limits(&host);
    assert_eq!(state["backoff-until"], asked, "{state}");
    assert_eq!(state["ca-retry-after"], asked, "{state}");
    let orders = proxy.new_orders();
    assert_eq!(orders.iter().map(|(_, status)| *status).collect::<Vec<_>>(), vec![429]);
    assert_eq!(host.events("order-failed")[0]["problem"]["type"], "urn:ietf:params:acme:error:rateLimited");

    // Before that time the CA is not contacted at all, and the run says until when and why.
    let requests = proxy.requests().len();
    let out = host.run().run();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "no new order is opened before {} (back-off, as the certificate authority asked with Retry-After)",
            utc(asked)
        )),
        "{}",
        out.stdout
    );
    assert_eq!(proxy.requests().len(), requests, "no request reached the CA");
    // Not even with --force: the CA itself asked for that time.
    let out = host.run().arg("--force").run();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("not even with --force"), "{}", out.stdout);
    assert_eq!(proxy.requests().len(), requests, "no request reached the CA");

    // Once that time has come (the state's clock moved past it), a run orders and installs.
    let mut state = limits(&host);
    state["backoff-until"] = (now() - 1).into();
    state["ca-retry-after"] = (now() - 1).into();
    std::fs::write(host.path("state/acme/limits.json"), state.to_string()).expect("limits");
    assert_installed(&host, &host.run().run(), &pebble);
    let statuses: Vec<u16> = proxy.new_orders().iter().map(|(_, status)| *status).collect();
    assert_eq!(statuses, vec![429, 201]);
    assert!(limits(&host)["ca-retry-after"].is_null(), "a success ends the back-off");
}

#[test]
fn the_cas_retry_after_paces_the_polls_and_one_past_the_wait_leaves_the_order_pending() {
    // No nonce rejected on purpose: the timing below is about the polls alone.
    let pebble = Pebble::start(Settings { nonce_reject: Some(0), ..Settings::default() });
    let proxy = Proxy::start(&pebble, false);
    let host = Host::new("polled.acme-test.com");
    host.configure(&pebble, &proxy, "");

    // Pebble answers the finalization with a processing order; the fixture adds Retry-After: 2.
    // The next look at the order waits those two seconds (without it: a tenth of a second).
    proxy.with(|b| b.finalize_retry_after = Some("2".into()));
    assert_installed(&host, &host.run().run(), &pebble);
    let requests = proxy.requests();
    let finalize = requests
        .iter()
        .position(|r| r.path.starts_with("/finalize-order/") && r.status == 200)
        .expect("finalized");
    assert_eq!(requests[finalize].resource_status.as_deref(), Some("processing"), "{requests:#?}");
    assert_eq!(requests[finalize].retry_after.as_deref(), Some("2"));
    let next = &requests[finalize + 1];
    assert!(next.path.starts_with("/my-order/"), "{requests:#?}");
    let pause = next.at - requests[finalize].at;
    assert!(pause >= Duration::from_millis(1950) && pause < Duration::from_secs(6), "{pause:?}");
    // The polls before it, with no Retry-After, were quick.
    let first_poll = requests.iter().position(|r| r.path.starts_with("/my-order/")).expect("polled");
    assert!(first_poll < finalize);
    assert!(requests[first_poll].at - requests[first_poll - 1].at < Duration::from_secs(1), "{requests:#?}");

    // A Retry-After past what this run waits (pending-wait-seconds = 20): the run stops looking
    // at once and leaves the order pending; the next run resumes and finishes it.
    host.self_signed();
    // The certificate kept from the first order would be reused instead of ordering: it goes.
    std::fs::remove_dir_all(host.path("state/acme/issued")).expect("issued");
    proxy.with(|b| b.finalize_retry_after = Some("3600".into()));
    let seen = proxy.requests().len();
    let started = Instant::now();
    let out = host.run().run();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    assert!(started.elapsed() < Duration::from_secs(15), "did not wait out the 20 s");
    assert!(
        out.stdout.contains("the certificate authority asked to look at the order again at")
            && out
                .stdout
                .contains("(Retry-After), after the 20 s this run waits (acme.pending-wait-seconds)"),
        "{}",
        out.stdout
    );
    let after = &proxy.requests()[seen..];
    assert!(
        after.last().is_some_and(|r| r.path.starts_with("/finalize-order/")),
        "no look after it: {after:#?}"
    );
    let mut pending = state_file(&host, "pending.json");
    assert_eq!(pending["status"], "processing");
    // The CA's time is kept with the order (RFC 8555 §7.4: look at it again after that time):
    // a run before then sends the CA nothing.
    let asked = pending["retry-after"].as_i64().expect("retry-after kept");
    assert!((now() + 3600 - 30..=now() + 3600).contains(&asked), "{pending}");
    assert!(out.stdout.contains(&format!("No run resumes it before {}", utc(asked))), "{}", out.stdout);
    let seen = proxy.requests().len();
    let out = host.run().run();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "the certificate authority asked to look at the order again at {} (Retry-After); the pending order",
            utc(asked)
        )),
        "{}",
        out.stdout
    );
    assert_eq!(proxy.requests().len(), seen, "no request reached the CA");
    // Once that time has come (the state's clock moved past it), the next run resumes the order
    // and finishes it.
    pending["retry-after"] = (now() - 1).into();
    std::fs::write(host.path("state/acme/pending.json"), pending.to_string()).expect("pending");
    assert_installed(&host, &host.run().run(), &pebble);
    assert_eq!(host.events("order-resumed").len(), 1);
    assert_eq!(proxy.new_orders().len(), 2, "the pending order was resumed, not opened again");
}

#[test]
fn allow_retry_queues_the_recheck_for_the_cas_retry_after_and_a_recheck_woken_early_queues_itself_again() {
    let pebble = Pebble::start(Settings { nonce_reject: Some(0), ..Settings::default() });
    let proxy = Proxy::start(&pebble, false);
    let host = Host::new("recheck-later.acme-test.com");
    host.configure(&pebble, &proxy, "");
    let needle = host.config.display().to_string();
    let _cleanup = at_queue::Cleanup(needle.clone());

    // The challenge port is taken: the order stays pending with no Retry-After, and the re-check
    // is queued an hour later (the original's behaviour).
    let blocker = std::net::TcpListener::bind(("127.0.0.1", pebble.http_port)).expect("block the port");
    let before = now();
    let out = host.run().args(["--allow-retry", "--verbose"]).run();
    let after = now();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    let jobs = at_queue::jobs_mentioning(&needle);
    assert_eq!(jobs.len(), 1, "{jobs:?}\n{}", out.stdout);
    let (hour_job, hour_at) = jobs[0].clone();
    assert_job_time(hour_at, |t| t - t % 60 + 3600, before, after);
    assert!(
        out.stdout.contains(&format!(
            "A re-check runs at {} (an hour after this run; at job {hour_job}",
            utc(hour_at)
        )),
        "{}",
        out.stdout
    );
    assert!(state_file(&host, "pending.json").get("retry-after").is_none(), "the CA asked for no time");

    // The port is free: the order is resumed, finalized, and the CA answers it is processing with
    // Retry-After: 7200. The hour's job would wake an hour too early: it is removed, and the
    // re-check is queued for the CA's time instead.
    drop(blocker);
    proxy.with(|b| b.finalize_retry_after = Some("7200".into()));
    let before = now();
    let out = host.run().args(["--allow-retry", "--verbose"]).run();
    let after = now();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    let finalize =
        proxy.requests().into_iter().rfind(|r| r.path.starts_with("/finalize-order/")).expect("finalized");
    assert_eq!(finalize.retry_after.as_deref(), Some("7200"));
    let jobs = at_queue::jobs_mentioning(&needle);
    assert_eq!(jobs.len(), 1, "one job: {jobs:?}\n{}", out.stdout);
    let (job, job_at) = jobs[0].clone();
    assert_ne!(job, hour_job, "the hour's job was removed");
    assert_job_time(job_at, |t| t + 7200 + 59 - (t + 7200 + 59) % 60, before, after);
    let asked = state_file(&host, "pending.json")["retry-after"].as_i64().expect("the CA's time is kept");
    assert!((before + 7200..=after + 7200).contains(&asked));
    assert!(job_at >= asked && job_at < asked + 60, "the first minute not before the CA's time");
    assert!(
        out.stdout.contains(&format!(
            "The queued re-check (at job {hour_job}) would have run at {}, before the time the certificate authority asked for; it was removed.",
            utc(hour_at)
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "A re-check runs at {} (the certificate authority asked for {} with Retry-After; at job {job}:",
            utc(job_at),
            utc(asked)
        )),
        "{}",
        out.stdout
    );
    let retry = state_file(&host, "retry.json");
    assert_eq!(retry["id"].as_str(), Some(job.as_str()), "{retry}");
    // (`at` reads the clock a moment after the run: its minute may have just begun.)
    let runs_at = retry["runs-at"].as_i64().expect("runs-at");
    assert!((job_at - 60..=job_at).contains(&runs_at), "{retry}");
    // The job runs the command with --no-retry, and its environment marks it as the re-check.
    let script = at_queue::script(&job);
    assert!(script.contains("'--no-retry' '--config'"), "{script}");
    let token = retry["token"].as_str().expect("token");
    assert!(
        script.contains(&format!("CHECKALLSSLCERTS_RETRY_JOB={token}; export CHECKALLSSLCERTS_RETRY_JOB")),
        "{script}"
    );

    // Another --allow-retry run before the CA's time sends the CA nothing and keeps the job.
    let seen = proxy.requests().len();
    let out = host.run().args(["--allow-retry", "--verbose"]).run();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "A re-check is already queued (at job {job}, at {}); none was added.",
            utc(job_at)
        )),
        "{}",
        out.stdout
    );
    assert_eq!(proxy.requests().len(), seen, "no request reached the CA");
    assert_eq!(at_queue::jobs_mentioning(&needle), vec![(job.clone(), job_at)]);

    // The re-check wakes before the CA's time (here: its script is run now, as atd would run it,
    // and the job leaves the queue as atd's does). It cannot look at the order, so the one
    // re-check is not used up: it queues itself again for the CA's time. A --no-retry run by hand
    // queues nothing.
    let out = host.run().args(["--no-retry", "--verbose"]).run();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains("queued again"), "{}", out.stdout);
    at_queue::remove(&job);
    let mut sh = Command::new("/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    use std::io::Write as _;
    sh.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("script");
    let ran = sh.wait_with_output().expect("the job's script");
    let text = format!("{}{}", String::from_utf8_lossy(&ran.stdout), String::from_utf8_lossy(&ran.stderr));
    assert_eq!(ran.status.code(), Some(RETRY_PENDING), "{text}");
    assert!(
        text.contains(&format!(
            "the certificate authority asked to look at the order again at {}",
            utc(asked)
        )),
        "{text}"
    );
    assert_eq!(proxy.requests().len(), seen, "no request reached the CA");
    let jobs = at_queue::jobs_mentioning(&needle);
    assert_eq!(jobs.len(), 1, "{jobs:?}\n{text}");
    let (again, again_at) = jobs[0].clone();
    assert_ne!(again, job);
    assert!((job_at..=job_at + 60).contains(&again_at), "queued again for the CA's time");
    let retry = state_file(&host, "retry.json");
    assert_eq!(retry["id"].as_str(), Some(again.as_str()));
    assert_ne!(retry["token"].as_str(), Some(token), "a new job, a new token");
    let scheduled = host.events("retry-scheduled");
    assert_eq!(scheduled.len(), 3);
    assert!(
        scheduled[2]["detail"].as_str().is_some_and(|d| d.contains("the certificate authority asked for")),
        "{scheduled:?}"
    );
}

#[test]
fn a_retry_after_sooner_than_an_hour_still_rechecks_an_hour_later() {
    let pebble = Pebble::start(Settings { nonce_reject: Some(0), ..Settings::default() });
    let proxy = Proxy::start(&pebble, false);
    let host = Host::new("recheck-hour.acme-test.com");
    host.configure(&pebble, &proxy, "");
    let needle = host.config.display().to_string();
    let _cleanup = at_queue::Cleanup(needle.clone());

    // Retry-After: 60 is past the 20 s this run waits, but sooner than the original's hour.
    proxy.with(|b| b.finalize_retry_after = Some("60".into()));
    let before = now();
    let out = host.run().args(["--allow-retry", "--verbose"]).run();
    let after = now();
    assert_eq!(out.code, RETRY_PENDING, "{}{}", out.stdout, out.stderr);
    let asked = state_file(&host, "pending.json")["retry-after"].as_i64().expect("the CA's time is kept");
    assert!((before + 60..=after + 60).contains(&asked));
    let jobs = at_queue::jobs_mentioning(&needle);
    assert_eq!(jobs.len(), 1, "{jobs:?}\n{}", out.stdout);
    let (job, job_at) = jobs[0].clone();
    assert_job_time(job_at, |t| t - t % 60 + 3600, before, after);
    assert!(
        out.stdout.contains(&format!(
            "A re-check runs at {} (an hour after this run; the certificate authority asked for {} with Retry-After, which is not later; at job {job}:",
            utc(job_at),
            utc(asked)
        )),
        "{}",
        out.stdout
    );
}
