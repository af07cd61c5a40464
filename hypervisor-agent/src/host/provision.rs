//! Provisioning: an instance row brought to what it asks for (a pooled domain taken and rebound,
//! or a cold start; VLANs, requested state, its proxy attached), and released when it goes.

use cwmp::Value;

use datamodel::virtualization::{Instance, InstanceStatus, RequestedState};

use super::{During, Host, HostError, Result};
use crate::compute::DomState;
use crate::proxy::ProxyTarget;
use crate::state::{Slot, SlotUse};

impl Host {
    /// Brings every instance to what its row asks for. Failures are recorded on the instance.
    pub fn converge(&mut self) {
        let all = self.model.root().instances(Instance::TABLE);
        self.converge_only(&all);
    }

    /// [`Host::converge`] for these instances only.
    pub(super) fn converge_only(&mut self, instances: &[u32]) {
        let live = self.model.root().instances(Instance::TABLE);
        for &n in instances.iter().filter(|n| live.contains(n)) {
            if let Err(e) = self.converge_instance(n) {
                tracing::error!(instance = n, "{e}");
                self.set_status(n, InstanceStatus::Error);
                self.set_internal(&Instance::at(n).last_error(), Value::String(e.to_string()));
            }
        }
        self.update_pools();
        self.sync_topology();
    }

    fn converge_instance(&mut self, n: u32) -> Result<()> {
        let w = self.wanted(n);
        let slot = self.state.slot_of(n)?;
        if let Some(s) = slot.as_ref().filter(|s| matches!(s.usage, SlotUse::Incoming | SlotUse::Outgoing)) {
            // A migration owns it until it completes or is aborted.
            let _ = s;
            self.set_status(n, InstanceStatus::Migrating);
            return Ok(());
        }
        let Some(slot) = slot else {
            if self.migration_mode(n).is_some() {
                // Made for a migration here: provisioned by its commands only (or already left).
                if self.string(&Instance::at(n).status()) != InstanceStatus::Migrated.as_str() {
                    self.set_status(n, InstanceStatus::Defining);
                }
                return Ok(());
            }
            let (Some(template), true) = (w.template, w.svlan != 0 && w.cvlan != 0) else {
                // Not enough to provision yet.
                self.set_status(n, InstanceStatus::Defining);
                return Ok(());
            };
            if w.requested == Some(RequestedState::Stopped) {
                self.set_status(n, InstanceStatus::Stopped);
                return Ok(());
            }
            return self.provision(n, template, w.svlan, w.cvlan, w.requested);
        };
        // Provisioned: VLANs and state follow the row.
        let port = self.lan_port(slot.id);
        let bound = self.vlan.bindings().during("reading the bindings")?.into_iter().find(|b| b.port == port);
        if bound.as_ref().map(|b| (b.svlan, b.cvlan)) != Some((w.svlan, w.cvlan)) && w.svlan != 0 && w.cvlan != 0 {
            let old = bound.map(|b| b.svlan);
            self.vlan.bind(&port, w.svlan, w.cvlan).during("binding the port")?;
            let nic = self.vlan.lan_nic(Some((w.svlan, w.cvlan))).during("choosing the LAN bridge")?;
            self.define_domain(&self.spec(&slot, &nic)?)?;
            if let Some(old) = old.filter(|o| *o != w.svlan) {
                self.vlan.remove_svlan_if_unused(old).during("removing an unused S-VLAN")?;
            }
            tracing::info!(instance = n, svlan = w.svlan, cvlan = w.cvlan, "rebound");
        }
        if self.mounts.get(&n).is_some_and(|m| !m.attached()) {
            self.attach(n, &slot)?;
        }
        let now = self.compute.state(&slot.domain).during("reading the domain's state")?;
        match (w.requested, now) {
            (_, None) => return Err(HostError::DomainMissing(slot.domain.clone())),
            (Some(RequestedState::Running), Some(DomState::Paused)) => {
                self.compute.resume(&slot.domain).during("resuming the domain")?
            }
            (Some(RequestedState::Running), Some(DomState::ShutOff | DomState::Crashed)) => {
                self.compute.start(&slot.domain).during("starting the domain")?
            }
            (Some(RequestedState::Suspended), Some(DomState::Running)) => {
                self.compute.suspend(&slot.domain).during("suspending the domain")?
            }
            (Some(RequestedState::Stopped), Some(DomState::Running | DomState::Paused)) => {
                self.compute.stop(&slot.domain).during("stopping the domain")?
            }
            _ => {}
        }
        self.refresh_instance(n, &slot)?;
        Ok(())
    }

    /// Takes a pooled domain (or makes a new one) for instance `n`.
    fn provision(&mut self, n: u32, template: u32, s: u16, c: u16, requested: Option<RequestedState>) -> Result<()> {
        let pool = self.enabled_pool_of(template);
        let nic = self.vlan.lan_nic(Some((s, c))).during("choosing the LAN bridge")?;
        let taken = match pool {
            Some(k) => self.state.take_pooled(k)?,
            None => None,
        };
        let slot = match taken {
            Some(slot) => {
                // Rebind its LAN port, record the assignment, resume; each step's time logged
                // (testbed/activation reads them).
                let t = std::time::Instant::now();
                self.vlan.bind(&self.lan_port(slot.id), s, c).during("binding the port")?;
                let bind_ms = ms_since(t);
                let t = std::time::Instant::now();
                self.define_domain(&self.spec(&slot, &nic)?)?;
                self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
                let define_ms = ms_since(t);
                let t = std::time::Instant::now();
                if requested == Some(RequestedState::Running) {
                    self.compute.resume(&slot.domain).during("resuming the domain")?;
                }
                let resume_ms = ms_since(t);
                tracing::info!(
                    instance = n,
                    slot = slot.id,
                    svlan = s,
                    cvlan = c,
                    bind_ms,
                    define_ms,
                    resume_ms,
                    "provisioned from the pool"
                );
                slot
            }
            None => {
                let mgmt = |id: u32| self.mgmt_address(id);
                let slot = self.state.new_slot(&self.cfg.agent_id, template, None, &mgmt, &Self::secret())?;
                let spec = self.spec(&slot, &nic)?;
                self.compose_image(&spec, &slot)?;
                self.define_domain(&spec)?;
                self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
                self.compute.start(&slot.domain).during("starting the domain")?;
                self.vlan.bind(&self.lan_port(slot.id), s, c).during("binding the port")?;
                if requested == Some(RequestedState::Suspended) {
                    self.compute.suspend(&slot.domain).during("suspending the domain")?;
                }
                tracing::info!(instance = n, slot = slot.id, svlan = s, cvlan = c, "provisioned by a cold start");
                slot
            }
        };
        self.set_internal(&Instance::at(n).last_error(), Value::String(String::new()));
        self.attach(n, &slot)?;
        self.refresh_instance(n, &slot)
    }

    /// Points instance `n`'s mount at its proxy (the profile is pushed by [`Host::sync_proxies`]).
    pub(super) fn attach(&mut self, n: u32, slot: &Slot) -> Result<()> {
        let Some(m) = self.mounts.get(&n) else { return Ok(()) };
        let ip = slot.mgmt_address.split('/').next().unwrap_or("");
        m.attach(ProxyTarget { url: format!("http://{ip}:{}/RPC2", self.cfg.proxy_port), secret: slot.secret.clone() })
            .map_err(|f| HostError::Proxy(f.string))
    }

    /// Destroys and undefines instance `n`'s domain and frees its VLANs (before its row goes).
    pub(super) fn release_instance(&mut self, n: u32) -> Result<()> {
        let Some(slot) = self.state.slot_of(n)? else { return Ok(()) };
        if let Some(m) = self.mounts.get(&n) {
            m.detach();
        }
        self.destroy_slot(&slot)?;
        tracing::info!(instance = n, slot = slot.id, "released");
        Ok(())
    }
}

/// Milliseconds since `t`, to a tenth.
fn ms_since(t: std::time::Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 10_000.0).round() / 10.0
}
