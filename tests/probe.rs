//! Live verification against real daemons on loopback (see `tests/daemons/mod.rs`): nginx
//! (HTTPS), Dovecot (IMAP STARTTLS, POP3 STLS) and Postfix (SMTP STARTTLS), black-box through the
//! binary: the served certificate as facts, an install that is reloaded and verified, a reload
//! that exits 0 without reloading (detected, rolled back, reported), an endpoint that is down,
//! and a real Postfix listener with TLS turned off that refuses STARTTLS.

mod daemons;
#[path = "support/pki.rs"]
#[allow(clippy::too_many_arguments)]
mod pki;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use checkallsslcerts::config::probe::{ProbeEndpoint, Protocol};
use checkallsslcerts::probe::{ProbeSettings, probe};
use daemons::{Dovecot, Nginx, Postfix, free_port, free_ports};
use openssl::x509::X509;
use pki::{DAY, Leaf, now};
use serde_json::Value;
use support::Run;

const HOST: &str = "host.example.com";

/// A self-signed certificate for HOST in `dir/{cert,key}.pem`, expired or valid.
fn pair(dir: &Path, expired: bool) -> (PathBuf, PathBuf) {
    let names = [HOST];
    let mut leaf = Leaf::valid(&names, 60);
    if expired {
        leaf.not_before = now() - 90 * DAY;
        leaf.not_after = now() - DAY;
    }
    let cert = pki::self_signed(&leaf);
    pki::write_pair(dir, &cert, &[], &leaf.key);
    (dir.join("cert.pem"), dir.join("key.pem"))
}

fn file_fingerprint(path: &Path) -> String {
    let cert = X509::from_pem(&std::fs::read(path).expect("read")).expect("pem");
    hex::encode(openssl::sha::sha256(&cert.to_der().expect("der")))
}

/// What the endpoint serves now, probed from the test with the library.
fn served(port: u16, protocol: Protocol) -> String {
    let settings =
        ProbeSettings { timeout: Duration::from_secs(3), server_name: HOST.into(), client_name: HOST.into() };
    probe(&ProbeEndpoint::new("127.0.0.1", port, protocol), &settings).expect("probe").fingerprint
}

fn toml_argv(argv: &[String]) -> String {
    format!("[{}]", argv.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", "))
}

/// A configuration with `services` (TOML) and `[probe] wait`.
fn config(dir: &Path, wait: u64, services: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "hostname = \"{HOST}\"\nstate-dir = \"{}\"\n\n[network]\ndns = false\nrevocation = false\nari = false\n\n\
             [mail]\nenabled = false\n\n[probe]\ntimeout = 3\nwait = {wait}\n{services}",
            dir.join("state").display()
        ),
    )
    .expect("config");
    path
}

fn service_toml(name: &str, cert: &Path, key: &Path, reload: &[String], probes: &[(u16, &str)]) -> String {
    let probes: Vec<String> = probes
        .iter()
        .map(|(port, protocol)| format!("{{ address = \"127.0.0.1:{port}\", protocol = \"{protocol}\" }}"))
        .collect();
    format!(
        "\n[[service]]\nname = \"{name}\"\ncertificate = \"{}\"\nkey = \"{}\"\nreload = {}\nprobe = [{}]\n",
        cert.display(),
        key.display(),
        toml_argv(reload),
        probes.join(", ")
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("JSON report: {e}\n{stdout}"))
}

fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"].as_array().expect("services").iter().find(|s| s["name"] == name).expect("service")
}

fn actions(s: &Value) -> Vec<(String, String, String)> {
    s["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap_or("").to_string(),
                a["outcome"].as_str().unwrap_or("").to_string(),
                a["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn nginx_placeholder_install_is_reloaded_and_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pair(&dir.path().join("srv/nginx"), true);
    let old = file_fingerprint(&cert);
    let port = free_port();
    let nginx = Nginx::start(dir.path(), port, &cert, &key);
    let cfg =
        config(dir.path(), 10, &service_toml("web", &cert, &key, &nginx.reload_argv(), &[(port, "https")]));

    // Before the install: what is served equals what is on disk.
    let dry = Run::new().arg("--config").arg(&cfg).args(["--dry-run", "--verbose"]).run();
    assert!(
        dry.stdout.contains(&format!(
            "served at 127.0.0.1:{port}: the installed certificate (sha256 {}…)",
            &old[..16]
        )),
        "{}",
        dry.stdout
    );

    let out = Run::new().arg("--config").arg(&cfg).arg("--json").run();
    let report = json(&out.stdout);
    let acts = actions(service(&report, "web"));
    assert_eq!(acts.len(), 1, "{acts:?}");
    let (kind, outcome, message) = &acts[0];
    assert_eq!((kind.as_str(), outcome.as_str()), ("install-placeholder", "done"), "{message}");
    assert!(
        message
            .contains(&format!(", reloaded; verified: 127.0.0.1:{port} (https) serves the new certificate")),
        "{message}"
    );
    let new = file_fingerprint(&cert);
    assert_ne!(new, old);
    assert_eq!(served(port, Protocol::Https), new, "nginx serves the installed placeholder");
}

#[test]
fn a_reload_that_exits_0_without_reloading_is_detected_and_rolled_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pair(&dir.path().join("srv/nginx"), true);
    let old_bytes = std::fs::read(&cert).expect("cert");
    let old = file_fingerprint(&cert);
    let port = free_port();
    let _nginx = Nginx::start(dir.path(), port, &cert, &key);
    // `true` exits 0 and reloads nothing: nginx keeps serving the old certificate.
    let cfg =
        config(dir.path(), 2, &service_toml("web", &cert, &key, &["true".to_string()], &[(port, "https")]));

    let started = std::time::Instant::now();
    let out = Run::new().arg("--config").arg(&cfg).arg("--json").run();
    let took = started.elapsed();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(took < Duration::from_secs(15), "bounded wait: {took:?}");
    let report = json(&out.stdout);
    let acts = actions(service(&report, "web"));
    let (kind, outcome, message) = &acts[0];
    assert_eq!((kind.as_str(), outcome.as_str()), ("install-placeholder", "failed"), "{message}");
    for expected in [
        "the reload succeeded, but the new certificate is not served: after waiting 2s, ".to_string(),
        format!("127.0.0.1:{port} (https) still serves the previous certificate (sha256 {}…)", &old[..16]),
        "the previous files were restored from ".to_string(),
        "and the reload with them succeeded".to_string(),
        format!("after the rollback 127.0.0.1:{port} (https) serve the previous certificate again"),
    ] {
        assert!(message.contains(&expected), "missing {expected:?} in {message}");
    }
    let notices = report["notices"].as_array().expect("notices");
    assert!(
        notices.iter().any(|n| n["level"] == "error"
            && n["service"] == "web"
            && n["message"].as_str().unwrap_or("").contains("rolled back")),
        "{notices:?}"
    );
    // The previous files are back, byte for byte, and still served; the new ones are kept.
    assert_eq!(std::fs::read(&cert).expect("cert"), old_bytes);
    assert_eq!(served(port, Protocol::Https), old);
    let backups = dir.path().join("state/backups/web");
    let rejected = std::fs::read_dir(&backups)
        .expect("backups")
        .filter_map(Result::ok)
        .any(|b| b.path().join("rejected").is_dir());
    assert!(rejected, "the rejected new files are kept in the backup");
}

#[test]
fn a_stale_service_and_a_down_endpoint_are_reported_before_any_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pair(&dir.path().join("srv/nginx"), false);
    let port = free_port();
    let down = free_port();
    let _nginx = Nginx::start(dir.path(), port, &cert, &key);
    let serving = file_fingerprint(&cert);
    // A new certificate on disk that nginx was never told about.
    pair(&dir.path().join("srv/nginx"), false);
    let on_disk = file_fingerprint(&cert);
    assert_ne!(serving, on_disk);
    let cfg = config(
        dir.path(),
        10,
        &service_toml("web", &cert, &key, &["true".to_string()], &[(port, "https"), (down, "https")]),
    );
    let out = Run::new().arg("--config").arg(&cfg).args(["--dry-run", "--verbose"]).run();
    let text = &out.stdout;
    assert!(
        text.contains(&format!(
            "served at 127.0.0.1:{port}: NOT the installed certificate: sha256 {}… is served (stale: reload the service?)",
            &serving[..16]
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "served at 127.0.0.1:{down}: could not be checked: https: connect: connection refused (is the service running?)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "warning: Service web: 127.0.0.1:{port} serves a different certificate than the installed one"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("127.0.0.1:{down} could not be checked")), "{text}");
}

#[test]
fn dovecot_and_postfix_are_probed_with_starttls_then_installed_reloaded_and_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (dc_cert, dc_key) = pair(&dir.path().join("srv/dovecot"), true);
    let (pf_cert, pf_key) = pair(&dir.path().join("srv/postfix"), true);
    let ports = free_ports(4);
    let (imap, pop3, smtp, smtp_plain) = (ports[0], ports[1], ports[2], ports[3]);
    let dovecot = Dovecot::start(dir.path(), imap, pop3, &dc_cert, &dc_key);
    let postfix = Postfix::start(dir.path(), smtp, smtp_plain, &pf_cert, &pf_key);

    // Facts first, with the Postfix listener that has TLS turned off among the endpoints.
    let services =
        service_toml("dovecot", &dc_cert, &dc_key, &dovecot.reload_argv(), &[(imap, "imap"), (pop3, "pop3")])
            + &service_toml(
                "postfix",
                &pf_cert,
                &pf_key,
                &postfix.reload_argv(),
                &[(smtp, "smtp"), (smtp_plain, "smtp")],
            );
    let cfg = config(dir.path(), 10, &services);
    let out = Run::new().arg("--config").arg(&cfg).args(["--dry-run", "--json"]).run();
    let report = json(&out.stdout);
    let served_of =
        |name: &str| service(&report, name)["facts"]["served"].as_array().expect("served").clone();
    let dc = served_of("dovecot");
    assert_eq!(dc.len(), 2);
    for e in &dc {
        assert_eq!(e["matches-installed"], true, "{e}");
        assert_eq!(e["sha256-fingerprint"], file_fingerprint(&dc_cert).as_str(), "{e}");
    }
    let pf = served_of("postfix");
    assert_eq!(pf[0]["matches-installed"], true, "{}", pf[0]);
    assert_eq!(pf[0]["endpoint"], format!("127.0.0.1:{smtp}"));
    let refused = pf[1]["error"].as_str().expect("an error");
    assert!(refused.starts_with("smtp: STARTTLS refused: the server answered \""), "{refused}");
    assert!(refused.ends_with("and did not offer STARTTLS after EHLO"), "{refused}");
    assert_eq!(pf[1]["sha256-fingerprint"], Value::Null);

    // Then the install: both expired certificates get placeholders, each daemon is reloaded,
    // and IMAP, POP3 and SMTP are verified to serve the new certificates.
    let services =
        service_toml("dovecot", &dc_cert, &dc_key, &dovecot.reload_argv(), &[(imap, "imap"), (pop3, "pop3")])
            + &service_toml("postfix", &pf_cert, &pf_key, &postfix.reload_argv(), &[(smtp, "smtp")]);
    let cfg = config(dir.path(), 10, &services);
    let out = Run::new().arg("--config").arg(&cfg).arg("--json").run();
    let report = json(&out.stdout);
    for (name, verified) in [
        (
            "dovecot",
            format!(
                "verified: 127.0.0.1:{imap} (imap), 127.0.0.1:{pop3} (pop3) all serve the new certificate"
            ),
        ),
        ("postfix", format!("verified: 127.0.0.1:{smtp} (smtp) serves the new certificate")),
    ] {
        let acts = actions(service(&report, name));
        let (kind, outcome, message) = &acts[0];
        assert_eq!((kind.as_str(), outcome.as_str()), ("install-placeholder", "done"), "{name}: {message}");
        assert!(message.contains(&verified), "{name}: {message}");
    }
    assert_eq!(served(imap, Protocol::Imap), file_fingerprint(&dc_cert));
    assert_eq!(served(pop3, Protocol::Pop3), file_fingerprint(&dc_cert));
    assert_eq!(served(smtp, Protocol::Smtp), file_fingerprint(&pf_cert));
}

/// A service whose `reload` is a list of commands (run in order).
fn shared_service_toml(
    name: &str,
    cert: &Path,
    key: &Path,
    reloads: &[Vec<String>],
    probes: &[(u16, &str)],
) -> String {
    let probes: Vec<String> = probes
        .iter()
        .map(|(port, protocol)| format!("{{ address = \"127.0.0.1:{port}\", protocol = \"{protocol}\" }}"))
        .collect();
    format!(
        "\n[[service]]\nname = \"{name}\"\ncertificate = \"{}\"\nkey = \"{}\"\nreload = [{}]\nprobe = [{}]\n",
        cert.display(),
        key.display(),
        reloads.iter().map(|r| toml_argv(r)).collect::<Vec<_>>().join(", "),
        probes.join(", ")
    )
}

/// Dovecot and Postfix started with the SAME certificate and key files (as on a stock Debian
/// mail server with the snakeoil pair), expired.
struct SharedMail {
    dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    imap: u16,
    pop3: u16,
    smtp: u16,
    dovecot: Dovecot,
    postfix: Postfix,
}

fn shared_mail() -> SharedMail {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = pair(&dir.path().join("etc/ssl/mail"), true);
    let ports = free_ports(4);
    let (imap, pop3, smtp, smtp_plain) = (ports[0], ports[1], ports[2], ports[3]);
    let dovecot = Dovecot::start(dir.path(), imap, pop3, &cert, &key);
    let postfix = Postfix::start(dir.path(), smtp, smtp_plain, &cert, &key);
    let old = file_fingerprint(&cert);
    for (port, protocol) in [(imap, Protocol::Imap), (pop3, Protocol::Pop3), (smtp, Protocol::Smtp)] {
        assert_eq!(served(port, protocol), old, "both daemons serve the shared file at the start");
    }
    SharedMail { dir, cert, key, imap, pop3, smtp, dovecot, postfix }
}

#[test]
fn a_certificate_shared_by_postfix_and_dovecot_is_installed_with_both_reloads_and_verified_on_both() {
    let m = shared_mail();
    let old = file_fingerprint(&m.cert);
    let reloads = [m.postfix.reload_argv(), m.dovecot.reload_argv()];
    let services = shared_service_toml(
        "mail",
        &m.cert,
        &m.key,
        &reloads,
        &[(m.smtp, "smtp"), (m.imap, "imap"), (m.pop3, "pop3")],
    );
    let cfg = config(m.dir.path(), 10, &services);

    // `config check` reads the list form and shows both commands in order.
    let check = Run::new().args(["config", "check", "--config"]).arg(&cfg).run();
    assert_eq!(check.code, 0, "{}\n{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains(&format!("reload (in order): {:?}, {:?}", reloads[0], reloads[1])),
        "{}",
        check.stdout
    );

    let out = Run::new().arg("--config").arg(&cfg).arg("--json").run();
    let report = json(&out.stdout);
    let acts = actions(service(&report, "mail"));
    let (kind, outcome, message) = &acts[0];
    assert_eq!((kind.as_str(), outcome.as_str()), ("install-placeholder", "done"), "{message}");
    assert!(
        message.contains(&format!(
            ", reloaded; verified: 127.0.0.1:{} (smtp), 127.0.0.1:{} (imap), 127.0.0.1:{} (pop3) all serve the new certificate",
            m.smtp, m.imap, m.pop3
        )),
        "{message}"
    );
    let new = file_fingerprint(&m.cert);
    assert_ne!(new, old, "a placeholder replaced the expired certificate");
    assert_eq!(served(m.smtp, Protocol::Smtp), new, "postfix serves the new certificate");
    assert_eq!(served(m.imap, Protocol::Imap), new, "dovecot serves the new certificate (IMAP)");
    assert_eq!(served(m.pop3, Protocol::Pop3), new, "dovecot serves the new certificate (POP3)");
}

#[test]
fn a_certificate_shared_by_postfix_and_dovecot_with_only_the_postfix_reload_is_rolled_back() {
    let m = shared_mail();
    let old_bytes = std::fs::read(&m.cert).expect("cert");
    let old = file_fingerprint(&m.cert);
    // The old behaviour: one reload command, so Dovecot never re-reads the file.
    let services = shared_service_toml(
        "mail",
        &m.cert,
        &m.key,
        &[m.postfix.reload_argv()],
        &[(m.smtp, "smtp"), (m.imap, "imap"), (m.pop3, "pop3")],
    );
    let cfg = config(m.dir.path(), 2, &services);
    let out = Run::new().arg("--config").arg(&cfg).arg("--json").run();
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    let report = json(&out.stdout);
    let acts = actions(service(&report, "mail"));
    let (kind, outcome, message) = &acts[0];
    assert_eq!((kind.as_str(), outcome.as_str()), ("install-placeholder", "failed"), "{message}");
    for expected in [
        "the reload succeeded, but the new certificate is not served".to_string(),
        format!("127.0.0.1:{} (imap) still serves the previous certificate (sha256 {}…)", m.imap, &old[..16]),
        "and the reload with them succeeded".to_string(),
    ] {
        assert!(message.contains(&expected), "missing {expected:?} in {message}");
    }
    assert_eq!(std::fs::read(&m.cert).expect("cert"), old_bytes, "the previous files are back");
    assert_eq!(served(m.imap, Protocol::Imap), old);
    assert_eq!(served(m.smtp, Protocol::Smtp), old, "postfix was reloaded again with the previous files");
}
