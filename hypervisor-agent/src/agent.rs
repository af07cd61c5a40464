//! The CWMP side: sessions toward the ACS (the `cwmp` crate's `CpeSession` over HTTP or HTTPS
//! through `http_shell::cpe::Link`: cookies, Digest, Basic when the ACS offers it), the events that open them, and the connection-request listener.
//!
//! Events are queued in the agent's store before anything else happens and removed only when an
//! InformResponse acknowledged them, so a crash or restart loses none. "0 BOOTSTRAP" is queued
//! on the first start ever (and after a factory reset), "1 BOOT" on every start, "2 PERIODIC"
//! by the periodic timer (PeriodicInformInterval aligned to PeriodicInformTime), "4 VALUE CHANGE"
//! by the host thread, "6 CONNECTION REQUEST" by an authenticated connection request, "7
//! TRANSFER COMPLETE" with "M Download" after a Download. A failed session is retried after the
//! wait of TR-069 3.2.1.1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cwmp::auth::{Attempt, Verifier};
use cwmp::{Body, DateTime, DeviceId, Event, Fault, FaultCode, Inform, Value};
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::session::{Cpe, LinkSettings, LoopState};
use crate::worker::HostHandle;

/// Settings of the CWMP side.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The ACS URL (`http://` or `https://`).
    pub acs_url: String,
    /// Credentials toward the ACS.
    pub acs_username: String,
    /// Password toward the ACS (never logged).
    pub acs_password: String,
    /// PEM file of the CAs that sign the ACS's certificate (https only).
    pub acs_ca_file: Option<std::path::PathBuf>,
    /// The identity in every Inform.
    pub device_id: DeviceId,
    /// The URL the ACS must use for connection requests (the listener's public address).
    pub connection_request_url: String,
    /// Default connection-request credentials (ManagementServer.ConnectionRequestUsername and
    /// Password, until the ACS sets others).
    pub cr_username: String,
    /// See `cr_username`.
    pub cr_password: String,
    /// Where Download puts files.
    pub download_dir: std::path::PathBuf,
    /// The largest file a Download may bring, bytes.
    pub download_max_bytes: u64,
    /// PeriodicInformInterval until the ACS sets one, seconds.
    pub periodic_inform_interval: u32,
}

/// What the agent shares between its session loop and its connection-request listener.
pub struct Agent {
    cfg: AgentConfig,
    host: HostHandle,
    /// The session loop's state (its wake-up, retries, the host's own requests).
    pub loop_state: LoopState,
    verifier: Verifier,
    /// Connection-request token bucket: tokens left and when they were counted.
    cr_bucket: CrBucket,
    tls: Option<http_shell::client::TlsConnector>,
    /// The virtual devices running now (their connection requests come to this listener).
    pub virtuals: crate::vagent::Registry,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("acs", &self.cfg.acs_url).finish()
    }
}

const MS: &str = "Device.ManagementServer.";

/// The connection-request listener's limits: bodyless GETs from one ACS, answered at once.
pub(crate) fn cr_limits() -> http_shell::Limits {
    http_shell::Limits {
        max_connections: 256,
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(30),
        max_body: 64 * 1024,
        ..http_shell::Limits::default()
    }
}

/// Connection requests accepted in a burst.
const CR_BURST: f64 = 10.0;
/// One more connection request allowed per this much time.
const CR_REFILL: Duration = Duration::from_millis(100);

/// A device's connection requests, limited by a token bucket: bursts of 10, refilled at one
/// per 100 ms. Each device the agent speaks for (the host, each virtual device)
/// has its own: one device's requests never use up another's.
#[derive(Debug, Default)]
pub struct CrBucket(Mutex<Option<(f64, Instant)>>);

impl CrBucket {
    /// Takes a token; false when there is none (the request is refused).
    pub fn take(&self) -> bool {
        let mut bucket = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (mut tokens, at) = bucket.unwrap_or((CR_BURST, Instant::now()));
        tokens = (tokens + at.elapsed().as_secs_f64() / CR_REFILL.as_secs_f64()).min(CR_BURST);
        let took = tokens >= 1.0;
        *bucket = Some((if took { tokens - 1.0 } else { tokens }, Instant::now()));
        took
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A failed session.
#[derive(Debug, thiserror::Error)]
pub enum SessionFailure {
    /// The ACS could not be reached or broke the exchange.
    #[error("ACS: {0}")]
    Transport(String),
    /// The ACS answered with an HTTP error.
    #[error("ACS answered HTTP {0}")]
    Http(u16),
    /// The CWMP exchange failed.
    #[error("CWMP: {0}")]
    Cwmp(String),
    /// The host thread is gone.
    #[error("the host thread stopped")]
    Host,
    /// The agent's store could not be read.
    #[error("the agent's store: {0}")]
    State(String),
}

impl Agent {
    /// Sets the management server parameters from the configuration and queues the start-up
    /// events.
    pub async fn new(cfg: AgentConfig, host: HostHandle) -> Result<Arc<Agent>, String> {
        let tls = if cfg.acs_url.starts_with("https://") {
            let file = cfg
                .acs_ca_file
                .as_deref()
                .ok_or("an https ACS URL needs acs_ca_file (the PEM of the CA that signs the ACS)")?;
            Some(http_shell::client::tls_connector(file)?)
        } else {
            None
        };
        let c = cfg.clone();
        host.run(move |h| {
            let st = h.state();
            let first = st.meta("bootstrapped")?.is_none();
            if first {
                st.push_event(cwmp::event::BOOTSTRAP, "")?;
            }
            st.push_event(cwmp::event::BOOT, "")?;
            let root = h.model.root_mut();
            let set = |root: &mut datamodel::Tree, p: &str, v: Value| {
                if let Err(e) = root.set_internal(p, v) {
                    tracing::warn!(parameter = p, "{}", e.string);
                }
            };
            set(root, &format!("{MS}URL"), Value::String(c.acs_url.clone()));
            set(root, &format!("{MS}ConnectionRequestURL"), Value::String(c.connection_request_url.clone()));
            set(root, "Device.DeviceInfo.Manufacturer", Value::String(c.device_id.manufacturer.clone()));
            set(root, "Device.DeviceInfo.ManufacturerOUI", Value::String(c.device_id.oui.clone()));
            set(root, "Device.DeviceInfo.ProductClass", Value::String(c.device_id.product_class.clone()));
            set(root, "Device.DeviceInfo.SerialNumber", Value::String(c.device_id.serial_number.clone()));
            set(root, "Device.DeviceInfo.SoftwareVersion", Value::String(env!("CARGO_PKG_VERSION").into()));
            if first {
                set(
                    root,
                    &format!("{MS}PeriodicInformInterval"),
                    Value::UnsignedInt(c.periodic_inform_interval.max(1)),
                );
                set(root, &format!("{MS}ConnectionRequestUsername"), Value::String(c.cr_username.clone()));
                set(root, &format!("{MS}ConnectionRequestPassword"), Value::String(c.cr_password.clone()));
                set(root, &format!("{MS}PeriodicInformEnable"), Value::Boolean(true));
            }
            Ok::<_, crate::state::StateError>(())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let mut secret = [0u8; 32];
        http_shell::fill_random(&mut secret);
        let loop_state = LoopState::with_own(kept_own_requests(&host, ""));
        Ok(Arc::new(Agent {
            cfg,
            host,
            loop_state,
            verifier: Verifier::new("hypervisor-agent", secret),
            cr_bucket: CrBucket::default(),
            tls,
            virtuals: Default::default(),
        }))
    }

    /// The TLS settings toward an `https://` ACS (shared with the virtual devices).
    pub fn tls(&self) -> Option<http_shell::client::TlsConnector> {
        self.tls.clone()
    }

    /// Queues an event (durably) and wakes the session loop.
    /// The store is read and written here, not on the host thread (which may be waiting for
    /// libvirt or a vRGW): its transactions are short and local.
    pub async fn trigger(&self, code: &str, command_key: &str) {
        if let Err(e) = self.host.shared().state().push_event(code, command_key) {
            tracing::error!(event = code, "queueing: {e}");
        }
        self.loop_state.wake.notify_one();
    }

    /// Time until the next periodic Inform, from PeriodicInformEnable, Interval and Time.
    fn periodic_wait(&self) -> Option<Duration> {
        let values = self.host.shared().view().periodic;
        let (Some(Value::Boolean(true)), Some(Value::UnsignedInt(interval))) = (values.0, values.1) else {
            return None;
        };
        let interval = i64::from(interval.max(1));
        let anchor = match values.2 {
            Some(Value::DateTime(t)) => t.to_unix().unwrap_or(0),
            _ => 0,
        };
        let now = now_secs();
        let since = (now - anchor).rem_euclid(interval);
        Some(Duration::from_secs((interval - since) as u64))
    }

    /// The session loop ([`crate::session::run_until`]). Never returns.
    pub async fn run(self: Arc<Self>) {
        self.run_until(std::future::pending()).await
    }

    /// The same until `shutdown` completes: a session under way is finished first (its events
    /// are acknowledged or stay queued), then the loop returns.
    pub async fn run_until(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        crate::session::run_until(&*self, shutdown).await
    }

    /// The Inform: queued events, the parameters every Inform carries and the changed ones, as
    /// the host thread last published them (it may be busy).
    fn host_inform(&self) -> Result<(Inform, i64, Vec<String>), SessionFailure> {
        let shared = self.host.shared();
        // No Inform without its events: the session fails and is retried.
        let events = shared.state().events().map_err(|e| SessionFailure::State(e.to_string()))?;
        let last = events.last().map_or(0, |e| e.0);
        let mut list = shared.view().inform;
        let changed = shared.pending_changes();
        let names: Vec<String> = changed.iter().map(|p| p.name.clone()).collect();
        for c in changed {
            if !list.iter().any(|p| p.name == c.name) {
                list.push(c);
            }
        }
        let inform = Inform {
            device_id: self.cfg.device_id.clone(),
            events: events.into_iter().map(|(_, code, key)| Event { code, command_key: key }).collect(),
            max_envelopes: 1,
            current_time: DateTime::from_unix(now_secs()),
            retry_count: self.loop_state.retry_count(),
            parameter_list: list,
        };
        Ok((inform, last, names))
    }

    /// One session ([`crate::session::session`]).
    pub async fn session(&self) -> Result<(), SessionFailure> {
        crate::session::session(self).await
    }

    /// Carries out one ACS request.
    async fn host_carry_out(&self, req: Body, after: &mut Vec<(String, String)>) -> Body {
        match req {
            Body::Reboot(r) => {
                // The agent does not reboot its host machine: it starts over as after a boot.
                after.push((cwmp::event::BOOT.into(), String::new()));
                after.push((cwmp::event::M_REBOOT.into(), r.command_key));
                Body::RebootResponse(cwmp::RebootResponse {})
            }
            Body::ScheduleInform(si) => {
                // An Inform with "3 SCHEDULED" and "M ScheduleInform" after the delay. Not kept
                // across a restart of the agent (its BOOT Inform follows then instead).
                let (shared, wake) = (self.host.shared().clone(), self.loop_state.wake.clone());
                let delay = Duration::from_secs(u64::from(si.delay_seconds));
                tracing::info!(delay_s = si.delay_seconds, key = %si.command_key, "Inform scheduled");
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    for (code, key) in [("3 SCHEDULED", String::new()), ("M ScheduleInform", si.command_key)] {
                        if let Err(e) = shared.state().push_event(code, &key) {
                            tracing::error!(event = code, "queueing: {e}");
                        }
                    }
                    wake.notify_one();
                });
                Body::ScheduleInformResponse(cwmp::ScheduleInformResponse {})
            }
            Body::FactoryReset(_) => Body::Fault(Fault::with_string(
                FaultCode::RequestDenied,
                "a hypervisor host is not factory-reset over CWMP; delete its instances instead",
            )),
            Body::Download(d) => {
                let started = now_secs();
                let fault = match self.download(&d).await {
                    Ok(path) => {
                        tracing::info!(url = %d.url, path = %path.display(), "downloaded");
                        cwmp::TransferFault::none()
                    }
                    Err(e) => {
                        tracing::warn!(url = %d.url, "download failed: {e}");
                        cwmp::TransferFault { code: 9016, string: e }
                    }
                };
                self.loop_state.push_own(Body::TransferComplete(cwmp::TransferComplete {
                    command_key: d.command_key.clone(),
                    fault,
                    start_time: DateTime::from_unix(started),
                    complete_time: DateTime::from_unix(now_secs()),
                }));
                after.push((cwmp::event::TRANSFER_COMPLETE.into(), String::new()));
                after.push((cwmp::event::M_DOWNLOAD.into(), d.command_key));
                Body::DownloadResponse(cwmp::DownloadResponse {
                    status: 1,
                    start_time: DateTime::unknown(),
                    complete_time: DateTime::unknown(),
                })
            }
            other => self.host.run(move |h| h.handle(&other)).await.unwrap_or_else(|_| {
                Body::Fault(Fault::with_string(FaultCode::InternalError, "the host thread stopped"))
            }),
        }
    }

    async fn download(&self, d: &cwmp::Download) -> Result<std::path::PathBuf, String> {
        let name = if d.target_file_name.is_empty() { file_name_of(&d.url) } else { d.target_file_name.clone() };
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("refusing the target file name {name:?}"));
        }
        let part = fetch_to_file(&d.url, self.tls.clone(), &self.cfg.download_dir, self.cfg.download_max_bytes)
            .await
            .map_err(|(_, e)| e)?;
        let path = self.cfg.download_dir.join(&name);
        std::fs::rename(&part, &path).map_err(|e| {
            let _ = std::fs::remove_file(&part);
            e.to_string()
        })?;
        Ok(path)
    }

    /// Serves `GET /metrics` (Prometheus's text format) on `listener` until `shutdown`.
    pub async fn serve_metrics_until(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve_until(listener, shutdown, |agent, req, _| async move { agent.metrics(&req) }).await
    }

    /// One of the agent's listeners: `handle` answers each request, until `shutdown`.
    async fn serve_until<F, Fut>(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
        handle: F,
    ) -> std::io::Result<()>
    where
        F: Fn(Arc<Agent>, Request<hyper::body::Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
        Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        http_shell::serve(listener, None, cr_limits(), move |req, peer| handle(self.clone(), req, peer), shutdown).await
    }

    fn metrics(&self, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if req.method() != hyper::Method::GET || req.uri().path() != "/metrics" {
            let mut r = Response::new(Full::new(Bytes::from_static(b"GET /metrics\n")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
        let text = crate::metrics::encode_text(&self.host.shared().view().counts);
        let mut r = Response::new(Full::new(Bytes::from(text)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    }

    /// Serves connection requests: Digest-authenticated GETs with the credentials of
    /// ManagementServer.ConnectionRequestUsername/Password; rate-limited (bursts of 10, then ten
    /// a second, about what sessions can follow; beyond, 503 with Retry-After). An accepted one
    /// queues "6 CONNECTION REQUEST".
    pub async fn serve_connection_requests(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        self.serve_connection_requests_until(listener, std::future::pending()).await
    }

    /// [`Agent::serve_connection_requests`] until `shutdown` completes, then drains.
    pub async fn serve_connection_requests_until(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        self.serve_until(
            listener,
            shutdown,
            |agent, req, peer| async move { agent.connection_request(req, peer).await },
        )
        .await
    }

    async fn connection_request(&self, req: Request<hyper::body::Incoming>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let reply = |status: StatusCode, text: &'static str| {
            let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
            *r.status_mut() = status;
            r
        };
        if req.method() != hyper::Method::GET {
            return reply(StatusCode::METHOD_NOT_ALLOWED, "connection requests are GETs\n");
        }
        // A virtual device's (`/vd/{instance}`), with its own credentials; else the host's, as
        // the host thread last published them (it may be waiting for libvirt or a vRGW).
        let target = match req.uri().path().strip_prefix("/vd/") {
            Some(n) => {
                let found = n
                    .parse::<u32>()
                    .ok()
                    .and_then(|n| self.virtuals.lock().unwrap_or_else(|e| e.into_inner()).get(&n).cloned());
                match found {
                    Some(v) => Some(v),
                    None => return reply(StatusCode::NOT_FOUND, "no such virtual device here\n"),
                }
            }
            None => None,
        };
        let (user, pass) = match &target {
            Some(v) => v.cr_credentials(),
            None => {
                let view = self.host.shared().view();
                (view.cr_username, view.cr_password)
            }
        };
        let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        // Digest only, covering this request's URI, each nonce count once (clones share what
        // they have seen): a captured header cannot be sent again, nor to another path.
        let mut verifier = target.as_ref().map_or_else(|| self.verifier.clone(), |v| v.verifier.clone());
        verifier.allow_basic = false;
        let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let attempt = Attempt { method: "GET", uri, header, tls: false };
        if let Err(e) = verifier.check_password(attempt, |u| (u == user).then(|| pass.clone()), now_secs()) {
            if header.is_some() {
                tracing::warn!(%peer, "connection request refused: {e}");
            }
            let mut r = reply(StatusCode::UNAUTHORIZED, "");
            for c in verifier.challenges(now_secs()).into_iter().filter(|c| c.starts_with("Digest")) {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().append(header::WWW_AUTHENTICATE, v);
                }
            }
            return r;
        }
        // Requests that arrive while a session is pending simply join it (the wake-up
        // coalesces); beyond the device's bucket they are refused.
        let bucket = target.as_ref().map_or(&self.cr_bucket, |v| &v.cr_bucket);
        if !bucket.take() {
            tracing::warn!(%peer, device = %target.as_ref().map_or_else(|| self.who(), |v| v.key().to_string()),
                "connection requests too frequent: refused");
            let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "too many connection requests\n");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        match target {
            Some(v) => {
                tracing::info!(%peer, device = %v.key(), "connection request accepted");
                Cpe::trigger(&*v, cwmp::event::CONNECTION_REQUEST, "").await;
            }
            None => {
                tracing::info!(%peer, "connection request accepted");
                self.trigger(cwmp::event::CONNECTION_REQUEST, "").await;
            }
        }
        reply(StatusCode::OK, "")
    }
}

impl Cpe for Agent {
    fn who(&self) -> String {
        self.cfg.device_id.key()
    }

    fn link(&self) -> LinkSettings<'_> {
        LinkSettings {
            url: &self.cfg.acs_url,
            tls: self.tls.clone(),
            username: &self.cfg.acs_username,
            password: &self.cfg.acs_password,
            // The host's own sessions are few: a connection each.
            pool: None,
        }
    }

    fn loop_state(&self) -> &LoopState {
        &self.loop_state
    }

    fn pending(&self) -> Result<bool, String> {
        self.host.shared().state().events().map(|e| !e.is_empty()).map_err(|e| e.to_string())
    }

    fn periodic_wait(&self) -> Option<Duration> {
        Agent::periodic_wait(self)
    }

    async fn trigger(&self, code: &str, command_key: &str) {
        Agent::trigger(self, code, command_key).await
    }

    async fn inform(&self) -> Result<(Inform, i64, Vec<String>), SessionFailure> {
        self.host_inform()
    }

    fn accepted(&self, last_event: i64, reported: &[String]) {
        let shared = self.host.shared();
        shared.changes_reported(reported);
        let st = shared.state();
        if st.events().map(|e| e.iter().any(|x| x.1 == cwmp::event::BOOTSTRAP)).unwrap_or(false) {
            let _ = st.set_meta("bootstrapped", "1");
        }
        if let Err(e) = st.delivered(last_event) {
            tracing::error!("removing the delivered events: {e}");
        }
    }

    async fn carry_out(&self, req: Body, after: &mut Vec<(String, String)>) -> Body {
        self.host_carry_out(req, after).await
    }
}

/// Device `device`'s own requests (`""` the host), kept in the agent's state across restarts:
/// a TransferComplete the ACS has not answered yet is sent again after one.
pub(crate) fn kept_own_requests(host: &HostHandle, device: &str) -> crate::session::OwnQueue {
    let restored = host.shared().state().own_requests(device).unwrap_or_else(|e| {
        tracing::error!(device, "the kept TransferCompletes could not be read: {e}");
        Vec::new()
    });
    if !restored.is_empty() {
        tracing::info!(device, count = restored.len(), "TransferComplete kept from before the restart goes again");
    }
    let (h, d) = (host.clone(), device.to_string());
    let saver: crate::session::OwnSaver = Arc::new(move |own: &[Body]| {
        if let Err(e) = h.shared().state().save_own_requests(&d, own) {
            tracing::error!(device = %d, "keeping the TransferCompletes: {e}");
        }
    });
    crate::session::OwnQueue::kept(saver, restored)
}

/// GETs a Download's URL into a new file in `dir` (`.fetch-RANDOM.part`, 0600), as the body
/// arrives: at most `max` bytes. Its path, or the TransferComplete fault code and why (9016:
/// no answer, or not 200; 9017: the body cut off, over `max`, or not writable), nothing left
/// behind. The URL's query (the ACS's signature) is never in the reason.
pub(crate) async fn fetch_to_file(
    url: &str,
    tls: Option<http_shell::client::TlsConnector>,
    dir: &std::path::Path,
    max: u64,
) -> Result<std::path::PathBuf, (u32, String)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let shown = url.split('?').next().unwrap_or(url);
    let mut conn = http_shell::client::Connection::open(url, tls, http_shell::cpe::CONNECT_TIMEOUT)
        .await
        .map_err(|e| (9016, e.to_string()))?;
    let req = conn.request(hyper::Method::GET, conn.path(), Bytes::new()).map_err(|e| (9016, e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| (9017, format!("{}: {e}", dir.display())))?;
    let part = dir.join(format!(".fetch-{}.part", http_shell::random_hex(8)));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(crate::secrets::FILE_MODE)
        .open(&part)
        .map_err(|e| (9017, format!("{}: {e}", part.display())))?;
    let mut out = tokio::fs::File::from_std(file);
    let got = conn.exchange_into(req, &mut out, max).await;
    drop(out);
    let fail = |code: u32, why: String| {
        let _ = std::fs::remove_file(&part);
        Err((code, why))
    };
    match got {
        Ok((status, _)) if status == hyper::StatusCode::OK => Ok(part),
        Ok((status, _)) => fail(9016, format!("{shown}: HTTP {}", status.as_u16())),
        Err(e @ http_shell::client::Error::Body(_)) => fail(9017, format!("{shown}: {e}")),
        Err(e) => fail(9016, format!("{shown}: {e}")),
    }
}

/// The file name a Download URL names: its last path segment, without the query (the ACS signs
/// its file URLs there) or a fragment.
fn file_name_of(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    path.rsplit('/').next().unwrap_or("download").to_string()
}

#[cfg(test)]
mod tests {
    use super::{file_name_of, CrBucket, CR_BURST};

    #[test]
    fn each_device_has_its_own_connection_request_bucket() {
        let (a, b) = (CrBucket::default(), CrBucket::default());
        for _ in 0..CR_BURST as usize {
            assert!(a.take());
        }
        assert!(!a.take(), "a burst beyond the bucket is refused");
        assert!(b.take(), "another device's requests are not");
        std::thread::sleep(super::CR_REFILL * 2);
        assert!(a.take(), "refilled");
    }

    #[test]
    fn a_download_is_named_by_its_path_not_its_signature() {
        assert_eq!(file_name_of("http://acs/files/fw.bin?device=D&expires=1&sig=ab/cd"), "fw.bin");
        assert_eq!(file_name_of("http://acs/files/img.qcow2#x"), "img.qcow2");
        assert_eq!(file_name_of("http://acs/files/"), "");
    }
}
