//! Configuration: `/etc/checkallsslcerts/config.toml` (TOML, serde).
//!
//! The file is read into the raw serde structs of `raw.rs` (unknown keys are errors), then
//! checked and resolved by `resolve.rs` into [`Config`], where every default is filled in. All
//! problems are collected and reported together, each naming the file, line:column, service and
//! key. `examples/config.toml` documents every key.

pub mod acme;
pub mod errors;
pub mod mail;
pub mod metrics;
pub mod names;
pub mod network;
pub mod policy_trust;
pub mod probe;
mod raw;
mod resolve;
mod system;
pub mod types;

#[cfg(test)]
mod tests;

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use errors::{ConfigError, Problem};
pub use types::{KeyAlgorithm, Layout};

/// Where the configuration is read from when neither `--config` nor the environment says.
pub const DEFAULT_PATH: &str = "/etc/checkallsslcerts/config.toml";

/// The environment variable that overrides [`DEFAULT_PATH`].
pub const PATH_ENV: &str = "CHECKALLSSLCERTS_CONFIG";

/// The default `state-dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/checkallsslcerts";

/// The largest configuration file accepted, in bytes.
pub const MAX_FILE_SIZE: u64 = crate::fs::limits::CONFIG_FILE;

/// The default `placeholder.validity-days`.
pub const DEFAULT_PLACEHOLDER_VALIDITY_DAYS: u32 = 30;

/// The default mode of a certificate file (and of a `combined` file: 0600, it holds the key).
pub const DEFAULT_CERTIFICATE_MODE: u32 = 0o644;

/// The default mode of a private key file.
pub const DEFAULT_KEY_MODE: u32 = 0o600;

/// The default `reload-timeout`.
pub const DEFAULT_RELOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// The resolved configuration: every default filled in, every value checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file this was read from (for messages).
    pub path: PathBuf,
    /// `hostname`, or the system's fully qualified name.
    pub hostname: String,
    /// `main-ips`; empty means "detect".
    pub main_ips: Vec<IpAddr>,
    /// `state-dir` (absolute).
    pub state_dir: PathBuf,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[trust]`.
    pub trust: TrustConfig,
    /// `[placeholder]`.
    pub placeholder: PlaceholderConfig,
    /// `[backups]`: how long the files an install replaced are kept.
    pub backups: BackupsConfig,
    /// `[mail]`: the notification mail.
    pub mail: mail::MailConfig,
    /// `[metrics]`: the Prometheus textfile.
    pub metrics: metrics::MetricsConfig,
    /// `[acme]`: the certificate authority; `None` when no CA is configured.
    pub acme: Option<acme::AcmeConfig>,
    /// `[probe]`: live endpoint probes.
    pub probe: probe::ProbeConfig,
    /// `[network]`: revocation, DNS, CAA and ARI checks.
    pub network: network::NetworkConfig,
    /// `[[service]]`, in file order.
    pub services: Vec<ServiceConfig>,
    /// `[[certificate]]`: the certificate groups, the "hostname" group first (always there).
    pub groups: Vec<CertificateGroup>,
    /// Problems that do not stop the tool (e.g. a key mode that lets the group write), to be
    /// shown to the admin.
    pub warnings: Vec<Problem>,
}

/// `[[certificate]]`: one certificate, with its own key and names, for the services that name it
/// in `certificate-group`. The "hostname" group exists without a table: the server's hostname
/// (plus `acme.extra-names`), for every service that names no group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateGroup {
    /// `name`: `[a-z0-9][a-z0-9-]*`, at most 63 characters; "hostname" configures that group.
    pub name: String,
    /// `names`: the DNS names the certificate is for, main name first (for "hostname": names
    /// added to the hostname, like `acme.extra-names`). The group's services' `names` are added.
    pub names: Vec<String>,
    /// `key`: the key type of this group's certificates; `None`: `[acme] key`.
    pub key: Option<types::KeyAlgorithm>,
}

impl CertificateGroup {
    /// The "hostname" group as a configuration without `[[certificate]]` has it.
    pub fn hostname_default() -> CertificateGroup {
        CertificateGroup { name: HOSTNAME_GROUP.to_string(), names: Vec::new(), key: None }
    }
}

/// The system's fully qualified host name: the default `hostname`.
pub fn system_hostname() -> String {
    system::hostname()
}

/// The name of the hostname's certificate group.
pub use crate::facts::model::HOSTNAME_GROUP;

impl Config {
    /// The certificate group named `name`.
    pub fn group(&self, name: &str) -> Option<&CertificateGroup> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// The configuration as the ACME step sees it for one group: the group's services only (not
    /// check-only ones); for a group other than "hostname", its main name in place of the
    /// hostname, its other names as `extra-names`, and its own state directory
    /// (`<state-dir>/groups/<name>`: pending order, back-off, issued certificates) sharing the
    /// ACME accounts of the main one. `None` without `[acme]` or for an unknown group.
    pub fn for_group(&self, name: &str) -> Option<Config> {
        let group = self.group(name)?;
        let mut acme = self.acme.clone()?;
        if let Some(key) = group.key {
            acme.key = key;
        }
        let mut config = Config {
            services: self
                .services
                .iter()
                .filter(|s| !s.check_only && s.certificate_group == name)
                .cloned()
                .collect(),
            groups: vec![group.clone()],
            ..self.clone_without_services()
        };
        if name == HOSTNAME_GROUP {
            acme.extra_names.extend(group.names.iter().cloned());
        } else {
            let (main, rest) = group.names.split_first()?;
            config.hostname = main.clone();
            acme.extra_names = rest.to_vec();
            config.state_dir = self.state_dir.join("groups").join(name);
            acme.accounts_dir = Some(self.state_dir.join("acme").join("accounts"));
        }
        config.acme = Some(acme);
        Some(config)
    }

    fn clone_without_services(&self) -> Config {
        Config {
            path: self.path.clone(),
            hostname: self.hostname.clone(),
            main_ips: self.main_ips.clone(),
            state_dir: self.state_dir.clone(),
            policy: self.policy.clone(),
            trust: self.trust.clone(),
            placeholder: self.placeholder,
            backups: self.backups,
            mail: self.mail.clone(),
            metrics: self.metrics.clone(),
            acme: self.acme.clone(),
            probe: self.probe,
            network: self.network.clone(),
            services: Vec::new(),
            groups: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The service with this name (a scan: for one look-up; see [`Config::services_by_name`]).
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Every service by name, for code that looks up many (10,000 scans of 10,000 services add
    /// up). The first of a name, as [`Config::service`] finds it.
    pub fn services_by_name(&self) -> std::collections::HashMap<&str, &ServiceConfig> {
        let mut by_name = std::collections::HashMap::with_capacity(self.services.len());
        for service in &self.services {
            by_name.entry(service.name.as_str()).or_insert(service);
        }
        by_name
    }
}

/// `[policy]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyConfig {
    /// `module`: a policy WebAssembly component; `None` = the embedded default policy.
    pub module: Option<PathBuf>,
    /// `[policy.params]`, in file order, values as strings.
    pub params: Vec<(String, String)>,
    /// `trusted-keys` / `trusted-key-files`: who may sign an installed module.
    pub trust: policy_trust::PolicyTrust,
}

/// `[trust]`: what chains are verified against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustConfig {
    /// `extra-roots`: PEM files of additional trusted root certificates (absolute paths).
    pub extra_roots: Vec<PathBuf>,
    /// `system-roots`: use the system trust store (default `true`).
    pub system_roots: bool,
}

impl Default for TrustConfig {
    fn default() -> Self {
        TrustConfig { extra_roots: Vec::new(), system_roots: true }
    }
}

/// `[placeholder]`: the self-signed certificates installed where nothing better is available.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaceholderConfig {
    /// `key`.
    pub key: KeyAlgorithm,
    /// `validity-days`, 1..=825.
    pub validity_days: u32,
}

impl Default for PlaceholderConfig {
    fn default() -> Self {
        PlaceholderConfig { key: KeyAlgorithm::default(), validity_days: DEFAULT_PLACEHOLDER_VALIDITY_DAYS }
    }
}

/// `[backups]`: the backups of the files an install replaced (`<state-dir>/backups/<service>/`).
/// A backup is deleted only when it is beyond the newest `keep` of its service **and** older
/// than `keep-days`; the newest is never deleted, so a rollback stays possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupsConfig {
    /// `keep`: 1..=1000, default 10.
    pub keep: u32,
    /// `keep-days`: 0..=3650, default 0 (the count alone decides).
    pub keep_days: u32,
}

impl Default for BackupsConfig {
    fn default() -> Self {
        BackupsConfig { keep: 10, keep_days: 0 }
    }
}

/// One `[[service]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `name`: unique, `[A-Za-z0-9._-]+`.
    pub name: String,
    /// `certificate`: absolute path of the certificate file (the combined file for `combined`).
    pub certificate: PathBuf,
    /// `key`: absolute path of the private key; `None` exactly when the layout is `combined`.
    pub key: Option<PathBuf>,
    /// `chain`: absolute path of a separate intermediates file (`separate` layout only).
    pub chain: Option<PathBuf>,
    /// `layout`.
    pub layout: Layout,
    /// `names`: extra DNS names for placeholders and orders (wildcards allowed).
    pub names: Vec<String>,
    /// `owner`: user name or numeric uid of the installed files.
    pub owner: Option<String>,
    /// `group`: group name or numeric gid of the installed files.
    pub group: Option<String>,
    /// `certificate-mode`, if set: the mode of the certificate and chain files, or of the one
    /// file of `combined` (which holds the key). Not set: an existing file keeps its mode (a file
    /// holding a key loses any bit for others); a new one gets [`DEFAULT_CERTIFICATE_MODE`]
    /// (`combined`: [`DEFAULT_KEY_MODE`]).
    pub certificate_mode: Option<u32>,
    /// `key-mode`, if set (`separate` layout only). Not set: an existing key keeps its mode less
    /// any bit for others; a new one gets [`DEFAULT_KEY_MODE`].
    pub key_mode: Option<u32>,
    /// `allow-world-readable-key`: accept a key (or combined file) mode readable by others.
    pub allow_world_readable_key: bool,
    /// `reload`: the commands run in order after installing, each an argv (never through a
    /// shell); empty: nothing is reloaded. One argv in the file is a list of one.
    pub reload: Vec<Vec<String>>,
    /// `reload-timeout`: 1..=600 s, default 30 s (for each command).
    pub reload_timeout: Duration,
    /// `probe`: live endpoints that serve this certificate.
    pub probe: Vec<probe::ProbeEndpoint>,
    /// `certificate-group`: the `[[certificate]]` group whose certificate this service gets;
    /// default "hostname".
    pub certificate_group: String,
    /// `check-only`: the certificate is checked and reported, never replaced (its key lives
    /// elsewhere: a load balancer's, an appliance's); `key` is then optional and not read.
    pub check_only: bool,
}

impl ServiceConfig {
    /// A `separate`-layout service with every optional setting at its default (for tests and
    /// for code that builds services itself).
    pub fn separate(name: &str, certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        ServiceConfig {
            name: name.to_owned(),
            certificate: certificate.into(),
            key: Some(key.into()),
            chain: None,
            layout: Layout::Separate,
            names: Vec::new(),
            owner: None,
            group: None,
            certificate_mode: None,
            key_mode: None,
            allow_world_readable_key: false,
            reload: Vec::new(),
            reload_timeout: DEFAULT_RELOAD_TIMEOUT,
            probe: Vec::new(),
            certificate_group: HOSTNAME_GROUP.to_string(),
            check_only: false,
        }
    }

    /// A `combined`-layout service (leaf + chain + key in `file`) with every optional setting at
    /// its default.
    pub fn combined(name: &str, file: impl Into<PathBuf>) -> Self {
        ServiceConfig {
            key: None,
            layout: Layout::Combined,
            ..ServiceConfig::separate(name, file, PathBuf::new())
        }
    }

    /// The file that holds the private key: `key`, or `certificate` for `combined`.
    pub fn key_file(&self) -> &Path {
        self.key.as_deref().unwrap_or(&self.certificate)
    }
}

/// The configuration file to read when `--config` is not given: `$CHECKALLSSLCERTS_CONFIG` if
/// set and not empty, otherwise [`DEFAULT_PATH`].
pub fn default_path() -> PathBuf {
    match std::env::var_os(PATH_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// Reads, parses and checks the configuration file at `path`.
///
/// The configuration's reload commands run as root, so the file is refused when anyone but root
/// (or the user running the tool) could change it — it, or a directory above it (see
/// [`crate::fs::check_trusted`]); the error names the file and the fix.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    match crate::fs::check_trusted(&absolute) {
        Err(e) if !e.is_not_found() => {
            return Err(ConfigError::Untrusted { path: path.to_owned(), message: e.to_string() });
        }
        _ => {}
    }
    let text = read_file(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    from_str(&text, path)
}

/// Parses and checks configuration `text`; `path` is only used in messages and [`Config::path`].
pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    resolve::parse_and_resolve(text, path, &system::hostname)
}

/// Reads the file, refusing anything but a regular file of at most [`MAX_FILE_SIZE`] bytes
/// (without blocking on a FIFO, and without reading a huge file to the end).
fn read_file(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other(if meta.is_dir() {
            "it is a directory"
        } else {
            "it is not a regular file"
        }));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(std::io::Error::other(format!(
            "it is too large ({} bytes; the limit is {MAX_FILE_SIZE})",
            meta.len()
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(std::io::Error::other(format!("it is too large (more than {MAX_FILE_SIZE} bytes)")));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::other(format!("it is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
    })
}
