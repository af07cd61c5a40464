//! A plain-HTTP/1 client for tests: one request, the whole answer (status, headers, body).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// An HTTP client; its clones share their kept-alive connections.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A whole answer.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|h| h.to_str().ok())
    }
}

impl Default for Http {
    fn default() -> Http {
        Http::new()
    }
}

impl Http {
    /// A client with its own connection pool.
    pub fn new() -> Http {
        Http { client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// `method url` with these headers and body; an error when the server cannot be reached or
    /// the answer breaks off.
    pub async fn try_send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response, String> {
        let mut req = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).map_err(|e| format!("{url}: {e}"))?;
        let resp = self.client.request(req).await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.map_err(|e| format!("{url}: body: {e}"))?.to_bytes();
        Ok(Response { status, headers, body })
    }

    /// The same; panics when the server cannot be reached.
    pub async fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response {
        self.try_send(method, url, headers, body).await.unwrap_or_else(|e| panic!("not reachable: {e}"))
    }
}
