//! `acs`: the CWMP endpoint and the northbound API over one SQLite store.
//!
//! Configuration comes from a TOML file (`--config`), with command-line overrides; this file
//! parses both and calls [`acs::daemon::run`]. On start it prints `listening cwmp=ADDR nbi=ADDR
//! portal=ADDR` on stdout; `--check-config` checks the configuration and exits.
//!
//! `acs subscriber add|passwd|delete|list` manages the customer web form's accounts through a
//! running ACS's NBI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use acs::daemon::{Config, FileConfig, Listeners, LogFormat};
use clap::Parser;

// glibc's allocator took about a seventh of the ACS's instructions under session load (many small
// strings freed on other threads); mimalloc does the same work in a fraction of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "acs", version, about = "TR-069 ACS with a GenieACS-compatible northbound API")]
struct Opts {
    #[command(subcommand)]
    command: Option<Command>,
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check the configuration (file and flags), print it without secrets, and exit.
    #[arg(long)]
    check_config: bool,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    #[command(flatten)]
    overrides: Overrides,
}

/// Flags that override the configuration file's keys.
#[derive(Debug, clap::Args)]
struct Overrides {
    /// Customer web form listen address (default 0.0.0.0:8080; "off" serves none).
    #[arg(long)]
    portal_listen: Option<String>,
    /// PEM certificate chain: serve the web form over TLS.
    #[arg(long)]
    portal_tls_cert: Option<PathBuf>,
    /// PEM private key for --portal-tls-cert.
    #[arg(long)]
    portal_tls_key: Option<PathBuf>,
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
    /// Base URL of the file server devices download from.
    #[arg(long)]
    file_base_url: Option<String>,
    /// PEM certificate chain: serve CWMP over TLS.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Customer web-form accounts, through a running ACS's NBI.
    Subscriber {
        /// The NBI's URL.
        #[arg(long, default_value = "http://127.0.0.1:7557")]
        nbi: String,
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

fn main() -> ExitCode {
    let mut opts = Opts::parse();
    if let Some(Command::Subscriber { nbi, token_file, action }) = opts.command.take() {
        return match subscriber_command(&nbi, token_file, action) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("acs subscriber: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let file = match &opts.config {
        Some(p) => match FileConfig::load(p) {
            Ok(c) => {
                use std::os::unix::fs::PermissionsExt;
                if std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                    eprintln!(
                        "acs: warning: {} can be read by others and holds secrets (NBI tokens, CPE passwords): \
                         chmod 600 it",
                        p.display()
                    );
                }
                c
            }
            Err(e) => {
                eprintln!("acs: {e}");
                return ExitCode::from(2);
            }
        },
        None => FileConfig::default(),
    };
    let file = match overlay(opts.overrides, file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("acs: {e}");
            return ExitCode::from(2);
        }
    };
    let format = match LogFormat::parse(file.log.format.as_deref().unwrap_or("text")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("acs: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    match format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let check_only = opts.check_config;
    let config = match file.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("acs: {e}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("configuration ok: {config:?}");
        return ExitCode::SUCCESS;
    }
    match serve(config, opts.workers) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("acs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The flags laid over the file's settings (a flag wins).
fn overlay(o: Overrides, mut f: FileConfig) -> Result<FileConfig, String> {
    f.store.db = o.db.or(f.store.db);
    f.cwmp.listen = o.cwmp_listen.or(f.cwmp.listen);
    f.nbi.listen = o.nbi_listen.or(f.nbi.listen);
    f.log.format = o.log_format.or(f.log.format);
    f.cwmp.file_base_url = o.file_base_url.or(f.cwmp.file_base_url);
    f.cwmp.tls_cert = o.tls_cert.or(f.cwmp.tls_cert);
    f.cwmp.tls_key = o.tls_key.or(f.cwmp.tls_key);
    f.portal.listen = o.portal_listen.or(f.portal.listen);
    f.portal.tls_cert = o.portal_tls_cert.or(f.portal.tls_cert);
    f.portal.tls_key = o.portal_tls_key.or(f.portal.tls_key);
    Ok(f)
}

/// Binds, prints `listening cwmp=ADDR nbi=ADDR portal=ADDR|off`, and runs until Ctrl-C or
/// SIGTERM.
fn serve(config: Config, workers: Option<usize>) -> Result<(), String> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(w) = workers.filter(|w| *w > 0) {
        builder.worker_threads(w);
    }
    let rt = builder.enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listeners = Listeners::bind(&config).await.map_err(|e| e.to_string())?;
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
        println!("listening {}", listeners.describe());
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        acs::daemon::run(config, listeners, shutdown).await.map_err(|e| e.to_string())
    })
}

fn subscriber_command(nbi: &str, token_file: Option<PathBuf>, action: SubscriberAction) -> Result<(), String> {
    // Never on the command line: other users of the machine can read a process's arguments.
    let token = match token_file {
        Some(f) => std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?.trim().to_string(),
        None => std::env::var("ACS_NBI_TOKEN")
            .map_err(|_| "no NBI token: give --token-file or $ACS_NBI_TOKEN".to_string())?,
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
