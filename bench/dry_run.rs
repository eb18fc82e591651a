//! `cargo bench --bench dry_run [-- N...]`: `checkallsslcerts --dry-run` over N services with real
//! certificate files (default: 10,000 and 100,000), against two floors: a minimal in-process loop
//! that parses and verifies the same files with OpenSSL's generic calls (`PEM_read_bio_X509`,
//! `X509_verify_cert`, key decoding: what a straightforward checker does), and the signature
//! floor — read each certificate file, decode its PEM and check the leaf's one ECDSA signature
//! with its issuer's key decoded once — below which no checker of every signature can go.
//!
//! Two runs of the tool are timed (median of 3 each, after one real run that leaves the compiled
//! policy and the verification memo in the state dir, as the nightly run does):
//! * **first run**: the verification memo deleted before each run (files never seen before);
//! * **second run**: the memo in place, nothing changed since (the nightly re-check).
//!
//! It prints wall times, peak RSS, the ratios to the signature floor, and how time grows from the
//! smallest size to the others (linear growth is a ratio of 1.0). Targets: `docs/performance.md`.
//!
//! Corpus (made once under `target/bench/corpus-N`): one EC P-256 leaf per service plus a
//! shared intermediate (two intermediates: a "Let's Encrypt" one and another), 70 % valid,
//! 10 % expiring, 10 % expired, 10 % self-signed; each with its key. Its state dir has
//! `disable_service_certificate_management`, so the real run checks and reports but changes no
//! file; network facts are off (the bench measures the tool, not the resolver).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509NameBuilder, X509StoreContext};
use rayon::prelude::*;

const DAY: i64 = 86_400;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey")
}

#[allow(clippy::too_many_arguments)]
fn cert(
    cn: &str,
    org: &str,
    issuer: Option<(&X509, &PKey<Private>)>,
    subject_key: &PKey<Private>,
    nb: i64,
    na: i64,
    ca: bool,
    serial: u32,
) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, org).expect("o");
    name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("v");
    b.set_serial_number(&Asn1Integer::from_bn(&BigNum::from_u32(serial).expect("bn")).expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(issuer.map(|(c, _)| c.subject_name()).unwrap_or(&name)).expect("issuer");
    b.set_pubkey(subject_key).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(nb).expect("t")).expect("nb");
    b.set_not_after(&Asn1Time::from_unix(na).expect("t")).expect("na");
    if ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc")).expect("ext");
    } else {
        let san = SubjectAlternativeName::new()
            .dns(cn)
            .build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))
            .expect("san");
        b.append_extension(san).expect("ext");
    }
    b.sign(issuer.map(|(_, k)| k).unwrap_or(subject_key), MessageDigest::sha256()).expect("sign");
    b.build()
}

/// Makes the corpus and its config; returns the config path.
fn corpus(root: &Path, n: usize) -> PathBuf {
    let config = root.join("config.toml");
    if config.exists() {
        return config;
    }
    std::fs::create_dir_all(root).expect("corpus dir");
    let t = now();
    let root_key = key();
    let root_cert = cert("Bench Root", "Bench", None, &root_key, t - 400 * DAY, t + 4000 * DAY, true, 1);
    let le_key = key();
    let le = cert(
        "R10",
        "Let's Encrypt",
        Some((&root_cert, &root_key)),
        &le_key,
        t - 300 * DAY,
        t + 1000 * DAY,
        true,
        2,
    );
    let other_key = key();
    let other = cert(
        "Other CA",
        "Other",
        Some((&root_cert, &root_key)),
        &other_key,
        t - 300 * DAY,
        t + 1000 * DAY,
        true,
        3,
    );
    std::fs::write(root.join("root.pem"), root_cert.to_pem().expect("pem")).expect("root");
    let mut text = format!(
        "hostname = \"host.example.com\"\nstate-dir = \"{}\"\n[trust]\nsystem-roots = false\nextra-roots = [\"{}\"]\n\
         [network]\ndns = false\nrevocation = false\nari = false\n[mail]\nenabled = false\n",
        root.join("state").display(),
        root.join("root.pem").display()
    );
    let services: Vec<String> = (0..n)
        .into_par_iter()
        .map(|i| {
            let dir = root.join(format!("s{i:05}"));
            std::fs::create_dir_all(&dir).expect("dir");
            let k = key();
            let (issuer, issuer_key) = if i % 2 == 0 { (&le, &le_key) } else { (&other, &other_key) };
            let (nb, na) = match i % 10 {
                7 => (t - 80 * DAY, t + 2 * DAY),
                8 => (t - 100 * DAY, t - 10 * DAY),
                _ => (t - 30 * DAY, t + 60 * DAY),
            };
            let mut pem = if i % 10 == 9 {
                cert("host.example.com", "Self", None, &k, nb, na, false, 10 + i as u32)
                    .to_pem()
                    .expect("pem")
            } else {
                cert("host.example.com", "Leaf", Some((issuer, issuer_key)), &k, nb, na, false, 10 + i as u32)
                    .to_pem()
                    .expect("pem")
            };
            if i % 10 != 9 {
                pem.extend(issuer.to_pem().expect("pem"));
            }
            std::fs::write(dir.join("cert.pem"), pem).expect("cert");
            std::fs::write(dir.join("key.pem"), k.private_key_to_pem_pkcs8().expect("key")).expect("key");
            format!(
                "[[service]]\nname = \"s{i:05}\"\ncertificate = \"{}\"\nkey = \"{}\"\n",
                dir.join("cert.pem").display(),
                dir.join("key.pem").display()
            )
        })
        .collect();
    text.push_str(&services.join("\n"));
    std::fs::write(&config, text).expect("config");
    config
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The binary's wall time and peak RSS (KiB), via GNU time: a dry run, or a real run.
fn run_tool(config: &Path, dry_run: bool) -> (Duration, u64) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(env!("CARGO_BIN_EXE_checkallsslcerts"))
        .args(if dry_run { &["--dry-run", "--json", "--config"][..] } else { &["--json", "--config"][..] })
        .arg(config)
        .output()
        .expect("run the binary under /usr/bin/time");
    let elapsed = started.elapsed();
    let rss =
        String::from_utf8_lossy(&out.stderr).lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    assert!(
        out.stdout.starts_with(b"{"),
        "the run printed no report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (elapsed, rss)
}

/// The floor: read, parse and verify every certificate (and read + parse every key) on all
/// cores with the plain openssl crate, nothing else.
fn floor(root: &Path, n: usize) -> Duration {
    let started = Instant::now();
    let root_cert = X509::from_pem(&std::fs::read(root.join("root.pem")).expect("root")).expect("root");
    let mut store = X509StoreBuilder::new().expect("store");
    store.add_cert(root_cert).expect("add");
    let store = store.build();
    let ok: usize = (0..n)
        .into_par_iter()
        .map(|i| {
            let dir = root.join(format!("s{i:05}"));
            let certs =
                X509::stack_from_pem(&std::fs::read(dir.join("cert.pem")).expect("cert")).expect("pem");
            let key =
                PKey::private_key_from_pem(&std::fs::read(dir.join("key.pem")).expect("key")).expect("key");
            let mut chain = Stack::new().expect("stack");
            for c in &certs[1..] {
                chain.push(c.clone()).expect("push");
            }
            let mut ctx = X509StoreContext::new().expect("ctx");
            let verified = ctx.init(&store, &certs[0], &chain, |c| c.verify_cert()).unwrap_or(false);
            usize::from(verified && certs[0].public_key().expect("pk").public_eq(&key))
        })
        .sum();
    assert!(ok > 0);
    started.elapsed()
}

/// The signature floor: read every certificate file, decode its PEM, and check the leaf's
/// signature (one ECDSA P-256 verify) with the issuer's key, decoded once per issuer (the
/// leaf's own key when self-signed), on all cores. Nothing else: no key file, no chain checks.
fn signature_floor(root: &Path, n: usize) -> Duration {
    use openssl::ec::{EcKey, EcPoint};
    use openssl::ecdsa::EcdsaSig;
    use openssl::pkey::Public;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let started = Instant::now();
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    let issuers: Mutex<HashMap<Vec<u8>, EcKey<Public>>> = Mutex::new(HashMap::new());
    let ok: usize = (0..n)
        .into_par_iter()
        .map(|i| {
            let bytes = std::fs::read(root.join(format!("s{i:05}")).join("cert.pem")).expect("cert");
            let blocks = checkallsslcerts::facts::pem::scan(&bytes).expect("pem");
            let (_, leaf) = X509Certificate::from_der(&blocks[0].der).expect("leaf");
            let key = if leaf.subject().as_raw() == leaf.issuer().as_raw() {
                let mut ctx = openssl::bn::BigNumContext::new().expect("ctx");
                let point = EcPoint::from_bytes(&group, &leaf.public_key().subject_public_key.data, &mut ctx)
                    .expect("point");
                EcKey::from_public_key(&group, &point).expect("key")
            } else {
                let issuer = &blocks[1].der;
                let mut map = issuers.lock().expect("lock");
                map.entry(issuer.to_vec())
                    .or_insert_with(|| {
                        X509::from_der(issuer)
                            .expect("issuer")
                            .public_key()
                            .expect("pk")
                            .ec_key()
                            .expect("ec")
                    })
                    .clone()
            };
            let signature = EcdsaSig::from_der(&leaf.signature_value.data).expect("signature");
            let digest = openssl::sha::sha256(leaf.tbs_certificate.as_ref());
            usize::from(signature.verify(&digest, &key).expect("verify"))
        })
        .sum();
    assert_eq!(ok, n, "every leaf's signature verifies");
    started.elapsed()
}

/// The state dir of a corpus, with the switch that makes a real run check and report only.
fn check_only_state(root: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let state = root.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("state mode");
    std::fs::write(state.join("disable_service_certificate_management"), "").expect("switch");
    state
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![10_000, 100_000] } else { sizes };
    // Canonical: a configuration's paths have no `..` for the kernel to walk 20,000 times.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    std::fs::create_dir_all(&target).expect("target/bench");
    let target = target.canonicalize().expect("target/bench");
    println!(
        "| services | first run | second run | peak RSS | openssl floor | signature floor | first / signature floor | second / signature floor |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut firsts: Vec<(usize, Duration)> = Vec::new();
    for n in sizes {
        let root = target.join(format!("corpus-{n}"));
        let config = corpus(&root, n);
        let memo = check_only_state(&root).join("cache").join("verified");
        // A real (check-only) run: the page cache, the compiled policy and the memo.
        let (_, real_rss) = run_tool(&config, false);
        assert!(memo.exists(), "the real run wrote the verification memo");
        // A dry run reads the memo and never writes it: without the file, every dry run is a
        // first run.
        std::fs::remove_file(&memo).expect("remove the memo");
        let first_runs: Vec<(Duration, u64)> = (0..3).map(|_| run_tool(&config, true)).collect();
        run_tool(&config, false);
        let second_runs: Vec<(Duration, u64)> = (0..3).map(|_| run_tool(&config, true)).collect();
        let first = median(first_runs.iter().map(|r| r.0).collect());
        let second = median(second_runs.iter().map(|r| r.0).collect());
        let rss = first_runs.iter().chain(&second_runs).map(|r| r.1).max().unwrap_or(0).max(real_rss);
        let floor = median((0..3).map(|_| floor(&root, n)).collect());
        let signatures = median((0..3).map(|_| signature_floor(&root, n)).collect());
        println!(
            "| {n} | {:.3} s | {:.3} s | {:.0} MB | {:.3} s | {:.3} s | {:.2}× | {:.2}× |",
            first.as_secs_f64(),
            second.as_secs_f64(),
            rss as f64 / 1024.0,
            floor.as_secs_f64(),
            signatures.as_secs_f64(),
            first.as_secs_f64() / signatures.as_secs_f64(),
            second.as_secs_f64() / signatures.as_secs_f64(),
        );
        firsts.push((n, first));
    }
    if let Some(&(base_n, base)) = firsts.first() {
        for &(n, time) in &firsts[1..] {
            let growth = (time.as_secs_f64() / base.as_secs_f64()) / (n as f64 / base_n as f64);
            println!("growth {base_n} → {n} services (first run): {growth:.2} × linear");
        }
    }
}
