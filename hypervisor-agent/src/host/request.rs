//! Request handling: the ACS's requests on the host data model (get, set, add, delete and
//! attributes), the validation of a SetParameterValues, and the value changes an Inform reports.

use cwmp::{Body, SetParameterValuesResponse, Value};
use datamodel::SetPlan;

use datamodel::virtualization::{Flavor, Instance, Pool, Template, Virtualization};

use super::{instance_row, row, Host, HostError, Result};
use crate::proxy::ProxyMount;

/// The most parameters one answer may carry: an ACS's default (`cwmp::MAX_ITEMS`); smaller in
/// the tests, so that a few vRGWs exceed it.
#[cfg(not(test))]
const ANSWER_MAX_ITEMS: usize = cwmp::MAX_ITEMS;
#[cfg(test)]
const ANSWER_MAX_ITEMS: usize = 500;

impl Host {
    /// Reads the parameters under notification; changed ones wait for the next Inform. When one
    /// has active notification, "4 VALUE CHANGE" is queued (durably) and true returned.
    pub fn collect_changes(&mut self) -> bool {
        let c = self.model.poll_value_changes();
        let mut changes = self.shared.changes();
        for p in c.changed {
            changes.insert(p.name.clone(), p);
        }
        drop(changes);
        if c.active {
            if let Err(e) = self.state.push_event(cwmp::event::VALUE_CHANGE, "") {
                tracing::error!("queueing 4 VALUE CHANGE: {e}");
            }
        }
        c.active
    }

    /// Reads ahead, many at once, what a GetParameterValues of `names` will ask the mounted
    /// vRGWs' proxies (`proxy::read_all`); the mounts read.
    /// Refused at once (9004) when the mounts' profiles alone hold more parameters than one
    /// message may carry: the answer would be refused after every proxy was read (21 s for 500
    /// vRGWs here; at a thousand, longer than the ACS waits for an answer).
    fn read_mounts_ahead(&self, names: &[String]) -> std::result::Result<Vec<ProxyMount>, cwmp::Fault> {
        let mut reads = Vec::new();
        for (n, m) in &self.mounts {
            let prefix = Instance::at(*n).device().path().to_string();
            for name in names {
                let path = if prefix.starts_with(name.as_str()) {
                    // A path above the mount: its whole data model.
                    "Device.".to_string()
                } else if let Some(rest) = name.strip_prefix(prefix.as_str()) {
                    format!("Device.{rest}")
                } else {
                    continue;
                };
                reads.push((m.clone(), path));
            }
        }
        let whole: usize = reads.iter().filter(|(_, p)| p == "Device.").map(|(m, _)| m.profile_len()).sum();
        if whole > ANSWER_MAX_ITEMS {
            return Err(cwmp::Fault::with_string(
                cwmp::FaultCode::ResourcesExceeded,
                format!(
                    "the answer would hold more than {whole} parameters (the vRGWs' data models), more than the {} \
                     one message may carry; ask for fewer parameters at a time (a narrower path)",
                    ANSWER_MAX_ITEMS
                ),
            ));
        }
        let mounts: Vec<ProxyMount> = reads.iter().map(|(m, _)| m.clone()).collect();
        crate::proxy::read_all(&self.rt, reads);
        Ok(mounts)
    }

    /// The changed parameters to report in the next Inform.
    pub fn pending_changes(&self) -> Vec<cwmp::ParameterValue> {
        self.shared.pending_changes()
    }

    /// Forgets reported changes (the ACS accepted the Inform that carried them).
    pub fn changes_reported(&mut self, names: &[String]) {
        self.shared.changes_reported(names)
    }

    /// Serves one ACS request on the host data model, with the side effects described in the
    /// module documentation.
    /// A failure is answered with its fault ([`HostError::fault`]).
    pub fn handle(&mut self, req: &Body) -> Body {
        let plan = match self.admit(req) {
            Ok(plan) => plan,
            Err(e) => {
                let fault = e.fault();
                tracing::warn!(fault = fault.code.code(), "request refused: {e}");
                return Body::Fault(fault);
            }
        };
        let mut read_ahead = Vec::new();
        if let Body::GetParameterValues(r) = req {
            read_ahead = match self.read_mounts_ahead(&r.parameter_names) {
                Ok(mounts) => mounts,
                Err(fault) => {
                    tracing::warn!(fault = fault.code.code(), "request refused: {}", fault.string);
                    return Body::Fault(fault);
                }
            };
            self.refresh_named(&r.parameter_names);
        }
        let resp = match plan {
            Some(plan) => self.apply_set(plan),
            None => datamodel::rpc::serve(&mut self.model, req),
        };
        crate::proxy::forget_reads(&read_ahead);
        // Mounts follow the instance rows.
        match (req, &resp) {
            (Body::AddObject(r), Body::AddObjectResponse(a)) if r.object_name == Instance::TABLE => {
                let m = ProxyMount::new(self.rt.clone(), &a.instance_number.to_string())
                    .with_deadlines(self.cfg.proxy_deadlines);
                self.model.mount(Instance::at(a.instance_number).device().path(), Box::new(m.clone()));
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
                return Body::Fault(e.fault());
            }
            // Only the instances this request named (or all, for a change elsewhere in the
            // virtualization tree, such as a template or a pool).
            let touched: Option<Vec<u32>> = match req {
                Body::SetParameterValues(r) => {
                    let ns: Vec<Option<u32>> = r.parameter_list.iter().map(|p| row(Instance::split, &p.name)).collect();
                    ns.iter().all(Option::is_some).then(|| ns.into_iter().flatten().collect())
                }
                Body::AddObject(r) if r.object_name == Instance::TABLE => match &resp {
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
                        Instance::split(&p.name)
                            .filter(|(_, rest)| *rest == Instance::relative().migration().command())
                            .map(|(n, _)| n)
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
                // Its failure is the migration's Status and Error, not the set's: the set was valid.
                let _ = self.migration_command(n);
            }
        }
        resp
    }

    /// What comes before the data model serves a request: a SetParameterValues is validated
    /// into its plan; an instance row is deleted only when no live migration moves it, and
    /// after its domain and VLANs were released.
    fn admit(&mut self, req: &Body) -> Result<Option<SetPlan>> {
        match req {
            Body::SetParameterValues(r) => {
                if r.parameter_list.iter().any(|p| changes_domains(&p.name)) {
                    self.needs_libvirt("applying the values")?;
                }
                self.plan_set(&r.parameter_list, &r.parameter_key).map(Some)
            }
            Body::DeleteObject(r) => {
                if let Some(n) = instance_row(&r.object_name) {
                    self.needs_libvirt("deleting the instance")?;
                    if self.live.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&n) {
                        return Err(HostError::Refused(
                            "the instance is being migrated live; delete it once the migration ended".into(),
                        ));
                    }
                    if let Err(e) = self.release_instance(n) {
                        tracing::error!(instance = n, "deleting: {e}");
                        return Err(e);
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Validates a SetParameterValues once: what the tree cannot check (references to templates
    /// that exist, no change of template under a provisioned instance; every refused parameter
    /// is reported, 9007), then the data model's plan.
    fn plan_set(&self, values: &[cwmp::ParameterValue], parameter_key: &str) -> Result<SetPlan> {
        let mut faults = Vec::new();
        let refuse = |faults: &mut Vec<HostError>, name: &str, why: String| {
            faults.push(HostError::InvalidValue { name: name.to_string(), reason: why })
        };
        let templates = self.model.root().instances(Template::TABLE);
        for pv in values {
            let is_peer =
                Instance::split(&pv.name).is_some_and(|(_, rest)| rest == Instance::relative().migration().peer());
            if let (true, Value::String(peer)) = (is_peer, &pv.value) {
                if let Err(e) = self.peer_allowed(&pv.name, peer) {
                    faults.push(e);
                }
                continue;
            }
            if let Some((t, rest)) = Template::split(&pv.name) {
                if rest == Template::relative().flavor() {
                    if let Some(why) = self.flavor_refused(t, &pv.value)? {
                        refuse(&mut faults, &pv.name, why);
                    }
                }
                continue;
            }
            let instance_template =
                Instance::split(&pv.name).filter(|(_, rest)| *rest == Instance::relative().template()).map(|(n, _)| n);
            let is_instance_template = instance_template.is_some();
            let is_pool_template = Pool::split(&pv.name).is_some_and(|(_, rest)| rest == Pool::relative().template());
            if !(is_instance_template || is_pool_template) {
                continue;
            }
            let Value::String(target) = &pv.value else { continue };
            if !target.is_empty() {
                match row(Template::split, target) {
                    Some(t) if templates.contains(&t) => {}
                    _ => refuse(&mut faults, &pv.name, format!("{target:?} is not a Template of this host")),
                }
            }
            if let Some(n) = instance_template {
                let bound = self.state.slot_of(n)?.is_some();
                if bound && row(Template::split, target) != self.wanted(n).template {
                    refuse(&mut faults, &pv.name, "the template of a provisioned instance cannot change".into());
                }
            }
        }
        if faults.is_empty() {
            // Types, ranges, enumerations and unique VLAN pairs, across every row at once.
            return self.model.plan_set(values, parameter_key).map_err(HostError::DataModel);
        }
        Err(HostError::InvalidArguments { total: values.len(), refused: faults })
    }

    /// Why template `t` cannot take this `Flavor`, if it cannot: containers on a host with no
    /// LXC connection, or another flavor under domains already made from it.
    fn flavor_refused(&self, t: u32, value: &Value) -> Result<Option<String>> {
        let Value::String(v) = value else { return Ok(None) };
        let Ok(flavor) = v.parse::<Flavor>() else { return Ok(None) }; // the model's own 9007
        if flavor == Flavor::Container && self.cfg.container_type.is_none() {
            return Ok(Some(Self::NO_CONTAINERS.into()));
        }
        let same = self.is_container(t) == (flavor == Flavor::Container);
        if !same && self.state.slots()?.iter().any(|s| s.template == t) {
            return Ok(Some(
                "the flavor of a template cannot change while vRGWs made from it exist (instances or pool members)"
                    .into(),
            ));
        }
        Ok(None)
    }

    /// Applies a validated SetParameterValues: the instances' parts through their vRGWs, all at
    /// once ([`crate::proxy::apply_all`]), then the host's own values.
    fn apply_set(&mut self, plan: SetPlan) -> Body {
        let (mounts, rt) = (&self.mounts, &self.rt);
        let mount_at = |prefix: &str| row(Instance::split, prefix).and_then(|n| mounts.get(&n).cloned());
        match self.model.apply_set_with(plan, |plan| crate::proxy::apply_all(rt, plan, mount_at)) {
            Ok(status) => Body::SetParameterValuesResponse(SetParameterValuesResponse { status }),
            Err(f) => Body::Fault(f),
        }
    }
}

/// Whether setting `name` may change domains (templates, pools, instances, migrations: the
/// vendor extension, but for a vRGW's own data model, which its proxy serves).
fn changes_domains(name: &str) -> bool {
    name.starts_with(Virtualization::OBJECT)
        && !Instance::split(name).is_some_and(|(_, rest)| rest.starts_with(Instance::relative().device().path()))
}
