//! `hypervisor-agent`: one per virtualization host.
//!
//! Configuration comes from a TOML file (`--config`), with command-line overrides. On start it
//! prints `listening cr=ADDR` on stdout once connection requests are accepted.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use hypervisor_agent::agent::{Agent, AgentConfig};
use hypervisor_agent::compute::Libvirt;
use hypervisor_agent::host::{Host, HostConfig};
use hypervisor_agent::state::State;
use hypervisor_agent::vlan::linux::Linux;
use hypervisor_agent::vlan::{Ovs, VlanBackend};
use hypervisor_agent::worker;
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(name = "hypervisor-agent", version, about = "CWMP agent of a vRGW virtualization host")]
struct Cli {
    /// TOML configuration file (every key of it can be given below instead).
    #[arg(long)]
    config: Option<PathBuf>,
    /// ACS URL.
    #[arg(long)]
    acs_url: Option<String>,
    /// Where connection requests are accepted.
    #[arg(long)]
    cr_listen: Option<SocketAddr>,
    /// The agent's SQLite state.
    #[arg(long)]
    db: Option<PathBuf>,
    /// libvirt URI (`qemu:///system`; `test:///default` for libvirt's test driver).
    #[arg(long)]
    libvirt: Option<String>,
    /// This host's id (the serial number toward the ACS, and the mark on its domains).
    #[arg(long)]
    agent_id: Option<String>,
    /// Log format: text or json.
    #[arg(long)]
    log_format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    acs_url: String,
    acs_username: String,
    acs_password: String,
    acs_ca_file: Option<PathBuf>,
    cr_listen: SocketAddr,
    /// The connection-request URL given to the ACS (default: `http://CR_LISTEN/cr`, with the
    /// host's address when listening on all addresses is not reachable from the ACS).
    cr_url: Option<String>,
    cr_username: String,
    cr_password: String,
    db: PathBuf,
    agent_id: String,
    manufacturer: String,
    oui: String,
    product_class: String,
    libvirt: String,
    domain_type: String,
    vlan_backend: String,
    ovs_prefix: String,
    linux_prefix: String,
    trunk_uplink: Option<String>,
    mgmt_bridge: String,
    mgmt_network: String,
    wan_bridge: String,
    overlay_dir: PathBuf,
    download_dir: PathBuf,
    proxy_port: u16,
    tb_cache_mib: Option<u32>,
    port_prefix: String,
    /// Seconds a pool domain may take to boot before it is suspended (0: suspend at once;
    /// default 300, or 0 on libvirt's test driver, which runs no guest).
    pool_warmup_seconds: Option<u64>,
    /// Where each domain's serial console is copied (empty: nowhere; default
    /// /var/log/libvirt/qemu, none on libvirt's test driver).
    console_log_dir: Option<PathBuf>,
    periodic_inform_interval: u32,
    log_format: String,
    /// The libvirt URI other hosts reach this host's libvirtd at for migrations (for example
    /// `qemu+tcp://10.98.0.2/system`); unset: this host takes part in no migration.
    migration_uri: Option<String>,
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_else(|_| "host".into())
}

impl Default for Config {
    fn default() -> Self {
        Config {
            acs_url: "http://127.0.0.1:7547/".into(),
            acs_username: String::new(),
            acs_password: String::new(),
            acs_ca_file: None,
            cr_listen: SocketAddr::from(([0, 0, 0, 0], 7548)),
            cr_url: None,
            cr_username: "acs".into(),
            cr_password: String::new(),
            db: PathBuf::from("hypervisor-agent.db"),
            agent_id: hostname(),
            manufacturer: "vRGW Project".into(),
            oui: "00A0B1".into(),
            product_class: "vRGW-Host".into(),
            libvirt: "qemu:///system".into(),
            domain_type: "qemu".into(),
            vlan_backend: "ovs".into(),
            ovs_prefix: "vrgw".into(),
            linux_prefix: "vr".into(),
            trunk_uplink: None,
            mgmt_bridge: "vrgw-mgmt".into(),
            mgmt_network: "10.99.0.0/16".into(),
            wan_bridge: "vrgw-wan".into(),
            overlay_dir: PathBuf::from("/var/lib/vrgw/overlays"),
            download_dir: PathBuf::from("/var/lib/vrgw/downloads"),
            proxy_port: 8730,
            tb_cache_mib: Some(16),
            port_prefix: "vrgw".into(),
            pool_warmup_seconds: None,
            console_log_dir: None,
            periodic_inform_interval: 300,
            log_format: "text".into(),
            migration_uri: None,
        }
    }
}

fn load(cli: &Cli) -> Result<Config, String> {
    let mut c: Config = match &cli.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => Config::default(),
    };
    if let Some(v) = &cli.acs_url {
        c.acs_url = v.clone();
    }
    if let Some(v) = cli.cr_listen {
        c.cr_listen = v;
    }
    if let Some(v) = &cli.db {
        c.db = v.clone();
    }
    if let Some(v) = &cli.libvirt {
        c.libvirt = v.clone();
    }
    if let Some(v) = &cli.agent_id {
        c.agent_id = v.clone();
    }
    if let Some(v) = &cli.log_format {
        c.log_format = v.clone();
    }
    match c.vlan_backend.as_str() {
        "ovs" => {}
        "linux" if c.trunk_uplink.is_some() => {}
        "linux" => return Err("vlan_backend \"linux\" needs trunk_uplink (the trunk NIC)".into()),
        other => return Err(format!("vlan_backend {other:?}: \"ovs\" (Open vSwitch) or \"linux\" (rtnetlink)")),
    }
    if c.agent_id.is_empty() || !c.agent_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("agent_id {:?}: letters, digits, - and _ only", c.agent_id));
    }
    if c.port_prefix.len() > 8 {
        return Err(format!("port_prefix {:?}: at most 8 characters (interface names end at 15)", c.port_prefix));
    }
    if c.cr_password.is_empty() {
        return Err("cr_password is empty: connection requests must be authenticated".into());
    }
    if c.libvirt.starts_with("test:") {
        c.domain_type = "test".into();
    }
    Ok(c)
}

fn network(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (a, p) = s.split_once('/').ok_or_else(|| format!("mgmt_network {s:?}: ADDRESS/PREFIX"))?;
    let a: Ipv4Addr = a.parse().map_err(|_| format!("mgmt_network {s:?}: bad address"))?;
    let p: u8 =
        p.parse().ok().filter(|p| (8..=30).contains(p)).ok_or_else(|| format!("mgmt_network {s:?}: prefix 8 to 30"))?;
    Ok((a, p))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let c = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hypervisor-agent: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if c.log_format == "json" {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    match run(c) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(c: Config) -> Result<(), String> {
    let (mgmt_base, mgmt_prefix) = network(&c.mgmt_network)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let state = State::open(&c.db).map_err(|e| e.to_string())?;
    let compute = Arc::new(Libvirt::open(&c.libvirt).map_err(|e| format!("libvirt {}: {e}", c.libvirt))?);
    let vlan: Arc<dyn VlanBackend> = match (c.vlan_backend.as_str(), &c.trunk_uplink) {
        ("linux", Some(up)) => {
            Arc::new(Linux::new(&c.linux_prefix, up, rt.handle().clone()).map_err(|e| e.to_string())?)
        }
        _ => Arc::new(Ovs::new(&c.ovs_prefix, c.trunk_uplink.as_deref())),
    };
    let host_cfg = HostConfig {
        agent_id: c.agent_id.clone(),
        domain_type: c.domain_type.clone(),
        mgmt_bridge: c.mgmt_bridge.clone(),
        mgmt_base,
        mgmt_prefix,
        wan_bridge: c.wan_bridge.clone(),
        overlay_dir: c.overlay_dir.clone(),
        tb_cache_mib: c.tb_cache_mib,
        proxy_port: c.proxy_port,
        port_prefix: c.port_prefix.clone(),
        migration_uri: c.migration_uri.clone().filter(|u| !u.is_empty()),
        pool_warmup: match c.pool_warmup_seconds {
            Some(0) => None,
            Some(s) => Some(std::time::Duration::from_secs(s)),
            None if c.libvirt.starts_with("test:") => None,
            None => Some(std::time::Duration::from_secs(300)),
        },
        console_log_dir: match &c.console_log_dir {
            Some(d) if d.as_os_str().is_empty() => None,
            Some(d) => Some(d.clone()),
            None if c.libvirt.starts_with("test:") => None,
            None => Some(PathBuf::from("/var/log/libvirt/qemu")),
        },
    };
    let host = Host::open(host_cfg, state, compute, vlan, rt.handle().clone()).map_err(|e| e.to_string())?;
    let changed = Arc::new(tokio::sync::Notify::new());
    let handle = worker::spawn(host, worker::Timing::default(), changed.clone());
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(c.cr_listen).await.map_err(|e| format!("{}: {e}", c.cr_listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let cr_url = c.cr_url.clone().unwrap_or_else(|| format!("http://{local}/cr"));
        let cfg = AgentConfig {
            acs_url: c.acs_url.clone(),
            acs_username: if c.acs_username.is_empty() { c.agent_id.clone() } else { c.acs_username.clone() },
            acs_password: c.acs_password.clone(),
            acs_ca_file: c.acs_ca_file.clone(),
            device_id: cwmp::DeviceId {
                manufacturer: c.manufacturer.clone(),
                oui: c.oui.clone(),
                product_class: c.product_class.clone(),
                serial_number: c.agent_id.clone(),
            },
            connection_request_url: cr_url,
            cr_username: c.cr_username.clone(),
            cr_password: c.cr_password.clone(),
            download_dir: c.download_dir.clone(),
            periodic_inform_interval: c.periodic_inform_interval,
        };
        let agent = Agent::new(cfg, handle).await?;
        let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
        let cr = tokio::spawn(agent.clone().serve_connection_requests_until(listener, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        let wake = agent.wake.clone();
        tokio::spawn(async move {
            loop {
                changed.notified().await;
                wake.notify_one();
            }
        });
        tokio::spawn(agent.clone().run());
        println!("listening cr={local}");
        tracing::info!(acs = %c.acs_url, cr = %local, libvirt = %c.libvirt, agent = %c.agent_id, "hypervisor agent started");
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
        if let Ok(Err(e)) = cr.await {
            tracing::error!("connection-request listener: {e}");
        }
        Ok::<(), String>(())
    })
}
