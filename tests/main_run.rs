//! The main run end to end, black-box: real certificate files made in the test, a real state
//! directory, reload commands that record their argv, and the binary itself.

#[path = "support/pki.rs"]
mod pki;
mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::x509::X509;
use pki::{Ca, DAY, Leaf, now};
use serde_json::Value;
use support::Run;

const HOST: &str = "host.example.com";

/// A service's files: the certificate, its chain and its key (none: no files at all).
type Material = Option<(X509, Vec<X509>, openssl::pkey::PKey<openssl::pkey::Private>)>;

/// A scratch server: certificates, a config, a state dir, a reload script that records argv.
struct Fixture {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Fixture {
    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn svc(&self, name: &str) -> PathBuf {
        self.root().join("srv").join(name)
    }

    fn state(&self) -> PathBuf {
        self.root().join("state")
    }

    fn reload_log(&self) -> String {
        std::fs::read_to_string(self.root().join("reload.log")).unwrap_or_default()
    }

    fn run(&self) -> Run {
        Run::new().arg("--config").arg(&self.config)
    }
}

/// Writes the services (name → optional cert/chain/key), a config with `extra` appended to
/// every service, and the reload recorder.
fn fixture(services: &[(&str, Material)], ca: &Ca, reload: &str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::write(root.join("ca.pem"), pki::pem(&ca.cert)).expect("ca");
    let recorder = root.join("record-reload");
    std::fs::write(
        &recorder,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> {}\n",
            root.join("reload.log").display()
        ),
    )
    .expect("recorder");
    std::fs::set_permissions(&recorder, std::fs::Permissions::from_mode(0o755)).expect("mode");
    let mut config = format!(
        "hostname = \"{HOST}\"\nstate-dir = \"{}\"\n\n[trust]\nsystem-roots = false\nextra-roots = [\"{}\"]\n",
        root.join("state").display(),
        root.join("ca.pem").display()
    );
    for (name, material) in services {
        let dir = root.join("srv").join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        if let Some((cert, chain, key)) = material {
            pki::write_pair(&dir, cert, &chain.iter().collect::<Vec<_>>(), key);
        }
        let reload = reload.replace("RECORDER", &recorder.display().to_string()).replace("NAME", name);
        config.push_str(&format!(
            "\n[[service]]\nname = \"{name}\"\ncertificate = \"{}\"\nkey = \"{}\"\nreload = {reload}\nreload-timeout = 20\n",
            dir.join("cert.pem").display(),
            dir.join("key.pem").display()
        ));
    }
    let path = root.join("config.toml");
    // Hermetic: no mail through this machine's sendmail (tests/notify.rs tests the mail).
    let config = if config.contains("[mail]") { config } else { config + "\n[mail]\nenabled = false\n" };
    std::fs::write(&path, config).expect("config");
    Fixture { dir, config: path }
}

const RECORD: &str = r#"["RECORDER", "NAME", "with space", "semi;colon $HOME"]"#;

fn leaf(ca: &Ca, l: Leaf<'_>) -> Material {
    let cert = ca.issue(&l);
    Some((cert, vec![], l.key))
}

fn parse_report(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("JSON report: {e}\n{stdout}"))
}

fn service<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["services"].as_array().expect("services").iter().find(|s| s["name"] == name).expect("service")
}

fn reasons(s: &Value) -> Vec<String> {
    s["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r.as_str().unwrap_or("other").to_string())
        .collect()
}

/// Every file under `dir`: path → (mode, bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("meta");
            if meta.is_dir() {
                stack.push(path.clone());
                out.insert(path, (meta.permissions().mode(), Vec::new()));
            } else {
                out.insert(path.clone(), (meta.permissions().mode(), std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

fn is_placeholder(path: &Path) -> bool {
    let cert = X509::from_pem(&std::fs::read(path).expect("cert")).expect("pem");
    cert.issuer_name()
        .entries_by_nid(openssl::nid::Nid::ORGANIZATIONNAME)
        .any(|e| e.data().as_slice() == b"checkallsslcerts placeholder")
}

fn pair_matches(dir: &Path) -> bool {
    let cert = X509::from_pem(&std::fs::read(dir.join("cert.pem")).expect("cert")).expect("pem");
    let key = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(dir.join("key.pem")).expect("key"))
        .expect("key");
    cert.public_key().expect("public").public_eq(&key)
}

fn broken_server() -> (Ca, Fixture) {
    let ca = Ca::new("Main Test CA");
    let other = Ca::new("Unknown CA");
    let names = [HOST];
    let mut sha1 = Leaf::valid(&names, 60);
    sha1.digest = MessageDigest::sha1();
    let mut rsa = Leaf::valid(&names, 60);
    rsa.key = pki::rsa_key(1024);
    let mut expired = Leaf::valid(&names, 0);
    expired.not_after = now() - 2 * DAY;
    let mut future = Leaf::valid(&names, 60);
    future.not_before = now() + 5 * DAY;
    let key_mismatch = leaf(&ca, Leaf::valid(&names, 60)).map(|(c, ch, _)| (c, ch, pki::ec_key()));
    let self_signed = {
        let l = Leaf::valid(&names, 300);
        Some((pki::self_signed(&l), vec![], l.key))
    };
    let services = vec![
        ("good", leaf(&ca, Leaf::valid(&names, 60))),
        ("expired", leaf(&ca, expired)),
        ("notyet", leaf(&ca, future)),
        ("selfsigned", self_signed),
        ("sha1", leaf(&ca, sha1)),
        ("rsa1024", leaf(&ca, rsa)),
        ("mismatch", leaf(&ca, Leaf::valid(&["other.example.net"], 60))),
        ("keymismatch", key_mismatch),
        ("untrusted", leaf(&other, Leaf::valid(&names, 60))),
        ("missing", None),
        ("garbage", None),
    ];
    let fixture = fixture(&services, &ca, RECORD);
    std::fs::write(fixture.svc("garbage").join("cert.pem"), b"not a certificate").expect("garbage");
    (ca, fixture)
}

#[test]
fn run_installs_placeholders_exactly_where_the_plan_says() {
    let (_ca, fx) = broken_server();
    let before = snapshot(&fx.root().join("srv"));
    let out = fx.run().arg("--json").run().code(1);
    let report = parse_report(&out.stdout);
    let expect = [
        ("good", "keep", vec![]),
        ("expired", "placeholder", vec!["expired"]),
        ("notyet", "placeholder", vec!["not-yet-valid"]),
        ("selfsigned", "keep", vec!["self-signed"]),
        ("sha1", "keep", vec!["weak-signature"]),
        ("rsa1024", "keep", vec!["weak-key"]),
        ("mismatch", "keep", vec!["hostname-mismatch"]),
        ("keymismatch", "placeholder", vec!["key-mismatch"]),
        ("untrusted", "keep", vec!["untrusted-chain"]),
        ("missing", "placeholder", vec!["missing"]),
        ("garbage", "placeholder", vec!["malformed"]),
    ];
    for (name, decision, want) in &expect {
        let s = service(&report, name);
        assert_eq!(s["decision"], *decision, "{name}: {s}");
        let got = reasons(s);
        for reason in want {
            assert!(got.iter().any(|r| r == reason), "{name}: {reason} not in {got:?}");
        }
        let cert = fx.svc(name).join("cert.pem");
        if *decision == "placeholder" {
            assert!(is_placeholder(&cert), "{name}: placeholder installed");
            assert!(pair_matches(&fx.svc(name)), "{name}: key and certificate belong together");
            let mode =
                std::fs::metadata(fx.svc(name).join("key.pem")).expect("key").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}: key mode");
            assert_eq!(s["actions"][0]["kind"], "install-placeholder");
            assert_eq!(s["actions"][0]["outcome"], "done", "{name}: {}", s["actions"]);
        } else {
            assert_eq!(
                before.get(&cert).map(|e| &e.1),
                std::fs::read(&cert).ok().as_ref(),
                "{name}: untouched"
            );
            assert!(s["actions"].as_array().expect("actions").is_empty(), "{name}");
        }
    }
    // Backups hold the exact previous files of the services that had some.
    for name in ["expired", "notyet", "keymismatch"] {
        let backups: Vec<_> =
            std::fs::read_dir(fx.state().join("backups").join(name)).expect("backups").collect();
        assert_eq!(backups.len(), 1, "{name}: one backup");
        let backup = backups.into_iter().next().expect("one").expect("entry").path();
        let old = &before[&fx.svc(name).join("cert.pem")].1;
        let kept = std::fs::read_dir(&backup)
            .expect("backup dir")
            .filter_map(|e| std::fs::read(e.expect("entry").path()).ok())
            .any(|bytes| &bytes == old);
        assert!(kept, "{name}: the old certificate is in {}", backup.display());
    }
    // The reload commands ran as argv: the arguments arrive intact, once per installed service.
    let log = fx.reload_log();
    for name in ["expired", "notyet", "keymismatch", "missing", "garbage"] {
        assert_eq!(log.lines().filter(|l| *l == name).count(), 1, "{name} reloaded once:\n{log}");
    }
    assert_eq!(log.lines().filter(|l| *l == "with space").count(), 5, "{log}");
    assert_eq!(log.lines().filter(|l| *l == "semi;colon $HOME").count(), 5, "{log}");
    assert!(!log.lines().any(|l| l == "good"), "{log}");

    // The next night: the placeholders are kept (self-signed, no CA to order from), nothing is
    // unusable any more, nothing is reinstalled.
    let out = fx.run().arg("--json").run().code(0);
    let report = parse_report(&out.stdout);
    for name in ["expired", "notyet", "keymismatch", "missing", "garbage"] {
        assert_eq!(service(&report, name)["decision"], "keep", "{name}");
    }
    assert_eq!(fx.reload_log(), log, "no reload on the second run");
}

#[test]
fn text_output_has_one_line_per_service_and_a_summary() {
    let (_ca, fx) = broken_server();
    let out = fx.run().arg("--dry-run").run().code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("SERVICE"), "{}", out.stdout);
    for name in ["good", "expired", "missing", "untrusted"] {
        assert!(lines.iter().any(|l| l.starts_with(name)), "{name}: {}", out.stdout);
    }
    let summary = lines.last().expect("summary");
    assert!(
        summary.starts_with("11 services: 6 keep, 0 replace, 0 replace-or-placeholder, 5 placeholder"),
        "{summary}"
    );
    assert!(summary.ends_with("(dry run: nothing changed)"), "{summary}");
    assert!(!out.stdout.contains("\x1b["), "no colour when not a terminal");
}

#[test]
fn dry_run_changes_no_byte() {
    let (_ca, fx) = broken_server();
    let before = snapshot(fx.root());
    let out = fx.run().args(["--dry-run", "--verbose"]).run().code(1);
    assert!(out.stdout.contains("would install a self-signed placeholder"), "{}", out.stdout);
    assert!(out.stdout.contains("policy: default"), "{}", out.stdout);
    // The verbose details are in words, not JSON.
    for words in [
        "chain: trusted;",
        "chain: untrusted (",
        "certificate: missing (",
        " UTC to ",
        "path: valid;",
        "1. CN=Main Test CA",
        "(trust store): ",
    ] {
        assert!(out.stdout.contains(words), "{words:?} in\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("{\""), "JSON in the text report:\n{}", out.stdout);
    assert_eq!(snapshot(fx.root()), before, "a dry run changed files");
    assert!(!fx.state().exists(), "a dry run created the state dir");
}

#[test]
fn failing_reload_restores_the_previous_files() {
    let ca = Ca::new("Main Test CA");
    let names = [HOST];
    let mut expired = Leaf::valid(&names, 0);
    expired.not_after = now() - DAY;
    let fx = fixture(&[("web", leaf(&ca, expired))], &ca, r#"["false"]"#);
    let before = snapshot(&fx.root().join("srv"));
    let out = fx.run().arg("--json").run().code(1);
    let report = parse_report(&out.stdout);
    let action = &service(&report, "web")["actions"][0];
    assert_eq!(action["outcome"], "failed", "{action}");
    let message = action["message"].as_str().expect("message");
    assert!(message.contains("web") && message.contains("false"), "{message}");
    assert_eq!(snapshot(&fx.root().join("srv")), before, "previous files restored byte for byte");
    assert!(!fx.state().join("journal").join("web.json").exists(), "journal cleared");
}

#[test]
fn two_runs_serialise_on_the_lock() {
    let ca = Ca::new("Main Test CA");
    let names = [HOST];
    let mut expired = Leaf::valid(&names, 0);
    expired.not_after = now() - DAY;
    let fx = fixture(&[("web", leaf(&ca, expired))], &ca, r#"["sleep", "3"]"#);
    let mut first = Command::new(env!("CARGO_BIN_EXE_checkallsslcerts"))
        .arg("--config")
        .arg(&fx.config)
        .arg("--quiet")
        .env("CHECKALLSSLCERTS_NETWORK_FACTS", "off")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("first run");
    // Wait until the first run holds the lock (its reload sleeps for 3 s).
    let lock = fx.state().join("lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&lock).map(|s| s.trim().is_empty()).unwrap_or(true) {
        assert!(std::time::Instant::now() < deadline, "the first run never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = fx.run().args(["--lock-wait", "0"]).run().code(73);
    assert!(second.stderr.contains(&lock.display().to_string()), "{}", second.stderr);
    let third = fx.run().args(["--lock-wait", "30", "--json"]).run().code(0);
    assert_eq!(
        service(&parse_report(&third.stdout), "web")["decision"],
        "keep",
        "the first run's placeholder is seen"
    );
    // The first run installed a placeholder for an expired certificate: an error-level run (1).
    assert_eq!(first.wait().expect("first").code(), Some(1));
}

#[test]
fn bad_config_names_file_line_and_column_and_touches_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("broken.toml");
    std::fs::write(
        &config,
        "hostname = \"h.example.com\"\n\n[[service]]\nname = \"web\"\ncertificate = 42\n",
    )
    .expect("write");
    let out = Run::new().arg("--config").arg(&config).run().code(2);
    assert!(out.stderr.contains("broken.toml:5:"), "{}", out.stderr);
    let out = Run::new().arg("--config").arg(&config).args(["config", "check"]).run().code(2);
    assert!(out.stderr.contains("broken.toml:5:"), "{}", out.stderr);
    let missing = dir.path().join("nope.toml");
    let out = Run::new().arg("--config").arg(&missing).run().code(2);
    assert!(out.stderr.contains("nope.toml"), "{}", out.stderr);
    // A first run without a configuration is told how to make one; a broken one is not.
    let hint = format!("checkallsslcerts services --print-config > {}", missing.display());
    assert!(out.stderr.contains(&hint), "{}", out.stderr);
    let out = Run::new().arg("--config").arg(&missing).args(["config", "check"]).run().code(2);
    assert!(out.stderr.contains(&hint), "{}", out.stderr);
    let out = Run::new().arg("--config").arg(&config).run().code(2);
    assert!(!out.stderr.contains("--print-config"), "{}", out.stderr);
}

#[test]
fn config_check_accepts_the_shipped_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Run::new()
        .arg("--config")
        .arg(root.join("examples/demo/config.toml"))
        .args(["config", "check"])
        .run()
        .code(0);
    assert!(out.stdout.contains("services:  4"), "{}", out.stdout);
}

/// Kills a real run at every install step (test-only failpoints, `--features failpoints`) and
/// checks that the next run repairs the service: key and certificate always belong together.
#[cfg(feature = "failpoints")]
#[test]
fn an_interrupted_install_is_repaired_by_the_next_run() {
    for point in [
        "after-temp-write",
        "after-backup",
        "after-journal",
        "between-renames",
        "after-swap",
        "before-reload",
        "after-reload",
    ] {
        let ca = Ca::new("Main Test CA");
        let names = [HOST];
        let mut expired = Leaf::valid(&names, 0);
        expired.not_after = now() - DAY;
        let fx = fixture(&[("web", leaf(&ca, expired))], &ca, RECORD);
        let killed = fx.run().env("CHECKALLSSLCERTS_FAILPOINT", point).run();
        assert_ne!(killed.code, 0, "{point}: the run was killed");
        assert!(fx.state().join("journal").join("web.json").exists(), "{point}: a journal is left");
        let out = fx.run().arg("--json").run();
        let report = parse_report(&out.stdout);
        let actions = &service(&report, "web")["actions"];
        assert_eq!(actions[0]["kind"], "recover", "{point}: {actions}");
        assert_eq!(actions[0]["outcome"], "done", "{point}: {actions}");
        assert!(pair_matches(&fx.svc("web")), "{point}: key and certificate belong together");
        assert!(!fx.state().join("journal").join("web.json").exists(), "{point}: journal cleared");
    }
}

/// `--at`: "what will need replacing by then?" The same healthy server is fine today and, 400
/// days on, holds nothing but expired certificates — with the facts, the chain and the policy
/// all evaluated then. A real run refuses `--at`; a bad time is a usage error.
#[test]
fn at_evaluates_a_dry_run_at_another_time() {
    let ca = Ca::new("Main Test CA");
    let fx = fixture(
        &[("web", leaf(&ca, Leaf::valid(&[HOST], 90))), ("mail", leaf(&ca, Leaf::valid(&[HOST], 300)))],
        &ca,
        RECORD,
    );
    let before = snapshot(fx.root());
    let today = parse_report(&fx.run().args(["--dry-run", "--json"]).run().code(0).stdout);
    for name in ["web", "mail"] {
        assert_eq!(service(&today, name)["decision"], "keep", "{today}");
    }
    let later = parse_report(&fx.run().args(["--dry-run", "--json", "--at", "+400d"]).run().stdout);
    let started = later["started-at"].as_i64().expect("started-at");
    assert!(started > now() + 399 * DAY, "the facts are as of the given time: {started}");
    for name in ["web", "mail"] {
        let s = service(&later, name);
        assert_eq!(reasons(s), ["expired"], "{name}: {s}");
        assert_ne!(s["decision"], "keep", "{name}: {s}");
    }
    // 88 days on, only the certificate with 90 days left is due (2 days left, under 3).
    let soon = parse_report(&fx.run().args(["--dry-run", "--json", "--at", "+88d"]).run().stdout);
    assert_eq!(reasons(service(&soon, "web")), ["expiring-soon"]);
    assert_eq!(service(&soon, "mail")["decision"], "keep");

    let refused = fx.run().args(["--at", "+400d"]).run().code(2);
    assert!(refused.stderr.contains("--dry-run"), "{}", refused.stderr);
    let bad = fx.run().args(["--dry-run", "--at", "next week"]).run().code(2);
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
    assert_eq!(snapshot(fx.root()), before, "nothing changed");
}

/// The verification memo (`<state-dir>/cache/verified`): a real run keeps what it proved about
/// signatures and keys, the next runs read it, and the facts are the same with it, without it,
/// and with a damaged or foreign one (ignored, with a notice); a dry run never writes it.
#[test]
fn the_verification_memo_changes_no_fact() {
    let ca = Ca::new("Main Test CA");
    let mut expired = Leaf::valid(&[HOST], 0);
    expired.not_after = now() - DAY;
    let mut rsa = Leaf::valid(&[HOST], 60);
    rsa.key = pki::rsa_key(2048);
    let self_signed = Leaf::valid(&[HOST], 60);
    let self_signed = Some((pki::self_signed(&self_signed), vec![], self_signed.key));
    let wrong_key = Some((ca.issue(&Leaf::valid(&[HOST], 60)), vec![], pki::ec_key()));
    let other = Ca::new("Unknown CA");
    let unknown = Leaf::valid(&[HOST], 60);
    let untrusted = Some((other.issue(&unknown), vec![other.cert.clone()], unknown.key));
    let fx = fixture(
        &[
            ("web", leaf(&ca, Leaf::valid(&[HOST], 60))),
            ("old", leaf(&ca, expired)),
            ("rsa", leaf(&ca, rsa)),
            ("self", self_signed),
            ("wrongkey", wrong_key),
            ("untrusted", untrusted),
            ("no-issuer", leaf(&other, Leaf::valid(&[HOST], 60))),
        ],
        &ca,
        RECORD,
    );
    // Check only: the real run changes no service, so every run sees the same files.
    std::fs::create_dir_all(fx.state()).expect("state");
    std::fs::set_permissions(fx.state(), std::fs::Permissions::from_mode(0o700)).expect("mode");
    std::fs::write(fx.state().join("disable_service_certificate_management"), "").expect("switch");
    let at = (now() + 3600).to_string();
    let facts = || {
        let out = fx.run().args(["policy", "facts", "--at", &at]).run().code(0);
        (serde_json::from_str::<Value>(&out.stdout).expect("facts JSON"), out.stderr)
    };
    let memo = fx.state().join("cache").join("verified");

    let (without, _) = facts();
    for (name, expect) in [
        ("web", "trusted"),
        ("old", "untrusted"),
        ("self", "untrusted"),
        ("untrusted", "untrusted"),
        ("no-issuer", "incomplete"),
    ] {
        let s =
            without["services"].as_array().expect("services").iter().find(|s| s["name"] == name).expect(name);
        let status = &s["certificate"]["ok"]["chain-status"];
        assert!(status == expect || status.get(expect).is_some(), "{name}: {s}");
    }
    let dry = fx.run().args(["--dry-run", "--json"]).run();
    assert!(dry.stdout.starts_with('{'), "{}", dry.stderr);
    assert!(!memo.exists(), "a dry run does not write the memo");

    fx.run().args(["--json"]).run();
    let written = std::fs::read(&memo).expect("a real run writes the memo");
    assert_eq!(std::fs::metadata(&memo).expect("memo").permissions().mode() & 0o777, 0o600);
    assert!(written.len() > 5 * 32, "signatures and key matches kept: {} bytes", written.len());
    let (with, stderr) = facts();
    assert_eq!(with, without, "the same facts with the memo");
    assert!(!stderr.contains("memo"), "{stderr}");

    // A flipped byte: ignored, said, same facts.
    let mut damaged = written.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x01;
    std::fs::write(&memo, &damaged).expect("damage");
    let (with, stderr) = facts();
    assert_eq!(with, without, "the same facts with a damaged memo");
    assert!(stderr.contains("verification memo was damaged"), "{stderr}");
    // The next real run rebuilds it.
    fx.run().args(["--json"]).run();
    assert_eq!(std::fs::read(&memo).expect("memo"), written, "rebuilt, the same entries");

    // Owned by someone else: not read, a warning, same facts.
    std::os::unix::fs::chown(&memo, Some(65534), Some(65534)).expect("chown");
    let (with, stderr) = facts();
    assert_eq!(with, without, "the same facts with a foreign memo");
    assert!(stderr.contains("verification memo was not used"), "{stderr}");
}
