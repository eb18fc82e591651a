//! `checkallsslcerts services [--root DIR] [--print-config]`: what discovery finds.

use std::path::PathBuf;

use clap::Args;

use super::exit;
use crate::discovery::{self, Options, toml_out};

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Print the services as configuration ([[service]] tables) to adopt
    #[arg(long)]
    pub print_config: bool,
    /// Read every configuration (and the files it names) under this directory, as in a mounted
    /// system image [default: /]
    #[arg(long, value_name = "DIR", env = discovery::ROOT_ENV)]
    pub root: Option<PathBuf>,
}

/// Runs discovery and prints it; exit 1 when something could not be read.
pub fn run(args: &ServicesArgs) -> i32 {
    let options = match &args.root {
        Some(root) if !root.is_dir() => {
            eprintln!("checkallsslcerts: --root {}: not a directory", root.display());
            return exit::USAGE;
        }
        Some(root) => Options::with_root(root.clone()),
        None => {
            // On the host itself: also the daemons started with their own configuration.
            let mut options = Options::with_root(PathBuf::from("/"));
            let (mains, skipped) = discovery::running::main_configs(std::path::Path::new("/proc"));
            options.mains = mains;
            for why in skipped {
                eprintln!("checkallsslcerts: not read: {why}");
            }
            options
        }
    };
    let found = discovery::discover(&options);
    if args.print_config {
        crate::cli::out(format_args!("{}", toml_out::config(&found)));
        for p in &found.problems {
            eprintln!("checkallsslcerts: could not read: {p}");
        }
    } else {
        crate::cli::out(format_args!("{}", toml_out::listing(&found)));
    }
    if found.problems.is_empty() { exit::OK } else { exit::ERRORS }
}
