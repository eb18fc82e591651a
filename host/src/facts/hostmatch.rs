//! OpenSSL's host-name matching for one subjectAltName DNS entry, as `X509_check_host` does it with
//! the flags [`super::verify::covers_hostname`] sets (`X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS`,
//! `NEVER_CHECK_SUBJECT`), for a host name that does not start with a dot. A line-by-line port of
//! `equal_wildcard`, `valid_star`, `wildcard_match` and `equal_nocase` (OpenSSL 3.0,
//! `crypto/x509/v3_utl.c`), so that the fast path needs no decoded certificate; the tests compare
//! it with OpenSSL on a table of patterns.

/// Whether the dNSName `pattern` matches `subject` (the host name, no NUL, no leading dot).
pub(crate) fn matches(pattern: &[u8], subject: &[u8]) -> bool {
    // do_check_string: an empty entry never matches.
    if pattern.is_empty() {
        return false;
    }
    // equal_wildcard: a subject starting with '.' never uses the wildcard (excluded by callers).
    match valid_star(pattern) {
        None => equal_nocase(pattern, subject),
        Some(star) => wildcard_match(&pattern[..star], &pattern[star + 1..], subject),
    }
}

const LABEL_START: u8 = 1;
const LABEL_HYPHEN: u8 = 4;
const LABEL_IDNA: u8 = 8;

fn has_idna_prefix(bytes: &[u8]) -> bool {
    bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b"xn--")
}

/// The position of the one legal wildcard: a whole leftmost label (partial wildcards are off),
/// not in an IDNA label, with at least two dots after it and a well-formed rest.
fn valid_star(p: &[u8]) -> Option<usize> {
    let mut star = None;
    let mut state = LABEL_START;
    let mut dots = 0;
    for (i, &c) in p.iter().enumerate() {
        if c == b'*' {
            let atstart = state & LABEL_START != 0;
            let atend = i == p.len() - 1 || p[i + 1] == b'.';
            if star.is_some() || state & LABEL_IDNA != 0 || dots != 0 {
                return None;
            }
            // X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
            if !atstart || !atend {
                return None;
            }
            star = Some(i);
            state &= !LABEL_START;
        } else if c.is_ascii_alphanumeric() {
            if state & LABEL_START != 0 && has_idna_prefix(&p[i..]) {
                state |= LABEL_IDNA;
            }
            state &= !(LABEL_HYPHEN | LABEL_START);
        } else if c == b'.' {
            if state & (LABEL_HYPHEN | LABEL_START) != 0 {
                return None;
            }
            state = LABEL_START;
            dots += 1;
        } else if c == b'-' {
            if state & LABEL_START != 0 {
                return None;
            }
            state |= LABEL_HYPHEN;
        } else {
            return None;
        }
    }
    if state & (LABEL_START | LABEL_HYPHEN) != 0 || dots < 2 {
        return None;
    }
    star
}

/// ASCII case-insensitive equality; the pattern must not contain NUL.
fn equal_nocase(pattern: &[u8], subject: &[u8]) -> bool {
    pattern.len() == subject.len()
        && pattern.iter().zip(subject).all(|(&l, &r)| l != 0 && l.eq_ignore_ascii_case(&r))
}

fn wildcard_match(prefix: &[u8], suffix: &[u8], subject: &[u8]) -> bool {
    if subject.len() < prefix.len() + suffix.len() {
        return false;
    }
    if !equal_nocase(prefix, &subject[..prefix.len()]) {
        return false;
    }
    let wildcard_start = prefix.len();
    let wildcard_end = subject.len() - suffix.len();
    // Note the argument order (the subject's tail is the "pattern" here, as in OpenSSL).
    if !equal_nocase(&subject[wildcard_end..], suffix) {
        return false;
    }
    let mut allow_idna = false;
    if prefix.is_empty() && suffix.first() == Some(&b'.') {
        if wildcard_start == wildcard_end {
            return false;
        }
        allow_idna = true;
    }
    if !allow_idna && has_idna_prefix(subject) {
        return false;
    }
    let matched = &subject[wildcard_start..wildcard_end];
    if matched == b"*" {
        return true;
    }
    matched.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::facts::testpki::{self, Spec};

    /// The port agrees with OpenSSL (through `covers_hostname`) on a table of patterns and names.
    #[test]
    fn agrees_with_openssl() {
        let patterns = [
            "host.example.com",
            "HOST.Example.COM",
            "*.example.com",
            "*.EXAMPLE.com",
            "*.com",
            "*.example",
            "w*.example.com",
            "*w.example.com",
            "w*w.example.com",
            "*.*.example.com",
            "a.*.example.com",
            "xn--bcher-kva.example.com",
            "*.xn--bcher-kva.example",
            "xn--*.example.com",
            "-host.example.com",
            "host-.example.com",
            "host..example.com",
            ".example.com",
            "example.com.",
            "*",
            "",
            "h_st.example.com",
            "*.example.com.",
            "*.a-b.example.com",
            "*.a-.example.com",
        ];
        let names = [
            "host.example.com",
            "HOST.EXAMPLE.COM",
            "www.example.com",
            "example.com",
            "a.b.example.com",
            "xn--bcher-kva.example.com",
            "xn--abc.example.com",
            "www.xn--bcher-kva.example",
            "*.example.com",
            "w.example.com",
            "ww.example.com",
            "host.example.com.x",
            "h_st.example.com",
            "x.a-b.example.com",
            "x.a-.example.com",
            "example.com.",
            "com",
            "-.example.com",
        ];
        let key = testpki::ec_key();
        for pattern in patterns {
            // OpenSSL's SAN builder refuses an empty DNS name; that case is covered by `matches`.
            if pattern.is_empty() {
                assert!(!matches(b"", b"host.example.com"));
                continue;
            }
            let cert = testpki::issue(&Spec::leaf("x", &[pattern]), &key, None);
            for name in names {
                let openssl = crate::facts::verify::covers_hostname(&cert, name);
                let name = name.strip_suffix('.').unwrap_or(name);
                assert_eq!(matches(pattern.as_bytes(), name.as_bytes()), openssl, "{pattern} vs {name}");
            }
        }
    }
}
