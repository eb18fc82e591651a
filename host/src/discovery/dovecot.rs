//! Dovecot: the settings come from `doveconf -c CONF -h NAME` (Dovecot's own reading, values
//! of files start with `<`); the lines that set them are looked up in `dovecot.conf` and its
//! `!include`s for the report, where `local_name NAME { ssl_cert = … }` blocks are found too
//! (a certificate for one SNI name). Listeners: the `inet_listener`s of the enabled protocols.

use std::path::{Path, PathBuf};

use super::{Ctx, Origin, Partial, at, command_output, push_endpoint, read_config};
use crate::config::probe::{ProbeEndpoint, Protocol};

const CONF: &str = "/etc/dovecot/dovecot.conf";
const MAX_DEPTH: usize = 16;

pub(super) fn discover(ctx: &Ctx<'_>) -> Partial {
    let mut partial = Partial::default();
    let conf = ctx.main.clone().unwrap_or_else(|| ctx.root.path(CONF));
    if !conf.exists() {
        partial.absent = Some(format!("no {}", conf.display()));
        return partial;
    }
    let conf_text = conf.display().to_string();
    let argv = |name: &str| -> Vec<String> {
        ["doveconf", "-c", &conf_text, "-h", name].iter().map(|s| s.to_string()).collect()
    };
    let get = |name: &str| command_output(&argv(name)).map(|v| v.trim().to_string());
    let ssl = match get("ssl") {
        Ok(v) => v,
        Err(e) => {
            partial.problems.push(ctx.problem(None, e));
            return partial;
        }
    };
    let settings = scan(ctx, &conf, &mut partial);
    if ssl == "no" {
        let origin = settings.line_of("ssl").map(|(f, l)| at(&f, l, "ssl"));
        partial.problems.push(ctx.problem(origin, "ssl = no: Dovecot does not use TLS, nothing to manage"));
        return partial;
    }

    let endpoints = listeners(&get);
    let own = if ctx.root.is_host() && ctx.main.is_none() {
        vec!["doveadm".into(), "reload".into()]
    } else {
        vec!["doveadm".into(), "-c".into(), conf_text.clone(), "reload".into()]
    };
    let (reload, note) = ctx.reload_main("dovecot", "reload", Some(own));

    for (cert_name, key_name) in [("ssl_cert", "ssl_key"), ("ssl_alt_cert", "ssl_alt_key")] {
        let (cert, key) = match (get(cert_name), get(key_name)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => {
                // ssl_alt_cert is unknown to old versions: only the main pair must be readable.
                if cert_name == "ssl_cert" {
                    partial.problems.push(ctx.problem(None, e));
                }
                continue;
            }
        };
        if cert.is_empty() {
            continue;
        }
        let origin = |name: &str| match settings.line_of(name) {
            Some((file, line)) => at(&file, line, name),
            None => Origin::Command { argv: argv(name), setting: name.to_string() },
        };
        let (Some(cert_path), Some(key_path)) = (file_value(&cert), file_value(&key)) else {
            partial.problems.push(ctx.problem(
                Some(origin(cert_name)),
                format!(
                    "{cert_name} / {key_name} are not file references (`<path`): inline PEM cannot be managed"
                ),
            ));
            continue;
        };
        let mut found = ctx.found(
            ctx.root.path(cert_path),
            Some(ctx.root.path(key_path)),
            vec![origin(cert_name), origin(key_name)],
        );
        found.probe = endpoints.clone();
        found.reload = reload.clone();
        found.notes.extend(note.clone());
        partial.found.push(found);
    }
    for local in settings.locals {
        let mut found = ctx.found(
            ctx.root.path(&local.cert.0),
            Some(ctx.root.path(&local.key.0)),
            vec![at(&local.cert.1, local.cert.2, "ssl_cert"), at(&local.key.1, local.key.2, "ssl_key")],
        );
        found.probe = endpoints
            .iter()
            .map(|e| ProbeEndpoint { server_name: Some(local.name.clone()), ..e.clone() })
            .collect();
        found.reload = reload.clone();
        found.notes.extend(note.clone());
        partial.found.push(found);
    }
    if partial.found.is_empty() && partial.problems.is_empty() {
        partial.absent = Some(format!("{} names no certificate (ssl_cert is empty)", conf.display()));
    }
    partial
}

/// `<path` → `path`.
fn file_value(value: &str) -> Option<&str> {
    value.strip_prefix('<').map(str::trim).filter(|p| p.starts_with('/') && !super::has_variable(p))
}

/// The listeners of the enabled protocols, probed on the first `listen` address.
fn listeners(get: &dyn Fn(&str) -> Result<String, String>) -> Vec<ProbeEndpoint> {
    let protocols = get("protocols").unwrap_or_default();
    let listen = get("listen").unwrap_or_default();
    let default_host = super::probe_host(listen.split(',').next().unwrap_or("").trim());
    let mut endpoints = Vec::new();
    for protocol in protocols.split_whitespace() {
        let listeners: &[(&str, &str, Protocol)] = match protocol {
            "imap" => &[("imap-login", "imap", Protocol::Imap), ("imap-login", "imaps", Protocol::Imaps)],
            "pop3" => &[("pop3-login", "pop3", Protocol::Pop3), ("pop3-login", "pop3s", Protocol::Pop3s)],
            "submission" => &[
                ("submission-login", "submission", Protocol::Smtp),
                ("submission-login", "submissions", Protocol::Smtps),
            ],
            _ => &[],
        };
        for (service, listener, kind) in listeners {
            let base = format!("service/{service}/inet_listener/{listener}");
            let Some(port) =
                get(&format!("{base}/port")).ok().and_then(|p| p.parse::<u16>().ok()).filter(|p| *p > 0)
            else {
                continue;
            };
            let address = get(&format!("{base}/address")).unwrap_or_default();
            let host = match address.split(',').next().map(str::trim) {
                Some(a) if !a.is_empty() => super::probe_host(a),
                _ => default_host.clone(),
            };
            push_endpoint(&mut endpoints, ProbeEndpoint::new(&host, port, *kind));
        }
    }
    endpoints
}

/// What the configuration files say, with positions.
#[derive(Debug, Default)]
struct Settings {
    /// Top-level settings: name → (file, line), the last one.
    top: Vec<(String, PathBuf, usize)>,
    locals: Vec<Local>,
}

#[derive(Debug)]
struct Local {
    name: String,
    cert: (String, PathBuf, usize),
    key: (String, PathBuf, usize),
}

impl Settings {
    fn line_of(&self, name: &str) -> Option<(PathBuf, usize)> {
        self.top.iter().rev().find(|(n, _, _)| n == name).map(|(_, f, l)| (f.clone(), *l))
    }
}

/// Reads the files for positions: top-level `name = value` lines and `local_name` blocks.
fn scan(ctx: &Ctx<'_>, conf: &Path, partial: &mut Partial) -> Settings {
    let mut settings = Settings::default();
    let mut stack: Vec<String> = Vec::new();
    let mut current_local: LocalState = None;
    scan_file(ctx, conf, 0, &mut stack, &mut current_local, &mut settings, partial);
    settings
}

type LocalState = Option<(String, Option<(String, PathBuf, usize)>, Option<(String, PathBuf, usize)>)>;

fn scan_file(
    ctx: &Ctx<'_>,
    file: &Path,
    depth: usize,
    stack: &mut Vec<String>,
    local: &mut LocalState,
    settings: &mut Settings,
    partial: &mut Partial,
) {
    let text = match read_config(file) {
        Ok(t) => t,
        Err(e) => {
            partial.problems.push(ctx.problem(None, e));
            return;
        }
    };
    let dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix("!include_try").or_else(|| trimmed.strip_prefix("!include"))
        {
            let pattern = rest.trim().trim_matches('"');
            if depth >= MAX_DEPTH {
                continue;
            }
            match ctx.root.glob(pattern, &dir) {
                Ok(files) => {
                    for f in files {
                        scan_file(ctx, &f, depth + 1, stack, local, settings, partial);
                    }
                }
                Err(e) => partial.problems.push(ctx.problem(Some(at(file, line, "!include")), e)),
            }
            continue;
        }
        if trimmed == "}" {
            if stack.pop().is_some_and(|b| b.starts_with("local_name "))
                && let Some((name, Some(cert), Some(key))) = local.take()
            {
                settings.locals.push(Local { name, cert, key });
            }
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('{') {
            let head = head.trim().to_string();
            if let Some(name) = head.strip_prefix("local_name ") {
                *local = Some((name.trim().to_string(), None, None));
            }
            stack.push(head);
            continue;
        }
        let Some((name, value)) = trimmed.split_once('=') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if stack.is_empty() {
            settings.top.push((name.to_string(), file.to_path_buf(), line));
        } else if stack.len() == 1
            && stack[0].starts_with("local_name ")
            && let Some((_, cert, key)) = local.as_mut()
            && let Some(path) = file_value(value)
        {
            match name {
                "ssl_cert" => *cert = Some((path.to_string(), file.to_path_buf(), line)),
                "ssl_key" => *key = Some((path.to_string(), file.to_path_buf(), line)),
                _ => {}
            }
        }
    }
}
