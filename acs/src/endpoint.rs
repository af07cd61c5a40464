//! The CWMP endpoint: HTTP POSTs from CPEs, authenticated (Digest, or Basic under TLS) with a
//! credential bound to the devices it may speak for, tracked by a session cookie, each session
//! driven by `cwmp::session::AcsSession`; one session per device at a time; tasks run in order
//! inside sessions. At a device's BOOTSTRAP and BOOT the ACS sets connection-request credentials
//! of the device's own on it before anything else.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cwmp::session::{AcsConfig, AcsEvent, AcsSession, Reply};
use cwmp::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::auth::{Attempt, Verifier};
use crate::store::{CachedParam, CpeCredential, Device, Store, TaskStatus};
use crate::tasks::{self, Begin, Context, Running, Step, TaskSpec};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Milliseconds since 1970 now (task expiry is kept to the millisecond, as GenieACS's).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Logs a task removed unsent because its `expiry` passed (GenieACS's "Task expired").
fn log_expired(t: &crate::store::Task) {
    tracing::info!(device = %t.device, task = t.id, task_name = t.order.spec.name(),
        expiry = %t.terms.expiry.map(crate::query::iso_millis).unwrap_or_default(), "Task expired");
}

pub use http_shell::random_hex;

/// The presets, by name.
pub type Presets = Arc<Vec<(String, crate::presets::Preset)>>;

/// The realm of the ACS's Digest challenges; the stored credentials' secrets are made for it.
pub const REALM: &str = "vrgw-acs";

/// The user name the ACS gives devices for its connection requests (the password is the
/// device's own, random).
pub const CR_USERNAME: &str = "acs";

/// Logs what a CPE's message held that CWMP does not allow but the ACS read anyway: one line per
/// kind, with how many and the first occurrence (a CPE that never types its values would
/// otherwise fill the log with a line per value). Raw text is a CPE's, escaped.
fn log_quirks(device: Option<&str>, q: cwmp::Quirks) {
    let mut kinds: Vec<(std::mem::Discriminant<cwmp::QuirkKind>, usize, &cwmp::Quirk)> = Vec::new();
    for quirk in &q.list {
        let d = std::mem::discriminant(&quirk.kind);
        match kinds.iter_mut().find(|(k, _, _)| *k == d) {
            Some((_, n, _)) => *n += 1,
            None => kinds.push((d, 1, quirk)),
        }
    }
    for (_, n, first) in kinds {
        tracing::warn!(device = ?device, count = n, first = %first.to_string().escape_debug(),
            "accepted a CPE message CWMP does not allow");
    }
    if q.dropped > 0 {
        tracing::warn!(device = ?device, more = q.dropped, "more of the message's irregularities not kept");
    }
}

/// Connection-request credentials: (user name, password).
type CrPair = (String, String);

/// The name the connection-request credentials' SetParameterValues runs under (in logs and
/// faults, like a preset's).
pub const CR_SETUP: &str = "connection-request credentials";

/// The fault channel of [`CR_SETUP`]'s request: its own, so that it holds back no preset.
pub const CR_CHANNEL: &str = "connection_request";

/// The most tasks one scheduling pass finishes without sending anything (`provisions` tasks the
/// device already meets) before it leaves the rest to the next response.
const MAX_UNSENT_TASKS: usize = 64;

/// The ParameterKey (or CommandKey) a session-local request runs under: `preset-<name>`, for a
/// preset's and for [`CR_SETUP`]; at most 32 characters, as TR-069 types both keys (a device
/// may refuse a longer one): a longer one keeps its start and ends with a hash of the name.
pub fn local_key(name: &str) -> String {
    let key = format!("preset-{name}");
    if key.len() <= 32 {
        return key;
    }
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let mut start = String::new();
    for c in key.chars() {
        if start.len() + c.len_utf8() > 15 {
            break;
        }
        start.push(c);
    }
    format!("{start}-{hash:016x}")
}

/// Whether CPEs must authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpeAuth {
    /// Every session starts with a credential that may speak for the device that informs.
    Required,
    /// Anyone may inform as any device (an explicit setting; logged as a warning at every start).
    Off,
}

/// Settings of the CWMP side.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Whether CPEs must authenticate.
    pub cpe_auth: CpeAuth,
    /// Credentials from the configuration file (the store holds those made through the NBI);
    /// a user name here takes precedence over the store's.
    pub credentials: Vec<CpeCredential>,
    /// Whether CWMP is served over TLS (Basic is accepted only then).
    pub tls: bool,
    /// Idle time after which a session is dropped.
    pub session_timeout: Duration,
    /// Largest accepted body.
    pub max_body: usize,
    /// Base URL of the file server (for Download).
    pub file_base_url: String,
    /// Seconds a faulted preset channel is held back before its presets run again, doubled for
    /// each retry before (GenieACS's `cwmp.retryDelay`, 300 by default).
    pub retry_delay_secs: i64,
    /// How provision scripts run.
    pub scripts: crate::script::Settings,
    /// Reverse proxies whose `X-Forwarded-For` names the CPE
    /// (`http_shell::forwarded::client_address`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// What an Inform opens a session with.
struct Opened {
    local: Vec<(String, TaskSpec)>,
    cr_setup: Option<CrPair>,
    retrying: Vec<String>,
    scripts: Option<crate::script::Provisioning>,
    /// The session's time: its Inform's (Unix seconds).
    at: i64,
}

struct Session {
    cwmp: AcsSession,
    device: Option<String>,
    running: Option<Running>,
    /// Requests from presets (the preset's name and the request), run before queued tasks and
    /// not stored as tasks.
    local: std::collections::VecDeque<(String, TaskSpec)>,
    /// Connection-request credentials being set on the device in this session; recorded when
    /// the device accepted them.
    cr_setup: Option<(String, String)>,
    /// Preset channels whose fault was due for a retry: their faults are deleted once their
    /// requests of this session have all run without a fault.
    retrying: Vec<String>,
    /// The presets' provision scripts, run after the presets' other requests.
    scripts: Option<crate::script::Provisioning>,
    /// The scripts' requests of the round being sent (the preset's name and the request).
    script_local: std::collections::VecDeque<(String, TaskSpec)>,
    /// When the device's lease ([`crate::store::LeaseStore`]) is renewed, once it is held.
    lease_renew: Option<Instant>,
    /// The session's time, as GenieACS keeps one: its Inform's (Unix seconds). The values the
    /// Inform brought carry it, and what the session's tasks and scripts ask to be fresh is
    /// compared with it, however long the session has run.
    started: Option<i64>,
}

/// The ACS's shared state.
pub struct Acs {
    /// The store everything is recorded in.
    pub store: Arc<dyn Store>,
    /// Settings of the CWMP side.
    pub config: EndpointConfig,
    verifier: Verifier,
    /// The signed URLs devices fetch files with.
    files: crate::file_urls::FileUrls,
    sessions: Mutex<HashMap<String, Session>>,
    busy: Mutex<HashMap<String, String>>,
    /// Woken whenever a task finishes or faults.
    pub task_events: Notify,
    /// Outgoing webhook events.
    pub webhooks: crate::webhooks::Sender,
    /// Presets, read from the store once and again after each change.
    presets: Mutex<Option<Presets>>,
    /// Set at shutdown: sessions open go on, new ones are refused.
    stopping: std::sync::atomic::AtomicBool,
    /// Whether any provision or virtual-parameter script is stored: sessions then run on the
    /// blocking pool (a script's run may take up to its time limit).
    scripts_stored: std::sync::atomic::AtomicBool,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The migrations this node orchestrates now (`migration::Held`).
    migrations_running: Mutex<std::collections::HashSet<i64>>,
}

enum Outcome {
    Reply(Response<Full<Bytes>>),
}

/// Why the CWMP listener refuses a request (before the session's state machine, which answers
/// with SOAP faults itself); [`Refusal::status`] is its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// `GET /files/<name>` of a file that does not exist.
    #[error("no file {0}")]
    NoFile(String),
    /// `GET /files/<name>` without a valid signed URL.
    #[error("{0}")]
    FileUrl(crate::file_urls::BadUrl),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// The blocking part of a request panicked or was cancelled.
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
    /// Not a POST (and not a file).
    #[error("CWMP takes POST")]
    NotPost,
    /// `PUT /files/<name>` that no upload task of the device it was signed for expects.
    #[error("no upload of {0} is expected")]
    NoUpload(String),
    /// `PUT /files/<name>` over a file the device did not upload.
    #[error("{0} exists and is not this device's upload")]
    NotYourFile(String),
    /// The first POST of a session did not authenticate. The reason is logged, never told:
    /// the peer cannot tell an unknown user from a wrong password.
    #[error("authentication required")]
    Unauthenticated(#[from] cwmp::auth::AuthError),
    /// The credential is valid but may not speak for the device that informed; answered like a
    /// failed log-in.
    #[error("authentication required")]
    NotYours {
        /// The user name that logged in.
        user: String,
        /// The DeviceId it informed as.
        device: String,
    },
    /// The body is over the limit (bytes).
    #[error("body over {0} bytes")]
    TooLarge(usize),
    /// The body was not complete within the listener's deadline, or broke off.
    #[error("{0}")]
    Body(http_shell::Refusal),
    /// A session that does not start with an Inform.
    #[error("a session starts with an Inform")]
    NoInform,
    /// The device has a session open already.
    #[error("a session with this device is open")]
    Busy,
    /// The ACS is stopping: the sessions open finish, no new one starts.
    #[error("the ACS is shutting down; try again later")]
    ShuttingDown,
}

impl Refusal {
    /// The HTTP status the refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NoFile(_) => StatusCode::NOT_FOUND,
            Refusal::FileUrl(_) => StatusCode::FORBIDDEN,
            // The database unreachable: the CPE retries, as TR-069 says, and finds it back.
            Refusal::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Store(_) | Refusal::Join(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Refusal::NotPost => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::NoUpload(_) => StatusCode::FORBIDDEN,
            Refusal::NotYourFile(_) => StatusCode::CONFLICT,
            Refusal::Unauthenticated(_) | Refusal::NotYours { .. } => StatusCode::UNAUTHORIZED,
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Body(r) => r.status(),
            Refusal::NoInform => StatusCode::BAD_REQUEST,
            Refusal::Busy | Refusal::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The plain-text answer (challenges and `Retry-After` added by the caller where due).
    fn reply(&self) -> Response<Full<Bytes>> {
        let mut r = text(self.status(), format!("{self}\n"));
        if matches!(self, Refusal::Store(e) if e.is_unavailable()) {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }
}

fn text(status: StatusCode, msg: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(msg)));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn cookie_of(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .find_map(|h| h.split(';').map(str::trim).find_map(|c| c.strip_prefix("acs_session=").map(str::to_string)))
}

impl Acs {
    /// The ACS over `store`; `webhooks` receives device and task events.
    pub fn new(store: Arc<dyn Store>, config: EndpointConfig, webhooks: crate::webhooks::Sender) -> Arc<Acs> {
        let mut secret = [0u8; 32];
        http_shell::fill_random(&mut secret);
        let mut verifier = Verifier::new(REALM, secret);
        verifier.allow_basic = config.tls;
        let key = store.server_key("file-urls").unwrap_or_else(|e| {
            tracing::error!("the file-URL key is not kept ({e}): URLs given now stop working at the next start");
            secret.to_vec()
        });
        let files = crate::file_urls::FileUrls::new(&key, &config.file_base_url);
        let acs = Arc::new(Acs {
            store,
            config,
            verifier,
            files,
            sessions: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            migrations_running: Mutex::new(Default::default()),
            task_events: Notify::new(),
            webhooks,
            presets: Mutex::new(None),
            stopping: std::sync::atomic::AtomicBool::new(false),
            scripts_stored: std::sync::atomic::AtomicBool::new(false),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        });
        acs.scripts_changed();
        acs
    }

    /// From now on a POST outside an open session (a new session) is refused with 503 and
    /// `Retry-After`; open sessions go on. For a shutdown that lets sessions finish.
    pub fn stop_new_sessions(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Waits until no session is open, or `within` passed; whether none is open.
    pub async fn sessions_ended(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while self.open_sessions() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// The presets (cached).
    pub fn presets(&self) -> Result<Presets, crate::store::StoreError> {
        let mut cache = self.presets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.as_ref() {
            return Ok(p.clone());
        }
        let mut p = Vec::new();
        for (name, json) in self.store.presets()? {
            // Checked when the NBI stored it; one stored by an older version may not pass.
            match crate::presets::Preset::from_json(&json) {
                Ok(preset) => p.push((name, preset)),
                Err(e) => tracing::error!(preset = %name, "preset not applied: {e}"),
            }
        }
        let p = Arc::new(p);
        *cache = Some(p.clone());
        Ok(p)
    }

    /// Notes whether scripts are stored (after the NBI changed them).
    pub fn scripts_changed(&self) {
        let any = [crate::store::ScriptKind::Provision, crate::store::ScriptKind::VirtualParameter]
            .into_iter()
            .any(|k| self.store.scripts(k).map_or(true, |s| !s.is_empty()));
        self.scripts_stored.store(any, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets the cached presets (after the NBI changed them).
    pub fn presets_changed(&self) {
        *self.presets.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn busy(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The CWMP listener's limits, for the serving loop and for reading bodies. Between two
    /// POSTs of a session the CPE may work for a while (a vRGW provisioned), so a connection may
    /// sit idle as long as a session may.
    pub fn limits(&self) -> http_shell::Limits {
        http_shell::Limits {
            max_connections: 4096,
            max_body: self.config.max_body,
            idle: self.config.session_timeout.max(Duration::from_secs(30)),
            ..http_shell::Limits::default()
        }
    }

    /// The migrations this node orchestrates now.
    pub(crate) fn migrations_running(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<i64>> {
        self.migrations_running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `device` has a session open now, on this node or (a cluster) another (a task
    /// queued for it runs in that session).
    pub fn in_session(&self, device: &str) -> bool {
        self.busy().contains_key(device)
            || crate::store::logged(
                self.store.held(&crate::store::leases::device_key(device)),
                "whether another node has the device in session",
            )
            .unwrap_or(false)
    }

    /// A connection request to `device` (its URL and its own credentials), counted.
    pub async fn connection_request(
        &self,
        device: &crate::store::Device,
        timeout: Duration,
    ) -> Result<(), crate::conn_req::CrError> {
        let r = crate::conn_req::to_device(device, timeout).await;
        let result = if r.is_ok() { "answered" } else { "failed" };
        self.metrics.connection_requests.get_or_create(&crate::metrics::label("result", result)).inc();
        r
    }

    fn session_outcome(&self, outcome: &str) {
        self.metrics.sessions.get_or_create(&crate::metrics::label("outcome", outcome)).inc();
    }

    /// `GET /health` on the CWMP listener (for a load balancer's checks): 200 `ok` while the ACS
    /// takes sessions and its store answers; 503 with the reason while it shuts down or the store
    /// fails.
    async fn health(self: Arc<Self>) -> Response<Full<Bytes>> {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n".into());
        }
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.store.ping()).await {
            Ok(Ok(_)) => text(StatusCode::OK, "ok\n".into()),
            Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}\n")),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        }
    }

    /// Number of sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.sessions().len()
    }

    async fn http(self: Arc<Self>, req: Request<Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        // The CPE, behind HAProxy or not: what logs name.
        let peer = http_shell::forwarded::client_address(peer.ip(), req.headers(), &self.config.trusted_proxies);
        if req.method() == hyper::Method::GET && req.uri().path() == "/health" {
            return self.health().await;
        }
        if req.method() == hyper::Method::GET {
            if let Some(name) = req.uri().path().strip_prefix("/files/").map(crate::nbi::decode) {
                let device = match self.files.check(&name, req.uri().query(), now()) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(%peer, file = %name, "refused a file download: {e}");
                        return Refusal::FileUrl(e).reply();
                    }
                };
                tracing::info!(%device, file = %name, %peer, "file download");
                let store = self.store.clone();
                let served = tokio::task::spawn_blocking(move || match store.file(&name)? {
                    Some((content, _)) => {
                        let mut r = Response::new(Full::new(Bytes::from(content)));
                        r.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                        Ok(r)
                    }
                    None => Err(Refusal::NoFile(name)),
                })
                .await
                .map_err(Refusal::from)
                .and_then(|r| r);
                return served.unwrap_or_else(|e| e.reply());
            }
        }
        if req.method() == hyper::Method::PUT {
            if let Some(name) = req.uri().path().strip_prefix("/files/").map(crate::nbi::decode) {
                return self.upload(req, name, peer).await.unwrap_or_else(|e| e.reply());
            }
        }
        if req.method() != hyper::Method::POST {
            return Refusal::NotPost.reply();
        }
        let cookie = cookie_of(&req);
        let known = cookie.as_ref().is_some_and(|c| self.sessions().contains_key(c));
        if !known && self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            let mut r = Refusal::ShuttingDown.reply();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            return r;
        }
        let mut credential = None;
        if !known && self.config.cpe_auth == CpeAuth::Required {
            match self.authenticate(&req, peer) {
                Ok(c) => credential = Some(c),
                Err(r) => return *r,
            }
        }
        let body = match http_shell::read_body(req.into_body(), &self.limits()).await {
            Ok(b) => b,
            Err(http_shell::Refusal::TooLarge(max)) => {
                tracing::warn!("refused a CWMP body over {max} bytes");
                return Refusal::TooLarge(max).reply();
            }
            Err(e) => {
                tracing::warn!("refused a CWMP body: {e}");
                return Refusal::Body(e).reply();
            }
        };
        // The session work is short SQLite transactions on a local WAL database (tens of
        // microseconds); handing each POST to the blocking pool cost more in thread switches than
        // it saved (see docs/benchmarks.md), so it runs here, unless a preset runs provision
        // scripts (a run may take up to its time limit) or the store is a database server (each
        // call a round trip: on a worker, every one would hand the worker off).
        let cookie = cookie.filter(|_| known);
        if self.scripts_stored.load(std::sync::atomic::Ordering::Relaxed) || self.store.remote() {
            let me = self.clone();
            return match tokio::task::spawn_blocking(move || me.handle(cookie, &body, credential.as_ref())).await {
                Ok(Outcome::Reply(r)) => r,
                Err(e) => Refusal::Join(e).reply(),
            };
        }
        match self.handle(cookie, &body, credential.as_ref()) {
            Outcome::Reply(r) => r,
        }
    }

    /// `PUT /files/<name>`: a CPE's Upload, on the URL the upload task signed for it; stored as a
    /// file (metadata: its fileType, the device's OUI and product class, and the device) when an
    /// upload task of that device, sent and not finished, names it.
    async fn upload(
        self: Arc<Self>,
        req: Request<Incoming>,
        name: String,
        peer: std::net::IpAddr,
    ) -> Result<Response<Full<Bytes>>, Refusal> {
        let device = match self.files.check(&tasks::upload_signed_name(&name), req.uri().query(), now()) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(%peer, file = %name, "refused an upload: {e}");
                return Err(Refusal::FileUrl(e));
            }
        };
        let body = http_shell::read_body(req.into_body(), &self.limits()).await.map_err(|e| match e {
            http_shell::Refusal::TooLarge(max) => Refusal::TooLarge(max),
            e => Refusal::Body(e),
        })?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let open = store.open_tasks(&device)?;
            let Some(task) = open
                .iter()
                .find(|t| t.status == TaskStatus::Sent && tasks::upload_name(t).as_deref() == Some(name.as_str()))
            else {
                tracing::warn!(%device, file = %name, "refused an upload no task expects");
                return Err(Refusal::NoUpload(name));
            };
            if let Some((_, meta)) = store.file(&name)? {
                if meta.get("device").and_then(serde_json::Value::as_str) != Some(device.as_str()) {
                    tracing::warn!(%device, file = %name, "refused an upload over another file");
                    return Err(Refusal::NotYourFile(name));
                }
            }
            let TaskSpec::Upload { file_type, .. } = &task.order.spec else { return Err(Refusal::NoUpload(name)) };
            let d = store.device(&device)?.unwrap_or_default();
            let meta = json!({"fileType": file_type, "oui": d.oui, "productClass": d.product_class, "device": device});
            store.put_file(&name, &body, &meta, now())?;
            tracing::info!(%device, file = %name, bytes = body.len(), task = task.id, "file uploaded");
            Ok(text(StatusCode::CREATED, String::new()))
        })
        .await?
    }

    /// A method the CPE called (its answer went out with the session already): recorded as an
    /// event, the latest of each kind under `Events.<Method>.` in the device's parameters (so
    /// the NBI shows and queries it), sent to webhooks, and acted on: a DUStateChangeComplete
    /// finishes its changeDUState task.
    fn on_cpe_request(&self, dev: &str, body: &Body) {
        let at = now();
        let Some((method, command_key, detail)) = cpe_request_record(body) else { return };
        tracing::info!(device = %dev, method, command_key, "CPE request");
        crate::store::logged(self.store.add_event(dev, method, &command_key, at), "a CPE request's event");
        let prefix = format!("Events.{method}.");
        let mut leaves = vec![CachedParam {
            name: format!("{prefix}Time"),
            ty: "dateTime".into(),
            value: crate::query::iso(at),
            updated: at,
        }];
        flatten(&prefix, &detail, at, &mut leaves);
        crate::store::logged(self.store.forget_params(dev, &prefix), "the previous record of a CPE request");
        crate::store::logged(self.store.cache_params(dev, &leaves), "a CPE request's record");
        self.webhooks.send(crate::webhooks::Event::cpe_request(dev, method, detail, at));
        if let Body::DUStateChangeComplete(c) = body {
            self.on_du_state_change_complete(dev, c);
        }
    }

    fn on_du_state_change_complete(&self, dev: &str, c: &cwmp::DUStateChangeComplete) {
        let Some(tasks) = crate::store::logged(self.store.tasks(Some(dev)), "a DUStateChangeComplete (its task)")
        else {
            return;
        };
        let Some(t) = tasks.iter().find(|t| {
            t.key == c.command_key
                && t.status == TaskStatus::Sent
                && matches!(t.order.spec, TaskSpec::ChangeDuState { .. })
        }) else {
            return;
        };
        let failed = c.results.iter().find(|r| r.fault.code != 0);
        let r = match failed {
            None => {
                tracing::info!(device = %dev, task = t.id, "deployment-unit change complete");
                let results: Vec<serde_json::Value> = c.results.iter().map(op_result_json).collect();
                self.store.complete(t.id, &json!({"status": 0, "results": results})).map(|_| ())
            }
            Some(r) => {
                let failure = tasks::Failure::Transfer(r.fault.clone());
                let detail = format!("{} {}: {}", r.uuid, r.current_state, r.fault.string);
                self.store.fault(dev, Some(t.id), &failure.code(), failure.message(), &detail, now()).map(|_| ())
            }
        };
        crate::store::logged(r, "a DUStateChangeComplete's task");
        let what = if failed.is_none() { "task.done" } else { "task.fault" };
        self.webhooks.send(crate::webhooks::Event::task(dev, what, t.id, now()));
        self.task_events.notify_waiters();
    }

    /// A cancelTransfer the CPE accepted: the transfer it named will not complete; its task
    /// is recorded as faulted (`transfer.cancelled`).
    fn on_cancelled(&self, dev: &str, key: &str, by: i64) {
        let Some(tasks) = crate::store::logged(self.store.tasks(Some(dev)), "a cancelled transfer's task") else {
            return;
        };
        let Some(t) = tasks.iter().find(|t| !key.is_empty() && t.key == key && t.status == TaskStatus::Sent) else {
            return;
        };
        let recorded =
            self.store.fault(dev, Some(t.id), "transfer.cancelled", &format!("cancelled by task {by}"), "", now());
        crate::store::logged(recorded, "a cancelled transfer");
        self.webhooks.send(crate::webhooks::Event::task(dev, "task.fault", t.id, now()));
    }

    /// Whether a CPE logged in with `c` may speak for device `id`: its scope allows it; or `c` is
    /// a host's credential naming the virtual devices it proxies (TR-069 Annex J.2), `id` is
    /// under that prefix, and its SerialNumber is a subscriber the ACS placed on that host or
    /// whose running migration goes to it. A host may so speak for its own vRGWs and no other
    /// host's, and only for subscribers the ACS itself placed.
    pub fn may_speak_for(&self, c: &CpeCredential, id: &cwmp::DeviceId) -> Result<bool, crate::store::StoreError> {
        let dev = id.key();
        if c.scope.allows(&dev) {
            return Ok(true);
        }
        let (crate::store::Scope::Device(host), Some(prefix)) = (&c.scope, &c.proxies) else { return Ok(false) };
        if !dev.starts_with(prefix.as_str()) || id.serial_number.is_empty() {
            return Ok(false);
        }
        let subscriber = id.serial_number.as_str();
        if self.store.placement(subscriber)?.is_some_and(|p| &p.device == host) {
            return Ok(true);
        }
        let migrating_here = |r: &serde_json::Value| {
            r["status"] == "running" && r["subscriber"] == subscriber && r["target"] == host.as_str()
        };
        Ok(self.store.migrations()?.iter().any(|(_, r)| migrating_here(r)))
    }

    /// A virtual device informed through the host its subscriber is placed on: unless the OSS
    /// named another, it is the device the subscriber's web-form settings go to.
    fn virtual_gateway(&self, id: &cwmp::DeviceId) {
        let dev = id.key();
        let sub = match self.store.subscriber(&id.serial_number) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => return tracing::warn!(device = %dev, "the subscriber of a virtual device: {e}"),
        };
        if sub.gateway.is_some() {
            return;
        }
        match self.store.set_gateway(&sub.id, Some(&dev)) {
            Ok(_) => {
                tracing::info!(subscriber = %sub.id, device = %dev, "the subscriber's settings go to their virtual device")
            }
            Err(e) => tracing::warn!(device = %dev, "recording the subscriber's gateway: {e}"),
        }
    }

    /// A credential by user name: the configuration file's, else the store's.
    pub fn credential(&self, user: &str) -> Result<Option<CpeCredential>, crate::store::StoreError> {
        match self.config.credentials.iter().find(|c| c.username == user) {
            Some(c) => Ok(Some(c.clone())),
            None => self.store.cpe_credential(user),
        }
    }

    /// Checks the first POST of a session: the credential it logged in with, or the answer (a
    /// 401 with fresh challenges, the same whatever went wrong; 500 when the store failed).
    fn authenticate(
        &self,
        req: &Request<Incoming>,
        peer: std::net::IpAddr,
    ) -> Result<CpeCredential, Box<Response<Full<Bytes>>>> {
        let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let attempt = Attempt { method: "POST", uri, header, tls: self.config.tls };
        let found = std::cell::RefCell::new(None);
        let failed = std::cell::RefCell::new(None);
        let checked = self.verifier.check(
            attempt,
            |user| match self.credential(user) {
                Ok(c) => {
                    let ha1 = c.as_ref().map(|c| c.ha1.clone());
                    *found.borrow_mut() = c;
                    ha1
                }
                Err(e) => {
                    *failed.borrow_mut() = Some(e);
                    None
                }
            },
            now(),
        );
        if let Some(e) = failed.into_inner() {
            tracing::error!(%peer, "CPE credentials not read: {e}");
            return Err(Box::new(Refusal::Store(e).reply()));
        }
        match (checked, found.into_inner()) {
            (Ok(_), Some(c)) => Ok(c),
            (Err(cwmp::auth::AuthError::Missing), _) => {
                Err(Box::new(self.unauthorized(Refusal::Unauthenticated(cwmp::auth::AuthError::Missing))))
            }
            (Err(e), _) => {
                tracing::warn!(%peer, "CPE authentication failed: {e}");
                Err(Box::new(self.unauthorized(Refusal::Unauthenticated(e))))
            }
            (Ok(user), None) => {
                tracing::error!(%peer, user, "authenticated without a credential");
                Err(Box::new(self.unauthorized(Refusal::Unauthenticated(cwmp::auth::AuthError::UnknownUser(user)))))
            }
        }
    }

    /// A 401 with fresh challenges.
    fn unauthorized(&self, why: Refusal) -> Response<Full<Bytes>> {
        // A first POST without credentials, or with a stale nonce, is Digest's challenge, not a
        // refusal.
        let challenge =
            matches!(why, Refusal::Unauthenticated(cwmp::auth::AuthError::Missing | cwmp::auth::AuthError::BadNonce));
        if !challenge {
            self.session_outcome("refused");
        }
        let mut r = why.reply();
        for c in self.verifier.challenges_for(now(), self.config.tls) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        r
    }

    fn handle(&self, cookie: Option<String>, body: &[u8], credential: Option<&CpeCredential>) -> Outcome {
        let t = Instant::now();
        let (id, mut s) = match cookie.and_then(|c| self.sessions().remove(&c).map(|s| (c, s))) {
            Some(v) => v,
            None => {
                if body.iter().all(u8::is_ascii_whitespace) {
                    return Outcome::Reply(Refusal::NoInform.reply());
                }
                let cfg = AcsConfig {
                    session_timeout: self.config.session_timeout,
                    limits: cwmp::Limits { max_body: self.config.max_body, ..cwmp::Limits::default() },
                    ..AcsConfig::default()
                };
                (
                    random_hex(16),
                    Session {
                        cwmp: AcsSession::new(cfg, t),
                        device: None,
                        running: None,
                        local: Default::default(),
                        cr_setup: None,
                        retrying: Vec::new(),
                        scripts: None,
                        script_local: Default::default(),
                        lease_renew: None,
                        started: None,
                    },
                )
            }
        };
        let first = s.device.is_none();
        if let (Some(dev), Some(renew)) = (&s.device, s.lease_renew) {
            if t >= renew {
                match self.store.lease(&crate::store::leases::device_key(dev), self.lease_secs()) {
                    Ok(true) => s.lease_renew = Some(t + self.lease_renewal()),
                    Ok(false) => {
                        // Expired and taken by another node: this session must not go on.
                        tracing::error!(device = %dev, "the session's lease went to another ACS node; session dropped");
                        self.session_outcome("failed");
                        self.end(&id, &s);
                        return Outcome::Reply(Refusal::Busy.reply());
                    }
                    Err(e) => tracing::warn!(device = %dev, "renewing the session's lease: {e}"),
                }
            }
        }
        let mut failed = false;
        s.cwmp.handle_post(body, t);
        while let Some(ev) = s.cwmp.poll_event() {
            match ev {
                AcsEvent::Inform { inform, version, .. } => {
                    let dev = inform.device_id.key();
                    if let Some(c) = credential {
                        match self.may_speak_for(c, &inform.device_id) {
                            Ok(true) if c.scope.allows(&dev) => {}
                            // A virtual device its host proxies: the subscriber's gateway.
                            Ok(true) => self.virtual_gateway(&inform.device_id),
                            Ok(false) => {
                                // Nothing of this Inform is recorded: the session is dropped unopened.
                                tracing::warn!(user = %c.username, may = %c.scope, proxies = ?c.proxies, device = %dev,
                                    "refused an Inform: the credential may not speak for this device");
                                let why = Refusal::NotYours { user: c.username.clone(), device: dev };
                                return Outcome::Reply(self.unauthorized(why));
                            }
                            Err(e) => {
                                tracing::error!(device = %dev, "refused an Inform: who may speak for it: {e}");
                                return Outcome::Reply(Refusal::Store(e).reply());
                            }
                        }
                    }
                    {
                        let mut busy = self.busy();
                        if let Some(other) = busy.get(&dev) {
                            if other != &id && self.sessions().contains_key(other) {
                                tracing::info!(device = %dev, "refused a second session while one is open");
                                self.session_outcome("refused");
                                let mut r = Refusal::Busy.reply();
                                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                                return Outcome::Reply(r);
                            }
                        }
                        busy.insert(dev.clone(), id.clone());
                    }
                    // Across ACS nodes (PostgreSQL), the device's lease; SQLite grants it.
                    match self.store.lease(&crate::store::leases::device_key(&dev), self.lease_secs()) {
                        Ok(true) => s.lease_renew = Some(t + self.lease_renewal()),
                        Ok(false) => {
                            self.busy().remove(&dev);
                            tracing::info!(device = %dev, "refused a session: one is open on another ACS node");
                            self.session_outcome("refused");
                            let mut r = Refusal::Busy.reply();
                            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                            return Outcome::Reply(r);
                        }
                        Err(e) => {
                            self.busy().remove(&dev);
                            tracing::error!(device = %dev, "refused a session: the device's lease: {e}");
                            return Outcome::Reply(Refusal::Store(e).reply());
                        }
                    }
                    tracing::info!(device = %dev, cwmp = version.as_str(), events = ?inform.events.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), "Inform");
                    let opened = self.on_inform(&dev, &inform);
                    s.local = opened.local.into();
                    s.cr_setup = opened.cr_setup;
                    s.retrying = opened.retrying;
                    s.scripts = opened.scripts;
                    s.started = Some(opened.at);
                    s.device = Some(dev);
                }
                AcsEvent::CpeRequest(Body::TransferComplete(tc)) => {
                    if let Some(dev) = &s.device {
                        self.on_transfer_complete(dev, &tc);
                    }
                }
                AcsEvent::CpeRequest(body) => {
                    if let Some(dev) = &s.device {
                        self.on_cpe_request(dev, &body);
                    }
                }
                AcsEvent::Response { response, .. } => self.on_response(&mut s, response),
                AcsEvent::Ended => {}
                AcsEvent::Failed { error, .. } => {
                    tracing::warn!(device = ?s.device, "session failed: {error}");
                    failed = true;
                }
            }
        }
        log_quirks(s.device.as_deref(), s.cwmp.take_quirks());
        self.schedule(&mut s);
        let reply = s.cwmp.poll_reply();
        let done = s.cwmp.is_done();
        let resp = match reply {
            Some(Reply::Envelope(xml)) => {
                let mut r = Response::new(Full::new(Bytes::from(xml)));
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
                if first {
                    if let Ok(v) = HeaderValue::from_str(&format!("acs_session={id}; Path=/; HttpOnly")) {
                        r.headers_mut().insert(header::SET_COOKIE, v);
                    }
                }
                r
            }
            Some(Reply::NoContent) | None => {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::NO_CONTENT;
                r
            }
        };
        if done {
            self.session_outcome(if failed { "failed" } else { "completed" });
            self.end(&id, &s);
        } else {
            self.sessions().insert(id, s);
        }
        Outcome::Reply(resp)
    }

    fn end(&self, id: &str, s: &Session) {
        if let Some(dev) = &s.device {
            let mine = {
                let mut busy = self.busy();
                let mine = busy.get(dev).map(String::as_str) == Some(id);
                if mine {
                    busy.remove(dev);
                }
                mine
            };
            if mine && s.lease_renew.is_some() {
                if let Err(e) = self.store.release(&crate::store::leases::device_key(dev)) {
                    tracing::warn!(device = %dev, "the device's lease is left to expire: {e}");
                }
            }
        }
    }

    /// How long a device's lease lasts: a session's idle timeout and a margin (a node that
    /// dies holding it keeps the device out that long at most).
    fn lease_secs(&self) -> i64 {
        i64::try_from(self.config.session_timeout.as_secs()).unwrap_or(i64::MAX / 2).saturating_add(5)
    }

    /// When a held lease is renewed: a third of its life on.
    fn lease_renewal(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.lease_secs() / 3).unwrap_or(1).max(1))
    }

    /// Records the Inform; returns the session's own requests (the connection-request
    /// credentials' set first, then the presets'), the credentials being set, the preset
    /// channels retried after a fault and the presets' scripts. Tasks whose `expiry` passed are
    /// removed, unsent.
    fn on_inform(&self, dev: &str, inform: &cwmp::Inform) -> Opened {
        let mut local: Vec<(String, TaskSpec)> = Vec::new();
        let mut scripts = None;
        let mut cr_setup = None;
        let mut retrying = Vec::new();
        let at = now();
        let find = |suffix: &str| {
            inform.parameter_list.iter().find(|p| p.name.ends_with(suffix)).map(|p| p.value.to_lexical().into_owned())
        };
        let d = Device {
            id: dev.to_string(),
            manufacturer: inform.device_id.manufacturer.clone(),
            oui: inform.device_id.oui.clone(),
            product_class: inform.device_id.product_class.clone(),
            serial_number: inform.device_id.serial_number.clone(),
            cr_url: find("ManagementServer.ConnectionRequestURL").unwrap_or_default(),
            cr_username: String::new(),
            cr_password: String::new(),
            last_inform: at,
            tags: Vec::new(),
        };
        let result = (|| -> Result<(), crate::store::StoreError> {
            let cached: Vec<CachedParam> =
                inform.parameter_list.iter().map(|p| CachedParam::from_value(p, at)).collect();
            let events: Vec<(String, String)> =
                inform.events.iter().map(|e| (e.code.clone(), e.command_key.clone())).collect();
            if self.store.record_session_start(&d, &cached, &events)? {
                tracing::info!(device = %dev, "new device");
            }
            for e in &inform.events {
                self.webhooks.send(crate::webhooks::Event::device(dev, &e.code, at));
            }
            let presets = self.presets()?;
            // A faulted preset channel is held back until its retry time (GenieACS's
            // applyPresets); then its presets run again, and the fault goes once they ran clean.
            let mut held = std::collections::HashSet::new();
            for f in self.store.device_faults(dev)? {
                if f.task.is_some() || f.channel.starts_with("task_") || f.channel == CR_CHANNEL {
                    continue;
                }
                let retry_at = f.retry_at(self.config.retry_delay_secs);
                if retry_at > at {
                    tracing::info!(device = %dev, channel = %f.channel, retries = f.retries,
                        retry_at = %crate::query::iso(retry_at), "faulted channel held back: its presets not applied");
                    held.insert(f.channel);
                } else {
                    tracing::info!(device = %dev, channel = %f.channel, retries = f.retries, "retrying a faulted channel");
                    retrying.push(f.channel);
                }
            }
            let applied = crate::presets::apply(self.store.as_ref(), &presets, dev, &inform.events, &held)?;
            local = applied.requests;
            let script_channels: Vec<String> = applied.scripts.iter().map(|c| c.channel.clone()).collect();
            if !applied.scripts.is_empty() {
                let (p, faults) = crate::script::Provisioning::new(
                    self.store.as_ref(),
                    dev,
                    at,
                    applied.scripts,
                    &self.config.scripts,
                )?;
                for f in faults {
                    self.script_fault(dev, &f);
                }
                scripts = Some(p).filter(|p| !p.is_empty());
            }
            // A retried channel with nothing to send ran clean: its fault goes now.
            let channel_of = |preset: &str| presets.iter().find(|(n, _)| n == preset).map(|(_, p)| p.channel.as_str());
            for c in std::mem::take(&mut retrying) {
                if local.iter().any(|(p, _)| channel_of(p) == Some(c.as_str())) || script_channels.contains(&c) {
                    retrying.push(c);
                } else {
                    self.store.delete_fault(dev, &c)?;
                    tracing::info!(device = %dev, channel = %c, "faulted channel retried with nothing to send: fault cleared");
                }
            }
            if inform.events.iter().any(|e| e.code == cwmp::event::BOOTSTRAP) {
                // A gateway that lost its configuration gets its subscriber's settings again.
                crate::profiles::bootstrapped(self.store.as_ref(), dev)?;
            }
            crate::profiles::catch_up(self.store.as_ref(), dev, at)?;
            if let Some((spec, creds)) = self.cr_setup(dev, inform)? {
                local.insert(0, (CR_SETUP.to_string(), spec));
                cr_setup = Some(creds);
            }
            let key = find("ManagementServer.ParameterKey");
            for t in self.store.open_tasks(dev)? {
                if t.status != TaskStatus::Sent {
                    continue;
                }
                match tasks::reconcile(&t, key.as_deref(), &inform.events) {
                    TaskStatus::Done => {
                        tracing::info!(device = %dev, task = t.id, "a task sent before an interruption was applied");
                        let result = json!({"status": 0, "confirmed": "by the key the device reports"});
                        self.store.complete(t.id, &result)?;
                        crate::profiles::record(self.store.as_ref(), dev, &t.order.spec, &result, at)?;
                    }
                    TaskStatus::Sent => {}
                    _ => self.store.mark_pending(t.id, 0)?,
                }
            }
            for t in self.store.expire_tasks(dev, now_ms())? {
                log_expired(&t);
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(device = %dev, "recording the Inform: {e}");
        }
        self.task_events.notify_waiters();
        Opened { local, cr_setup, retrying, scripts, at }
    }

    /// A provision script's fault, in its preset's channel (as GenieACS records a script's).
    fn script_fault(&self, dev: &str, f: &crate::script::ScriptFault) {
        self.metrics.fault(&f.code);
        tracing::warn!(device = %dev, provision = %f.call.name, preset = %f.call.preset, code = %f.code, "{}", f.message);
        let recorded = self.store.fault_in(
            dev,
            &f.call.channel,
            None,
            &f.code,
            &f.message,
            &format!("preset {}: {}", f.call.preset, f.detail),
            now(),
        );
        crate::store::logged(recorded, "a provision script's fault");
    }

    /// Connection-request credentials of the device's own, to set on it: at BOOTSTRAP a new
    /// password (a new or reset device), at BOOT the one the ACS holds again (a device may come
    /// back from a restart with its factory ones), and whenever the ACS holds none for it.
    fn cr_setup(
        &self,
        dev: &str,
        inform: &cwmp::Inform,
    ) -> Result<Option<(TaskSpec, CrPair)>, crate::store::StoreError> {
        let has = |code: &str| inform.events.iter().any(|e| e.code == code);
        let held = self.store.cr_credentials(dev)?;
        let creds = match held {
            Some(c) if !has(cwmp::event::BOOTSTRAP) => {
                if !has(cwmp::event::BOOT) {
                    return Ok(None);
                }
                c
            }
            _ => (CR_USERNAME.to_string(), random_hex(16)),
        };
        let Some(url) =
            inform.parameter_list.iter().find(|p| p.name.ends_with("ManagementServer.ConnectionRequestURL"))
        else {
            tracing::warn!(device = %dev, "the Inform has no ConnectionRequestURL: no connection-request credentials set");
            return Ok(None);
        };
        let ms = url.name.trim_end_matches("ConnectionRequestURL");
        let spec = TaskSpec::SetParameterValues {
            parameter_values: vec![
                cwmp::ParameterValue::new(
                    format!("{ms}ConnectionRequestUsername"),
                    cwmp::Value::String(creds.0.clone()),
                ),
                cwmp::ParameterValue::new(
                    format!("{ms}ConnectionRequestPassword"),
                    cwmp::Value::String(creds.1.clone()),
                ),
            ],
        };
        Ok(Some((spec, creds)))
    }

    fn on_transfer_complete(&self, dev: &str, tc: &cwmp::TransferComplete) {
        let Some(tasks) = crate::store::logged(self.store.tasks(Some(dev)), "a TransferComplete (its task not found)")
        else {
            return;
        };
        if let Some(t) = tasks.iter().find(|t| t.key == tc.command_key && t.status != TaskStatus::Fault) {
            let r = if tc.fault.code == 0 {
                tracing::info!(device = %dev, task = t.id, task_name = t.order.spec.name(), "transfer complete");
                let mut result = json!({"status": 0, "transferComplete": true});
                if let (Some(file), Some(m)) = (tasks::upload_name(t), result.as_object_mut()) {
                    m.insert("file".into(), json!(file));
                }
                self.store.complete(t.id, &result).map(|_| ())
            } else {
                let failure = tasks::Failure::Transfer(tc.fault.clone());
                self.store
                    .fault(dev, Some(t.id), &failure.code(), failure.message(), "TransferComplete", now())
                    .map(|_| ())
            };
            if let Err(e) = r {
                tracing::error!(device = %dev, "recording TransferComplete: {e}");
            }
            let what = if tc.fault.code == 0 { "task.done" } else { "task.fault" };
            if tc.fault.code != 0 {
                self.metrics.fault(&format!("cwmp.{}", tc.fault.code));
            }
            let outcome = if tc.fault.code == 0 { "done" } else { "fault" };
            self.metrics.tasks.get_or_create(&crate::metrics::label("outcome", outcome)).inc();
            self.webhooks.send(crate::webhooks::Event::task(dev, what, t.id, now()));
            self.task_events.notify_waiters();
        } else {
            tracing::info!(device = %dev, command_key = %tc.command_key, fault = tc.fault.code,
                "TransferComplete of no queued task (a preset's or a script's download)");
        }
    }

    fn on_response(&self, s: &mut Session, response: Body) {
        let Some(mut run) = s.running.take() else { return };
        let step = run.on_response(response, self.store.as_ref(), now());
        self.on_step(s, run, step);
    }

    /// What a task's step comes to: the next request, or the task done, faulted or waiting for
    /// its transfer.
    fn on_step(&self, s: &mut Session, run: Running, step: Step) {
        match step {
            Step::Next(body) => {
                s.cwmp.queue_request(body);
                s.running = Some(run);
            }
            Step::Done(_) if run.task.id == 0 && run.preset.as_deref() == Some(CR_SETUP) => {
                let dev = run.task.device.clone();
                crate::store::logged(
                    self.store.delete_fault(&dev, CR_CHANNEL),
                    "an earlier fault of the credentials' set",
                );
                if let Some((user, pass)) = s.cr_setup.take() {
                    match self.store.set_cr_credentials(&dev, &user, &pass) {
                        Ok(()) => tracing::info!(device = %dev, "connection-request credentials set on the device"),
                        Err(e) => {
                            tracing::error!(device = %dev, "connection-request credentials set but not recorded: {e}")
                        }
                    }
                }
            }
            Step::Done(_) if run.task.id == 0 => {}
            Step::AwaitTransfer if run.task.id == 0 => {
                tracing::info!(device = %run.task.device, preset = ?run.preset, task_name = run.task.order.spec.name(),
                    "a preset's transfer accepted; the CPE reports its completion later");
            }
            Step::Fault(f) if run.task.id == 0 => self.preset_failure(s, &run, tasks::Failure::Cpe(f)),
            Step::Failed(f) if run.task.id == 0 => self.preset_failure(s, &run, f),
            Step::Failed(failure) => {
                self.metrics.fault(&failure.code());
                self.metrics.tasks.get_or_create(&crate::metrics::label("outcome", "fault")).inc();
                let dev = run.task.device.clone();
                tracing::warn!(device = %dev, task = run.task.id, code = %failure.code(), "task failed: {}", failure.message());
                let recorded = self.store.fault(
                    &dev,
                    Some(run.task.id),
                    &failure.code(),
                    failure.message(),
                    &failure.parameters(),
                    now(),
                );
                crate::store::logged(recorded, "a task's fault");
                self.task_events.notify_waiters();
            }
            Step::Done(result) => {
                if let TaskSpec::CancelTransfer { .. } = &run.task.order.spec {
                    if let Some(key) = result.get("commandKey").and_then(serde_json::Value::as_str) {
                        self.on_cancelled(&run.task.device, key, run.task.id);
                    }
                }
                if let Err(e) = self.store.complete(run.task.id, &result) {
                    tracing::error!("recording task {}: {e}", run.task.id);
                }
                let spec = &run.task.order.spec;
                if let Err(e) = crate::profiles::record(self.store.as_ref(), &run.task.device, spec, &result, now()) {
                    tracing::error!(device = %run.task.device, task = run.task.id, "recording where subscribers are: {e}");
                }
                // The task may have shown the ACS a subscriber's vRGW where their profile is not
                // yet (an instance added, re-read, or given a Subscriber).
                if let Err(e) = crate::profiles::catch_up(self.store.as_ref(), &run.task.device, now()) {
                    tracing::error!(device = %run.task.device, "subscriber profiles: {e}");
                }
                tracing::info!(device = %run.task.device, task = run.task.id, "task done");
                self.metrics.tasks.get_or_create(&crate::metrics::label("outcome", "done")).inc();
                self.webhooks.send(crate::webhooks::Event::task(&run.task.device, "task.done", run.task.id, now()));
                self.task_events.notify_waiters();
            }
            Step::AwaitTransfer => {
                // Recorded, so that the next Inform (which need not report it yet) leaves it sent.
                crate::store::logged(
                    self.store.mark_accepted(run.task.id, &json!({"status": 1})),
                    "a transfer the device accepted",
                );
                tracing::info!(device = %run.task.device, task = run.task.id, task_name = run.task.order.spec.name(),
                    "accepted; waiting for the CPE to report its completion");
            }
            Step::Fault(f) => {
                let dev = run.task.device.clone();
                if tasks::transient(f.code) && run.task.attempts < 5 {
                    let wait = tasks::backoff(run.task.attempts);
                    self.metrics.tasks.get_or_create(&crate::metrics::label("outcome", "retry")).inc();
                    tracing::warn!(device = %dev, task = run.task.id, "transient fault {} ({}); retry in {wait} s", f.code.code(), f.string);
                    crate::store::logged(
                        self.store.mark_pending(run.task.id, now() + wait),
                        "a task's retry (it stays sent, reconciled at the next Inform)",
                    );
                } else {
                    tracing::warn!(device = %dev, task = run.task.id, "task fault {} {}", f.code.code(), f.string);
                    let failure = tasks::Failure::Cpe(f);
                    self.metrics.fault(&failure.code());
                    self.metrics.tasks.get_or_create(&crate::metrics::label("outcome", "fault")).inc();
                    let recorded = self.store.fault(
                        &dev,
                        Some(run.task.id),
                        &failure.code(),
                        failure.message(),
                        &failure.parameters(),
                        now(),
                    );
                    crate::store::logged(recorded, "a task's fault");
                }
                self.task_events.notify_waiters();
            }
        }
    }

    /// A preset's request failed: recorded in the preset's channel, which is held back from
    /// here on (its other requests and scripts of this session are not run).
    fn preset_failure(&self, s: &mut Session, run: &Running, failure: tasks::Failure) {
        self.metrics.fault(&failure.code());
        let dev = run.task.device.clone();
        tracing::warn!(device = %dev, "preset request fault {} {}", failure.code(), failure.message());
        let preset = run.preset.as_deref().unwrap_or("");
        // In the preset's channel, as GenieACS records it (`<device>:<channel>`); the
        // connection-request credentials' in a channel of their own.
        let presets = crate::store::logged(self.presets(), "the presets (for a fault's channel)");
        let channel_of = |name: &str| {
            if name == CR_SETUP {
                return CR_CHANNEL.to_string();
            }
            presets
                .as_ref()
                .and_then(|ps| ps.iter().find(|(n, _)| n == name).map(|(_, p)| p.channel.clone()))
                .unwrap_or_else(|| "default".to_string())
        };
        let channel = channel_of(preset);
        // The channel is held back from here on (GenieACS clears its provisions): its
        // other requests of this session are not sent, and it is not retried clean.
        let before = s.local.len() + s.script_local.len();
        s.local.retain(|(p, _)| channel_of(p) != channel);
        s.script_local.retain(|(p, _)| channel_of(p) != channel);
        if let Some(scripts) = s.scripts.as_mut() {
            scripts.drop_channel(&channel);
        }
        if s.local.len() + s.script_local.len() < before {
            tracing::info!(device = %dev, channel = %channel, dropped = before - s.local.len() - s.script_local.len(),
                    "the faulted channel's other requests of this session not sent");
        }
        s.retrying.retain(|c| *c != channel);
        let recorded = self.store.fault_in(
            &dev,
            &channel,
            None,
            &failure.code(),
            failure.message(),
            &format!("preset {preset}"),
            now(),
        );
        crate::store::logged(recorded, "the fault of a preset's request");
    }

    /// Queues the device's next task when nothing is running; a task with nothing to send
    /// (a `provisions` task the device already meets) is finished here and the next one taken.
    fn schedule(&self, s: &mut Session) {
        for _ in 0..MAX_UNSENT_TASKS {
            if s.running.is_some() || s.cwmp.queued() > 0 || s.cwmp.is_done() {
                return;
            }
            match self.next_task(s) {
                Some(Begin::Send(run, body)) => {
                    s.cwmp.queue_request(body);
                    s.running = Some(run);
                    return;
                }
                Some(Begin::Now(run, step)) => self.on_step(s, run, step),
                None => return,
            }
        }
    }

    /// The device's next task started: a preset's request first, then the queue's.
    fn next_task(&self, s: &mut Session) -> Option<Begin> {
        let dev = s.device.clone()?;
        let at = s.started.unwrap_or_else(now);
        let ctx = Context {
            files: &self.files,
            now: at,
            store: Some(self.store.as_ref()),
            scripts: Some(&self.config.scripts),
        };
        let mut from_script = false;
        let mut next = s.local.pop_front();
        if next.is_none() {
            next = self.next_script_request(s, &dev, at);
            from_script = next.is_some();
        }
        if let Some((preset, spec)) = next {
            let task = crate::store::Task {
                id: 0,
                device: dev.clone(),
                key: local_key(&preset),
                order: spec.into(),
                status: TaskStatus::Sent,
                attempts: 1,
                not_before: 0,
                created: at,
                result: None,
                terms: Default::default(),
            };
            return Some(match Running::start(task, &ctx) {
                Begin::Send(mut run, body) => {
                    run.preset = Some(preset);
                    run.trust_sets = from_script;
                    Begin::Send(run, body)
                }
                Begin::Now(mut run, step) => {
                    run.preset = Some(preset);
                    Begin::Now(run, step)
                }
            });
        }
        // The presets' requests all ran: the retried channels that did not fault again ran clean.
        for c in std::mem::take(&mut s.retrying) {
            if crate::store::logged(self.store.delete_fault(&dev, &c), "a retried channel's fault (kept)").is_some() {
                tracing::info!(device = %dev, channel = %c, "faulted channel retried without a fault: fault cleared");
            }
        }
        let open = crate::store::logged(self.store.open_tasks(&dev), "the device's queued tasks (not run now)")?;
        // A task whose expiry passed since the session started is removed, never sent.
        let ms = now_ms();
        if open.iter().any(|t| t.status == TaskStatus::Pending && t.terms.expired(ms)) {
            let gone = crate::store::logged(self.store.expire_tasks(&dev, ms), "expired tasks (not removed now)");
            gone.unwrap_or_default().iter().for_each(log_expired);
            self.task_events.notify_waiters();
        }
        let next =
            open.into_iter().find(|t| t.status == TaskStatus::Pending && t.not_before <= at && !t.terms.expired(ms));
        let mut task = next?;
        task.key = format!("task-{}-{}", task.id, task.attempts + 1);
        match self.store.mark_sent(task.id, &task.key) {
            Ok(true) => {}
            Ok(false) => {
                // Deleted meanwhile, or (a cluster) this node's lease on the device is gone.
                tracing::warn!(device = %dev, task = task.id, "task not claimed: no longer pending here");
                return None;
            }
            Err(e) => {
                tracing::error!("marking task {} sent: {e}", task.id);
                return None;
            }
        }
        Some(Running::start(task, &ctx))
    }

    /// The presets' scripts' next request: the round's next, or the scripts run for the next
    /// round; `None` when they are done (or there are none).
    fn next_script_request(&self, s: &mut Session, dev: &str, at: i64) -> Option<(String, TaskSpec)> {
        if let Some(r) = s.script_local.pop_front() {
            return Some(r);
        }
        let scripts = s.scripts.as_mut()?;
        let (next, faults) = match scripts.next(self.store.as_ref(), at) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(device = %dev, "the provision scripts could not read the device: {e}");
                s.scripts = None;
                return None;
            }
        };
        for f in &faults {
            self.script_fault(dev, f);
            s.retrying.retain(|c| *c != f.call.channel);
        }
        match next {
            crate::script::Next::Send(requests) => {
                s.script_local = requests.into();
                s.script_local.pop_front()
            }
            crate::script::Next::Done => {
                let stats = scripts.stats;
                tracing::info!(device = %dev, runs = stats.runs, rounds = stats.rounds, "provision scripts done");
                self.metrics.script_runs.inc_by(u64::from(stats.runs));
                self.metrics.script_rounds.observe(f64::from(stats.rounds));
                s.scripts = None;
                None
            }
        }
    }

    /// Ends the sessions whose state machine's deadline passed (`AcsSession::deadline`, the
    /// session timeout after the CPE's last POST): their devices can open new ones. A task they
    /// were running stays sent and is reconciled at the device's next Inform.
    pub fn sweep(&self) {
        self.sweep_at(Instant::now());
    }

    fn sweep_at(&self, t: Instant) {
        let mut gone = Vec::new();
        {
            let mut sessions = self.sessions();
            let due: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| s.cwmp.deadline().is_some_and(|d| t >= d))
                .map(|(k, _)| k.clone())
                .collect();
            for k in due {
                if let Some(mut s) = sessions.remove(&k) {
                    self.session_outcome("timeout");
                    s.cwmp.handle_timeout(t);
                    while let Some(ev) = s.cwmp.poll_event() {
                        if let AcsEvent::Failed { error, outstanding } = ev {
                            tracing::warn!(device = ?s.device, unanswered = ?outstanding.as_ref().map(Body::method_name), "session timed out: {error}");
                        }
                    }
                    gone.push((k, s));
                }
            }
        }
        for (k, s) in gone {
            self.end(&k, &s);
        }
    }

    /// Serves the CWMP endpoint on `listener` until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve_tls(listener, None, shutdown).await
    }

    /// Serves the CWMP endpoint, over TLS when `tls` is given.
    pub async fn serve_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let sweeper = {
            let acs = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    acs.sweep();
                }
            })
        };
        let limits = self.limits();
        let served =
            http_shell::serve(listener, tls, limits, move |req, peer| self.clone().http(req, peer), shutdown).await;
        sweeper.abort();
        served
    }
}

/// A CPE's own request as the ACS records it: the method, its CommandKey (empty when it has
/// none) and its content under CWMP's names (`FileType`, `StartTime`, `Results.1.UUID`, ...).
/// None for the methods recorded elsewhere (Inform, TransferComplete) or not recorded
/// (GetRPCMethods, Kicked).
fn cpe_request_record(body: &Body) -> Option<(&'static str, String, serde_json::Value)> {
    let fault = |f: &cwmp::TransferFault| json!({"FaultCode": f.code, "FaultString": f.string});
    Some(match body {
        Body::RequestDownload(r) => {
            let args: Vec<serde_json::Value> =
                r.file_type_arg.iter().map(|a| json!({"Name": a.name, "Value": a.value})).collect();
            ("RequestDownload", String::new(), json!({"FileType": r.file_type, "FileTypeArg": args}))
        }
        Body::AutonomousTransferComplete(t) => (
            "AutonomousTransferComplete",
            String::new(),
            json!({
                "AnnounceURL": t.announce_url, "TransferURL": t.transfer_url, "IsDownload": t.is_download,
                "FileType": t.file_type, "FileSize": t.file_size, "TargetFileName": t.target_file_name,
                "FaultStruct": fault(&t.fault), "StartTime": t.start_time.as_str(),
                "CompleteTime": t.complete_time.as_str(),
            }),
        ),
        Body::DUStateChangeComplete(c) => {
            let results: Vec<serde_json::Value> = c.results.iter().map(op_result_cwmp).collect();
            ("DUStateChangeComplete", c.command_key.clone(), json!({"CommandKey": c.command_key, "Results": results}))
        }
        Body::AutonomousDUStateChangeComplete(c) => {
            let results: Vec<serde_json::Value> = c
                .results
                .iter()
                .map(|r| {
                    let mut j = op_result_cwmp(&r.result);
                    if let Some(m) = j.as_object_mut() {
                        m.insert("OperationPerformed".into(), json!(r.operation_performed));
                    }
                    j
                })
                .collect();
            ("AutonomousDUStateChangeComplete", String::new(), json!({"Results": results}))
        }
        _ => return None,
    })
}

/// An `OpResultStruct` under CWMP's names.
fn op_result_cwmp(r: &cwmp::OpResult) -> serde_json::Value {
    json!({
        "UUID": r.uuid, "DeploymentUnitRef": r.deployment_unit_ref, "Version": r.version,
        "CurrentState": r.current_state, "Resolved": r.resolved, "ExecutionUnitRefList": r.execution_unit_ref_list,
        "StartTime": r.start_time.as_str(), "CompleteTime": r.complete_time.as_str(),
        "FaultStruct": {"FaultCode": r.fault.code, "FaultString": r.fault.string},
    })
}

/// An `OpResultStruct` in a changeDUState task's result (camelCase, as task results are).
fn op_result_json(r: &cwmp::OpResult) -> serde_json::Value {
    json!({
        "uuid": r.uuid, "deploymentUnitRef": r.deployment_unit_ref, "version": r.version,
        "currentState": r.current_state, "resolved": r.resolved, "executionUnitRefList": r.execution_unit_ref_list,
        "startTime": r.start_time.as_str(), "completeTime": r.complete_time.as_str(),
    })
}

/// A record's content as cached parameters below `prefix`: objects by name, arrays by 1-based
/// instance number, as CWMP numbers table rows; times typed `dateTime`.
fn flatten(prefix: &str, v: &serde_json::Value, at: i64, out: &mut Vec<CachedParam>) {
    use serde_json::Value as J;
    let leaf = |ty: &str, value: String| CachedParam {
        name: prefix.trim_end_matches('.').to_string(),
        ty: ty.into(),
        value,
        updated: at,
    };
    match v {
        J::Object(m) => m.iter().for_each(|(k, v)| flatten(&format!("{prefix}{k}."), v, at, out)),
        J::Array(a) => a.iter().enumerate().for_each(|(i, v)| flatten(&format!("{prefix}{}.", i + 1), v, at, out)),
        J::Bool(b) => out.push(leaf("boolean", b.to_string())),
        J::Number(n) if n.is_u64() => out.push(leaf("unsignedInt", n.to_string())),
        J::Number(n) => out.push(leaf("int", n.to_string())),
        J::String(s) if prefix.ends_with("Time.") && cwmp::DateTime::parse(s).is_some() => {
            out.push(leaf("dateTime", s.clone()))
        }
        J::String(s) => out.push(leaf("string", s.clone())),
        J::Null => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeviceStore;
    use cwmp::{CwmpVersion, DateTime, DeviceId, Envelope, Event, Inform};

    #[test]
    fn sessions_end_at_the_state_machines_deadline() {
        let store = Arc::new(crate::store::SqliteStore::open(std::path::Path::new(":memory:")).expect("store"));
        let acs = Acs::new(store, config(), crate::webhooks::Sender::none());
        let body = inform_body("s");
        let Outcome::Reply(r) = acs.handle(None, b"  ", None);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "a session starts with an Inform");
        assert_eq!(acs.open_sessions(), 0);
        assert_eq!(Refusal::Busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(Refusal::TooLarge(10).to_string(), "body over 10 bytes");
        let t0 = Instant::now();
        let Outcome::Reply(r) = acs.handle(None, body.as_bytes(), None);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(acs.open_sessions(), 1);
        acs.sweep_at(t0 + Duration::from_secs(29));
        assert_eq!(acs.open_sessions(), 1, "before the deadline");
        acs.sweep_at(t0 + Duration::from_secs(31));
        assert_eq!(acs.open_sessions(), 0, "timed out by the session's own deadline");
        assert!(acs.busy().is_empty(), "the device may open a new session");
    }

    #[test]
    fn local_keys_fit_in_a_parameter_key() {
        assert_eq!(local_key("wifi"), "preset-wifi");
        let cr = local_key(CR_SETUP);
        assert!(cr.len() <= 32 && cr.starts_with("preset-connect"), "{cr}");
        assert_eq!(cr, local_key(CR_SETUP), "the same every time");
        let long = |n: &str| local_key(&format!("a-preset-with-a-long-name-{n}"));
        assert_ne!(long("one"), long("two"));
        assert!(local_key(&"é".repeat(40)).len() <= 32);
    }

    fn config() -> EndpointConfig {
        EndpointConfig {
            cpe_auth: CpeAuth::Required,
            credentials: Vec::new(),
            tls: false,
            session_timeout: Duration::from_secs(30),
            max_body: 1 << 20,
            file_base_url: String::new(),
            retry_delay_secs: 300,
            scripts: Default::default(),
            trusted_proxies: Vec::new(),
        }
    }

    fn inform_body(serial: &str) -> String {
        let inform = Inform {
            device_id: DeviceId {
                manufacturer: "m".into(),
                oui: "00A0B1".into(),
                product_class: "p".into(),
                serial_number: serial.into(),
            },
            events: vec![Event::new("1 BOOT")],
            max_envelopes: 1,
            current_time: DateTime::from_unix(0),
            retry_count: 0,
            parameter_list: vec![],
        };
        Envelope::new(CwmpVersion::V1_0.namespace(), Some("1".into()), Body::Inform(inform)).encode()
    }

    /// A virtual device's Inform (product class `vRGW`).
    fn virtual_inform(serial: &str) -> Vec<u8> {
        inform_body(serial).replace("<ProductClass>p</ProductClass>", "<ProductClass>vRGW</ProductClass>").into_bytes()
    }

    #[test]
    fn a_host_speaks_for_the_virtual_devices_of_subscribers_placed_on_it_and_no_other() {
        use crate::store::{MigrationStore, PlacementStore, SubscriberStore};
        let store = Arc::new(crate::store::SqliteStore::open(std::path::Path::new(":memory:")).expect("store"));
        let acs = Acs::new(store.clone(), config(), crate::webhooks::Sender::none());
        let host = |id: &str| CpeCredential {
            username: id.into(),
            ha1: crate::auth::Ha1::of(id, REALM, "pw"),
            scope: crate::store::Scope::Device(format!("00A0B1-H-{id}")),
            proxies: Some("00A0B1-vRGW-".into()),
        };
        let (a, b) = (host("a"), host("b"));
        let status = |c: &CpeCredential, serial: &str| {
            let Outcome::Reply(r) = acs.handle(None, &virtual_inform(serial), Some(c));
            if r.status() == StatusCode::OK {
                // Out of the session again, so the next Inform of the device is a new one.
                acs.sessions().clear();
                acs.busy().clear();
            }
            r.status()
        };
        assert!(virtual_inform("alice").windows(4).any(|w| w == b"vRGW"), "the Inform names a virtual device");
        // Nobody placed alice yet: neither host speaks for her.
        assert_eq!(status(&a, "alice"), StatusCode::UNAUTHORIZED);
        assert!(store.device("00A0B1-vRGW-alice").expect("read").is_none(), "nothing stored");
        store.place("alice", "00A0B1-H-a", 3, 1).expect("place");
        store.put_subscriber("alice", "hash", 1).expect("account");
        assert_eq!(status(&a, "alice"), StatusCode::OK);
        // Her web-form settings now go to her virtual device.
        let gateway = store.subscriber("alice").expect("read").and_then(|s| s.gateway);
        assert_eq!(gateway.as_deref(), Some("00A0B1-vRGW-alice"));
        assert_eq!(status(&b, "alice"), StatusCode::UNAUTHORIZED, "another host's vRGW");
        assert_eq!(status(&a, "bob"), StatusCode::UNAUTHORIZED, "a subscriber placed nowhere");
        // Outside the prefix it names, its own device only.
        let Outcome::Reply(r) = acs.handle(None, inform_body("alice").as_bytes(), Some(&a));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        // While alice's vRGW migrates to b, b may speak for her too; once it is over, no more.
        let record = serde_json::json!({"status": "running", "source": "00A0B1-H-a", "instance": 3,
            "target": "00A0B1-H-b", "subscriber": "alice"});
        let id = store.start_migration(&record).expect("start").expect("started");
        assert_eq!(status(&b, "alice"), StatusCode::OK);
        let mut done = record.clone();
        done["status"] = serde_json::json!("failed");
        store.put_migration(id, &done).expect("end");
        assert_eq!(status(&b, "alice"), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_credential_speaks_only_for_its_devices_and_a_refused_inform_stores_nothing() {
        let store = Arc::new(crate::store::SqliteStore::open(std::path::Path::new(":memory:")).expect("store"));
        let acs = Acs::new(store.clone(), config(), crate::webhooks::Sender::none());
        let cred = |scope| CpeCredential {
            username: "u".into(),
            ha1: crate::auth::Ha1::of("u", REALM, "pw"),
            scope,
            proxies: None,
        };
        let one = cred(crate::store::Scope::Device("00A0B1-p-a".into()));
        let Outcome::Reply(r) = acs.handle(None, inform_body("b").as_bytes(), Some(&one));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_some(), "fresh challenges");
        assert_eq!(acs.open_sessions(), 0);
        assert!(store.device("00A0B1-p-b").expect("read").is_none(), "nothing of the refused Inform stored");
        let Outcome::Reply(r) = acs.handle(None, inform_body("a").as_bytes(), Some(&one));
        assert_eq!(r.status(), StatusCode::OK);
        let fleet = cred(crate::store::Scope::DevicePrefix("00A0B1-p-".into()));
        let Outcome::Reply(r) = acs.handle(None, inform_body("c").as_bytes(), Some(&fleet));
        assert_eq!(r.status(), StatusCode::OK);
        let other = cred(crate::store::Scope::DevicePrefix("00A0B1-q-".into()));
        let Outcome::Reply(r) = acs.handle(None, inform_body("d").as_bytes(), Some(&other));
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(store.device("00A0B1-p-a").expect("read").is_some());
        assert!(store.device("00A0B1-p-d").expect("read").is_none());
    }
}
