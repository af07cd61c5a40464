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
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cwmp::auth::{Attempt, Verifier};
use cwmp::session::{CpeConfig, CpeEvent, CpeSession, RetryPolicy, Transmit};
use cwmp::{Body, DateTime, DeviceId, Event, Fault, FaultCode, Inform, Value};
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Notify;

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
    /// PeriodicInformInterval until the ACS sets one, seconds.
    pub periodic_inform_interval: u32,
}

/// What the agent shares between its session loop and its connection-request listener.
pub struct Agent {
    cfg: AgentConfig,
    host: HostHandle,
    /// Wakes the session loop.
    pub wake: Arc<Notify>,
    retry_count: AtomicU32,
    /// Requests of the CPE's own for the next session (TransferComplete).
    own: Mutex<Vec<Body>>,
    verifier: Verifier,
    /// Connection-request token bucket: tokens left and when they were counted.
    last_cr: Mutex<Option<(f64, Instant)>>,
    tls: Option<http_shell::client::TlsConnector>,
    /// Sessions completed (for tests and logs).
    pub sessions: AtomicU32,
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
        Ok(Arc::new(Agent {
            cfg,
            host,
            wake: Arc::new(Notify::new()),
            retry_count: AtomicU32::new(0),
            own: Mutex::new(Vec::new()),
            verifier: Verifier::new("hypervisor-agent", secret),
            last_cr: Mutex::new(None),
            tls,
            sessions: AtomicU32::new(0),
        }))
    }

    /// Queues an event (durably) and wakes the session loop.
    /// The store is read and written here, not on the host thread (which may be waiting for
    /// libvirt or a vRGW): its transactions are short and local.
    pub async fn trigger(&self, code: &str, command_key: &str) {
        if let Err(e) = self.host.shared().state().push_event(code, command_key) {
            tracing::error!(event = code, "queueing: {e}");
        }
        self.wake.notify_one();
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

    /// The session loop: runs a session whenever events are queued, retrying failures with the
    /// TR-069 wait. Never returns.
    pub async fn run(self: Arc<Self>) {
        self.run_until(std::future::pending()).await
    }

    /// The same until `shutdown` completes: a session under way is finished first (its events
    /// are acknowledged or stay queued), then the loop returns.
    pub async fn run_until(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let retry = RetryPolicy::default();
        tokio::pin!(shutdown);
        loop {
            let pending = match self.host.shared().state().events() {
                Ok(events) => !events.is_empty(),
                Err(e) => {
                    // Waits for the next wake-up or period, then reads again.
                    tracing::error!("reading the queued events: {e}");
                    false
                }
            };
            if !pending {
                let periodic = self.periodic_wait();
                let wake = self.wake.clone();
                match periodic {
                    Some(d) => {
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = wake.notified() => {}
                            () = tokio::time::sleep(d) => self.trigger(cwmp::event::PERIODIC, "").await,
                        }
                    }
                    None => {
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = wake.notified() => {}
                        }
                    }
                }
                continue;
            }
            match self.session().await {
                Ok(()) => {
                    self.retry_count.store(0, Ordering::SeqCst);
                    self.sessions.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    let n = self.retry_count.fetch_add(1, Ordering::SeqCst);
                    let jitter = (now_secs() % 1000) as f64 / 1000.0;
                    let wait = retry.wait(n, jitter);
                    tracing::warn!(retry = n + 1, wait_secs = wait.as_secs(), "session failed: {e}");
                    // Nothing shortens the retry wait (TR-069 3.2.1.1); events queued meanwhile
                    // are in the store and go in the next session.
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }

    /// The Inform: queued events, the parameters every Inform carries and the changed ones, as
    /// the host thread last published them (it may be busy).
    fn inform(&self) -> Result<(Inform, i64, Vec<String>), SessionFailure> {
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
            retry_count: self.retry_count.load(Ordering::SeqCst),
            parameter_list: list,
        };
        Ok((inform, last, names))
    }

    /// One session: Inform, the agent's own requests, then the ACS's requests until it ends it.
    pub async fn session(&self) -> Result<(), SessionFailure> {
        let (inform, last_event, reported) = self.inform()?;
        let events: Vec<String> = inform.events.iter().map(|e| e.code.clone()).collect();
        tracing::info!(events = ?events, "session: informing the ACS");
        let own = std::mem::take(&mut *self.own.lock().unwrap_or_else(|e| e.into_inner()));
        let mut s = CpeSession::new(CpeConfig::default(), inform, own.clone(), Instant::now());
        let mut link = http_shell::cpe::Link::open(
            &self.cfg.acs_url,
            self.tls.clone(),
            &self.cfg.acs_username,
            &self.cfg.acs_password,
            http_shell::cpe::Basic::WhenOffered,
        )
        .await
        .map_err(|e| SessionFailure::Transport(e.to_string()))
        .inspect_err(|_| {
            self.own.lock().unwrap_or_else(|e| e.into_inner()).extend(own.clone());
        })?;
        let mut after: Vec<(String, String)> = Vec::new();
        let mut answered_own = 0;
        let result = async {
            while let Some(tx) = s.poll_transmit() {
                let body = match tx {
                    Transmit::Envelope(x) => x,
                    Transmit::Empty => String::new(),
                };
                let (status, reply) = link.post(&body).await.map_err(|e| SessionFailure::Transport(e.to_string()))?;
                let status = status.as_u16();
                if status != 200 && status != 204 {
                    return Err(SessionFailure::Http(status));
                }
                s.handle_response(status, &reply, Instant::now());
                while let Some(ev) = s.poll_event() {
                    match ev {
                        CpeEvent::InformAccepted { .. } => {
                            let shared = self.host.shared();
                            shared.changes_reported(&reported);
                            let st = shared.state();
                            if st.events().map(|e| e.iter().any(|x| x.1 == cwmp::event::BOOTSTRAP)).unwrap_or(false) {
                                let _ = st.set_meta("bootstrapped", "1");
                            }
                            if let Err(e) = st.delivered(last_event) {
                                tracing::error!("removing the delivered events: {e}");
                            }
                        }
                        CpeEvent::Request(req) => {
                            let resp = self.carry_out(req, &mut after).await;
                            s.respond(resp, Instant::now()).map_err(|e| SessionFailure::Cwmp(e.to_string()))?;
                        }
                        CpeEvent::RequestAnswered { .. } => answered_own += 1,
                        CpeEvent::Ended { unsent } => {
                            self.own.lock().unwrap_or_else(|e| e.into_inner()).extend(unsent);
                        }
                        CpeEvent::Failed(e) => return Err(SessionFailure::Cwmp(e.to_string())),
                    }
                }
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            // The agent's own requests not answered go again next time.
            self.own.lock().unwrap_or_else(|e| e.into_inner()).extend(own.into_iter().skip(answered_own));
        }
        result?;
        for (code, key) in after {
            self.trigger(&code, &key).await;
        }
        Ok(())
    }

    /// Carries out one ACS request.
    async fn carry_out(&self, req: Body, after: &mut Vec<(String, String)>) -> Body {
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
                let (shared, wake) = (self.host.shared().clone(), self.wake.clone());
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
                self.own.lock().unwrap_or_else(|e| e.into_inner()).push(Body::TransferComplete(
                    cwmp::TransferComplete {
                        command_key: d.command_key.clone(),
                        fault,
                        start_time: DateTime::from_unix(started),
                        complete_time: DateTime::from_unix(now_secs()),
                    },
                ));
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
        let mut conn = http_shell::client::Connection::open(&d.url, self.tls.clone(), http_shell::cpe::CONNECT_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let req = conn.request(hyper::Method::GET, conn.path(), Bytes::new()).map_err(|e| e.to_string())?;
        let reply = conn.exchange(req, None).await.map_err(|e| e.to_string())?;
        let (status, bytes) = (reply.status.as_u16(), reply.body);
        if status != 200 {
            return Err(format!("{}: HTTP {status}", d.url));
        }
        std::fs::create_dir_all(&self.cfg.download_dir).map_err(|e| e.to_string())?;
        let path = self.cfg.download_dir.join(&name);
        let tmp = self.cfg.download_dir.join(format!(".{name}.part"));
        std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
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
        // As the host thread last published them: it may be waiting for libvirt or a vRGW.
        let view = self.host.shared().view();
        let (user, pass) = (view.cr_username, view.cr_password);
        let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        // Digest only, covering this request's URI, each nonce count once (clones share what
        // they have seen): a captured header cannot be sent again, nor to another path.
        let mut verifier = self.verifier.clone();
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
        {
            // A token bucket: bursts of CR_BURST, refilled at one per CR_REFILL. Requests that
            // arrive while a session is pending simply join it (the wake-up coalesces).
            let mut bucket = self.last_cr.lock().unwrap_or_else(|e| e.into_inner());
            let (mut tokens, at) = bucket.unwrap_or((CR_BURST, Instant::now()));
            tokens = (tokens + at.elapsed().as_secs_f64() / CR_REFILL.as_secs_f64()).min(CR_BURST);
            if tokens < 1.0 {
                *bucket = Some((tokens, Instant::now()));
                tracing::warn!(%peer, "connection requests too frequent: refused");
                let mut r = reply(StatusCode::SERVICE_UNAVAILABLE, "too many connection requests\n");
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
            *bucket = Some((tokens - 1.0, Instant::now()));
        }
        tracing::info!(%peer, "connection request accepted");
        self.trigger(cwmp::event::CONNECTION_REQUEST, "").await;
        reply(StatusCode::OK, "")
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
    use super::file_name_of;

    #[test]
    fn a_download_is_named_by_its_path_not_its_signature() {
        assert_eq!(file_name_of("http://acs/files/fw.bin?device=D&expires=1&sig=ab/cd"), "fw.bin");
        assert_eq!(file_name_of("http://acs/files/img.qcow2#x"), "img.qcow2");
        assert_eq!(file_name_of("http://acs/files/"), "");
    }
}
