//! An ACS for tests: the `acs` binary with the tests' credentials ([`AcsCommand`]), or an ACS
//! served inside the test's own process ([`start_acs`] and its variants).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use acs::endpoint::{Acs, EndpointConfig};
use acs::nbi::{Nbi, NbiConfig};
use acs::sim::SimCpe;
use acs::store::SqliteStore;

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
        let (cwmp, nbi_addr) = (cl.local_addr().expect("addr"), nl.local_addr().expect("addr"));
        tokio::spawn(acs.serve_tls(cl, tls, std::future::pending()));
        tokio::spawn(nbi.serve(nl, std::future::pending()));
        (cwmp, NbiClient::new(nbi_addr, TOKEN))
    })
}
