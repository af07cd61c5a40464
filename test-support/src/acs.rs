//! An ACS for tests: the `acs` binary with the tests' credentials ([`AcsCommand`]), or an ACS
//! served inside the test's own process ([`start_acs`] and its variants).

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use acs::sim::SimCpe;

/// The name and ParameterKey of the ACS's own set of a device's connection-request credentials.
pub use acs::endpoint::{local_key, CR_SETUP};

use crate::nbi::NbiClient;
use crate::process::{Daemon, Spawn};

/// The user name and password simulated CPEs log in to the `acs` binary with; the credential
/// may speak for every DeviceId starting with [`SIM_PREFIX`].
pub const CPE: (&str, &str) = ("cpe", "cpe-secret");
/// The DeviceId prefix of every [`SimCpe`].
pub const SIM_PREFIX: &str = "00A0B1-SimCPE-";
/// The factory connection-request credentials of the tests' simulated CPEs (the ACS replaces
/// them at BOOTSTRAP with credentials of each device's own).
pub const CR: (&str, &str) = ("cr", "cr-secret");

/// `VRGW_TEST_STORE=postgres`: the tests' ACS binaries store in PostgreSQL (a database of the
/// test process's cluster per `db` path, so a restart on the same path finds its data) rather
/// than in the SQLite file `db`; anything else (or unset): SQLite.
pub const STORE_ENV: &str = "VRGW_TEST_STORE";

static DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, crate::pg::Database)>> = std::sync::Mutex::new(Vec::new());

fn on_postgres() -> bool {
    std::env::var(STORE_ENV).as_deref() == Ok("postgres")
}

/// Every byte the store of `db` holds (see [`STORE_ENV`]): the SQLite file and its WAL, or the
/// PostgreSQL database's data as `pg_dump` writes it.
pub fn store_contents(db: &Path) -> Vec<u8> {
    if on_postgres() {
        let known = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
        let (_, pg) = known.iter().find(|(p, _)| p == db).expect("an ACS was started on this store");
        return crate::pg::cluster().dump(&pg.name);
    }
    let mut bytes = std::fs::read(db).unwrap_or_else(|e| panic!("{}: {e}", db.display()));
    bytes.extend(std::fs::read(db.with_extension("db-wal")).unwrap_or_default());
    bytes
}

/// The `[store]` section for `db` under [`STORE_ENV`]: empty for SQLite.
pub fn store_section(db: &Path) -> String {
    if !on_postgres() {
        return String::new();
    }
    let mut known = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    let pg = match known.iter().find(|(p, _)| p == db) {
        Some((_, pg)) => pg.clone(),
        None => {
            let dir = db.parent().unwrap_or(Path::new("."));
            let pg = crate::pg::cluster().database_in(dir);
            known.push((db.to_path_buf(), pg.clone()));
            pg
        }
    };
    format!("[store]\nurl = \"{}\"\npassword_file = \"{}\"\n\n", pg.url, pg.password_file.display())
}

/// The `acs` binary's command line: store `db` (see [`STORE_ENV`]), a configuration file (mode 0600, next to the
/// database) with the NBI token and the tests' CPE credential, every listener on a free loopback
/// port and the web form off unless changed.
pub struct AcsCommand {
    spawn: Spawn,
    file: std::path::PathBuf,
    /// The `[store]` section (empty: SQLite at the `--db` path).
    store: String,
    settings: String,
    cwmp: String,
    nbi: String,
    portal: String,
}

impl AcsCommand {
    /// The binary at `exe` (`env!("CARGO_BIN_EXE_acs")`) on store `db`, logging to `db` with the
    /// extension `log`.
    pub fn new(exe: impl AsRef<OsStr>, db: &Path, token: &str) -> AcsCommand {
        let spawn = Spawn::new(exe).log(db.with_extension("log")).arg("--db").arg(db);
        let settings = format!(
            "[nbi]\ntokens = [\"{token}\"]\n\n[[cwmp.cpe_credentials]]\nusername = \"{}\"\npassword = \"{}\"\n\
             device_prefix = \"{SIM_PREFIX}\"\n",
            CPE.0, CPE.1
        );
        AcsCommand {
            spawn,
            file: db.with_extension("toml"),
            store: store_section(db),
            settings,
            cwmp: "127.0.0.1:0".into(),
            nbi: "127.0.0.1:0".into(),
            portal: "off".into(),
        }
    }

    /// More of the configuration file (TOML), written before the tests' own settings (so it
    /// may open `[cwmp]` or `[[webhooks]]`, but not `[nbi]`).
    pub fn config(mut self, toml: &str) -> AcsCommand {
        self.settings = format!("{toml}\n{}", self.settings);
        self
    }

    /// Stores in PostgreSQL database `db` (whatever [`STORE_ENV`] says): nodes of one cluster.
    pub fn postgres(mut self, db: &crate::pg::Database) -> AcsCommand {
        self.store = format!("[store]\nurl = \"{}\"\npassword_file = \"{}\"\n\n", db.url, db.password_file.display());
        self
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
        write_secret(&self.file, &format!("{}{}", self.store, self.settings));
        let daemon = self
            .spawn
            .arg("--config")
            .arg(&self.file)
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

    /// The same as a physical TR-181 residential gateway with a vRGW's parameters
    /// ([`acs::sim::SimModel::Tr181Gateway`]).
    pub async fn sim_gateway(&self, serial: &str) -> Arc<SimCpe> {
        sim_gateway(self.cwmp, serial).await
    }

    /// The same as a TR-098 residential gateway (`InternetGatewayDevice.`, [`SimCpe::new_tr098`]).
    pub async fn sim_tr098(&self, serial: &str) -> Arc<SimCpe> {
        let cr = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = cr.local_addr().expect("addr");
        let sim = SimCpe::new_tr098(serial, &format!("http://{}/", self.cwmp), CPE.0, CPE.1, addr, CR)
            .unwrap_or_else(|e| panic!("a TR-098 gateway {serial}: {e}"));
        tokio::spawn(SimCpe::serve_connection_requests(vec![sim.clone()], cr));
        sim
    }
}

/// A physical TR-181 gateway ([`acs::sim::SimModel::Tr181Gateway`]) with serial `serial` that
/// logs in to the ACS at `cwmp` with [`CPE`] and answers its connection requests (checked
/// against [`CR`]) on a free loopback port.
pub async fn sim_gateway(cwmp: SocketAddr, serial: &str) -> Arc<SimCpe> {
    let cr = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = cr.local_addr().expect("addr");
    let sim =
        SimCpe::of_model(acs::sim::SimModel::Tr181Gateway, serial, &format!("http://{cwmp}/"), CPE.0, CPE.1, addr, CR)
            .unwrap_or_else(|e| panic!("a TR-181 gateway {serial}: {e}"));
    tokio::spawn(SimCpe::serve_connection_requests(vec![sim.clone()], cr));
    sim
}

/// Writes a file that holds secrets: mode 0600 from its creation.
pub fn write_secret(path: &Path, text: &str) {
    crate::temp::try_write_secret(path, text).unwrap_or_else(|e| panic!("{e}"));
}

/// The NBI token of the ACS [`start_acs`] serves.
pub const TOKEN: &str = "nbi-token-for-the-agent-test";
/// The factory connection-request password of the tests' agents (user `acs`); the ACS
/// replaces it with one of the agent's own at its BOOTSTRAP and BOOT.
pub const CR_PASSWORD: &str = "cr-secret-0123";

/// The DeviceId prefix of the tests' agents' virtual devices (TR-069 Annex J.2, ProductClass
/// `vRGW`): each agent's credential may speak for those of subscribers placed on it.
pub const VIRTUAL_DEVICES: &str = "00A0B1-vRGW-";

/// The device id a test agent named `agent` informs as (the agent's default OUI and class),
/// escaped as the ACS escapes it (`00A0B1-vRGW%2DHost-…`).
pub fn agent_device(agent: &str) -> String {
    cwmp::DeviceId {
        manufacturer: "vRGW Project".into(),
        oui: "00A0B1".into(),
        product_class: "vRGW-Host".into(),
        serial_number: agent.into(),
    }
    .key()
}

/// An ACS (SQLite store in `dir`) serving CWMP and the NBI on loopback, in `rt`, for agent
/// `agent` (password `host-secret`; it proxies [`VIRTUAL_DEVICES`]) and simulated CPEs
/// ([`CPE`]): its CWMP address and its NBI.
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
    file.cwmp.cpe_credentials = agents
        .iter()
        .map(|a| acs::daemon::CredentialEntry {
            username: a.to_string(),
            password: "host-secret".into(),
            device: Some(agent_device(a)),
            device_prefix: None,
            proxies: Some(VIRTUAL_DEVICES.into()),
        })
        .chain([acs::daemon::CredentialEntry {
            username: CPE.0.into(),
            password: CPE.1.into(),
            device: None,
            device_prefix: Some(SIM_PREFIX.into()),
            proxies: None,
        }])
        .collect();
    file.cwmp.session_timeout_secs = Some(300);
    // Unset: devices download from the ACS's own CWMP listener.
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

/// What one CWMP POST made by hand got back.
pub struct CwmpReply {
    /// The status code.
    pub status: u16,
    /// The cookies set (`name=value`, several joined with `; ` as a `Cookie` header has them),
    /// if any.
    pub cookie: Option<String>,
    /// The `WWW-Authenticate` challenges.
    pub challenges: Vec<String>,
    /// The body.
    pub body: bytes::Bytes,
}

/// One CWMP POST by hand to `addr`, with a session cookie and an `Authorization` header when
/// given.
pub async fn cwmp_post(
    http: &crate::http::Http,
    addr: SocketAddr,
    body: impl Into<bytes::Bytes>,
    cookie: Option<&str>,
    auth: Option<&str>,
) -> CwmpReply {
    let url = format!("http://{addr}/");
    let mut headers = vec![("content-type", "text/xml")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    let resp = http.send(hyper::Method::POST, &url, &headers, body).await;
    // Every cookie set (the ACS's, a load balancer's), as a `Cookie` header sends them back.
    let pairs: Vec<&str> = resp
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .collect();
    let cookie = (!pairs.is_empty()).then(|| pairs.join("; "));
    let challenges =
        resp.headers.get_all("www-authenticate").iter().filter_map(|h| h.to_str().ok().map(str::to_string)).collect();
    CwmpReply { status: resp.status, cookie, challenges, body: resp.body }
}

/// The Digest answer (cnonce `cnonce`, first use of the nonce) to the first Digest challenge
/// of `challenges`, for a POST to `/`.
pub fn digest(challenges: &[String], user: &str, pass: &str, cnonce: &str) -> String {
    challenges
        .iter()
        .find_map(|c| acs::auth::answer(c, "POST", "/", user, pass, cnonce))
        .unwrap_or_else(|| panic!("no Digest challenge in {challenges:?}"))
}

/// Plays `sim`'s side of an open session (cookie `cookie`) to its end: answers each request the
/// ACS sends as the device would, until the ACS ends the session. The names of the requests.
pub async fn finish_session(http: &crate::http::Http, addr: SocketAddr, sim: &SimCpe, cookie: &str) -> Vec<String> {
    let mut requests = Vec::new();
    let mut reply = cwmp_post(http, addr, bytes::Bytes::new(), Some(cookie), None).await;
    while reply.status == 200 {
        let env = cwmp::Envelope::decode(&reply.body, &cwmp::Limits::default()).expect("a request from the ACS");
        requests.push(format!("{:?}", env.body).split('(').next().unwrap_or_default().to_string());
        let answer = cwmp::Envelope::new(env.ns, env.header.id.clone(), sim.apply(&env.body)).encode();
        reply = cwmp_post(http, addr, answer, Some(cookie), None).await;
        assert!(requests.len() < 20, "a session that does not end: {requests:?}");
    }
    assert_eq!(reply.status, 204, "the session ends with 204: {:?}", reply.body);
    requests
}

/// The vendor extension the simulated hosts carry.
pub const VIRT: &str = "Device.X_VRGW-ORG_Virtualization.";

/// Makes `sim` a host that reports `uri` as its MigrationURI, with template `small` and, if
/// `running`, one instance running a vRGW.
pub fn sim_host(sim: &SimCpe, uri: &str, running: bool) {
    use cwmp::Value;
    sim.with_model_mut(|m| {
        let r = m.root_mut();
        r.set_internal(&format!("{VIRT}MigrationURI"), Value::String(uri.into())).expect("uri");
        let t = r.add_object_internal(&format!("{VIRT}Template.")).expect("template");
        r.set_internal(&format!("{VIRT}Template.{t}.Name"), Value::String("small".into())).expect("name");
        if !running {
            return;
        }
        let n = r.add_object_internal(&format!("{VIRT}Instance.")).expect("instance");
        let set = |r: &mut datamodel::Tree, leaf: &str, v: Value| {
            r.set_internal(&format!("{VIRT}Instance.{n}.{leaf}"), v).expect(leaf);
        };
        set(r, "Template", Value::String(format!("{VIRT}Template.{t}")));
        set(r, "Domain", Value::String("vrgw-src-1".into()));
        set(r, "SVLAN", Value::UnsignedInt(100));
        set(r, "CVLAN", Value::UnsignedInt(7));
    });
}
