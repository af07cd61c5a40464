//! The server: a method registry with the `system.*` introspection methods and multicall, and an
//! HTTP/1.1 front end over hyper (keep-alive, HTTP/1.0 peers, gzip both ways, Basic
//! authentication, body limits).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method as HttpMethod, Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::codec::{decode_call, encode_response, Limits, MethodCall, MethodResponse};
use crate::fault::Fault;
use crate::gz::{gunzip, gzip};
use crate::value::Value;
use crate::{from_value, to_value};

/// A method implementation: parameters in, a value or a fault out. It runs on the connection's
/// task, so it must not block for long; do slow work on a blocking thread inside it.
pub type Handler = Arc<dyn Fn(Vec<Value>) -> Result<Value, Fault> + Send + Sync>;

struct Method {
    handler: Handler,
    help: String,
    signatures: Vec<Vec<String>>,
}

/// Responses larger than this are gzipped when the client accepts gzip (smaller ones gain
/// little on a management network and cost more CPU than they save).
const GZIP_THRESHOLD: usize = 16 * 1024;

/// An XML-RPC server.
pub struct Server {
    methods: BTreeMap<String, Method>,
    limits: Limits,
    basic_auth: Option<(String, String)>,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// A server with only the `system.*` methods.
    pub fn new() -> Server {
        Server { methods: BTreeMap::new(), limits: Limits::default(), basic_auth: None }
    }

    /// Limits on request bodies.
    pub fn with_limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    /// Serves only requests with these HTTP Basic credentials.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Server {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }

    /// Registers a method on raw values. `signatures` lists return type then parameter types,
    /// as `system.methodSignature` reports them.
    pub fn register(
        &mut self,
        name: &str,
        help: &str,
        signatures: &[&[&str]],
        handler: impl Fn(Vec<Value>) -> Result<Value, Fault> + Send + Sync + 'static,
    ) {
        self.methods.insert(
            name.to_string(),
            Method {
                handler: Arc::new(handler),
                help: help.to_string(),
                signatures: signatures.iter().map(|s| s.iter().map(|t| t.to_string()).collect()).collect(),
            },
        );
    }

    /// Registers a method on Rust types: the parameters are deserialized as a tuple (or any
    /// sequence type) `P`; the result is serialized. Parameters that do not fit get fault -32602.
    pub fn register_typed<P, R, F>(&mut self, name: &str, help: &str, signatures: &[&[&str]], f: F)
    where
        P: DeserializeOwned,
        R: Serialize,
        F: Fn(P) -> Result<R, Fault> + Send + Sync + 'static,
    {
        let method = name.to_string();
        self.register(name, help, signatures, move |params| {
            let p: P = from_value(Value::Array(params))
                .map_err(|e| Fault::new(Fault::INVALID_PARAMS, format!("{method}: {e}")))?;
            let r = f(p)?;
            to_value(&r).map_err(|e| Fault::new(Fault::INTERNAL_ERROR, format!("{method}: {e}")))
        });
    }

    /// Names of every method, `system.*` included.
    pub fn method_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.methods.keys().cloned().collect();
        for s in ["system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall"] {
            names.push(s.to_string());
        }
        names.sort();
        names
    }

    /// Runs one call.
    pub fn dispatch(&self, call: MethodCall) -> MethodResponse {
        match self.run(&call.name, call.params, true) {
            Ok(v) => MethodResponse::Success(v),
            Err(f) => MethodResponse::Fault(f),
        }
    }

    fn run(&self, name: &str, params: Vec<Value>, top: bool) -> Result<Value, Fault> {
        match name {
            "system.listMethods" => Ok(Value::Array(self.method_names().into_iter().map(Value::String).collect())),
            "system.methodHelp" | "system.methodSignature" => {
                let target = params
                    .first()
                    .and_then(Value::as_str)
                    .ok_or_else(|| Fault::new(Fault::INVALID_PARAMS, format!("{name} takes a method name")))?;
                let builtin = match (name, target) {
                    ("system.methodHelp", "system.multicall") => Some("Runs several calls in one request."),
                    ("system.methodHelp", "system.listMethods") => Some("Lists the methods of this server."),
                    ("system.methodHelp", "system.methodHelp") => Some("Describes a method."),
                    ("system.methodHelp", "system.methodSignature") => Some("Lists a method's signatures."),
                    _ => None,
                };
                if let Some(h) = builtin {
                    return Ok(Value::String(h.into()));
                }
                let m = self
                    .methods
                    .get(target)
                    .ok_or_else(|| Fault::new(Fault::METHOD_NOT_FOUND, format!("no method {target}")))?;
                Ok(if name == "system.methodHelp" {
                    Value::String(m.help.clone())
                } else {
                    Value::Array(
                        m.signatures
                            .iter()
                            .map(|s| Value::Array(s.iter().cloned().map(Value::String).collect()))
                            .collect(),
                    )
                })
            }
            "system.multicall" if top => {
                let calls = match params.into_iter().next() {
                    Some(Value::Array(calls)) => calls,
                    _ => return Err(Fault::new(Fault::INVALID_PARAMS, "system.multicall takes an array of calls")),
                };
                let results = calls
                    .into_iter()
                    .map(|c| {
                        let name = c.get("methodName").and_then(Value::as_str).map(str::to_string);
                        let params = c.get("params").and_then(Value::as_array).map(<[Value]>::to_vec);
                        let r = match (name, params) {
                            (Some(n), Some(p)) => self.run(&n, p, false),
                            (Some(n), None) => self.run(&n, Vec::new(), false),
                            _ => Err(Fault::new(Fault::INVALID_PARAMS, "each call needs methodName and params")),
                        };
                        match r {
                            Ok(v) => Value::Array(vec![v]),
                            Err(f) => Value::structure([
                                ("faultCode", Value::Int(f.code)),
                                ("faultString", Value::String(f.string)),
                            ]),
                        }
                    })
                    .collect();
                Ok(Value::Array(results))
            }
            "system.multicall" => Err(Fault::new(Fault::INVALID_REQUEST, "system.multicall cannot be nested")),
            other => match self.methods.get(other) {
                Some(m) => (m.handler)(params),
                None => Err(Fault::new(Fault::METHOD_NOT_FOUND, format!("no method {other}"))),
            },
        }
    }

    /// Decodes a request body, runs it, and encodes the response (a fault for bad input).
    pub fn handle_body(&self, body: &[u8]) -> String {
        let resp = match decode_call(body, &self.limits) {
            Ok(call) => self.dispatch(call),
            Err(e) => MethodResponse::Fault(Fault::new(e.fault_code, e.to_string())),
        };
        encode_response(&resp)
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some((user, password)) = &self.basic_auth else { return true };
        let Some(given) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
        else {
            return false;
        };
        let want = format!("{user}:{password}");
        constant_time_eq(&given, want.as_bytes())
    }

    async fn http(self: Arc<Self>, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != HttpMethod::POST {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "XML-RPC takes POST\n");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        if !self.authorized(&req) {
            tracing::warn!("refused an XML-RPC request without valid credentials");
            let mut r = plain(StatusCode::UNAUTHORIZED, "credentials required\n");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"xmlrpc\""));
            return r;
        }
        let gzip_in = header_has(&req, header::CONTENT_ENCODING, "gzip");
        let gzip_out = header_has(&req, header::ACCEPT_ENCODING, "gzip");
        let max = self.limits.max_body;
        let body = match http_shell::read_body(req.into_body(), &self.http_limits()).await {
            Ok(b) => b,
            Err(r @ http_shell::Refusal::TooSlow(_)) => return r.response(),
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large or broken\n"),
        };
        let body = if gzip_in {
            match gunzip(&body, max) {
                Ok(b) => Bytes::from(b),
                Err(msg) => return plain(StatusCode::BAD_REQUEST, msg),
            }
        } else {
            body
        };
        let xml = self.handle_body(&body);
        xml_response(xml, gzip_out)
    }

    /// Accepts connections on `listener` until `shutdown` completes, then drains (see
    /// `http_shell::serve`). HTTP/1.1 keep-alive; HTTP/1.0 peers get one response and a close.
    /// Request bodies are held to [`Limits::max_body`] (413 beyond).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let limits = self.http_limits();
        http_shell::serve(listener, None, limits, move |req, _peer| self.clone().http(req), shutdown).await
    }

    /// The HTTP front end's limits: bodies as [`Limits::max_body`] (a slow one gets 408 after
    /// 30 s), 256 connections, the shell's timeouts.
    fn http_limits(&self) -> http_shell::Limits {
        http_shell::Limits {
            max_connections: 256,
            max_body: self.limits.max_body,
            body_read: std::time::Duration::from_secs(30),
            ..http_shell::Limits::default()
        }
    }
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .any(|h| h.split(',').any(|t| t.trim().split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case(token))))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn plain(status: StatusCode, msg: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(msg.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

fn xml_response(xml: String, gzip_ok: bool) -> Response<Full<Bytes>> {
    let compress = gzip_ok && xml.len() > GZIP_THRESHOLD;
    let body = if compress { Bytes::from(gzip(xml.as_bytes())) } else { Bytes::from(xml) };
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
    if compress {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}
