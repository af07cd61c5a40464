//! Subscribers' profiles: the settings a subscriber made on the customer web form, applied to
//! their vRGW wherever it runs.
//!
//! A subscriber's vRGW is a host agent's `Device.X_VRGW-ORG_Virtualization.Instance.{n}`; which
//! one is the ACS's own record ([`crate::store::PlacementStore`]), written when a task the ACS
//! sent is done: an `addObject` of an instance with a `Subscriber`, a `setParameterValues` of an
//! instance's `Subscriber`, a `deleteObject` of an instance (see [`record`]); the migration
//! orchestration moves it. What a host reports as an instance's `Subscriber` is never believed:
//! a host that reports a subscriber the record does not place there gets nothing of theirs (and
//! the ACS logs it). A profile is applied as ordinary tasks on that host (so the NBI shows them,
//! with their faults): when the subscriber saves a form, and again whenever the vRGW the record
//! names has not had the current profile yet (a new placement, a replaced or migrated instance),
//! which the ACS checks after every Inform of a host and after every task done on it.
//!
//! A subscriber whose gateway is a device of its own rather than a vRGW under its host (a
//! physical TR-181 gateway the OSS names with `PUT /subscribers/{id}` `{"gateway": DeviceId}`,
//! or their vRGW managed as a virtual device, named when it first informs through the host the
//! ACS placed them on) has the profile applied to that device's own `Device.` the same way
//! ([`Location::instance`] 0), after every Inform of it and every task done on it.
//!
//! The profile is a JSON object:
//! `{"values": {"DHCPv4.Server.Pool.1.MinAddress": ["192.168.1.50", "xsd:string"], ...},
//!   "static_leases": [["02:00:00:00:00:01", "192.168.1.20"], ...]}`; paths are relative to the
//! vRGW's `Device.`; `static_leases` absent means "not managed".

pub mod tr098;

use serde_json::{json, Value as Json};

use std::collections::BTreeMap;

use cwmp::{ParameterValue, Value, XsdType};
use datamodel::virtualization::Instance;

use crate::store::{Store, StoreError, Task};
use crate::tasks::{Order, TaskSpec};
use serde_json::Value as TaskResult;

/// The DHCP pool the web form edits, relative to the vRGW's `Device.`.
pub const POOL: &str = "DHCPv4.Server.Pool.1.";

/// A subscriber's settings, typed from the JSON the store keeps (see the module's doc); the
/// JSON form is the same.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Profile {
    /// Values by path relative to the vRGW's `Device.`, each `[lexical, "xsd:type"]`.
    #[serde(serialize_with = "pairs", skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, Value>,
    /// The static DHCP leases (MAC, IP); `None`: not managed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_leases: Option<Vec<(String, String)>>,
}

fn pairs<S: serde::Serializer>(values: &BTreeMap<String, Value>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(values.len()))?;
    for (rel, v) in values {
        m.serialize_entry(rel, &(v.to_lexical(), v.xsd_type().qname()))?;
    }
    m.end()
}

impl Profile {
    /// From the stored JSON. Entries that are not `[value, type?]` with a value of that type (none
    /// the web form writes) are left out, with a warning.
    pub fn from_json(j: &Json) -> Profile {
        let mut p = Profile::default();
        if let Some(values) = j.get("values").and_then(Json::as_object) {
            for (rel, v) in values {
                let value = v.get(0).and_then(Json::as_str);
                let ty = v.get(1).and_then(Json::as_str).unwrap_or("xsd:string");
                let typed = value.and_then(|value| {
                    let ty = XsdType::from_local(ty.trim_start_matches("xsd:"))?;
                    Value::parse(ty, value).ok()
                });
                match typed {
                    Some(t) => drop(p.values.insert(rel.clone(), t)),
                    None => tracing::warn!(parameter = %rel, "a profile value left out: {v}"),
                }
            }
        }
        if let Some(list) = j.get("static_leases").and_then(Json::as_array) {
            p.static_leases = Some(
                list.iter()
                    .filter_map(|l| Some((l.get(0)?.as_str()?.to_string(), l.get(1)?.as_str()?.to_string())))
                    .collect(),
            );
        }
        p
    }

    /// The JSON form (as stored and as the NBI shows it).
    pub fn to_json(&self) -> Json {
        // Strings and pairs of strings cannot fail to serialize.
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

impl<'de> serde::Deserialize<'de> for Profile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Profile, D::Error> {
        Ok(Profile::from_json(&Json::deserialize(d)?))
    }
}

/// Where a subscriber's gateway is: a host device and the instance number of their vRGW on it,
/// or a device of its own (instance 0: a physical gateway, a vRGW managed as a virtual device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The host agent's device id, or the gateway's own.
    pub device: String,
    /// The instance number on that host; 0 for a gateway of its own.
    pub instance: u32,
}

impl Location {
    /// The gateway that is a device of its own (`device`'s `Device.`).
    pub fn gateway(device: &str) -> Location {
        Location { device: device.to_string(), instance: 0 }
    }

    /// Whether it is a device of its own rather than an instance of a host.
    pub fn is_device(&self) -> bool {
        self.instance == 0
    }

    /// The instance's row (`...Instance.N.`).
    pub fn row(&self) -> Instance {
        Instance::at(self.instance)
    }

    /// Where its parameters are: the instance's path (`...Instance.N.`), or `Device.`.
    pub fn instance_path(&self) -> String {
        if self.is_device() {
            return DEVICE.into();
        }
        self.row().into()
    }

    /// The gateway's own data model (`...Instance.N.Device.`, or `Device.`).
    pub fn device_path(&self) -> String {
        if self.is_device() {
            return DEVICE.into();
        }
        self.row().device().into()
    }

    /// The parameter telling whether the vRGW runs (its instance's `Status`); none for a
    /// gateway of its own.
    pub fn status_param(&self) -> Option<String> {
        (!self.is_device()).then(|| self.row().status())
    }

    fn applied_mark(&self, version: i64) -> String {
        format!("{}|{}|{version}", self.device, self.instance)
    }
}

/// A gateway's own data model.
const DEVICE: &str = "Device.";

/// The data model a subscriber's gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// TR-181 (`Device.`): every vRGW, and TR-181 gateways.
    Tr181,
    /// TR-098 (`InternetGatewayDevice.`): a gateway of its own whose Inform said so.
    Tr098,
}

/// The data model of the gateway at `at`, as the ACS's cache of the device shows it (a vRGW
/// under its host is TR-181).
pub fn model_of(store: &dyn Store, at: &Location) -> Result<Model, StoreError> {
    if !at.is_device() {
        return Ok(Model::Tr181);
    }
    Ok(model_in(at, &store.params(&at.device)?))
}

/// The same, from the device's cached values already read.
pub fn model_in(at: &Location, params: &[crate::store::CachedParam]) -> Model {
    if at.is_device() && params.iter().any(|p| p.name.starts_with(tr098::ROOT)) {
        Model::Tr098
    } else {
        Model::Tr181
    }
}

/// What task specs that touch the gateway at `at` name: its instance (or `Device.`, or
/// `InternetGatewayDevice.` for a TR-098 gateway).
pub fn base_of(at: &Location, model: Model) -> String {
    match model {
        Model::Tr098 => tr098::ROOT.into(),
        Model::Tr181 => at.device_path(),
    }
}

/// The instance whose `Subscriber` `name` is.
fn instance_of(name: &str) -> Option<u32> {
    let (n, rest) = Instance::split(name)?;
    (rest == Instance::relative().subscriber()).then_some(n)
}

/// The subscriber's gateway: the device the OSS or their virtual device named, else their vRGW
/// as the ACS placed it.
pub fn locate(store: &dyn Store, subscriber: &str) -> Result<Option<Location>, StoreError> {
    if let Some(g) = store.subscriber(subscriber)?.and_then(|s| s.gateway) {
        return Ok(Some(Location::gateway(&g)));
    }
    Ok(store.placement(subscriber)?.map(|p| Location { device: p.device, instance: p.instance }))
}

/// Records what a task the ACS sent to `device`, now done with `result`, placed: an instance's
/// `Subscriber` given by an `addObject` (its number from the result) or a `setParameterValues`
/// (an empty one frees the instance), an instance removed by a `deleteObject`.
pub fn record(
    store: &dyn Store,
    device: &str,
    spec: &TaskSpec,
    result: &TaskResult,
    now: i64,
) -> Result<(), StoreError> {
    let placed = |instance: u32, subscriber: &str| -> Result<(), StoreError> {
        if subscriber.is_empty() {
            if let Some(was) = store.unplace(device, instance)? {
                tracing::info!(subscriber = %was, device, instance, "subscriber no longer placed (Subscriber cleared)");
            }
            return Ok(());
        }
        store.place(subscriber, device, instance, now)?;
        tracing::info!(subscriber, device, instance, "subscriber placed");
        Ok(())
    };
    match spec {
        TaskSpec::AddObject { object_name, parameter_values }
            if object_name.trim_end_matches('.') == Instance::TABLE.trim_end_matches('.') =>
        {
            let Some(n) = result.get("instance").and_then(TaskResult::as_u64).and_then(|n| u32::try_from(n).ok())
            else {
                return Ok(());
            };
            let sub = Instance::relative().subscriber();
            if let Some(p) = parameter_values.iter().find(|p| p.name.trim_start_matches('.') == sub) {
                placed(n, &p.value.to_lexical())?;
            }
        }
        TaskSpec::SetParameterValues { parameter_values } => {
            for p in parameter_values {
                if let Some(n) = instance_of(&p.name) {
                    placed(n, &p.value.to_lexical())?;
                }
            }
        }
        TaskSpec::DeleteObject { object_name } => {
            if let Some((n, "")) = Instance::split(object_name) {
                if let Some(was) = store.unplace(device, n)? {
                    tracing::info!(subscriber = %was, device, instance = n, "subscriber no longer placed (instance deleted)");
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The tasks that bring the vRGW at `at` to `profile`: one setParameterValues with every value,
/// then deleteObject/addObject for static leases that differ from what the cache shows.
pub fn tasks_for(store: &dyn Store, at: &Location, profile: &Profile) -> Result<Vec<TaskSpec>, StoreError> {
    // The device's cached values, read once: what tells a TR-098 gateway, and the static
    // leases it has.
    let cached = if at.is_device() || profile.static_leases.is_some() { store.params(&at.device)? } else { Vec::new() };
    if model_in(at, &cached) == Model::Tr098 {
        return Ok(tr098_tasks(at, profile));
    }
    let base = at.device_path();
    let mut out = Vec::new();
    if !profile.values.is_empty() {
        let list =
            profile.values.iter().map(|(rel, v)| ParameterValue::new(format!("{base}{rel}"), v.clone())).collect();
        out.push(TaskSpec::set(list));
    }
    if let Some(wanted) = &profile.static_leases {
        let wanted: Vec<(String, String)> =
            wanted.iter().map(|(mac, ip)| (mac.to_ascii_lowercase(), ip.clone())).collect();
        let table = format!("{base}{POOL}StaticAddress.");
        let mut rows: std::collections::BTreeMap<u32, (String, String)> = Default::default();
        for p in &cached {
            let Some(rest) = p.name.strip_prefix(&table) else { continue };
            let Some((n, field)) = rest.split_once('.') else { continue };
            let Ok(n) = n.parse::<u32>() else { continue };
            let row = rows.entry(n).or_default();
            match field {
                "Chaddr" => row.0 = p.value.to_ascii_lowercase(),
                "Yiaddr" => row.1 = p.value.clone(),
                _ => {}
            }
        }
        for (n, row) in &rows {
            if !wanted.contains(row) {
                out.push(TaskSpec::DeleteObject { object_name: format!("{table}{n}.") });
            }
        }
        for (mac, ip) in &wanted {
            if !rows.values().any(|r| r.0 == *mac && r.1 == *ip) {
                out.push(TaskSpec::AddObject {
                    object_name: table.clone(),
                    parameter_values: vec![
                        ParameterValue::new("Chaddr", Value::String(mac.clone())),
                        ParameterValue::new("Yiaddr", Value::String(ip.clone())),
                        ParameterValue::new("Enable", Value::Boolean(true)),
                    ],
                });
            }
        }
    }
    Ok(out)
}

/// The same for a TR-098 gateway: one setParameterValues under its TR-098 names. What TR-098
/// has no name for (WPA3, fixed addresses, the firewall level) is left out and logged; the web
/// form refuses it for such a gateway before it is saved.
fn tr098_tasks(at: &Location, profile: &Profile) -> Vec<TaskSpec> {
    let mut list = Vec::new();
    for (rel, v) in &profile.values {
        match tr098::to_tr098(rel, v) {
            Some(pairs) => {
                list.extend(pairs.into_iter().map(|(name, v)| ParameterValue::new(format!("{}{name}", tr098::ROOT), v)))
            }
            None => tracing::warn!(device = %at.device, setting = %rel, "not applied: {}",
                tr098::unsupported(rel, v).unwrap_or_default()),
        }
    }
    if profile.static_leases.as_ref().is_some_and(|l| !l.is_empty()) {
        tracing::warn!(device = %at.device, "fixed addresses not applied: a TR-098 gateway has no setting for them here");
    }
    if list.is_empty() {
        Vec::new()
    } else {
        vec![TaskSpec::set(list)]
    }
}

/// Queues the profile of `subscriber` for their vRGW at `at` and records it as applied there;
/// returns the queued tasks (the last one tells when all are done).
pub fn queue(store: &dyn Store, subscriber: &str, at: &Location, now: i64) -> Result<Vec<Task>, StoreError> {
    let Some(sub) = store.subscriber(subscriber)? else { return Ok(Vec::new()) };
    let mut queued = Vec::new();
    for spec in tasks_for(store, at, &sub.profile)? {
        queued.push(store.enqueue(&at.device, &Order { spec, profile: true, migration: None }, now)?);
    }
    store.set_applied(subscriber, &at.applied_mark(sub.profile_version))?;
    if !queued.is_empty() {
        tracing::info!(subscriber, device = %at.device, instance = at.instance, version = sub.profile_version,
            tasks = queued.len(), "profile queued");
    }
    Ok(queued)
}

/// Whether a migration of the subscriber's vRGW is running.
fn migrating(store: &dyn Store, subscriber: &str) -> Result<bool, StoreError> {
    Ok(store.migrations()?.iter().any(|(_, r)| r["status"] == "running" && r["subscriber"] == subscriber))
}

/// A migration moved the subscriber's vRGW from `from` to `to` with its configuration: when the
/// current profile was applied at `from`, it counts as applied at `to` too (applying it again
/// would overwrite what the operator set since with the profile's older values).
pub fn carried_over(store: &dyn Store, subscriber: &str, from: &Location, to: &Location) -> Result<bool, StoreError> {
    let Some(sub) = store.subscriber(subscriber)? else { return Ok(false) };
    if sub.profile_version == 0 || sub.applied != from.applied_mark(sub.profile_version) {
        return Ok(false);
    }
    store.set_applied(subscriber, &to.applied_mark(sub.profile_version))?;
    Ok(true)
}

/// `device` bootstrapped (new, or factory-reset): whatever was applied to it is gone, so the
/// subscribers whose gateway it is get their settings again (at the [`catch_up`] that follows).
pub fn bootstrapped(store: &dyn Store, device: &str) -> Result<(), StoreError> {
    for id in store.gateway_of(device)? {
        if store
            .subscriber(&id)?
            .is_some_and(|s| s.applied == Location::gateway(device).applied_mark(s.profile_version))
        {
            tracing::info!(subscriber = %id, device, "the gateway bootstrapped: the subscriber's settings go again");
            store.set_applied(&id, "")?;
        }
    }
    Ok(())
}

/// After an Inform of `device`, or a task that may have placed a subscriber's vRGW there:
/// queues the profiles of subscribers whose vRGW is on `device` and has not had their current
/// profile yet. Returns how many subscribers got tasks.
pub fn catch_up(store: &dyn Store, device: &str, now: i64) -> Result<usize, StoreError> {
    // Runs after every Inform and task: without any saved profile there is nothing to look up,
    // and looking would flush the deferred cache writes (the group commit) for nothing.
    if !store.has_profiles()? {
        return Ok(0);
    }
    // What the host says of its instances' subscribers is only compared with the record.
    let placed = store.placements_on(device)?;
    for (name, subscriber) in store.subscriber_rows(device)? {
        let Some(instance) = instance_of(&name) else { continue };
        if !subscriber.is_empty()
            && !placed.iter().any(|p| p.instance == instance && p.subscriber == subscriber)
            && !migrating(store, &subscriber)?
        {
            let record = store.placement(&subscriber)?;
            tracing::warn!(device, instance, reported = %subscriber,
                placed_at = %record.map_or("nowhere".to_string(), |p| format!("{} instance {}", p.device, p.instance)),
                "a host reports a subscriber the ACS did not place there: nothing of theirs is sent to it");
        }
    }
    let mut n = 0;
    for p in placed {
        let Some(sub) = store.subscriber(&p.subscriber)? else { continue };
        if sub.profile_version == 0 || sub.gateway.is_some() {
            // Nothing saved, or it goes to their gateway of its own (below, at its Informs).
            continue;
        }
        let at = Location { device: device.to_string(), instance: p.instance };
        if sub.applied == at.applied_mark(sub.profile_version) {
            continue;
        }
        if migrating(store, &p.subscriber)? {
            // The orchestration decides where the profile stands when it ends (crate::migration).
            continue;
        }
        tracing::info!(subscriber = %p.subscriber, device, instance = p.instance, "vRGW without the subscriber's current profile");
        queue(store, &p.subscriber, &at, now)?;
        n += 1;
    }
    // Subscribers whose gateway is this device itself.
    for id in store.gateway_of(device)? {
        let Some(sub) = store.subscriber(&id)? else { continue };
        let at = Location::gateway(device);
        if sub.profile_version == 0 || sub.applied == at.applied_mark(sub.profile_version) {
            continue;
        }
        tracing::info!(subscriber = %id, device, "gateway without the subscriber's current profile");
        queue(store, &id, &at, now)?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_keep_their_json() {
        let stored = json!({"values": {"DHCPv4.Server.Pool.1.MinAddress": ["192.168.1.50", "xsd:string"],
            "DHCPv4.Server.Pool.1.LeaseTime": ["3600", "xsd:int"], "WiFi.SSID.1.Enable": ["true", "xsd:boolean"]},
            "static_leases": [["02:00:00:00:00:01", "192.168.1.20"]]});
        let p = Profile::from_json(&stored);
        assert_eq!(p.values["DHCPv4.Server.Pool.1.LeaseTime"], Value::Int(3600));
        assert_eq!(p.to_json(), stored);
        assert_eq!(Profile::from_json(&json!({})).to_json(), json!({}));
        let bad = Profile::from_json(&json!({"values": {"A": ["x", "xsd:int"], "B": ["y"]}}));
        assert_eq!(bad.to_json(), json!({"values": {"B": ["y", "xsd:string"]}}), "what cannot be typed is left out");
    }

    #[test]
    fn only_instance_subscribers_count() {
        assert_eq!(instance_of("Device.X_VRGW-ORG_Virtualization.Instance.12.Subscriber"), Some(12));
        assert_eq!(instance_of("Device.X_VRGW-ORG_Virtualization.Instance.12.Device.X.Subscriber"), None);
        assert_eq!(instance_of("Device.Other.1.Subscriber"), None);
    }
}
