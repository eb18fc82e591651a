//! The FTP servers: Pure-FTPd (one combined PEM), vsftpd and ProFTPD.

use std::path::{Path, PathBuf};

use super::text::{ApacheLine, apache_lines};
use super::{Ctx, Origin, Partial, at, push_endpoint, read_config};
use crate::config::probe::{ProbeEndpoint, Protocol};

/// Pure-FTPd: Debian's `/etc/pure-ftpd/conf/` (one file per option: `TLS`, `CertFile`, `Bind`)
/// or `pure-ftpd.conf` (`TLS`, `CertFile`, `CertFileAndKey`, `Bind`). The certificate defaults to
/// `/etc/ssl/private/pure-ftpd.pem`, a combined file.
pub(super) fn pure_ftpd(ctx: &Ctx<'_>) -> Partial {
    let mut partial = Partial::default();
    let conf_dir = ctx.root.path("/etc/pure-ftpd/conf");
    let conf_file =
        super::first_existing(ctx.root, &["/etc/pure-ftpd/pure-ftpd.conf", "/etc/pure-ftpd.conf"]);
    // option name → (value, origin)
    let mut options: Vec<(String, String, Origin)> = Vec::new();
    if conf_dir.is_dir() {
        for name in ["TLS", "CertFile", "CertFileAndKey", "Bind"] {
            let path = conf_dir.join(name);
            if let Ok(text) = read_config(&path) {
                options.push((name.into(), text.trim().to_string(), at(&path, 1, name)));
            }
        }
    } else if let Some(file) = &conf_file {
        match read_config(file) {
            Ok(text) => {
                for (i, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.starts_with('#') {
                        continue;
                    }
                    if let Some((name, value)) = line.split_once(char::is_whitespace) {
                        options.push((name.into(), value.trim().to_string(), at(file, i + 1, name)));
                    }
                }
            }
            Err(e) => {
                partial.problems.push(ctx.problem(None, e));
                return partial;
            }
        }
    } else {
        partial.absent = Some("no /etc/pure-ftpd/conf/ or pure-ftpd.conf".into());
        return partial;
    }
    let get =
        |name: &str| options.iter().rev().find(|(n, _, _)| n == name).map(|(_, v, o)| (v.clone(), o.clone()));
    let tls = get("TLS");
    if tls.as_ref().is_none_or(|(v, _)| v == "0") {
        partial.absent = Some("Pure-FTPd's TLS option is off (TLS is 0 or unset)".into());
        return partial;
    }
    let mut found = if let Some((pair, origin)) = get("CertFileAndKey") {
        let parts: Vec<String> = super::text::split_words(&pair.replace(',', " "));
        match parts.as_slice() {
            [cert, key] => ctx.found(ctx.root.path(cert), Some(ctx.root.path(key)), vec![origin]),
            _ => {
                partial
                    .problems
                    .push(ctx.problem(Some(origin), format!("cannot read CertFileAndKey {pair:?}")));
                return partial;
            }
        }
    } else {
        let (cert, origin) = get("CertFile").unwrap_or_else(|| {
            let default = "/etc/ssl/private/pure-ftpd.pem".to_string();
            (
                default.clone(),
                Origin::Command {
                    argv: vec!["pure-ftpd".into()],
                    setting: format!("the default CertFile {default}"),
                },
            )
        });
        ctx.found(ctx.root.path(&cert), None, vec![origin])
    };
    let (host, port) = match get("Bind") {
        Some((bind, _)) => {
            let (h, p) = bind.rsplit_once(',').unwrap_or(("", bind.as_str()));
            (super::probe_host(h.trim()), p.trim().parse().unwrap_or(21))
        }
        None => ("127.0.0.1".into(), 21),
    };
    let protocol = if tls.is_some_and(|(v, _)| v == "3") { Protocol::Ftps } else { Protocol::Ftp };
    push_endpoint(&mut found.probe, ProbeEndpoint::new(&host, port, protocol));
    let (reload, note) = ctx.reload("pure-ftpd", "restart", None);
    found.reload = reload;
    found.notes.extend(note);
    partial.found.push(found);
    partial
}

/// vsftpd: `vsftpd.conf` (`key=value`): `ssl_enable=YES`, `rsa_cert_file`, `rsa_private_key_file`
/// (unset: the key is in the certificate file), `listen_port`, `listen_address`, `implicit_ssl`.
pub(super) fn vsftpd(ctx: &Ctx<'_>) -> Partial {
    let (file, text) = match super::read_first(ctx, &["/etc/vsftpd.conf", "/etc/vsftpd/vsftpd.conf"]) {
        Ok(found) => found,
        Err(partial) => return partial,
    };
    let mut partial = Partial::default();
    let mut options: Vec<(String, String, usize)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            options.push((k.trim().to_string(), v.trim().to_string(), i + 1));
        }
    }
    let get = |name: &str| {
        options.iter().rev().find(|(n, _, _)| n == name).map(|(_, v, l)| (v.clone(), at(&file, *l, name)))
    };
    if !get("ssl_enable").is_some_and(|(v, _)| v.eq_ignore_ascii_case("YES")) {
        partial.absent = Some(format!("{}: ssl_enable is not YES", file.display()));
        return partial;
    }
    let (cert, cert_origin) = get("rsa_cert_file").unwrap_or_else(|| {
        ("/usr/share/ssl/certs/vsftpd.pem".into(), at(&file, 0, "rsa_cert_file, vsftpd's default"))
    });
    let key = get("rsa_private_key_file");
    let mut origins = vec![cert_origin];
    let key_path = key.map(|(k, o)| {
        origins.push(o);
        ctx.root.path(&k)
    });
    let mut found = ctx.found(ctx.root.path(&cert), key_path, origins);
    let port = get("listen_port").and_then(|(p, _)| p.parse().ok()).unwrap_or(21);
    let host =
        get("listen_address").map(|(a, _)| super::probe_host(&a)).unwrap_or_else(|| "127.0.0.1".into());
    let protocol = if get("implicit_ssl").is_some_and(|(v, _)| v.eq_ignore_ascii_case("YES")) {
        Protocol::Ftps
    } else {
        Protocol::Ftp
    };
    push_endpoint(&mut found.probe, ProbeEndpoint::new(&host, port, protocol));
    let (reload, note) = ctx.reload("vsftpd", "restart", None);
    found.reload = reload;
    found.notes.extend(note);
    partial.found.push(found);
    partial
}

/// ProFTPD: `proftpd.conf` and its `Include`s (Apache-style): `TLSEngine on`,
/// `TLSRSACertificateFile`/`TLSRSACertificateKeyFile`, `TLSECCertificateFile`/`…KeyFile`,
/// `TLSCertificateChainFile`, `Port`, `TLSOptions … UseImplicitSSL`.
pub(super) fn proftpd(ctx: &Ctx<'_>) -> Partial {
    let mut partial = Partial::default();
    let Some(file) = super::first_existing(ctx.root, &["/etc/proftpd/proftpd.conf", "/etc/proftpd.conf"])
    else {
        partial.absent = Some("no /etc/proftpd/proftpd.conf or /etc/proftpd.conf".into());
        return partial;
    };
    let mut directives: Vec<(String, Vec<String>, Origin)> = Vec::new();
    collect(ctx, &file, 0, &mut directives, &mut partial);
    let get = |name: &str| {
        directives
            .iter()
            .rev()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a, o)| (a.first().cloned().unwrap_or_default(), o.clone()))
    };
    if !get("TLSEngine").is_some_and(|(v, _)| v.eq_ignore_ascii_case("on")) {
        partial.absent = Some(format!("{}: TLSEngine is not on", file.display()));
        return partial;
    }
    let port = get("Port").and_then(|(p, _)| p.parse().ok()).unwrap_or(21);
    let implicit = directives
        .iter()
        .any(|(n, a, _)| n.eq_ignore_ascii_case("TLSOptions") && a.iter().any(|x| x == "UseImplicitSSL"));
    let (reload, note) = ctx.reload("proftpd", "reload", None);
    for (cert_name, key_name) in [
        ("TLSRSACertificateFile", "TLSRSACertificateKeyFile"),
        ("TLSECCertificateFile", "TLSECCertificateKeyFile"),
    ] {
        let Some((cert, cert_origin)) = get(cert_name) else { continue };
        let mut origins = vec![cert_origin];
        let key_path = get(key_name).map(|(k, o)| {
            origins.push(o);
            ctx.root.path(&k)
        });
        let mut found = ctx.found(ctx.root.path(&cert), key_path, origins);
        if let Some((chain, o)) = get("TLSCertificateChainFile") {
            found.chain = Some(ctx.root.path(&chain));
            found.origins.push(o);
        }
        let protocol = if implicit { Protocol::Ftps } else { Protocol::Ftp };
        push_endpoint(&mut found.probe, ProbeEndpoint::new("127.0.0.1", port, protocol));
        found.reload = reload.clone();
        found.notes.extend(note.clone());
        partial.found.push(found);
    }
    if partial.found.is_empty() && partial.problems.is_empty() {
        partial.problems.push(
            ctx.problem(
                None,
                format!("{}: TLSEngine is on but no certificate file is named", file.display()),
            ),
        );
    }
    partial
}

fn collect(
    ctx: &Ctx<'_>,
    file: &Path,
    depth: usize,
    out: &mut Vec<(String, Vec<String>, Origin)>,
    partial: &mut Partial,
) {
    let text = match read_config(file) {
        Ok(t) => t,
        Err(e) => {
            partial.problems.push(ctx.problem(None, e));
            return;
        }
    };
    let dir: PathBuf = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    for line in apache_lines(&text) {
        if let ApacheLine::Directive { name, args, line } = line {
            if name.eq_ignore_ascii_case("Include") && depth < 8 {
                let pattern = args.first().cloned().unwrap_or_default();
                match ctx.root.glob(&pattern, &dir) {
                    Ok(files) => {
                        for f in files {
                            collect(ctx, &f, depth + 1, out, partial);
                        }
                    }
                    Err(e) => partial.problems.push(ctx.problem(Some(at(file, line, "Include")), e)),
                }
            } else {
                out.push((name.clone(), args, at(file, line, &name)));
            }
        }
    }
}
