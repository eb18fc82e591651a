#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use tempfile::TempDir;

use super::model::*;
use super::testpki::{self, DAY, Issued, NOW, Pki, Spec, key_pem, pem, write};
use super::*;
use crate::config::{ServiceConfig, TrustConfig};

const HOST: &str = "host.example.com";

/// A test PKI with its root written to a file and trusted (the system store is not used, so
/// the results do not depend on the machine).
struct Setup {
    dir: TempDir,
    pki: Pki,
    verifier: Verifier,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("Test CA");
        let root = write(dir.path(), "root.pem", &pem(&[&pki.root.cert]));
        let verifier = Verifier::new(&TrustConfig { extra_roots: vec![root], system_roots: false }).unwrap();
        Setup { dir, pki, verifier }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        write(self.dir.path(), name, bytes)
    }

    /// A separate-layout service: `cert_pem` and the key's PEM written to files.
    fn service(
        &self,
        name: &str,
        cert_pem: &[u8],
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
    ) -> ServiceConfig {
        let cert = self.write(&format!("{name}.crt"), cert_pem);
        let key = self.write(&format!("{name}.key"), &key_pem(key));
        ServiceConfig::separate(name, cert, key)
    }

    /// leaf + intermediate in the certificate file, key beside it.
    fn good_service(&self, name: &str, leaf: &Issued) -> ServiceConfig {
        self.service(name, &pem(&[&leaf.cert, &self.pki.intermediate.cert]), &leaf.key)
    }

    fn gather(&self, svc: &ServiceConfig) -> ServiceFacts {
        gather_service(svc, HOST, &self.verifier, NOW)
    }
}

fn cert(facts: &ServiceFacts) -> &Certificate {
    match &facts.certificate {
        CertificateState::Ok(c) => c,
        other => panic!("expected a certificate, got {other:?}"),
    }
}

fn untrusted(facts: &ServiceFacts) -> String {
    match &cert(facts).chain_status {
        ChainStatus::Untrusted(m) => m.clone(),
        other => panic!("expected an untrusted chain, got {other:?}"),
    }
}

fn incomplete(facts: &ServiceFacts) -> String {
    match &cert(facts).chain_status {
        ChainStatus::Incomplete(m) => m.clone(),
        other => panic!("expected an incomplete chain, got {other:?}"),
    }
}

fn malformed(facts: &ServiceFacts) -> String {
    assert_eq!(facts.key, KeyStatus::NotChecked);
    assert!(!facts.covers_hostname);
    match &facts.certificate {
        CertificateState::Malformed(m) => m.clone(),
        other => panic!("expected a malformed certificate, got {other:?}"),
    }
}

fn unreadable(facts: &ServiceFacts) -> String {
    assert_eq!(facts.key, KeyStatus::NotChecked);
    assert!(!facts.covers_hostname);
    match &facts.certificate {
        CertificateState::Unreadable(m) => m.clone(),
        other => panic!("expected an unreadable certificate, got {other:?}"),
    }
}

#[test]
fn a_good_certificate() {
    let s = Setup::new();
    let mut spec = Spec::leaf(HOST, &[HOST, "www.example.com"]);
    spec.ips = vec!["192.0.2.7".into(), "2001:db8::7".into()];
    spec.serial = 0x00ab_cdef_0123;
    let leaf = s.pki.leaf(&spec);
    let svc = s.good_service("nginx", &leaf);
    let f = s.gather(&svc);
    assert_eq!(f.name, "nginx");
    assert_eq!(f.key, KeyStatus::Matches);
    assert!(f.covers_hostname);
    assert!(f.served.is_empty());
    let c = cert(&f);
    let expected = Certificate {
        subject_cn: Some(HOST.into()),
        dns_names: vec![HOST.into(), "www.example.com".into()],
        ip_addresses: vec!["192.0.2.7".into(), "2001:db8::7".into()],
        issuer_cn: Some("Test CA Intermediate".into()),
        issuer_org: Some("Test CA".into()),
        serial: "abcdef0123".into(),
        sha256_fingerprint: hex::encode(leaf.cert.digest(MessageDigest::sha256()).unwrap()),
        not_before: NOW - 10 * DAY,
        not_after: NOW + 80 * DAY,
        public_key: PublicKey { kind: KeyKind::Ec, bits: 256, curve: Some("prime256v1".into()) },
        signature_algorithm: "ecdsa-with-SHA256".into(),
        self_signed: false,
        chain_status: ChainStatus::Trusted,
        path: crate::facts::model::PathStatus::Valid,
        chain: c.chain.clone(),
        revocation: Revocation::NotChecked,
        renewal_window: None,
    };
    assert_eq!(*c, expected);
    // The chain: the intermediate from the file, then the root from the trust store.
    let sources: Vec<_> =
        c.chain.iter().map(|e| (e.subject.as_str(), e.source, e.is_ca, e.self_signed)).collect();
    assert_eq!(
        sources,
        [
            ("CN=Test CA Intermediate, O=Test CA", crate::facts::model::ChainSource::File, true, false),
            ("CN=Test CA Root, O=Test CA", crate::facts::model::ChainSource::TrustStore, true, true),
        ]
    );
    assert!(
        c.chain.iter().all(|e| e.sha256_fingerprint.len() == 64 && e.not_before < NOW && NOW < e.not_after)
    );
    assert_eq!(c.sha256_fingerprint.len(), 64);

    // The same facts from parse_certificate (without the chain verification).
    let parsed = parse_certificate(&pem(&[&leaf.cert, &s.pki.intermediate.cert])).unwrap();
    assert_eq!(parsed.chain.len(), 1);
    assert_eq!(
        parsed.facts,
        Certificate {
            chain_status: ChainStatus::NotChecked,
            path: crate::facts::model::PathStatus::NotChecked,
            chain: Default::default(),
            ..expected
        }
    );
}

#[test]
fn verification_uses_the_given_time() {
    let s = Setup::new();
    let leaf = s.pki.leaf(&Spec::leaf(HOST, &[HOST]));
    let svc = s.good_service("nginx", &leaf);
    assert_eq!(cert(&s.gather(&svc)).chain_status, ChainStatus::Trusted);
    let later = gather_service(&svc, HOST, &s.verifier, NOW + 81 * DAY);
    assert_eq!(untrusted(&later), "certificate has expired");
    let earlier = gather_service(&svc, HOST, &s.verifier, NOW - 11 * DAY);
    assert_eq!(untrusted(&earlier), "certificate is not yet valid");
}

#[test]
fn expired_and_not_yet_valid() {
    let s = Setup::new();
    let mut spec = Spec::leaf(HOST, &[HOST]);
    spec.not_before = NOW - 100 * DAY;
    spec.not_after = NOW - DAY;
    let expired = s.pki.leaf(&spec);
    let f = s.gather(&s.good_service("expired", &expired));
    assert_eq!(untrusted(&f), "certificate has expired");
    assert_eq!(cert(&f).not_after, NOW - DAY);
    assert_eq!(f.key, KeyStatus::Matches);
    assert!(f.covers_hostname);

    spec.not_before = NOW + DAY;
    spec.not_after = NOW + 90 * DAY;
    let future = s.pki.leaf(&spec);
    let f = s.gather(&s.good_service("future", &future));
    assert_eq!(untrusted(&f), "certificate is not yet valid");
    assert_eq!(cert(&f).not_before, NOW + DAY);
}

#[test]
fn an_expired_intermediate_is_named() {
    let s = Setup::new();
    let mut spec = Spec::ca("Old Intermediate", "Test CA");
    spec.not_after = NOW - DAY;
    let key = testpki::ec_key();
    let old = Issued { cert: testpki::issue(&spec, &key, Some(&s.pki.root)), key };
    let leaf_key = testpki::ec_key();
    let leaf = testpki::issue(&Spec::leaf(HOST, &[HOST]), &leaf_key, Some(&old));
    let f = s.gather(&s.service("svc", &pem(&[&leaf, &old.cert]), &leaf_key));
    let m = untrusted(&f);
    assert!(
        m.starts_with(
            "certificate has expired (chain certificate \"O=Test CA, CN=Old Intermediate\", depth 1)"
        ),
        "{m}"
    );
}

#[test]
fn self_signed() {
    let s = Setup::new();
    let key = testpki::ec_key();
    let cert_ = testpki::issue(&Spec::leaf(HOST, &[HOST]), &key, None);
    let f = s.gather(&s.service("selfsigned", &pem(&[&cert_]), &key));
    let c = cert(&f);
    assert!(c.self_signed);
    assert_eq!(c.issuer_cn.as_deref(), Some(HOST));
    assert_eq!(untrusted(&f), "self-signed certificate");
    assert_eq!(f.key, KeyStatus::Matches);
    assert!(f.covers_hostname);

    // Same subject and issuer but signed by another key: not self-signed.
    let other = testpki::ec_key();
    let issuer = Issued { cert: cert_.clone(), key: other };
    let forged = testpki::issue(&Spec::leaf(HOST, &[HOST]), &key, Some(&issuer));
    let parsed = parse_certificate(&pem(&[&forged])).unwrap();
    assert_eq!(parsed.facts.subject_cn, parsed.facts.issuer_cn);
    assert!(!parsed.facts.self_signed);

    // A root is self-signed.
    assert!(parse_certificate(&pem(&[&s.pki.root.cert])).unwrap().facts.self_signed);
}

#[test]
fn sha1_signature_and_small_rsa_key() {
    let s = Setup::new();
    let key = testpki::rsa_key(1024);
    let mut spec = Spec::leaf(HOST, &[HOST]);
    spec.digest = Some(MessageDigest::sha1());
    let rsa_ca_key = testpki::rsa_key(2048);
    let rsa_ca =
        Issued { cert: testpki::issue(&Spec::ca("RSA CA", "RSA Org"), &rsa_ca_key, None), key: rsa_ca_key };
    let leaf = testpki::issue(&spec, &key, Some(&rsa_ca));
    let f = s.gather(&s.service("weak", &pem(&[&leaf]), &key));
    let c = cert(&f);
    assert_eq!(c.signature_algorithm, "sha1WithRSAEncryption");
    assert_eq!(c.public_key, PublicKey { kind: KeyKind::Rsa, bits: 1024, curve: None });
    assert_eq!(c.issuer_org.as_deref(), Some("RSA Org"));
    assert_eq!(f.key, KeyStatus::Matches);

    let mut spec = Spec::leaf(HOST, &[HOST]);
    spec.digest = Some(MessageDigest::sha384());
    let leaf = testpki::issue(&spec, &key, Some(&rsa_ca));
    assert_eq!(
        parse_certificate(&pem(&[&leaf])).unwrap().facts.signature_algorithm,
        "sha384WithRSAEncryption"
    );
}

#[test]
fn ed25519_and_p384_keys() {
    let key = testpki::ed25519_key();
    let mut spec = Spec::leaf(HOST, &[HOST]);
    spec.digest = None;
    let c = parse_certificate(&pem(&[&testpki::issue(&spec, &key, None)])).unwrap().facts;
    assert_eq!(c.public_key, PublicKey { kind: KeyKind::Ed25519, bits: 256, curve: None });
    assert_eq!(c.signature_algorithm, "ED25519");
    assert!(c.self_signed);

    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
    let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    spec.digest = Some(MessageDigest::sha384());
    let c = parse_certificate(&pem(&[&testpki::issue(&spec, &key, None)])).unwrap().facts;
    assert_eq!(c.public_key, PublicKey { kind: KeyKind::Ec, bits: 384, curve: Some("secp384r1".into()) });
    assert_eq!(c.signature_algorithm, "ecdsa-with-SHA384");
}

#[test]
fn hostname_coverage() {
    let s = Setup::new();
    let leaf = s.pki.leaf(&Spec::leaf("other.example.net", &["other.example.net"]));
    let f = s.gather(&s.good_service("mismatch", &leaf));
    assert!(!f.covers_hostname);
    assert_eq!(cert(&f).chain_status, ChainStatus::Trusted);

    let wildcard = s.pki.leaf(&Spec::leaf("*.example.com", &["*.example.com"])).cert;
    assert!(covers_hostname(&wildcard, "host.example.com"));
    assert!(covers_hostname(&wildcard, "HOST.Example.COM"));
    assert!(covers_hostname(&wildcard, "host.example.com."));
    assert!(!covers_hostname(&wildcard, "a.host.example.com"), "a wildcard covers one label only");
    assert!(!covers_hostname(&wildcard, "example.com"));
    assert!(!covers_hostname(&wildcard, "hostexample.com"));
    assert!(!covers_hostname(&wildcard, ""));

    // Partial wildcards are not honoured.
    let partial = s.pki.leaf(&Spec::leaf("h*.example.com", &["h*.example.com"])).cert;
    assert!(!covers_hostname(&partial, "host.example.com"));

    // Only subjectAltName counts, not the subject CN.
    let cn_only = s.pki.leaf(&Spec::leaf(HOST, &[])).cert;
    assert!(!covers_hostname(&cn_only, HOST));

    // IP addresses match IP SANs only.
    let mut spec = Spec::leaf(HOST, &[HOST]);
    spec.ips = vec!["192.0.2.1".into()];
    let with_ip = s.pki.leaf(&spec).cert;
    assert!(covers_hostname(&with_ip, "192.0.2.1"));
    assert!(!covers_hostname(&with_ip, "192.0.2.2"));

    // The check does not depend on validity or trust.
    let mut spec = Spec::leaf(HOST, &[HOST]);
    spec.not_after = NOW - DAY;
    spec.not_before = NOW - 2 * DAY;
    let key = testpki::ec_key();
    assert!(covers_hostname(&testpki::issue(&spec, &key, None), HOST));
}

#[test]
fn key_mismatch_and_key_file_problems() {
    let s = Setup::new();
    let leaf = s.pki.leaf(&Spec::leaf(HOST, &[HOST]));
    let other = testpki::ec_key();
    let f = s.gather(&s.service("mismatch", &pem(&[&leaf.cert, &s.pki.intermediate.cert]), &other));
    assert_eq!(f.key, KeyStatus::Mismatch);
    assert_eq!(cert(&f).chain_status, ChainStatus::Trusted);

    // An RSA key for an EC certificate.
    let f =
        s.gather(&s.service("rsa", &pem(&[&leaf.cert, &s.pki.intermediate.cert]), &testpki::rsa_key(2048)));
    assert_eq!(f.key, KeyStatus::Mismatch);

    // Traditional ("EC PRIVATE KEY") format.
    let mut svc = s.good_service("traditional", &leaf);
    let trad = leaf.key.ec_key().unwrap().private_key_to_pem().unwrap();
    assert!(String::from_utf8_lossy(&trad).contains("BEGIN EC PRIVATE KEY"));
    svc.key = Some(s.write("trad.key", &trad));
    assert_eq!(s.gather(&svc).key, KeyStatus::Matches);

    let missing = s.path("nope.key");
    svc.key = Some(missing.clone());
    assert_eq!(s.gather(&svc).key, KeyStatus::Missing(missing.display().to_string()));

    svc.key = Some(s.dir.path().to_owned());
    match s.gather(&svc).key {
        KeyStatus::Unreadable(m) => {
            assert_eq!(m, format!("{}: is a directory, not a regular file", s.dir.path().display()))
        }
        other => panic!("{other:?}"),
    }

    let garbage = s.write("garbage.key", b"this is not a key\n");
    svc.key = Some(garbage.clone());
    match s.gather(&svc).key {
        KeyStatus::Malformed(m) => {
            assert!(m.starts_with(&format!("{}: holds no PEM data", garbage.display())), "{m}")
        }
        other => panic!("{other:?}"),
    }

    let certs_only = s.write("certs.key", &pem(&[&leaf.cert]));
    svc.key = Some(certs_only);
    match s.gather(&svc).key {
        KeyStatus::Malformed(m) => assert!(m.ends_with("holds no private key, only certificates"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Damaged key DER: the message names the line, never the contents.
    let body = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
    let damaged = s.write(
        "damaged.key",
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n").as_bytes(),
    );
    svc.key = Some(damaged.clone());
    match s.gather(&svc).key {
        KeyStatus::Malformed(m) => {
            assert!(
                m.starts_with(&format!(
                    "{}: the private key at line 1 cannot be decoded (",
                    damaged.display()
                )),
                "{m}"
            );
            assert!(!m.contains(body) && !m.contains("MIGH"), "{m}");
        }
        other => panic!("{other:?}"),
    }

    let encrypted = leaf
        .key
        .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"secret")
        .unwrap();
    svc.key = Some(s.write("enc.key", &encrypted));
    match s.gather(&svc).key {
        KeyStatus::Malformed(m) => assert!(m.contains("is encrypted with a passphrase"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn untrusted_chains() {
    let s = Setup::new();
    let stranger = Pki::new("Stranger CA");
    let leaf = stranger.leaf(&Spec::leaf(HOST, &[HOST]));

    // The intermediate is there, but its root is not trusted.
    let f = s.gather(&s.service("unknown-root", &pem(&[&leaf.cert, &stranger.intermediate.cert]), &leaf.key));
    let m = untrusted(&f);
    assert!(
        m.starts_with("unable to get local issuer certificate (chain certificate \"O=Stranger CA, CN=Stranger CA Intermediate\", depth 1)"),
        "{m}"
    );

    // The untrusted root shipped in the file.
    let f = s.gather(&s.service(
        "shipped-root",
        &pem(&[&leaf.cert, &stranger.intermediate.cert, &stranger.root.cert]),
        &leaf.key,
    ));
    assert!(untrusted(&f).starts_with("self-signed certificate in certificate chain"), "{}", untrusted(&f));

    // An intermediate of the wrong CA.
    let ours = s.pki.leaf(&Spec::leaf(HOST, &[HOST]));
    let f = s.gather(&s.service(
        "wrong-intermediate",
        &pem(&[&ours.cert, &stranger.intermediate.cert]),
        &ours.key,
    ));
    assert!(incomplete(&f).contains("\"O=Test CA, CN=Test CA Intermediate\""), "{}", incomplete(&f));
}

#[test]
fn incomplete_chains_and_chain_files() {
    let s = Setup::new();
    let leaf = s.pki.leaf(&Spec::leaf(HOST, &[HOST]));
    let mut svc = s.service("leaf-only", &pem(&[&leaf.cert]), &leaf.key);
    let m = incomplete(&s.gather(&svc));
    assert!(
        m.starts_with("unable to get local issuer certificate: the issuer \"O=Test CA, CN=Test CA Intermediate\" is neither"),
        "{m}"
    );

    // The intermediate in a separate chain file.
    svc.chain = Some(s.write("chain.pem", &pem(&[&s.pki.intermediate.cert])));
    assert_eq!(cert(&s.gather(&svc)).chain_status, ChainStatus::Trusted);

    // An empty chain file is no intermediates.
    svc.chain = Some(s.write("empty-chain.pem", b""));
    assert!(incomplete(&s.gather(&svc)).starts_with("unable to get local issuer certificate"));

    let missing = s.path("missing-chain.pem");
    svc.chain = Some(missing.clone());
    assert_eq!(incomplete(&s.gather(&svc)), format!("the chain file {} does not exist", missing.display()));

    let bad = s.write("bad-chain.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n");
    svc.chain = Some(bad.clone());
    assert_eq!(
        incomplete(&s.gather(&svc)),
        format!(
            "the chain file {}: the PEM block \"-----BEGIN CERTIFICATE-----\" at line 1 has no END line (the file is truncated)",
            bad.display()
        )
    );
}

#[test]
fn a_shared_intermediate_is_decoded_once() {
    let s = Setup::new();
    for i in 0..5 {
        let leaf = s.pki.leaf(&Spec::leaf(HOST, &[HOST]));
        let f = s.gather(&s.good_service(&format!("svc{i}"), &leaf));
        assert_eq!(cert(&f).chain_status, ChainStatus::Trusted);
    }
    assert_eq!(s.verifier.cached_intermediates(), 1);
}

#[test]
fn missing_and_unreadable_certificate_files() {
    let s = Setup::new();
    let key = s.write("k.pem", &key_pem(&testpki::ec_key()));

    let missing = s.path("missing.pem");
    let f = s.gather(&ServiceConfig::separate("missing", &missing, &key));
    assert_eq!(f.certificate, CertificateState::Missing(missing.display().to_string()));
    assert_eq!(f.key, KeyStatus::NotChecked);
    assert!(!f.covers_hostname);

    let dangling = s.path("dangling.pem");
    std::os::unix::fs::symlink(s.path("nowhere.pem"), &dangling).unwrap();
    match s.gather(&ServiceConfig::separate("dangling", &dangling, &key)).certificate {
        CertificateState::Missing(m) => {
            assert!(m.contains("a symbolic link to") && m.contains("nowhere.pem"), "{m}")
        }
        other => panic!("{other:?}"),
    }

    let not_dir = s.write("file", b"x");
    let f = s.gather(&ServiceConfig::separate("notdir", not_dir.join("cert.pem"), &key));
    assert!(matches!(f.certificate, CertificateState::Missing(_)), "{:?}", f.certificate);

    let m = unreadable(&s.gather(&ServiceConfig::separate("dir", s.dir.path(), &key)));
    assert_eq!(m, format!("{}: is a directory, not a regular file", s.dir.path().display()));

    // A FIFO without a writer: refused at once instead of blocking.
    let fifo = s.path("fifo.pem");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let start = Instant::now();
    let m = unreadable(&s.gather(&ServiceConfig::separate("fifo", &fifo, &key)));
    assert_eq!(m, format!("{}: is a named pipe (FIFO), not a regular file", fifo.display()));
    assert!(start.elapsed() < Duration::from_secs(2));

    // A symlink to /dev/zero: refused without reading.
    let zero = s.path("zero.pem");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let m = unreadable(&s.gather(&ServiceConfig::separate("zero", &zero, &key)));
    assert_eq!(m, format!("{}: is a character device, not a regular file", zero.display()));

    // 2 MiB: too large.
    let big = s.path("big.pem");
    let mut content = pem(&[&s.pki.root.cert]);
    content.resize(2 * 1024 * 1024, b'\n');
    std::fs::write(&big, &content).unwrap();
    let m = unreadable(&s.gather(&ServiceConfig::separate("big", &big, &key)));
    assert!(
        m.starts_with(&format!("{}: is too large (2097152 bytes; the limit is 1048576 bytes", big.display())),
        "{m}"
    );

    // 1 GB (sparse): refused at once without reading it.
    let huge = s.path("huge.pem");
    std::fs::File::create(&huge).unwrap().set_len(1 << 30).unwrap();
    let start = Instant::now();
    let m = unreadable(&s.gather(&ServiceConfig::separate("huge", &huge, &key)));
    assert!(m.contains("is too large (1073741824 bytes"), "{m}");
    assert!(start.elapsed() < Duration::from_secs(2));

    // Exactly at the limit is fine as far as reading goes.
    let exact = s.path("exact.pem");
    content.truncate(MAX_PEM_FILE_SIZE as usize);
    std::fs::write(&exact, &content).unwrap();
    assert!(matches!(
        s.gather(&ServiceConfig::separate("exact", &exact, &key)).certificate,
        CertificateState::Ok(_)
    ));
}

#[test]
fn malformed_certificate_files() {
    let s = Setup::new();
    let key = s.write("k.pem", &key_pem(&testpki::ec_key()));
    let check = |name: &str, bytes: &[u8], expected: &str| {
        let path = s.write(name, bytes);
        let m = malformed(&s.gather(&ServiceConfig::separate(name, &path, &key)));
        let prefix = format!("{}: ", path.display());
        assert!(m.starts_with(&prefix), "{m}");
        assert!(m[prefix.len()..].starts_with(expected), "{name}: {m}");
    };
    let leaf_pem = pem(&[&s.pki.root.cert]);

    check("empty.pem", b"", "the file is empty");
    check("garbage.pem", b"\x07\x00\xffgarbage\x01\x02", "holds binary data, not PEM text");
    check("text.pem", b"hello, I am not a certificate\n", "holds no PEM data");
    check(
        "der.pem",
        &s.pki.root.cert.to_der().unwrap(),
        "holds a binary (DER) certificate, but PEM is expected",
    );
    check(
        "truncated.pem",
        &leaf_pem[..leaf_pem.len() / 2],
        "the PEM block \"-----BEGIN CERTIFICATE-----\" at line 1 has no END line (the file is truncated)",
    );
    let mut cut_body = leaf_pem[..leaf_pem.len() / 2].to_vec();
    cut_body.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
    check(
        "cut.pem",
        &cut_body,
        "the PEM block \"-----BEGIN CERTIFICATE-----\" at line 1 is damaged (invalid base64)",
    );
    check(
        "notx509.pem",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "the certificate at line 1 is not a valid X.509 certificate (",
    );
    check("keyonly.pem", &key_pem(&testpki::ec_key()), "holds no certificate, only a private key");
    check(
        "params.pem",
        b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n",
        "holds no certificate (only: EC PARAMETERS)",
    );

    // A damaged chain certificate makes the whole file malformed (services refuse it too).
    let mut with_bad_chain = leaf_pem.clone();
    with_bad_chain.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    let line = leaf_pem.iter().filter(|b| **b == b'\n').count() + 1;
    check(
        "badchain.pem",
        &with_bad_chain,
        &format!("the certificate at line {line} is not a valid X.509 certificate"),
    );
}

#[test]
fn combined_layout() {
    let s = Setup::new();
    let leaf = s.pki.leaf(&Spec::leaf(HOST, &[HOST]));
    let mut bytes = pem(&[&leaf.cert, &s.pki.intermediate.cert]);
    bytes.extend(key_pem(&leaf.key));
    let path = s.write("combined.pem", &bytes);
    let svc = ServiceConfig::combined("haproxy", &path);
    let f = s.gather(&svc);
    assert_eq!(cert(&f).chain_status, ChainStatus::Trusted);
    assert_eq!(f.key, KeyStatus::Matches);
    assert!(f.covers_hostname);

    // The wrong key in the file.
    let mut bytes = pem(&[&leaf.cert, &s.pki.intermediate.cert]);
    bytes.extend(key_pem(&testpki::ec_key()));
    let svc = ServiceConfig::combined("wrong", s.write("wrong.pem", &bytes));
    assert_eq!(s.gather(&svc).key, KeyStatus::Mismatch);

    // No key in the file.
    let path = s.write("nokey.pem", &pem(&[&leaf.cert, &s.pki.intermediate.cert]));
    let f = s.gather(&ServiceConfig::combined("nokey", &path));
    assert_eq!(cert(&f).chain_status, ChainStatus::Trusted);
    assert_eq!(
        f.key,
        KeyStatus::Malformed(format!("{}: holds no private key, only certificates", path.display()))
    );
}

#[test]
fn private_key_material_never_shows() {
    let s = Setup::new();
    let key = testpki::ec_key();
    let key_text = String::from_utf8(key_pem(&key)).unwrap();
    let body_line = key_text.lines().nth(1).unwrap().to_owned();
    let blocks = pem::scan(key_text.as_bytes()).unwrap();
    let debug = format!("{blocks:?}");
    assert!(!debug.contains(&body_line[..20]), "{debug}");

    // A key file with a damaged body: messages show positions only.
    let mut damaged = key_text.clone();
    damaged.insert(key_text.find("\n-----END").unwrap(), '*');
    let path = s.write("damaged.pem", damaged.as_bytes());
    let cert_path = s.write("c.pem", &pem(&[&s.pki.root.cert]));
    let svc = ServiceConfig::separate("svc", cert_path, &path);
    let f = s.gather(&svc);
    let shown = format!("{f:?}");
    assert!(!shown.contains(&body_line[..20]), "{shown}");
    assert!(matches!(f.key, KeyStatus::Malformed(_)));
}

#[test]
fn untrusted_without_any_roots_and_not_checked_without_trust() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Test CA");
    let leaf = pki.leaf(&Spec::leaf(HOST, &[HOST]));
    let cert_path = write(dir.path(), "c.pem", &pem(&[&leaf.cert, &pki.intermediate.cert]));
    let key_path = write(dir.path(), "k.pem", &key_pem(&leaf.key));
    let svc = ServiceConfig::separate("svc", &cert_path, &key_path);

    let verifier = Verifier::not_checking("test");
    assert_eq!(verifier.notices(), ["Certificate chains were not verified: test"]);
    let f = gather_service(&svc, HOST, &verifier, NOW);
    assert_eq!(cert(&f).chain_status, ChainStatus::NotChecked);
    assert_eq!(f.key, KeyStatus::Matches);

    // An extra-roots file that is missing, or holds no certificate: Verifier::new fails.
    let missing = dir.path().join("no-roots.pem");
    let e =
        Verifier::new(&TrustConfig { extra_roots: vec![missing.clone()], system_roots: false }).unwrap_err();
    assert_eq!(e.to_string(), format!("extra trusted roots {}: no such file", missing.display()));
    let e =
        Verifier::new(&TrustConfig { extra_roots: vec![key_path.clone()], system_roots: false }).unwrap_err();
    assert!(
        e.to_string().ends_with("holds no certificate, only a private key")
            || e.to_string().ends_with("holds no certificate"),
        "{e}"
    );

    // An intermediate listed as an extra root is a trust anchor.
    let int_path = write(dir.path(), "int.pem", &pem(&[&pki.intermediate.cert]));
    let v = Verifier::new(&TrustConfig { extra_roots: vec![int_path], system_roots: false }).unwrap();
    assert_eq!(cert(&gather_service(&svc, HOST, &v, NOW)).chain_status, ChainStatus::Trusted);
}

#[test]
fn the_system_store_loads() {
    let v = Verifier::new(&TrustConfig { extra_roots: vec![], system_roots: true }).unwrap();
    // Debian's ca-certificates puts ~150 roots there; a bare container may have none.
    if Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        assert!(v.root_count() > 50, "{v:?}");
    }
    // Our test root is not in it.
    let pki = Pki::new("Test CA");
    let leaf = pki.leaf(&Spec::leaf(HOST, &[HOST]));
    let status = v.verify(&leaf.cert, std::slice::from_ref(&pki.intermediate.cert), NOW);
    assert!(matches!(status, ChainStatus::Untrusted(_)), "{status:?}");
}

#[test]
fn gather_keeps_config_order_and_fills_host_facts() {
    let s = Setup::new();
    let state = tempfile::tempdir().unwrap();
    std::fs::write(state.path().join(DISABLE_SERVICE_CERTIFICATE_MANAGEMENT), b"").unwrap();
    let root = s.path("root.pem");
    let mut services = Vec::new();
    for i in 0..24 {
        let svc = if i % 3 == 0 {
            ServiceConfig::separate(&format!("svc{i:02}"), s.path("missing.pem"), s.path("missing.key"))
        } else {
            let leaf = s.pki.leaf(&Spec::leaf(HOST, &[HOST]));
            s.good_service(&format!("svc{i:02}"), &leaf)
        };
        services.push(svc);
    }
    let text = format!(
        "hostname = \"{HOST}\"\nstate-dir = \"{}\"\n[policy.params]\nb = 2\na = \"x\"\n[trust]\nsystem-roots = false\nextra-roots = [\"{}\"]\n",
        state.path().display(),
        root.display()
    );
    let mut config = crate::config::from_str(&text, Path::new("/test.toml")).unwrap();
    config.services = services;

    let gathered = gather_with(&config, &FactsOptions::at(NOW));
    assert!(gathered.notices.is_empty(), "{:?}", gathered.notices);
    let h = gathered.facts;
    assert_eq!(h, gather(&config, NOW));
    assert_eq!(h.now, NOW);
    assert_eq!(h.hostname, HOST);
    assert!(h.hostname_is_fqdn);
    assert_eq!((h.hostname_dns, &h.caa), (DnsStatus::NotChecked, &CaaStatus::NotChecked));
    assert!(!h.disable_auto_hostname_certificate);
    assert!(h.disable_service_certificate_management);
    assert_eq!(h.acme, None);
    assert_eq!(h.params, vec![("b".to_owned(), "2".to_owned()), ("a".to_owned(), "x".to_owned())]);
    let names: Vec<&str> = h.services.iter().map(|f| f.name.as_str()).collect();
    let expected: Vec<String> = (0..24).map(|i| format!("svc{i:02}")).collect();
    assert_eq!(names, expected);
    for (i, f) in h.services.iter().enumerate() {
        if i % 3 == 0 {
            assert!(matches!(f.certificate, CertificateState::Missing(_)));
        } else {
            assert_eq!(cert(f).chain_status, ChainStatus::Trusted);
            assert_eq!(f.key, KeyStatus::Matches);
        }
    }

    // A broken extra-roots file: chains are not checked, and a notice says why.
    config.trust.extra_roots = vec![s.path("nope.pem")];
    let gathered = gather_with(&config, &FactsOptions::at(NOW));
    assert_eq!(gathered.notices.len(), 1);
    assert!(gathered.notices[0].contains("nope.pem: no such file"), "{:?}", gathered.notices);
    assert_eq!(cert(&gathered.facts.services[1]).chain_status, ChainStatus::NotChecked);
}

#[test]
fn disable_flags() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(read_disable_flags(dir.path()), (false, false));
    assert_eq!(read_disable_flags(&dir.path().join("missing-dir")), (false, false));
    std::fs::write(dir.path().join(DISABLE_AUTO_HOSTNAME_CERTIFICATE), b"").unwrap();
    assert_eq!(read_disable_flags(dir.path()), (true, false));
    std::os::unix::fs::symlink("/nowhere", dir.path().join(DISABLE_SERVICE_CERTIFICATE_MANAGEMENT)).unwrap();
    assert_eq!(read_disable_flags(dir.path()), (true, true));
}

#[test]
fn fqdn_rules() {
    for good in [
        "host.example.com",
        "host.example.com.",
        "a.b",
        "xn--bcher-kva.example",
        "mail.example.org",
        "srv1.example.co.uk",
    ] {
        assert_eq!(hostname_is_fqdn(good), !good.ends_with(".example"), "{good}");
    }
    for bad in [
        "",
        "localhost",
        "localhost.",
        "host",
        "host.local",
        "host.localhost",
        "host.invalid",
        "host.test",
        "host.example",
        "host.EXAMPLE",
        "localhost.localdomain",
        "host.internal",
        "printer.home.arpa",
        "x.onion",
        "203.0.113.10",
        "-host.example.com",
        "host..example.com",
        "under_score.example.com",
        "*.example.com",
        "host.example.com..",
    ] {
        assert!(!hostname_is_fqdn(bad), "{bad}");
    }
    assert!(hostname_is_fqdn("testing.com"), "only the .test TLD is special, not names starting with it");
    assert!(hostname_is_fqdn("mylocal.com"));
}

/// The two real-world cases contract 0.2.0 was made for, their kind of chain built here: badssl's
/// `sha1-intermediate` (a SHA-256 leaf under an intermediate its root signed with SHA-1) and
/// Chromium's `intermediate-signed-with-md5`. The facts carry the intermediate, and the default
/// policy replaces both; the same leaf under a SHA-256-signed intermediate is kept (so the check
/// can fail the other way).
#[test]
fn weak_intermediates_are_facts_and_the_default_policy_replaces_them() {
    let dir = tempfile::tempdir().unwrap();
    let root_key = testpki::rsa_key(2048);
    let root = Issued {
        cert: testpki::issue(&Spec::ca("Weak Test Root", "Weak Test"), &root_key, None),
        key: root_key,
    };
    let roots = write(dir.path(), "roots.pem", &pem(&[&root.cert]));
    let verifier = Verifier::new(&TrustConfig { extra_roots: vec![roots], system_roots: false }).unwrap();
    let runtime = crate::policy::Runtime::new(None).unwrap();
    let policy = runtime.load_embedded().unwrap();
    for (digest, algorithm, weak) in [
        (MessageDigest::sha1(), "sha1WithRSAEncryption", true),
        (MessageDigest::md5(), "md5WithRSAEncryption", true),
        (MessageDigest::sha256(), "sha256WithRSAEncryption", false),
    ] {
        let int_key = testpki::rsa_key(2048);
        let mut spec = Spec::ca("Weak Test Intermediate", "Weak Test");
        spec.digest = Some(digest);
        spec.serial = 7;
        let intermediate = Issued { cert: testpki::issue(&spec, &int_key, Some(&root)), key: int_key };
        let leaf_key = testpki::ec_key();
        let leaf = testpki::issue(&Spec::leaf(HOST, &[HOST]), &leaf_key, Some(&intermediate));
        let name = format!("web-{algorithm}");
        let cert = write(dir.path(), &format!("{name}.crt"), &pem(&[&leaf, &intermediate.cert]));
        let key = write(dir.path(), &format!("{name}.key"), &key_pem(&leaf_key));
        let service = gather_service(&ServiceConfig::separate(&name, cert, key), HOST, &verifier, NOW);
        let c = cert_of(&service);
        assert_eq!(c.signature_algorithm, "sha256WithRSAEncryption", "the leaf itself is strong");
        assert_eq!(c.chain.len(), 2, "{:?}", c.chain);
        assert_eq!(c.chain[0].signature_algorithm, algorithm);
        assert_eq!(c.chain[0].source, ChainSource::File);
        assert_eq!((c.chain[1].source, c.chain[1].self_signed), (ChainSource::TrustStore, true));
        assert_eq!(c.path, PathStatus::Valid);

        let facts = HostFacts {
            now: NOW,
            hostname: HOST.into(),
            hostname_is_fqdn: true,
            hostname_dns: DnsStatus::PointsToMainIp,
            caa: CaaStatus::Allows,
            disable_auto_hostname_certificate: false,
            disable_service_certificate_management: false,
            acme: Some(AcmeFacts { directory_url: "https://acme.test/dir".into() }),
            groups: Vec::new(),
            params: Vec::new(),
            services: vec![service],
        };
        let mut facts = facts;
        facts.complete_groups();
        let plan = runtime.evaluate(&policy, &facts).unwrap().plan;
        let decision = &plan.services[0];
        if weak {
            assert_eq!(decision.decision, crate::plan::Decision::Replace, "{algorithm}: {plan:?}");
            assert_eq!(decision.reasons, [crate::plan::Reason::WeakSignature], "{algorithm}");
            assert!(plan.orders_group(HOSTNAME_GROUP), "{algorithm}");
        } else {
            assert_eq!(decision.decision, crate::plan::Decision::Keep, "{plan:?}");
            assert!(plan.orders.is_empty());
        }
    }
}

fn cert_of(facts: &ServiceFacts) -> &Certificate {
    cert(facts)
}

/// The path verdict leaves the leaf's own dates out: an expired leaf on a sound chain has a valid
/// path (its chain status says "expired"), an expired leaf whose intermediate is missing has an
/// incomplete one (the status, stopping at its first failure, says only one of the two), and a
/// leaf signed by another key than its named issuer in the files is a wrong intermediate, not a
/// missing one.
#[test]
fn the_path_verdict_is_the_chain_without_the_leafs_dates() {
    let s = Setup::new();
    let mut spec = Spec::leaf(HOST, &[HOST]);
    spec.not_after = NOW - DAY;
    let expired = s.pki.leaf(&spec);
    let c = s.gather(&s.good_service("expired", &expired));
    let c = cert(&c);
    assert_eq!(c.chain_status, ChainStatus::Untrusted("certificate has expired".into()));
    assert_eq!(c.path, PathStatus::Valid);
    assert_eq!(c.chain.len(), 2);

    let alone = s.gather(&s.service("alone", &pem(&[&expired.cert]), &expired.key));
    let alone = cert(&alone);
    assert!(
        matches!(&alone.path, PathStatus::Incomplete(m) if m.contains("missing intermediate")),
        "{:?}",
        alone.path
    );

    // Signed by another intermediate of the same name: the files hold "an" issuer, not this one.
    let other = Pki::new("Test CA");
    let foreign = other.leaf(&Spec::leaf(HOST, &[HOST]));
    let wrong = s.gather(&s.good_service("wrong", &foreign));
    let wrong = cert(&wrong);
    assert!(
        matches!(&wrong.path, PathStatus::Invalid(m) if m.contains("not the one that signed")),
        "{:?} / {:?}",
        wrong.path,
        wrong.chain_status
    );
    assert!(!matches!(wrong.chain_status, ChainStatus::Incomplete(_)), "{:?}", wrong.chain_status);
}
