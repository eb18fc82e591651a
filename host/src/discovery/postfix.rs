//! Postfix: the settings come from `postconf -c DIR -x -h NAME` (Postfix's own reading of
//! `main.cf`, with `$name` expanded); the line in `main.cf` that sets each one is looked up for
//! the report; the listeners come from `master.cf` (`smtpd`/`postscreen` on `inet`).

use std::path::{Path, PathBuf};

use super::text::split_host_port;
use super::{Ctx, Found, Origin, Partial, at, command_output, push_endpoint, read_config};
use crate::config::Layout;
use crate::config::probe::{ProbeEndpoint, Protocol};

const DIR: &str = "/etc/postfix";

pub(super) fn discover(ctx: &Ctx<'_>) -> Partial {
    let mut partial = Partial::default();
    let dir = ctx.main.clone().unwrap_or_else(|| ctx.root.path(DIR));
    let main_cf = dir.join("main.cf");
    if !main_cf.exists() {
        partial.absent = Some(format!("no {}", main_cf.display()));
        return partial;
    }
    let main_text = read_config(&main_cf).unwrap_or_default();
    let get = |name: &str| -> Result<(String, Origin), String> {
        let argv: Vec<String> = ["postconf", "-c", &dir.display().to_string(), "-x", "-h", name]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let value = command_output(&argv)?.trim().to_string();
        let origin = match setting_line(&main_text, name) {
            Some(line) => at(&main_cf, line, name),
            None => Origin::Command { argv, setting: format!("{name}, Postfix's default") },
        };
        Ok((value, origin))
    };

    let mut values = Vec::new();
    for name in [
        "smtpd_tls_security_level",
        "smtpd_use_tls",
        "smtpd_enforce_tls",
        "smtpd_tls_chain_files",
        "smtpd_tls_cert_file",
        "smtpd_tls_key_file",
        "smtpd_tls_eccert_file",
        "smtpd_tls_eckey_file",
    ] {
        match get(name) {
            Ok(v) => values.push(v),
            Err(e) => {
                partial.problems.push(ctx.problem(None, e));
                return partial;
            }
        }
    }
    let [level, use_tls, enforce, chain_files, cert, key, eccert, eckey] =
        <[(String, Origin); 8]>::try_from(values).expect("eight values");
    let tls_on = matches!(
        level.0.as_str(),
        "may" | "encrypt" | "dane" | "dane-only" | "fingerprint" | "verify" | "secure"
    ) || use_tls.0 == "yes"
        || enforce.0 == "yes";

    let mut found: Vec<Found> = Vec::new();
    if !chain_files.0.is_empty() {
        chain_file_pairs(ctx, &chain_files, &mut found, &mut partial);
    } else {
        for (c, k) in [(&cert, &key), (&eccert, &eckey)] {
            if c.0.is_empty() {
                continue;
            }
            let certificate = ctx.root.path(&c.0);
            let key_path = if k.0.is_empty() { c.0.clone() } else { k.0.clone() };
            let key_path = ctx.root.path(&key_path);
            let mut f =
                ctx.found(certificate.clone(), Some(key_path.clone()), vec![c.1.clone(), k.1.clone()]);
            if key_path == certificate {
                f.key = None;
                f.layout = Layout::Combined;
            }
            found.push(f);
        }
    }
    if found.is_empty() {
        if partial.problems.is_empty() {
            partial.absent = Some(format!(
                "{} names no TLS certificate (smtpd_tls_cert_file is empty)",
                main_cf.display()
            ));
        }
        return partial;
    }
    if !tls_on {
        for f in &found {
            partial.problems.push(ctx.problem(
                Some(level.1.clone()),
                format!(
                    "{} is configured, but TLS is off (smtpd_tls_security_level = {:?}): not a TLS service, left out",
                    f.certificate.display(),
                    level.0
                ),
            ));
        }
        return partial;
    }

    let endpoints = listeners(ctx, &dir.join("master.cf"), &mut partial);
    let own = if ctx.root.is_host() && ctx.main.is_none() {
        vec!["postfix".into(), "reload".into()]
    } else {
        vec!["postfix".into(), "-c".into(), dir.display().to_string(), "reload".into()]
    };
    let (reload, note) = ctx.reload_main("postfix", "reload", Some(own));
    for mut f in found {
        f.probe = endpoints.clone();
        f.reload = reload.clone();
        f.notes.extend(note.clone());
        partial.found.push(f);
    }
    partial
}

/// The line that sets `name` in `main.cf` (the last one wins, as in Postfix).
fn setting_line(text: &str, name: &str) -> Option<usize> {
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with(char::is_whitespace) || line.starts_with('#') {
            continue;
        }
        if let Some((key, _)) = line.split_once('=')
            && key.trim() == name
        {
            found = Some(i + 1);
        }
    }
    found
}

/// `smtpd_tls_chain_files`: a key file followed by its certificate file is one service; a file
/// that holds both (key first, as Postfix wants) cannot be managed by either layout.
fn chain_file_pairs(
    ctx: &Ctx<'_>,
    chain_files: &(String, Origin),
    found: &mut Vec<Found>,
    partial: &mut Partial,
) {
    let files: Vec<&str> =
        chain_files.0.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).collect();
    let mut pending_key: Option<PathBuf> = None;
    for named in files {
        let path = ctx.root.path(named);
        let text = match read_config(&path) {
            Ok(t) => t,
            Err(e) => {
                partial.problems.push(ctx.problem(Some(chain_files.1.clone()), e));
                return;
            }
        };
        let has_key = text.contains("PRIVATE KEY-----");
        let has_cert = text.contains("CERTIFICATE-----");
        match (has_key, has_cert, pending_key.take()) {
            (true, false, None) => pending_key = Some(path),
            (false, true, Some(key)) => {
                found.push(ctx.found(path, Some(key), vec![chain_files.1.clone()]));
            }
            (true, true, None) => partial.problems.push(ctx.problem(
                Some(chain_files.1.clone()),
                format!(
                    "{} holds the private key before the certificate chain (Postfix's order); this \
                     layout cannot be managed: name the files with smtpd_tls_key_file and \
                     smtpd_tls_cert_file instead",
                    path.display()
                ),
            )),
            _ => {
                partial.problems.push(ctx.problem(
                    Some(chain_files.1.clone()),
                    format!(
                        "cannot pair the keys and certificates of smtpd_tls_chain_files at {}",
                        path.display()
                    ),
                ));
                return;
            }
        }
    }
    if let Some(key) = pending_key {
        partial.problems.push(ctx.problem(
            Some(chain_files.1.clone()),
            format!("the key file {} is not followed by a certificate file", key.display()),
        ));
    }
}

/// The `smtpd` and `postscreen` listeners of `master.cf` as probes. A listener that turns TLS
/// off (`-o smtpd_tls_security_level=none`) is left out.
fn listeners(ctx: &Ctx<'_>, master_cf: &Path, partial: &mut Partial) -> Vec<ProbeEndpoint> {
    let mut endpoints = Vec::new();
    let text = match read_config(master_cf) {
        Ok(t) => t,
        Err(e) => {
            partial.problems.push(ctx.problem(None, format!("{e}; probing 127.0.0.1:25 (smtp) instead")));
            endpoints.push(ProbeEndpoint::new("127.0.0.1", 25, Protocol::Smtp));
            return endpoints;
        }
    };
    // Join continuation lines (they start with whitespace) to their entry.
    let mut entries: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            if let Some((_, entry)) = entries.last_mut() {
                entry.push(' ');
                entry.push_str(line.trim());
            }
        } else {
            entries.push((i + 1, line.trim().to_string()));
        }
    }
    for (line, entry) in entries {
        let fields: Vec<&str> = entry.split_whitespace().collect();
        if fields.len() < 8 || fields[1] != "inet" || !matches!(fields[7], "smtpd" | "postscreen") {
            continue;
        }
        let options: Vec<&str> = fields[8..].to_vec();
        let option = |name: &str| {
            options
                .windows(2)
                .rev()
                .filter(|w| w[0] == "-o")
                .find_map(|w| w[1].strip_prefix(&format!("{name}=")))
        };
        if option("smtpd_tls_security_level") == Some("none") {
            continue;
        }
        let (host, port) = match fields[0] {
            "smtp" => (String::new(), Some(25)),
            "submission" => (String::new(), Some(587)),
            "smtps" | "submissions" => (String::new(), Some(465)),
            other => match split_host_port(other) {
                Some((h, Some(p))) => (h, Some(p)),
                Some((_, None)) => match other.rsplit_once(':').map(|(_, s)| s).unwrap_or(other) {
                    "smtp" => {
                        (other.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default(), Some(25))
                    }
                    "submission" => {
                        (other.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default(), Some(587))
                    }
                    "smtps" | "submissions" => {
                        (other.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap_or_default(), Some(465))
                    }
                    _ => (String::new(), None),
                },
                None => (String::new(), None),
            },
        };
        let Some(port) = port else {
            partial.problems.push(ctx.problem(
                Some(at(master_cf, line, fields[0])),
                format!("cannot tell the port of the listener {:?}: no probe for it", fields[0]),
            ));
            continue;
        };
        let protocol =
            if option("smtpd_tls_wrappermode") == Some("yes") { Protocol::Smtps } else { Protocol::Smtp };
        push_endpoint(&mut endpoints, ProbeEndpoint::new(&super::probe_host(&host), port, protocol));
    }
    endpoints
}
