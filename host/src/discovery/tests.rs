#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The readers that need no helper program, on configuration files written into a temporary
//! root (Postfix and Dovecot, read with the real `postconf`/`doveconf`, are in
//! `tests/discovery.rs`).

use std::path::Path;

use super::*;
use crate::config::probe::Protocol;

fn put(root: &Path, path: &str, text: &str) {
    let full = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

fn run(root: &Path, daemon: Daemon, systemd: bool) -> Partial {
    let r = Root::new(root);
    let ctx = Ctx { root: &r, daemon, systemd, main: None };
    match daemon {
        Daemon::Nginx => nginx::discover(&ctx),
        Daemon::Apache => apache::discover(&ctx),
        Daemon::Exim => exim::discover(&ctx),
        Daemon::PureFtpd => ftp::pure_ftpd(&ctx),
        Daemon::Vsftpd => ftp::vsftpd(&ctx),
        Daemon::Proftpd => ftp::proftpd(&ctx),
        Daemon::Haproxy => haproxy::discover(&ctx),
        Daemon::Postfix => postfix::discover(&ctx),
        Daemon::Dovecot => dovecot::discover(&ctx),
    }
}

fn endpoints(f: &Found) -> Vec<String> {
    f.probe.iter().map(ToString::to_string).collect()
}

#[test]
fn apache_virtual_hosts_with_sslengine_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(
        root,
        "/etc/apache2/apache2.conf",
        "ServerRoot \"/etc/apache2\"\nIncludeOptional sites-enabled/*.conf\n",
    );
    put(
        root,
        "/etc/apache2/sites-enabled/default-ssl.conf",
        "<IfModule mod_ssl.c>\n\t<VirtualHost _default_:443>\n\t\tServerName www.example.com:443\n\
         \t\tSSLEngine on\n\t\tSSLCertificateFile\t/etc/ssl/certs/site.pem\n\
         \t\tSSLCertificateKeyFile \"/etc/ssl/private/site.key\"\n\t\tSSLCertificateChainFile /etc/ssl/certs/chain.pem\n\
         \t</VirtualHost>\n</IfModule>\n<VirtualHost *:80>\n\tServerName plain.example.com\n</VirtualHost>\n\
         <VirtualHost 127.0.0.1:8443>\n\tSSLEngine on\n\tSSLCertificateFile ${APACHE_CERT}\n</VirtualHost>\n",
    );
    let p = run(root, Daemon::Apache, true);
    assert_eq!(p.found.len(), 1, "{p:?}");
    let f = &p.found[0];
    assert_eq!(f.certificate, root.join("etc/ssl/certs/site.pem"));
    assert_eq!(f.key.as_deref(), Some(root.join("etc/ssl/private/site.key").as_path()));
    assert_eq!(f.chain.as_deref(), Some(root.join("etc/ssl/certs/chain.pem").as_path()));
    assert_eq!(f.reload, [vec!["systemctl".to_string(), "reload".into(), "apache2".into()]]);
    assert_eq!(endpoints(f), ["127.0.0.1:443 (https)"]);
    assert_eq!(f.probe[0].server_name.as_deref(), Some("www.example.com"));
    assert_eq!(
        f.origins[0].to_string(),
        format!(
            "{}:5 (SSLCertificateFile)",
            root.join("etc/apache2/sites-enabled/default-ssl.conf").display()
        )
    );
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert!(p.problems[0].message.contains("uses a variable"), "{}", p.problems[0]);
}

#[test]
fn exim_macros_and_conditionals_are_followed_and_expansions_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(
        root,
        "/etc/exim4/exim4.conf",
        "CONFDIR = /etc/exim4\nMAIN_TLS_ENABLE = yes\n.ifdef MAIN_TLS_ENABLE\n.ifndef MAIN_TLS_CERTIFICATE\n\
         MAIN_TLS_CERTIFICATE = CONFDIR/exim.crt\n.endif\ntls_certificate = MAIN_TLS_CERTIFICATE\n\
         tls_privatekey = CONFDIR/exim.key\n.else\ntls_certificate = /wrong\n.endif\n\
         daemon_smtp_ports = 25 : 465 : 587\ntls_on_connect_ports = 465\nbegin acl\ntls_certificate = /also/wrong\n",
    );
    let p = run(root, Daemon::Exim, false);
    assert_eq!(p.found.len(), 1, "{p:?}");
    let f = &p.found[0];
    assert_eq!(f.certificate, root.join("etc/exim4/exim.crt"));
    assert_eq!(f.key.as_deref(), Some(root.join("etc/exim4/exim.key").as_path()));
    assert_eq!(endpoints(f), ["127.0.0.1:25 (smtp)", "127.0.0.1:465 (smtps)", "127.0.0.1:587 (smtp)"]);
    assert!(f.reload.is_empty());
    assert!(f.notes[0].contains("no reload command is known for exim without systemd"), "{:?}", f.notes);

    put(root, "/etc/exim4/exim4.conf", "tls_certificate = ${if exists{/etc/x.crt}{/etc/x.crt}}\n");
    let p = run(root, Daemon::Exim, false);
    assert!(p.found.is_empty());
    assert!(p.problems[0].message.contains("only Exim can evaluate"), "{:?}", p.problems);
}

#[test]
fn ftp_servers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Debian's pure-ftpd wrapper: one file per option; the default combined certificate.
    put(root, "/etc/pure-ftpd/conf/TLS", "1\n");
    put(root, "/etc/pure-ftpd/conf/Bind", "127.0.0.1,2121\n");
    let p = run(root, Daemon::PureFtpd, true);
    let f = &p.found[0];
    assert_eq!(f.certificate, root.join("etc/ssl/private/pure-ftpd.pem"));
    assert_eq!(f.layout, Layout::Combined);
    assert_eq!(endpoints(f), ["127.0.0.1:2121 (ftp)"]);
    assert_eq!(f.reload, [vec!["systemctl".to_string(), "restart".into(), "pure-ftpd".into()]]);

    put(
        root,
        "/etc/vsftpd.conf",
        "listen=YES\nssl_enable=YES\nrsa_cert_file=/etc/ssl/certs/vsftpd.pem\nimplicit_ssl=YES\nlisten_port=990\n",
    );
    let p = run(root, Daemon::Vsftpd, false);
    let f = &p.found[0];
    assert_eq!(f.layout, Layout::Combined, "no rsa_private_key_file: the key is in the certificate file");
    assert_eq!(endpoints(f), ["127.0.0.1:990 (ftps)"]);

    put(root, "/etc/proftpd/proftpd.conf", "Port 21\nInclude /etc/proftpd/tls.conf\n");
    put(
        root,
        "/etc/proftpd/tls.conf",
        "<IfModule mod_tls.c>\nTLSEngine on\nTLSRSACertificateFile /etc/ssl/certs/proftpd.crt\n\
         TLSRSACertificateKeyFile /etc/ssl/private/proftpd.key\n</IfModule>\n",
    );
    let p = run(root, Daemon::Proftpd, false);
    let f = &p.found[0];
    assert_eq!(f.key.as_deref(), Some(root.join("etc/ssl/private/proftpd.key").as_path()));
    assert_eq!(endpoints(f), ["127.0.0.1:21 (ftp)"]);
}

#[test]
fn haproxy_crt_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(
        root,
        "/etc/haproxy/haproxy.cfg",
        "global\n    crt-base /etc/haproxy/certs\nfrontend https\n    bind *:443 ssl crt site.pem crt /etc/haproxy/dir alpn h2\n\
         frontend plain\n    bind *:80\n",
    );
    put(root, "/etc/haproxy/certs/site.pem", "combined");
    put(root, "/etc/haproxy/dir/a.pem", "combined");
    put(root, "/etc/haproxy/dir/b.pem", "cert only");
    put(root, "/etc/haproxy/dir/b.pem.key", "key");
    put(root, "/etc/haproxy/dir/a.pem.ocsp", "ocsp");
    let p = run(root, Daemon::Haproxy, false);
    let files: Vec<_> = p.found.iter().map(|f| (f.certificate.clone(), f.layout)).collect();
    assert_eq!(
        files,
        [
            (root.join("etc/haproxy/certs/site.pem"), Layout::Combined),
            (root.join("etc/haproxy/dir/a.pem"), Layout::Combined),
            (root.join("etc/haproxy/dir/b.pem"), Layout::Separate),
        ]
    );
    assert_eq!(endpoints(&p.found[0]), ["127.0.0.1:443 (tls)"]);
}

#[test]
fn nginx_inherits_http_level_certificates_and_reports_ssl_without_listen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    put(
        root,
        "/etc/nginx/nginx.conf",
        "http {\n  ssl_certificate certs/http.pem;\n  ssl_certificate_key certs/http.key;\n\
         server { listen 443 ssl; listen [::]:443 ssl; }\n\
         server { listen 80; ssl_certificate /etc/ssl/unused.pem; ssl_certificate_key /etc/ssl/unused.key; }\n}\n\
         stream {\n  server { listen 127.0.0.1:6443 ssl; ssl_certificate /etc/ssl/s.pem; ssl_certificate_key /etc/ssl/s.key; }\n}\n",
    );
    let p = run(root, Daemon::Nginx, false);
    assert_eq!(p.found.len(), 2, "{p:?}");
    assert_eq!(
        p.found[0].certificate,
        root.join("etc/nginx/certs/http.pem"),
        "relative to the configuration directory"
    );
    assert_eq!(endpoints(&p.found[0]), ["127.0.0.1:443 (https)"]);
    assert_eq!(p.found[1].certificate, root.join("etc/ssl/s.pem"));
    assert_eq!(endpoints(&p.found[1]), ["127.0.0.1:6443 (tls)"]);
    assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
    assert!(p.problems[0].message.contains("does not listen with `ssl`"), "{}", p.problems[0]);
}

#[test]
fn shared_certificates_merge_and_names_stay_unique() {
    let found = |daemon: Daemon, cert: &str, port: u16| Found {
        daemon,
        name: String::new(),
        certificate: cert.into(),
        key: Some(format!("{cert}.key").into()),
        chain: None,
        layout: Layout::Separate,
        reload: vec![vec![daemon.name().to_string(), "reload".into()]],
        probe: vec![ProbeEndpoint::new("127.0.0.1", port, Protocol::Tls)],
        origins: Vec::new(),
        notes: Vec::new(),
    };
    let mut all = vec![
        found(Daemon::Nginx, "/a/site.pem", 443),
        found(Daemon::Nginx, "/a/other cert.pem", 8443),
        found(Daemon::Postfix, "/a/site.pem", 25),
        found(Daemon::Nginx, "/b/other cert.pem", 9443),
    ];
    merge_shared(&mut all);
    name_services(&mut all);
    let names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["nginx", "nginx-other-cert", "nginx-other-cert-2"]);
    assert_eq!(endpoints(&all[0]), ["127.0.0.1:443 (tls)", "127.0.0.1:25 (tls)"]);
    assert_eq!(
        all[0].reload,
        [vec!["nginx".to_string(), "reload".into()], vec!["postfix".into(), "reload".into()]],
        "each daemon's reload once, in discovery order"
    );
    assert_eq!(all[1].reload, [vec!["nginx".to_string(), "reload".into()]]);
    assert!(all[0].notes.is_empty(), "{:?}", all[0].notes);
    let text = toml_out::config(&Discovery { found: vec![all[0].clone()], ..Discovery::default() });
    assert!(
        text.contains("reload = [\n    [\"nginx\", \"reload\"],\n    [\"postfix\", \"reload\"],\n]\n"),
        "{text}"
    );
    for f in &all {
        let config = crate::config::from_str(
            &format!(
                "hostname = \"h.example.com\"\n{}",
                toml_out::config(&Discovery { found: vec![f.clone()], ..Discovery::default() })
            ),
            Path::new("/x.toml"),
        )
        .unwrap();
        assert_eq!(config.services[0].reload, f.reload, "the reload commands read back");
    }
}

#[test]
fn a_sharing_daemon_without_a_known_reload_keeps_a_note() {
    let found = |daemon: Daemon, reload: Vec<Vec<String>>, notes: Vec<String>| Found {
        daemon,
        name: String::new(),
        certificate: "/etc/ssl/certs/ssl-cert-snakeoil.pem".into(),
        key: Some("/etc/ssl/private/ssl-cert-snakeoil.key".into()),
        chain: None,
        layout: Layout::Separate,
        reload,
        probe: Vec::new(),
        origins: Vec::new(),
        notes,
    };
    let mut all = vec![
        found(Daemon::Postfix, vec![vec!["postfix".into(), "reload".into()]], Vec::new()),
        found(Daemon::Exim, Vec::new(), vec!["no reload command is known for exim without systemd".into()]),
    ];
    merge_shared(&mut all);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].reload, [vec!["postfix".to_string(), "reload".into()]]);
    assert!(
        all[0]
            .notes
            .iter()
            .any(|n| n.starts_with("exim uses the same certificate file, but no reload command")),
        "{:?}",
        all[0].notes
    );
    assert!(
        all[0].notes.iter().any(|n| n.contains("no reload command is known for exim")),
        "{:?}",
        all[0].notes
    );
}

#[test]
fn absent_daemons_are_listed_as_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let d = discover(&Options::with_root(dir.path().to_path_buf()));
    assert!(d.found.is_empty() && d.problems.is_empty(), "{d:?}");
    assert_eq!(d.absent.len(), Daemon::ALL.len());
    let listing = toml_out::listing(&d);
    assert!(listing.contains("No certificate was found"), "{listing}");
    assert!(listing.contains("    postfix: no "), "{listing}");
}

/// `--print-config` proposes certificate groups: a service whose certificate covers the hostname
/// keeps the hostname's; the others get one group per distinct set of names (two services with
/// the same names share one); an unreadable certificate stays with the hostname. What it writes
/// loads back through the configuration, groups and all.
#[test]
fn print_config_proposes_a_group_per_set_of_names_that_is_not_the_hostnames() {
    use crate::facts::testpki::{Pki, Spec, key_pem, pem, write};
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("Group CA");
    let cert = |file: &str, names: &[&str]| {
        let leaf = pki.leaf(&Spec::leaf(names[0], names));
        write(dir.path(), &format!("{file}.key"), &key_pem(&leaf.key));
        write(dir.path(), &format!("{file}.pem"), &pem(&[&leaf.cert]))
    };
    let service = |name: &str, certificate: std::path::PathBuf| Found {
        daemon: Daemon::Nginx,
        name: name.into(),
        key: Some(certificate.with_extension("key")),
        certificate,
        chain: None,
        layout: Layout::Separate,
        reload: vec![vec!["nginx".into(), "reload".into()]],
        probe: Vec::new(),
        origins: Vec::new(),
        notes: Vec::new(),
    };
    let found = vec![
        service("panel", cert("panel", &["host.example.com"])),
        service("shop", cert("shop", &["shop.example.com", "www.shop.example.com"])),
        service("shop-api", cert("shop-api", &["shop.example.com", "www.shop.example.com"])),
        service("wild", cert("wild", &["*.blog.example.com"])),
        service("gone", dir.path().join("missing.pem")),
    ];
    let groups = toml_out::proposed_groups(&found, "host.example.com");
    let names: Vec<Option<&str>> = groups.iter().map(|g| g.as_ref().map(|(n, _)| n.as_str())).collect();
    assert_eq!(
        names,
        [None, Some("shop-example-com"), Some("shop-example-com"), Some("wildcard-blog-example-com"), None]
    );
    assert_eq!(groups[1].as_ref().unwrap().1, ["shop.example.com", "www.shop.example.com"]);

    let text = toml_out::config_for(&Discovery { found, ..Discovery::default() }, "host.example.com");
    assert_eq!(text.matches("[[certificate]]").count(), 2, "{text}");
    let config = crate::config::from_str(
        &format!("hostname = \"host.example.com\"\n[acme]\nstaging = true\n{text}"),
        Path::new("/x.toml"),
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"));
    let group_of = |name: &str| config.service(name).unwrap().certificate_group.clone();
    assert_eq!(
        [group_of("panel"), group_of("shop"), group_of("shop-api"), group_of("wild"), group_of("gone")],
        ["hostname", "shop-example-com", "shop-example-com", "wildcard-blog-example-com", "hostname"]
    );
    assert_eq!(config.group("shop-example-com").unwrap().names, ["shop.example.com", "www.shop.example.com"]);
}
