//! The fast path against the full OpenSSL path (the correctness guard of `fast.rs` and
//! [`Verifier::verify_fast`]): for a set of tricky certificates and chains, `gather_service` must
//! give exactly the same `ServiceFacts` (certificate facts, chain status, key status, hostname
//! coverage) as `gather_service_full` — with a fresh verifier, and with one that has already
//! verified other leaves under the same chains (its memo in use) — at several verification
//! times, for a DNS name and an IP address, with and without the system trust store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use tempfile::TempDir;

use super::fast::FastLeaf;
use super::memo::{self, Memo};
use super::model::{ChainStatus, KeyKind};
use super::testpki::{self, DAY, Issued, NOW, Pki, Spec, key_pem, pem, write};
use super::*;
use crate::config::{ServiceConfig, TrustConfig};

const HOST: &str = "host.example.com";
const NULL: [u8; 2] = [0x05, 0x00];

/// Whether the leaf is expected inside the fast path's profile.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Profile {
    In,
    Out,
}

struct Case {
    name: String,
    svc: ServiceConfig,
    leaf: X509,
    profile: Profile,
}

struct World {
    dir: TempDir,
    roots: PathBuf,
    cases: Vec<Case>,
}

fn issued(spec: &Spec, key: PKey<Private>, issuer: Option<&Issued>) -> Issued {
    Issued { cert: testpki::issue(spec, &key, issuer), key }
}

impl World {
    fn add(&mut self, name: &str, leaf: &Issued, chain: &[&X509], profile: Profile) {
        let mut certs = vec![&leaf.cert];
        certs.extend_from_slice(chain);
        let cert = write(self.dir.path(), &format!("{name}.crt"), &pem(&certs));
        let key = write(self.dir.path(), &format!("{name}.key"), &key_pem(&leaf.key));
        self.push(name, ServiceConfig::separate(name, cert, key), &leaf.cert, profile);
    }

    fn push(&mut self, name: &str, svc: ServiceConfig, leaf: &X509, profile: Profile) {
        self.cases.push(Case { name: name.to_owned(), svc, leaf: leaf.clone(), profile });
    }

    fn verifier(&self, system_roots: bool) -> Verifier {
        Verifier::new(&TrustConfig { extra_roots: vec![self.roots.clone()], system_roots }).unwrap()
    }

    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("Test CA");
        let int = &pki.intermediate;
        let leaf = |spec: &Spec| pki.leaf(spec);
        let good_spec = || {
            let mut spec = Spec::leaf(HOST, &[HOST, "www.example.com"]);
            spec.ips = vec!["192.0.2.7".into(), "2001:db8::7".into()];
            spec
        };

        // Certificates the trust store holds besides the root: a leaf, and a self-signed leaf.
        let trusted_leaf = leaf(&Spec::leaf("trusted-leaf.example.com", &[HOST]));
        let trusted_self_signed =
            issued(&Spec::leaf("trusted-self-signed.example.com", &[HOST]), testpki::ec_key(), None);
        let roots = write(
            dir.path(),
            "roots.pem",
            &pem(&[&pki.root.cert, &trusted_leaf.cert, &trusted_self_signed.cert]),
        );
        let mut w = World { dir, roots, cases: Vec::new() };

        // Under the trusted intermediate (good leaves first, so the memo serves the others).
        w.add("good", &leaf(&good_spec()), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.serial = 0x00ab_cdef;
        w.add("good-2", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.not_before = NOW - 100 * DAY;
        spec.not_after = NOW - DAY;
        w.add("expired", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.not_before = NOW + DAY;
        w.add("not-yet-valid", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.not_before = NOW;
        spec.not_after = NOW;
        w.add("valid-for-no-second", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.not_before = NOW;
        spec.not_after = NOW + 1;
        w.add("valid-for-one-second", &leaf(&spec), &[&int.cert], Profile::In);
        let impostor = Issued { cert: int.cert.clone(), key: testpki::ec_key() };
        w.add(
            "wrong-issuer-key",
            &issued(&good_spec(), testpki::ec_key(), Some(&impostor)),
            &[&int.cert],
            Profile::In,
        );
        let mut spec = good_spec();
        spec.digest = Some(MessageDigest::sha1());
        w.add("ecdsa-sha1", &leaf(&spec), &[&int.cert], Profile::In);
        let p384 = PKey::from_ec_key(
            openssl::ec::EcKey::generate(&openssl::ec::EcGroup::from_curve_name(Nid::SECP384R1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let mut spec = good_spec();
        spec.digest = Some(MessageDigest::sha384());
        w.add("p384-sha384", &issued(&spec, p384, Some(int)), &[&int.cert], Profile::In);
        w.add(
            "rsa-2048-leaf",
            &issued(&good_spec(), testpki::rsa_key(2048), Some(int)),
            &[&int.cert],
            Profile::In,
        );
        w.add(
            "rsa-1024-leaf",
            &issued(&good_spec(), testpki::rsa_key(1024), Some(int)),
            &[&int.cert],
            Profile::In,
        );
        w.add(
            "ed25519-leaf",
            &issued(&good_spec(), testpki::ed25519_key(), Some(int)),
            &[&int.cert],
            Profile::Out,
        );
        w.add("wildcard", &leaf(&Spec::leaf("*.example.com", &["*.example.com"])), &[&int.cert], Profile::In);
        w.add(
            "other-names",
            &leaf(&Spec::leaf("x.example.org", &["x.example.org"])),
            &[&int.cert],
            Profile::In,
        );
        let mut spec = Spec::ca(HOST, "Leaf Org");
        spec.dns = vec![HOST.into()];
        w.add("leaf-with-ca-true", &leaf(&spec), &[&int.cert], Profile::Out);
        let mut spec = good_spec();
        spec.extra = vec![("1.3.6.1.4.1.99999.1".into(), true, NULL.to_vec())];
        w.add("critical-unknown-extension", &leaf(&spec), &[&int.cert], Profile::Out);
        let mut spec = good_spec();
        spec.extra = vec![("1.3.6.1.4.1.99999.2".into(), false, NULL.to_vec())];
        w.add("non-critical-unknown-extension", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.server_auth = false;
        // extendedKeyUsage: clientAuth only.
        let client_auth = vec![0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
        spec.extra = vec![("2.5.29.37".into(), false, client_auth)];
        w.add("client-auth-only", &leaf(&spec), &[&int.cert], Profile::Out);
        let mut spec = good_spec();
        spec.bare = true;
        w.add("no-extensions", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.subject = Some(vec![
            (Nid::COUNTRYNAME, "DE".into()),
            (Nid::ORGANIZATIONNAME, "Bücher GmbH".into()),
            (Nid::COMMONNAME, "bücher.example.com".into()),
        ]);
        w.add("utf8-subject", &leaf(&spec), &[&int.cert], Profile::In);
        // A leaf shaped like Let's Encrypt's: OCSP/CA issuers, CRL, certificate policies.
        let mut spec = good_spec();
        spec.extra = vec![
            ("1.3.6.1.5.5.7.1.1".into(), false, aia()),
            ("2.5.29.31".into(), false, crl_distribution_points()),
            ("2.5.29.32".into(), false, certificate_policies()),
        ];
        w.add("lets-encrypt-shape", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.extra = vec![("2.5.29.32".into(), true, certificate_policies())];
        w.add("critical-certificate-policies", &leaf(&spec), &[&int.cert], Profile::In);
        let mut spec = good_spec();
        spec.subject = Some(Vec::new());
        w.add("empty-subject", &leaf(&spec), &[&int.cert], Profile::In);
        let good = leaf(&good_spec());
        w.add("missing-intermediate", &good, &[], Profile::In);
        w.add("trusted-leaf-without-chain", &trusted_leaf, &[], Profile::In);
        w.add("chain-repeats-the-leaf", &good, &[&good.cert, &int.cert], Profile::In);
        let chain = write(w.dir.path(), "chain-file.chain", &pem(&[&int.cert]));
        let cert = write(w.dir.path(), "chain-file.crt", &pem(&[&good.cert]));
        let key = write(w.dir.path(), "chain-file.key", &key_pem(&good.key));
        let mut svc = ServiceConfig::separate("chain-file", cert, key);
        svc.chain = Some(chain);
        w.push("chain-file", svc, &good.cert, Profile::In);
        let mut bytes = pem(&[&good.cert, &int.cert]);
        bytes.extend(key_pem(&good.key));
        let path = write(w.dir.path(), "combined.pem", &bytes);
        w.push("combined", ServiceConfig::combined("combined", path), &good.cert, Profile::In);
        let cert = write(w.dir.path(), "key-mismatch.crt", &pem(&[&good.cert, &int.cert]));
        let key = write(w.dir.path(), "key-mismatch.key", &key_pem(&testpki::ec_key()));
        w.push("key-mismatch", ServiceConfig::separate("key-mismatch", cert, key), &good.cert, Profile::In);
        let cert = write(w.dir.path(), "key-rsa.crt", &pem(&[&good.cert, &int.cert]));
        let key = write(w.dir.path(), "key-rsa.key", &key_pem(&testpki::rsa_key(2048)));
        w.push("key-of-another-type", ServiceConfig::separate("key-rsa", cert, key), &good.cert, Profile::In);
        let cert = write(w.dir.path(), "key-missing.crt", &pem(&[&good.cert, &int.cert]));
        let svc = ServiceConfig::separate("key-missing", cert, w.dir.path().join("nope.key"));
        w.push("key-missing", svc, &good.cert, Profile::In);

        // Self-signed and self-issued leaves.
        let self_signed = issued(&Spec::leaf(HOST, &[HOST]), testpki::ec_key(), None);
        w.add("self-signed", &self_signed, &[], Profile::In);
        w.add(
            "self-signed-2",
            &issued(&Spec::leaf(HOST, &[HOST]), testpki::ec_key(), None),
            &[],
            Profile::In,
        );
        w.add(
            "self-signed-rsa",
            &issued(&Spec::leaf(HOST, &[HOST]), testpki::rsa_key(2048), None),
            &[],
            Profile::In,
        );
        let mut spec = Spec::leaf(HOST, &[HOST]);
        spec.not_after = NOW - DAY;
        spec.not_before = NOW - 9 * DAY;
        w.add("self-signed-expired", &issued(&spec, testpki::ec_key(), None), &[], Profile::In);
        let other_key = Issued { cert: self_signed.cert.clone(), key: testpki::ec_key() };
        let forged = Issued {
            cert: testpki::issue(&Spec::leaf(HOST, &[HOST]), &self_signed.key, Some(&other_key)),
            key: self_signed.key.clone(),
        };
        w.add("self-issued-not-self-signed", &forged, &[], Profile::In);
        w.add("trusted-self-signed", &trusted_self_signed, &[], Profile::In);
        let mut spec = Spec::leaf("x", &[HOST]);
        spec.subject =
            Some(vec![(Nid::ORGANIZATIONNAME, "Test CA".into()), (Nid::COMMONNAME, "Test CA Root".into())]);
        w.add("self-signed-with-a-root-name", &issued(&spec, testpki::ec_key(), None), &[], Profile::In);
        let mut spec = Spec::leaf("x", &[HOST]);
        spec.subject =
            Some(vec![(Nid::ORGANIZATIONNAME, "test  CA".into()), (Nid::COMMONNAME, " TEST ca root".into())]);
        w.add(
            "self-signed-with-a-root-name-in-other-case",
            &issued(&spec, testpki::ec_key(), None),
            &[],
            Profile::In,
        );
        w.add("self-signed-with-a-chain", &self_signed, &[&int.cert], Profile::In);
        // Subject and issuer equal only as OpenSSL compares names (case, spaces, string type).
        let mut spec = Spec::leaf("x", &[HOST]);
        spec.subject =
            Some(vec![(Nid::ORGANIZATIONNAME, "Test  Org".into()), (Nid::COMMONNAME, HOST.into())]);
        spec.issuer_name = Some(vec![
            (Nid::ORGANIZATIONNAME, "test org".into()),
            (Nid::COMMONNAME, "HOST.example.com ".into()),
        ]);
        w.add("self-issued-with-folded-names", &issued(&spec, testpki::ec_key(), None), &[], Profile::In);
        // A self-issued leaf whose authority key identifier is not its own key's.
        let mut spec = Spec::leaf(HOST, &[HOST]);
        spec.extra = vec![("2.5.29.35".into(), false, vec![0x30, 0x06, 0x80, 0x04, 0xde, 0xad, 0xbe, 0xef])];
        w.add("self-issued-with-a-foreign-akid", &issued(&spec, testpki::ec_key(), None), &[], Profile::In);
        // ECDSA signatures with a byte after the DER (OpenSSL's ECDSA_verify refuses them).
        let trailing = with_trailing_signature_byte(&leaf(&good_spec()));
        w.add("signature-with-a-trailing-byte", &trailing, &[&int.cert], Profile::In);
        let trailing =
            with_trailing_signature_byte(&issued(&Spec::leaf(HOST, &[HOST]), testpki::ec_key(), None));
        w.add("self-signature-with-a-trailing-byte", &trailing, &[], Profile::In);
        // A system root's name (when the system store is used).
        if let Some(system) = system_root() {
            let mut spec = Spec::leaf("x", &[HOST]);
            spec.subject = Some(
                system
                    .subject_name()
                    .entries()
                    .map(|e| (e.object().nid(), e.data().to_string().unwrap()))
                    .collect(),
            );
            w.add(
                "self-signed-with-a-system-root-name",
                &issued(&spec, testpki::ec_key(), None),
                &[],
                Profile::In,
            );
        }

        // Untrusted root.
        let other = Pki::new("Other CA");
        for i in 0..2 {
            w.add(
                &format!("untrusted-root-{i}"),
                &other.leaf(&good_spec()),
                &[&other.intermediate.cert],
                Profile::In,
            );
        }
        // Expired and not yet valid intermediates.
        let mut spec = Spec::ca("Old Intermediate", "Test CA");
        spec.not_after = NOW - DAY;
        let old = issued(&spec, testpki::ec_key(), Some(&pki.root));
        let mut spec = Spec::ca("Future Intermediate", "Test CA");
        spec.not_before = NOW + DAY;
        let future = issued(&spec, testpki::ec_key(), Some(&pki.root));
        for i in 0..2 {
            let leaf = issued(&good_spec(), testpki::ec_key(), Some(&old));
            w.add(&format!("expired-intermediate-{i}"), &leaf, &[&old.cert], Profile::In);
            let leaf = issued(&good_spec(), testpki::ec_key(), Some(&future));
            w.add(&format!("not-yet-valid-intermediate-{i}"), &leaf, &[&future.cert], Profile::In);
        }
        // A name-constrained intermediate (permitted: example.com).
        let mut spec = Spec::ca("Constrained Intermediate", "Test CA");
        let permitted = b"example.com";
        let mut nc = vec![0x30, 0x11, 0xa0, 0x0f, 0x30, 0x0d, 0x82, 0x0b];
        nc.extend_from_slice(permitted);
        spec.extra = vec![("2.5.29.30".into(), true, nc)];
        let constrained = issued(&spec, testpki::ec_key(), Some(&pki.root));
        for (i, name) in [HOST, "host.example.org", "www.example.com"].into_iter().enumerate() {
            let leaf = issued(&Spec::leaf(name, &[name]), testpki::ec_key(), Some(&constrained));
            w.add(&format!("name-constrained-{i}"), &leaf, &[&constrained.cert], Profile::In);
        }
        // An RSA intermediate (sha256WithRSAEncryption leaves), an Ed25519 one.
        let rsa = issued(&Spec::ca("RSA Intermediate", "Test CA"), testpki::rsa_key(2048), Some(&pki.root));
        let mut ed_spec = Spec::ca("Ed25519 Intermediate", "Test CA");
        ed_spec.serial = 9;
        let ed = issued(&ed_spec, testpki::ed25519_key(), Some(&pki.root));
        for i in 0..2 {
            w.add(
                &format!("rsa-issuer-{i}"),
                &issued(&good_spec(), testpki::ec_key(), Some(&rsa)),
                &[&rsa.cert],
                Profile::In,
            );
            let mut spec = good_spec();
            spec.digest = None;
            w.add(
                &format!("ed25519-issuer-{i}"),
                &issued(&spec, testpki::ec_key(), Some(&ed)),
                &[&ed.cert],
                Profile::In,
            );
        }
        // RSA leaves under an RSA intermediate, signed with SHA-1 (in the profile) and MD5 (not).
        for (name, digest, profile) in [
            ("rsa-sha1-leaf", MessageDigest::sha1(), Profile::In),
            ("rsa-md5-leaf", MessageDigest::md5(), Profile::Out),
        ] {
            let mut spec = good_spec();
            spec.digest = Some(digest);
            w.add(name, &issued(&spec, testpki::rsa_key(2048), Some(&rsa)), &[&rsa.cert], profile);
        }
        // Two copies of the intermediate (same name and key), an expired one first: verified at a
        // time, OpenSSL picks the valid copy; without validity periods (the path verdict), the
        // first. A leaf that fails its own checks must get the chain the full path reports.
        let mut spec = Spec::ca("Test CA Intermediate", "Test CA");
        spec.serial = 77;
        spec.not_before = NOW - 900 * DAY;
        spec.not_after = NOW - 400 * DAY;
        let old_copy = issued(&spec, int.key.clone(), Some(&pki.root));
        let mut spec = good_spec();
        spec.serial = 0x0c0f;
        w.add("intermediate-copies-good", &leaf(&spec), &[&old_copy.cert, &int.cert], Profile::In);
        let mut spec = good_spec();
        spec.not_before = NOW - 100 * DAY;
        spec.not_after = NOW - DAY;
        w.add("intermediate-copies-expired", &leaf(&spec), &[&old_copy.cert, &int.cert], Profile::In);
        // An intermediate without keyCertSign (found, but may not sign).
        let mut spec = Spec::ca("No CertSign Intermediate", "Test CA");
        spec.bare = true;
        // basicConstraints CA:TRUE (critical), keyUsage digitalSignature (critical).
        spec.extra = vec![
            ("2.5.29.19".into(), true, vec![0x30, 0x03, 0x01, 0x01, 0xff]),
            ("2.5.29.15".into(), true, vec![0x03, 0x02, 0x07, 0x80]),
            ("2.5.29.14".into(), false, vec![0x04, 0x04, 0x01, 0x02, 0x03, 0x04]),
        ];
        let no_cert_sign = issued(&spec, testpki::ec_key(), Some(&pki.root));
        for i in 0..2 {
            let leaf = issued(&good_spec(), testpki::ec_key(), Some(&no_cert_sign));
            w.add(&format!("issuer-without-certsign-{i}"), &leaf, &[&no_cert_sign.cert], Profile::In);
        }
        w
    }
}

/// A DER TLV with a short length.
fn short_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(contents.len()).unwrap()];
    out.extend_from_slice(contents);
    out
}

/// authorityInfoAccess: OCSP and CA issuers URLs.
fn aia() -> Vec<u8> {
    let ocsp = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let ca_issuers = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let mut first = ocsp.to_vec();
    first.extend(short_tlv(0x86, b"http://ocsp.example/"));
    let mut second = ca_issuers.to_vec();
    second.extend(short_tlv(0x86, b"http://ca.example/int.der"));
    let mut list = short_tlv(0x30, &first);
    list.extend(short_tlv(0x30, &second));
    short_tlv(0x30, &list)
}

/// cRLDistributionPoints: one full-name URI.
fn crl_distribution_points() -> Vec<u8> {
    let uri = short_tlv(0x86, b"http://crl.example/1.crl");
    short_tlv(0x30, &short_tlv(0x30, &short_tlv(0xa0, &short_tlv(0xa0, &uri))))
}

/// certificatePolicies: the CA/Browser Forum's domain-validated policy.
fn certificate_policies() -> Vec<u8> {
    let oid = short_tlv(0x06, &[0x67, 0x81, 0x0c, 0x01, 0x02, 0x01]);
    short_tlv(0x30, &short_tlv(0x30, &oid))
}

/// The certificate with one zero byte appended to its ECDSA signature (inside the BIT STRING).
fn with_trailing_signature_byte(cert: &Issued) -> Issued {
    use super::der::{self, BIT_STRING, Reader, SEQUENCE};
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }
    let der = cert.cert.to_der().unwrap();
    let mut outer = Reader::new(der::only(&der, SEQUENCE).unwrap());
    let (_, tbs) = outer.next_raw().unwrap();
    let (_, alg) = outer.next_raw().unwrap();
    let mut signature = outer.expect(BIT_STRING).unwrap().to_vec();
    signature.push(0);
    let mut body = tbs.to_vec();
    body.extend_from_slice(alg);
    body.extend(tlv(BIT_STRING, &signature));
    Issued { cert: X509::from_der(&tlv(SEQUENCE, &body)).unwrap(), key: cert.key.clone() }
}

/// The first certificate of the system trust store, if there is one.
fn system_root() -> Option<X509> {
    let mut builder = openssl::x509::store::X509StoreBuilder::new().ok()?;
    builder.set_default_paths().ok()?;
    builder.build().all_certificates().iter().next().map(|c| c.to_owned())
}

fn check(w: &World, system_roots: bool, times: &[i64], hostnames: &[&str]) {
    for case in &w.cases {
        let der = case.leaf.to_der().unwrap();
        assert_eq!(
            FastLeaf::parse(&der).is_some(),
            case.profile == Profile::In,
            "{}: in the fast path's profile?",
            case.name
        );
    }
    let reference = w.verifier(system_roots);
    let shared = w.verifier(system_roots);
    for &now in times {
        for &hostname in hostnames {
            // Twice over the same verifier: the second round finds every chain in the memo.
            for round in 0..2 {
                for case in &w.cases {
                    let full = gather_service_full(&case.svc, hostname, &reference, now);
                    let label = format!(
                        "{} (now {now}, {hostname}, round {round}, system roots {system_roots})",
                        case.name
                    );
                    if round == 0 {
                        let cold = gather_service(&case.svc, hostname, &w.verifier(system_roots), now);
                        assert_eq!(cold, full, "{label}: fresh verifier");
                    }
                    let warm = gather_service(&case.svc, hostname, &shared, now);
                    assert_eq!(warm, full, "{label}: shared verifier");
                }
            }
        }
    }
    assert!(shared.memoised_chains() > 0);
    // Once more over a verifier whose verification memo holds what the shared one proved (saved
    // and read back, as the next run reads it): the same facts.
    let path = w.dir.path().join(format!("memo-{system_roots}"));
    assert!(shared.memo().save(&path).unwrap());
    let (memo, problem) = Memo::load(&path);
    assert_eq!(problem, None);
    assert!(memo.known_entries() > w.cases.len(), "signatures and key matches: {}", memo.known_entries());
    let memoised = w.verifier(system_roots).with_memo(memo);
    for &now in times {
        for &hostname in hostnames {
            for case in &w.cases {
                let full = gather_service_full(&case.svc, hostname, &reference, now);
                let label = format!("{} (now {now}, {hostname}, system roots {system_roots})", case.name);
                assert_eq!(
                    gather_service(&case.svc, hostname, &memoised, now),
                    full,
                    "{label}: with the memo"
                );
            }
        }
    }
}

/// The memo is read, and only when intact: an entry claiming a forged signature verified (which
/// only root could have written) is believed — so the memo is really consulted — while the same
/// file with one byte changed, or owned by another user, is ignored.
#[test]
fn a_tampered_memo_is_ignored() {
    let w = World::new();
    let case = w.cases.iter().find(|c| c.name == "wrong-issuer-key").unwrap();
    let full = gather_service_full(&case.svc, HOST, &w.verifier(false), NOW);
    let chain_status = |facts: &ServiceFacts| facts.certificate.certificate().unwrap().chain_status.clone();
    assert_eq!(chain_status(&full), ChainStatus::Untrusted("certificate signature failure".into()));

    // The memo a run would write if the signature had verified.
    let lying = Memo::empty();
    let issuer = X509::from_der(
        &std::fs::read(&case.svc.certificate)
            .map(|pem| X509::stack_from_pem(&pem).unwrap()[1].to_der().unwrap())
            .unwrap(),
    )
    .unwrap();
    let key_id = openssl::sha::sha256(&issuer.public_key().unwrap().public_key_to_der().unwrap());
    let leaf_digest = openssl::sha::sha256(&case.leaf.to_der().unwrap());
    assert!(lying.signature(&leaf_digest, &key_id, || true));
    let path = w.dir.path().join("lying-memo");
    lying.save(&path).unwrap();
    let good_leaf = w.cases.iter().find(|c| c.name == "good").unwrap();
    let believed = |path: &std::path::Path| {
        let (memo, problem) = Memo::load(path);
        let verifier = w.verifier(false).with_memo(memo);
        // A leaf under the same chain first: the chain is verified in full once, then the memo
        // answers for the leaf's signature.
        gather_service(&good_leaf.svc, HOST, &verifier, NOW);
        (chain_status(&gather_service(&case.svc, HOST, &verifier, NOW)), problem)
    };
    assert_eq!(believed(&path), (ChainStatus::Trusted, None), "an intact entry is used");

    let good = std::fs::read(&path).unwrap();
    for position in [10, good.len() - 70, good.len() - 1] {
        let mut bytes = good.clone();
        bytes[position] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let (status, problem) = believed(&path);
        assert_eq!(status, chain_status(&full), "byte {position} changed: ignored");
        assert_eq!(problem, Some(memo::MemoProblem::Damaged));
    }
    std::fs::write(&path, &good).unwrap();
    std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    let (status, problem) = believed(&path);
    assert_eq!(status, chain_status(&full), "another user's file: ignored");
    assert!(matches!(problem, Some(memo::MemoProblem::Unusable(_))), "{problem:?}");
}

#[test]
fn the_fast_path_gives_the_full_paths_facts() {
    let w = World::new();
    check(&w, false, &[NOW, NOW - 11 * DAY, NOW + 85 * DAY, NOW + 5000 * DAY], &[HOST, "192.0.2.7"]);
}

#[test]
fn the_fast_path_gives_the_full_paths_facts_with_the_system_store() {
    let w = World::new();
    assert!(
        w.cases.iter().any(|c| c.name == "self-signed-with-a-system-root-name") || system_root().is_none()
    );
    check(&w, true, &[NOW], &[HOST]);
}

/// The memo does not depend on which leaf a chain is first met under: the cases in reverse order
/// (an expired, a forged or a self-signed leaf first) give the full path's facts too.
#[test]
fn the_fast_path_gives_the_full_paths_facts_whichever_leaf_comes_first() {
    let mut w = World::new();
    w.cases.reverse();
    check(&w, false, &[NOW, NOW + 85 * DAY], &[HOST]);
}

/// Expired, not yet valid, forged and self-signed leaves stay on the fast path: one full
/// verification for the chain (whichever leaf meets it first), none for a self-signed leaf.
#[test]
fn ordinary_bad_leaves_stay_on_the_fast_path() {
    let w = World::new();
    let gather = |verifier: &Verifier, name: &str| {
        let case = w.cases.iter().find(|c| c.name == name).unwrap();
        let fast = gather_service(&case.svc, HOST, verifier, NOW);
        assert_eq!(fast, gather_service_full(&case.svc, HOST, &w.verifier(false), NOW), "{name}");
    };
    let under_the_intermediate =
        ["expired", "good", "not-yet-valid", "wrong-issuer-key", "valid-for-no-second", "rsa-2048-leaf"];
    for first in under_the_intermediate {
        let verifier = w.verifier(false);
        gather(&verifier, first);
        for name in under_the_intermediate {
            gather(&verifier, name);
        }
        assert_eq!(verifier.full_verifications(), 1, "first {first}: one full verification for the chain");
    }
    let verifier = w.verifier(false);
    for name in ["self-signed", "self-signed-2", "self-signed-rsa", "self-signed-expired"] {
        gather(&verifier, name);
    }
    assert_eq!(verifier.full_verifications(), 0, "self-signed leaves need no full verification");
    // Two copies of the intermediate, an expired one first: a leaf that fails its own checks
    // takes the full path, whose chain differs (the check above shows the facts agree).
    let verifier = w.verifier(false);
    gather(&verifier, "intermediate-copies-good");
    gather(&verifier, "intermediate-copies-expired");
    assert_eq!(verifier.full_verifications(), 2);
}

/// The outcomes the cases are meant to produce, so that the comparison above covers them.
#[test]
fn the_cases_cover_the_interesting_outcomes() {
    let w = World::new();
    let verifier = w.verifier(false);
    let status = |name: &str| {
        let case = w.cases.iter().find(|c| c.name == name).unwrap();
        let facts = gather_service(&case.svc, HOST, &verifier, NOW);
        (facts.certificate.certificate().unwrap().clone(), facts)
    };
    assert_eq!(status("good").0.chain_status, ChainStatus::Trusted);
    assert_eq!(status("expired").0.chain_status, ChainStatus::Untrusted("certificate has expired".into()));
    assert_eq!(
        status("not-yet-valid").0.chain_status,
        ChainStatus::Untrusted("certificate is not yet valid".into())
    );
    assert_eq!(
        status("valid-for-no-second").0.chain_status,
        ChainStatus::Untrusted("certificate has expired".into())
    );
    assert_eq!(status("valid-for-one-second").0.chain_status, ChainStatus::Trusted);
    assert_eq!(
        status("wrong-issuer-key").0.chain_status,
        ChainStatus::Untrusted("certificate signature failure".into())
    );
    assert_eq!(
        status("self-signed").0.chain_status,
        ChainStatus::Untrusted("self-signed certificate".into())
    );
    assert!(status("self-signed").0.self_signed);
    assert!(!status("self-issued-not-self-signed").0.self_signed);
    assert!(status("self-issued-with-folded-names").0.self_signed);
    assert!(matches!(status("self-issued-with-a-foreign-akid").0.chain_status, ChainStatus::Incomplete(_)));
    assert_eq!(
        status("signature-with-a-trailing-byte").0.chain_status,
        ChainStatus::Untrusted("certificate signature failure".into())
    );
    assert!(!status("self-signature-with-a-trailing-byte").0.self_signed);
    assert_eq!(status("trusted-self-signed").0.chain_status, ChainStatus::Trusted);
    assert_eq!(status("trusted-leaf-without-chain").0.chain_status, ChainStatus::Trusted);
    assert!(matches!(status("missing-intermediate").0.chain_status, ChainStatus::Incomplete(_)));
    assert!(
        matches!(status("untrusted-root-1").0.chain_status, ChainStatus::Untrusted(m) if m.contains("depth 1"))
    );
    assert!(
        matches!(status("expired-intermediate-1").0.chain_status, ChainStatus::Untrusted(m) if m.starts_with("certificate has expired (chain"))
    );
    assert!(matches!(status("name-constrained-1").0.chain_status, ChainStatus::Untrusted(_)));
    assert_eq!(status("name-constrained-2").0.chain_status, ChainStatus::Trusted);
    assert_eq!(status("rsa-issuer-1").0.chain_status, ChainStatus::Trusted);
    assert_eq!(status("ed25519-issuer-1").0.chain_status, ChainStatus::Trusted);
    assert!(matches!(status("issuer-without-certsign-1").0.chain_status, ChainStatus::Untrusted(_)));
    assert_eq!(status("ecdsa-sha1").0.signature_algorithm, "ecdsa-with-SHA1");
    assert_eq!(status("rsa-sha1-leaf").0.signature_algorithm, "sha1WithRSAEncryption");
    assert_eq!(status("rsa-md5-leaf").0.signature_algorithm, "md5WithRSAEncryption");
    assert_eq!(status("intermediate-copies-good").0.chain_status, ChainStatus::Trusted);
    assert_eq!(status("intermediate-copies-good").0.path, super::model::PathStatus::Valid);
    let copies = status("intermediate-copies-expired").0;
    assert!(
        matches!(&copies.path, super::model::PathStatus::Invalid(m) if m.contains("depth 1")),
        "without validity periods OpenSSL takes the expired copy: {:?}",
        copies.path
    );
    assert_eq!(status("rsa-1024-leaf").0.public_key.bits, 1024);
    assert_eq!(status("ed25519-leaf").0.public_key.kind, KeyKind::Ed25519);
    assert!(
        matches!(status("leaf-with-ca-true").0.chain_status, ChainStatus::Untrusted(_))
            || status("leaf-with-ca-true").0.chain_status == ChainStatus::Trusted
    );
    assert!(
        matches!(status("critical-unknown-extension").0.chain_status, ChainStatus::Untrusted(m) if m.contains("critical"))
    );
    assert!(
        matches!(status("client-auth-only").0.chain_status, ChainStatus::Untrusted(m) if m.contains("purpose"))
    );
    assert!(status("wildcard").1.covers_hostname);
    assert!(!status("other-names").1.covers_hostname);
    assert_eq!(status("key-mismatch").1.key, KeyStatus::Mismatch);
    assert_eq!(status("key-of-another-type").1.key, KeyStatus::Mismatch);
    assert!(matches!(status("key-missing").1.key, KeyStatus::Missing(_)));
    assert_eq!(status("utf8-subject").0.subject_cn.as_deref(), Some("bücher.example.com"));
    assert_eq!(status("lets-encrypt-shape").0.chain_status, ChainStatus::Trusted);
    assert_eq!(status("critical-certificate-policies").0.chain_status, ChainStatus::Trusted);
    assert_eq!(status("empty-subject").0.subject_cn, None);
    // Only certificates naming no OCSP responder, CRL or authority key skip the network step.
    let asks = |name: &str| {
        let der = w.cases.iter().find(|c| c.name == name).unwrap().leaf.to_der().unwrap();
        FastLeaf::parse(&der).unwrap().may_ask_network
    };
    assert!(asks("lets-encrypt-shape") && asks("good"));
    assert!(!asks("no-extensions") && !asks("self-signed"));
}
