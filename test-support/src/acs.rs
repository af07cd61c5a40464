//! An ACS for tests: the `acs` binary with the tests' credentials ([`AcsCommand`]), or an ACS
//! served inside the test's own process ([`start_acs`] and its variants).

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use acs::sim::SimCpe;

use crate::nbi::NbiClient;
use crate::process::{Daemon, Spawn};

/// The user name and password CPEs log in to the `acs` binary with.
pub const CPE: (&str, &str) = ("cpe", "cpe-secret");
/// The user name and password the `acs` binary sends connection requests with.
pub const CR: (&str, &str) = ("cr", "cr-secret");

/// The `acs` binary's command line: store `db`, NBI token, the tests' CPE and connection-request
/// credentials, every listener on a free loopback port and the web form off unless changed.
pub struct AcsCommand {
    spawn: Spawn,
    cwmp: String,
    nbi: String,
    portal: String,
}

impl AcsCommand {
    /// The binary at `exe` (`env!("CARGO_BIN_EXE_acs")`) on store `db`, logging to `db` with the
    /// extension `log`.
    pub fn new(exe: impl AsRef<OsStr>, db: &Path, token: &str) -> AcsCommand {
        let (cpe, cr) = (format!("{}:{}", CPE.0, CPE.1), format!("{}:{}", CR.0, CR.1));
        let spawn = Spawn::new(exe).log(db.with_extension("log")).arg("--db").arg(db).args([
            "--nbi-token",
            token,
            "--cpe-credentials",
            &cpe,
            "--cr-credentials",
            &cr,
        ]);
        AcsCommand { spawn, cwmp: "127.0.0.1:0".into(), nbi: "127.0.0.1:0".into(), portal: "off".into() }
    }

    /// CWMP on this address (for a restart on the same one).
    pub fn cwmp(mut self, addr: SocketAddr) -> AcsCommand {
        self.cwmp = addr.to_string();
        self
    }

    /// The NBI on this address.
    pub fn nbi(mut self, addr: SocketAddr) -> AcsCommand {
        self.nbi = addr.to_string();
        self
    }

    /// The web form on `listen` (an address, or `off`).
    pub fn portal(mut self, listen: &str) -> AcsCommand {
        self.portal = listen.into();
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> AcsCommand
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.spawn = self.spawn.args(args);
        self
    }

    /// Starts it and reads the addresses it listens on.
    pub fn start(self) -> AcsProcess {
        let daemon = self
            .spawn
            .args(["--cwmp-listen", &self.cwmp, "--nbi-listen", &self.nbi, "--portal-listen", &self.portal])
            .start();
        AcsProcess { cwmp: daemon.addr("cwmp"), nbi: daemon.addr("nbi"), portal: daemon.try_addr("portal"), daemon }
    }
}

/// A running `acs` binary, killed when dropped.
pub struct AcsProcess {
    /// Where CPEs reach it.
    pub cwmp: SocketAddr,
    /// Its northbound API.
    pub nbi: SocketAddr,
    /// Its web form, when on.
    pub portal: Option<SocketAddr>,
    /// The process.
    pub daemon: Daemon,
}

impl AcsProcess {
    /// A simulated CPE with serial number `serial` that logs in to this ACS with [`CPE`] and
    /// answers its connection requests (checked against [`CR`]) on a free loopback port.
    pub async fn sim(&self, serial: &str) -> Arc<SimCpe> {
        let cr = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let sim =
            SimCpe::new(serial, &format!("http://{}/", self.cwmp), CPE.0, CPE.1, cr.local_addr().expect("addr"), CR);
        tokio::spawn(SimCpe::serve_connection_requests(vec![sim.clone()], cr));
        sim
    }
}

/// The NBI token of the ACS [`start_acs`] serves.
pub const TOKEN: &str = "nbi-token-for-the-agent-test";
/// The password the ACS [`start_acs`] serves sends connection requests with (user `acs`).
pub const CR_PASSWORD: &str = "cr-secret-0123";

/// An ACS (SQLite store in `dir`) serving CWMP and the NBI on loopback, in `rt`, for agent
/// `agent` (password `host-secret`): its CWMP address and its NBI.
pub fn start_acs(rt: &tokio::runtime::Runtime, dir: &Path, agent: &str) -> (SocketAddr, NbiClient<'static>) {
    start_acs_tls(rt, dir, agent, None)
}

/// The same, CWMP over TLS with this certificate and key (PEM files) when given.
pub fn start_acs_tls(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    agent: &str,
    tls: Option<(&Path, &Path)>,
) -> (SocketAddr, NbiClient<'static>) {
    start_acs_for(rt, dir, &[agent], tls)
}

/// The same for several agents (each with the password `host-secret`).
pub fn start_acs_for(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    agents: &[&str],
    tls: Option<(&Path, &Path)>,
) -> (SocketAddr, NbiClient<'static>) {
    // Through the daemon's own entry point, as the `acs` binary runs it.
    let mut file = acs::daemon::FileConfig::default();
    file.store.db = Some(dir.join("acs.db"));
    file.cwmp.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    file.nbi.listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    file.portal.listen = Some("off".into());
    file.cwmp.credentials = agents.iter().map(|a| (a.to_string(), "host-secret".to_string())).collect();
    file.cwmp.session_timeout_secs = Some(300);
    file.cwmp.file_base_url = Some("http://127.0.0.1:9/files".into());
    file.cwmp.cr_username = Some("acs".into());
    file.cwmp.cr_password = Some(CR_PASSWORD.into());
    file.nbi.tokens = vec![TOKEN.into()];
    if let Some((cert, key)) = tls {
        (file.cwmp.tls_cert, file.cwmp.tls_key) = (Some(cert.to_path_buf()), Some(key.to_path_buf()));
    }
    let config = file.resolve().expect("ACS configuration");
    rt.block_on(async {
        let listeners = acs::daemon::Listeners::bind(&config).await.expect("bind");
        let cwmp = listeners.cwmp.local_addr().expect("addr");
        let nbi_addr = listeners.nbi.local_addr().expect("addr");
        tokio::spawn(async move {
            if let Err(e) = acs::daemon::run(config, listeners, std::future::pending()).await {
                panic!("the test's ACS: {e}");
            }
        });
        (cwmp, NbiClient::new(nbi_addr, TOKEN))
    })
}
