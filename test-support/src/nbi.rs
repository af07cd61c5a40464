//! A client of the ACS's northbound API for tests: bearer token, JSON in and out, the status,
//! JSON and headers of each answer; waiting for a device; a task with a connection request.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{HeaderMap, Method};
use serde_json::{json, Value};

use crate::http::Http;

/// A path segment or query value percent-encoded as the NBI decodes it (`acs::nbi::encode`).
pub fn enc(s: &str) -> String {
    acs::nbi::encode(s)
}

/// The NBI at `addr`, called with a bearer token (or none).
#[derive(Clone, Copy, Debug)]
pub struct NbiClient<'t> {
    addr: SocketAddr,
    token: Option<&'t str>,
}

/// One NBI answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    /// The headers.
    pub headers: HeaderMap,
}

impl Reply {
    /// `X-Connection-Request-Error`: why the connection request of a task failed.
    pub fn connection_request_error(&self) -> Option<&str> {
        self.headers.get("x-connection-request-error").and_then(|h| h.to_str().ok())
    }
}

impl<'t> NbiClient<'t> {
    /// Calls with `Authorization: Bearer <token>`.
    pub fn new(addr: SocketAddr, token: &'t str) -> NbiClient<'t> {
        NbiClient { addr, token: Some(token) }
    }

    /// The same NBI called with this token, or with none.
    pub fn with_token<'u>(&self, token: Option<&'u str>) -> NbiClient<'u> {
        NbiClient { addr: self.addr, token }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `method path` (path and query) with these extra headers and a raw body.
    pub async fn send_bytes(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Bytes) -> Reply {
        let bearer = self.token.map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
        all.extend_from_slice(headers);
        let r = Http::new()
            .try_send(method, &format!("http://{}{path}", self.addr), &all, body)
            .await
            .unwrap_or_else(|e| panic!("NBI not reachable: {e}"));
        let json = r.json();
        Reply { status: r.status, json, headers: r.headers }
    }

    /// `method path` with a JSON body (an empty body for `None`): the whole answer.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        self.send_bytes(method, path, &[], body).await
    }

    /// The same: its status and JSON.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self.send(method, path, body).await;
        (r.status, r.json)
    }

    /// Queues a task for device `id` with a connection request and waits (up to 20 s) for its
    /// result: the status and JSON of the answer.
    pub async fn task(&self, id: &str, body: Value) -> (u16, Value) {
        let path = format!("/devices/{}/tasks?connection_request&timeout=20000", enc(id));
        self.call(Method::POST, &path, Some(body)).await
    }

    /// The task `id` as GET /tasks shows it (done tasks too).
    pub async fn task_status(&self, id: &Value) -> Value {
        let id = id.as_str().map(str::to_string).unwrap_or_else(|| id.to_string());
        // Naming `status` lists done tasks too.
        let query = json!({"_id": id, "status": {"$exists": true}});
        let (s, t) = self.call(Method::GET, &format!("/tasks?query={}", enc(&query.to_string())), None).await;
        assert_eq!(s, 200, "{t}");
        t[0].clone()
    }

    /// The task `id` once it is done or faulted (at most `secs` seconds, else a panic).
    pub async fn finished(&self, id: &Value, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.task_status(id).await;
            if t["status"] == json!("done") || t["status"] == json!("fault") {
                return t;
            }
            assert!(Instant::now() < deadline, "task {id} never finished: {t}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 20 s) until the ACS knows device `id`; else panics with the log at `log`.
    pub async fn wait_device(&self, id: &str, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let path = format!("/devices?query={}", enc(&json!({"_id": id}).to_string()));
        loop {
            let (s, v) = self.call(Method::GET, &path, None).await;
            if s == 200 && v.as_array().is_some_and(|a| !a.is_empty()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the agent never informed:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
