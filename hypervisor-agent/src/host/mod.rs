//! The host: its data model (TR-181 plus our virtualization extension) and what setting it does
//! to libvirt and the switch. Every operation on vRGWs is a data-model operation:
//!
//! - AddObject on `Instance.` makes a row; once the row has a template and both VLANs (usually in
//!   the same session) the instance is provisioned: a suspended instance of an enabled pool of
//!   that template is rebound to the subscriber's VLANs and resumed, or, when the pool is empty,
//!   a new domain is defined and started on those VLANs.
//! - DeleteObject on `Instance.{i}.` destroys and undefines its domain and frees its VLANs.
//! - Setting `RequestedState` runs, suspends or stops it; setting its VLANs rebinds it.
//! - Setting a pool's `TargetSize` (or `Enable`) makes [`Host::pool_step`], run in the
//!   background, fill or drain it one domain at a time, with progress in `Ready`, `Suspended`
//!   and `Status`.
//!
//! A SetParameterValues is validated whole, once (types, ranges, unique VLAN pairs, template
//! references, every instance it touches: a [`datamodel::SetPlan`]) before anything is applied;
//! the instances' parts go to their vRGWs at once (each checks its part once and applies it, all
//! or nothing across them); what is applied is saved before the domains are touched, so a crash
//! in between is finished by [`Host::reconcile`].
//! Failures of libvirt or the switch after a set was accepted show in the instance's `Status`
//! (`Error`) and `LastError`, and in the log.
//!
//! Layout: this file holds [`Host`], its settings, its error and the helpers every concern
//! shares (the row's wishes, the domain spec, saving); one file per concern beside it:
//! `request` (the ACS's requests: get, set, add, delete routing), `provision` (an instance row
//! brought to what it asks for), `pool` (fill, warm-up, suspend, drain), `topology` (the TR-181
//! mirror of the trunk and the embedded devices), `reconcile` (after restarts, and the periodic
//! state reads), `migration` (moving an instance between hosts) and `virtual_devices` (the
//! instances managed as CWMP devices of their own, TR-069 Annex J.2).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use cwmp::Value;
use datamodel::virtualization::{Flavor, Instance, InstanceStatus, Pool, RequestedState, Template, Virtualization};
use datamodel::{DataModel, Schema, Tree};

use crate::compute::Compute;
use crate::domain::{mac, Boot, DomainSpec, Nic, Owner};
use crate::proxy::ProxyMount;
use crate::state::{Slot, SlotUse, State, StateError};
use crate::vlan::{LanNic, VlanBackend};

/// Settings of the host side.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// This agent's id: the ownership mark on its domains (unique per host).
    pub agent_id: String,
    /// libvirt domain type: `qemu` (TCG), `kvm`, or `test` with libvirt's test driver.
    pub domain_type: String,
    /// libvirt domain type of container vRGWs (`lxc`, or `test` on the test driver); `None`:
    /// this host runs no containers (a `Container` template is refused).
    pub container_type: Option<String>,
    /// Host-only bridge of the management NICs.
    pub mgmt_bridge: String,
    /// Management network: slot `n` gets `base + 1 + n` (the agent itself is `base + 1`).
    pub mgmt_base: Ipv4Addr,
    /// Its prefix length.
    pub mgmt_prefix: u8,
    /// Bridge of the WAN NICs.
    pub wan_bridge: String,
    /// Where instance disk overlays (`DOMAIN.qcow2`) and container layers (`DOMAIN/`) are made.
    pub overlay_dir: PathBuf,
    /// TCG translation-block cache for `qemu` domains, MiB.
    pub tb_cache_mib: Option<u32>,
    /// TCP port of the proxies on their management addresses.
    pub proxy_port: u16,
    /// How long a pooled domain may boot before it is suspended: the pool waits for its proxy to
    /// accept connections (a booted guest resumes at once for its subscriber), at most this long
    /// (then the domain is destroyed and made again). `None` suspends at once: libvirt's test
    /// driver runs no guest.
    pub pool_warmup: Option<std::time::Duration>,
    /// Where each domain's serial console is copied (`NAME.console.log`), if anywhere.
    pub console_log_dir: Option<PathBuf>,
    /// The libvirt URI other hosts reach this one at for migrations (`MigrationURI`), if any.
    pub migration_uri: Option<String>,
    /// The only other hosts' libvirt URIs a `Migration.Peer` may name (empty: none).
    pub migration_peers: Vec<String>,
    /// How long each call to a vRGW's proxy may take.
    pub proxy_deadlines: crate::proxy::Deadlines,
    /// Prefix of the host-side NIC names (`PREFIXl12` is slot 12's LAN port); at most 8
    /// characters, as Linux interface names end at 15.
    pub port_prefix: String,
    /// Where each domain's proxy-secret file is written (`DIR/DOMAIN`, 0600; the folder 0711:
    /// QEMU, running as a user of its own, opens the file by its path).
    pub secret_dir: PathBuf,
    /// Owner (uid, gid) given to each secret file, for hosts where libvirt does not hand files
    /// to QEMU's user itself (`dynamic_ownership = 0`); `None`: the agent's own (root).
    pub secret_owner: Option<(u32, u32)>,
}

type Result<T> = std::result::Result<T, HostError>;

/// The row number `path` is in, or refers to (a path reference), in a table whose `split` is given
/// (`Template::split`, `Pool::split`, `Instance::split`).
fn row(split: fn(&str) -> Option<(u32, &str)>, path: &str) -> Option<u32> {
    split(path).map(|(n, _)| n)
}

/// The instance number when `path` names an instance row itself (`Instance.3.`), not
/// something below it.
fn instance_row(path: &str) -> Option<u32> {
    Instance::split(path).filter(|(_, rest)| rest.is_empty()).map(|(n, _)| n)
}

/// What an instance row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    template: Option<u32>,
    svlan: u16,
    cvlan: u16,
    /// `None` while the row has none (or one the model would have refused).
    requested: Option<RequestedState>,
}

/// The host data model and the resources behind it.
pub struct Host {
    /// The data model served to the ACS.
    pub model: DataModel,
    /// Each instance's own data model, also mounted in `model`.
    mounts: std::collections::BTreeMap<u32, ProxyMount>,
    /// The instances whose profiles the store holds (written by the last save).
    profiles_saved: std::collections::BTreeSet<u32>,
    /// The next save writes everything (the host just opened, or a save failed half-way).
    full_save: bool,
    /// The periodic poll's round under way ([`Host::refresh_stats_slice`]).
    round: reconcile::PollRound,
    /// Instances whose CPU time and memory one round of the periodic poll reads at most.
    stats_per_round: usize,
    /// The store, the values the CWMP side reads, and changed parameters under notification not
    /// yet reported in an Inform (see `view`).
    shared: Shared,
    rt: tokio::runtime::Handle,
    state: Arc<State>,
    compute: Arc<dyn Compute>,
    vlan: Arc<dyn VlanBackend>,
    cfg: HostConfig,
    /// When each warming slot was started (this run; a restart starts the clock again).
    warming: std::collections::BTreeMap<u32, std::time::Instant>,
    /// Live migrations running on threads of their own.
    live: migration::LiveJobs,
    /// When their progress was last read.
    progress_at: std::time::Instant,
    /// ColdContext destinations: the private half of each prepared instance's `Migration.Key`
    /// (memory only: an agent restarted before Complete cannot open the context; the
    /// migration is aborted and started again).
    openers: std::collections::BTreeMap<u32, crate::seal::Opener>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("agent", &self.cfg.agent_id).finish()
    }
}

impl Host {
    /// The host model from the stored snapshot (or a fresh one), then reconciled with libvirt
    /// and the switch.
    ///
    /// Calls to the proxies run on `rt`; the host's own methods must be called from outside any
    /// runtime worker (the agent gives the host a thread of its own).
    pub fn open(
        cfg: HostConfig,
        state: State,
        compute: Arc<dyn Compute>,
        vlan: Arc<dyn VlanBackend>,
        rt: tokio::runtime::Handle,
    ) -> Result<Host> {
        let tree = match state.model()? {
            Some(snap) => Tree::restore(Schema::host(), snap).map_err(StateError::Model)?,
            None => Tree::new(Schema::host()),
        };
        let mut model = DataModel::new(tree);
        model.root_mut().track_changes();
        if let Some(k) = state.meta("ParameterKey")? {
            let _ = model.set_parameter_values(&[], &k);
        }
        let mut mounts = std::collections::BTreeMap::new();
        let profiles: std::collections::BTreeMap<u32, datamodel::tree::Snapshot> =
            state.profiles()?.into_iter().collect();
        for n in model.root().instances(Instance::TABLE) {
            let mount = match profiles.get(&n) {
                Some(snap) => ProxyMount::with_profile(
                    rt.clone(),
                    Tree::restore(Schema::vrgw(), snap.clone())
                        .map_err(|e| StateError::Model(format!("profile {n}: {e}")))?,
                ),
                None => ProxyMount::new(rt.clone(), &n.to_string()),
            }
            .with_deadlines(cfg.proxy_deadlines);
            model.mount(Instance::at(n).device().path(), Box::new(mount.clone()));
            mounts.insert(n, mount);
        }
        // Notification attributes the ACS set, as they were.
        if let Some(text) = state.meta("attributes")? {
            let list: Vec<(String, u32, Vec<String>)> = serde_json::from_str(&text).unwrap_or_default();
            let attrs: Vec<cwmp::SetParameterAttribute> = list
                .into_iter()
                .filter_map(|(name, code, access_list)| {
                    Some(cwmp::SetParameterAttribute {
                        name,
                        notification_change: true,
                        notification: cwmp::Notification::from_code(code)?,
                        access_list_change: true,
                        access_list,
                    })
                })
                .collect();
            for a in attrs {
                if let Err(f) = model.set_parameter_attributes(std::slice::from_ref(&a)) {
                    tracing::warn!(parameter = %a.name, "stored attribute not restored: {}", f.string);
                }
            }
        }
        let state = Arc::new(state);
        let mut host = Host {
            model,
            mounts,
            profiles_saved: Default::default(),
            full_save: true,
            round: Default::default(),
            stats_per_round: STATS_PER_ROUND,
            shared: Shared::new(state.clone()),
            rt,
            state,
            compute,
            vlan,
            cfg,
            warming: Default::default(),
            live: Default::default(),
            progress_at: std::time::Instant::now(),
            openers: std::collections::BTreeMap::new(),
        };
        let uri = host.cfg.migration_uri.clone().unwrap_or_default();
        host.set_internal(&Virtualization::at().migration_uri(), Value::String(uri));
        host.reconcile()?;
        host.publish();
        Ok(host)
    }

    /// The agent's store.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether libvirt answers, as far as known without asking it: false from the moment a call
    /// outlived its deadline until that call came back.
    pub fn libvirt_answers(&self) -> bool {
        self.compute.answering().is_ok()
    }

    /// Refuses `op` at once (9002, saying why) while libvirt is not answering, instead of
    /// waiting for it.
    fn needs_libvirt(&self, op: &'static str) -> Result<()> {
        self.compute.answering().during(op)
    }

    fn value(&self, path: &str) -> Option<Value> {
        self.model.root().value(path)
    }

    fn string(&self, path: &str) -> String {
        match self.value(path) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        }
    }

    fn uint(&self, path: &str) -> u32 {
        match self.value(path) {
            Some(Value::UnsignedInt(n)) => n,
            _ => 0,
        }
    }

    fn set_internal(&mut self, path: &str, v: Value) {
        if let Err(e) = self.model.root_mut().set_internal(path, v) {
            tracing::error!(path, "internal set refused: {}", e.string);
        }
    }

    /// Sets instance `n`'s `Status`.
    fn set_status(&mut self, n: u32, status: InstanceStatus) {
        self.set_internal(&Instance::at(n).status(), Value::String(status.as_str().into()));
    }

    /// The first enabled pool of `template`.
    fn enabled_pool_of(&self, template: u32) -> Option<u32> {
        self.model.root().instances(Pool::TABLE).into_iter().find(|&k| {
            let pool = Pool::at(k);
            matches!(self.value(&pool.enable()), Some(Value::Boolean(true)))
                && row(Template::split, &self.string(&pool.template())) == Some(template)
        })
    }

    fn wanted(&self, n: u32) -> Wanted {
        let i = Instance::at(n);
        Wanted {
            template: row(Template::split, &self.string(&i.template())),
            svlan: u16::try_from(self.uint(&i.svlan())).unwrap_or(0),
            cvlan: u16::try_from(self.uint(&i.cvlan())).unwrap_or(0),
            requested: self.string(&i.requested_state()).parse().ok(),
        }
    }

    /// Persists the host model, the notification attributes, the profiles and the ParameterKey:
    /// the model's changed rows and the changed profiles only, or everything after the host
    /// opened or a save failed (what that save did not write is then not lost).
    fn save(&mut self) -> Result<()> {
        let r = self.save_changes();
        if r.is_err() {
            self.full_save = true;
        }
        r
    }

    fn save_changes(&mut self) -> Result<()> {
        let changes = self.model.root_mut().take_changes();
        if self.full_save {
            self.state.save_model(&self.model.root().snapshot())?;
        } else {
            self.state.save_model_changes(&changes)?;
        }
        let attrs: Vec<serde_json::Value> = self
            .model
            .attributes()
            .into_iter()
            .map(|(name, n, access)| serde_json::json!([name, n.code(), access]))
            .collect();
        self.state.set_meta("attributes", &serde_json::Value::Array(attrs).to_string())?;
        let mut changed = Vec::new();
        for (n, m) in &self.mounts {
            // Asked of every mount, so that each one's record of changes starts over.
            if m.take_changed() || self.full_save || !self.profiles_saved.contains(n) {
                changed.push((*n, m.profile()));
            }
        }
        if self.full_save {
            self.state.save_profiles(&changed)?;
        } else {
            let gone: Vec<u32> = self.profiles_saved.iter().filter(|n| !self.mounts.contains_key(n)).copied().collect();
            self.state.save_some_profiles(&changed, &gone)?;
        }
        self.profiles_saved = self.mounts.keys().copied().collect();
        self.state.set_meta("ParameterKey", self.model.parameter_key())?;
        self.full_save = false;
        Ok(())
    }

    fn lan_port(&self, slot: u32) -> String {
        format!("{}l{slot}", self.cfg.port_prefix)
    }

    fn mgmt_address(&self, slot: u32) -> String {
        let ip = Ipv4Addr::from(u32::from(self.cfg.mgmt_base).wrapping_add(1 + slot));
        format!("{ip}/{}", self.cfg.mgmt_prefix)
    }

    /// The domain of `slot` made from `template`, its LAN port on (bridge, tag).
    fn spec(&self, slot: &Slot, lan: &LanNic) -> Result<DomainSpec> {
        let t = Template::at(slot.template);
        if !self.model.root().instances(Template::TABLE).contains(&slot.template) {
            return Err(HostError::NotFound(t.path().to_string()));
        }
        let image = self.string(&t.image());
        let container = self.is_container(slot.template);
        let kind = match (container, &self.cfg.container_type) {
            (false, _) => self.cfg.domain_type.clone(),
            (true, Some(k)) => k.clone(),
            (true, None) => return Err(HostError::Refused(Self::NO_CONTAINERS.into())),
        };
        let boot = if container {
            Boot::Container { root: crate::rootfs::root_of(&self.layer_dir(&slot.domain)).display().to_string() }
        } else if image.ends_with(".qcow2") {
            Boot::Disk { overlay: self.cfg.overlay_dir.join(format!("{}.qcow2", slot.domain)).display().to_string() }
        } else {
            let dir = image.trim_end_matches('/');
            Boot::Kernel {
                kernel: format!("{dir}/vmlinuz"),
                // A firmware a Download installed replaces the template's initramfs.
                initrd: self.firmware_of(slot).unwrap_or_else(|| format!("{dir}/initrd.img")),
                cmdline: "console=ttyS0 quiet".into(),
            }
        };
        let id = self.cfg.agent_id.as_bytes();
        let prefix = [id.first().copied().unwrap_or(0), id.last().copied().unwrap_or(0)];
        // A vRGW that came from another host keeps its MAC addresses.
        let mac = |prefix: [u8; 2], slot_id: u32, nic: u8| -> String {
            match slot.macs.get(usize::from(nic)) {
                Some(m) if slot.macs.len() == 3 => m.clone(),
                _ => mac(prefix, slot_id, nic),
            }
        };
        Ok(DomainSpec {
            name: slot.domain.clone(),
            kind,
            memory_kib: u64::from(self.uint(&format!("{t}MemoryKiB")).max(16384)),
            vcpus: self.uint(&format!("{t}VCPUs")).max(1),
            boot,
            mgmt: Nic {
                bridge: self.cfg.mgmt_bridge.clone(),
                openvswitch: false,
                vlan: None,
                mac: mac(prefix, slot.id, 0),
                target: Some(format!("{}m{}", self.cfg.port_prefix, slot.id)),
            },
            lan: Nic {
                bridge: lan.bridge.clone(),
                openvswitch: lan.openvswitch,
                vlan: lan.vlan,
                mac: mac(prefix, slot.id, 1),
                target: Some(self.lan_port(slot.id)),
            },
            wan: Nic {
                bridge: self.cfg.wan_bridge.clone(),
                openvswitch: false,
                vlan: None,
                mac: mac(prefix, slot.id, 2),
                target: Some(format!("{}w{}", self.cfg.port_prefix, slot.id)),
            },
            mgmt_address: slot.mgmt_address.clone(),
            secret: slot.secret.clone(),
            secret_file: self.secret_file(&slot.domain).display().to_string(),
            owner: Owner { agent: self.cfg.agent_id.clone(), slot: slot.id },
            tb_cache_mib: if self.cfg.domain_type == "qemu" && !container { self.cfg.tb_cache_mib } else { None },
            console_log: self
                .cfg
                .console_log_dir
                .as_ref()
                .filter(|_| !container)
                .map(|d| d.join(format!("{}.console.log", slot.domain)).display().to_string()),
            uuid: (!slot.uuid.is_empty()).then(|| slot.uuid.clone()),
            profile: None,
            max_processes: container.then(|| self.uint(&t.max_processes())).filter(|n| *n > 0),
        })
    }

    /// The firmware a Download installed for the instance `slot` serves, if any
    /// (`Instance.{i}.Firmware`).
    fn firmware_of(&self, slot: &Slot) -> Option<String> {
        slot.instance.map(|n| self.string(&Instance::at(n).firmware())).filter(|f| !f.is_empty())
    }

    /// Why a container template cannot run here.
    const NO_CONTAINERS: &'static str =
        "this host runs no containers: its agent has no LXC connection (the `lxc` setting)";

    /// Whether `template`'s instances are containers (`Flavor` `Container`).
    fn is_container(&self, template: u32) -> bool {
        self.string(&Template::at(template).flavor()).parse::<Flavor>() == Ok(Flavor::Container)
    }

    /// The folder of a container domain's writable layer.
    fn layer_dir(&self, domain: &str) -> PathBuf {
        self.cfg.overlay_dir.join(domain)
    }

    /// A container's root: its writable layer over its template's root, mounted (again after
    /// the host restarted; nothing to do when it is mounted).
    fn mount_root(&self, slot: &Slot) -> Result<()> {
        let base = self.string(&Template::at(slot.template).image());
        Ok(crate::rootfs::mount(&self.layer_dir(&slot.domain), std::path::Path::new(&base))?)
    }

    /// An image-based template's instance needs its overlay over the template's base image (or
    /// over the firmware a Download installed for it); a container its root.
    fn compose_image(&self, spec: &DomainSpec, slot: &Slot) -> Result<()> {
        if let Boot::Container { .. } = &spec.boot {
            return self.mount_root(slot);
        }
        let Boot::Disk { overlay } = &spec.boot else { return Ok(()) };
        if std::path::Path::new(overlay).exists() {
            return Ok(());
        }
        let base = self.firmware_of(slot).unwrap_or_else(|| self.string(&Template::at(slot.template).image()));
        std::fs::create_dir_all(&self.cfg.overlay_dir)
            .map_err(|source| HostError::Io { op: "making the overlay folder", source })?;
        let out = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &base, overlay])
            .output()
            .map_err(|source| HostError::Io { op: "running qemu-img", source })?;
        if !out.status.success() {
            return Err(HostError::Image(String::from_utf8_lossy(&out.stderr).trim().to_string()));
        }
        // The guest's disk writes land here (its proxy's state: the subscriber's configuration,
        // Wi-Fi passphrase included): owner-only; libvirt hands it to QEMU's user when it starts.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(overlay, std::fs::Permissions::from_mode(crate::secrets::FILE_MODE))
            .map_err(|source| HostError::Io { op: "making the overlay owner-only", source })
    }

    fn secret() -> String {
        http_shell::random_hex(16)
    }

    /// The file domain `name`'s proxy secret is in (its fw_cfg entry names it).
    fn secret_file(&self, name: &str) -> PathBuf {
        self.cfg.secret_dir.join(name)
    }

    /// Defines `spec`'s domain, its secret file written first (0600, in a folder of its own):
    /// QEMU reads it when the domain starts, or arrives here in a live migration.
    fn define_domain(&self, spec: &DomainSpec) -> Result<()> {
        let io = |op: &'static str| move |source| HostError::Io { op, source };
        crate::secrets::passable_dir(&self.cfg.secret_dir).map_err(io("making the secrets folder"))?;
        let file = std::path::Path::new(&spec.secret_file);
        crate::secrets::write_private(file, spec.secret.as_bytes()).map_err(io("writing the proxy's secret file"))?;
        if let Some((uid, gid)) = self.cfg.secret_owner {
            std::os::unix::fs::chown(file, Some(uid), Some(gid))
                .map_err(io("handing the secret file to QEMU's user"))?;
        }
        self.compute.define(spec).during("defining the domain")
    }

    /// Undefines domain `name` and removes its secret file.
    fn undefine_domain(&self, name: &str) -> Result<()> {
        self.compute.undefine(name).during("undefining the domain")?;
        self.remove_secret_file(name)
    }

    /// Removes domain `name`'s secret file (nothing to do when there is none).
    fn remove_secret_file(&self, name: &str) -> Result<()> {
        match std::fs::remove_file(self.secret_file(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(HostError::Io { op: "removing the proxy's secret file", source: e })
            }
            _ => Ok(()),
        }
    }

    /// Forgets a slot whose domain is gone from this host, and its secret file.
    fn forget_slot(&self, slot: &Slot) -> Result<()> {
        self.remove_secret_file(&slot.domain)?;
        Ok(self.state.drop_slot(slot.id)?)
    }

    fn destroy_slot(&mut self, slot: &Slot) -> Result<()> {
        self.state.set_slot(slot.id, SlotUse::Deleting, slot.instance)?;
        let port = self.lan_port(slot.id);
        let svlan =
            self.vlan.bindings().during("reading the bindings")?.into_iter().find(|b| b.port == port).map(|b| b.svlan);
        self.undefine_domain(&slot.domain)?;
        self.vlan.release(&port).during("releasing the port")?;
        if let Some(s) = svlan {
            self.vlan.remove_svlan_if_unused(s).during("removing an unused S-VLAN")?;
        }
        let overlay = self.cfg.overlay_dir.join(format!("{}.qcow2", slot.domain));
        let _ = std::fs::remove_file(overlay);
        crate::rootfs::remove(&self.layer_dir(&slot.domain))?;
        self.forget_slot(slot)?;
        Ok(())
    }
}

/// Instances whose CPU time and memory one round of the periodic poll reads at most (2 s
/// apart: each instance's are at most 20 s old at a thousand instances).
const STATS_PER_ROUND: usize = 100;

mod error;
mod migration;
mod pool;
mod provision;
mod reconcile;
mod request;
mod topology;
mod view;
mod virtual_devices;
use error::During;
pub use error::HostError;
pub use view::{CwmpView, Shared};
pub use virtual_devices::arrived_key;

#[cfg(test)]
mod tests;
