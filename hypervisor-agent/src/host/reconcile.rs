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

    /// Status, CPU time and memory of the instances a GetParameterValues of `names` covers (a
    /// path above the Instance table covers them all), read from libvirt now, 50 domains per
    /// call. Nothing while libvirt is not answering: the values read last stay.
    pub fn refresh_named(&mut self, names: &[String]) {
        if !self.libvirt_answers() {
            return;
        }
        let Ok(slots) = self.state.slots() else { return };
        let covered = |n: u32| {
            let row = Instance::at(n);
            names.iter().any(|name| row.path().starts_with(name.as_str()) || name.starts_with(row.path()))
        };
        let todo: Vec<(u32, Slot)> = assigned(slots).into_iter().filter(|(n, _)| covered(*n)).collect();
        for chunk in todo.chunks(50) {
            let names: Vec<String> = chunk.iter().map(|(_, s)| s.domain.clone()).collect();
            match self.compute.poll(&names).during("reading the domains' states") {
                Ok(polled) => {
                    for (n, slot) in chunk {
                        self.show_polled(*n, slot, polled.get(&slot.domain).copied());
                    }
                }
                Err(e) => {
                    tracing::warn!("reading the instances' states: {e}");
                    return;
                }
            }
        }
        self.update_pools();
    }

    /// One slice of the periodic poll: at most `max` provisioned instances numbered above
    /// `after`; the last one read when more remain, else None (the pools then updated). The host
    /// thread reads its instances so, in slices between jobs.
    ///
    /// A round (`after` 0) begins with every domain's state from a few listings
    /// ([`crate::compute::Compute::states`]); then each slice reads, one domain at a time, the
    /// CPU time and memory of the instances due for them this round (at most `stats_per_round`,
    /// going round the instances: at a thousand domains, reading them all every round cost
    /// libvirtd a third of a core) and the state of any whose listed state differs from the
    /// status shown or that the listings missed (one changing state between two listings, or
    /// gone): a listing never overrides what a job showed after it. Nothing while libvirt is not
    /// answering: the values read last stay.
    pub fn refresh_stats_slice(&mut self, after: u32, max: usize) -> Option<u32> {
        if !self.libvirt_answers() {
            return None;
        }
        let Ok(slots) = self.state.slots() else { return None };
        let mut todo = assigned(slots);
        if after == 0 {
            match self.compute.states().during("listing the domains' states") {
                Ok(states) => self.round.states = states,
                Err(e) => {
                    tracing::warn!("reading the domains' states: {e}");
                    return None;
                }
            }
            let numbers: Vec<u32> = todo.iter().map(|(n, _)| *n).collect();
            self.round.stats_due = self.round.next_due(&numbers, self.stats_per_round);
        }
        todo.retain(|(n, _)| *n > after);
        let more = todo.len() > max;
        todo.truncate(max);
        // Asked by name: those due for statistics, and those whose listed state is not the
        // status shown (a change, to be confirmed: a job between two slices may have changed the
        // domain since the listing), is between two states, or was not listed.
        let ask: Vec<String> = todo
            .iter()
            .filter(|(n, s)| {
                let listed = self.round.states.get(&s.domain).and_then(|st| st.status());
                self.round.stats_due.contains(n)
                    || listed.is_none_or(|st| self.string(&Instance::at(*n).status()) != st.as_str())
            })
            .map(|(_, s)| s.domain.clone())
            .collect();
        let polled = if ask.is_empty() {
            Ok(std::collections::HashMap::new())
        } else {
            self.compute.poll(&ask).during("reading the domains' states")
        };
        let mut last = after;
        for (n, slot) in todo {
            last = n;
            let seen = if ask.contains(&slot.domain) {
                match &polled {
                    Ok(p) => p.get(&slot.domain).copied(),
                    // A failed read leaves the values read last.
                    Err(e) => {
                        tracing::warn!(instance = n, "reading its state: {e}");
                        continue;
                    }
                }
            } else {
                // Its status unchanged; its statistics stay those read last.
                self.round.states.get(&slot.domain).map(|&state| Polled { state, stats: None })
            };
            self.show_polled(n, &slot, seen);
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

/// The provisioned instances' numbers and slots, in order.
fn assigned(slots: Vec<Slot>) -> Vec<(u32, Slot)> {
    let mut out: Vec<(u32, Slot)> = slots
        .into_iter()
        .filter_map(|s| match (s.usage, s.instance) {
            (SlotUse::Assigned, Some(n)) => Some((n, s)),
            _ => None,
        })
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out
}

/// The periodic poll's round under way.
#[derive(Debug, Default)]
pub(super) struct PollRound {
    /// Every domain's state, listed when the round began.
    states: std::collections::HashMap<String, DomState>,
    /// The instances whose statistics this round reads.
    stats_due: std::collections::BTreeSet<u32>,
    /// The last instance whose statistics a round read: the next round goes on after it.
    cursor: u32,
}

impl PollRound {
    /// The next `per_round` of `numbers` (in order) after the cursor, from the start again past
    /// the end; all of them when they are no more.
    fn next_due(&mut self, numbers: &[u32], per_round: usize) -> std::collections::BTreeSet<u32> {
        if numbers.len() <= per_round {
            return numbers.iter().copied().collect();
        }
        let from = numbers.partition_point(|n| *n <= self.cursor);
        let due: Vec<u32> = numbers[from..].iter().chain(&numbers[..from]).take(per_round).copied().collect();
        self.cursor = due.last().copied().unwrap_or(0);
        due.into_iter().collect()
    }
}
