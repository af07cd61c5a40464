//! Moving an instance between hosts, as data-model operations on `Instance.{i}.Migration.`.
//!
//! The ACS orchestrates (docs/migration.md): it adds the instance on the destination with
//! `Migration.Command` `Prepare`, tells the source `Start`, the destination `Complete`, and either
//! side `Abort` when a step failed. This module is one host's part; every step is saved in the
//! slot's use (`Incoming`, `Outgoing`) before resources are touched, so a restarted agent knows
//! where the vRGW runs ([`Host::reconcile_migrations`]), and a failure leaves it running at
//! exactly one place.
//!
//! | mode        | destination Prepare                                   | source Start                       | destination Complete                 |
//! |-------------|-------------------------------------------------------|------------------------------------|--------------------------------------|
//! | Live        | reads the domain from the source's libvirt, defines it here with the same UUID, MACs and addresses, binds its VLAN (mirrored trunk) | libvirt live migration peer to peer into that definition; then its port and VLAN go | checks it runs here, binds its port |
//! | ColdImage   | checks the source's libvirt answers                   | stops the domain, writes the configuration into its definition, unbinds | reads the definition (and the configuration) from the source, defines and starts it here, binds |
//! | ColdContext | resumes a pooled domain, unbound (the ACS then sets the configuration) | suspends the domain, unbinds | binds the pooled domain's port |

use std::time::Instant;

use cwmp::{DateTime, Value};
use datamodel::{Schema, Tree};

use datamodel::virtualization::{
    Instance, InstanceStatus, Migration, MigrationCommand, MigrationMode, MigrationStatus, Template,
};

use super::{During, Host, HostError, Result};
use crate::compute::{DomState, LiveMigration};
use crate::domain::identity_of;
use crate::proxy::ProxyMount;
use crate::state::{Slot, SlotUse};

/// A live migration running on a thread of its own.
#[derive(Debug)]
pub(super) struct LiveJob {
    started: Instant,
    result: Option<std::result::Result<LiveMigration, String>>,
}

#[cfg(test)]
impl LiveJob {
    /// A live migration still under way.
    pub(super) fn running() -> LiveJob {
        LiveJob { started: Instant::now(), result: None }
    }
}

/// Shared between the host thread and the migration threads.
pub(super) type LiveJobs = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<u32, LiveJob>>>;

fn now() -> Value {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    Value::DateTime(DateTime::from_unix(secs))
}

fn ms(since: Instant) -> Value {
    Value::UnsignedInt(u32::try_from(since.elapsed().as_millis()).unwrap_or(u32::MAX))
}

/// The migration URI QEMU's stream uses: `tcp://HOST` of a `qemu+tcp://HOST/system` peer
/// (without it the source dials the destination's host name).
fn stream_uri(peer: &str) -> String {
    let rest = peer.split_once("://").map_or(peer, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    // Strip the libvirtd port: QEMU picks its own from the destination's range.
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.ends_with(']') && !h.contains(':') => h,
        _ => host,
    };
    if host.is_empty() {
        String::new()
    } else {
        format!("tcp://{host}")
    }
}

impl Host {
    /// The migration mode of instance `n`'s row, if a migration manages it.
    pub(super) fn migration_mode(&self, n: u32) -> Option<MigrationMode> {
        self.string(&Migration::at(n).mode()).parse().ok().filter(|m| *m != MigrationMode::None)
    }

    fn mig_status(&mut self, n: u32, status: MigrationStatus, error: &str) {
        let m = Migration::at(n);
        self.set_internal(&m.status(), Value::String(status.as_str().into()));
        self.set_internal(&m.error(), Value::String(error.into()));
        if matches!(status, MigrationStatus::Completed | MigrationStatus::Aborted | MigrationStatus::Error) {
            self.set_internal(&m.end_time(), now());
        }
        match status {
            MigrationStatus::Error => tracing::error!(instance = n, "migration: {error}"),
            _ => tracing::info!(instance = n, status = status.as_str(), "migration"),
        }
    }

    /// Instance `n`'s slot; a failure of the store is logged (with what was being done) and
    /// read as none.
    fn slot_or_log(&self, n: u32, doing: &str) -> Option<Slot> {
        self.state.slot_of(n).unwrap_or_else(|e| {
            tracing::error!(instance = n, "{doing}: reading its slot: {e}");
            None
        })
    }

    /// The error for a step that needs a mode when `Migration.Mode` is `None`.
    fn no_mode(n: u32) -> HostError {
        HostError::InvalidValue { name: Migration::at(n).mode(), reason: "Migration.Mode is not set".into() }
    }

    /// Active notification on the migration's Status, so the ACS hears of every change.
    fn watch_status(&mut self, n: u32) {
        let a = cwmp::SetParameterAttribute {
            name: Migration::at(n).status(),
            notification_change: true,
            notification: cwmp::Notification::Active,
            access_list_change: false,
            access_list: Vec::new(),
        };
        if let Err(f) = self.model.set_parameter_attributes(std::slice::from_ref(&a)) {
            tracing::warn!(instance = n, "notification on the migration status: {}", f.string);
        }
    }

    /// Runs the `Migration.Command` just set on instance `n`. Failures are recorded in the
    /// migration's Status and Error (the set itself was valid), and returned.
    pub(super) fn migration_command(&mut self, n: u32) -> Result<()> {
        let command = self.string(&Migration::at(n).command()).parse::<MigrationCommand>();
        let Some(mode) = self.migration_mode(n) else {
            let e = Self::no_mode(n);
            self.mig_status(n, MigrationStatus::Error, &e.to_string());
            return Err(e);
        };
        let slot = match self.state.slot_of(n) {
            Ok(s) => s,
            Err(e) => {
                let e = HostError::from(e);
                self.mig_status(n, MigrationStatus::Error, &e.to_string());
                return Err(e);
            }
        };
        let status = self.string(&Migration::at(n).status()).parse::<MigrationStatus>().ok();
        let outcome = match (command, slot.as_ref().map(|s| s.usage)) {
            (Ok(MigrationCommand::Prepare), None) => self.prepare(n, mode),
            (Ok(MigrationCommand::Prepare), Some(_)) => {
                Err(HostError::Refused("this instance already runs here: it cannot be prepared".into()))
            }
            (Ok(MigrationCommand::Start), Some(SlotUse::Assigned)) => self.start_outgoing(n, mode),
            (Ok(MigrationCommand::Start), Some(SlotUse::Outgoing)) => Ok(()),
            (Ok(MigrationCommand::Start), _) => Err(HostError::Refused("no vRGW of this instance runs here".into())),
            (Ok(MigrationCommand::Complete), Some(SlotUse::Incoming)) => self.complete(n, mode),
            (Ok(MigrationCommand::Complete), None)
                if mode == MigrationMode::ColdImage && status == Some(MigrationStatus::Prepared) =>
            {
                self.complete(n, mode)
            }
            (Ok(MigrationCommand::Complete), Some(SlotUse::Assigned)) if status == Some(MigrationStatus::Completed) => {
                Ok(())
            }
            (Ok(MigrationCommand::Complete), _) => {
                Err(HostError::Refused("nothing was prepared here for this instance".into()))
            }
            (Ok(MigrationCommand::Abort), _) => self.abort(n, mode, slot),
            (Ok(MigrationCommand::None), _) => Err(HostError::InvalidValue {
                name: Migration::at(n).command(),
                reason: "command \"None\" does nothing".into(),
            }),
            (Err(e), _) => Err(HostError::InvalidValue { name: Migration::at(n).command(), reason: e.to_string() }),
        };
        if let Err(e) = &outcome {
            self.mig_status(n, MigrationStatus::Error, &e.to_string());
        }
        match self.slot_or_log(n, "after the migration command") {
            Some(s) if s.usage == SlotUse::Assigned => {
                let _ = self.refresh_instance(n, &s);
            }
            Some(_) => self.set_status(n, InstanceStatus::Migrating),
            None => {}
        }
        self.update_pools();
        self.sync_topology();
        if let Err(e) = self.save() {
            tracing::error!("saving the data model: {e}");
        }
        outcome
    }

    fn wanted_vlans(&self, n: u32) -> Result<(u32, u16, u16)> {
        let w = self.wanted(n);
        match (w.template, w.svlan, w.cvlan) {
            (Some(t), s, c) if s != 0 && c != 0 => Ok((t, s, c)),
            _ => Err(HostError::Refused("the instance needs a Template, an SVLAN and a CVLAN first".into())),
        }
    }

    fn peer(&self, n: u32) -> Result<(String, String)> {
        let peer = self.string(&Migration::at(n).peer());
        let dom = self.string(&Migration::at(n).peer_domain());
        if peer.is_empty() || dom.is_empty() {
            return Err(HostError::InvalidValue {
                name: if peer.is_empty() { Migration::at(n).peer() } else { Migration::at(n).peer_domain() },
                reason: "Migration.Peer and Migration.PeerDomain are needed for this mode".into(),
            });
        }
        // Checked when it was set, and again here: a value stored before the list changed.
        self.peer_allowed(&Migration::at(n).peer(), &peer)?;
        Ok((peer, dom))
    }

    /// Refuses a `Migration.Peer` (parameter `name`) that is not on the allow-list
    /// (`migration_peers`): the agent opens no other host's libvirt. An empty one names no peer.
    pub(super) fn peer_allowed(&self, name: &str, peer: &str) -> Result<()> {
        if peer.is_empty() || self.cfg.migration_peers.iter().any(|p| p == peer) {
            return Ok(());
        }
        Err(HostError::InvalidValue {
            name: name.to_string(),
            reason: format!("{peer} is not among this agent's migration peers (migration_peers)"),
        })
    }

    /// The source's domain `PeerDomain` as the source host's libvirt (`Peer`) gives it: (peer,
    /// domain, XML); its definition when `inactive`.
    fn source_xml(&self, n: u32, inactive: bool) -> Result<(String, String, String)> {
        let (peer, dom) = self.peer(n)?;
        let xml = self
            .compute
            .peer_xml(&peer, &dom, inactive)
            .map_err(|source| HostError::Peer { role: "source host", source })?
            .ok_or_else(|| HostError::InvalidValue {
                name: Migration::at(n).peer_domain(),
                reason: format!("no domain {dom} at {peer}"),
            })?;
        Ok((peer, dom, xml))
    }

    /// The identity of the vRGW the source runs (or ran): (peer, identity).
    fn source_identity(&self, n: u32, inactive: bool) -> Result<(String, crate::domain::Identity)> {
        let (peer, dom, xml) = self.source_xml(n, inactive)?;
        let id = identity_of(&xml).ok_or_else(|| HostError::InvalidValue {
            name: Migration::at(n).peer_domain(),
            reason: format!("{dom} at {peer} is not a vRGW"),
        })?;
        Ok((peer, id))
    }

    /// Refuses a live migration of a container: libvirt's LXC driver migrates nothing (9.0 has
    /// no migration support for it; docs/containers.md says what was tried).
    fn no_live_container(&self, template: u32, mode: MigrationMode, n: u32) -> Result<()> {
        if mode == MigrationMode::Live && self.is_container(template) {
            return Err(HostError::InvalidValue {
                name: Migration::at(n).mode(),
                reason: "a container vRGW cannot migrate live (libvirt's LXC driver has no migration): use ColdImage or ColdContext".into(),
            });
        }
        Ok(())
    }

    fn prepare(&mut self, n: u32, mode: MigrationMode) -> Result<()> {
        let started = Instant::now();
        self.set_internal(&Migration::at(n).start_time(), now());
        self.set_internal(&Migration::at(n).progress(), Value::UnsignedInt(0));
        self.watch_status(n);
        let (template, s, c) = self.wanted_vlans(n)?;
        self.no_live_container(template, mode, n)?;
        match mode {
            MigrationMode::None => return Err(Self::no_mode(n)),
            MigrationMode::Live => {
                let (peer, id) = self.source_identity(n, false)?;
                // The running guest keeps the secret it was given: the source's mark carries it.
                let secret = id.secret.clone().ok_or_else(|| HostError::InvalidValue {
                    name: Migration::at(n).peer_domain(),
                    reason: format!("{} at {peer} carries no proxy secret in its ownership mark", id.uuid),
                })?;
                let mgmt = |k: u32| self.mgmt_address(k);
                let slot = self.state.new_slot(&self.cfg.agent_id, template, None, &mgmt, "")?;
                self.state.set_identity(slot.id, &id.uuid, &id.macs, &id.mgmt_address, &secret)?;
                self.state.set_slot(slot.id, SlotUse::Incoming, Some(n))?;
                let slot = self.state.slot_of(n)?.ok_or_else(|| HostError::NoSlot(n))?;
                let port = self.lan_port(slot.id);
                let nic = self.vlan.lan_nic(Some((s, c))).during("choosing the LAN bridge")?;
                let mut spec = self.spec(&slot, &nic)?;
                spec.profile = id.profile.clone();
                // The mirrored trunk: this host carries the C-VLAN before the switch-over.
                self.vlan.bind(&port, s, c).during("binding the port")?;
                self.define_domain(&spec)?;
                self.set_internal(&Instance::at(n).domain(), Value::String(slot.domain.clone()));
                tracing::info!(instance = n, slot = slot.id, domain = %slot.domain, from = %peer, "ready for the live migration");
            }
            MigrationMode::ColdImage => {
                self.source_xml(n, true)?;
            }
            MigrationMode::ColdContext => {
                let pool = self.enabled_pool_of(template);
                let taken = match pool {
                    Some(k) => self.state.take_pooled(k)?,
                    None => None,
                };
                let Some(slot) = taken else {
                    return Err(HostError::ResourcesExceeded(format!(
                        "the destination pool is empty: no suspended instance of template {template} to take"
                    )));
                };
                self.state.set_slot(slot.id, SlotUse::Incoming, Some(n))?;
                self.compute.resume(&slot.domain).during("resuming the domain")?;
                self.attach(n, &slot)?;
                // What travels with the vRGW comes sealed to this key, through the ACS.
                let opener = crate::seal::Opener::new().map_err(|e| HostError::Refused(e.to_string()))?;
                self.set_internal(&Migration::at(n).key(), Value::String(opener.public_key()));
                self.openers.insert(n, opener);
                tracing::info!(instance = n, slot = slot.id, "a pooled vRGW takes the configuration, unbound");
            }
        }
        self.set_internal(&Migration::at(n).total_time(), ms(started));
        self.mig_status(n, MigrationStatus::Prepared, "");
        Ok(())
    }

    fn start_outgoing(&mut self, n: u32, mode: MigrationMode) -> Result<()> {
        let slot = self.state.slot_of(n)?.ok_or_else(|| HostError::NoSlot(n))?;
        self.no_live_container(slot.template, mode, n)?;
        let started = Instant::now();
        self.set_internal(&Migration::at(n).start_time(), now());
        self.set_internal(&Migration::at(n).progress(), Value::UnsignedInt(0));
        self.set_internal(&Migration::at(n).downtime(), Value::UnsignedInt(0));
        self.watch_status(n);
        let port = self.lan_port(slot.id);
        let profile = self.carried(n, mode != MigrationMode::Live);
        match mode {
            MigrationMode::None => return Err(Self::no_mode(n)),
            MigrationMode::Live => {
                let (peer, dom) = self.peer(n)?;
                let dest = self
                    .compute
                    .peer_xml(&peer, &dom, true)
                    .map_err(|source| HostError::Peer { role: "destination", source })?
                    .ok_or_else(|| HostError::Refused(format!("the destination has no domain {dom} prepared")))?;
                // The configuration travels in the destination's ownership mark.
                let dest = match &profile {
                    Some(p) => with_profile(&dest, p),
                    None => dest,
                };
                self.state.set_slot(slot.id, SlotUse::Outgoing, Some(n))?;
                let jobs = self.live.clone();
                let compute = self.compute.clone();
                let name = slot.domain.clone();
                let stream = stream_uri(&peer);
                jobs.lock().unwrap_or_else(|e| e.into_inner()).insert(n, LiveJob { started, result: None });
                std::thread::Builder::new()
                    .name(format!("migrate-{n}"))
                    .spawn(move || {
                        let r = compute.migrate_live(&name, &peer, &stream, &dest).map_err(|e| e.to_string());
                        if let Some(j) = jobs.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&n) {
                            j.result = Some(r);
                        }
                    })
                    .map_err(|source| HostError::Io { op: "starting the migration thread", source })?;
                self.mig_status(n, MigrationStatus::Migrating, "");
                tracing::info!(instance = n, domain = %slot.domain, to = %self.string(&Migration::at(n).peer()), "live migration started");
            }
            MigrationMode::ColdImage => {
                self.state.set_slot(slot.id, SlotUse::Outgoing, Some(n))?;
                self.compute.stop(&slot.domain).during("stopping the domain")?;
                let nic = self
                    .vlan
                    .lan_nic(Some((self.wanted(n).svlan, self.wanted(n).cvlan)))
                    .during("choosing the LAN bridge")?;
                let mut spec = self.spec(&slot, &nic)?;
                // The definition (same UUID: `define` keeps it) now carries the configuration.
                spec.profile = profile;
                self.define_domain(&spec)?;
                self.vlan.release(&port).during("releasing the port")?;
                if let Some(m) = self.mounts.get(&n) {
                    m.detach();
                }
                self.set_internal(&Migration::at(n).progress(), Value::UnsignedInt(50));
                self.set_internal(&Migration::at(n).total_time(), ms(started));
                self.mig_status(n, MigrationStatus::Stopped, "");
            }
            MigrationMode::ColdContext => {
                // Sealed to the destination's key, or nothing travels this way (an ACS that
                // copies the configuration value by value, as before).
                let peer_key = self.string(&Migration::at(n).peer_key());
                let context = match (&profile, peer_key.is_empty()) {
                    (Some(p), false) => crate::seal::seal(&peer_key, p.as_bytes()).map_err(|e| {
                        HostError::InvalidValue { name: Migration::at(n).peer_key(), reason: e.to_string() }
                    })?,
                    _ => String::new(),
                };
                self.set_internal(&Migration::at(n).context(), Value::String(context));
                self.state.set_slot(slot.id, SlotUse::Outgoing, Some(n))?;
                self.compute.suspend(&slot.domain).during("suspending the domain")?;
                self.vlan.unbind(&port).during("unbinding the port")?;
                self.set_internal(&Migration::at(n).progress(), Value::UnsignedInt(50));
                self.set_internal(&Migration::at(n).total_time(), ms(started));
                self.mig_status(n, MigrationStatus::Stopped, "");
            }
        }
        Ok(())
    }

    fn complete(&mut self, n: u32, mode: MigrationMode) -> Result<()> {
        let started = Instant::now();
        let (template, s, c) = self.wanted_vlans(n)?;
        let slot = match mode {
            MigrationMode::None => return Err(Self::no_mode(n)),
            MigrationMode::Live => {
                let slot = self.state.slot_of(n)?.ok_or_else(|| HostError::NoSlot(n))?;
                match self.compute.state(&slot.domain).during("reading the domain's state")? {
                    Some(DomState::Running | DomState::Paused) => {}
                    other => {
                        return Err(HostError::Refused(format!(
                            "the domain has not arrived (it is {})",
                            other.map_or_else(|| "undefined".to_string(), |s| format!("{s:?}"))
                        )))
                    }
                }
                // The ACS's copy of the configuration, if it travelled.
                if let Some(profile) = self
                    .compute
                    .xml(&slot.domain, false)
                    .during("reading the domain's definition")?
                    .and_then(|x| identity_of(&x))
                    .and_then(|i| i.profile)
                {
                    self.adopt_profile(n, &profile, MigrationMode::Live);
                }
                slot
            }
            MigrationMode::ColdImage => {
                let (_, id) = self.source_identity(n, true)?;
                if self.string(&Template::at(template).image()).ends_with(".qcow2") {
                    return Err(HostError::InvalidValue {
                        name: Migration::at(n).mode(),
                        reason: "moving a disk overlay between hosts is not supported: use Live or ColdContext for disk templates"
                            .into(),
                    });
                }
                let mgmt = |k: u32| self.mgmt_address(k);
                let slot = self.state.new_slot(&self.cfg.agent_id, template, None, &mgmt, &Self::secret())?;
                self.state.set_identity(slot.id, &id.uuid, &id.macs, &slot.mgmt_address, &slot.secret)?;
                self.state.set_slot(slot.id, SlotUse::Incoming, Some(n))?;
                let slot = self.state.slot_of(n)?.ok_or_else(|| HostError::NoSlot(n))?;
                if let Some(p) = &id.profile {
                    self.adopt_profile(n, p, MigrationMode::ColdImage);
                }
                let nic = self.vlan.lan_nic(Some((s, c))).during("choosing the LAN bridge")?;
                let spec = self.spec(&slot, &nic)?;
                self.compose_image(&spec, &slot)?;
                self.define_domain(&spec)?;
                self.compute.start(&slot.domain).during("starting the domain")?;
                slot
            }
            MigrationMode::ColdContext => {
                let slot = self.state.slot_of(n)?.ok_or_else(|| HostError::NoSlot(n))?;
                let sealed = self.string(&Migration::at(n).context());
                if !sealed.is_empty() {
                    let opener = self.openers.remove(&n).ok_or_else(|| {
                        HostError::Refused(
                            "the key this context was sealed to is gone (the agent restarted since Prepare): abort and migrate again"
                                .into(),
                        )
                    })?;
                    let plain = opener.open(&sealed).map_err(|e| HostError::InvalidValue {
                        name: Migration::at(n).context(),
                        reason: e.to_string(),
                    })?;
                    let json = String::from_utf8(plain).map_err(|_| HostError::InvalidValue {
                        name: Migration::at(n).context(),
                        reason: "the opened context is not UTF-8".into(),
                    })?;
                    if let Some(m) = self.mounts.get(&n) {
                        m.detach();
                    }
                    self.adopt_profile(n, &json, MigrationMode::ColdContext);
                    self.set_internal(&Migration::at(n).context(), Value::String(String::new()));
                    self.set_internal(&Migration::at(n).key(), Value::String(String::new()));
                    tracing::info!(instance = n, "the sealed context opened: configuration and device state taken");
                }
                slot
            }
        };
        let port = self.lan_port(slot.id);
        self.vlan.bind(&port, s, c).during("binding the port")?;
        let nic = self.vlan.lan_nic(Some((s, c))).during("choosing the LAN bridge")?;
        let spec = self.spec(&slot, &nic)?;
        self.define_domain(&spec)?;
        self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
        self.attach(n, &slot)?;
        if mode == MigrationMode::ColdContext {
            // Another MAC address answers for the gateway now: tell the home at once.
            match self.mounts.get(&n).map(ProxyMount::announce) {
                Some(Ok(what)) => tracing::info!(instance = n, "the vRGW announced {what}"),
                Some(Err(f)) => {
                    tracing::warn!(instance = n, "the vRGW could not announce its LAN address: {}", f.string)
                }
                None => {}
            }
        }
        if mode != MigrationMode::Live {
            self.set_internal(&Migration::at(n).downtime(), ms(started));
        }
        self.set_internal(&Migration::at(n).progress(), Value::UnsignedInt(100));
        self.set_internal(&Migration::at(n).total_time(), ms(started));
        self.set_internal(&Instance::at(n).last_error(), Value::String(String::new()));
        self.mig_status(n, MigrationStatus::Completed, "");
        tracing::info!(instance = n, slot = slot.id, domain = %slot.domain, "the vRGW runs here now");
        Ok(())
    }

    /// The instance's mount takes this configuration (a profile snapshot as JSON, see
    /// [`Host::arrived`]; `mode` says whether the domain, and so its firmware, came along).
    fn adopt_profile(&mut self, n: u32, json: &str, mode: MigrationMode) {
        let take_firmware = mode != MigrationMode::ColdContext;
        let tree = self.arrived(n, json, take_firmware).and_then(|snap| Tree::restore(Schema::vrgw(), snap));
        match tree {
            Ok(t) => {
                let m = ProxyMount::with_profile(self.rt.clone(), t).with_deadlines(self.cfg.proxy_deadlines);
                self.model.mount(Instance::at(n).device().path(), Box::new(m.clone()));
                self.mounts.insert(n, m);
            }
            Err(e) => tracing::warn!(instance = n, "the configuration that came with the vRGW is unreadable: {e}"),
        }
    }

    fn abort(&mut self, n: u32, mode: MigrationMode, slot: Option<Slot>) -> Result<()> {
        self.openers.remove(&n);
        let Some(slot) = slot else {
            // Destination, nothing made yet (ColdImage prepared, or a failed prepare).
            self.mig_status(n, MigrationStatus::Aborted, "");
            return Ok(());
        };
        let w = self.wanted(n);
        let port = self.lan_port(slot.id);
        match (slot.usage, mode) {
            (SlotUse::Incoming, _) => {
                // Destination: never give up a vRGW that already runs only here.
                if mode == MigrationMode::Live
                    && matches!(
                        self.compute.state(&slot.domain).during("reading the domain's state")?,
                        Some(DomState::Running | DomState::Paused)
                    )
                {
                    return Err(HostError::Refused(
                        "the vRGW already runs here (the live migration went through): complete it instead".into(),
                    ));
                }
                if let Some(m) = self.mounts.get(&n) {
                    m.detach();
                }
                self.destroy_slot(&slot)?;
            }
            (SlotUse::Outgoing, MigrationMode::Live) => {
                return Err(HostError::Refused("a live migration under way finishes or fails by itself".into()));
            }
            (SlotUse::Outgoing, MigrationMode::ColdImage) => {
                self.vlan.bind(&port, w.svlan, w.cvlan).during("binding the port")?;
                if self.compute.state(&slot.domain).during("reading the domain's state")? == Some(DomState::ShutOff) {
                    self.compute.start(&slot.domain).during("starting the domain")?;
                }
                self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
                self.attach(n, &slot)?;
            }
            (SlotUse::Outgoing, MigrationMode::ColdContext) => {
                self.vlan.bind(&port, w.svlan, w.cvlan).during("binding the port")?;
                if self.compute.state(&slot.domain).during("reading the domain's state")? == Some(DomState::Paused) {
                    self.compute.resume(&slot.domain).during("resuming the domain")?;
                }
                self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
            }
            (SlotUse::Assigned, _) => {}
            (other, _) => return Err(HostError::Refused(format!("nothing to abort (the slot is {other:?})"))),
        }
        self.mig_status(n, MigrationStatus::Aborted, "");
        Ok(())
    }

    /// Finishes the live migrations whose threads are done, and updates the progress of those
    /// still running. Whether any is still running.
    pub fn migration_poll(&mut self) -> bool {
        if self.live.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
            return false;
        }
        let finished: Vec<(u32, Instant, std::result::Result<LiveMigration, String>)> = {
            let mut jobs = self.live.lock().unwrap_or_else(|e| e.into_inner());
            let done: Vec<u32> = jobs.iter().filter(|(_, j)| j.result.is_some()).map(|(n, _)| *n).collect();
            done.into_iter().filter_map(|n| jobs.remove(&n).and_then(|j| Some((n, j.started, j.result?)))).collect()
        };
        for (n, started, r) in finished {
            let slot = self.slot_or_log(n, "finishing the live migration");
            match (r, slot) {
                (Ok(m), Some(slot)) => {
                    self.set_internal(&Migration::at(n).downtime(), Value::UnsignedInt(m.downtime_ms as u32));
                    self.set_internal(&Migration::at(n).progress(), Value::UnsignedInt(100));
                    self.set_internal(&Migration::at(n).total_time(), ms(started));
                    if let Err(e) = self.left(n, &slot) {
                        tracing::error!(instance = n, "cleaning up after the migration: {e}");
                    }
                    tracing::info!(
                        instance = n,
                        downtime_ms = m.downtime_ms,
                        total_ms = m.total_ms,
                        transferred = m.transferred_bytes,
                        "live migration done"
                    );
                    self.mig_status(n, MigrationStatus::Completed, "");
                }
                (Err(e), Some(slot)) => {
                    if let Err(e) = self.state.set_slot(slot.id, SlotUse::Assigned, Some(n)) {
                        tracing::error!(instance = n, "recording that the vRGW stays here: {e}");
                    }
                    self.set_internal(&Migration::at(n).total_time(), ms(started));
                    self.mig_status(
                        n,
                        MigrationStatus::Error,
                        &format!("live migration failed, the vRGW stays here: {e}"),
                    );
                    let _ = self.refresh_instance(n, &slot);
                }
                (r, None) => tracing::error!(
                    instance = n,
                    outcome = ?r.map(|_| "done"),
                    "a live migration ended for an instance with no slot here"
                ),
            }
            self.sync_topology();
            if let Err(e) = self.save() {
                tracing::error!("saving the data model: {e}");
            }
        }
        let running: Vec<u32> = self.live.lock().unwrap_or_else(|e| e.into_inner()).keys().copied().collect();
        if self.progress_at.elapsed() < std::time::Duration::from_millis(250) {
            return !running.is_empty();
        }
        self.progress_at = Instant::now();
        for n in &running {
            if let Some(slot) = self.slot_or_log(*n, "reading the migration's progress") {
                if let Ok(Some(p)) = self.compute.job_progress(&slot.domain) {
                    self.set_internal(&Migration::at(*n).progress(), Value::UnsignedInt(p.min(99)));
                }
            }
        }
        !running.is_empty()
    }

    /// The vRGW of instance `n` left this host: its port, VLAN and slot go (libvirt undefined
    /// the domain), the row stays until the ACS deletes it.
    fn left(&mut self, n: u32, slot: &Slot) -> Result<()> {
        let port = self.lan_port(slot.id);
        let svlan = self.wanted(n).svlan;
        if let Some(m) = self.mounts.get(&n) {
            m.detach();
        }
        self.vlan.release(&port).during("releasing the port")?;
        if svlan != 0 {
            self.vlan.remove_svlan_if_unused(svlan).during("removing an unused S-VLAN")?;
        }
        // Whatever libvirt left (a persistent definition when the undefine did not happen).
        if self
            .compute
            .state(&slot.domain)
            .during("reading the domain's state")?
            .is_some_and(|s| s == DomState::ShutOff)
        {
            self.undefine_domain(&slot.domain)?;
        }
        self.forget_slot(slot)?;
        self.set_status(n, InstanceStatus::Migrated);
        self.set_internal(&Instance::at(n).domain(), Value::String(String::new()));
        Ok(())
    }

    /// After a restart: an outgoing slot whose domain is gone went to the destination (live);
    /// one whose domain runs here stayed (the migration failed while the agent was down).
    pub(super) fn reconcile_migrations(&mut self) -> Result<()> {
        for slot in self.state.slots()? {
            let Some(n) = slot.instance else { continue };
            if slot.usage != SlotUse::Outgoing || self.migration_mode(n) != Some(MigrationMode::Live) {
                continue;
            }
            match self.compute.state(&slot.domain).during("reading the domain's state")? {
                None => {
                    tracing::warn!(instance = n, "the live migration went through while the agent was down");
                    self.left(n, &slot)?;
                    self.mig_status(n, MigrationStatus::Completed, "");
                }
                Some(DomState::Running | DomState::Paused) => {
                    tracing::warn!(
                        instance = n,
                        "the live migration did not finish while the agent was down; the vRGW stays here"
                    );
                    self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
                    self.mig_status(
                        n,
                        MigrationStatus::Error,
                        "the agent restarted during the live migration; the vRGW stayed here",
                    );
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// `xml` (a domain definition of ours) with `profile` in its ownership mark.
fn with_profile(xml: &str, profile: &str) -> String {
    crate::domain::with_owner_attribute(xml, "profile", &crate::domain::hex(profile)).unwrap_or_else(|| xml.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_goes_to_the_peers_address() {
        assert_eq!(stream_uri("qemu+tcp://10.98.0.2/system"), "tcp://10.98.0.2");
        assert_eq!(stream_uri("qemu+tcp://root@10.98.0.2:16509/system"), "tcp://10.98.0.2");
        assert_eq!(stream_uri("qemu+tls://host-b.example/system"), "tcp://host-b.example");
        assert_eq!(stream_uri("test:///default"), "");
    }

    #[test]
    fn the_profile_rides_in_the_mark() {
        let ns = crate::domain::META_NS;
        let nics = "<interface><mac address='02:00:00:00:00:00'/></interface>".repeat(3);
        let xml = format!(
            "<domain><name>a' profile='7b7d</name><uuid>6f1c7a52-3c1e-4b3a-9d7e-2f5b8c9a0d11</uuid>\
             <metadata><vrgw:owner xmlns:vrgw=\"{ns}\" agent=\"b' profile='7b7d\" slot=\"3\"/></metadata>\
             <sysinfo type='smbios'><oemStrings><entry>vrgw.mgmt=10.0.0.2/24</entry><entry>vrgw.secret=00</entry></oemStrings></sysinfo>\
             <devices>{nics}</devices></domain>"
        );
        let with = with_profile(&xml, "{\"a\":1}");
        let id = crate::domain::identity_of(&with).expect("ours");
        assert_eq!(id.profile.as_deref(), Some("{\"a\":1}"));
        // The mark's other attributes are kept.
        let meta = &with[with.find("<vrgw:owner").expect("mark")..];
        let owner = crate::domain::parse_owner(meta).expect("owner");
        assert_eq!((owner.agent.as_str(), owner.slot), ("b' profile='7b7d", 3));
        // Replacing, not adding.
        let twice = with_profile(&with, "{}");
        assert_eq!(crate::domain::identity_of(&twice).and_then(|i| i.profile).as_deref(), Some("{}"));
        let mark = &twice[twice.find("<vrgw:owner").expect("mark")..twice.find("</metadata>").expect("end")];
        assert_eq!(mark.matches(" profile='").count(), 1, "{twice}");
        // No mark: unchanged.
        assert_eq!(with_profile("<domain/>", "{}"), "<domain/>");
    }
}
