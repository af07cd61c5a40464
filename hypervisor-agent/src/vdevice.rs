//! Virtual CWMP devices (TR-069 Annex J.2): a vRGW managed as a device of its own rather than
//! (or besides) as a subtree of its host (Annex J.3).
//!
//! A virtual device's data model is its vRGW's own `Device.` tree as the vRGW's proxy serves it
//! (the same [`Handler`] the host mounts under `Instance.{i}.Device.`), with two parts of its
//! own on top:
//! - `Device.ManagementServer.`: the virtual device's ParameterKey, periodic-inform settings and
//!   connection-request credentials, held by the agent (a tree of the host's schema of which only
//!   this object is served), not by the vRGW;
//! - its identity in `Device.DeviceInfo.`: ManufacturerOUI, ProductClass and SerialNumber are
//!   the virtual device's DeviceId, and `ProxierInfo` names the host that proxies it.
//!
//! [`VirtualDevice::serve`] answers the ACS's data-model requests over those parts; the session
//! that carries them and the events that open it are the agent's.

use cwmp::{
    AddObjectResponse, Body, DeleteObjectResponse, DeviceId, Fault, FaultCode, GetParameterAttributesResponse,
    GetParameterNamesResponse, GetParameterValuesResponse, GetRPCMethodsResponse, Notification, ParameterAttribute,
    ParameterFault, ParameterInfo, ParameterValue, SetParameterAttributesResponse, SetParameterValuesResponse, Value,
};
use datamodel::{Handler, Schema, Tree};

const MS: &str = "Device.ManagementServer.";
const INFO: &str = "Device.DeviceInfo.";
const PROXIER: &str = "Device.DeviceInfo.ProxierInfo.";
/// How a host proxies its virtual devices, as `ProxierInfo.ProxyProtocol` names it (a vendor
/// value: TR-181's list names only home-network protocols).
pub const PROXY_PROTOCOL: &str = "X_VRGW-ORG_XML-RPC";

/// The methods of [`datamodel::rpc::METHODS`] a virtual device does not answer yet (it keeps
/// no transfer queue: one Download at a time, refused with 9004 while one is under way).
const NOT_YET: &[&str] = &["GetQueuedTransfers", "GetAllQueuedTransfers", "CancelTransfer", "GetOptions"];

/// One virtual device: its identity, its host's, and what it holds of its own.
#[derive(Clone)]
pub struct VirtualDevice {
    /// Its DeviceId: the host's OUI, the template's ProductClass, the subscriber as serial.
    pub id: DeviceId,
    /// The host that proxies it (`ProxierInfo`).
    pub host: DeviceId,
    /// `Device.ManagementServer.` (the rest of this host-schema tree is never served).
    own: Tree,
    /// Notification attributes set by the ACS, by parameter.
    attributes: std::collections::BTreeMap<String, Notification>,
    /// The value last reported (or first seen) of each parameter with notification on.
    reported: std::collections::BTreeMap<String, Value>,
    /// Values changed since, not yet delivered in an Inform (TR-069 3.2.1: each changed
    /// parameter once, with its latest value).
    changed: std::collections::BTreeMap<String, ParameterValue>,
}

impl std::fmt::Debug for VirtualDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualDevice").field("id", &self.id).finish()
    }
}

/// Settings a new virtual device starts with.
#[derive(Debug, Clone)]
pub struct Start {
    /// `ManagementServer.URL`: the ACS.
    pub acs_url: String,
    /// `ManagementServer.ConnectionRequestURL`: its path on the agent's listener.
    pub connection_request_url: String,
    /// Its own connection-request credentials (until the ACS sets others).
    pub cr_username: String,
    /// See `cr_username`.
    pub cr_password: String,
    /// PeriodicInformInterval, seconds.
    pub periodic_inform_interval: u32,
}

impl VirtualDevice {
    /// A virtual device as it starts for the first time.
    pub fn new(id: DeviceId, host: DeviceId, start: &Start) -> VirtualDevice {
        let mut own = Tree::new(Schema::host());
        let values = [
            ("URL", Value::String(start.acs_url.clone())),
            ("ConnectionRequestURL", Value::String(start.connection_request_url.clone())),
            ("ConnectionRequestUsername", Value::String(start.cr_username.clone())),
            ("ConnectionRequestPassword", Value::String(start.cr_password.clone())),
            ("PeriodicInformEnable", Value::Boolean(true)),
            ("PeriodicInformInterval", Value::UnsignedInt(start.periodic_inform_interval.max(1))),
        ];
        for (name, v) in values {
            if let Err(f) = own.set_internal(&format!("{MS}{name}"), v) {
                tracing::error!(parameter = name, "a virtual device's management server: {}", f.string);
            }
        }
        VirtualDevice {
            id,
            host,
            own,
            attributes: Default::default(),
            reported: Default::default(),
            changed: Default::default(),
        }
    }

    /// What it holds of its own, to be kept across restarts.
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "own": self.own.snapshot(),
            "attributes": self.attributes.iter().map(|(k, n)| (k.clone(), n.code())).collect::<Vec<_>>(),
        })
    }

    /// A virtual device as [`VirtualDevice::snapshot`] kept it.
    pub fn restore(id: DeviceId, host: DeviceId, snap: serde_json::Value) -> Result<VirtualDevice, String> {
        let own = serde_json::from_value(snap["own"].clone()).map_err(|e| format!("a virtual device's state: {e}"))?;
        let own = Tree::restore(Schema::host(), own)?;
        let mut attributes = std::collections::BTreeMap::new();
        for pair in snap["attributes"].as_array().into_iter().flatten() {
            let (Some(name), Some(n)) = (pair[0].as_str(), pair[1].as_u64()) else {
                return Err(format!("a virtual device's attribute: {pair}"));
            };
            let n = u32::try_from(n).ok().and_then(Notification::from_code).ok_or(format!("notification {n}"))?;
            attributes.insert(name.to_string(), n);
        }
        Ok(VirtualDevice { id, host, own, attributes, reported: Default::default(), changed: Default::default() })
    }

    /// A value of its own `ManagementServer.` (`name` relative to it), as stored: passwords
    /// included, which the ACS reads as empty strings.
    pub fn management(&self, name: &str) -> Option<Value> {
        self.own.value(&format!("{MS}{name}"))
    }

    /// Points its `ConnectionRequestURL` at `url` (its path on this host's listener, which a
    /// migration changes); whether that changed it (a value change the ACS must hear of).
    pub fn set_connection_request_url(&mut self, url: &str) -> bool {
        let name = format!("{MS}ConnectionRequestURL");
        if self.own.value(&name) == Some(Value::String(url.to_string())) {
            return false;
        }
        match self.own.set_internal(&name, Value::String(url.to_string())) {
            Ok(()) => true,
            Err(f) => {
                tracing::error!(device = %self.id.key(), "its connection-request URL {url:?}: {}", f.string);
                false
            }
        }
    }

    /// Whether any parameter has notification on (else there is nothing to poll).
    pub fn watches(&self) -> bool {
        !self.attributes.is_empty()
    }

    /// Compares each parameter with notification on (read through `vrgw`) against what was
    /// last reported of it (the first look only notes it: after a restart nothing is reported
    /// for a change it did not see); the changed ones wait for the next Inform. Whether one
    /// with active notification changed (a "4 VALUE CHANGE" is due).
    pub fn poll_value_changes(&mut self, vrgw: &dyn Handler) -> bool {
        let mut active = false;
        let watched: Vec<(String, Notification)> = self.attributes.iter().map(|(k, n)| (k.clone(), *n)).collect();
        for (name, n) in watched {
            let Some(now) = self.get(vrgw, &name).ok().and_then(|mut v| v.pop()) else { continue };
            match self.reported.insert(name.clone(), now.value.clone()) {
                Some(was) if was != now.value => {
                    active |= matches!(
                        n,
                        Notification::Active | Notification::ActiveLightweight | Notification::PassiveActiveLightweight
                    );
                    self.changed.insert(name, now);
                }
                _ => {}
            }
        }
        active
    }

    /// The changed values the next Inform carries.
    pub fn pending_changes(&self) -> Vec<ParameterValue> {
        self.changed.values().cloned().collect()
    }

    /// The ACS accepted an Inform carrying these changes.
    pub fn changes_reported(&mut self, names: &[String]) {
        for n in names {
            self.changed.remove(n);
        }
    }

    /// Values the ACS set: not changes to report back to it.
    fn set_by_acs(&mut self, values: &[ParameterValue]) {
        for p in values.iter().filter(|p| self.attributes.contains_key(&p.name)) {
            self.reported.insert(p.name.clone(), p.value.clone());
            self.changed.remove(&p.name);
        }
    }

    /// Its identity's values in `Device.DeviceInfo.`, which replace the vRGW's.
    fn identity(&self) -> Vec<ParameterValue> {
        let s = |n: &str, v: &str| ParameterValue::new(format!("{INFO}{n}"), Value::String(v.to_string()));
        vec![
            s("ManufacturerOUI", &self.id.oui),
            s("ProductClass", &self.id.product_class),
            s("SerialNumber", &self.id.serial_number),
            s("ProxierInfo.ManufacturerOUI", &self.host.oui),
            s("ProxierInfo.ProductClass", &self.host.product_class),
            s("ProxierInfo.SerialNumber", &self.host.serial_number),
            s("ProxierInfo.ProxyProtocol", PROXY_PROTOCOL),
        ]
    }

    /// The parameters every Inform carries, read through `vrgw` (`Device.DeviceInfo.` identity
    /// and versions, the management server's URLs and ParameterKey).
    pub fn inform_parameters(&self, vrgw: &dyn Handler) -> Vec<ParameterValue> {
        let mut out: Vec<ParameterValue> = Vec::new();
        for name in
            ["Device.RootDataModelVersion", "Device.DeviceInfo.HardwareVersion", "Device.DeviceInfo.SoftwareVersion"]
        {
            match vrgw.get(name) {
                Ok(v) => out.extend(v),
                Err(f) => tracing::debug!(device = %self.id.key(), parameter = name, "not in the Inform: {}", f.string),
            }
        }
        out.push(ParameterValue::new(format!("{INFO}ProvisioningCode"), Value::String(String::new())));
        for name in ["ParameterKey", "ConnectionRequestURL"] {
            if let Some(v) = self.management(name) {
                out.push(ParameterValue::new(format!("{MS}{name}"), v));
            }
        }
        // The host that proxies it: what a migration changes.
        out.extend(self.identity().into_iter().filter(|p| p.name.starts_with(PROXIER)));
        out
    }

    /// Answers one ACS request from the virtual device's data model: its own parts and `vrgw`,
    /// its vRGW's handler. Methods that need the device itself (Reboot, FactoryReset,
    /// Download…) are the caller's; they get 9000 here.
    pub fn serve(&mut self, vrgw: &mut dyn Handler, req: &Body) -> Body {
        let result = match req {
            Body::GetRPCMethods(_) => Ok(Body::GetRPCMethodsResponse(GetRPCMethodsResponse {
                method_list: datamodel::rpc::METHODS
                    .iter()
                    .filter(|m| !NOT_YET.contains(m))
                    // Carried out by the agent on the vRGW itself.
                    .chain(&["Reboot", "FactoryReset", "Download"])
                    .map(|m| m.to_string())
                    .collect(),
            })),
            Body::GetParameterValues(r) => {
                r.parameter_names.iter().map(|n| self.get(vrgw, n)).collect::<Result<Vec<_>, _>>().map(|v| {
                    Body::GetParameterValuesResponse(GetParameterValuesResponse { parameter_list: v.concat() })
                })
            }
            Body::GetParameterNames(r) => self
                .names(vrgw, &r.parameter_path, r.next_level)
                .map(|parameter_list| Body::GetParameterNamesResponse(GetParameterNamesResponse { parameter_list })),
            Body::SetParameterValues(r) => self
                .set(vrgw, &r.parameter_list, &r.parameter_key)
                .map(|status| Body::SetParameterValuesResponse(SetParameterValuesResponse { status })),
            Body::AddObject(r) => self.own_object(&r.object_name).and_then(|()| {
                let n = vrgw.add_object(&r.object_name)?;
                self.parameter_key(&r.parameter_key);
                Ok(Body::AddObjectResponse(AddObjectResponse { instance_number: n, status: 0 }))
            }),
            Body::DeleteObject(r) => self.own_object(&r.object_name).and_then(|()| {
                vrgw.delete_object(&r.object_name)?;
                self.parameter_key(&r.parameter_key);
                Ok(Body::DeleteObjectResponse(DeleteObjectResponse { status: 0 }))
            }),
            Body::GetParameterAttributes(r) => {
                r.parameter_names.iter().map(|n| self.get(vrgw, n)).collect::<Result<Vec<_>, _>>().map(|v| {
                    let parameter_list = v
                        .concat()
                        .into_iter()
                        .map(|p| ParameterAttribute {
                            notification: self.attributes.get(&p.name).copied().unwrap_or(Notification::Off),
                            name: p.name,
                            access_list: Vec::new(),
                        })
                        .collect();
                    Body::GetParameterAttributesResponse(GetParameterAttributesResponse { parameter_list })
                })
            }
            Body::SetParameterAttributes(r) => {
                let mut changes = Vec::new();
                let mut result = Ok(());
                for a in r.parameter_list.iter().filter(|a| a.notification_change) {
                    match self.get(vrgw, &a.name) {
                        Ok(found) => changes.extend(found.into_iter().map(|p| (p.name, a.notification, p.value))),
                        Err(f) => {
                            result = Err(f);
                            break;
                        }
                    }
                }
                result.map(|()| {
                    for (name, n, value) in changes {
                        match n {
                            Notification::Off => {
                                self.attributes.remove(&name);
                                self.reported.remove(&name);
                                self.changed.remove(&name);
                            }
                            n => {
                                // What it is now is the value later changes are told against.
                                self.reported.insert(name.clone(), value);
                                self.attributes.insert(name, n);
                            }
                        }
                    }
                    Body::SetParameterAttributesResponse(SetParameterAttributesResponse {})
                })
            }
            other => Err(datamodel::rpc::not_served(other)),
        };
        result.unwrap_or_else(Body::Fault)
    }

    fn parameter_key(&mut self, key: &str) {
        if let Err(f) = self.own.set_internal(&format!("{MS}ParameterKey"), Value::String(key.to_string())) {
            tracing::error!(device = %self.id.key(), "ParameterKey: {}", f.string);
        }
    }

    /// AddObject and DeleteObject reach the vRGW only.
    fn own_object(&self, path: &str) -> Result<(), Fault> {
        if path.starts_with(MS) {
            return Err(Fault::with_string(
                FaultCode::RequestDenied,
                format!("{path}: the virtual device's management server has no table the ACS may change"),
            ));
        }
        Ok(())
    }

    /// GetParameterValues of one name.
    fn get(&self, vrgw: &dyn Handler, name: &str) -> Result<Vec<ParameterValue>, Fault> {
        if name.starts_with(MS) {
            return self.own.get(name);
        }
        let identity = self.identity();
        if let Some(p) = identity.iter().find(|p| p.name == name) {
            return Ok(vec![p.clone()]);
        }
        if name == PROXIER {
            return Ok(identity.into_iter().filter(|p| p.name.starts_with(PROXIER)).collect());
        }
        let mut out = vrgw.get(name)?;
        for p in &mut out {
            if let Some(mine) = identity.iter().find(|i| i.name == p.name) {
                p.value = mine.value.clone();
            }
        }
        if name.is_empty() || name == "Device." {
            out.extend(self.own.get(MS)?);
        }
        Ok(out)
    }

    /// GetParameterNames.
    fn names(&self, vrgw: &dyn Handler, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        if path.starts_with(MS) {
            return self.own.names(path, next_level);
        }
        let mut out = vrgw.names(path, next_level)?;
        if path.is_empty() || path == "Device." {
            let own = if next_level {
                self.own.names("Device.", true)?.into_iter().filter(|p| p.name == MS).collect()
            } else {
                self.own.names(MS, false)?
            };
            out.extend(own);
        }
        Ok(out)
    }

    /// SetParameterValues: the management server's part and the vRGW's validated together,
    /// nothing applied unless all is valid; the vRGW applies its part at once (status 0).
    fn set(&mut self, vrgw: &mut dyn Handler, values: &[ParameterValue], key: &str) -> Result<u8, Fault> {
        let (mine, theirs): (Vec<ParameterValue>, Vec<ParameterValue>) =
            values.iter().cloned().partition(|p| p.name.starts_with(MS));
        let identity = self.identity();
        let (refused, theirs): (Vec<ParameterValue>, Vec<ParameterValue>) =
            theirs.into_iter().partition(|p| identity.iter().any(|i| i.name == p.name));
        let mut faults: Vec<ParameterFault> = refused
            .into_iter()
            .map(|p| ParameterFault {
                parameter_name: p.name,
                code: FaultCode::NonWritableParameter,
                string: "the virtual device's identity is not writable".into(),
            })
            .collect();
        let mine = match self.own.validate_set(&mine) {
            Ok(v) => v,
            Err(f) => {
                faults.extend(f);
                Vec::new()
            }
        };
        let theirs = match vrgw.validate_set(&theirs) {
            Ok(v) => v,
            Err(f) => {
                faults.extend(f);
                Vec::new()
            }
        };
        if !faults.is_empty() {
            return Err(Fault {
                code: FaultCode::InvalidArguments,
                string: format!("{} of {} values refused", faults.len(), values.len()),
                set_parameter_values_faults: faults,
            });
        }
        if !theirs.is_empty() {
            vrgw.apply_set(&theirs)?;
        }
        self.own.apply_set(&mine)?;
        self.parameter_key(key);
        self.set_by_acs(&theirs);
        self.set_by_acs(&mine);
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cwmp::{GetParameterNames, GetParameterValues, SetParameterValues};

    fn id(product_class: &str, serial: &str) -> DeviceId {
        DeviceId {
            manufacturer: "vrgw.org".into(),
            oui: "00A0B1".into(),
            product_class: product_class.into(),
            serial_number: serial.into(),
        }
    }

    fn device() -> (VirtualDevice, Tree) {
        let start = Start {
            acs_url: "http://acs.example/".into(),
            connection_request_url: "http://10.0.0.1:7548/vd/alice".into(),
            cr_username: "cr-alice".into(),
            cr_password: "cr-secret".into(),
            periodic_inform_interval: 300,
        };
        (VirtualDevice::new(id("vRGW", "alice"), id("vRGW-Host", "h1"), &start), datamodel::factory::vrgw("i1"))
    }

    fn gpv(d: &mut VirtualDevice, vrgw: &mut Tree, names: &[&str]) -> Result<Vec<(String, Value)>, Fault> {
        let req = Body::GetParameterValues(GetParameterValues {
            parameter_names: names.iter().map(|n| n.to_string()).collect(),
        });
        match d.serve(vrgw, &req) {
            Body::GetParameterValuesResponse(r) => {
                Ok(r.parameter_list.into_iter().map(|p| (p.name, p.value)).collect())
            }
            Body::Fault(f) => Err(f),
            other => panic!("{other:?}"),
        }
    }

    fn spv(d: &mut VirtualDevice, vrgw: &mut Tree, values: &[(&str, Value)], key: &str) -> Body {
        let req = Body::SetParameterValues(SetParameterValues {
            parameter_list: values.iter().map(|(n, v)| ParameterValue::new(n.to_string(), v.clone())).collect(),
            parameter_key: key.into(),
        });
        d.serve(vrgw, &req)
    }

    #[test]
    fn its_identity_and_management_server_are_its_own_the_rest_is_the_vrgws() {
        let (mut d, mut vrgw) = device();
        let got = gpv(
            &mut d,
            &mut vrgw,
            &[
                "Device.DeviceInfo.SerialNumber",
                "Device.DeviceInfo.ProxierInfo.",
                "Device.ManagementServer.ConnectionRequestURL",
            ],
        )
        .expect("values");
        let s = |v: &str| Value::String(v.into());
        assert_eq!(
            got,
            [
                ("Device.DeviceInfo.SerialNumber".into(), s("alice")),
                ("Device.DeviceInfo.ProxierInfo.ManufacturerOUI".into(), s("00A0B1")),
                ("Device.DeviceInfo.ProxierInfo.ProductClass".into(), s("vRGW-Host")),
                ("Device.DeviceInfo.ProxierInfo.SerialNumber".into(), s("h1")),
                ("Device.DeviceInfo.ProxierInfo.ProxyProtocol".into(), s(PROXY_PROTOCOL)),
                ("Device.ManagementServer.ConnectionRequestURL".into(), s("http://10.0.0.1:7548/vd/alice")),
            ]
        );
        // A partial path of the vRGW's: its values, the identity replaced.
        let info = gpv(&mut d, &mut vrgw, &["Device.DeviceInfo."]).expect("DeviceInfo");
        assert!(info.contains(&("Device.DeviceInfo.ProductClass".into(), s("vRGW"))), "{info:?}");
        assert!(info.iter().any(|(n, _)| n == "Device.DeviceInfo.UpTime"), "the vRGW's own values are there");
        // The whole tree: the vRGW's and the management server, the password read as empty.
        let all = gpv(&mut d, &mut vrgw, &["Device."]).expect("all");
        assert!(all.iter().any(|(n, _)| n == "Device.DHCPv4.Server.Pool.1.MinAddress"));
        assert!(all.contains(&("Device.ManagementServer.ConnectionRequestPassword".into(), s(""))));
        assert!(!all.iter().any(|(n, _)| n.starts_with("Device.X_VRGW-ORG_Virtualization.")), "no host parts");
        // Unknown names are the vRGW's fault.
        assert_eq!(
            gpv(&mut d, &mut vrgw, &["Device.Nope."]).map(|_| ()).expect_err("unknown").code,
            FaultCode::InvalidParameterName
        );
    }

    #[test]
    fn a_set_spanning_both_parts_is_all_or_nothing_and_keeps_its_parameter_key() {
        let (mut d, mut vrgw) = device();
        let min = "Device.DHCPv4.Server.Pool.1.MinAddress";
        let before = gpv(&mut d, &mut vrgw, &[min]).expect("before");
        // One bad value: nothing changes, every refused parameter named.
        let r = spv(
            &mut d,
            &mut vrgw,
            &[
                (min, Value::String("192.168.1.50".into())),
                ("Device.ManagementServer.PeriodicInformInterval", Value::UnsignedInt(0)),
                ("Device.DeviceInfo.SerialNumber", Value::String("mallory".into())),
            ],
            "k1",
        );
        let Body::Fault(f) = r else { panic!("{r:?}") };
        assert_eq!(f.code, FaultCode::InvalidArguments);
        let names: Vec<&str> = f.set_parameter_values_faults.iter().map(|p| p.parameter_name.as_str()).collect();
        assert_eq!(names, ["Device.DeviceInfo.SerialNumber", "Device.ManagementServer.PeriodicInformInterval"]);
        assert_eq!(gpv(&mut d, &mut vrgw, &[min]).expect("after"), before);
        assert_eq!(d.management("PeriodicInformInterval"), Some(Value::UnsignedInt(300)));
        assert_eq!(d.management("ParameterKey"), Some(Value::String(String::new())));
        // A good set applies both parts and takes the key.
        let r = spv(
            &mut d,
            &mut vrgw,
            &[
                (min, Value::String("192.168.1.50".into())),
                ("Device.ManagementServer.PeriodicInformInterval", Value::UnsignedInt(60)),
            ],
            "k2",
        );
        assert_eq!(r, Body::SetParameterValuesResponse(SetParameterValuesResponse { status: 0 }));
        assert_eq!(
            gpv(&mut d, &mut vrgw, &[min]).expect("set"),
            [(min.to_string(), Value::String("192.168.1.50".into()))]
        );
        assert_eq!(d.management("PeriodicInformInterval"), Some(Value::UnsignedInt(60)));
        assert_eq!(d.management("ParameterKey"), Some(Value::String("k2".into())));
        // Kept across a restart.
        let again = VirtualDevice::restore(d.id.clone(), d.host.clone(), d.snapshot()).expect("restored");
        assert_eq!(again.management("ParameterKey"), Some(Value::String("k2".into())));
    }

    #[test]
    fn names_list_the_management_server_beside_the_vrgws_objects() {
        let (mut d, mut vrgw) = device();
        let Body::GetRPCMethodsResponse(m) = d.serve(&mut vrgw, &Body::GetRPCMethods(cwmp::GetRPCMethods {})) else {
            panic!("methods")
        };
        for (method, served) in [
            ("Reboot", true),
            ("FactoryReset", true),
            ("Download", true),
            ("ScheduleInform", true),
            ("CancelTransfer", false),
        ] {
            assert_eq!(m.method_list.iter().any(|x| x == method), served, "{method}: {:?}", m.method_list);
        }
        let req = Body::GetParameterNames(GetParameterNames { parameter_path: "Device.".into(), next_level: true });
        let Body::GetParameterNamesResponse(r) = d.serve(&mut vrgw, &req) else { panic!("names") };
        let names: Vec<&str> = r.parameter_list.iter().map(|p| p.name.as_str()).collect();
        assert!(names.contains(&"Device.DHCPv4."), "{names:?}");
        assert!(names.contains(&"Device.ManagementServer."), "{names:?}");
        assert_eq!(names.iter().filter(|n| **n == "Device.ManagementServer.").count(), 1);
        let req = Body::AddObject(cwmp::AddObject {
            object_name: "Device.ManagementServer.VirtualDevice.".into(),
            parameter_key: String::new(),
        });
        let Body::Fault(f) = d.serve(&mut vrgw, &req) else { panic!("refused") };
        assert_eq!(f.code, FaultCode::RequestDenied);
    }

    #[test]
    fn a_change_of_a_notified_parameter_is_reported_once_and_a_change_the_acs_made_is_not() {
        let (mut d, mut vrgw) = device();
        let (min, max) = ("Device.DHCPv4.Server.Pool.1.MinAddress", "Device.DHCPv4.Server.Pool.1.MaxAddress");
        let spa = |name: &str, n: Notification| {
            Body::SetParameterAttributes(cwmp::SetParameterAttributes {
                parameter_list: vec![cwmp::SetParameterAttribute {
                    name: name.into(),
                    notification_change: true,
                    notification: n,
                    access_list_change: false,
                    access_list: Vec::new(),
                }],
            })
        };
        assert!(!d.watches());
        assert!(matches!(d.serve(&mut vrgw, &spa(min, Notification::Active)), Body::SetParameterAttributesResponse(_)));
        assert!(matches!(
            d.serve(&mut vrgw, &spa(max, Notification::Passive)),
            Body::SetParameterAttributesResponse(_)
        ));
        assert!(d.watches());
        assert!(!d.poll_value_changes(&vrgw), "nothing changed since the attributes were set");
        // The vRGW's own change (as through its host, or its daemons): reported, active.
        let changed = |v: &str| ParameterValue::new(min, Value::String(v.into()));
        let ok = vrgw.validate_set(&[changed("192.168.1.70")]).expect("valid");
        vrgw.apply_set(&ok).expect("applied");
        assert!(d.poll_value_changes(&vrgw));
        assert_eq!(d.pending_changes(), [changed("192.168.1.70")]);
        assert!(!d.poll_value_changes(&vrgw), "reported once");
        // A passive one waits for the next Inform without asking for one.
        let ok = vrgw.validate_set(&[ParameterValue::new(max, Value::String("192.168.1.180".into()))]).expect("valid");
        vrgw.apply_set(&ok).expect("applied");
        assert!(!d.poll_value_changes(&vrgw));
        assert_eq!(d.pending_changes().len(), 2);
        d.changes_reported(&[min.to_string(), max.to_string()]);
        assert!(d.pending_changes().is_empty());
        // What the ACS sets is not reported back to it.
        spv(&mut d, &mut vrgw, &[(min, Value::String("192.168.1.80".into()))], "k");
        assert!(!d.poll_value_changes(&vrgw));
        assert!(d.pending_changes().is_empty());
        // Off: no longer watched.
        assert!(matches!(d.serve(&mut vrgw, &spa(min, Notification::Off)), Body::SetParameterAttributesResponse(_)));
        let ok = vrgw.validate_set(&[changed("192.168.1.90")]).expect("valid");
        vrgw.apply_set(&ok).expect("applied");
        assert!(!d.poll_value_changes(&vrgw));
    }
}
