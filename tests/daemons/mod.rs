//! Real daemons for the live-probe tests: nginx (HTTPS), Dovecot (IMAP STARTTLS, POP3 STLS) and
//! Postfix (SMTP STARTTLS), each started on free loopback ports with its own configuration,
//! state and log files in a temporary directory, and stopped by a guard on drop (by the
//! process id the test started, or for Postfix by its master's pid file).
//!
//! Debian packages: `nginx-light`, `dovecot-imapd`, `dovecot-pop3d`, `postfix`. A test that
//! needs a missing daemon fails with a message naming the package: nothing is skipped.
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[allow(unused_imports)]
pub use crate::support::{free_port, free_ports};

/// Finds a daemon's program or fails naming its Debian package.
pub fn program(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: `apt-get install -y {package}` (the live-probe tests need it)");
}

/// Waits until every port accepts connections (bounded).
pub fn wait_for_ports(ports: &[u16], what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for port in ports {
        loop {
            if TcpStream::connect(("127.0.0.1", *port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what} did not listen on 127.0.0.1:{port} within 10s; its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Stops a process by its id: SIGTERM, a bounded wait, then SIGKILL.
fn stop_pid(pid: i32, mut reaped: impl FnMut() -> bool) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if reaped() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && !reaped() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process that is not our child has exited: no such process, or a zombie that
/// nobody reaps (a container's init may not).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// A child process stopped on drop.
pub struct Guard {
    child: Child,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let child = &mut self.child;
        stop_pid(pid, || matches!(child.try_wait(), Ok(Some(_))));
    }
}

/// A directory the daemons' unprivileged users can traverse (the keys inside stay 0600).
pub fn daemon_dir(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("mode");
    dir.to_path_buf()
}

/// nginx serving HTTPS on one port with `cert`/`key`.
pub struct Nginx {
    pub port: u16,
    pub conf: PathBuf,
    pub prefix: PathBuf,
    pub log: PathBuf,
    _guard: Guard,
}

impl Nginx {
    pub fn start(dir: &Path, port: u16, cert: &Path, key: &Path) -> Nginx {
        let nginx = program("nginx", "nginx-light");
        let prefix = daemon_dir(&dir.join("nginx"));
        std::fs::create_dir_all(prefix.join("tmp")).expect("tmp");
        let log = prefix.join("error.log");
        let conf = prefix.join("nginx.conf");
        let p = prefix.display();
        std::fs::write(
            &conf,
            format!(
                "worker_processes 1;\ndaemon off;\nuser root;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {p}/tmp; proxy_temp_path {p}/tmp;\n  \
                 fastcgi_temp_path {p}/tmp; uwsgi_temp_path {p}/tmp; scgi_temp_path {p}/tmp;\n  \
                 server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    \
                 return 200 \"ok\";\n  }}\n}}\n",
                cert.display(),
                key.display()
            ),
        )
        .expect("nginx.conf");
        let child = Command::new(nginx)
            .args(["-c", &conf.display().to_string(), "-p", &p.to_string(), "-e", &log.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let guard = Guard { child };
        wait_for_ports(&[port], "nginx", &log);
        Nginx { port, conf, prefix, log, _guard: guard }
    }

    /// The argv that makes this nginx reload its configuration.
    pub fn reload_argv(&self) -> Vec<String> {
        vec![
            "nginx".into(),
            "-c".into(),
            self.conf.display().to_string(),
            "-p".into(),
            self.prefix.display().to_string(),
            "-e".into(),
            self.log.display().to_string(),
            "-s".into(),
            "reload".into(),
        ]
    }
}

/// Dovecot with IMAP (STARTTLS) and POP3 (STLS) on two ports.
pub struct Dovecot {
    pub imap: u16,
    pub pop3: u16,
    pub conf: PathBuf,
    pub log: PathBuf,
    _guard: Guard,
}

impl Dovecot {
    pub fn start(dir: &Path, imap: u16, pop3: u16, cert: &Path, key: &Path) -> Dovecot {
        let dovecot = program("dovecot", "dovecot-imapd dovecot-pop3d");
        let base = daemon_dir(&dir.join("dovecot"));
        let log = base.join("dovecot.log");
        let conf = base.join("dovecot.conf");
        let b = base.display();
        std::fs::write(
            &conf,
            format!(
                "base_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\n\
                 protocols = imap pop3\nlisten = 127.0.0.1\nssl = yes\n\
                 ssl_cert = <{}\nssl_key = <{}\nmail_location = maildir:{b}/mail/%u\n\
                 passdb {{\n  driver = static\n  args = password=unused\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=root gid=root home={b}/home/%u\n}}\n\
                 service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
                 inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  \
                 inet_listener pop3s {{\n    port = 0\n  }}\n}}\n",
                cert.display(),
                key.display()
            ),
        )
        .expect("dovecot.conf");
        let child = Command::new(dovecot)
            .args(["-F", "-c", &conf.display().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        let guard = Guard { child };
        wait_for_ports(&[imap, pop3], "dovecot", &log);
        Dovecot { imap, pop3, conf, log, _guard: guard }
    }

    pub fn reload_argv(&self) -> Vec<String> {
        vec!["doveadm".into(), "-c".into(), self.conf.display().to_string(), "reload".into()]
    }
}

/// A private Postfix instance: `smtpd` with STARTTLS on `tls_port`, and one with TLS turned off
/// (`-o smtpd_tls_security_level=none`, so it answers STARTTLS with a refusal) on `plain_port`.
pub struct Postfix {
    pub tls_port: u16,
    pub plain_port: u16,
    pub config_dir: PathBuf,
    pub log: PathBuf,
    queue: PathBuf,
}

impl Postfix {
    pub fn start(dir: &Path, tls_port: u16, plain_port: u16, cert: &Path, key: &Path) -> Postfix {
        let base = daemon_dir(&dir.join("postfix"));
        let (config_dir, log, queue) =
            start_postfix(&base, &main_cf(&base, cert, key), &master_cf(tls_port, plain_port));
        wait_for_ports(&[tls_port, plain_port], "postfix", &log);
        Postfix { tls_port, plain_port, config_dir, log, queue }
    }

    pub fn reload_argv(&self) -> Vec<String> {
        vec!["postfix".into(), "-c".into(), self.config_dir.display().to_string(), "reload".into()]
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        stop_postfix(&self.queue);
    }
}

/// Starts a private Postfix instance in `base` with `main_cf` and `master_cf` (its own queue,
/// data and log); returns its configuration directory, log and queue. The master is stopped by
/// the pid in its queue ([`stop_postfix`]).
fn start_postfix(base: &Path, main_cf: &str, master_cf: &str) -> (PathBuf, PathBuf, PathBuf) {
    let postfix = program("postfix", "postfix");
    let config_dir = daemon_dir(&base.join("conf"));
    let queue = daemon_dir(&base.join("queue"));
    let data = base.join("data");
    std::fs::create_dir_all(&data).expect("data");
    let owner =
        nix::unistd::User::from_name("postfix").ok().flatten().expect("the postfix user (package postfix)");
    std::os::unix::fs::chown(&data, Some(owner.uid.as_raw()), None).expect("chown data");
    let log = base.join("maillog");
    std::fs::write(config_dir.join("main.cf"), main_cf).expect("main.cf");
    std::fs::write(config_dir.join("master.cf"), master_cf).expect("master.cf");
    let status = Command::new(&postfix)
        .args(["-c", &config_dir.display().to_string(), "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("postfix start");
    if !status.success() {
        stop_postfix(&queue);
        panic!(
            "postfix start failed ({status}); its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    (config_dir, log, queue)
}

/// Stops the master of the private instance whose queue is `queue` (by the pid it wrote).
fn stop_postfix(queue: &Path) {
    let pid =
        std::fs::read_to_string(queue.join("pid/master.pid")).ok().and_then(|p| p.trim().parse::<i32>().ok());
    if let Some(pid) = pid {
        stop_pid(pid, || gone(pid));
    }
}

/// The `main.cf` of a private instance (its own queue, data and log; no local delivery).
pub fn main_cf(base: &Path, cert: &Path, key: &Path) -> String {
    let b = base.display();
    format!(
        "compatibility_level = 3.7\nqueue_directory = {b}/queue\ndata_directory = {b}/data\n\
         command_directory = /usr/sbin\ndaemon_directory = /usr/lib/postfix/sbin\n\
         mail_owner = postfix\nsetgid_group = postdrop\nmyhostname = mail.probe.test\nmydestination =\n\
         alias_maps =\nalias_database =\nlocal_recipient_maps =\n\
         inet_interfaces = loopback-only\ninet_protocols = ipv4\n\
         maillog_file = {b}/maillog\nmaillog_file_prefixes = {b}\n\
         smtpd_tls_cert_file = {}\nsmtpd_tls_key_file = {}\nsmtpd_tls_security_level = may\n",
        cert.display(),
        key.display()
    )
}

/// The `master.cf`: the two `smtpd` listeners and the services they need.
pub fn master_cf(tls_port: u16, plain_port: u16) -> String {
    format!(
        "127.0.0.1:{tls_port} inet n - n - - smtpd\n\
         127.0.0.1:{plain_port} inet n - n - - smtpd\n  -o smtpd_tls_security_level=none\n\
         cleanup unix n - n - 0 cleanup\nqmgr unix n - n 300 1 qmgr\ntlsmgr unix - - n 1000? 1 tlsmgr\n\
         rewrite unix - - n - - trivial-rewrite\nbounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\n\
         trace unix - - n - 0 bounce\nverify unix - - n - 1 verify\nproxymap unix - - n - - proxymap\n\
         anvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\npostlog unix-dgram n - n - 1 postlogd\n"
    )
}

/// A private Postfix that takes mail from the local `sendmail` (through `postdrop` and `pickup`
/// into its own queue) and relays all of it to `127.0.0.1:relay_port` — the machine's mail
/// system as the tool's default `auto` route finds it. `sendmail` reaches this instance when
/// `MAIL_CONFIG` names [`PostfixRelay::config_dir`] in its environment.
pub struct PostfixRelay {
    pub config_dir: PathBuf,
    pub log: PathBuf,
    queue: PathBuf,
}

impl PostfixRelay {
    pub fn start(dir: &Path, relay_port: u16) -> PostfixRelay {
        let base = daemon_dir(&dir.join("postfix-relay"));
        let b = base.display();
        let main_cf = format!(
            "compatibility_level = 3.7\nqueue_directory = {b}/queue\ndata_directory = {b}/data\n\
             command_directory = /usr/sbin\ndaemon_directory = /usr/lib/postfix/sbin\n\
             mail_owner = postfix\nsetgid_group = postdrop\nmyhostname = relay.notify.test\n\
             mydestination =\nalias_maps =\nalias_database =\nlocal_recipient_maps =\n\
             inet_interfaces = loopback-only\ninet_protocols = ipv4\n\
             relayhost = [127.0.0.1]:{relay_port}\nsmtp_tls_security_level = none\n\
             maillog_file = {b}/maillog\nmaillog_file_prefixes = {b}\n"
        );
        let master_cf = "pickup unix n - n 60 1 pickup\ncleanup unix n - n - 0 cleanup\n\
             qmgr unix n - n 300 1 qmgr\nrewrite unix - - n - - trivial-rewrite\n\
             bounce unix - - n - 0 bounce\ndefer unix - - n - 0 bounce\ntrace unix - - n - 0 bounce\n\
             smtp unix - - n - - smtp\nerror unix - - n - - error\nretry unix - - n - - error\n\
             proxymap unix - - n - - proxymap\nanvil unix - - n - 1 anvil\nscache unix - - n - 1 scache\n\
             showq unix n - n - - showq\nflush unix n - n 1000? 0 flush\n\
             postlog unix-dgram n - n - 1 postlogd\n";
        let (config_dir, log, queue) = start_postfix(&base, &main_cf, master_cf);
        PostfixRelay { config_dir, log, queue }
    }
}

impl Drop for PostfixRelay {
    fn drop(&mut self) {
        stop_postfix(&self.queue);
    }
}
