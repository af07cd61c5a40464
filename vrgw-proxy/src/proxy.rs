//! The proxy's state and operations: every change is checked on a copy of the data model
//! (schema, then the checks that span parameters: a [`Candidate`]; then the daemons' own
//! checkers, once: a [`Checked`] configuration), applied to the daemons, persisted, and only then
//! made current. Anything refused changes nothing.

use std::path::PathBuf;

use cwmp::{Fault, FaultCode, ParameterFault, ParameterInfo, ParameterValue};
use datamodel::Tree;

use crate::daemons::{ApplyError, Checked, Daemons};
use vrgw_proxy::model;
use vrgw_proxy::render::{render, Env, Rendered};
use vrgw_proxy::values::IfName;

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub state_file: PathBuf,
    pub lease_file: PathBuf,
    pub lan_if: IfName,
    pub wan_if: IfName,
    pub wlan_if: IfName,
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

/// A configuration that passed the schema and the checks that span parameters: what
/// [`Proxy::commit`] takes.
struct Candidate(Tree);

impl Candidate {
    fn checked(t: Tree) -> Result<Candidate, Vec<ParameterFault>> {
        let problems = vrgw_proxy::check::check(&t);
        if problems.is_empty() {
            Ok(Candidate(t))
        } else {
            Err(problems)
        }
    }
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
        let dev = self.settings.lan_if.as_str();
        let ip_s = ip.to_string();
        let args = ["-U", "-c", "2", "-w", "2", "-I", dev, ip_s.as_str()];
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
        let problems = vrgw_proxy::check::check(&p.tree);
        if !problems.is_empty() {
            let f = fault_of(problems);
            tracing::error!("the saved configuration is inconsistent: {}", f.string);
            p.last_error = Some(f.string);
        }
        let r = p.rendered(&p.tree);
        if let Err(e) = p.daemons.check(r).and_then(|c| p.daemons.apply(&c)) {
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
        let r = render(t, &env);
        for why in &r.left_out {
            tracing::warn!("not rendered: {why}");
        }
        r
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

    /// Checks with the daemons' checkers (once), applies, persists and adopts `cand`.
    fn commit(&mut self, cand: Candidate, key: &str) -> Result<(), Fault> {
        let checked: Checked = self.daemons.check(self.rendered(&cand.0)).map_err(apply_fault)?;
        let previous = self.daemons.applied().cloned();
        self.daemons.apply(&checked).map_err(|e| {
            self.last_error = Some(e.to_string());
            apply_fault(e)
        })?;
        if let Err(e) = model::save(&self.settings.state_file, &cand.0, key) {
            if let Some(old) = previous {
                let _ = self.daemons.apply(&old);
            }
            return Err(Fault::with_string(FaultCode::InternalError, format!("the state could not be saved: {e}")));
        }
        self.tree = cand.0;
        self.key = key.to_string();
        self.last_error = None;
        Ok(())
    }

    /// The configuration `values` make, or every value refused (by the schema, else by the
    /// checks that span parameters).
    fn candidate(&self, values: &[ParameterValue]) -> Result<Candidate, Vec<ParameterFault>> {
        let mut cand = self.tree.clone();
        let coerced = cand.validate(values)?;
        cand.apply(coerced);
        Candidate::checked(cand).map_err(|problems| {
            let names: Vec<&str> = values.iter().map(|v| v.name.as_str()).collect();
            vrgw_proxy::check::for_request(problems, &names)
        })
    }

    /// Everything `set` checks (values, cross-parameter rules, the daemons' own checkers),
    /// nothing applied: the values refused, empty when `set` would accept them all; a fault when
    /// a daemon's checker refuses the configuration.
    pub fn validate(&self, values: &[ParameterValue]) -> Result<Vec<ParameterFault>, Fault> {
        match self.candidate(values) {
            Err(refused) => Ok(refused),
            Ok(cand) => self.daemons.check(self.rendered(&cand.0)).map(|_| Vec::new()).map_err(apply_fault),
        }
    }

    /// Checks and applies `values`, all or nothing; a refusal is a fault naming every refused
    /// value.
    pub fn set(&mut self, values: &[ParameterValue], key: &str) -> Result<(), Fault> {
        let cand = self.candidate(values).map_err(fault_of)?;
        self.commit(cand, key)
    }

    /// [`Proxy::set`] with the refused values as the result (empty when applied): one call
    /// checks once and applies, and the caller learns which parameter was refused and why.
    pub fn try_set(&mut self, values: &[ParameterValue], key: &str) -> Result<Vec<ParameterFault>, Fault> {
        match self.candidate(values) {
            Err(refused) => Ok(refused),
            Ok(cand) => self.commit(cand, key).map(|()| Vec::new()),
        }
    }

    pub fn add_object(&mut self, path: &str, key: &str) -> Result<u32, Fault> {
        let mut cand = self.tree.clone();
        let n = cand.add_object(path)?;
        self.commit(Candidate::checked(cand).map_err(fault_of)?, key)?;
        Ok(n)
    }

    pub fn delete_object(&mut self, path: &str, key: &str) -> Result<(), Fault> {
        let mut cand = self.tree.clone();
        cand.delete_object(path)?;
        self.commit(Candidate::checked(cand).map_err(fault_of)?, key)
    }

    pub fn factory_reset(&mut self) -> Result<(), Fault> {
        let mut cand = model::factory_defaults(&self.settings.instance_id);
        model::install_live_values(&mut cand);
        self.commit(Candidate::checked(cand).map_err(fault_of)?, "")
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
