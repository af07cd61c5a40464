//! `cwmp-sim`: N simulated CPEs against an ACS, TR-181 hosts, (`--model tr098`) TR-098
//! gateways or (`--model tr181-gateway`) TR-181 gateways with a vRGW's parameters. Each informs (BOOTSTRAP, then PERIODIC back to back or every `--periodic-secs`),
//! answers connection requests (Digest), GPV, GPN, SPV, AddObject, DeleteObject, Reboot,
//! FactoryReset, Download, Upload (a PUT of its configuration or its log), ScheduleDownload
//! (queued until its window), CancelTransfer, Get(All)QueuedTransfers and ChangeDUState
//! (deployment units kept in memory), reporting transfers with TransferComplete and unit changes
//! with DUStateChangeComplete in a new session; reports sessions per second and latency
//! percentiles.

use std::sync::Arc;
use std::time::Duration;

use acs::sim::{load, SimCpe, SimModel};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "cwmp-sim", about = "Simulated TR-069 CPEs for tests and load")]
struct Opts {
    /// ACS URL.
    #[arg(long, default_value = "http://127.0.0.1:7547/")]
    acs: String,
    /// Number of devices.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Serial numbers are PREFIX-0, PREFIX-1, ...
    #[arg(long, default_value = "sim")]
    serial_prefix: String,
    /// A file holding the devices' credentials toward the ACS, `user:password` (never on the
    /// command line); without it `$CWMP_SIM_CREDENTIALS`, else `cpe:cpe-secret`.
    #[arg(long)]
    credentials_file: Option<std::path::PathBuf>,
    /// Where connection requests are received.
    #[arg(long, default_value = "127.0.0.1:0")]
    cr_listen: std::net::SocketAddr,
    /// Seconds between periodic sessions; 0 runs them back to back (load).
    #[arg(long, default_value_t = 0)]
    periodic_secs: u64,
    /// The devices' data model: `tr181` (a `Device.` host), `tr098` (an
    /// `InternetGatewayDevice.` residential gateway) or `tr181-gateway` (a `Device.` residential
    /// gateway with a vRGW's parameters).
    #[arg(long, default_value = "tr181")]
    model: SimModel,
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
}

fn pair(s: &str) -> (String, String) {
    let (a, b) = s.split_once(':').unwrap_or((s, ""));
    (a.to_string(), b.to_string())
}

/// The devices' credentials: the file's, else the environment's, else the default.
fn credentials(o: &Opts) -> Result<(String, String), String> {
    let text = match &o.credentials_file {
        Some(f) => std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?,
        None => std::env::var("CWMP_SIM_CREDENTIALS").unwrap_or_else(|_| "cpe:cpe-secret".into()),
    };
    match pair(text.trim()) {
        (u, p) if !u.is_empty() && !p.is_empty() => Ok((u, p)),
        _ => Err("credentials are user:password".into()),
    }
}

/// The devices' factory connection-request credentials (the ACS replaces them at BOOTSTRAP).
const FACTORY_CR: (&str, &str) = ("cr", "cr-factory-secret");

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let o = Opts::parse();
    let Ok(rt) = tokio::runtime::Runtime::new() else { return std::process::ExitCode::FAILURE };
    rt.block_on(async move {
        let cr = match tokio::net::TcpListener::bind(o.cr_listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cwmp-sim: {}: {e}", o.cr_listen);
                return std::process::ExitCode::FAILURE;
            }
        };
        let cr_addr = cr.local_addr().unwrap_or(o.cr_listen);
        let (user, pass) = match credentials(&o) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cwmp-sim: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        let (cu, cp) = FACTORY_CR;
        let made: Result<Vec<Arc<SimCpe>>, String> = (0..o.count)
            .map(|i| {
                let serial = format!("{}-{i}", o.serial_prefix);
                SimCpe::of_model(o.model, &serial, &o.acs, &user, &pass, cr_addr, (cu, cp))
            })
            .collect();
        let sims = match made {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cwmp-sim: {e}");
                return std::process::ExitCode::from(2);
            }
        };
        tokio::spawn(SimCpe::serve_connection_requests(sims.clone(), cr));
        println!("{} devices, connection requests at http://{cr_addr}/cr/<serial>", sims.len());
        let duration = Duration::from_secs(o.duration_secs);
        if o.periodic_secs == 0 {
            let report = load(sims, duration, Arc::new(|_| {})).await;
            println!("{report}");
        } else {
            let end = tokio::time::Instant::now() + duration;
            for s in &sims {
                let s = s.clone();
                let every = Duration::from_secs(o.periodic_secs);
                tokio::spawn(async move {
                    while tokio::time::Instant::now() < end {
                        if let Err(e) = s.session(&[]).await {
                            eprintln!("{}: {e}", s.serial);
                        }
                        tokio::time::sleep(every).await;
                    }
                });
            }
            tokio::time::sleep_until(end).await;
            let total: u64 = sims.iter().map(|s| s.sessions.load(std::sync::atomic::Ordering::Relaxed)).sum();
            println!("{total} sessions");
        }
        std::process::ExitCode::SUCCESS
    })
}
