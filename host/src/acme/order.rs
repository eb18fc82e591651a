//! One order, from account to certificate (RFC 8555 §7), resumable.
//!
//! [`drive`] loads (or creates) the account, resumes the pending order or opens a new one,
//! answers the challenges of the authorisations still pending, finalises with a CSR made by
//! OpenSSL, and downloads the certificate — or stops, leaving the order pending, when the CA has
//! not finished within `pending-wait-seconds` or the challenge cannot be answered right now
//! (e.g. the HTTP-01 port is taken). While the CA processes, the order is looked at again after
//! a short pause that grows, or when the CA's `Retry-After` says (RFC 8555 §7.4; at least a
//! second, and one past the wait leaves the order pending at once). Every step that matters is
//! written to the state directory as it happens: the order URL right after the CA created it,
//! the CSR's key before the CSR is sent, so a run killed at any point is resumed by the next one
//! without a new order.
//!
//! `badNonce` answers (RFC 8555 §6.5; Pebble sends them on purpose) are retried: instant-acme
//! retries each request three times, and every call here is retried [`NONCE_RETRIES`] more
//! times, which is safe because a `badNonce` request was not processed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeStatus, ChallengeType, ExternalAccountKey, Identifier, NewAccount,
    NewOrder, Order, OrderStatus,
};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509NameBuilder, X509ReqBuilder};
use zeroize::Zeroizing;

use super::challenge::{self, Standalone};
use super::client::ReqwestHttp;
use super::errors::{AcmeError, ProblemDocument, SubProblem, from_acme, is_bad_nonce};
use super::replaces::Replaced;
use super::state::{Artifact, HistoryEvent, PendingState, StateDir, StoredAccount};
use crate::actions::placeholder::Material;
use crate::config::TrustConfig;
use crate::config::acme::{AcmeConfig, ChallengeConfig, EabConfig};
use crate::config::types::KeyAlgorithm;
use crate::facts::model::ChainStatus;
use crate::plan::model::{Level, Notice};

/// Extra attempts of a call the CA answered with `badNonce`.
pub const NONCE_RETRIES: u32 = 8;
/// The first pause between two looks at an order, after each change of its status; it grows
/// by half at every look.
const FIRST_POLL: Duration = Duration::from_millis(100);
/// The longest pause between two looks.
const MAX_POLL: Duration = Duration::from_secs(3);

/// Repeats an instant-acme call while the CA answers `badNonce`.
macro_rules! nonce_retry {
    ($call:expr) => {{
        let mut attempt = 0u32;
        loop {
            match $call {
                Err(e) if is_bad_nonce(&e) && attempt < NONCE_RETRIES => attempt += 1,
                other => break other,
            }
        }
    }};
}

/// What one order needs.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub acme: &'a AcmeConfig,
    /// The names ordered (lower case, hostname first).
    pub names: &'a [String],
    pub state: &'a StateDir,
    pub now: i64,
    /// The certificate a new order replaces (RFC 9773 `replaces`; see [`super::replaces`]).
    pub replaces: Option<&'a Replaced>,
    /// The HTTP client of every request to the CA; it keeps the CA's last `Retry-After`.
    pub http: ReqwestHttp,
    /// Messages for the admin from the order (filled in by [`drive`]).
    pub notices: Mutex<Vec<Notice>>,
}

impl Ctx<'_> {
    fn notice(&self, level: Level, message: String) {
        if let Ok(mut notices) = self.notices.lock() {
            notices.push(Notice { level, service: None, message });
        }
    }
}

/// How far the order got in this run.
#[derive(Debug)]
pub enum Progress {
    /// The CA issued the certificate.
    Issued {
        /// The PEM chain as the CA sent it (leaf first).
        chain_pem: String,
        /// The CSR's private key.
        key_pem: Zeroizing<Vec<u8>>,
        order_url: String,
        account: String,
        resumed: bool,
    },
    /// The order is still being processed; it is saved in the state directory.
    Pending { order_url: String, status: String, reason: String, resumed: bool },
}

/// The ACME word for an order status.
pub fn status_word(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "pending",
        OrderStatus::Ready => "ready",
        OrderStatus::Processing => "processing",
        OrderStatus::Valid => "valid",
        OrderStatus::Invalid => "invalid",
    }
}

/// How long a run that answers HTTP-01 itself (the standalone responder) keeps answering while
/// the order waits for the CA's validation, past `acme.pending-wait-seconds`: the responder lives
/// only as long as the run, and a CA that validates after it is gone finds a closed port and
/// fails the order.
pub const STANDALONE_MAX_WAIT: Duration = Duration::from_secs(300);

/// Runs the order as far as it goes in this run (see the module documentation).
///
/// With the standalone HTTP-01 responder, a resumed order that went invalid (the CA validated
/// while no run was answering) is our side's failure, not the CA's verdict on the names: a new
/// order is opened at once, once, in this run — with the responder up while it is validated.
pub async fn drive(ctx: &Ctx<'_>, pending: Option<PendingState>) -> Result<Progress, AcmeError> {
    let standalone = matches!(ctx.acme.challenge, ChallengeConfig::Http01Standalone { .. });
    let resumed = pending.is_some();
    match drive_once(ctx, pending).await {
        Err(AcmeError::OrderInvalid { url, problem }) if resumed && standalone => {
            ctx.state.clear_pending()?;
            let mut event = HistoryEvent::new("order-reopened", ctx.now);
            event.order_url = Some(url.clone());
            event.detail = Some(
                "the resumed order had gone invalid while no run answered its HTTP-01 challenge".to_string(),
            );
            event.problem = Some(problem);
            let _ = ctx.state.log(&event);
            ctx.notice(
                Level::Info,
                format!(
                    "The pending order {url} had gone invalid while no run was answering its HTTP-01 challenge \
                     (the built-in responder lives only as long as a run); a new order was opened at once."
                ),
            );
            drive_once(ctx, None).await
        }
        other => other,
    }
}

async fn drive_once(ctx: &Ctx<'_>, pending: Option<PendingState>) -> Result<Progress, AcmeError> {
    let dir = ctx.acme.directory_url.as_str();
    let (mut account, mut account_url, fresh) = account(ctx, ctx.http.clone()).await?;

    let mut resumed = pending.is_some();
    let (mut order, mut record) = match open_or_resume(ctx, &account, &account_url, pending.clone()).await {
        // The CA no longer knows the stored account (a CA that forgot it, or deactivated it):
        // a new account, and the order goes on in this run.
        Err(error) if !fresh && account_lost(&error) => {
            (account, account_url) = replace_account(ctx, &error).await?;
            if let Some(old) = pending {
                // The old account's order is not this account's to resume.
                for w in challenge::cleanup(&old.artifacts, &ctx.acme.challenge) {
                    ctx.notice(Level::Warning, w);
                }
                ctx.state.clear_pending()?;
                let mut event = HistoryEvent::new("order-abandoned", ctx.now);
                event.order_url = Some(old.url.clone());
                event.detail =
                    Some("it belonged to the account the certificate authority no longer knows".into());
                let _ = ctx.state.log(&event);
                resumed = false;
            }
            open_or_resume(ctx, &account, &account_url, None).await?
        }
        other => other?,
    };

    let mut started = Instant::now();
    let mut poll = FIRST_POLL;
    let mut responder: Option<Standalone> = None;
    let mut challenges_started = false;
    let outcome = loop {
        let status = order.state().status;
        if record.status != status_word(status) {
            poll = FIRST_POLL;
            record.status = status_word(status).to_owned();
            record.checked = super::unix_now();
            ctx.state.save_pending(&record)?;
        }
        let pending = |record: &PendingState, reason: String| Progress::Pending {
            order_url: record.url.clone(),
            status: record.status.clone(),
            reason,
            resumed,
        };
        match status {
            OrderStatus::Pending | OrderStatus::Processing => {
                // A new order, or a resumed one whose challenges the CA may still be validating
                // (the responder of the run that started them died with it): serve them now.
                if !challenges_started && !record.key_sent {
                    challenges_started = true;
                    match start_challenges(ctx, &mut order, &mut record).await {
                        Ok(Started::Serving(server)) => responder = server,
                        Ok(Started::Blocked(reason)) => break Ok(pending(&record, reason)),
                        Err(e) => break Err(e),
                    }
                }
                // While our own responder answers a challenge the CA has not validated yet, leaving
                // would fail the order: wait longer then (bounded).
                // (Before the CSR is sent, the order is waiting on its challenges; Pebble calls that
                // `processing` while its validator works.)
                let deadline = if responder.is_some() && !record.key_sent {
                    started + ctx.acme.pending_wait.max(STANDALONE_MAX_WAIT)
                } else {
                    started + ctx.acme.pending_wait
                };
                if Instant::now() >= deadline {
                    break Ok(pending(
                        &record,
                        format!(
                            "the certificate authority had not finished within {} s (acme.pending-wait-seconds)",
                            ctx.acme.pending_wait.as_secs()
                        ),
                    ));
                }
                let remaining = deadline.saturating_duration_since(Instant::now());
                // The CA's Retry-After on its last answer (the order, the finalization or a
                // challenge; RFC 8555 §7.4, §7.5.1) sets the next look: at least a second, and
                // a time past the wait leaves the order pending for the next run now.
                let pause = match ctx.http.take_retry_after() {
                    Some((at, instant)) => {
                        let asked =
                            instant.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
                        if asked > remaining {
                            break Ok(pending(
                                &record,
                                format!(
                                    "the certificate authority asked to look at the order again at {} (Retry-After), \
                                     after the {} s this run waits (acme.pending-wait-seconds)",
                                    crate::time::utc_seconds(at.max(super::unix_now() + 1)),
                                    ctx.acme.pending_wait.as_secs()
                                ),
                            ));
                        }
                        asked
                    }
                    None => {
                        let pause = poll.min(remaining);
                        poll = (poll * 3 / 2).min(MAX_POLL);
                        pause
                    }
                };
                tokio::time::sleep(pause).await;
                if let Err(e) = nonce_retry!(order.refresh().await.map(|_| ())) {
                    break Err(from_acme("check the order", dir, e));
                }
            }
            OrderStatus::Ready => {
                let (key_pem, csr) = make_csr(ctx.names, ctx.acme.key)?;
                ctx.state.save_pending_key(&key_pem)?;
                record.key_sent = true;
                // The wait for the certificate starts now (the validation may have taken longer
                // than acme.pending-wait-seconds while the standalone responder answered).
                started = Instant::now();
                ctx.state.save_pending(&record)?;
                if let Err(e) = nonce_retry!(order.finalize_csr(&csr).await) {
                    break Err(from_acme("finalize the order", dir, e));
                }
            }
            OrderStatus::Valid => {
                let chain = match nonce_retry!(order.certificate().await) {
                    Ok(Some(chain)) => chain,
                    Ok(None) => continue,
                    Err(e) => break Err(from_acme("download the certificate", dir, e)),
                };
                if !record.key_sent {
                    break Err(AcmeError::State {
                        path: ctx.state.path().join("pending-key.pem"),
                        reason: "the order is valid but this host never sent its CSR (the key is unknown)"
                            .into(),
                    });
                }
                let key_pem = ctx.state.pending_key()?;
                break Ok(Progress::Issued {
                    chain_pem: chain,
                    key_pem,
                    order_url: record.url.clone(),
                    account: account_url.clone(),
                    resumed,
                });
            }
            OrderStatus::Invalid => {
                let problem = invalid_problem(&mut order).await;
                break Err(AcmeError::OrderInvalid { url: record.url.clone(), problem });
            }
        }
    };
    if let Some(server) = responder {
        server.stop().await;
    }
    outcome
}

/// Whether the CA's refusal says the account is gone: `accountDoesNotExist` (a CA that forgot
/// it, e.g. Pebble restarted), or `unauthorized` about the account (a deactivated one: "Account
/// is not valid, has status deactivated"). An `unauthorized` about anything else (a name, a
/// policy) is not: a new account would not change it, and every run would register another.
pub fn account_lost(error: &AcmeError) -> bool {
    let AcmeError::Refused { problem, .. } = error else {
        return false;
    };
    match problem.acme_error() {
        Some("accountDoesNotExist") => true,
        Some("unauthorized") => {
            problem.detail.as_deref().is_some_and(|d| d.to_ascii_lowercase().contains("account"))
        }
        _ => false,
    }
}

/// Fetches the pending order, or opens a new one and records it (pending.json, the daily cap,
/// the history).
async fn open_or_resume(
    ctx: &Ctx<'_>,
    account: &Account,
    account_url: &str,
    pending: Option<PendingState>,
) -> Result<(Order, PendingState), AcmeError> {
    let dir = ctx.acme.directory_url.as_str();
    match pending {
        Some(record) => {
            let order = nonce_retry!(account.order(record.url.clone()).await)
                .map_err(|e| from_acme("fetch the pending order", dir, e))?;
            let mut event = HistoryEvent::new("order-resumed", ctx.now);
            event.order_url = Some(record.url.clone());
            event.names = record.names.clone();
            ctx.state.log(&event)?;
            Ok((order, record))
        }
        None => {
            let (mut order, replaces) = new_order(ctx, account, account_url).await?;
            let record = PendingState {
                directory_url: dir.to_owned(),
                account: account_url.to_owned(),
                url: order.url().to_owned(),
                created: ctx.now,
                names: ctx.names.to_vec(),
                status: status_word(order.state().status).to_owned(),
                checked: ctx.now,
                key_sent: false,
                artifacts: Vec::new(),
                replaces: replaces.map(|r| r.id.clone()),
                retry_after: None,
            };
            ctx.state.save_pending(&record)?;
            let mut limits = ctx.state.limits()?;
            limits.opened(&record.url, ctx.names, ctx.now);
            ctx.state.save_limits(&limits)?;
            let mut event = HistoryEvent::new("order-opened", ctx.now);
            event.directory_url = Some(dir.to_owned());
            event.account = Some(account_url.to_owned());
            event.order_url = Some(record.url.clone());
            event.names = ctx.names.to_vec();
            event.replaces = record.replaces.clone();
            ctx.state.log(&event)?;
            if let Some(replaced) = replaces {
                ctx.notice(
                    Level::Info,
                    format!(
                        "The order {} replaces the certificate {} (RFC 9773 `replaces`): {}.",
                        record.url, replaced.id, replaced.why
                    ),
                );
            }
            Ok((order, record))
        }
    }
}

/// Opens a new order for the names, naming the certificate it replaces when there is one
/// ([`Ctx::replaces`]). If the CA answers that order with a refusal (e.g. `alreadyReplaced`, an
/// identifier it does not know) or with an answer instant-acme does not accept (one that does
/// not echo `replaces`), the same order is opened once more without `replaces`, and the refusal
/// is recorded (history event `replaces-refused`, an info notice): ARI never stops the
/// certificate work. Returns the order and the certificate it replaces, as the CA accepted it.
async fn new_order<'a>(
    ctx: &Ctx<'a>,
    account: &Account,
    account_url: &str,
) -> Result<(Order, Option<&'a Replaced>), AcmeError> {
    let dir = ctx.acme.directory_url.as_str();
    let identifiers: Vec<Identifier> = ctx.names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    if let Some(replaced) = ctx.replaces {
        let request = NewOrder::new(&identifiers).replaces(replaced.identifier());
        match nonce_retry!(account.new_order(&request).await) {
            Ok(order) => return Ok((order, Some(replaced))),
            Err(e) => {
                let error = from_acme("open an order that replaces a certificate", dir, e);
                // A CA that asked to wait (rateLimited, 503 + Retry-After) gets no other order now.
                if !super::replaces::retry_without(&error)
                    || ctx.http.ca_asked_to_wait(&error, super::unix_now()).is_some()
                {
                    return Err(error);
                }
                let mut event = HistoryEvent::new("replaces-refused", ctx.now);
                event.directory_url = Some(dir.to_owned());
                event.account = Some(account_url.to_owned());
                event.names = ctx.names.to_vec();
                event.replaces = Some(replaced.id.clone());
                event.detail = Some(error.to_string());
                event.problem = error.problem().cloned();
                // Not even an unwritable history stops the order over ARI.
                let _ = ctx.state.log(&event);
                ctx.notice(
                    Level::Info,
                    format!(
                        "The certificate authority did not accept an order naming {} as the certificate it \
                         replaces (RFC 9773 `replaces`): {error}. The order is opened again without `replaces`.",
                        replaced.id
                    ),
                );
            }
        }
    }
    let order = nonce_retry!(account.new_order(&NewOrder::new(&identifiers)).await)
        .map_err(|e| from_acme("open an order", dir, e))?;
    Ok((order, None))
}

/// Loads the stored account for the CA, or creates one (with the contact and EAB) and stores it.
/// The flag: whether the account was created now.
async fn account(ctx: &Ctx<'_>, http: ReqwestHttp) -> Result<(Account, String, bool), AcmeError> {
    let dir = &ctx.acme.directory_url;
    if let Some(stored) = ctx.state.account(dir)? {
        let url = stored.account_url.clone();
        let account = Account::builder_with_http(Box::new(http))
            .from_credentials(stored.credentials)
            .await
            .map_err(|e| from_acme("read the directory", dir, e))?;
        return Ok((account, url, false));
    }
    let (account, url) = create_account(ctx, http).await?;
    Ok((account, url, true))
}

/// The stored account is gone at the CA (`why`): its file is kept in the state directory under
/// another name (`accounts/<name>.json.replaced-<stamp>`), the replacement recorded in the
/// history (`account-replaced`), and a new account (new key) is registered.
async fn replace_account(ctx: &Ctx<'_>, why: &AcmeError) -> Result<(Account, String), AcmeError> {
    let dir = &ctx.acme.directory_url;
    let old = ctx.state.account(dir)?.map(|a| a.account_url);
    let kept = ctx.state.retire_account(dir, super::unix_now())?;
    let mut event = HistoryEvent::new("account-replaced", ctx.now);
    event.directory_url = Some(dir.clone());
    event.account = old.clone();
    event.stored = Some(kept.clone());
    event.detail = Some(why.to_string());
    event.problem = why.problem().cloned();
    ctx.state.log(&event)?;
    ctx.notice(
        Level::Warning,
        format!(
            "The certificate authority no longer knows the account {} ({why}); a new account is registered              and the old one is kept in {}.",
            old.as_deref().unwrap_or("(unknown)"),
            kept.display()
        ),
    );
    create_account(ctx, ctx.http.clone()).await
}

/// Registers a new account (with the contact and EAB) and stores it.
async fn create_account(ctx: &Ctx<'_>, http: ReqwestHttp) -> Result<(Account, String), AcmeError> {
    let dir = &ctx.acme.directory_url;
    let eab = ctx.acme.eab.as_ref().map(read_eab).transpose()?;
    let contact = ctx.acme.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let new = NewAccount { contact: &contacts, terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = nonce_retry!(
        Account::builder_with_http(Box::new(http.clone())).create(&new, dir.clone(), eab.as_ref()).await
    )
    .map_err(|e| from_acme("create the account", dir, e))?;
    let url = account.id().to_owned();
    let path = ctx.state.save_account(&StoredAccount {
        directory_url: dir.clone(),
        account_url: url.clone(),
        created: ctx.now,
        email: ctx.acme.email.clone(),
        credentials,
    })?;
    let mut event = HistoryEvent::new("account-created", ctx.now);
    event.directory_url = Some(dir.clone());
    event.account = Some(url.clone());
    event.stored = Some(path);
    ctx.state.log(&event)?;
    Ok((account, url))
}

/// Reads the EAB HMAC key: base64url (padded or not; standard base64 is accepted too).
fn read_eab(eab: &EabConfig) -> Result<ExternalAccountKey, AcmeError> {
    let file = |reason: String| AcmeError::File { key: "eab-hmac-file", path: eab.hmac_file.clone(), reason };
    let bytes = crate::facts::read_bounded(&eab.hmac_file, 64 * 1024)
        .map_err(|e| file(super::client::read_error(e)))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| file("is not text".into()))?.trim();
    let engines = [
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let key =
        engines.iter().find_map(|engine| engine.decode(text).ok()).map(Zeroizing::new).ok_or_else(|| {
            file("does not hold a base64url HMAC key (the value your CA calls the EAB HMAC key)".into())
        })?;
    if key.is_empty() {
        return Err(file("is empty".into()));
    }
    Ok(ExternalAccountKey::new(eab.key_id.clone(), &key))
}

/// What setting up the challenges gave.
enum Started {
    /// Responses are in place; the standalone listener, if that is the challenge.
    Serving(Option<Standalone>),
    /// The challenge cannot be answered now; the order stays pending.
    Blocked(String),
}

/// One challenge to answer.
struct Wanted {
    identifier: String,
    token: String,
    key_authorization: String,
    dns_value: String,
}

fn challenge_type(challenge: &ChallengeConfig) -> ChallengeType {
    match challenge {
        ChallengeConfig::Http01Standalone { .. } | ChallengeConfig::Http01Webroot { .. } => {
            ChallengeType::Http01
        }
        ChallengeConfig::Dns01Hook { .. } => ChallengeType::Dns01,
    }
}

/// Finds the pending authorisations, puts the responses in place, and tells the CA to validate
/// the challenges not yet started.
async fn start_challenges(
    ctx: &Ctx<'_>,
    order: &mut Order,
    record: &mut PendingState,
) -> Result<Started, AcmeError> {
    let dir = ctx.acme.directory_url.as_str();
    let kind = challenge_type(&ctx.acme.challenge);
    let word = ctx.acme.challenge.name();
    let mut attempt = 0;
    let wanted = loop {
        match collect(order, &kind, word).await {
            Err(e) if is_bad_nonce(&e) && attempt < NONCE_RETRIES => attempt += 1,
            Err(e) => return Err(from_acme("fetch the authorizations", dir, e)),
            Ok(result) => break result?,
        }
    };
    if wanted.is_empty() {
        return Ok(Started::Serving(None));
    }

    let mut server = None;
    match &ctx.acme.challenge {
        ChallengeConfig::Http01Standalone { listen } => {
            let responses: HashMap<String, String> =
                wanted.iter().map(|w| (w.token.clone(), w.key_authorization.clone())).collect();
            match Standalone::start(*listen, responses).await {
                Ok(s) => server = Some(s),
                // Another program holds the port right now: try again next run.
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                    return Ok(Started::Blocked(format!(
                        "cannot listen on {listen} for the HTTP-01 challenge ({e}); the order stays pending and \
                         is resumed by the next run"
                    )));
                }
                // Not allowed, no such address...: the configuration must change.
                Err(e) => {
                    return Err(AcmeError::Challenge {
                        challenge: "http-01",
                        name: wanted.iter().map(|w| w.identifier.as_str()).collect::<Vec<_>>().join(", "),
                        reason: format!(
                            "cannot listen on {listen} (acme.listen): {e}; run as root for port 80, or use \
                             challenge = \"webroot\" with the web server that holds port 80"
                        ),
                    });
                }
            }
        }
        ChallengeConfig::Http01Webroot { webroot } => {
            for w in &wanted {
                let artifact = challenge::write_webroot_token(webroot, &w.token, &w.key_authorization)
                    .map_err(|reason| AcmeError::Challenge {
                        challenge: "webroot",
                        name: w.identifier.clone(),
                        reason,
                    })?;
                if !record.artifacts.contains(&artifact) {
                    record.artifacts.push(artifact);
                }
                ctx.state.save_pending(record)?;
            }
        }
        ChallengeConfig::Dns01Hook { hook, propagation, .. } => {
            for w in &wanted {
                let artifact =
                    Artifact::DnsRecord { domain: w.identifier.clone(), value: w.dns_value.clone() };
                if record.artifacts.contains(&artifact) {
                    continue;
                }
                challenge::run_dns_hook(hook, &w.identifier, &w.dns_value, challenge::HOOK_TIMEOUT).map_err(
                    |reason| AcmeError::Challenge { challenge: "dns-01", name: w.identifier.clone(), reason },
                )?;
                record.artifacts.push(artifact);
                ctx.state.save_pending(record)?;
            }
            tokio::time::sleep(*propagation).await;
        }
    }

    // The states are cached from the first pass: no request but the POSTs below.
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| from_acme("fetch the authorizations", dir, e))?;
        if authorization.status != AuthorizationStatus::Pending {
            continue;
        }
        let Some(mut handle) = authorization.challenge(kind.clone()) else { continue };
        if handle.status == ChallengeStatus::Pending {
            nonce_retry!(handle.set_ready().await).map_err(|e| from_acme("start the validation", dir, e))?;
        }
    }
    Ok(Started::Serving(server))
}

/// The challenges of the pending authorisations. The outer error is a request failure (may be
/// a `badNonce`), the inner one an authorisation this tool cannot answer.
async fn collect(
    order: &mut Order,
    kind: &ChallengeType,
    word: &'static str,
) -> Result<Result<Vec<Wanted>, AcmeError>, instant_acme::Error> {
    let mut wanted = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization?;
        let identifier = authorization.identifier().to_string();
        match authorization.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => {
                return Ok(Err(AcmeError::Challenge {
                    challenge: word,
                    name: identifier,
                    reason: format!("the authorization is {other:?}"),
                }));
            }
        }
        let Some(handle) = authorization.challenge(kind.clone()) else {
            return Ok(Err(AcmeError::Challenge {
                challenge: word,
                name: identifier,
                reason: format!(
                    "the certificate authority does not offer the {word} challenge for this name"
                ),
            }));
        };
        let key_authorization = handle.key_authorization();
        wanted.push(Wanted {
            identifier,
            token: handle.token.clone(),
            key_authorization: key_authorization.as_str().to_owned(),
            dns_value: key_authorization.dns_value(),
        });
    }
    Ok(Ok(wanted))
}

/// Why the order is invalid: the order's error, else the first failed challenge's.
async fn invalid_problem(order: &mut Order) -> ProblemDocument {
    if let Some(error) = &order.state().error {
        return error.into();
    }
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        let _ = nonce_retry!(authorization.refresh().await.map(|_| ()));
        let identifier = authorization.identifier().to_string();
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                let mut document: ProblemDocument = problem.into();
                if document.subproblems.is_empty() {
                    document.subproblems.push(SubProblem {
                        identifier: Some(identifier.clone()),
                        kind: problem.r#type.clone(),
                        detail: Some(format!("{:?} challenge failed", challenge.r#type)),
                    });
                }
                return document;
            }
        }
        if authorization.status != AuthorizationStatus::Valid {
            return ProblemDocument {
                detail: Some(format!("the authorization for {identifier} is {:?}", authorization.status)),
                ..ProblemDocument::default()
            };
        }
    }
    ProblemDocument {
        detail: Some("the order became invalid and the certificate authority gave no reason".into()),
        ..ProblemDocument::default()
    }
}

/// A new private key of the configured kind.
pub fn new_key(algorithm: KeyAlgorithm) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    let ec = |nid: Nid| -> Result<PKey<Private>, openssl::error::ErrorStack> {
        let mut group = openssl::ec::EcGroup::from_curve_name(nid)?;
        group.set_asn1_flag(openssl::ec::Asn1Flag::NAMED_CURVE);
        PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)
    };
    match algorithm {
        KeyAlgorithm::EcP256 => ec(Nid::X9_62_PRIME256V1),
        KeyAlgorithm::EcP384 => ec(Nid::SECP384R1),
        KeyAlgorithm::Rsa2048 => PKey::from_rsa(openssl::rsa::Rsa::generate(2048)?),
        KeyAlgorithm::Rsa3072 => PKey::from_rsa(openssl::rsa::Rsa::generate(3072)?),
        KeyAlgorithm::Rsa4096 => PKey::from_rsa(openssl::rsa::Rsa::generate(4096)?),
    }
}

/// A new key (PKCS#8 PEM) and a CSR (DER) for `names`: subject CN = the first name when it
/// fits in 64 bytes, every name in the subjectAltName, SHA-256.
pub fn make_csr(
    names: &[String],
    algorithm: KeyAlgorithm,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), AcmeError> {
    fn ossl(step: &'static str) -> impl Fn(openssl::error::ErrorStack) -> AcmeError {
        move |e| AcmeError::Key(format!("{step}: {e}"))
    }
    let key = new_key(algorithm).map_err(ossl("generate the key"))?;
    let mut req = X509ReqBuilder::new().map_err(ossl("start the CSR"))?;
    let mut subject = X509NameBuilder::new().map_err(ossl("start the subject"))?;
    if let Some(first) = names.first().filter(|n| n.len() <= 64) {
        subject.append_entry_by_nid(Nid::COMMONNAME, first).map_err(ossl("set the common name"))?;
    }
    req.set_subject_name(&subject.build()).map_err(ossl("set the subject"))?;
    let mut san = SubjectAlternativeName::new();
    for name in names {
        san.dns(name);
    }
    let san = san.build(&req.x509v3_context(None)).map_err(ossl("build subjectAltName"))?;
    let mut extensions = Stack::new().map_err(ossl("start the extensions"))?;
    extensions.push(san).map_err(ossl("add subjectAltName"))?;
    req.add_extensions(&extensions).map_err(ossl("add the extensions"))?;
    req.set_pubkey(&key).map_err(ossl("set the public key"))?;
    req.sign(&key, MessageDigest::sha256()).map_err(ossl("sign the CSR"))?;
    let csr = req.build().to_der().map_err(ossl("encode the CSR"))?;
    let key_pem = Zeroizing::new(key.private_key_to_pem_pkcs8().map_err(ossl("encode the key"))?);
    Ok((key_pem, csr))
}

/// The issued chain and its key as [`Material`]: the first certificate is the leaf, the rest
/// the chain.
pub fn material_from(chain_pem: &str, key_pem: Zeroizing<Vec<u8>>) -> Result<Material, String> {
    let certificates = X509::stack_from_pem(chain_pem.as_bytes())
        .map_err(|e| format!("the certificate authority sent no PEM certificate chain: {e}"))?;
    let (leaf, chain) = certificates.split_first().ok_or("the certificate authority sent an empty chain")?;
    let mut chain_pem = Vec::new();
    for certificate in chain {
        chain_pem.extend(certificate.to_pem().map_err(|e| e.to_string())?);
    }
    Ok(Material { certificate_pem: leaf.to_pem().map_err(|e| e.to_string())?, chain_pem, key_pem })
}

/// What the checks found out about an issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedFacts {
    pub not_after: i64,
    pub sha256_fingerprint: String,
}

/// Checks an issued certificate before anything is installed: the key belongs to the leaf,
/// the leaf names exactly-or-more than every name ordered, it is valid now, and its chain
/// verifies against the configured trust (plus `acme.issuer-roots`) for a TLS server.
pub fn verify_issued(
    material: &Material,
    names: &[String],
    trust: &TrustConfig,
    issuer_roots: &[PathBuf],
    now: i64,
) -> Result<IssuedFacts, String> {
    material.verify()?;
    let leaf = X509::from_pem(&material.certificate_pem).map_err(|e| e.to_string())?;
    let der = leaf.to_der().map_err(|e| e.to_string())?;
    let facts = crate::facts::certificate_facts(&leaf, &der);
    let sans: Vec<String> = facts.dns_names.iter().map(|n| n.to_ascii_lowercase()).collect();
    let missing: Vec<&String> = names.iter().filter(|n| !sans.contains(&n.to_ascii_lowercase())).collect();
    if !missing.is_empty() {
        return Err(format!("the certificate does not name {missing:?} (it names {sans:?})"));
    }
    // A few minutes of clock skew between this host and the CA are fine.
    if facts.not_before > now + 300 || facts.not_after <= now {
        return Err(format!(
            "the certificate is not valid now (valid from {} to {})",
            crate::time::utc_seconds(facts.not_before),
            crate::time::utc_seconds(facts.not_after)
        ));
    }
    let chain = if material.chain_pem.is_empty() {
        Vec::new()
    } else {
        X509::stack_from_pem(&material.chain_pem).map_err(|e| e.to_string())?
    };
    let mut trust = trust.clone();
    trust.extra_roots.extend(issuer_roots.iter().cloned());
    let verifier =
        crate::facts::Verifier::new(&trust).map_err(|e| format!("cannot load the trusted roots: {e}"))?;
    match verifier.verify(&leaf, &chain, now) {
        ChainStatus::Trusted => {}
        ChainStatus::Untrusted(why) | ChainStatus::Incomplete(why) => {
            return Err(format!(
                "its chain does not verify ({why}); if this CA's root is not in the system store, add it to \
                 [trust] extra-roots (or acme.issuer-roots)"
            ));
        }
        ChainStatus::NotChecked => return Err("its chain could not be verified".into()),
    }
    Ok(IssuedFacts { not_after: facts.not_after, sha256_fingerprint: facts.sha256_fingerprint })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::x509::X509Req;

    #[test]
    fn only_a_refusal_about_the_account_means_the_account_is_lost() {
        let refused = |kind: &str, detail: &str| AcmeError::Refused {
            step: "open an order",
            problem: ProblemDocument {
                kind: Some(format!("urn:ietf:params:acme:error:{kind}")),
                detail: Some(detail.into()),
                status: Some(400),
                subproblems: Vec::new(),
            },
        };
        assert!(account_lost(&refused("accountDoesNotExist", "unable to find existing account")));
        assert!(account_lost(&refused("unauthorized", "Account is not valid, has status \"deactivated\"")));
        assert!(!account_lost(&refused(
            "unauthorized",
            "Cannot issue for \"a.example\": forbidden by policy"
        )));
        assert!(!account_lost(&refused("rateLimited", "too many accounts")));
        let unreachable = AcmeError::Unreachable { step: "x", url: "u".into(), reason: "refused".into() };
        assert!(!account_lost(&unreachable));
    }

    #[test]
    fn csr_names_every_name_and_matches_its_key() {
        let names = vec!["host.example.com".to_string(), "www.example.com".to_string()];
        for algorithm in [KeyAlgorithm::EcP256, KeyAlgorithm::EcP384, KeyAlgorithm::Rsa2048] {
            let (key_pem, der) = make_csr(&names, algorithm).expect("csr");
            let req = X509Req::from_der(&der).expect("der");
            let key = PKey::private_key_from_pem(&key_pem).expect("key");
            assert!(req.verify(&key).expect("verify"), "{algorithm:?}");
            let text = String::from_utf8(req.to_text().expect("text")).expect("utf8");
            assert!(text.contains("CN = host.example.com") || text.contains("CN=host.example.com"), "{text}");
            assert!(text.contains("DNS:host.example.com, DNS:www.example.com"), "{text}");
            assert!(String::from_utf8_lossy(&key_pem).starts_with("-----BEGIN PRIVATE KEY-----"));
        }
    }

    /// A CA, an intermediate and a leaf for `names`, made with OpenSSL.
    fn issued(names: &[&str], now: i64) -> (Material, tempfile::TempDir) {
        use openssl::asn1::Asn1Time;
        use openssl::x509::extension::BasicConstraints;
        let dir = tempfile::tempdir().expect("tempdir");
        let make = |cn: &str, issuer: Option<(&X509, &PKey<Private>)>, ca: bool, sans: &[&str]| {
            let key = new_key(KeyAlgorithm::EcP256).expect("key");
            let mut name = X509NameBuilder::new().expect("name");
            name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
            let name = name.build();
            let mut b = X509::builder().expect("builder");
            b.set_version(2).expect("v3");
            b.set_subject_name(&name).expect("subject");
            b.set_issuer_name(issuer.map_or(&*name, |(c, _)| c.subject_name())).expect("issuer");
            b.set_pubkey(&key).expect("pubkey");
            b.set_not_before(&Asn1Time::from_unix(now - 3600).expect("t")).expect("nb");
            b.set_not_after(&Asn1Time::from_unix(now + 86_400).expect("t")).expect("na");
            if ca {
                b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc")).expect("bc");
            }
            if !sans.is_empty() {
                let mut san = SubjectAlternativeName::new();
                for s in sans {
                    san.dns(s);
                }
                let ext = san.build(&b.x509v3_context(issuer.map(|(c, _)| &**c), None)).expect("san");
                b.append_extension(ext).expect("san");
            }
            b.sign(issuer.map_or(&key, |(_, k)| k), MessageDigest::sha256()).expect("sign");
            (b.build(), key)
        };
        let (root, root_key) = make("Test Root", None, true, &[]);
        let (inter, inter_key) = make("Test Intermediate", Some((&root, &root_key)), true, &[]);
        let (leaf, leaf_key) = make(names[0], Some((&inter, &inter_key)), false, names);
        std::fs::write(dir.path().join("root.pem"), root.to_pem().expect("pem")).expect("write");
        let chain = [leaf.to_pem().expect("pem"), inter.to_pem().expect("pem")].concat();
        let material = material_from(
            std::str::from_utf8(&chain).expect("utf8"),
            Zeroizing::new(leaf_key.private_key_to_pem_pkcs8().expect("pem")),
        )
        .expect("material");
        (material, dir)
    }

    #[test]
    fn issued_material_is_verified_before_install() {
        let now = 1_750_000_000;
        let names = vec!["host.example.com".to_string(), "www.example.com".to_string()];
        let (material, dir) = issued(&["host.example.com", "www.example.com"], now);
        assert!(!material.chain_pem.is_empty());
        let no_system = TrustConfig { extra_roots: vec![dir.path().join("root.pem")], system_roots: false };
        let facts = verify_issued(&material, &names, &no_system, &[], now).expect("verifies");
        assert!(facts.not_after > now);
        // The root given as an issuer root only works the same.
        let bare = TrustConfig { extra_roots: Vec::new(), system_roots: true };
        verify_issued(&material, &names, &bare, &[dir.path().join("root.pem")], now).expect("issuer root");
        // Without the root: refused, with a hint.
        let e = verify_issued(&material, &names, &bare, &[], now).expect_err("untrusted");
        assert!(e.contains("[trust] extra-roots"), "{e}");
        // A name missing from the certificate.
        let more = vec!["host.example.com".to_string(), "mail.example.com".to_string()];
        let e = verify_issued(&material, &more, &no_system, &[], now).expect_err("names");
        assert!(e.contains("mail.example.com"), "{e}");
        // Not valid any more.
        let e = verify_issued(&material, &names, &no_system, &[], now + 2 * 86_400).expect_err("expired");
        assert!(e.contains("not valid now"), "{e}");
        // A key that does not belong.
        let (other, _dir2) = issued(&["host.example.com"], now);
        let mixed = Material { key_pem: other.key_pem.clone(), ..material.clone() };
        let e = verify_issued(&mixed, &names, &no_system, &[], now).expect_err("key");
        assert!(e.contains("does not belong"), "{e}");
    }
}
