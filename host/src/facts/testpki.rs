//! A small PKI for tests, generated with OpenSSL: keys, a root, an intermediate, leaves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{
    X509, X509Builder, X509Crl, X509CrlBuilder, X509Extension, X509NameBuilder, X509RevokedBuilder,
};

/// The time the tests verify at: 2033-05-18, far from the real clock, so a test only passes if
/// the verification time is the one given.
pub const NOW: i64 = 2_000_000_000;
pub const DAY: i64 = 86_400;

/// A certificate and its private key.
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

pub fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

pub fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

pub fn ed25519_key() -> PKey<Private> {
    PKey::generate_ed25519().unwrap()
}

/// What to put in a certificate.
#[derive(Clone)]
pub struct Spec {
    pub cn: String,
    pub org: Option<String>,
    pub dns: Vec<String>,
    pub ips: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub ca: bool,
    pub digest: Option<MessageDigest>,
    pub serial: u64,
    pub server_auth: bool,
    /// The subject's entries, instead of `O=org, CN=cn`.
    pub subject: Option<Vec<(Nid, String)>>,
    /// The issuer's entries, instead of the issuer's subject (or the subject, self-signed).
    pub issuer_name: Option<Vec<(Nid, String)>>,
    /// Only the extensions in `extra` (no basicConstraints, keyUsage, EKU, SKI, AKI, SAN).
    pub bare: bool,
    /// More extensions: (OID in dotted form, critical, DER value).
    pub extra: Vec<(String, bool, Vec<u8>)>,
}

impl Spec {
    /// A server certificate valid from 10 days before [`NOW`] to 80 days after.
    pub fn leaf(cn: &str, dns: &[&str]) -> Spec {
        Spec {
            cn: cn.to_owned(),
            org: None,
            dns: dns.iter().map(|s| (*s).to_owned()).collect(),
            ips: Vec::new(),
            not_before: NOW - 10 * DAY,
            not_after: NOW + 80 * DAY,
            ca: false,
            digest: Some(MessageDigest::sha256()),
            serial: 0x1234_abcd,
            server_auth: true,
            subject: None,
            issuer_name: None,
            bare: false,
            extra: Vec::new(),
        }
    }

    /// A CA certificate valid for ten years around [`NOW`].
    pub fn ca(cn: &str, org: &str) -> Spec {
        Spec {
            org: Some(org.to_owned()),
            not_before: NOW - 3650 * DAY,
            not_after: NOW + 3650 * DAY,
            ca: true,
            server_auth: false,
            serial: 1,
            ..Spec::leaf(cn, &[])
        }
    }
}

/// Issues a certificate for `key`, signed by `issuer` (self-signed without one).
pub fn issue(spec: &Spec, key: &PKey<Private>, issuer: Option<&Issued>) -> X509 {
    let mut name = X509NameBuilder::new().unwrap();
    match &spec.subject {
        Some(entries) => {
            for (nid, value) in entries {
                name.append_entry_by_nid(*nid, value).unwrap();
            }
        }
        None => {
            if let Some(org) = &spec.org {
                name.append_entry_by_nid(Nid::ORGANIZATIONNAME, org).unwrap();
            }
            name.append_entry_by_nid(Nid::COMMONNAME, &spec.cn).unwrap();
        }
    }
    let name = name.build();

    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let serial = Asn1Integer::from_bn(&BigNum::from_dec_str(&spec.serial.to_string()).unwrap()).unwrap();
    b.set_serial_number(&serial).unwrap();
    b.set_subject_name(&name).unwrap();
    match (&spec.issuer_name, issuer) {
        (Some(entries), _) => {
            let mut issuer_name = X509NameBuilder::new().unwrap();
            for (nid, value) in entries {
                issuer_name.append_entry_by_nid(*nid, value).unwrap();
            }
            b.set_issuer_name(&issuer_name.build()).unwrap();
        }
        (None, Some(i)) => b.set_issuer_name(i.cert.subject_name()).unwrap(),
        (None, None) => b.set_issuer_name(&name).unwrap(),
    }
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::from_unix(spec.not_before).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::from_unix(spec.not_after).unwrap()).unwrap();

    for (oid, critical, der) in &spec.extra {
        let oid = openssl::asn1::Asn1Object::from_str(oid).unwrap();
        let value = openssl::asn1::Asn1OctetString::new_from_bytes(der).unwrap();
        b.append_extension(openssl::x509::X509Extension::new_from_der(&oid, *critical, &value).unwrap())
            .unwrap();
    }
    if spec.bare {
        let signing_key = issuer.map_or(key, |i| &i.key);
        b.sign(signing_key, spec.digest.unwrap_or_else(MessageDigest::null)).unwrap();
        return b.build();
    }
    let mut bc = BasicConstraints::new();
    bc.critical();
    if spec.ca {
        bc.ca();
    }
    b.append_extension(bc.build().unwrap()).unwrap();
    let mut ku = KeyUsage::new();
    ku.critical();
    if spec.ca {
        ku.key_cert_sign().crl_sign();
    } else {
        ku.digital_signature().key_encipherment();
    }
    b.append_extension(ku.build().unwrap()).unwrap();
    if spec.server_auth {
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().unwrap()).unwrap();
    }
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None)).unwrap();
    b.append_extension(ski).unwrap();
    if let Some(i) = issuer {
        let aki =
            AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(&i.cert), None)).unwrap();
        b.append_extension(aki).unwrap();
    }
    if !spec.dns.is_empty() || !spec.ips.is_empty() {
        let mut san = SubjectAlternativeName::new();
        for d in &spec.dns {
            san.dns(d);
        }
        for ip in &spec.ips {
            san.ip(ip);
        }
        let ext = san.build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None)).unwrap();
        b.append_extension(ext).unwrap();
    }
    let signing_key = issuer.map_or(key, |i| &i.key);
    b.sign(signing_key, spec.digest.unwrap_or_else(MessageDigest::null)).unwrap();
    b.build()
}

/// A root CA, an intermediate under it, and helpers to issue leaves.
pub struct Pki {
    pub root: Issued,
    pub intermediate: Issued,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let root_key = ec_key();
        let root =
            Issued { cert: issue(&Spec::ca(&format!("{name} Root"), name), &root_key, None), key: root_key };
        let int_key = ec_key();
        let mut spec = Spec::ca(&format!("{name} Intermediate"), name);
        spec.serial = 2;
        let intermediate = Issued { cert: issue(&spec, &int_key, Some(&root)), key: int_key };
        Pki { root, intermediate }
    }

    /// A leaf signed by the intermediate, with a fresh EC key.
    pub fn leaf(&self, spec: &Spec) -> Issued {
        let key = ec_key();
        Issued { cert: issue(spec, &key, Some(&self.intermediate)), key }
    }
}

/// PEM of certificates, concatenated.
pub fn pem(certs: &[&X509]) -> Vec<u8> {
    certs.iter().flat_map(|c| c.to_pem().unwrap()).collect()
}

/// PKCS#8 PEM of a private key.
pub fn key_pem(key: &PKey<Private>) -> Vec<u8> {
    key.private_key_to_pem_pkcs8().unwrap()
}

/// Writes `bytes` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A CRL under `ca`'s name listing `revoked` (revoked a minute before `this`), current from
/// `this` to `next`, signed by `signer` (default: `ca` itself; another key makes a forgery).
pub fn crl(ca: &Issued, revoked: &[&X509], this: i64, next: i64, signer: Option<&Issued>) -> X509Crl {
    let signer = signer.unwrap_or(ca);
    let mut b = X509CrlBuilder::new().expect("builder");
    b.set_issuer_name(ca.cert.subject_name()).expect("issuer");
    b.set_last_update(&Asn1Time::from_unix(this).expect("time")).expect("last");
    b.set_next_update(&Asn1Time::from_unix(next).expect("time")).expect("next");
    for cert in revoked {
        let mut r = X509RevokedBuilder::new().expect("revoked");
        let serial = cert.serial_number().to_bn().and_then(|bn| Asn1Integer::from_bn(&bn)).expect("serial");
        r.set_serial_number(&serial).expect("serial");
        r.set_revocation_date(&Asn1Time::from_unix(this - 60).expect("time")).expect("date");
        b.add_revoked(r.build()).expect("add");
    }
    // The builder insists on an Authority Key Identifier and a CRL number.
    let key_id = ca.cert.subject_key_id().expect("ski").as_slice().to_vec();
    let mut aki = vec![0x30, key_id.len() as u8 + 2, 0x80, key_id.len() as u8];
    aki.extend_from_slice(&key_id);
    for (oid, der) in [("2.5.29.35", aki), ("2.5.29.20", vec![0x02, 0x01, 0x01])] {
        let oid = Asn1Object::from_str(oid).expect("oid");
        let value = Asn1OctetString::new_from_bytes(&der).expect("value");
        b.append_extension(X509Extension::new_from_der(&oid, false, &value).expect("ext")).expect("append");
    }
    b.sign(&signer.key, MessageDigest::sha256()).expect("sign");
    b.build().expect("crl")
}
