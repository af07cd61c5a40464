//! Running out of file descriptors does not end a listener: a child process serves with a low
//! RLIMIT_NOFILE, this process opens more connections than it can accept, and once some close,
//! the waiting ones and new ones are served.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

/// The child: serves "ok" on a loopback port it prints, until killed. Run by the test below
/// (ignored on its own).
#[tokio::test]
#[ignore = "run by out_of_file_descriptors_does_not_end_the_listener"]
async fn child_server() {
    if std::env::var_os("HTTP_SHELL_CHILD").is_none() {
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    println!("PORT={}", listener.local_addr().expect("addr").port());
    let _ = std::io::stdout().flush();
    let limits = http_shell::Limits { max_connections: 10_000, ..http_shell::Limits::default() };
    let r = http_shell::serve(
        listener,
        None,
        limits,
        |_req, _peer| async { Response::new(Full::new(Bytes::from_static(b"ok"))) },
        std::future::pending(),
    )
    .await;
    println!("SERVE ENDED {r:?}");
}

/// Child process, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn answered(s: &mut TcpStream, wait: Duration) -> bool {
    let _ = s.set_read_timeout(Some(wait));
    let mut buf = [0u8; 128];
    matches!(s.read(&mut buf), Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 200"))
}

fn request(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect (the backlog takes it)");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    s
}

#[test]
fn out_of_file_descriptors_does_not_end_the_listener() {
    let exe = std::env::current_exe().expect("test binary");
    let child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 48 && exec \"$0\" --ignored --exact child_server --nocapture --test-threads 1")
        .arg(&exe)
        .env("HTTP_SHELL_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let mut child = Child(child);
    let mut out = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut port = None;
    let mut line = String::new();
    while out.read_line(&mut line).expect("read") > 0 {
        // libtest writes "test child_server ... " before it on the same line.
        if let Some((_, p)) = line.trim().split_once("PORT=") {
            port = p.parse::<u16>().ok();
            break;
        }
        line.clear();
    }
    let port = port.expect("the child's port");
    // More keep-alive connections than the child has descriptors for.
    let mut conns: Vec<TcpStream> = (0..60).map(|_| request(port)).collect();
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    for mut c in conns.drain(..) {
        if answered(&mut c, Duration::from_millis(300)) {
            served.push(c);
        } else {
            waiting.push(c);
        }
    }
    assert!(!served.is_empty(), "nothing served at all");
    assert!(!waiting.is_empty(), "the limit did not bite: {} served", served.len());
    // Free the descriptors: the listener, still running, takes the waiting ones.
    drop(served);
    let mut late = 0;
    for c in waiting.iter_mut().take(10) {
        if answered(c, Duration::from_secs(5)) {
            late += 1;
        }
    }
    assert_eq!(late, 10.min(waiting.len()), "waiting connections not served after descriptors freed");
    drop(waiting);
    let mut fresh = request(port);
    assert!(answered(&mut fresh, Duration::from_secs(5)), "a new connection was not served");
    assert!(child.0.try_wait().expect("status").is_none(), "the child's server ended");
}
