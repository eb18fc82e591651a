//! The file layer against the attacks it exists for. Ownership tricks need root (to give a
//! link or a file to another user, as that user would have made it); CI runs as root.

use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::Path;

use super::*;

const NOBODY: u32 = 65534;

fn root() -> bool {
    rustix::process::geteuid().is_root()
}

fn chown_nobody(path: &Path) {
    lchown(path, Some(NOBODY), Some(NOBODY)).expect("lchown");
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn a_link_planted_by_another_user_is_not_written_through() {
    if !root() {
        eprintln!("skipped: needs root to plant a link owned by another user");
        return;
    }
    let tmp = tempdir();
    let victim = tmp.path().join("shadow");
    std::fs::write(&victim, "root:secret\n").expect("write");
    let dir = tmp.path().join("svc");
    std::fs::create_dir(&dir).expect("mkdir");
    chown_nobody(&dir);
    let link = dir.join("cert.pem");
    symlink(&victim, &link).expect("symlink");
    chown_nobody(&link);

    let err = resolve(&link).expect_err("untrusted link");
    assert!(matches!(err, FsError::UntrustedLink { owner: NOBODY, .. }), "{err}");
    assert!(err.to_string().contains("cert.pem"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "root:secret\n");
}

#[test]
fn a_link_root_made_is_followed_like_certbots_live_links() {
    let tmp = tempdir();
    let archive = tmp.path().join("archive");
    std::fs::create_dir(&archive).expect("mkdir");
    std::fs::write(archive.join("cert1.pem"), "old").expect("write");
    let live = tmp.path().join("live");
    std::fs::create_dir(&live).expect("mkdir");
    symlink("../archive/cert1.pem", live.join("cert.pem")).expect("symlink");

    let target = resolve(&live.join("cert.pem")).expect("resolve");
    assert_eq!(target.path(), archive.join("cert1.pem"));
    let temp = target.write_temp(".t.", b"new", walk::Ownership::default(), 0o644).expect("temp");
    temp.persist(&target).expect("persist");
    assert_eq!(std::fs::read_to_string(archive.join("cert1.pem")).expect("read"), "new");
    assert!(std::fs::symlink_metadata(live.join("cert.pem")).expect("lstat").file_type().is_symlink());
}

#[test]
fn write_atomic_replaces_a_link_at_its_name_and_leaves_the_link_target_alone() {
    let tmp = tempdir();
    let victim = tmp.path().join("passwd");
    std::fs::write(&victim, "root:x:0:0\n").expect("write");
    let path = tmp.path().join("state.json");
    symlink(&victim, &path).expect("symlink");
    if root() {
        chown_nobody(&path);
    }
    write_atomic(&path, b"{}", 0o600).expect("write");
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "root:x:0:0\n");
    let meta = std::fs::symlink_metadata(&path).expect("lstat");
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[test]
fn temporary_files_never_follow_or_reuse_a_name() {
    let tmp = tempdir();
    let target = resolve(&tmp.path().join("key.pem")).expect("resolve");
    let a = target.write_temp(".x.", b"a", walk::Ownership::default(), 0o600).expect("a");
    let b = target.write_temp(".x.", b"b", walk::Ownership::default(), 0o600).expect("b");
    assert_ne!(a.path(), b.path());
    let (pa, pb) = (a.path(), b.path());
    drop(a);
    assert!(!pa.exists(), "a dropped temporary file is removed");
    assert!(pb.exists());
}

#[test]
fn reads_are_bounded_and_refuse_special_files() {
    let tmp = tempdir();
    let big = tmp.path().join("big.pem");
    let f = std::fs::File::create(&big).expect("create");
    f.set_len(2 * 1024 * 1024 * 1024).expect("sparse 2 GiB");
    let err = read_bounded(&big, limits::PEM_FILE).expect_err("too large");
    assert!(err.to_string().contains("too large"), "{err}");
    let target = resolve(&big).expect("resolve");
    assert!(matches!(target.read_existing(limits::PEM_FILE), Err(FsError::TooLarge { .. })));
    let err = read_bounded(Path::new("/dev/zero"), 10).expect_err("device");
    assert!(err.to_string().contains("character device"), "{err}");
}

#[test]
fn trust_refuses_files_others_can_change_and_names_the_fix() {
    let tmp = tempdir();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "x").expect("write");
    check_trusted(&config).expect("0644 root file in a 0700 dir is trusted");

    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let err = check_trusted(&config).expect_err("world-writable");
    assert!(err.to_string().contains("chmod go-w"), "{err}");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");

    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o775)).expect("chmod");
    let err = check_trusted(&config).expect_err("group-writable directory");
    assert!(err.to_string().contains(&tmp.path().display().to_string()), "{err}");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");

    if root() {
        chown_nobody(&config);
        let err = check_trusted(&config).expect_err("owned by nobody");
        assert!(err.to_string().contains("chown root"), "{err}");
    }
}

#[test]
fn trusted_tree_finds_what_another_user_planted_deep_inside() {
    let tmp = tempdir();
    let state = tmp.path().join("state");
    create_private_dir(&state.join("journal"), true).expect("mkdir");
    std::fs::write(state.join("journal").join("a.json"), "{}").expect("write");
    check_trusted_tree(&state).expect("clean tree");
    if !root() {
        return;
    }
    let planted = state.join("journal").join("web.json");
    std::fs::write(&planted, "{}").expect("write");
    chown_nobody(&planted);
    let err = check_trusted_tree(&state).expect_err("planted journal");
    assert!(err.to_string().contains("web.json"), "{err}");
    std::fs::remove_file(&planted).expect("rm");

    let foreign = state.join("backups");
    std::fs::create_dir(&foreign).expect("mkdir");
    chown_nobody(&foreign);
    assert!(check_trusted_tree(&state).is_err());
    let err = create_private_dir(&foreign, true).expect_err("foreign dir");
    assert!(err.to_string().contains("chown"), "{err}");
}

#[test]
fn private_dirs_are_0700_and_created_with_their_parents() {
    let tmp = tempdir();
    let deep = tmp.path().join("a").join("b");
    create_private_dir(&deep, false).expect("mkdir");
    assert_eq!(std::fs::metadata(&deep).expect("meta").permissions().mode() & 0o777, 0o700);
    std::fs::set_permissions(&deep, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    create_private_dir(&deep, true).expect("tighten");
    assert_eq!(std::fs::metadata(&deep).expect("meta").permissions().mode() & 0o777, 0o700);
    let file = tmp.path().join("f");
    std::fs::write(&file, "").expect("write");
    assert!(create_private_dir(&file, false).is_err());
}
