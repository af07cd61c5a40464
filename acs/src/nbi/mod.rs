//! The northbound API for OSS, compatible with GenieACS's NBI for devices, tasks and faults,
//! with bearer-token authentication on by default.
//!
//! This file routes and holds the shared helpers; each route family has a file of its own
//! (`devices`, `tasks`, `faults`, `presets`, `provisions` (and virtual parameters), `objects`,
//! `files`, `subscribers`, `migrations`), whose
//! handlers take inputs parsed into types here at the edge.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value as Json};
use tokio::net::TcpListener;

use crate::endpoint::Acs;

pub mod credentials;
mod devices;
mod faults;
mod files;
mod migrations;
mod objects;
mod presets;
mod provisions;
mod subscribers;
mod tasks;

/// Every route the NBI serves (method, path template), as docs/openapi.json documents them; a
/// test checks both against each other and against the server.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/devices"),
    ("HEAD", "/devices"),
    ("DELETE", "/devices/{id}"),
    ("POST", "/devices/{id}/tasks"),
    ("POST", "/devices/{id}/tags/{tag}"),
    ("DELETE", "/devices/{id}/tags/{tag}"),
    ("GET", "/tasks"),
    ("POST", "/tasks"),
    ("DELETE", "/tasks/{id}"),
    ("POST", "/tasks/{id}/retry"),
    ("GET", "/faults"),
    ("DELETE", "/faults/{id}"),
    ("GET", "/presets"),
    ("GET", "/presets/{name}"),
    ("PUT", "/presets/{name}"),
    ("DELETE", "/presets/{name}"),
    ("GET", "/provisions"),
    ("GET", "/provisions/{name}"),
    ("PUT", "/provisions/{name}"),
    ("DELETE", "/provisions/{name}"),
    ("GET", "/virtual_parameters"),
    ("GET", "/virtual_parameters/{name}"),
    ("PUT", "/virtual_parameters/{name}"),
    ("DELETE", "/virtual_parameters/{name}"),
    ("GET", "/objects"),
    ("PUT", "/objects/{name}"),
    ("DELETE", "/objects/{name}"),
    ("GET", "/files"),
    ("PUT", "/files/{name}"),
    ("DELETE", "/files/{name}"),
    ("GET", "/subscribers"),
    ("PUT", "/subscribers/{id}"),
    ("DELETE", "/subscribers/{id}"),
    ("POST", "/devices/{id}/instances/{n}/migrate"),
    ("GET", "/migrations"),
    ("GET", "/migrations/{id}"),
    ("GET", "/cpe-credentials"),
    ("PUT", "/cpe-credentials/{username}"),
    ("DELETE", "/cpe-credentials/{username}"),
    ("GET", "/metrics"),
];

/// Settings of the NBI.
#[derive(Debug, Clone)]
pub struct NbiConfig {
    /// Accepted bearer tokens; empty means no authentication (only for tests on loopback).
    pub tokens: Vec<String>,
    /// Connection-request timeout.
    pub cr_timeout: Duration,
    /// Hosts registered for migration: DeviceId to libvirt URI (`[[hosts]]`).
    pub hosts: std::sync::Arc<std::collections::BTreeMap<String, String>>,
}

/// The NBI listener's limits, for the serving loop and for reading bodies (files up to 64 MiB).
fn limits() -> http_shell::Limits {
    http_shell::Limits { max_body: 64 << 20, ..http_shell::Limits::default() }
}

fn json_response(status: StatusCode, body: &Json) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response<Full<Bytes>> {
    let msg = msg.into();
    tracing::info!(status = status.as_u16(), "NBI refused a request: {msg}");
    json_response(status, &json!({"error": msg}))
}

pub(crate) fn query_params(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k), decode(v));
    }
    out
}

/// Percent-encoding of a query component, for NBI clients (every byte but letters, digits,
/// `-`, `_` and `.`): the inverse of what the NBI decodes.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Percent-decoding (and `+` as space) of a query component.
pub(crate) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: Option<&u8>| c.and_then(|c| (*c as char).to_digit(16));
                match (hex(b.get(i + 1)), hex(b.get(i + 2))) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One NBI call as a client (`acs subscriber` uses it): the status and body text.
pub async fn call(base: &str, token: &str, method: &str, path: &str, body: String) -> Result<(u16, String), String> {
    let client = http_shell::client::Builder::new()
        .timeout(Duration::from_secs(30))
        .auth(http_shell::client::Auth::Bearer(token.to_string()))
        .build();
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let req = Request::builder()
        .method(method)
        .uri(&url)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    let reply = client.fetch(req, usize::MAX).await.map_err(|e| format!("{url}: {e}"))?;
    Ok((reply.status.as_u16(), String::from_utf8_lossy(&reply.body).into_owned()))
}

/// A task as GenieACS shows it.
/// A response of the NBI.
pub(crate) type Reply = Response<Full<Bytes>>;

/// Why the NBI refused or failed a request; [`NbiError::status`] is its HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum NbiError {
    /// No valid bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The body is over the limit.
    #[error("request body over 64 MiB")]
    TooLarge,
    /// The body was not complete within the listener's deadline, or broke off.
    #[error("{0}")]
    Body(http_shell::Refusal),
    /// Nothing is served at this method and path.
    #[error("no route {method} {path}")]
    NoRoute {
        /// The request's method.
        method: Method,
        /// Its path.
        path: String,
    },
    /// The path is served, not with this method (405, with `Allow`, as GenieACS answers).
    #[error("{method} is not allowed on {path}; allowed: {allow}")]
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// Its path.
        path: String,
        /// The methods the path takes (`GET, HEAD`).
        allow: String,
    },
    /// A JSON input does not parse (`what`: "query", "the task", ...).
    #[error("{what} is not JSON: {source}")]
    NotJson {
        /// Which input.
        what: &'static str,
        /// The parser's reason.
        source: serde_json::Error,
    },
    /// An id in the path is not a number (the message says which).
    #[error("{0}")]
    NotANumber(&'static str),
    /// An input breaks a rule the message states.
    #[error("{0}")]
    Invalid(&'static str),
    /// An input breaks a rule the message states (made at run time).
    #[error("{0}")]
    Bad(String),
    /// The request conflicts with the configuration or the state (the message says how).
    #[error("{0}")]
    Conflict(String),
    /// A task that cannot run.
    #[error("{0}")]
    Task(#[from] crate::tasks::BadTask),
    /// A preset that cannot be used.
    #[error("{0}")]
    Preset(#[from] crate::presets::BadPreset),
    /// A query the NBI does not understand.
    #[error("{0}")]
    Query(#[from] crate::query::BadQuery),
    /// The named thing does not exist (the message names it).
    #[error("{0}")]
    NotFound(String),
    /// A migration that cannot start.
    #[error("{0}")]
    Migration(#[from] crate::migration::StartError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    /// A password could not be hashed.
    #[error("{0}")]
    Hash(String),
    /// A blocking part of the request panicked or was cancelled.
    #[error("{0}")]
    Join(#[from] tokio::task::JoinError),
}

impl NbiError {
    /// The HTTP status the error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            NbiError::Unauthorized => StatusCode::UNAUTHORIZED,
            NbiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            NbiError::Body(r) => r.status(),
            NbiError::NoRoute { .. } | NbiError::NotFound(_) => StatusCode::NOT_FOUND,
            NbiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            NbiError::NotJson { .. }
            | NbiError::NotANumber(_)
            | NbiError::Invalid(_)
            | NbiError::Bad(_)
            | NbiError::Task(_)
            | NbiError::Preset(_)
            | NbiError::Query(_) => StatusCode::BAD_REQUEST,
            NbiError::Migration(e) => e.status(),
            NbiError::Conflict(_) => StatusCode::CONFLICT,
            NbiError::Store(e) if e.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            NbiError::Store(_) | NbiError::Hash(_) | NbiError::Join(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error as the NBI answers it: `{"error": "..."}` with its status.
    fn reply(&self) -> Reply {
        let status = self.status();
        let mut r = error(status, self.to_string());
        match self {
            NbiError::Unauthorized => {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            NbiError::MethodNotAllowed { allow, .. } => {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    r.headers_mut().insert(header::ALLOW, v);
                }
            }
            NbiError::Store(e) if e.is_unavailable() => {
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        r
    }
}

/// Why `method` on `path` is not served: 405 with the methods the path takes when a route's
/// template matches it (HEAD wherever GET is), else 404.
fn not_routed(method: Method, path: String) -> NbiError {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut allow: Vec<&str> = Vec::new();
    for (m, template) in ROUTES {
        let t: Vec<&str> = template.trim_matches('/').split('/').collect();
        let fits = t.len() == segs.len()
            && t.iter().zip(&segs).all(|(t, s)| if t.starts_with('{') { !s.is_empty() } else { t == s });
        if fits {
            for m in [*m].into_iter().chain((*m == "GET").then_some("HEAD")) {
                if !allow.contains(&m) {
                    allow.push(m);
                }
            }
        }
    }
    if allow.is_empty() {
        NbiError::NoRoute { method, path }
    } else {
        NbiError::MethodNotAllowed { method, path, allow: allow.join(", ") }
    }
}

/// A JSON body or query value parsed at the edge.
fn parse_json<T: serde::de::DeserializeOwned>(what: &'static str, text: &[u8]) -> Result<T, NbiError> {
    serde_json::from_slice(text).map_err(|source| NbiError::NotJson { what, source })
}

/// The kind of script a collection (`provisions`, `virtual_parameters`) holds.
fn script_kind(collection: &str) -> crate::store::ScriptKind {
    if collection == "provisions" {
        crate::store::ScriptKind::Provision
    } else {
        crate::store::ScriptKind::VirtualParameter
    }
}

/// A numeric id from the path.
fn number<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, NbiError> {
    s.parse().map_err(|_| NbiError::NotANumber(what))
}

/// `{}` with 200, the answer of a change.
fn done() -> Reply {
    json_response(StatusCode::OK, &json!({}))
}

/// Runs store work on the blocking pool.
async fn blocking(f: impl FnOnce() -> Result<Reply, NbiError> + Send + 'static) -> Result<Reply, NbiError> {
    tokio::task::spawn_blocking(f).await?
}

/// One request after the edge: its query parameters, headers and body.
pub(crate) struct Call {
    /// Decoded query parameters.
    pub params: HashMap<String, String>,
    /// The request's headers.
    pub headers: hyper::HeaderMap,
    /// The body (at most 64 MiB).
    pub body: Bytes,
}

/// The NBI server.
pub struct Nbi {
    acs: Arc<Acs>,
    config: NbiConfig,
}

impl Nbi {
    /// The NBI of `acs`.
    pub fn new(acs: Arc<Acs>, config: NbiConfig) -> Arc<Nbi> {
        Arc::new(Nbi { acs, config })
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        if self.config.tokens.is_empty() {
            return true;
        }
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "));
        given.is_some_and(|g| {
            self.config
                .tokens
                .iter()
                .any(|t| t.len() == g.len() && t.bytes().zip(g.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0)
        })
    }

    async fn http(self: Arc<Self>, req: Request<Incoming>) -> Reply {
        match self.answer(req).await {
            Ok(r) => r,
            Err(e) => e.reply(),
        }
    }

    async fn answer(self: &Arc<Self>, req: Request<Incoming>) -> Result<Reply, NbiError> {
        if !self.authorized(&req) {
            return Err(NbiError::Unauthorized);
        }
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let headers = req.headers().clone();
        let params = query_params(req.uri().query());
        let body = http_shell::read_body(req.into_body(), &limits()).await.map_err(|e| match e {
            http_shell::Refusal::TooLarge(_) => NbiError::TooLarge,
            e => NbiError::Body(e),
        })?;
        let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let call = Call { params, headers, body };
        // HEAD is GET without the body (GenieACS answers it on its collections); `/devices`
        // counts without building the devices' JSON.
        let head = method == Method::HEAD;
        let routed = if head { Method::GET } else { method.clone() };
        let mut reply = self.route(&routed, &segs, &call, head).await.map_err(|e| match e {
            NbiError::NoRoute { .. } => not_routed(method, path),
            e => e,
        })?;
        if head {
            *reply.body_mut() = Full::default();
        }
        Ok(reply)
    }

    /// The handler of `method` on the path `segs` (decoded segments).
    async fn route(
        self: &Arc<Self>,
        method: &Method,
        segs: &[&str],
        call: &Call,
        head: bool,
    ) -> Result<Reply, NbiError> {
        match (method, segs) {
            (&Method::GET, ["metrics"]) => {
                let nbi = self.clone();
                blocking(move || {
                    let tasks = nbi.acs.store.count_by_status()?;
                    let text = nbi.acs.metrics.encode(nbi.acs.open_sessions(), &tasks);
                    let mut r = Reply::new(Full::new(Bytes::from(text)));
                    r.headers_mut().insert(
                        header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        ),
                    );
                    Ok(r)
                })
                .await
            }
            (&Method::GET, ["devices"]) => devices::list(self, devices::Listing::parse(&call.params, head)?).await,
            (&Method::DELETE, ["devices", dev]) => devices::delete(self, dev).await,
            (&Method::POST, ["devices", dev, "tags", tag]) => devices::tag(self, dev, tag, true).await,
            (&Method::DELETE, ["devices", dev, "tags", tag]) => devices::tag(self, dev, tag, false).await,
            (&Method::POST, ["devices", dev, "tasks"]) => tasks::create(self, dev, tasks::Create::parse(call)?).await,
            (&Method::POST, ["devices", dev, "instances", n, "migrate"]) => {
                migrations::start(self, migrations::Start::parse(dev, n, &call.body)?)
            }
            (&Method::GET, ["tasks"]) => tasks::list(self, tasks::Listing::parse(&call.params)),
            (&Method::POST, ["tasks"]) => tasks::bulk(self, tasks::Bulk::parse(call)?).await,
            (&Method::DELETE, ["tasks", id]) => tasks::delete(self, number(id, "a task id is a number")?),
            (&Method::POST, ["tasks", id, "retry"]) => tasks::retry(self, number(id, "a task id is a number")?),
            (&Method::GET, ["faults"]) => faults::query(self, &call.params),
            (&Method::DELETE, ["faults", id]) => faults::delete(self, number(id, "a fault id")?),
            (&Method::GET, ["presets"]) => presets::list(self, &call.params),
            (&Method::GET, ["presets", name]) => presets::get(self, name),
            (&Method::PUT, ["presets", name]) => presets::put(self, presets::Put::parse(name, &call.body)?),
            (&Method::DELETE, ["presets", name]) => presets::delete(self, name),
            (&Method::GET, [c @ ("provisions" | "virtual_parameters")]) => {
                provisions::list(self, script_kind(c), &call.params)
            }
            (&Method::GET, [c @ ("provisions" | "virtual_parameters"), name]) => {
                provisions::get(self, script_kind(c), name)
            }
            (&Method::PUT, [c @ ("provisions" | "virtual_parameters"), name]) => {
                // Compiling a script (up to 1 MiB) is work for the blocking pool.
                let (nbi, kind, name, body) = (self.clone(), script_kind(c), name.to_string(), call.body.clone());
                blocking(move || provisions::put(&nbi, provisions::Put::parse(kind, &name, &body)?)).await
            }
            (&Method::DELETE, [c @ ("provisions" | "virtual_parameters"), name]) => {
                provisions::delete(self, script_kind(c), name)
            }
            (&Method::GET, ["objects"]) => objects::list(self, &call.params),
            (&Method::PUT, ["objects", name]) => objects::put(self, objects::Put::parse(name, &call.body)?),
            (&Method::DELETE, ["objects", name]) => objects::delete(self, name),
            (&Method::GET, ["files"]) => files::query(self, &call.params),
            (&Method::PUT, ["files", name]) => files::put(self, files::Upload::parse(name, call)?),
            (&Method::DELETE, ["files", name]) => files::delete(self, name),
            (&Method::GET, ["subscribers"]) => subscribers::list(self),
            (&Method::PUT, ["subscribers", id]) => {
                subscribers::put(self, subscribers::Account::parse(id, &call.body)?).await
            }
            (&Method::DELETE, ["subscribers", id]) => subscribers::delete(self, id),
            (&Method::GET, ["cpe-credentials"]) => credentials::list(self),
            (&Method::PUT, ["cpe-credentials", user]) => credentials::put(self, credentials::parse(user, &call.body)?),
            (&Method::DELETE, ["cpe-credentials", user]) => credentials::delete(self, user),
            (&Method::GET, ["migrations"]) => migrations::list(self),
            (&Method::GET, ["migrations", id]) => migrations::get(self, number(id, "a migration id is a number")?),
            _ => Err(NbiError::NoRoute { method: method.clone(), path: String::new() }),
        }
    }

    /// Serves the NBI on `listener` until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        http_shell::serve(listener, None, limits(), move |req, _peer| self.clone().http(req), shutdown).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn percent_encoding_round_trips() {
        let s = "{\"_id\": \"00A0B1-x y\"}&=%+é";
        assert_eq!(super::decode(&super::encode(s)), s);
        assert_eq!(super::encode("a.b-c_d"), "a.b-c_d");
    }

    #[test]
    fn errors_answer_with_their_status_and_reason() {
        use super::NbiError;
        use hyper::StatusCode;
        let no_route = NbiError::NoRoute { method: hyper::Method::PATCH, path: "/devices".into() };
        assert_eq!(
            (no_route.status(), no_route.to_string().as_str()),
            (StatusCode::NOT_FOUND, "no route PATCH /devices")
        );
        let task = NbiError::from(crate::tasks::BadTask("unknown task \"fly\"".into()));
        assert_eq!((task.status(), task.to_string().as_str()), (StatusCode::BAD_REQUEST, "unknown task \"fly\""));
        let busy = NbiError::from(crate::migration::StartError::Busy { source_host: "h".into(), instance: 2 });
        assert_eq!(busy.status(), StatusCode::CONFLICT);
        let store = NbiError::from(crate::store::StoreError::Corrupt { what: "x".into() });
        assert_eq!(store.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = NbiError::Unauthorized.reply();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.headers().get(hyper::header::WWW_AUTHENTICATE).map(|v| v.as_bytes()), Some(&b"Bearer"[..]));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(super::decode("%7B%22_id%22%3A%22a%20b%22%7D"), "{\"_id\":\"a b\"}");
        assert_eq!(super::decode("a+b%2"), "a b%2");
    }
}
