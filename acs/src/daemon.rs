//! The ACS as one library call: [`FileConfig`] is the TOML file (the `acs` binary lays its flags
//! over it), [`FileConfig::resolve`] checks it once into a [`Config`], [`Listeners::bind`] opens
//! the sockets, and [`run`] serves CWMP, the NBI and the web form over one store until `shutdown`
//! completes; then every listener stops accepting and drains, and the store writes what it still
//! holds before `run` returns.
//!
//! ```no_run
//! # async fn f() -> Result<(), acs::daemon::Error> {
//! let config = acs::daemon::FileConfig::load("acs.toml".as_ref())?.resolve()?;
//! let listeners = acs::daemon::Listeners::bind(&config).await?;
//! acs::daemon::run(config, listeners, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpListener;

use crate::endpoint::{Acs, CpeAuth, EndpointConfig};
use crate::nbi::{Nbi, NbiConfig};
use crate::portal::{Portal, PortalConfig};

/// Why the ACS did not start or did not stop cleanly.
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
    /// A listening address could not be taken.
    #[error("{listener} {addr}: {source}")]
    Bind {
        /// `cwmp`, `nbi` or `portal`.
        listener: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened.
    #[error("store {at}: {reason}")]
    Store {
        /// The store's location.
        at: String,
        /// Why.
        reason: String,
    },
    /// The generated NBI token could not be kept.
    #[error("NBI token file {path}: {source}")]
    TokenFile {
        /// The token file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store could not write what it held at shutdown.
    #[error("writing the store at shutdown: {0}")]
    Flush(String),
}

/// The configuration file: every key optional, unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[cwmp]`.
    #[serde(default)]
    pub cwmp: CwmpSection,
    /// `[nbi]`.
    #[serde(default)]
    pub nbi: NbiSection,
    /// `[store]`.
    #[serde(default)]
    pub store: StoreSection,
    /// `[log]`.
    #[serde(default)]
    pub log: LogSection,
    /// `[portal]`.
    #[serde(default)]
    pub portal: PortalSection,
    /// `[[webhooks]]`: where device and task events are delivered.
    #[serde(default)]
    pub webhooks: Vec<crate::webhooks::Hook>,
    /// `[[hosts]]`: virtualization hosts registered for live and image-based migration.
    #[serde(default)]
    pub hosts: Vec<HostEntry>,
    /// `[scripts]`: provision and virtual-parameter scripts.
    #[serde(default)]
    pub scripts: ScriptsSection,
}

/// `[scripts]`: how provision and virtual-parameter scripts run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptsSection {
    /// The longest one run of a script may take, in ms (default 500; 1 to 60000).
    pub time_limit_ms: Option<u64>,
    /// The most memory one run may hold, in MiB (default 32; 1 to 1024).
    pub memory_limit_mib: Option<usize>,
    /// The directory of the programs `ext()` calls (none: `ext()` faults its script).
    pub extensions_dir: Option<PathBuf>,
    /// How long an extension may take to answer, in ms (default 3000, GenieACS's).
    pub extension_timeout_ms: Option<u64>,
}

impl ScriptsSection {
    /// The settings, checked.
    pub fn settings(&self) -> Result<crate::script::Settings, String> {
        let time = self.time_limit_ms.unwrap_or(500);
        if !(1..=60_000).contains(&time) {
            return Err(format!("[scripts] time_limit_ms is from 1 to 60000, not {time}"));
        }
        let mib = self.memory_limit_mib.unwrap_or(32);
        if !(1..=1024).contains(&mib) {
            return Err(format!("[scripts] memory_limit_mib is from 1 to 1024, not {mib}"));
        }
        let ext_ms = self.extension_timeout_ms.unwrap_or(3000);
        if !(1..=60_000).contains(&ext_ms) {
            return Err(format!("[scripts] extension_timeout_ms is from 1 to 60000, not {ext_ms}"));
        }
        let extensions = match &self.extensions_dir {
            None => None,
            Some(d) if d.is_dir() => {
                Some(crate::script::ext::Extensions { dir: d.clone(), timeout: Duration::from_millis(ext_ms) })
            }
            Some(d) => return Err(format!("[scripts] extensions_dir {} is not a directory", d.display())),
        };
        Ok(crate::script::Settings {
            limits: crate::script::engine::Limits { time: Duration::from_millis(time), memory: mib << 20 },
            extensions,
            strategy: crate::script::Strategy::Merged,
        })
    }
}

/// `[[hosts]]`: a host agent's DeviceId and the libvirt URI its peers migrate to it through.
/// The ACS hands another host only these URIs, never what a host reports of itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// The host agent's DeviceId.
    pub device: String,
    /// Its libvirt URI for peers (e.g. `qemu+tls://host-1.dc.example/system`).
    pub migration_uri: String,
}

impl HostEntry {
    /// Checks the entry: both set, no control characters or spaces, the URI with a scheme.
    fn check(&self) -> Result<(), String> {
        let plain = |s: &str| !s.is_empty() && s.len() <= 1024 && !s.chars().any(|c| c.is_control() || c == ' ');
        if !plain(&self.device) {
            return Err(format!("device {:?} is not a DeviceId", self.device));
        }
        cwmp::DeviceId::check_key(&self.device, false)?;
        if !plain(&self.migration_uri) || !self.migration_uri.contains("://") {
            return Err(format!("migration_uri {:?} is not a libvirt URI (scheme://...)", self.migration_uri));
        }
        Ok(())
    }
}

/// `[portal]`: the customer web form.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalSection {
    /// Listen address, or "off" (default 0.0.0.0:8080).
    pub listen: Option<String>,
    /// How long a subscriber's log-in lasts (default 8).
    pub session_hours: Option<u64>,
    /// PEM certificate chain: the web form over TLS.
    pub tls_cert: Option<PathBuf>,
    /// Its PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Reverse proxies (addresses) whose `X-Forwarded-For` names the client that log-in
    /// failures are counted against; none by default (the header is then ignored).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// `[cwmp]`: the CPE-facing endpoint and connection requests.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CwmpSection {
    /// Default 0.0.0.0:7547.
    pub listen: Option<SocketAddr>,
    /// `digest` (the default: every CPE logs in with a credential bound to what it may speak
    /// for) or `none` (anyone may inform as any device; warned about at every start).
    pub cpe_auth: Option<String>,
    /// `[[cwmp.cpe_credentials]]`: credentials of the file (the NBI manages more in the store).
    #[serde(default)]
    pub cpe_credentials: Vec<CredentialEntry>,
    /// No longer accepted (a map of user to password that could inform as any device); kept
    /// only to name the replacement when an old file has it.
    #[serde(default)]
    pub credentials: Option<toml::Value>,
    /// Idle seconds after which a session is dropped (default 30).
    pub session_timeout_secs: Option<u64>,
    /// Largest accepted body (default 4 MiB).
    pub max_body_bytes: Option<usize>,
    /// No longer accepted (one connection-request password for every device); kept only to
    /// name the replacement when an old file has it.
    pub cr_username: Option<String>,
    /// See `cr_username`.
    pub cr_password: Option<String>,
    /// How long a connection request may take (default 3000).
    pub cr_timeout_ms: Option<u64>,
    /// Seconds a faulted preset channel is held back before its presets run again, doubled for
    /// each retry before (default 300, GenieACS's `cwmp.retryDelay`).
    pub retry_delay_secs: Option<u64>,
    /// Base URL devices download files from (default `http://CWMP_ADDR/files`).
    pub file_base_url: Option<String>,
    /// PEM certificate chain: CWMP over TLS.
    pub tls_cert: Option<PathBuf>,
    /// Its PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Reverse proxies (addresses: HAProxy in front of a fleet of nodes) whose
    /// `X-Forwarded-For` names the CPE that logs and refusals speak of; none by default.
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

/// One `[[cwmp.cpe_credentials]]`: a user name, its password, and exactly one of `device` (the
/// one DeviceId, `OUI-ProductClass-SerialNumber`, it may inform as) or `device_prefix` (every
/// DeviceId starting so, for a fleet provisioned with one secret).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialEntry {
    /// The user name.
    pub username: String,
    /// The password (kept only as its Digest secrets once read).
    pub password: String,
    /// The DeviceId it may inform as.
    pub device: Option<String>,
    /// The DeviceId prefix it may inform as.
    pub device_prefix: Option<String>,
    /// With `device` (a host's): the DeviceId prefix of the virtual devices the host proxies
    /// (say `00A0B1-vRGW-`); it may speak for those whose subscriber the ACS placed on it.
    pub proxies: Option<String>,
}

impl CredentialEntry {
    /// The credential, checked: a user name, a password of 8 characters or more, one scope.
    pub fn credential(&self) -> Result<crate::store::CpeCredential, String> {
        let scope = crate::nbi::credentials::scope(self.device.clone(), self.device_prefix.clone())?;
        crate::nbi::credentials::make(&self.username, &self.password, scope, self.proxies.clone())
    }
}

/// `[nbi]`: the northbound API.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NbiSection {
    /// Default 127.0.0.1:7557.
    pub listen: Option<SocketAddr>,
    /// Accepted bearer tokens (none: one is generated next to the database).
    #[serde(default)]
    pub tokens: Vec<String>,
}

/// `[store]`: the embedded SQLite file (the default), or a PostgreSQL database that several
/// ACS nodes share (`url`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The SQLite database (default `acs.db`); with `url`, only where the generated NBI token is
    /// kept.
    pub db: Option<PathBuf>,
    /// A PostgreSQL database, `postgres://user@host:port/database` (no password in it).
    pub url: Option<String>,
    /// The file holding the PostgreSQL password (first line; readable by its owner only).
    pub password_file: Option<PathBuf>,
    /// Connections this node keeps to PostgreSQL (default 16; 1 to 256).
    pub pool: Option<u32>,
    /// This node's name among the nodes on one PostgreSQL database (default: the host's name
    /// and the CWMP port); unique per node, the same across its restarts.
    pub node: Option<String>,
}

impl StoreSection {
    /// Where the store is, checked (the password read from its file).
    pub fn location(&self, db: &Path) -> Result<crate::store::Location, Error> {
        let Some(url) = &self.url else {
            if self.password_file.is_some() || self.pool.is_some() || self.node.is_some() {
                return Err(Error::Config("[store] password_file, pool and node go with url (PostgreSQL)".into()));
            }
            return Ok(crate::store::Location::Sqlite(db.to_path_buf()));
        };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::Config(format!("[store] url is postgres://user@host:port/database, not {url:?}")));
        }
        let pool = self.pool.unwrap_or(16);
        if !(1..=256).contains(&pool) {
            return Err(Error::Config(format!("[store] pool is from 1 to 256, not {pool}")));
        }
        let password = match &self.password_file {
            None => None,
            Some(path) => Some(read_secret(path).map_err(|e| Error::Config(format!("[store] password_file {e}")))?),
        };
        if self.node.as_deref().is_some_and(|n| n.is_empty() || n.len() > 200) {
            return Err(Error::Config("[store] node is a name of 1 to 200 characters".into()));
        }
        Ok(crate::store::Location::Postgres { url: url.clone(), password, pool, node: self.node.clone() })
    }
}

/// The first line of a file only its owner may read (a secret's file).
fn read_secret(path: &Path) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{}: readable by others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
    if line.is_empty() {
        return Err(format!("{}: empty", path.display()));
    }
    Ok(line)
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// `text` (default) or `json`.
    pub format: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(s: &str) -> Result<LogFormat, Error> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(Error::Config(format!("the log format is text or json, not {other:?}"))),
        }
    }
}

/// The ACS's settings, checked.
pub struct Config {
    /// The SQLite database (with PostgreSQL, where the generated NBI token is kept).
    pub db: PathBuf,
    /// Where the store is.
    pub store: crate::store::Location,
    /// CWMP listen address.
    pub cwmp_listen: SocketAddr,
    /// NBI listen address.
    pub nbi_listen: SocketAddr,
    /// `None`: no web form.
    pub portal_listen: Option<SocketAddr>,
    /// Its `file_base_url` is empty when [`Config::file_base_url`] is unset: [`run`] then fills it
    /// in from the CWMP listener's address.
    pub endpoint: EndpointConfig,
    /// Base URL devices download files from.
    pub file_base_url: Option<String>,
    /// The NBI's settings.
    pub nbi: NbiConfig,
    /// The web form's settings.
    pub portal: PortalConfig,
    /// CWMP over TLS.
    pub cwmp_tls: Option<tokio_rustls::TlsAcceptor>,
    /// The web form over TLS.
    pub portal_tls: Option<tokio_rustls::TlsAcceptor>,
    /// Where events are delivered.
    pub webhooks: Vec<crate::webhooks::Hook>,
    /// How log lines are written.
    pub log_format: LogFormat,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials and tokens stay out of logs.
        f.debug_struct("Config")
            .field("db", &self.db)
            .field("store", &self.store)
            .field("cwmp_listen", &self.cwmp_listen)
            .field("nbi_listen", &self.nbi_listen)
            .field("portal_listen", &self.portal_listen)
            .field("cwmp_tls", &self.cwmp_tls.is_some())
            .field("portal_tls", &self.portal_tls.is_some())
            .finish_non_exhaustive()
    }
}

impl FileConfig {
    /// Reads and parses the TOML file at `path`.
    pub fn load(path: &Path) -> Result<FileConfig, Error> {
        let file = |reason: String| Error::File { path: path.to_path_buf(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file(e.to_string()))?;
        toml::from_str(&text).map_err(|e| file(e.to_string()))
    }

    /// The settings, defaults filled in and checked. With no NBI token configured, the one kept
    /// next to the database (`DB.nbi-token`, mode 0600) is used, generated on the first start.
    pub fn resolve(self) -> Result<Config, Error> {
        let db = self.store.db.clone().unwrap_or_else(|| PathBuf::from("acs.db"));
        let store = self.store.location(&db)?;
        let log_format = LogFormat::parse(self.log.format.as_deref().unwrap_or("text"))?;
        let mut tokens = self.nbi.tokens;
        if tokens.is_empty() {
            tokens.push(generated_token(&db)?);
        }
        if self.cwmp.credentials.is_some() {
            return Err(Error::Config(
                "[cwmp] credentials (user = password, any device) is no longer accepted: give each \
                 credential the device it may speak for in [[cwmp.cpe_credentials]] (username, password, \
                 device or device_prefix), or manage them through the NBI (PUT /cpe-credentials/USER)"
                    .into(),
            ));
        }
        if self.cwmp.cr_username.is_some() || self.cwmp.cr_password.is_some() {
            return Err(Error::Config(
                "[cwmp] cr_username/cr_password (one connection-request password for every device) is no \
                 longer accepted: the ACS sets credentials of each device's own at its BOOTSTRAP and BOOT"
                    .into(),
            ));
        }
        let cpe_auth = match self.cwmp.cpe_auth.as_deref().unwrap_or("digest") {
            "digest" => CpeAuth::Required,
            "none" => CpeAuth::Off,
            other => return Err(Error::Config(format!("[cwmp] cpe_auth is \"digest\" or \"none\", not {other:?}"))),
        };
        let mut credentials = Vec::new();
        for (i, c) in self.cwmp.cpe_credentials.iter().enumerate() {
            let made =
                c.credential().map_err(|e| Error::Config(format!("[[cwmp.cpe_credentials]] #{}: {e}", i + 1)))?;
            if credentials.iter().any(|k: &crate::store::CpeCredential| k.username == made.username) {
                return Err(Error::Config(format!("[[cwmp.cpe_credentials]]: user {:?} twice", made.username)));
            }
            credentials.push(made);
        }
        let portal_listen: Option<SocketAddr> = match self.portal.listen.as_deref().unwrap_or("0.0.0.0:8080") {
            "off" => None,
            a => Some(a.parse().map_err(|e| Error::Config(format!("the web form's listen address {a:?}: {e}")))?),
        };
        let portal_tls = tls(self.portal.tls_cert, self.portal.tls_key, "the web form's")?;
        if let Some(a) = portal_listen.filter(|a| portal_tls.is_none() && !a.ip().is_loopback()) {
            tracing::warn!(
                "the customer web form is served over plain HTTP on {a}: browsers keep its Secure session cookies \
                 only over HTTPS (or on localhost), so log-ins will not stick; give it a certificate and key \
                 (--portal-tls-cert/--portal-tls-key) or put a TLS reverse proxy in front"
            );
        }
        let mut hosts = std::collections::BTreeMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            h.check().map_err(|e| Error::Config(format!("[[hosts]] #{}: {e}", i + 1)))?;
            if hosts.insert(h.device.clone(), h.migration_uri.clone()).is_some() {
                return Err(Error::Config(format!("[[hosts]]: device {:?} twice", h.device)));
            }
        }
        let nbi = NbiConfig {
            tokens,
            cr_timeout: Duration::from_millis(self.cwmp.cr_timeout_ms.unwrap_or(3000)),
            hosts: Arc::new(hosts),
        };
        let portal = PortalConfig {
            session_ttl: Duration::from_secs(3600 * self.portal.session_hours.unwrap_or(8)),
            cr_timeout: nbi.cr_timeout,
            trusted_proxies: self.portal.trusted_proxies,
            ..Default::default()
        };
        Ok(Config {
            db,
            store,
            cwmp_listen: self.cwmp.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7547))),
            nbi_listen: self.nbi.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7557))),
            portal_listen,
            endpoint: EndpointConfig {
                cpe_auth,
                credentials,
                tls: self.cwmp.tls_cert.is_some(),
                session_timeout: Duration::from_secs(self.cwmp.session_timeout_secs.unwrap_or(30)),
                max_body: self.cwmp.max_body_bytes.unwrap_or(4 << 20),
                file_base_url: String::new(),
                retry_delay_secs: i64::try_from(self.cwmp.retry_delay_secs.unwrap_or(300)).unwrap_or(i64::MAX),
                scripts: self.scripts.settings().map_err(Error::Config)?,
                trusted_proxies: self.cwmp.trusted_proxies,
            },
            file_base_url: self.cwmp.file_base_url,
            nbi,
            portal,
            cwmp_tls: tls(self.cwmp.tls_cert, self.cwmp.tls_key, "CWMP's")?,
            portal_tls,
            webhooks: self.webhooks,
            log_format,
        })
    }
}

fn tls(cert: Option<PathBuf>, key: Option<PathBuf>, whose: &str) -> Result<Option<tokio_rustls::TlsAcceptor>, Error> {
    match (cert, key) {
        (Some(c), Some(k)) => crate::tls::acceptor(&c, &k).map(Some).map_err(Error::Config),
        (None, None) => Ok(None),
        _ => Err(Error::Config(format!("{whose} TLS needs both a certificate and a key"))),
    }
}

/// The NBI token kept in `DB.nbi-token`, written (owner-only) on the first start.
fn generated_token(db: &Path) -> Result<String, Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = db.with_extension("nbi-token");
    let token = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let t = crate::endpoint::random_hex(24);
            let keep = |path: &Path| -> std::io::Result<()> {
                let mut f =
                    std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
                f.write_all(t.as_bytes())
            };
            keep(&path).map_err(|source| Error::TokenFile { path: path.clone(), source })?;
            t
        }
    };
    tracing::warn!(file = %path.display(), "no NBI token configured: using the generated one in this file");
    Ok(token)
}

/// The ACS's sockets, bound before [`run`] so that a caller knows the addresses (port 0 works).
#[derive(Debug)]
pub struct Listeners {
    /// CPEs.
    pub cwmp: TcpListener,
    /// The northbound API.
    pub nbi: TcpListener,
    /// The web form, if served.
    pub portal: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses `config` names.
    pub async fn bind(config: &Config) -> Result<Listeners, Error> {
        async fn one(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, Error> {
            TcpListener::bind(addr).await.map_err(|source| Error::Bind { listener, addr, source })
        }
        Ok(Listeners {
            cwmp: one("cwmp", config.cwmp_listen).await?,
            nbi: one("nbi", config.nbi_listen).await?,
            portal: match config.portal_listen {
                Some(a) => Some(one("portal", a).await?),
                None => None,
            },
        })
    }

    /// `cwmp=ADDR nbi=ADDR portal=ADDR|off`, as the `acs` binary prints it.
    pub fn describe(&self) -> String {
        let addr = |l: &TcpListener| l.local_addr().map_or_else(|e| format!("?({e})"), |a| a.to_string());
        format!(
            "cwmp={} nbi={} portal={}",
            addr(&self.cwmp),
            addr(&self.nbi),
            self.portal.as_ref().map_or_else(|| "off".to_string(), addr)
        )
    }
}

/// How long CWMP sessions open at shutdown get to finish.
pub const SESSION_DRAIN: Duration = Duration::from_secs(10);

/// Serves until `shutdown` completes; then the NBI and the web form stop accepting, new CWMP
/// sessions are refused (503, `Retry-After`) while the open ones finish (up to
/// [`SESSION_DRAIN`]), every listener drains, and the store is written.
pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let Config { store: at, mut endpoint, file_base_url, nbi, portal, cwmp_tls, portal_tls, webhooks, .. } = config;
    let cwmp_addr = listeners.cwmp.local_addr().map_err(|source| Error::Bind {
        listener: "cwmp",
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    // Parameter-cache rows and events are group-committed every few milliseconds.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "acs".into());
    let node = format!("{}:{}", host.trim(), cwmp_addr.port());
    let store =
        crate::store::open(&at, &node).map_err(|e| Error::Store { at: at.to_string(), reason: e.to_string() })?;
    endpoint.file_base_url = file_base_url.unwrap_or_else(|| {
        if cwmp_addr.ip().is_unspecified() {
            tracing::warn!(
                "file_base_url is not set and the CWMP address is unspecified: devices get {cwmp_addr} in Download URLs"
            );
        }
        format!("http://{cwmp_addr}/files")
    });
    match endpoint.cpe_auth {
        CpeAuth::Off => tracing::warn!(
            "CPE authentication is OFF ([cwmp] cpe_auth = \"none\"): anyone reaching {cwmp_addr} may inform as any \
             device, read what the ACS sends it and report values in its name"
        ),
        CpeAuth::Required => {
            let stored = store.cpe_credentials().map(|c| c.len()).unwrap_or(0);
            if endpoint.credentials.is_empty() && stored == 0 {
                tracing::warn!(
                    "no CPE credentials yet: every CPE is refused until some are added ([[cwmp.cpe_credentials]] in \
                     the configuration file, or PUT /cpe-credentials/USER on the NBI)"
                );
            } else {
                tracing::info!(file = endpoint.credentials.len(), store = stored, "CPE credentials");
            }
        }
    }
    // Every listener's connection cap, the store and some room: more than the usual soft limit
    // of 1,024 descriptors, which a flood would otherwise reach before the caps.
    let acs = Acs::new(store.clone(), endpoint, crate::webhooks::start(webhooks));
    store.set_metrics(acs.metrics.store.clone());
    // Tasks finished by other nodes wake this node's waiters too.
    let weak = Arc::downgrade(&acs);
    store.watch_tasks(Arc::new(move || {
        if let Some(acs) = weak.upgrade() {
            acs.task_events.notify_waiters();
        }
    }));
    let want = (acs.limits().max_connections + 2 * http_shell::Limits::default().max_connections + 256) as u64;
    match http_shell::raise_nofile(want) {
        Ok(n) if n >= want => tracing::debug!(nofile = n, "open-file limit"),
        Ok(n) => tracing::warn!(nofile = n, want, "the open-file limit stays below the listeners' connection caps"),
        Err(e) => tracing::warn!("the open-file limit could not be read or raised: {e}"),
    }
    let settings = crate::migration::Settings { timeout: nbi.cr_timeout, hosts: nbi.hosts.clone() };
    match crate::migration::resume_all(acs.clone(), settings.clone()) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(migrations = n, "taking up migrations the previous run left unfinished"),
        Err(e) => tracing::error!("reading the migrations left running: {e}"),
    }
    // On a cluster, a node that dies mid-migration leaves it to the others.
    let sweeper = {
        let (acs, settings) = (acs.clone(), settings);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(crate::migration::SWEEP_EVERY).await;
                if let Err(e) = crate::migration::resume_all(acs.clone(), settings.clone()) {
                    tracing::warn!("looking for migrations nobody orchestrates: {e}");
                }
            }
        })
    };
    let nbi = Nbi::new(acs.clone(), nbi);
    let portal = Portal::new(acs.clone(), portal);
    if cwmp_tls.is_some() {
        tracing::info!("CWMP over TLS");
    }
    tracing::info!(listening = %listeners.describe(), store = %at, "ACS started");
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // The CWMP listener stops after the sessions open at shutdown ended; the others at once.
    let (stop_cwmp, cwmp_rx) = tokio::sync::watch::channel(false);
    let (stop_others, others_rx) = tokio::sync::watch::channel(false);
    let Listeners { cwmp: cl, nbi: nl, portal: pl } = listeners;
    let served = [
        Some(("cwmp", tokio::spawn(acs.clone().serve_tls(cl, cwmp_tls, stopped(cwmp_rx))))),
        Some(("nbi", tokio::spawn(nbi.serve(nl, stopped(others_rx.clone()))))),
        pl.map(|l| ("portal", tokio::spawn(portal.serve(l, portal_tls, stopped(others_rx))))),
    ];
    shutdown.await;
    acs.stop_new_sessions();
    let _ = stop_others.send(true);
    let open = acs.open_sessions();
    if open > 0 {
        tracing::info!(sessions = open, "stopping: new CWMP sessions refused, letting the open ones finish");
        if !acs.sessions_ended(SESSION_DRAIN).await {
            tracing::warn!(
                sessions = acs.open_sessions(),
                "stopping: CWMP sessions still open after {SESSION_DRAIN:?}, cut (their tasks stay queued)"
            );
        }
    }
    tracing::info!("stopping: draining the listeners");
    let _ = stop_cwmp.send(true);
    for (name, listener) in served.into_iter().flatten() {
        match listener.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("{name} listener: {e}"),
            Err(e) => tracing::error!("{name} listener: {e}"),
        }
    }
    sweeper.abort();
    store.flush().map_err(|e| Error::Flush(e.to_string()))?;
    tracing::info!("ACS stopped; the store is written");
    Ok(())
}
