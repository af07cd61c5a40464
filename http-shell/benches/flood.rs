//! What a flood costs an ordinary client: the time of one request (connect, GET, answer, close)
//! on a loopback listener with no flood, then while 10,000 connections sit idle and 100 clients
//! trickle their request heads a byte a second; once at the default cap (1,024 connections: the
//! loop closes flood connections to make room) and once with a cap above the flood (every flood
//! connection held). The listener runs in a child process (this binary again), as a daemon
//! would, so each side has its own descriptors. Prints one line per case.
//!
//! `cargo bench -p http-shell --bench flood`

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use http_shell::{flood, raise_nofile, serve, Limits};
use hyper::Response;
use tokio::net::TcpListener;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
/// Timed requests per case, one after another.
const REQUESTS: usize = 300;
const IDLE: usize = 10_000;
const TRICKLERS: usize = 100;

/// The child: serves "ok" with a cap of `cap` connections on a loopback port it prints, until
/// its standard input closes.
async fn child(cap: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("PORT={}", listener.local_addr().expect("addr").port());
    let _ = std::io::stdout().flush();
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().lines().count()).await;
    };
    let _ = serve(
        listener,
        None,
        Limits { max_connections: cap, drain: Duration::ZERO, ..Limits::default() },
        |_req, _peer| async { Response::new(Full::new(Bytes::from_static(b"ok"))) },
        stdin_closed,
    )
    .await;
}

/// The listener's process, killed on drop.
struct Server(std::process::Child, SocketAddr);

impl Server {
    fn start(cap: usize) -> Server {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD, cap.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the listener's process");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).expect("its port");
        let port: u16 = line.trim().strip_prefix("PORT=").and_then(|p| p.parse().ok()).expect("PORT=<port>");
        Server(child, SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Set in the child's environment: the connection cap it serves with.
const CHILD: &str = "HTTP_SHELL_FLOOD_BENCH_CAP";

/// What [`measure`] saw.
struct Seen {
    /// The first request's time (it may wait behind the flood's connections still in the accept
    /// backlog).
    first: Duration,
    /// The times of the requests answered, sorted.
    times: Vec<Duration>,
    /// Requests not answered within 10 s.
    failed: usize,
}

/// Times [`REQUESTS`] requests.
async fn measure(addr: SocketAddr) -> Seen {
    let mut times = Vec::with_capacity(REQUESTS);
    let mut failed = 0;
    for _ in 0..REQUESTS {
        match flood::ask(addr, GET, Duration::from_secs(10)).await {
            Ok((t, reply)) if reply.starts_with("HTTP/1.1 200") => times.push(t),
            _ => failed += 1,
        }
    }
    let first = times.first().copied().unwrap_or_default();
    times.sort();
    Seen { first, times, failed }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn report(case: &str, Seen { first, times, failed }: Seen) {
    let at = |q: f64| times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default();
    println!(
        "{case:<60} first {:>9}  p50 {:>9}  p99 {:>9}  max {:>9}  answered {}/{REQUESTS}{}",
        ms(first),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        times.len(),
        if failed > 0 { format!(" ({failed} not within 10 s)") } else { String::new() },
    );
}

async fn case(name: &str, cap: usize) {
    let server = Server::start(cap);
    report(&format!("{name}, no flood"), measure(server.1).await);
    drop(server);
    let server = Server::start(cap);
    let addr = server.1;
    let tricklers: Vec<_> = (0..TRICKLERS).map(|_| flood::trickle(addr, GET)).collect();
    let idle = flood::idle(addr, IDLE).await.expect("the flood's connections");
    report(&format!("{name}, {} idle + {TRICKLERS} byte-a-second", thousands(IDLE)), measure(addr).await);
    drop(idle);
    for t in tricklers {
        t.abort();
    }
    drop(server);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    // The flood's connections, and as many on the listener's side when it holds them all.
    let want = (IDLE + TRICKLERS) as u64 + 1_000;
    let got = raise_nofile(want).expect("RLIMIT_NOFILE");
    assert!(got >= want, "RLIMIT_NOFILE {got}, the benchmark needs {want} (raise the hard limit)");
    if let Some(cap) = std::env::var(CHILD).ok().and_then(|c| c.parse().ok()) {
        rt.block_on(child(cap));
        return;
    }
    rt.block_on(async {
        println!("{REQUESTS} requests one after another (connect, GET, answer, close) on loopback; listener and clients in two processes");
        case("cap 1,024 (default)", Limits::default().max_connections).await;
        case("cap 16,384 (the flood held)", 16_384).await;
    });
}
