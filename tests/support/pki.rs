//! Certificates for tests, made with the openssl crate: a test CA and leaves with every defect
//! the policy knows about.
#![allow(dead_code)]

use std::path::Path;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509, X509NameBuilder};

pub const DAY: i64 = 86_400;

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey")
}

pub fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).expect("rsa key")).expect("pkey")
}

/// A certificate authority for tests.
pub struct Ca {
    pub cert: X509,
    pub key: PKey<Private>,
}

/// What a leaf should look like.
pub struct Leaf<'a> {
    pub names: &'a [&'a str],
    pub not_before: i64,
    pub not_after: i64,
    pub key: PKey<Private>,
    pub digest: MessageDigest,
    pub org: Option<&'a str>,
}

impl<'a> Leaf<'a> {
    pub fn valid(names: &'a [&'a str], days_left: i64) -> Leaf<'a> {
        Leaf {
            names,
            not_before: now() - 30 * DAY,
            not_after: now() + days_left * DAY,
            key: ec_key(),
            digest: MessageDigest::sha256(),
            org: None,
        }
    }
}

fn name(cn: &str, org: Option<&str>) -> openssl::x509::X509Name {
    let mut b = X509NameBuilder::new().expect("name");
    if let Some(org) = org {
        b.append_entry_by_nid(Nid::ORGANIZATIONNAME, org).expect("O");
    }
    b.append_entry_by_nid(Nid::COMMONNAME, cn).expect("CN");
    b.build()
}

#[allow(clippy::too_many_arguments)]
fn build(
    subject: &openssl::x509::X509NameRef,
    issuer: &openssl::x509::X509NameRef,
    public: &PKey<Private>,
    signer: &PKey<Private>,
    not_before: i64,
    not_after: i64,
    ca: bool,
    names: &[&str],
    digest: MessageDigest,
) -> X509 {
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let serial = BigNum::from_u32(rand_serial()).and_then(|n| Asn1Integer::from_bn(&n)).expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(subject).expect("subject");
    b.set_issuer_name(issuer).expect("issuer");
    b.set_pubkey(public).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(not_before).expect("time")).expect("nb");
    b.set_not_after(&Asn1Time::from_unix(not_after).expect("time")).expect("na");
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc")).expect("ext");
    }
    if !names.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for n in names {
            san.dns(n);
        }
        let ext = san.build(&b.x509v3_context(None, None)).expect("san");
        b.append_extension(ext).expect("ext");
    }
    b.sign(signer, digest).expect("sign");
    b.build()
}

fn rand_serial() -> u32 {
    let mut buf = [0u8; 4];
    openssl::rand::rand_bytes(&mut buf).expect("rand");
    u32::from_be_bytes(buf) >> 1 | 1
}

impl Ca {
    pub fn new(cn: &str) -> Ca {
        let key = ec_key();
        let subject = name(cn, Some("Test CA"));
        let cert = build(
            &subject,
            &subject,
            &key,
            &key,
            now() - 365 * DAY,
            now() + 3650 * DAY,
            true,
            &[],
            MessageDigest::sha256(),
        );
        Ca { cert, key }
    }

    /// A leaf signed by this CA.
    pub fn issue(&self, leaf: &Leaf<'_>) -> X509 {
        let subject = name(leaf.names.first().copied().unwrap_or("leaf"), None);
        let issuer = match leaf.org {
            Some(org) => name("Test Issuer", Some(org)),
            None => self.cert.subject_name().to_owned().expect("issuer"),
        };
        build(
            &subject,
            &issuer,
            &leaf.key,
            &self.key,
            leaf.not_before,
            leaf.not_after,
            false,
            leaf.names,
            leaf.digest,
        )
    }
}

/// A self-signed leaf.
pub fn self_signed(leaf: &Leaf<'_>) -> X509 {
    let subject = name(leaf.names.first().copied().unwrap_or("self"), None);
    build(
        &subject,
        &subject,
        &leaf.key,
        &leaf.key,
        leaf.not_before,
        leaf.not_after,
        false,
        leaf.names,
        leaf.digest,
    )
}

pub fn pem(cert: &X509) -> Vec<u8> {
    cert.to_pem().expect("pem")
}

pub fn key_pem(key: &PKey<Private>) -> Vec<u8> {
    key.private_key_to_pem_pkcs8().expect("key pem")
}

/// Writes `cert` (+ `chain`) and `key` into `dir/{cert,key}.pem`, the key 0600.
pub fn write_pair(dir: &Path, cert: &X509, chain: &[&X509], key: &PKey<Private>) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("dir");
    let mut bytes = pem(cert);
    for c in chain {
        bytes.extend(pem(c));
    }
    std::fs::write(dir.join("cert.pem"), bytes).expect("cert");
    std::fs::write(dir.join("key.pem"), key_pem(key)).expect("key");
    std::fs::set_permissions(dir.join("key.pem"), std::fs::Permissions::from_mode(0o600)).expect("mode");
}
