//! Serving over TLS: a client trusting the server's certificate is served through
//! `client::Connection`, while a peer that never starts its handshake is cut off at the header
//! clock, or at once when the listener is at its connection cap and a client needs the slot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use http_shell::client::{tls_connector, Connection};
use http_shell::{serve, Limits};
use hyper::{Method, Response, StatusCode};
use rustls_pki_types::pem::PemObject as _;
use tokio::io::AsyncReadExt;

/// A TLS listener with `limits` answering "path <path>"; its port and the CA file to trust.
async fn start(dir: &std::path::Path, limits: Limits) -> (u16, std::path::PathBuf) {
    std::fs::create_dir_all(dir).expect("dir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let ca = dir.join("cert.pem");
    std::fs::write(&ca, cert.cert.pem()).expect("cert");
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(cert.key_pair.serialize_pem().as_bytes()).expect("key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(serve(
        listener,
        Some(acceptor),
        limits,
        |req, _| async move { Response::new(Full::new(Bytes::from(format!("path {}", req.uri().path())))) },
        std::future::pending(),
    ));
    (port, ca)
}

#[tokio::test]
async fn tls_is_served_and_a_silent_peer_is_cut_off() {
    let dir = std::env::temp_dir().join(format!("http-shell-tls-{}", std::process::id()));
    let (port, ca) = start(&dir, Limits { header_read: Duration::from_millis(300), ..Limits::default() }).await;
    // A peer that connects and says nothing holds its slot no longer than the header clock.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let t = Instant::now();
    let tls = tls_connector(&ca).expect("connector");
    let mut conn = Connection::open(&format!("https://localhost:{port}/x"), Some(tls), Duration::from_secs(5))
        .await
        .expect("open");
    assert!(conn.is_tls());
    let req = conn.request(Method::GET, "/x", Bytes::new()).expect("request");
    let reply = conn.exchange(req, Some(Duration::from_secs(5))).await.expect("exchange");
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"path /x"[..]));
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(3), silent.read_to_end(&mut buf)).await.expect("closed in time");
    assert_eq!(n.map_or(0, |n| n), 0);
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    // An https URL without a TLS configuration is refused before connecting.
    let err = Connection::open(&format!("https://localhost:{port}/"), None, Duration::from_secs(5))
        .await
        .expect_err("no TLS");
    assert!(err.to_string().contains("needs a TLS configuration"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn at_the_cap_a_peer_silent_in_its_handshake_makes_room() {
    let dir = std::env::temp_dir().join(format!("http-shell-tls-cap-{}", std::process::id()));
    // One slot, and a header clock long enough that only the cap can free it in time.
    let (port, ca) = start(&dir, Limits { max_connections: 1, ..Limits::default() }).await;
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let tls = tls_connector(&ca).expect("connector");
    let mut conn = Connection::open(&format!("https://localhost:{port}/y"), Some(tls), Duration::from_secs(5))
        .await
        .expect("open");
    let req = conn.request(Method::GET, "/y", Bytes::new()).expect("request");
    let reply = conn.exchange(req, Some(Duration::from_secs(5))).await.expect("served at the cap");
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"path /y"[..]));
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(3), silent.read_to_end(&mut buf)).await.expect("closed");
    assert_eq!(n.map_or(0, |n| n), 0, "the silent peer got bytes");
    let _ = std::fs::remove_dir_all(&dir);
}
