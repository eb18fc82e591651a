//! Discovery, black-box: real configuration files of nginx, Postfix and Dovecot written into a
//! temporary root (`--root` / `CHECKALLSSLCERTS_DISCOVERY_ROOT`), read by the binary — nginx's
//! own syntax with `include` globs, and the real `postconf` and `doveconf` programs (Debian
//! packages `postfix`, `dovecot-core`). Nothing is mocked.

mod daemons;
#[path = "support/pki.rs"]
#[allow(clippy::too_many_arguments)]
mod pki;
mod support;

use std::path::{Path, PathBuf};

use pki::Leaf;
use support::Run;

/// Writes `text` at `root` + `path` (as the configuration names it).
fn put(root: &Path, path: &str, text: &str) -> PathBuf {
    let full = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(full.parent().expect("parent")).expect("dir");
    std::fs::write(&full, text).expect("write");
    full
}

/// A certificate and key at `root` + `cert` / `key`.
fn pair(root: &Path, cert: &str, key: &str) {
    let names = ["host.example.com"];
    let leaf = Leaf::valid(&names, 60);
    let c = pki::self_signed(&leaf);
    put(root, cert, &String::from_utf8(pki::pem(&c)).expect("pem"));
    put(root, key, &String::from_utf8(pki::key_pem(&leaf.key)).expect("pem"));
}

fn line_of(file: &Path, needle: &str) -> usize {
    std::fs::read_to_string(file).expect("read").lines().position(|l| l.contains(needle)).expect("needle") + 1
}

/// A host image with nginx (two TLS servers sharing one certificate, one plain server),
/// Postfix (smtp, submission, smtps) and Dovecot (Debian's conf.d layout).
fn host_image(root: &Path) {
    pair(root, "/etc/ssl/web/cert.pem", "/etc/ssl/web/key.pem");
    pair(root, "/etc/ssl/mail/cert.pem", "/etc/ssl/mail/key.pem");
    pair(root, "/etc/dovecot/private/dovecot.pem", "/etc/dovecot/private/dovecot.key");
    put(
        root,
        "/etc/nginx/nginx.conf",
        "user www-data;\nworker_processes auto;\nevents {\n\tworker_connections 768;\n}\n\
         http {\n\tssl_protocols TLSv1.2 TLSv1.3; # a comment; with { braces }\n\
         \tinclude /etc/nginx/conf.d/*.conf;\n\tinclude /etc/nginx/sites-enabled/*;\n}\n",
    );
    put(
        root,
        "/etc/nginx/sites-enabled/default",
        "server {\n\tlisten 80 default_server;\n\tserver_name _;\n}\n\n\
         server {\n\tlisten 443 ssl http2;\n\tlisten [::]:443 ssl;\n\tserver_name www.example.com example.com;\n\
         \tssl_certificate /etc/ssl/web/cert.pem;\n\tssl_certificate_key /etc/ssl/web/key.pem;\n\
         \tlocation / {\n\t\treturn 200 \"ok;\";\n\t}\n}\n",
    );
    put(
        root,
        "/etc/nginx/conf.d/admin.conf",
        "server {\n    listen 127.0.0.1:8443 ssl;\n    ssl_certificate \"/etc/ssl/web/cert.pem\";\n    \
         ssl_certificate_key '/etc/ssl/web/key.pem';\n}\n",
    );
    put(
        root,
        "/etc/postfix/main.cf",
        "# See /usr/share/postfix/main.cf.dist\nsmtpd_banner = $myhostname ESMTP\ncompatibility_level = 3.7\n\n\
         # TLS parameters\ncertdir = /etc/ssl/mail\nsmtpd_tls_cert_file=$certdir/cert.pem\n\
         smtpd_tls_key_file=/etc/ssl/mail/key.pem\nsmtpd_tls_security_level=may\n",
    );
    put(
        root,
        "/etc/postfix/master.cf",
        "# service type  private unpriv  chroot  wakeup  maxproc command + args\n\
         smtp      inet  n       -       y       -       -       smtpd\n\
         submission inet n       -       y       -       -       smtpd\n  -o syslog_name=postfix/submission\n  -o smtpd_tls_security_level=encrypt\n\
         smtps     inet  n       -       y       -       -       smtpd\n  -o smtpd_tls_wrappermode=yes\n\
         pickup    unix  n       -       y       60      1       pickup\n",
    );
    put(
        root,
        "/etc/dovecot/dovecot.conf",
        "!include_try conf.d/*.conf\nprotocols = imap pop3\nlisten = *, ::\n",
    );
    put(
        root,
        "/etc/dovecot/conf.d/10-ssl.conf",
        "##\n## SSL settings\n##\nssl = yes\n\nssl_cert = </etc/dovecot/private/dovecot.pem\nssl_key = </etc/dovecot/private/dovecot.key\n",
    );
}

#[test]
fn services_lists_what_nginx_postfix_and_dovecot_use_and_where_it_was_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    host_image(root);
    let r = root.display();
    let out = Run::new().args(["services", "--root"]).arg(root).run().code(0);
    let text = out.stdout;

    let default_site = root.join("etc/nginx/sites-enabled/default");
    let admin = root.join("etc/nginx/conf.d/admin.conf");
    let main_cf = root.join("etc/postfix/main.cf");
    let ssl_conf = root.join("etc/dovecot/conf.d/10-ssl.conf");
    for expected in [
        // nginx: one service for the certificate both TLS servers use, with both endpoints.
        "nginx (nginx)\n".to_string(),
        format!("    certificate: {r}/etc/ssl/web/cert.pem\n    key:         {r}/etc/ssl/web/key.pem\n"),
        format!(
            "    from:        {}:{} (ssl_certificate)\n",
            default_site.display(),
            line_of(&default_site, "ssl_certificate /")
        ),
        format!("    from:        {}:{} (ssl_certificate)\n", admin.display(), line_of(&admin, "ssl_certificate \"")),
        format!("    reload:      nginx -c {r}/etc/nginx/nginx.conf -s reload\n"),
        "    probe:       127.0.0.1:443 (https), server name www.example.com\n".to_string(),
        "    probe:       127.0.0.1:8443 (https)\n".to_string(),
        // Postfix: postconf expanded $certdir; the lines of main.cf are named.
        "postfix (postfix)\n".to_string(),
        format!("    certificate: {r}/etc/ssl/mail/cert.pem\n"),
        format!(
            "    from:        {}:{} (smtpd_tls_cert_file)\n",
            main_cf.display(),
            line_of(&main_cf, "smtpd_tls_cert_file")
        ),
        format!("    reload:      postfix -c {r}/etc/postfix reload\n"),
        "    probe:       127.0.0.1:25 (smtp)\n    probe:       127.0.0.1:587 (smtp)\n    probe:       127.0.0.1:465 (smtps)\n"
            .to_string(),
        // Dovecot: doveconf's values, the line in the included conf.d file.
        "dovecot (dovecot)\n".to_string(),
        format!("    certificate: {r}/etc/dovecot/private/dovecot.pem\n"),
        format!("    from:        {}:{} (ssl_cert)\n", ssl_conf.display(), line_of(&ssl_conf, "ssl_cert =")),
        format!("    reload:      doveadm -c {r}/etc/dovecot/dovecot.conf reload\n"),
        "    probe:       127.0.0.1:143 (imap)\n    probe:       127.0.0.1:993 (imaps)\n    probe:       127.0.0.1:110 (pop3)\n    probe:       127.0.0.1:995 (pop3s)\n"
            .to_string(),
        "Not found:\n    apache: no /etc/apache2/apache2.conf or /etc/httpd/conf/httpd.conf\n".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("Could not be read"), "{text}");
    assert!(!text.contains("[::1]:443"), "the IPv6 wildcard is the same port: {text}");
}

#[test]
fn print_config_writes_a_configuration_that_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("image");
    host_image(&root);
    let out = Run::new().args(["services", "--print-config", "--root"]).arg(&root).run().code(0);
    let config = format!(
        "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n\n{}",
        dir.path().join("state").display(),
        out.stdout
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &config).expect("config");
    let check = Run::new().arg("--config").arg(&path).args(["config", "check"]).run();
    assert_eq!(check.code, 0, "{}\n--- config\n{config}", check.stderr);
    assert!(check.stdout.contains("services:  3"), "{}", check.stdout);
    for expected in [
        "name = \"nginx\"",
        "probe = [\n    { address = \"127.0.0.1:8443\", protocol = \"https\" },\n    { address = \"127.0.0.1:443\", protocol = \"https\", server-name = \"www.example.com\" },\n]",
        "certificate-mode = \"0644\"\nkey-mode = \"0600\"",
        "name = \"postfix\"",
        "{ address = \"127.0.0.1:465\", protocol = \"smtps\" },",
        "name = \"dovecot\"",
        "reload = [\"doveadm\", \"-c\",",
    ] {
        assert!(out.stdout.contains(expected), "missing {expected:?} in\n{}", out.stdout);
    }
}

#[test]
fn what_cannot_be_read_is_reported_and_never_guessed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    pair(root, "/etc/ssl/web/cert.pem", "/etc/ssl/web/key.pem");
    put(
        root,
        "/etc/nginx/nginx.conf",
        "http {\n  server {\n    listen 443 ssl;\n    ssl_certificate /etc/ssl/$ssl_server_name.pem;\n    \
         ssl_certificate_key /etc/ssl/$ssl_server_name.key;\n  }\n  include /etc/nginx/broken.conf;\n}\n",
    );
    put(root, "/etc/nginx/broken.conf", "server {\n  listen 8443 ssl;\n  ssl_certificate /x.pem;\n");
    // Postfix's smtpd_tls_chain_files with the key first in one file: no layout can manage it.
    let mut combined = std::fs::read_to_string(root.join("etc/ssl/web/key.pem")).expect("key");
    combined.push_str(&std::fs::read_to_string(root.join("etc/ssl/web/cert.pem")).expect("cert"));
    put(root, "/etc/ssl/mail/combined.pem", &combined);
    put(
        root,
        "/etc/postfix/main.cf",
        "smtpd_tls_chain_files = /etc/ssl/mail/combined.pem\nsmtpd_tls_security_level = may\n",
    );
    put(
        root,
        "/etc/dovecot/dovecot.conf",
        "ssl = no\nssl_cert = </etc/ssl/web/cert.pem\nssl_key = </etc/ssl/web/key.pem\n",
    );

    let out = Run::new().args(["services", "--root"]).arg(root).run().code(1);
    let text = out.stdout;
    let main = root.join("etc/nginx/nginx.conf");
    for expected in [
        "Could not be read (not guessed; configure these services yourself):\n".to_string(),
        format!(
            "    nginx: {}:4 (ssl_certificate): /etc/ssl/$ssl_server_name.pem / /etc/ssl/$ssl_server_name.key uses a variable or inline data: only nginx can tell which files it means\n",
            main.display()
        ),
        format!(
            "    nginx: {}:7 (include): {}: a block is not closed with '}}'\n",
            main.display(),
            root.join("etc/nginx/broken.conf").display()
        ),
        format!(
            "{}/etc/ssl/mail/combined.pem holds the private key before the certificate chain",
            root.display()
        ),
        format!(
            "    dovecot: {}:1 (ssl): ssl = no: Dovecot does not use TLS, nothing to manage\n",
            root.join("etc/dovecot/dovecot.conf").display()
        ),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert!(text.contains("No certificate was found"), "{text}");
}

#[test]
fn the_main_run_uses_discovery_when_no_service_is_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("image");
    host_image(&root);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n\n[network]\ndns = false\nrevocation = false\nari = false\n\n[mail]\nenabled = false\n\n[probe]\ntimeout = 1\n",
            dir.path().join("state").display()
        ),
    )
    .expect("config");
    let out = Run::new()
        .arg("--config")
        .arg(&config)
        .env("CHECKALLSSLCERTS_DISCOVERY_ROOT", &root)
        .arg("--dry-run")
        .run();
    let text = out.stdout;
    assert!(
        text.contains(&format!(
            "warning: No [[service]] is configured in {}: using 3 service(s) discovered from the daemons' own configuration: nginx ({}/etc/ssl/web/cert.pem, from ",
            config.display(),
            root.display()
        )),
        "{text}"
    );
    assert!(text.contains("Adopt them with `checkallsslcerts services --print-config`."), "{text}");
    for name in ["nginx", "postfix", "dovecot"] {
        assert!(text.lines().any(|l| l.starts_with(&format!("{name} "))), "{name} in\n{text}");
    }
    assert!(text.contains("3 services: 3 keep"), "{text}");
}

/// A stock Debian mail server: Postfix and Dovecot both name the snakeoil pair.
#[test]
fn postfix_and_dovecot_sharing_the_snakeoil_pair_are_one_service_with_both_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("image");
    let (cert, key) = ("/etc/ssl/certs/ssl-cert-snakeoil.pem", "/etc/ssl/private/ssl-cert-snakeoil.key");
    pair(&root, cert, key);
    put(
        &root,
        "/etc/postfix/main.cf",
        &format!(
            "compatibility_level = 3.7\nsmtpd_tls_cert_file={cert}\nsmtpd_tls_key_file={key}\nsmtpd_tls_security_level=may\n"
        ),
    );
    put(&root, "/etc/postfix/master.cf", "smtp      inet  n       -       y       -       -       smtpd\n");
    put(&root, "/etc/dovecot/dovecot.conf", "!include_try conf.d/*.conf\nprotocols = imap\nlisten = *\n");
    put(
        &root,
        "/etc/dovecot/conf.d/10-ssl.conf",
        &format!("ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n"),
    );
    let r = root.display();
    let postfix_reload = format!("postfix -c {r}/etc/postfix reload");
    let dovecot_reload = format!("doveadm -c {r}/etc/dovecot/dovecot.conf reload");

    let out = Run::new().args(["services", "--root"]).arg(&root).run().code(0);
    let text = out.stdout;
    assert!(text.starts_with(&format!("(reading under the root {r})\npostfix (postfix)\n")), "{text}");
    assert!(!text.contains("dovecot (dovecot)"), "one service for the shared file: {text}");
    for expected in [
        format!("    reload:      {postfix_reload}\n    reload:      {dovecot_reload}\n"),
        "    probe:       127.0.0.1:25 (smtp)\n    probe:       127.0.0.1:143 (imap)\n".to_string(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("note:"), "no note asks for a manual fix any more: {text}");

    // --print-config writes the list form, and it loads back through `config check`.
    let out = Run::new().args(["services", "--print-config", "--root"]).arg(&root).run().code(0);
    let quoted =
        |s: &str| format!("[{}]", s.split(' ').map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", "));
    let list = format!("reload = [\n    {},\n    {},\n]\n", quoted(&postfix_reload), quoted(&dovecot_reload));
    assert!(out.stdout.contains(&list), "missing {list:?} in\n{}", out.stdout);
    let config = format!(
        "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n\n{}",
        dir.path().join("state").display(),
        out.stdout
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &config).expect("config");
    let check = Run::new().arg("--config").arg(&path).args(["config", "check"]).run();
    assert_eq!(check.code, 0, "{}\n--- config\n{config}", check.stderr);
    assert!(check.stdout.contains("services:  1"), "{}", check.stdout);
    let argv = |s: &str| format!("{:?}", s.split(' ').collect::<Vec<_>>());
    let shown = format!(", reload (in order): {}, {}", argv(&postfix_reload), argv(&dovecot_reload));
    assert!(check.stdout.contains(&shown), "missing {shown:?} in\n{}", check.stdout);
}

/// `init` on a host whose nginx runs with its own configuration (`nginx -c /some/other.conf`,
/// not /etc/nginx): the configuration it writes names that nginx's certificate, reloads it by
/// its own command, and a following dry run accepts it. A second `init` does not replace it
/// (exit 2, the difference shown); `--force` does, keeping the old one.
#[test]
fn init_finds_an_nginx_started_with_its_own_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = daemons::daemon_dir(&dir.path().join("srv"));
    let leaf = Leaf::valid(&["other.example.com"], 60);
    let cert = pki::self_signed(&leaf);
    let tls = daemons::daemon_dir(&base.join("tls"));
    pki::write_pair(&tls, &cert, &[], &leaf.key);
    let (cert_file, key_file) = (tls.join("cert.pem"), tls.join("key.pem"));
    let nginx = daemons::Nginx::start(&base, daemons::free_port(), &cert_file, &key_file);
    assert!(!nginx.conf.starts_with("/etc/nginx"));

    let config = dir.path().join("etc/config.toml");
    let out = Run::new().arg("--config").arg(&config).args(["init"]).run();
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let text = std::fs::read_to_string(&config).expect("written");
    let needle = format!("certificate = \"{}\"", cert_file.display());
    assert!(text.contains(&needle), "{needle} in\n{text}");
    assert!(text.contains(&format!("\"-c\", \"{}\", \"-s\", \"reload\"", nginx.conf.display())), "{text}");
    assert!(
        text.contains("certificate-group = \"other-example-com\"") && text.contains("[[certificate]]"),
        "a certificate for another name than the hostname gets a group of its own:\n{text}"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&config).expect("meta").permissions());
    assert_eq!(mode & 0o777, 0o600);

    // A dry run accepts it and checks that certificate (no state directory needed).
    let dry = Run::new().arg("--config").arg(&config).args(["--dry-run", "--json"]).run();
    assert!(matches!(dry.code, 0 | 1), "{}\n{}", dry.stdout, dry.stderr);
    let report: serde_json::Value = serde_json::from_str(&dry.stdout).expect("json");
    let services = report["services"].as_array().expect("services");
    assert!(
        services.iter().any(|s| s["facts"]["certificate"]["ok"]["dns-names"][0] == "other.example.com"),
        "{report}"
    );

    // Not replaced without --force; the difference is shown.
    std::fs::write(&config, format!("{text}\n# a local change\n")).expect("edit");
    let again = Run::new().arg("--config").arg(&config).args(["init"]).run().code(2);
    assert!(again.stdout.contains("-# a local change"), "{}", again.stdout);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    assert!(std::fs::read_to_string(&config).expect("read").contains("# a local change"));
    let forced = Run::new().arg("--config").arg(&config).args(["init", "--force"]).run().code(0);
    assert!(forced.stdout.contains(".bak-"), "{}", forced.stdout);
    assert!(!std::fs::read_to_string(&config).expect("read").contains("# a local change"));

    // With a CA: Let's Encrypt's staging CA unless --production.
    let acme = dir.path().join("etc/acme.toml");
    Run::new()
        .arg("--config")
        .arg(&acme)
        .args(["init", "--acme", "letsencrypt", "--email", "admin@example.com"])
        .run()
        .code(0);
    let text = std::fs::read_to_string(&acme).expect("written");
    assert!(
        text.contains("[acme]\n")
            && text.contains("staging = true")
            && text.contains("email = \"admin@example.com\""),
        "{text}"
    );
    Run::new().arg("--config").arg(&acme).args(["config", "check"]).run().code(0);
    drop(nginx);
}
