//! `vrgw-proxy`: the management agent inside each vRGW. It serves the vRGW's TR-181 data model
//! over XML-RPC to its host's CWMP agent (authenticated, on the management address only) and
//! applies settings to dnsmasq, nftables and hostapd, all or nothing.

mod daemons;
mod proxy;
mod rpc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::Parser;
use vrgw_proxy::values::IfName;
use vrgw_proxy::{model, render};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "vrgw-proxy", version, about = "XML-RPC management agent of a virtualized residential gateway")]
struct Opts {
    /// Address of the management interface to listen on (never 0.0.0.0 in production).
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// File holding the per-instance secret; callers authenticate as user "vrgw" with it.
    #[arg(long)]
    secret_file: PathBuf,
    /// Where the configuration and the DHCP leases persist.
    #[arg(long, default_value = "/var/lib/vrgw-proxy")]
    state_dir: PathBuf,
    /// Where generated daemon configurations go.
    #[arg(long, default_value = "/run/vrgw-proxy")]
    run_dir: PathBuf,
    /// LAN interface (the subscriber's C-VLAN).
    #[arg(long, default_value = "eth1", value_parser = IfName::parse)]
    lan_if: IfName,
    /// WAN interface (masquerade and port mappings).
    #[arg(long, default_value = "eth0", value_parser = IfName::parse)]
    wan_if: IfName,
    /// Wi-Fi interface named in the hostapd configuration.
    #[arg(long, default_value = "wlan0", value_parser = IfName::parse)]
    wlan_if: IfName,
    /// Name used in the factory SSID.
    #[arg(long, default_value = "vrgw")]
    instance_id: String,
    /// dnsmasq program.
    #[arg(long, default_value = "dnsmasq")]
    dnsmasq: String,
    /// nft program.
    #[arg(long, default_value = "nft")]
    nft: String,
    /// ip program.
    #[arg(long, default_value = "ip")]
    ip: String,
    /// Leave the LAN interface's address alone.
    #[arg(long)]
    no_lan_address: bool,
    /// Command run by the reboot method.
    #[arg(long, default_value = "reboot", num_args = 1.., allow_hyphen_values = true)]
    reboot_command: Vec<String>,
    /// Check the options, the saved configuration and the configurations it renders (with the
    /// daemons' own checkers), then exit without serving.
    #[arg(long)]
    validate: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let opts = Opts::parse();
    match run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("vrgw-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(opts: Opts) -> Result<(), String> {
    let secret = std::fs::read_to_string(&opts.secret_file)
        .map_err(|e| format!("{}: {e}", opts.secret_file.display()))?
        .trim()
        .to_string();
    if secret.len() < 16 {
        return Err(format!("{}: the secret must have at least 16 characters", opts.secret_file.display()));
    }
    if opts.listen.ip().is_unspecified() {
        return Err("--listen must be the management interface's address, not an unspecified one".into());
    }
    for d in [&opts.state_dir, &opts.run_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let paths = daemons::Paths {
        run_dir: opts.run_dir.clone(),
        lan_if: opts.lan_if.to_string(),
        dnsmasq_bin: opts.dnsmasq.clone(),
        nft_bin: opts.nft.clone(),
        ip_bin: opts.ip.clone(),
        manage_lan_address: !opts.no_lan_address,
    };
    let settings = proxy::Settings {
        state_file: opts.state_dir.join("state.json"),
        lease_file: daemons::lease_file(&opts.state_dir),
        lan_if: opts.lan_if.clone(),
        wan_if: opts.wan_if.clone(),
        wlan_if: opts.wlan_if.clone(),
        instance_id: opts.instance_id.clone(),
        reboot_command: opts.reboot_command.clone(),
    };
    for file in [&settings.lease_file, &paths.pid_file()] {
        vrgw_proxy::values::conf_path(file).map_err(|e| format!("--state-dir and --run-dir: {e}"))?;
    }
    if opts.validate {
        return validate(settings, paths);
    }
    let proxy = proxy::Proxy::start(settings, daemons::Daemons::new(paths))?;
    let proxy = Arc::new(Mutex::new(proxy));
    let mut server = xmlrpc::Server::new().with_basic_auth("vrgw", &secret);
    rpc::register_all(&mut server, proxy.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.listen).await.map_err(|e| format!("{}: {e}", opts.listen))?;
        tracing::info!(listen = %opts.listen, lan = %opts.lan_if, wan = %opts.wan_if, "serving XML-RPC");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("stopping");
        };
        Arc::new(server).serve(listener, shutdown).await.map_err(|e| e.to_string())
    });
    proxy.lock().unwrap_or_else(|e| e.into_inner()).shutdown();
    result
}

fn validate(settings: proxy::Settings, paths: daemons::Paths) -> Result<(), String> {
    let (mut tree, key) = match model::load(&settings.state_file)? {
        Some(v) => v,
        None => (model::factory_defaults(&settings.instance_id), String::new()),
    };
    model::install_live_values(&mut tree);
    let problems = vrgw_proxy::check::check(&tree);
    if !problems.is_empty() {
        return Err(proxy::fault_of(problems).string);
    }
    let pid = paths.pid_file();
    let env = render::Env {
        lan_if: &settings.lan_if,
        wan_if: &settings.wan_if,
        wlan_if: &settings.wlan_if,
        lease_file: &settings.lease_file,
        pid_file: &pid,
    };
    let r = daemons::Daemons::new(paths).check(render::render(&tree, &env)).map_err(|e| e.to_string())?;
    println!("configuration valid (parameter key {key:?}, LAN {})", r.lan.clone().unwrap_or_default());
    Ok(())
}
