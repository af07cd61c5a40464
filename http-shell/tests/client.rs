//! The client builder: the caller's authentication on every request that has none of its own,
//! the timeout, the answer's size limit, and errors that name their cause.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use http_shell::client::{Auth, Builder, Error};
use http_shell::{serve, Limits};
use hyper::{header, Request, Response};

/// A server answering with the request's Authorization header; "/slow" waits 2 s first.
async fn server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(serve(
        listener,
        None,
        Limits::default(),
        |req: Request<hyper::body::Incoming>, _| async move {
            if req.uri().path() == "/slow" {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let auth = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok()).unwrap_or("none");
            Response::new(Full::new(Bytes::from(auth.to_string())))
        },
        std::future::pending(),
    ));
    base
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::new(Bytes::new())).expect("request")
}

#[tokio::test]
async fn authentication_is_the_callers_choice() {
    let base = server().await;
    let none = Builder::new().build().fetch(get(&base), 1024).await.expect("fetch");
    assert_eq!(&none.body[..], b"none");
    let bearer = Builder::new().auth(Auth::Bearer("t0k".into())).build();
    assert_eq!(&bearer.fetch(get(&base), 1024).await.expect("fetch").body[..], b"Bearer t0k");
    let basic = Builder::new().auth(Auth::Basic { user: "u".into(), password: "p".into() }).build();
    assert_eq!(&basic.fetch(get(&base), 1024).await.expect("fetch").body[..], b"Basic dTpw");
    // A request's own header wins.
    let mut own = get(&base);
    own.headers_mut().insert(header::AUTHORIZATION, header::HeaderValue::from_static("Digest x"));
    assert_eq!(&bearer.fetch(own, 1024).await.expect("fetch").body[..], b"Digest x");
}

#[tokio::test]
async fn timeout_limit_and_unreachable() {
    let base = server().await;
    let quick = Builder::new().timeout(Duration::from_millis(200)).build();
    let err = quick.fetch(get(&format!("{base}/slow")), 1024).await.expect_err("too slow");
    assert_eq!(err, Error::Timeout(Duration::from_millis(200)));
    assert_eq!(err.to_string(), "no answer within 0.2 s");
    let err = Builder::new().build().fetch(get(&base), 2).await.expect_err("over the limit");
    assert!(matches!(err, Error::Body(_)), "{err:?}");
    // A closed port: the cause is named, not just "client error (Connect)".
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", closed.local_addr().expect("addr"));
    drop(closed);
    let err = Builder::new().build().send(get(&url)).await.expect_err("refused");
    assert!(err.to_string().contains("refused"), "{err}");
}
