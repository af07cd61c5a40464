//! Round trips per second of a call carrying a 20-member struct over loopback: our server, and
//! the same method served by Python's standard-library server (`tests/py/server.py`).
//!
//! Both servers get the same load from `wrk` (Debian package `wrk`, a C load generator, so the
//! client is not what is measured) with 1, 8 and 32 connections; each server's answer is checked
//! first with our client. The same calls made by our own client are reported too.
//! `cargo bench -p xmlrpc` (BENCH_SECS sets the length of each run, default 3).
#![allow(missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xmlrpc::{Client, Server, Value};

fn struct20() -> Value {
    Value::Struct(
        (0..20)
            .map(|i| {
                let v = match i % 4 {
                    0 => Value::Int(i * 1000),
                    1 => Value::String(format!("value number {i}")),
                    2 => Value::Bool(i % 3 == 0),
                    _ => Value::Double(f64::from(i) / 3.0),
                };
                (format!("member{i}"), v)
            })
            .collect(),
    )
}

async fn rate(client: &Client, secs: f64, callers: usize) -> f64 {
    let arg = struct20();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let c = client.clone();
        let a = arg.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                let r = c.call("struct20", std::slice::from_ref(&a)).await.expect("call");
                assert_eq!(r, a);
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let secs = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    // Our server on a runtime of its own: two tokio workers (one per core of the machine this was
    // written on); BENCH_SERVER_WORKERS=0 gives it a current-thread runtime, as the vrgw-proxy runs.
    let workers: usize = std::env::var("BENCH_SERVER_WORKERS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime(workers).block_on(async move {
            let mut s = Server::new();
            s.register("struct20", "Returns its struct.", &[&["struct", "struct"]], |mut p| {
                p.pop().ok_or_else(|| xmlrpc::Fault::new(xmlrpc::Fault::INVALID_PARAMS, "one struct"))
            });
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(l.local_addr().expect("addr")).expect("send addr");
            Arc::new(s).serve(l, std::future::pending()).await
        })
    });
    let ours_url = format!("http://{}/RPC2", rx.recv().expect("server address"));
    let floor_url = floor(xmlrpc::encode_response(&xmlrpc::MethodResponse::Success(struct20())), workers);
    let mut py = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/server.py"))
        .arg("no_none")
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(py.stdout.take().expect("stdout")).read_line(&mut line).expect("port");
    let py_url = format!("http://127.0.0.1:{}/RPC2", line.trim());

    let ours = Client::new(&ours_url).expect("client");
    let theirs = Client::new(&py_url).expect("client");
    let (o1, p1, o8, p8) = rt.block_on(async {
        let _ = rate(&ours, 0.5, 1).await; // warm up, and both answers are checked in `rate`
        (
            rate(&ours, secs, 1).await,
            rate(&theirs, secs, 1).await,
            rate(&ours, secs, 8).await,
            rate(&theirs, secs, 8).await,
        )
    });
    println!("xmlrpc round trips/s, 20-member struct, loopback ({secs} s per run)");
    match wrk_available() {
        true => {
            let body = xmlrpc::encode_call("struct20", &[struct20()]);
            let script = std::env::temp_dir().join(format!("xmlrpc-bench-{}.lua", std::process::id()));
            let lua = format!(
                "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"text/xml\"\nwrk.body = [==[{body}]==]\n"
            );
            std::fs::write(&script, lua).expect("write wrk script");
            println!("load from wrk (same client for every server; ours on {workers} workers, 0 = current-thread):");
            let (mut best_o, mut best_p) = (0f64, 0f64);
            for c in [1, 8, 32] {
                let o = wrk(&ours_url, &script, c, secs);
                let p = wrk(&py_url, &script, c, secs);
                (best_o, best_p) = (best_o.max(o), best_p.max(p));
                let f = wrk(&floor_url, &script, c, secs);
                println!(
                    "  {c:>2} connections: ours {o:>9.0}/s   python stdlib server {p:>7.0}/s   ratio {:.1}x   \
                     (floor: bare hyper answering recorded bytes {f:>6.0}/s, {:.1}x python)",
                    o / p,
                    f / p
                );
            }
            println!(
                "  best rates: ours {best_o:.0}/s, python stdlib server {best_p:.0}/s: ratio {:.1}x",
                best_o / best_p
            );
            let _ = std::fs::remove_file(&script);
        }
        false => println!("wrk is not installed (apt-get install wrk): skipping the load-generator runs"),
    }
    println!("load from our own client:");
    println!("   1 caller : ours {o1:>9.0}/s   python stdlib server {p1:>7.0}/s   ratio {:.1}x", o1 / p1);
    println!("   8 callers: ours {o8:>9.0}/s   python stdlib server {p8:>7.0}/s   ratio {:.1}x", o8 / p8);
    let _ = py.kill();
    let _ = py.wait();
}

/// The floor: a bare hyper server on the same kind of runtime that reads each request and answers
/// with recorded response bytes, no XML-RPC at all. No server can beat it on this machine.
fn floor(response: String, workers: usize) -> String {
    use http_body_util::{BodyExt, Full};
    let response = bytes::Bytes::from(response);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        runtime(workers).block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(l.local_addr().expect("addr")).expect("send addr");
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let _ = s.set_nodelay(true);
                let response = response.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let response = response.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            let mut r = hyper::Response::new(Full::new(response));
                            r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("text/xml"));
                            Ok::<_, std::convert::Infallible>(r)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                        .await;
                });
            }
        })
    });
    format!("http://{}/RPC2", rx.recv().expect("floor address"))
}

/// A current-thread runtime for 0 workers, else a multi-thread one.
fn runtime(workers: usize) -> tokio::runtime::Runtime {
    match workers {
        0 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        n => tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build(),
    }
    .expect("runtime")
}

fn wrk_available() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

/// Requests per second that `wrk` reports for `c` connections (one thread).
fn wrk(url: &str, script: &std::path::Path, c: usize, secs: f64) -> f64 {
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{c}"), &format!("-d{}s", secs.ceil() as u64), "-s"])
        .arg(script)
        .arg(url)
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw HTTP errors:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk output:\n{text}"))
}
