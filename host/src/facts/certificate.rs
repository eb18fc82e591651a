//! Certificate files: PEM blocks → the leaf and its chain → the contract's [`Certificate`].

use std::net::IpAddr;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKeyRef, Public};
use openssl::x509::{X509, X509NameRef, X509Ref};

use super::model::{
    Certificate, ChainElement, ChainSource, ChainStatus, KeyKind, PathStatus, PublicKey, Revocation,
};
use super::pem::{self, PemBlock};

/// A certificate file's certificates: the leaf (the first) and the chain that follows it.
#[derive(Debug, Clone)]
pub struct ParsedCertificate {
    /// The first certificate in the file.
    pub leaf: X509,
    /// The leaf's DER encoding, as found in the file.
    pub leaf_der: Vec<u8>,
    /// The certificates after the leaf, in file order (intermediates, perhaps a root).
    pub chain: Vec<X509>,
    /// The facts read from the leaf; `chain` is `NotChecked`, `revocation` `NotChecked` and
    /// `renewal_window` `None` (other steps fill them in).
    pub facts: Certificate,
}

/// Parses PEM text: the first certificate is the leaf, the others its chain; other blocks
/// (private keys, parameters) are ignored. The error says what is wrong, without the path.
pub fn parse_certificate(pem: &[u8]) -> Result<ParsedCertificate, String> {
    let blocks = pem::scan(pem).map_err(|e| e.to_string())?;
    certificates_from_blocks(&blocks, &|der| X509::from_der(der))
}

/// The leaf and chain from already scanned blocks. `parse_chain` decodes the certificates after
/// the leaf (the gatherer passes a cache, so a shared intermediate is decoded once).
pub(crate) fn certificates_from_blocks(
    blocks: &[PemBlock],
    parse_chain: &dyn Fn(&[u8]) -> Result<X509, ErrorStack>,
) -> Result<ParsedCertificate, String> {
    let mut certs = blocks.iter().filter(|b| b.is_certificate());
    let Some(first) = certs.next() else {
        return Err(no_certificate(blocks));
    };
    let leaf = X509::from_der(&first.der).map_err(|e| not_a_certificate(first, &e))?;
    let mut chain = Vec::new();
    for block in certs {
        chain.push(parse_chain(&block.der).map_err(|e| not_a_certificate(block, &e))?);
    }
    // A public key OpenSSL cannot decode makes every check that needs it fail (key match, the
    // host check's verification): say what is wrong instead of "hostname mismatch".
    if let Err(e) = leaf.public_key() {
        return Err(format!(
            "the certificate's public key cannot be decoded ({}); no client could use it",
            crate::text::untrusted_max(&openssl_reason(&e), 120)
        ));
    }
    if unix_time(leaf.not_before()).is_none() || unix_time(leaf.not_after()).is_none() {
        return Err(format!(
            "the certificate's validity dates cannot be read (notBefore {:?}, notAfter {:?} are not valid times)",
            crate::text::untrusted_max(&leaf.not_before().to_string(), 40),
            crate::text::untrusted_max(&leaf.not_after().to_string(), 40)
        ));
    }
    let facts = certificate_facts(&leaf, &first.der);
    Ok(ParsedCertificate { leaf, leaf_der: first.der.to_vec(), chain, facts })
}

/// The certificates of a chain file (which may hold none).
pub(crate) fn chain_from_blocks(
    blocks: &[PemBlock],
    parse_chain: &dyn Fn(&[u8]) -> Result<X509, ErrorStack>,
) -> Result<Vec<X509>, String> {
    blocks
        .iter()
        .filter(|b| b.is_certificate())
        .map(|b| parse_chain(&b.der).map_err(|e| not_a_certificate(b, &e)))
        .collect()
}

fn no_certificate(blocks: &[PemBlock]) -> String {
    if blocks.iter().any(PemBlock::is_private_key) {
        return "holds no certificate, only a private key".to_owned();
    }
    let mut labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
    labels.dedup();
    format!("holds no certificate (only: {})", labels.join(", "))
}

fn not_a_certificate(block: &PemBlock, e: &ErrorStack) -> String {
    format!("the certificate at line {} is not a valid X.509 certificate ({})", block.line, openssl_reason(e))
}

/// The most telling part of an OpenSSL error, e.g. "header too long".
pub(crate) fn openssl_reason(e: &ErrorStack) -> String {
    e.errors()
        .iter()
        .find_map(|e| e.reason())
        .map_or_else(|| "OpenSSL could not decode it".to_owned(), str::to_owned)
}

/// The facts the contract wants from a certificate. `der` is its DER encoding (for the
/// fingerprint). Never fails: a field OpenSSL cannot read gets an empty or zero value.
pub fn certificate_facts(cert: &X509Ref, der: &[u8]) -> Certificate {
    let subject = cert.subject_name();
    let issuer = cert.issuer_name();
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    if let Some(names) = cert.subject_alt_names() {
        for name in &names {
            if let Some(dns) = name.dnsname() {
                dns_names.push(dns.to_owned());
            } else if let Some(addr) = name.ipaddress().and_then(ip_from_bytes) {
                ip_addresses.push(addr.to_string());
            }
        }
    }
    let public_key = cert.public_key().ok();
    let self_signed = is_self_signed(cert, public_key.as_deref());
    Certificate {
        subject_cn: name_entry(subject, Nid::COMMONNAME),
        dns_names,
        ip_addresses,
        issuer_cn: name_entry(issuer, Nid::COMMONNAME),
        issuer_org: name_entry(issuer, Nid::ORGANIZATIONNAME),
        serial: serial_hex(cert),
        // The certificate's own DER: the PEM block may hold more (a TRUSTED CERTIFICATE's
        // auxiliary trust data, trailing bytes), which is not part of the certificate.
        sha256_fingerprint: hex::encode(openssl::sha::sha256(
            &cert.to_der().unwrap_or_else(|_| der.to_vec()),
        )),
        not_before: unix_time(cert.not_before()).unwrap_or(0),
        not_after: unix_time(cert.not_after()).unwrap_or(0),
        public_key: key_facts(public_key.as_deref()),
        signature_algorithm: signature_algorithm(cert),
        self_signed,
        chain_status: ChainStatus::NotChecked,
        path: PathStatus::NotChecked,
        chain: Default::default(),
        revocation: Revocation::NotChecked,
        renewal_window: None,
    }
}

/// The facts of a certificate above the leaf (`chain-element`), from `source`. Never fails: a
/// field OpenSSL cannot read gets an empty or zero value.
pub fn element_facts(cert: &X509Ref, source: ChainSource) -> ChainElement {
    use x509_parser::prelude::FromDer;
    let der = cert.to_der().unwrap_or_default();
    let is_ca = x509_parser::certificate::X509Certificate::from_der(&der)
        .ok()
        .and_then(|(_, parsed)| parsed.basic_constraints().ok().flatten().map(|bc| bc.value.ca))
        .unwrap_or(false);
    let public_key = cert.public_key().ok();
    ChainElement {
        subject: name_text(cert.subject_name()),
        issuer: name_text(cert.issuer_name()),
        serial: serial_hex(cert),
        sha256_fingerprint: hex::encode(openssl::sha::sha256(&der)),
        not_before: unix_time(cert.not_before()).unwrap_or(0),
        not_after: unix_time(cert.not_after()).unwrap_or(0),
        public_key: key_facts(public_key.as_deref()),
        signature_algorithm: signature_algorithm(cert),
        is_ca,
        self_signed: is_self_signed(cert, public_key.as_deref()),
        source,
    }
}

/// `CN=R11, O=Let's Encrypt, C=US`: the name's entries in RFC 4514 order (the certificate's last
/// first), short names, values as UTF-8 (`chain-element.subject`).
pub fn name_text(name: &X509NameRef) -> String {
    let mut parts = name_entries(name);
    parts.reverse();
    parts.join(", ")
}

/// The name's entries as `KEY=value` (short names, values as UTF-8), in the certificate's order.
pub fn name_entries(name: &X509NameRef) -> Vec<String> {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect()
}

/// The public key's facts; an unreadable key is `other`, 0 bits.
fn key_facts(key: Option<&PKeyRef<Public>>) -> PublicKey {
    key.map_or(PublicKey { kind: KeyKind::Other, bits: 0, curve: None }, public_key_facts)
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The first entry of the name with this NID, as UTF-8.
fn name_entry(name: &X509NameRef, nid: Nid) -> Option<String> {
    name.entries_by_nid(nid).next().and_then(|e| e.data().to_string().ok())
}

/// Subject equals issuer, and the signature verifies with the certificate's own key.
fn is_self_signed(cert: &X509Ref, key: Option<&PKeyRef<Public>>) -> bool {
    let same_name =
        cert.subject_name().try_cmp(cert.issuer_name()).is_ok_and(|o| o == std::cmp::Ordering::Equal);
    same_name && key.is_some_and(|k| cert.verify(k).unwrap_or(false))
}

/// Lowercase hexadecimal serial number, without leading zero bytes ("0" for zero).
fn serial_hex(cert: &X509Ref) -> String {
    match cert.serial_number().to_bn().and_then(|bn| bn.to_hex_str().map(|s| s.to_string())) {
        Ok(hex) => {
            let hex = hex.to_ascii_lowercase();
            let (sign, digits) = hex.strip_prefix('-').map_or(("", hex.as_str()), |d| ("-", d));
            let digits = digits.trim_start_matches('0');
            if digits.is_empty() { "0".to_owned() } else { format!("{sign}{digits}") }
        }
        Err(_) => String::new(),
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_time(time: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(time).ok()?;
    Some(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// The key's kind, size and curve.
pub fn public_key_facts<T: HasPublic>(key: &PKeyRef<T>) -> PublicKey {
    let id = key.id();
    let (kind, bits) = if id == Id::RSA || id == Id::RSA_PSS {
        (KeyKind::Rsa, key.bits())
    } else if id == Id::EC {
        (KeyKind::Ec, key.bits())
    } else if id == Id::ED25519 {
        (KeyKind::Ed25519, 256)
    } else if id == Id::ED448 {
        (KeyKind::Ed448, 456)
    } else if id == Id::DSA {
        (KeyKind::Dsa, key.bits())
    } else {
        (KeyKind::Other, key.bits())
    };
    let curve = if id == Id::EC {
        key.ec_key()
            .ok()
            .and_then(|ec| ec.group().curve_name())
            .and_then(|nid| nid.short_name().ok())
            .map(str::to_owned)
    } else {
        None
    };
    PublicKey { kind, bits, curve }
}

/// OpenSSL's long name of the signature algorithm, or the OID in dotted form.
fn signature_algorithm(cert: &X509Ref) -> String {
    let object = cert.signature_algorithm().object();
    match object.nid() {
        Nid::UNDEF => object.to_string(),
        nid => nid.long_name().map_or_else(|_| object.to_string(), str::to_owned),
    }
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;
    use crate::facts::testpki::{Spec, ec_key, issue};

    #[test]
    fn the_fingerprint_is_of_the_certificate_not_of_the_whole_block() {
        let cert = issue(&Spec::leaf("h.example", &["h.example"]), &ec_key(), None);
        let der = cert.to_der().expect("der");
        let expected = hex::encode(openssl::sha::sha256(&der));
        assert_eq!(certificate_facts(&cert, &der).sha256_fingerprint, expected);
        // Trailing bytes in the block (or a TRUSTED CERTIFICATE's aux data) change nothing.
        let mut block = der.clone();
        block.extend_from_slice(&[0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(certificate_facts(&cert, &block).sha256_fingerprint, expected);
    }

    #[test]
    fn a_public_key_that_cannot_be_decoded_is_malformed_not_a_hostname_mismatch() {
        let cert = issue(&Spec::leaf("h.example", &["h.example"]), &ec_key(), None);
        let mut der = cert.to_der().expect("der");
        // id-ecPublicKey (1.2.840.10045.2.1) becomes an algorithm nobody knows.
        let oid = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let at = der.windows(oid.len()).position(|w| w == oid).expect("ec oid");
        der[at + oid.len() - 1] = 0x09;
        let mut text = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        text.extend_from_slice(openssl::base64::encode_block(&der).as_bytes());
        text.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
        let Err(why) = parse_certificate(&text) else { panic!("read as a usable certificate") };
        assert!(why.contains("public key cannot be decoded"), "{why}");
    }

    #[test]
    fn an_unreadable_not_after_is_a_malformed_certificate_not_1970() {
        let cert = issue(&Spec::leaf("h.example", &["h.example"]), &ec_key(), None);
        let mut der = cert.to_der().expect("der");
        // The second UTCTime (notAfter, "YYMMDDHHMMSSZ"): month 99.
        let times: Vec<usize> =
            der.windows(2).enumerate().filter(|(_, w)| w == &[0x17, 0x0d]).map(|(i, _)| i).collect();
        let not_after = times[1] + 2;
        der[not_after + 2] = b'9';
        der[not_after + 3] = b'9';
        let pem = crate::facts::testpki::pem(&[]);
        let mut text = pem;
        text.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        text.extend_from_slice(openssl::base64::encode_block(&der).as_bytes());
        text.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
        match parse_certificate(&text) {
            Ok(parsed) => panic!("read as valid until {}", parsed.facts.not_after),
            Err(why) => assert!(why.contains("validity dates") || why.contains("not a valid"), "{why}"),
        }
    }
}
