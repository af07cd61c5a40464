//! Reconciliation: after a restart or a crash the store, libvirt and the switch are brought back
//! in line; periodically the domains' states are read and profiles pushed to proxies that came up.

use cwmp::Value;

use datamodel::virtualization::{Instance, InstanceStatus, RequestedState};

use super::{During, Host, Result};
use crate::compute::{DomState, Polled};
use crate::state::{Slot, SlotUse};

impl Host {
    /// After a start: finishes or rolls back what a crash interrupted, adopts the domains this
    /// agent owns, re-creates any of its domains that vanished, and removes owned domains
    /// nothing refers to (logged as drift). Then every instance is converged.
    pub fn reconcile(&mut self) -> Result<()> {
        let owned = self.compute.owned(&self.cfg.agent_id).during("listing the owned domains")?;
        let instances = self.model.root().instances(Instance::TABLE);
        for slot in self.state.slots()? {
            let exists = owned.iter().any(|d| d.name == slot.domain);
            if exists && self.is_container(slot.template) && slot.usage != SlotUse::Deleting {
                // A container's root is a mount, gone after the host restarted.
                if let Err(e) = self.mount_root(&slot) {
                    tracing::error!(slot = slot.id, domain = %slot.domain, "{e}");
                }
            }
            match slot.usage {
                SlotUse::Creating | SlotUse::Deleting => {
                    tracing::warn!(slot = slot.id, usage = ?slot.usage, "finishing an interrupted operation: removing");
                    self.destroy_slot(&slot)?;
                }
                SlotUse::Assigned if slot.instance.is_none_or(|n| !instances.contains(&n)) => {
                    tracing::warn!(slot = slot.id, "drift: serves no instance any more; removing");
                    self.destroy_slot(&slot)?;
                }
                SlotUse::Incoming | SlotUse::Outgoing if slot.instance.is_none_or(|n| !instances.contains(&n)) => {
                    tracing::warn!(slot = slot.id, "drift: a migration's instance is gone; removing its domain");
                    self.destroy_slot(&slot)?;
                }
                SlotUse::Pooled | SlotUse::Warming if !exists => {
                    tracing::warn!(slot = slot.id, "drift: pooled domain vanished; forgetting it (the pool refills)");
                    self.forget_slot(&slot)?;
                }
                SlotUse::Assigned if !exists => {
                    tracing::warn!(slot = slot.id, "drift: domain of an instance vanished; defining it again");
                    let n = slot.instance.unwrap_or(0);
                    let w = self.wanted(n);
                    let nic = self.vlan.lan_nic(Some((w.svlan, w.cvlan))).during("choosing the LAN bridge")?;
                    let spec = self.spec(&slot, &nic)?;
                    self.compose_image(&spec, &slot)?;
                    self.define_domain(&spec)?;
                    if w.requested != Some(RequestedState::Stopped) {
                        self.compute.start(&slot.domain).during("starting the domain")?;
                        self.vlan.bind(&self.lan_port(slot.id), w.svlan, w.cvlan).during("binding the port")?;
                    }
                }
                _ => {}
            }
        }
        self.reconcile_migrations()?;
        let known: Vec<String> = self.state.slots()?.into_iter().map(|s| s.domain).collect();
        for d in owned.iter().filter(|d| !known.contains(&d.name)) {
            tracing::warn!(domain = %d.name, slot = d.owner.slot, "drift: owned domain with no record; removing it");
            self.undefine_domain(&d.name)?;
        }
        self.converge();
        self.save()?;
        Ok(())
    }

    /// CPU time, memory and status of every instance, from libvirt.
    /// Nothing while libvirt is not answering: the values read last stay.
    pub fn refresh_stats(&mut self) {
        let mut after = Some(0);
        while let Some(a) = after {
            after = self.refresh_stats_slice(a, usize::MAX);
        }
    }

    /// [`Host::refresh_stats`] for at most `max` provisioned instances numbered above `after`:
    /// the last one read when more remain, else None (the pools then updated). The host thread
    /// reads its instances so, in slices between jobs.
    pub fn refresh_stats_slice(&mut self, after: u32, max: usize) -> Option<u32> {
        if !self.libvirt_answers() {
            return None;
        }
        let Ok(slots) = self.state.slots() else { return None };
        let mut todo: Vec<(u32, Slot)> = slots
            .into_iter()
            .filter_map(|s| match (s.usage, s.instance) {
                (SlotUse::Assigned, Some(n)) if n > after => Some((n, s)),
                _ => None,
            })
            .collect();
        todo.sort_by_key(|(n, _)| *n);
        let more = todo.len() > max;
        todo.truncate(max);
        // One listing and one call per domain for the slice (not four calls per domain).
        let names: Vec<String> = todo.iter().map(|(_, s)| s.domain.clone()).collect();
        let polled = self.compute.poll(&names).during("reading the domains' states");
        let mut last = after;
        for (n, slot) in todo {
            // A failed read leaves the values read last.
            match &polled {
                Ok(p) => self.show_polled(n, &slot, p.get(&slot.domain).copied()),
                Err(e) => tracing::warn!(instance = n, "reading its state: {e}"),
            }
            last = n;
        }
        if more {
            return Some(last);
        }
        self.update_pools();
        None
    }

    /// Instance `n`'s status, address, domain and (unless shut off) CPU time and memory, read
    /// from libvirt now.
    pub(super) fn refresh_instance(&mut self, n: u32, slot: &Slot) -> Result<()> {
        let st = self.compute.state(&slot.domain).during("reading the domain's state")?;
        let stats = match st {
            Some(s) if s != DomState::ShutOff => {
                Some(self.compute.stats(&slot.domain).during("reading the domain's statistics")?)
            }
            _ => None,
        };
        self.show_polled(n, slot, st.map(|state| Polled { state, stats }));
        Ok(())
    }

    /// Shows what libvirt said of instance `n`'s domain (`None`: there is no such domain).
    fn show_polled(&mut self, n: u32, slot: &Slot, polled: Option<Polled>) {
        let i = Instance::at(n);
        // A domain between two states (starting, shutting down) keeps the status it had.
        if let Some(status) = polled.map_or(Some(InstanceStatus::Error), |p| p.state.status()) {
            self.set_status(n, status);
        }
        let ip = slot.mgmt_address.split('/').next().unwrap_or("").to_string();
        self.set_internal(&i.management_address(), Value::String(ip));
        self.set_internal(&i.domain(), Value::String(slot.domain.clone()));
        if let Some(stats) = polled.and_then(|p| p.stats) {
            self.set_internal(&i.cpu_time(), Value::UnsignedLong(stats.cpu_time_ns / 1_000_000));
            self.set_internal(&i.memory_kib(), Value::UnsignedInt(u32::try_from(stats.memory_kib).unwrap_or(u32::MAX)));
        }
    }

    /// Pushes their profiles to instances whose proxies answer and do not have them yet (a
    /// vRGW that just booted, or one that answers again after missing a deadline; those waiting
    /// out their backoff are not called). How many are in sync. A proxy that accepted and did
    /// not answer gets its instance's `LastError`.
    pub fn sync_proxies(&mut self) -> usize {
        let key = self.model.parameter_key().to_string();
        let mut synced = 0;
        let mut failed = Vec::new();
        for (n, m) in &self.mounts {
            match m.sync(&key) {
                Ok(true) => synced += 1,
                Ok(false) => {}
                Err(f) => {
                    tracing::warn!(instance = n, "pushing its profile: {}", f.string);
                    failed.push((*n, f.string));
                }
            }
        }
        // A vRGW that accepts and does not answer is reported on its own instance.
        for (n, why) in failed {
            self.set_internal(&Instance::at(n).last_error(), Value::String(why));
        }
        synced
    }
}
