//! The notification mail, end to end: the real binary runs on scratch certificates and mails a
//! real SMTP server on loopback (`python3 -m aiosmtpd`, PyPI `aiosmtpd`), whose Maildir the
//! tests read back.

#[path = "daemons/mod.rs"]
mod daemons;
mod support;
mod tell_support;

use std::path::Path;

use support::Run;
use tell_support::{DAY, HOST, Scratch, SmtpMode, SmtpServer, free_port};

fn mail_section(port: u16) -> String {
    format!(
        "[mail]\ntransport = \"smtp\"\nsmtp-host = \"127.0.0.1\"\nsmtp-port = {port}\nsmtp-tls = \"none\"\n\n"
    )
}

fn run(config: &Path) -> support::Outcome {
    Run::new().arg("--config").arg(config).run()
}

#[test]
fn an_error_run_mails_root_with_the_problem_what_was_done_and_what_to_do() {
    let s = Scratch::new();
    let smtp = SmtpServer::start(s.dir.path());
    s.touch_switch("disable_auto_hostname_certificate");
    // web's certificate file does not exist; api is fine.
    s.issue("api", 60 * DAY);
    let config = s.config(&format!("{}{}{}", mail_section(smtp.port), s.service("web"), s.service("api")));

    let out = Run::new().arg("--config").arg(&config).arg("--verbose").run().code(1);
    assert!(out.stdout.contains("install-placeholder done"), "{}", out.stdout);
    let sent = format!(
        "info: The notification mail about 1 error was sent to root@{HOST} via the SMTP server 127.0.0.1:{}",
        smtp.port
    );
    assert!(out.stdout.contains(&sent), "{}", out.stdout);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{}", out.stdout);
    let m = &mails[0];
    assert_eq!(m.subject, format!("[checkallsslcerts] {HOST}: 1 error"));
    assert_eq!(m.to, format!("root@{HOST}"));
    assert_eq!(m.rcpt_to, format!("root@{HOST}"));
    assert_eq!(m.from, format!("checkallsslcerts@{HOST}"));
    assert_eq!(m.auto_submitted, "auto-generated");
    let body = &m.flat_body();
    for needle in [
        "checkallsslcerts found 1 error on host.example.com",
        "== Service web: ERROR (new)",
        "Certificate: missing:",
        "Decision: placeholder (reasons: missing)",
        // The policy's notice, naming why no certificate can be ordered.
        "disable_auto_hostname_certificate",
        // What was done.
        "install-placeholder done: installed a self-signed placeholder",
        // What to do.
        "Install a valid certificate for host.example.com as",
        "self-signed placeholder, which clients warn about",
        "Services without problems: api.",
    ] {
        assert!(body.contains(needle), "{needle:?} not in the body:\n{body}");
    }
    assert!(!body.contains("== Service api"), "{body}");
}

#[test]
fn an_expiring_certificate_from_a_private_ca_is_mailed_as_a_warning() {
    let s = Scratch::new();
    let smtp = SmtpServer::start(s.dir.path());
    s.issue("mail", 2 * DAY + 3600);
    let config = s.config(&format!(
        "{}to = [\"certs@example.org\", \"root\"]\nfrom = \"tls-bot@example.org\"\n\n{}",
        mail_section(smtp.port),
        s.service("mail")
    ));

    run(&config).code(0);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.subject, format!("[checkallsslcerts] {HOST}: 1 warning"));
    assert_eq!(m.to, format!("certs@example.org, root@{HOST}"));
    assert_eq!(m.rcpt_to, format!("certs@example.org, root@{HOST}"));
    assert_eq!(m.from, "tls-bot@example.org");
    for needle in [
        "== Service mail: WARNING (new)",
        "from Example Test CA, valid until",
        "(2 days left)",
        "reasons: expiring-soon",
        "expires in 2 days",
        "Renew the certificate before it expires",
        "nothing was changed",
    ] {
        assert!(m.flat_body().contains(needle), "{needle:?} not in the body:\n{}", m.body);
    }
}

#[test]
fn with_service_certificate_management_disabled_expiry_is_not_mailed() {
    let s = Scratch::new();
    let smtp = SmtpServer::start(s.dir.path());
    s.touch_switch("disable_service_certificate_management");
    s.issue("mail", 2 * DAY + 3600);
    let config = s.config(&format!("{}{}", mail_section(smtp.port), s.service("mail")));

    let out = Run::new().arg("--config").arg(&config).arg("--json").run().code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let notices = report["notices"].as_array().expect("notices");
    assert!(
        notices.iter().all(|n| n["level"] == "info" && n["service"].is_null()),
        "only the info notice about the switch: {notices:?}"
    );
    assert!(smtp.messages().is_empty(), "no mail for expiry alone");

    // Another problem is still mailed, without a word about the expiring or expired ones.
    let config = s.config(&format!("{}{}{}", mail_section(smtp.port), s.service("mail"), s.service("gone")));
    run(&config);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let body = &mails[0].flat_body();
    assert!(body.contains("== Service gone:"), "{body}");
    assert!(!body.contains("== Service mail"), "{body}");
    assert!(!body.contains("expires in") && !body.contains("reasons: expired"), "{body}");
    assert!(body.contains("Services without problems: mail."), "{body}");
}

#[test]
fn a_repeat_within_the_quiet_period_is_not_mailed_but_a_worse_problem_is() {
    let s = Scratch::new();
    let smtp = SmtpServer::start(s.dir.path());
    s.issue("mail", 2 * DAY + 3600);
    let config = s.config(&format!("{}{}", mail_section(smtp.port), s.service("mail")));

    run(&config).code(0);
    assert_eq!(smtp.messages().len(), 1);
    let state = s.state_dir().join("notify/sent.json");
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    assert_eq!(recorded["problems"].as_object().expect("problems").len(), 1, "{recorded}");

    // The same warning again, a little less time left: no second mail.
    s.issue("mail", 2 * DAY);
    let out = Run::new().arg("--config").arg(&config).arg("--verbose").run().code(0);
    assert_eq!(smtp.messages().len(), 1, "{}", out.stdout);
    assert!(
        out.stdout
            .contains("info: No notification mail: 1 warning was already mailed within the quiet period."),
        "{}",
        out.stdout
    );

    // Worse: the certificate has expired (an error, and a placeholder is installed).
    s.issue("mail", -3600);
    run(&config).code(1);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].subject, format!("[checkallsslcerts] {HOST}: 1 error"));
    let body = mails[1].flat_body();
    assert!(body.contains("== Service mail: ERROR (new)"), "{body}");
    assert!(body.contains("reasons: expired"), "{body}");
}

#[test]
fn a_new_problem_beside_a_known_one_sends_a_mail_listing_both() {
    let s = Scratch::new();
    let smtp = SmtpServer::start(s.dir.path());
    s.issue("mail", 2 * DAY + 3600);
    let config = s.config(&format!("{}{}", mail_section(smtp.port), s.service("mail")));
    run(&config);
    let config = s.config(&format!("{}{}{}", mail_section(smtp.port), s.service("mail"), s.service("web")));
    run(&config);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].subject, format!("[checkallsslcerts] {HOST}: 1 error, 1 warning"));
    let body = mails[1].flat_body();
    assert!(body.contains("== Service mail: WARNING (reported earlier)"), "{body}");
    assert!(body.contains("== Service web: ERROR (new)"), "{body}");
}

#[test]
fn a_dry_run_never_mails() {
    let s = Scratch::new();
    let smtp = SmtpServer::start(s.dir.path());
    let config = s.config(&format!("{}{}", mail_section(smtp.port), s.service("web")));
    Run::new().arg("--config").arg(&config).arg("--dry-run").run().code(1);
    assert!(smtp.messages().is_empty());
    assert!(!s.state_dir().join("notify").exists());
}

#[test]
fn smtp_server_down_the_run_completes_warns_naming_the_server_and_keeps_its_exit_code() {
    let s = Scratch::new();
    let port = free_port(); // nothing listens here
    s.issue("mail", 2 * DAY + 3600);
    let services = format!("{}{}", s.service("mail"), s.service("web"));

    let without_mail = s.config(&format!("[mail]\nenabled = false\n\n{services}"));
    let reference = run(&without_mail);
    assert_eq!(reference.code, 1);
    assert!(!reference.stdout.contains("notification mail"), "{}", reference.stdout);

    // A fresh state, so the placeholder for web is installed again as in the reference run.
    std::fs::remove_dir_all(s.state_dir()).expect("reset state");
    std::fs::remove_file(s.path("web.pem")).expect("reset web");
    std::fs::remove_file(s.path("web.key")).expect("reset web key");
    let config = s.config(&format!("{}{services}", mail_section(port)));
    let out = run(&config);
    assert_eq!(out.code, reference.code, "{}", out.stdout);
    assert!(out.stdout.contains("install-placeholder done"), "{}", out.stdout);
    let server = format!("127.0.0.1:{port}");
    let warning = out
        .stdout
        .lines()
        .find(|l| l.starts_with("warning: The notification mail"))
        .unwrap_or_else(|| panic!("no warning about the mail in\n{}", out.stdout));
    assert!(warning.contains(&server), "{warning}");
    assert!(warning.contains("could not be sent to root@host.example.com"), "{warning}");
    // Nothing was recorded as mailed, so the next run tries again.
    let state = std::fs::read_to_string(s.state_dir().join("notify/sent.json")).unwrap_or_default();
    assert!(!state.contains("last-sent"), "{state}");
}

#[test]
fn starttls_and_implicit_tls_relays_are_verified_against_extra_roots() {
    for mode in [SmtpMode::Starttls, SmtpMode::Tls] {
        let s = Scratch::new();
        let (cert, key) = (s.path("smtp.pem"), s.path("smtp.key"));
        let t = tell_support::now();
        s.ca.issue(&cert, &key, &["localhost", "127.0.0.1"], t - DAY, t + 30 * DAY);
        let smtp = SmtpServer::start_with(s.dir.path(), mode, Some((&cert, &key)));
        let tls = if mode == SmtpMode::Tls { "tls" } else { "starttls" };
        let config = s.config(&format!(
            "[mail]\ntransport = \"smtp\"\nsmtp-host = \"127.0.0.1\"\nsmtp-port = {}\nsmtp-tls = \"{tls}\"\n\n{}",
            smtp.port,
            s.service("web")
        ));
        let out = run(&config).code(1);
        let mails = smtp.messages();
        assert_eq!(mails.len(), 1, "{mode:?}: {}", out.stdout);
        assert!(mails[0].subject.ends_with(": 1 error"), "{mode:?}");
    }
}

#[test]
fn a_relay_whose_certificate_is_not_trusted_is_refused_with_a_warning() {
    let s = Scratch::new();
    // The relay's certificate is self-signed: not from the CA in extra-roots.
    let (cert, key) = (s.path("smtp.pem"), s.path("smtp.key"));
    tell_support::self_signed(&cert, &key);
    let smtp = SmtpServer::start_with(s.dir.path(), SmtpMode::Tls, Some((&cert, &key)));
    let config = s.config(&format!(
        "[mail]\ntransport = \"smtp\"\nsmtp-host = \"127.0.0.1\"\nsmtp-port = {}\nsmtp-tls = \"tls\"\n\n{}",
        smtp.port,
        s.service("web")
    ));
    let out = run(&config).code(1);
    assert!(smtp.messages().is_empty());
    let warning = out.stdout.lines().find(|l| l.contains("notification mail")).unwrap_or_default();
    assert!(warning.contains(&format!("127.0.0.1:{} (implicit TLS)", smtp.port)), "{}", out.stdout);
    assert!(warning.contains("certificate verify failed"), "{warning}");
}

#[test]
fn smtp_authentication_reads_the_password_from_its_file_and_never_shows_it() {
    let s = Scratch::new();
    let (cert, key) = (s.path("smtp.pem"), s.path("smtp.key"));
    let t = tell_support::now();
    s.ca.issue(&cert, &key, &["127.0.0.1"], t - DAY, t + 30 * DAY);
    let smtp = SmtpServer::start_auth(s.dir.path(), &cert, &key, "certbot", "pa55-w0rd");
    let password_file = s.path("smtp-password");
    let config = |password: &str| {
        std::fs::write(&password_file, format!("{password}\n")).expect("password file");
        s.config(&format!(
            "[mail]\ntransport = \"smtp\"\nsmtp-host = \"127.0.0.1\"\nsmtp-port = {}\n\
             smtp-user = \"certbot\"\nsmtp-password-file = \"{}\"\nquiet-period = 0\n\n{}",
            smtp.port,
            password_file.display(),
            s.service("web")
        ))
    };

    let out = run(&config("wrong-password"));
    assert!(smtp.messages().is_empty());
    let warning = out.stdout.lines().find(|l| l.contains("notification mail")).unwrap_or_default();
    assert!(warning.contains(&format!("127.0.0.1:{} (STARTTLS)", smtp.port)), "{}", out.stdout);
    assert!(warning.contains("535"), "the server's refusal is named: {warning}");
    assert!(!out.stdout.contains("wrong-password") && !out.stderr.contains("wrong-password"));
    // The password file is readable by everyone (0644 by default here): a warning says so.
    assert!(out.stdout.contains("can be read by every user"), "{}", out.stdout);

    std::fs::set_permissions(&password_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let out = run(&config("pa55-w0rd"));
    assert_eq!(smtp.messages().len(), 1, "{}", out.stdout);
    assert!(!out.stdout.contains("notification mail"), "{}", out.stdout);
}

/// The default route, end to end: no `transport` set (`auto`), so the tool hands the message to
/// the machine's `sendmail` — here Postfix's, reaching a private Postfix instance through
/// `MAIL_CONFIG` — whose queue relays it to an SMTP server on loopback. This is the only news an
/// administrator gets of a night's problems, so it is tested through the real mail system.
#[test]
fn the_default_route_hands_the_mail_to_the_local_postfix_which_delivers_it() {
    let s = Scratch::new();
    // Postfix's daemons run as `postfix` and must reach their queue inside the scratch folder.
    std::fs::set_permissions(s.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let smtp = SmtpServer::start(s.dir.path());
    let relay = daemons::PostfixRelay::start(s.dir.path(), smtp.port);
    s.issue("api", 60 * DAY);
    // web's certificate is missing: an error, so a mail.
    let config = s.config(&format!("[mail]\n\n{}{}", s.service("web"), s.service("api")));

    let out = Run::new()
        .arg("--config")
        .arg(&config)
        .arg("--verbose")
        .env("MAIL_CONFIG", &relay.config_dir)
        .run()
        .code(1);
    assert!(
        out.stdout.contains(&format!("was sent to root@{HOST} via /usr/sbin/sendmail")),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    // Postfix delivers on its own schedule: wait for the message to arrive (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mails = loop {
        let mails = smtp.messages();
        if !mails.is_empty() || std::time::Instant::now() > deadline {
            break mails;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(
        mails.len(),
        1,
        "Postfix did not deliver within 60 s; its log:\n{}",
        std::fs::read_to_string(&relay.log).unwrap_or_default()
    );
    let m = &mails[0];
    assert_eq!(m.subject, format!("[checkallsslcerts] {HOST}: 1 error"));
    assert_eq!(m.rcpt_to, format!("root@{HOST}"));
    assert!(m.flat_body().contains("== Service web: ERROR (new)"), "{}", m.flat_body());
}

/// Issue 11, item 4: a lock file that cannot be used (here a directory where the file should be;
/// on a real host a full or read-only state disk) is an error — exit 1, not 73, which the
/// nightly unit counts as success — and the administrator is told by mail.
#[test]
fn a_run_that_cannot_use_its_lock_exits_1_not_73_and_mails_the_administrator() {
    let s = Scratch::new();
    let smtp = SmtpServer::start(s.dir.path());
    s.issue("api", 60 * DAY);
    std::fs::create_dir(s.state_dir().join("lock")).expect("a directory where the lock file goes");
    let config = s.config(&format!("{}{}", mail_section(smtp.port), s.service("api")));

    let out = run(&config).code(1);
    assert!(out.stderr.contains(&s.state_dir().join("lock").display().to_string()), "{}", out.stderr);
    assert!(out.stderr.contains("The administrator was told by mail"), "{}", out.stderr);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "{}", out.stderr);
    assert_eq!(mails[0].subject, format!("[checkallsslcerts] {HOST}: the run could not start"));
    assert!(mails[0].flat_body().contains("No certificate was checked"), "{}", mails[0].flat_body());
}
