//! From the raw file to [`Config`]: parse errors with line:column and key, then every value
//! checked, every problem collected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_path_to_error::Segment;
use toml::Spanned;

use super::errors::{ConfigError, Problem, line_col};
use super::names::{is_dns_name, is_dns_name_or_wildcard};
use super::raw::{RawCertificateGroup, RawConfig, RawService, StringOrInteger};
use super::types::Layout;
use super::{
    CertificateGroup, Config, DEFAULT_RELOAD_TIMEOUT, DEFAULT_STATE_DIR, HOSTNAME_GROUP, PlaceholderConfig,
    PolicyConfig, ServiceConfig, TrustConfig,
};

/// The longest validity a placeholder may have (the CA/Browser Forum's old 825-day cap).
const MAX_PLACEHOLDER_DAYS: i64 = 825;
/// The longest `reload-timeout`, in seconds.
const MAX_RELOAD_TIMEOUT: i64 = 600;
/// The largest file mode (permission bits plus setuid/setgid/sticky).
const MAX_MODE: u32 = 0o7777;

pub(super) fn parse_and_resolve(
    text: &str,
    path: &Path,
    system_hostname: &dyn Fn() -> String,
) -> Result<Config, ConfigError> {
    let raw = parse(text, path)?;
    Resolver { text, path, errors: Vec::new(), warnings: Vec::new() }.resolve(raw, system_hostname)
}

fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| parse_error(text, path, &e, None, None))?;
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let (service, key) = describe_path(text, e.path());
        parse_error(text, path, e.inner(), service, key)
    })
}

fn parse_error(
    text: &str,
    path: &Path,
    error: &toml::de::Error,
    service: Option<String>,
    key: Option<String>,
) -> ConfigError {
    let (line, column) = line_col(text, error.span().map_or(text.len(), |s| s.start));
    let message = error.message().trim().to_owned();
    let key = match (service, key) {
        (Some(service), Some(key)) => Some(format!("service \"{service}\": `{key}`")),
        (Some(service), None) => Some(format!("service \"{service}\"")),
        (None, Some(key)) => Some(format!("`{key}`")),
        (None, None) => None,
    };
    ConfigError::Parse { path: path.to_owned(), line, column, key, message }
}

/// The service (by name, else `#N`) and the dotted key of a serde path such as
/// `service[1].$__serde_spanned_private_value.key-mode`.
fn describe_path(text: &str, path: &serde_path_to_error::Path) -> (Option<String>, Option<String>) {
    let segments: Vec<&Segment> = path
        .iter()
        .filter(|s| !matches!(s, Segment::Map { key } if key.starts_with("$__serde_spanned")))
        .collect();
    let (service, rest) = match segments.as_slice() {
        [Segment::Map { key }, Segment::Seq { index }, rest @ ..] if key == "service" => {
            (Some(service_label(text, *index)), rest)
        }
        all => (None, all),
    };
    let mut key = String::new();
    for segment in rest {
        match segment {
            Segment::Map { key: k } | Segment::Enum { variant: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            Segment::Unknown => {}
        }
    }
    (service, (!key.is_empty()).then_some(key))
}

/// The name of the `index`th `[[service]]` if the file says one, else `#N` (1-based).
fn service_label(text: &str, index: usize) -> String {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|table| {
            let services = table.get("service")?.as_array()?;
            let name = services.get(index)?.as_table()?.get("name")?.as_str()?;
            is_service_name(name).then(|| name.to_owned())
        })
        .unwrap_or_else(|| format!("#{}", index + 1))
}

fn is_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A user or group name as `useradd` accepts it (or a numeric id).
fn is_account_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let body = bytes.strip_suffix(b"$").unwrap_or(bytes);
    !body.is_empty()
        && bytes.len() <= 32
        && (body.iter().all(u8::is_ascii_digit)
            || ((body[0].is_ascii_alphabetic() || body[0] == b'_')
                && body.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))))
}

struct Resolver<'a> {
    text: &'a str,
    path: &'a Path,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Resolver<'_> {
    fn problem(
        &self,
        span: Option<Range<usize>>,
        service: Option<&str>,
        key: &str,
        message: String,
    ) -> Problem {
        Problem {
            path: self.path.to_owned(),
            location: span.map(|s| line_col(self.text, s.start)),
            service: service.map(str::to_owned),
            key: key.to_owned(),
            message,
        }
    }

    fn error(&mut self, span: Option<Range<usize>>, service: Option<&str>, key: &str, message: String) {
        let p = self.problem(span, service, key, message);
        self.errors.push(p);
    }

    fn warn(&mut self, span: Option<Range<usize>>, service: Option<&str>, key: &str, message: String) {
        let p = self.problem(span, service, key, message);
        self.warnings.push(p);
    }

    fn resolve(
        mut self,
        raw: RawConfig,
        system_hostname: &dyn Fn() -> String,
    ) -> Result<Config, ConfigError> {
        let hostname = match &raw.hostname {
            Some(h) if is_dns_name(h.get_ref()) && h.get_ref().parse::<IpAddr>().is_err() => {
                h.get_ref().clone()
            }
            Some(h) => {
                self.error(
                    Some(h.span()),
                    None,
                    "hostname",
                    format!(
                        "{:?} is not a valid host name (letters, digits and hyphens, labels separated by dots)",
                        h.get_ref()
                    ),
                );
                String::new()
            }
            None => system_hostname(),
        };

        let mut main_ips = Vec::new();
        for ip in raw.main_ips.iter().flatten() {
            match ip.get_ref().trim().parse::<IpAddr>() {
                Ok(addr) => main_ips.push(addr),
                Err(_) => self.error(
                    Some(ip.span()),
                    None,
                    "main-ips",
                    format!("{:?} is not an IPv4 or IPv6 address", ip.get_ref()),
                ),
            }
        }

        let state_dir = match &raw.state_dir {
            Some(dir) => self.absolute_path(dir, None, "state-dir").unwrap_or_default(),
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };

        let policy = self.policy(&raw);
        let trust = self.trust(&raw);
        let placeholder = self.placeholder(&raw);
        let backups = self.backups(&raw);
        let (text, path) = (self.text, self.path);
        let mail =
            super::mail::resolve(&raw.mail, &hostname, text, path, &mut self.errors, &mut self.warnings);
        let metrics = super::metrics::resolve(&raw.metrics, text, path, &mut self.errors, &mut self.warnings);
        let acme = super::acme::resolve(raw.acme.as_ref(), self.text, self.path, &mut self.errors);
        let probe = super::probe::resolve_settings(&raw.probe, self.text, self.path, &mut self.errors);
        let network = super::network::resolve(&raw.network, &mut |span, key, message| {
            self.error(Some(span), None, key, message)
        });
        let services = self.services(&raw.services);
        let groups = self.groups(&raw.certificates, &services);

        if self.errors.is_empty() {
            Ok(Config {
                path: self.path.to_owned(),
                hostname,
                main_ips,
                state_dir,
                policy,
                trust,
                placeholder,
                backups,
                acme,
                mail,
                metrics,
                probe,
                network,
                services,
                groups,
                warnings: self.warnings,
            })
        } else {
            Err(ConfigError::Invalid { path: self.path.to_owned(), problems: self.errors })
        }
    }

    fn policy(&mut self, raw: &RawConfig) -> PolicyConfig {
        let module = raw.policy.module.as_ref().and_then(|m| self.absolute_path(m, None, "policy.module"));
        let mut params = Vec::new();
        for (key, value) in &raw.policy.params.0 {
            if key.trim().is_empty() {
                self.error(
                    Some(value.span()),
                    None,
                    "policy.params",
                    "a parameter name must not be empty".into(),
                );
                continue;
            }
            params.push((key.clone(), value.get_ref().to_param_string()));
        }
        let trust = super::policy_trust::resolve(
            &raw.policy.trusted_keys,
            &raw.policy.trusted_key_files,
            &mut |span, key, message| self.error(Some(span), None, key, message),
        );
        PolicyConfig { module, params, trust }
    }

    fn trust(&mut self, raw: &RawConfig) -> TrustConfig {
        let extra_roots: Vec<PathBuf> = raw
            .trust
            .extra_roots
            .iter()
            .flatten()
            .filter_map(|p| self.absolute_path(p, None, "trust.extra-roots"))
            .collect();
        let system_roots = raw.trust.system_roots.unwrap_or(true);
        if !system_roots && raw.trust.extra_roots.as_ref().is_none_or(Vec::is_empty) {
            // An empty trust store is a choice (certificates only checked, a host that trusts
            // nothing), not a mistake to stop on: every chain is then reported untrusted.
            self.warn(
                None,
                None,
                "trust.system-roots",
                "with system-roots = false and no extra-roots the trust store is empty: every certificate chain \
                 is reported untrusted; list your roots in extra-roots or set system-roots = true"
                    .into(),
            );
        }
        TrustConfig { extra_roots, system_roots }
    }

    fn backups(&mut self, raw: &RawConfig) -> super::BackupsConfig {
        let mut backups = super::BackupsConfig::default();
        for (value, key, range, slot) in [
            (&raw.backups.keep, "backups.keep", 1..=1000, &mut backups.keep),
            (&raw.backups.keep_days, "backups.keep-days", 0..=3650, &mut backups.keep_days),
        ] {
            if let Some(v) = value {
                match u32::try_from(*v.get_ref()) {
                    Ok(n) if range.contains(v.get_ref()) => *slot = n,
                    _ => self.error(
                        Some(v.span()),
                        None,
                        key,
                        format!("{} is out of range: {} to {}", v.get_ref(), range.start(), range.end()),
                    ),
                }
            }
        }
        backups
    }

    fn placeholder(&mut self, raw: &RawConfig) -> PlaceholderConfig {
        let mut placeholder = PlaceholderConfig::default();
        if let Some(key) = raw.placeholder.key {
            placeholder.key = key;
        }
        if let Some(days) = &raw.placeholder.validity_days {
            match u32::try_from(*days.get_ref()) {
                Ok(d) if (1..=MAX_PLACEHOLDER_DAYS).contains(days.get_ref()) => placeholder.validity_days = d,
                _ => self.error(
                    Some(days.span()),
                    None,
                    "placeholder.validity-days",
                    format!(
                        "{} is out of range: a placeholder is valid for 1 to {MAX_PLACEHOLDER_DAYS} days",
                        days.get_ref()
                    ),
                ),
            }
        }
        placeholder
    }

    /// `[[certificate]]`: the groups, the "hostname" group first (configured or not). Every
    /// service's `certificate-group` must name one.
    fn groups(
        &mut self,
        raw: &[Spanned<RawCertificateGroup>],
        services: &[ServiceConfig],
    ) -> Vec<CertificateGroup> {
        let mut groups = vec![CertificateGroup::hostname_default()];
        let mut seen = std::collections::HashSet::new();
        for (index, table) in raw.iter().enumerate() {
            let label = format!("certificate #{}", index + 1);
            let raw = table.get_ref();
            let Some(name) = &raw.name else {
                self.error(Some(table.span()), None, &label, "every [[certificate]] needs a name".into());
                continue;
            };
            let valid = name.get_ref().len() <= 63
                && name.get_ref().starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && name.get_ref().chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !valid {
                self.error(
                    Some(name.span()),
                    None,
                    "certificate.name",
                    format!(
                        "{:?} is not a valid certificate group name: 1 to 63 lower-case letters, digits or '-', \
                         starting with a letter or digit",
                        name.get_ref()
                    ),
                );
                continue;
            }
            let is_hostname = name.get_ref() == HOSTNAME_GROUP;
            if !seen.insert(name.get_ref().clone()) {
                self.error(
                    Some(name.span()),
                    None,
                    "certificate.name",
                    format!("certificate group {:?} is defined twice", name.get_ref()),
                );
                continue;
            }
            let mut names = Vec::new();
            for n in raw.names.iter().flatten() {
                let lower = n.get_ref().trim_end_matches('.').to_ascii_lowercase();
                if !is_dns_name_or_wildcard(&lower) || lower.parse::<IpAddr>().is_ok() {
                    self.error(
                        Some(n.span()),
                        None,
                        "certificate.names",
                        format!(
                            "{:?} is not a valid DNS name (a leading \"*.\" wildcard is allowed)",
                            n.get_ref()
                        ),
                    );
                } else if !names.contains(&lower) {
                    names.push(lower);
                }
            }
            if names.is_empty() && !is_hostname {
                self.error(
                    Some(table.span()),
                    None,
                    "certificate.names",
                    format!(
                        "certificate group {:?} needs names: the DNS names its certificate is for, the main one first",
                        name.get_ref()
                    ),
                );
                continue;
            }
            let group = CertificateGroup { name: name.get_ref().clone(), names, key: raw.key };
            if is_hostname {
                groups[0] = group;
            } else {
                groups.push(group);
            }
        }
        for service in services {
            if !groups.iter().any(|g| g.name == service.certificate_group) {
                self.error(
                    None,
                    Some(&service.name),
                    "certificate-group",
                    format!(
                        "{:?} is not a certificate group: add a [[certificate]] with name = {:?}, or leave \
                         certificate-group out for the hostname's certificate",
                        service.certificate_group, service.certificate_group
                    ),
                );
            }
        }
        groups
    }

    fn services(&mut self, raw: &[Spanned<RawService>]) -> Vec<ServiceConfig> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut services = Vec::with_capacity(raw.len());
        for (index, table) in raw.iter().enumerate() {
            let label = match &table.get_ref().name {
                Some(n) if is_service_name(n.get_ref()) => n.get_ref().clone(),
                _ => format!("#{}", index + 1),
            };
            if let Some(name) = &table.get_ref().name
                && is_service_name(name.get_ref())
            {
                if let Some(first) = seen.get(name.get_ref()) {
                    let (line, _) = line_col(self.text, raw[*first].span().start);
                    self.error(
                        Some(name.span()),
                        Some(&label),
                        "name",
                        format!(
                            "service names must be unique; service #{} (line {line}) already uses it",
                            first + 1
                        ),
                    );
                } else {
                    seen.insert(name.get_ref().clone(), index);
                }
            }
            if let Some(service) = self.service(table, &label) {
                services.push(service);
            }
        }
        services
    }

    /// One service; `None` if it has errors (they are recorded).
    fn service(&mut self, table: &Spanned<RawService>, label: &str) -> Option<ServiceConfig> {
        let errors_before = self.errors.len();
        let raw = table.get_ref();
        let svc = Some(label);

        let name = match &raw.name {
            None => {
                self.error(Some(table.span()), svc, "name", "every [[service]] needs a name".into());
                String::new()
            }
            Some(n) if !is_service_name(n.get_ref()) => {
                self.error(
                    Some(n.span()),
                    svc,
                    "name",
                    format!(
                        "{:?} is not a valid service name: use 1 to 64 letters, digits, '.', '_' or '-'",
                        n.get_ref()
                    ),
                );
                String::new()
            }
            Some(n) => n.get_ref().clone(),
        };

        let layout = raw.layout.unwrap_or_default();
        let certificate = match &raw.certificate {
            Some(c) => self.absolute_path(c, svc, "certificate"),
            None => {
                self.error(
                    Some(table.span()),
                    svc,
                    "certificate",
                    "every [[service]] needs a certificate path".into(),
                );
                None
            }
        };

        let check_only = raw.check_only.unwrap_or(false);
        let key = match (layout, &raw.key) {
            (Layout::Separate, Some(k)) => self.absolute_path(k, svc, "key"),
            // A certificate only checked: its key lives elsewhere.
            (Layout::Separate, None) if check_only => None,
            (Layout::Separate, None) => {
                self.error(
                    Some(table.span()),
                    svc,
                    "key",
                    "layout = \"separate\" needs a key path (or use layout = \"combined\" when the key is in the certificate file)".into(),
                );
                None
            }
            (Layout::Combined, Some(k)) => {
                self.error(
                    Some(k.span()),
                    svc,
                    "key",
                    "must not be set with layout = \"combined\": the key is in the certificate file".into(),
                );
                None
            }
            (Layout::Combined, None) => None,
        };

        let chain = match (layout, &raw.chain) {
            (Layout::Separate, Some(c)) => self.absolute_path(c, svc, "chain"),
            (Layout::Combined, Some(c)) => {
                self.error(
                    Some(c.span()),
                    svc,
                    "chain",
                    "must not be set with layout = \"combined\": the chain is in the certificate file".into(),
                );
                None
            }
            (_, None) => None,
        };

        // One file for two roles: an install would write the key over the certificate (or the
        // chain over either), leaving the service with half of what it needs.
        let roles = [
            ("certificate", &certificate, &raw.certificate),
            ("key", &key, &raw.key),
            ("chain", &chain, &raw.chain),
        ];
        for (i, (role, path, raw_value)) in roles.iter().enumerate() {
            let Some(path) = path else { continue };
            if let Some((other, _, _)) = roles[..i].iter().find(|(_, p, _)| p.as_ref() == Some(path)) {
                self.error(
                    raw_value.as_ref().map(Spanned::span),
                    svc,
                    role,
                    format!(
                        "{} is also the {other} file: each role needs a file of its own (or use layout = \"combined\" for one file holding certificate, chain and key)",
                        path.display()
                    ),
                );
            }
        }

        let mut names = Vec::new();
        for n in raw.names.iter().flatten() {
            if is_dns_name_or_wildcard(n.get_ref()) {
                names.push(n.get_ref().clone());
            } else {
                self.error(
                    Some(n.span()),
                    svc,
                    "names",
                    format!(
                        "{:?} is not a valid DNS name (a leading \"*.\" wildcard is allowed)",
                        n.get_ref()
                    ),
                );
            }
        }

        let owner = raw.owner.as_ref().and_then(|o| self.account(o, svc, "owner"));
        let group = raw.group.as_ref().and_then(|g| self.account(g, svc, "group"));

        // The modes the configuration sets (`Some(None)`: not set; `None`: a bad value, already
        // reported).
        let certificate_mode = match &raw.certificate_mode {
            Some(m) => self.mode(m, svc, "certificate-mode").map(Some),
            None => Some(None),
        };
        let key_mode = match (layout, &raw.key_mode) {
            (Layout::Separate, Some(m)) => self.mode(m, svc, "key-mode").map(Some),
            (Layout::Combined, Some(m)) => {
                self.error(
                    Some(m.span()),
                    svc,
                    "key-mode",
                    "does not apply to layout = \"combined\": certificate-mode sets the mode of the combined file".into(),
                );
                None
            }
            (_, None) => Some(None),
        };
        let allow_world_readable_key = raw.allow_world_readable_key.unwrap_or(false);

        // The mode of the file that holds the private key.
        let (key_mode_key, key_mode_span, key_file_mode) = match layout {
            Layout::Separate => ("key-mode", raw.key_mode.as_ref().map(Spanned::span), key_mode.flatten()),
            Layout::Combined => (
                "certificate-mode",
                raw.certificate_mode.as_ref().map(Spanned::span),
                certificate_mode.flatten(),
            ),
        };
        if let Some(mode) = key_file_mode {
            if mode & 0o004 != 0 && !allow_world_readable_key {
                self.error(
                    key_mode_span.clone().or(Some(table.span())),
                    svc,
                    key_mode_key,
                    format!(
                        "mode {mode:04o} would let every user read the private key; use 0600 or 0640, \
                         or set allow-world-readable-key = true if you really mean it"
                    ),
                );
            }
            if mode & 0o022 != 0 {
                self.warn(
                    key_mode_span.or(Some(table.span())),
                    svc,
                    key_mode_key,
                    format!("mode {mode:04o} lets other users than the owner write the private key file"),
                );
            }
        }

        let reload = match &raw.reload {
            None => Vec::new(),
            Some(spanned) => match reload_commands(spanned.get_ref()) {
                Ok(commands) => commands,
                Err(message) => {
                    self.error(Some(spanned.span()), svc, "reload", message);
                    Vec::new()
                }
            },
        };

        let reload_timeout = match &raw.reload_timeout {
            None => DEFAULT_RELOAD_TIMEOUT,
            Some(t) => match u64::try_from(*t.get_ref()) {
                Ok(secs) if (1..=MAX_RELOAD_TIMEOUT).contains(t.get_ref()) => Duration::from_secs(secs),
                _ => {
                    self.error(
                        Some(t.span()),
                        svc,
                        "reload-timeout",
                        format!("{} is out of range: 1 to {MAX_RELOAD_TIMEOUT} seconds", t.get_ref()),
                    );
                    DEFAULT_RELOAD_TIMEOUT
                }
            },
        };

        let probe = super::probe::resolve_endpoints(
            raw.probe.as_ref(),
            label,
            self.text,
            self.path,
            &mut self.errors,
        );

        if self.errors.len() != errors_before {
            return None;
        }
        Some(ServiceConfig {
            name,
            certificate: certificate?,
            key,
            chain,
            layout,
            names,
            owner,
            group,
            certificate_mode: certificate_mode?,
            key_mode: key_mode?,
            allow_world_readable_key,
            reload,
            reload_timeout,
            probe,
            certificate_group: raw
                .certificate_group
                .as_ref()
                .map_or_else(|| HOSTNAME_GROUP.to_string(), |g| g.get_ref().clone()),
            check_only,
        })
    }

    fn absolute_path(
        &mut self,
        value: &Spanned<String>,
        service: Option<&str>,
        key: &str,
    ) -> Option<PathBuf> {
        let message = match check_absolute(value.get_ref()) {
            Ok(path) => return Some(path),
            Err(message) => message,
        };
        self.error(Some(value.span()), service, key, message);
        None
    }

    fn account(
        &mut self,
        value: &Spanned<StringOrInteger>,
        service: Option<&str>,
        key: &str,
    ) -> Option<String> {
        match value.get_ref() {
            StringOrInteger::String(s) if is_account_name(s) => Some(s.clone()),
            StringOrInteger::Integer(i) if (0..i64::from(u32::MAX)).contains(i) => Some(i.to_string()),
            StringOrInteger::String(s) => {
                self.error(
                    Some(value.span()),
                    service,
                    key,
                    format!("{s:?} is not a valid user or group name or numeric id"),
                );
                None
            }
            StringOrInteger::Integer(i) => {
                self.error(Some(value.span()), service, key, format!("{i} is not a valid numeric id"));
                None
            }
        }
    }

    fn mode(&mut self, value: &Spanned<StringOrInteger>, service: Option<&str>, key: &str) -> Option<u32> {
        let span = value.span();
        let parsed = match value.get_ref() {
            StringOrInteger::String(s) => {
                let digits = s.trim().strip_prefix("0o").unwrap_or(s.trim());
                if digits.is_empty()
                    || digits.len() > 5
                    || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
                {
                    Err(format!("{s:?} is not an octal file mode such as \"0640\""))
                } else {
                    u32::from_str_radix(digits, 8).map_err(|e| e.to_string())
                }
            }
            // A TOML octal integer (0o640) is unambiguous; any other integer is refused, because
            // `640` would be read as decimal.
            StringOrInteger::Integer(i)
                if self.text.get(span.clone()).is_some_and(|t| t.starts_with("0o")) =>
            {
                u32::try_from(*i).map_err(|e| e.to_string())
            }
            StringOrInteger::Integer(i) => Err(format!(
                "write the mode as an octal string in quotes, e.g. \"0{i}\" (the integer {i} would be read as decimal)"
            )),
        };
        match parsed {
            Ok(mode) if mode <= MAX_MODE => Some(mode),
            Ok(mode) => {
                self.error(Some(span), service, key, format!("mode {mode:o} is larger than 7777"));
                None
            }
            Err(message) => {
                self.error(Some(span), service, key, message);
                None
            }
        }
    }
}

/// An absolute, non-empty path without NUL characters, or what is wrong with it.
pub(super) fn check_absolute(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        Err("the path must not be empty".to_owned())
    } else if s.contains('\0') {
        Err("the path must not contain NUL characters".to_owned())
    } else if !Path::new(s).is_absolute() {
        Err(format!("{s:?} is not an absolute path (it must start with '/')"))
    } else {
        Ok(PathBuf::from(s))
    }
}

/// The commands of a `reload` value (one argv, or a list of them), each checked: a program,
/// no NUL characters.
fn reload_commands(raw: &super::raw::RawReload) -> Result<Vec<Vec<String>>, String> {
    use super::raw::RawReload;
    let commands = match raw {
        RawReload::One(argv) if argv.is_empty() => {
            return Err(
                "must name a program and its arguments, e.g. [\"systemctl\", \"reload\", \"nginx\"] \
                        (or a list of such commands, run in order); remove the key to reload nothing"
                    .into(),
            );
        }
        RawReload::One(argv) => vec![argv.clone()],
        RawReload::Many(list) if list.is_empty() => return Err("must name at least one command".into()),
        RawReload::Many(list) => list.clone(),
    };
    let several = commands.len() > 1;
    for (i, argv) in commands.iter().enumerate() {
        let which =
            if several { format!("command {} of {}: ", i + 1, commands.len()) } else { String::new() };
        if argv.is_empty() {
            return Err(format!(
                "{which}must name a program and its arguments, e.g. [\"doveadm\", \"reload\"]; remove the empty command"
            ));
        }
        if argv[0].trim().is_empty() {
            return Err(format!("{which}the program (the first element) must not be empty"));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(format!("{which}arguments must not contain NUL characters"));
        }
    }
    Ok(commands)
}
