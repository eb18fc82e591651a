#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::probe::{ProbeEndpoint, Protocol};
use super::*;

const FILE: &str = "/etc/checkallsslcerts/test.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    resolve::parse_and_resolve(text, Path::new(FILE), &|| "system.example.net".to_owned())
}

fn parse_ok(text: &str) -> Config {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid configuration, got:\n{e}"),
    }
}

/// The problems of an invalid configuration (panics on anything else).
fn problems(text: &str) -> Vec<Problem> {
    match parse(text) {
        Err(ConfigError::Invalid { path, problems }) => {
            assert_eq!(path, Path::new(FILE));
            assert!(!problems.is_empty());
            problems
        }
        Err(other) => panic!("expected validation problems, got: {other}"),
        Ok(_) => panic!("expected validation problems, got a valid configuration"),
    }
}

/// The one problem of an invalid configuration, as displayed.
fn one_problem(text: &str) -> String {
    let p = problems(text);
    assert_eq!(p.len(), 1, "expected one problem, got {p:#?}");
    p[0].to_string()
}

fn parse_err(text: &str) -> String {
    match parse(text) {
        Err(e @ ConfigError::Parse { .. }) => e.to_string(),
        Err(other) => panic!("expected a parse error, got: {other}"),
        Ok(_) => panic!("expected a parse error, got a valid configuration"),
    }
}

const SVC: &str =
    "[[service]]\nname = \"nginx\"\ncertificate = \"/etc/ssl/c.pem\"\nkey = \"/etc/ssl/k.pem\"\n";

#[test]
fn example_file_round_trip() {
    let text = include_str!("../../../examples/config.toml");
    let c = parse_ok(text);
    assert_eq!(c.path, Path::new(FILE));
    assert_eq!(c.hostname, "host.example.com");
    assert_eq!(
        c.main_ips,
        vec!["203.0.113.10".parse::<IpAddr>().unwrap(), "2001:db8::10".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(c.state_dir, Path::new("/var/lib/checkallsslcerts"));
    assert_eq!(c.policy.module, None);
    assert_eq!(
        c.policy.params,
        vec![
            ("letsencrypt-min-days".to_owned(), "25".to_owned()),
            ("other-min-days".to_owned(), "3".to_owned()),
            ("short-lifetime-percent".to_owned(), "33".to_owned()),
            ("min-rsa-bits".to_owned(), "2048".to_owned()),
        ]
    );
    assert_eq!(
        c.trust,
        TrustConfig { extra_roots: vec![PathBuf::from("/etc/ssl/private-ca.pem")], system_roots: true }
    );
    assert_eq!(c.placeholder, PlaceholderConfig { key: KeyAlgorithm::EcP256, validity_days: 30 });
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["nginx", "haproxy", "dovecot", "mail"]);
    let mail = c.service("mail").unwrap();
    assert_eq!(
        mail.reload,
        [vec!["postfix".to_string(), "reload".into()], vec!["doveadm".into(), "reload".into()]]
    );
    assert_eq!(mail.probe.len(), 2);
    let nginx = &c.services[0];
    assert_eq!(
        *nginx,
        ServiceConfig {
            name: "nginx".into(),
            certificate: "/etc/ssl/example/cert.pem".into(),
            key: Some("/etc/ssl/example/key.pem".into()),
            chain: Some("/etc/ssl/example/chain.pem".into()),
            layout: Layout::Separate,
            names: vec!["www.example.com".into()],
            owner: Some("root".into()),
            group: Some("ssl-cert".into()),
            certificate_mode: Some(0o644),
            key_mode: Some(0o640),
            allow_world_readable_key: false,
            reload: vec![vec!["systemctl".into(), "reload".into(), "nginx".into()]],
            reload_timeout: Duration::from_secs(30),
            certificate_group: "hostname".into(),
            check_only: false,
            probe: vec![
                ProbeEndpoint::new("127.0.0.1", 443, Protocol::Https),
                ProbeEndpoint {
                    server_name: Some("www.example.com".into()),
                    ..ProbeEndpoint::new("::1", 443, Protocol::Https)
                },
            ],
        }
    );
    let haproxy = c.service("haproxy").unwrap();
    assert_eq!(haproxy.layout, Layout::Combined);
    assert_eq!(haproxy.key, None);
    assert_eq!(haproxy.key_file(), Path::new("/etc/haproxy/certs/host.pem"));
    assert_eq!(haproxy.certificate_mode, Some(0o600));
    let dovecot = c.service("dovecot").unwrap();
    assert_eq!(
        *dovecot,
        ServiceConfig::separate(
            "dovecot",
            "/etc/dovecot/private/dovecot.pem",
            "/etc/dovecot/private/dovecot.key"
        )
    );
}

#[test]
fn backups_retention_is_read_and_bounded() {
    let c = parse_ok("[backups]\nkeep = 3\nkeep-days = 30\n");
    assert_eq!(c.backups, crate::config::BackupsConfig { keep: 3, keep_days: 30 });
    assert_eq!(parse_ok("").backups, crate::config::BackupsConfig { keep: 10, keep_days: 0 });
    let p = one_problem("[backups]\nkeep = 0\n");
    assert!(p.contains("`backups.keep`") && p.contains("0 is out of range: 1 to 1000"), "{p}");
}

#[test]
fn empty_file_gives_defaults() {
    let c = parse_ok("");
    assert_eq!(c.hostname, "system.example.net");
    assert!(c.main_ips.is_empty());
    assert_eq!(c.state_dir, Path::new(DEFAULT_STATE_DIR));
    assert_eq!(c.policy, PolicyConfig::default());
    assert_eq!(c.trust, TrustConfig { extra_roots: vec![], system_roots: true });
    assert_eq!(c.placeholder, PlaceholderConfig { key: KeyAlgorithm::EcP256, validity_days: 30 });
    assert!(c.services.is_empty());
    assert!(c.warnings.is_empty());
}

#[test]
fn service_defaults() {
    let c = parse_ok(SVC);
    assert_eq!(c.services, vec![ServiceConfig::separate("nginx", "/etc/ssl/c.pem", "/etc/ssl/k.pem")]);
    let s = &c.services[0];
    // Modes not set: the files keep theirs (new files get 0644 and 0600 when installed).
    assert_eq!((s.certificate_mode, s.key_mode, s.reload_timeout), (None, None, Duration::from_secs(30)));
    assert_eq!((s.chain.as_ref(), s.owner.as_ref(), s.group.as_ref()), (None, None, None));
    assert!(s.reload.is_empty());

    let c = parse_ok(
        "[[service]]\nname = \"haproxy\"\ncertificate = \"/etc/haproxy/all.pem\"\nlayout = \"combined\"\n",
    );
    assert_eq!(c.services, vec![ServiceConfig::combined("haproxy", "/etc/haproxy/all.pem")]);
    assert_eq!(c.services[0].certificate_mode, None);
}

#[test]
fn the_system_hostname_is_found() {
    let name = system::hostname();
    assert!(!name.is_empty());
    assert!(names::is_dns_name(&name) || name == "localhost", "{name:?}");
}

#[test]
fn default_path_honours_the_environment() {
    // The variable itself is not set here (set_var is unsafe with threads); the rule is.
    let expected = match std::env::var_os(PATH_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    };
    assert_eq!(default_path(), expected);
}

#[test]
fn params_keep_file_order_and_become_strings() {
    let c = parse_ok("[policy.params]\nzeta = 1\nalpha = \"x y\"\nmid = true\nneg = -5\n");
    assert_eq!(
        c.policy.params,
        vec![
            ("zeta".to_owned(), "1".to_owned()),
            ("alpha".to_owned(), "x y".to_owned()),
            ("mid".to_owned(), "true".to_owned()),
            ("neg".to_owned(), "-5".to_owned()),
        ]
    );
    // Dotted keys inside [policy] are the same table.
    let c = parse_ok("[policy]\nparams.b = 2\nparams.a = 1\n");
    assert_eq!(c.policy.params, vec![("b".to_owned(), "2".to_owned()), ("a".to_owned(), "1".to_owned())]);

    let e = parse_err("[policy.params]\nfraction = 0.5\n");
    assert!(e.contains(FILE) && e.contains(":2:12:") && e.contains("policy.params.fraction"), "{e}");
    assert!(e.contains("a string, an integer or a boolean"), "{e}");
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let e = parse_err("hostname = \"a.example.com\"\n\n[trust\n");
    assert!(e.starts_with(&format!("{FILE}:3:")), "{e}");
    let e = parse_err("hostname = \"unterminated\nstate-dir = \"/x\"\n");
    assert!(e.starts_with(&format!("{FILE}:1:")), "{e}");
}

#[test]
fn unknown_keys_are_errors_naming_the_key_and_service() {
    let e = parse_err("hostnme = \"a.example.com\"\n");
    assert!(e.starts_with(&format!("{FILE}:1:1: `hostnme`: unknown field `hostnme`")), "{e}");

    let text = format!(
        "{SVC}[[service]]\nname = \"postfix\"\ncertificate = \"/c\"\nkey = \"/k\"\ncertifcate-mode = \"0644\"\n"
    );
    let e = parse_err(&text);
    assert!(
        e.starts_with(&format!("{FILE}:9:1: service \"postfix\": `certifcate-mode`: unknown field")),
        "{e}"
    );

    let e = parse_err("[placeholder]\nkey = \"ec-p521\"\n");
    assert!(e.contains(":2:7:") && e.contains("`placeholder.key`") && e.contains("ec-p521"), "{e}");

    let e = parse_err("[trust]\nsystem-roots = \"yes\"\n");
    assert!(e.contains(":2:16:") && e.contains("`trust.system-roots`"), "{e}");
}

#[test]
fn type_errors_name_the_service_and_key() {
    let e = parse_err(&format!("{SVC}reload = \"systemctl reload nginx\"\n"));
    assert!(e.starts_with(&format!("{FILE}:5:10: service \"nginx\": `reload`:")), "{e}");
    assert!(e.contains("a command as an array of strings"), "{e}");
    let e = parse_err(&format!("{SVC}reload = [[\"postfix\", \"reload\"], \"doveadm\"]\n"));
    assert!(e.starts_with(&format!("{FILE}:5:10: service \"nginx\": `reload`:")), "{e}");
    assert!(e.contains("or an array of such commands"), "{e}");

    // A service without a name is named by its position.
    let e = parse_err("[[service]]\nlayout = \"stacked\"\n");
    assert!(e.starts_with(&format!("{FILE}:2:10: service \"#1\": `layout`:")), "{e}");
}

#[test]
fn service_names_must_be_valid_and_unique() {
    let p = one_problem(&format!("{SVC}{SVC}"));
    assert!(
        p.starts_with(&format!("{FILE}:6:8: service \"nginx\": `name`: service names must be unique")),
        "{p}"
    );
    assert!(p.contains("service #1 (line 1)"), "{p}");

    let p = one_problem("[[service]]\nname = \"ng inx\"\ncertificate = \"/c\"\nkey = \"/k\"\n");
    assert!(
        p.starts_with(&format!("{FILE}:2:8: service \"#1\": `name`: \"ng inx\" is not a valid service name")),
        "{p}"
    );

    let p = one_problem("[[service]]\nname = \"\"\ncertificate = \"/c\"\nkey = \"/k\"\n");
    assert!(p.contains("service \"#1\": `name`:"), "{p}");

    let p = one_problem("[[service]]\ncertificate = \"/c\"\nkey = \"/k\"\n");
    assert!(
        p.starts_with(&format!("{FILE}:1:1: service \"#1\": `name`: every [[service]] needs a name")),
        "{p}"
    );
}

#[test]
fn paths_must_be_absolute() {
    let p = one_problem("[[service]]\nname = \"nginx\"\ncertificate = \"ssl/c.pem\"\nkey = \"/k\"\n");
    assert!(
        p.starts_with(&format!(
            "{FILE}:3:15: service \"nginx\": `certificate`: \"ssl/c.pem\" is not an absolute path"
        )),
        "{p}"
    );

    let p = problems(
        "state-dir = \"var/lib\"\n[policy]\nmodule = \"p.wasm\"\n[trust]\nextra-roots = [\"/ok.pem\", \"ca.pem\"]\n\
         [[service]]\nname = \"a\"\ncertificate = \"\"\nkey = \"k\"\nchain = \"c\"\n",
    );
    let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["state-dir", "policy.module", "trust.extra-roots", "certificate", "key", "chain"]);
    assert!(p[0].to_string().starts_with(&format!("{FILE}:1:13: `state-dir`:")), "{}", p[0]);
    assert!(p[2].to_string().starts_with(&format!("{FILE}:5:27: `trust.extra-roots`:")), "{}", p[2]);
    assert!(
        p[3].to_string().contains("service \"a\": `certificate`: the path must not be empty"),
        "{}",
        p[3]
    );
}

#[test]
fn layouts_and_their_keys() {
    let p = one_problem("[[service]]\nname = \"nginx\"\ncertificate = \"/c\"\n");
    assert!(
        p.starts_with(&format!(
            "{FILE}:1:1: service \"nginx\": `key`: layout = \"separate\" needs a key path"
        )),
        "{p}"
    );

    let p = problems(
        "[[service]]\nname = \"haproxy\"\nlayout = \"combined\"\ncertificate = \"/c\"\nkey = \"/k\"\nchain = \"/ch\"\nkey-mode = \"0600\"\n",
    );
    let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
    assert_eq!(p.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with(&format!(
            "{FILE}:5:7: service \"haproxy\": `key`: must not be set with layout = \"combined\""
        )),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].starts_with(&format!("{FILE}:6:9: service \"haproxy\": `chain`: must not be set")),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].starts_with(&format!("{FILE}:7:12: service \"haproxy\": `key-mode`: does not apply")),
        "{}",
        shown[2]
    );
}

#[test]
fn modes() {
    let c = parse_ok(&format!("{SVC}certificate-mode = \"644\"\nkey-mode = \"0o640\"\n"));
    assert_eq!((c.services[0].certificate_mode, c.services[0].key_mode), (Some(0o644), Some(0o640)));
    let c = parse_ok(&format!("{SVC}certificate-mode = 0o444\nkey-mode = 0o400\n"));
    assert_eq!((c.services[0].certificate_mode, c.services[0].key_mode), (Some(0o444), Some(0o400)));

    let p = one_problem(&format!("{SVC}key-mode = 600\n"));
    assert!(
        p.starts_with(&format!(
            "{FILE}:5:12: service \"nginx\": `key-mode`: write the mode as an octal string"
        )),
        "{p}"
    );
    let p = one_problem(&format!("{SVC}certificate-mode = \"0648\"\n"));
    assert!(p.contains("`certificate-mode`: \"0648\" is not an octal file mode"), "{p}");
    let p = one_problem(&format!("{SVC}certificate-mode = \"17777\"\n"));
    assert!(p.contains("`certificate-mode`: mode 17777 is larger than 7777"), "{p}");
    let p = one_problem(&format!("{SVC}certificate-mode = \"\"\n"));
    assert!(p.contains("`certificate-mode`:"), "{p}");
}

#[test]
fn world_readable_keys_are_refused_unless_allowed() {
    let p = one_problem(&format!("{SVC}key-mode = \"0644\"\n"));
    assert!(
        p.starts_with(&format!(
            "{FILE}:5:12: service \"nginx\": `key-mode`: mode 0644 would let every user read the private key"
        )),
        "{p}"
    );

    let c = parse_ok(&format!("{SVC}key-mode = \"0644\"\nallow-world-readable-key = true\n"));
    assert_eq!(c.services[0].key_mode, Some(0o644));
    assert!(c.services[0].allow_world_readable_key);

    // For a combined file, certificate-mode is the key's mode.
    let p = one_problem(
        "[[service]]\nname = \"haproxy\"\nlayout = \"combined\"\ncertificate = \"/c\"\ncertificate-mode = \"0644\"\n",
    );
    assert!(
        p.contains("service \"haproxy\": `certificate-mode`: mode 0644 would let every user read"),
        "{p}"
    );
}

#[test]
fn group_writable_keys_give_a_warning() {
    let c = parse_ok(&format!("{SVC}key-mode = \"0660\"\n"));
    assert_eq!(c.services[0].key_mode, Some(0o660));
    assert_eq!(c.warnings.len(), 1);
    let w = c.warnings[0].to_string();
    assert!(
        w.starts_with(&format!("{FILE}:5:12: service \"nginx\": `key-mode`: mode 0660 lets other users")),
        "{w}"
    );
}

#[test]
fn reload_as_a_list_of_commands() {
    let c = parse_ok(&format!(
        "{SVC}reload = [[\"postfix\", \"reload\"], [\"doveadm\", \"-c\", \"/etc/dovecot/dovecot.conf\", \"reload\"]]\n\
         reload-timeout = 45\n"
    ));
    assert_eq!(
        c.services[0].reload,
        [
            vec!["postfix".to_string(), "reload".into()],
            vec!["doveadm".into(), "-c".into(), "/etc/dovecot/dovecot.conf".into(), "reload".into()]
        ]
    );
    assert_eq!(c.services[0].reload_timeout, Duration::from_secs(45));
    // A list of one command is the same as the command alone.
    let one = parse_ok(&format!("{SVC}reload = [[\"postfix\", \"reload\"]]\n"));
    let alone = parse_ok(&format!("{SVC}reload = [\"postfix\", \"reload\"]\n"));
    assert_eq!(one.services, alone.services);

    let p = one_problem(&format!("{SVC}reload = [[\"postfix\", \"reload\"], []]\n"));
    assert!(
        p.starts_with(&format!(
            "{FILE}:5:10: service \"nginx\": `reload`: command 2 of 2: must name a program"
        )),
        "{p}"
    );
    let p = one_problem(&format!("{SVC}reload = [[]]\n"));
    assert!(p.starts_with(&format!("{FILE}:5:10: service \"nginx\": `reload`: must name a program")), "{p}");
    let p = one_problem(&format!("{SVC}reload = [[\"postfix\", \"reload\"], [\"\", \"reload\"]]\n"));
    assert!(p.contains("`reload`: command 2 of 2: the program (the first element) must not be empty"), "{p}");
    let p = one_problem(&format!("{SVC}reload = [[\"a\\u0000b\"], [\"x\"]]\n"));
    assert!(p.contains("`reload`: command 1 of 2: arguments must not contain NUL characters"), "{p}");
}

#[test]
fn reload_and_timeout() {
    let c =
        parse_ok(&format!("{SVC}reload = [\"/usr/sbin/nginx\", \"-s\", \"reload\"]\nreload-timeout = 600\n"));
    assert_eq!(c.services[0].reload, [vec!["/usr/sbin/nginx".to_owned(), "-s".into(), "reload".into()]]);
    assert_eq!(c.services[0].reload_timeout, Duration::from_secs(600));

    let p = one_problem(&format!("{SVC}reload = []\n"));
    assert!(p.starts_with(&format!("{FILE}:5:10: service \"nginx\": `reload`: must name a program")), "{p}");
    let p = one_problem(&format!("{SVC}reload = [\" \", \"x\"]\n"));
    assert!(p.contains("`reload`: the program (the first element) must not be empty"), "{p}");
    for bad in ["0", "601", "-1"] {
        let p = one_problem(&format!("{SVC}reload-timeout = {bad}\n"));
        assert!(
            p.starts_with(&format!(
                "{FILE}:5:18: service \"nginx\": `reload-timeout`: {bad} is out of range"
            )),
            "{p}"
        );
    }
}

#[test]
fn owners_groups_and_names() {
    let c = parse_ok(&format!(
        "{SVC}owner = 0\ngroup = \"ssl-cert\"\nnames = [\"www.example.com\", \"*.example.org\"]\n"
    ));
    assert_eq!(c.services[0].owner.as_deref(), Some("0"));
    assert_eq!(c.services[0].group.as_deref(), Some("ssl-cert"));
    assert_eq!(c.services[0].names, ["www.example.com", "*.example.org"]);

    let p = problems(&format!(
        "{SVC}owner = \"ro ot\"\ngroup = -1\nnames = [\"ok.example.com\", \"bad_name.example.com\", \"*.com\"]\n"
    ));
    let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 4, "{shown:#?}");
    assert!(
        shown[0].starts_with(&format!("{FILE}:7:28: service \"nginx\": `names`: \"bad_name.example.com\"")),
        "{}",
        shown[0]
    );
    assert!(shown[1].contains("`names`: \"*.com\""), "{}", shown[1]);
    assert!(shown[2].starts_with(&format!("{FILE}:5:9: service \"nginx\": `owner`:")), "{}", shown[2]);
    assert!(
        shown[3]
            .starts_with(&format!("{FILE}:6:9: service \"nginx\": `group`: -1 is not a valid numeric id")),
        "{}",
        shown[3]
    );
}

#[test]
fn top_level_values_are_checked() {
    let p = problems(
        "hostname = \"not a host\"\nmain-ips = [\"203.0.113.1\", \"300.1.1.1\"]\n\
         [placeholder]\nvalidity-days = 826\n[trust]\nsystem-roots = false\n",
    );
    let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with(&format!("{FILE}:1:12: `hostname`: \"not a host\" is not a valid host name")),
        "{}",
        shown[0]
    );
    assert!(
        shown[1]
            .starts_with(&format!("{FILE}:2:28: `main-ips`: \"300.1.1.1\" is not an IPv4 or IPv6 address")),
        "{}",
        shown[1]
    );
    assert!(
        shown[2].starts_with(&format!("{FILE}:4:17: `placeholder.validity-days`: 826 is out of range")),
        "{}",
        shown[2]
    );
    // An empty trust store is a warning, not an error.
    let c = from_str("[trust]\nsystem-roots = false\n", Path::new(FILE)).expect("valid");
    assert!(!c.trust.system_roots && c.trust.extra_roots.is_empty());
    let warnings: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert!(warnings.iter().any(|w| w.contains("the trust store is empty")), "{warnings:?}");

    let p = one_problem("[placeholder]\nvalidity-days = 0\n");
    assert!(p.contains("`placeholder.validity-days`: 0 is out of range"), "{p}");
    let c = parse_ok("[placeholder]\nvalidity-days = 825\nkey = \"rsa-3072\"\n");
    assert_eq!(c.placeholder, PlaceholderConfig { key: KeyAlgorithm::Rsa3072, validity_days: 825 });
    let c = parse_ok(
        "hostname = \"host.example.com.\"\n[trust]\nsystem-roots = false\nextra-roots = [\"/ca.pem\"]\n",
    );
    assert_eq!(c.hostname, "host.example.com.");
    assert!(!c.trust.system_roots);
}

#[test]
fn all_problems_are_reported_together() {
    let text = "[[service]]\nname = \"a\"\ncertificate = \"rel\"\nkey-mode = \"0666\"\nreload = []\n\
                [[service]]\nname = \"a\"\ncertificate = \"/c\"\nkey = \"/k\"\n";
    let p = problems(text);
    let keys: Vec<(&str, &str)> =
        p.iter().map(|p| (p.service.as_deref().unwrap_or(""), p.key.as_str())).collect();
    assert_eq!(keys, [("a", "certificate"), ("a", "key"), ("a", "key-mode"), ("a", "reload"), ("a", "name")]);
    let shown = ConfigError::Invalid { path: FILE.into(), problems: p }.to_string();
    assert_eq!(shown.lines().count(), 5, "{shown}");
    assert!(shown.lines().all(|l| l.starts_with(FILE)), "{shown}");
}

#[test]
fn load_reads_only_regular_files_of_bounded_size() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("config.toml");
    std::fs::write(&good, SVC).unwrap();
    let c = load(&good).unwrap();
    assert_eq!(c.path, good);
    assert_eq!(c.services.len(), 1);

    let missing = dir.path().join("nope.toml");
    let e = load(&missing).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(e.to_string().starts_with(&missing.display().to_string()), "{e}");

    let e = load(dir.path()).unwrap_err();
    assert!(!e.is_not_found());
    assert!(e.to_string().contains("it is a directory"), "{e}");

    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let e = load(&fifo).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");

    let big = dir.path().join("big.toml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(MAX_FILE_SIZE + 1).unwrap();
    let e = load(&big).unwrap_err();
    assert!(e.to_string().contains("too large"), "{e}");

    let bin = dir.path().join("bin.toml");
    std::fs::write(&bin, b"hostname = \"\xff\"\n").unwrap();
    let e = load(&bin).unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
    assert_eq!(e.path(), bin);

    let invalid = dir.path().join("invalid.toml");
    std::fs::write(&invalid, "[[service]]\nname = \"x\"\n").unwrap();
    let e = load(&invalid).unwrap_err();
    assert!(e.to_string().starts_with(&format!("{}:1:1: service \"x\"", invalid.display())), "{e}");
}

#[test]
fn a_configuration_others_could_change_is_refused_naming_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, SVC).unwrap();
    load(&path).expect("root's 0644 file in a 0700 directory");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = load(&path).unwrap_err();
    assert!(matches!(e, ConfigError::Untrusted { .. }), "{e}");
    assert!(e.to_string().contains("chmod go-w"), "{e}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = load(&path).unwrap_err();
    assert!(e.to_string().contains(&dir.path().display().to_string()), "{e}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();

    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.to_string().contains("chown root"), "{e}");
    }
}

#[test]
fn one_file_for_two_roles_is_refused() {
    let p = one_problem(
        "[[service]]\nname = \"web\"\ncertificate = \"/etc/ssl/web.pem\"\nkey = \"/etc/ssl/web.pem\"\n",
    );
    assert!(p.contains("service \"web\": `key`: /etc/ssl/web.pem is also the certificate file"), "{p}");
    let p = one_problem(
        "[[service]]\nname = \"web\"\ncertificate = \"/c.pem\"\nkey = \"/k.pem\"\nchain = \"/k.pem\"\n",
    );
    assert!(p.contains("`chain`: /k.pem is also the key file"), "{p}");
}
