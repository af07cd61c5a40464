//! The host's side of virtual CWMP devices (TR-069 Annex J.2, see [`crate::vdevice`]): which
//! instances are managed so, their DeviceIds, the host's `ManagementServer.VirtualDevice` table,
//! and their requests served through their vRGWs' mounts.

use cwmp::{Body, DeviceId, Fault, FaultCode};
use datamodel::virtualization::{Instance, InstanceManagementMode, Template, TemplateManagementMode};

use super::{During, Host, HostError, Result};
use crate::compute::DomState;
use crate::state::SlotUse;
use crate::vdevice::VirtualDevice;

/// `Device.ManagementServer.VirtualDevice.` of the host.
const TABLE: &str = "Device.ManagementServer.VirtualDevice.";

/// Where the state of instance `n`'s virtual device waits after it came with a migration
/// (`{"key", "state", "booted"}`), until the device starts here.
pub fn arrived_key(n: u32) -> String {
    format!("arrived/{n}")
}

impl Host {
    /// How instance `n` is managed: its own `ManagementMode`, or its template's.
    pub fn management_mode(&self, n: u32) -> TemplateManagementMode {
        match self.string(&Instance::at(n).management_mode()).parse() {
            Ok(InstanceManagementMode::Embedded) => TemplateManagementMode::Embedded,
            Ok(InstanceManagementMode::Virtual) => TemplateManagementMode::Virtual,
            Ok(InstanceManagementMode::Both) => TemplateManagementMode::Both,
            Ok(InstanceManagementMode::Template) | Err(_) => match self.wanted(n).template {
                Some(t) => self.string(&Template::at(t).management_mode()).parse().unwrap_or_default(),
                None => TemplateManagementMode::default(),
            },
        }
    }

    /// Whether instance `n` is embedded in the host's data model (Annex J.3).
    pub fn embedded(&self, n: u32) -> bool {
        self.management_mode(n) != TemplateManagementMode::Virtual
    }

    /// The host's own DeviceId, as its data model shows it.
    pub fn device_id(&self) -> DeviceId {
        let info = |n: &str| self.string(&format!("Device.DeviceInfo.{n}"));
        DeviceId {
            manufacturer: info("Manufacturer"),
            oui: info("ManufacturerOUI"),
            product_class: info("ProductClass"),
            serial_number: info("SerialNumber"),
        }
    }

    /// Every instance managed as a virtual device, with its DeviceId: provisioned here (its
    /// vRGW bound to a slot), with a Subscriber (its SerialNumber, the same on any host and
    /// across pool rebinding or replacement), in mode Virtual or Both. Its ManufacturerOUI and
    /// Manufacturer are the host's, its ProductClass the template's.
    pub fn virtual_devices(&self) -> Vec<(u32, DeviceId)> {
        let slots = match self.state.slots() {
            Ok(slots) => slots,
            Err(e) => {
                tracing::error!("virtual devices not listed: reading the slots: {e}");
                return Vec::new();
            }
        };
        let mut out: Vec<(u32, DeviceId)> = slots
            .into_iter()
            .filter(|s| s.usage == SlotUse::Assigned)
            .filter_map(|s| s.instance)
            .filter(|n| self.management_mode(*n) != TemplateManagementMode::Embedded)
            .filter_map(|n| Some((n, self.virtual_device_id(n)?)))
            .collect();
        out.sort_by_key(|(n, _)| *n);
        out
    }

    /// The DeviceId instance `n` has as a virtual device (whatever its mode): none without a
    /// Subscriber or a template.
    pub fn virtual_device_id(&self, n: u32) -> Option<DeviceId> {
        let subscriber = self.string(&Instance::at(n).subscriber());
        let template = self.wanted(n).template?;
        let host = self.device_id();
        (!subscriber.is_empty()).then(|| DeviceId {
            manufacturer: host.manufacturer,
            oui: host.oui,
            product_class: self.string(&Template::at(template).product_class()),
            serial_number: subscriber,
        })
    }

    /// What travels with instance `n`'s vRGW to another host, as JSON: its profile, and when
    /// it is a virtual device its own state as well (`booted`: it starts afresh there, a cold
    /// migration), so that it continues there as the same device. See [`Host::arrived`].
    pub(super) fn carried(&self, n: u32, booted: bool) -> Option<String> {
        let profile = self.mounts.get(&n)?.profile();
        let own = (self.management_mode(n) != TemplateManagementMode::Embedded)
            .then(|| self.virtual_device_id(n))
            .flatten()
            .and_then(|id| match self.state.virtual_device(&id.key()) {
                Ok(s) => s.map(|s| (id.key(), s)),
                Err(e) => {
                    tracing::error!(instance = n, "the virtual device's state does not go along: {e}");
                    None
                }
            });
        let firmware = self.string(&Instance::at(n).firmware());
        let json = if own.is_none() && firmware.is_empty() {
            serde_json::to_string(&profile)
        } else {
            let mut j = serde_json::json!({ "profile": profile });
            if let Some((key, state)) = own {
                j["virtual_device"] = serde_json::json!({"key": key, "state": state, "booted": booted});
            }
            if !firmware.is_empty() {
                j["firmware"] = serde_json::Value::String(firmware);
            }
            serde_json::to_string(&j)
        };
        json.inspect_err(|e| tracing::error!(instance = n, "the configuration does not go along: {e}")).ok()
    }

    /// The profile that came with instance `n`'s vRGW from another host (see [`Host::carried`]);
    /// a virtual device's state that came with it is kept as [`arrived_key`]`(n)` until its
    /// device starts here. The firmware a Download installed at the source becomes this
    /// instance's when `take_firmware` (its domain came along, Live or ColdImage) and the image is
    /// at the same path here; otherwise the vRGW runs its template's image here, and says so.
    pub(super) fn arrived(
        &mut self,
        n: u32,
        json: &str,
        take_firmware: bool,
    ) -> std::result::Result<datamodel::tree::Snapshot, String> {
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if v.get("virtual_device").is_none() && v.get("firmware").is_none() {
            return serde_json::from_value(v).map_err(|e| e.to_string());
        }
        if let Some(own) = v.get("virtual_device") {
            if let Err(e) = self.state.save_virtual_device(&arrived_key(n), own) {
                tracing::error!(instance = n, "the virtual device's state that came along is not kept: {e}");
            }
        }
        if let Some(firmware) = v["firmware"].as_str().filter(|f| !f.is_empty()) {
            if take_firmware && std::path::Path::new(firmware).is_file() {
                self.set_internal(&Instance::at(n).firmware(), cwmp::Value::String(firmware.to_string()));
                tracing::info!(instance = n, firmware, "the vRGW's firmware came along");
            } else {
                tracing::warn!(instance = n, firmware,
                    "the vRGW's firmware is not on this host (or a pooled vRGW took over): it runs its template's image here; download the firmware to it again");
            }
        }
        serde_json::from_value(v.get("profile").cloned().unwrap_or_default()).map_err(|e| e.to_string())
    }

    /// `ManagementServer.VirtualDevice`: one row per virtual device, kept in step; and the
    /// embedded view of each instance (`Instance.{i}.Device.`) shown only when the instance is
    /// not a virtual device alone (mode Virtual): its vRGW stays mounted for its virtual device.
    pub(super) fn sync_virtual_devices(&mut self) {
        use std::collections::HashSet;
        let devices = self.virtual_devices();
        // Sets, not lists: this runs after every change of an instance, with thousands of them.
        let hidden: HashSet<u32> = devices.iter().filter(|(n, _)| !self.embedded(*n)).map(|(n, _)| *n).collect();
        let shown: HashSet<String> = self.model.mounts().map(str::to_string).collect();
        for (n, m) in &self.mounts {
            let prefix = Instance::at(*n).device().path().to_string();
            match (hidden.contains(n), shown.contains(&prefix)) {
                (true, true) => {
                    tracing::info!(instance = n, "managed as a virtual device alone: its embedded view is hidden");
                    let _ = self.model.unmount(&prefix);
                }
                (false, false) => self.model.mount(&prefix, Box::new(m.clone())),
                _ => {}
            }
        }
        let wanted: HashSet<(String, String, String)> =
            devices.into_iter().map(|(_, id)| (id.oui, id.product_class, id.serial_number)).collect();
        let row = |host: &Host, i: u32| {
            let v = |n: &str| host.string(&format!("{TABLE}{i}.{n}"));
            (v("ManufacturerOUI"), v("ProductClass"), v("SerialNumber"))
        };
        let mut have = HashSet::new();
        for i in self.model.root().instances(TABLE) {
            let r = row(self, i);
            if wanted.contains(&r) {
                have.insert(r);
            } else {
                let _ = self.model.root_mut().delete_object_internal(&format!("{TABLE}{i}."));
            }
        }
        let mut missing: Vec<_> = wanted.difference(&have).cloned().collect();
        missing.sort();
        for (oui, product_class, serial) in missing {
            match self.model.root_mut().add_object_internal(TABLE) {
                Ok(i) => {
                    let p = format!("{TABLE}{i}.");
                    self.set_internal(&format!("{p}ManufacturerOUI"), cwmp::Value::String(oui));
                    self.set_internal(&format!("{p}ProductClass"), cwmp::Value::String(product_class));
                    self.set_internal(&format!("{p}SerialNumber"), cwmp::Value::String(serial));
                }
                Err(f) => tracing::error!("virtual device row: {}", f.string),
            }
        }
    }

    /// Serves one request of instance `n`'s virtual device through its vRGW's mount; what it
    /// changed is saved as the host's own changes are.
    pub fn serve_virtual(&mut self, n: u32, device: &mut VirtualDevice, req: &Body) -> Body {
        let Some(mount) = self.mounts.get_mut(&n) else {
            return Body::Fault(Fault::with_string(
                FaultCode::InternalError,
                format!("instance {n} has no vRGW on this host (deleted or migrated)"),
            ));
        };
        let resp = device.serve(mount, req);
        let changed = matches!(
            resp,
            Body::SetParameterValuesResponse(_) | Body::AddObjectResponse(_) | Body::DeleteObjectResponse(_)
        );
        // Only this vRGW's profile changed (the host's own model did not): only it is written.
        if changed {
            if let Err(e) = self.state.save_profile(n, &mount.profile()) {
                tracing::error!(instance = n, "saving the vRGW's profile: {e}");
            }
        }
        resp
    }

    /// Restarts instance `n`'s vRGW (its virtual device's Reboot): its domain stopped and started
    /// again, then brought to its `RequestedState`; its proxy gets the profile again once it
    /// answers (a vRGW keeps nothing the agent does not).
    pub fn restart_instance(&mut self, n: u32) -> Result<()> {
        let slot = self
            .state
            .slot_of(n)?
            .filter(|s| s.usage == SlotUse::Assigned)
            .ok_or_else(|| HostError::Refused(format!("instance {n} has no vRGW running on this host")))?;
        match self.compute.state(&slot.domain).during("reading the domain's state")? {
            None => return Err(HostError::DomainMissing(slot.domain.clone())),
            Some(DomState::Running | DomState::Paused) => {
                self.compute.stop(&slot.domain).during("stopping the domain")?
            }
            Some(_) => {}
        }
        self.compute.start(&slot.domain).during("starting the domain")?;
        self.attach(n, &slot)?;
        tracing::info!(instance = n, domain = %slot.domain, "vRGW restarted");
        self.converge_only(&[n]);
        Ok(())
    }

    /// Makes instance `n`'s vRGW run `image` (a firmware a Download to its virtual device
    /// stored, see [`crate::firmware`]): `Instance.{i}.Firmware` names it, and the domain is
    /// rebuilt from it (stopped, its overlay made again over it for a disk template, defined,
    /// started); the configuration stays, as its profile goes to the new vRGW's proxy once it
    /// answers. A firmware of the other kind than the template's boot is refused, and a failed
    /// rebuild puts the previous firmware back.
    pub fn install_firmware(&mut self, n: u32, image: &std::path::Path) -> Result<()> {
        let slot = self
            .state
            .slot_of(n)?
            .filter(|s| s.usage == SlotUse::Assigned)
            .ok_or_else(|| HostError::Refused(format!("instance {n} has no vRGW running on this host")))?;
        if self.is_container(slot.template) {
            return Err(HostError::Refused(
                "a container vRGW runs its template's root file system; firmware images are for VM templates".into(),
            ));
        }
        let path = image.display().to_string();
        let disk_template = self.string(&Template::at(slot.template).image()).ends_with(".qcow2");
        let kind = crate::firmware::Kind::of_path(&path);
        if disk_template != (kind == crate::firmware::Kind::Disk) {
            return Err(HostError::Refused(format!(
                "a {} for a template that boots {}",
                if kind == crate::firmware::Kind::Disk { "disk image" } else { "initramfs" },
                if disk_template { "a disk image" } else { "a kernel and an initramfs" }
            )));
        }
        let firmware = Instance::at(n).firmware();
        let previous = self.string(&firmware);
        self.set_internal(&firmware, cwmp::Value::String(path.clone()));
        match self.rebuild(n, &slot) {
            Ok(()) => {
                self.save()?;
                tracing::info!(instance = n, firmware = %path, "vRGW rebuilt from a new firmware");
                Ok(())
            }
            Err(e) => {
                tracing::error!(instance = n, firmware = %path, "rebuilding the vRGW: {e}; back to its previous firmware");
                self.set_internal(&firmware, cwmp::Value::String(previous));
                if let Err(again) = self.rebuild(n, &slot) {
                    tracing::error!(instance = n, "rebuilding the vRGW on its previous firmware: {again}");
                }
                Err(e)
            }
        }
    }

    /// Stops instance `n`'s domain, defines it again from its template and firmware (a disk
    /// template's overlay made again), starts it and points its mount at it.
    fn rebuild(&mut self, n: u32, slot: &crate::state::Slot) -> Result<()> {
        if let Some(DomState::Running | DomState::Paused) =
            self.compute.state(&slot.domain).during("reading the domain's state")?
        {
            self.compute.stop(&slot.domain).during("stopping the domain")?;
        }
        let w = self.wanted(n);
        let nic = self.vlan.lan_nic(Some((w.svlan, w.cvlan))).during("choosing the LAN bridge")?;
        let spec = self.spec(slot, &nic)?;
        if let crate::domain::Boot::Disk { overlay } = &spec.boot {
            match std::fs::remove_file(overlay) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(HostError::Io { op: "removing the old overlay", source: e })
                }
                _ => {}
            }
        }
        self.compose_image(&spec, slot)?;
        self.define_domain(&spec)?;
        self.compute.start(&slot.domain).during("starting the domain")?;
        self.attach(n, slot)?;
        self.converge_only(&[n]);
        Ok(())
    }

    /// Returns instance `n`'s vRGW to its factory configuration (its virtual device's
    /// FactoryReset): the profile becomes the vRGW's defaults (what the ACS sets at the BOOTSTRAP
    /// that follows comes on top: presets, the subscriber's web-form profile), the proxy resets
    /// to its own, and the vRGW restarts.
    pub fn factory_reset_instance(&mut self, n: u32) -> Result<()> {
        let Some(m) = self.mounts.get(&n) else {
            return Err(HostError::Refused(format!("instance {n} has no vRGW on this host")));
        };
        m.factory_reset(datamodel::factory::vrgw(&n.to_string())).map_err(|f| HostError::Proxy(f.string))?;
        self.state.save_profile(n, &m.profile())?;
        tracing::info!(instance = n, "vRGW back to its factory configuration");
        self.restart_instance(n)
    }

    /// Polls instance `n`'s virtual device's parameters with notification on (through its
    /// vRGW's mount); whether one with active notification changed.
    pub fn virtual_value_changes(&self, n: u32, device: &mut VirtualDevice) -> bool {
        match self.mounts.get(&n) {
            Some(m) => device.poll_value_changes(m),
            None => false,
        }
    }

    /// The parameters instance `n`'s virtual device's Inform carries (read through its mount).
    pub fn virtual_inform(&self, n: u32, device: &VirtualDevice) -> Vec<cwmp::ParameterValue> {
        match self.mounts.get(&n) {
            Some(m) => device.inform_parameters(m),
            None => Vec::new(),
        }
    }
}
