//! The `hypervisor-agent` binary on a configuration written for the test, and `vrgw-proxy` in a
//! network namespace as a vRGW guest runs it.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;

use crate::acs::CR_PASSWORD;
use crate::process::{workspace_binary, Daemon, Spawn};

/// The vendor extension's root in the host's data model.
pub const VIRT: &str = datamodel::virtualization::Virtualization::OBJECT;

/// Writes the agent's configuration into `dir/agent.toml` (`extra` lines appended): ACS at `acs`
/// (plain HTTP) as `agent` with the password `host-secret`, connection requests on a free loopback
/// port answered to the in-process ACS's credentials, libvirt's test driver, Open vSwitch bridges
/// and ports named with `ovs_prefix`, management addresses from `mgmt_net`, its files in `dir`.
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

/// Starts the agent binary at `exe` (`env!("CARGO_BIN_EXE_hypervisor-agent")`) on
/// `dir/agent.toml`, its log appended to `dir/agent.log`; returns once it accepts connection
/// requests (its `listening cr=` line).
pub fn start_agent(exe: impl AsRef<OsStr>, dir: &Path) -> Daemon {
    let agent =
        Spawn::new(exe).config(&dir.join("agent.toml")).env("RUST_LOG", "info").log(dir.join("agent.log")).start();
    assert!(agent.try_addr("cr").is_some(), "agent said {:?}\n{}", agent.listening(), agent.log());
    agent
}

/// Starts a `vrgw-proxy` in network namespace `netns`, listening on `listen`, with the secret
/// file `dir/secret`, its state and run folders and its log (`proxy.log`) in `dir`.
pub fn start_proxy(netns: &str, listen: &str, dir: &Path, instance_id: &str) -> Daemon {
    Spawn::new("ip")
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
        .log(dir.join("proxy.log"))
        .spawn()
}
