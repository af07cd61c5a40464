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

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpListener;

use crate::endpoint::{Acs, EndpointConfig};
use crate::nbi::{Nbi, NbiConfig};
use crate::portal::{Portal, PortalConfig};
use crate::store::SqliteStore;

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
    #[error("store {path}: {reason}")]
    Store {
        /// The database file.
        path: PathBuf,
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
}

/// `[cwmp]`: the CPE-facing endpoint and connection requests.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CwmpSection {
    /// Default 0.0.0.0:7547.
    pub listen: Option<SocketAddr>,
    /// username -> password
    #[serde(default)]
    pub credentials: HashMap<String, String>,
    /// Idle seconds after which a session is dropped (default 30).
    pub session_timeout_secs: Option<u64>,
    /// Largest accepted body (default 4 MiB).
    pub max_body_bytes: Option<usize>,
    /// Connection-request user name for devices without their own.
    pub cr_username: Option<String>,
    /// Its password.
    pub cr_password: Option<String>,
    /// How long a connection request may take (default 3000).
    pub cr_timeout_ms: Option<u64>,
    /// Base URL devices download files from (default `http://CWMP_ADDR/files`).
    pub file_base_url: Option<String>,
    /// PEM certificate chain: CWMP over TLS.
    pub tls_cert: Option<PathBuf>,
    /// Its PEM private key.
    pub tls_key: Option<PathBuf>,
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

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// The SQLite database (default `acs.db`).
    pub db: Option<PathBuf>,
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
    /// The SQLite database.
    pub db: PathBuf,
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
        let db = self.store.db.unwrap_or_else(|| PathBuf::from("acs.db"));
        let log_format = LogFormat::parse(self.log.format.as_deref().unwrap_or("text"))?;
        let mut tokens = self.nbi.tokens;
        if tokens.is_empty() {
            tokens.push(generated_token(&db)?);
        }
        if self.cwmp.credentials.is_empty() {
            tracing::warn!("no CPE credentials configured: CPEs are not authenticated");
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
        let nbi = NbiConfig {
            tokens,
            cr_timeout: Duration::from_millis(self.cwmp.cr_timeout_ms.unwrap_or(3000)),
            cr_username: self.cwmp.cr_username.unwrap_or_default(),
            cr_password: self.cwmp.cr_password.unwrap_or_default(),
        };
        let portal = PortalConfig {
            session_ttl: Duration::from_secs(3600 * self.portal.session_hours.unwrap_or(8)),
            cr_username: nbi.cr_username.clone(),
            cr_password: nbi.cr_password.clone(),
            cr_timeout: nbi.cr_timeout,
            ..Default::default()
        };
        Ok(Config {
            db,
            cwmp_listen: self.cwmp.listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7547))),
            nbi_listen: self.nbi.listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 7557))),
            portal_listen,
            endpoint: EndpointConfig {
                credentials: self.cwmp.credentials,
                session_timeout: Duration::from_secs(self.cwmp.session_timeout_secs.unwrap_or(30)),
                max_body: self.cwmp.max_body_bytes.unwrap_or(4 << 20),
                file_base_url: String::new(),
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
    let Config { db, mut endpoint, file_base_url, nbi, portal, cwmp_tls, portal_tls, webhooks, .. } = config;
    let store = Arc::new(SqliteStore::open(&db).map_err(|e| Error::Store { path: db.clone(), reason: e.to_string() })?);
    // Parameter-cache rows and events are group-committed every few milliseconds.
    store.start_flusher(Duration::from_millis(3));
    let cwmp_addr = listeners.cwmp.local_addr().map_err(|source| Error::Bind {
        listener: "cwmp",
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    endpoint.file_base_url = file_base_url.unwrap_or_else(|| {
        if cwmp_addr.ip().is_unspecified() {
            tracing::warn!(
                "file_base_url is not set and the CWMP address is unspecified: devices get {cwmp_addr} in Download URLs"
            );
        }
        format!("http://{cwmp_addr}/files")
    });
    let acs = Acs::new(store.clone(), endpoint, crate::webhooks::start(webhooks));
    let nbi = Nbi::new(acs.clone(), nbi);
    let portal = Portal::new(acs.clone(), portal);
    if cwmp_tls.is_some() {
        tracing::info!("CWMP over TLS");
    }
    tracing::info!(listening = %listeners.describe(), db = %db.display(), "ACS started");
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
    store.flush().map_err(|e| Error::Flush(e.to_string()))?;
    tracing::info!("ACS stopped; the store is written");
    Ok(())
}
