//! Floods at the connection cap: ordinary clients are still answered at once while 10,000
//! connections sit idle and a client trickles its head a byte a second; what the loop closes to
//! make room (the longest waiter for a head, an idle keep-alive connection after
//! `idle_under_pressure`, never a request inside the service), and the per-address cap.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use http_shell::{flood, raise_nofile, serve, Limits};
use hyper::Response;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// A plain listener with `limits` whose service sleeps `delay` and answers "ok"; its address and
/// the number of requests that reached the service.
async fn start(limits: Limits, delay: Duration) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    tokio::spawn(serve(
        listener,
        None,
        limits,
        move |_req, _peer| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(delay).await;
                Response::new(Full::new(Bytes::from_static(b"ok")))
            }
        },
        std::future::pending(),
    ));
    (addr, calls)
}

/// True when the server closed `s` (end of stream or reset) within `wait`.
async fn closed(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(wait, s.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

/// A connection from a loopback address of its own (the whole of 127.0.0.0/8 is local).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(SocketAddr::from((from, 0))).expect("bind the client");
    s.connect(to).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_and_a_trickler_do_not_keep_a_client_waiting() {
    assert!(raise_nofile(12_000).expect("RLIMIT_NOFILE") >= 12_000, "too few file descriptors");
    // The defaults: 1,024 connections, 30 s to send a head. An answer within `ask`'s 5 s is
    // therefore one that no clock freed a slot for: a flood connection was closed to make room.
    let (addr, calls) = start(Limits::default(), Duration::ZERO).await;
    let trickler = flood::trickle(addr, GET);
    let idle = flood::idle(addr, 10_000).await.expect("the flood's connections");
    assert_eq!(idle.len(), 10_000);
    // Every connection is accepted (none waits in the backlog), so a newcomer is too.
    let (_, reply) = flood::ask(addr, GET, Duration::from_secs(5)).await.expect("ask");
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok"), "no answer under the flood: {reply:?}");
    // Again, on a few more connections: the flood's slots keep turning over to real clients.
    for _ in 0..5 {
        let (_, reply) = flood::ask(addr, GET, Duration::from_secs(5)).await.expect("ask");
        assert!(reply.starts_with("HTTP/1.1 200"), "no answer under the flood: {reply:?}");
    }
    // The trickler was cut off (it had waited longest for its head), without an answer.
    let t = tokio::time::timeout(Duration::from_secs(5), trickler).await.expect("trickler cut off").expect("join");
    let t = t.expect("trickler connected");
    assert_eq!(t.answer, "", "the trickler got an answer");
    assert!(t.sent < GET.len(), "the trickler sent its whole head: {t:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 6, "only the ordinary clients reached the service");
    drop(idle);
}

#[tokio::test]
async fn at_the_cap_the_longest_waiter_for_a_head_makes_room() {
    let (addr, calls) = start(Limits { max_connections: 2, ..Limits::default() }, Duration::ZERO).await;
    let mut oldest = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut newer = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (_, reply) = flood::ask(addr, GET, Duration::from_secs(5)).await.expect("ask");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(closed(&mut oldest, Duration::from_secs(2)).await, "the oldest waiter was kept");
    assert!(!closed(&mut newer, Duration::from_millis(300)).await, "the newer waiter was closed too");
    // The newer one still gets its answer when it speaks.
    newer.write_all(GET).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), newer.read_to_end(&mut out)).await;
    assert!(out.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_request_inside_the_service_is_never_closed_to_make_room() {
    let (addr, calls) = start(Limits { max_connections: 1, ..Limits::default() }, Duration::from_millis(600)).await;
    let busy = tokio::spawn(flood::ask(addr, GET, Duration::from_secs(5)));
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The newcomer waits for the slot; the request in the service gets its answer first.
    let (took, reply) = flood::ask(addr, GET, Duration::from_secs(5)).await.expect("ask");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(took >= Duration::from_millis(400), "served over the cap after {took:?}");
    let (_, first) = busy.await.expect("join").expect("ask");
    assert!(first.starts_with("HTTP/1.1 200") && first.ends_with("ok"), "the busy request was cut: {first:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_makes_room_after_idle_under_pressure() {
    let limits = Limits { max_connections: 1, idle_under_pressure: Duration::from_millis(500), ..Limits::default() };
    let (addr, _) = start(limits, Duration::ZERO).await;
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut buf = [0u8; 256];
    let n = kept.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let (took, reply) = flood::ask(addr, GET, Duration::from_secs(5)).await.expect("ask");
    // Served within 5 s, well before the keep-alive connection's own idle clock (60 s) ran out,
    // but not before it had been idle 500 ms.
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply:?}");
    assert!(took >= Duration::from_millis(350), "the idle connection was closed after {took:?}");
    assert!(closed(&mut kept, Duration::from_secs(1)).await, "the idle connection was kept");
}

#[tokio::test]
async fn one_address_over_its_cap_makes_room_among_its_own_connections() {
    let limits = Limits { max_per_peer: Some(2), ..Limits::default() };
    let (addr, _) = start(limits, Duration::from_secs(2)).await;
    // 127.0.0.2 holds two connections; 127.0.0.3 one.
    let mut first = connect_from([127, 0, 0, 2], addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = connect_from([127, 0, 0, 2], addr).await;
    let mut other = connect_from([127, 0, 0, 3], addr).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A third from 127.0.0.2 closes that address's oldest waiter, not the other address's.
    let mut third = connect_from([127, 0, 0, 2], addr).await;
    assert!(closed(&mut first, Duration::from_secs(2)).await, "the address's oldest was kept");
    assert!(!closed(&mut other, Duration::from_millis(200)).await, "another address's connection was closed");
    // With both of its connections inside (slow) requests, a newcomer of 127.0.0.2 is closed
    // at once, while 127.0.0.3 still connects and is served.
    second.write_all(GET).await.expect("write");
    third.write_all(GET).await.expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = connect_from([127, 0, 0, 2], addr).await;
    assert!(closed(&mut fourth, Duration::from_secs(1)).await, "over the cap with nothing to shed, yet kept");
    other.write_all(GET).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(4), other.read_to_end(&mut out)).await;
    assert!(out.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&out));
}
