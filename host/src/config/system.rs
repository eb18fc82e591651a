//! Facts about the running system that the configuration defaults to.

/// The system's fully qualified host name, as `hostname --fqdn` finds it: `gethostname`, then
/// the canonical name from `getaddrinfo(AI_CANONNAME)` (which reads `/etc/hosts` and DNS). The
/// canonical name is used only if it has a dot and is not a `localhost` name; otherwise the
/// short name. `"localhost"` if even `gethostname` fails.
pub(super) fn hostname() -> String {
    let short = match dns_lookup::get_hostname() {
        Ok(name) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => return "localhost".to_owned(),
    };
    match canonical_name(&short) {
        Some(canonical) => canonical,
        None => short,
    }
}

fn canonical_name(short: &str) -> Option<String> {
    let hints = dns_lookup::AddrInfoHints {
        flags: libc::AI_CANONNAME,
        socktype: libc::SOCK_STREAM,
        ..dns_lookup::AddrInfoHints::default()
    };
    let first = dns_lookup::getaddrinfo(Some(short), None, Some(hints)).ok()?.next()?.ok()?;
    let canonical = first.canonname?.trim().trim_end_matches('.').to_owned();
    let lower = canonical.to_ascii_lowercase();
    let usable = canonical.contains('.')
        && lower != "localhost.localdomain"
        && !lower.starts_with("localhost.")
        && super::names::is_dns_name(&canonical);
    usable.then_some(canonical)
}
