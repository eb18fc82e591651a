//! nginx: `/etc/nginx/nginx.conf` and every file its `include` globs pull in.
//!
//! Each `server` block of `http` (and `stream`) that listens with `ssl` (or says `ssl on`) uses
//! its `ssl_certificate`/`ssl_certificate_key` pairs, or those of the enclosing `http`/`stream`
//! block. Its `listen … ssl` addresses become `https` (`tls` in `stream`) probes, with its first
//! plain `server_name` as SNI.

use std::path::{Path, PathBuf};

use super::text::{Token, nginx_tokens, split_host_port};
use super::{Ctx, Origin, Partial, at, push_endpoint, read_config};
use crate::config::names::is_dns_name;
use crate::config::probe::{ProbeEndpoint, Protocol};

const MAIN: &str = "/etc/nginx/nginx.conf";
const MAX_DEPTH: usize = 16;

/// One directive, with its block if it has one.
#[derive(Debug)]
struct Stmt {
    name: String,
    args: Vec<String>,
    line: usize,
    file: PathBuf,
    block: Option<Vec<Stmt>>,
}

struct Parser<'a, 'b> {
    ctx: &'a Ctx<'b>,
    conf_dir: PathBuf,
    files: usize,
    partial: &'a mut Partial,
}

pub(super) fn discover(ctx: &Ctx<'_>) -> Partial {
    let mut partial = Partial::default();
    let main = ctx.main.clone().unwrap_or_else(|| ctx.root.path(MAIN));
    if !main.exists() {
        partial.absent = Some(format!("no {}", main.display()));
        return partial;
    }
    let conf_dir = main.parent().map(Path::to_path_buf).unwrap_or_default();
    let stmts = {
        let mut parser = Parser { ctx, conf_dir, files: 0, partial: &mut partial };
        match parser.file(&main, 0) {
            Ok(s) => s,
            Err(message) => {
                partial.problems.push(ctx.problem(None, message));
                return partial;
            }
        }
    };
    let reload_own = if ctx.root.is_host() && ctx.main.is_none() {
        vec!["nginx".into(), "-s".into(), "reload".into()]
    } else {
        vec!["nginx".into(), "-c".into(), main.display().to_string(), "-s".into(), "reload".into()]
    };
    let (reload, note) = ctx.reload_main("nginx", "reload", Some(reload_own));
    let mut walker = Walker {
        ctx,
        main_dir: main.parent().unwrap_or(Path::new("/")).to_path_buf(),
        partial: &mut partial,
    };
    for stmt in &stmts {
        match (stmt.name.as_str(), &stmt.block) {
            ("http", Some(block)) => walker.context(block, Protocol::Https),
            ("stream", Some(block)) => walker.context(block, Protocol::Tls),
            _ => {}
        }
    }
    if partial.found.is_empty() && partial.problems.is_empty() {
        partial.absent = Some(format!("{} and its includes configure no TLS server", main.display()));
    }
    for f in &mut partial.found {
        f.reload = reload.clone();
        f.notes.extend(note.clone());
    }
    partial
}

impl Parser<'_, '_> {
    fn file(&mut self, path: &Path, depth: usize) -> Result<Vec<Stmt>, String> {
        self.files += 1;
        if self.files > super::MAX_INCLUDED_FILES {
            return Err(format!(
                "more than {} included files; stopped at {}",
                super::MAX_INCLUDED_FILES,
                path.display()
            ));
        }
        let text = read_config(path)?;
        let tokens = nginx_tokens(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut pos = 0;
        let stmts = self.block(&tokens, &mut pos, path, depth, false)?;
        Ok(stmts)
    }

    fn block(
        &mut self,
        tokens: &[Token],
        pos: &mut usize,
        file: &Path,
        depth: usize,
        nested: bool,
    ) -> Result<Vec<Stmt>, String> {
        let mut stmts = Vec::new();
        loop {
            let Some(first) = tokens.get(*pos) else {
                if nested {
                    return Err(format!("{}: a block is not closed with '}}'", file.display()));
                }
                return Ok(stmts);
            };
            if first.is("}") {
                if !nested {
                    return Err(format!("{}:{}: unexpected '}}'", file.display(), first.line));
                }
                *pos += 1;
                return Ok(stmts);
            }
            let name = first.text.clone();
            let line = first.line;
            *pos += 1;
            let mut args = Vec::new();
            let mut block = None;
            loop {
                let Some(t) = tokens.get(*pos) else {
                    return Err(format!("{}:{line}: the directive {name:?} does not end", file.display()));
                };
                *pos += 1;
                if t.is(";") {
                    break;
                }
                if t.is("{") {
                    block = Some(self.block(tokens, pos, file, depth, true)?);
                    break;
                }
                if t.is("}") {
                    return Err(format!("{}:{}: unexpected '}}'", file.display(), t.line));
                }
                args.push(t.text.clone());
            }
            if block.is_some() {
                stmts.push(Stmt { name, args, line, file: file.to_path_buf(), block });
                continue;
            }
            if name == "include" {
                self.include(&args, line, file, depth, &mut stmts);
            } else {
                stmts.push(Stmt { name, args, line, file: file.to_path_buf(), block: None });
            }
        }
    }

    fn include(&mut self, args: &[String], line: usize, file: &Path, depth: usize, stmts: &mut Vec<Stmt>) {
        let origin = Some(at(file, line, "include"));
        let Some(pattern) = args.first() else { return };
        if depth >= MAX_DEPTH {
            self.partial.problems.push(
                self.ctx
                    .problem(origin, format!("includes nested deeper than {MAX_DEPTH}: {pattern} not read")),
            );
            return;
        }
        let files = match self.ctx.root.glob(pattern, &self.conf_dir) {
            Ok(f) => f,
            Err(e) => {
                self.partial.problems.push(self.ctx.problem(origin, e));
                return;
            }
        };
        for path in files {
            match self.file(&path, depth + 1) {
                Ok(inner) => stmts.extend(inner),
                Err(e) => self.partial.problems.push(self.ctx.problem(origin.clone(), e)),
            }
        }
    }
}

/// The certificate/key directives of one context.
#[derive(Debug, Default, Clone)]
struct Pairs {
    certificates: Vec<(String, Origin)>,
    keys: Vec<(String, Origin)>,
}

impl Pairs {
    fn collect(block: &[Stmt]) -> Pairs {
        let mut pairs = Pairs::default();
        for s in block {
            let Some(value) = s.args.first() else { continue };
            match s.name.as_str() {
                "ssl_certificate" => {
                    pairs.certificates.push((value.clone(), at(&s.file, s.line, "ssl_certificate")))
                }
                "ssl_certificate_key" => {
                    pairs.keys.push((value.clone(), at(&s.file, s.line, "ssl_certificate_key")))
                }
                _ => {}
            }
        }
        pairs
    }
}

struct Walker<'a, 'b> {
    ctx: &'a Ctx<'b>,
    main_dir: PathBuf,
    partial: &'a mut Partial,
}

impl Walker<'_, '_> {
    /// An `http` or `stream` block: its own certificate pairs are inherited by its servers.
    fn context(&mut self, block: &[Stmt], protocol: Protocol) {
        let inherited = Pairs::collect(block);
        for s in block {
            if let ("server", Some(server)) = (s.name.as_str(), &s.block) {
                self.server(server, &inherited, protocol, s);
            }
        }
    }

    fn server(&mut self, block: &[Stmt], inherited: &Pairs, protocol: Protocol, at_stmt: &Stmt) {
        let mut endpoints: Vec<ProbeEndpoint> = Vec::new();
        let mut ssl_on = false;
        let mut plain_listens: Vec<(String, Option<u16>)> = Vec::new();
        let mut server_name = None;
        for s in block {
            match s.name.as_str() {
                "listen" => {
                    let Some(address) = s.args.first() else { continue };
                    if address.starts_with("unix:") {
                        continue;
                    }
                    let Some((host, port)) = split_host_port(address) else {
                        self.partial.problems.push(self.ctx.problem(
                            Some(at(&s.file, s.line, "listen")),
                            format!("cannot read the listen address {address:?}"),
                        ));
                        continue;
                    };
                    if s.args.iter().skip(1).any(|a| a == "ssl") {
                        let host =
                            if host == "localhost" { "127.0.0.1".into() } else { super::probe_host(&host) };
                        let mut e = ProbeEndpoint::new(&host, port.unwrap_or(80), protocol);
                        e.server_name = server_name.clone();
                        push_endpoint(&mut endpoints, e);
                    } else {
                        plain_listens.push((host, port));
                    }
                }
                "ssl" => ssl_on |= s.args.first().is_some_and(|a| a == "on"),
                "server_name" if server_name.is_none() => {
                    server_name = s
                        .args
                        .iter()
                        .find(|n| is_dns_name(n) && n.contains('.') && n.parse::<std::net::IpAddr>().is_err())
                        .cloned();
                    for e in &mut endpoints {
                        e.server_name = server_name.clone();
                    }
                }
                _ => {}
            }
        }
        if ssl_on {
            for (host, port) in plain_listens {
                let mut e = ProbeEndpoint::new(&super::probe_host(&host), port.unwrap_or(443), protocol);
                e.server_name = server_name.clone();
                push_endpoint(&mut endpoints, e);
            }
        }
        let own = Pairs::collect(block);
        let pairs = if own.certificates.is_empty() { inherited.clone() } else { own };
        if endpoints.is_empty() {
            if let Some((certificate, origin)) = pairs.certificates.first()
                && !Pairs::collect(block).certificates.is_empty()
            {
                self.partial.problems.push(self.ctx.problem(
                    Some(origin.clone()),
                    format!(
                        "the server block at {}:{} names {certificate} but does not listen with `ssl`: not a TLS service, left out",
                        at_stmt.file.display(),
                        at_stmt.line
                    ),
                ));
            }
            return;
        }
        if pairs.certificates.is_empty() {
            self.partial.problems.push(self.ctx.problem(
                Some(at(&at_stmt.file, at_stmt.line, "server")),
                "listens with `ssl` but no ssl_certificate applies to it",
            ));
            return;
        }
        for (i, (certificate, cert_origin)) in pairs.certificates.iter().enumerate() {
            let Some((key, key_origin)) = pairs.keys.get(i) else {
                self.partial.problems.push(self.ctx.problem(
                    Some(cert_origin.clone()),
                    format!("{certificate} has no matching ssl_certificate_key"),
                ));
                continue;
            };
            if super::has_variable(certificate)
                || super::has_variable(key)
                || certificate.starts_with("data:")
            {
                self.partial.problems.push(self.ctx.problem(
                    Some(cert_origin.clone()),
                    format!(
                        "{certificate} / {key} uses a variable or inline data: only nginx can tell which files it means"
                    ),
                ));
                continue;
            }
            let mut found = self.ctx.found(
                self.path(certificate),
                Some(self.path(key)),
                vec![cert_origin.clone(), key_origin.clone()],
            );
            found.probe = endpoints.clone();
            self.partial.found.push(found);
        }
    }

    /// A path as named (relative ones are relative to nginx's configuration directory).
    fn path(&self, named: &str) -> PathBuf {
        if named.starts_with('/') { self.ctx.root.path(named) } else { self.main_dir.join(named) }
    }
}
