//! The one serving loop: accept (surviving accept errors), cap connections, TLS or plain, watch
//! each connection's header and idle clocks, refuse declared over-large bodies, drain on shutdown.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::TlsAcceptor;

/// What one listener allows its peers. Each listener keeps its own values; [`Limits::default`]
/// suits a small management API.
///
/// # Floods
/// A listener must keep answering its real clients while a peer holds thousands of connections
/// open without sending anything, or trickles a request head a byte a second. Waiting in the
/// kernel's backlog for a slot is not enough: with 1,024 slots taken by such peers, a real client
/// would wait for a whole [`Limits::header_read`] (30 s). So, as nginx does with its "reusable"
/// connections, the loop keeps accepting at the cap and makes room by closing a connection that
/// is not being served:
/// 1. first the one that has waited longest for a complete request head: a new connection that
///    has not sent one (its TLS handshake included), or a keep-alive connection whose next head
///    started to arrive; a real client sends its head within a round trip of connecting, so the
///    oldest waiters are the flood's, and a byte-a-second peer is always among the oldest;
/// 2. else a keep-alive connection idle between requests for at least
///    [`Limits::idle_under_pressure`] (the longest idle first); a shorter pause (a CPE working on
///    the ACS's last request inside a session) is left alone;
/// 3. else (every connection is inside a request) the newcomer waits for a slot, as before,
///    and no further connection is accepted meanwhile.
///
/// A request that has reached the service is never cut off to make room. Without a flood nothing
/// changes: the clocks below close slow and idle connections as they always did.
///
/// [`Limits::max_per_peer`] adds a cap per client address: over it, that address's own longest
/// waiter makes room for its newcomer (or, with none, the newcomer is closed at once), so one
/// address cannot crowd out the others even with requests the service is busy with. It is off by
/// default because many real clients can share an address (CPEs behind carrier-grade NAT, every
/// browser behind the web form's reverse proxy).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once. At the cap a newcomer takes the slot of a connection waiting
    /// for its request head or idle (see [Floods](Limits#floods)); when every connection is
    /// inside a request, it waits in the kernel's accept backlog until one ends (it is not
    /// refused: every peer of ours, a CPE, the OSS, a browser, the host agent, retries a refused
    /// connection at once or fails a session, while a short wait costs nothing).
    pub max_connections: usize,
    /// Connections one client address may hold at once; `None` for no cap of its own.
    pub max_per_peer: Option<usize>,
    /// Time for a new connection (its TLS handshake included) to send a complete request head,
    /// and for the head of each later request once its first byte arrived. A peer that trickles
    /// its head (slowloris) is cut off.
    pub header_read: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle: Duration,
    /// At the connection cap, a keep-alive connection idle this long may be closed to make room
    /// for a newcomer (see [Floods](Limits#floods)).
    pub idle_under_pressure: Duration,
    /// Largest request body. A request whose `Content-Length` is larger gets 413 without reaching
    /// the service; a body without a length is held to it by [`read_body`].
    pub max_body: usize,
    /// Time [`read_body`] gives a whole request body before answering 408.
    pub body_read: Duration,
    /// On shutdown, time in-flight requests get to finish before their connections are dropped.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_per_peer: None,
            header_read: Duration::from_secs(30),
            idle: Duration::from_secs(60),
            idle_under_pressure: Duration::from_secs(2),
            max_body: 1 << 20,
            body_read: Duration::from_secs(30),
            drain: Duration::from_secs(10),
        }
    }
}

/// Why [`read_body`] refused a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over [`Limits::max_body`] bytes: 413.
    TooLarge(usize),
    /// Not complete within [`Limits::body_read`]: 408.
    TooSlow(Duration),
    /// The peer broke the body off: 400.
    Broken(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge(max) => write!(f, "request body over {max} bytes"),
            Refusal::TooSlow(d) => write!(f, "request body not complete within {} s", d.as_secs_f64()),
            Refusal::Broken(e) => write!(f, "request body broken off: {e}"),
        }
    }
}

impl Refusal {
    /// The status answering it.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            Refusal::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// A plain-text response with [`Refusal::status`] and the reason; the connection closes after
    /// it (the rest of the body is not read).
    pub fn response(&self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from(format!("{self}\n"))));
        *r.status_mut() = self.status();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    }
}

/// Reads a whole request body within `limits.max_body` bytes and `limits.body_read`.
pub async fn read_body<B>(body: B, limits: &Limits) -> Result<Bytes, Refusal>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match tokio::time::timeout(limits.body_read, Limited::new(body, limits.max_body).collect()).await {
        Err(_) => Err(Refusal::TooSlow(limits.body_read)),
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(Refusal::TooLarge(limits.max_body)),
        Ok(Err(e)) => Err(Refusal::Broken(e.to_string())),
    }
}

/// The smallest and largest wait after an accept error that is about the listener's process
/// (out of file descriptors or memory) rather than about one peer.
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Serves HTTP/1.1 on `listener` until `shutdown` completes, then drains.
///
/// Each connection (over TLS when `tls` is given) runs on its own task; `service` gets every
/// request with the peer's address and answers it. The loop:
/// - keeps at most `limits.max_connections` connections (and `limits.max_per_peer` per client
///   address); at the cap it closes the connection that has waited longest for a request head,
///   or one idle for [`Limits::idle_under_pressure`], to serve the newcomer, and waits for a
///   slot only when every connection is inside a request (see [Floods](Limits#floods));
/// - survives accept errors: a peer that went away is skipped, anything else (EMFILE, ENFILE,
///   ENOBUFS, ENOMEM) is logged and retried after a back-off of 10 ms doubling to 1 s, so running
///   out of file descriptors slows the listener down but never ends it;
/// - closes a connection whose request head is late ([`Limits::header_read`]) or that sat idle
///   between requests ([`Limits::idle`]); the service's own time is not limited here;
/// - answers 413 for a declared `Content-Length` over [`Limits::max_body`] without calling the
///   service;
/// - on shutdown stops accepting, asks every connection to close after its current request
///   (hyper's `graceful_shutdown`), waits up to [`Limits::drain`] for them, then drops the rest.
///
/// Returns `Ok` after the drain; it has no error of its own (the `io::Result` leaves room for
/// callers that bind inside).
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    service: F,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    // A listener bound by the standard library has a backlog of 128: a burst of connections
    // overflows it while the loop starts the connections it just accepted, and a client whose
    // handshake is dropped there waits a second (the SYN's retransmission) before it is even
    // accepted. Listening again on a listening socket only sets its backlog.
    if let Err(e) = socket2::SockRef::from(&listener).listen(BACKLOG) {
        tracing::warn!("the listener keeps its accept backlog: {e}");
    }
    let service = Arc::new(service);
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let roster = Arc::new(Roster::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut backoff = BACKOFF_MIN;
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(v) => {
                backoff = BACKOFF_MIN;
                v
            }
            Err(e) if peer_gone(&e) => {
                tracing::debug!("accept: a peer went away: {e}");
                continue;
            }
            Err(e) => {
                tracing::warn!(retry_ms = backoff.as_millis() as u64, "accept failed: {e}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut shutdown => break,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        if let Some(max) = limits.max_per_peer {
            if roster.held_by(peer.ip()) >= max.max(1) && !roster.shed(&limits, Some(peer.ip())) {
                tracing::info!(%peer, "over {max} connections from one address, all inside requests: closed");
                continue;
            }
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::select! {
                p = make_room(&slots, &roster, &limits) => p,
                () = &mut shutdown => break,
            },
        };
        let activity = Arc::new(Activity::new(Instant::now()));
        let slot = Slot { _enrolled: roster.enroll(peer.ip(), activity.clone()), _permit: permit };
        conns.spawn(connection(
            stream,
            peer,
            tls.clone(),
            limits.clone(),
            service.clone(),
            stop_rx.clone(),
            activity,
            slot,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.drain, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(connections = conns.len(), "drain: requests still running after {:?}, dropped", limits.drain);
        conns.shutdown().await;
    }
    Ok(())
}

/// The accept backlog asked of the kernel (which caps it at `net.core.somaxconn`, 4096 on
/// current Linux).
const BACKLOG: i32 = 4096;

/// How often a newcomer held at the cap looks again for a connection it may replace, when none
/// qualified (every connection was inside a request or idle for less than
/// [`Limits::idle_under_pressure`]).
const RECHECK: Duration = Duration::from_millis(50);

/// A slot for the newcomer at the cap: a connection is shed to make room when one qualifies,
/// otherwise the loop waits for a slot to free, looking again every [`RECHECK`].
async fn make_room(slots: &Arc<Semaphore>, roster: &Roster, limits: &Limits) -> OwnedSemaphorePermit {
    loop {
        // A connection shed earlier frees its slot in a moment: wait for it rather than shed two.
        let pending = roster.shedding() > 0 || roster.shed(limits, None);
        let wait = if pending { BACKOFF_MAX } else { RECHECK };
        if let Ok(Ok(p)) = tokio::time::timeout(wait, slots.clone().acquire_owned()).await {
            return p;
        }
    }
}

/// A connection's place: its entry in the [`Roster`], then its slot of the cap (dropped in this
/// order, so the roster never counts a connection whose slot is already free).
struct Slot {
    _enrolled: Enrolled,
    _permit: OwnedSemaphorePermit,
}

/// The connections being served, for choosing one to shed at the cap.
#[derive(Default)]
struct Roster {
    inner: Mutex<Members>,
}

#[derive(Default)]
struct Members {
    next: u64,
    by_id: HashMap<u64, (IpAddr, Arc<Activity>)>,
    per_peer: HashMap<IpAddr, usize>,
    /// Connections told to close to make room and not gone yet.
    shedding: usize,
}

/// A connection's entry in the [`Roster`], removed on drop.
struct Enrolled {
    roster: Arc<Roster>,
    id: u64,
}

/// Why a connection that is not inside a request is there, and since when; the order is the
/// order of shedding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Waiting {
    /// Waiting for a request head (or the TLS handshake) since then.
    Head(Instant),
    /// Idle between requests since then.
    Idle(Instant),
}

impl Roster {
    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enroll(self: &Arc<Self>, peer: IpAddr, activity: Arc<Activity>) -> Enrolled {
        let mut m = self.lock();
        let id = m.next;
        m.next += 1;
        m.by_id.insert(id, (peer, activity));
        *m.per_peer.entry(peer).or_default() += 1;
        Enrolled { roster: self.clone(), id }
    }

    fn held_by(&self, peer: IpAddr) -> usize {
        self.lock().per_peer.get(&peer).copied().unwrap_or(0)
    }

    fn shedding(&self) -> usize {
        self.lock().shedding
    }

    /// Tells the connection (of `peer` only, when given) that has waited longest for a request
    /// head, or else the one idle longest past [`Limits::idle_under_pressure`], to close; false
    /// when none qualifies.
    fn shed(&self, limits: &Limits, peer: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let mut m = self.lock();
        let victim = m
            .by_id
            .values()
            .filter(|(p, a)| peer.is_none_or(|only| *p == only) && !a.is_shed())
            .filter_map(|(_, a)| a.waiting().map(|w| (w, a)))
            .filter(|(w, _)| match w {
                Waiting::Head(_) => true,
                Waiting::Idle(since) => now.saturating_duration_since(*since) >= limits.idle_under_pressure,
            })
            .min_by_key(|(w, _)| *w)
            .map(|(w, a)| (w, a.clone()));
        let Some((why, activity)) = victim else { return false };
        activity.shed.store(true, Ordering::SeqCst);
        m.shedding += 1;
        drop(m);
        activity.changed.notify_one();
        tracing::debug!(?why, "at the connection cap: a connection not inside a request closed to make room");
        true
    }
}

impl Drop for Enrolled {
    fn drop(&mut self) {
        let mut m = self.roster.lock();
        if let Some((peer, activity)) = m.by_id.remove(&self.id) {
            if activity.is_shed() {
                m.shedding = m.shedding.saturating_sub(1);
            }
            if let Some(n) = m.per_peer.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    m.per_peer.remove(&peer);
                }
            }
        }
    }
}

/// An accept error about one peer, not about the listener.
fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[allow(clippy::too_many_arguments)]
async fn connection<F, Fut>(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    limits: Arc<Limits>,
    service: Arc<F>,
    stop: watch::Receiver<bool>,
    activity: Arc<Activity>,
    _slot: Slot,
) where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let _ = stream.set_nodelay(true);
    match tls {
        None => drive(stream, peer, activity, limits, service, stop).await,
        #[cfg(feature = "tls")]
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.header_read, acceptor.accept(stream));
            tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => drive(s, peer, activity, limits, service, stop).await,
                    Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
                    Err(_) => tracing::info!(%peer, "TLS handshake not done within {:?}", limits.header_read),
                },
                () = activity.until_shed() => tracing::debug!(%peer, "closed during its TLS handshake to make room"),
            }
        }
        #[cfg(not(feature = "tls"))]
        Some(never) => match never {},
    }
}

/// When a connection's requests started and ended, as its watchdog needs them.
struct Clock {
    /// Requests handed to the service and not answered yet.
    in_flight: usize,
    /// Requests answered.
    served: u64,
    /// When the last request was answered (or the connection accepted).
    last_done: Instant,
    /// When the first byte after the last answer arrived (a new request head is coming).
    head_started: Option<Instant>,
}

struct Activity {
    clock: Mutex<Clock>,
    changed: Notify,
    /// Set when the connection is to close to make room for a newcomer.
    shed: AtomicBool,
}

/// What the watchdog does at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    Header,
    Idle,
}

impl Activity {
    fn new(accepted: Instant) -> Activity {
        Activity {
            clock: Mutex::new(Clock { in_flight: 0, served: 0, last_done: accepted, head_started: None }),
            changed: Notify::new(),
            shed: AtomicBool::new(false),
        }
    }

    /// What the connection waits for when it is not inside a request.
    fn waiting(&self) -> Option<Waiting> {
        let c = self.lock();
        if c.in_flight > 0 {
            None
        } else if let Some(t) = c.head_started {
            Some(Waiting::Head(t))
        } else if c.served == 0 {
            Some(Waiting::Head(c.last_done))
        } else {
            Some(Waiting::Idle(c.last_done))
        }
    }

    fn is_shed(&self) -> bool {
        self.shed.load(Ordering::SeqCst)
    }

    /// Completes once the connection is told to close to make room.
    #[cfg(feature = "tls")]
    async fn until_shed(&self) {
        while !self.is_shed() {
            self.changed.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next deadline and what it is, or `None` while a request is being served.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, Expiry)> {
        let c = self.lock();
        if c.in_flight > 0 {
            None
        } else if let Some(t) = c.head_started {
            Some((t + limits.header_read, Expiry::Header))
        } else if c.served == 0 {
            // `last_done` holds the time of the accept until the first answer.
            Some((c.last_done + limits.header_read, Expiry::Header))
        } else {
            Some((c.last_done + limits.idle, Expiry::Idle))
        }
    }

    fn read(&self) {
        let mut c = self.lock();
        if c.in_flight == 0 && c.head_started.is_none() {
            c.head_started = Some(Instant::now());
            drop(c);
            self.changed.notify_one();
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut c = self.lock();
        c.in_flight += 1;
        c.head_started = None;
        drop(c);
        self.changed.notify_one();
        InFlight(self.clone())
    }
}

/// A request being served; dropping it (answered or cancelled) restarts the idle clock.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut c = self.0.lock();
        c.in_flight = c.in_flight.saturating_sub(1);
        c.served += 1;
        c.last_done = Instant::now();
        c.head_started = None;
        drop(c);
        self.0.changed.notify_one();
    }
}

/// The connection's stream, telling [`Activity`] when bytes arrive.
struct Watched<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A declared body over the limit, answered by the shell.
fn declared_too_large(req: &Request<Incoming>, max: usize) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
}

async fn drive<IO, F, Fut>(
    io: IO,
    peer: SocketAddr,
    activity: Arc<Activity>,
    limits: Arc<Limits>,
    service: Arc<F>,
    mut stop: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let io = Watched { inner: io, activity: activity.clone() };
    let max_body = limits.max_body;
    let svc = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let in_flight = activity.begin();
            let service = service.clone();
            async move {
                let _in_flight = in_flight;
                if declared_too_large(&req, max_body) {
                    tracing::warn!(%peer, "refused a request body over {max_body} bytes");
                    return Ok::<_, Infallible>(Refusal::TooLarge(max_body).response());
                }
                Ok(service(req, peer).await)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut draining = *stop.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        if activity.is_shed() {
            tracing::debug!(%peer, "closed to make room for a newcomer");
            return;
        }
        let deadline = activity.deadline(&limits);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, "connection ended: {e}");
                }
                return;
            }
            () = async {
                match deadline {
                    Some((t, _)) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                match activity.deadline(&limits) {
                    Some((t, Expiry::Header)) if t <= Instant::now() => {
                        tracing::info!(%peer, "no complete request head within {:?}: closed", limits.header_read);
                        return;
                    }
                    Some((t, Expiry::Idle)) if t <= Instant::now() => {
                        tracing::debug!(%peer, "idle for {:?}: closed", limits.idle);
                        return;
                    }
                    _ => {}
                }
            }
            () = activity.changed.notified() => {}
            r = stop.changed(), if !draining => {
                draining = true;
                if r.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
