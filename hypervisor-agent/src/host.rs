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
//! A SetParameterValues is validated whole (types, ranges, unique VLAN pairs, template
//! references, every instance it touches) before anything is applied; what is applied is saved
//! before the domains are touched, so a crash in between is finished by [`Host::reconcile`].
//! Failures of libvirt or the switch after a set was accepted show in the instance's `Status`
//! (`Error`) and `LastError`, and in the log.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use cwmp::{Body, Fault, FaultCode, ParameterFault, Value};
use datamodel::{DataModel, Schema, Tree};

use crate::compute::{Compute, ComputeError, DomState};
use crate::domain::{mac, Boot, DomainSpec, Nic, Owner};
use crate::proxy::{ProxyMount, ProxyTarget};
use crate::state::{Slot, SlotUse, State, StateError};
use crate::vlan::{LanNic, VlanBackend, VlanError};

/// Settings of the host side.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// This agent's id: the ownership mark on its domains (unique per host).
    pub agent_id: String,
    /// libvirt domain type: `qemu` (TCG), `kvm`, or `test` with libvirt's test driver.
    pub domain_type: String,
    /// Host-only bridge of the management NICs.
    pub mgmt_bridge: String,
    /// Management network: slot `n` gets `base + 1 + n` (the agent itself is `base + 1`).
    pub mgmt_base: Ipv4Addr,
    /// Its prefix length.
    pub mgmt_prefix: u8,
    /// Bridge of the WAN NICs.
    pub wan_bridge: String,
    /// Where instance disk overlays are made (image composition).
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
    /// Prefix of the host-side NIC names (`PREFIXl12` is slot 12's LAN port); at most 8
    /// characters, as Linux interface names end at 15.
    pub port_prefix: String,
}

/// Why an operation of the host failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The agent's store.
    #[error(transparent)]
    State(#[from] StateError),
    /// libvirt.
    #[error(transparent)]
    Compute(#[from] ComputeError),
    /// The switch.
    #[error(transparent)]
    Vlan(#[from] VlanError),
    /// Anything else, said plainly.
    #[error("{0}")]
    Other(String),
}

type Result<T> = std::result::Result<T, HostError>;

const TEMPLATE: &str = "Device.X_VRGW-ORG_Virtualization.Template.";
const POOL: &str = "Device.X_VRGW-ORG_Virtualization.Pool.";
const INSTANCE: &str = "Device.X_VRGW-ORG_Virtualization.Instance.";

/// The instance number a table path names: `PREFIX{n}.` or `PREFIX{n}` (a path reference).
fn row_number(prefix: &str, path: &str) -> Option<u32> {
    path.strip_prefix(prefix)?.trim_end_matches('.').split('.').next()?.parse().ok()
}

/// The instance number when `path` names an instance row itself (`Instance.3.`), not
/// something below it.
fn instance_row(path: &str) -> Option<u32> {
    row_number(INSTANCE, path).filter(|n| path.trim_end_matches('.') == format!("{INSTANCE}{n}"))
}

/// What an instance row asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    template: Option<u32>,
    svlan: u16,
    cvlan: u16,
    requested: String,
}

/// The host data model and the resources behind it.
pub struct Host {
    /// The data model served to the ACS.
    pub model: DataModel,
    /// Each instance's own data model, also mounted in `model`.
    mounts: std::collections::BTreeMap<u32, ProxyMount>,
    /// Changed parameters under notification, not yet reported in an Inform.
    changes: std::collections::BTreeMap<String, cwmp::ParameterValue>,
    rt: tokio::runtime::Handle,
    state: State,
    compute: Arc<dyn Compute>,
    vlan: Arc<dyn VlanBackend>,
    cfg: HostConfig,
    /// When each warming slot was started (this run; a restart starts the clock again).
    warming: std::collections::BTreeMap<u32, std::time::Instant>,
    /// Live migrations running on threads of their own.
    live: migration::LiveJobs,
    /// When their progress was last read.
    progress_at: std::time::Instant,
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
            Some(snap) => Tree::restore(Schema::host(), snap).map_err(HostError::Other)?,
            None => Tree::new(Schema::host()),
        };
        let mut model = DataModel::new(tree);
        if let Some(k) = state.meta("ParameterKey")? {
            let _ = model.set_parameter_values(&[], &k);
        }
        let mut mounts = std::collections::BTreeMap::new();
        let profiles: std::collections::BTreeMap<u32, datamodel::tree::Snapshot> =
            state.profiles()?.into_iter().collect();
        for n in model.root().instances(INSTANCE) {
            let mount = match profiles.get(&n) {
                Some(snap) => ProxyMount::with_profile(
                    rt.clone(),
                    Tree::restore(Schema::vrgw(), snap.clone())
                        .map_err(|e| HostError::Other(format!("profile {n}: {e}")))?,
                ),
                None => ProxyMount::new(rt.clone(), &n.to_string()),
            };
            model.mount(&format!("{INSTANCE}{n}.Device."), Box::new(mount.clone()));
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
        let mut host = Host {
            model,
            mounts,
            changes: Default::default(),
            rt,
            state,
            compute,
            vlan,
            cfg,
            warming: Default::default(),
            live: Default::default(),
            progress_at: std::time::Instant::now(),
        };
        let uri = host.cfg.migration_uri.clone().unwrap_or_default();
        host.set_internal("Device.X_VRGW-ORG_Virtualization.MigrationURI", Value::String(uri));
        host.reconcile()?;
        Ok(host)
    }

    /// The agent's store.
    pub fn state(&self) -> &State {
        &self.state
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

    fn wanted(&self, n: u32) -> Wanted {
        let p = format!("{INSTANCE}{n}.");
        Wanted {
            template: row_number(TEMPLATE, &self.string(&format!("{p}Template"))),
            svlan: u16::try_from(self.uint(&format!("{p}SVLAN"))).unwrap_or(0),
            cvlan: u16::try_from(self.uint(&format!("{p}CVLAN"))).unwrap_or(0),
            requested: self.string(&format!("{p}RequestedState")),
        }
    }

    fn save(&self) -> Result<()> {
        self.state.save_model(&self.model.root().snapshot())?;
        let attrs: Vec<serde_json::Value> = self
            .model
            .attributes()
            .into_iter()
            .map(|(name, n, access)| serde_json::json!([name, n.code(), access]))
            .collect();
        self.state.set_meta("attributes", &serde_json::Value::Array(attrs).to_string())?;
        let profiles: Vec<(u32, datamodel::tree::Snapshot)> =
            self.mounts.iter().map(|(n, m)| (*n, m.profile())).collect();
        self.state.save_profiles(&profiles)?;
        self.state.set_meta("ParameterKey", self.model.parameter_key())?;
        Ok(())
    }

    /// Reads the parameters under notification; changed ones wait for the next Inform. When one
    /// has active notification, "4 VALUE CHANGE" is queued (durably) and true returned.
    pub fn collect_changes(&mut self) -> bool {
        let c = self.model.poll_value_changes();
        for p in c.changed {
            self.changes.insert(p.name.clone(), p);
        }
        if c.active {
            if let Err(e) = self.state.push_event(cwmp::event::VALUE_CHANGE, "") {
                tracing::error!("queueing 4 VALUE CHANGE: {e}");
            }
        }
        c.active
    }

    /// The changed parameters to report in the next Inform.
    pub fn pending_changes(&self) -> Vec<cwmp::ParameterValue> {
        self.changes.values().cloned().collect()
    }

    /// Forgets reported changes (the ACS accepted the Inform that carried them).
    pub fn changes_reported(&mut self, names: &[String]) {
        for n in names {
            self.changes.remove(n);
        }
    }

    /// Serves one ACS request on the host data model, with the side effects described in the
    /// module documentation.
    pub fn handle(&mut self, req: &Body) -> Body {
        match req {
            Body::SetParameterValues(r) => {
                if let Err(f) = self.check_set(&r.parameter_list) {
                    return Body::Fault(f);
                }
            }
            Body::DeleteObject(r) => {
                if let Some(n) = instance_row(&r.object_name) {
                    if self.live.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&n) {
                        return Body::Fault(Fault::with_string(
                            FaultCode::RequestDenied,
                            "the instance is being migrated live; delete it once the migration ended",
                        ));
                    }
                    if let Err(e) = self.release_instance(n) {
                        tracing::error!(instance = n, "deleting: {e}");
                        return Body::Fault(Fault::with_string(FaultCode::InternalError, e.to_string()));
                    }
                }
            }
            _ => {}
        }
        if matches!(req, Body::GetParameterValues(_)) {
            self.refresh_stats();
        }
        let resp = datamodel::rpc::serve(&mut self.model, req);
        // Mounts follow the instance rows.
        match (req, &resp) {
            (Body::AddObject(r), Body::AddObjectResponse(a)) if r.object_name == INSTANCE => {
                let m = ProxyMount::new(self.rt.clone(), &a.instance_number.to_string());
                self.model.mount(&format!("{INSTANCE}{}.Device.", a.instance_number), Box::new(m.clone()));
                self.mounts.insert(a.instance_number, m);
            }
            (Body::DeleteObject(r), Body::DeleteObjectResponse(_)) => {
                if let Some(n) = instance_row(&r.object_name) {
                    self.mounts.remove(&n);
                }
            }
            _ => {}
        }
        if matches!(resp, Body::SetParameterAttributesResponse(_)) {
            if let Err(e) = self.save() {
                tracing::error!("saving attributes: {e}");
            }
        }
        let changed = matches!(
            resp,
            Body::SetParameterValuesResponse(_) | Body::AddObjectResponse(_) | Body::DeleteObjectResponse(_)
        );
        if changed {
            if let Err(e) = self.save() {
                tracing::error!("saving the data model: {e}");
                return Body::Fault(Fault::with_string(FaultCode::InternalError, e.to_string()));
            }
            // Only the instances this request named (or all, for a change elsewhere in the
            // virtualization tree, such as a template or a pool).
            let touched: Option<Vec<u32>> = match req {
                Body::SetParameterValues(r) => {
                    let ns: Vec<Option<u32>> = r.parameter_list.iter().map(|p| row_number(INSTANCE, &p.name)).collect();
                    ns.iter().all(Option::is_some).then(|| ns.into_iter().flatten().collect())
                }
                Body::AddObject(r) if r.object_name == INSTANCE => match &resp {
                    Body::AddObjectResponse(a) => Some(vec![a.instance_number]),
                    _ => None,
                },
                _ => None,
            };
            // Instances told a migration command run it instead of converging.
            let commanded: Vec<u32> = match req {
                Body::SetParameterValues(r) => r
                    .parameter_list
                    .iter()
                    .filter_map(|p| {
                        row_number(INSTANCE, &p.name).filter(|n| p.name == format!("{INSTANCE}{n}.Migration.Command"))
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match touched {
                Some(mut ns) => {
                    ns.sort_unstable();
                    ns.dedup();
                    ns.retain(|n| !commanded.contains(n));
                    self.converge_only(&ns);
                }
                None => self.converge(),
            }
            for n in commanded {
                self.migration_command(n);
            }
        }
        resp
    }

    /// Checks what the tree cannot: references to templates that exist, and no change of
    /// template under a provisioned instance. Every refused parameter is reported (9007).
    fn check_set(&self, values: &[cwmp::ParameterValue]) -> std::result::Result<(), Fault> {
        let mut faults = Vec::new();
        let refuse = |faults: &mut Vec<ParameterFault>, name: &str, why: String| {
            faults.push(ParameterFault {
                parameter_name: name.to_string(),
                code: FaultCode::InvalidParameterValue,
                string: why,
            })
        };
        let templates = self.model.root().instances(TEMPLATE);
        for pv in values {
            let is_instance_template =
                row_number(INSTANCE, &pv.name).is_some_and(|n| pv.name == format!("{INSTANCE}{n}.Template"));
            let is_pool_template = row_number(POOL, &pv.name).is_some_and(|n| pv.name == format!("{POOL}{n}.Template"));
            if !(is_instance_template || is_pool_template) {
                continue;
            }
            let Value::String(target) = &pv.value else { continue };
            if !target.is_empty() {
                match row_number(TEMPLATE, target) {
                    Some(t) if templates.contains(&t) => {}
                    _ => refuse(&mut faults, &pv.name, format!("{target:?} is not a Template of this host")),
                }
            }
            if let Some(n) = row_number(INSTANCE, &pv.name).filter(|_| is_instance_template) {
                let bound = self.state.slot_of(n).ok().flatten().is_some();
                if bound && row_number(TEMPLATE, target) != self.wanted(n).template {
                    refuse(&mut faults, &pv.name, "the template of a provisioned instance cannot change".into());
                }
            }
        }
        if faults.is_empty() {
            // Types, ranges, enumerations and unique VLAN pairs, across every row at once.
            return self.model.validate_set_parameter_values(values);
        }
        Err(Fault {
            code: FaultCode::InvalidArguments,
            string: format!("{} of {} parameters refused; nothing was changed", faults.len(), values.len()),
            set_parameter_values_faults: faults,
        })
    }

    /// Brings every instance to what its row asks for. Failures are recorded on the instance.
    pub fn converge(&mut self) {
        let all = self.model.root().instances(INSTANCE);
        self.converge_only(&all);
    }

    /// [`Host::converge`] for these instances only.
    fn converge_only(&mut self, instances: &[u32]) {
        let live = self.model.root().instances(INSTANCE);
        for &n in instances.iter().filter(|n| live.contains(n)) {
            if let Err(e) = self.converge_instance(n) {
                tracing::error!(instance = n, "{e}");
                let p = format!("{INSTANCE}{n}.");
                self.set_internal(&format!("{p}Status"), Value::String("Error".into()));
                self.set_internal(&format!("{p}LastError"), Value::String(e.to_string()));
            }
        }
        self.update_pools();
        self.sync_topology();
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
        let t = format!("{TEMPLATE}{}.", slot.template);
        if !self.model.root().instances(TEMPLATE).contains(&slot.template) {
            return Err(HostError::Other(format!("template {} does not exist", slot.template)));
        }
        let image = self.string(&format!("{t}Image"));
        let boot = if image.ends_with(".qcow2") {
            Boot::Disk { overlay: self.cfg.overlay_dir.join(format!("{}.qcow2", slot.domain)).display().to_string() }
        } else {
            let dir = image.trim_end_matches('/');
            Boot::Kernel {
                kernel: format!("{dir}/vmlinuz"),
                initrd: format!("{dir}/initrd.img"),
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
            kind: self.cfg.domain_type.clone(),
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
            owner: Owner { agent: self.cfg.agent_id.clone(), slot: slot.id },
            tb_cache_mib: if self.cfg.domain_type == "qemu" { self.cfg.tb_cache_mib } else { None },
            console_log: self
                .cfg
                .console_log_dir
                .as_ref()
                .map(|d| d.join(format!("{}.console.log", slot.domain)).display().to_string()),
            uuid: (!slot.uuid.is_empty()).then(|| slot.uuid.clone()),
            profile: None,
        })
    }

    /// An image-based template's instance needs its overlay over the template's base image.
    fn compose_image(&self, spec: &DomainSpec, template: u32) -> Result<()> {
        let Boot::Disk { overlay } = &spec.boot else { return Ok(()) };
        if std::path::Path::new(overlay).exists() {
            return Ok(());
        }
        let base = self.string(&format!("{TEMPLATE}{template}.Image"));
        std::fs::create_dir_all(&self.cfg.overlay_dir).map_err(|e| HostError::Other(format!("{e}")))?;
        let out = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &base, overlay])
            .output()
            .map_err(|e| HostError::Other(format!("qemu-img: {e}")))?;
        if !out.status.success() {
            return Err(HostError::Other(format!("qemu-img: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        Ok(())
    }

    fn secret() -> String {
        http_shell::random_hex(16)
    }

    fn converge_instance(&mut self, n: u32) -> Result<()> {
        let w = self.wanted(n);
        let p = format!("{INSTANCE}{n}.");
        let slot = self.state.slot_of(n)?;
        if let Some(s) = slot.as_ref().filter(|s| matches!(s.usage, SlotUse::Incoming | SlotUse::Outgoing)) {
            // A migration owns it until it completes or is aborted.
            let _ = s;
            self.set_internal(&format!("{p}Status"), Value::String("Migrating".into()));
            return Ok(());
        }
        let Some(slot) = slot else {
            if self.migration_mode(n).is_some() {
                // Made for a migration here: provisioned by its commands only (or already left).
                if self.string(&format!("{p}Status")) != "Migrated" {
                    self.set_internal(&format!("{p}Status"), Value::String("Defining".into()));
                }
                return Ok(());
            }
            let (Some(template), true) = (w.template, w.svlan != 0 && w.cvlan != 0) else {
                // Not enough to provision yet.
                self.set_internal(&format!("{p}Status"), Value::String("Defining".into()));
                return Ok(());
            };
            if w.requested == "Stopped" {
                self.set_internal(&format!("{p}Status"), Value::String("Stopped".into()));
                return Ok(());
            }
            return self.provision(n, template, w.svlan, w.cvlan, &w.requested);
        };
        // Provisioned: VLANs and state follow the row.
        let port = self.lan_port(slot.id);
        let bound = self.vlan.bindings()?.into_iter().find(|b| b.port == port);
        if bound.as_ref().map(|b| (b.svlan, b.cvlan)) != Some((w.svlan, w.cvlan)) && w.svlan != 0 && w.cvlan != 0 {
            let old = bound.map(|b| b.svlan);
            self.vlan.bind(&port, w.svlan, w.cvlan)?;
            let nic = self.vlan.lan_nic(Some((w.svlan, w.cvlan)))?;
            self.compute.define(&self.spec(&slot, &nic)?)?;
            if let Some(old) = old.filter(|o| *o != w.svlan) {
                self.vlan.remove_svlan_if_unused(old)?;
            }
            tracing::info!(instance = n, svlan = w.svlan, cvlan = w.cvlan, "rebound");
        }
        if self.mounts.get(&n).is_some_and(|m| !m.attached()) {
            self.attach(n, &slot)?;
        }
        let now = self.compute.state(&slot.domain)?;
        match (w.requested.as_str(), now) {
            (_, None) => return Err(HostError::Other(format!("domain {} is missing", slot.domain))),
            ("Running", Some(DomState::Paused)) => self.compute.resume(&slot.domain)?,
            ("Running", Some(DomState::ShutOff | DomState::Crashed)) => self.compute.start(&slot.domain)?,
            ("Suspended", Some(DomState::Running)) => self.compute.suspend(&slot.domain)?,
            ("Stopped", Some(DomState::Running | DomState::Paused)) => self.compute.stop(&slot.domain)?,
            _ => {}
        }
        self.refresh_instance(n, &slot)?;
        Ok(())
    }

    /// Takes a pooled domain (or makes a new one) for instance `n`.
    fn provision(&mut self, n: u32, template: u32, s: u16, c: u16, requested: &str) -> Result<()> {
        let p = format!("{INSTANCE}{n}.");
        let pool = self
            .model
            .root()
            .instances(POOL)
            .into_iter()
            .filter(|&k| matches!(self.value(&format!("{POOL}{k}.Enable")), Some(Value::Boolean(true))))
            .find(|&k| row_number(TEMPLATE, &self.string(&format!("{POOL}{k}.Template"))) == Some(template));
        let nic = self.vlan.lan_nic(Some((s, c)))?;
        let taken = match pool {
            Some(k) => self.state.take_pooled(k)?,
            None => None,
        };
        let slot = match taken {
            Some(slot) => {
                // Rebind its LAN port, record the assignment, resume.
                self.vlan.bind(&self.lan_port(slot.id), s, c)?;
                self.compute.define(&self.spec(&slot, &nic)?)?;
                self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
                if requested == "Running" {
                    self.compute.resume(&slot.domain)?;
                }
                tracing::info!(instance = n, slot = slot.id, svlan = s, cvlan = c, "provisioned from the pool");
                slot
            }
            None => {
                let mgmt = |id: u32| self.mgmt_address(id);
                let slot = self.state.new_slot(&self.cfg.agent_id, template, None, &mgmt, &Self::secret())?;
                let spec = self.spec(&slot, &nic)?;
                self.compose_image(&spec, template)?;
                self.compute.define(&spec)?;
                self.state.set_slot(slot.id, SlotUse::Assigned, Some(n))?;
                self.compute.start(&slot.domain)?;
                self.vlan.bind(&self.lan_port(slot.id), s, c)?;
                if requested == "Suspended" {
                    self.compute.suspend(&slot.domain)?;
                }
                tracing::info!(instance = n, slot = slot.id, svlan = s, cvlan = c, "provisioned by a cold start");
                slot
            }
        };
        self.set_internal(&format!("{p}LastError"), Value::String(String::new()));
        self.attach(n, &slot)?;
        self.refresh_instance(n, &slot)
    }

    /// Points instance `n`'s mount at its proxy (the profile is pushed by [`Host::sync_proxies`]).
    fn attach(&mut self, n: u32, slot: &Slot) -> Result<()> {
        let Some(m) = self.mounts.get(&n) else { return Ok(()) };
        let ip = slot.mgmt_address.split('/').next().unwrap_or("");
        m.attach(ProxyTarget { url: format!("http://{ip}:{}/RPC2", self.cfg.proxy_port), secret: slot.secret.clone() })
            .map_err(|f| HostError::Other(f.string))
    }

    /// Pushes their profiles to instances whose proxies answer and do not have them yet (a
    /// vRGW that just booted). How many are in sync.
    pub fn sync_proxies(&mut self) -> usize {
        let key = self.model.parameter_key().to_string();
        let mut synced = 0;
        for (n, m) in &self.mounts {
            match m.sync(&key) {
                Ok(true) => synced += 1,
                Ok(false) => {}
                Err(f) => tracing::warn!(instance = n, "pushing its profile: {}", f.string),
            }
        }
        synced
    }

    fn refresh_instance(&mut self, n: u32, slot: &Slot) -> Result<()> {
        let p = format!("{INSTANCE}{n}.");
        let st = self.compute.state(&slot.domain)?;
        let status = st.map_or("Error", DomState::as_str);
        self.set_internal(&format!("{p}Status"), Value::String(status.into()));
        let ip = slot.mgmt_address.split('/').next().unwrap_or("").to_string();
        self.set_internal(&format!("{p}ManagementAddress"), Value::String(ip));
        self.set_internal(&format!("{p}Domain"), Value::String(slot.domain.clone()));
        if st.is_some_and(|s| s != DomState::ShutOff) {
            let stats = self.compute.stats(&slot.domain)?;
            self.set_internal(&format!("{p}CPUTime"), Value::UnsignedLong(stats.cpu_time_ns / 1_000_000));
            self.set_internal(
                &format!("{p}MemoryKiB"),
                Value::UnsignedInt(u32::try_from(stats.memory_kib).unwrap_or(u32::MAX)),
            );
        }
        Ok(())
    }

    /// CPU time, memory and status of every instance, from libvirt.
    pub fn refresh_stats(&mut self) {
        let Ok(slots) = self.state.slots() else { return };
        for slot in slots {
            if let (SlotUse::Assigned, Some(n)) = (slot.usage, slot.instance) {
                if let Err(e) = self.refresh_instance(n, &slot) {
                    tracing::warn!(instance = n, "reading its state: {e}");
                }
            }
        }
        self.update_pools();
    }

    /// The trunk as TR-181 shows it, kept in step with the instances: `Ethernet.Interface.1` is
    /// the trunk, an `Ethernet.VLANTermination` per S-VLAN in use (TPID 0x88A8, on the trunk) and
    /// one per bound subscriber (its C-VLAN, TPID 0x8100, stacked on its S-VLAN's row through
    /// LowerLayers); `ManagementServer.EmbeddedDevice` lists each provisioned vRGW (TR-069 Annex
    /// J.3) with the path of its embedded data model. Rows the agent made carry the aliases
    /// `svlan-S` and `cvlan-S-C`; rows the ACS made itself are left alone.
    fn sync_topology(&mut self) {
        let mut bound: Vec<(u32, u16, u16)> = Vec::new();
        for slot in self.state.slots().unwrap_or_default() {
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
        let rows: Vec<(u32, String)> =
            self.model.root().instances(vt).into_iter().map(|i| (i, self.string(&format!("{vt}{i}.Alias")))).collect();
        let mut svlans: Vec<u16> = bound.iter().map(|b| b.1).collect();
        svlans.sort_unstable();
        svlans.dedup();
        let wanted_aliases: Vec<String> = svlans
            .iter()
            .map(|s| format!("svlan-{s}"))
            .chain(bound.iter().map(|(_, s, c)| format!("cvlan-{s}-{c}")))
            .collect();
        // Stale rows first (C-VLAN rows before the S-VLAN rows they stack on).
        for (i, alias) in rows.iter().rev() {
            let ours = alias.starts_with("svlan-") || alias.starts_with("cvlan-");
            if ours && !wanted_aliases.contains(alias) {
                let _ = self.model.root_mut().delete_object_internal(&format!("{vt}{i}."));
            }
        }
        let row_of = |host: &Host, alias: &str| -> Option<u32> {
            host.model.root().instances(vt).into_iter().find(|i| host.string(&format!("{vt}{i}.Alias")) == alias)
        };
        let add = |host: &mut Host, alias: &str, vlan: u16, tpid: u32, lower: String| {
            if row_of(host, alias).is_some() {
                return;
            }
            match host.model.root_mut().add_object_internal(vt) {
                Ok(i) => {
                    let p = format!("{vt}{i}.");
                    host.set_internal(&format!("{p}Alias"), Value::String(alias.into()));
                    host.set_internal(&format!("{p}Name"), Value::String(alias.into()));
                    host.set_internal(&format!("{p}VLANID"), Value::UnsignedInt(u32::from(vlan)));
                    host.set_internal(&format!("{p}TPID"), Value::UnsignedInt(tpid));
                    host.set_internal(&format!("{p}LowerLayers"), Value::String(lower));
                    host.set_internal(&format!("{p}Enable"), Value::Boolean(true));
                    host.set_internal(&format!("{p}Status"), Value::String("Up".into()));
                }
                Err(f) => tracing::error!(alias, "VLAN termination row: {}", f.string),
            }
        };
        for s in &svlans {
            add(self, &format!("svlan-{s}"), *s, 0x88A8, format!("{eth}{trunk}"));
        }
        for (_, s, c) in &bound {
            let lower = row_of(self, &format!("svlan-{s}")).map(|i| format!("{vt}{i}")).unwrap_or_default();
            add(self, &format!("cvlan-{s}-{c}"), *c, 0x8100, lower);
        }
        // Embedded devices: one per provisioned instance.
        let ed = "Device.ManagementServer.EmbeddedDevice.";
        let refs: Vec<String> = bound.iter().map(|(n, _, _)| format!("{INSTANCE}{n}.Device.")).collect();
        for i in self.model.root().instances(ed) {
            let r = self.string(&format!("{ed}{i}.Reference"));
            if !refs.contains(&r) {
                let _ = self.model.root_mut().delete_object_internal(&format!("{ed}{i}."));
            }
        }
        let have: Vec<String> =
            self.model.root().instances(ed).into_iter().map(|i| self.string(&format!("{ed}{i}.Reference"))).collect();
        for (n, _, _) in &bound {
            let reference = format!("{INSTANCE}{n}.Device.");
            if have.contains(&reference) {
                continue;
            }
            if let Ok(i) = self.model.root_mut().add_object_internal(ed) {
                let p = format!("{ed}{i}.");
                let subscriber = self.string(&format!("{INSTANCE}{n}.Subscriber"));
                let id = if subscriber.is_empty() { format!("instance-{n}") } else { subscriber };
                self.set_internal(&format!("{p}ControllerID"), Value::String(self.cfg.agent_id.clone()));
                self.set_internal(&format!("{p}ProxiedDeviceID"), Value::String(id));
                self.set_internal(&format!("{p}Reference"), Value::String(reference));
                self.set_internal(&format!("{p}CommandProcessed"), Value::String("Success".into()));
            }
        }
    }

    /// Destroys and undefines instance `n`'s domain and frees its VLANs (before its row goes).
    fn release_instance(&mut self, n: u32) -> Result<()> {
        let Some(slot) = self.state.slot_of(n)? else { return Ok(()) };
        if let Some(m) = self.mounts.get(&n) {
            m.detach();
        }
        self.destroy_slot(&slot)?;
        tracing::info!(instance = n, slot = slot.id, "released");
        Ok(())
    }

    fn destroy_slot(&mut self, slot: &Slot) -> Result<()> {
        self.state.set_slot(slot.id, SlotUse::Deleting, slot.instance)?;
        let port = self.lan_port(slot.id);
        let svlan = self.vlan.bindings()?.into_iter().find(|b| b.port == port).map(|b| b.svlan);
        self.compute.undefine(&slot.domain)?;
        self.vlan.release(&port)?;
        if let Some(s) = svlan {
            self.vlan.remove_svlan_if_unused(s)?;
        }
        let overlay = self.cfg.overlay_dir.join(format!("{}.qcow2", slot.domain));
        let _ = std::fs::remove_file(overlay);
        self.state.drop_slot(slot.id)?;
        Ok(())
    }

    /// One unit of pool work: creates one pooled domain for a pool below its target, or
    /// destroys one of a pool above it. Whether anything was done (call again until not).
    pub fn pool_step(&mut self) -> Result<bool> {
        if self.warm_step()? {
            self.update_pools();
            return Ok(true);
        }
        let slots = self.state.slots()?;
        for k in self.model.root().instances(POOL) {
            let pp = format!("{POOL}{k}.");
            let enabled = matches!(self.value(&format!("{pp}Enable")), Some(Value::Boolean(true)));
            let target = if enabled { self.uint(&format!("{pp}TargetSize")) as usize } else { 0 };
            let pooled: Vec<&Slot> = slots
                .iter()
                .filter(|s| s.pool == Some(k) && matches!(s.usage, SlotUse::Pooled | SlotUse::Warming))
                .collect();
            if pooled.len() > target {
                if let Some(victim) = pooled.last() {
                    self.set_internal(&format!("{pp}Status"), Value::String("Draining".into()));
                    let victim = (*victim).clone();
                    self.destroy_slot(&victim)?;
                    self.update_pools();
                    return Ok(true);
                }
            }
            if pooled.len() < target {
                let Some(template) = row_number(TEMPLATE, &self.string(&format!("{pp}Template"))) else {
                    self.set_internal(&format!("{pp}Status"), Value::String("Error".into()));
                    continue;
                };
                self.set_internal(&format!("{pp}Status"), Value::String("Filling".into()));
                if let Err(e) = self.fill_one(k, template) {
                    self.set_internal(&format!("{pp}Status"), Value::String("Error".into()));
                    return Err(e);
                }
                self.update_pools();
                return Ok(true);
            }
        }
        // Nothing to do: the pools' figures are refreshed by converge and by the periodic
        // refresh, not after every request the host thread serves.
        Ok(false)
    }

    fn fill_one(&mut self, pool: u32, template: u32) -> Result<()> {
        let park = self.vlan.lan_nic(None)?;
        let mgmt = |id: u32| self.mgmt_address(id);
        let slot = self.state.new_slot(&self.cfg.agent_id, template, Some(pool), &mgmt, &Self::secret())?;
        let spec = self.spec(&slot, &park)?;
        self.compose_image(&spec, template)?;
        self.compute.define(&spec)?;
        self.compute.start(&slot.domain)?;
        if self.cfg.pool_warmup.is_some() {
            self.state.set_slot(slot.id, SlotUse::Warming, None)?;
            self.warming.insert(slot.id, std::time::Instant::now());
            tracing::info!(pool, slot = slot.id, "started a pool instance; suspending it once it has booted");
        } else {
            self.compute.suspend(&slot.domain)?;
            self.state.set_slot(slot.id, SlotUse::Pooled, None)?;
            tracing::info!(pool, slot = slot.id, "pooled a suspended instance");
        }
        Ok(())
    }

    /// Suspends the warming pool domains whose proxies answer (they have booted), and replaces
    /// those that did not within the warm-up time. Whether anything changed.
    fn warm_step(&mut self) -> Result<bool> {
        let Some(limit) = self.cfg.pool_warmup else { return Ok(false) };
        let mut changed = false;
        for slot in self.state.slots()?.into_iter().filter(|s| s.usage == SlotUse::Warming) {
            let since = *self.warming.entry(slot.id).or_insert_with(std::time::Instant::now);
            let ip = slot.mgmt_address.split('/').next().unwrap_or("");
            let answers = ip
                .parse::<Ipv4Addr>()
                .map(|ip| {
                    let addr = std::net::SocketAddr::from((ip, self.cfg.proxy_port));
                    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300)).is_ok()
                })
                .unwrap_or(false);
            if answers {
                self.compute.suspend(&slot.domain)?;
                self.state.set_slot(slot.id, SlotUse::Pooled, None)?;
                self.warming.remove(&slot.id);
                tracing::info!(
                    pool = slot.pool,
                    slot = slot.id,
                    boot_ms = since.elapsed().as_millis() as u64,
                    "pooled a booted instance, suspended"
                );
                changed = true;
            } else if since.elapsed() > limit {
                tracing::error!(
                    pool = slot.pool,
                    slot = slot.id,
                    "its proxy did not answer within {} s of the start; destroying it (the pool makes another)",
                    limit.as_secs()
                );
                self.warming.remove(&slot.id);
                self.destroy_slot(&slot)?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Ready, Suspended and Status of every pool, from the slots.
    fn update_pools(&mut self) {
        let Ok(slots) = self.state.slots() else { return };
        for k in self.model.root().instances(POOL) {
            let pp = format!("{POOL}{k}.");
            let pooled: Vec<&Slot> = slots.iter().filter(|s| s.pool == Some(k) && s.usage == SlotUse::Pooled).collect();
            let warming = slots.iter().filter(|s| s.pool == Some(k) && s.usage == SlotUse::Warming).count();
            let suspended =
                pooled.iter().filter(|s| matches!(self.compute.state(&s.domain), Ok(Some(DomState::Paused)))).count();
            let enabled = matches!(self.value(&format!("{pp}Enable")), Some(Value::Boolean(true)));
            let target = if enabled { self.uint(&format!("{pp}TargetSize")) as usize } else { 0 };
            let status = match (enabled, (pooled.len() + warming).cmp(&target)) {
                (_, std::cmp::Ordering::Equal) if warming > 0 => "Filling",
                (false, std::cmp::Ordering::Equal) => "Disabled",
                (_, std::cmp::Ordering::Less) => "Filling",
                (_, std::cmp::Ordering::Greater) => "Draining",
                (true, std::cmp::Ordering::Equal) => "Idle",
            };
            let keep_error = self.string(&format!("{pp}Status")) == "Error" && pooled.len() + warming != target;
            self.set_internal(&format!("{pp}Ready"), Value::UnsignedInt(pooled.len() as u32));
            self.set_internal(&format!("{pp}Suspended"), Value::UnsignedInt(suspended as u32));
            if !keep_error {
                self.set_internal(&format!("{pp}Status"), Value::String(status.into()));
            }
        }
    }

    /// After a start: finishes or rolls back what a crash interrupted, adopts the domains this
    /// agent owns, re-creates any of its domains that vanished, and removes owned domains
    /// nothing refers to (logged as drift). Then every instance is converged.
    pub fn reconcile(&mut self) -> Result<()> {
        let owned = self.compute.owned(&self.cfg.agent_id)?;
        let instances = self.model.root().instances(INSTANCE);
        for slot in self.state.slots()? {
            let exists = owned.iter().any(|d| d.name == slot.domain);
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
                    self.state.drop_slot(slot.id)?;
                }
                SlotUse::Assigned if !exists => {
                    tracing::warn!(slot = slot.id, "drift: domain of an instance vanished; defining it again");
                    let n = slot.instance.unwrap_or(0);
                    let w = self.wanted(n);
                    let nic = self.vlan.lan_nic(Some((w.svlan, w.cvlan)))?;
                    let spec = self.spec(&slot, &nic)?;
                    self.compose_image(&spec, slot.template)?;
                    self.compute.define(&spec)?;
                    if w.requested != "Stopped" {
                        self.compute.start(&slot.domain)?;
                        self.vlan.bind(&self.lan_port(slot.id), w.svlan, w.cvlan)?;
                    }
                }
                _ => {}
            }
        }
        self.reconcile_migrations()?;
        let known: Vec<String> = self.state.slots()?.into_iter().map(|s| s.domain).collect();
        for d in owned.iter().filter(|d| !known.contains(&d.name)) {
            tracing::warn!(domain = %d.name, slot = d.owner.slot, "drift: owned domain with no record; removing it");
            self.compute.undefine(&d.name)?;
        }
        self.converge();
        self.save()?;
        Ok(())
    }
}

mod migration;
pub use migration::Mode as MigrationMode;

#[cfg(test)]
mod tests;
