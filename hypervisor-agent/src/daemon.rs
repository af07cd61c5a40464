//! The agent as one library call: [`Config`] is the TOML file (the `hypervisor-agent` binary
//! lays its flags over it) and [`Config::check`] checks it once; [`run`] opens the agent's state,
//! libvirt and the VLAN backend, starts the host thread, serves connection requests on the
//! listener it is given and runs CWMP sessions until `shutdown` completes. Then the
//! connection-request listener drains, a session under way is finished, the host thread finishes
//! the job it is on, and `run` returns.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpListener;

use crate::agent::{Agent, AgentConfig};
use crate::compute::{Compute, Deadlines, Libvirt, Routed};
use crate::host::{Host, HostConfig};
use crate::state::State;
use crate::vlan::linux::Linux;
use crate::vlan::{Ovs, VlanBackend};
use crate::worker;

/// Why the agent did not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
    },
    /// A setting is wrong (named in the message).
    #[error("{0}")]
    Config(String),
    /// Something the agent needs could not be opened: its state, libvirt, the VLAN backend.
    #[error("{what}: {reason}")]
    Open {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
    /// The connection-request listener failed.
    #[error("connection-request listener: {0}")]
    Listener(std::io::Error),
    /// The CWMP side could not start.
    #[error("{0}")]
    Agent(String),
}

/// The agent's settings: the configuration file's keys, every one optional, unknown ones refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The ACS URL (`http://` or `https://`).
    pub acs_url: String,
    /// User name toward the ACS (default: the agent id).
    pub acs_username: String,
    /// Password toward the ACS.
    pub acs_password: String,
    /// User name the vRGWs managed as virtual devices (TR-069 Annex J.2) log in to the ACS
    /// with: a credential the ACS binds to their DeviceIds (say the prefix
    /// `OUI-ProductClass-`). Default: `acs_username`.
    pub virtual_acs_username: Option<String>,
    /// Its password. Default: `acs_password`.
    pub virtual_acs_password: Option<String>,
    /// Virtual devices starting together (at the agent's start, or made in bulk) open their
    /// first sessions at most this many per second, spread rather than all at once (default 50).
    pub virtual_start_rate: u32,
    /// PEM file of the CAs an `https://` ACS is checked against.
    pub acs_ca_file: Option<PathBuf>,
    /// Where connection requests are accepted.
    pub cr_listen: SocketAddr,
    /// Where Prometheus scrapes `GET /metrics` (unset, the default: not served). No
    /// authentication: bind it to loopback or the management network.
    pub metrics_listen: Option<SocketAddr>,
    /// The connection-request URL given to the ACS (default: `http://CR_LISTEN/cr`, with the
    /// host's address when listening on all addresses is not reachable from the ACS).
    pub cr_url: Option<String>,
    /// User name the ACS sends connection requests with.
    pub cr_username: String,
    /// Its password (required).
    pub cr_password: String,
    /// The agent's SQLite state.
    pub db: PathBuf,
    /// This host's id: the serial number toward the ACS and the mark on its domains.
    pub agent_id: String,
    /// DeviceInfo.Manufacturer.
    pub manufacturer: String,
    /// DeviceInfo.ManufacturerOUI.
    pub oui: String,
    /// DeviceInfo.ProductClass.
    pub product_class: String,
    /// libvirt URI (`qemu:///system`; `test:///default` for the test driver).
    pub libvirt: String,
    /// Domain type of the vRGWs (`qemu`, `kvm`; `test` on the test driver).
    pub domain_type: String,
    /// libvirt URI of the LXC driver container vRGWs (templates of `Flavor` `Container`) run
    /// on: `lxc:///system`, or the same libvirtd as `libvirt` over the network
    /// (`lxc+tls://HOST/system`); the same URI as `libvirt` on the test driver. None (the
    /// default): this host runs no containers.
    pub lxc: Option<String>,
    /// `ovs` (Open vSwitch) or `linux` (rtnetlink).
    pub vlan_backend: String,
    /// Prefix of the Open vSwitch bridges.
    pub ovs_prefix: String,
    /// Prefix of the Linux bridges.
    pub linux_prefix: String,
    /// The trunk NIC (required by the `linux` backend).
    pub trunk_uplink: Option<String>,
    /// The vRGWs' management bridge.
    pub mgmt_bridge: String,
    /// The management network, ADDRESS/PREFIX.
    pub mgmt_network: String,
    /// The vRGWs' WAN bridge.
    pub wan_bridge: String,
    /// Where the vRGWs' disk overlays live.
    pub overlay_dir: PathBuf,
    /// Where Download puts files.
    pub download_dir: PathBuf,
    /// Where firmware images downloaded to virtual devices are kept, by hash (default
    /// `download_dir/firmware`): QEMU's user must be able to reach it (a kernel template's
    /// instances boot the initramfs from there, a disk template's overlays are made over it).
    pub firmware_dir: Option<PathBuf>,
    /// The largest file a Download may bring (the host's, or a firmware image to a virtual
    /// device), MiB; a larger one fails with 9017 and leaves nothing behind.
    pub download_max_mib: u64,
    /// The port of each vRGW's proxy.
    pub proxy_port: u16,
    /// QEMU TCG's translation cache per vRGW, MiB.
    pub tb_cache_mib: Option<u32>,
    /// Prefix of the vRGWs' interface names (at most 8 characters).
    pub port_prefix: String,
    /// Seconds a pool domain may take to boot before it is suspended (0: suspend at once;
    /// default 300, or 0 on libvirt's test driver, which runs no guest).
    pub pool_warmup_seconds: Option<u64>,
    /// Where each domain's serial console is copied (empty: nowhere; default
    /// /var/log/libvirt/qemu, none on libvirt's test driver).
    pub console_log_dir: Option<PathBuf>,
    /// Seconds between periodic Informs.
    pub periodic_inform_interval: u32,
    /// `text` or `json`.
    pub log_format: String,
    /// The libvirt URI other hosts reach this host's libvirtd at for migrations (for example
    /// `qemu+tcp://10.98.0.2/system`); unset: this host takes part in no migration.
    pub migration_uri: Option<String>,
    /// The libvirt URIs of the hosts this agent may migrate to and from (`Migration.Peer`): the
    /// only other libvirtds it ever opens. Empty (the default): none; a migration that names a
    /// peer is refused.
    pub migration_peers: Vec<String>,
    /// Seconds a libvirt call that changes something may take before libvirt counts as not
    /// answering (reads get at most 5); meanwhile host operations that need libvirt are refused
    /// with 9002 and the CWMP side is served from what was read last.
    pub libvirt_timeout_seconds: u64,
    /// Where each vRGW's proxy-secret file is written (QEMU hands it to the guest over fw_cfg):
    /// a folder of the agent's own, 0711, each file 0600.
    pub secret_dir: PathBuf,
    /// `USER` or `UID:GID` each secret file is handed to: QEMU's user, on hosts where libvirt
    /// does not relabel files itself (`dynamic_ownership = 0` in qemu.conf). Unset: root's,
    /// which libvirt hands to QEMU's user while the domain runs.
    pub secret_file_owner: Option<String>,
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
            virtual_acs_username: None,
            virtual_acs_password: None,
            virtual_start_rate: 50,
            acs_ca_file: None,
            cr_listen: SocketAddr::from(([0, 0, 0, 0], 7548)),
            metrics_listen: None,
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
            lxc: None,
            vlan_backend: "ovs".into(),
            ovs_prefix: "vrgw".into(),
            linux_prefix: "vr".into(),
            trunk_uplink: None,
            mgmt_bridge: "vrgw-mgmt".into(),
            mgmt_network: "10.99.0.0/16".into(),
            wan_bridge: "vrgw-wan".into(),
            overlay_dir: PathBuf::from("/var/lib/vrgw/overlays"),
            download_dir: PathBuf::from("/var/lib/vrgw/downloads"),
            firmware_dir: None,
            download_max_mib: 8192,
            proxy_port: 8730,
            tb_cache_mib: Some(16),
            port_prefix: "vrgw".into(),
            pool_warmup_seconds: None,
            console_log_dir: None,
            periodic_inform_interval: 300,
            log_format: "text".into(),
            migration_uri: None,
            migration_peers: Vec::new(),
            libvirt_timeout_seconds: 30,
            secret_dir: PathBuf::from("/var/lib/vrgw/secrets"),
            secret_file_owner: None,
        }
    }
}

impl Config {
    /// Reads and parses the TOML file at `path` (not yet checked).
    pub fn load(path: &Path) -> Result<Config, Error> {
        let file = |reason: String| Error::File { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file(e.to_string()))?;
        toml::from_str(&text).map_err(|e| file(e.to_string()))
    }

    /// The settings checked, and those that follow from others filled in (the `test` domain
    /// type on libvirt's test driver).
    pub fn check(mut self) -> Result<Config, Error> {
        let bad = |m: String| Err(Error::Config(m));
        match self.vlan_backend.as_str() {
            "ovs" => {}
            "linux" if self.trunk_uplink.is_some() => {}
            "linux" => return bad("vlan_backend \"linux\" needs trunk_uplink (the trunk NIC)".into()),
            other => return bad(format!("vlan_backend {other:?}: \"ovs\" (Open vSwitch) or \"linux\" (rtnetlink)")),
        }
        if self.agent_id.is_empty()
            || !self.agent_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad(format!("agent_id {:?}: letters, digits, - and _ only", self.agent_id));
        }
        if self.port_prefix.len() > 8 {
            return bad(format!(
                "port_prefix {:?}: at most 8 characters (interface names end at 15)",
                self.port_prefix
            ));
        }
        if self.cr_password.is_empty() {
            return bad("cr_password is empty: connection requests must be authenticated".into());
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return bad(format!("log_format {:?}: text or json", self.log_format));
        }
        network(&self.mgmt_network)?;
        if self.libvirt_timeout_seconds == 0 {
            return bad("libvirt_timeout_seconds is 0: libvirt calls need some time".into());
        }
        if let Some(o) = &self.secret_file_owner {
            owner(o)?;
        }
        if let Some(u) = self.lxc.as_deref().filter(|u| !u.contains("://")) {
            return bad(format!("lxc: {u:?} is not a libvirt URI"));
        }
        if let Some(p) = self.migration_peers.iter().find(|p| !p.contains("://")) {
            return bad(format!("migration_peers: {p:?} is not a libvirt URI"));
        }
        // libvirt's test driver, in this process or in a libvirtd (`test+unix://...`).
        if self.libvirt.starts_with("test:") || self.libvirt.starts_with("test+") {
            self.domain_type = "test".into();
        }
        Ok(self)
    }

    fn host_config(&self) -> Result<HostConfig, Error> {
        let (mgmt_base, mgmt_prefix) = network(&self.mgmt_network)?;
        let test_driver = self.libvirt.starts_with("test:");
        Ok(HostConfig {
            agent_id: self.agent_id.clone(),
            domain_type: self.domain_type.clone(),
            container_type: self
                .lxc
                .as_deref()
                .filter(|u| !u.is_empty())
                .map(|u| if u.starts_with("test:") || u.starts_with("test+") { "test" } else { "lxc" }.to_string()),
            mgmt_bridge: self.mgmt_bridge.clone(),
            mgmt_base,
            mgmt_prefix,
            wan_bridge: self.wan_bridge.clone(),
            overlay_dir: self.overlay_dir.clone(),
            tb_cache_mib: self.tb_cache_mib,
            proxy_port: self.proxy_port,
            port_prefix: self.port_prefix.clone(),
            secret_dir: self.secret_dir.clone(),
            secret_owner: self.secret_file_owner.as_deref().map(owner).transpose()?,
            migration_uri: self.migration_uri.clone().filter(|u| !u.is_empty()),
            migration_peers: self.migration_peers.clone(),
            proxy_deadlines: Default::default(),
            pool_warmup: match self.pool_warmup_seconds {
                Some(0) => None,
                Some(s) => Some(Duration::from_secs(s)),
                None if test_driver => None,
                None => Some(Duration::from_secs(300)),
            },
            console_log_dir: match &self.console_log_dir {
                Some(d) if d.as_os_str().is_empty() => None,
                Some(d) => Some(d.clone()),
                None if test_driver => None,
                None => Some(PathBuf::from("/var/log/libvirt/qemu")),
            },
        })
    }

    fn agent_config(&self, cr_local: SocketAddr) -> AgentConfig {
        AgentConfig {
            acs_url: self.acs_url.clone(),
            acs_username: if self.acs_username.is_empty() { self.agent_id.clone() } else { self.acs_username.clone() },
            acs_password: self.acs_password.clone(),
            acs_ca_file: self.acs_ca_file.clone(),
            device_id: cwmp::DeviceId {
                manufacturer: self.manufacturer.clone(),
                oui: self.oui.clone(),
                product_class: self.product_class.clone(),
                serial_number: self.agent_id.clone(),
            },
            connection_request_url: self.cr_url.clone().unwrap_or_else(|| format!("http://{cr_local}/cr")),
            cr_username: self.cr_username.clone(),
            cr_password: self.cr_password.clone(),
            download_dir: self.download_dir.clone(),
            download_max_bytes: self.download_max_mib.saturating_mul(1 << 20),
            periodic_inform_interval: self.periodic_inform_interval,
        }
    }
}

/// `scheme://authority` of a URL (what the virtual devices' connection-request paths go after).
fn origin_of(url: &str) -> String {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => url[..after + i].to_string(),
        None => url.to_string(),
    }
}

/// `secret_file_owner`: `UID:GID`, or a user name looked up in /etc/passwd (its uid and group).
fn owner(s: &str) -> Result<(u32, u32), Error> {
    let bad = |why: String| Error::Config(format!("secret_file_owner {s:?}: {why}"));
    if let Some((u, g)) = s.split_once(':') {
        let id = |v: &str| v.parse::<u32>().map_err(|_| bad("UID:GID in digits, or a user name".into()));
        return Ok((id(u)?, id(g)?));
    }
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| bad(format!("/etc/passwd: {e}")))?;
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&s))
        .and_then(|f| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))
        .ok_or_else(|| bad("no such user in /etc/passwd".into()))
}

/// `ADDRESS/PREFIX` of the management network.
fn network(s: &str) -> Result<(Ipv4Addr, u8), Error> {
    let bad = |why: &str| Error::Config(format!("mgmt_network {s:?}: {why}"));
    let (a, p) = s.split_once('/').ok_or_else(|| bad("ADDRESS/PREFIX"))?;
    let a: Ipv4Addr = a.parse().map_err(|_| bad("bad address"))?;
    let p: u8 = p.parse().ok().filter(|p| (8..=30).contains(p)).ok_or_else(|| bad("prefix 8 to 30"))?;
    Ok((a, p))
}

/// Connections to vRGW proxies the open-file limit leaves room for (one kept-alive client
/// connection per vRGW, for this many vRGWs on one host).
const PROXY_CONNECTIONS: usize = 4096;

/// Raises the open-file limit above what the listener's cap and the proxies' connections can
/// hold open (plus the store, libvirt, the ACS session and logs): a host's default soft limit
/// (often 1,024) would otherwise be met before the connection-request listener's cap.
fn raise_nofile() {
    let want = (crate::agent::cr_limits().max_connections + PROXY_CONNECTIONS + 256) as u64;
    match http_shell::raise_nofile(want) {
        Ok(n) if n >= want => tracing::debug!(nofile = n, "open-file limit"),
        Ok(n) => tracing::warn!(
            nofile = n,
            want,
            "the open-file limit stays below what the listener and the vRGWs' proxies may hold open"
        ),
        Err(e) => tracing::warn!("the open-file limit could not be read or raised: {e}"),
    }
}

/// Host limits a host of container vRGWs outgrows (sysctl, least wanted, what goes wrong below
/// it), checked at the start. Every container's processes run as the host's root (no user
/// namespaces), so per-user limits are shared by all of them, and every vRGW's management NIC is
/// a port of one Linux bridge.
const HOST_LIMITS: &[(&str, u64, &str)] = &[
    (
        "fs.inotify.max_user_instances",
        4096,
        "each container vRGW's dnsmasq takes an inotify instance (it watches resolv.conf), shared with all \
         of root's processes: past the limit their DHCP and DNS fail (seen at 125 containers with \
         Debian's 128)",
    ),
    (
        "net.core.netdev_max_backlog",
        4096,
        "a broadcast on the management bridge is queued once per port on one CPU's backlog: ports past \
         the limit lose their copy, so those vRGWs miss the host's ARP requests and their proxies are \
         unreachable (seen at 1,000 containers with the default 1,000: \"No route to host\")",
    ),
    (
        "net.ipv4.neigh.default.gc_thresh3",
        4096,
        "the host keeps an ARP entry for each vRGW whose proxy it calls: past the limit, \"neighbour \
         table overflow\" and calls that fail",
    ),
];

/// The limits of [`HOST_LIMITS`] below what a host of containers wants, as `read` gives them
/// (a sysctl's name to its value; `None`: unreadable), each with its warning.
fn limits_below(read: impl Fn(&str) -> Option<u64>) -> Vec<String> {
    HOST_LIMITS
        .iter()
        .filter_map(|(name, wanted, why)| match read(name) {
            Some(n) if n >= *wanted => None,
            Some(n) => Some(format!("{name} is {n}: {why}; raise it (sysctl {name}={wanted} or more)")),
            None => Some(format!("{name} could not be read: {why}")),
        })
        .collect()
}

/// Logs each host limit a host of container vRGWs outgrows (see [`HOST_LIMITS`]).
fn container_limits() {
    let read = |name: &str| {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        std::fs::read_to_string(path).ok()?.trim().parse::<u64>().ok()
    };
    for warning in limits_below(read) {
        tracing::warn!("{warning}");
    }
}

/// Runs the agent with connection requests on `listener` until `shutdown` completes. Call it
/// inside a multi-threaded tokio runtime: the host's own thread blocks on it for the VLAN
/// backend's netlink calls.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    run_with(config, listener, shutdown, |_| {}).await
}

/// The same, calling `started` (with the metrics listener's address, when served) once connection
/// requests are served and the session loop runs.
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    started: impl FnOnce(Option<SocketAddr>),
) -> Result<(), Error> {
    let config = config.check()?;
    let host_cfg = config.host_config()?;
    raise_nofile();
    if config.lxc.as_deref().is_some_and(|u| !u.is_empty()) {
        container_limits();
    }
    let rt = tokio::runtime::Handle::current();
    // libvirt, the store and the VLAN backend are opened off the runtime's threads: they block.
    let opened = {
        let c = config.clone();
        tokio::task::spawn_blocking(move || -> Result<Host, Error> {
            let open = |what: String| move |e: String| Error::Open { what, reason: e };
            let state = State::open(&c.db).map_err(|e| open(format!("state {}", c.db.display()))(e.to_string()))?;
            let deadlines = Deadlines::with_change(Duration::from_secs(c.libvirt_timeout_seconds));
            let vms: Arc<dyn Compute> = Arc::new(
                Libvirt::open_with(&c.libvirt, deadlines)
                    .map_err(|e| open(format!("libvirt {}", c.libvirt))(e.to_string()))?,
            );
            // Containers on the LXC driver; the same connection when it is the same URI (the
            // test driver serves both kinds of domain).
            let containers: Option<Arc<dyn Compute>> = match c.lxc.as_deref().filter(|u| !u.is_empty()) {
                None => None,
                Some(u) if u == c.libvirt => Some(vms.clone()),
                Some(u) => Some(Arc::new(
                    Libvirt::open_with(u, deadlines).map_err(|e| open(format!("libvirt {u}"))(e.to_string()))?,
                )),
            };
            let compute = Arc::new(Routed::new(vms, containers));
            let vlan: Arc<dyn VlanBackend> = match (c.vlan_backend.as_str(), &c.trunk_uplink) {
                ("linux", Some(up)) => Arc::new(
                    Linux::new(&c.linux_prefix, up, rt.clone())
                        .map_err(|e| open(format!("VLAN backend on {up}"))(e.to_string()))?,
                ),
                _ => Arc::new(Ovs::new(&c.ovs_prefix, c.trunk_uplink.as_deref())),
            };
            Host::open(host_cfg, state, compute, vlan, rt).map_err(|e| open("the host".into())(e.to_string()))
        })
        .await
        .map_err(|e| Error::Agent(format!("opening the host: {e}")))??
    };
    let changed = Arc::new(tokio::sync::Notify::new());
    let handle = worker::spawn(opened, worker::Timing::default(), changed.clone());
    let local = listener.local_addr().map_err(Error::Listener)?;
    let agent = Agent::new(config.agent_config(local), handle.clone()).await.map_err(Error::Agent)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let cr = tokio::spawn(agent.clone().serve_connection_requests_until(listener, stopped(stop_rx.clone())));
    let wake = agent.loop_state.wake.clone();
    let forward = tokio::spawn(async move {
        loop {
            changed.notified().await;
            wake.notify_one();
        }
    });
    let (metrics, metrics_addr) = match config.metrics_listen {
        None => (None, None),
        Some(addr) => {
            let l = TcpListener::bind(addr).await.map_err(Error::Listener)?;
            let at = l.local_addr().map_err(Error::Listener)?;
            tracing::info!(metrics = %at, "Prometheus metrics at GET /metrics");
            (Some(tokio::spawn(agent.clone().serve_metrics_until(l, stopped(stop_rx.clone())))), Some(at))
        }
    };
    // The vRGWs managed as CWMP devices of their own, each with its session loop.
    let agent_cfg = config.agent_config(local);
    let virtual_settings = Arc::new(crate::vagent::Settings {
        acs_url: agent_cfg.acs_url.clone(),
        acs_username: config.virtual_acs_username.clone().unwrap_or_else(|| agent_cfg.acs_username.clone()),
        acs_password: config.virtual_acs_password.clone().unwrap_or_else(|| agent_cfg.acs_password.clone()),
        tls: agent.tls(),
        cr_base: origin_of(&agent_cfg.connection_request_url),
        periodic_inform_interval: config.periodic_inform_interval,
        start_rate: config.virtual_start_rate.max(1),
        // As many as run at once in the usual case; more are opened and closed when needed.
        pool: http_shell::cpe::Pool::new(16),
        firmware_dir: config.firmware_dir.clone().unwrap_or_else(|| config.download_dir.join("firmware")),
        download_max_bytes: config.download_max_mib.saturating_mul(1 << 20),
    });
    let virtuals = tokio::spawn(crate::vagent::supervise(
        handle.clone(),
        virtual_settings,
        agent.virtuals.clone(),
        stopped(stop_rx.clone()),
    ));
    let sessions = tokio::spawn(agent.clone().run_until(stopped(stop_rx)));
    tracing::info!(acs = %config.acs_url, cr = %local, libvirt = %config.libvirt, agent = %config.agent_id, "hypervisor agent started");
    if config.migration_uri.is_some() && config.migration_peers.is_empty() {
        tracing::warn!(
            "migration_uri is set but migration_peers is empty: every migration that names a peer is refused"
        );
    }
    started(metrics_addr);

    shutdown.await;
    tracing::info!("stopping: draining connection requests, finishing the session under way");
    let _ = stop_tx.send(true);
    let cr = cr.await;
    if let Some(Ok(Err(e))) = match metrics {
        Some(m) => Some(m.await),
        None => None,
    } {
        tracing::error!("metrics listener: {e}");
    }
    if let Err(e) = sessions.await {
        tracing::error!("session loop: {e}");
    }
    if let Err(e) = virtuals.await {
        tracing::error!("virtual devices: {e}");
    }
    forward.abort();
    // Jobs run in order on the host thread: this one runs once the one under way is done.
    if handle.run(|_| ()).await.is_err() {
        tracing::error!("the host thread had stopped");
    }
    tracing::info!("hypervisor agent stopped");
    match cr {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Error::Listener(e)),
        Err(e) => Err(Error::Agent(format!("connection-request listener: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_owner_is_ids_or_a_user_of_this_host() {
        assert_eq!(owner("64055:64055").ok(), Some((64055, 64055)));
        assert_eq!(owner("root").ok(), Some((0, 0)));
        for bad in ["no-such-user-here", "1:x", "1:", ":1"] {
            assert!(matches!(owner(bad), Err(Error::Config(m)) if m.contains("secret_file_owner")), "{bad}");
        }
        let c =
            Config { secret_file_owner: Some("nobody-at-all".into()), cr_password: "p".into(), ..Config::default() };
        assert!(c.check().is_err(), "refused when the configuration is checked");
    }

    #[test]
    fn host_limits_below_what_containers_want_are_named_with_their_sysctl() {
        let host = |name: &str| match name {
            "fs.inotify.max_user_instances" => Some(128),
            "net.core.netdev_max_backlog" => Some(1000),
            "net.ipv4.neigh.default.gc_thresh3" => Some(16384),
            _ => None,
        };
        let warned = limits_below(host);
        assert_eq!(warned.len(), 2, "{warned:?}");
        assert!(warned[0].starts_with("fs.inotify.max_user_instances is 128: "), "{}", warned[0]);
        assert!(warned[1].contains("sysctl net.core.netdev_max_backlog=4096"), "{}", warned[1]);
        assert!(limits_below(|_| Some(1 << 20)).is_empty(), "a host above them all: nothing said");
        assert_eq!(limits_below(|_| None).len(), HOST_LIMITS.len(), "unreadable: each said");
    }
}
