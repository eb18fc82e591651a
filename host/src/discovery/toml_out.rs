//! Discovery's two outputs: the listing of `checkallsslcerts services`, and the configuration
//! of `services --print-config`.

use std::fmt::Write as _;

use super::{Discovery, Found};
use crate::config::Layout;

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn argv(a: &[String]) -> String {
    format!("[{}]", a.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
}

/// The listing: each service with its files and where they were named, then what was not
/// found and what could not be read.
pub fn listing(discovery: &Discovery) -> String {
    let mut out = String::new();
    if discovery.root.as_os_str() != "/" {
        let _ = writeln!(out, "(reading under the root {})", discovery.root.display());
    }
    if discovery.found.is_empty() {
        let _ = writeln!(out, "No certificate was found in the daemons' configuration.");
    }
    for f in &discovery.found {
        let _ = writeln!(out, "{} ({})", f.name, f.daemon);
        match f.layout {
            Layout::Separate => {
                let _ = writeln!(out, "    certificate: {}", f.certificate.display());
                if let Some(k) = &f.key {
                    let _ = writeln!(out, "    key:         {}", k.display());
                }
            }
            Layout::Combined => {
                let _ = writeln!(
                    out,
                    "    combined:    {} (certificate, chain and key)",
                    f.certificate.display()
                );
            }
        }
        if let Some(c) = &f.chain {
            let _ = writeln!(out, "    chain:       {}", c.display());
        }
        for o in &f.origins {
            let _ = writeln!(out, "    from:        {o}");
        }
        if f.reload.is_empty() {
            let _ = writeln!(out, "    reload:      (none known)");
        }
        for r in &f.reload {
            let _ = writeln!(out, "    reload:      {}", r.join(" "));
        }
        for e in &f.probe {
            let sni = e.server_name.as_ref().map(|s| format!(", server name {s}")).unwrap_or_default();
            let _ = writeln!(out, "    probe:       {e}{sni}");
        }
        for n in &f.notes {
            let _ = writeln!(out, "    note:        {n}");
        }
    }
    if !discovery.absent.is_empty() {
        let _ = writeln!(out, "Not found:");
        for (daemon, what) in &discovery.absent {
            let _ = writeln!(out, "    {daemon}: {what}");
        }
    }
    if !discovery.problems.is_empty() {
        let _ = writeln!(out, "Could not be read (not guessed; configure these services yourself):");
        for p in &discovery.problems {
            let _ = writeln!(out, "    {p}");
        }
    }
    out
}

/// The found services as `[[service]]` tables to adopt (with comments saying where each came
/// from, and what could not be read), and the certificate groups proposed for them
/// ([`proposed_groups`]) for the system's hostname.
pub fn config(discovery: &Discovery) -> String {
    config_for(discovery, &crate::config::system_hostname())
}

/// [`config`] for the server `hostname`.
pub fn config_for(discovery: &Discovery, hostname: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Services discovered by `checkallsslcerts services --print-config`.");
    let _ = writeln!(
        out,
        "# Review them, then keep them in /etc/checkallsslcerts/config.toml (see examples/config.toml)."
    );
    if discovery.root.as_os_str() != "/" {
        let _ = writeln!(out, "# Read under the root {}.", discovery.root.display());
    }
    for p in &discovery.problems {
        let _ = writeln!(out, "# NOT READ: {}", one_line(&p.to_string()));
    }
    let groups = proposed_groups(&discovery.found, hostname);
    for (f, group) in discovery.found.iter().zip(&groups) {
        service(&mut out, f, group.as_ref().map(|(name, _)| name.as_str()));
    }
    let mut written: Vec<&str> = Vec::new();
    for (name, names) in groups.iter().flatten() {
        if written.contains(&name.as_str()) {
            continue;
        }
        if written.is_empty() {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "# Certificate groups proposed from the names the daemons' certificates carry now: each \
                 gets a\n# certificate of its own (own key, own names). The services whose certificate \
                 covers the\n# hostname {hostname} (or could not be read) keep the hostname's certificate."
            );
        }
        written.push(name);
        let _ = writeln!(out, "\n[[certificate]]\nname = {}", quote(name));
        let _ = writeln!(out, "names = [{}]", names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(", "));
    }
    out
}

/// A certificate group for each service whose current certificate does not cover `hostname`:
/// one group per distinct set of DNS names, named after its first name (`shop.example.com` →
/// `shop-example-com`). `None` (the hostname's group) for a certificate that covers the
/// hostname, cannot be read, or carries no usable DNS name.
pub fn proposed_groups(found: &[Found], hostname: &str) -> Vec<Option<(String, Vec<String>)>> {
    let mut by_names: Vec<(Vec<String>, String)> = Vec::new();
    found
        .iter()
        .map(|f| {
            let bytes = crate::fs::read_bounded(&f.certificate, crate::fs::limits::PEM_FILE).ok()?;
            let parsed = crate::facts::parse_certificate(&bytes).ok()?;
            if crate::facts::covers_hostname(&parsed.leaf, hostname) {
                return None;
            }
            let mut names: Vec<String> = Vec::new();
            for name in &parsed.facts.dns_names {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                if crate::config::names::is_dns_name_or_wildcard(&name) && !names.contains(&name) {
                    names.push(name);
                }
            }
            let first = names.first()?.clone();
            if let Some((_, group)) = by_names.iter().find(|(n, _)| *n == names) {
                return Some((group.clone(), names));
            }
            let base: String = first
                .replacen("*.", "wildcard.", 1)
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .take(56)
                .collect();
            let base = base.trim_matches('-').to_string();
            let mut group = base.clone();
            let mut n = 2;
            while group == crate::config::HOSTNAME_GROUP || by_names.iter().any(|(_, g)| *g == group) {
                group = format!("{base}-{n}");
                n += 1;
            }
            by_names.push((names.clone(), group.clone()));
            Some((group, names))
        })
        .collect()
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

fn service(out: &mut String, f: &Found, group: Option<&str>) {
    let _ = writeln!(out);
    let _ = writeln!(out, "[[service]]");
    for o in &f.origins {
        let _ = writeln!(out, "# {}: {}", f.daemon, one_line(&o.to_string()));
    }
    for n in &f.notes {
        let _ = writeln!(out, "# note: {}", one_line(n));
    }
    let _ = writeln!(out, "name = {}", quote(&f.name));
    if let Some(group) = group {
        let _ = writeln!(out, "certificate-group = {}", quote(group));
    }
    let _ = writeln!(out, "certificate = {}", quote(&f.certificate.to_string_lossy()));
    match f.layout {
        Layout::Separate => {
            if let Some(k) = &f.key {
                let _ = writeln!(out, "key = {}", quote(&k.to_string_lossy()));
            }
        }
        Layout::Combined => {
            let _ = writeln!(out, "layout = \"combined\"");
        }
    }
    if let Some(c) = &f.chain {
        let _ = writeln!(out, "chain = {}", quote(&c.to_string_lossy()));
    }
    let (certificate_mode, key_mode) = f.modes();
    let _ = writeln!(out, "certificate-mode = \"{certificate_mode:04o}\"");
    if f.layout == Layout::Separate {
        let _ = writeln!(out, "key-mode = \"{key_mode:04o}\"");
    }
    match f.reload.as_slice() {
        [r] => {
            let _ = writeln!(out, "reload = {}", argv(r));
        }
        [_, _, ..] => {
            let _ =
                writeln!(out, "# Run in order after an install: each daemon that uses the file re-reads it.");
            let _ = writeln!(out, "reload = [");
            for r in &f.reload {
                let _ = writeln!(out, "    {},", argv(r));
            }
            let _ = writeln!(out, "]");
        }
        [] => {
            let _ = writeln!(
                out,
                "# reload = [...]  (none known: set the command that makes {} re-read its certificate)",
                f.daemon
            );
        }
    }
    if !f.probe.is_empty() {
        let _ = writeln!(out, "probe = [");
        for e in &f.probe {
            let sni =
                e.server_name.as_ref().map(|s| format!(", server-name = {}", quote(s))).unwrap_or_default();
            let _ = writeln!(
                out,
                "    {{ address = {}, protocol = {}{sni} }},",
                quote(&e.address()),
                quote(e.protocol.name())
            );
        }
        let _ = writeln!(out, "]");
    }
}
