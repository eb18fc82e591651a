//! `checkallsslcerts generate-docs --out DIR` (hidden): the man pages and shell completions,
//! generated from the clap definitions, for packagers (`scripts/package.sh`).
//!
//! - `man/checkallsslcerts.8`: clap_mangen's title, synopsis, description and options, then
//!   every subcommand with its options, the exit codes, the files and the environment.
//! - `man/checkallsslcerts.toml.5`: the configuration file, from `examples/config.toml` itself
//!   (its comments are the reference), so the two never disagree.
//! - `completions/checkallsslcerts.bash`, `_checkallsslcerts` (zsh), `checkallsslcerts.fish`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use clap_complete::Shell;

use super::{Cli, EXIT_CODES_HELP, exit};

/// The reference configuration, documented line by line.
const EXAMPLE_CONFIG: &str = include_str!("../../../examples/config.toml");

#[derive(Debug, Parser)]
pub struct GenerateDocsArgs {
    /// The directory to write `man/` and `completions/` into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Writes the man pages and completions; returns the exit code.
pub fn run(args: &GenerateDocsArgs) -> i32 {
    match generate(&args.out) {
        Ok(written) => {
            for path in written {
                say!("{}", path.display());
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("checkallsslcerts: generate-docs: {e}");
            exit::ERRORS
        }
    }
}

fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    // Through the file layer, as every write of the tool: link-safe, atomic.
    let fs_error = |e: crate::fs::FsError| std::io::Error::other(e.to_string());
    let man = out.join("man");
    let completions = out.join("completions");
    crate::fs::create_private_dir(&man, false).map_err(fs_error)?;
    crate::fs::create_private_dir(&completions, false).map_err(fs_error)?;
    let mut files = vec![
        (man.join("checkallsslcerts.8"), man_page()?),
        (man.join("checkallsslcerts.toml.5"), config_page().into_bytes()),
    ];
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut command(), "checkallsslcerts", &mut text);
        files.push((completions.join(clap_complete::Generator::file_name(&shell, "checkallsslcerts")), text));
    }
    for (path, bytes) in &files {
        crate::fs::write_atomic(path, bytes, 0o644).map_err(fs_error)?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

/// The command as users see it (the hidden generator left out).
fn command() -> clap::Command {
    Cli::command().mut_subcommand("generate-docs", |c| c.hide(true))
}

/// Text for roff: backslashes doubled, a leading `.` or `'` (a request) made literal.
fn roff_text(text: &str) -> String {
    text.lines()
        .map(|line| {
            let line = line.replace('\\', "\\e");
            if line.starts_with('.') || line.starts_with('\'') { format!("\\&{line}") } else { line }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// checkallsslcerts(8).
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = command();
    let man = clap_mangen::Man::new(cmd.clone()).section("8").manual("System Administration");
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    let _ = writeln!(buf, ".SH COMMANDS");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        subcommand(&mut buf, "checkallsslcerts", sub);
    }
    let _ = writeln!(buf, ".SH \"EXIT STATUS\"\n.nf\n{}\n.fi", roff_text(EXIT_CODES_HELP));
    let _ = writeln!(
        buf,
        ".SH FILES\n.TP\n/etc/checkallsslcerts/config.toml\nThe configuration (see \\fBcheckallsslcerts.toml\\fR(5)); \
         \\fB--config\\fR or \\fBCHECKALLSSLCERTS_CONFIG\\fR choose another.\n\
         .TP\n/var/lib/checkallsslcerts/\nThe state directory (0700): the lock, install journals and backups, the ACME \
         account, pending orders and issued certificates (\\fIgroups/NAME/\\fR for certificate groups), caches.\n\
         .TP\n/var/lib/checkallsslcerts/disable_auto_hostname_certificate\nIf it exists, no certificate is ordered for \
         the hostname.\n\
         .TP\n/var/lib/checkallsslcerts/disable_service_certificate_management\nIf it exists, no service certificate is \
         replaced automatically.\n\
         .TP\n/lib/systemd/system/checkallsslcerts.service, checkallsslcerts.timer\nThe nightly run.\n\
         .SH ENVIRONMENT\n.TP\nCHECKALLSSLCERTS_CONFIG\nThe configuration file.\n\
         .SH \"SEE ALSO\"\n\\fBcheckallsslcerts.toml\\fR(5), \\fBcertbot\\fR(1), \\fBat\\fR(1)"
    );
    man.render_version_section(&mut buf)?;
    Ok(buf)
}

/// One subcommand (and its own subcommands): its name, what it does, its options.
fn subcommand(buf: &mut Vec<u8>, parent: &str, cmd: &clap::Command) {
    let name = format!("{parent} {}", cmd.get_name());
    let about = cmd.get_long_about().or_else(|| cmd.get_about()).map(ToString::to_string).unwrap_or_default();
    let _ = writeln!(buf, ".SS \"{}\"\n{}", name, roff_text(&about));
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set() && !a.is_global_set()) {
        let flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), Some(short)) => format!("\\-{short}, \\-\\-{long}"),
            (Some(long), None) => format!("\\-\\-{long}"),
            (None, Some(short)) => format!("\\-{short}"),
            (None, None) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
        };
        if matches!(arg.get_id().as_str(), "help" | "version") {
            continue;
        }
        let help =
            arg.get_long_help().or_else(|| arg.get_help()).map(ToString::to_string).unwrap_or_default();
        let _ = writeln!(buf, ".TP\n\\fB{flag}\\fR\n{}", roff_text(&help));
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        subcommand(buf, &name, sub);
    }
}

/// checkallsslcerts.toml(5): the reference configuration as it ships, every setting explained
/// in its comments.
pub fn config_page() -> String {
    format!(
        ".TH CHECKALLSSLCERTS.TOML 5 \"\" \"checkallsslcerts {version}\" \"File Formats\"\n\
         .SH NAME\ncheckallsslcerts.toml \\- configuration of checkallsslcerts\n\
         .SH SYNOPSIS\n/etc/checkallsslcerts/config.toml\n\
         .SH DESCRIPTION\nThe configuration of \\fBcheckallsslcerts\\fR(8), in TOML. Every section is optional: \
         without \\fB[[service]]\\fR tables the services are discovered from the daemons' own configuration \
         (nginx, Apache, Postfix, Dovecot, Exim, Pure-FTPd, vsftpd, ProFTPD, HAProxy); without \\fB[acme]\\fR \
         no certificate is ordered and unusable certificates get self-signed placeholders. \
         \\fBcheckallsslcerts config check\\fR reads it and prints what it resolves to; an error names the line and \
         column. The file must not be writable by anyone but root.\n\
         .PP\nThe reference below is the annotated example shipped as \
         /usr/share/doc/checkallsslcerts/examples/config.toml; each setting's comment gives its meaning, its \
         values and its default.\n\
         .SH REFERENCE\n.nf\n{text}\n.fi\n\
         .SH \"SEE ALSO\"\n\\fBcheckallsslcerts\\fR(8)\n",
        version = env!("CARGO_PKG_VERSION"),
        text = roff_text(EXAMPLE_CONFIG)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// checkallsslcerts(8) has every visible subcommand, the exit codes and the files;
    /// checkallsslcerts.toml(5) carries the reference configuration, with roff requests made
    /// literal.
    #[test]
    fn the_man_pages_cover_the_commands_the_exit_codes_and_the_configuration() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        for expected in [
            ".TH checkallsslcerts 8",
            ".SS \"checkallsslcerts policy test\"",
            ".SS \"checkallsslcerts init\"",
            ".SS \"checkallsslcerts services\"",
            ".SS \"checkallsslcerts config check\"",
            ".SH \"EXIT STATUS\"",
            "another run holds the lock",
            "/var/lib/checkallsslcerts/disable_auto_hostname_certificate",
            "\\-\\-dry\\-run",
        ] {
            assert!(page.contains(expected), "{expected:?} in the man page");
        }
        assert!(!page.contains("generate-docs"), "the packagers' command is not documented for users");
        let config = config_page();
        assert!(config.contains(".TH CHECKALLSSLCERTS.TOML 5"));
        for line in
            EXAMPLE_CONFIG.lines().filter(|l| l.starts_with("[[service]]") || l.starts_with("name = "))
        {
            assert!(config.contains(line), "{line:?}");
        }
        // No line of the reference may be read as a roff request.
        let reference = config.split(".SH REFERENCE\n.nf\n").nth(1).unwrap().split("\n.fi\n").next().unwrap();
        assert!(
            reference.lines().all(|l| !l.starts_with('.') && !l.starts_with('\'')),
            "roff requests in the text"
        );
        assert_eq!(roff_text(".PP\n'x\na\\b"), "\\&.PP\n\\&'x\na\\eb");
    }
}
