//! The one HTTP client builder: pooled HTTP/1.1 clients with a timeout and the caller's choice
//! of authentication, and single connections (over TLS for `https://`) for exchanges that must
//! stay on one connection, like a CWMP session.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The URL or request could not be built.
    Invalid(String),
    /// Connecting, sending or receiving failed; the text names each cause in turn.
    Transport(String),
    /// No answer within the client's timeout.
    Timeout(Duration),
    /// The answer's body was over the limit or broken off.
    Body(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Invalid(e) | Error::Transport(e) => f.write_str(e),
            Error::Timeout(d) => write!(f, "no answer within {} s", d.as_secs_f64()),
            Error::Body(e) => write!(f, "reading the answer: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// An error and its sources, "outer: inner: innermost" (hyper's own text is often just
/// "client error (Connect)").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    msg
}

/// How a client authenticates: the caller's choice, added to every request that has no
/// `Authorization` header of its own. (Digest needs a challenge first: see `cpe::Link` and the
/// ACS's connection requests.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// HTTP Basic with these credentials.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
}

impl Auth {
    /// The header value, if any.
    pub fn header(&self) -> Option<HeaderValue> {
        use base64::Engine as _;
        let text = match self {
            Auth::None => return None,
            Auth::Basic { user, password } => {
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
            }
            Auth::Bearer(t) => format!("Bearer {t}"),
        };
        HeaderValue::from_str(&text).ok()
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct Builder {
    timeout: Option<Duration>,
    pool_idle: Option<Duration>,
    auth: Auth,
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl Builder {
    /// No timeout, connections kept idle as long as hyper's pool keeps them (90 s), no
    /// authentication.
    pub fn new() -> Builder {
        Builder { timeout: None, pool_idle: None, auth: Auth::None }
    }

    /// Each request must get its answer's head within `timeout` ([`Client::fetch`]: its whole
    /// answer).
    pub fn timeout(mut self, timeout: Duration) -> Builder {
        self.timeout = Some(timeout);
        self
    }

    /// Pooled connections idle longer than this are closed (keep it below the servers' idle
    /// timeout).
    pub fn pool_idle(mut self, idle: Duration) -> Builder {
        self.pool_idle = Some(idle);
        self
    }

    /// How requests authenticate.
    pub fn auth(mut self, auth: Auth) -> Builder {
        self.auth = auth;
        self
    }

    /// The client. Plain HTTP only: the pooled clients of this stack talk to loopback, the
    /// management network or vRGWs; an `https://` exchange goes through [`Connection`].
    pub fn build(self) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let mut b = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
        if let Some(idle) = self.pool_idle {
            b.pool_idle_timeout(idle);
        }
        Client { http: b.build(connector), timeout: self.timeout, auth: self.auth.header() }
    }
}

/// A pooled HTTP/1.1 client; cloning shares the pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    timeout: Option<Duration>,
    auth: Option<HeaderValue>,
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Client {
    /// Sends `req` (with the client's authentication unless it has its own) and returns the
    /// answer once its head arrived, within the timeout.
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Result<Response<Incoming>, Error> {
        if let Some(a) = &self.auth {
            req.headers_mut().entry(header::AUTHORIZATION).or_insert_with(|| a.clone());
        }
        let fut = self.http.request(req);
        let r = match self.timeout {
            Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| Error::Timeout(t))?,
            None => fut.await,
        };
        r.map_err(|e| Error::Transport(chain(&e)))
    }

    /// Sends `req` and reads the whole answer (at most `max_body` bytes), all within the
    /// timeout.
    pub async fn fetch(&self, req: Request<Full<Bytes>>, max_body: usize) -> Result<Reply, Error> {
        let whole = async {
            let resp = Client { timeout: None, ..self.clone() }.send(req).await?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, max_body).collect().await.map_err(|e| Error::Body(e.to_string()))?.to_bytes();
            Ok(Reply { status: parts.status, headers: parts.headers, body })
        };
        match self.timeout {
            Some(t) => tokio::time::timeout(t, whole).await.map_err(|_| Error::Timeout(t))?,
            None => whole.await,
        }
    }
}

/// The TLS client side: rustls's connector.
#[cfg(feature = "tls")]
pub type TlsConnector = tokio_rustls::TlsConnector;

/// Without the `tls` feature there is no TLS: this type has no values.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub enum TlsConnector {}

/// A TLS client configuration trusting the CAs in `ca_file` (PEM).
#[cfg(feature = "tls")]
pub fn tls_connector(ca_file: &std::path::Path) -> Result<TlsConnector, String> {
    use rustls_pki_types::pem::PemObject as _;
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    let file = ca_file;
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(file).map_err(|e| format!("{}: {e}", file.display()))? {
        roots.add(cert.map_err(|e| format!("{}: {e}", file.display()))?).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// One HTTP/1.1 connection to one server (over TLS for `https://`), kept for a whole exchange
/// such as a CWMP session; its connection is driven by a task of its own.
///
/// When the server closed the connection before a request went out (after a 401 whose body it
/// did not read, or at its idle clock while the CPE worked), the connection is opened again and
/// the request sent on the new one: it was never sent, so this cannot repeat it.
pub struct Connection {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
    path: String,
    https: bool,
    url: String,
    tls: Option<TlsConnector>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("authority", &self.authority).field("path", &self.path).finish()
    }
}

impl Connection {
    /// Connects to `url`'s host within `connect_timeout`; `https://` needs `tls`.
    pub async fn open(url: &str, tls: Option<TlsConnector>, connect_timeout: Duration) -> Result<Connection, Error> {
        let uri: Uri = url.parse().map_err(|_| Error::Invalid(format!("invalid URL {url}")))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri.host().ok_or_else(|| Error::Invalid(format!("no host in {url}")))?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().map_or(host.clone(), |a| a.to_string());
        let path = uri.path_and_query().map_or("/".into(), |p| p.to_string());
        let tcp = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| {
                Error::Transport(format!("{authority}: no connection within {} s", connect_timeout.as_secs_f64()))
            })?
            .map_err(|e| Error::Transport(format!("{authority}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let send = if https {
            let tls = tls.clone().ok_or_else(|| Error::Invalid("https needs a TLS configuration".into()))?;
            #[cfg(feature = "tls")]
            {
                let name = rustls_pki_types::ServerName::try_from(host.clone())
                    .map_err(|_| Error::Invalid(format!("{host} is not a TLS server name")))?;
                let stream = tls.connect(name, tcp).await.map_err(|e| Error::Transport(format!("TLS: {e}")))?;
                Self::handshake(stream).await?
            }
            #[cfg(not(feature = "tls"))]
            match tls {}
        } else {
            Self::handshake(tcp).await?
        };
        Ok(Connection { send, authority, path, https, url: url.to_string(), tls, connect_timeout })
    }

    async fn handshake<IO>(io: IO) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, Error>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        tokio::spawn(conn);
        Ok(send)
    }

    /// Whether the server closed it (a request would open it again first).
    pub fn is_closed(&self) -> bool {
        self.send.is_closed()
    }

    /// The path (and query) of the URL the connection was opened for.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.https
    }

    /// A request to `path_and_query` with the Host header of this connection.
    pub fn request(
        &self,
        method: hyper::Method,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, Error> {
        Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::HOST, self.authority.as_str())
            .body(Full::new(body))
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Opens the connection again (see [`Connection`]).
    async fn reopen(&mut self) -> Result<(), Error> {
        let url = self.url.clone();
        *self = Connection::open(&url, self.tls.clone(), self.connect_timeout).await?;
        Ok(())
    }

    /// Sends `req` on the connection (opened again if the server closed it) and waits for the
    /// answer's head, within `timeout` if given.
    async fn head(
        &mut self,
        req: Request<Full<Bytes>>,
        timeout: Option<Duration>,
    ) -> Result<Response<Incoming>, Error> {
        if self.send.is_closed() || self.send.ready().await.is_err() {
            self.reopen().await?;
        }
        let send = async {
            match self.send.try_send_request(req).await {
                Ok(r) => Ok(r),
                Err(mut e) => match e.take_message() {
                    Some(req) => {
                        tracing::debug!(server = %self.authority, "connection closed before the request: reconnecting");
                        self.reopen().await?;
                        self.send.send_request(req).await.map_err(|e| Error::Transport(e.to_string()))
                    }
                    None => Err(Error::Transport(e.into_error().to_string())),
                },
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| Error::Timeout(t))?,
            None => send.await,
        }
    }

    /// Sends `req` and writes the body of a 2xx answer to `out` as it arrives, at most `max`
    /// bytes (more is [`Error::Body`], and what was written stays for the caller to remove);
    /// the status and the body's length (0, nothing read, for any other status).
    pub async fn exchange_into<W: tokio::io::AsyncWrite + Unpin>(
        &mut self,
        req: Request<Full<Bytes>>,
        out: &mut W,
        max: u64,
    ) -> Result<(StatusCode, u64), Error> {
        use tokio::io::AsyncWriteExt as _;
        let resp = self.head(req, None).await?;
        let status = resp.status();
        if !status.is_success() {
            return Ok((status, 0));
        }
        let mut body = resp.into_body();
        let mut n: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::Body(chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                n += data.len() as u64;
                if n > max {
                    return Err(Error::Body(format!("more than {max} bytes")));
                }
                out.write_all(&data).await.map_err(|e| Error::Body(format!("writing it: {e}")))?;
            }
        }
        out.flush().await.map_err(|e| Error::Body(format!("writing it: {e}")))?;
        Ok((status, n))
    }

    /// Sends `req` and reads the whole answer; the head must come within `timeout`.
    pub async fn exchange(&mut self, req: Request<Full<Bytes>>, timeout: Option<Duration>) -> Result<Reply, Error> {
        let resp = self.head(req, timeout).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| Error::Transport(e.to_string()))?.to_bytes();
        Ok(Reply { status: parts.status, headers: parts.headers, body })
    }
}
