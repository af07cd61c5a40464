//! The `hypervisor-agent` binary on a configuration written for the test, `vrgw-proxy` in a
//! network namespace as a vRGW guest runs it, and a libvirtd of the test's own.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::acs::CR_PASSWORD;
use crate::process::{workspace_binary, Daemon, Spawn};

/// The vendor extension's root in the host's data model.
pub const VIRT: &str = datamodel::virtualization::Virtualization::OBJECT;

/// Writes the agent's configuration into `dir/agent.toml` (mode 0600; `extra` lines appended): ACS at `acs`
/// (plain HTTP) as `agent` with the password `host-secret`, connection requests on a free loopback
/// port answered to the in-process ACS's credentials, libvirt's test driver, Open vSwitch bridges
/// and ports named with `ovs_prefix`, management addresses from `mgmt_net`, its files in `dir`.
pub fn agent_config(dir: &Path, agent: &str, acs: SocketAddr, ovs_prefix: &str, mgmt_net: &str, extra: &str) {
    agent_config_on(dir, agent, acs, ovs_prefix, mgmt_net, "test:///default", extra);
}

/// [`agent_config`] with libvirt at `libvirt` (a [`Libvirtd`]'s URI, say).
pub fn agent_config_on(
    dir: &Path,
    agent: &str,
    acs: SocketAddr,
    ovs_prefix: &str,
    mgmt_net: &str,
    libvirt: &str,
    extra: &str,
) {
    let config = format!(
        "acs_url = \"http://{acs}/\"\nacs_username = \"{agent}\"\nacs_password = \"host-secret\"\n\
         cr_listen = \"127.0.0.1:0\"\ncr_username = \"acs\"\ncr_password = \"{CR_PASSWORD}\"\n\
         db = \"{db}\"\nagent_id = \"{agent}\"\nlibvirt = \"{libvirt}\"\novs_prefix = \"{ovs_prefix}\"\n\
         mgmt_network = \"{mgmt_net}\"\noverlay_dir = \"{d}/overlays\"\ndownload_dir = \"{d}/downloads\"\n\
         port_prefix = \"{ovs_prefix}\"\nsecret_dir = \"{d}/secrets\"\n{extra}",
        db = dir.join("agent.db").display(),
        d = dir.display(),
    );
    // Owner-only, as the agent's documentation asks: it holds the agent's passwords.
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join("agent.toml");
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).expect("config");
    f.write_all(config.as_bytes()).expect("config");
}

/// The agent's log in `dir` (`agent.log`) without its colours, as text to search.
pub fn plain_log(dir: &Path) -> String {
    let raw = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut escape = false;
    for c in raw.chars() {
        match (escape, c) {
            (false, '\u{1b}') => escape = true,
            (true, 'm') => escape = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
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

/// A libvirtd of the test's own, serving libvirt's test driver over a socket in the test's
/// directory (`test+unix:///default?socket=...`), so that stopping it (SIGSTOP) or killing it
/// harms nothing else. It runs as `nobody`, a session daemon whose files all live in
/// `dir/libvirtd` (no system paths), and loads no driver modules (no QEMU, no networks): only
/// the test driver built into libvirt answers. Killed when dropped.
pub struct Libvirtd {
    daemon: Daemon,
    socket: PathBuf,
}

impl Libvirtd {
    /// Starts it in `dir/libvirtd` and waits (up to 10 s) until its socket is there.
    pub fn start(dir: &Path) -> Libvirtd {
        use std::os::unix::fs::chown;
        const NOBODY: u32 = 65534;
        let home = dir.join("libvirtd");
        for sub in ["", "run", "config", "cache", "sock", "no-modules"] {
            let d = home.join(sub);
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            chown(&d, Some(NOBODY), Some(NOBODY)).unwrap_or_else(|e| panic!("chown {}: {e}", d.display()));
        }
        let socket = home.join("sock").join("libvirt-sock");
        let conf = home.join("libvirtd.conf");
        std::fs::write(
            &conf,
            format!(
                "unix_sock_dir = \"{}\"\nlisten_tcp = 0\nlisten_tls = 0\nauth_unix_rw = \"none\"\n\
                 auth_unix_ro = \"none\"\nlog_outputs = \"3:stderr\"\n",
                home.join("sock").display()
            ),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        let daemon = Spawn::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
            ])
            .arg(format!("HOME={}", home.display()))
            .arg(format!("XDG_RUNTIME_DIR={}", home.join("run").display()))
            .arg(format!("XDG_CONFIG_HOME={}", home.join("config").display()))
            .arg(format!("XDG_CACHE_HOME={}", home.join("cache").display()))
            .arg(format!("LIBVIRT_DRIVER_DIR={}", home.join("no-modules").display()))
            .args(["libvirtd", "--config"])
            .arg(&conf)
            .arg("--pid-file")
            .arg(home.join("libvirtd.pid"))
            .log(dir.join("libvirtd.log"))
            .spawn();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "libvirtd did not start:\n{}", daemon.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        Libvirtd { daemon, socket }
    }

    /// The URI that reaches its test driver.
    pub fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.socket.display())
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.daemon.id()
    }

    /// SIGSTOP: it keeps its socket (connections are still accepted by the kernel) and answers
    /// nothing.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: it answers again, what was sent meanwhile first.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.pid().to_string()]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {}", self.pid());
    }
}
