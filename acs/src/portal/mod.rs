//! The customer web form: subscribers log in with the credentials the operator gave them, see
//! their vRGW's state and connected devices, and change their LAN, DHCP and Wi-Fi settings.
//! Their settings go into their profile ([`crate::profiles`]) and are pushed to their vRGW as
//! tasks through its host agent; the page follows the tasks to their result.
//!
//! Security: passwords are Argon2id hashes; failed log-ins are limited per subscriber and per
//! client address, counted before any hash is computed, and hashes at once are capped
//! ([`login`]); the client address comes from `X-Forwarded-For` only behind a trusted proxy; the
//! session lives in the store behind a random token in a `__Host-` cookie
//! (Secure, HttpOnly, SameSite=Strict); every form carries a CSRF token (the session's, or a
//! log-in token in a cookie of its own before there is a session). A subscriber only ever reaches
//! their own vRGW: every page finds it from the session's subscriber id, never from the request.

pub mod forms;
pub mod login;
pub mod pages;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::endpoint::{now, random_hex, Acs};
use crate::profiles::{self, Location, Profile};
use crate::store::{logged, CachedParam, PortalSession, TaskStatus};
use crate::tasks::TaskSpec;
use forms::{Field, FormState, LAN, WIFI};
use login::{Attempts, HashGate};

const SESSION_COOKIE: &str = "__Host-vrgw_portal";
const LOGIN_COOKIE: &str = "__Host-vrgw_login";

/// Why the web form refuses a request; [`Refusal::status`] is its HTTP status, and the page says
/// [`Refusal`]'s message in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The form is over 64 KiB.
    #[error("That form is too large.")]
    TooLarge,
    /// The form did not arrive whole in time, or broke off.
    #[error("The form did not arrive whole ({0}).")]
    Body(http_shell::Refusal),
    /// A form posted without a session.
    #[error("Your session has ended.")]
    LoggedOut,
    /// A form without the session's CSRF token.
    #[error("This form did not come from your session, so nothing was changed. Please try again from the page.")]
    ForeignForm,
    /// No such page.
    #[error("There is no such page.")]
    NoPage,
    /// A log-in form without its log-in token.
    #[error("Please log in from this page (the form had expired).")]
    ExpiredLoginForm,
    /// Too many failed log-ins for the subscriber or the client.
    #[error("Too many failed attempts. Try again in {minutes} minute(s).")]
    TooManyFailures {
        /// Minutes until the next attempt.
        minutes: u64,
    },
    /// Subscriber id and password do not match.
    #[error("That subscriber id and password do not match.")]
    WrongPassword,
    /// Every password-checking place is taken (a storm of log-ins): answered at once with
    /// `Retry-After`, nothing checked or counted.
    #[error("Too many log-ins at this moment. Please try again in a few seconds.")]
    Busy,
    /// A page's values were refused by the data model's checks.
    #[error("Some values are not right.")]
    BadValues,
    /// Nothing of this subscriber's is being applied.
    #[error("Nothing of yours is being applied.")]
    NothingApplying,
    /// The store failed.
    #[error("Please try again later.")]
    Unavailable,
}

impl Refusal {
    /// The HTTP status the page is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Body(r) => r.status(),
            Refusal::LoggedOut | Refusal::ForeignForm | Refusal::ExpiredLoginForm => StatusCode::FORBIDDEN,
            Refusal::NoPage | Refusal::NothingApplying => StatusCode::NOT_FOUND,
            Refusal::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::WrongPassword => StatusCode::UNAUTHORIZED,
            Refusal::BadValues => StatusCode::BAD_REQUEST,
            Refusal::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The web form's listener limits, for the serving loop and for reading forms (64 KiB).
fn limits() -> http_shell::Limits {
    http_shell::Limits { max_body: 64 * 1024, ..http_shell::Limits::default() }
}

/// Settings of the web form.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// How long a session lasts.
    pub session_ttl: Duration,
    /// Failed log-ins allowed per subscriber id within `login_window`.
    pub max_failures_per_user: usize,
    /// Failed log-ins allowed per client address within `login_window`.
    pub max_failures_per_client: usize,
    /// The window failed log-ins are counted in.
    pub login_window: Duration,
    /// How long a connection request may take.
    pub cr_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see
    /// `http_shell::forwarded::client_address`); empty (the default) to count every log-in against the
    /// connection's own peer.
    pub trusted_proxies: Vec<IpAddr>,
    /// Password hashes computed at once (default: the host's cores).
    pub max_hashes: usize,
    /// Log-ins that may wait for a hash slot; beyond these a log-in is answered 503 at once
    /// (default: four times `max_hashes`).
    pub max_hash_waiting: usize,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            session_ttl: Duration::from_secs(8 * 3600),
            max_failures_per_user: 5,
            max_failures_per_client: 20,
            login_window: Duration::from_secs(300),
            cr_timeout: Duration::from_secs(3),
            trusted_proxies: Vec::new(),
            max_hashes: hashes_at_once(),
            max_hash_waiting: 4 * hashes_at_once(),
        }
    }
}

/// The host's cores: more hashes at once than that only take longer each.
fn hashes_at_once() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Seconds a log-in turned away by the hash cap is told to wait (`Retry-After`).
const BUSY_RETRY_SECS: u64 = 2;

/// A subscriber id longer than any account's (the NBI takes 1 to 128 characters).
const MAX_ID_CHARS: usize = 128;

/// Hashes a password for storage (Argon2id, a random salt, PHC string).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    http_shell::fill_random(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// The web-form server.
pub struct Portal {
    acs: Arc<Acs>,
    config: PortalConfig,
    attempts: Attempts,
    hashes: HashGate,
    /// A hash to compare against when the subscriber does not exist (same time either way).
    dummy_hash: String,
}

type Resp = Response<Full<Bytes>>;

fn html(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

fn redirect(to: &str) -> Resp {
    let mut r = html(StatusCode::SEE_OTHER, String::new());
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn set_cookie(r: &mut Resp, name: &str, value: &str, max_age: u64) {
    let c = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn cookie(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers().get_all(header::COOKIE).iter().filter_map(|h| h.to_str().ok()).find_map(|h| {
        h.split(';').map(str::trim).find_map(|c| c.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
    })
}

/// An `application/x-www-form-urlencoded` body or query.
pub fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        out.insert(decode(k), decode(v));
    }
    out
}

fn decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(s[i + 1]), hex(s[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn eq_ct(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The title and path of the settings page made of `fields`.
fn page_of(fields: &[Field]) -> (&'static str, &'static str) {
    if fields.first().is_some_and(|f| f.name == LAN[0].name) {
        ("LAN and DHCP", "/lan")
    } else {
        ("Wi-Fi", "/wifi")
    }
}

/// A logged-in request.
struct Who {
    token: String,
    session: PortalSession,
}

impl Portal {
    /// The web form over the ACS `acs`.
    pub fn new(acs: Arc<Acs>, config: PortalConfig) -> Arc<Portal> {
        let dummy_hash = hash_password(&random_hex(8)).unwrap_or_default();
        let attempts = Attempts::new(config.login_window, config.max_failures_per_user, config.max_failures_per_client);
        let hashes = HashGate::new(config.max_hashes, config.max_hash_waiting);
        Arc::new(Portal { acs, config, attempts, hashes, dummy_hash })
    }

    fn who(&self, req: &Request<Incoming>) -> Option<Who> {
        let token = cookie(req, SESSION_COOKIE)?;
        let session = logged(self.acs.store.portal_session(&token, now()), "a web-form session (asked to log in)")??;
        Some(Who { token, session })
    }

    async fn http(self: Arc<Self>, req: Request<Incoming>, peer: IpAddr) -> Resp {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let query = parse_form(req.uri().query().unwrap_or("").as_bytes());
        let who = self.who(&req);
        let login_cookie = cookie(&req, LOGIN_COOKIE);
        let client = http_shell::forwarded::client_address(peer, req.headers(), &self.config.trusted_proxies);
        let body = match http_shell::read_body(req.into_body(), &limits()).await {
            Ok(b) => b,
            Err(e) => {
                let (title, r) = match e {
                    http_shell::Refusal::TooLarge(_) => ("Too large", Refusal::TooLarge),
                    e => ("Not received", Refusal::Body(e)),
                };
                return html(r.status(), pages::page(title, None, &format!("<p>{r}</p>"), None));
            }
        };
        let form = parse_form(&body);
        match (&method, path.as_str(), who) {
            (&Method::GET, "/login", _) => self.login_page(None, "", StatusCode::OK),
            (&Method::POST, "/login", _) => self.login(&form, login_cookie, client).await,
            (_, _, None) if method == Method::GET => redirect("/login"),
            (_, _, None) => {
                let r = Refusal::LoggedOut;
                html(
                    r.status(),
                    pages::page("Logged out", None, &format!("<p>{r} <a href=/login>Log in again</a>.</p>"), None),
                )
            }
            (&Method::POST, _, Some(w)) if !form.get("csrf").is_some_and(|c| eq_ct(c, &w.session.csrf)) => {
                tracing::warn!(subscriber = %w.session.subscriber, path, "portal: form without the session's CSRF token refused");
                let r = Refusal::ForeignForm;
                html(
                    r.status(),
                    pages::page(
                        "Refused",
                        Some(("", &w.session.csrf)),
                        &format!("<p class=\"note fail\">{r}</p>"),
                        None,
                    ),
                )
            }
            (&Method::POST, "/logout", Some(w)) => {
                logged(
                    self.acs.store.delete_portal_session(&w.token, now()),
                    "the end of a web-form session (it expires)",
                );
                tracing::info!(subscriber = %w.session.subscriber, "portal: logged out");
                let mut r = redirect("/login");
                set_cookie(&mut r, SESSION_COOKIE, "", 0);
                r
            }
            (&Method::GET, "/", Some(w)) => self.status(&w).await,
            (&Method::GET, "/lan", Some(w)) => self.settings_page(&w, LAN, None),
            (&Method::GET, "/wifi", Some(w)) => self.settings_page(&w, WIFI, None),
            (&Method::POST, "/lan", Some(w)) => self.save(&w, LAN, &form).await,
            (&Method::POST, "/wifi", Some(w)) => self.save(&w, WIFI, &form).await,
            (&Method::GET, "/applying", Some(w)) => self.applying(&w, &query),
            (_, _, Some(w)) => {
                let r = Refusal::NoPage;
                html(r.status(), pages::page("Not found", Some(("", &w.session.csrf)), &format!("<p>{r}</p>"), None))
            }
        }
    }

    /// The log-in page again, saying why.
    fn refused_login(&self, why: &Refusal, user: &str) -> Resp {
        self.login_page(Some(&why.to_string()), user, why.status())
    }

    fn login_page(&self, error: Option<&str>, user: &str, status: StatusCode) -> Resp {
        let token = random_hex(16);
        let mut r = html(status, pages::login(&token, user, error));
        set_cookie(&mut r, LOGIN_COOKIE, &token, 3600);
        r
    }

    async fn login(&self, form: &BTreeMap<String, String>, login_cookie: Option<String>, client: IpAddr) -> Resp {
        let user = form.get("username").map(|s| s.trim().to_string()).unwrap_or_default();
        let pass = form.get("password").cloned().unwrap_or_default();
        let csrf_ok = match (form.get("csrf"), &login_cookie) {
            (Some(a), Some(b)) => !a.is_empty() && eq_ct(a, b),
            _ => false,
        };
        if !csrf_ok {
            return self.refused_login(&Refusal::ExpiredLoginForm, &user);
        }
        if user.chars().count() > MAX_ID_CHARS {
            // No account has such an id: refused without a hash (and without a counter entry
            // keyed by a long string).
            return self.refused_login(&Refusal::WrongPassword, "");
        }
        // Counted before the hash: concurrent attempts see each other.
        let attempt = match self.attempts.begin(&user, &login::client_key(client)) {
            Ok(a) => a,
            Err(secs) => {
                tracing::warn!(subscriber = %user, %client, "portal: log-in refused, too many failures");
                return self.refused_login(&Refusal::TooManyFailures { minutes: secs.div_ceil(60) }, &user);
            }
        };
        let Some(admitted) = self.hashes.enter() else {
            attempt.unchecked();
            tracing::warn!(subscriber = %user, %client, "portal: log-in turned away, every hash slot taken");
            let mut r = self.refused_login(&Refusal::Busy, &user);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_SECS));
            return r;
        };
        let store = self.acs.store.clone();
        let (u2, hash_default) = (user.clone(), self.dummy_hash.clone());
        let checked = admitted
            .hash(move || match store.subscriber(&u2) {
                Ok(Some(s)) => Ok(verify_password(&pass, &s.password_hash)),
                found => {
                    // Same work whether or not the subscriber exists.
                    let _ = verify_password(&pass, &hash_default);
                    found.map(|_| false)
                }
            })
            .await;
        let ok = match checked {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) => {
                attempt.unchecked();
                tracing::error!(subscriber = %user, "portal: log-in not checked: {e}");
                return self.refused_login(&Refusal::Unavailable, &user);
            }
            Err(e) => {
                attempt.unchecked();
                tracing::error!(subscriber = %user, "portal: log-in not checked: {e}");
                return self.refused_login(&Refusal::Unavailable, &user);
            }
        };
        if !ok {
            drop(attempt);
            tracing::info!(subscriber = %user, %client, "portal: log-in failed");
            return self.refused_login(&Refusal::WrongPassword, &user);
        }
        attempt.succeeded();
        let token = random_hex(32);
        let s = PortalSession {
            subscriber: user.clone(),
            csrf: random_hex(16),
            expires: now() + self.config.session_ttl.as_secs() as i64,
        };
        if let Err(e) = self.acs.store.put_portal_session(&token, &s) {
            tracing::error!("portal: storing a session: {e}");
            let r = Refusal::Unavailable;
            return html(r.status(), pages::page("Error", None, &format!("<p>{r}</p>"), None));
        }
        tracing::info!(subscriber = %user, %client, "portal: logged in");
        let mut r = redirect("/");
        set_cookie(&mut r, SESSION_COOKIE, &token, self.config.session_ttl.as_secs());
        set_cookie(&mut r, LOGIN_COOKIE, "", 0);
        r
    }

    fn locate(&self, subscriber: &str) -> Option<Location> {
        logged(profiles::locate(self.acs.store.as_ref(), subscriber), "where the subscriber's vRGW is").flatten()
    }

    /// The data model of the subscriber's gateway (TR-181 when the store cannot say).
    fn model(&self, at: &Location) -> profiles::Model {
        logged(profiles::model_of(self.acs.store.as_ref(), at), "the gateway's data model")
            .unwrap_or(profiles::Model::Tr181)
    }

    /// The gateway's cached values under its `Device.` (a TR-098 gateway's under the TR-181
    /// names the pages read, see [`profiles::tr098::from_tr098`]).
    fn cache(&self, at: &Location) -> Vec<CachedParam> {
        let prefix = at.instance_path();
        let all = logged(self.acs.store.params(&at.device), "the gateway's current values (the page shows none)")
            .unwrap_or_default();
        if profiles::model_in(at, &all) == profiles::Model::Tr098 {
            return profiles::tr098::from_tr098(all);
        }
        all.into_iter().filter(|p| p.name.starts_with(&prefix)).collect()
    }

    async fn wake(&self, device: &str) -> Result<(), String> {
        let d = self.acs.store.device(device).map_err(|e| e.to_string())?.ok_or("no such device")?;
        self.acs.connection_request(&d, self.config.cr_timeout).await.map_err(|e| e.to_string())
    }

    async fn status(&self, w: &Who) -> Resp {
        let csrf = &w.session.csrf;
        let Some(at) = self.locate(&w.session.subscriber) else {
            return html(
                StatusCode::OK,
                pages::page(
                    "Status",
                    Some(("/", csrf)),
                    "<p class=note>Your gateway is not set up yet. Settings you save now are applied when it is.</p>",
                    None,
                ),
            );
        };
        // Fresh state and leases, when the host answers within a few seconds.
        let base = at.device_path();
        let reads = match self.model(&at) {
            profiles::Model::Tr098 => profiles::tr098::status_reads(),
            profiles::Model::Tr181 => vec![format!("{base}Hosts."), format!("{base}IP.Interface.1.IPv4Address.1.")],
        };
        let spec = TaskSpec::get(at.status_param().into_iter().chain(reads).collect());
        let mut fresh = false;
        if let Some(task) =
            logged(self.acs.store.enqueue(&at.device, &spec.into(), now()), "the status page's fresh read")
        {
            if self.wake(&at.device).await.is_ok() {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
                loop {
                    let notified = self.acs.task_events.notified();
                    match self.acs.store.task(task.id) {
                        Ok(Some(t)) if t.status == TaskStatus::Done => {
                            fresh = true;
                            break;
                        }
                        Ok(Some(t)) if t.status == TaskStatus::Fault => break,
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            tracing::error!(task = task.id, "the status page shows cached values: {e}");
                            break;
                        }
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        break;
                    }
                }
            }
            if !fresh {
                logged(self.acs.store.delete_task(task.id), "the removal of the status page's read");
            }
        }
        let cache = self.cache(&at);
        use datamodel::virtualization::InstanceStatus;
        let get = |name: &str| cache.iter().find(|p| p.name == name).map(|p| p.value.clone());
        // A gateway of its own runs when it answers.
        let state = match at.status_param() {
            Some(p) => get(&p).map(|s| s.parse::<InstanceStatus>()),
            None => fresh.then_some(Ok(InstanceStatus::Running)),
        };
        let lan = get(&format!("{base}IP.Interface.1.IPv4Address.1.IPAddress")).unwrap_or_default();
        let mut b = String::new();
        if !fresh {
            b.push_str("<p class=note>Your gateway did not answer just now; this is what it last reported.</p>");
        }
        let words = match state {
            Some(Ok(InstanceStatus::Running)) => "running",
            Some(Ok(InstanceStatus::Suspended)) => "paused by your operator",
            Some(Ok(InstanceStatus::Stopped)) => "stopped",
            _ => "unknown",
        };
        use std::fmt::Write as _;
        let _ = write!(
            b,
            "<table><tr><th scope=row>Gateway</th><td>{}</td></tr><tr><th scope=row>Gateway address</th><td>{}</td></tr></table>",
            pages::esc(words),
            pages::esc(&lan)
        );
        b.push_str("<h3>Connected devices</h3>");
        let hosts_prefix = format!("{base}Hosts.Host.");
        let mut hosts: BTreeMap<u32, BTreeMap<&str, String>> = BTreeMap::new();
        for p in &cache {
            let Some(rest) = p.name.strip_prefix(&hosts_prefix) else { continue };
            let Some((n, field)) = rest.split_once('.') else { continue };
            if let (Ok(n), Some(f)) =
                (n.parse(), ["HostName", "IPAddress", "PhysAddress"].into_iter().find(|f| *f == field))
            {
                hosts.entry(n).or_default().insert(f, p.value.clone());
            }
        }
        if hosts.is_empty() {
            b.push_str("<p>No device has an address from your gateway right now.</p>");
        } else {
            b.push_str(
                "<table><tr><th scope=col>Name</th><th scope=col>Address</th><th scope=col>MAC address</th></tr>",
            );
            for h in hosts.values() {
                let name = h
                    .get("HostName")
                    .filter(|n| !n.is_empty() && *n != "*")
                    .cloned()
                    .unwrap_or_else(|| "(no name)".into());
                let _ = write!(
                    b,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    pages::esc(&name),
                    pages::esc(h.get("IPAddress").map_or("", String::as_str)),
                    pages::esc(h.get("PhysAddress").map_or("", String::as_str))
                );
            }
            b.push_str("</table>");
        }
        html(StatusCode::OK, pages::page("Status", Some(("/", csrf)), &b, None))
    }

    fn current(&self, w: &Who) -> (Option<Location>, Vec<CachedParam>, Profile) {
        let at = self.locate(&w.session.subscriber);
        let cache = at.as_ref().map(|a| self.cache(a)).unwrap_or_default();
        let profile = logged(
            self.acs.store.subscriber(&w.session.subscriber),
            "the saved profile (the page shows the gateway's values)",
        )
        .flatten()
        .map(|s| s.profile)
        .unwrap_or_default();
        (at, cache, profile)
    }

    fn settings_page(&self, w: &Who, fields: &'static [Field], notice: Option<&str>) -> Resp {
        let (at, cache, profile) = self.current(w);
        let dp = at.as_ref().map(|a| a.device_path()).unwrap_or_default();
        let tree = forms::current_tree(&cache, &dp, &profile);
        let mut state = FormState::default();
        for f in fields {
            let v = if f.name == "static_leases" {
                forms::static_leases_text(&cache, &dp, &profile)
            } else {
                forms::shown(&tree, f)
            };
            state.values.insert(f.name.to_string(), v);
        }
        let (title, path) = page_of(fields);
        let notice =
            notice.or(at.is_none().then_some("Your gateway is not set up yet; what you save is applied when it is."));
        html(StatusCode::OK, pages::settings(title, path, &w.session.csrf, fields, &state, notice))
    }

    async fn save(&self, w: &Who, fields: &'static [Field], form: &BTreeMap<String, String>) -> Resp {
        let (at, cache, profile) = self.current(w);
        let dp = at.as_ref().map(|a| a.device_path()).unwrap_or_default();
        let tree = forms::current_tree(&cache, &dp, &profile);
        let (title, path) = page_of(fields);
        let merged = match forms::check(fields, form, &tree, &profile) {
            Ok(p) => p,
            Err(state) => {
                tracing::info!(subscriber = %w.session.subscriber, page = path, errors = ?state.errors.keys().collect::<Vec<_>>(), "portal: settings refused");
                return html(
                    Refusal::BadValues.status(),
                    pages::settings(title, path, &w.session.csrf, fields, &state, None),
                );
            }
        };
        // A TR-098 gateway has no name for some settings: refused here rather than lost.
        if let Some(at) = at.as_ref().filter(|a| self.model(a) == profiles::Model::Tr098) {
            let mut state = FormState { values: form.clone(), ..FormState::default() };
            for f in fields.iter().filter(|f| !f.param.is_empty()) {
                if let Some(why) = merged.values.get(f.param).and_then(|v| profiles::tr098::unsupported(f.param, v)) {
                    state.errors.insert(f.name.to_string(), format!("Your gateway cannot do this: {why}."));
                }
            }
            let leases = form.get("static_leases").is_some_and(|l| !l.trim().is_empty());
            if fields.iter().any(|f| f.name == "static_leases") && leases {
                state.errors.insert(
                    "static_leases".into(),
                    "Your gateway cannot do this: a TR-098 gateway takes no fixed addresses from here.".into(),
                );
            }
            if !state.errors.is_empty() {
                tracing::info!(subscriber = %w.session.subscriber, device = %at.device, page = path,
                    errors = ?state.errors.keys().collect::<Vec<_>>(), "portal: settings a TR-098 gateway cannot take");
                state.values.remove("passphrase");
                return html(
                    Refusal::BadValues.status(),
                    pages::settings(title, path, &w.session.csrf, fields, &state, None),
                );
            }
        }
        let store = self.acs.store.as_ref();
        if let Err(e) = store.set_profile(&w.session.subscriber, &merged) {
            tracing::error!("portal: saving a profile: {e}");
            let r = Refusal::Unavailable;
            return html(
                r.status(),
                pages::page(
                    title,
                    Some((path, &w.session.csrf)),
                    &format!("<p class=\"note fail\">Your settings could not be saved. {r}</p>"),
                    None,
                ),
            );
        }
        tracing::info!(subscriber = %w.session.subscriber, page = path, "portal: settings saved to the profile");
        let Some(at) = at else {
            return self.settings_page(w, fields, Some("Saved. They are applied when your gateway is set up."));
        };
        let tasks = match profiles::queue(store, &w.session.subscriber, &at, now()) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("portal: queuing a profile: {e}");
                return self.settings_page(
                    w,
                    fields,
                    Some("Saved, but not applied yet: your gateway gets them at its next contact."),
                );
            }
        };
        let Some(last) = tasks.last() else {
            return self.settings_page(w, fields, Some("Saved; nothing needed changing."));
        };
        if let Err(e) = self.wake(&at.device).await {
            tracing::warn!(device = %at.device, "portal: connection request failed: {e}");
        }
        let ids: Vec<String> = tasks.iter().map(|t| t.id.to_string()).collect();
        tracing::debug!(task = last.id, "portal: following the apply");
        redirect(&format!("/applying?tasks={}&back={}", ids.join(","), if path == "/lan" { "lan" } else { "wifi" }))
    }

    fn applying(&self, w: &Who, query: &BTreeMap<String, String>) -> Resp {
        let csrf = &w.session.csrf;
        let back = if query.get("back").map(String::as_str) == Some("wifi") { "/wifi" } else { "/lan" };
        let Some(at) = self.locate(&w.session.subscriber) else { return redirect(back) };
        let base = profiles::base_of(&at, self.model(&at));
        let ids: Vec<i64> =
            query.get("tasks").map(|s| s.split(',').filter_map(|i| i.parse().ok()).collect()).unwrap_or_default();
        let store = self.acs.store.as_ref();
        let mut pending = false;
        let mut problems = Vec::new();
        let mut mine_seen = 0;
        for id in ids {
            // Only this subscriber's own profile tasks: on their host, about their instance.
            let Some(Some(t)) = logged(store.task(id), "a task of the applying page") else { continue };
            let mine = t.device == at.device && t.order.profile && t.order.spec.mentions(&base);
            if !mine {
                continue;
            }
            mine_seen += 1;
            match t.status {
                TaskStatus::Done => {}
                TaskStatus::Fault => {
                    let f = logged(store.faults(), "the fault's words")
                        .and_then(|fs| fs.into_iter().find(|f| f.task == Some(id)));
                    problems.push(f.map_or("the gateway refused them".to_string(), |f| {
                        if f.detail.is_empty() {
                            f.message
                        } else {
                            format!("{} ({})", f.message, f.detail.replace(&base, ""))
                        }
                    }));
                }
                _ => pending = true,
            }
        }
        let title = "Applying your settings";
        if mine_seen == 0 {
            let r = Refusal::NothingApplying;
            return html(r.status(), pages::page(title, Some((back, csrf)), &format!("<p>{r}</p>"), None));
        }
        if !problems.is_empty() {
            let body = format!(
                "<p class=\"note fail\" role=alert>Your gateway did not accept the new settings, so it keeps the ones it had: {}.</p><p><a href={back}>Back to the settings</a></p>",
                pages::esc(&problems.join("; "))
            );
            return html(StatusCode::OK, pages::page(title, Some((back, csrf)), &body, None));
        }
        if pending {
            let body = "<p class=note role=status>Your settings are saved and are being applied to your gateway. This page updates by itself.</p>";
            return html(StatusCode::OK, pages::page(title, Some((back, csrf)), body, Some(1)));
        }
        let body = format!("<p class=\"note ok\" role=status>Done: your gateway uses the new settings.</p><p><a href={back}>Back to the settings</a></p>");
        html(StatusCode::OK, pages::page("Settings applied", Some((back, csrf)), &body, None))
    }

    /// Serves the web form on `listener` (over TLS with `tls`) until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        http_shell::serve(listener, tls, limits(), move |req, peer| self.clone().http(req, peer.ip()), shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let f = parse_form(b"a=1&b=x+y%21&c=&d&e=%zz%2");
        assert_eq!(f["a"], "1");
        assert_eq!(f["b"], "x y!");
        assert_eq!(f["c"], "");
        assert_eq!(f["d"], "");
        assert_eq!(f["e"], "%zz%2");
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
