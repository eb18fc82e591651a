//! Self-signed placeholder certificates, and [`Material`]: what gets installed.
//!
//! A placeholder is what a service gets when its certificate is unusable and no real replacement
//! can be had (yet). It is recognisable: its subject is `O=checkallsslcerts placeholder,
//! CN=<hostname>`. Details: X.509 v3, a random positive 128-bit serial, SAN = the host name and
//! the extra names (IP addresses become IP SANs), valid from one hour before `now` (clock skew)
//! until `now + validity_days`, `basicConstraints=critical,CA:FALSE`,
//! `keyUsage=critical,digitalSignature` (plus `keyEncipherment` for RSA),
//! `extendedKeyUsage=serverAuth`, subject and authority key identifiers, SHA-256 signature.
//! The key is written as PKCS#8 PEM (`BEGIN PRIVATE KEY`). A host name longer than 64 bytes
//! (the X.509 limit for a CN) is carried in the SAN only.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{Asn1Flag, EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder};
use zeroize::Zeroizing;

use super::errors::ActionError;
use crate::config::types::KeyAlgorithm;

/// The organisation name of every placeholder certificate, so people can recognise one.
pub const PLACEHOLDER_ORGANIZATION: &str = "checkallsslcerts placeholder";

/// How long before `now` a placeholder becomes valid, to allow for clock skew.
pub const CLOCK_SKEW_SECS: i64 = 3600;

/// Certificate material to install: what a placeholder is, and what an ACME issuance produces.
///
/// `Debug` shows sizes only; the key is never printed.
#[derive(Clone)]
pub struct Material {
    /// The leaf certificate, PEM.
    pub certificate_pem: Vec<u8>,
    /// The intermediate certificates, PEM, leaf-side first; empty for a self-signed placeholder.
    pub chain_pem: Vec<u8>,
    /// The private key of the leaf, PEM; wiped from memory on drop.
    pub key_pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("certificate_pem", &format_args!("<{} bytes>", self.certificate_pem.len()))
            .field("chain_pem", &format_args!("<{} bytes>", self.chain_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

impl Material {
    /// Checks that the leaf, the chain (if any) and the key parse, and that the key belongs
    /// to the leaf. The error says what is wrong, never anything of the key.
    pub fn verify(&self) -> Result<(), String> {
        let leaf = X509::from_pem(&self.certificate_pem)
            .map_err(|e| format!("the certificate is not PEM X.509: {e}"))?;
        if !self.chain_pem.iter().all(u8::is_ascii_whitespace) {
            X509::stack_from_pem(&self.chain_pem).map_err(|e| format!("the chain is not PEM X.509: {e}"))?;
        }
        let key = PKey::private_key_from_pem(&self.key_pem)
            .map_err(|_| "the private key is not an unencrypted PEM private key".to_string())?;
        key_matches(&leaf, &key)
    }
}

/// Whether `key` is the private key of `leaf`.
pub(crate) fn key_matches(leaf: &X509, key: &PKey<Private>) -> Result<(), String> {
    let public = leaf.public_key().map_err(|e| format!("cannot read the certificate's public key: {e}"))?;
    if public.public_eq(key) {
        Ok(())
    } else {
        Err("the private key does not belong to the certificate".to_string())
    }
}

/// Makes a self-signed placeholder for `hostname` (and `extra_names`), valid from
/// `now - 1 h` to `now + validity_days`.
pub fn generate(
    hostname: &str,
    extra_names: &[String],
    key: KeyAlgorithm,
    validity_days: u32,
    now: i64,
) -> Result<Material, ActionError> {
    let invalid = |reason: String| ActionError::InvalidPlaceholder { hostname: hostname.to_string(), reason };
    let ossl = |step: &'static str| {
        move |source: ErrorStack| ActionError::OpenSsl { hostname: hostname.to_string(), step, source }
    };

    let host = normalize_name(hostname).map_err(&invalid)?;
    if validity_days == 0 {
        return Err(invalid("the validity must be at least one day".into()));
    }
    let mut names = vec![host.clone()];
    let mut seen: HashSet<String> = names.iter().cloned().collect();
    for extra in extra_names {
        let name = normalize_name(extra).map_err(&invalid)?;
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }

    let pkey = new_key(key).map_err(ossl("generate the private key"))?;

    let mut b = X509::builder().map_err(ossl("start the certificate"))?;
    b.set_version(2).map_err(ossl("set the version"))?;
    let serial = random_serial().map_err(ossl("make the serial number"))?;
    b.set_serial_number(&serial).map_err(ossl("set the serial number"))?;

    let mut name = X509NameBuilder::new().map_err(ossl("start the subject"))?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, PLACEHOLDER_ORGANIZATION)
        .map_err(ossl("set the subject organisation"))?;
    if host.len() <= 64 {
        name.append_entry_by_nid(Nid::COMMONNAME, &host).map_err(ossl("set the subject common name"))?;
    }
    let name = name.build();
    b.set_subject_name(&name).map_err(ossl("set the subject"))?;
    b.set_issuer_name(&name).map_err(ossl("set the issuer"))?;

    let not_before =
        Asn1Time::from_unix(now.saturating_sub(CLOCK_SKEW_SECS)).map_err(ossl("encode not-before"))?;
    let not_after = Asn1Time::from_unix(now.saturating_add(i64::from(validity_days) * 86_400))
        .map_err(ossl("encode not-after"))?;
    b.set_not_before(&not_before).map_err(ossl("set not-before"))?;
    b.set_not_after(&not_after).map_err(ossl("set not-after"))?;
    b.set_pubkey(&pkey).map_err(ossl("set the public key"))?;

    let bc = BasicConstraints::new().critical().build().map_err(ossl("build basicConstraints"))?;
    b.append_extension(bc).map_err(ossl("add basicConstraints"))?;
    let mut ku = KeyUsage::new();
    ku.critical().digital_signature();
    if matches!(key, KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096) {
        ku.key_encipherment();
    }
    b.append_extension(ku.build().map_err(ossl("build keyUsage"))?).map_err(ossl("add keyUsage"))?;
    let eku = ExtendedKeyUsage::new().server_auth().build().map_err(ossl("build extendedKeyUsage"))?;
    b.append_extension(eku).map_err(ossl("add extendedKeyUsage"))?;

    let mut san = SubjectAlternativeName::new();
    for n in &names {
        if n.parse::<IpAddr>().is_ok() {
            san.ip(n);
        } else {
            san.dns(n);
        }
    }
    let san = san.build(&b.x509v3_context(None, None)).map_err(ossl("build subjectAltName"))?;
    b.append_extension(san).map_err(ossl("add subjectAltName"))?;
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .map_err(ossl("build subjectKeyIdentifier"))?;
    b.append_extension(ski).map_err(ossl("add subjectKeyIdentifier"))?;
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(None, None))
        .map_err(ossl("build authorityKeyIdentifier"))?;
    b.append_extension(aki).map_err(ossl("add authorityKeyIdentifier"))?;

    b.sign(&pkey, MessageDigest::sha256()).map_err(ossl("sign the certificate"))?;
    let cert = b.build();

    let certificate_pem = cert.to_pem().map_err(ossl("encode the certificate"))?;
    let key_pem = Zeroizing::new(pkey.private_key_to_pem_pkcs8().map_err(ossl("encode the private key"))?);
    Ok(Material { certificate_pem, chain_pem: Vec::new(), key_pem })
}

/// Lower-cases a DNS name and drops a trailing dot; IP addresses are kept in their canonical
/// text form. Rejects empty names, non-ASCII names (use the IDNA `xn--` form) and names with
/// characters no certificate name has.
fn normalize_name(name: &str) -> Result<String, String> {
    let trimmed = name.trim();
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    let n = trimmed.strip_suffix('.').unwrap_or(trimmed).to_ascii_lowercase();
    if n.is_empty() {
        return Err(format!("{name:?} is not a host name"));
    }
    if !n.is_ascii() {
        return Err(format!("{name:?} is not ASCII; give internationalised names in their xn-- form"));
    }
    if n.len() > 253 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._*".contains(&b)) {
        return Err(format!("{name:?} is not a valid host name"));
    }
    Ok(n)
}

fn new_key(alg: KeyAlgorithm) -> Result<PKey<Private>, ErrorStack> {
    let ec = |nid: Nid| -> Result<PKey<Private>, ErrorStack> {
        let mut group = EcGroup::from_curve_name(nid)?;
        group.set_asn1_flag(Asn1Flag::NAMED_CURVE);
        PKey::from_ec_key(EcKey::generate(&group)?)
    };
    match alg {
        KeyAlgorithm::EcP256 => ec(Nid::X9_62_PRIME256V1),
        KeyAlgorithm::EcP384 => ec(Nid::SECP384R1),
        KeyAlgorithm::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
        KeyAlgorithm::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?),
        KeyAlgorithm::Rsa4096 => PKey::from_rsa(Rsa::generate(4096)?),
    }
}

/// A random positive, non-zero serial of 128 random bits.
fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    loop {
        let mut bn = BigNum::new()?;
        bn.rand(128, MsbOption::MAYBE_ZERO, false)?;
        if bn.num_bits() > 0 {
            return bn.to_asn1_integer();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::Id;

    const NOW: i64 = 1_750_000_000;

    fn text(m: &Material) -> String {
        let cert = X509::from_pem(&m.certificate_pem).expect("pem");
        String::from_utf8(cert.to_text().expect("text")).expect("utf8")
    }

    #[test]
    fn ec_p256_placeholder_has_every_field() {
        let m = generate(
            "Host.Example.COM.",
            &["www.example.com".into(), "192.0.2.7".into(), "2001:db8::1".into()],
            KeyAlgorithm::EcP256,
            90,
            NOW,
        )
        .expect("generate");
        m.verify().expect("pair");
        assert!(m.chain_pem.is_empty());
        assert!(m.key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));

        let cert = X509::from_pem(&m.certificate_pem).expect("pem");
        assert_eq!(cert.version(), 2);
        let cn = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next().expect("cn");
        assert_eq!(cn.data().to_string().expect("utf8"), "host.example.com");
        let o = cert.subject_name().entries_by_nid(Nid::ORGANIZATIONNAME).next().expect("o");
        assert_eq!(o.data().to_string().expect("utf8"), PLACEHOLDER_ORGANIZATION);

        let sans = cert.subject_alt_names().expect("san");
        let dns: Vec<_> = sans.iter().filter_map(|g| g.dnsname()).collect();
        assert_eq!(dns, ["host.example.com", "www.example.com"]);
        let ips: Vec<_> = sans.iter().filter_map(|g| g.ipaddress()).collect();
        assert_eq!(
            ips,
            [&[192, 0, 2, 7][..], &"2001:db8::1".parse::<std::net::Ipv6Addr>().expect("ip").octets()[..]]
        );

        let nb = Asn1Time::from_unix(NOW - 3600).expect("t");
        let na = Asn1Time::from_unix(NOW + 90 * 86_400).expect("t");
        assert_eq!(cert.not_before().compare(&nb).expect("cmp"), std::cmp::Ordering::Equal);
        assert_eq!(cert.not_after().compare(&na).expect("cmp"), std::cmp::Ordering::Equal);

        let serial = cert.serial_number().to_bn().expect("bn");
        assert!(!serial.is_negative());
        assert!(serial.num_bits() > 64 && serial.num_bits() <= 128);

        assert_eq!(cert.signature_algorithm().object().nid(), Nid::ECDSA_WITH_SHA256);
        assert_eq!(cert.public_key().expect("pk").id(), Id::EC);
        // Self-signed: it verifies with its own key.
        assert!(cert.verify(&cert.public_key().expect("pk")).expect("verify"));

        let t = text(&m);
        assert!(t.contains("X509v3 Basic Constraints: critical"), "{t}");
        assert!(t.contains("CA:FALSE"), "{t}");
        assert!(t.contains("X509v3 Key Usage: critical"), "{t}");
        assert!(t.contains("Digital Signature"), "{t}");
        assert!(!t.contains("Key Encipherment"), "{t}");
        assert!(t.contains("TLS Web Server Authentication"), "{t}");
        assert!(t.contains("X509v3 Subject Key Identifier"), "{t}");
        assert!(t.contains("prime256v1") || t.contains("P-256"), "{t}");
    }

    #[test]
    fn other_key_algorithms() {
        let m = generate("h.example", &[], KeyAlgorithm::EcP384, 1, NOW).expect("p384");
        m.verify().expect("pair");
        let t = text(&m);
        assert!(t.contains("secp384r1") || t.contains("P-384"), "{t}");

        let m = generate("h.example", &[], KeyAlgorithm::Rsa2048, 1, NOW).expect("rsa");
        m.verify().expect("pair");
        let cert = X509::from_pem(&m.certificate_pem).expect("pem");
        assert_eq!(cert.public_key().expect("pk").bits(), 2048);
        assert_eq!(cert.signature_algorithm().object().nid(), Nid::SHA256WITHRSAENCRYPTION);
        let t = text(&m);
        assert!(t.contains("Digital Signature, Key Encipherment"), "{t}");
    }

    #[test]
    fn serials_differ() {
        let a = generate("h.example", &[], KeyAlgorithm::EcP256, 1, NOW).expect("a");
        let b = generate("h.example", &[], KeyAlgorithm::EcP256, 1, NOW).expect("b");
        let sa = X509::from_pem(&a.certificate_pem).expect("a").serial_number().to_bn().expect("bn");
        let sb = X509::from_pem(&b.certificate_pem).expect("b").serial_number().to_bn().expect("bn");
        assert_ne!(sa, sb);
    }

    #[test]
    fn ip_hostname_and_long_hostname() {
        let m = generate("192.0.2.1", &[], KeyAlgorithm::EcP256, 1, NOW).expect("ip");
        let cert = X509::from_pem(&m.certificate_pem).expect("pem");
        let sans = cert.subject_alt_names().expect("san");
        assert_eq!(sans.iter().filter_map(|g| g.ipaddress()).count(), 1);

        let long = format!("{}.example.com", "a".repeat(60));
        let m = generate(&long, &[], KeyAlgorithm::EcP256, 1, NOW).expect("long");
        let cert = X509::from_pem(&m.certificate_pem).expect("pem");
        assert_eq!(cert.subject_name().entries_by_nid(Nid::COMMONNAME).count(), 0);
        let sans = cert.subject_alt_names().expect("san");
        assert_eq!(sans.iter().filter_map(|g| g.dnsname()).collect::<Vec<_>>(), [long.as_str()]);
    }

    #[test]
    fn bad_input_is_refused_with_the_hostname() {
        let e = generate("", &[], KeyAlgorithm::EcP256, 1, NOW).expect_err("empty");
        assert!(e.to_string().contains("placeholder certificate for"), "{e}");
        let e = generate("h.example", &[], KeyAlgorithm::EcP256, 0, NOW).expect_err("zero");
        assert!(e.to_string().contains("h.example"), "{e}");
        let e = generate("h.example", &["bad name".into()], KeyAlgorithm::EcP256, 1, NOW).expect_err("space");
        assert!(e.to_string().contains("bad name"), "{e}");
        let e = generate("bücher.example", &[], KeyAlgorithm::EcP256, 1, NOW).expect_err("idn");
        assert!(e.to_string().contains("xn--"), "{e}");
    }

    #[test]
    fn debug_never_prints_the_key() {
        let m = generate("h.example", &[], KeyAlgorithm::EcP256, 1, NOW).expect("gen");
        let dbg = format!("{m:?} {m:#?}");
        assert!(dbg.contains("<redacted>"));
        assert!(!dbg.contains("PRIVATE"));
        let key_body = std::str::from_utf8(&m.key_pem).expect("utf8").lines().nth(1).expect("line");
        assert!(!dbg.contains(key_body));
    }

    #[test]
    fn verify_catches_a_foreign_key() {
        let a = generate("h.example", &[], KeyAlgorithm::EcP256, 1, NOW).expect("a");
        let b = generate("h.example", &[], KeyAlgorithm::EcP256, 1, NOW).expect("b");
        let mixed = Material {
            certificate_pem: a.certificate_pem.clone(),
            chain_pem: Vec::new(),
            key_pem: b.key_pem.clone(),
        };
        let e = mixed.verify().expect_err("mismatch");
        assert!(e.contains("does not belong"), "{e}");
    }
}
