//! The main configuration files of the daemons that run now, from `/proc/*/cmdline`: an nginx
//! started with `-c FILE`, Apache (`apache2`/`httpd`) and HAProxy with `-f FILE`, Dovecot with
//! `-c FILE`, and a Postfix master whose `MAIL_CONFIG` (`postfix -c DIR start`) names another
//! directory. Discovery then reads them besides the standard ones ([`super::Options::mains`]).
//!
//! A process tells what to read only if root runs it, and only a file that only root can change
//! is taken ([`crate::fs::check_trusted`]): another user's `nginx -c /tmp/x.conf` must not point
//! a root tool at files of that user's choosing. Every read is bounded.

use std::path::{Path, PathBuf};

use super::Daemon;

/// The longest `cmdline` or `environ` read.
const MAX_PROC_FILE: u64 = 64 * 1024;
/// The most processes looked at.
const MAX_PROCESSES: usize = 65_536;

/// What the daemons running under `proc_dir` (normally `/proc`) were started with, each once,
/// and what was skipped (a process not root's, a file others can change), as messages.
pub fn main_configs(proc_dir: &Path) -> (Vec<(Daemon, PathBuf)>, Vec<String>) {
    let mut found: Vec<(Daemon, PathBuf)> = Vec::new();
    let mut skipped = Vec::new();
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return (found, skipped);
    };
    for entry in entries.flatten().take(MAX_PROCESSES) {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = entry.path();
        let Ok(cmdline) = crate::fs::read_bounded(&dir.join("cmdline"), MAX_PROC_FILE) else { continue };
        let argv = split_cmdline(&cmdline);
        let environ =
            || crate::fs::read_bounded(&dir.join("environ"), MAX_PROC_FILE).ok().map(|b| b.to_vec());
        let Some((daemon, main)) = from_argv(&argv, environ) else { continue };
        let root_owned = std::os::unix::fs::MetadataExt::uid(&match std::fs::metadata(&dir) {
            Ok(m) => m,
            Err(_) => continue,
        }) == 0;
        if !root_owned {
            skipped.push(shown(format!(
                "{daemon} (process {}) names {}, but root does not run it",
                name.to_string_lossy(),
                main.display()
            )));
            continue;
        }
        if let Err(e) = crate::fs::check_trusted(&main) {
            skipped.push(shown(format!("{daemon} runs with {}, which is not read: {e}", main.display())));
            continue;
        }
        if !found.iter().any(|(d, m)| *d == daemon && *m == main) {
            found.push((daemon, main));
        }
    }
    (found, skipped)
}

/// A message naming what a process's command line said, for a terminal or a configuration
/// comment: any user can start a process, so its arguments are escaped and cut.
fn shown(message: String) -> String {
    crate::text::untrusted_max(&message, 400).into_owned()
}

/// The arguments of a command line: NUL-separated, or (a process that rewrote its title, like
/// nginx's "nginx: master process /usr/sbin/nginx -c /etc/x.conf") one string split on spaces.
pub fn split_cmdline(bytes: &[u8]) -> Vec<String> {
    let parts: Vec<String> = bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    match parts.as_slice() {
        [one] if one.contains(' ') => one.split_whitespace().map(str::to_owned).collect(),
        _ => parts,
    }
}

/// The daemon and its main configuration, if this command line names one (`environ`: the
/// process's environment, read only for a Postfix master).
pub fn from_argv(argv: &[String], environ: impl FnOnce() -> Option<Vec<u8>>) -> Option<(Daemon, PathBuf)> {
    let program = |arg: &str| arg.rsplit('/').next().unwrap_or(arg).trim_end_matches(':').to_owned();
    // The program is the first word, or the one after "master process" in a rewritten title.
    let position = argv.iter().position(|a| {
        matches!(program(a).as_str(), "nginx" | "apache2" | "httpd" | "haproxy" | "dovecot" | "master")
    })?;
    let (daemon, flag) = match program(&argv[position]).as_str() {
        "nginx" => (Daemon::Nginx, "-c"),
        "apache2" | "httpd" => (Daemon::Apache, "-f"),
        "haproxy" => (Daemon::Haproxy, "-f"),
        "dovecot" => (Daemon::Dovecot, "-c"),
        "master" if argv[position].contains("postfix") => {
            let environ = environ()?;
            let dir = environ
                .split(|b| *b == 0)
                .find_map(|kv| kv.strip_prefix(b"MAIL_CONFIG="))
                .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))?;
            return dir.is_absolute().then_some((Daemon::Postfix, dir));
        }
        _ => return None,
    };
    let rest = &argv[position + 1..];
    let value = rest.iter().position(|a| a == flag).and_then(|i| rest.get(i + 1)).cloned().or_else(|| {
        rest.iter().find_map(|a| a.strip_prefix(flag).filter(|v| !v.is_empty()).map(str::to_owned))
    })?;
    let path = PathBuf::from(value);
    path.is_absolute().then_some((daemon, path))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A command line, and the daemon and file it should name.
    type Case = (&'static [u8], Option<(Daemon, &'static str)>);

    fn argv(text: &str) -> Vec<String> {
        split_cmdline(text.as_bytes())
    }

    #[test]
    fn command_lines_name_their_main_configuration() {
        let none = || None;
        let cases: [Case; 9] = [
            (
                b"nginx: master process /usr/sbin/nginx -c /srv/web/nginx.conf",
                Some((Daemon::Nginx, "/srv/web/nginx.conf")),
            ),
            (b"/usr/sbin/nginx\0-c\0/opt/n.conf\0-g\0daemon off;\0", Some((Daemon::Nginx, "/opt/n.conf"))),
            (b"nginx: worker process", None),
            (b"/usr/sbin/apache2\0-k\0start\0-f\0/srv/a.conf\0", Some((Daemon::Apache, "/srv/a.conf"))),
            (
                b"/usr/sbin/haproxy\0-Ws\0-f\0/srv/h.cfg\0-p\0/run/haproxy.pid\0",
                Some((Daemon::Haproxy, "/srv/h.cfg")),
            ),
            (b"/usr/sbin/dovecot\0-F\0-c\0/srv/d.conf\0", Some((Daemon::Dovecot, "/srv/d.conf"))),
            (b"/usr/sbin/nginx\0-c\0relative.conf\0", None),
            (b"/usr/bin/vim\0-c\0/etc/x\0", None),
            (b"/usr/sbin/dovecot\0-F\0", None),
        ];
        for (line, expected) in cases {
            let got = from_argv(&argv(&String::from_utf8_lossy(line)), none);
            assert_eq!(
                got,
                expected.map(|(d, p)| (d, PathBuf::from(p))),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        let postfix = argv("/usr/lib/postfix/sbin/master\0-w\0");
        let env = || Some(b"PATH=/bin\0MAIL_CONFIG=/etc/postfix-out\0".to_vec());
        assert_eq!(from_argv(&postfix, env), Some((Daemon::Postfix, PathBuf::from("/etc/postfix-out"))));
        assert_eq!(from_argv(&postfix, || Some(b"PATH=/bin\0".to_vec())), None);
    }

    /// A fake `/proc`: a root-owned process naming a trusted file is taken; one naming a file
    /// others may write is skipped with a message.
    #[test]
    fn only_files_only_root_can_change_are_taken() {
        let proc_dir = tempfile::tempdir().unwrap();
        let conf = tempfile::tempdir().unwrap();
        let good = conf.path().join("good.conf");
        let open = conf.path().join("open.conf");
        std::fs::write(&good, "events {}\n").unwrap();
        std::fs::write(&open, "events {}\n").unwrap();
        std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
        for (pid, file) in [("100", &good), ("101", &open)] {
            let dir = proc_dir.path().join(pid);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join("cmdline"), format!("/usr/sbin/nginx\0-c\0{}\0", file.display()))
                .unwrap();
        }
        std::fs::create_dir(proc_dir.path().join("self")).unwrap();
        let (found, skipped) = main_configs(proc_dir.path());
        // The tests run as root (CI) or as a user, who then owns the fake /proc entries: only
        // root-run processes count, so as a user nothing is taken.
        if rustix::process::geteuid().is_root() {
            assert_eq!(found, [(Daemon::Nginx, good.clone())], "{skipped:?}");
            assert!(skipped.iter().any(|s| s.contains("open.conf")), "{skipped:?}");
        } else {
            assert!(found.is_empty());
        }
    }
}
