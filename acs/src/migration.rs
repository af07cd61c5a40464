//! Moving a subscriber's vRGW between hosts: the ACS's side of the migration operations the
//! host agents offer in `Instance.{i}.Migration.` (docs/migration.md).
//!
//! An orchestration is a sequence of ordinary tasks on the two host devices, each delivered with
//! a connection request and waited for: read the instance on the source, add it on the
//! destination with `Command` `Prepare`, (context-based: copy its configuration), tell the
//! source `Start` and wait for its `Status`, tell the destination `Complete`, delete the source's
//! row. When a step fails the ones done are undone in reverse (the source told `Abort`, the
//! destination's row deleted), so the vRGW runs at exactly one place; a task a host did not run in
//! time is deleted, never delivered late. The record (`GET /migrations/{id}`) keeps each step with
//! its time.
//!
//! On a cluster of ACS nodes, an orchestration is one node's at a time: it holds the
//! migration's lease ([`crate::store::leases::migration_key`]) while it runs, renewed every
//! [`LEASE_RENEWAL`]; every node looks for running migrations nobody holds every
//! [`SWEEP_EVERY`] ([`resume_all`]) and takes them up, so a migration whose node died goes on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use crate::endpoint::Acs;
use cwmp::{ParameterValue, Value, XsdType};
use datamodel::virtualization::{
    Instance, Migration, MigrationCommand, MigrationMode, MigrationStatus, Template, Virtualization,
};

use crate::store::{Store, StoreError, TaskStatus};
use crate::tasks::TaskSpec;

/// The NBI's name of a migration mode (`live`, `cold-image`, `cold-context`; docs/migration.md),
/// which the data model spells `Live`, `ColdImage`, `ColdContext`.
pub fn nbi_mode(mode: MigrationMode) -> &'static str {
    match mode {
        MigrationMode::None => "none",
        MigrationMode::Live => "live",
        MigrationMode::ColdImage => "cold-image",
        MigrationMode::ColdContext => "cold-context",
    }
}

/// The mode the NBI names `s`; `none` (no migration) is not one to ask for.
pub fn mode_from_nbi(s: &str) -> Option<MigrationMode> {
    MigrationMode::ALL.into_iter().filter(|m| *m != MigrationMode::None).find(|m| nbi_mode(*m) == s)
}

/// What the NBI asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// Source host device.
    pub source: String,
    /// Instance number there.
    pub instance: u32,
    /// Destination host device.
    pub target: String,
    /// Mode (not `None`).
    pub mode: MigrationMode,
    /// How long a host may take for one step.
    pub step_timeout: Duration,
}

/// Connection-request settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Timeout of one connection request.
    pub timeout: Duration,
    /// The hosts registered for live and image-based migration: DeviceId to the libvirt URI
    /// peers reach it at (`[[hosts]]` in the configuration). A host's own `MigrationURI` report
    /// is never handed to another host.
    pub hosts: Arc<std::collections::BTreeMap<String, String>>,
}

/// A string value.
fn string(name: impl Into<String>, v: &str) -> ParameterValue {
    ParameterValue::new(name, Value::String(v.to_string()))
}

/// A value of type `ty` from its text (a host's answer or a parameter read before).
fn typed(name: impl Into<String>, v: &str, ty: XsdType) -> Result<ParameterValue, String> {
    let name = name.into();
    let value = Value::parse(ty, v).map_err(|e| format!("{name}: {e}"))?;
    Ok(ParameterValue::new(name, value))
}

/// The type a host named (`xsd:unsignedInt`, ...).
fn xsd(t: &str) -> Result<XsdType, String> {
    XsdType::from_local(t.trim_start_matches("xsd:")).ok_or_else(|| format!("unknown type {t}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Why a migration cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The source or the target is not a known device.
    #[error("no device {0}")]
    NoDevice(String),
    /// Source and target are the same host.
    #[error("the target is the source")]
    SameHost,
    /// The instance is being migrated already.
    #[error("instance {instance} of {source_host} is being migrated already")]
    Busy {
        /// The source host.
        source_host: String,
        /// Its instance.
        instance: u32,
    },
    /// Live or image-based migration with a host the ACS has no migration URI registered for.
    #[error(
        "{0} is not registered for {1} migration (no [[hosts]] entry with its migration_uri in the ACS's \
         configuration; a host's own MigrationURI is not trusted)"
    )]
    NotRegistered(String, &'static str),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl StartError {
    /// The NBI's status for it.
    pub fn status(&self) -> hyper::StatusCode {
        match self {
            StartError::NoDevice(_) => hyper::StatusCode::NOT_FOUND,
            StartError::SameHost | StartError::NotRegistered(..) => hyper::StatusCode::BAD_REQUEST,
            StartError::Busy { .. } => hyper::StatusCode::CONFLICT,
            StartError::Store(_) => hyper::StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Checks a request and records it; the orchestration runs in the background. Returns the
/// record.
pub fn start(acs: Arc<Acs>, cr: Settings, req: Request) -> Result<(i64, Json), StartError> {
    let store = acs.store.clone();
    for d in [&req.source, &req.target] {
        if store.device(d)?.is_none() {
            return Err(StartError::NoDevice(d.clone()));
        }
    }
    if req.mode != MigrationMode::ColdContext {
        for d in [&req.source, &req.target] {
            if !cr.hosts.contains_key(d.as_str()) {
                return Err(StartError::NotRegistered(d.clone(), nbi_mode(req.mode)));
            }
        }
    }
    if req.source == req.target {
        return Err(StartError::SameHost);
    }
    let record = json!({
        "source": req.source, "instance": req.instance, "target": req.target, "mode": nbi_mode(req.mode),
        "status": "running", "step": "reading the instance", "started": now_ms(), "steps": [],
    });
    let Some(id) = store.start_migration(&record)? else {
        return Err(StartError::Busy { source_host: req.source.clone(), instance: req.instance });
    };
    let Some(held) = Held::take(&acs, id)? else {
        return Err(StartError::Busy { source_host: req.source.clone(), instance: req.instance });
    };
    let mut run = Run { acs, cr, req, id, record: record.clone(), t0: Instant::now(), _held: held };
    tokio::spawn(async move { run.go().await });
    let mut r = record;
    r["_id"] = json!(id.to_string());
    Ok((id, r))
}

/// After a restart: every migration recorded as running lost its orchestration with the old
/// process. Each is taken up again: its tasks still queued are dropped (never delivered late),
/// the hosts are asked where the vRGW is, and the migration is finished or undone accordingly.
/// Until then the instance stays locked (the NBI refuses another migration of it, the web form
/// waits), so no record stays `running` for ever.
pub fn resume_all(acs: Arc<Acs>, cr: Settings) -> Result<usize, StoreError> {
    let mut n = 0;
    for (id, record) in acs.store.migrations()? {
        if record["status"] != "running" || acs.migrations_running().contains(&id) {
            continue;
        }
        // Another node's, alive: its own.
        let Some(held) = Held::take(&acs, id)? else { continue };
        let req = Request {
            source: record["source"].as_str().unwrap_or_default().to_string(),
            instance: record["instance"].as_u64().and_then(|i| u32::try_from(i).ok()).unwrap_or(0),
            target: record["target"].as_str().unwrap_or_default().to_string(),
            mode: record["mode"].as_str().and_then(mode_from_nbi).unwrap_or(MigrationMode::ColdContext),
            step_timeout: Duration::from_secs(30),
        };
        tracing::warn!(migration = id, source = %req.source, instance = req.instance, target = %req.target,
            "a migration is running with no ACS orchestrating it (a restart, a node gone): taking it up");
        let mut run = Run { acs: acs.clone(), cr: cr.clone(), req, id, record, t0: Instant::now(), _held: held };
        tokio::spawn(async move { run.resume().await });
        n += 1;
    }
    Ok(n)
}

struct Run {
    acs: Arc<Acs>,
    cr: Settings,
    req: Request,
    id: i64,
    record: Json,
    t0: Instant,
    /// This node's hold on the orchestration, given back when the run ends.
    _held: Held,
}

/// How long a migration's lease lasts without renewal.
pub const LEASE_SECS: i64 = 30;
/// How often a running migration's lease is renewed.
pub const LEASE_RENEWAL: Duration = Duration::from_secs(10);
/// How often every node looks for running migrations nobody orchestrates.
pub const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// This node's hold on a migration's orchestration: in the node's table of those it runs and
/// (a cluster) its lease, renewed until dropped.
struct Held {
    acs: Arc<Acs>,
    id: i64,
    renew: tokio::task::JoinHandle<()>,
}

impl Held {
    /// The hold, or `None` when another node holds the migration's lease.
    fn take(acs: &Arc<Acs>, id: i64) -> Result<Option<Held>, StoreError> {
        let key = crate::store::leases::migration_key(id);
        if !acs.migrations_running().insert(id) {
            return Ok(None);
        }
        match acs.store.lease(&key, LEASE_SECS) {
            Ok(true) => {}
            Ok(false) => {
                acs.migrations_running().remove(&id);
                return Ok(None);
            }
            Err(e) => {
                acs.migrations_running().remove(&id);
                return Err(e);
            }
        }
        let store = acs.store.clone();
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_RENEWAL).await;
                match store.lease(&key, LEASE_SECS) {
                    Ok(true) => {}
                    Ok(false) => tracing::error!(migration = id, "the migration's lease went to another node"),
                    Err(e) => tracing::warn!(migration = id, "renewing the migration's lease: {e}"),
                }
            }
        });
        Ok(Some(Held { acs: acs.clone(), id, renew }))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renew.abort();
        if let Err(e) = self.acs.store.release(&crate::store::leases::migration_key(self.id)) {
            tracing::warn!(migration = self.id, "the migration's lease is left to expire: {e}");
        }
        self.acs.migrations_running().remove(&self.id);
    }
}

/// What the source's instance is.
struct Source {
    template_name: String,
    subscriber: String,
    svlan: String,
    cvlan: String,
    domain: String,
    uri: String,
    /// The instance's own ManagementMode (`Template` when it follows its template's).
    management_mode: String,
    /// Whether the source shows the vRGW's tree in its own model (Embedded or Both, the
    /// instance's mode or its template's): what the configuration can be copied from.
    embedded: bool,
}

fn param(result: &Json, name: &str) -> Option<String> {
    result["parameters"].as_array()?.iter().find(|p| p[0] == name).and_then(|p| p[1].as_str()).map(str::to_string)
}

fn params(result: &Json) -> Vec<(String, String, String)> {
    result["parameters"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string(), p[2].as_str()?.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The Template row named `name` in a result holding `...Template.` values.
fn template_named(result: &Json, name: &str) -> Option<String> {
    params(result).into_iter().find_map(|(p, v, _)| {
        let (row, rest) = Template::split(&p)?;
        let named = rest == Template::relative().name() && v == name && !name.is_empty();
        named.then(|| Template::at(row).path().trim_end_matches('.').to_string())
    })
}

/// The `Status` of migration `m` in a result holding its values.
fn status_in(result: &Json, m: &Migration) -> Option<MigrationStatus> {
    param(result, &m.status())?.parse().ok()
}

impl Run {
    fn note(&mut self, step: &str) {
        tracing::info!(migration = self.id, step, "migration");
        self.record["step"] = json!(step);
        if let Some(steps) = self.record["steps"].as_array_mut() {
            steps.push(json!({"step": step, "at_ms": self.t0.elapsed().as_millis() as u64}));
        }
        self.save();
    }

    fn save(&self) {
        if let Err(e) = self.acs.store.put_migration(self.id, &self.record) {
            tracing::error!(migration = self.id, "recording the migration: {e}");
        }
    }

    /// Runs one task on `device` and waits for it; a task not run in time is deleted.
    async fn task(&self, device: &str, spec: TaskSpec) -> Result<Json, String> {
        let store = self.acs.store.clone();
        let name = spec.name();
        let order = crate::tasks::Order { spec, profile: false, migration: Some(self.id) };
        let t = store.enqueue(device, &order, now_ms() / 1000).map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + self.req.step_timeout;
        let mut next_cr = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_cr {
                if let Some(Some(d)) =
                    crate::store::logged(store.device(device), "a connection request of the migration")
                {
                    if let Err(e) = self.acs.connection_request(&d, self.cr.timeout).await {
                        tracing::warn!(device, migration = self.id, "connection request: {e}");
                    }
                }
                next_cr = tokio::time::Instant::now() + Duration::from_secs(5);
            }
            let notified = self.acs.task_events.notified();
            match store.task(t.id).map_err(|e| e.to_string())? {
                Some(t) if matches!(t.status, TaskStatus::Done) => return Ok(t.result.unwrap_or(Json::Null)),
                Some(t) if matches!(t.status, TaskStatus::Fault) => {
                    let f = crate::store::logged(store.faults(), "the fault's detail")
                        .and_then(|fs| fs.into_iter().find(|f| f.task == Some(t.id)));
                    crate::store::logged(store.delete_task(t.id), "the removal of a faulted migration task");
                    return Err(match f {
                        Some(f) => format!("{device} refused {name:?}: {} {} {}", f.code, f.message, f.detail),
                        None => format!("{device} refused {name:?}"),
                    });
                }
                Some(_) => {}
                None => return Err("the task was deleted".into()),
            }
            let wake = deadline.min(next_cr);
            let _ = tokio::time::timeout_at(wake, notified).await;
            if tokio::time::Instant::now() >= deadline {
                // Not delivered late: a host that comes back must not act on a stale step.
                crate::store::logged(store.delete_task(t.id), "the removal of a migration task not run in time");
                return Err(format!(
                    "{device} did not answer within {} s ({name:?} was not run)",
                    self.req.step_timeout.as_secs(),
                ));
            }
        }
    }

    async fn set(&self, device: &str, values: Vec<ParameterValue>) -> Result<Json, String> {
        self.task(device, TaskSpec::set(values)).await
    }

    /// Sets `Migration.Command` of instance `n` on `device`; returns its `Migration.` values
    /// read after it.
    async fn command(&self, device: &str, n: u32, cmd: MigrationCommand) -> Result<Json, String> {
        self.command_with(device, n, cmd, Vec::new()).await
    }

    /// The same, `values` set in the same request (what the command acts on).
    async fn command_with(
        &self,
        device: &str,
        n: u32,
        cmd: MigrationCommand,
        mut values: Vec<ParameterValue>,
    ) -> Result<Json, String> {
        let m = Migration::at(n);
        values.push(string(m.command(), cmd.as_str()));
        self.set(device, values).await?;
        self.task(device, TaskSpec::get(vec![m.into()])).await
    }

    /// Reads `Migration.Status` of instance `n` on `device` until it is one of `until`.
    async fn wait_status(
        &self,
        device: &str,
        n: u32,
        until: &[MigrationStatus],
    ) -> Result<(MigrationStatus, Json), String> {
        let deadline = Instant::now() + self.req.step_timeout.max(Duration::from_secs(120));
        let m = Migration::at(n);
        let mut last;
        loop {
            // A host that does not answer for a while (its agent restarting) is asked again: its
            // store knows how its part ended.
            match self.task(device, TaskSpec::get(vec![m.path().into()])).await {
                Ok(r) => {
                    let status = param(&r, &m.status()).unwrap_or_default();
                    if let Some(s) = status.parse().ok().filter(|s| until.contains(s)) {
                        return Ok((s, r));
                    }
                    last = status;
                }
                Err(e) => {
                    tracing::warn!(migration = self.id, device, "reading the migration's status: {e}");
                    last = e;
                }
            }
            if Instant::now() > deadline {
                return Err(format!("{device}: the migration stayed {last}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn go(&mut self) {
        let outcome = self.steps().await;
        self.end(outcome);
    }

    async fn resume(&mut self) {
        let outcome = self.take_up().await;
        self.end(outcome);
    }

    /// Finds where a migration interrupted by a restart stands, and finishes or undoes it.
    async fn take_up(&mut self) -> Result<(), String> {
        self.note("taken up again after an ACS restart");
        let (src, dst, n) = (self.req.source.clone(), self.req.target.clone(), self.req.instance);
        for device in [&src, &dst] {
            let left = self.acs.store.open_tasks(device).map_err(|e| e.to_string())?;
            for t in left.into_iter().filter(|t| t.order.migration == Some(self.id)) {
                tracing::info!(migration = self.id, task = t.id, device = %device, "dropping a step queued before the restart");
                self.acs.store.delete_task(t.id).map_err(|e| e.to_string())?;
            }
        }
        let subscriber = self.record["subscriber"].as_str().unwrap_or_default().to_string();
        let Some(m) = self.record["target_instance"].as_u64().and_then(|m| u32::try_from(m).ok()) else {
            return Err(format!(
                "interrupted by an ACS restart before {dst} had made an instance for it; the vRGW runs at {src}"
            ));
        };
        let mp = Migration::at(n);
        let r = self
            .task(&src, TaskSpec::get(vec![mp.path().into()]))
            .await
            .map_err(|e| format!("interrupted by an ACS restart; {e}: where the vRGW runs is not known"))?;
        let mut status = status_in(&r, &mp).unwrap_or_default();
        let mut r = r;
        if status == MigrationStatus::Migrating {
            let until = [
                MigrationStatus::Completed,
                MigrationStatus::Stopped,
                MigrationStatus::Error,
                MigrationStatus::Aborted,
            ];
            (status, r) = self.wait_status(&src, n, &until).await?;
        }
        match status {
            MigrationStatus::Completed | MigrationStatus::Stopped => self.finish(&subscriber, m, status, &r).await,
            _ => {
                self.undo_target(m).await;
                Err(format!(
                    "interrupted by an ACS restart before {src} let the vRGW go ({status:?}); undone, it runs at {src}"
                ))
            }
        }
    }

    fn end(&mut self, outcome: Result<(), String>) {
        self.record["ended"] = json!(now_ms());
        self.record["total_ms"] = json!(self.t0.elapsed().as_millis() as u64);
        match outcome {
            Ok(()) => {
                self.record["status"] = json!("completed");
                self.note("done");
            }
            Err(e) => {
                tracing::error!(migration = self.id, "migration failed: {e}");
                self.record["status"] = json!("failed");
                self.record["error"] = json!(e);
                self.note("failed");
            }
        }
    }

    /// The migration URI registered for `host` (empty: none), warning when the host reports
    /// another one.
    fn registered(&self, host: &str, reported: &str) -> String {
        let uri = self.cr.hosts.get(host).cloned().unwrap_or_default();
        if !reported.is_empty() && reported != uri {
            tracing::warn!(migration = self.id, host, %reported, registered = %uri,
                "the host reports another MigrationURI than registered; the registered one is used");
        }
        uri
    }

    async fn read_source(&mut self) -> Result<Source, String> {
        let (src, n) = (self.req.source.clone(), self.req.instance);
        let (p, v) = (Instance::at(n), Virtualization::at());
        let names = vec![
            p.template(),
            p.subscriber(),
            p.svlan(),
            p.cvlan(),
            p.domain(),
            p.status(),
            p.management_mode(),
            v.migration_uri(),
            Template::TABLE.into(),
        ];
        let r = self.task(&src, TaskSpec::get(names)).await?;
        // The instance's Template is a reference to a row (`...Template.2`).
        let template = param(&r, &p.template()).unwrap_or_default();
        let template_name =
            Template::split(&template).and_then(|(row, _)| param(&r, &Template::at(row).name())).unwrap_or_default();
        // Whose vRGW it is: the ACS's record, not what the host says.
        let placed = self
            .acs
            .store
            .placements_on(&src)
            .map_err(|e| format!("reading where subscribers are: {e}"))?
            .into_iter()
            .find(|pl| pl.instance == n)
            .map(|pl| pl.subscriber)
            .unwrap_or_default();
        let reported = param(&r, &p.subscriber()).unwrap_or_default();
        if reported != placed {
            tracing::warn!(migration = self.id, %src, instance = n, %reported, %placed,
                "the host reports another Subscriber than the ACS placed there; the ACS's record moves with the vRGW");
        }
        let s = Source {
            template_name,
            subscriber: placed,
            svlan: param(&r, &p.svlan()).unwrap_or_default(),
            cvlan: param(&r, &p.cvlan()).unwrap_or_default(),
            domain: param(&r, &p.domain()).unwrap_or_default(),
            uri: self.registered(&src, &param(&r, &v.migration_uri()).unwrap_or_default()),
            management_mode: param(&r, &p.management_mode()).unwrap_or_default(),
            embedded: {
                let own = param(&r, &p.management_mode()).unwrap_or_default();
                let effective = match own.as_str() {
                    "" | "Template" => Template::split(&template)
                        .and_then(|(row, _)| param(&r, &Template::at(row).management_mode()))
                        .unwrap_or_default(),
                    _ => own,
                };
                effective != "Virtual"
            },
        };
        if s.domain.is_empty() {
            return Err(format!("instance {n} of {src} has no running vRGW to migrate"));
        }
        if s.template_name.is_empty() {
            return Err(format!("instance {n} of {src}: its template has no Name to find at the target"));
        }
        if self.req.mode != MigrationMode::ColdContext && s.uri.is_empty() {
            return Err(format!(
                "{src} has no registered migration URI: it takes part in no {} migration",
                nbi_mode(self.req.mode)
            ));
        }
        self.record["subscriber"] = json!(s.subscriber);
        Ok(s)
    }

    async fn steps(&mut self) -> Result<(), String> {
        let (src, dst, n, mode) = (self.req.source.clone(), self.req.target.clone(), self.req.instance, self.req.mode);
        let s = self.read_source().await?;
        self.note("reading the target");
        let v = Virtualization::at();
        let r = self.task(&dst, TaskSpec::get(vec![v.migration_uri(), Template::TABLE.into()])).await?;
        let dst_uri = self.registered(&dst, &param(&r, &v.migration_uri()).unwrap_or_default());
        let template = template_named(&r, &s.template_name)
            .ok_or_else(|| format!("{dst} has no template named {:?}", s.template_name))?;
        if mode != MigrationMode::ColdContext && dst_uri.is_empty() {
            return Err(format!(
                "{dst} has no registered migration URI: it takes part in no {} migration",
                nbi_mode(mode)
            ));
        }

        self.note("preparing the target");
        // Without its Subscriber yet: until the destination runs the vRGW, the subscriber has
        // one instance (the source's), and the ACS applies no profile to a half-made one.
        let (row, rm) = (Instance::relative(), Instance::relative().migration());
        let add = TaskSpec::AddObject {
            object_name: Instance::TABLE.into(),
            parameter_values: vec![
                string(row.template(), &template),
                typed(row.svlan(), &s.svlan, XsdType::UnsignedInt)?,
                typed(row.cvlan(), &s.cvlan, XsdType::UnsignedInt)?,
                string(rm.mode(), mode.as_str()),
                string(rm.peer(), &s.uri),
                string(rm.peer_domain(), &s.domain),
                string(rm.peer_host(), &src),
                string(rm.command(), MigrationCommand::Prepare.as_str()),
            ]
            .into_iter()
            // Managed the same way there (a virtual device stays one).
            .chain((!s.management_mode.is_empty()).then(|| string(row.management_mode(), &s.management_mode)))
            .collect(),
        };
        let r = self.task(&dst, add).await?;
        let Some(m) = r["instance"].as_u64().and_then(|m| u32::try_from(m).ok()) else {
            return Err(format!("{dst} did not say which instance it added"));
        };
        self.record["target_instance"] = json!(m);
        // Saved at once: an ACS restarted from here on must know what to undo.
        self.save();
        let q = Instance::at(m);
        if status_in(&r, &q.migration()) != Some(MigrationStatus::Prepared) {
            let why = param(&r, &q.migration().error()).unwrap_or_default();
            self.undo_target(m).await;
            return Err(format!("{dst} could not prepare: {why}"));
        }
        let dst_domain = param(&r, &q.domain()).unwrap_or_default();
        // ColdContext: the key the source seals what travels with the vRGW to (its
        // configuration with its secrets, its virtual device's state); the ACS carries the
        // sealed text and cannot read it.
        let dst_key = param(&r, &q.migration().key()).unwrap_or_default();

        if mode == MigrationMode::ColdContext {
            // Value by value beforehand, for a short switch-over, where the source shows its
            // vRGW's tree (a virtual device alone shows none: its context carries it all).
            if s.embedded {
                self.note("copying the configuration");
                if let Err(e) = self.copy_configuration(m).await {
                    self.undo_target(m).await;
                    return Err(e);
                }
            } else if dst_key.is_empty() {
                self.undo_target(m).await;
                return Err(format!(
                    "{dst} offers no key for the context, and instance {n} of {src} is a virtual device alone: its configuration cannot be carried"
                ));
            }
        }

        self.note("starting at the source");
        let mp = Migration::at(n);
        let start: Vec<ParameterValue> = [
            string(mp.mode(), mode.as_str()),
            string(mp.peer(), &dst_uri),
            string(mp.peer_domain(), &dst_domain),
            string(mp.peer_host(), &dst),
        ]
        .into_iter()
        .chain((mode == MigrationMode::ColdContext && !dst_key.is_empty()).then(|| string(mp.peer_key(), &dst_key)))
        .chain([string(mp.command(), MigrationCommand::Start.as_str())])
        .collect();
        match self.set(&src, start).await {
            Ok(_) => {}
            Err(e) => {
                // The source may or may not have acted: ask it where the vRGW is before undoing.
                return Err(self.after_source_failure(m, e).await);
            }
        }
        let until =
            [MigrationStatus::Completed, MigrationStatus::Stopped, MigrationStatus::Error, MigrationStatus::Aborted];
        let (status, r) = match self.wait_status(&src, n, &until).await {
            Ok(x) => x,
            Err(e) => return Err(self.after_source_failure(m, e).await),
        };
        self.finish(&s.subscriber, m, status, &r).await
    }

    /// The source let the vRGW go (`status`, its `Migration.` values `r`): the destination's
    /// instance `m` completes (or, cold, the source takes it back), the subscriber is recorded
    /// there and the source's row released.
    async fn finish(&mut self, subscriber: &str, m: u32, status: MigrationStatus, r: &Json) -> Result<(), String> {
        let (src, dst, n, mode) = (self.req.source.clone(), self.req.target.clone(), self.req.instance, self.req.mode);
        let (mp, q) = (Migration::at(n), Instance::at(m));
        if matches!(status, MigrationStatus::Error | MigrationStatus::Aborted) {
            let why = param(r, &mp.error()).unwrap_or_default();
            self.undo_target(m).await;
            return Err(format!("{src} did not let the vRGW go: {why}"));
        }
        let stopped_at = Instant::now();
        if mode == MigrationMode::Live {
            let d = param(r, &mp.downtime()).and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
            self.record["downtime_ms"] = json!(d);
        }

        self.note("completing at the target");
        // ColdContext: the sealed context goes with the command that opens it.
        let context = param(r, &mp.context()).filter(|c| mode == MigrationMode::ColdContext && !c.is_empty());
        let carried = context.map(|c| string(q.migration().context(), &c)).into_iter().collect();
        let done = self.command_with(&dst, m, MigrationCommand::Complete, carried).await;
        let status = done.as_ref().ok().and_then(|r| status_in(r, &q.migration()));
        if status != Some(MigrationStatus::Completed) {
            let why = match &done {
                Ok(r) => param(r, &q.migration().error()).unwrap_or_default(),
                Err(e) => e.clone(),
            };
            if mode == MigrationMode::Live {
                // The domain already left the source; only the destination can run it.
                return Err(format!(
                    "{dst} did not complete the live migration ({why}); the vRGW runs there, retry Complete"
                ));
            }
            self.note("aborting at the source");
            let back = self.command(&src, n, MigrationCommand::Abort).await.map(|r| param(&r, &mp.status()));
            self.undo_target(m).await;
            return Err(match back {
                Ok(Some(st)) if st.parse() == Ok(MigrationStatus::Aborted) => {
                    format!("{dst} could not take over ({why}); the vRGW runs at {src} again")
                }
                Ok(st) => format!("{dst} could not take over ({why}); {src} answered the abort with {st:?}"),
                Err(e) => format!("{dst} could not take over ({why}); the abort at {src} failed too: {e}"),
            });
        }
        if mode != MigrationMode::Live {
            self.record["downtime_ms"] = json!(stopped_at.elapsed().as_millis() as u64);
        }
        if !subscriber.is_empty() {
            // The configuration moved with the vRGW: the web-form profile, if it was applied at
            // the source, is applied at the destination as well.
            let (from, to) = (
                crate::profiles::Location { device: src.clone(), instance: n },
                crate::profiles::Location { device: dst.clone(), instance: m },
            );
            if let Err(e) = crate::profiles::carried_over(self.acs.store.as_ref(), subscriber, &from, &to) {
                tracing::warn!(migration = self.id, "recording the profile at the destination: {e}");
            }
            if let Err(e) = self.acs.store.place(subscriber, &dst, m, crate::endpoint::now()) {
                tracing::error!(migration = self.id, "recording the subscriber at the destination: {e}");
                self.record["warning"] = json!(format!("the subscriber's new place is not recorded: {e}"));
            }
            let sub = vec![string(q.subscriber(), subscriber)];
            if let Err(e) = self.set(&dst, sub).await {
                // The vRGW runs at the destination; only the record of whose it is lags.
                tracing::warn!(migration = self.id, "setting the subscriber at the destination: {e}");
                self.record["warning"] = json!(format!("the destination's Subscriber is not set: {e}"));
            }
        }

        self.note("releasing the source");
        if let Err(e) = self.task(&src, TaskSpec::DeleteObject { object_name: Instance::at(n).into() }).await {
            // The vRGW runs at the destination; the source's leftover row is only bookkeeping.
            tracing::warn!(migration = self.id, "deleting the source's row: {e}");
            self.record["warning"] = json!(format!("the source's row stays: {e}"));
        }
        Ok(())
    }

    /// The source's Start failed or was not answered: where is the vRGW?
    async fn after_source_failure(&mut self, m: u32, e: String) -> String {
        let (src, n) = (self.req.source.clone(), self.req.instance);
        let mp = Migration::at(n);
        let status = self.task(&src, TaskSpec::get(vec![mp.status()])).await.ok().and_then(|r| param(&r, &mp.status()));
        match status.as_deref().map(str::parse::<MigrationStatus>) {
            Some(Ok(MigrationStatus::Stopped)) => {
                if let Err(e) = self.command(&src, n, MigrationCommand::Abort).await {
                    tracing::warn!(migration = self.id, "telling the source to run the vRGW again: {e}");
                }
                self.undo_target(m).await;
                format!("{e}; the source was told to run the vRGW again")
            }
            Some(Ok(MigrationStatus::Migrating | MigrationStatus::Completed)) => {
                format!("{e}; the source reports {status:?}: the target's instance {m} is kept (it may run the vRGW)")
            }
            _ => {
                self.undo_target(m).await;
                format!("{e}; the source did not act on the start")
            }
        }
    }

    /// Removes what the destination made (its row; the agent releases anything behind it, and
    /// refuses while the vRGW runs only there).
    async fn undo_target(&mut self, m: u32) {
        self.note("undoing at the target");
        let dst = self.req.target.clone();
        if let Err(e) = self.command(&dst, m, MigrationCommand::Abort).await {
            tracing::warn!(migration = self.id, "aborting at the target's instance {m}: {e}");
        }
        if let Err(e) = self.task(&dst, TaskSpec::DeleteObject { object_name: Instance::at(m).into() }).await {
            tracing::warn!(migration = self.id, "removing the target's instance {m}: {e}");
        }
    }

    /// Context-based: the source's current configuration (read through its proxy) onto the
    /// destination's pooled vRGW: rows it lacks are added, then every writable value is set.
    async fn copy_configuration(&mut self, m: u32) -> Result<(), String> {
        let (src, dst, n) = (self.req.source.clone(), self.req.target.clone(), self.req.instance);
        let from = String::from(Instance::at(n).device());
        let to = String::from(Instance::at(m).device());
        let r = self.task(&src, TaskSpec::get(vec![from.clone()])).await?;
        let have = self.task(&dst, TaskSpec::get(vec![to.clone()])).await?;
        let schema = datamodel::Schema::vrgw();
        let rel = |p: &str, base: &str| p.strip_prefix(base).map(|r| format!("Device.{r}"));
        let dst_rows: std::collections::BTreeSet<String> =
            params(&have).into_iter().filter_map(|(p, _, _)| rel(&p, &to)).flat_map(|p| row_prefixes(&p)).collect();
        // Only what differs from what the pooled vRGW has (unset values read as "" on both).
        let current: std::collections::HashMap<String, String> =
            params(&have).into_iter().filter_map(|(p, v, _)| Some((rel(&p, &to)?, v))).collect();
        let mut map: std::collections::BTreeMap<String, String> = Default::default();
        let mut values = Vec::new();
        let src_values: Vec<(String, String, String)> =
            params(&r).into_iter().filter_map(|(p, v, t)| Some((rel(&p, &from)?, v, t))).collect();
        let src_rows: std::collections::BTreeSet<String> =
            src_values.iter().flat_map(|(p, _, _)| row_prefixes(p)).collect();
        for row in &src_rows {
            let mapped = remap(row, &map);
            if dst_rows.contains(&mapped) {
                continue;
            }
            let Some((table, _)) = mapped.trim_end_matches('.').rsplit_once('.') else { continue };
            let writable = schema.object(&template_of(&format!("{table}.{{i}}."))).is_some_and(|o| o.writable);
            if !writable {
                continue;
            }
            let obj = format!("{}{table}.", Instance::at(m));
            let added = self.task(&dst, TaskSpec::AddObject { object_name: obj, parameter_values: Vec::new() }).await?;
            let k = added["instance"].as_u64().ok_or_else(|| format!("{dst} did not number the new row of {table}"))?;
            map.insert(row.clone(), format!("{table}.{k}."));
        }
        for (p, v, t) in src_values {
            let Some(def) = schema.param(&template_of(&p)) else { continue };
            // Read-only values are the vRGW's own; an Alias is written once, when the row is made.
            if def.access != datamodel::schema::Access::ReadWrite || (def.hidden && v.is_empty()) {
                continue;
            }
            let at = remap(&p, &map);
            if current.get(&at) == Some(&v) {
                continue;
            }
            values.push(typed(format!("{}{at}", Instance::at(m)), &v, xsd(&t)?)?);
        }
        self.record["copied_parameters"] = json!(values.len());
        if !values.is_empty() {
            self.set(&dst, values).await?;
        }
        Ok(())
    }
}

/// `Device.A.2.B.3.X` → `Device.A.{i}.B.{i}.X`.
fn template_of(path: &str) -> String {
    path.split('.')
        .map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { "{i}" } else { s })
        .collect::<Vec<_>>()
        .join(".")
}

/// The row prefixes of a path: `Device.A.2.B.3.X` → `Device.A.2.`, `Device.A.2.B.3.`.
fn row_prefixes(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut out = Vec::new();
    for i in 0..parts.len() {
        if !parts[i].is_empty() && parts[i].bytes().all(|b| b.is_ascii_digit()) && i + 1 < parts.len() {
            out.push(format!("{}.", parts[..=i].join(".")));
        }
    }
    out
}

/// `path` with the longest mapped row prefix replaced.
fn remap(path: &str, map: &std::collections::BTreeMap<String, String>) -> String {
    let best = map.iter().filter(|(k, _)| path.starts_with(k.as_str())).max_by_key(|(k, _)| k.len());
    match best {
        Some((k, v)) => format!("{v}{}", &path[k.len()..]),
        None => path.to_string(),
    }
}

/// The NBI's JSON of a migration.
pub fn to_json(id: i64, record: &Json) -> Json {
    let mut r = record.clone();
    r["_id"] = json!(id.to_string());
    r
}

/// Used by the NBI: the migration with this id.
pub fn find(store: &dyn Store, id: i64) -> Result<Option<Json>, StoreError> {
    Ok(store.migrations()?.into_iter().find(|(i, _)| *i == id).map(|(i, r)| to_json(i, &r)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_found_and_renumbered() {
        assert_eq!(
            template_of("Device.DHCPv4.Server.Pool.1.StaticAddress.3.Chaddr"),
            "Device.DHCPv4.Server.Pool.{i}.StaticAddress.{i}.Chaddr"
        );
        assert_eq!(
            row_prefixes("Device.DHCPv4.Server.Pool.1.StaticAddress.3.Chaddr"),
            vec!["Device.DHCPv4.Server.Pool.1.", "Device.DHCPv4.Server.Pool.1.StaticAddress.3."]
        );
        let map = [(
            "Device.DHCPv4.Server.Pool.1.StaticAddress.3.".to_string(),
            "Device.DHCPv4.Server.Pool.1.StaticAddress.1.".to_string(),
        )]
        .into_iter()
        .collect();
        assert_eq!(
            remap("Device.DHCPv4.Server.Pool.1.StaticAddress.3.Yiaddr", &map),
            "Device.DHCPv4.Server.Pool.1.StaticAddress.1.Yiaddr"
        );
        assert_eq!(remap("Device.WiFi.SSID.1.SSID", &map), "Device.WiFi.SSID.1.SSID");
        let r = json!({"parameters": [["Device.X_VRGW-ORG_Virtualization.Template.2.Name", "base", "xsd:string"]]});
        assert_eq!(template_named(&r, "base").as_deref(), Some("Device.X_VRGW-ORG_Virtualization.Template.2"));
        assert_eq!(template_named(&r, ""), None);
        assert_eq!(mode_from_nbi("live"), Some(MigrationMode::Live));
        assert_eq!(mode_from_nbi("warm"), None);
        assert_eq!(mode_from_nbi("none"), None);
        assert_eq!(mode_from_nbi("Live"), None);
        for m in [MigrationMode::Live, MigrationMode::ColdImage, MigrationMode::ColdContext] {
            assert_eq!(mode_from_nbi(nbi_mode(m)), Some(m));
        }
    }
}
