//! What the agent's integration tests share: an ACS in this process, the agent binary, NBI calls.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acs::endpoint::{Acs, EndpointConfig};
use acs::nbi::{Nbi, NbiConfig};
use acs::store::SqliteStore;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

pub const TOKEN: &str = "nbi-token-for-the-agent-test";
pub const VIRT: &str = "Device.X_VRGW-ORG_Virtualization.";
pub const CR_PASSWORD: &str = "cr-secret-0123";

/// An ACS (SQLite store in `dir`) serving CWMP and the NBI on loopback, in `rt`; its addresses.
pub fn start_acs(rt: &tokio::runtime::Runtime, dir: &Path, agent: &str) -> (SocketAddr, SocketAddr) {
    start_acs_tls(rt, dir, agent, None)
}

/// The same, CWMP over TLS with this certificate and key (PEM files) when given.
pub fn start_acs_tls(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    agent: &str,
    tls: Option<(&Path, &Path)>,
) -> (SocketAddr, SocketAddr) {
    start_acs_for(rt, dir, &[agent], tls)
}

/// The same for several agents (each with the password `host-secret`).
pub fn start_acs_for(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    agents: &[&str],
    tls: Option<(&Path, &Path)>,
) -> (SocketAddr, SocketAddr) {
    let tls = tls.map(|(c, k)| acs::tls::acceptor(c, k).expect("TLS acceptor"));
    rt.block_on(async {
        let store = Arc::new(SqliteStore::open(&dir.join("acs.db")).expect("acs store"));
        store.start_flusher(Duration::from_millis(3));
        let endpoint = EndpointConfig {
            credentials: agents.iter().map(|a| (a.to_string(), "host-secret".to_string())).collect::<HashMap<_, _>>(),
            session_timeout: Duration::from_secs(300),
            max_body: 4 << 20,
            file_base_url: "http://127.0.0.1:9/files".into(),
        };
        let acs = Acs::new(store, endpoint, acs::webhooks::start(vec![]));
        let nbi = Nbi::new(
            acs.clone(),
            NbiConfig {
                tokens: vec![TOKEN.into()],
                cr_timeout: Duration::from_secs(3),
                cr_username: "acs".into(),
                cr_password: CR_PASSWORD.into(),
            },
        );
        let cl = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let nl = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addrs = (cl.local_addr().expect("addr"), nl.local_addr().expect("addr"));
        tokio::spawn(acs.serve_tls(cl, tls, std::future::pending()));
        tokio::spawn(nbi.serve(nl, std::future::pending()));
        addrs
    })
}

/// Writes the agent's configuration (`extra` lines appended) into `dir/agent.toml`.
pub fn agent_config(dir: &Path, agent: &str, acs: SocketAddr, ovs_prefix: &str, mgmt_net: &str, extra: &str) {
    let config = format!(
        "acs_url = \"http://{acs}/\"\nacs_username = \"{agent}\"\nacs_password = \"host-secret\"\n\
         cr_listen = \"127.0.0.1:0\"\ncr_username = \"acs\"\ncr_password = \"{CR_PASSWORD}\"\n\
         db = \"{db}\"\nagent_id = \"{agent}\"\nlibvirt = \"test:///default\"\novs_prefix = \"{ovs_prefix}\"\n\
         mgmt_network = \"{mgmt_net}\"\noverlay_dir = \"{d}/overlays\"\ndownload_dir = \"{d}/downloads\"\n\
         port_prefix = \"{ovs_prefix}\"\n{extra}",
        db = dir.join("agent.db").display(),
        d = dir.display(),
    );
    std::fs::write(dir.join("agent.toml"), config).expect("config");
}

/// Starts the agent binary on `dir/agent.toml` (log appended to `dir/agent.log`); waits until it
/// accepts connection requests.
pub fn start_agent(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("agent.log")).expect("log");
    let mut agent = Command::new(env!("CARGO_BIN_EXE_hypervisor-agent"))
        .arg("--config")
        .arg(dir.join("agent.toml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start the agent");
    let mut line = String::new();
    BufReader::new(agent.stdout.take().expect("stdout")).read_line(&mut line).expect("agent output");
    assert!(
        line.starts_with("listening cr="),
        "agent said {line:?}\n{}",
        std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
    );
    agent
}

/// The binary `name` of this workspace, built next to the running test or bench binary (in the
/// same profile) when it is not there yet.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", name, "--bin", name]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(build.status().is_ok_and(|s| s.success()) && path.exists(), "could not build {name}");
    }
    path
}

/// Starts a `vrgw-proxy` in network namespace `netns`, listening on `listen`, with the secret
/// file `dir/secret`, its state and run folders and its log in `dir`, as a vRGW guest would.
pub fn start_proxy(netns: &str, listen: &str, dir: &Path, instance_id: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", netns])
        .arg(workspace_binary("vrgw-proxy"))
        .args(["--listen", listen])
        .arg("--secret-file")
        .arg(dir.join("secret"))
        .arg("--state-dir")
        .arg(dir.join("proxy-state"))
        .arg("--run-dir")
        .arg(dir.join("proxy-run"))
        .args(["--lan-if", "lan0", "--wan-if", "wan0", "--instance-id", instance_id])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(dir.join("proxy.log")).expect("log")))
        .spawn()
        .expect("start the proxy")
}

pub fn enc(s: &str) -> String {
    acs::nbi::encode(s)
}

pub async fn nbi(addr: SocketAddr, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Full::new(Bytes::from(body.map(|b| b.to_string()).unwrap_or_default())))
        .expect("request");
    let resp = client.request(req).await.expect("NBI reachable");
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Waits until the ACS knows device `id`.
pub async fn wait_device(nbi_addr: SocketAddr, id: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (s, v) =
            nbi(nbi_addr, Method::GET, &format!("/devices?query={}", enc(&json!({"_id": id}).to_string())), None).await;
        if s == 200 && v.as_array().is_some_and(|a| !a.is_empty()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the agent never informed:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Queues a task with a connection request and waits for its result.
pub async fn task(nbi_addr: SocketAddr, id: &str, body: Value) -> (u16, Value) {
    let path = format!("/devices/{}/tasks?connection_request&timeout=20000", enc(id));
    nbi(nbi_addr, Method::POST, &path, Some(body)).await
}

/// A process killed when this is dropped (a failed assertion included).
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        kill9(&mut self.0);
    }
}

/// SIGKILL.
pub fn kill9(c: &mut Child) {
    let _ = c.kill();
    let _ = c.wait();
}
