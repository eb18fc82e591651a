//! `checkallsslcerts init`: a first configuration written from what the host runs.
//!
//! It discovers the services — the daemons' standard configuration files and, on the host
//! itself, those the running daemons were started with (`nginx -c`, `apache2 -f`, `haproxy -f`,
//! `dovecot -c`, a Postfix master's `MAIL_CONFIG`: [`crate::discovery::running`]) — with their
//! real owners, groups and modes, proposes certificate groups, and writes a commented
//! configuration that `config check` accepts. It asks nothing (it runs the same on a terminal
//! and from a script). With `--acme letsencrypt --email …` it configures Let's Encrypt's
//! staging CA (`--production` for the real one). An existing configuration is never replaced
//! without `--force` (then it is kept beside as `config.toml.bak-STAMP`); either way the
//! difference is shown.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{RunArgs, exit};
use crate::discovery::{self, Options, running, toml_out};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The certificate authority: `letsencrypt` (its staging CA unless --production) or an ACME
    /// directory URL. Default: none (no order; unusable certificates get placeholders)
    #[arg(long, value_name = "CA")]
    pub acme: Option<String>,
    /// The ACME account's contact address
    #[arg(long, value_name = "ADDRESS", requires = "acme")]
    pub email: Option<String>,
    /// With --acme letsencrypt: Let's Encrypt's production CA instead of its staging CA
    #[arg(long, requires = "acme")]
    pub production: bool,
    /// Replace an existing configuration (kept beside it as config.toml.bak-STAMP)
    #[arg(long)]
    pub force: bool,
    /// Print the configuration instead of writing it
    #[arg(long)]
    pub print: bool,
    /// Read the daemons' configuration under this directory (a mounted system image) [default: /]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Writes (or prints) the configuration; returns the exit code.
pub fn run(args: &InitArgs, run: &RunArgs) -> i32 {
    let path = run.config.clone().unwrap_or_else(crate::config::default_path);
    let root = args.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    if !root.is_dir() {
        eprintln!("checkallsslcerts: --root {}: not a directory", root.display());
        return exit::USAGE;
    }
    let text = match render(args, &root) {
        Ok(text) => text,
        Err(message) => {
            eprintln!("checkallsslcerts: init: {message}");
            return exit::USAGE;
        }
    };
    // Never write what the tool would not read.
    if let Err(e) = crate::config::from_str(&text, &path) {
        eprintln!(
            "checkallsslcerts: init: the configuration made from this host does not load (a bug):\n{e}"
        );
        return exit::ERRORS;
    }
    if args.print {
        crate::cli::out(format_args!("{text}"));
        return exit::OK;
    }
    let existing = match crate::fs::read_bounded(&path, crate::fs::limits::CONFIG_FILE) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(crate::fs::ReadError::Missing(_)) => None,
        Err(e) => {
            eprintln!("checkallsslcerts: init: {e}");
            return exit::ERRORS;
        }
    };
    if let Some(old) = &existing {
        if *old == text {
            say!("{} is already this configuration; nothing changed", path.display());
            return exit::OK;
        }
        let diff = similar::TextDiff::from_lines(old.as_str(), text.as_str());
        let shown =
            diff.unified_diff().context_radius(2).header(&path.display().to_string(), "(new)").to_string();
        crate::cli::out(format_args!("{}", crate::text::untrusted_max(&shown, 200_000)));
        if !args.force {
            eprintln!(
                "checkallsslcerts: init: {} exists; nothing was written. The difference is above: add --force to \
                 replace it (it is kept beside as {}.bak-STAMP), or --print to see the new one whole",
                path.display(),
                path.display()
            );
            return exit::USAGE;
        }
        let kept =
            PathBuf::from(format!("{}.bak-{}", path.display(), crate::time::stamp(crate::time::unix_now())));
        if let Err(e) = crate::fs::write_atomic(&kept, old.as_bytes(), 0o600) {
            eprintln!("checkallsslcerts: init: cannot keep the old configuration as {}: {e}", kept.display());
            return exit::ERRORS;
        }
        say!("the old configuration is kept as {}", kept.display());
    }
    // A missing /etc/checkallsslcerts is made root's own (0700): the configuration names the
    // commands a root run executes.
    if let Some(parent) = path.parent()
        && !parent.is_dir()
        && let Err(e) = crate::fs::create_private_dir(parent, false)
    {
        eprintln!("checkallsslcerts: init: cannot create {}: {e}", parent.display());
        return exit::ERRORS;
    }
    match crate::fs::write_atomic(&path, text.as_bytes(), 0o600) {
        Ok(()) => {
            say!(
                "wrote {}; check it with `checkallsslcerts config check`, then see what a run would do with \
                 `checkallsslcerts --dry-run`",
                path.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("checkallsslcerts: init: {e}");
            exit::ERRORS
        }
    }
}

/// The configuration text for this host.
fn render(args: &InitArgs, root: &Path) -> Result<String, String> {
    let mut options = Options::with_root(root.to_path_buf());
    let mut skipped = Vec::new();
    if root == Path::new("/") {
        let (mains, why) = running::main_configs(Path::new("/proc"));
        options.mains = mains;
        skipped = why;
    }
    let found = discovery::discover(&options);
    let hostname = crate::config::system_hostname();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# checkallsslcerts configuration, written by `checkallsslcerts init` on {}.\n\
         # Every setting is explained in checkallsslcerts.toml(5) and\n\
         # /usr/share/doc/checkallsslcerts/examples/config.toml. Check it with `checkallsslcerts config check`.\n",
        crate::time::utc_minutes(crate::time::unix_now())
    );
    let _ = writeln!(out, "# The server's name: the hostname certificate is ordered for it.");
    let _ = writeln!(out, "hostname = {}", toml::Value::String(hostname.clone()));
    let _ = writeln!(out, "# state-dir = \"/var/lib/checkallsslcerts\"\n");
    match args.acme.as_deref() {
        None => {
            let _ = writeln!(
                out,
                "# No certificate authority yet: nothing is ordered, and an unusable certificate gets a\n\
                 # self-signed placeholder. To order from Let's Encrypt (staging first):\n\
                 # [acme]\n# staging = true\n# email = \"admin@example.com\"\n"
            );
        }
        Some(ca) => {
            let _ = writeln!(out, "[acme]");
            if ca.eq_ignore_ascii_case("letsencrypt") || ca.eq_ignore_ascii_case("lets-encrypt") {
                if args.production {
                    let _ = writeln!(out, "# Let's Encrypt's production CA.\nstaging = false");
                } else {
                    let _ = writeln!(
                        out,
                        "# Let's Encrypt's staging CA (untrusted test certificates): once a run orders and installs\n\
                         # as it should, set staging = false (or run `checkallsslcerts init --acme letsencrypt --production --force`).\n\
                         staging = true"
                    );
                }
            } else if ca.starts_with("https://") {
                let _ = writeln!(out, "directory = {}", toml::Value::String(ca.to_string()));
            } else {
                return Err(format!(
                    "--acme {ca:?}: write `letsencrypt` or the CA's ACME directory URL (https://…)"
                ));
            }
            if let Some(email) = &args.email {
                let _ = writeln!(out, "email = {}", toml::Value::String(email.clone()));
            }
            let web = found
                .found
                .iter()
                .any(|f| matches!(f.daemon, discovery::Daemon::Nginx | discovery::Daemon::Apache));
            let _ = writeln!(
                out,
                "# The CA checks port 80 of the names: by default a built-in listener answers it. {}\n\
                 # challenge = \"webroot\"\n# webroot = \"/var/www/html\"\n",
                if web {
                    "A web server runs here:\n# if it holds port 80, let it answer from its document root instead:"
                } else {
                    "Or, with a web server\n# on port 80, from its document root:"
                }
            );
        }
    }
    for why in &skipped {
        let _ = writeln!(out, "# NOT READ: {}", why.replace('\n', " "));
    }
    if found.found.is_empty() {
        let _ = writeln!(
            out,
            "# No daemon's certificate was found: add a [[service]] table per certificate (see\n\
             # checkallsslcerts.toml(5)). Until then every run finds nothing to check."
        );
    }
    out.push_str(&toml_out::config_for(&found, &hostname));
    Ok(out)
}
