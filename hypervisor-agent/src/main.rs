//! `hypervisor-agent`: one per virtualization host.
//!
//! Configuration comes from a TOML file (`--config`), with command-line overrides; this file
//! parses both and calls [`hypervisor_agent::daemon::run`]. On start it prints `listening cr=ADDR`
//! on stdout once connection requests are accepted; `--check-config` checks the configuration
//! and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hypervisor_agent::daemon::{self, Config};

#[derive(Debug, Parser)]
#[command(name = "hypervisor-agent", version, about = "CWMP agent of a vRGW virtualization host")]
struct Cli {
    /// TOML configuration file (every key of it can be given below instead).
    #[arg(long)]
    config: Option<PathBuf>,
    /// ACS URL.
    #[arg(long)]
    acs_url: Option<String>,
    /// Where connection requests are accepted.
    #[arg(long)]
    cr_listen: Option<SocketAddr>,
    /// The agent's SQLite state.
    #[arg(long)]
    db: Option<PathBuf>,
    /// libvirt URI (`qemu:///system`; `test:///default` for libvirt's test driver).
    #[arg(long)]
    libvirt: Option<String>,
    /// This host's id (the serial number toward the ACS, and the mark on its domains).
    #[arg(long)]
    agent_id: Option<String>,
    /// Log format: text or json.
    #[arg(long)]
    log_format: Option<String>,
    /// Check the configuration (file and flags) and exit.
    #[arg(long)]
    check_config: bool,
}

/// The file's settings with the flags laid over them (a flag wins), checked.
fn load(cli: &Cli) -> Result<Config, daemon::Error> {
    let mut c = match &cli.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(v) = &cli.acs_url {
        c.acs_url = v.clone();
    }
    if let Some(v) = cli.cr_listen {
        c.cr_listen = v;
    }
    if let Some(v) = &cli.db {
        c.db = v.clone();
    }
    if let Some(v) = &cli.libvirt {
        c.libvirt = v.clone();
    }
    if let Some(v) = &cli.agent_id {
        c.agent_id = v.clone();
    }
    if let Some(v) = &cli.log_format {
        c.log_format = v.clone();
    }
    c.check()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let c = match load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hypervisor-agent: {e}");
            return ExitCode::from(2);
        }
    };
    // The file holds acs_password and cr_password.
    let readable = cli.config.as_deref().and_then(hypervisor_agent::secrets::config_file_warning);
    if cli.check_config {
        if let Some(w) = &readable {
            eprintln!("hypervisor-agent: warning: {w}");
        }
        println!("configuration ok: agent {} on {}, ACS {}", c.agent_id, c.libvirt, c.acs_url);
        return ExitCode::SUCCESS;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if c.log_format == "json" {
        tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    if let Some(w) = readable {
        tracing::warn!("{w}");
    }
    match serve(c) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Binds the connection-request listener, prints `listening cr=ADDR`, and runs until Ctrl-C or
/// SIGTERM.
fn serve(c: Config) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(c.cr_listen).await.map_err(|e| format!("{}: {e}", c.cr_listen))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(|e| e.to_string())?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        // The line tests and scripts wait for: printed once the agent is up.
        daemon::run_with(c, listener, shutdown, move |metrics| match metrics {
            Some(m) => println!("listening cr={local} metrics={m}"),
            None => println!("listening cr={local}"),
        })
        .await
        .map_err(|e| e.to_string())
    })
}
