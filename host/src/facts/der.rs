//! A minimal, strict DER reader: just enough to unwrap PKCS#8 and `ECPrivateKey` structures so
//! that keys can be matched without OpenSSL 3's slow generic decoders (see `key.rs`), and to
//! check that a certificate is in the plain shape the fast path models (see `fast.rs`). Every
//! read is bounds-checked; anything unexpected is `None`, and the caller falls back to OpenSSL.

/// A DER element: its tag and contents.
#[derive(Clone, Copy)]
pub(crate) struct Element<'a> {
    pub tag: u8,
    pub contents: &'a [u8],
}

/// Reads elements one after the other from a byte slice.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OID: u8 = 0x06;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const SET: u8 = 0x31;
pub(crate) const UTF8_STRING: u8 = 0x0c;
pub(crate) const PRINTABLE_STRING: u8 = 0x13;
pub(crate) const IA5_STRING: u8 = 0x16;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element and its whole encoding (tag, length and contents).
    pub fn next_raw(&mut self) -> Option<(Element<'a>, &'a [u8])> {
        let start = self.rest;
        let e = self.next()?;
        Some((e, &start[..start.len() - self.rest.len()]))
    }

    /// The next element, whatever its tag (single-byte tags only, definite lengths only).
    pub fn next(&mut self) -> Option<Element<'a>> {
        let (&tag, after_tag) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, mut after_len) = after_tag.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            // DER: definite lengths, in the shortest form (no leading zero octet).
            if count == 0 || count > 4 || after_len.len() < count || after_len[0] == 0 {
                return None;
            }
            let mut len = 0usize;
            for &b in &after_len[..count] {
                len = (len << 8) | usize::from(b);
            }
            after_len = &after_len[count..];
            if len < 0x80 {
                return None;
            }
            len
        };
        if after_len.len() < len {
            return None;
        }
        let (contents, rest) = after_len.split_at(len);
        self.rest = rest;
        Some(Element { tag, contents })
    }

    /// The next element, if it has this tag.
    pub fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        let e = self.next()?;
        (e.tag == tag).then_some(e.contents)
    }

    /// The next element if it has this tag; otherwise nothing is consumed.
    pub fn optional(&mut self, tag: u8) -> Option<&'a [u8]> {
        let mut probe = Reader { rest: self.rest };
        let e = probe.next()?;
        if e.tag != tag {
            return None;
        }
        self.rest = probe.rest;
        Some(e.contents)
    }
}

/// The contents of a whole-input element with this tag (nothing may follow it).
pub(crate) fn only(bytes: &[u8], tag: u8) -> Option<&[u8]> {
    let mut r = Reader::new(bytes);
    let contents = r.expect(tag)?;
    r.is_empty().then_some(contents)
}

/// Whether an OID's contents are well formed as OpenSSL decodes them: not empty, no
/// sub-identifier starting with the padding octet 0x80, the last octet ending a sub-identifier.
pub(crate) fn oid_is_valid(contents: &[u8]) -> bool {
    let Some(&last) = contents.last() else { return false };
    last & 0x80 == 0
        && contents.iter().enumerate().all(|(i, &b)| b != 0x80 || (i > 0 && contents[i - 1] & 0x80 != 0))
}

/// An INTEGER's contents, if minimally encoded and not negative.
pub(crate) fn positive_integer(contents: &[u8]) -> Option<&[u8]> {
    match contents {
        [] => None,
        [first, ..] if first & 0x80 != 0 => None,
        [0, second, ..] if second & 0x80 == 0 => None,
        _ => Some(contents),
    }
}

/// An OID's contents in dotted form ("1.2.840.10045.3.1.7").
pub(crate) fn oid_text(contents: &[u8]) -> Option<String> {
    let (&first, rest) = contents.split_first()?;
    let mut parts = vec![u64::from(first / 40).min(2), 0];
    parts[1] = u64::from(first) - parts[0] * 40;
    let mut value: u64 = 0;
    for (i, &b) in rest.iter().enumerate() {
        if value > (u64::MAX >> 7) {
            return None;
        }
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(value);
            value = 0;
        } else if i + 1 == rest.len() {
            return None;
        }
    }
    Some(parts.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_strictly() {
        let mut r = Reader::new(&[0x30, 0x03, 0x02, 0x01, 0x05, 0x04, 0x00]);
        let seq = r.expect(SEQUENCE).unwrap();
        assert_eq!(seq, [0x02, 0x01, 0x05]);
        assert!(r.optional(INTEGER).is_none());
        assert_eq!(r.optional(OCTET_STRING).unwrap(), [] as [u8; 0]);
        assert!(r.is_empty());
        assert!(Reader::new(&[0x30, 0x05, 0x00]).next().is_none(), "length beyond the input");
        assert!(Reader::new(&[0x30, 0x81, 0x05, 0, 0, 0, 0, 0]).next().is_none(), "non-minimal length");
        assert!(Reader::new(&[0x30, 0x80]).next().is_none(), "indefinite length");
        assert!(only(&[0x04, 0x01, 0xaa, 0x00], OCTET_STRING).is_none(), "trailing data");
        let long: Vec<u8> = [0x04, 0x81, 0x80].into_iter().chain(std::iter::repeat_n(7, 0x80)).collect();
        assert_eq!(only(&long, OCTET_STRING).unwrap().len(), 0x80);
        assert_eq!(
            oid_text(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]).unwrap(),
            "1.2.840.10045.3.1.7"
        );
        assert_eq!(oid_text(&[0x2b, 0x81, 0x04, 0x00, 0x22]).unwrap(), "1.3.132.0.34");
        assert!(oid_text(&[0x2a, 0x86]).is_none());
    }
}
