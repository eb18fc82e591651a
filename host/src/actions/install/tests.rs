//! Unit tests of installs, restores and recovery.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use super::*;
use crate::actions::reload::tests::script;
use crate::actions::test_support::{material, mode_of};
use crate::actions::{FAILPOINT_ENV, FAILPOINTS, JOURNAL_DIR};

struct Env {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
    tls: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    let state = root.join("state");
    let tls = root.join("tls");
    fs::create_dir(&tls).expect("tls dir");
    Env { _tmp: tmp, root, state, tls }
}

impl Env {
    fn cert(&self) -> PathBuf {
        self.tls.join("cert.pem")
    }
    fn key(&self) -> PathBuf {
        self.tls.join("key.pem")
    }
    fn target(&self) -> InstallTarget {
        InstallTarget::separate("nginx", self.cert(), self.key())
    }
    /// Puts `m` in place by hand, as an earlier install would have.
    fn put(&self, m: &Material) {
        fs::write(self.cert(), &m.certificate_pem).expect("cert");
        fs::write(self.key(), &*m.key_pem).expect("key");
        fs::set_permissions(self.key(), fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    fn assert_in_place(&self, m: &Material) {
        assert_eq!(fs::read(self.cert()).expect("cert"), m.certificate_pem);
        assert_eq!(fs::read(self.key()).expect("key"), *m.key_pem);
    }
    fn journal_dir_is_empty(&self) -> bool {
        fs::read_dir(self.state.join(JOURNAL_DIR)).map(|mut d| d.next().is_none()).unwrap_or(true)
    }
    fn stray_temps(&self) -> Vec<String> {
        fs::read_dir(&self.tls)
            .expect("tls")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }
    fn backups(&self, service: &str) -> Vec<PathBuf> {
        let mut v: Vec<_> = fs::read_dir(backup::service_dir(&self.state, service))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }
}

fn cmd(argv: &[&str]) -> ReloadCommand {
    ReloadCommand::single(argv.iter().map(|s| s.to_string()).collect(), Duration::from_secs(20))
}

#[test]
fn install_into_an_empty_directory() {
    let e = env();
    let m = material("host.example");
    let report = install(&e.state, &e.target(), &m, None).expect("install");
    e.assert_in_place(&m);
    assert_eq!(mode_of(&e.key()), 0o600);
    assert_eq!(mode_of(&e.cert()), 0o644);
    assert!(e.journal_dir_is_empty());
    assert!(e.stray_temps().is_empty(), "{:?}", e.stray_temps());
    assert_eq!(report.files.len(), 2);
    assert_eq!(report.files[0].role, Role::Key);
    assert_eq!(report.files[1].role, Role::Certificate);
    assert!(report.files.iter().all(|f| !f.replaced));
    assert!(report.backup_dir.join("manifest.json").exists());
    assert!(!report.backup_dir.join("key").exists());
    assert_eq!(mode_of(&report.backup_dir), 0o700);
    assert_eq!(mode_of(&e.state.join("backups")), 0o700);
    assert_eq!(mode_of(&e.state.join(JOURNAL_DIR)), 0o700);
}

#[test]
fn install_over_existing_files_backs_them_up_byte_for_byte() {
    let e = env();
    let old = material("old.example");
    e.put(&old);
    fs::set_permissions(e.cert(), fs::Permissions::from_mode(0o640)).expect("chmod");
    let new = material("new.example");
    let report = install(&e.state, &e.target(), &new, None).expect("install");
    e.assert_in_place(&new);
    assert!(report.files.iter().all(|f| f.replaced));
    let name = report.backup_dir.file_name().expect("name").to_string_lossy().into_owned();
    assert_eq!(name.len(), "20250101T000000Z-1".len(), "{name}");
    assert!(name.ends_with("Z-1"), "{name}");
    assert_eq!(fs::read(report.backup_dir.join("certificate")).expect("b"), old.certificate_pem);
    assert_eq!(fs::read(report.backup_dir.join("key")).expect("b"), *old.key_pem);
    assert_eq!(mode_of(&report.backup_dir.join("certificate")), 0o640);
    assert_eq!(mode_of(&report.backup_dir.join("key")), 0o600);
    // No mode configured: the old file's mode is kept (what the administrator set).
    assert_eq!(mode_of(&e.cert()), 0o640);
}

#[test]
fn configured_modes_owner_and_group() {
    let e = env();
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid()).expect("lookup").expect("current user");
    let group = nix::unistd::Group::from_gid(nix::unistd::getegid()).expect("lookup").expect("current group");
    let mut t = e.target();
    t.certificate_mode = Some(0o640);
    t.key_mode = Some(0o440);
    t.owner = Some(user.name.clone());
    t.group = Some(group.name.clone());
    install(&e.state, &t, &material("h.example"), None).expect("install");
    assert_eq!(mode_of(&e.cert()), 0o640);
    assert_eq!(mode_of(&e.key()), 0o440);
    let meta = fs::metadata(e.key()).expect("meta");
    assert_eq!(meta.uid(), user.uid.as_raw());
    assert_eq!(meta.gid(), group.gid.as_raw());

    // Numeric ids work too.
    t.owner = Some(user.uid.as_raw().to_string());
    t.group = None;
    install(&e.state, &t, &material("h.example"), None).expect("numeric owner");

    t.owner = Some("no-such-user-checkallsslcerts".into());
    let err = install(&e.state, &t, &material("h.example"), None).expect_err("unknown user");
    let msg = err.to_string();
    assert!(msg.contains("service nginx"), "{msg}");
    assert!(msg.contains("no-such-user-checkallsslcerts"), "{msg}");
    assert!(msg.contains(&e.cert().display().to_string()), "{msg}");
}

#[test]
fn unsafe_modes_and_inconsistent_targets_are_refused() {
    let e = env();
    let m = material("h.example");
    let mut t = e.target();
    t.key_mode = Some(0o644);
    let err = install(&e.state, &t, &m, None).expect_err("world-readable key");
    assert!(err.to_string().contains("0644"), "{err}");
    assert!(err.to_string().contains(&e.key().display().to_string()), "{err}");

    let mut t = e.target();
    t.certificate_mode = Some(0o4755);
    assert!(install(&e.state, &t, &m, None).is_err());

    let mut t = e.target();
    t.key = None;
    let err = install(&e.state, &t, &m, None).expect_err("no key file");
    assert!(err.to_string().contains("needs a key file"), "{err}");

    let mut t = InstallTarget::combined("haproxy", e.tls.join("all.pem"));
    t.key = Some(e.key());
    assert!(install(&e.state, &t, &m, None).is_err());

    let t = InstallTarget::separate("nginx", e.cert(), e.cert());
    let err = install(&e.state, &t, &m, None).expect_err("same file twice");
    assert!(err.to_string().contains("two roles"), "{err}");

    let t = InstallTarget::separate("nginx", "relative.pem".into(), e.key());
    assert!(install(&e.state, &t, &m, None).is_err());

    let t = InstallTarget::separate("nginx", e.root.join("missing/cert.pem"), e.key());
    let err = install(&e.state, &t, &m, None).expect_err("missing dir");
    assert!(err.to_string().contains("does not exist"), "{err}");

    assert!(!e.cert().exists() && !e.key().exists());
    assert!(e.stray_temps().is_empty());
}

#[test]
fn a_key_that_does_not_belong_to_the_certificate_is_refused_before_anything_is_written() {
    let e = env();
    let a = material("a.example");
    let b = material("b.example");
    let mixed = Material {
        certificate_pem: a.certificate_pem.clone(),
        chain_pem: Vec::new(),
        key_pem: b.key_pem.clone(),
    };
    let err = install(&e.state, &e.target(), &mixed, None).expect_err("mismatch");
    assert!(matches!(err, InstallError::InvalidMaterial { .. }), "{err}");
    assert!(err.to_string().contains("service nginx"), "{err}");
    assert!(!e.cert().exists());
    assert!(e.journal_dir_is_empty());
}

#[test]
fn combined_layout_is_one_private_file() {
    let e = env();
    let path = e.tls.join("haproxy.pem");
    let m = material("h.example");
    let report =
        install(&e.state, &InstallTarget::combined("haproxy", path.clone()), &m, None).expect("install");
    assert_eq!(report.files.len(), 1);
    assert_eq!(report.files[0].role, Role::Combined);
    let mut expected = m.certificate_pem.clone();
    expected.extend_from_slice(&m.key_pem);
    assert_eq!(fs::read(&path).expect("read"), expected);
    assert_eq!(mode_of(&path), 0o600);
    let files = [JournalFile {
        role: Role::Combined,
        target: path,
        temp: None,
        temp_prefix: String::new(),
        remove: false,
    }];
    assert_eq!(check_pairing(&files), Pairing::Matched);
}

#[test]
fn chain_goes_to_the_chain_file_or_after_the_leaf() {
    let e = env();
    let leaf = material("h.example");
    let intermediate = material("ca.example");
    let m = Material { chain_pem: intermediate.certificate_pem.clone(), ..leaf.clone() };
    let mut t = e.target();
    t.chain = Some(e.tls.join("chain.pem"));
    install(&e.state, &t, &m, None).expect("with chain file");
    assert_eq!(fs::read(e.cert()).expect("cert"), leaf.certificate_pem);
    assert_eq!(fs::read(e.tls.join("chain.pem")).expect("chain"), intermediate.certificate_pem);
    assert_eq!(mode_of(&e.tls.join("chain.pem")), 0o644);

    install(&e.state, &e.target(), &m, None).expect("without chain file");
    let mut expected = leaf.certificate_pem.clone();
    expected.extend_from_slice(&intermediate.certificate_pem);
    assert_eq!(fs::read(e.cert()).expect("cert"), expected);
}

#[test]
fn a_symlinked_target_is_followed_and_the_link_kept() {
    let e = env();
    let real_dir = e.root.join("archive");
    fs::create_dir(&real_dir).expect("dir");
    let old = material("old.example");
    fs::write(real_dir.join("cert1.pem"), &old.certificate_pem).expect("w");
    fs::write(real_dir.join("key1.pem"), &*old.key_pem).expect("w");
    std::os::unix::fs::symlink(real_dir.join("cert1.pem"), e.cert()).expect("link");
    std::os::unix::fs::symlink(real_dir.join("key1.pem"), e.key()).expect("link");
    let new = material("new.example");
    let report = install(&e.state, &e.target(), &new, None).expect("install");
    assert!(fs::symlink_metadata(e.cert()).expect("meta").file_type().is_symlink());
    assert_eq!(fs::read(real_dir.join("cert1.pem")).expect("r"), new.certificate_pem);
    assert_eq!(report.files[1].path, fs::canonicalize(real_dir.join("cert1.pem")).expect("c"));
    assert_eq!(fs::read(report.backup_dir.join("certificate")).expect("b"), old.certificate_pem);
}

#[test]
fn reload_gets_its_argv_intact() {
    let e = env();
    let record = e.root.join("args");
    let pwned = e.root.join("pwned");
    let s = script(&e.root, "reload.sh", &format!("printf '%s\\n' \"$@\" > '{}'", record.display()));
    let evil = format!("reload; touch {}", pwned.display());
    let c = cmd(&[s.to_str().expect("utf8"), "-s", "reload now", &evil]);
    let report = install(&e.state, &e.target(), &material("h.example"), Some(&c)).expect("install");
    assert!(report.reload.is_some());
    assert_eq!(fs::read_to_string(&record).expect("record"), format!("-s\nreload now\n{evil}\n"));
    assert!(!pwned.exists());
    assert!(e.journal_dir_is_empty());
}

/// A reload script that appends the certificate it sees to `log` and fails the first
/// `failures` times.
fn flaky_reload(e: &Env, failures: u32) -> (ReloadCommand, PathBuf) {
    let log = e.root.join("reload.log");
    let count = e.root.join("count");
    let s = script(
        &e.root,
        "flaky.sh",
        &format!(
            "n=$(cat '{count}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{count}'\n\
             cat '{cert}' >> '{log}'\n\
             if [ $n -le {failures} ]; then echo \"cannot load certificate (try $n)\" >&2; exit 1; fi",
            count = count.display(),
            cert = e.cert().display(),
            log = log.display(),
        ),
    );
    (cmd(&[s.to_str().expect("utf8")]), log)
}

#[test]
fn a_failing_reload_restores_the_previous_files_and_reloads_again() {
    let e = env();
    let old = material("old.example");
    e.put(&old);
    let new = material("new.example");
    let (c, log) = flaky_reload(&e, 1);
    let err = install(&e.state, &e.target(), &new, Some(&c)).expect_err("reload fails");
    let msg = err.to_string();
    assert!(msg.starts_with("service nginx: reload with the new certificate failed"), "{msg}");
    assert!(msg.contains("exited with status 1"), "{msg}");
    assert!(msg.contains("cannot load certificate (try 1)"), "{msg}");
    assert!(msg.contains("the reload with them succeeded"), "{msg}");
    assert_eq!(msg.matches("service nginx").count(), 1, "{msg}");
    let InstallError::ReloadFailed { rollback, .. } = &err else { panic!("{err:?}") };
    assert!(rollback.restored());

    e.assert_in_place(&old);
    assert_eq!(mode_of(&e.key()), 0o600);
    // The first reload saw the new certificate, the second the old one.
    let mut expected = new.certificate_pem.clone();
    expected.extend_from_slice(&old.certificate_pem);
    assert_eq!(fs::read(&log).expect("log"), expected);
    assert!(e.journal_dir_is_empty());
    assert!(e.stray_temps().is_empty());
    // The rejected new material is kept.
    let backup = e.backups("nginx").pop().expect("backup");
    assert_eq!(fs::read(backup::rejected_file(&backup, Role::Key)).expect("rej"), *new.key_pem);
    assert_eq!(mode_of(&backup::rejected_file(&backup, Role::Key)), 0o600);
}

#[test]
fn when_the_second_of_two_reload_commands_fails_the_install_is_rolled_back_and_both_run_again() {
    let e = env();
    let old = material("old.example");
    e.put(&old);
    let new = material("new.example");
    // The first command always succeeds and logs; the second is the flaky one (fails once).
    let first_log = e.root.join("first.log");
    let first =
        script(&e.root, "first.sh", &format!("cat '{}' >> '{}'", e.cert().display(), first_log.display()));
    let (flaky, flaky_log) = flaky_reload(&e, 1);
    let c = ReloadCommand {
        argvs: vec![vec![first.to_str().expect("utf8").to_string()], flaky.argvs[0].clone()],
        timeout: Duration::from_secs(20),
    };
    let err = install(&e.state, &e.target(), &new, Some(&c)).expect_err("second reload fails");
    let msg = err.to_string();
    assert!(msg.starts_with("service nginx: reload with the new certificate failed"), "{msg}");
    assert!(msg.contains("flaky.sh exited with status 1"), "{msg}");
    assert!(msg.contains("the reload with them succeeded"), "{msg}");
    e.assert_in_place(&old);
    // Both commands ran with the new files, then both again with the old ones.
    let mut expected = new.certificate_pem.clone();
    expected.extend_from_slice(&old.certificate_pem);
    assert_eq!(fs::read(&first_log).expect("log"), expected);
    assert_eq!(fs::read(&flaky_log).expect("log"), expected);
    assert!(e.journal_dir_is_empty());
}

#[test]
fn when_both_reloads_fail_the_error_says_so_and_the_old_files_stay() {
    let e = env();
    let old = material("old.example");
    e.put(&old);
    let (c, _) = flaky_reload(&e, 2);
    let err = install(&e.state, &e.target(), &material("new.example"), Some(&c)).expect_err("fails");
    let msg = err.to_string();
    assert!(msg.contains("try 1"), "{msg}");
    assert!(msg.contains("the reload with them failed too"), "{msg}");
    assert!(msg.contains("try 2"), "{msg}");
    e.assert_in_place(&old);
    assert!(e.journal_dir_is_empty());
}

#[test]
fn a_failing_reload_after_installing_into_an_empty_place_removes_the_new_files() {
    let e = env();
    let (c, _) = flaky_reload(&e, 1);
    let err = install(&e.state, &e.target(), &material("new.example"), Some(&c)).expect_err("fails");
    assert!(err.to_string().contains("succeeded"), "{err}");
    assert!(!e.cert().exists() && !e.key().exists());
}

#[test]
fn a_reload_that_times_out_is_killed_and_rolled_back() {
    let e = env();
    let old = material("old.example");
    e.put(&old);
    let s = script(&e.root, "hang.sh", "sleep 60");
    let c = ReloadCommand::single(vec![s.to_string_lossy().into_owned()], Duration::from_millis(300));
    let start = std::time::Instant::now();
    let err = install(&e.state, &e.target(), &material("new.example"), Some(&c)).expect_err("timeout");
    assert!(start.elapsed() < Duration::from_secs(15));
    let msg = err.to_string();
    assert!(msg.contains("timed out after 300ms"), "{msg}");
    e.assert_in_place(&old);
}

#[test]
fn a_pending_journal_blocks_the_install() {
    let e = env();
    crate::actions::ensure_state_dir(&e.state).expect("state");
    let plan = plan_install(&e.target(), &material("h.example"), &mut Vec::new()).expect("plan");
    save(&e.state, &new_journal("nginx", Operation::Install, &plan, None)).expect("save");
    let err = install(&e.state, &e.target(), &material("h.example"), None).expect_err("pending");
    assert!(matches!(err, InstallError::PendingJournal { .. }), "{err}");
    assert!(err.to_string().contains("nginx.json"), "{err}");
}

#[test]
fn old_backups_are_pruned_to_the_newest_ten() {
    let e = env();
    let mut last = PathBuf::new();
    for _ in 0..BACKUPS_TO_KEEP + 2 {
        last = install(&e.state, &e.target(), &material("h.example"), None).expect("install").backup_dir;
    }
    let backups = e.backups("nginx");
    assert_eq!(backups.len(), BACKUPS_TO_KEEP, "{backups:?}");
    assert!(backups.contains(&last));
}

// ---------------------------------------------------------------------------------------------
// Recovery, with journals and files laid out by hand.

/// Lays out the state a killed install of `new` over `old` would leave at `phase`, with
/// `renamed` files already moved into place (key first, as the install does).
fn crashed_install(e: &Env, old: &Material, new: &Material, phase: Phase, renamed: usize) -> Journal {
    e.put(old);
    crate::actions::ensure_state_dir(&e.state).expect("state");
    let plan = plan_install(&e.target(), new, &mut Vec::new()).expect("plan");
    let targets: Vec<_> = plan.iter().map(|p| (p.role, &p.target)).collect();
    let (backup_dir, _) = backup::create(&e.state, "nginx", &targets, unix_now()).expect("backup");
    let mut j = new_journal("nginx", Operation::Install, &plan, Some(backup_dir));
    for (i, (p, f)) in plan.iter().zip(j.files.iter_mut()).enumerate() {
        let temp = e.tls.join(format!("{}ABCDEFGH.tmp", f.temp_prefix));
        let content = p.content.as_ref().expect("content");
        if i < renamed {
            fs::write(&p.path, &**content).expect("renamed");
        } else {
            fs::write(&temp, &**content).expect("temp");
        }
        if phase >= Phase::Prepared {
            f.temp = Some(temp);
        }
    }
    if phase == Phase::Preparing {
        j.backup_dir = None;
    }
    j.phase = phase;
    j.save(&e.state).expect("journal");
    j
}

fn recover_single(e: &Env) -> RecoveryReport {
    let mut reports = recover(&e.state, &[e.target()]);
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = reports.remove(0);
    assert!(e.journal_dir_is_empty(), "journal left behind");
    assert!(e.stray_temps().is_empty(), "{:?}", e.stray_temps());
    assert!(recover(&e.state, &[e.target()]).is_empty(), "a second recovery finds nothing");
    r
}

#[test]
fn recover_preparing_deletes_the_temporary_files() {
    let e = env();
    let (old, new) = (material("old.example"), material("new.example"));
    crashed_install(&e, &old, &new, Phase::Preparing, 0);
    assert_eq!(e.stray_temps().len(), 2);
    let r = recover_single(&e);
    assert_eq!(r.outcome, RecoveryOutcome::DiscardedNew, "{r}");
    assert_eq!(r.pairing, Pairing::Matched);
    assert!(r.is_ok());
    e.assert_in_place(&old);
    assert!(r.to_string().contains("service nginx: an interrupted install (phase preparing)"), "{r}");
}

#[test]
fn recover_prepared_keeps_the_new_files_aside_and_leaves_the_old_ones() {
    let e = env();
    let (old, new) = (material("old.example"), material("new.example"));
    let j = crashed_install(&e, &old, &new, Phase::Prepared, 0);
    let r = recover_single(&e);
    assert_eq!(r.outcome, RecoveryOutcome::DiscardedNew);
    e.assert_in_place(&old);
    let backup = j.backup_dir.expect("backup");
    assert_eq!(fs::read(backup::rejected_file(&backup, Role::Key)).expect("rej"), *new.key_pem);
}

#[test]
fn recover_mid_swap_rolls_back_to_the_backup() {
    let e = env();
    let (old, new) = (material("old.example"), material("new.example"));
    // The new key is in place, the new certificate is not: the dangerous window.
    let j = crashed_install(&e, &old, &new, Phase::Swapping, 1);
    assert_eq!(fs::read(e.key()).expect("key"), *new.key_pem);
    let r = recover_single(&e);
    assert_eq!(r.outcome, RecoveryOutcome::RolledBack, "{r}");
    assert_eq!(r.pairing, Pairing::Matched, "{r}");
    e.assert_in_place(&old);
    assert_eq!(mode_of(&e.key()), 0o600);
    let backup = j.backup_dir.expect("backup");
    assert_eq!(fs::read(backup::rejected_file(&backup, Role::Key)).expect("r"), *new.key_pem);
    assert_eq!(fs::read(backup::rejected_file(&backup, Role::Certificate)).expect("r"), new.certificate_pem);
    assert!(r.to_string().contains("rolled back"), "{r}");
}

#[test]
fn recover_swapped_rolls_back_too() {
    let e = env();
    let (old, new) = (material("old.example"), material("new.example"));
    crashed_install(&e, &old, &new, Phase::Swapped, 2);
    e.assert_in_place(&new);
    let r = recover_single(&e);
    assert_eq!(r.outcome, RecoveryOutcome::RolledBack);
    assert_eq!(r.pairing, Pairing::Matched);
    e.assert_in_place(&old);
}

#[test]
fn recover_swapped_into_an_empty_place_removes_the_new_files() {
    let e = env();
    crate::actions::ensure_state_dir(&e.state).expect("state");
    let new = material("new.example");
    let plan = plan_install(&e.target(), &new, &mut Vec::new()).expect("plan");
    let targets: Vec<_> = plan.iter().map(|p| (p.role, &p.target)).collect();
    let (backup_dir, _) = backup::create(&e.state, "nginx", &targets, unix_now()).expect("backup");
    e.put(&new);
    let mut j = new_journal("nginx", Operation::Install, &plan, Some(backup_dir));
    j.phase = Phase::Swapped;
    j.save(&e.state).expect("journal");
    let r = recover_single(&e);
    assert_eq!(r.outcome, RecoveryOutcome::RolledBack);
    assert!(matches!(r.pairing, Pairing::NotChecked(_)), "{r:?}");
    assert!(!e.cert().exists() && !e.key().exists());
}

#[test]
fn recover_reloaded_keeps_the_new_files() {
    let e = env();
    let (old, new) = (material("old.example"), material("new.example"));
    crashed_install(&e, &old, &new, Phase::Reloaded, 2);
    let r = recover_single(&e);
    assert_eq!(r.outcome, RecoveryOutcome::Completed);
    assert_eq!(r.pairing, Pairing::Matched);
    e.assert_in_place(&new);
}

#[test]
fn recover_an_interrupted_restore_finishes_it() {
    let e = env();
    let (old, new) = (material("old.example"), material("new.example"));
    let j = crashed_install(&e, &old, &new, Phase::Swapped, 2);
    let backup_dir = j.backup_dir.clone().expect("backup");
    // The reload failed and the restore got as far as writing its temporary files.
    let manifest = backup::read_manifest(&backup_dir).expect("manifest");
    let mut restore = j.clone();
    restore.operation = Operation::Restore;
    restore.phase = Phase::Prepared;
    for (f, m) in restore.files.iter_mut().zip(&manifest.files) {
        let temp = e.tls.join(format!("{}RESTORE1.tmp", f.temp_prefix));
        fs::copy(backup::file_in(&backup_dir, m.role), &temp).expect("copy");
        f.temp = Some(temp);
    }
    restore.save(&e.state).expect("journal");
    let r = recover_single(&e);
    assert_eq!(r.operation, Some(Operation::Restore));
    assert_eq!(r.outcome, RecoveryOutcome::RolledBack);
    assert_eq!(r.pairing, Pairing::Matched);
    e.assert_in_place(&old);
}

#[test]
fn recover_sets_aside_journals_it_cannot_use() {
    let e = env();
    crate::actions::ensure_state_dir(&e.state).expect("state");
    fs::write(e.state.join(JOURNAL_DIR).join("broken.json"), b"{ not json").expect("write");
    let reports = recover(&e.state, &[e.target()]);
    assert_eq!(reports.len(), 1);
    let RecoveryOutcome::Failed { error, kept_journal } = &reports[0].outcome else {
        panic!("{:?}", reports[0])
    };
    assert!(error.contains("broken.json"), "{error}");
    let kept = kept_journal.as_ref().expect("kept");
    assert!(kept.to_string_lossy().contains("broken.json.failed-"), "{}", kept.display());
    assert!(kept.exists());
    assert!(!reports[0].is_ok());
    assert!(recover(&e.state, &[e.target()]).is_empty());

    // A journal mid-swap whose backup has gone cannot be rolled back: reported, set aside.
    let (old, new) = (material("old.example"), material("new.example"));
    let j = crashed_install(&e, &old, &new, Phase::Swapped, 2);
    fs::remove_dir_all(j.backup_dir.as_ref().expect("backup")).expect("rm");
    let reports = recover(&e.state, &[e.target()]);
    assert_eq!(reports.len(), 1);
    let msg = reports[0].to_string();
    assert!(msg.contains("service nginx") && msg.contains("could not be recovered"), "{msg}");
    assert!(msg.contains("manifest.json"), "{msg}");
    // The files are left as they are: a consistent new pair.
    assert_eq!(reports[0].pairing, Pairing::Matched);
    e.assert_in_place(&new);
    assert!(recover(&e.state, &[e.target()]).is_empty());
    install(&e.state, &e.target(), &material("next.example"), None).expect("not blocked");
}

#[test]
fn no_state_means_nothing_to_recover() {
    let e = env();
    assert!(recover(&e.state, &[e.target()]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Real crashes: this test binary runs itself with a failpoint set and is aborted there.

const CHILD_DIR_ENV: &str = "CHECKALLSSLCERTS_TEST_CHILD_DIR";

/// The install a crash test kills; does nothing unless run by `every_failpoint_*`.
#[test]
#[ignore = "run in a child process by every_failpoint_is_repaired_by_the_next_recover"]
fn failpoint_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let root = PathBuf::from(dir);
    let new = Material {
        certificate_pem: fs::read(root.join("new.crt")).expect("new cert"),
        chain_pem: Vec::new(),
        key_pem: Zeroizing::new(fs::read(root.join("new.key")).expect("new key")),
    };
    let target = InstallTarget::separate("nginx", root.join("tls/cert.pem"), root.join("tls/key.pem"));
    let reload = cmd(&[root.join("reload.sh").to_str().expect("utf8")]);
    install(&root.join("state"), &target, &new, Some(&reload)).expect("install");
}

#[test]
fn every_failpoint_is_repaired_by_the_next_recover() {
    let exe = std::env::current_exe().expect("current exe");
    for fp in FAILPOINTS {
        let e = env();
        let (old, new) = (material("old.example"), material("new.example"));
        e.put(&old);
        fs::write(e.root.join("new.crt"), &new.certificate_pem).expect("w");
        fs::write(e.root.join("new.key"), &*new.key_pem).expect("w");
        let reloaded = e.root.join("reloaded");
        script(&e.root, "reload.sh", &format!("echo yes > '{}'", reloaded.display()));

        let out = Command::new(&exe)
            .args([
                "--exact",
                "actions::install::tests::failpoint_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(FAILPOINT_ENV, fp)
            .env(CHILD_DIR_ENV, &e.root)
            .output()
            .expect("run child");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&out.status),
            Some(6),
            "{fp}: the child was not aborted: {:?}\n{stderr}",
            out.status
        );
        assert!(stderr.contains(&format!("failpoint {fp}: aborting")), "{fp}: {stderr}");
        assert!(!e.journal_dir_is_empty(), "{fp}: no journal left by the killed run");

        let r = recover_single(&e);
        assert_eq!(r.pairing, Pairing::Matched, "{fp}: {r}");
        let (expected_outcome, expected) = match fp {
            "after-temp-write" | "after-backup" | "after-journal" => (RecoveryOutcome::DiscardedNew, &old),
            "between-renames" | "after-swap" | "before-reload" => (RecoveryOutcome::RolledBack, &old),
            "after-reload" => (RecoveryOutcome::Completed, &new),
            other => panic!("untested failpoint {other}"),
        };
        assert_eq!(r.outcome, expected_outcome, "{fp}: {r}");
        e.assert_in_place(expected);
        assert_eq!(mode_of(&e.key()), 0o600, "{fp}");
        assert_eq!(reloaded.exists(), fp == "after-reload", "{fp}");

        // And the next install goes through.
        install(&e.state, &e.target(), &new, None).expect("install after recovery");
        e.assert_in_place(&new);
    }
}

// ---------------------------------------------------------------------------------------------
// The filesystem is hostile (issue 11): links, planted journals, huge files, encrypted keys.

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

const NOBODY: u32 = 65534;

/// The service directory is given to `nobody`, who replaces `name` by a link to a victim file
/// outside it (the link owned by `nobody`, as they would make it).
fn plant_link(e: &Env, name: &str) -> PathBuf {
    let victim = e.root.join("victim");
    fs::write(&victim, "root:x:0:0:root:/root:/bin/sh\n").expect("victim");
    std::os::unix::fs::chown(&e.tls, Some(NOBODY), Some(NOBODY)).expect("chown dir");
    let link = e.tls.join(name);
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&victim, &link).expect("symlink");
    std::os::unix::fs::lchown(&link, Some(NOBODY), Some(NOBODY)).expect("lchown");
    victim
}

#[test]
fn a_link_planted_by_the_directory_owner_is_never_written_through() {
    if !is_root() {
        eprintln!("skipped: needs root to plant a link as another user");
        return;
    }
    for (name, owner) in [("cert.pem", Some("nobody")), ("key.pem", None)] {
        let e = env();
        e.put(&material("old.example"));
        let victim = plant_link(&e, name);
        let before = fs::read(&victim).expect("victim");
        let mut target = e.target();
        target.owner = owner.map(str::to_string);
        let err = install(&e.state, &target, &material("new.example"), None).expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains(&e.tls.join(name).display().to_string()), "{msg}");
        assert!(msg.contains("symbolic link owned by uid 65534"), "{msg}");
        assert_eq!(fs::read(&victim).expect("victim"), before, "{name}: the victim is untouched");
        assert_eq!(mode_of(&victim), 0o644, "{name}");
        assert_eq!(fs::metadata(&victim).expect("meta").uid(), 0, "{name}");
        assert!(e.journal_dir_is_empty(), "{name}: nothing was started");
    }
}

#[test]
fn a_link_root_made_is_followed_and_stays_a_link() {
    let e = env();
    let archive = e.root.join("archive");
    fs::create_dir(&archive).expect("archive");
    let old = material("old.example");
    fs::write(archive.join("cert1.pem"), &old.certificate_pem).expect("cert");
    fs::write(archive.join("key1.pem"), &*old.key_pem).expect("key");
    std::os::unix::fs::symlink("../archive/cert1.pem", e.cert()).expect("link");
    std::os::unix::fs::symlink("../archive/key1.pem", e.key()).expect("link");
    let new = material("new.example");
    install(&e.state, &e.target(), &new, None).expect("install");
    assert!(fs::symlink_metadata(e.cert()).expect("lstat").file_type().is_symlink());
    assert_eq!(fs::read(archive.join("cert1.pem")).expect("cert"), new.certificate_pem);
    e.assert_in_place(&new);
}

#[test]
fn existing_owner_group_and_mode_are_kept_unless_configured() {
    let e = env();
    let old = material("old.example");
    e.put(&old);
    fs::set_permissions(e.key(), fs::Permissions::from_mode(0o640)).expect("chmod");
    if is_root() {
        std::os::unix::fs::chown(e.key(), None, Some(NOBODY)).expect("chgrp");
    }
    let gid = fs::metadata(e.key()).expect("meta").gid();
    install(&e.state, &e.target(), &material("new.example"), None).expect("install");
    assert_eq!(mode_of(&e.key()), 0o640, "the group can still read the key");
    assert_eq!(fs::metadata(e.key()).expect("meta").gid(), gid);

    // A key readable by everyone loses that bit, with a warning; configured modes win.
    fs::set_permissions(e.key(), fs::Permissions::from_mode(0o644)).expect("chmod");
    let report = install(&e.state, &e.target(), &material("third.example"), None).expect("install");
    assert_eq!(mode_of(&e.key()), 0o640);
    assert!(report.warnings.iter().any(|w| w.contains("readable by every user")), "{:?}", report.warnings);
    let mut t = e.target();
    t.key_mode = Some(0o600);
    install(&e.state, &t, &material("fourth.example"), None).expect("install");
    assert_eq!(mode_of(&e.key()), 0o600);
}

#[test]
fn a_combined_file_gets_the_configured_certificate_mode() {
    let e = env();
    let mut t = InstallTarget::combined("haproxy", e.tls.join("all.pem"));
    t.certificate_mode = Some(0o640);
    install(&e.state, &t, &material("h.example"), None).expect("install");
    assert_eq!(mode_of(&e.tls.join("all.pem")), 0o640);
    // Not configured: a new combined file is 0600.
    let t = InstallTarget::combined("other", e.tls.join("other.pem"));
    install(&e.state, &t, &material("h.example"), None).expect("install");
    assert_eq!(mode_of(&e.tls.join("other.pem")), 0o600);
}

#[test]
fn a_huge_target_fails_the_install_without_being_copied() {
    let e = env();
    e.put(&material("old.example"));
    fs::File::create(e.cert()).expect("create").set_len(2 * 1024 * 1024 * 1024).expect("sparse");
    let err = install(&e.state, &e.target(), &material("new.example"), None).expect_err("too large");
    assert!(err.to_string().contains("too large"), "{err}");
    assert!(e.backups("nginx").iter().all(|b| !b.join("certificate").exists()));
    assert_eq!(fs::metadata(e.cert()).expect("meta").len(), 2 * 1024 * 1024 * 1024);
}

#[test]
fn journals_for_other_services_or_other_files_are_set_aside_untouched() {
    let e = env();
    let (old, new) = (material("old.example"), material("new.example"));
    let j = crashed_install(&e, &old, &new, Phase::Swapped, 2);

    // Not configured: the journal is not acted on, the files stay as they are.
    let reports = recover(&e.state, &[InstallTarget::separate("other", e.root.join("a"), e.root.join("b"))]);
    assert_eq!(reports.len(), 1);
    let msg = reports[0].to_string();
    assert!(msg.contains("not configured"), "{msg}");
    assert!(!reports[0].is_ok());
    e.assert_in_place(&new);

    // Configured, but the journal names a file that is not the service's.
    let mut forged = j.clone();
    let victim = e.root.join("passwd");
    fs::write(&victim, "root:x:0:0\n").expect("victim");
    forged.files[0].target = victim.clone();
    forged.save(&e.state).expect("journal");
    let reports = recover(&e.state, &[e.target()]);
    let msg = reports[0].to_string();
    assert!(
        msg.contains(&victim.display().to_string()) && msg.contains("not a file the configuration"),
        "{msg}"
    );
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "root:x:0:0\n");

    // A backup outside the service's own backups is refused too.
    let mut forged = j.clone();
    forged.backup_dir = Some(e.root.clone());
    forged.save(&e.state).expect("journal");
    let msg = recover(&e.state, &[e.target()])[0].to_string();
    assert!(msg.contains("is not one of the service's backups"), "{msg}");
    e.assert_in_place(&new);
}

#[test]
fn set_aside_journals_never_overwrite_each_other() {
    let e = env();
    crate::actions::ensure_state_dir(&e.state).expect("state");
    let journal = e.state.join(JOURNAL_DIR).join("nginx.json");
    let mut kept = Vec::new();
    for text in ["one", "two", "three"] {
        fs::write(&journal, text).expect("write");
        let r = recover(&e.state, &[e.target()]);
        let RecoveryOutcome::Failed { kept_journal: Some(k), .. } = &r[0].outcome else { panic!("{r:?}") };
        kept.push(k.clone());
    }
    let texts: Vec<String> = kept.iter().map(|k| fs::read_to_string(k).expect("kept")).collect();
    assert_eq!(texts, ["one", "two", "three"], "{kept:?}");
}

#[test]
fn an_encrypted_key_is_reported_not_asked_a_passphrase_for() {
    let e = env();
    let m = material("h.example");
    let key = PKey::private_key_from_pem(&m.key_pem).expect("key");
    let encrypted = key
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"secret")
        .expect("encrypt");
    fs::write(e.cert(), &m.certificate_pem).expect("cert");
    fs::write(e.key(), &encrypted).expect("key");
    let files = [
        JournalFile {
            role: Role::Certificate,
            target: e.cert(),
            temp: None,
            temp_prefix: "x".into(),
            remove: false,
        },
        JournalFile { role: Role::Key, target: e.key(), temp: None, temp_prefix: "y".into(), remove: false },
    ];
    // Run with no terminal at all: OpenSSL's default prompt would block or fail on /dev/tty.
    let Pairing::Mismatched(why) = check_pairing(&files) else { panic!("not mismatched") };
    assert!(why.contains("is encrypted"), "{why}");
}
