//! The fast path for a leaf certificate: its facts read straight from the DER, without OpenSSL 3's
//! slow generic decoders (`d2i_X509` spends most of its ~80–145 µs decoding the public key through
//! the provider framework; see `shared/notes/performance.md`).
//!
//! The certificate is parsed with x509-parser (rusticata), and then checked against a narrow
//! profile — the plain shape of nearly every server certificate — inside which the facts, the
//! signature check and the hostname check are known to come out exactly as OpenSSL's:
//!
//! * strict DER throughout (x509-parser, plus our own walk over every element of the
//!   `TBSCertificate`), X.509 v3, a positive serial, no unique identifiers;
//! * the signature algorithm one of ECDSA/RSA PKCS#1 v1.5 with SHA-1/256/384/512 or Ed25519, in
//!   its canonical encoding, the same inside and outside the `TBSCertificate`;
//! * names made of single-valued RDNs whose values are UTF8String (valid UTF-8), PrintableString
//!   or IA5String (ASCII);
//! * validity times in the strict RFC 5280 forms (`YYMMDDHHMMSSZ`, `YYYYMMDDHHMMSSZ`);
//! * an EC P-256/P-384/P-521 key (named curve, uncompressed point on the curve) or an RSA key;
//! * extensions each at most once; basicConstraints not a CA; keyUsage (if any) allowing a TLS
//!   server; extendedKeyUsage (if any) naming serverAuth; subjectAltName made of DNS names
//!   (ASCII) and IP addresses only; authorityKeyIdentifier a key identifier only; CRL
//!   distribution points as plain URI lists; no name or policy constraints, proxy, Netscape or
//!   RFC 3779 extensions; critical only basicConstraints, keyUsage, extendedKeyUsage,
//!   subjectAltName and certificatePolicies (what OpenSSL understands).
//!
//! Anything else is `None` and the caller takes the full OpenSSL path, which stays the reference:
//! `fast_tests.rs` checks that both give the same facts for a set of tricky certificates.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::net::IpAddr;
use std::sync::OnceLock;

use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Rsa;
use openssl::sign::Verifier;
use openssl::x509::{X509, X509Name};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::der::{self, BIT_STRING, BOOLEAN, INTEGER, OCTET_STRING, OID, Reader, SEQUENCE};
use super::memo::Memo;
use super::model::{Certificate, ChainStatus, KeyKind, PublicKey, Revocation};

/// A signature algorithm the fast path verifies exactly as `X509_verify` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SigAlg {
    Ecdsa(Hash),
    Rsa(Hash),
    Ed25519,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

/// The canonical `AlgorithmIdentifier` encodings (ECDSA and Ed25519 without parameters, RSA with
/// NULL parameters).
const SIG_ALGS: [(&[u8], SigAlg); 9] = [
    (&[0x30, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01], SigAlg::Ecdsa(Hash::Sha1)),
    (&[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02], SigAlg::Ecdsa(Hash::Sha256)),
    (&[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03], SigAlg::Ecdsa(Hash::Sha384)),
    (&[0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04], SigAlg::Ecdsa(Hash::Sha512)),
    (
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00],
        SigAlg::Rsa(Hash::Sha1),
    ),
    (
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00],
        SigAlg::Rsa(Hash::Sha256),
    ),
    (
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00],
        SigAlg::Rsa(Hash::Sha384),
    ),
    (
        &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00],
        SigAlg::Rsa(Hash::Sha512),
    ),
    (&[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70], SigAlg::Ed25519),
];

impl SigAlg {
    fn from_der(raw: &[u8]) -> Option<SigAlg> {
        SIG_ALGS.iter().find(|(der, _)| *der == raw).map(|(_, alg)| *alg)
    }

    fn nid(self) -> Nid {
        match self {
            SigAlg::Ecdsa(Hash::Sha1) => Nid::ECDSA_WITH_SHA1,
            SigAlg::Ecdsa(Hash::Sha256) => Nid::ECDSA_WITH_SHA256,
            SigAlg::Ecdsa(Hash::Sha384) => Nid::ECDSA_WITH_SHA384,
            SigAlg::Ecdsa(Hash::Sha512) => Nid::ECDSA_WITH_SHA512,
            SigAlg::Rsa(Hash::Sha1) => Nid::SHA1WITHRSAENCRYPTION,
            SigAlg::Rsa(Hash::Sha256) => Nid::SHA256WITHRSAENCRYPTION,
            SigAlg::Rsa(Hash::Sha384) => Nid::SHA384WITHRSAENCRYPTION,
            SigAlg::Rsa(Hash::Sha512) => Nid::SHA512WITHRSAENCRYPTION,
            // EVP_PKEY_ED25519 is NID_ED25519.
            SigAlg::Ed25519 => Nid::from_raw(openssl::pkey::Id::ED25519.as_raw()),
        }
    }

    /// The kind of key that makes these signatures.
    pub(crate) fn key_kind(self) -> KeyKind {
        match self {
            SigAlg::Ecdsa(_) => KeyKind::Ec,
            SigAlg::Rsa(_) => KeyKind::Rsa,
            SigAlg::Ed25519 => KeyKind::Ed25519,
        }
    }

    /// Whether `signature` over `tbs` verifies with `key`, as `X509_verify` computes it once the
    /// algorithm identifiers are known to match (same encoding inside and outside the
    /// `TBSCertificate`): a key of another kind fails; otherwise `EVP_DigestVerify` with the
    /// algorithm's digest (none for Ed25519). For ECDSA with an EC key, what the default provider
    /// does inside `EVP_DigestVerify` is done directly: hash, then `ECDSA_verify` — decode the
    /// signature, require it to re-encode to the same DER (no trailing bytes, no BER), and
    /// `ECDSA_do_verify` — which saves `EVP_DigestVerifyInit`'s provider look-ups (~7 µs a call).
    pub(crate) fn verify(self, key: &VerifyKey, tbs: &[u8], signature: &[u8]) -> bool {
        if key.kind != self.key_kind() {
            return false;
        }
        if let (SigAlg::Ecdsa(h), Some(ec)) = (self, &key.ec) {
            let digest: Vec<u8> = match h {
                Hash::Sha1 => openssl::sha::sha1(tbs).to_vec(),
                Hash::Sha256 => openssl::sha::sha256(tbs).to_vec(),
                Hash::Sha384 => openssl::sha::sha384(tbs).to_vec(),
                Hash::Sha512 => openssl::sha::sha512(tbs).to_vec(),
            };
            let Ok(parsed) = EcdsaSig::from_der(signature) else { return false };
            if parsed.to_der().ok().as_deref() != Some(signature) {
                return false;
            }
            return parsed.verify(&digest, ec).unwrap_or(false);
        }
        let Some(pkey) = &key.pkey else { return false };
        let verifier = match self {
            SigAlg::Ecdsa(h) | SigAlg::Rsa(h) => Verifier::new(
                match h {
                    Hash::Sha1 => MessageDigest::sha1(),
                    Hash::Sha256 => MessageDigest::sha256(),
                    Hash::Sha384 => MessageDigest::sha384(),
                    Hash::Sha512 => MessageDigest::sha512(),
                },
                pkey,
            ),
            SigAlg::Ed25519 => Verifier::new_without_digest(pkey),
        };
        verifier.and_then(|mut v| v.verify_oneshot(signature, tbs)).unwrap_or(false)
    }
}

/// A public key to check signatures with, decoded once: its kind, and the key as OpenSSL holds
/// it (an EC key also as an `EC_KEY`, for the direct ECDSA check).
pub(crate) struct VerifyKey {
    kind: KeyKind,
    ec: Option<EcKey<Public>>,
    pkey: Option<PKey<Public>>,
    /// The SHA-256 of the key's DER (`SubjectPublicKeyInfo`): its name in the verification memo.
    pub id: [u8; 32],
}

impl VerifyKey {
    /// An issuer's key, from its decoded certificate. `None` for a kind the fast path does not
    /// verify with.
    pub(crate) fn from_pkey(pkey: PKey<Public>) -> Option<VerifyKey> {
        let id = pkey.id();
        let (kind, ec) = if id == Id::EC {
            (KeyKind::Ec, Some(pkey.ec_key().ok()?))
        } else if id == Id::RSA {
            (KeyKind::Rsa, None)
        } else if id == Id::ED25519 {
            (KeyKind::Ed25519, None)
        } else {
            return None;
        };
        let id = openssl::sha::sha256(&pkey.public_key_to_der().ok()?);
        Some(VerifyKey { kind, ec, pkey: Some(pkey), id })
    }
}

/// The elliptic curves of the fast path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_oid(oid: &[u8]) -> Option<Curve> {
        match oid {
            [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07] => Some(Curve::P256),
            [0x2b, 0x81, 0x04, 0x00, 0x22] => Some(Curve::P384),
            [0x2b, 0x81, 0x04, 0x00, 0x23] => Some(Curve::P521),
            _ => None,
        }
    }

    pub(crate) fn nid(self) -> Nid {
        match self {
            Curve::P256 => Nid::X9_62_PRIME256V1,
            Curve::P384 => Nid::SECP384R1,
            Curve::P521 => Nid::SECP521R1,
        }
    }

    /// The curve's group, built once per process.
    pub(crate) fn group(self) -> Option<&'static EcGroup> {
        static GROUPS: [OnceLock<Option<EcGroup>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
        let index = match self {
            Curve::P256 => 0,
            Curve::P384 => 1,
            Curve::P521 => 2,
        };
        GROUPS[index].get_or_init(|| EcGroup::from_curve_name(self.nid()).ok()).as_ref()
    }
}

/// The leaf's public key, as found in its `SubjectPublicKeyInfo` (already checked to decode).
pub(crate) enum LeafKey<'a> {
    /// A named-curve key: its point (given uncompressed, on the curve), decoded.
    Ec { curve: Curve, decoded: EcPoint },
    /// The modulus and public exponent (big-endian, no leading zero).
    Rsa { n: &'a [u8], e: &'a [u8] },
}

impl LeafKey<'_> {
    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            LeafKey::Ec { .. } => KeyKind::Ec,
            LeafKey::Rsa { .. } => KeyKind::Rsa,
        }
    }

    /// The key, to check the certificate's own signature with, built with the type-specific
    /// (fast) constructors; `id`: the SHA-256 of its `SubjectPublicKeyInfo`.
    fn to_verify_key(&self, id: [u8; 32]) -> Option<VerifyKey> {
        match self {
            LeafKey::Ec { curve, decoded, .. } => Some(VerifyKey {
                kind: KeyKind::Ec,
                ec: Some(EcKey::from_public_key(curve.group()?, decoded).ok()?),
                pkey: None,
                id,
            }),
            LeafKey::Rsa { n, e } => {
                let rsa =
                    Rsa::from_public_components(BigNum::from_slice(n).ok()?, BigNum::from_slice(e).ok()?)
                        .ok()?;
                Some(VerifyKey { kind: KeyKind::Rsa, ec: None, pkey: Some(PKey::from_rsa(rsa).ok()?), id })
            }
        }
    }

    fn facts(&self) -> Option<PublicKey> {
        Some(match self {
            LeafKey::Ec { curve, .. } => {
                let group = curve.group()?;
                PublicKey {
                    kind: KeyKind::Ec,
                    bits: group.order_bits(),
                    curve: Some(curve.nid().short_name().ok()?.to_owned()),
                }
            }
            LeafKey::Rsa { n, .. } => PublicKey {
                kind: KeyKind::Rsa,
                bits: u32::try_from(BigNum::from_slice(n).ok()?.num_bits()).ok()?,
                curve: None,
            },
        })
    }
}

/// The leaf as OpenSSL decodes it, decoded only if some step needs it (a key of another type, a
/// chain the verifier has not seen yet...).
pub(crate) struct LazyLeaf<'a> {
    der: &'a [u8],
    decoded: OnceCell<Option<X509>>,
}

impl<'a> LazyLeaf<'a> {
    pub(crate) fn new(der: &'a [u8]) -> LazyLeaf<'a> {
        LazyLeaf { der, decoded: OnceCell::new() }
    }

    /// The decoded certificate; `None` if OpenSSL cannot decode it (the caller then takes the
    /// full path, which reports why).
    pub(crate) fn get(&self) -> Option<&X509> {
        self.decoded.get_or_init(|| X509::from_der(self.der).ok()).as_ref()
    }
}

/// A leaf certificate in the fast path's profile, with everything the facts, the chain check,
/// the key match and the hostname check need.
pub(crate) struct FastLeaf<'a> {
    /// The SHA-256 of the whole certificate.
    pub digest: [u8; 32],
    /// The `TBSCertificate` (what the signature covers).
    pub tbs: &'a [u8],
    /// The signature algorithm's encoding (the same inside and outside the `TBSCertificate`).
    pub sig_alg_der: &'a [u8],
    pub sig_alg: SigAlg,
    /// The signature (the BIT STRING's bytes).
    pub signature: &'a [u8],
    /// The subject and issuer names, whole DER.
    pub subject: &'a [u8],
    pub issuer: &'a [u8],
    /// The authorityKeyIdentifier extension's value, if any.
    pub akid: Option<&'a [u8]>,
    /// Its key identifier, and the subjectKeyIdentifier.
    pub akid_keyid: Option<&'a [u8]>,
    pub skid: Option<&'a [u8]>,
    pub key: LeafKey<'a>,
    /// The `SubjectPublicKeyInfo`, whole DER.
    spki: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
    serial: String,
    subject_cn: Option<String>,
    issuer_cn: Option<String>,
    issuer_org: Option<String>,
    /// subjectAltName entries, in order.
    san: Vec<San<'a>>,
    /// Whether the certificate may name an OCSP responder, a CRL or an authority key (the network
    /// step needs the full certificate only then).
    pub may_ask_network: bool,
}

#[derive(Clone, Copy)]
enum San<'a> {
    Dns(&'a str),
    Ip(&'a [u8]),
}

mod ext {
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    pub const SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
    pub const AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
    pub const CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1d, 0x1f];
    pub const CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1d, 0x20];
    pub const AUTHORITY_INFO_ACCESS: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01];
    /// Extensions OpenSSL decodes or acts on that the fast path does not model: name
    /// constraints, policy mappings/constraints, inhibitAnyPolicy, freshest CRL, proxyCertInfo,
    /// the RFC 3779 IP address and AS number blocks, Netscape certificate type, issuer alt name.
    pub const UNMODELLED: [&[u8]; 10] = [
        &[0x55, 0x1d, 0x1e],
        &[0x55, 0x1d, 0x21],
        &[0x55, 0x1d, 0x24],
        &[0x55, 0x1d, 0x36],
        &[0x55, 0x1d, 0x2e],
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0e],
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07],
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x08],
        &[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01],
        &[0x55, 0x1d, 0x12],
    ];
    pub const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    pub const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    pub const ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
}

/// keyUsage bits (first octet of the BIT STRING) a TLS server may need (OpenSSL's `KU_TLS`
/// without key agreement, so that every OpenSSL 3 version accepts it).
const KU_DIGITAL_SIGNATURE: u8 = 0x80;
const KU_KEY_ENCIPHERMENT: u8 = 0x20;

impl<'a> FastLeaf<'a> {
    /// The leaf, if it is in the fast path's profile.
    pub(crate) fn parse(der: &'a [u8]) -> Option<FastLeaf<'a>> {
        // x509-parser must accept the whole certificate (strict DER, extension contents).
        let (rest, parsed) = X509Certificate::from_der(der).ok()?;
        if !rest.is_empty() {
            return None;
        }
        let mut outer = Reader::new(der::only(der, SEQUENCE)?);
        let (tbs_element, tbs) = outer.next_raw()?;
        let (sig_alg_element, sig_alg_der) = outer.next_raw()?;
        let signature = bit_string(outer.expect(BIT_STRING)?)?;
        if tbs_element.tag != SEQUENCE || sig_alg_element.tag != SEQUENCE || !outer.is_empty() {
            return None;
        }
        let sig_alg = SigAlg::from_der(sig_alg_der)?;
        if parsed.tbs_certificate.as_ref() != tbs {
            return None;
        }

        let mut t = Reader::new(tbs_element.contents);
        // Version: v3 only.
        if t.expect(0xa0)? != [INTEGER, 0x01, 0x02].as_slice() {
            return None;
        }
        let serial = der::positive_integer(t.expect(INTEGER)?)?;
        let (_, inner_sig_alg) = t.next_raw()?;
        if inner_sig_alg != sig_alg_der {
            return None;
        }
        let (issuer_element, issuer) = t.next_raw()?;
        let mut validity = Reader::new(t.expect(SEQUENCE)?);
        let not_before = time(validity.next()?)?;
        let not_after = time(validity.next()?)?;
        let (subject_element, subject) = t.next_raw()?;
        let (spki_element, spki) = t.next_raw()?;
        if spki_element.tag != SEQUENCE {
            return None;
        }
        let key = public_key(spki_element.contents)?;
        let extensions = match t.next() {
            None => Vec::new(),
            Some(e) if e.tag == 0xa3 => extension_list(der::only(e.contents, SEQUENCE)?)?,
            Some(_) => return None,
        };
        if !validity.is_empty()
            || !t.is_empty()
            || issuer_element.tag != SEQUENCE
            || subject_element.tag != SEQUENCE
        {
            return None;
        }
        let subject_names = name_attributes(subject_element.contents)?;
        let issuer_names = name_attributes(issuer_element.contents)?;
        let first = |attrs: &[(&[u8], &'a str)], oid: &[u8]| {
            attrs.iter().find(|(o, _)| *o == oid).map(|(_, v)| (*v).to_owned())
        };

        let mut leaf = FastLeaf {
            digest: openssl::sha::sha256(der),
            tbs,
            sig_alg_der,
            sig_alg,
            signature,
            subject,
            issuer,
            akid: None,
            akid_keyid: None,
            skid: None,
            key,
            spki,
            not_before,
            not_after,
            serial: serial_hex(serial),
            subject_cn: first(&subject_names, ext::COMMON_NAME),
            issuer_cn: first(&issuer_names, ext::COMMON_NAME),
            issuer_org: first(&issuer_names, ext::ORGANIZATION),
            san: Vec::new(),
            may_ask_network: false,
        };
        // The same extensions as x509-parser saw, each parsed without error.
        let parsed_extensions = parsed.tbs_certificate.extensions();
        if parsed_extensions.len() != extensions.len() {
            return None;
        }
        for (mine, theirs) in extensions.iter().zip(parsed_extensions) {
            if theirs.value != mine.value || theirs.critical != mine.critical {
                return None;
            }
            if matches!(theirs.parsed_extension(), ParsedExtension::ParseError { .. }) {
                return None;
            }
            leaf.extension(mine, theirs.parsed_extension())?;
        }
        // x509-parser's reading of the validity must agree with ours.
        let validity = parsed.validity();
        if validity.not_before.timestamp() != not_before || validity.not_after.timestamp() != not_after {
            return None;
        }
        Some(leaf)
    }

    /// Checks one extension against the profile and takes what the facts need from it.
    fn extension(&mut self, e: &Extension<'a>, parsed: &ParsedExtension<'a>) -> Option<()> {
        if ext::UNMODELLED.contains(&e.oid) {
            return None;
        }
        let understood_if_critical = [
            ext::BASIC_CONSTRAINTS,
            ext::KEY_USAGE,
            ext::EXT_KEY_USAGE,
            ext::SUBJECT_ALT_NAME,
            ext::CERTIFICATE_POLICIES,
        ];
        if e.critical && !understood_if_critical.contains(&e.oid) {
            return None;
        }
        match e.oid {
            ext::BASIC_CONSTRAINTS => {
                // Not a CA, no path length: an empty SEQUENCE.
                if !der::only(e.value, SEQUENCE)?.is_empty() {
                    return None;
                }
                match parsed {
                    ParsedExtension::BasicConstraints(bc) if !bc.ca && bc.path_len_constraint.is_none() => {}
                    _ => return None,
                }
            }
            ext::KEY_USAGE => {
                let bits = bit_string_any(der::only(e.value, BIT_STRING)?)?;
                let first = *bits.first()?;
                if first & (KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT) == 0 {
                    return None;
                }
                if !matches!(parsed, ParsedExtension::KeyUsage(_)) {
                    return None;
                }
            }
            ext::EXT_KEY_USAGE => {
                let mut list = Reader::new(der::only(e.value, SEQUENCE)?);
                let mut server_auth = false;
                while !list.is_empty() {
                    let oid = list.expect(OID)?;
                    if !der::oid_is_valid(oid) {
                        return None;
                    }
                    server_auth |= oid == ext::SERVER_AUTH;
                }
                match parsed {
                    ParsedExtension::ExtendedKeyUsage(eku) if server_auth && eku.server_auth => {}
                    _ => return None,
                }
            }
            ext::SUBJECT_ALT_NAME => {
                let mut list = Reader::new(der::only(e.value, SEQUENCE)?);
                if list.is_empty() {
                    return None;
                }
                while let Some(name) = list.next() {
                    match name.tag {
                        // dNSName [2] IA5String
                        0x82 if name.contents.is_ascii() => {
                            self.san.push(San::Dns(std::str::from_utf8(name.contents).ok()?));
                        }
                        // iPAddress [7] OCTET STRING
                        0x87 => self.san.push(San::Ip(name.contents)),
                        _ => return None,
                    }
                }
                let ParsedExtension::SubjectAlternativeName(san) = parsed else { return None };
                if san.general_names.len() != self.san.len() {
                    return None;
                }
                for (mine, theirs) in self.san.iter().zip(&san.general_names) {
                    match (mine, theirs) {
                        (San::Dns(a), GeneralName::DNSName(b)) if a == b => {}
                        (San::Ip(a), GeneralName::IPAddress(b)) if a == b => {}
                        _ => return None,
                    }
                }
            }
            ext::SUBJECT_KEY_ID => {
                self.skid = Some(der::only(e.value, OCTET_STRING)?);
                if !matches!(parsed, ParsedExtension::SubjectKeyIdentifier(_)) {
                    return None;
                }
            }
            ext::AUTHORITY_KEY_ID => {
                // keyIdentifier [0] only.
                let keyid = der::only(der::only(e.value, SEQUENCE)?, 0x80)?;
                match parsed {
                    ParsedExtension::AuthorityKeyIdentifier(akid)
                        if akid.authority_cert_issuer.is_none() && akid.authority_cert_serial.is_none() => {}
                    _ => return None,
                }
                self.akid = Some(e.value);
                self.akid_keyid = Some(keyid);
                self.may_ask_network = true;
            }
            ext::CRL_DISTRIBUTION_POINTS => {
                crl_distribution_points(e.value)?;
                if !matches!(parsed, ParsedExtension::CRLDistributionPoints(_)) {
                    return None;
                }
                self.may_ask_network = true;
            }
            ext::AUTHORITY_INFO_ACCESS => self.may_ask_network = true,
            // certificatePolicies and other non-critical extensions: OpenSSL does not read them
            // when verifying without policy checks.
            _ => {}
        }
        Some(())
    }

    /// The facts about the certificate; `self_signed` is computed by the caller
    /// ([`FastLeaf::self_signed`]).
    pub(crate) fn facts(&self, self_signed: bool) -> Option<Certificate> {
        let mut dns_names = Vec::new();
        let mut ip_addresses = Vec::new();
        for name in &self.san {
            match name {
                San::Dns(dns) => dns_names.push((*dns).to_owned()),
                San::Ip(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ip_addresses.push(ip.to_string());
                    }
                }
            }
        }
        Some(Certificate {
            subject_cn: self.subject_cn.clone(),
            dns_names,
            ip_addresses,
            issuer_cn: self.issuer_cn.clone(),
            issuer_org: self.issuer_org.clone(),
            serial: self.serial.clone(),
            sha256_fingerprint: hex::encode(self.digest),
            not_before: self.not_before,
            not_after: self.not_after,
            public_key: self.key.facts()?,
            signature_algorithm: self.sig_alg.nid().long_name().ok()?.to_owned(),
            self_signed,
            chain_status: ChainStatus::NotChecked,
            path: super::model::PathStatus::NotChecked,
            chain: Default::default(),
            revocation: Revocation::NotChecked,
            renewal_window: None,
        })
    }

    /// Whether the subject equals the issuer as OpenSSL compares names (`X509_NAME_cmp`:
    /// canonical forms, case and spacing folded). `None` if OpenSSL cannot decode a name.
    pub(crate) fn self_issued(&self) -> Option<bool> {
        if self.subject == self.issuer {
            return Some(true);
        }
        if !names_may_match(self.subject, self.issuer) {
            return Some(false);
        }
        let subject = X509Name::from_der(self.subject).ok()?;
        let issuer = X509Name::from_der(self.issuer).ok()?;
        Some(subject.try_cmp(&issuer).ok()? == Ordering::Equal)
    }

    /// Whether OpenSSL would find the certificate self-signed in the facts' sense: subject equals
    /// issuer and the signature verifies with its own key (unless `memo` knows it does).
    pub(crate) fn self_signed(&self, memo: &Memo) -> Option<bool> {
        if !self.self_issued()? {
            return Some(false);
        }
        let id = openssl::sha::sha256(self.spki);
        let mut undecodable = false;
        let signed = memo.signature(&self.digest, &id, || match self.key.to_verify_key(id) {
            Some(key) => self.verify_with(&key),
            None => {
                undecodable = true;
                false
            }
        });
        (!undecodable).then_some(signed)
    }

    /// Whether the signature verifies with `key`, as `X509_verify` decides, unless `memo` knows
    /// it does.
    pub(crate) fn verify_with_memo(&self, key: &VerifyKey, memo: &Memo) -> bool {
        memo.signature(&self.digest, &key.id, || self.verify_with(key))
    }

    /// OpenSSL's `EXFLAG_SS` for a self-issued certificate: its own authority key identifier
    /// (if any) names its own subject key identifier (if any), and the signature algorithm fits
    /// its key type. The signature itself is not checked.
    pub(crate) fn marked_self_signed(&self) -> bool {
        let akid_ok = match (self.akid_keyid, self.skid) {
            (Some(keyid), Some(skid)) => keyid == skid,
            _ => true,
        };
        akid_ok && self.sig_alg.key_kind() == self.key.kind()
    }

    /// Whether the signature verifies with `key`, as `X509_verify` decides.
    pub(crate) fn verify_with(&self, key: &VerifyKey) -> bool {
        self.sig_alg.verify(key, self.tbs, self.signature)
    }

    /// Whether the certificate covers `hostname` as [`super::verify::covers_hostname`] decides
    /// (OpenSSL's `X509_check_host` with `NO_PARTIAL_WILDCARDS | NEVER_CHECK_SUBJECT`, or
    /// `X509_check_ip`). `None` for a name the port does not handle (a leading dot, a NUL).
    pub(crate) fn covers_hostname(&self, hostname: &str) -> Option<bool> {
        let name = hostname.strip_suffix('.').unwrap_or(hostname);
        if name.is_empty() {
            return Some(false);
        }
        if name.starts_with('.') || name.contains('\0') {
            return None;
        }
        Some(match name.parse::<IpAddr>() {
            Ok(ip) => {
                let bytes: Vec<u8> = match ip {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                self.san.iter().any(|n| matches!(n, San::Ip(b) if !b.is_empty() && *b == bytes.as_slice()))
            }
            Err(_) => self.san.iter().any(|n| match n {
                San::Dns(pattern) => super::hostmatch::matches(pattern.as_bytes(), name.as_bytes()),
                San::Ip(_) => false,
            }),
        })
    }
}

/// One extension: its OID's contents, critical flag and value (the OCTET STRING's contents).
struct Extension<'a> {
    oid: &'a [u8],
    critical: bool,
    value: &'a [u8],
}

/// `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension`, each OID at most once.
fn extension_list(contents: &[u8]) -> Option<Vec<Extension<'_>>> {
    let mut r = Reader::new(contents);
    let mut list: Vec<Extension<'_>> = Vec::new();
    while !r.is_empty() {
        let mut e = Reader::new(r.expect(SEQUENCE)?);
        let oid = e.expect(OID)?;
        if !der::oid_is_valid(oid) || list.iter().any(|x| x.oid == oid) {
            return None;
        }
        // DER: `critical` is present only when TRUE.
        let critical = match e.optional(BOOLEAN) {
            Some([0xff]) => true,
            Some(_) => return None,
            None => false,
        };
        let value = e.expect(OCTET_STRING)?;
        if !e.is_empty() {
            return None;
        }
        list.push(Extension { oid, critical, value });
    }
    (!list.is_empty()).then_some(list)
}

/// `CRLDistributionPoints`: each point only a `fullName` list of URIs.
fn crl_distribution_points(value: &[u8]) -> Option<()> {
    let mut points = Reader::new(der::only(value, SEQUENCE)?);
    if points.is_empty() {
        return None;
    }
    while !points.is_empty() {
        let point = der::only(points.expect(SEQUENCE)?, 0xa0)?;
        let mut names = Reader::new(der::only(point, 0xa0)?);
        if names.is_empty() {
            return None;
        }
        while !names.is_empty() {
            if !names.expect(0x86)?.is_ascii() {
                return None;
            }
        }
    }
    Some(())
}

/// The attributes of a Name (`SEQUENCE OF SET OF AttributeTypeAndValue`), each RDN with exactly
/// one attribute, each value a UTF8String (valid UTF-8), PrintableString or IA5String (ASCII):
/// (OID contents, value).
fn name_attributes(contents: &[u8]) -> Option<Vec<(&[u8], &str)>> {
    let mut rdns = Reader::new(contents);
    let mut attrs = Vec::new();
    while !rdns.is_empty() {
        let mut atv = Reader::new(der::only(rdns.expect(der::SET)?, SEQUENCE)?);
        let oid = atv.expect(OID)?;
        let value = atv.next()?;
        if !der::oid_is_valid(oid) || !atv.is_empty() {
            return None;
        }
        let text = match value.tag {
            der::UTF8_STRING => std::str::from_utf8(value.contents).ok()?,
            der::PRINTABLE_STRING | der::IA5_STRING if value.contents.is_ascii() => {
                std::str::from_utf8(value.contents).ok()?
            }
            _ => return None,
        };
        attrs.push((oid, text));
    }
    Some(attrs)
}

/// Whether two names (whole DER, in the profile) might be equal under OpenSSL's canonical
/// comparison, which folds ASCII case and runs of whitespace. `false` means they certainly
/// differ: the same attribute types in the same order, with values equal once all ASCII
/// whitespace is removed and ASCII letters lowercased, is necessary for equality.
fn names_may_match(a: &[u8], b: &[u8]) -> bool {
    let (Some(a), Some(b)) =
        (der::only(a, SEQUENCE).and_then(name_attributes), der::only(b, SEQUENCE).and_then(name_attributes))
    else {
        return true;
    };
    a.len() == b.len() && a.iter().zip(&b).all(|((oa, va), (ob, vb))| oa == ob && folded(va).eq(folded(vb)))
}

/// A name value with ASCII whitespace removed and ASCII letters lowercased.
fn folded(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes()
        .filter(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        .map(|c| c.to_ascii_lowercase())
}

/// The contents of a BIT STRING with no unused bits.
fn bit_string(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((0, rest)) => Some(rest),
        _ => None,
    }
}

/// The bytes of a BIT STRING (at most 7 unused bits, as OpenSSL requires).
fn bit_string_any(contents: &[u8]) -> Option<&[u8]> {
    match contents.split_first() {
        Some((&unused, rest)) if unused <= 7 && (unused == 0 || !rest.is_empty()) => Some(rest),
        _ => None,
    }
}

/// `SubjectPublicKeyInfo` contents: an EC key on a supported named curve (uncompressed point on
/// the curve) or an RSA key with a sane modulus and exponent.
fn public_key(contents: &[u8]) -> Option<LeafKey<'_>> {
    let mut r = Reader::new(contents);
    let mut algorithm = Reader::new(r.expect(SEQUENCE)?);
    let key = bit_string(r.expect(BIT_STRING)?)?;
    if !r.is_empty() {
        return None;
    }
    match algorithm.expect(OID)? {
        ext::EC_PUBLIC_KEY => {
            let curve = Curve::from_oid(algorithm.expect(OID)?)?;
            if !algorithm.is_empty() {
                return None;
            }
            let group = curve.group()?;
            let field = usize::try_from(group.degree().div_ceil(8)).ok()?;
            if key.len() != 1 + 2 * field || key[0] != 0x04 {
                return None;
            }
            let mut ctx = BigNumContext::new().ok()?;
            let decoded = EcPoint::from_bytes(group, key, &mut ctx).ok()?;
            Some(LeafKey::Ec { curve, decoded })
        }
        ext::RSA_ENCRYPTION => {
            if !algorithm.expect(der::NULL)?.is_empty() || !algorithm.is_empty() {
                return None;
            }
            let mut rsa = Reader::new(der::only(key, SEQUENCE)?);
            let n = der::positive_integer(rsa.expect(INTEGER)?)?;
            let e = der::positive_integer(rsa.expect(INTEGER)?)?;
            if !rsa.is_empty() {
                return None;
            }
            let n_bn = BigNum::from_slice(n).ok()?;
            let e_bn = BigNum::from_slice(e).ok()?;
            let sane = n_bn.num_bits() >= 512
                && n_bn.is_bit_set(0)
                && e_bn.is_bit_set(0)
                && e_bn.num_bits() >= 2
                && e_bn < n_bn;
            // A leading zero octet keeps the INTEGER positive; the key's bytes start after it.
            sane.then(|| LeafKey::Rsa { n: strip_zero(n), e: strip_zero(e) })
        }
        _ => None,
    }
}

/// A positive INTEGER's magnitude: without the leading zero octet that keeps it positive.
fn strip_zero(bytes: &[u8]) -> &[u8] {
    match bytes {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => bytes,
    }
}

/// A `Time` in the strict RFC 5280 forms, as seconds since the Unix epoch.
fn time(e: der::Element<'_>) -> Option<i64> {
    let text = e.contents;
    let (year, rest) = match (e.tag, text.len()) {
        (der::UTC_TIME, 13) => {
            let yy = digits(&text[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &text[2..])
        }
        (der::GENERALIZED_TIME, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest.len() != 11 || rest[10] != b'Z' {
        return None;
    }
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1900..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > month_days[usize::try_from(month - 1).ok()?]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

fn digits(text: &[u8]) -> Option<i64> {
    text.iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Lowercase hexadecimal of a positive INTEGER's contents, without leading zeros ("0" for zero),
/// as `certificate::serial_hex` prints OpenSSL's `BN_bn2hex`.
fn serial_hex(contents: &[u8]) -> String {
    let hex = hex::encode(contents);
    let digits = hex.trim_start_matches('0');
    if digits.is_empty() { "0".to_owned() } else { digits.to_owned() }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times() {
        let utc = |s: &str| time(der::Element { tag: der::UTC_TIME, contents: s.as_bytes() });
        let generalized = |s: &str| time(der::Element { tag: der::GENERALIZED_TIME, contents: s.as_bytes() });
        assert_eq!(utc("700101000000Z"), Some(0));
        assert_eq!(utc("330518033320Z"), Some(2_000_000_000));
        assert_eq!(utc("491231235959Z"), Some(2_524_607_999));
        assert_eq!(utc("500101000000Z"), Some(-631_152_000));
        assert_eq!(generalized("20000229120000Z"), Some(951_825_600));
        assert_eq!(generalized("99991231235959Z"), Some(253_402_300_799));
        assert_eq!(generalized("21000229000000Z"), None, "2100 is not a leap year");
        assert_eq!(utc("7001010000Z"), None, "no seconds");
        assert_eq!(utc("700101000000+0100"), None);
        assert_eq!(utc("700132000000Z"), None);
        assert_eq!(utc("701301000000Z"), None);
        assert_eq!(utc("700101240000Z"), None);
        assert_eq!(utc("700101000060Z"), None);
        assert_eq!(generalized("2000022912000Z"), None);
    }

    #[test]
    fn serials() {
        assert_eq!(serial_hex(&[0]), "0");
        assert_eq!(serial_hex(&[0x00, 0xab]), "ab");
        assert_eq!(serial_hex(&[0x0a, 0xbc]), "abc");
        assert_eq!(der::positive_integer(&[0x80]), None);
        assert_eq!(der::positive_integer(&[0x00, 0x01]), None);
        assert_eq!(der::positive_integer(&[0x00, 0x80]), Some(&[0x00, 0x80][..]));
        assert_eq!(der::positive_integer(&[]), None);
    }

    #[test]
    fn oids() {
        assert!(der::oid_is_valid(&[0x55, 0x1d, 0x13]));
        assert!(der::oid_is_valid(&[0x2a, 0x86, 0x48]));
        assert!(!der::oid_is_valid(&[0x2a, 0x80, 0x01]));
        assert!(!der::oid_is_valid(&[0x80, 0x01]));
        assert!(!der::oid_is_valid(&[0x2a, 0x86]));
        assert!(!der::oid_is_valid(&[]));
    }
}
