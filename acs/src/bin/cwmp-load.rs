//! A lean CWMP load generator, for benchmarks: not the ACS's simulator (no data model, no
//! session state machine), as little work per session as a client can do, in a process of its
//! own on one thread. Each session, on a new connection: the Inform (a 401, and the Digest
//! answer on a second connection), the empty POST, the answer to the ACS's GetParameterValues (every name it asks for,
//! value `x`) or an empty answer to anything else, until the 204.
//!
//! ```text
//! cwmp-load --target 127.0.0.1:7547 --devices 10000 --concurrency 200 --secs 10 \
//!     --user cpe --password-file FILE [--serial-prefix bench-]
//! ```
//!
//! Prints one line: `sessions=N secs=S per_second=R p50_ms=A p99_ms=B failed=F`. The password
//! comes from a file (never the command line).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    target: SocketAddr,
    devices: u64,
    concurrency: u64,
    secs: u64,
    user: String,
    password: String,
    prefix: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        target: "127.0.0.1:7547".parse().map_err(|e| format!("{e}"))?,
        devices: 10_000,
        concurrency: 200,
        secs: 10,
        user: "cpe".into(),
        password: String::new(),
        prefix: "bench-".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{k} needs a value"));
        let num = |s: String| s.parse::<u64>().map_err(|e| format!("{k}: {e}"));
        match k.as_str() {
            "--target" => a.target = v()?.parse().map_err(|e| format!("--target: {e}"))?,
            "--devices" => a.devices = num(v()?)?.max(1),
            "--concurrency" => a.concurrency = num(v()?)?.max(1),
            "--secs" => a.secs = num(v()?)?,
            "--user" => a.user = v()?,
            "--password-file" => {
                let path = v()?;
                a.password = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{path}: {e}"))?
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }
            "--serial-prefix" => a.prefix = v()?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

/// The Inform of device `serial` (2 PERIODIC), as a CPE of the simulator's kind sends it.
fn inform(serial: &str) -> String {
    let body = cwmp::Body::Inform(cwmp::Inform {
        device_id: cwmp::DeviceId {
            manufacturer: "vRGW Project".into(),
            oui: "00A0B1".into(),
            product_class: "SimCPE".into(),
            serial_number: serial.into(),
        },
        events: vec![cwmp::Event::new("2 PERIODIC")],
        max_envelopes: 1,
        current_time: cwmp::DateTime::unknown(),
        retry_count: 0,
        parameter_list: vec![
            cwmp::ParameterValue::new("Device.DeviceInfo.SoftwareVersion", cwmp::Value::String("0.1.0".into())),
            cwmp::ParameterValue::new("Device.ManagementServer.ParameterKey", cwmp::Value::String(String::new())),
        ],
    });
    cwmp::Envelope::new(cwmp::CwmpNs::V1_2, Some("load-1".into()), body).encode()
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// One HTTP exchange on `s`: the status, the headers (lower-cased names) and the body.
async fn exchange(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    body: &[u8],
    headers: &str,
) -> Result<(u16, Vec<(String, String)>, Vec<u8>), String> {
    let req = format!(
        "POST / HTTP/1.1\r\nHost: acs\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
    s.write_all(body).await.map_err(|e| e.to_string())?;
    buf.clear();
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let mut chunk = [0u8; 8192];
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed mid-body".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, headers, buf[head_end..head_end + len].to_vec()))
}

/// The answer to an ACS request: GetParameterValuesResponse with `x` for every name asked, or
/// an empty POST for anything else (the bench asks only for values).
fn answer(req: &[u8]) -> Vec<u8> {
    let Ok(env) = cwmp::Envelope::decode(req, &cwmp::Limits::default()) else { return Vec::new() };
    match env.body {
        cwmp::Body::GetParameterValues(g) => {
            let list = g
                .parameter_names
                .into_iter()
                .map(|n| cwmp::ParameterValue::new(n, cwmp::Value::String("x".into())))
                .collect();
            let body =
                cwmp::Body::GetParameterValuesResponse(cwmp::GetParameterValuesResponse { parameter_list: list });
            cwmp::Envelope::new(env.ns, env.header.id, body).encode().into_bytes()
        }
        _ => Vec::new(),
    }
}

fn keep_cookies(cookies: &mut Vec<String>, headers: &[(String, String)]) {
    for (_, v) in headers.iter().filter(|(k, _)| k == "set-cookie") {
        if let Some(pair) = v.split(';').next() {
            let name = pair.split('=').next().unwrap_or_default();
            cookies.retain(|c| !c.starts_with(&format!("{name}=")));
            cookies.push(pair.to_string());
        }
    }
}

fn cookie_header(cookies: &[String]) -> String {
    if cookies.is_empty() {
        String::new()
    } else {
        format!("Cookie: {}\r\n", cookies.join("; "))
    }
}

async fn session(a: &Args, serial: &str) -> Result<(), String> {
    let mut s = TcpStream::connect(a.target).await.map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    let mut buf = Vec::with_capacity(16 * 1024);
    let inform = inform(serial);
    let (status, headers, _) = exchange(&mut s, &mut buf, inform.as_bytes(), "").await?;
    let mut cookies: Vec<String> = Vec::new();
    keep_cookies(&mut cookies, &headers);
    let (mut status, mut headers, mut body) = if status == 401 {
        let challenge = headers
            .iter()
            .filter(|(k, _)| k == "www-authenticate")
            .find_map(|(_, v)| cwmp::auth::answer(v, "POST", "/", &a.user, &a.password, "0a1b2c3d"))
            .ok_or("no Digest challenge")?;
        // The answer goes on a new connection (a server may close one whose request body it
        // did not read, after its 401); a load balancer's cookie (set on the 401) takes it back
        // to the server that made the challenge.
        s = TcpStream::connect(a.target).await.map_err(|e| e.to_string())?;
        let _ = s.set_nodelay(true);
        let extra = format!("Authorization: {challenge}\r\n{}", cookie_header(&cookies));
        exchange(&mut s, &mut buf, inform.as_bytes(), &extra).await?
    } else {
        (status, headers, Vec::new())
    };
    let mut next: Vec<u8>;
    for _ in 0..16 {
        if status == 204 {
            return Ok(());
        }
        if status != 200 {
            return Err(format!("HTTP {status}"));
        }
        keep_cookies(&mut cookies, &headers);
        let cookie = cookie_header(&cookies);
        // The InformResponse is answered with the empty POST; an ACS request with its answer.
        next = if find(&body, b"InformResponse").is_some() { Vec::new() } else { answer(&body) };
        (status, headers, body) = exchange(&mut s, &mut buf, &next, &cookie).await?;
    }
    Err("a session that does not end".into())
}

fn main() -> std::process::ExitCode {
    let a = match args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("cwmp-load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cwmp-load: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let (lat, failed, secs) = rt.block_on(async {
        let next = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let deadline = start + Duration::from_secs(a.secs);
        let mut workers = Vec::new();
        for _ in 0..a.concurrency {
            let (a, next, failed) = (a.clone(), next.clone(), failed.clone());
            workers.push(tokio::task::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed) % a.devices;
                    let t = Instant::now();
                    match session(&a, &format!("{}{i}", a.prefix)).await {
                        Ok(()) => lat.push(t.elapsed()),
                        Err(e) => {
                            if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!("cwmp-load: a session failed: {e}");
                            }
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.await.unwrap_or_default());
        }
        (all, failed.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
    });
    let mut lat = lat;
    lat.sort();
    let q = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied();
    let ms = |d: Option<Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e3);
    // This process's own CPU time (user + system), so a benchmark can tell it apart.
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let f: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0);
    println!(
        "sessions={} secs={secs:.2} per_second={:.0} p50_ms={:.1} p99_ms={:.1} failed={failed} cpu_s={cpu:.2}",
        lat.len(),
        lat.len() as f64 / secs.max(1e-9),
        ms(q(0.5)),
        ms(q(0.99))
    );
    std::process::ExitCode::SUCCESS
}
