//! The northbound API for OSS, compatible with GenieACS's NBI for devices, tasks and faults,
//! with bearer-token authentication on by default.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value as Json};
use tokio::net::TcpListener;

use crate::endpoint::{now, Acs};
use crate::query;
use crate::store::{Task, TaskStatus};
use crate::tasks;

/// Every route the NBI serves (method, path template), as docs/openapi.json documents them; a
/// test checks both against each other and against the server.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/devices"),
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
    ("PUT", "/presets/{name}"),
    ("DELETE", "/presets/{name}"),
    ("GET", "/files"),
    ("PUT", "/files/{name}"),
    ("DELETE", "/files/{name}"),
    ("GET", "/subscribers"),
    ("PUT", "/subscribers/{id}"),
    ("DELETE", "/subscribers/{id}"),
    ("POST", "/devices/{id}/instances/{n}/migrate"),
    ("GET", "/migrations"),
    ("GET", "/migrations/{id}"),
];

/// Settings of the NBI.
#[derive(Debug, Clone)]
pub struct NbiConfig {
    /// Accepted bearer tokens; empty means no authentication (only for tests on loopback).
    pub tokens: Vec<String>,
    /// Connection-request timeout.
    pub cr_timeout: Duration,
    /// Connection-request credentials for devices that have none of their own.
    pub cr_username: String,
    /// Password for those connection requests.
    pub cr_password: String,
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

fn query_params(q: Option<&str>) -> HashMap<String, String> {
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
fn decode(s: &str) -> String {
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
fn task_json(t: &Task) -> Json {
    let mut j = t.spec.clone();
    if let Json::Object(m) = &mut j {
        m.insert("_id".into(), json!(t.id.to_string()));
        m.insert("device".into(), json!(t.device));
        m.insert("timestamp".into(), json!(query::iso(t.created)));
        m.insert("status".into(), serde_json::to_value(t.status).unwrap_or(Json::Null));
        m.insert("attempts".into(), json!(t.attempts));
        if let Some(r) = &t.result {
            m.insert("result".into(), r.clone());
        }
    }
    j
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

    async fn http(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.authorized(&req) {
            let mut r = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let headers = req.headers().clone();
        let params = query_params(req.uri().query());
        let body = match Limited::new(req.into_body(), 64 << 20).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "request body over 64 MiB"),
        };
        let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let store = self.acs.store.clone();
        let blocking = |f: Box<dyn FnOnce() -> Response<Full<Bytes>> + Send>| async move {
            tokio::task::spawn_blocking(f)
                .await
                .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        };
        match (&method, segs.as_slice()) {
            (&Method::GET, ["devices"]) => {
                let q: Json = match params.get("query").filter(|q| !q.is_empty()) {
                    Some(q) => match serde_json::from_str(q) {
                        Ok(v) => v,
                        Err(e) => return error(StatusCode::BAD_REQUEST, format!("query is not JSON: {e}")),
                    },
                    None => json!({}),
                };
                let projection: Vec<String> =
                    params.get("projection").map(|p| p.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()).unwrap_or_default();
                blocking(Box::new(move || {
                    let devices = match store.devices() {
                        Ok(d) => d,
                        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    };
                    let mut out = Vec::new();
                    for d in devices {
                        let ps = store.params(&d.id).unwrap_or_default();
                        match query::matches(&d, &ps, &q) {
                            Ok(true) => out.push(query::device_json(&d, &ps, &projection)),
                            Ok(false) => {}
                            Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
                        }
                    }
                    json_response(StatusCode::OK, &Json::Array(out))
                }))
                .await
            }
            (&Method::POST, ["devices", dev, "tasks"]) => {
                let spec: Json = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return error(StatusCode::BAD_REQUEST, format!("the task is not JSON: {e}")),
                };
                if let Err(e) = tasks::validate(&spec) {
                    return error(StatusCode::BAD_REQUEST, e.0);
                }
                let dev = dev.to_string();
                let device = match store.device(&dev) {
                    Ok(Some(d)) => d,
                    Ok(None) => return error(StatusCode::NOT_FOUND, format!("no device {dev}")),
                    Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                };
                let task = match store.enqueue(&dev, &spec, now()) {
                    Ok(t) => t,
                    Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                };
                tracing::info!(device = %dev, task = task.id, "task queued");
                let timeout = params.get("timeout").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_millis).unwrap_or(Duration::from_secs(3));
                if !params.contains_key("connection_request") {
                    return json_response(StatusCode::ACCEPTED, &task_json(&task));
                }
                let deadline = tokio::time::Instant::now() + timeout;
                let (user, pass) = if device.cr_username.is_empty() {
                    (self.config.cr_username.as_str(), self.config.cr_password.as_str())
                } else {
                    (device.cr_username.as_str(), device.cr_password.as_str())
                };
                if let Err(e) = crate::conn_req::send(&device.cr_url, user, pass, self.config.cr_timeout.min(timeout)).await {
                    tracing::warn!(device = %dev, "connection request failed: {e}");
                    let mut r = json_response(StatusCode::ACCEPTED, &task_json(&task));
                    if let Ok(v) = HeaderValue::from_str(&e.to_string()) {
                        r.headers_mut().insert("x-connection-request-error", v);
                    }
                    return r;
                }
                loop {
                    let notified = self.acs.task_events.notified();
                    match store.task(task.id) {
                        Ok(Some(t)) if matches!(t.status, TaskStatus::Done) => return json_response(StatusCode::OK, &task_json(&t)),
                        Ok(Some(t)) if matches!(t.status, TaskStatus::Fault) => {
                            let fault = store.faults().unwrap_or_default().into_iter().find(|f| f.task == Some(t.id));
                            let mut j = task_json(&t);
                            if let (Json::Object(m), Some(f)) = (&mut j, fault) {
                                m.insert("fault".into(), json!({"_id": f.id.to_string(), "code": f.code, "message": f.message, "detail": f.detail}));
                            }
                            return json_response(StatusCode::OK, &j);
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => return error(StatusCode::NOT_FOUND, "the task was deleted"),
                        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        let t = store.task(task.id).ok().flatten().unwrap_or(task);
                        return json_response(StatusCode::ACCEPTED, &task_json(&t));
                    }
                }
            }
            (&Method::POST, ["devices", dev, "instances", n, "migrate"]) => {
                let Ok(n) = n.parse::<u32>() else { return error(StatusCode::BAD_REQUEST, "an instance number is a number") };
                let spec: Json = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return error(StatusCode::BAD_REQUEST, format!("the request is not JSON: {e}")),
                };
                let Some(target) = spec.get("target").and_then(Json::as_str) else {
                    return error(StatusCode::BAD_REQUEST, "\"target\" (the destination host's device id) is required");
                };
                let mode = match spec.get("mode").and_then(Json::as_str).map(crate::migration::Mode::parse) {
                    Some(Some(m)) => m,
                    _ => return error(StatusCode::BAD_REQUEST, "\"mode\" is one of live, cold-image, cold-context"),
                };
                let step_timeout = match spec.get("stepTimeout") {
                    None => Duration::from_secs(60),
                    Some(v) => match v.as_u64().filter(|s| (1..=3600).contains(s)) {
                        Some(s) => Duration::from_secs(s),
                        None => return error(StatusCode::BAD_REQUEST, "\"stepTimeout\" is 1 to 3600 seconds"),
                    },
                };
                let req = crate::migration::Request {
                    source: dev.to_string(),
                    instance: n,
                    target: target.to_string(),
                    mode,
                    step_timeout,
                };
                let cr = crate::migration::Cr {
                    username: self.config.cr_username.clone(),
                    password: self.config.cr_password.clone(),
                    timeout: self.config.cr_timeout,
                };
                match crate::migration::start(self.acs.clone(), cr, req) {
                    Ok((_, r)) => json_response(StatusCode::ACCEPTED, &r),
                    Err((code, msg)) => error(StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST), msg),
                }
            }
            (&Method::GET, ["migrations"]) => match store.migrations() {
                Ok(ms) => json_response(
                    StatusCode::OK,
                    &Json::Array(ms.iter().map(|(i, r)| crate::migration::to_json(*i, r)).collect()),
                ),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            (&Method::GET, ["migrations", id]) => match id.parse::<i64>() {
                Ok(id) => match crate::migration::find(store.as_ref(), id) {
                    Ok(Some(r)) => json_response(StatusCode::OK, &r),
                    Ok(None) => error(StatusCode::NOT_FOUND, format!("no migration {id}")),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
                },
                Err(_) => error(StatusCode::BAD_REQUEST, "a migration id is a number"),
            },
            (&Method::POST | &Method::DELETE, ["devices", dev, "tags", tag]) => {
                let (dev, tag, add) = (dev.to_string(), tag.to_string(), method == Method::POST);
                blocking(Box::new(move || match store.device(&dev) {
                    Ok(Some(d)) => {
                        let mut tags = d.tags.clone();
                        tags.retain(|t| t != &tag);
                        if add {
                            tags.push(tag);
                        }
                        match store.set_tags(&dev, &tags) {
                            Ok(()) => json_response(StatusCode::OK, &json!({})),
                            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                        }
                    }
                    Ok(None) => error(StatusCode::NOT_FOUND, format!("no device {dev}")),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }))
                .await
            }
            (&Method::GET, ["tasks"]) => {
                let device = params.get("query").and_then(|q| serde_json::from_str::<Json>(q).ok()).and_then(|q| q.get("device").and_then(Json::as_str).map(str::to_string));
                match store.tasks(device.as_deref()) {
                    Ok(ts) => json_response(StatusCode::OK, &Json::Array(ts.iter().map(task_json).collect())),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
            (&Method::DELETE, ["tasks", id]) => match id.parse::<i64>() {
                Ok(id) => match store.delete_task(id) {
                    Ok(true) => json_response(StatusCode::OK, &json!({})),
                    Ok(false) => error(StatusCode::NOT_FOUND, format!("no task {id}")),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                },
                Err(_) => error(StatusCode::BAD_REQUEST, "a task id is a number"),
            },
            (&Method::POST, ["tasks", id, "retry"]) => match id.parse::<i64>() {
                Ok(id) => match store.retry_task(id) {
                    Ok(true) => json_response(StatusCode::OK, &json!({})),
                    Ok(false) => error(StatusCode::NOT_FOUND, format!("no faulted task {id}")),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                },
                Err(_) => error(StatusCode::BAD_REQUEST, "a task id is a number"),
            },
            (&Method::GET, ["faults"]) => match store.faults() {
                Ok(fs) => json_response(
                    StatusCode::OK,
                    &Json::Array(
                        fs.iter()
                            .map(|f| {
                                json!({"_id": f.id.to_string(), "device": f.device, "task": f.task.map(|t| t.to_string()),
                                       "code": f.code, "message": f.message, "detail": f.detail, "timestamp": query::iso(f.timestamp)})
                            })
                            .collect(),
                    ),
                ),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            (&Method::DELETE, ["faults", id]) => match id.parse::<i64>() {
                Ok(id) => match store.delete_fault(id) {
                    Ok(true) => json_response(StatusCode::OK, &json!({})),
                    Ok(false) => error(StatusCode::NOT_FOUND, format!("no fault {id}")),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                },
                Err(_) => error(StatusCode::BAD_REQUEST, "a fault id is a number"),
            },
            (&Method::POST, ["tasks"]) => {
                let q: Json = match params.get("query").map(|q| serde_json::from_str(q)) {
                    Some(Ok(v)) => v,
                    Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("query is not JSON: {e}")),
                    None => return error(StatusCode::BAD_REQUEST, "a bulk task needs ?query= naming the devices"),
                };
                let spec: Json = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return error(StatusCode::BAD_REQUEST, format!("the task is not JSON: {e}")),
                };
                if let Err(e) = tasks::validate(&spec) {
                    return error(StatusCode::BAD_REQUEST, e.0);
                }
                blocking(Box::new(move || {
                    let devices = match store.devices() {
                        Ok(d) => d,
                        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                    };
                    let mut ids = Vec::new();
                    for d in devices {
                        let ps = store.params(&d.id).unwrap_or_default();
                        match query::matches(&d, &ps, &q) {
                            Ok(true) => match store.enqueue(&d.id, &spec, now()) {
                                Ok(t) => ids.push(json!({"_id": t.id.to_string(), "device": d.id})),
                                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                            },
                            Ok(false) => {}
                            Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
                        }
                    }
                    tracing::info!(count = ids.len(), "bulk task queued");
                    json_response(StatusCode::OK, &json!({"tasks": ids}))
                }))
                .await
            }
            (&Method::GET, ["presets"]) => match store.presets() {
                Ok(ps) => json_response(StatusCode::OK, &Json::Array(ps.into_iter().map(|(n, mut p)| { if let Json::Object(m) = &mut p { m.insert("_id".into(), json!(n)); } p }).collect())),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            (&Method::PUT, ["presets", name]) => {
                let preset: Json = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return error(StatusCode::BAD_REQUEST, format!("the preset is not JSON: {e}")),
                };
                if let Err(e) = crate::presets::validate(&preset) {
                    return error(StatusCode::BAD_REQUEST, e.0);
                }
                match store.put_preset(name, &preset) {
                    Ok(()) => {
                        self.acs.presets_changed();
                        json_response(StatusCode::OK, &json!({}))
                    }
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
            (&Method::DELETE, ["presets", name]) => match store.delete_preset(name) {
                Ok(true) => {
                    self.acs.presets_changed();
                    json_response(StatusCode::OK, &json!({}))
                }
                Ok(false) => error(StatusCode::NOT_FOUND, format!("no preset {name}")),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            (&Method::GET, ["files"]) => match store.files() {
                Ok(fs) => json_response(StatusCode::OK, &Json::Array(fs.into_iter().map(|(n, len, mut m)| { if let Json::Object(o) = &mut m { o.insert("_id".into(), json!(n)); o.insert("length".into(), json!(len)); } m }).collect())),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            (&Method::PUT, ["files", name]) => {
                let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let meta = json!({"fileType": h("filetype"), "oui": h("oui"), "productClass": h("productclass"), "version": h("version")});
                if name.is_empty() || name.contains("..") {
                    return error(StatusCode::BAD_REQUEST, "invalid file name");
                }
                match store.put_file(name, &body, &meta) {
                    Ok(()) => json_response(StatusCode::OK, &json!({})),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
            (&Method::DELETE, ["files", name]) => match store.delete_file(name) {
                Ok(true) => json_response(StatusCode::OK, &json!({})),
                Ok(false) => error(StatusCode::NOT_FOUND, format!("no file {name}")),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            (&Method::GET, ["subscribers"]) => {
                let ids = match store.subscribers() {
                    Ok(ids) => ids,
                    Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                };
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    let Ok(Some(s)) = store.subscriber(&id) else { continue };
                    let at = crate::profiles::locate(store.as_ref(), &id).ok().flatten();
                    out.push(json!({
                        "_id": s.id, "profile": s.profile, "profileVersion": s.profile_version,
                        "applied": s.applied,
                        "vrgw": at.map(|l| json!({"device": l.device, "instance": l.instance})),
                    }));
                }
                json_response(StatusCode::OK, &Json::Array(out))
            }
            (&Method::PUT, ["subscribers", id]) => {
                let id = id.to_string();
                if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
                    return error(StatusCode::BAD_REQUEST, "a subscriber id is 1 to 128 characters, no '/' or control characters");
                }
                let body: Json = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return error(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
                };
                let Some(password) = body.get("password").and_then(Json::as_str).map(str::to_string) else {
                    return error(StatusCode::BAD_REQUEST, "the body needs {\"password\": \"...\"}");
                };
                if password.chars().count() < 8 {
                    return error(StatusCode::BAD_REQUEST, "a password has at least 8 characters");
                }
                let hash = match tokio::task::spawn_blocking(move || crate::portal::hash_password(&password)).await {
                    Ok(Ok(h)) => h,
                    Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
                    Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                };
                match store.put_subscriber(&id, &hash, now()) {
                    Ok(created) => {
                        tracing::info!(subscriber = %id, created, "NBI: subscriber account set");
                        json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &json!({"_id": id}))
                    }
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
            (&Method::DELETE, ["subscribers", id]) => match store.delete_subscriber(id) {
                Ok(true) => json_response(StatusCode::OK, &json!({})),
                Ok(false) => error(StatusCode::NOT_FOUND, format!("no subscriber {id}")),
                Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            },
            _ => error(StatusCode::NOT_FOUND, format!("no route {method} {path}")),
        }
    }

    /// Serves the NBI on `listener` until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let limits = http_shell::Limits { max_body: 64 << 20, ..http_shell::Limits::default() };
        http_shell::serve(listener, None, limits, move |req, _peer| self.clone().http(req), shutdown).await
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
    fn percent_decoding() {
        assert_eq!(super::decode("%7B%22_id%22%3A%22a%20b%22%7D"), "{\"_id\":\"a b\"}");
        assert_eq!(super::decode("a+b%2"), "a b%2");
    }
}
