//! Local CRL files ([`super::local_crl`]): real CRLs signed with OpenSSL, written to real files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::local_crl::{LocalAnswer, LocalCrls, decide};
use super::model::{Revocation, RevokedDetails};
use super::revocation::Subject;
use super::testpki::{DAY, Issued, NOW, Pki, Spec, crl, ec_key, write};
use crate::config::network::NetworkConfig;

fn leaf(pki: &Pki, serial: u64) -> Issued {
    let mut spec = Spec::leaf("a.example.com", &["a.example.com"]);
    spec.serial = serial;
    pki.leaf(&spec)
}

fn subject(pki: &Pki, leaf: &Issued) -> Subject {
    Subject { leaf: leaf.cert.clone(), issuer: Ok(pki.intermediate.cert.clone()) }
}

fn files(paths: &[PathBuf]) -> NetworkConfig {
    NetworkConfig { crl_files: paths.to_vec(), ..NetworkConfig::default() }
}

fn revoked(answer: &LocalAnswer) -> bool {
    matches!(answer.answer, Some(Revocation::Revoked(_)))
}

#[test]
fn a_current_crl_file_says_revoked_or_good_in_der_and_pem() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Local CA");
    let (good, bad) = (leaf(&pki, 10), leaf(&pki, 11));
    let list = crl(&pki.intermediate, &[&bad.cert], NOW - DAY, NOW + DAY, None);
    for (name, bytes) in [("ca.crl", list.to_der().unwrap()), ("ca.pem", list.to_pem().unwrap())] {
        let path = write(dir.path(), name, &bytes);
        let crls = LocalCrls::load(&files(&[path]), NOW);
        assert!(crls.take_notices().is_empty(), "{name}");
        assert_eq!(crls.status(&subject(&pki, &good)).answer, Some(Revocation::Good), "{name}");
        let answer = crls.status(&subject(&pki, &bad));
        assert_eq!(
            answer.answer,
            Some(Revocation::Revoked(RevokedDetails {
                revoked_at: NOW - DAY - 60,
                reason: "unspecified".into()
            })),
            "{name}"
        );
        // Another CA's certificate: the file says nothing about it.
        let other = Pki::new("Other CA");
        let theirs = leaf(&other, 11);
        assert_eq!(crls.status(&subject(&other, &theirs)), LocalAnswer::default());
    }
}

#[test]
fn a_crl_signed_by_another_key_is_not_trusted_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Local CA");
    let bad = leaf(&pki, 11);
    let impostor = Issued { cert: pki.intermediate.cert.clone(), key: ec_key() };
    let forged = crl(&pki.intermediate, &[&bad.cert], NOW - DAY, NOW + DAY, Some(&impostor));
    let path = write(dir.path(), "forged.crl", &forged.to_der().unwrap());
    let crls = LocalCrls::load(&files(std::slice::from_ref(&path)), NOW);
    let answer = crls.status(&subject(&pki, &bad));
    assert!(!revoked(&answer), "a forged CRL must never make a certificate revoked");
    assert_eq!(answer.problems.len(), 1);
    assert!(answer.problems[0].contains("signature does not verify"), "{answer:?}");
    // Once per file, however many certificates it was checked for.
    let _ = crls.status(&subject(&pki, &leaf(&pki, 12)));
    let notices = crls.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains(&path.display().to_string()) && notices[0].contains("not trusted"),
        "{notices:?}"
    );
    let Some(Revocation::Unknown(why)) = decide(answer, None) else { panic!("unknown expected") };
    assert!(why.contains("forged.crl") && why.contains("signature"), "{why}");
}

#[test]
fn a_stale_crl_is_named_and_gives_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Local CA");
    let good = leaf(&pki, 10);
    let stale = crl(&pki.intermediate, &[], NOW - 30 * DAY, NOW - DAY, None);
    let path = write(dir.path(), "stale.crl", &stale.to_der().unwrap());
    let crls = LocalCrls::load(&files(std::slice::from_ref(&path)), NOW);
    let notices = crls.take_notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains(&path.display().to_string()) && notices[0].contains("out of date"),
        "{notices:?}"
    );
    let answer = crls.status(&subject(&pki, &good));
    assert_eq!(answer.answer, None);
    let Some(Revocation::Unknown(why)) = decide(answer, None) else { panic!("unknown expected") };
    assert!(why.contains("stale.crl") && why.contains("out of date"), "{why}");
}

#[test]
fn unusable_files_are_named_and_the_others_used() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Local CA");
    let bad = leaf(&pki, 11);
    let crls_dir = dir.path().join("crls");
    std::fs::create_dir(&crls_dir).unwrap();
    write(&crls_dir, "garbage.crl", b"<html>not a CRL</html>");
    write(
        &crls_dir,
        "ca.der",
        &crl(&pki.intermediate, &[&bad.cert], NOW - DAY, NOW + DAY, None).to_der().unwrap(),
    );
    write(&crls_dir, "README.txt", b"not read: wrong extension");
    std::fs::create_dir(crls_dir.join("old.crl")).unwrap();
    // Anyone may write this one: not trusted, whatever it holds.
    let open = write(
        dir.path(),
        "open.crl",
        &crl(&pki.intermediate, &[], NOW - DAY, NOW + DAY, None).to_der().unwrap(),
    );
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
    let missing = dir.path().join("missing.crl");
    let net = NetworkConfig {
        crl_files: vec![open.clone(), missing.clone()],
        crl_dir: Some(crls_dir.clone()),
        ..NetworkConfig::default()
    };
    let crls = LocalCrls::load(&net, NOW);
    let notices = crls.take_notices().join("\n");
    assert!(
        notices.contains(&format!("{} is not a CRL", crls_dir.join("garbage.crl").display())),
        "{notices}"
    );
    assert!(notices.contains(&format!("{} does not exist", missing.display())), "{notices}");
    assert!(notices.contains(&format!("chmod go-w {}", open.display())), "{notices}");
    assert_eq!(notices.lines().count(), 3, "README.txt and the directory old.crl are not read: {notices}");
    assert!(revoked(&crls.status(&subject(&pki, &bad))), "ca.der is used");

    // A directory anyone may write to is not read at all.
    std::fs::set_permissions(&crls_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let crls =
        LocalCrls::load(&NetworkConfig { crl_dir: Some(crls_dir.clone()), ..NetworkConfig::default() }, NOW);
    let notices = crls.take_notices().join("\n");
    assert!(notices.contains("crl-dir") && notices.contains("chmod go-w"), "{notices}");
    assert!(crls.is_empty());
}

#[test]
fn revoked_wins_then_the_network_then_local_good() {
    let details = RevokedDetails { revoked_at: 1, reason: "keyCompromise".into() };
    let local = |answer: Option<Revocation>, problems: &[&str]| LocalAnswer {
        answer,
        problems: problems.iter().map(|p| (*p).to_owned()).collect(),
    };
    let revoked = Revocation::Revoked(details);
    // A current local CRL that lists the certificate: revoked, whatever the network says.
    assert_eq!(decide(local(Some(revoked.clone()), &[]), Some(Revocation::Good)), Some(revoked.clone()));
    // The network's trustworthy answer over a local good (it may be newer).
    assert_eq!(decide(local(Some(Revocation::Good), &[]), Some(revoked.clone())), Some(revoked));
    // A local good over no answer from the network.
    let down = Some(Revocation::Unknown("OCSP http://x: down".into()));
    assert_eq!(
        decide(local(Some(Revocation::Good), &["CRL file /b: stale"]), down.clone()),
        Some(Revocation::Good)
    );
    assert_eq!(
        decide(local(Some(Revocation::Good), &[]), Some(Revocation::NotChecked)),
        Some(Revocation::Good)
    );
    // No answer anywhere: every reason.
    assert_eq!(
        decide(local(None, &["CRL file /b: stale"]), down),
        Some(Revocation::Unknown("OCSP http://x: down; CRL file /b: stale".into()))
    );
    assert_eq!(decide(local(None, &[]), None), None);
    assert_eq!(decide(local(None, &[]), Some(Revocation::NotChecked)), Some(Revocation::NotChecked));
}
