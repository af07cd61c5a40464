//! The TR-181 topology mirror: the trunk, its VLAN terminations and the embedded devices,
//! kept in step with the switch bindings of the instances.

use std::collections::{HashMap, HashSet};

use cwmp::Value;

use datamodel::virtualization::Instance;

use super::Host;
use crate::state::SlotUse;

impl Host {
    /// The trunk as TR-181 shows it, kept in step with the instances: `Ethernet.Interface.1` is
    /// the trunk, an `Ethernet.VLANTermination` per S-VLAN in use (TPID 0x88A8, on the trunk) and
    /// one per bound subscriber (its C-VLAN, TPID 0x8100, stacked on its S-VLAN's row through
    /// LowerLayers); `ManagementServer.EmbeddedDevice` lists each provisioned vRGW embedded in the
    /// host's model (TR-069 Annex J.3) with the path of its embedded data model, and
    /// `ManagementServer.VirtualDevice` each managed as a device of its own (Annex J.2). Rows the agent made carry the aliases
    /// `svlan-S` and `cvlan-S-C`; rows the ACS made itself are left alone.
    pub(super) fn sync_topology(&mut self) {
        let mut bound: Vec<(u32, u16, u16)> = Vec::new();
        let slots = match self.state.slots() {
            Ok(slots) => slots,
            Err(e) => {
                tracing::error!("the TR-181 topology is not updated: reading the slots: {e}");
                return;
            }
        };
        for slot in slots {
            if let (SlotUse::Assigned, Some(n)) = (slot.usage, slot.instance) {
                let w = self.wanted(n);
                if w.svlan != 0 && w.cvlan != 0 {
                    bound.push((n, w.svlan, w.cvlan));
                }
            }
        }
        let eth = "Device.Ethernet.Interface.";
        let trunk = match self.model.root().instances(eth).first() {
            Some(&i) => i,
            None => match self.model.root_mut().add_object_internal(eth) {
                Ok(i) => {
                    let p = format!("{eth}{i}.");
                    self.set_internal(&format!("{p}Alias"), Value::String("trunk".into()));
                    self.set_internal(&format!("{p}Name"), Value::String(format!("{}-trunk", self.cfg.port_prefix)));
                    self.set_internal(&format!("{p}Enable"), Value::Boolean(true));
                    self.set_internal(&format!("{p}Status"), Value::String("Up".into()));
                    i
                }
                Err(f) => return tracing::error!("trunk interface row: {}", f.string),
            },
        };
        let vt = "Device.Ethernet.VLANTermination.";
        // Rows by alias (sets and maps throughout: a host has a row per subscriber, and this
        // runs after every change of an instance).
        let mut row_of: HashMap<String, u32> = HashMap::new();
        let rows: Vec<(u32, String)> =
            self.model.root().instances(vt).into_iter().map(|i| (i, self.string(&format!("{vt}{i}.Alias")))).collect();
        for (i, alias) in &rows {
            row_of.entry(alias.clone()).or_insert(*i);
        }
        let mut svlans: Vec<u16> = bound.iter().map(|b| b.1).collect();
        svlans.sort_unstable();
        svlans.dedup();
        let wanted_aliases: HashSet<String> = svlans
            .iter()
            .map(|s| format!("svlan-{s}"))
            .chain(bound.iter().map(|(_, s, c)| format!("cvlan-{s}-{c}")))
            .collect();
        // Stale rows first (C-VLAN rows before the S-VLAN rows they stack on).
        for (i, alias) in rows.iter().rev() {
            let ours = alias.starts_with("svlan-") || alias.starts_with("cvlan-");
            if ours && !wanted_aliases.contains(alias) {
                let _ = self.model.root_mut().delete_object_internal(&format!("{vt}{i}."));
                row_of.remove(alias);
            }
        }
        let add =
            |host: &mut Host, row_of: &mut HashMap<String, u32>, alias: String, vlan: u16, tpid: u32, lower: String| {
                if row_of.contains_key(&alias) {
                    return;
                }
                match host.model.root_mut().add_object_internal(vt) {
                    Ok(i) => {
                        let p = format!("{vt}{i}.");
                        host.set_internal(&format!("{p}Alias"), Value::String(alias.clone()));
                        host.set_internal(&format!("{p}Name"), Value::String(alias.clone()));
                        host.set_internal(&format!("{p}VLANID"), Value::UnsignedInt(u32::from(vlan)));
                        host.set_internal(&format!("{p}TPID"), Value::UnsignedInt(tpid));
                        host.set_internal(&format!("{p}LowerLayers"), Value::String(lower));
                        host.set_internal(&format!("{p}Enable"), Value::Boolean(true));
                        host.set_internal(&format!("{p}Status"), Value::String("Up".into()));
                        row_of.insert(alias, i);
                    }
                    Err(f) => tracing::error!(alias, "VLAN termination row: {}", f.string),
                }
            };
        for s in &svlans {
            add(self, &mut row_of, format!("svlan-{s}"), *s, 0x88A8, format!("{eth}{trunk}"));
        }
        for (_, s, c) in &bound {
            let lower = row_of.get(&format!("svlan-{s}")).map(|i| format!("{vt}{i}")).unwrap_or_default();
            add(self, &mut row_of, format!("cvlan-{s}-{c}"), *c, 0x8100, lower);
        }
        // Embedded devices: one per provisioned instance managed so (Annex J.3); the others are
        // virtual devices of their own (Annex J.2).
        self.sync_virtual_devices();
        bound.retain(|(n, _, _)| self.embedded(*n));
        let ed = "Device.ManagementServer.EmbeddedDevice.";
        let refs: HashSet<String> =
            bound.iter().map(|(n, _, _)| Instance::at(*n).device().path().to_string()).collect();
        for i in self.model.root().instances(ed) {
            let r = self.string(&format!("{ed}{i}.Reference"));
            if !refs.contains(&r) {
                let _ = self.model.root_mut().delete_object_internal(&format!("{ed}{i}."));
            }
        }
        let have: HashSet<String> =
            self.model.root().instances(ed).into_iter().map(|i| self.string(&format!("{ed}{i}.Reference"))).collect();
        for (n, _, _) in &bound {
            let reference = Instance::at(*n).device().path().to_string();
            if have.contains(&reference) {
                continue;
            }
            if let Ok(i) = self.model.root_mut().add_object_internal(ed) {
                let p = format!("{ed}{i}.");
                let subscriber = self.string(&Instance::at(*n).subscriber());
                let id = if subscriber.is_empty() { format!("instance-{n}") } else { subscriber };
                self.set_internal(&format!("{p}ControllerID"), Value::String(self.cfg.agent_id.clone()));
                self.set_internal(&format!("{p}ProxiedDeviceID"), Value::String(id));
                self.set_internal(&format!("{p}Reference"), Value::String(reference));
                self.set_internal(&format!("{p}CommandProcessed"), Value::String("Success".into()));
            }
        }
    }
}
