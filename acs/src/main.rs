//! `acs`: the CWMP endpoint and the northbound API over one SQLite store.
//!
//! Configuration comes from a TOML file (`--config`), with command-line overrides. On start it
//! prints `listening cwmp=ADDR nbi=ADDR portal=ADDR` on stdout.
//!
//! `acs subscriber add|passwd|delete|list` manages the customer web form's accounts through a
//! running ACS's NBI.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use acs::endpoint::{Acs, EndpointConfig};
use acs::nbi::{Nbi, NbiConfig};
use acs::store::SqliteStore;
use clap::Parser;
use serde::Deserialize;

// glibc's allocator took about a seventh of the ACS's instructions under session load (many small
// strings freed on other threads); mimalloc does the same work in a fraction of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "acs", version, about = "TR-069 ACS with a GenieACS-compatible northbound API")]
struct Opts {
    #[command(subcommand)]
    command: Option<Command>,
    /// Customer web form listen address (default 0.0.0.0:8080; "off" serves none).
    #[arg(long)]
    portal_listen: Option<String>,
    /// PEM certificate chain: serve the web form over TLS.
    #[arg(long)]
    portal_tls_cert: Option<PathBuf>,
    /// PEM private key for --portal-tls-cert.
    #[arg(long)]
    portal_tls_key: Option<PathBuf>,
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// CWMP listen address.
    #[arg(long)]
    cwmp_listen: Option<SocketAddr>,
    /// NBI listen address.
    #[arg(long)]
    nbi_listen: Option<SocketAddr>,
    /// SQLite database.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long)]
    log_format: Option<String>,
    /// An NBI bearer token (repeatable).
    #[arg(long = "nbi-token")]
    nbi_tokens: Vec<String>,
    /// Username:password CPEs authenticate with (repeatable).
    #[arg(long = "cpe-credentials")]
    cpe_credentials: Vec<String>,
    /// Username:password for connection requests to devices without their own.
    #[arg(long)]
    cr_credentials: Option<String>,
    /// Base URL of the file server devices download from.
    #[arg(long)]
    file_base_url: Option<String>,
    /// PEM certificate chain: serve CWMP over TLS.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Customer web-form accounts, through a running ACS's NBI.
    Subscriber {
        /// The NBI's URL.
        #[arg(long, default_value = "http://127.0.0.1:7557")]
        nbi: String,
        /// NBI bearer token (default: $ACS_NBI_TOKEN, or the file given by --token-file).
        #[arg(long)]
        token: Option<String>,
        /// A file holding the NBI token (as the ACS generates next to its database).
        #[arg(long)]
        token_file: Option<PathBuf>,
        #[command(subcommand)]
        action: SubscriberAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum SubscriberAction {
    /// Creates an account for subscriber ID (the Subscriber of their vRGW instance); the
    /// password is read from standard input (one line).
    Add {
        /// Subscriber id.
        id: String,
    },
    /// Sets a new password (read from standard input); their open sessions end.
    Passwd {
        /// Subscriber id.
        id: String,
    },
    /// Removes the account, its profile and its sessions.
    Delete {
        /// Subscriber id.
        id: String,
    },
    /// Lists the accounts, where each one's vRGW is, and their profiles.
    List,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    cwmp: CwmpSection,
    #[serde(default)]
    nbi: NbiSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    log: LogSection,
    #[serde(default)]
    portal: PortalSection,
    #[serde(default)]
    webhooks: Vec<acs::webhooks::Hook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalSection {
    /// Listen address, or "off".
    listen: Option<String>,
    session_hours: Option<u64>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CwmpSection {
    listen: Option<SocketAddr>,
    /// username -> password
    #[serde(default)]
    credentials: HashMap<String, String>,
    session_timeout_secs: Option<u64>,
    max_body_bytes: Option<usize>,
    cr_username: Option<String>,
    cr_password: Option<String>,
    cr_timeout_ms: Option<u64>,
    file_base_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NbiSection {
    listen: Option<SocketAddr>,
    #[serde(default)]
    tokens: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    db: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogSection {
    format: Option<String>,
}

fn main() -> ExitCode {
    let mut opts = Opts::parse();
    if let Some(Command::Subscriber { nbi, token, token_file, action }) = opts.command.take() {
        return match subscriber_command(&nbi, token, token_file, action) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("acs subscriber: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let file = match &opts.config {
        Some(p) => match std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| toml::from_str::<FileConfig>(&t).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("acs: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => FileConfig::default(),
    };
    let format = opts.log_format.clone().or(file.log.format.clone()).unwrap_or_else(|| "text".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match format.as_str() {
        "json" => tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init(),
        "text" => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        other => {
            eprintln!("acs: --log-format is text or json, not {other:?}");
            return ExitCode::from(2);
        }
    }
    match run(opts, file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("acs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn subscriber_command(
    nbi: &str,
    token: Option<String>,
    token_file: Option<PathBuf>,
    action: SubscriberAction,
) -> Result<(), String> {
    let token = match (token, token_file) {
        (Some(t), _) => t,
        (None, Some(f)) => std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?.trim().to_string(),
        (None, None) => std::env::var("ACS_NBI_TOKEN")
            .map_err(|_| "no NBI token: give --token, --token-file or $ACS_NBI_TOKEN".to_string())?,
    };
    let read_password = || -> Result<String, String> {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| format!("reading the password: {e}"))?;
        let p = line.trim_end_matches(['\n', '\r']).to_string();
        if p.chars().count() < 8 {
            return Err("the password (on standard input) needs at least 8 characters".into());
        }
        Ok(p)
    };
    let (method, path, body) = match &action {
        SubscriberAction::Add { id } | SubscriberAction::Passwd { id } => (
            "PUT",
            format!("/subscribers/{}", acs::nbi::encode(id)),
            serde_json::json!({"password": read_password()?}).to_string(),
        ),
        SubscriberAction::Delete { id } => ("DELETE", format!("/subscribers/{}", acs::nbi::encode(id)), String::new()),
        SubscriberAction::List => ("GET", "/subscribers".to_string(), String::new()),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let (status, text) = rt.block_on(acs::nbi::call(nbi, &token, method, &path, body))?;
    if !(200..300).contains(&status) {
        return Err(format!("{method} {path}: HTTP {status}: {}", text.trim()));
    }
    match action {
        SubscriberAction::Add { id } => println!("subscriber {id}: account ready"),
        SubscriberAction::Passwd { id } => println!("subscriber {id}: password changed"),
        SubscriberAction::Delete { id } => println!("subscriber {id}: removed"),
        SubscriberAction::List => println!("{text}"),
    }
    Ok(())
}

fn split_pair(s: &str, what: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .ok_or_else(|| format!("{what} is user:password, got {s:?}"))
}

fn run(opts: Opts, file: FileConfig) -> Result<(), String> {
    let db = opts.db.or(file.store.db).unwrap_or_else(|| PathBuf::from("acs.db"));
    let cwmp_listen = opts
        .cwmp_listen
        .or(file.cwmp.listen)
        .unwrap_or_else(|| "0.0.0.0:7547".parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 7547))));
    let nbi_listen = opts.nbi_listen.or(file.nbi.listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7557)));
    let mut credentials = file.cwmp.credentials;
    for c in &opts.cpe_credentials {
        let (u, p) = split_pair(c, "--cpe-credentials")?;
        credentials.insert(u, p);
    }
    let (cr_username, cr_password) = match &opts.cr_credentials {
        Some(c) => split_pair(c, "--cr-credentials")?,
        None => (file.cwmp.cr_username.unwrap_or_default(), file.cwmp.cr_password.unwrap_or_default()),
    };
    let mut tokens = file.nbi.tokens;
    tokens.extend(opts.nbi_tokens);
    if tokens.is_empty() {
        let token_file = db.with_extension("nbi-token");
        let token = match std::fs::read_to_string(&token_file) {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = acs::endpoint::random_hex(24);
                std::fs::write(&token_file, &t).map_err(|e| format!("{}: {e}", token_file.display()))?;
                t
            }
        };
        tracing::warn!(file = %token_file.display(), "no NBI token configured: using the generated one in this file");
        tokens.push(token);
    }
    if credentials.is_empty() {
        tracing::warn!("no CPE credentials configured: CPEs are not authenticated");
    }
    let store = Arc::new(SqliteStore::open(&db).map_err(|e| e.to_string())?);
    // Parameter-cache rows and events are group-committed every few milliseconds.
    store.start_flusher(Duration::from_millis(3));
    let file_base_url = opts.file_base_url.or(file.cwmp.file_base_url);
    let mut endpoint = EndpointConfig {
        credentials,
        session_timeout: Duration::from_secs(file.cwmp.session_timeout_secs.unwrap_or(30)),
        max_body: file.cwmp.max_body_bytes.unwrap_or(4 << 20),
        file_base_url: String::new(),
    };
    let nbi_config = NbiConfig {
        tokens,
        cr_timeout: Duration::from_millis(file.cwmp.cr_timeout_ms.unwrap_or(3000)),
        cr_username,
        cr_password,
    };
    let hooks = file.webhooks;
    let portal_listen: Option<SocketAddr> =
        match opts.portal_listen.clone().or(file.portal.listen.clone()).as_deref().unwrap_or("0.0.0.0:8080") {
            "off" => None,
            a => Some(a.parse().map_err(|e| format!("--portal-listen {a:?}: {e}"))?),
        };
    let portal_tls = match (
        opts.portal_tls_cert.clone().or(file.portal.tls_cert.clone()),
        opts.portal_tls_key.clone().or(file.portal.tls_key.clone()),
    ) {
        (Some(c), Some(k)) => Some(acs::tls::acceptor(&c, &k)?),
        (None, None) => None,
        _ => return Err("the web form's TLS needs both a certificate and a key".into()),
    };
    if let Some(a) = portal_listen.filter(|a| portal_tls.is_none() && !a.ip().is_loopback()) {
        tracing::warn!(
            "the customer web form is served over plain HTTP on {a}: browsers keep its Secure session cookies only \
             over HTTPS (or on localhost), so log-ins will not stick; give it --portal-tls-cert/--portal-tls-key or \
             put a TLS reverse proxy in front"
        );
    }
    let portal_config = acs::portal::PortalConfig {
        session_ttl: Duration::from_secs(3600 * file.portal.session_hours.unwrap_or(8)),
        cr_username: nbi_config.cr_username.clone(),
        cr_password: nbi_config.cr_password.clone(),
        cr_timeout: nbi_config.cr_timeout,
        ..Default::default()
    };
    let tls = match (opts.tls_cert.or(file.cwmp.tls_cert), opts.tls_key.or(file.cwmp.tls_key)) {
        (Some(c), Some(k)) => Some(acs::tls::acceptor(&c, &k)?),
        (None, None) => None,
        _ => return Err("TLS needs both a certificate and a key".into()),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = opts.workers.filter(|w| *w > 0) {
        builder.worker_threads(w);
    }
    let rt = builder.enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let cl = tokio::net::TcpListener::bind(cwmp_listen).await.map_err(|e| format!("{cwmp_listen}: {e}"))?;
        let nl = tokio::net::TcpListener::bind(nbi_listen).await.map_err(|e| format!("{nbi_listen}: {e}"))?;
        let (ca, na) = (cl.local_addr().map_err(|e| e.to_string())?, nl.local_addr().map_err(|e| e.to_string())?);
        endpoint.file_base_url = file_base_url.unwrap_or_else(|| {
            if ca.ip().is_unspecified() {
                tracing::warn!(
                    "file_base_url is not set and the CWMP address is unspecified: devices get {ca} in Download URLs"
                );
            }
            format!("http://{ca}/files")
        });
        let pl = match portal_listen {
            Some(a) => Some(tokio::net::TcpListener::bind(a).await.map_err(|e| format!("portal {a}: {e}"))?),
            None => None,
        };
        let pa = match &pl {
            Some(l) => l.local_addr().map_err(|e| e.to_string())?.to_string(),
            None => "off".into(),
        };
        let acs = Acs::new(store, endpoint, acs::webhooks::start(hooks));
        let nbi = Nbi::new(acs.clone(), nbi_config);
        let portal = acs::portal::Portal::new(acs.clone(), portal_config);
        println!("listening cwmp={ca} nbi={na} portal={pa}");
        if tls.is_some() {
            tracing::info!("CWMP over TLS");
        }
        tracing::info!(cwmp = %ca, nbi = %na, portal = %pa, db = %db.display(), "ACS started");
        // Ctrl-C or SIGTERM: every listener stops accepting and drains (http_shell::serve).
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let cwmp = tokio::spawn(acs.serve_tls(cl, tls, stopped(stop_rx.clone())));
        let nbi = tokio::spawn(nbi.serve(nl, stopped(stop_rx.clone())));
        let portal = pl.map(|l| tokio::spawn(portal.serve(l, portal_tls, stopped(stop_rx.clone()))));
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping: draining the listeners");
        let _ = stop_tx.send(true);
        for listener in [Some(cwmp), Some(nbi), portal].into_iter().flatten() {
            if let Ok(Err(e)) = listener.await {
                tracing::error!("listener: {e}");
            }
        }
        tracing::info!("ACS stopped");
        Ok(())
    })
}
