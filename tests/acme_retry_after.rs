//! The CA's `Retry-After` (RFC 8555 §6.6 rate limits, §7.4 polling) against a real ACME CA:
//! Debian's Pebble on loopback and the binary itself.
//!
//! **Test fixture:** Pebble 2.4 has no rate limits and sends no `Retry-After` while it
//! finalizes. The HTTPS reverse proxy of `support/acme_proxy.rs` stands between the binary and
//! Pebble: it answers one newOrder with HTTP 429 `rateLimited` and a `Retry-After`, or adds a
//! `Retry-After` to one finalize answer; everything else is Pebble's.

#[path = "support/acme_proxy.rs"]
mod acme_proxy;
#[path = "support/pebble.rs"]
mod pebble;
mod support;

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
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "no new order is opened before {} (back-off, as the certificate authority asked with Retry-After)",
            utc(asked)
        )),
        "{}",
        out.stdout
    );
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
    let pending: Value = serde_json::from_str(
        &std::fs::read_to_string(host.path("state/acme/pending.json")).expect("pending.json"),
    )
    .expect("json");
    assert_eq!(pending["status"], "processing");
    assert_installed(&host, &host.run().run(), &pebble);
    assert_eq!(host.events("order-resumed").len(), 1);
    assert_eq!(proxy.new_orders().len(), 2, "the pending order was resumed, not opened again");
}
