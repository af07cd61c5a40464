//! The CPE side of a CWMP session over HTTP, shared by the hypervisor agent and `cwmp-sim`: one
//! connection per session (taken from a [`Pool`] of idle ones when many devices share one
//! process), the ACS's session cookie carried, a 401 answered once with Digest
//! (and Basic only where the caller allows it), each POST within a deadline. The session's
//! logic stays in `cwmp::session::CpeSession`; this is only how its envelopes travel.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, StatusCode};

use crate::client::{Connection, Error, TlsConnector};

/// Longest wait for the ACS's answer to one POST.
pub const POST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the TCP connection to the ACS.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// When the CPE may answer a 401 with Basic (its password in clear text unless the link is
/// TLS). Digest is always preferred when a challenge offers it.
///
/// These keep what each CPE did before the driver was shared; neither refuses Basic over plain
/// HTTP by itself (the ACS offers Basic only when configured to, see `cwmp::auth::Verifier`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    /// Only when the ACS's challenges offer Basic (the hypervisor agent).
    WhenOffered,
    /// Whenever no Digest challenge can be answered (`cwmp-sim`, which tests ACSs configured for
    /// Basic only).
    Fallback,
}

/// One session's HTTP link to the ACS.
#[derive(Debug)]
pub struct Link {
    conn: Connection,
    user: String,
    password: String,
    basic: Basic,
    /// The session's cookies (name, value), as the ACS (and a load balancer before it) set them.
    cookies: Vec<(String, String)>,
    auth: Option<String>,
}

/// Idle connections to ACSs, shared by the sessions of many devices in one process (a hypervisor
/// agent's virtual devices): a session takes one, or opens one when none is idle, and gives it
/// back when it ended well, so a thousand devices' sessions reuse as many connections as ran at
/// once rather than opening one each. The session is the ACS's cookie, never the connection; a
/// connection the ACS closed meanwhile is opened again before the first request goes out.
#[derive(Debug, Clone)]
pub struct Pool {
    idle: std::sync::Arc<std::sync::Mutex<Vec<(String, Connection)>>>,
    max_idle: usize,
}

impl Pool {
    /// A pool keeping at most `max_idle` idle connections.
    pub fn new(max_idle: usize) -> Pool {
        Pool { idle: Default::default(), max_idle }
    }

    /// Idle connections now.
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn take(&self, url: &str) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = idle.iter().rposition(|(u, _)| u == url)?;
        Some(idle.swap_remove(at).1)
    }

    fn give_back(&self, url: &str, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle && !conn.is_closed() {
            idle.push((url.to_string(), conn));
        }
    }
}

impl Link {
    /// Connects to the ACS at `url` (`https://` needs `tls`) for one session: through a
    /// connection from `pool` when one to `url` is idle there (give it back with
    /// [`Link::finish`]), else a new one.
    pub async fn open(
        pool: Option<&Pool>,
        url: &str,
        tls: Option<TlsConnector>,
        user: &str,
        password: &str,
        basic: Basic,
    ) -> Result<Link, Error> {
        let conn = match pool.and_then(|p| p.take(url)) {
            Some(conn) => conn,
            None => Connection::open(url, tls, CONNECT_TIMEOUT).await?,
        };
        Ok(Link::on(conn, user, password, basic))
    }

    /// The session ended well: its connection goes back to `pool` for another session.
    pub fn finish(self, pool: &Pool, url: &str) {
        pool.give_back(url, self.conn);
    }

    /// A session's link over `conn`, no cookie or credentials sent yet.
    fn on(conn: Connection, user: &str, password: &str, basic: Basic) -> Link {
        Link { conn, user: user.into(), password: password.into(), basic, cookies: Vec::new(), auth: None }
    }

    /// POSTs one envelope (empty: the CPE's empty POST) and returns the ACS's status and body.
    /// A 401 is answered once with new credentials from its challenges; if none can be made,
    /// the 401 is returned. Every cookie an answer set is sent along from then on (a later one
    /// of the same name replaces it), as RFC 6265 has a client do.
    pub async fn post(&mut self, body: &str) -> Result<(StatusCode, Bytes), Error> {
        let mut reply = self.send(body).await?;
        self.keep_cookies(&reply);
        if reply.status == StatusCode::UNAUTHORIZED {
            let challenges: Vec<String> = reply
                .headers
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|h| h.to_str().ok().map(str::to_string))
                .collect();
            self.auth = self.answer(&challenges);
            if self.auth.is_none() {
                return Ok((reply.status, reply.body));
            }
            reply = self.send(body).await?;
            self.keep_cookies(&reply);
        }
        Ok((reply.status, reply.body))
    }

    /// Keeps the cookies an answer sets (its 401 too: a load balancer's, which sends the
    /// Digest answer back to the server that made the challenge).
    fn keep_cookies(&mut self, reply: &crate::client::Reply) {
        for set in reply.headers.get_all(header::SET_COOKIE).iter().filter_map(|h| h.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let (name, value) = (name.trim().to_string(), value.trim().to_string());
                match self.cookies.iter_mut().find(|(n, _)| *n == name) {
                    Some(kept) => kept.1 = value,
                    None => self.cookies.push((name, value)),
                }
            }
        }
    }

    /// The `Authorization` answering `challenges`: Digest when one can be answered, else Basic
    /// as [`Basic`] allows.
    fn answer(&self, challenges: &[String]) -> Option<String> {
        let cnonce = crate::random_hex(8);
        let path = self.conn.path().to_string();
        challenges
            .iter()
            .find_map(|c| cwmp::auth::answer(c, "POST", &path, &self.user, &self.password, &cnonce))
            .or_else(|| {
                let allowed = match self.basic {
                    Basic::WhenOffered => challenges.iter().any(|c| c.starts_with("Basic")),
                    Basic::Fallback => true,
                };
                allowed.then(|| {
                    use base64::Engine as _;
                    let pair = format!("{}:{}", self.user, self.password);
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
                })
            })
    }

    async fn send(&mut self, body: &str) -> Result<crate::client::Reply, Error> {
        let path = self.conn.path().to_string();
        let mut req = self.conn.request(Method::POST, &path, Bytes::from(body.to_string()))?;
        if !body.is_empty() {
            req.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
            req.headers_mut().insert("SOAPAction", HeaderValue::from_static(""));
        }
        let cookie = (!self.cookies.is_empty())
            .then(|| self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; "));
        for (name, v) in [(header::COOKIE, &cookie), (header::AUTHORIZATION, &self.auth)] {
            if let Some(v) = v.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                req.headers_mut().insert(name, v);
            }
        }
        self.conn.exchange(req, Some(POST_TIMEOUT)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use http_body_util::Full;
    use hyper::{Request, Response};

    /// An ACS stand-in: credentials required on the first POST, a cookie after; its 401 offers
    /// the challenges starting with `offer` (and it accepts Basic only when that is "Basic").
    async fn acs(offer: &'static str) -> (String, Arc<Mutex<Vec<(Option<String>, Option<String>)>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/acs", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut verifier = cwmp::auth::Verifier::new("test", [7; 32]);
        verifier.allow_basic = offer == "Basic";
        tokio::spawn(crate::serve(
            listener,
            None,
            crate::Limits::default(),
            move |req: Request<hyper::body::Incoming>, _| {
                let get =
                    |h: header::HeaderName| req.headers().get(h).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (cookie, auth) = (get(header::COOKIE), get(header::AUTHORIZATION));
                s.lock().expect("lock").push((cookie.clone(), auth.clone()));
                // The Basic stand-in plays a TLS listener: the only place Basic is accepted.
                let tls = offer == "Basic";
                let attempt =
                    cwmp::auth::Attempt { method: "POST", uri: req.uri().path(), header: auth.as_deref(), tls };
                let ok = cookie.is_some()
                    || verifier.check_password(attempt, |u| (u == "cpe").then(|| "pw".to_string()), 0).is_ok();
                let mut r = Response::new(Full::new(Bytes::from_static(b"<reply/>")));
                if ok {
                    r.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static("session=1; Path=/"));
                    // A load balancer's own, beside the ACS's.
                    r.headers_mut().append(header::SET_COOKIE, HeaderValue::from_static("lb=node1; HttpOnly"));
                } else {
                    *r.status_mut() = StatusCode::UNAUTHORIZED;
                    // Like a server that closes rather than read a body it refused.
                    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                    let challenges = verifier.challenges_for(0, tls);
                    for c in challenges.iter().filter(|c| c.starts_with(offer)) {
                        r.headers_mut().append(header::WWW_AUTHENTICATE, HeaderValue::from_str(c).expect("header"));
                    }
                }
                async move { r }
            },
            std::future::pending(),
        ));
        (url, seen)
    }

    /// The stand-in closes the connection after each 401, so every retry below also shows the
    /// link reconnecting for a request that was never sent.
    #[tokio::test]
    async fn digest_retry_then_the_cookie_carries_the_session() {
        let (url, seen) = acs("Digest").await;
        let mut link = Link::open(None, &url, None, "cpe", "pw", Basic::WhenOffered).await.expect("open");
        let (status, body) = link.post("<inform/>").await.expect("post");
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"<reply/>"[..]));
        let (status, _) = link.post("").await.expect("empty post");
        assert_eq!(status, StatusCode::OK);
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen[0], (None, None));
        assert!(seen[1].1.as_deref().is_some_and(|a| a.starts_with("Digest ") && a.contains("uri=\"/acs\"")));
        assert_eq!(seen[2].0.as_deref(), Some("session=1; lb=node1"), "every cookie set, each once");
    }

    #[tokio::test]
    async fn sessions_through_a_pool_reuse_its_idle_connections() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/acs", listener.local_addr().expect("addr"));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let p = peers.clone();
        tokio::spawn(crate::serve(
            listener,
            None,
            crate::Limits::default(),
            move |_req: Request<hyper::body::Incoming>, peer| {
                p.lock().expect("lock").push(peer);
                async move { Response::new(Full::new(Bytes::from_static(b"<reply/>"))) }
            },
            std::future::pending(),
        ));
        let pool = Pool::new(1);
        let session = |pool: Pool, url: String| async move {
            let mut link = Link::open(Some(&pool), &url, None, "cpe", "pw", Basic::WhenOffered).await.expect("open");
            assert_eq!(link.post("<inform/>").await.expect("post").0, StatusCode::OK);
            assert_eq!(link.post("").await.expect("post").0, StatusCode::OK);
            link
        };
        // One after another: one connection for all.
        for _ in 0..3 {
            session(pool.clone(), url.clone()).await.finish(&pool, &url);
        }
        let seen: Vec<std::net::SocketAddr> = std::mem::take(&mut *peers.lock().expect("lock"));
        assert_eq!(seen.len(), 6);
        assert!(seen.iter().all(|p| *p == seen[0]), "one connection: {seen:?}");
        assert_eq!(pool.idle(), 1);
        // Two at once: the second opens its own; only one is kept idle after.
        let (a, b) = tokio::join!(session(pool.clone(), url.clone()), session(pool.clone(), url.clone()));
        a.finish(&pool, &url);
        b.finish(&pool, &url);
        assert_eq!(pool.idle(), 1, "at most max_idle kept");
        let seen: Vec<std::net::SocketAddr> = std::mem::take(&mut *peers.lock().expect("lock"));
        let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), 2, "{seen:?}");
        // Another URL never takes this one's connection.
        assert!(pool.take("http://127.0.0.1:9/other").is_none());
    }

    #[tokio::test]
    async fn basic_only_where_allowed() {
        // The ACS offers nothing a CPE can answer with Digest.
        let (url, _) = acs("Nothing").await;
        let mut agent = Link::open(None, &url, None, "cpe", "pw", Basic::WhenOffered).await.expect("open");
        assert_eq!(agent.post("<inform/>").await.expect("post").0, StatusCode::UNAUTHORIZED);
        let (url, seen) = acs("Nothing").await;
        let mut sim = Link::open(None, &url, None, "cpe", "pw", Basic::Fallback).await.expect("open");
        // Basic is tried (this verifier refuses Basic, so the answer stays 401).
        assert_eq!(sim.post("<inform/>").await.expect("post").0, StatusCode::UNAUTHORIZED);
        let seen = seen.lock().expect("lock").clone();
        assert!(seen[1].1.as_deref().is_some_and(|a| a.starts_with("Basic ")), "{seen:?}");
        // Offered, the agent's link uses it.
        let (url, seen) = acs("Basic").await;
        let mut agent = Link::open(None, &url, None, "cpe", "pw", Basic::WhenOffered).await.expect("open");
        assert_eq!(agent.post("<inform/>").await.expect("post").0, StatusCode::OK);
        assert!(seen.lock().expect("lock")[1].1.as_deref().is_some_and(|a| a.starts_with("Basic ")));
    }
}
