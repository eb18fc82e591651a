//! The command line: parses arguments and dispatches; every command returns an exit code.

/// `println!` for the commands' output that survives a closed stdout (see [`out`]).
macro_rules! say {
    ($($arg:tt)*) => { $crate::cli::out(format_args!("{}\n", format_args!($($arg)*))) };
}

mod docs_cmd;
mod init_cmd;
mod policy_cmd;
mod policy_store_cmd;
mod run_cmd;
mod services_cmd;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};

/// Set once stdout has been closed by the reader.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes the commands' output to stdout. A reader that closed it early (`policy show | head`)
/// ends the output, not the command: what it was doing finishes and its exit code stands
/// (`println!` would panic). Any other write error is reported once on stderr.
pub(crate) fn out(text: std::fmt::Arguments<'_>) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(text).and_then(|()| stdout.flush()) {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("checkallsslcerts: cannot write to stdout: {e}");
        }
    }
}

/// The documented exit codes (they live on the ground floor, [`crate::exit`]).
pub use crate::exit;

/// The exit codes, as `--help` shows them (the README has the same table).
const EXIT_CODES_HELP: &str = "\
Exit codes (the state the run leaves; when several meet, the first listed of 2, 73, 69, 1, 75 wins):
  0   every service holds a usable certificate and nothing failed (problems fixed in the run
      are reported as fixed)
  1   errors: a service left on an unusable certificate, a failed action or policy, or a state
      directory / lock file that cannot be used (mailed)
  2   bad usage or configuration (also one others could change); nothing changed
  69  the certificate authority refused the order or could not be reached
  73  another run holds the lock (only that)
  75  an order is pending at the CA, or a wanted order waits for its back-off or the daily cap;
      a later run goes on by itself";

/// Keeps every TLS certificate on this server valid: checks each service's certificate, lets
/// the policy decide which must be replaced, orders replacements (ACME), installs them or a
/// self-signed placeholder, and reloads the services.
#[derive(Debug, Parser)]
#[command(name = "checkallsslcerts", version, about, max_term_width = 100, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of the main run (no subcommand).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file [default: /etc/checkallsslcerts/config.toml]
    #[arg(long, env = "CHECKALLSSLCERTS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Policy module to use instead of the configured one (a .wasm component)
    #[arg(long, global = true)]
    pub policy: Option<PathBuf>,
    /// Show the gathered facts, the policy and its notices, and every action taken
    #[arg(short, long)]
    pub verbose: bool,
    /// Gather facts and print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the run's report as JSON (see docs/json-report.md)
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// If the CA is still processing an order, check again in an hour (queued with `at`)
    #[arg(long, conflicts_with = "no_retry")]
    pub allow_retry: bool,
    /// Never schedule a later check (what the scheduled check itself runs with)
    #[arg(long)]
    pub no_retry: bool,
    /// Open a certificate order in this run even during the back-off after failed orders or
    /// past acme.max-orders-per-day (not before a Retry-After the CA sent); logged in the ACME
    /// history
    #[arg(long, conflicts_with = "dry_run")]
    pub force: bool,
    /// Seconds to wait for another run to finish before giving up
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_wait: u64,
    /// Write Prometheus metrics for node_exporter's textfile collector to this file (atomically;
    /// over [metrics] textfile). Only changing runs write metrics
    #[arg(long, value_name = "PATH", conflicts_with = "dry_run")]
    pub metrics_file: Option<PathBuf>,
    /// Evaluate as of TIME instead of now — facts, chain verification and policy ("what needs
    /// replacing in 30 days?"): RFC 3339 (2027-01-31T00:00:00Z), Unix seconds, or +30d, +12h, -1h
    /// from now. Dry runs only
    #[arg(long, value_name = "TIME", requires = "dry_run", allow_hyphen_values = true)]
    pub at: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect, evaluate and test policy modules
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Work with the configuration file
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List the certificates the host's daemons use (nginx, Apache, Postfix, Dovecot, Exim,
    /// Pure-FTPd, vsftpd, ProFTPD, HAProxy), read from their own configuration
    Services(services_cmd::ServicesArgs),
    /// Write a first configuration from the services this host runs (discovered from the
    /// daemons' configuration, also those started with their own: nginx -c, apache2 -f...),
    /// with certificate groups proposed; asks nothing; never replaces one without --force
    Init(init_cmd::InitArgs),
    /// Write the man pages and shell completions (for packagers)
    #[command(hide = true)]
    GenerateDocs(docs_cmd::GenerateDocsArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration file and print what it resolves to; changes nothing
    Check,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show the policy a run uses (or the --policy module): name, version, contract version,
    /// SHA-256, and for an installed module where it came from and who signed it
    Show,
    /// Evaluate a policy on facts from a JSON file and print the plan as JSON
    Eval {
        /// Host facts in JSON (the format of tests/conformance/README.md)
        #[arg(long)]
        facts: PathBuf,
    },
    /// Run a policy module against the conformance suites
    Test {
        /// The module to test [default: --policy, else the embedded default policy]
        module: Option<PathBuf>,
        /// A directory of vectors (one suite, or a folder of suites) instead of the built-in ones
        #[arg(long)]
        vectors: Option<PathBuf>,
        /// Only this built-in suite (e.g. `contract` or `default`)
        #[arg(long, conflicts_with = "vectors")]
        suite: Option<String>,
        /// Also write the results as JUnit XML to this file
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Fetch, verify and activate a policy module: checks its minisign signature against
    /// [policy] trusted-keys, that it is a valid policy for a supported contract version, and
    /// that it passes the contract conformance suite; the previous module is kept for rollback
    Install(policy_store_cmd::InstallArgs),
    /// Re-activate the module that was active before the last install (or rollback)
    Rollback,
    /// Turn a core WebAssembly module built with wit-bindgen (Rust for wasm32-unknown-unknown,
    /// C for wasm32-wasi without WASI imports) into a policy component
    Componentize {
        /// The core module (.wasm)
        core: PathBuf,
        /// Where to write the component
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Print, as JSON, the facts a run would hand the policy (gathered as a dry run does): the
    /// input of `policy eval --facts`
    Facts {
        /// Gather as of TIME instead of now, as a dry run's --at: RFC 3339 (2027-01-31T00:00:00Z),
        /// Unix seconds, or +30d, +12h, -1h from now
        #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
        at: Option<String>,
    },
}

/// `--version`: the version, the git commit it was built from, the embedded default policy's
/// SHA-256 and the contract versions this host runs (`-V` prints the version alone).
pub fn long_version() -> String {
    format!(
        "{}\ncommit:         {}\ndefault policy: sha256 {}\ncontracts:      {}",
        env!("CARGO_PKG_VERSION"),
        env!("CHECKALLSSLCERTS_GIT_COMMIT"),
        hex::encode(openssl::sha::sha256(crate::policy::embedded::DEFAULT_POLICY)),
        crate::policy::ContractVersion::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
    )
}

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    use clap::{CommandFactory, FromArgMatches};
    let parsed = Cli::command()
        // Built once per process; clap keeps a `&'static str`.
        .long_version(&*Box::leak(long_version().into_boxed_str()))
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    match cli.command {
        Some(Command::Policy(command)) => policy_cmd::run(command, &cli.run),
        Some(Command::Config(ConfigCommand::Check)) => run_cmd::config_check(&cli.run),
        Some(Command::Services(args)) => services_cmd::run(&args),
        Some(Command::GenerateDocs(args)) => docs_cmd::run(&args),
        Some(Command::Init(args)) => init_cmd::run(&args, &cli.run),
        None => run_cmd::run(&cli.run),
    }
}
