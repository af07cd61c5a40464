//! The proxy's state and operations: every change is checked on a copy of the data model
//! (schema, then the checks that span parameters, then the daemons' own checkers), applied to
//! the daemons, persisted, and only then made current. Anything refused changes nothing.

use std::path::PathBuf;

use cwmp::{Fault, FaultCode, ParameterFault, ParameterInfo, ParameterValue};
use datamodel::Tree;

use crate::daemons::{ApplyError, Daemons};
use crate::model;
use crate::render::{render, Env, Rendered};

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub state_file: PathBuf,
    pub lease_file: PathBuf,
    pub lan_if: String,
    pub wan_if: String,
    pub wlan_if: String,
    pub instance_id: String,
    pub reboot_command: Vec<String>,
}

pub struct Proxy {
    pub settings: Settings,
    tree: Tree,
    key: String,
    daemons: Daemons,
    /// The last start-up or apply problem, reported by health.
    pub last_error: Option<String>,
    started: std::time::Instant,
}

/// Turns per-parameter faults into one fault: the first parameter's code, every reason listed.
pub fn fault_of(faults: Vec<ParameterFault>) -> Fault {
    let code = faults.first().map_or(FaultCode::InvalidArguments, |f| f.code);
    let string = faults.iter().map(|f| format!("{}: {}", f.parameter_name, f.string)).collect::<Vec<_>>().join("; ");
    Fault { code, string, set_parameter_values_faults: faults }
}

/// Whether a path reads Device.Hosts (so the lease file must be read first).
fn touches_hosts(path: &str) -> bool {
    path.is_empty() || path.starts_with(model::HOSTS) || model::HOSTS.starts_with(path)
}

fn apply_fault(e: ApplyError) -> Fault {
    Fault::with_string(FaultCode::InternalError, format!("{e}; the previous configuration is still in force"))
}

impl Proxy {
    /// Tells the LAN that the gateway's address is at this vRGW now (two unsolicited ARP
    /// announcements with busybox or iputils `arping`): after a vRGW took over a subscriber's LAN
    /// with another MAC address (a context-based migration), the home's devices would otherwise
    /// keep sending to the old one until their neighbour entries expire (30 s and more).
    pub fn announce(&self) -> Result<String, Fault> {
        let Some((ip, _)) = datamodel::rules::lan(&self.tree) else {
            return Err(Fault::with_string(FaultCode::RequestDenied, "no LAN address is configured"));
        };
        let dev = &self.settings.lan_if;
        let ip_s = ip.to_string();
        let args = ["-U", "-c", "2", "-w", "2", "-I", dev.as_str(), ip_s.as_str()];
        // `arping` (the guest's busybox applet, or iputils), else busybox's own.
        let out = match std::process::Command::new("arping").args(args).output() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::process::Command::new("busybox").arg("arping").args(args).output()
            }
            other => other,
        }
        .map_err(|e| Fault::with_string(FaultCode::InternalError, format!("arping: {e}")))?;
        // Unsolicited announcements get no answers; busybox reports that as exit status 1.
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if !out.status.success() && !err.is_empty() {
            return Err(Fault::with_string(FaultCode::InternalError, format!("arping on {dev}: {err}")));
        }
        tracing::info!(%ip, dev, "announced the LAN address");
        Ok(format!("{ip} on {dev}"))
    }

    /// Loads the persisted state (or factory defaults) and applies it, idempotently.
    pub fn start(settings: Settings, daemons: Daemons) -> Result<Proxy, String> {
        let (mut tree, key) = match model::load(&settings.state_file)? {
            Some((t, k)) => {
                tracing::info!(state = %settings.state_file.display(), "restored the saved configuration");
                (t, k)
            }
            None => {
                tracing::info!("no saved configuration: starting from factory defaults");
                (model::factory_defaults(&settings.instance_id), String::new())
            }
        };
        model::install_live_values(&mut tree);
        let mut p = Proxy { settings, tree, key, daemons, last_error: None, started: std::time::Instant::now() };
        let problems = model::check(&p.tree);
        if !problems.is_empty() {
            let f = fault_of(problems);
            tracing::error!("the saved configuration is inconsistent: {}", f.string);
            p.last_error = Some(f.string);
        }
        let r = p.rendered(&p.tree);
        if let Err(e) = p.daemons.apply(&r) {
            tracing::error!("could not apply the configuration at start: {e}");
            p.last_error = Some(e.to_string());
        }
        if let Err(e) = model::save(&p.settings.state_file, &p.tree, &p.key) {
            return Err(format!("{}: {e}", p.settings.state_file.display()));
        }
        Ok(p)
    }

    fn rendered(&self, t: &Tree) -> Rendered {
        let pid = self.daemons.paths.pid_file();
        let env = Env {
            lan_if: &self.settings.lan_if,
            wan_if: &self.settings.wan_if,
            wlan_if: &self.settings.wlan_if,
            lease_file: &self.settings.lease_file,
            pid_file: &pid,
        };
        render(t, &env)
    }

    fn refresh_hosts(&mut self) {
        let text = std::fs::read_to_string(&self.settings.lease_file).unwrap_or_default();
        model::sync_hosts(&mut self.tree, &model::parse_leases(&text));
    }

    pub fn get(&mut self, paths: &[String]) -> Result<Vec<ParameterValue>, Fault> {
        if paths.iter().any(|p| touches_hosts(p)) {
            self.refresh_hosts();
        }
        let mut out = Vec::new();
        for p in paths {
            out.extend(self.tree.get(p)?);
        }
        Ok(out)
    }

    pub fn names(&mut self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        if touches_hosts(path) {
            self.refresh_hosts();
        }
        self.tree.names(path, next_level)
    }

    /// Checks, applies, persists and adopts `cand`.
    fn commit(&mut self, cand: Tree, key: &str) -> Result<(), Fault> {
        let problems = model::check(&cand);
        if !problems.is_empty() {
            return Err(fault_of(problems));
        }
        let r = self.rendered(&cand);
        self.daemons.check(&r).map_err(apply_fault)?;
        self.daemons.apply(&r).map_err(|e| {
            self.last_error = Some(e.to_string());
            apply_fault(e)
        })?;
        if let Err(e) = model::save(&self.settings.state_file, &cand, key) {
            let old = self.rendered(&self.tree);
            let _ = self.daemons.apply(&old);
            return Err(Fault::with_string(FaultCode::InternalError, format!("the state could not be saved: {e}")));
        }
        self.tree = cand;
        self.key = key.to_string();
        self.last_error = None;
        Ok(())
    }

    /// Everything `set` checks (values, cross-parameter rules, the daemons' own checkers),
    /// nothing applied: what the host agent asks every vRGW before a set that spans several.
    pub fn validate(&self, values: &[ParameterValue]) -> Result<(), Fault> {
        let mut cand = self.tree.clone();
        let coerced = cand.validate(values).map_err(fault_of)?;
        cand.apply(coerced);
        let problems = model::check(&cand);
        if !problems.is_empty() {
            return Err(fault_of(problems));
        }
        self.daemons.check(&self.rendered(&cand)).map_err(apply_fault)
    }

    pub fn set(&mut self, values: &[ParameterValue], key: &str) -> Result<(), Fault> {
        let mut cand = self.tree.clone();
        let coerced = cand.validate(values).map_err(fault_of)?;
        cand.apply(coerced);
        self.commit(cand, key)
    }

    pub fn add_object(&mut self, path: &str, key: &str) -> Result<u32, Fault> {
        let mut cand = self.tree.clone();
        let n = cand.add_object(path)?;
        self.commit(cand, key)?;
        Ok(n)
    }

    pub fn delete_object(&mut self, path: &str, key: &str) -> Result<(), Fault> {
        let mut cand = self.tree.clone();
        cand.delete_object(path)?;
        self.commit(cand, key)
    }

    pub fn factory_reset(&mut self) -> Result<(), Fault> {
        let mut cand = model::factory_defaults(&self.settings.instance_id);
        model::install_live_values(&mut cand);
        self.commit(cand, "")
    }

    pub fn parameter_key(&self) -> &str {
        &self.key
    }

    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn dnsmasq_running(&mut self) -> bool {
        self.daemons.dnsmasq_running()
    }

    pub fn shutdown(&mut self) {
        self.daemons.shutdown();
    }
}
