//! Revocation without the network: the CRLs kept on this host (`[network] crl-files` and every
//! `*.crl`, `*.pem` and `*.der` file of `crl-dir`), for an air-gapped host whose CA publishes
//! its CRLs by other means.
//!
//! The files are root's inputs: each is read bounded and trust-checked like the configuration
//! ([`crate::fs::read_trusted`] with [`limits::CRL_FILE`]: owned by root or the running user,
//! not writable by others, no link another user planted). Each is a PEM or DER CRL. A CRL is
//! then checked **exactly like a downloaded one** ([`super::revocation`]): it applies to a
//! certificate whose issuer name it carries, only if its signature verifies with that issuer's
//! key ([`verify_crl`]), and only while current ([`crl_status`]: `thisUpdate` not in the
//! future, `nextUpdate` not past, five minutes of skew). It is used whether or not the
//! certificate names a CRL distribution point, and whatever `[network]`'s other keys or
//! `CHECKALLSSLCERTS_NETWORK_FACTS` say.
//!
//! A file that cannot be read, is not a CRL, is out of date, or whose signature is not its
//! CA's is named in a warning and the run goes on; a certificate of a CA whose only CRL is stale
//! or forged is `unknown`, never `revoked`.
//!
//! **Precedence** ([`decide`]): revocation is final, so a current local CRL that lists the
//! certificate makes it `revoked` and the network is not asked. Otherwise the network's
//! trustworthy answer (OCSP, then the distribution point's CRL) decides — it may be newer
//! than the file; failing that a current local CRL's `good`; failing that `unknown` with every
//! reason, local and remote.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use openssl::x509::{X509, X509Crl};

use super::certificate::{openssl_reason, unix_time};
use super::model::{Revocation, Timestamp};
use super::revocation::{SKEW, Subject, crl_next_update, crl_status, verify_crl};
use crate::config::network::NetworkConfig;
use crate::fs::limits;

/// The most files of `crl-dir` read in a run.
pub const MAX_DIR_FILES: usize = 1000;

/// The names of the files read in `crl-dir` end with one of these (any case).
const EXTENSIONS: [&str; 3] = ["crl", "pem", "der"];

/// A signature check: (index of the CRL, SHA-256 of the issuer's DER).
type CheckKey = (usize, [u8; 32]);

/// One CRL file, parsed.
struct LocalCrl {
    path: PathBuf,
    crl: X509Crl,
}

/// The CRLs of `[network] crl-files` and `crl-dir`, read once per run.
pub struct LocalCrls {
    crls: Vec<LocalCrl>,
    now: Timestamp,
    /// Signature checks already made, and their results.
    /// A CA's CRL may be megabytes: it is verified once per issuer, not once per certificate.
    verified: Mutex<HashMap<CheckKey, Result<(), String>>>,
    /// The CRLs already named in a warning about their signature.
    named: Mutex<HashSet<usize>>,
    notices: Mutex<Vec<String>>,
}

/// What the local CRLs say about one certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalAnswer {
    /// `Good` or `Revoked`, from a current CRL of the certificate's CA that verifies; `None` if
    /// no such CRL.
    pub answer: Option<Revocation>,
    /// Why the CRLs that name the certificate's CA gave no answer ("CRL file PATH: why").
    pub problems: Vec<String>,
}

impl LocalCrls {
    /// No local CRLs.
    pub fn none(now: Timestamp) -> LocalCrls {
        LocalCrls::from_crls(Vec::new(), now, Vec::new())
    }

    fn from_crls(crls: Vec<LocalCrl>, now: Timestamp, notices: Vec<String>) -> LocalCrls {
        LocalCrls {
            crls,
            now,
            verified: Mutex::new(HashMap::new()),
            named: Mutex::new(HashSet::new()),
            notices: Mutex::new(notices),
        }
    }

    /// Reads `crl-files` and `crl-dir` (nothing when neither is configured). Every file that
    /// cannot be used is named in a notice ([`LocalCrls::take_notices`]).
    pub fn load(net: &NetworkConfig, now: Timestamp) -> LocalCrls {
        let mut crls = Vec::new();
        let mut notices = Vec::new();
        let mut paths: Vec<(PathBuf, &'static str)> =
            net.crl_files.iter().map(|p| (p.clone(), "crl-files")).collect();
        if let Some(dir) = &net.crl_dir {
            match list_dir(dir) {
                Ok((files, skipped)) => {
                    if files.is_empty() {
                        notices.push(format!(
                            "[network] crl-dir: {} holds no *.crl, *.pem or *.der file; no CRL was read from it.",
                            dir.display()
                        ));
                    }
                    if skipped > 0 {
                        notices.push(format!(
                            "[network] crl-dir: {} holds more than {MAX_DIR_FILES} CRL files; the {skipped} \
                             after the first {MAX_DIR_FILES} (by name) were not read.",
                            dir.display()
                        ));
                    }
                    paths.extend(files.into_iter().map(|p| (p, "crl-dir")));
                }
                Err(why) => notices.push(format!("[network] crl-dir: {why}; no CRL was read from it.")),
            }
        }
        for (path, key) in paths {
            match read_crl(&path) {
                Ok(crl) => {
                    if let Some(why) = out_of_date(&crl, now) {
                        notices.push(format!(
                            "[network] {key}: the CRL {} {why}: it says nothing about revocation until a \
                             current one replaces it, and the certificates of its CA are `unknown`.",
                            path.display()
                        ));
                    }
                    crls.push(LocalCrl { path, crl });
                }
                Err(why) => notices.push(format!("[network] {key}: {why}; it is not used.")),
            }
        }
        LocalCrls::from_crls(crls, now, notices)
    }

    /// Whether any CRL was read (then every certificate is looked up in them).
    pub fn is_empty(&self) -> bool {
        self.crls.is_empty()
    }

    /// Warnings about the files (unreadable, not a CRL, stale, not signed by their CA), each
    /// once per run.
    pub fn take_notices(&self) -> Vec<String> {
        self.notices.lock().map(|mut n| std::mem::take(&mut *n)).unwrap_or_default()
    }

    /// What the CRLs that name the certificate's issuer say about it. A `Revoked` from any
    /// current, verified CRL wins over a `Good` from another.
    pub fn status(&self, subject: &Subject) -> LocalAnswer {
        let leaf = &subject.leaf;
        let mut out = LocalAnswer::default();
        for (index, local) in self.crls.iter().enumerate() {
            let names_issuer = local.crl.issuer_name().try_cmp(leaf.issuer_name()).is_ok_and(|o| o.is_eq());
            if !names_issuer {
                continue;
            }
            let shown = local.path.display();
            let issuer = match &subject.issuer {
                Ok(issuer) => issuer,
                Err(why) => {
                    out.problems.push(format!("CRL file {shown}: {why}"));
                    continue;
                }
            };
            if let Err(why) = self.verify(index, leaf, issuer) {
                out.problems.push(format!("CRL file {shown}: {why}"));
                continue;
            }
            match crl_status(&local.crl, leaf, self.now) {
                Ok(revoked @ Revocation::Revoked(_)) => {
                    out.answer = Some(revoked);
                    return out;
                }
                Ok(good) => {
                    out.answer.get_or_insert(good);
                }
                Err(why) => out.problems.push(format!("CRL file {shown}: {why}")),
            }
        }
        out
    }

    /// [`verify_crl`], once per CRL and issuer; a CRL that fails is named in a notice once.
    fn verify(&self, index: usize, leaf: &X509, issuer: &X509) -> Result<(), String> {
        // Not cached (checked every time) if the issuer cannot be encoded, which never happens.
        let key = issuer.to_der().ok().map(|der| (index, openssl::sha::sha256(&der)));
        if let Some(known) = key.and_then(|key| self.verified.lock().ok()?.get(&key).cloned()) {
            return known;
        }
        let result = verify_crl(&self.crls[index].crl, leaf, issuer);
        if let (Some(key), Ok(mut map)) = (key, self.verified.lock()) {
            map.insert(key, result.clone());
        }
        if let Err(why) = &result
            && self.named.lock().is_ok_and(|mut named| named.insert(index))
            && let Ok(mut notices) = self.notices.lock()
        {
            notices.push(format!(
                "The CRL file {} carries the name of a CA whose certificates are in use, but it is not \
                 trusted: {why}. It is not used for them.",
                self.crls[index].path.display()
            ));
        }
        result
    }
}

/// The answer for a certificate from its local CRLs and the network's (`None`: not asked).
/// See the module documentation for the precedence. `None`: nothing to say (`not-checked`).
pub fn decide(local: LocalAnswer, network: Option<Revocation>) -> Option<Revocation> {
    if let Some(revoked @ Revocation::Revoked(_)) = local.answer {
        return Some(revoked);
    }
    if let Some(answer @ (Revocation::Good | Revocation::Revoked(_))) = network {
        return Some(answer);
    }
    if let Some(good) = local.answer {
        return Some(good);
    }
    let mut problems = local.problems;
    if let Some(Revocation::Unknown(why)) = &network {
        problems.insert(0, why.clone());
    }
    if problems.is_empty() { network } else { Some(Revocation::Unknown(problems.join("; "))) }
}

/// The files of `dir` whose names end in `.crl`, `.pem` or `.der`, by name (directories left
/// out; links are left to [`read_crl`]), at most [`MAX_DIR_FILES`], and how many more there were.
fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, usize), String> {
    crate::fs::check_trusted(dir).map_err(|e| e.to_string())?;
    let cannot_list = |e| crate::fs::FsError::io("list", dir)(e).to_string();
    let entries = std::fs::read_dir(dir).map_err(cannot_list)?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(cannot_list)?;
        let name = entry.file_name();
        let wanted = Path::new(&name)
            .extension()
            .and_then(OsStr::to_str)
            .is_some_and(|ext| EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)));
        if !wanted || entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    let skipped = files.len().saturating_sub(MAX_DIR_FILES);
    files.truncate(MAX_DIR_FILES);
    Ok((files, skipped))
}

/// Reads and parses one CRL file: trusted, bounded, PEM or DER. The error names the file.
fn read_crl(path: &Path) -> Result<X509Crl, String> {
    let bytes = crate::fs::read_trusted(path, limits::CRL_FILE).map_err(|e| {
        if e.is_not_found() { format!("{} does not exist", path.display()) } else { e.to_string() }
    })?;
    X509Crl::from_der(&bytes).or_else(|_| X509Crl::from_pem(&bytes)).map_err(|e| {
        format!(
            "{} is not a CRL (neither DER nor a PEM \"X509 CRL\" block: {})",
            path.display(),
            crate::text::untrusted_max(&openssl_reason(&e), 200)
        )
    })
}

/// Why `crl` cannot be used at `now` whatever certificate it is about, if it cannot.
fn out_of_date(crl: &X509Crl, now: Timestamp) -> Option<String> {
    if let Some(this) = unix_time(crl.last_update())
        && this > now + SKEW
    {
        return Some(format!("is not valid yet (thisUpdate {})", crate::time::utc_seconds(this)));
    }
    match crl_next_update(crl) {
        Some(next) if next < now - SKEW => {
            Some(format!("is out of date (nextUpdate {})", crate::time::utc_seconds(next)))
        }
        _ => None,
    }
}
