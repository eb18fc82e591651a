//! What the ACME step remembers between runs, under `<state-dir>/acme/` (directories `0700`,
//! every file `0600` except the issued certificates themselves):
//!
//! ```text
//! accounts/<sha256(directory)[..16]>.json  the account: its URL and private key (per CA)
//! pending.json                            an order the CA is still processing, resumed next run
//! pending-key.pem                         the private key of that order's CSR, once finalized
//! limits.json                             orders opened (daily cap) and the failure back-off
//! retry.json                              the scheduled re-check (`at` job id), if any
//! history.jsonl                           one JSON line per event, never truncated
//! issued/<YYYYmmddTHHMMSSZ>-<n>/          every certificate issued, pruned with its key
//!                                         beyond `keep-issued` and `keep-issued-days`:
//!     certificate.pem  chain.pem  key.pem  order.json
//! ```
//!
//! Every file is replaced atomically and link-safely ([`crate::fs::write_atomic`]: temporary
//! file with its mode set before any byte, fsync, rename, fsync of the directory), and every
//! read is bounded ([`crate::fs::read_bounded`], [`crate::fs::limits::STATE_FILE`]).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::errors::{AcmeError, ProblemDocument};
use crate::actions::placeholder::Material;
use crate::actions::{create_private_dir, fsync_dir, utc_stamp};
use crate::fs::limits::STATE_FILE;
use crate::fs::write_atomic;

/// The subdirectory of the state directory.
pub const ACME_DIR: &str = "acme";
/// One hour: the first back-off after a failed order.
pub const FIRST_BACKOFF_SECS: i64 = 3600;
/// The longest back-off (doubling stops here).
pub const MAX_BACKOFF_SECS: i64 = 86_400;
/// The back-off after connection failures (the CA unreachable: DNS, refused, reset, TLS,
/// timeout), by failures in a row: brief at first, growing, held at the last; each one is
/// lengthened by a random 0–20 % ([`jitter`]) so a fleet does not come back at the same second.
pub const UNREACHABLE_BACKOFF_SECS: [i64; 5] = [300, 900, 3600, 4 * 3600, 12 * 3600];
/// The window of the daily order cap.
pub const DAY_SECS: i64 = 86_400;

/// The ACME part of the state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
    /// Where the accounts are, when not in `dir/accounts` (a certificate group's state shares
    /// the main one's: [`StateDir::sharing_accounts`]).
    accounts: Option<PathBuf>,
}

/// An order opened in an earlier run that the CA has not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PendingState {
    /// The CA's directory URL (an order is only resumed at the same CA).
    pub directory_url: String,
    /// The account that opened it.
    pub account: String,
    /// The order's URL.
    pub url: String,
    /// When it was opened.
    pub created: i64,
    /// Its names, as ordered.
    pub names: Vec<String>,
    /// Its last known status.
    pub status: String,
    /// When its status was last seen.
    #[serde(default)]
    pub checked: i64,
    /// Whether `pending-key.pem` holds the key of a CSR already sent.
    #[serde(default)]
    pub key_sent: bool,
    /// Challenge responses left in place for the CA (webroot files, DNS records), removed when
    /// the order ends.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// The ARI identifier of the certificate the CA accepted this order as replacing (RFC 9773
    /// `replaces`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// When the CA asked, with the `Retry-After` of its last answer, to look at the order again
    /// (RFC 8555 §7.4; held to at most 7 days after the run): no run resumes the order before
    /// then, and `--allow-retry` queues its re-check for then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
}

/// A challenge response left in place while an order is pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Artifact {
    /// A token file under a webroot, and the directories created for it (deepest first).
    WebrootFile { path: PathBuf, created_dirs: Vec<PathBuf> },
    /// A TXT record published by the DNS hook.
    DnsRecord { domain: String, value: String },
}

/// One order opened, for the daily cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct OpenedOrder {
    pub at: i64,
    pub url: String,
    pub names: Vec<String>,
}

/// The daily cap's record and the back-off.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Limits {
    /// Orders opened in the last day (older entries are dropped when saved).
    pub orders: Vec<OpenedOrder>,
    /// Failed orders since the last success.
    pub consecutive_failures: u32,
    /// No new order before this time (back-off).
    pub backoff_until: Option<i64>,
    /// The last failure, for the admin.
    pub last_failure: Option<String>,
    /// The setup (CA, account binding, names, challenge, key) the back-off is about: a changed
    /// configuration is not held back by the failures of the old one.
    pub backoff_setup: Option<String>,
    /// When the CA's own `Retry-After` (RFC 8555 §6.6: `rateLimited`, or a 503) asked not to be
    /// asked again before, if the last failure carried one (capped at 7 days); the back-off
    /// lasts at least until then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_retry_after: Option<i64>,
}

/// Why no new order may be opened now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// Failed orders back off: no new order before `until`; `ca_asked`: that time is the CA's
    /// own `Retry-After`.
    Backoff { until: i64, failures: u32, last_failure: Option<String>, ca_asked: bool },
    /// `max` orders were opened in the last 24 hours: the next one after `until`.
    DailyCap { until: i64, max: u32 },
}

impl Blocked {
    /// The earliest time a new order may be opened.
    pub fn until(&self) -> i64 {
        match self {
            Blocked::Backoff { until, .. } | Blocked::DailyCap { until, .. } => *until,
        }
    }
}

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocked::Backoff { until, failures, last_failure, ca_asked } => {
                write!(
                    f,
                    "{failures} order(s) failed in a row, so no new order is opened before {} (back-off{})",
                    crate::time::utc_seconds(*until),
                    if *ca_asked { ", as the certificate authority asked with Retry-After" } else { "" }
                )?;
                if let Some(last) = last_failure {
                    write!(f, "; the last failure: {last}")?;
                }
                Ok(())
            }
            Blocked::DailyCap { until, max } => write!(
                f,
                "{max} order(s) were opened in the last 24 hours (acme.max-orders-per-day = {max}), so the next \
                 may be opened after {}",
                crate::time::utc_seconds(*until)
            ),
        }
    }
}

/// A random 0–20 (percent), for [`Limits::unreachable`].
pub fn jitter() -> u8 {
    let mut byte = [0u8; 1];
    match openssl::rand::rand_bytes(&mut byte) {
        Ok(()) => byte[0] % 21,
        Err(_) => (std::process::id() % 21) as u8,
    }
}

impl Limits {
    /// Whether a new order for `names` with `setup` (see [`Limits::backoff_setup`]) may be opened
    /// at `now`.
    pub fn blocked(&self, names: &[String], setup: &str, now: i64, max_per_day: u32) -> Option<Blocked> {
        let same_setup = self.backoff_setup.as_deref().is_none_or(|s| s == setup);
        let backoff =
            self.backoff_until.filter(|until| *until > now && same_setup).map(|until| Blocked::Backoff {
                until,
                failures: self.consecutive_failures,
                last_failure: self.last_failure.clone(),
                ca_asked: self.ca_retry_after.is_some_and(|asked| asked >= until),
            });
        let recent: Vec<i64> = self
            .orders
            .iter()
            .filter(|o| o.at > now - DAY_SECS && o.names.iter().any(|n| names.contains(n)))
            .map(|o| o.at)
            .collect();
        let cap = (recent.len() >= max_per_day as usize).then(|| {
            let mut times = recent.clone();
            times.sort_unstable();
            // The order that must leave the window before another fits in it.
            let index = times.len() - max_per_day as usize;
            Blocked::DailyCap { until: times[index] + DAY_SECS, max: max_per_day }
        });
        match (backoff, cap) {
            (Some(b), Some(c)) => Some(if c.until() > b.until() { c } else { b }),
            (b, c) => b.or(c),
        }
    }

    /// Records a newly opened order.
    pub fn opened(&mut self, url: &str, names: &[String], now: i64) {
        self.orders.retain(|o| o.at > now - DAY_SECS);
        self.orders.push(OpenedOrder { at: now, url: url.to_owned(), names: names.to_vec() });
    }

    /// Records a failed order with `setup`: the back-off doubles from an hour, up to a day
    /// (and starts again from an hour for a new setup).
    pub fn failed(&mut self, reason: &str, setup: &str, now: i64) {
        if self.backoff_setup.as_deref() != Some(setup) {
            self.consecutive_failures = 0;
        }
        self.backoff_setup = Some(setup.to_owned());
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let exponent = self.consecutive_failures.saturating_sub(1).min(16);
        let delay = FIRST_BACKOFF_SECS.saturating_mul(1_i64 << exponent).min(MAX_BACKOFF_SECS);
        self.backoff_until = Some(now.saturating_add(delay));
        self.last_failure = Some(reason.chars().take(2000).collect());
        self.ca_retry_after = None;
    }

    /// Records an order that failed because the CA could not be reached (no answer at all):
    /// [`UNREACHABLE_BACKOFF_SECS`] (5 min, 15 min, 1 h, 4 h, then 12 h) with `jitter_percent`
    /// (0–20) added. A CA that answered with a problem document goes through [`Limits::failed`].
    pub fn unreachable(&mut self, reason: &str, setup: &str, now: i64, jitter_percent: u8) {
        self.failed(reason, setup, now);
        let index =
            (self.consecutive_failures.saturating_sub(1) as usize).min(UNREACHABLE_BACKOFF_SECS.len() - 1);
        let base = UNREACHABLE_BACKOFF_SECS[index];
        let delay = base + base * i64::from(jitter_percent.min(20)) / 100;
        self.backoff_until = Some(now.saturating_add(delay));
    }

    /// Records that the CA asked (`Retry-After`) not to be asked again before `until`, after
    /// [`Limits::failed`]: the back-off lasts at least that long.
    pub fn ca_asked(&mut self, until: i64) {
        self.ca_retry_after = Some(until);
        self.backoff_until = Some(self.backoff_until.map_or(until, |b| b.max(until)));
    }

    /// Records a success: the back-off ends.
    pub fn succeeded(&mut self) {
        self.consecutive_failures = 0;
        self.backoff_until = None;
        self.last_failure = None;
        self.backoff_setup = None;
        self.ca_retry_after = None;
    }
}

/// The scheduled re-check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RetryRecord {
    /// "at" or "systemd-run".
    pub scheduler: String,
    /// The `at` job number or the systemd unit name.
    pub id: String,
    /// When it was scheduled.
    pub scheduled: i64,
    /// When it runs.
    pub runs_at: i64,
    /// The command it runs.
    pub command: Vec<String>,
    /// The value of `CHECKALLSSLCERTS_RETRY_JOB` in the job's environment: how the job's own
    /// run knows it is this re-check (see [`super::retry::recheck`]). Absent in records
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HistoryEvent {
    pub at: i64,
    /// "account-created", "account-replaced" (the CA no longer knew the stored account; `stored`:
    /// where its file is kept), "order-opened", "order-resumed", "order-pending", "issued",
    /// "order-failed", "order-abandoned", "verification-failed", "retry-scheduled",
    /// "retry-removed", "issued-pruned" (retention; `stored`: the directory removed), "reused"
    /// (an earlier certificate was installed instead of ordering; `stored`: its directory),
    /// "replaces-refused" (the CA refused the `replaces` of a new order, which
    /// was then opened without it).
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<ProblemDocument>,
    /// For "issued": where the certificate is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<PathBuf>,
    /// For "order-opened", "issued" and "replaces-refused": the ARI identifier of the certificate
    /// the order replaces (RFC 9773 `replaces`), or that the CA refused as such.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

impl HistoryEvent {
    /// An event with only its name and time.
    pub fn new(event: &str, at: i64) -> HistoryEvent {
        HistoryEvent {
            at,
            event: event.to_owned(),
            directory_url: None,
            account: None,
            order_url: None,
            names: Vec::new(),
            detail: None,
            problem: None,
            stored: None,
            replaces: None,
        }
    }
}

/// What `issued/<dir>/order.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IssuedRecord {
    pub directory_url: String,
    pub account: String,
    pub order_url: String,
    pub names: Vec<String>,
    pub issued_at: i64,
    pub not_after: i64,
    pub sha256_fingerprint: String,
    /// Whether it passed the checks and was handed to the services.
    pub accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_because: Option<String>,
    /// The ARI identifier of the certificate this one replaces (RFC 9773 `replaces`), if the
    /// order named one and the CA accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

/// An error of the file layer, which names the path and what failed itself.
fn fs_err(path: &Path, e: crate::fs::FsError) -> AcmeError {
    AcmeError::State { path: path.to_owned(), reason: e.to_string() }
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> AcmeError {
    AcmeError::State { path: path.to_owned(), reason: format!("cannot {what}: {e}") }
}

impl StateDir {
    /// `<state_dir>/acme`, created `0700` if missing.
    pub fn open(state_dir: &Path) -> Result<StateDir, AcmeError> {
        let dir = state_dir.join(ACME_DIR);
        create_private_dir(&dir, true).map_err(|(p, e)| err(&p, "create the directory", e))?;
        Ok(StateDir { dir, accounts: None })
    }

    /// `<state_dir>/acme`, not created (for reading facts in a dry run).
    pub fn at(state_dir: &Path) -> StateDir {
        StateDir { dir: state_dir.join(ACME_DIR), accounts: None }
    }

    /// The same state, with the accounts kept in `accounts` when given (`acme.accounts_dir`).
    pub fn sharing_accounts(mut self, accounts: Option<&Path>) -> StateDir {
        self.accounts = accounts.map(Path::to_owned);
        self
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads a JSON file; `Ok(None)` if it does not exist.
    fn read_json<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>, AcmeError> {
        match crate::fs::read_bounded(path, STATE_FILE) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| err(path, "parse the JSON", e)),
            Err(crate::fs::ReadError::Missing(_)) => Ok(None),
            Err(e) => Err(AcmeError::State { path: path.to_owned(), reason: super::client::read_error(e) }),
        }
    }

    fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), AcmeError> {
        let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(value).map_err(|e| err(path, "encode", e))?);
        bytes.push(b'\n');
        write_atomic(path, &bytes, 0o600).map_err(|e| fs_err(path, e))
    }

    fn remove(&self, path: &Path) -> Result<(), AcmeError> {
        match fs::remove_file(path) {
            Ok(()) => fsync_dir(&self.dir).map_err(|e| err(&self.dir, "sync", e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(err(path, "remove", e)),
        }
    }

    /// The account file for a CA.
    pub fn account_path(&self, directory_url: &str) -> PathBuf {
        let digest = openssl::sha::sha256(directory_url.as_bytes());
        let dir = self.accounts.clone().unwrap_or_else(|| self.dir.join("accounts"));
        dir.join(format!("{}.json", hex::encode(&digest[..8])))
    }

    /// The stored account for a CA (its JSON, with the private key).
    pub fn account(&self, directory_url: &str) -> Result<Option<StoredAccount>, AcmeError> {
        let path = self.account_path(directory_url);
        let stored: Option<StoredAccount> = self.read_json(&path)?;
        Ok(stored.filter(|a| a.directory_url == directory_url))
    }

    /// Stores the account (`0600`).
    pub fn save_account(&self, account: &StoredAccount) -> Result<PathBuf, AcmeError> {
        let path = self.account_path(&account.directory_url);
        if let Some(parent) = path.parent() {
            create_private_dir(parent, true).map_err(|(p, e)| err(&p, "create the directory", e))?;
        }
        self.write_json(&path, account)?;
        Ok(path)
    }

    /// Moves the account file for a CA aside (`<name>.json.replaced-<stamp>`, never over another
    /// one) and returns where it is kept.
    pub fn retire_account(&self, directory_url: &str, now: i64) -> Result<PathBuf, AcmeError> {
        let path = self.account_path(directory_url);
        let parent = path.parent().unwrap_or(&self.dir).to_owned();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stamp = utc_stamp(now);
        let kept = (0..1000)
            .map(|n| {
                let suffix = if n == 0 { String::new() } else { format!("-{n}") };
                parent.join(format!("{name}.replaced-{stamp}{suffix}"))
            })
            .find(|p| !p.exists())
            .ok_or_else(|| err(&path, "keep the old account", "all names taken"))?;
        fs::rename(&path, &kept).map_err(|e| err(&path, "rename", e))?;
        fsync_dir(&parent).map_err(|e| err(&parent, "sync", e))?;
        Ok(kept)
    }

    /// The pending order, if any.
    pub fn pending(&self) -> Result<Option<PendingState>, AcmeError> {
        self.read_json(&self.file("pending.json"))
    }

    /// Saves the pending order.
    pub fn save_pending(&self, pending: &PendingState) -> Result<(), AcmeError> {
        self.write_json(&self.file("pending.json"), pending)
    }

    /// Forgets the pending order and its key.
    pub fn clear_pending(&self) -> Result<(), AcmeError> {
        self.remove(&self.file("pending.json"))?;
        self.remove(&self.file("pending-key.pem"))
    }

    /// Stores the key of the CSR about to be sent (`0600`, written before the CA sees the CSR).
    pub fn save_pending_key(&self, key_pem: &[u8]) -> Result<(), AcmeError> {
        let path = self.file("pending-key.pem");
        write_atomic(&path, key_pem, 0o600).map_err(|e| fs_err(&path, e))
    }

    /// The key of the CSR sent for the pending order.
    pub fn pending_key(&self) -> Result<Zeroizing<Vec<u8>>, AcmeError> {
        let path = self.file("pending-key.pem");
        crate::fs::read_bounded(&path, STATE_FILE)
            .map_err(|e| AcmeError::State { path: path.clone(), reason: super::client::read_error(e) })
    }

    /// The order limits.
    pub fn limits(&self) -> Result<Limits, AcmeError> {
        Ok(self.read_json(&self.file("limits.json"))?.unwrap_or_default())
    }

    /// Saves the order limits.
    pub fn save_limits(&self, limits: &Limits) -> Result<(), AcmeError> {
        self.write_json(&self.file("limits.json"), limits)
    }

    /// The scheduled re-check, if one was recorded.
    pub fn retry(&self) -> Result<Option<RetryRecord>, AcmeError> {
        self.read_json(&self.file("retry.json"))
    }

    /// Records the scheduled re-check.
    pub fn save_retry(&self, record: &RetryRecord) -> Result<(), AcmeError> {
        self.write_json(&self.file("retry.json"), record)
    }

    /// Forgets the scheduled re-check.
    pub fn clear_retry(&self) -> Result<(), AcmeError> {
        self.remove(&self.file("retry.json"))
    }

    /// Appends an event to `history.jsonl` (created `0600`).
    pub fn log(&self, event: &HistoryEvent) -> Result<(), AcmeError> {
        let path = self.file("history.jsonl");
        let mut line = serde_json::to_vec(event).map_err(|e| err(&path, "encode", e))?;
        line.push(b'\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            // A link planted where the history goes is never followed.
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| err(&path, "open", e))?;
        file.write_all(&line).and_then(|()| file.sync_data()).map_err(|e| err(&path, "append to", e))
    }

    /// Every event of `history.jsonl` (lines that do not parse are skipped).
    pub fn history(&self) -> Vec<HistoryEvent> {
        // Never truncated, so it may outgrow a state file: the bound is generous (64 state files).
        let bytes = crate::fs::read_bounded(&self.file("history.jsonl"), 64 * STATE_FILE).unwrap_or_default();
        String::from_utf8_lossy(&bytes).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// Every issued certificate's directory and record (`issued/*/order.json`); directories
    /// whose record cannot be read are skipped.
    pub fn issued(&self) -> Vec<(PathBuf, IssuedRecord)> {
        let Ok(entries) = fs::read_dir(self.file("issued")) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| {
                let dir = entry.ok()?.path();
                let record = self.read_json::<IssuedRecord>(&dir.join("order.json")).ok()??;
                Some((dir, record))
            })
            .collect()
    }

    /// Prunes `issued/`: a certificate (its directory, with its key) goes only when it is beyond
    /// the newest `keep` AND was issued more than `max_age` seconds before `now`; the newest one
    /// and any whose SHA-256 fingerprint is in `installed` (what a service holds now) are never
    /// pruned. Directories whose record cannot be read are left alone. Returns what was removed,
    /// and what could not be.
    pub fn prune_issued(
        &self,
        keep: u32,
        max_age: i64,
        now: i64,
        installed: &[String],
    ) -> (Vec<PathBuf>, Vec<String>) {
        let mut issued = self.issued();
        // Newest first (the directory name, a time stamp, breaks ties).
        issued.sort_by(|a, b| b.1.issued_at.cmp(&a.1.issued_at).then_with(|| b.0.cmp(&a.0)));
        let mut removed = Vec::new();
        let mut problems = Vec::new();
        for (index, (dir, record)) in issued.iter().enumerate() {
            let old = now.saturating_sub(record.issued_at) > max_age;
            let held = installed.iter().any(|f| f.eq_ignore_ascii_case(&record.sha256_fingerprint));
            if index == 0 || index < keep as usize || !old || held {
                continue;
            }
            match fs::remove_dir_all(dir) {
                Ok(()) => removed.push(dir.clone()),
                Err(e) => problems.push(format!("cannot remove {}: {e}", dir.display())),
            }
        }
        if !removed.is_empty() {
            let _ = fsync_dir(&self.file("issued"));
        }
        (removed, problems)
    }

    /// Keeps an issued certificate under `issued/<stamp>-<n>/`; never overwrites one.
    pub fn store_issued(
        &self,
        material: &Material,
        record: &IssuedRecord,
        now: i64,
    ) -> Result<PathBuf, AcmeError> {
        let issued = self.file("issued");
        create_private_dir(&issued, true).map_err(|(p, e)| err(&p, "create the directory", e))?;
        let stamp = utc_stamp(now);
        let dir = (0..1000)
            .map(|n| issued.join(format!("{stamp}-{n}")))
            .find(|d| fs::DirBuilder::new().create(d).is_ok())
            .ok_or_else(|| err(&issued, "create a directory for the certificate", "all names taken"))?;
        fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| err(&dir, "chmod", e))?;
        write_atomic(&dir.join("key.pem"), &material.key_pem, 0o600)
            .map_err(|e| fs_err(&dir.join("key.pem"), e))?;
        write_atomic(&dir.join("certificate.pem"), &material.certificate_pem, 0o644)
            .map_err(|e| fs_err(&dir.join("certificate.pem"), e))?;
        write_atomic(&dir.join("chain.pem"), &material.chain_pem, 0o644)
            .map_err(|e| fs_err(&dir.join("chain.pem"), e))?;
        self.write_json(&dir.join("order.json"), record)?;
        fsync_dir(&issued).map_err(|e| err(&issued, "sync", e))?;
        Ok(dir)
    }
}

/// The account file's content.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StoredAccount {
    pub directory_url: String,
    /// The account URL (`kid`).
    pub account_url: String,
    pub created: i64,
    #[serde(default)]
    pub email: Option<String>,
    /// instant-acme's credentials: the account URL and the PKCS#8 key (base64url).
    pub credentials: instant_acme::AccountCredentials,
}

impl std::fmt::Debug for StoredAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAccount")
            .field("directory_url", &self.directory_url)
            .field("account_url", &self.account_url)
            .field("credentials", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::test_support::mode_of;

    const NOW: i64 = 1_750_000_000;

    fn names() -> Vec<String> {
        vec!["host.example.com".to_string()]
    }

    #[test]
    fn backoff_doubles_from_an_hour_up_to_a_day_and_ends_on_success() {
        let mut limits = Limits::default();
        assert_eq!(limits.blocked(&names(), "s", NOW, 3), None);
        let mut expected = Vec::new();
        for _ in 0..7 {
            limits.failed("boom", "s", NOW);
            expected.push(limits.backoff_until.expect("until") - NOW);
        }
        assert_eq!(expected, vec![3600, 7200, 14_400, 28_800, 57_600, 86_400, 86_400]);
        let blocked = limits.blocked(&names(), "s", NOW + 10, 3).expect("blocked");
        assert!(matches!(blocked, Blocked::Backoff { failures: 7, .. }), "{blocked:?}");
        assert!(blocked.to_string().contains("the last failure: boom"), "{blocked}");
        assert_eq!(limits.blocked(&names(), "s", NOW + 86_400, 3), None);
        // Another setup (the admin changed the configuration) is not held back...
        assert_eq!(limits.blocked(&names(), "t", NOW + 10, 3), None);
        // ...and its first failure backs off for an hour again.
        limits.failed("boom", "t", NOW);
        assert_eq!(limits.backoff_until, Some(NOW + 3600));
        limits.succeeded();
        assert_eq!(limits.blocked(&names(), "t", NOW + 1, 3), None);
    }

    #[test]
    fn connection_failures_back_off_briefly_with_jitter_and_grow() {
        let mut limits = Limits::default();
        let mut delays = Vec::new();
        for _ in 0..7 {
            limits.unreachable("refused", "s", NOW, 0);
            delays.push(limits.backoff_until.expect("until") - NOW);
        }
        assert_eq!(delays, vec![300, 900, 3600, 14_400, 43_200, 43_200, 43_200]);
        // The jitter lengthens by at most 20 %, and never more.
        let mut limits = Limits::default();
        limits.unreachable("refused", "s", NOW, 20);
        assert_eq!(limits.backoff_until, Some(NOW + 360));
        let mut limits = Limits::default();
        limits.unreachable("refused", "s", NOW, 200);
        assert_eq!(limits.backoff_until, Some(NOW + 360));
        for _ in 0..50 {
            assert!(jitter() <= 20);
        }
        // A CA problem document after connection failures keeps its own rule (an hour, doubling).
        let mut limits = Limits::default();
        limits.unreachable("refused", "s", NOW, 0);
        limits.failed("rejectedIdentifier", "s", NOW);
        assert_eq!(limits.backoff_until, Some(NOW + 7200));
        limits.succeeded();
        assert_eq!(limits.blocked(&names(), "s", NOW, 3), None);
    }

    #[test]
    fn the_cas_retry_after_makes_the_back_off_at_least_that_long() {
        let mut limits = Limits::default();
        limits.failed("rateLimited", "s", NOW);
        limits.ca_asked(NOW + 7200);
        assert_eq!(limits.backoff_until, Some(NOW + 7200));
        let blocked = limits.blocked(&names(), "s", NOW + 10, 3).expect("blocked");
        assert!(matches!(blocked, Blocked::Backoff { until, ca_asked: true, .. } if until == NOW + 7200));
        assert!(
            blocked.to_string().contains("(back-off, as the certificate authority asked with Retry-After)"),
            "{blocked}"
        );
        // Shorter than the back-off: the back-off stands, and it is not the CA's time.
        limits.failed("rateLimited", "s", NOW);
        limits.ca_asked(NOW + 60);
        assert_eq!(limits.backoff_until, Some(NOW + 7200), "the second failure's back-off: two hours");
        let blocked = limits.blocked(&names(), "s", NOW + 10, 3).expect("blocked");
        assert!(matches!(blocked, Blocked::Backoff { ca_asked: false, .. }), "{blocked:?}");
        // A failure without Retry-After forgets the CA's time; a success ends it all.
        limits.failed("boom", "s", NOW);
        assert_eq!(limits.ca_retry_after, None);
        limits.ca_asked(NOW + 99_999);
        let text = serde_json::to_string(&limits).expect("json");
        assert!(text.contains(&format!("\"ca-retry-after\":{}", NOW + 99_999)), "{text}");
        limits.succeeded();
        assert_eq!((limits.backoff_until, limits.ca_retry_after), (None, None));
    }

    #[test]
    fn daily_cap_counts_orders_for_the_same_names_in_the_last_24_hours() {
        let mut limits = Limits::default();
        limits.opened("https://ca/o/1", &names(), NOW);
        limits.opened("https://ca/o/2", &names(), NOW + 100);
        assert_eq!(limits.blocked(&names(), "s", NOW + 200, 3), None);
        let blocked = limits.blocked(&names(), "s", NOW + 200, 2).expect("capped");
        assert_eq!(blocked, Blocked::DailyCap { until: NOW + DAY_SECS, max: 2 });
        // The cap holds whatever the setup.
        assert_eq!(limits.blocked(&names(), "t", NOW + 200, 2), Some(blocked));
        // Other names are not capped by these orders.
        assert_eq!(limits.blocked(&["other.example.com".to_string()], "s", NOW + 200, 2), None);
        // A day later the first order has left the window.
        assert_eq!(limits.blocked(&names(), "s", NOW + DAY_SECS + 1, 2), None);
        // Old entries are dropped when a new order is recorded.
        limits.opened("https://ca/o/3", &names(), NOW + 2 * DAY_SECS);
        assert_eq!(limits.orders.len(), 1);
    }

    #[test]
    fn files_are_private_atomic_and_history_appends() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(tmp.path()).expect("open");
        assert_eq!(mode_of(state.path()), 0o700);
        assert_eq!(state.pending().expect("read"), None);
        let pending = PendingState {
            directory_url: "https://ca/dir".into(),
            account: "https://ca/acct/1".into(),
            url: "https://ca/order/1".into(),
            created: NOW,
            names: names(),
            status: "pending".into(),
            checked: NOW,
            key_sent: false,
            artifacts: vec![Artifact::DnsRecord { domain: "host.example.com".into(), value: "v".into() }],
            replaces: Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE".into()),
            retry_after: Some(NOW + 7200),
        };
        state.save_pending(&pending).expect("save");
        assert_eq!(mode_of(&state.path().join("pending.json")), 0o600);
        assert_eq!(state.pending().expect("read"), Some(pending));
        state.save_pending_key(b"-----BEGIN PRIVATE KEY-----\n").expect("key");
        assert_eq!(mode_of(&state.path().join("pending-key.pem")), 0o600);
        state.clear_pending().expect("clear");
        assert_eq!(state.pending().expect("read"), None);
        assert!(!state.path().join("pending-key.pem").exists());

        state.log(&HistoryEvent::new("order-opened", NOW)).expect("log");
        state.log(&HistoryEvent::new("issued", NOW + 1)).expect("log");
        let events: Vec<String> = state.history().into_iter().map(|e| e.event).collect();
        assert_eq!(events, vec!["order-opened", "issued"]);
        assert_eq!(mode_of(&state.path().join("history.jsonl")), 0o600);

        std::fs::write(state.path().join("limits.json"), "{ not json").expect("write");
        let e = state.limits().expect_err("bad json");
        assert!(e.to_string().contains("limits.json"), "{e}");
    }

    #[test]
    fn issued_certificates_are_pruned_beyond_the_newest_n_and_the_age_never_the_installed_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(tmp.path()).expect("open");
        let material = crate::actions::test_support::material("host.example.com");
        const DAY: i64 = 86_400;
        // Eight certificates, one a week, the oldest first: 49, 42, ... 0 days old.
        let dirs: Vec<PathBuf> = (0..8)
            .map(|i| {
                let at = NOW - (7 - i) * 7 * DAY;
                let record = IssuedRecord {
                    directory_url: "https://ca/dir".into(),
                    account: "https://ca/acct/1".into(),
                    order_url: format!("https://ca/order/{i}"),
                    names: names(),
                    issued_at: at,
                    not_after: at + 90 * DAY,
                    sha256_fingerprint: format!("{i:02}"),
                    accepted: true,
                    rejected_because: None,
                    replaces: None,
                };
                state.store_issued(&material, &record, at).expect("store")
            })
            .collect();
        // Keep 3, and everything younger than 30 days: 49, 42 and 35 days old may go, except
        // the one a service holds (fingerprint "01", 42 days old).
        let (removed, problems) = state.prune_issued(3, 30 * DAY, NOW, &["01".to_string()]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut removed = removed;
        removed.sort();
        assert_eq!(removed, vec![dirs[0].clone(), dirs[2].clone()]);
        assert!(!dirs[0].exists() && !dirs[0].join("key.pem").exists(), "the key goes with it");
        assert!(dirs[1].exists(), "the installed one stays");
        assert_eq!(state.issued().len(), 6);
        // Old but within the newest N: kept. Beyond N but young: kept.
        let (removed, _) = state.prune_issued(8, 0, NOW + 1000 * DAY, &[]);
        assert!(removed.is_empty());
        let (removed, _) = state.prune_issued(1, 1000 * DAY, NOW, &[]);
        assert!(removed.is_empty());
        // Everything old and keep = 1: all but the newest (and the installed one) go.
        let (removed, _) = state.prune_issued(1, 0, NOW + DAY, &["01".to_string()]);
        assert_eq!(removed.len(), 4);
        let left: Vec<PathBuf> = state.issued().into_iter().map(|(d, _)| d).collect();
        assert_eq!(left.len(), 2);
        assert!(left.contains(&dirs[7]) && left.contains(&dirs[1]), "{left:?}");
    }

    #[test]
    fn reads_are_bounded_and_never_block_on_a_fifo() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(tmp.path()).expect("open");
        state.log(&HistoryEvent::new("issued", NOW)).expect("log");
        assert_eq!(state.history().len(), 1);
        // A FIFO where the history was: an unbounded read_to_string would block here forever.
        let history = state.path().join("history.jsonl");
        std::fs::remove_file(&history).expect("rm");
        assert!(std::process::Command::new("mkfifo").arg(&history).status().expect("mkfifo").success());
        assert!(state.history().is_empty());
        // A state file larger than the limit is refused, not read.
        let limits = state.path().join("limits.json");
        let file = std::fs::File::create(&limits).expect("create");
        file.set_len(STATE_FILE + 1).expect("grow");
        let e = state.limits().expect_err("too large");
        assert!(e.to_string().contains("too large"), "{e}");
        // Writes go through the file layer: a link planted where a state file goes is replaced,
        // never written through.
        let outside = tmp.path().join("outside");
        std::fs::write(&outside, "keep").expect("outside");
        std::fs::remove_file(&limits).expect("rm");
        std::os::unix::fs::symlink(&outside, &limits).expect("symlink");
        state.save_limits(&Limits::default()).expect("save");
        assert_eq!(std::fs::read_to_string(&outside).expect("read"), "keep");
        assert!(!std::fs::symlink_metadata(&limits).expect("meta").file_type().is_symlink());
        assert_eq!(mode_of(&limits), 0o600);
    }

    #[test]
    fn issued_certificates_are_never_overwritten() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(tmp.path()).expect("open");
        let material = crate::actions::test_support::material("host.example.com");
        let record = IssuedRecord {
            directory_url: "https://ca/dir".into(),
            account: "https://ca/acct/1".into(),
            order_url: "https://ca/order/1".into(),
            names: names(),
            issued_at: NOW,
            not_after: NOW + 90 * 86_400,
            sha256_fingerprint: "00".into(),
            accepted: true,
            rejected_because: None,
            replaces: None,
        };
        assert!(state.issued().is_empty());
        let first = state.store_issued(&material, &record, NOW).expect("store");
        let second = state.store_issued(&material, &record, NOW).expect("store again");
        assert_ne!(first, second);
        assert!(first.ends_with("20250615T150640Z-0"), "{}", first.display());
        assert_eq!(mode_of(&first.join("key.pem")), 0o600);
        assert_eq!(mode_of(&first.join("certificate.pem")), 0o644);
        assert_eq!(std::fs::read(first.join("certificate.pem")).expect("read"), material.certificate_pem);
        let mut listed = state.issued();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(listed, vec![(first, record.clone()), (second, record)]);
    }
}
