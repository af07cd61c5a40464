//! HAProxy in front of ACS nodes, configured by `scripts/haproxy-config` (the one generator,
//! shared with `scripts/run`), on free loopback ports; stopped when dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running HAProxy.
pub struct Haproxy {
    /// Where CPEs reach the nodes.
    pub cwmp: SocketAddr,
    /// Where the OSS reaches the nodes' NBI.
    pub nbi: SocketAddr,
    child: Child,
    log: std::path::PathBuf,
}

/// One node behind HAProxy: its name (the cookie's prefix) and its CWMP and NBI listeners.
pub struct Backend<'a> {
    /// The server's name in HAProxy.
    pub name: &'a str,
    /// The node's CWMP listener.
    pub cwmp: SocketAddr,
    /// The node's NBI.
    pub nbi: SocketAddr,
}

impl Haproxy {
    /// Starts HAProxy (its configuration and log in `dir`) in front of `nodes`, and waits until
    /// it answers CWMP `GET /health` with 200.
    pub fn start(dir: &Path, nodes: &[Backend<'_>]) -> Haproxy {
        let port = || crate::pg::free_port().unwrap_or_else(|e| panic!("{e}"));
        let cwmp = SocketAddr::from(([127, 0, 0, 1], port()));
        let nbi = SocketAddr::from(([127, 0, 0, 1], port()));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
        let mut gen = Command::new("python3");
        gen.arg(root.join("scripts/haproxy-config"));
        gen.args(["--cwmp", &cwmp.to_string(), "--nbi", &nbi.to_string(), "--maxconn", "1000"]);
        for n in nodes {
            gen.arg("--node").arg(format!("{}={},{}", n.name, n.cwmp, n.nbi));
        }
        let out = gen.output().unwrap_or_else(|e| panic!("scripts/haproxy-config: {e}"));
        assert!(out.status.success(), "scripts/haproxy-config: {}", String::from_utf8_lossy(&out.stderr));
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, &out.stdout).unwrap_or_else(|e| panic!("{}: {e}", config.display()));
        let log = dir.join("haproxy.log");
        let err = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("haproxy (Debian: apt-get install haproxy): {e}"));
        let h = Haproxy { cwmp, nbi, child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !h.healthy() {
            assert!(Instant::now() < deadline, "HAProxy did not answer: {}", h.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        h
    }

    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect_timeout(&self.cwmp, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /health HTTP/1.1\r\nHost: acs\r\nConnection: close\r\n\r\n";
        let mut out = String::new();
        s.write_all(req.as_bytes()).is_ok() && s.read_to_string(&mut out).is_ok() && out.starts_with("HTTP/1.1 200")
    }

    /// What HAProxy logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
