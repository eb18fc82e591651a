//! `checkallsslcerts policy install|rollback|componentize`, and `policy show` of the policy a
//! run would use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::{RunArgs, exit};
use crate::config::Config;
use crate::policy::{PolicyModule, PolicySource, Runtime};
use crate::policy_store::install::{self, InstallRequest};
use crate::policy_store::select::{self, Choice};
use crate::policy_store::{Installed, Store, short};
use crate::time::utc_seconds as utc_time;

/// `policy install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The module: a file, or an https:// URL
    pub source: String,
    /// Its minisign signature, a file or an https:// URL [default: the module's, with `.minisig`
    /// appended]
    #[arg(long, value_name = "FILE|URL")]
    pub signature: Option<String>,
    /// Install without checking a signature; refused while [policy] trusted-keys or
    /// trusted-key-files are configured
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Extra CA certificates (PEM) to trust for https:// downloads, besides the system's
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Give up a download after this many seconds
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
}

fn config_path(args: &RunArgs) -> PathBuf {
    args.config.clone().unwrap_or_else(crate::config::default_path)
}

fn load_config(args: &RunArgs) -> Result<Config, i32> {
    crate::config::load(&config_path(args)).map_err(|e| {
        eprintln!("checkallsslcerts: {e}");
        exit::USAGE
    })
}

/// The configuration and its runtime ([`runtime_for`]); or the exit code after saying why not.
fn config_and_runtime(args: &RunArgs) -> Result<(Config, Runtime), i32> {
    let config = load_config(args)?;
    let runtime = runtime_for(&config)?;
    Ok((config, runtime))
}

/// A runtime that keeps compiled modules in the state dir's cache, as the main run does.
fn runtime_for(config: &Config) -> Result<Runtime, i32> {
    Runtime::new(Some(config.state_dir.join("cache"))).map_err(|e| {
        eprintln!("checkallsslcerts: {e}");
        exit::ERRORS
    })
}

fn describe(record: &Installed) -> String {
    format!("`{}` {} (sha256 {}, from {})", record.name, record.version, short(&record.sha256), record.source)
}

/// `policy install SOURCE`.
pub fn install(request: &InstallArgs, args: &RunArgs) -> i32 {
    let (config, runtime) = match config_and_runtime(args) {
        Ok(both) => both,
        Err(code) => return code,
    };
    let outcome = install::install(
        &config,
        &runtime,
        &InstallRequest {
            source: &request.source,
            signature: request.signature.as_deref(),
            allow_unsigned: request.allow_unsigned,
            ca_file: request.ca_file.as_deref(),
            timeout: Duration::from_secs(request.timeout.max(1)),
            lock_wait: Duration::from_secs(args.lock_wait),
        },
    );
    match outcome {
        Ok(outcome) => {
            let m = &outcome.installed;
            say!(
                "{} policy `{}` {} (contract {})",
                if outcome.already_active { "re-installed the active" } else { "installed and activated" },
                m.name,
                m.version,
                m.contract_version
            );
            say!("  sha256:          {}", m.sha256);
            say!("  source:          {}", m.source);
            match &m.signature_key_id {
                Some(id) => say!("  signed by:       key ID {id}"),
                None => say!("  signed by:       nobody (installed with --allow-unsigned)"),
            }
            if let Some(comment) = &m.trusted_comment {
                say!("  trusted comment: {comment}");
            }
            say!("  checked:         {} contract conformance vectors passed", outcome.vectors);
            match &outcome.previous {
                Some(previous) => say!(
                    "  previous:        {} (`checkallsslcerts policy rollback` re-activates it)",
                    describe(previous)
                ),
                None => say!(
                    "  previous:        the embedded default policy (`checkallsslcerts policy rollback` goes back to it)"
                ),
            }
            for warning in &outcome.warnings {
                eprintln!("checkallsslcerts: warning: {warning}");
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            eprintln!("checkallsslcerts: nothing was installed; the active policy is unchanged");
            e.exit_code()
        }
    }
}

/// `policy rollback`.
pub fn rollback(args: &RunArgs) -> i32 {
    let (config, runtime) = match config_and_runtime(args) {
        Ok(both) => both,
        Err(code) => return code,
    };
    match install::rollback(&config, &runtime, Duration::from_secs(args.lock_wait)) {
        Ok(outcome) => {
            match &outcome.active {
                Some(active) => say!("rolled back: the active policy is now {}", describe(active)),
                None => {
                    say!("rolled back: no installed module is active; the embedded default policy decides")
                }
            }
            match &outcome.previous {
                Some(previous) => {
                    say!("previous: {} (a second rollback re-activates it)", describe(previous))
                }
                None => say!("previous: the embedded default policy"),
            }
            if let Some(module) = &config.policy.module {
                eprintln!(
                    "checkallsslcerts: warning: [policy] module = {} is configured and takes precedence over the installed module",
                    module.display()
                );
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            e.exit_code()
        }
    }
}

/// `policy show` without `--policy`: the module a run would use, by precedence.
pub fn show(runtime: &Runtime, args: &RunArgs) -> i32 {
    let path = config_path(args);
    let config = match crate::config::load(&path) {
        Ok(config) => Some(config),
        // No configuration file at the default place: only the embedded policy can be meant.
        Err(e) if e.is_not_found() && args.config.is_none() => None,
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            return exit::USAGE;
        }
    };
    let choice = match &config {
        None => Choice::Embedded,
        Some(config) => match select::choose(config, None) {
            Ok(choice) => choice,
            Err(e) => {
                eprintln!(
                    "checkallsslcerts: {e}; a run falls back to the last known good or the embedded default policy"
                );
                return exit::ERRORS;
            }
        },
    };
    if let (Some(config), Choice::Installed(record)) = (&config, &choice)
        && let Some(warning) = select::unsigned_warning(config, record)
    {
        eprintln!("checkallsslcerts: warning: {warning}");
    }
    let store = config.as_ref().map(|c| Store::new(&c.state_dir));
    // Use the compiled-module cache of the state dir when there is one (a run made it).
    let cached = config.as_ref().filter(|c| c.state_dir.is_dir()).and_then(|c| runtime_for(c).ok());
    let runtime = cached.as_ref().unwrap_or(runtime);
    let module = match (&choice, &store) {
        (Choice::Configured(path) | Choice::CommandLine(path), _) => runtime.load_file(path),
        (Choice::Installed(record), Some(store)) => store
            .read_module(&record.sha256, runtime.limits().max_module_bytes)
            .map_err(|e| crate::policy::PolicyError::Invalid {
                module: store.module_path(&record.sha256).display().to_string(),
                message: e.to_string(),
            })
            .and_then(|bytes| {
                runtime.load_bytes(&bytes, PolicySource::File(store.module_path(&record.sha256)))
            }),
        _ => runtime.load_embedded(),
    };
    let code = match module.and_then(|m| runtime.metadata(&m).map(|meta| (m, meta))) {
        Ok((module, meta)) => {
            print_module(&module, &meta);
            exit::OK
        }
        Err(e) => {
            eprintln!("checkallsslcerts: {e}");
            exit::ERRORS
        }
    };
    say!("{:<18}{}", "selected:", choice.describe());
    say!("{:<18}--policy > [policy] module > installed module > embedded default", "precedence:");
    if let (Some(store), Some(config)) = (&store, &config) {
        print_installed(store, config);
    }
    code
}

fn print_module(module: &PolicyModule, meta: &crate::plan::model::Metadata) {
    say!("{:<18}{}", "name:", meta.name);
    say!("{:<18}{}", "version:", meta.version);
    say!("{:<18}{}", "description:", meta.description);
    say!("{:<18}{}", "contract version:", meta.contract_version);
    say!("{:<18}{}", "sha256:", module.sha256);
    say!("{:<18}{}", "source:", module.source);
}

fn print_installed(store: &Store, config: &Config) {
    match store.read_active() {
        Ok(state) => {
            match &state.active {
                Some(active) => {
                    say!("installed module:");
                    say!("  {:<17}{}", "name:", format_args!("{} {}", active.name, active.version));
                    say!("  {:<17}{}", "sha256:", active.sha256);
                    say!("  {:<17}{}", "installed from:", active.source);
                    say!(
                        "  {:<17}{}",
                        "signature key:",
                        active
                            .signature_key_id
                            .as_deref()
                            .unwrap_or("none (installed with --allow-unsigned)")
                    );
                    if let Some(comment) = &active.trusted_comment {
                        say!("  {:<17}{comment}", "trusted comment:");
                    }
                    say!("  {:<17}{}", "installed at:", utc_time(active.installed_at));
                    say!("  {:<17}{}", "file:", store.module_path(&active.sha256).display());
                }
                None => say!("installed module: none"),
            }
            match &state.previous {
                Some(previous) => {
                    say!("  {:<17}{} (policy rollback re-activates it)", "previous:", describe(previous))
                }
                None if state.active.is_some() => {
                    say!("  {:<17}the embedded default policy (policy rollback goes back to it)", "previous:")
                }
                None => {}
            }
        }
        Err(e) => say!("installed module: unusable record: {e}"),
    }
    match store.read_known_good() {
        Ok(known) => match known.first() {
            Some(good) => say!(
                "last known good:  `{}` {} (sha256 {}, from {}, last made a valid plan {})",
                good.name,
                good.version,
                short(&good.sha256),
                good.source,
                utc_time(good.good_at)
            ),
            None => {
                say!("last known good:  none recorded yet (the embedded default policy is the fallback)")
            }
        },
        Err(e) => say!("last known good:  unusable record: {e}"),
    }
    if config.policy.trust.is_configured() {
        say!(
            "trusted keys:     {} configured (unsigned modules are refused)",
            config.policy.trust.keys.len() + config.policy.trust.key_files.len()
        );
    } else {
        say!("trusted keys:     none configured (policy install needs --allow-unsigned)");
    }
}

/// `policy componentize CORE -o OUTPUT`.
pub fn componentize(runtime: &Runtime, core: &Path, output: &Path) -> i32 {
    let limit = runtime.limits().max_module_bytes as u64;
    let bytes = match crate::policy_store::read_bounded(core, limit) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("checkallsslcerts: core module {e}");
            return exit::ERRORS;
        }
    };
    if bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] != [1, 0, 0, 0] {
        eprintln!(
            "checkallsslcerts: {}: already a component (or not a core module); `policy test` and `policy install` take it as it is",
            core.display()
        );
        return exit::ERRORS;
    }
    let component = match wit_component::ComponentEncoder::default()
        .module(&bytes)
        .and_then(|encoder| encoder.validate(true).encode())
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "checkallsslcerts: {}: cannot turn it into a component: {e:#}\n(a policy's core module embeds its contract's component type: wit-bindgen's generate! or `wit-bindgen c` against wit/since_v0.2.0 (or an older frozen version), built for wasm32-unknown-unknown or wasm32-wasi without WASI imports; see docs/policy-authoring.md and policy-wasm/examples/c)",
                core.display()
            );
            return exit::ERRORS;
        }
    };
    let checked = runtime
        .load_bytes(&component, PolicySource::File(output.to_path_buf()))
        .and_then(|module| runtime.metadata(&module).map(|meta| (module, meta)));
    let (module, meta) = match checked {
        Ok(checked) => checked,
        Err(e) => {
            eprintln!(
                "checkallsslcerts: {}: the component made from it is not a usable policy: {e}; nothing was written",
                core.display()
            );
            return exit::ERRORS;
        }
    };
    if let Err(e) = std::fs::write(output, &component) {
        eprintln!("checkallsslcerts: cannot write {}: {e}", output.display());
        return exit::ERRORS;
    }
    say!(
        "wrote {}: policy `{}` {} (contract {}), {} bytes, sha256 {}",
        output.display(),
        meta.name,
        meta.version,
        meta.contract_version,
        component.len(),
        module.sha256
    );
    say!("next: `checkallsslcerts policy test {0}`, then sign it with `minisign -Sm {0}`", output.display());
    exit::OK
}
