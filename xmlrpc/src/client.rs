//! The client: calls over a pooled HTTP/1.1 connection (`http_shell::client`) (keep-alive; a server that closes
//! after each response, as Python's does, is handled), gzip responses, Basic authentication from
//! the URL, a timeout and body limits.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{decode_response, encode_call, DecodeError, Limits, MethodResponse};
use crate::fault::Fault;
use crate::gz::gunzip;
use crate::value::Value;
use crate::{from_value, to_value};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The URL is not an `http://host:port/path` URL.
    #[error("invalid URL {0:?}")]
    InvalidUrl(String),
    /// Connecting, sending or receiving failed.
    #[error("transport: {0}")]
    Transport(String),
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with an HTTP error.
    #[error("HTTP {0}: {1}")]
    Http(u16, String),
    /// The answer is not a valid XML-RPC response.
    #[error("undecodable response: {0}")]
    Decode(#[from] DecodeError),
    /// The server answered with a fault.
    #[error("{0}")]
    Fault(Fault),
    /// Parameters or result did not fit the Rust types.
    #[error("serde: {0}")]
    Serde(#[from] crate::ser::Error),
}

/// An XML-RPC client for one endpoint. Cloning shares the connection pool.
#[derive(Clone)]
pub struct Client {
    uri: Uri,
    http: http_shell::client::Client,
    auth: Option<HeaderValue>,
    limits: Limits,
    timeout: Duration,
}

impl Client {
    /// A client for `url` (`http://[user:password@]host:port/path`).
    pub fn new(url: &str) -> Result<Client, Error> {
        let bad = || Error::InvalidUrl(url.to_string());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let path = if path.is_empty() { "/" } else { path };
        let uri: Uri = format!("http://{hostport}{path}").parse().map_err(|_| bad())?;
        let auth = match userinfo {
            Some(u) => {
                let token = base64::engine::general_purpose::STANDARD.encode(u.as_bytes());
                Some(HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| bad())?)
            }
            None => None,
        };
        // The call's timeout is applied around the whole call (see `call`), so the HTTP client
        // has none; pooled connections go before the server's idle clock closes them.
        let http = http_shell::client::Builder::new().pool_idle(Duration::from_secs(30)).build();
        Ok(Client { uri, http, auth, limits: Limits::default(), timeout: Duration::from_secs(30) })
    }

    /// Sets the timeout of each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Sets limits on responses.
    pub fn with_limits(mut self, limits: Limits) -> Client {
        self.limits = limits;
        self
    }

    /// Sets HTTP Basic credentials.
    pub fn with_basic_auth(mut self, user: &str, password: &str) -> Client {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.auth = HeaderValue::from_str(&format!("Basic {token}")).ok();
        self
    }

    /// Calls `method` with `params`; a fault comes back as [`Error::Fault`].
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value, Error> {
        let body = encode_call(method, params);
        let fut = self.post(body);
        let bytes = tokio::time::timeout(self.timeout, fut).await.map_err(|_| Error::Timeout(self.timeout))??;
        match decode_response(&bytes, &self.limits)? {
            MethodResponse::Success(v) => Ok(v),
            MethodResponse::Fault(f) => Err(Error::Fault(f)),
        }
    }

    /// Calls with Rust types: `params` is serialized (a tuple or sequence gives several
    /// parameters, anything else one), the result deserialized into `R`.
    pub async fn call_typed<P: Serialize, R: DeserializeOwned>(&self, method: &str, params: P) -> Result<R, Error> {
        let params = match to_value(&params)? {
            Value::Array(a) => a,
            Value::Nil => Vec::new(),
            one => vec![one],
        };
        Ok(from_value(self.call(method, &params).await?)?)
    }

    /// `system.multicall`: several calls in one request, each with its own result or fault.
    pub async fn multicall(&self, calls: &[(&str, Vec<Value>)]) -> Result<Vec<Result<Value, Fault>>, Error> {
        let arg = Value::Array(
            calls
                .iter()
                .map(|(m, p)| {
                    Value::structure([
                        ("methodName", Value::String(m.to_string())),
                        ("params", Value::Array(p.clone())),
                    ])
                })
                .collect(),
        );
        let out = self.call("system.multicall", &[arg]).await?;
        let items = match out {
            Value::Array(a) => a,
            other => {
                return Err(Error::Transport(format!("system.multicall returned {}, not an array", other.type_name())))
            }
        };
        Ok(items
            .into_iter()
            .map(|item| match item {
                Value::Array(mut one) if one.len() == 1 => Ok(one.remove(0)),
                f => Err(Fault::new(
                    f.get("faultCode").and_then(Value::as_i64).unwrap_or(0) as i32,
                    f.get("faultString").and_then(Value::as_str).unwrap_or("malformed multicall result"),
                )),
            })
            .collect())
    }

    async fn post(&self, body: String) -> Result<Bytes, Error> {
        let mut req = Request::post(self.uri.clone())
            .header(header::CONTENT_TYPE, "text/xml")
            .header(header::ACCEPT_ENCODING, "gzip")
            .header(header::USER_AGENT, concat!("vrgw-xmlrpc/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Transport(e.to_string()))?;
        if let Some(a) = &self.auth {
            req.headers_mut().insert(header::AUTHORIZATION, a.clone());
        }
        let resp = self.http.send(req).await.map_err(|e| Error::Transport(e.to_string()))?;
        let status = resp.status();
        let gz = resp
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|h| h.to_str().ok())
            .is_some_and(|h| h.eq_ignore_ascii_case("gzip"));
        let max = self.limits.max_body;
        let bytes = Limited::new(resp.into_body(), max)
            .collect()
            .await
            .map_err(|e| Error::Transport(format!("reading the response: {e}")))?
            .to_bytes();
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>();
            return Err(Error::Http(status.as_u16(), text.trim().to_string()));
        }
        if gz {
            return gunzip(&bytes, max).map(Bytes::from).map_err(|m| Error::Transport(m.trim().to_string()));
        }
        Ok(bytes)
    }
}
