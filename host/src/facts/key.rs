//! Private keys: find the key block, compare its public half with the certificate's.
//!
//! Speed: OpenSSL 3's generic key decoders (`d2i_AutoPrivateKey`, PKCS#8) cost ~320 µs per key
//! here, while the type-specific legacy ones cost 1–10 µs. So RSA and EC keys (PKCS#8
//! `PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`) are unwrapped with a strict DER reader
//! and matched directly: RSA by modulus and exponent (after `d2i_RSAPrivateKey`), EC by
//! deriving the public point from the private scalar (stricter than comparing the public key
//! stored beside it). Anything else, or anything unexpected, goes through the generic decoder,
//! which also words the errors.
//!
//! No message ever contains key material: only paths, line numbers and OpenSSL reason strings.

use openssl::asn1::Asn1Object;
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroupRef, EcPoint, EcPointRef};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509Ref;

use super::certificate::openssl_reason;
use super::der::{self, BIT_STRING, INTEGER, OCTET_STRING, OID, Reader, SEQUENCE};
use super::fast::{LazyLeaf, LeafKey};
use super::model::KeyStatus;
use super::pem::PemBlock;

const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
/// `[0]` (constructed, context-specific): `ECPrivateKey.parameters`.
const CONTEXT_0: u8 = 0xa0;
/// `[1]`: `ECPrivateKey.publicKey`.
const CONTEXT_1: u8 = 0xa1;

/// Compares the first private key among `blocks` with `cert`. The error says why there is no
/// usable key (the caller adds the path).
pub(crate) fn match_key_blocks(blocks: &[PemBlock], cert: &X509Ref) -> Result<KeyStatus, String> {
    let block = key_block(blocks)?;
    if let Some(status) = fast_match(&block.label, &block.der, cert) {
        return Ok(status);
    }
    let key = decode(block)?;
    Ok(key_matches(cert, &key))
}

/// [`match_key_blocks`] for a leaf read by the fast path: the same answer, from the public key
/// found in the certificate's DER. Falls back to [`match_key_blocks`] with the decoded certificate
/// when the fast match does not apply; `None` only if that certificate cannot be decoded.
pub(crate) fn match_key_blocks_fast(
    blocks: &[PemBlock],
    leaf_key: &LeafKey<'_>,
    leaf: &LazyLeaf<'_>,
) -> Option<Result<KeyStatus, String>> {
    let block = match key_block(blocks) {
        Ok(block) => block,
        Err(e) => return Some(Err(e)),
    };
    if let Some(status) = fast_match_raw(&block.label, &block.der, leaf_key) {
        return Some(Ok(status));
    }
    Some(match_key_blocks(blocks, leaf.get()?))
}

/// Decodes the first private key in PEM text (e.g. a key the tool just wrote). The error says
/// what is wrong, without the path and without key material.
pub fn parse_private_key(pem: &[u8]) -> Result<PKey<Private>, String> {
    let blocks = super::pem::scan(pem).map_err(|e| e.to_string())?;
    decode(key_block(&blocks)?)
}

fn key_block(blocks: &[PemBlock]) -> Result<&PemBlock, String> {
    let Some(block) = blocks.iter().find(|b| b.is_private_key()) else {
        return Err(if blocks.iter().any(PemBlock::is_certificate) {
            "holds no private key, only certificates".to_owned()
        } else {
            "holds no PEM private key".to_owned()
        });
    };
    if block.encrypted || block.label == "ENCRYPTED PRIVATE KEY" {
        return Err(format!(
            "the private key at line {} is encrypted with a passphrase; services need an unencrypted key",
            block.line
        ));
    }
    if block.label == "OPENSSH PRIVATE KEY" {
        return Err(format!("the key at line {} is an OpenSSH key, not a TLS private key", block.line));
    }
    Ok(block)
}

fn decode(block: &PemBlock) -> Result<PKey<Private>, String> {
    PKey::private_key_from_der(&block.der).map_err(|e| {
        format!("the private key at line {} cannot be decoded ({})", block.line, openssl_reason(&e))
    })
}

/// Whether `key` is the private half of `cert`'s public key.
pub fn key_matches(cert: &X509Ref, key: &PKey<Private>) -> KeyStatus {
    match cert.public_key() {
        Ok(public) if public.public_eq(key) => KeyStatus::Matches,
        _ => KeyStatus::Mismatch,
    }
}

/// An RSA or EC private key, unwrapped but not decoded.
enum RawKey<'a> {
    /// `RSAPrivateKey` DER.
    Rsa(&'a [u8]),
    /// `ECPrivateKey.privateKey` and the curve's OID (dotted), if the key names it.
    Ec { scalar: &'a [u8], curve: Option<String> },
}

/// The match by the fast path, or `None` to use the generic decoder.
fn fast_match(label: &str, der: &[u8], cert: &X509Ref) -> Option<KeyStatus> {
    let raw = match label {
        "RSA PRIVATE KEY" => RawKey::Rsa(der),
        "EC PRIVATE KEY" => ec_private_key(der, None)?,
        "PRIVATE KEY" => pkcs8(der)?,
        _ => return None,
    };
    let public = cert.public_key().ok()?;
    match raw {
        RawKey::Rsa(der) => rsa_match(der, &public),
        RawKey::Ec { scalar, curve } => ec_match(scalar, curve.as_deref(), &public),
    }
}

/// [`fast_match`] against a public key read from the certificate's DER (no decoded certificate).
fn fast_match_raw(label: &str, der: &[u8], leaf_key: &LeafKey<'_>) -> Option<KeyStatus> {
    let raw = match label {
        "RSA PRIVATE KEY" => RawKey::Rsa(der),
        "EC PRIVATE KEY" => ec_private_key(der, None)?,
        "PRIVATE KEY" => pkcs8(der)?,
        _ => return None,
    };
    match (raw, leaf_key) {
        (RawKey::Rsa(der), LeafKey::Rsa { n, e }) => {
            let (n, e) = (BigNum::from_slice(n).ok()?, BigNum::from_slice(e).ok()?);
            rsa_match_parts(der, &n, &e)
        }
        (RawKey::Ec { scalar, curve }, LeafKey::Ec { curve: cert_curve, decoded, .. }) => {
            ec_match_point(scalar, curve.as_deref(), cert_curve.group()?, decoded)
        }
        // A key of another type: the generic path decides (and words any decoding error).
        _ => None,
    }
}

/// `PrivateKeyInfo` / `OneAsymmetricKey` (RFC 5958) for RSA and EC.
fn pkcs8(der: &[u8]) -> Option<RawKey<'_>> {
    let mut r = Reader::new(der::only(der, SEQUENCE)?);
    let version = r.expect(INTEGER)?;
    if version != [0] && version != [1] {
        return None;
    }
    let mut algorithm = Reader::new(r.expect(SEQUENCE)?);
    let oid = der::oid_text(algorithm.expect(OID)?)?;
    let private = r.expect(OCTET_STRING)?;
    match oid.as_str() {
        RSA_ENCRYPTION => {
            // Parameters: NULL or absent.
            match algorithm.next() {
                None => {}
                Some(e) if e.tag == 0x05 && e.contents.is_empty() => {}
                Some(_) => return None,
            }
            algorithm.is_empty().then_some(RawKey::Rsa(private))
        }
        EC_PUBLIC_KEY => {
            let curve = der::oid_text(algorithm.expect(OID)?)?;
            if !algorithm.is_empty() {
                return None;
            }
            ec_private_key(private, Some(curve))
        }
        _ => None,
    }
}

/// `ECPrivateKey` (RFC 5915), with the curve from the PKCS#8 wrapper if there was one.
fn ec_private_key(der: &[u8], outer_curve: Option<String>) -> Option<RawKey<'_>> {
    let mut r = Reader::new(der::only(der, SEQUENCE)?);
    if r.expect(INTEGER)? != [1] {
        return None;
    }
    let scalar = r.expect(OCTET_STRING)?;
    let inner_curve = match r.optional(CONTEXT_0) {
        Some(params) => Some(der::oid_text(der::only(params, OID)?)?),
        None => None,
    };
    if let Some(public) = r.optional(CONTEXT_1) {
        der::only(public, BIT_STRING)?;
    }
    if !r.is_empty() {
        return None;
    }
    let curve = match (outer_curve, inner_curve) {
        (Some(a), Some(b)) if a != b => return None,
        (a, b) => a.or(b),
    };
    Some(RawKey::Ec { scalar, curve })
}

fn rsa_match(der: &[u8], public: &PKey<Public>) -> Option<KeyStatus> {
    let cert_rsa = public.rsa().ok()?;
    rsa_match_parts(der, cert_rsa.n(), cert_rsa.e())
}

/// Compares an `RSAPrivateKey` with the certificate's modulus and exponent.
fn rsa_match_parts(der: &[u8], n: &BigNumRef, e: &BigNumRef) -> Option<KeyStatus> {
    let key = Rsa::private_key_from_der(der).ok()?;
    Some(if n == key.n() && e == key.e() { KeyStatus::Matches } else { KeyStatus::Mismatch })
}

fn ec_match(scalar: &[u8], curve: Option<&str>, public: &PKey<Public>) -> Option<KeyStatus> {
    let cert_ec = public.ec_key().ok()?;
    ec_match_point(scalar, curve, cert_ec.group(), cert_ec.public_key())
}

/// Derives the public point from the private scalar and compares it with the certificate's.
fn ec_match_point(
    scalar: &[u8],
    curve: Option<&str>,
    group: &EcGroupRef,
    cert_point: &EcPointRef,
) -> Option<KeyStatus> {
    let cert_curve = group.curve_name()?;
    // A key on another curve is left to the generic path (which also checks it decodes). The
    // usual curves are recognised by their OID's text without asking OpenSSL.
    if let Some(curve) = curve
        && known_curve(curve).map_or_else(|| Asn1Object::from_str(curve).ok().map(|o| o.nid()), Some)?
            != cert_curve
    {
        return None;
    }
    let field_bytes = usize::try_from(group.degree().div_ceil(8)).ok()?;
    if scalar.is_empty() || scalar.len() > field_bytes {
        return None;
    }
    let mut ctx = BigNumContext::new().ok()?;
    let mut order = BigNum::new().ok()?;
    group.order(&mut order, &mut ctx).ok()?;
    let mut k = BigNum::from_slice(scalar).ok()?;
    let result = (|| {
        if k.num_bits() == 0 || k >= order {
            return None;
        }
        let mut point = EcPoint::new(group).ok()?;
        point.mul_generator2(group, &k, &mut ctx).ok()?;
        point.eq(group, cert_point, &mut ctx).ok()
    })();
    k.clear();
    Some(if result? { KeyStatus::Matches } else { KeyStatus::Mismatch })
}

/// The NID of P-256, P-384 or P-521 from its OID in dotted form.
fn known_curve(oid: &str) -> Option<Nid> {
    match oid {
        "1.2.840.10045.3.1.7" => Some(Nid::X9_62_PRIME256V1),
        "1.3.132.0.34" => Some(Nid::SECP384R1),
        "1.3.132.0.35" => Some(Nid::SECP521R1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::facts::pem;
    use crate::facts::testpki::{self, Spec};
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;

    fn ec(nid: Nid) -> PKey<Private> {
        PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap()
    }

    /// Every PEM form of a key: PKCS#8 and the traditional one.
    fn forms(key: &PKey<Private>) -> Vec<Vec<u8>> {
        let mut forms = vec![key.private_key_to_pem_pkcs8().unwrap()];
        if let Ok(rsa) = key.rsa() {
            forms.push(rsa.private_key_to_pem().unwrap());
        }
        if let Ok(ec) = key.ec_key() {
            forms.push(ec.private_key_to_pem().unwrap());
        }
        forms
    }

    #[test]
    fn the_fast_path_agrees_with_openssl() {
        let keys =
            [ec(Nid::X9_62_PRIME256V1), ec(Nid::SECP384R1), ec(Nid::SECP521R1), testpki::rsa_key(2048)];
        for cert_key in &keys {
            let mut spec = Spec::leaf("h.example.com", &["h.example.com"]);
            spec.digest = Some(openssl::hash::MessageDigest::sha256());
            let cert = testpki::issue(&spec, cert_key, None);
            for key in &keys {
                for form in forms(key) {
                    let blocks = pem::scan(&form).unwrap();
                    let generic = key_matches(&cert, &decode(&blocks[0]).unwrap());
                    let same = std::ptr::eq(cert_key, key);
                    assert_eq!(generic == KeyStatus::Matches, same);
                    assert_eq!(match_key_blocks(&blocks, &cert).unwrap(), generic, "{}", blocks[0].label);
                    // Same-type keys take the fast path.
                    let fast = fast_match(&blocks[0].label, &blocks[0].der, &cert);
                    if cert_key.id() == key.id() && cert_key.bits() == key.bits() {
                        assert_eq!(fast, Some(generic), "{}", blocks[0].label);
                    }
                }
            }
        }
    }

    #[test]
    fn known_curves_are_openssls() {
        for oid in ["1.2.840.10045.3.1.7", "1.3.132.0.34", "1.3.132.0.35"] {
            assert_eq!(known_curve(oid), Some(Asn1Object::from_str(oid).unwrap().nid()), "{oid}");
        }
        assert_eq!(known_curve("1.3.132.0.10"), None);
    }

    #[test]
    fn other_keys_use_the_generic_path() {
        let key = PKey::generate_ed25519().unwrap();
        let mut spec = Spec::leaf("h.example.com", &["h.example.com"]);
        spec.digest = None;
        let cert = testpki::issue(&spec, &key, None);
        let blocks = pem::scan(&key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert_eq!(fast_match(&blocks[0].label, &blocks[0].der, &cert), None);
        assert_eq!(match_key_blocks(&blocks, &cert).unwrap(), KeyStatus::Matches);
        let other =
            pem::scan(&PKey::generate_ed25519().unwrap().private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert_eq!(match_key_blocks(&other, &cert).unwrap(), KeyStatus::Mismatch);
    }

    #[test]
    fn damaged_keys_fall_back_and_are_malformed() {
        let key = ec(Nid::X9_62_PRIME256V1);
        let cert = testpki::issue(&Spec::leaf("h.example.com", &[]), &key, None);
        let blocks = pem::scan(&key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let der = blocks[0].der.to_vec();
        for cut in [1, 10, der.len() / 2, der.len() - 1] {
            assert_eq!(fast_match("PRIVATE KEY", &der[..cut], &cert), None, "cut at {cut}");
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(fast_match("PRIVATE KEY", &trailing, &cert), None);
        // A zero scalar.
        let zero =
            [0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20].iter().copied().chain([0u8; 32]).collect::<Vec<u8>>();
        assert_eq!(fast_match("EC PRIVATE KEY", &zero, &cert), None);
        assert!(
            parse_private_key(b"-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n")
                .is_err()
        );
        assert!(parse_private_key(&key.private_key_to_pem_pkcs8().unwrap()).is_ok());
    }
}
