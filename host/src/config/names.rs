//! DNS name syntax, shared by the configuration checks and the facts (`hostname-is-fqdn`).

/// Whether `label` is a valid LDH label: 1–63 ASCII letters, digits and hyphens, not starting or
/// ending with a hyphen.
pub fn is_ldh_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Whether `name` is a syntactically valid DNS host name: LDH labels separated by dots, at most
/// 253 characters, one trailing dot allowed. A single label (`myhost`) is valid.
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_ldh_label)
}

/// Like [`is_dns_name`], but the leftmost label may also be a `*` wildcard (`*.example.com`), as
/// long as at least two labels follow it.
pub fn is_dns_name_or_wildcard(name: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(rest) => is_dns_name(rest) && rest.trim_end_matches('.').contains('.'),
        None => is_dns_name(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_name("host.example.com"));
        assert!(is_dns_name("host.example.com."));
        assert!(is_dns_name("myhost"));
        assert!(is_dns_name("a-1.b2"));
        assert!(!is_dns_name(""));
        assert!(!is_dns_name("."));
        assert!(!is_dns_name("-a.example.com"));
        assert!(!is_dns_name("a-.example.com"));
        assert!(!is_dns_name("a..example.com"));
        assert!(!is_dns_name("under_score.example.com"));
        assert!(!is_dns_name(&format!("{}.com", "a".repeat(64))));
        assert!(is_dns_name_or_wildcard("*.example.com"));
        assert!(!is_dns_name_or_wildcard("*.com"));
        assert!(!is_dns_name_or_wildcard("w*.example.com"));
        assert!(!is_dns_name_or_wildcard("*"));
    }
}
