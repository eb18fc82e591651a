//! End-to-end attacks on a root run (issue 11, `docs/security.md`), black-box over the built
//! binary. Each attack is staged in the test's own temporary directory as a local unprivileged
//! user (uid/gid 65534, `nobody`) could stage it: that user owns a service's directory, and
//! plants links there itself (`setpriv --reuid=65534`); files and links it could only have made
//! in a directory it was let into are made by root and `chown`ed to it. The "victim" is a root-owned file in the
//! temporary directory standing for `/etc/passwd` or `/etc/shadow`; the machine's real `/etc`
//! is never touched. Every test checks that the victim is left byte-identical (same content,
//! mode and owner) and that the run says why. The tests need root (to chown to another user);
//! without it they print why and pass.

#[path = "support/pki.rs"]
mod pki;
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt, chown, lchown, symlink};
use std::path::{Path, PathBuf};

use pki::{Ca, Leaf};
use support::{Outcome, Run};

const HOST: &str = "host.example.com";
/// The unprivileged attacker (`nobody` on Debian).
const ATTACKER: u32 = 65534;
const VICTIM_TEXT: &[u8] =
    b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: the attacks need root (to stage files owned by uid {ATTACKER})");
            return;
        }
    };
}

/// A scratch server: a CA, services, a state dir, a victim file.
struct Server {
    dir: tempfile::TempDir,
    ca: Ca,
    services: Vec<String>,
}

/// One service's configuration lines beyond name, certificate and key.
struct Svc<'a> {
    name: &'a str,
    extra: &'a str,
}

impl Server {
    fn new() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        // Traversable by everyone, like the path to /etc or /srv (the tempdir is 0700).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("mode");
        let ca = Ca::new("Security Test CA");
        std::fs::write(dir.path().join("ca.pem"), pki::pem(&ca.cert)).expect("ca");
        let victim = dir.path().join("etc");
        std::fs::create_dir(&victim).expect("etc");
        std::fs::write(victim.join("passwd"), VICTIM_TEXT).expect("victim");
        std::fs::set_permissions(victim.join("passwd"), std::fs::Permissions::from_mode(0o644))
            .expect("mode");
        Server { dir, ca, services: Vec::new() }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn state(&self) -> PathBuf {
        self.root().join("state")
    }

    fn config(&self) -> PathBuf {
        self.root().join("config.toml")
    }

    /// The file the attacks aim at (root's, 0644).
    fn victim(&self) -> PathBuf {
        self.root().join("etc/passwd")
    }

    fn svc_dir(&self, name: &str) -> PathBuf {
        self.root().join("srv").join(name)
    }

    /// A service directory; `attacker`: owned by uid 65534 (a daemon's or a web user's).
    fn add(&mut self, svc: &Svc<'_>, attacker: bool) -> PathBuf {
        let dir = self.svc_dir(svc.name);
        std::fs::create_dir_all(&dir).expect("service dir");
        if attacker {
            chown(&dir, Some(ATTACKER), Some(ATTACKER)).expect("chown");
        }
        self.services.push(format!(
            "\n[[service]]\nname = \"{}\"\ncertificate = \"{}\"\nkey = \"{}\"\n{}\n",
            svc.name,
            dir.join("cert.pem").display(),
            dir.join("key.pem").display(),
            svc.extra
        ));
        dir
    }

    /// A service with a valid certificate and key (60 days left), in a root-owned directory.
    fn add_healthy(&mut self, name: &str) -> PathBuf {
        let dir = self.add(&Svc { name, extra: "" }, false);
        let names = [HOST];
        let leaf = Leaf::valid(&names, 60);
        pki::write_pair(&dir, &self.ca.issue(&leaf), &[], &leaf.key);
        dir
    }

    /// Writes the configuration (0600, root's).
    fn write_config(&self) {
        let mut text = format!(
            "hostname = \"{HOST}\"\nstate-dir = \"{}\"\n\n[trust]\nsystem-roots = false\nextra-roots = [\"{}\"]\n\n[mail]\nenabled = false\n",
            self.state().display(),
            self.root().join("ca.pem").display()
        );
        for s in &self.services {
            text.push_str(s);
        }
        std::fs::write(self.config(), text).expect("config");
        std::fs::set_permissions(self.config(), std::fs::Permissions::from_mode(0o600)).expect("mode");
    }

    fn run(&self) -> Outcome {
        Run::new().arg("--config").arg(self.config()).run()
    }
}

/// A file's content, mode, owner and inode.
#[derive(PartialEq, Eq)]
struct Snapshot {
    bytes: Vec<u8>,
    mode: u32,
    uid: u32,
    gid: u32,
    ino: u64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.bytes);
        let shown: String = text.chars().take(120).collect();
        write!(
            f,
            "{} bytes {shown:?}, mode {:o}, owner {}:{}, inode {}",
            self.bytes.len(),
            self.mode,
            self.uid,
            self.gid,
            self.ino
        )
    }
}

fn snapshot(path: &Path) -> Snapshot {
    let meta = std::fs::symlink_metadata(path).expect("victim metadata");
    Snapshot {
        bytes: std::fs::read(path).expect("victim"),
        mode: meta.mode(),
        uid: meta.uid(),
        gid: meta.gid(),
        ino: meta.ino(),
    }
}

fn all_output(out: &Outcome) -> String {
    format!("{}\n{}", out.stdout, out.stderr)
}

/// A link planted by the attacker: `link` → `to`, owned by uid 65534 — made by that user itself
/// (`setpriv`, in a directory it may write), or made by root and `lchown`ed to it where it may
/// not (the lock file in root's state directory) or where `setpriv` is missing.
fn plant_link(to: &Path, link: &Path) {
    let as_attacker = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            &ATTACKER.to_string(),
            "--regid",
            &ATTACKER.to_string(),
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(to)
        .arg(link)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !as_attacker {
        symlink(to, link).expect("symlink");
        lchown(link, Some(ATTACKER), Some(ATTACKER)).expect("lchown");
    }
    let meta = std::fs::symlink_metadata(link).expect("the planted link");
    assert!(meta.file_type().is_symlink() && meta.uid() == ATTACKER, "{}: {meta:?}", link.display());
}

fn is_placeholder(path: &Path) -> bool {
    std::fs::read(path).ok().and_then(|b| openssl::x509::X509::from_pem(&b).ok()).is_some_and(|c| {
        c.issuer_name()
            .entries_by_nid(openssl::nid::Nid::ORGANIZATIONNAME)
            .any(|e| e.data().as_slice() == b"checkallsslcerts placeholder")
    })
}

/// Asserts the victim is unchanged, showing the run's output when it is not.
fn assert_untouched(before: &Snapshot, victim: &Path, out: &Outcome) {
    let after = snapshot(victim);
    assert!(
        after == *before,
        "the victim was changed: before {before:?}\nafter {after:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.stdout,
        out.stderr
    );
}

/// a. The service's directory belongs to `nobody`, who replaces `file` by a link to a root file.
/// The run (the certificate is unusable: placeholder) must not write through the link, must fail
/// that service naming the link, leave the link, and still handle the next service.
fn a_linked_file_is_not_written_through(file: &str, extra: &str) {
    let mut server = Server::new();
    let dir = server.add(&Svc { name: "attacked", extra }, true);
    plant_link(&server.victim(), &dir.join(file));
    let other = server.add(&Svc { name: "other", extra: "" }, false);
    server.write_config();
    let before = snapshot(&server.victim());

    let out = server.run();
    assert_untouched(&before, &server.victim(), &out);
    assert_eq!(out.code, 1, "the attacked service fails\n{}", all_output(&out));
    let link = dir.join(file);
    assert!(all_output(&out).contains(&link.display().to_string()), "names the link\n{}", all_output(&out));
    assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink(), "the link is left");
    assert!(is_placeholder(&other.join("cert.pem")), "the other service is handled\n{}", all_output(&out));
}

/// a. `cert.pem` linked, the service installed for `nobody` (the file would be chowned to it).
#[test]
fn a_certificate_linked_by_the_service_user_is_not_written_through() {
    require_root!();
    a_linked_file_is_not_written_through("cert.pem", "owner = \"nobody\"\n");
}

/// a. The key linked and no owner configured (the key would replace the victim).
#[test]
fn a_key_linked_by_the_directory_owner_is_not_written_through() {
    require_root!();
    a_linked_file_is_not_written_through("key.pem", "");
}

/// The other side of the rule: a link made by root (certbot's `live/` → `archive/`) is followed,
/// the new certificate is written to where it points, and the link is kept. (Passes on the old
/// code too: it guards against a fix that refuses every link.)
#[test]
fn a_link_made_by_root_is_still_followed() {
    require_root!();
    let mut server = Server::new();
    let live = server.add(&Svc { name: "certbot", extra: "" }, false);
    let archive = server.root().join("archive");
    std::fs::create_dir(&archive).expect("archive");
    std::fs::write(archive.join("cert1.pem"), b"not a certificate").expect("cert1");
    symlink(archive.join("cert1.pem"), live.join("cert.pem")).expect("symlink");
    server.write_config();

    let out = server.run();
    assert!(std::fs::symlink_metadata(live.join("cert.pem")).expect("link").file_type().is_symlink());
    assert!(
        is_placeholder(&archive.join("cert1.pem")),
        "written where the link points\n{}",
        all_output(&out)
    );
}

/// A journal (the format of `actions/journal.rs`) asking to restore `backup` over `target` for
/// `service`, and the backup with its manifest (`actions/backup.rs`).
fn plant_journal(state: &Path, service: &str, target: &Path, owner: Option<u32>) -> PathBuf {
    let journal_dir = state.join("journal");
    let backup = state.join("backups").join(service).join("20260101T000000Z-1");
    std::fs::create_dir_all(&journal_dir).expect("journal dir");
    std::fs::create_dir_all(&backup).expect("backup dir");
    std::fs::write(backup.join("certificate"), b"root::0:0:owned:/root:/bin/bash\n").expect("backup");
    let manifest = serde_json::json!({
        "version": 1,
        "service": service,
        "created-at": 1_767_225_600,
        "files": [{ "role": "certificate", "target": target, "existed": true, "mode": 0o644, "uid": 0, "gid": 0 }],
    });
    std::fs::write(backup.join("manifest.json"), serde_json::to_vec_pretty(&manifest).expect("json"))
        .expect("manifest");
    let journal = serde_json::json!({
        "version": 1,
        "service": service,
        "operation": "restore",
        "phase": "swapping",
        "pid": 4_000_000,
        "started-at": 1_767_225_600,
        "backup-dir": backup,
        "files": [{
            "role": "certificate",
            "target": target,
            "temp": null,
            "temp-prefix": format!(".checkallsslcerts.{service}.certificate."),
            "remove": false,
        }],
    });
    let path = journal_dir.join(format!("{service}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&journal).expect("json")).expect("journal");
    if let Some(uid) = owner {
        for p in [
            journal_dir.clone(),
            path.clone(),
            state.join("backups"),
            state.join("backups").join(service),
            backup.clone(),
            backup.join("certificate"),
            backup.join("manifest.json"),
        ] {
            chown(&p, Some(uid), Some(uid)).expect("chown");
        }
    }
    path
}

/// b. `nobody` created the state dir's `journal/` (and `backups/`) and planted a journal that
/// restores its own "backup" over a root file, for a configured service. The run must not touch
/// the victim, and must say why: an error naming the untrusted path.
#[test]
fn a_journal_planted_by_another_user_is_refused() {
    require_root!();
    let mut server = Server::new();
    server.add_healthy("web");
    server.write_config();
    std::fs::create_dir_all(server.state()).expect("state");
    std::fs::set_permissions(server.state(), std::fs::Permissions::from_mode(0o700)).expect("mode");
    plant_journal(&server.state(), "web", &server.victim(), Some(ATTACKER));
    let before = snapshot(&server.victim());

    let out = server.run();
    assert_untouched(&before, &server.victim(), &out);
    assert_ne!(out.code, 0, "the run says it could not trust its state\n{}", all_output(&out));
    // The trust check may meet `journal/` or `backups/` first: either is named.
    let planted = ["journal", "backups"].map(|d| server.state().join(d).display().to_string());
    assert!(
        planted.iter().any(|p| all_output(&out).contains(p.as_str())),
        "names the untrusted path\n{}",
        all_output(&out)
    );
}

/// b. A root-owned journal (in a trusted state dir) for a service that is not configured: set
/// aside, never recovered.
#[test]
fn a_journal_for_a_service_that_is_not_configured_is_set_aside() {
    require_root!();
    let mut server = Server::new();
    server.add_healthy("web");
    server.write_config();
    server.run().code(0);
    let journal = plant_journal(&server.state(), "ghost", &server.victim(), None);
    let before = snapshot(&server.victim());

    let out = server.run();
    assert_untouched(&before, &server.victim(), &out);
    assert!(!journal.exists(), "the journal is set aside\n{}", all_output(&out));
    assert!(all_output(&out).contains("ghost"), "says which journal\n{}", all_output(&out));
}

/// b. A root-owned journal for a configured service whose target is not one of that service's
/// configured files: set aside, never recovered.
#[test]
fn a_journal_naming_a_target_outside_the_services_configuration_is_set_aside() {
    require_root!();
    let mut server = Server::new();
    server.add_healthy("web");
    server.write_config();
    server.run().code(0);
    let journal = plant_journal(&server.state(), "web", &server.victim(), None);
    let before = snapshot(&server.victim());

    let out = server.run();
    assert_untouched(&before, &server.victim(), &out);
    assert!(!journal.exists(), "the journal is set aside\n{}", all_output(&out));
    assert!(
        all_output(&out).contains(&server.victim().display().to_string()),
        "names the foreign target\n{}",
        all_output(&out)
    );
}

/// c. A configuration anyone may write (its reload commands would run as root) is refused.
#[test]
fn a_world_writable_configuration_is_refused() {
    require_root!();
    let mut server = Server::new();
    server.add_healthy("web");
    server.write_config();
    std::fs::set_permissions(server.config(), std::fs::Permissions::from_mode(0o666)).expect("mode");
    let out = server.run();
    assert_eq!(out.code, 2, "{}", all_output(&out));
    assert!(all_output(&out).contains("chmod go-w"), "says how to fix it\n{}", all_output(&out));
    assert!(!server.state().join("lock").exists(), "nothing was done");
}

/// c. A configuration owned by another user is refused too.
#[test]
fn a_configuration_owned_by_another_user_is_refused() {
    require_root!();
    let mut server = Server::new();
    server.add_healthy("web");
    server.write_config();
    chown(server.config(), Some(ATTACKER), Some(ATTACKER)).expect("chown");
    let out = server.run();
    assert_eq!(out.code, 2, "{}", all_output(&out));
    assert!(all_output(&out).contains("chown root"), "says how to fix it\n{}", all_output(&out));
}

/// c. The lock file replaced by a link to a root file: the victim is not written (the old code
/// wrote its pid into it and emptied it at exit).
#[test]
fn a_lock_file_linked_to_a_root_file_is_not_written_through() {
    require_root!();
    let mut server = Server::new();
    server.add_healthy("web");
    server.write_config();
    server.run().code(0);
    let lock = server.state().join("lock");
    std::fs::remove_file(&lock).expect("lock");
    plant_link(&server.victim(), &lock);
    let before = snapshot(&server.victim());

    let out = server.run();
    assert_untouched(&before, &server.victim(), &out);
    assert_ne!(out.code, 73, "a link is not 'another run holds the lock'\n{}", all_output(&out));
}

/// d. A 2 GiB sparse `cert.pem`: that service fails with "too large", the next one is handled,
/// and the run's memory stays small (the old code read it whole, and copied it into a backup).
#[test]
fn a_huge_sparse_certificate_fails_its_service_only_and_is_never_read_whole() {
    require_root!();
    let mut server = Server::new();
    let big = server.add(&Svc { name: "big", extra: "" }, true);
    let file = std::fs::File::create(big.join("cert.pem")).expect("big");
    file.set_len(2 << 30).expect("sparse");
    drop(file);
    chown(big.join("cert.pem"), Some(ATTACKER), Some(ATTACKER)).expect("chown");
    let other = server.add(&Svc { name: "other", extra: "" }, false);
    server.write_config();

    let (out, peak) = run_measuring_peak_memory(&server);
    assert_eq!(out.code, 1, "{}", all_output(&out));
    assert!(all_output(&out).contains("too large"), "says why\n{}", all_output(&out));
    assert!(is_placeholder(&other.join("cert.pem")), "the other service is handled\n{}", all_output(&out));
    assert!(peak < 512 * 1024, "peak memory of the run: {peak} KiB\n{}", all_output(&out));
    let backups = du(&server.state());
    assert!(backups < 64 << 20, "the state dir holds {backups} bytes");
}

/// Runs the binary like [`Server::run`], polling its peak resident memory (`VmHWM`, KiB) in
/// `/proc` until it exits.
fn run_measuring_peak_memory(server: &Server) -> (Outcome, u64) {
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let child = Command::new(env!("CARGO_BIN_EXE_checkallsslcerts"))
        .env_remove("CHECKALLSSLCERTS_CONFIG")
        .env("NO_COLOR", "1")
        .env("CHECKALLSSLCERTS_NETWORK_FACTS", "off")
        .arg("--config")
        .arg(server.config())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let status = format!("/proc/{}/status", child.id());
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let output = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&status) {
                    let hwm = text
                        .lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                    if let Some(hwm) = hwm {
                        peak.fetch_max(hwm, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let output = child.wait_with_output().expect("wait");
        done.store(true, Ordering::Relaxed);
        output
    });
    let out = Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    (out, peak.into_inner())
}

/// Bytes allocated under `dir` (sparse files count what they use).
fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

/// e. A corrupted compiled-policy cache: the next runs succeed (no SIGSEGV: the old code
/// deserialised it unchecked, 139 in 6 runs of 40), and the cache is rebuilt.
#[test]
fn a_corrupted_policy_cache_is_rebuilt_not_loaded() {
    require_root!();
    let mut server = Server::new();
    server.add_healthy("web");
    server.write_config();
    server.run().code(0);
    let cache_dir = server.state().join("cache");
    let cached: Vec<PathBuf> = std::fs::read_dir(&cache_dir)
        .expect("the first run fills the cache")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let original = std::fs::read(&cached[0]).expect("cache");
    // Positions spread over the file (headers, code, metadata), each flipped in turn.
    for i in 1..=8 {
        let at = original.len() * i / 9;
        let mut corrupted = original.clone();
        corrupted[at] ^= 0xff;
        std::fs::write(&cached[0], &corrupted).expect("corrupt");
        let out = server.run();
        assert_eq!(out.code, 0, "byte {at} flipped (-1: killed by a signal)\n{}", all_output(&out));
        let now: Vec<Vec<u8>> = std::fs::read_dir(&cache_dir)
            .expect("cache")
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|e| e == "cwasm"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .collect();
        assert!(
            !now.contains(&corrupted),
            "byte {at} flipped: the corrupted cache file is still there (it was not checked)"
        );
    }
}

/// Control characters in a certificate's names never reach the output raw: an issuer
/// organisation of "Evil\nerror: FORGED" cannot print a line of its own.
#[test]
fn control_characters_in_certificate_names_cannot_forge_output_lines() {
    require_root!();
    let mut server = Server::new();
    let dir = server.add(&Svc { name: "forged", extra: "" }, false);
    let names = [HOST];
    let mut leaf = Leaf::valid(&names, 60);
    leaf.org = Some("Evil\nerror: FORGED\x1b[2K");
    pki::write_pair(&dir, &server.ca.issue(&leaf), &[], &leaf.key);
    server.write_config();
    for args in [&["--dry-run"][..], &["--dry-run", "--verbose"], &["--dry-run", "--json"]] {
        let out = Run::new().arg("--config").arg(server.config()).args(args).run();
        let text = all_output(&out);
        assert!(
            !text.lines().any(|l| l.trim_start().starts_with("error: FORGED")) && !text.contains('\x1b'),
            "{args:?}: a forged line or a raw escape\n{text}"
        );
    }
}
