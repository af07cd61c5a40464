//! The CWMP endpoint: HTTP POSTs from CPEs, authenticated (Digest or Basic), tracked by a
//! session cookie, each session driven by `cwmp::session::AcsSession`; one session per device
//! at a time; tasks run in order inside sessions.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cwmp::session::{AcsConfig, AcsEvent, AcsSession, Reply};
use cwmp::Body;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::auth::Verifier;
use crate::store::{CachedParam, Device, Store, TaskStatus};
use crate::tasks::{self, Context, Running, Step};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub use http_shell::random_hex;

/// The presets, by name.
pub type Presets = Arc<Vec<(String, serde_json::Value)>>;

/// Settings of the CWMP side.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Credentials CPEs authenticate with: username -> password; empty disables authentication.
    pub credentials: HashMap<String, String>,
    /// Idle time after which a session is dropped.
    pub session_timeout: Duration,
    /// Largest accepted body.
    pub max_body: usize,
    /// Base URL of the file server (for Download).
    pub file_base_url: String,
}

struct Session {
    cwmp: AcsSession,
    device: Option<String>,
    running: Option<Running>,
    /// Requests from presets, run before queued tasks and not stored as tasks.
    local: std::collections::VecDeque<serde_json::Value>,
    last: Instant,
}

/// The ACS's shared state.
pub struct Acs {
    /// The store everything is recorded in.
    pub store: Arc<dyn Store>,
    /// Settings of the CWMP side.
    pub config: EndpointConfig,
    verifier: Verifier,
    sessions: Mutex<HashMap<String, Session>>,
    busy: Mutex<HashMap<String, String>>,
    /// Woken whenever a task finishes or faults.
    pub task_events: Notify,
    /// Outgoing webhook events.
    pub webhooks: crate::webhooks::Sender,
    /// Presets, read from the store once and again after each change.
    presets: Mutex<Option<Presets>>,
}

enum Outcome {
    Reply(Response<Full<Bytes>>),
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
        Arc::new(Acs {
            store,
            config,
            verifier: Verifier::new("vrgw-acs", secret),
            sessions: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            task_events: Notify::new(),
            webhooks,
            presets: Mutex::new(None),
        })
    }

    /// The presets (cached).
    pub fn presets(&self) -> Result<Presets, crate::store::StoreError> {
        let mut cache = self.presets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.as_ref() {
            return Ok(p.clone());
        }
        let p = Arc::new(self.store.presets()?);
        *cache = Some(p.clone());
        Ok(p)
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

    /// Number of sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.sessions().len()
    }

    async fn http(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() == hyper::Method::GET {
            if let Some(name) = req.uri().path().strip_prefix("/files/").map(str::to_string) {
                let store = self.store.clone();
                return tokio::task::spawn_blocking(move || match store.file(&name) {
                    Ok(Some((content, _))) => {
                        let mut r = Response::new(Full::new(Bytes::from(content)));
                        r.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                        r
                    }
                    Ok(None) => text(StatusCode::NOT_FOUND, format!("no file {name}\n")),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
                })
                .await
                .unwrap_or_else(|e| text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
            }
        }
        if req.method() != hyper::Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "CWMP takes POST\n".into());
        }
        let cookie = cookie_of(&req);
        let known = cookie.as_ref().is_some_and(|c| self.sessions().contains_key(c));
        if !known && !self.config.credentials.is_empty() {
            let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
            if let Err(e) = self.verifier.verify("POST", header, |u| self.config.credentials.get(u).cloned(), now()) {
                tracing::warn!("CPE authentication failed: {e}");
                let mut r = text(StatusCode::UNAUTHORIZED, format!("authentication required: {e}\n"));
                for c in self.verifier.challenges(now()) {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        r.headers_mut().append(header::WWW_AUTHENTICATE, v);
                    }
                }
                return r;
            }
        }
        let body = match Limited::new(req.into_body(), self.config.max_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                tracing::warn!("refused a CWMP body over {} bytes", self.config.max_body);
                return text(StatusCode::PAYLOAD_TOO_LARGE, format!("body over {} bytes\n", self.config.max_body));
            }
        };
        // The session work is short SQLite transactions on a local WAL database (tens of
        // microseconds); handing each POST to the blocking pool cost more in thread switches than
        // it saved (see docs/benchmarks.md), so it runs here.
        match self.handle(cookie.filter(|_| known), &body) {
            Outcome::Reply(r) => r,
        }
    }

    fn handle(&self, cookie: Option<String>, body: &[u8]) -> Outcome {
        let t = Instant::now();
        let (id, mut s) = match cookie.and_then(|c| self.sessions().remove(&c).map(|s| (c, s))) {
            Some(v) => v,
            None => {
                if body.iter().all(u8::is_ascii_whitespace) {
                    return Outcome::Reply(text(StatusCode::BAD_REQUEST, "a session starts with an Inform\n".into()));
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
                        last: t,
                    },
                )
            }
        };
        let first = s.device.is_none();
        s.cwmp.handle_post(body, t);
        s.last = t;
        while let Some(ev) = s.cwmp.poll_event() {
            match ev {
                AcsEvent::Inform { inform, version, .. } => {
                    let dev = inform.device_id.key();
                    {
                        let mut busy = self.busy();
                        if let Some(other) = busy.get(&dev) {
                            if other != &id && self.sessions().contains_key(other) {
                                tracing::info!(device = %dev, "refused a second session while one is open");
                                let mut r = text(
                                    StatusCode::SERVICE_UNAVAILABLE,
                                    "a session with this device is open\n".into(),
                                );
                                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                                return Outcome::Reply(r);
                            }
                        }
                        busy.insert(dev.clone(), id.clone());
                    }
                    tracing::info!(device = %dev, cwmp = version.as_str(), events = ?inform.events.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), "Inform");
                    s.local = self.on_inform(&dev, &inform).into();
                    s.device = Some(dev);
                }
                AcsEvent::CpeRequest(Body::TransferComplete(tc)) => {
                    if let Some(dev) = &s.device {
                        self.on_transfer_complete(dev, &tc);
                    }
                }
                AcsEvent::CpeRequest(_) => {}
                AcsEvent::Response { response, .. } => self.on_response(&mut s, response),
                AcsEvent::Ended => {}
                AcsEvent::Failed { error, .. } => {
                    tracing::warn!(device = ?s.device, "session failed: {error}");
                }
            }
        }
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
            self.end(&id, &s);
        } else {
            self.sessions().insert(id, s);
        }
        Outcome::Reply(resp)
    }

    fn end(&self, id: &str, s: &Session) {
        if let Some(dev) = &s.device {
            let mut busy = self.busy();
            if busy.get(dev).map(String::as_str) == Some(id) {
                busy.remove(dev);
            }
        }
    }

    /// Records the Inform; returns the preset requests for this session.
    fn on_inform(&self, dev: &str, inform: &cwmp::Inform) -> Vec<serde_json::Value> {
        let mut local = Vec::new();
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
            local = crate::presets::apply(self.store.as_ref(), &presets, dev, &inform.events)?;
            crate::profiles::catch_up(self.store.as_ref(), dev, at)?;
            let key = find("ManagementServer.ParameterKey");
            for t in self.store.open_tasks(dev)? {
                if t.status != TaskStatus::Sent {
                    continue;
                }
                match tasks::reconcile(&t, key.as_deref(), &inform.events) {
                    TaskStatus::Done => {
                        tracing::info!(device = %dev, task = t.id, "a task sent before an interruption was applied");
                        self.store
                            .complete(t.id, &json!({"status": 0, "confirmed": "by the key the device reports"}))?;
                    }
                    TaskStatus::Sent => {}
                    _ => self.store.mark_pending(t.id, 0)?,
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(device = %dev, "recording the Inform: {e}");
        }
        self.task_events.notify_waiters();
        local
    }

    fn on_transfer_complete(&self, dev: &str, tc: &cwmp::TransferComplete) {
        let Ok(tasks) = self.store.tasks(Some(dev)) else { return };
        if let Some(t) = tasks.iter().find(|t| t.key == tc.command_key && t.status != TaskStatus::Fault) {
            let r = if tc.fault.code == 0 {
                tracing::info!(device = %dev, task = t.id, "download complete");
                self.store.complete(t.id, &json!({"status": 0, "transferComplete": true})).map(|_| ())
            } else {
                self.store
                    .fault(
                        dev,
                        Some(t.id),
                        &format!("cwmp.{}", tc.fault.code),
                        &tc.fault.string,
                        "TransferComplete",
                        now(),
                    )
                    .map(|_| ())
            };
            if let Err(e) = r {
                tracing::error!(device = %dev, "recording TransferComplete: {e}");
            }
            let what = if tc.fault.code == 0 { "task.done" } else { "task.fault" };
            self.webhooks.send(crate::webhooks::Event::task(dev, what, t.id, now()));
            self.task_events.notify_waiters();
        }
    }

    fn on_response(&self, s: &mut Session, response: Body) {
        let Some(mut run) = s.running.take() else { return };
        match run.on_response(response, self.store.as_ref(), now()) {
            Step::Next(body) => {
                s.cwmp.queue_request(body);
                s.running = Some(run);
            }
            Step::Done(_) if run.task.id == 0 => {}
            Step::Fault(f) if run.task.id == 0 => {
                let dev = run.task.device.clone();
                tracing::warn!(device = %dev, "preset request fault {} {}", f.code.code(), f.string);
                let preset = run.task.spec.get("preset").and_then(|p| p.as_str()).unwrap_or("");
                let _ = self.store.fault(
                    &dev,
                    None,
                    &format!("cwmp.{}", f.code.code()),
                    &f.string,
                    &format!("preset {preset}"),
                    now(),
                );
            }
            Step::Done(result) => {
                if let Err(e) = self.store.complete(run.task.id, &result) {
                    tracing::error!("recording task {}: {e}", run.task.id);
                }
                // The task may have shown the ACS a subscriber's vRGW where their profile is not
                // yet (an instance added, re-read, or given a Subscriber).
                if let Err(e) = crate::profiles::catch_up(self.store.as_ref(), &run.task.device, now()) {
                    tracing::error!(device = %run.task.device, "subscriber profiles: {e}");
                }
                tracing::info!(device = %run.task.device, task = run.task.id, "task done");
                self.webhooks.send(crate::webhooks::Event::task(&run.task.device, "task.done", run.task.id, now()));
                self.task_events.notify_waiters();
            }
            Step::AwaitTransfer => {
                tracing::info!(device = %run.task.device, task = run.task.id, "download accepted; waiting for TransferComplete");
            }
            Step::Fault(f) => {
                let dev = run.task.device.clone();
                if tasks::transient(f.code) && run.task.attempts < 5 {
                    let wait = tasks::backoff(run.task.attempts);
                    tracing::warn!(device = %dev, task = run.task.id, "transient fault {} ({}); retry in {wait} s", f.code.code(), f.string);
                    let _ = self.store.mark_pending(run.task.id, now() + wait);
                } else {
                    let detail = f
                        .set_parameter_values_faults
                        .iter()
                        .map(|p| format!("{}: {} {}", p.parameter_name, p.code.code(), p.string))
                        .collect::<Vec<_>>()
                        .join("; ");
                    tracing::warn!(device = %dev, task = run.task.id, "task fault {} {}", f.code.code(), f.string);
                    let _ = self.store.fault(
                        &dev,
                        Some(run.task.id),
                        &format!("cwmp.{}", f.code.code()),
                        &f.string,
                        &detail,
                        now(),
                    );
                }
                self.task_events.notify_waiters();
            }
        }
    }

    /// Queues the device's next task when nothing is running.
    fn schedule(&self, s: &mut Session) {
        if s.running.is_some() || s.cwmp.queued() > 0 || s.cwmp.is_done() {
            return;
        }
        let Some(dev) = s.device.clone() else { return };
        let at = now();
        let ctx = Context { file_base_url: &self.config.file_base_url };
        while let Some(spec) = s.local.pop_front() {
            let task = crate::store::Task {
                id: 0,
                device: dev.clone(),
                key: format!("preset-{}", spec.get("preset").and_then(|p| p.as_str()).unwrap_or("")),
                spec,
                status: TaskStatus::Sent,
                attempts: 1,
                not_before: 0,
                created: at,
                result: None,
            };
            match Running::start(task, &ctx) {
                Ok((run, body)) => {
                    s.cwmp.queue_request(body);
                    s.running = Some(run);
                    return;
                }
                Err(e) => tracing::warn!(device = %dev, "preset request skipped: {e}"),
            }
        }
        let Ok(open) = self.store.open_tasks(&dev) else { return };
        for mut task in open.into_iter().filter(|t| t.status == TaskStatus::Pending && t.not_before <= at) {
            task.key = format!("task-{}-{}", task.id, task.attempts + 1);
            match Running::start(task.clone(), &ctx) {
                Ok((run, body)) => {
                    if let Err(e) = self.store.mark_sent(task.id, &task.key) {
                        tracing::error!("marking task {} sent: {e}", task.id);
                        return;
                    }
                    s.cwmp.queue_request(body);
                    s.running = Some(run);
                    return;
                }
                Err(e) => {
                    let _ = self.store.fault(&dev, Some(task.id), "task.invalid", &e.0, "", at);
                    self.task_events.notify_waiters();
                }
            }
        }
    }

    /// Drops sessions idle longer than the session timeout (their devices can open new ones).
    pub fn sweep(&self) {
        let t = Instant::now();
        let mut gone = Vec::new();
        {
            let mut sessions = self.sessions();
            let stale: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| t.duration_since(s.last) > self.config.session_timeout)
                .map(|(k, _)| k.clone())
                .collect();
            for k in stale {
                if let Some(s) = sessions.remove(&k) {
                    tracing::warn!(device = ?s.device, "session timed out");
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
        // Between two POSTs of a session the CPE may work for a while (a vRGW provisioned),
        // so a connection may sit idle as long as a session may.
        let limits = http_shell::Limits {
            max_connections: 4096,
            max_body: self.config.max_body,
            idle: self.config.session_timeout.max(Duration::from_secs(30)),
            ..http_shell::Limits::default()
        };
        let served = http_shell::serve(listener, tls, limits, move |req, _peer| self.clone().http(req), shutdown).await;
        sweeper.abort();
        served
    }
}
