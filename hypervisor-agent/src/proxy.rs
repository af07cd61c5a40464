//! Each instance's own data model, mounted at `Instance.{i}.Device.` of the host's.
//!
//! The mount holds the subscriber's *profile* (a `Tree` of the vRGW schema: what the ACS set) and,
//! once the instance runs, its vrgw-proxy (XML-RPC, HTTP Basic with the per-instance secret):
//!
//! - before the proxy answers (not provisioned yet, or still booting), reads come from the
//!   profile and sets are checked against the schema and recorded in it;
//! - once it answers, [`ProxyMount::sync`] pushes the whole profile in one `set`, and from then
//!   on reads go to the proxy (live values such as Hosts and UpTime) and sets are checked by the
//!   proxy (`validate`: values, cross-parameter rules, the daemons' own checkers), applied there
//!   (`set`, all or nothing) and recorded in the profile, so a vRGW re-created later gets them
//!   again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cwmp::{Fault, FaultCode, ParameterFault, ParameterInfo, ParameterValue, Value as CwmpValue, XsdType};
use datamodel::{Handler, Tree};
use xmlrpc::Value;

/// The proxy's user name for HTTP Basic.
pub const PROXY_USER: &str = "vrgw";

/// Where an instance's proxy is and how to reach it.
#[derive(Debug, Clone)]
pub struct ProxyTarget {
    /// `http://ADDR:PORT/RPC2`.
    pub url: String,
    /// The per-instance secret.
    pub secret: String,
}

struct Inner {
    profile: Tree,
    target: Option<ProxyTarget>,
    client: Option<xmlrpc::Client>,
    /// Whether the proxy has the whole profile (reads and sets go to it).
    synced: bool,
}

/// One instance's mount. Cheap to clone: clones share the profile and the connection.
#[derive(Clone)]
pub struct ProxyMount {
    inner: Arc<Mutex<Inner>>,
    rt: tokio::runtime::Handle,
    timeout: Duration,
}

impl std::fmt::Debug for ProxyMount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.lock();
        f.debug_struct("ProxyMount")
            .field("url", &g.target.as_ref().map(|t| t.url.clone()))
            .field("synced", &g.synced)
            .finish()
    }
}

fn unreachable(url: &str, e: &xmlrpc::Error) -> Fault {
    Fault::with_string(FaultCode::InternalError, format!("the vRGW's proxy at {url} did not answer: {e}"))
}

fn fault_of(url: &str, e: xmlrpc::Error) -> Fault {
    match e {
        // The proxy's faults carry CWMP codes.
        xmlrpc::Error::Fault(f) => {
            Fault::with_string(FaultCode::from_code(u32::try_from(f.code).unwrap_or(9002)), f.string)
        }
        other => unreachable(url, &other),
    }
}

fn wire(p: &ParameterValue) -> Value {
    Value::structure([
        ("name", Value::String(p.name.clone())),
        ("type", Value::String(p.value.xsd_type().qname().trim_start_matches("xsd:").to_string())),
        ("value", Value::String(p.value.to_lexical().into_owned())),
    ])
}

fn from_wire(v: &Value) -> Option<ParameterValue> {
    let name = v.get("name")?.as_str()?;
    let ty = XsdType::from_local(v.get("type")?.as_str()?)?;
    let value = CwmpValue::parse(ty, v.get("value")?.as_str()?).ok()?;
    Some(ParameterValue::new(name, value))
}

impl ProxyMount {
    /// A mount whose profile is the vRGW's factory configuration (`id` names its SSID).
    pub fn new(rt: tokio::runtime::Handle, id: &str) -> ProxyMount {
        Self::with_profile(rt, datamodel::factory::vrgw(id))
    }

    /// A mount with a stored profile.
    pub fn with_profile(rt: tokio::runtime::Handle, profile: Tree) -> ProxyMount {
        ProxyMount {
            inner: Arc::new(Mutex::new(Inner { profile, target: None, client: None, synced: false })),
            rt,
            timeout: Duration::from_secs(10),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The profile, for persisting.
    pub fn profile(&self) -> datamodel::tree::Snapshot {
        self.lock().profile.snapshot()
    }

    /// Points the mount at a running instance's proxy; the profile is pushed at the next
    /// [`ProxyMount::sync`].
    pub fn attach(&self, target: ProxyTarget) -> Result<(), Fault> {
        let client = xmlrpc::Client::new(&target.url)
            .map_err(|e| Fault::with_string(FaultCode::InternalError, e.to_string()))?
            .with_timeout(self.timeout)
            .with_basic_auth(PROXY_USER, &target.secret);
        let mut g = self.lock();
        g.target = Some(target);
        g.client = Some(client);
        g.synced = false;
        Ok(())
    }

    /// The instance is gone (deleted, or being re-created): reads and sets use the profile.
    pub fn detach(&self) {
        let mut g = self.lock();
        g.target = None;
        g.client = None;
        g.synced = false;
    }

    /// Whether the mount points at a proxy.
    pub fn attached(&self) -> bool {
        self.lock().target.is_some()
    }

    /// Whether the proxy has the profile.
    pub fn synced(&self) -> bool {
        self.lock().synced
    }

    fn call(&self, client: &xmlrpc::Client, method: &str, params: &[Value]) -> Result<Value, xmlrpc::Error> {
        // Host operations run on the agent's host thread, never on a runtime worker.
        self.rt.block_on(client.call(method, params))
    }

    /// When attached and not yet synced: if the proxy answers, pushes the whole profile (one
    /// all-or-nothing `set`). Whether the proxy now has it.
    pub fn sync(&self, parameter_key: &str) -> Result<bool, Fault> {
        let (client, url, values) = {
            let g = self.lock();
            if g.synced {
                return Ok(true);
            }
            let (Some(c), Some(t)) = (g.client.clone(), g.target.clone()) else { return Ok(false) };
            let values = writable_values(&g.profile);
            (c, t.url, values)
        };
        // A vRGW still booting does not answer ARP: a connection attempt would wait for the
        // client's whole timeout and hold the host thread (and every CWMP session) meanwhile.
        if !answers_quickly(&url) || self.call(&client, "health", &[]).is_err() {
            return Ok(false);
        }
        // Only what differs from what the vRGW has now.
        let now = self
            .call(&client, "get", &[Value::Array(vec![Value::String("Device.".into())])])
            .map_err(|e| fault_of(&url, e))?;
        let current: std::collections::HashMap<String, CwmpValue> =
            now.as_array().unwrap_or_default().iter().filter_map(from_wire).map(|p| (p.name, p.value)).collect();
        let values: Vec<ParameterValue> = values
            .into_iter()
            .filter(|p| current.get(&p.name).is_none_or(|v| v.to_lexical() != p.value.to_lexical()))
            .collect();
        let list = Value::Array(values.iter().map(wire).collect());
        self.call(&client, "set", &[list, Value::String(parameter_key.into())]).map_err(|e| fault_of(&url, e))?;
        self.lock().synced = true;
        tracing::info!(%url, parameters = values.len(), "the vRGW's proxy has its profile");
        Ok(true)
    }

    /// Asks the vRGW to announce its LAN address (it took over a subscriber's LAN with another
    /// MAC address); what it announced.
    pub fn announce(&self) -> Result<String, Fault> {
        let (client, url) = {
            let g = self.lock();
            match (&g.client, &g.target) {
                (Some(c), Some(t)) => (c.clone(), t.url.clone()),
                _ => return Err(Fault::with_string(FaultCode::InternalError, "the vRGW's proxy is not attached")),
            }
        };
        match self.call(&client, "announce", &[]).map_err(|e| fault_of(&url, e))? {
            Value::String(s) => Ok(s),
            other => Ok(format!("{other:?}")),
        }
    }

    fn live(&self) -> Option<(xmlrpc::Client, String)> {
        let g = self.lock();
        match (g.synced, &g.client, &g.target) {
            (true, Some(c), Some(t)) => Some((c.clone(), t.url.clone())),
            _ => None,
        }
    }
}

/// Whether the proxy at `url` (`http://IP:PORT/...`) accepts a TCP connection within 300 ms;
/// true when the URL is not of that form (the call then decides).
fn answers_quickly(url: &str) -> bool {
    let Some(addr) = url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .and_then(|hp| hp.parse::<std::net::SocketAddr>().ok())
    else {
        return true;
    };
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
}

/// Every writable parameter the profile holds a value for (the factory configuration and what
/// the ACS set; not the schema's defaults, which the vRGW has anyway): what a fresh vRGW is given.
fn writable_values(t: &Tree) -> Vec<ParameterValue> {
    let names = t.names("Device.", false).unwrap_or_default();
    let writable: std::collections::HashSet<String> =
        names.into_iter().filter(|n| n.writable && !n.name.ends_with('.')).map(|n| n.name).collect();
    t.stored_values()
        .filter(|(name, _)| writable.contains(*name))
        .map(|(name, v)| ParameterValue::new(name, v.clone()))
        .collect()
}

impl Handler for ProxyMount {
    fn get(&self, path: &str) -> Result<Vec<ParameterValue>, Fault> {
        match self.live() {
            Some((c, url)) => {
                let r = self
                    .call(&c, "get", &[Value::Array(vec![Value::String(path.into())])])
                    .map_err(|e| fault_of(&url, e))?;
                let list =
                    r.as_array().ok_or_else(|| Fault::with_string(FaultCode::InternalError, "get: not an array"))?;
                list.iter()
                    .map(|v| {
                        from_wire(v).ok_or_else(|| {
                            Fault::with_string(
                                FaultCode::InternalError,
                                format!("the proxy at {url} sent a malformed value"),
                            )
                        })
                    })
                    .collect()
            }
            None => self.lock().profile.get(path),
        }
    }

    fn names(&self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        match self.live() {
            Some((c, url)) => {
                let r = self
                    .call(&c, "names", &[Value::String(path.into()), Value::Bool(next_level)])
                    .map_err(|e| fault_of(&url, e))?;
                Ok(r.as_array()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|v| {
                        Some(ParameterInfo {
                            name: v.get("name")?.as_str()?.to_string(),
                            writable: v.get("writable")?.as_bool()?,
                        })
                    })
                    .collect())
            }
            None => self.lock().profile.names(path, next_level),
        }
    }

    fn validate_set(&self, values: &[ParameterValue]) -> Result<(), Vec<ParameterFault>> {
        self.lock().profile.validate(values)?;
        let Some((c, url)) = self.live() else { return Ok(()) };
        let one =
            |name: &str, f: Fault| vec![ParameterFault { parameter_name: name.into(), code: f.code, string: f.string }];
        let first = values.first().map(|p| p.name.clone()).unwrap_or_default();
        let r = self
            .call(&c, "validate", &[Value::Array(values.iter().map(wire).collect())])
            .map_err(|e| one(&first, fault_of(&url, e)))?;
        let faults: Vec<ParameterFault> = r
            .as_array()
            .unwrap_or_default()
            .iter()
            .filter_map(|v| {
                Some(ParameterFault {
                    parameter_name: v.get("name")?.as_str()?.to_string(),
                    code: FaultCode::from_code(u32::try_from(v.get("code")?.as_i64()?).ok()?),
                    string: v.get("reason")?.as_str()?.to_string(),
                })
            })
            .collect();
        if faults.is_empty() {
            Ok(())
        } else {
            Err(faults)
        }
    }

    fn apply_set(&mut self, values: &[ParameterValue]) -> Result<(), Fault> {
        if let Some((c, url)) = self.live() {
            let list = Value::Array(values.iter().map(wire).collect());
            self.call(&c, "set", &[list, Value::String(String::new())]).map_err(|e| fault_of(&url, e))?;
        }
        let mut g = self.lock();
        let coerced = g.profile.validate(values).map_err(|f| Fault {
            code: FaultCode::InvalidArguments,
            string: "refused by the profile".into(),
            set_parameter_values_faults: f,
        })?;
        g.profile.apply(coerced);
        Ok(())
    }

    fn add_object(&mut self, table: &str) -> Result<u32, Fault> {
        // The profile numbers the row; the proxy must agree (it numbers the same way from the
        // same history), else the two would drift: then the proxy's number wins and the profile
        // is re-read at the next sync.
        let n = self.lock().profile.add_object(table)?;
        if let Some((c, url)) = self.live() {
            let r = self
                .call(&c, "add_object", &[Value::String(table.into()), Value::String(String::new())])
                .map_err(|e| fault_of(&url, e));
            match r {
                Ok(v) if v.as_i64() == Some(i64::from(n)) => {}
                Ok(v) => {
                    tracing::warn!(%url, profile = n, proxy = ?v, "instance numbers differ; resyncing");
                    self.lock().synced = false;
                }
                Err(f) => {
                    let _ = self.lock().profile.delete_object(&format!("{table}{n}."));
                    return Err(f);
                }
            }
        }
        Ok(n)
    }

    fn delete_object(&mut self, object: &str) -> Result<(), Fault> {
        if let Some((c, url)) = self.live() {
            self.call(&c, "delete_object", &[Value::String(object.into()), Value::String(String::new())])
                .map_err(|e| fault_of(&url, e))?;
        }
        self.lock().profile.delete_object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::answers_quickly;

    #[test]
    fn a_proxy_that_does_not_answer_is_given_up_on_quickly() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/RPC2", l.local_addr().expect("addr"));
        assert!(answers_quickly(&url));
        drop(l);
        let t = std::time::Instant::now();
        assert!(!answers_quickly(&url));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // Not an address and port: the call decides.
        assert!(answers_quickly("https://name.example/RPC2"));
    }
}
