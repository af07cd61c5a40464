//! What the CWMP side reads without the host thread: the agent's store, the values an Inform and
//! a connection request need, and the changed parameters waiting for an Inform. The host thread
//! publishes the values after every job and every poll ([`Host::publish`]), so Informs and
//! connection requests are served while the host thread waits for libvirt or a vRGW.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cwmp::{ParameterValue, Value};

use super::Host;
use crate::state::State;

const MS: &str = "Device.ManagementServer.";

/// The parameters every Inform carries (TR-069 A.3.3.1, as TR-181 names them).
const INFORM_PARAMETERS: [&str; 5] = [
    "Device.DeviceInfo.HardwareVersion",
    "Device.DeviceInfo.SoftwareVersion",
    "Device.DeviceInfo.ProvisioningCode",
    "Device.ManagementServer.ParameterKey",
    "Device.ManagementServer.ConnectionRequestURL",
];

/// The host's values as the CWMP side last saw them.
#[derive(Debug, Clone, Default)]
pub struct CwmpView {
    /// ManagementServer.ConnectionRequestUsername.
    pub cr_username: String,
    /// ManagementServer.ConnectionRequestPassword (never logged).
    pub cr_password: String,
    /// PeriodicInformEnable, PeriodicInformInterval, PeriodicInformTime.
    pub periodic: (Option<Value>, Option<Value>, Option<Value>),
    /// The parameters every Inform carries, with their values.
    pub inform: Vec<ParameterValue>,
    /// vRGWs by status and the pools' fill, for the metrics.
    pub counts: crate::metrics::HostCounts,
}

/// Shared between the host thread and the CWMP side. Cheap to clone.
#[derive(Clone)]
pub struct Shared {
    state: Arc<State>,
    view: Arc<Mutex<CwmpView>>,
    changes: Arc<Mutex<BTreeMap<String, ParameterValue>>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Shared {
    pub(super) fn new(state: Arc<State>) -> Shared {
        Shared { state, view: Default::default(), changes: Default::default() }
    }

    /// The agent's store (events, meta).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The values last published.
    pub fn view(&self) -> CwmpView {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn changes(&self) -> MutexGuard<'_, BTreeMap<String, ParameterValue>> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The changed parameters to report in the next Inform.
    pub fn pending_changes(&self) -> Vec<ParameterValue> {
        self.changes().values().cloned().collect()
    }

    /// Forgets reported changes (the ACS accepted the Inform that carried them).
    pub fn changes_reported(&self, names: &[String]) {
        let mut c = self.changes();
        for n in names {
            c.remove(n);
        }
    }
}

impl Host {
    /// vRGWs by `Status` and each pool's `TargetSize` and `Ready`, from the data model.
    fn counts(&self) -> crate::metrics::HostCounts {
        use datamodel::virtualization::{Instance, Pool};
        let r = self.model.root();
        let uint = |p: &str| match r.value(p) {
            Some(Value::UnsignedInt(n)) => i64::from(n),
            _ => 0,
        };
        let mut counts = crate::metrics::HostCounts::default();
        for n in r.instances(Instance::TABLE) {
            let status = match r.value(&Instance::at(n).status()) {
                Some(Value::String(s)) => s,
                _ => String::new(),
            };
            *counts.instances.entry(status).or_default() += 1;
        }
        for k in r.instances(Pool::TABLE) {
            counts.pools.push((k, uint(&Pool::at(k).target_size()), uint(&Pool::at(k).ready())));
        }
        counts
    }

    /// What the CWMP side shares with this host.
    pub fn shared(&self) -> Shared {
        self.shared.clone()
    }

    /// Publishes the values the CWMP side reads without the host thread.
    pub fn publish(&self) {
        let r = self.model.root();
        let s = |p: &str| match r.value(p) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let mut inform = Vec::with_capacity(INFORM_PARAMETERS.len());
        for p in INFORM_PARAMETERS {
            if let Ok(mut v) = self.model.get_parameter_values(&[p.to_string()]) {
                inform.append(&mut v);
            }
        }
        let view = CwmpView {
            cr_username: s(&format!("{MS}ConnectionRequestUsername")),
            cr_password: s(&format!("{MS}ConnectionRequestPassword")),
            periodic: (
                r.value(&format!("{MS}PeriodicInformEnable")),
                r.value(&format!("{MS}PeriodicInformInterval")),
                r.value(&format!("{MS}PeriodicInformTime")),
            ),
            inform,
            counts: self.counts(),
        };
        *self.shared.view.lock().unwrap_or_else(|e| e.into_inner()) = view;
    }
}
