//! `acs`: the CWMP endpoint and the northbound API over one SQLite store.
//!
//! Configuration comes from a TOML file (`--config`), with command-line overrides. On start it
//! prints `listening cwmp=ADDR nbi=ADDR` on stdout.

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
    webhooks: Vec<acs::webhooks::Hook>,
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
    let opts = Opts::parse();
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
        let acs = Acs::new(store, endpoint, acs::webhooks::start(hooks));
        let nbi = Nbi::new(acs.clone(), nbi_config);
        println!("listening cwmp={ca} nbi={na}");
        if tls.is_some() {
            tracing::info!("CWMP over TLS");
        }
        tracing::info!(cwmp = %ca, nbi = %na, db = %db.display(), "ACS started");
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        let cwmp = tokio::spawn(acs.serve_tls(cl, tls, std::future::pending()));
        let nbi = tokio::spawn(nbi.serve(nl, std::future::pending()));
        stop.await;
        cwmp.abort();
        nbi.abort();
        tracing::info!("ACS stopped");
        Ok(())
    })
}
