//! Discovery: which certificates the host's daemons use, read from their own configuration.
//!
//! With no `[[service]]` configured (a newcomer's first run), the main run uses what this finds;
//! `checkallsslcerts services` lists it with where each file was named (file:line, or the
//! command that said it), and `--print-config` writes it as configuration to adopt.
//!
//! | daemon | read from | reload (no systemd) | probe |
//! |---|---|---|---|
//! | nginx | `/etc/nginx/nginx.conf` and its `include`s: `ssl_certificate`, `ssl_certificate_key`, `listen … ssl`, `server_name` | `nginx -s reload` | `https` on each `listen … ssl` |
//! | Apache | `/etc/apache2/apache2.conf` or `/etc/httpd/conf/httpd.conf` and `Include[Optional]`: `SSLCertificateFile`, `SSLCertificateKeyFile`, `SSLCertificateChainFile` in `<VirtualHost>` | `apachectl graceful` | `https` on the virtual host's port |
//! | Postfix | `postconf -x -h smtpd_tls_cert_file smtpd_tls_key_file smtpd_tls_chain_files …`; `master.cf` for the listeners | `postfix reload` | `smtp` (STARTTLS) / `smtps` per `smtpd` listener |
//! | Dovecot | `doveconf -h ssl ssl_cert ssl_key …` (values start with `<`); the `inet_listener`s | `doveadm reload` | `imap`, `imaps`, `pop3`, `pop3s`, `smtp` (submission) |
//! | Exim | `exim4.conf`/`exim.conf`: `tls_certificate`, `tls_privatekey` (macros expanded, no `${…}`) | none | `smtp` on `daemon_smtp_ports` |
//! | Pure-FTPd | `/etc/pure-ftpd/conf/{TLS,CertFile}` or `pure-ftpd.conf`: one combined PEM | none | `ftp` (AUTH TLS) |
//! | vsftpd | `vsftpd.conf`: `ssl_enable`, `rsa_cert_file`, `rsa_private_key_file` | none | `ftp` or `ftps` |
//! | ProFTPD | `proftpd.conf` and `Include`s: `TLSRSACertificateFile`, `TLSRSACertificateKeyFile`, `TLSCertificateChainFile` | none | `ftp` on `Port` |
//! | HAProxy | `haproxy.cfg`: `crt` on `bind … ssl` lines (combined PEM, or a directory of them) | none | `tls` on the bind address |
//!
//! When systemd runs the host (`/run/systemd/system` exists) the reload is `systemctl reload
//! <unit>` (`restart` for the FTP servers and Exim, which have no reload). With a root prefix
//! ([`ROOT_ENV`], `services --root DIR`) every file — configurations and the certificates they
//! name — is read under the prefix, as in a mounted system image; `postconf -c` and
//! `doveconf -c` are pointed at the prefixed configuration, and reload commands name it too.
//!
//! Discovery never guesses silently: a configuration that exists but cannot be read or
//! understood (a variable in a path, an expansion, a helper program that fails) is a
//! [`Problem`]; a daemon whose configuration is absent is listed as not found.

mod apache;
mod dovecot;
mod exim;
mod ftp;
mod haproxy;
mod nginx;
mod postfix;
pub mod running;
mod text;
pub mod toml_out;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::probe::ProbeEndpoint;
use crate::config::{DEFAULT_CERTIFICATE_MODE, DEFAULT_KEY_MODE, Layout, ServiceConfig};

/// The environment variable naming a root prefix to discover under (tests, system images).
pub const ROOT_ENV: &str = "CHECKALLSSLCERTS_DISCOVERY_ROOT";

/// How long a helper program (`postconf`, `doveconf`) may run.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest configuration file read, in bytes.
pub const MAX_CONFIG_FILE: u64 = 4 * 1024 * 1024;

/// How many files one `include` tree may pull in.
const MAX_INCLUDED_FILES: usize = 2000;

/// The daemons discovery knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Daemon {
    Nginx,
    Apache,
    Postfix,
    Dovecot,
    Exim,
    PureFtpd,
    Vsftpd,
    Proftpd,
    Haproxy,
}

impl Daemon {
    /// Every daemon, in the order they are looked for.
    pub const ALL: [Daemon; 9] = [
        Daemon::Nginx,
        Daemon::Apache,
        Daemon::Postfix,
        Daemon::Dovecot,
        Daemon::Exim,
        Daemon::PureFtpd,
        Daemon::Vsftpd,
        Daemon::Proftpd,
        Daemon::Haproxy,
    ];

    /// The name used for its services.
    pub fn name(self) -> &'static str {
        match self {
            Daemon::Nginx => "nginx",
            Daemon::Apache => "apache",
            Daemon::Postfix => "postfix",
            Daemon::Dovecot => "dovecot",
            Daemon::Exim => "exim",
            Daemon::PureFtpd => "pure-ftpd",
            Daemon::Vsftpd => "vsftpd",
            Daemon::Proftpd => "proftpd",
            Daemon::Haproxy => "haproxy",
        }
    }
}

impl fmt::Display for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a setting was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a configuration file (the path as read, with the root prefix).
    File { path: PathBuf, line: usize, directive: String },
    /// The output of a helper program.
    Command { argv: Vec<String>, setting: String },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, directive } => write!(f, "{}:{line} ({directive})", path.display()),
            Origin::Command { argv, setting } => write!(f, "`{}` ({setting})", argv.join(" ")),
        }
    }
}

/// One certificate a daemon uses: a service to manage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub daemon: Daemon,
    /// The service name (unique among the found ones).
    pub name: String,
    /// The certificate file (the combined file for [`Layout::Combined`]), with the root prefix.
    pub certificate: PathBuf,
    pub key: Option<PathBuf>,
    pub chain: Option<PathBuf>,
    pub layout: Layout,
    /// The reload commands, run in order (several when daemons share the file); empty when none
    /// is known (see `notes`).
    pub reload: Vec<Vec<String>>,
    /// The endpoints that serve it.
    pub probe: Vec<ProbeEndpoint>,
    /// Where the files were named.
    pub origins: Vec<Origin>,
    /// Things the admin should know (a shared file, no reload command known...).
    pub notes: Vec<String>,
}

/// Something discovery could not read or understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub daemon: Daemon,
    pub origin: Option<Origin>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.daemon)?;
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// What discovery found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// The root prefix used ("/" normally).
    pub root: PathBuf,
    pub found: Vec<Found>,
    pub problems: Vec<Problem>,
    /// Daemons whose configuration is not there, with what was looked for.
    pub absent: Vec<(Daemon, String)>,
}

/// How to discover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Read everything under this directory ("/" = the host itself).
    pub root: PathBuf,
    /// Reload through `systemctl` (the host runs systemd).
    pub systemd: bool,
    /// Main configuration files besides the standard ones: daemons started with their own
    /// (`nginx -c FILE`...), found by [`running::main_configs`]. Each is read like the standard
    /// one, and its services reload through the daemon's own command naming that file.
    pub mains: Vec<(Daemon, PathBuf)>,
}

impl Options {
    /// The host's options: the root from [`ROOT_ENV`] (default "/"), systemd if it runs and the
    /// root is "/".
    pub fn from_env() -> Options {
        let root = match std::env::var_os(ROOT_ENV) {
            Some(r) if !r.is_empty() => PathBuf::from(r),
            _ => PathBuf::from("/"),
        };
        Options::with_root(root)
    }

    /// The options for a root prefix.
    pub fn with_root(root: PathBuf) -> Options {
        let systemd = root == Path::new("/") && Path::new("/run/systemd/system").is_dir();
        Options { root, systemd, mains: Vec::new() }
    }
}

/// The standard main configuration files, read anyway.
const STANDARD_MAINS: [&str; 6] = [
    "/etc/nginx/nginx.conf",
    "/etc/apache2/apache2.conf",
    "/etc/httpd/conf/httpd.conf",
    "/etc/dovecot/dovecot.conf",
    "/etc/haproxy/haproxy.cfg",
    "/etc/postfix",
];

fn is_standard_main(path: &Path) -> bool {
    STANDARD_MAINS.iter().any(|m| path == Path::new(m))
}

/// What one daemon's reader returns.
#[derive(Debug, Default)]
pub(crate) struct Partial {
    pub found: Vec<Found>,
    pub problems: Vec<Problem>,
    pub absent: Option<String>,
}

/// Looks for every daemon's certificates.
pub fn discover(options: &Options) -> Discovery {
    let root = Root::new(&options.root);
    let mut discovery = Discovery { root: options.root.clone(), ..Discovery::default() };
    let runs = Daemon::ALL.iter().map(|d| (*d, None)).chain(
        options
            .mains
            .iter()
            .filter(|(_, main)| !is_standard_main(main))
            .map(|(d, main)| (*d, Some(main.clone()))),
    );
    for (daemon, main) in runs {
        let ctx = Ctx { root: &root, daemon, systemd: options.systemd, main };
        let partial = match daemon {
            Daemon::Nginx => nginx::discover(&ctx),
            Daemon::Apache => apache::discover(&ctx),
            Daemon::Postfix => postfix::discover(&ctx),
            Daemon::Dovecot => dovecot::discover(&ctx),
            Daemon::Exim => exim::discover(&ctx),
            Daemon::PureFtpd => ftp::pure_ftpd(&ctx),
            Daemon::Vsftpd => ftp::vsftpd(&ctx),
            Daemon::Proftpd => ftp::proftpd(&ctx),
            Daemon::Haproxy => haproxy::discover(&ctx),
        };
        if let Some(what) = partial.absent
            && partial.found.is_empty()
            && partial.problems.is_empty()
            && ctx.main.is_none()
        {
            discovery.absent.push((daemon, what));
        }
        discovery.found.extend(partial.found);
        discovery.problems.extend(partial.problems);
    }
    merge_shared(&mut discovery.found);
    name_services(&mut discovery.found);
    discovery
}

/// Certificates used by several daemons (or several parts of one) are one service: installing
/// the same files twice in one run would leave the first daemon with a certificate that the
/// second install replaced. The endpoints are merged, and so are the reload commands: each
/// daemon's once, in discovery order, so that every daemon re-reads the file after an install.
fn merge_shared(found: &mut Vec<Found>) {
    let mut merged: Vec<Found> = Vec::with_capacity(found.len());
    for f in found.drain(..) {
        match merged.iter_mut().find(|m| m.certificate == f.certificate) {
            Some(m) => {
                for e in f.probe {
                    if !m.probe.iter().any(|p| p.host == e.host && p.port == e.port) {
                        m.probe.push(e);
                    }
                }
                for o in f.origins {
                    if !m.origins.contains(&o) {
                        m.origins.push(o);
                    }
                }
                for r in f.reload.iter() {
                    if !m.reload.contains(r) {
                        m.reload.push(r.clone());
                    }
                }
                if f.reload.is_empty() && f.daemon != m.daemon {
                    m.notes.push(format!(
                        "{} uses the same certificate file, but no reload command is known for it: add \
                         one to this service's `reload` list, or the after-install check finds the old \
                         certificate still served at its endpoints",
                        f.daemon
                    ));
                }
                for n in f.notes {
                    if !m.notes.contains(&n) {
                        m.notes.push(n);
                    }
                }
                if m.key != f.key {
                    m.notes.push(format!(
                        "{} names the same certificate with the key {}; the key used here is {}",
                        f.daemon,
                        f.key.as_deref().unwrap_or(&f.certificate).display(),
                        m.key.as_deref().unwrap_or(&m.certificate).display()
                    ));
                }
            }
            None => merged.push(f),
        }
    }
    *found = merged;
}

/// Unique, valid service names: the daemon's name, then `daemon-<file stem>` for the others.
fn name_services(found: &mut [Found]) {
    let mut used: Vec<String> = Vec::new();
    for f in found.iter_mut() {
        let mut name = f.daemon.name().to_string();
        if used.contains(&name) {
            let stem =
                f.certificate.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let clean: String = stem
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
                .collect();
            name = format!("{}-{}", f.daemon.name(), clean.trim_matches('-'));
            name.truncate(60);
        }
        let base = name.clone();
        let mut n = 2;
        while used.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        used.push(name.clone());
        f.name = name;
    }
}

impl Found {
    /// The service configuration for this certificate: the files, the reload command, the
    /// endpoints, and the current files' modes where they are safe (so an install keeps them).
    pub fn to_service(&self) -> ServiceConfig {
        let mut service = match self.layout {
            Layout::Separate => ServiceConfig::separate(
                &self.name,
                &self.certificate,
                self.key.clone().unwrap_or_else(|| self.certificate.clone()),
            ),
            Layout::Combined => ServiceConfig::combined(&self.name, &self.certificate),
        };
        service.chain = self.chain.clone();
        service.reload = self.reload.clone();
        service.probe = self.probe.clone();
        let (certificate_mode, key_mode) = self.modes();
        service.certificate_mode = Some(certificate_mode);
        service.key_mode = (self.layout == Layout::Separate).then_some(key_mode);
        service
    }

    /// The modes to install with: the current ones, unless a key would be readable by others.
    pub fn modes(&self) -> (u32, u32) {
        let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777);
        let safe_key = |m: u32| if m & 0o007 == 0 { m } else { DEFAULT_KEY_MODE };
        match self.layout {
            Layout::Combined => {
                let m = mode(&self.certificate).map_or(DEFAULT_KEY_MODE, safe_key);
                (m, DEFAULT_KEY_MODE)
            }
            Layout::Separate => (
                mode(&self.certificate).map_or(DEFAULT_CERTIFICATE_MODE, |m| m & 0o755),
                self.key.as_deref().and_then(mode).map_or(DEFAULT_KEY_MODE, safe_key),
            ),
        }
    }
}

/// The root prefix: maps the paths a configuration names to where they are read.
#[derive(Debug, Clone)]
pub(crate) struct Root {
    dir: PathBuf,
}

impl Root {
    pub fn new(dir: &Path) -> Root {
        Root { dir: dir.to_path_buf() }
    }

    /// Whether this is the host itself.
    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// An absolute path as named in a configuration, under the prefix.
    pub fn path(&self, named: &str) -> PathBuf {
        if self.is_host() {
            return PathBuf::from(named);
        }
        self.dir.join(named.trim_start_matches('/'))
    }

    /// Files matching `pattern` (absolute as named, or relative to `base`, a real directory),
    /// sorted. A pattern without wildcards that names no file yields nothing.
    pub fn glob(&self, pattern: &str, base: &Path) -> Result<Vec<PathBuf>, String> {
        let full = if pattern.starts_with('/') {
            let prefix = if self.is_host() {
                String::new()
            } else {
                glob::Pattern::escape(&self.dir.to_string_lossy()).trim_end_matches('/').to_string()
            };
            format!("{prefix}{pattern}")
        } else {
            format!("{}/{pattern}", glob::Pattern::escape(&base.to_string_lossy()).trim_end_matches('/'))
        };
        let paths =
            glob::glob(&full).map_err(|e| format!("the pattern {pattern:?} is not a valid glob: {e}"))?;
        let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).filter(|p| p.is_file()).collect();
        files.sort();
        Ok(files)
    }
}

/// What every daemon reader gets.
pub(crate) struct Ctx<'a> {
    pub root: &'a Root,
    pub daemon: Daemon,
    pub systemd: bool,
    /// The daemon's main configuration, when not the standard one (see [`Options::mains`]).
    pub main: Option<PathBuf>,
}

impl Ctx<'_> {
    pub fn problem(&self, origin: Option<Origin>, message: impl Into<String>) -> Problem {
        Problem { daemon: self.daemon, origin, message: message.into() }
    }

    /// [`Ctx::reload`], but a daemon started with its own main configuration ([`Ctx::main`]) is
    /// reloaded by its own command naming that file: the standard unit is another instance.
    pub fn reload_main(
        &self,
        unit: &str,
        verb: &str,
        own: Option<Vec<String>>,
    ) -> (Vec<Vec<String>>, Option<String>) {
        match (&self.main, own) {
            (Some(_), Some(own)) => (vec![own], None),
            (_, own) => self.reload(unit, verb, own),
        }
    }

    /// The reload command: `systemctl <verb> <unit>` under systemd, else `own` if given; as a
    /// list of commands (empty: none known, with a note saying so).
    pub fn reload(
        &self,
        unit: &str,
        verb: &str,
        own: Option<Vec<String>>,
    ) -> (Vec<Vec<String>>, Option<String>) {
        if self.systemd {
            return (vec![vec!["systemctl".into(), verb.into(), unit.into()]], None);
        }
        match own {
            Some(argv) => (vec![argv], None),
            None => (
                Vec::new(),
                Some(format!(
                    "no reload command is known for {} without systemd: set `reload` yourself (the \
                     after-install check will otherwise find the old certificate still served)",
                    self.daemon
                )),
            ),
        }
    }

    /// A bare `Found` with the daemon set.
    pub fn found(&self, certificate: PathBuf, key: Option<PathBuf>, origins: Vec<Origin>) -> Found {
        Found {
            daemon: self.daemon,
            name: String::new(),
            layout: if key.is_some() { Layout::Separate } else { Layout::Combined },
            certificate,
            key,
            chain: None,
            reload: Vec::new(),
            probe: Vec::new(),
            origins,
            notes: Vec::new(),
        }
    }
}

/// Reads a configuration file as text, bounded.
pub(crate) fn read_config(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {}", path.display(), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_CONFIG_FILE {
        return Err(format!("{} is larger than {MAX_CONFIG_FILE} bytes", path.display()));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The first of `candidates` (as named) that exists under the root.
pub(crate) fn first_existing(root: &Root, candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(|c| root.path(c)).find(|p| p.exists())
}

/// The first of `candidates` that exists under the root, and its text; or the [`Partial`] that
/// says none exists ("no A or B") or why it could not be read.
pub(crate) fn read_first(ctx: &Ctx<'_>, candidates: &[&str]) -> Result<(PathBuf, String), Partial> {
    let Some(file) = first_existing(ctx.root, candidates) else {
        return Err(Partial {
            absent: Some(format!("no {}", candidates.join(" or "))),
            ..Partial::default()
        });
    };
    read_config(&file)
        .map(|text| (file, text))
        .map_err(|e| Partial { problems: vec![ctx.problem(None, e)], ..Partial::default() })
}

/// Finds a program on `PATH`, then in the usual system directories.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
                .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs a helper program (argv, no shell) and returns its standard output; fails on a non-zero
/// exit (quoting standard error), a missing program, or [`COMMAND_TIMEOUT`].
pub(crate) fn command_output(argv: &[String]) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("empty command".into());
    };
    let Some(path) = find_program(program) else {
        return Err(format!("{program} is not installed (not found on PATH or in /usr/sbin)"));
    };
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.take(MAX_CONFIG_FILE).read_to_end(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.take(64 * 1024).read_to_end(&mut s);
        }
        s
    });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{}` did not finish within {}s",
                    argv.join(" "),
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for {program}: {e}")),
        }
    };
    let out = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let err = String::from_utf8_lossy(&err.join().unwrap_or_default()).trim().to_string();
    if !status.success() {
        let detail = if err.is_empty() { String::new() } else { format!(": {}", text::clip(&err, 300)) };
        return Err(format!("`{}` failed ({status}){detail}", argv.join(" ")));
    }
    Ok(out)
}

/// The endpoint host for a listen address: a wildcard is probed on loopback.
pub(crate) fn probe_host(address: &str) -> String {
    match address.trim_matches(|c| c == '[' || c == ']') {
        "" | "*" | "0.0.0.0" => "127.0.0.1".into(),
        "::" => "::1".into(),
        other => other.to_string(),
    }
}

/// Adds `endpoint` unless the same host and port is already there. Loopback IPv4 is preferred:
/// `[::1]` is not added beside `127.0.0.1` on the same port (wildcard listeners on both).
pub(crate) fn push_endpoint(endpoints: &mut Vec<ProbeEndpoint>, endpoint: ProbeEndpoint) {
    let same_port_v4 = |e: &ProbeEndpoint| e.host == "127.0.0.1" && e.port == endpoint.port;
    if endpoint.host == "::1" && endpoints.iter().any(same_port_v4) {
        return;
    }
    if endpoint.host == "127.0.0.1" {
        endpoints.retain(|e| !(e.host == "::1" && e.port == endpoint.port));
    }
    if !endpoints.iter().any(|e| e.host == endpoint.host && e.port == endpoint.port) {
        endpoints.push(endpoint);
    }
}

/// The origin `file:line (directive)`.
pub(crate) fn at(file: &Path, line: usize, directive: &str) -> Origin {
    Origin::File { path: file.to_path_buf(), line, directive: directive.to_string() }
}

/// Whether a path names a variable or an expansion that only the daemon can evaluate.
pub(crate) fn has_variable(value: &str) -> bool {
    value.contains('$') || value.contains('%')
}

/// For the main run: when `config` has no `[[service]]`, a copy with the discovered services
/// (root from [`ROOT_ENV`]) and the messages that say so. `None` when services are configured.
pub fn for_run(config: &crate::config::Config) -> Option<(crate::config::Config, Vec<String>)> {
    if !config.services.is_empty() {
        return None;
    }
    let discovery = discover(&Options::from_env());
    let mut messages = Vec::new();
    let mut with = config.clone();
    with.services = discovery.found.iter().map(Found::to_service).collect();
    if discovery.found.is_empty() {
        messages.push(format!(
            "No [[service]] is configured in {} and discovery found no certificate in the daemons' \
             configuration: nothing to check. Add [[service]] tables (see examples/config.toml).",
            config.path.display()
        ));
    } else {
        let list: Vec<String> = discovery
            .found
            .iter()
            .map(|f| {
                format!(
                    "{} ({}, from {})",
                    f.name,
                    f.certificate.display(),
                    f.origins.first().map(ToString::to_string).unwrap_or_default()
                )
            })
            .collect();
        messages.push(format!(
            "No [[service]] is configured in {}: using {} service(s) discovered from the daemons' own \
             configuration: {}. Adopt them with `checkallsslcerts services --print-config`.",
            config.path.display(),
            discovery.found.len(),
            list.join("; ")
        ));
    }
    messages.extend(discovery.problems.iter().map(|p| format!("discovery could not read: {p}")));
    Some((with, messages))
}
