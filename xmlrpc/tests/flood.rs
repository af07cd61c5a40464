//! The XML-RPC listener (what every vRGW proxy serves its host with) under a flood: 10,000
//! connections that never send a byte and a client that trickles its request head a byte a
//! second; meanwhile an authenticated call still gets its answer, and the trickler is cut off
//! without one. The attack is `http_shell::flood`'s, as in the ACS's flood test.

use std::sync::Arc;
use std::time::Duration;

use http_shell::{flood, raise_nofile};
use xmlrpc::{Client, Server, Value};

const IDLE: usize = 10_000;
const HEAD: &[u8] = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
/// Far under the listener's 30 s header clock: an answer in time is one the flood did not hold up.
const IN_TIME: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_call_is_answered_through_a_flood() {
    let want = IDLE as u64 + 1_000;
    assert!(raise_nofile(want).expect("RLIMIT_NOFILE") >= want, "too few file descriptors for the flood");
    let mut s = Server::new();
    s.register("echo", "Returns its parameters.", &[], |params| Ok(Value::Array(params)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(Arc::new(s.with_basic_auth("vrgw", "a-secret-of-16-chars")).serve(listener, std::future::pending()));
    let client =
        Client::new(&format!("http://{addr}/RPC2")).expect("client").with_basic_auth("vrgw", "a-secret-of-16-chars");
    let call = || async {
        tokio::time::timeout(IN_TIME, client.call("echo", &[Value::Int(7)])).await.expect("an answer in time")
    };
    assert_eq!(call().await.expect("before the flood"), Value::Array(vec![Value::Int(7)]));

    let trickler = flood::trickle(addr, HEAD);
    let _idle = flood::idle(addr, IDLE).await.expect("the flood");
    assert_eq!(call().await.expect("during the flood"), Value::Array(vec![Value::Int(7)]));
    let t = tokio::time::timeout(IN_TIME, trickler).await.expect("the trickler cut off in time").expect("join");
    let t = t.expect("the trickler's connection");
    assert!(t.answer.is_empty(), "the trickler got no answer: {:?}", t.answer);
    assert!(t.sent < HEAD.len(), "cut off before its head was whole ({} bytes sent)", t.sent);
}
