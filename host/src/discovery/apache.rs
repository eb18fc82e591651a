//! Apache httpd: `/etc/apache2/apache2.conf` (Debian) or `/etc/httpd/conf/httpd.conf` and every
//! `Include`/`IncludeOptional`; `SSLCertificateFile`, `SSLCertificateKeyFile` and
//! `SSLCertificateChainFile` in each `<VirtualHost>` with `SSLEngine on` (or at server level,
//! inherited). The virtual host's addresses become `https` probes, its `ServerName` the SNI.

use std::path::{Path, PathBuf};

use super::text::{ApacheLine, apache_lines, split_host_port};
use super::{Ctx, Origin, Partial, at, push_endpoint, read_config};
use crate::config::names::is_dns_name;
use crate::config::probe::{ProbeEndpoint, Protocol};

const MAX_DEPTH: usize = 16;

#[derive(Debug, Default, Clone)]
struct Tls {
    engine: bool,
    certificate: Option<(String, Origin)>,
    key: Option<(String, Origin)>,
    chain: Option<(String, Origin)>,
}

#[derive(Debug)]
struct VirtualHost {
    addresses: Vec<String>,
    server_name: Option<String>,
    tls: Tls,
    at: Origin,
}

struct State<'a, 'b> {
    ctx: &'a Ctx<'b>,
    server_root: PathBuf,
    global: Tls,
    stack: Vec<Option<VirtualHost>>,
    hosts: Vec<VirtualHost>,
    files: usize,
    partial: &'a mut Partial,
}

pub(super) fn discover(ctx: &Ctx<'_>) -> Partial {
    let mut partial = Partial::default();
    let (main, unit, own) = if let Some(main) = &ctx.main {
        let debian = main.starts_with("/etc/apache2");
        (
            main.clone(),
            if debian { "apache2" } else { "httpd" },
            if debian { "apache2ctl" } else { "apachectl" },
        )
    } else if ctx.root.path("/etc/apache2/apache2.conf").exists() {
        (ctx.root.path("/etc/apache2/apache2.conf"), "apache2", "apache2ctl")
    } else if ctx.root.path("/etc/httpd/conf/httpd.conf").exists() {
        (ctx.root.path("/etc/httpd/conf/httpd.conf"), "httpd", "apachectl")
    } else {
        partial.absent = Some("no /etc/apache2/apache2.conf or /etc/httpd/conf/httpd.conf".into());
        return partial;
    };
    let server_root =
        if unit == "apache2" { ctx.root.path("/etc/apache2") } else { ctx.root.path("/etc/httpd") };
    let mut state = State {
        ctx,
        server_root,
        global: Tls::default(),
        stack: Vec::new(),
        hosts: Vec::new(),
        files: 0,
        partial: &mut partial,
    };
    state.file(&main, 0);
    let State { global, hosts, server_root, .. } = state;
    let path =
        |named: &str| if named.starts_with('/') { ctx.root.path(named) } else { server_root.join(named) };
    let own_reload = if ctx.root.is_host() && ctx.main.is_none() {
        Some(vec![own.to_string(), "graceful".into()])
    } else {
        Some(vec![own.to_string(), "-f".into(), main.display().to_string(), "-k".into(), "graceful".into()])
    };
    let (reload, note) = ctx.reload_main(unit, "reload", own_reload);
    for host in hosts {
        let tls = host.tls.clone();
        if !tls.engine {
            continue;
        }
        let certificate = tls.certificate.clone().or(global.certificate.clone());
        let key = tls.key.clone().or(global.key.clone());
        let chain = tls.chain.clone().or(global.chain.clone());
        let Some((cert, cert_origin)) = certificate else {
            partial
                .problems
                .push(ctx.problem(Some(host.at.clone()), "SSLEngine on, but no SSLCertificateFile applies"));
            continue;
        };
        if super::has_variable(&cert) || key.as_ref().is_some_and(|(k, _)| super::has_variable(k)) {
            partial.problems.push(ctx.problem(
                Some(cert_origin),
                format!("{cert} uses a variable (${{…}}): only Apache can tell which file it means"),
            ));
            continue;
        }
        let mut origins = vec![cert_origin];
        let key_path = key.map(|(k, o)| {
            origins.push(o);
            path(&k)
        });
        let mut found = ctx.found(path(&cert), key_path, origins);
        if let Some((c, o)) = chain {
            found.chain = Some(path(&c));
            found.origins.push(o);
        }
        for address in &host.addresses {
            let Some((h, port)) = split_host_port(address) else { continue };
            let h = if h == "_default_" { String::new() } else { h };
            let mut e = ProbeEndpoint::new(&super::probe_host(&h), port.unwrap_or(443), Protocol::Https);
            e.server_name = host.server_name.clone();
            push_endpoint(&mut found.probe, e);
        }
        found.reload = reload.clone();
        found.notes.extend(note.clone());
        partial.found.push(found);
    }
    partial
}

impl State<'_, '_> {
    fn file(&mut self, file: &Path, depth: usize) {
        self.files += 1;
        if self.files > super::MAX_INCLUDED_FILES {
            return;
        }
        let text = match read_config(file) {
            Ok(t) => t,
            Err(e) => {
                self.partial.problems.push(self.ctx.problem(None, e));
                return;
            }
        };
        for line in apache_lines(&text) {
            match line {
                ApacheLine::Open { name, args, line } => {
                    if name.eq_ignore_ascii_case("VirtualHost") {
                        self.stack.push(Some(VirtualHost {
                            addresses: args,
                            server_name: None,
                            tls: Tls::default(),
                            at: at(file, line, "VirtualHost"),
                        }));
                    } else {
                        self.stack.push(None);
                    }
                }
                ApacheLine::Close { .. } => {
                    if let Some(Some(host)) = self.stack.pop() {
                        self.hosts.push(host);
                    }
                }
                ApacheLine::Directive { name, args, line } => self.directive(file, depth, &name, &args, line),
            }
        }
    }

    fn directive(&mut self, file: &Path, depth: usize, name: &str, args: &[String], line: usize) {
        let lower = name.to_ascii_lowercase();
        let value = args.first().cloned().unwrap_or_default();
        if lower == "serverroot" {
            self.server_root = self.ctx.root.path(&value);
            return;
        }
        if lower == "include" || lower == "includeoptional" {
            if depth >= MAX_DEPTH {
                return;
            }
            match self.ctx.root.glob(&value, &self.server_root.clone()) {
                Ok(files) => {
                    for f in files {
                        self.file(&f, depth + 1);
                    }
                }
                Err(e) => self.partial.problems.push(self.ctx.problem(Some(at(file, line, name)), e)),
            }
            return;
        }
        let host = self.stack.iter_mut().rev().find_map(Option::as_mut);
        let origin = at(file, line, name);
        let (tls, server_name) = match host {
            Some(h) => (&mut h.tls, Some(&mut h.server_name)),
            None => (&mut self.global, None),
        };
        match lower.as_str() {
            "sslengine" => tls.engine = value.eq_ignore_ascii_case("on"),
            "sslcertificatefile" => tls.certificate = Some((value, origin)),
            "sslcertificatekeyfile" => tls.key = Some((value, origin)),
            "sslcertificatechainfile" => tls.chain = Some((value, origin)),
            "servername" => {
                if let Some(slot) = server_name {
                    let name = value.split(':').next().unwrap_or("").to_string();
                    if is_dns_name(&name) && name.contains('.') {
                        *slot = Some(name);
                    }
                }
            }
            _ => {}
        }
    }
}
