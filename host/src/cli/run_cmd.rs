//! The main run (`checkallsslcerts [--dry-run] [--verbose] [--json]`) and `config check`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::{RunArgs, exit};
use crate::pipeline::{self, RunOptions};
use crate::report::text::{self, Style};

fn config_path(args: &RunArgs) -> PathBuf {
    args.config.clone().unwrap_or_else(crate::config::default_path)
}

/// The main run; returns the exit code.
pub fn run(args: &RunArgs) -> i32 {
    let at = match args.at.as_deref().map(|t| crate::time::parse_at(t, crate::time::unix_now())).transpose() {
        Ok(at) => at,
        Err(message) => {
            eprintln!("checkallsslcerts: --at: {message}");
            return exit::USAGE;
        }
    };
    let options = RunOptions {
        dry_run: args.dry_run,
        policy: args.policy.clone(),
        lock_wait: Duration::from_secs(args.lock_wait),
        allow_retry: args.allow_retry,
        no_retry: args.no_retry,
        force: args.force,
        // The progress bar goes to stderr, only for a person watching the plain report.
        progress: std::io::stdout().is_terminal() && !args.quiet && !args.json,
        metrics_file: args.metrics_file.clone(),
        at,
    };
    let mut report = match pipeline::run(&config_path(args), &options) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("checkallsslcerts: {error}");
            if let pipeline::RunError::Config(e) = &error {
                missing_config_hint(e);
            }
            return error.exit_code();
        }
    };
    if args.json {
        // Streamed, its services rendered on every core (a report of 10,000 services is ~15 MB).
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        let printed = crate::report::json::write_pretty(&mut report, &mut out)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        // A reader that stopped early (`| head`) changes nothing about the run's outcome.
        if let Err(e) = printed
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            eprintln!("checkallsslcerts: cannot print the report: {e}");
            return exit::ERRORS;
        }
    } else if args.quiet {
        for notice in report.notices.iter().filter(|n| n.level == crate::plan::Level::Error) {
            eprintln!("checkallsslcerts: error: {}", crate::report::text::notice_text(notice));
        }
        for service in &report.services {
            for action in service.actions.iter().filter(|a| a.failed()) {
                eprintln!("checkallsslcerts: {}: {}", service.name, crate::text::untrusted(&action.message));
            }
        }
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        crate::cli::out(format_args!("{}", text::render(&report, Style { verbose: args.verbose, colour })));
    }
    report.exit_code
}

/// For a configuration file that does not exist (a first run): how to make one.
fn missing_config_hint(error: &crate::config::ConfigError) {
    if error.is_not_found() {
        eprintln!(
            "checkallsslcerts: to make one, start from examples/config.toml, or from the certificates \
             your daemons already use:\n    checkallsslcerts services --print-config > {}\n\
             (or give another file with --config or CHECKALLSSLCERTS_CONFIG)",
            error.path().display()
        );
    }
}

/// `config check`: loads and validates the configuration, prints what it resolves to.
pub fn config_check(args: &RunArgs) -> i32 {
    let path = config_path(args);
    match crate::config::load(&path) {
        Ok(config) => {
            for warning in &config.warnings {
                eprintln!("checkallsslcerts: warning: {warning}");
            }
            say!("{}: OK", path.display());
            say!("hostname:  {}", config.hostname);
            say!("state dir: {}", config.state_dir.display());
            match crate::policy_store::select::choose(&config, None) {
                Ok(choice) => say!("policy:    {}", choice.describe()),
                Err(e) => say!("policy:    {e}"),
            }
            say!("mail:      {}", crate::notify::describe(&config.mail));
            match &config.metrics.textfile {
                Some(file) => say!("metrics:   {}", file.display()),
                None => say!("metrics:   none (unless --metrics-file)"),
            }
            match &config.acme {
                Some(acme) => say!("acme:      {} ({})", acme.directory_url, acme.challenge.name()),
                None => say!("acme:      (none: no certificate is ordered)"),
            }
            say!("services:  {}", config.services.len());
            for service in &config.services {
                say!(
                    "  {:<16} {} ({}){}",
                    service.name,
                    service.certificate.display(),
                    text::word(&service.layout),
                    match service.reload.as_slice() {
                        [] => String::new(),
                        [argv] => format!(", reload: {argv:?}"),
                        several => format!(
                            ", reload (in order): {}",
                            several.iter().map(|argv| format!("{argv:?}")).collect::<Vec<_>>().join(", ")
                        ),
                    }
                );
            }
            exit::OK
        }
        Err(error) => {
            eprintln!("checkallsslcerts: {error}");
            missing_config_hint(&error);
            exit::USAGE
        }
    }
}
