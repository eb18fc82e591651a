//! Real parts for the notification, metrics and JSON report tests: a test CA that issues
//! certificates with chosen dates (OpenSSL), a real SMTP server on loopback (PyPI `aiosmtpd`,
//! writing a Maildir) that is killed when dropped, and a parser for the mails it received
//! (Python's `email` package, so encodings are decoded the way a mail client would).
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509Name, X509NameBuilder};

pub const HOST: &str = "host.example.com";
pub const DAY: i64 = 86_400;

/// Tests stay on loopback: no revocation, DNS, CAA or ARI lookups.
pub const NO_NETWORK: &str = "[network]\nrevocation = false\ndns = false\nari = false\n\n";

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec key")).expect("pkey")
}

fn name(org: Option<&str>, cn: &str) -> X509Name {
    let mut b = X509NameBuilder::new().expect("name");
    if let Some(org) = org {
        b.append_entry_by_text("O", org).expect("O");
    }
    b.append_entry_by_text("CN", cn).expect("CN");
    b.build()
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().expect("bn");
    bn.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false).expect("rand");
    bn.to_asn1_integer().expect("serial")
}

/// A private CA that is not Let's Encrypt ("Example Test CA"), so its certificates expire soon
/// with less than 3 days left under the default policy.
pub struct TestCa {
    cert: X509,
    key: PKey<Private>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = ec_key();
        let n = name(Some("Example Test CA"), "Example Test Root");
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        b.set_subject_name(&n).expect("subject");
        b.set_issuer_name(&n).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::from_unix(now() - 30 * DAY).expect("t")).expect("nb");
        b.set_not_after(&Asn1Time::from_unix(now() + 3650 * DAY).expect("t")).expect("na");
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc")).expect("ext");
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().expect("ku"))
            .expect("ext");
        b.sign(&key, MessageDigest::sha256()).expect("sign");
        TestCa { cert: b.build(), key }
    }

    /// Writes the root certificate (for `[trust] extra-roots`).
    pub fn write_root(&self, path: &Path) {
        std::fs::write(path, self.cert.to_pem().expect("pem")).expect("write root");
    }

    /// Issues a leaf for `names` (DNS names or IP addresses) valid from `not_before` to
    /// `not_after` (Unix seconds), and writes it and its key (mode 0600).
    pub fn issue(&self, cert: &Path, key: &Path, names: &[&str], not_before: i64, not_after: i64) {
        let leaf_key = ec_key();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        b.set_subject_name(&name(None, names[0])).expect("subject");
        b.set_issuer_name(self.cert.subject_name()).expect("issuer");
        b.set_pubkey(&leaf_key).expect("pubkey");
        b.set_not_before(&Asn1Time::from_unix(not_before).expect("t")).expect("nb");
        b.set_not_after(&Asn1Time::from_unix(not_after).expect("t")).expect("na");
        let mut san = SubjectAlternativeName::new();
        for n in names {
            if n.parse::<std::net::IpAddr>().is_ok() {
                san.ip(n);
            } else {
                san.dns(n);
            }
        }
        let ctx = b.x509v3_context(Some(&self.cert), None);
        let san = san.build(&ctx).expect("san");
        b.append_extension(san).expect("ext");
        b.sign(&self.key, MessageDigest::sha256()).expect("sign");
        write_pair(cert, &b.build(), key, &leaf_key);
    }
}

/// A self-signed certificate for `HOST` valid for a year.
pub fn self_signed(cert: &Path, key: &Path) {
    let k = ec_key();
    let n = name(None, HOST);
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(&serial()).expect("serial");
    b.set_subject_name(&n).expect("subject");
    b.set_issuer_name(&n).expect("issuer");
    b.set_pubkey(&k).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(now() - DAY).expect("t")).expect("nb");
    b.set_not_after(&Asn1Time::from_unix(now() + 365 * DAY).expect("t")).expect("na");
    let ctx = b.x509v3_context(None, None);
    let san = SubjectAlternativeName::new().dns(HOST).build(&ctx).expect("san");
    b.append_extension(san).expect("ext");
    b.sign(&k, MessageDigest::sha256()).expect("sign");
    write_pair(cert, &b.build(), key, &k);
}

fn write_pair(cert_path: &Path, cert: &X509, key_path: &Path, key: &PKey<Private>) {
    std::fs::write(cert_path, cert.to_pem().expect("pem")).expect("write cert");
    std::fs::write(key_path, key.private_key_to_pem_pkcs8().expect("key pem")).expect("write key");
    std::fs::set_permissions(key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

pub use crate::support::free_port;

/// How the test SMTP server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    Plain,
    /// STARTTLS offered (and required) with this certificate.
    Starttls,
    /// TLS from the first byte.
    Tls,
}

/// A real SMTP server (`python3 -m aiosmtpd`) on a loopback port, storing every message in a
/// Maildir. Killed when dropped.
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub maildir: PathBuf,
}

impl SmtpServer {
    /// Starts a plain SMTP server storing into `dir/maildir`.
    pub fn start(dir: &Path) -> SmtpServer {
        SmtpServer::start_with(dir, SmtpMode::Plain, None)
    }

    /// Starts a server; `tls` is the certificate and key for STARTTLS or implicit TLS.
    pub fn start_with(dir: &Path, mode: SmtpMode, tls: Option<(&Path, &Path)>) -> SmtpServer {
        let maildir = dir.join("maildir");
        let port = free_port();
        let mut command = Command::new("python3");
        command.args(["-m", "aiosmtpd", "-n", "-l"]).arg(format!("127.0.0.1:{port}"));
        match (mode, tls) {
            (SmtpMode::Plain, _) => {}
            (SmtpMode::Starttls, Some((cert, key))) => {
                command.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
            }
            (SmtpMode::Tls, Some((cert, key))) => {
                command.arg("--smtpscert").arg(cert).arg("--smtpskey").arg(key);
            }
            (_, None) => panic!("a TLS mode needs a certificate"),
        }
        command.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(&maildir);
        SmtpServer::spawn(dir, command, port, maildir)
    }

    /// Starts a server that requires STARTTLS and then AUTH (PLAIN/LOGIN) as `user` with
    /// `password`: aiosmtpd's own Controller with an authenticator, which its command line
    /// cannot set up.
    pub fn start_auth(dir: &Path, cert: &Path, key: &Path, user: &str, password: &str) -> SmtpServer {
        let maildir = dir.join("maildir");
        let port = free_port();
        let mut command = Command::new("python3");
        command.arg("-c").arg(AUTH_SERVER).arg(port.to_string()).arg(&maildir).arg(cert).arg(key);
        command.args([user, password]);
        SmtpServer::spawn(dir, command, port, maildir)
    }

    fn spawn(dir: &Path, mut command: Command, port: u16, maildir: PathBuf) -> SmtpServer {
        let stderr = dir.join(format!("aiosmtpd-{port}.log"));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("log"))
            .spawn()
            .expect("python3 -m aiosmtpd runs (pip install aiosmtpd)");
        let mut server = SmtpServer { child, port, maildir };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "aiosmtpd exited ({status}) before listening on {port}: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "aiosmtpd did not listen on {port} within 15 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let new = self.maildir.join("new");
        let mut files: Vec<(SystemTime, PathBuf)> = match std::fs::read_dir(&new) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH), e.path()))
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        files.into_iter().map(|(_, path)| Mail::parse(&path)).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const AUTH_SERVER: &str = r#"
import ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
port, maildir, cert, key, user, password = sys.argv[1:]
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
def authenticator(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password.encode()
    # handled=False: aiosmtpd answers a failure with "535 ... credentials invalid" itself.
    return AuthResult(success=ok, handled=False)
controller = Controller(Mailbox(maildir), hostname='127.0.0.1', port=int(port), tls_context=context,
                        require_starttls=True, authenticator=authenticator, auth_required=True)
controller.start()
while True:
    time.sleep(3600)
"#;

/// One received message, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    pub subject: String,
    pub from: String,
    pub to: String,
    /// The envelope recipients, as the server saw them (`X-RcptTo`, added by aiosmtpd).
    pub rcpt_to: String,
    pub auto_submitted: String,
    pub body: String,
}

const PARSE_MAIL: &str = r#"
import email, email.policy, json, sys
with open(sys.argv[1], 'rb') as f:
    m = email.message_from_binary_file(f, policy=email.policy.default)
h = lambda k: str(m.get(k, ''))
print(json.dumps({'subject': h('Subject'), 'from': h('From'), 'to': h('To'),
                  'rcpt_to': h('X-RcptTo'), 'auto_submitted': h('Auto-Submitted'),
                  'body': m.get_body(('plain',)).get_content()}))
"#;

impl Mail {
    /// The body with every run of whitespace (line ends of the wrapped text too) made one space.
    pub fn flat_body(&self) -> String {
        self.body.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    pub fn parse(path: &Path) -> Mail {
        let out = Command::new("python3").arg("-c").arg(PARSE_MAIL).arg(path).output().expect("python3");
        assert!(out.status.success(), "parsing {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Mail {
            subject: s("subject"),
            from: s("from"),
            to: s("to"),
            rcpt_to: s("rcpt_to"),
            auto_submitted: s("auto_submitted"),
            body: s("body"),
        }
    }
}

/// A scratch host: a folder with a state directory, a test CA trusted through `extra-roots`,
/// and a configuration assembled from parts.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub ca: TestCa,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = TestCa::new();
        ca.write_root(&dir.path().join("ca.pem"));
        std::fs::create_dir(dir.path().join("state")).expect("state dir");
        Scratch { dir, ca }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    /// Creates a switch file (`disable_auto_hostname_certificate`, ...) in the state directory.
    pub fn touch_switch(&self, name: &str) {
        std::fs::write(self.state_dir().join(name), "").expect("touch");
    }

    /// Issues `<service>.pem` / `<service>.key` from the test CA with `days_left` (fractions of
    /// a day allowed through `seconds_left`).
    pub fn issue(&self, service: &str, seconds_left: i64) {
        let t = now();
        self.ca.issue(
            &self.path(&format!("{service}.pem")),
            &self.path(&format!("{service}.key")),
            &[HOST],
            t - 20 * DAY,
            t + seconds_left,
        );
    }

    /// A `[[service]]` table for `<service>.pem` / `<service>.key` in the scratch folder.
    pub fn service(&self, service: &str) -> String {
        format!(
            "[[service]]\nname = \"{service}\"\ncertificate = \"{}\"\nkey = \"{}\"\n\n",
            self.path(&format!("{service}.pem")).display(),
            self.path(&format!("{service}.key")).display()
        )
    }

    /// Writes `config.toml`: the hostname, state dir, trust and no network checks, then `rest`.
    pub fn config(&self, rest: &str) -> PathBuf {
        let text = format!(
            "hostname = \"{HOST}\"\nstate-dir = \"{}\"\n\n[trust]\nextra-roots = [\"{}\"]\n\n{NO_NETWORK}{rest}",
            self.state_dir().display(),
            self.path("ca.pem").display()
        );
        let path = self.path("config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }
}
