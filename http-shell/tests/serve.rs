//! The serving loop over real loopback sockets: body limit, header and idle clocks, connection
//! cap, drain.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use http_shell::{serve, Limits};
use hyper::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// A server whose service counts its calls, sleeps `delay`, and echoes the body length.
struct Server {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits, delay: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let calls = Arc::new(AtomicUsize::new(0));
    let (stop, stopped) = oneshot::channel::<()>();
    let c = calls.clone();
    let done = tokio::spawn(serve(
        listener,
        None,
        limits,
        move |req: Request<hyper::body::Incoming>, _peer| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                let n = match http_shell::read_body(req.into_body(), &Limits::default()).await {
                    Ok(b) => b.len(),
                    Err(r) => return r.response(),
                };
                Response::new(Full::new(Bytes::from(format!("got {n}"))))
            }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    Server { addr, calls, stop: Some(stop), done }
}

/// Sends `head` and reads until the peer closes or `limit` passes; returns what came back.
async fn exchange(addr: SocketAddr, head: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(head).await.expect("write");
    read_until_close(&mut s, limit).await
}

async fn read_until_close(s: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn an_over_large_body_is_refused_with_413_before_the_service() {
    let srv = start(Limits { max_body: 100, ..Limits::default() }, Duration::ZERO).await;
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
    let reply = exchange(srv.addr, head, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("request body over 100 bytes"), "{reply}");
    assert_eq!(srv.calls.load(Ordering::SeqCst), 0, "the service saw the request");
    // Within the limit, the service answers.
    let reply = exchange(
        srv.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        Duration::from_secs(5),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("got 5"), "{reply}");
    assert_eq!(srv.calls.load(Ordering::SeqCst), 1);
}

/// A body whose next frame never comes.
struct Stalled;

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }
}

#[tokio::test]
async fn read_body_answers_413_and_408() {
    let limits = Limits { max_body: 4, body_read: Duration::from_millis(200), ..Limits::default() };
    let big = Full::new(Bytes::from_static(b"too long"));
    let r = http_shell::read_body(big, &limits).await.expect_err("over the limit");
    assert_eq!(r.status(), 413);
    let r = http_shell::read_body(Stalled, &limits).await.expect_err("too slow");
    assert_eq!(r.status(), 408);
    assert!(r.to_string().contains("not complete within"), "{r}");
    assert_eq!(
        http_shell::read_body(Full::new(Bytes::from_static(b"ok")), &limits).await,
        Ok(Bytes::from_static(b"ok"))
    );
}

#[tokio::test]
async fn a_slow_header_is_cut_off_while_others_are_served() {
    let limits = Limits { header_read: Duration::from_millis(300), ..Limits::default() };
    let srv = start(limits, Duration::ZERO).await;
    let mut slow = TcpStream::connect(srv.addr).await.expect("connect");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let started = std::time::Instant::now();
    // Meanwhile, another client is served.
    let reply = exchange(srv.addr, GET, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    // The slow one trickles a header line now and then and is cut off at the header clock.
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let rest = read_until_close(&mut slow, Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert!(rest.is_empty(), "the slow client got an answer: {rest}");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
    assert_eq!(srv.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let limits = Limits { idle: Duration::from_millis(300), ..Limits::default() };
    let srv = start(limits, Duration::ZERO).await;
    let mut s = TcpStream::connect(srv.addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let t = std::time::Instant::now();
    let all = read_until_close(&mut s, Duration::from_secs(5)).await;
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(4), "closed after {took:?}");
}

#[tokio::test]
async fn the_connection_cap_holds() {
    let limits = Limits { max_connections: 1, ..Limits::default() };
    let srv = start(limits, Duration::ZERO).await;
    // The first connection takes the only slot and keeps it (keep-alive).
    let mut first = TcpStream::connect(srv.addr).await.expect("connect");
    first.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 256];
    let n = first.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // A second waits: no answer while the first is inside its keep-alive pause (a connection
    // idle under `idle_under_pressure`, 2 s, is not closed to make room; tests/flood.rs).
    let mut second = TcpStream::connect(srv.addr).await.expect("connect");
    second.write_all(GET).await.expect("write");
    let waited = tokio::time::timeout(Duration::from_millis(400), second.read(&mut buf)).await;
    assert!(waited.is_err(), "the second connection was served over the cap");
    assert_eq!(srv.calls.load(Ordering::SeqCst), 1);
    // Once the first closes, the second is served.
    drop(first);
    let reply = read_until_close(&mut second, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(srv.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn drain_lets_an_in_flight_request_complete() {
    let mut srv =
        start(Limits { drain: Duration::from_secs(5), ..Limits::default() }, Duration::from_millis(500)).await;
    let addr = srv.addr;
    let client =
        tokio::spawn(async move { exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Duration::from_secs(5)).await });
    // Shut down while the request is in the service.
    while srv.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = srv.stop.take().map(|s| s.send(()));
    let reply = client.await.expect("client");
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("got 0"), "{reply}");
    // The keep-alive request got its answer and a close; serve returned after the drain.
    tokio::time::timeout(Duration::from_secs(2), &mut srv.done)
        .await
        .expect("serve returned")
        .expect("join")
        .expect("ok");
    // Nothing is accepted any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn drain_drops_requests_past_its_deadline() {
    let mut srv =
        start(Limits { drain: Duration::from_millis(200), ..Limits::default() }, Duration::from_secs(30)).await;
    let addr = srv.addr;
    let client = tokio::spawn(async move { exchange(addr, GET, Duration::from_secs(10)).await });
    while srv.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = std::time::Instant::now();
    let _ = srv.stop.take().map(|s| s.send(()));
    tokio::time::timeout(Duration::from_secs(3), &mut srv.done)
        .await
        .expect("serve returned")
        .expect("join")
        .expect("ok");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(client.await.expect("client"), "", "a dropped request gets no answer");
}

#[tokio::test]
async fn drain_closes_idle_keep_alive_connections_at_once() {
    let mut srv = start(Limits { drain: Duration::from_secs(20), ..Limits::default() }, Duration::ZERO).await;
    // A keep-alive connection that got its answer and now sits idle.
    let mut idle = TcpStream::connect(srv.addr).await.expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 256];
    let n = idle.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let t = std::time::Instant::now();
    let _ = srv.stop.take().map(|s| s.send(()));
    tokio::time::timeout(Duration::from_secs(5), &mut srv.done)
        .await
        .expect("serve returned")
        .expect("join")
        .expect("ok");
    assert!(t.elapsed() < Duration::from_secs(2), "an idle connection held the drain for {:?}", t.elapsed());
    assert_eq!(read_until_close(&mut idle, Duration::from_secs(2)).await, "", "closed without another answer");
}
