//! Each instance's own data model, mounted at `Instance.{i}.Device.` of the host's.
//!
//! The mount holds the subscriber's *profile* (a `Tree` of the vRGW schema: what the ACS set) and,
//! once the instance runs, its vrgw-proxy (XML-RPC, HTTP Basic with the per-instance secret,
//! the contract of the `proxy-api` crate):
//!
//! - before the proxy answers (not provisioned yet, or still booting), reads come from the
//!   profile and sets are checked against the schema and recorded in it;
//! - once it answers, [`ProxyMount::sync`] pushes the whole profile in one `set`, and from then
//!   on reads go to the proxy (live values such as Hosts and UpTime) and sets are checked against
//!   the schema here (the host's plan), then checked by the proxy (values, cross-parameter rules,
//!   the daemons' own checkers) and applied there in one `try_set` call, all or nothing, and
//!   recorded in the profile, so a vRGW re-created later gets them again. [`apply_all`] sends
//!   the parts of one set to their vRGWs at once.
//!
//! Every call has a deadline ([`Deadlines`]: the TCP connection, a read, a set). A proxy that
//! misses one (a guest that accepts and never answers) costs its own instance, not the host: the
//! call fails with 9002 naming it, and the mount goes back to its profile (reads from it, sets
//! recorded in it) and is not called again until a backoff (`retry`: 5 s, doubling to 60 s) has passed;
//! then [`ProxyMount::sync`] tries it again and pushes what changed meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cwmp::{Fault, FaultCode, ParameterFault, ParameterInfo, ParameterValue, Value as CwmpValue};
use datamodel::{Handler, SetPlan, Tree};
use proxy_api::{Method, NoParams, ObjectParams, Paths, ProxyFault, SetParams, WireFault, WireValue};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The proxy's user name for HTTP Basic.
pub const PROXY_USER: &str = "vrgw";

/// How long each kind of call to a proxy may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// The TCP connection (a vRGW still booting does not answer ARP).
    pub connect: Duration,
    /// `health`, the question whether it is up.
    pub health: Duration,
    /// Reads (`get`, `names`).
    pub read: Duration,
    /// Changes (`set`, `try_set`, objects): the proxy checks and applies (nft, dnsmasq).
    pub change: Duration,
    /// After a missed deadline, the first wait before the proxy is called again; it doubles
    /// with each miss, up to twelve times this.
    pub retry: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            connect: Duration::from_millis(300),
            health: Duration::from_secs(2),
            read: Duration::from_secs(5),
            change: Duration::from_secs(10),
            retry: Duration::from_secs(5),
        }
    }
}

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
    /// After a missed deadline: not called again before this, and the next wait.
    stalled: Option<(Instant, Duration)>,
    /// The profile was replaced whole since [`ProxyMount::take_changed`] was last asked.
    replaced: bool,
    /// Values read ahead for the request being served, by the path asked ([`read_all`]).
    read_ahead: HashMap<String, Result<Vec<ParameterValue>, Fault>>,
}

/// One instance's mount. Cheap to clone: clones share the profile and the connection.
#[derive(Clone)]
pub struct ProxyMount {
    inner: Arc<Mutex<Inner>>,
    rt: tokio::runtime::Handle,
    deadlines: Deadlines,
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
        xmlrpc::Error::Fault(f) => Fault::from(ProxyFault::from(f)),
        other => unreachable(url, &other),
    }
}

/// Calls `m` with its parameter type, for its result type.
async fn call<P: Serialize, R: DeserializeOwned>(
    client: &xmlrpc::Client,
    m: &Method<P, R>,
    params: P,
) -> Result<R, xmlrpc::Error> {
    client.call_typed(m.name, params).await
}

/// The values of a set as they travel.
fn wire(values: &[ParameterValue]) -> Vec<WireValue> {
    values.iter().map(WireValue::from).collect()
}

impl ProxyMount {
    /// A mount whose profile is the vRGW's factory configuration (`id` names its SSID).
    pub fn new(rt: tokio::runtime::Handle, id: &str) -> ProxyMount {
        Self::with_profile(rt, datamodel::factory::vrgw(id))
    }

    /// A mount with a stored profile.
    pub fn with_profile(rt: tokio::runtime::Handle, mut profile: Tree) -> ProxyMount {
        profile.track_changes();
        let inner = Inner {
            profile,
            target: None,
            client: None,
            synced: false,
            stalled: None,
            replaced: false,
            read_ahead: HashMap::new(),
        };
        ProxyMount { inner: Arc::new(Mutex::new(inner)), rt, deadlines: Deadlines::default() }
    }

    /// The same mount with other deadlines (tests).
    pub fn with_deadlines(mut self, deadlines: Deadlines) -> ProxyMount {
        self.deadlines = deadlines;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The profile, for persisting.
    pub fn profile(&self) -> datamodel::tree::Snapshot {
        self.lock().profile.snapshot()
    }

    /// How many values the profile holds (fewer than the vRGW's live data model, which adds
    /// its status rows).
    pub fn profile_len(&self) -> usize {
        self.lock().profile.stored_values().count()
    }

    /// Whether the profile changed since this was last asked: whether it needs persisting.
    pub fn take_changed(&self) -> bool {
        let mut g = self.lock();
        let changed = !g.profile.take_changes().is_empty();
        std::mem::take(&mut g.replaced) || changed
    }

    /// Points the mount at a running instance's proxy; the profile is pushed at the next
    /// [`ProxyMount::sync`].
    pub fn attach(&self, target: ProxyTarget) -> Result<(), Fault> {
        let client = xmlrpc::Client::new(&target.url)
            .map_err(|e| Fault::with_string(FaultCode::InternalError, e.to_string()))?
            .with_timeout(self.deadlines.change)
            .with_basic_auth(PROXY_USER, &target.secret);
        let mut g = self.lock();
        g.target = Some(target);
        g.client = Some(client);
        g.synced = false;
        g.stalled = None;
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

    fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        client: &xmlrpc::Client,
        m: &Method<P, R>,
        params: P,
        deadline: Duration,
    ) -> Result<R, xmlrpc::Error> {
        // Host operations run on the agent's host thread, never on a runtime worker.
        self.rt.block_on(within(deadline, call(client, m, params)))
    }

    /// After a call that failed with `e`: a missed deadline sends the mount back to its profile
    /// until the backoff has passed (logged once per stall).
    fn failed(&self, url: &str, e: &xmlrpc::Error) {
        if !matches!(e, xmlrpc::Error::Timeout(_)) {
            return;
        }
        let mut g = self.lock();
        let retry = self.deadlines.retry;
        let wait = g.stalled.map_or(retry, |(_, w)| (w * 2).min(retry * 12));
        if g.stalled.is_none() || g.synced {
            tracing::warn!(
                %url, retry_secs = wait.as_secs(),
                "the vRGW's proxy did not answer in time ({e}); its data model is served from its profile until it answers"
            );
        }
        g.synced = false;
        g.stalled = Some((Instant::now() + wait, wait));
    }

    /// Whether the mount waits out a backoff (its proxy missed a deadline).
    pub fn stalled(&self) -> bool {
        self.lock().stalled.is_some_and(|(until, _)| Instant::now() < until)
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
        if self.stalled() {
            return Ok(false);
        }
        // A vRGW still booting does not answer ARP: a connection attempt would wait for the
        // client's whole timeout and hold the host thread meanwhile.
        if !answers_quickly(&url, self.deadlines.connect) {
            return Ok(false);
        }
        match self.call(&client, &proxy_api::HEALTH, NoParams, self.deadlines.health) {
            Ok(_) => {}
            // Accepted and did not answer: reported (the instance's LastError).
            Err(e @ xmlrpc::Error::Timeout(_)) => {
                self.failed(&url, &e);
                return Err(unreachable(&url, &e));
            }
            Err(_) => return Ok(false),
        }
        // Only what differs from what the vRGW has now.
        let now = self
            .call(&client, &proxy_api::GET, Paths(vec!["Device.".into()]), self.deadlines.read)
            .map_err(|e| self.fault_of(&url, e))?;
        let current: std::collections::HashMap<String, CwmpValue> =
            now.into_iter().filter_map(|w| ParameterValue::try_from(w).ok()).map(|p| (p.name, p.value)).collect();
        let values: Vec<ParameterValue> = values
            .into_iter()
            .filter(|p| current.get(&p.name).is_none_or(|v| v.to_lexical() != p.value.to_lexical()))
            .collect();
        let params = SetParams { values: wire(&values), parameter_key: parameter_key.into() };
        self.call(&client, &proxy_api::SET, params, self.deadlines.change).map_err(|e| self.fault_of(&url, e))?;
        let mut g = self.lock();
        g.synced = true;
        if g.stalled.take().is_some() {
            tracing::info!(%url, "the vRGW's proxy answers again");
        }
        drop(g);
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
        if socket_addr(&url).is_some_and(|a| !on_link(a.ip())) {
            return Err(Fault::with_string(
                FaultCode::InternalError,
                format!("the vRGW's proxy at {url} is on none of this host's networks: not called"),
            ));
        }
        self.call(&client, &proxy_api::ANNOUNCE, NoParams, self.deadlines.change).map_err(|e| self.fault_of(&url, e))
    }

    /// Sends a set's part to the proxy, which checks it once and applies it (`try_set`), when
    /// the proxy has the profile; refused values come back as 9003 naming each (in the vRGW's
    /// own paths). Nothing is recorded in the profile: see [`ProxyMount::record`].
    pub async fn send(&self, values: &[ParameterValue]) -> Result<(), Fault> {
        let Some((c, url)) = self.live() else { return Ok(()) };
        let params = SetParams { values: wire(values), parameter_key: String::new() };
        let refused: Vec<WireFault> = within(self.deadlines.change, call(&c, &proxy_api::TRY_SET, params))
            .await
            .map_err(|e| self.fault_of(&url, e))?;
        if refused.is_empty() {
            return Ok(());
        }
        Err(Fault {
            code: FaultCode::InvalidArguments,
            string: format!("the vRGW refused {} of {} values; nothing was changed", refused.len(), values.len()),
            set_parameter_values_faults: refused.into_iter().map(ParameterFault::from).collect(),
        })
    }

    /// The profile becomes `factory` (the vRGW's defaults); a proxy that has the profile now is
    /// asked to restore its own factory configuration, and gets the new profile at the next
    /// [`ProxyMount::sync`]. A proxy that does not answer in time fails it, nothing changed.
    pub fn factory_reset(&self, factory: Tree) -> Result<(), Fault> {
        if let Some((client, url)) = self.live() {
            self.call(&client, &proxy_api::FACTORY_RESET, NoParams, self.deadlines.change)
                .map_err(|e| self.fault_of(&url, e))?;
        }
        let mut g = self.lock();
        g.profile = factory;
        g.profile.track_changes();
        g.replaced = true;
        g.synced = false;
        Ok(())
    }

    /// Records values the profile validated (and the proxy, if any, applied).
    pub fn record(&self, values: &[ParameterValue]) {
        self.lock().profile.apply(values.iter().map(|p| (p.name.clone(), p.value.clone())).collect());
    }

    /// The profile's values of these parameters: what undoes a set of them.
    pub fn previous(&self, values: &[ParameterValue]) -> Vec<ParameterValue> {
        let g = self.lock();
        values.iter().filter_map(|p| Some(ParameterValue::new(p.name.clone(), g.profile.value(&p.name)?))).collect()
    }

    fn live(&self) -> Option<(xmlrpc::Client, String)> {
        let g = self.lock();
        match (g.synced, &g.client, &g.target) {
            (true, Some(c), Some(t)) => Some((c.clone(), t.url.clone())),
            _ => None,
        }
    }
}

/// `fut`, given up on after `deadline` (a [`xmlrpc::Error::Timeout`]).
async fn within<R>(
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<R, xmlrpc::Error>>,
) -> Result<R, xmlrpc::Error> {
    tokio::time::timeout(deadline, fut).await.unwrap_or(Err(xmlrpc::Error::Timeout(deadline)))
}

impl ProxyMount {
    /// The fault of a failed call, after noting a missed deadline ([`ProxyMount::failed`]).
    fn fault_of(&self, url: &str, e: xmlrpc::Error) -> Fault {
        self.failed(url, &e);
        fault_of(url, e)
    }
}

/// Whether the proxy at `url` (`http://IP:PORT/...`) accepts a TCP connection within `deadline`;
/// true when the URL is not of that form (the call then decides).
fn answers_quickly(url: &str, deadline: Duration) -> bool {
    let Some(addr) = socket_addr(url) else { return true };
    on_link(addr.ip()) && std::net::TcpStream::connect_timeout(&addr, deadline).is_ok()
}

fn socket_addr(url: &str) -> Option<std::net::SocketAddr> {
    url.strip_prefix("http://").and_then(|r| r.split('/').next()).and_then(|hp| hp.parse().ok())
}

/// Whether `ip` is on one of this host's own networks (a route without a gateway in the main
/// table, `/proc/net/route`, read at most every 10 s) or loopback. A vRGW's management NIC is a
/// port of the host's management bridge, so its proxy is always on-link: an address behind a
/// router is a misconfiguration (a management network the host has no interface on), and the
/// agent sends it nothing, rather than letting the default route carry its calls off the host
/// (logged once).
fn on_link(ip: std::net::IpAddr) -> bool {
    static ROUTES: std::sync::Mutex<Option<(Instant, Routes)>> = std::sync::Mutex::new(None);
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let std::net::IpAddr::V4(v4) = ip else { return ip.is_loopback() };
    if v4.is_loopback() {
        return true;
    }
    let a = u32::from(v4);
    let mut g = ROUTES.lock().unwrap_or_else(|e| e.into_inner());
    if g.as_ref().is_none_or(|(at, _)| at.elapsed() > Duration::from_secs(10)) {
        let table = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        *g = Some((Instant::now(), on_link_routes(&table)));
    }
    let found = g.as_ref().is_some_and(|(_, routes)| routes.iter().any(|(net, mask)| a & mask == *net));
    if !found && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            address = %ip,
            "a vRGW's proxy address is on none of this host's networks (no interface has an address there): \
             its proxies are not called (check management_network and the management bridge's address)"
        );
    }
    found
}

/// On-link IPv4 networks: (network, mask) in host order.
type Routes = Vec<(u32, u32)>;

/// The on-link IPv4 routes of a `/proc/net/route` table: (network, mask) in host order, for
/// each route that is up, has no gateway and is not a reject (unreachable, prohibit) route.
fn on_link_routes(table: &str) -> Routes {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    const RTF_REJECT: u32 = 0x200;
    let hex = |f: &str| u32::from_str_radix(f, 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, gateway, flags, mask) = (hex(f.get(1)?)?, hex(f.get(2)?)?, hex(f.get(3)?)?, hex(f.get(7)?)?);
            let usable = flags & RTF_UP != 0 && flags & (RTF_GATEWAY | RTF_REJECT) == 0 && gateway == 0;
            // The kernel prints each address as the native word of its network-order bytes.
            usable.then(|| (u32::from_be(dest), u32::from_be(mask)))
        })
        .collect()
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
        if let Some(read) = self.lock().read_ahead.remove(path) {
            return read;
        }
        match self.live() {
            Some((c, url)) => {
                let list = self
                    .call(&c, &proxy_api::GET, Paths(vec![path.into()]), self.deadlines.read)
                    .map_err(|e| self.fault_of(&url, e))?;
                values_from(&url, list)
            }
            None => self.lock().profile.get(path),
        }
    }

    fn names(&self, path: &str, next_level: bool) -> Result<Vec<ParameterInfo>, Fault> {
        match self.live() {
            Some((c, url)) => {
                let params = proxy_api::NamesParams { path: path.into(), next_level };
                let list = self
                    .call(&c, &proxy_api::NAMES, params, self.deadlines.read)
                    .map_err(|e| self.fault_of(&url, e))?;
                Ok(list.into_iter().map(ParameterInfo::from).collect())
            }
            None => self.lock().profile.names(path, next_level),
        }
    }

    /// Checked against the profile (the schema); the proxy checks the rest when the values reach
    /// it, in the same call that applies them.
    fn validate_set(&self, values: &[ParameterValue]) -> Result<Vec<ParameterValue>, Vec<ParameterFault>> {
        let coerced = self.lock().profile.validate(values)?;
        Ok(coerced.into_iter().map(|(name, v)| ParameterValue::new(name, v)).collect())
    }

    fn apply_set(&mut self, values: &[ParameterValue]) -> Result<(), Fault> {
        self.rt.block_on(self.send(values))?;
        self.record(values);
        Ok(())
    }

    fn add_object(&mut self, table: &str) -> Result<u32, Fault> {
        // The profile numbers the row; the proxy must agree (it numbers the same way from the
        // same history), else the two would drift: then the proxy's number wins and the profile
        // is re-read at the next sync.
        let n = self.lock().profile.add_object(table)?;
        if let Some((c, url)) = self.live() {
            let params = ObjectParams { path: table.into(), parameter_key: String::new() };
            match self
                .call(&c, &proxy_api::ADD_OBJECT, params, self.deadlines.change)
                .map_err(|e| self.fault_of(&url, e))
            {
                Ok(v) if v == n => {}
                Ok(v) => {
                    tracing::warn!(%url, profile = n, proxy = v, "instance numbers differ; resyncing");
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
            let params = ObjectParams { path: object.into(), parameter_key: String::new() };
            self.call(&c, &proxy_api::DELETE_OBJECT, params, self.deadlines.change)
                .map_err(|e| self.fault_of(&url, e))?;
        }
        self.lock().profile.delete_object(object)
    }
}

/// Applies the mounts' parts of a set plan through their vRGWs' proxies, all at once (the vRGWs
/// are independent: one `try_set` each, in flight together), all or nothing: when one refuses
/// or fails, those that applied their part get their previous values back, and the answer names
/// every refused parameter in the host's paths (or is the first failure's fault). The profiles
/// record the parts once every one applied. `mount_at` finds the mount at a prefix.
pub fn apply_all(
    rt: &tokio::runtime::Handle,
    plan: &SetPlan,
    mount_at: impl Fn(&str) -> Option<ProxyMount>,
) -> Result<(), Fault> {
    let mut parts = Vec::with_capacity(plan.mount_parts().len());
    for part in plan.mount_parts() {
        let m = mount_at(&part.prefix).ok_or_else(|| {
            Fault::with_string(FaultCode::InternalError, format!("no vRGW is mounted at {}", part.prefix))
        })?;
        parts.push((m, part));
    }
    let previous: Vec<Vec<ParameterValue>> = parts.iter().map(|(m, p)| m.previous(&p.values)).collect();
    let results = send_all(rt, parts.iter().map(|(m, p)| (m.clone(), p.values.clone())).collect());
    if results.iter().all(Result::is_ok) {
        for (m, p) in &parts {
            m.record(&p.values);
        }
        return Ok(());
    }
    // Undo what was applied, all at once too.
    let undo: Vec<(ProxyMount, Vec<ParameterValue>)> = parts
        .iter()
        .zip(previous)
        .zip(&results)
        .filter(|(_, r)| r.is_ok())
        .map(|(((m, _), prev), _)| (m.clone(), prev))
        .collect();
    for ((m, _), r) in undo.iter().zip(send_all(rt, undo.clone())) {
        if let Err(f) = r {
            tracing::error!(proxy = ?m, "undoing a set that another vRGW refused: {}", f.string);
        }
    }
    let mut refused = Vec::new();
    let mut first = None;
    for ((_, part), r) in parts.iter().zip(results) {
        match r {
            Ok(()) => {}
            Err(f) if !f.set_parameter_values_faults.is_empty() => {
                refused.extend(f.set_parameter_values_faults.into_iter().map(|mut pf| {
                    pf.parameter_name = part.outer(&pf.parameter_name);
                    pf
                }));
            }
            Err(f) => {
                first.get_or_insert(f);
            }
        }
    }
    Err(match first {
        Some(f) if refused.is_empty() => f,
        _ => plan.refused(refused),
    })
}

/// The values a proxy sent, checked.
fn values_from(url: &str, list: Vec<WireValue>) -> Result<Vec<ParameterValue>, Fault> {
    list.into_iter()
        .map(|w| {
            ParameterValue::try_from(w).map_err(|f| {
                Fault::with_string(FaultCode::InternalError, format!("the proxy at {url} sent a malformed value: {f}"))
            })
        })
        .collect()
}

/// How many reads [`read_all`] keeps in flight at once.
const READS_IN_FLIGHT: usize = 32;

/// Reads each (mount, path) from its vRGW's proxy, many at once, and keeps each answer in its
/// mount for the request being served (its `get` of that path takes it): a GetParameterValues of
/// a host's many vRGWs waits for the slowest proxy rather than for all of them in turn (500
/// proxies one after another took longer than the ACS waits for an answer). Mounts whose proxy
/// does not have the profile yet are left out (they answer from their profiles). What is not
/// taken is dropped by [`forget_reads`].
pub fn read_all(rt: &tokio::runtime::Handle, reads: Vec<(ProxyMount, String)>) {
    let live: Vec<(ProxyMount, String, xmlrpc::Client, String)> = reads
        .into_iter()
        .filter_map(|(m, path)| {
            let (c, url) = m.live()?;
            Some((m, path, c, url))
        })
        .collect();
    if live.len() < 2 {
        return;
    }
    let gate = Arc::new(tokio::sync::Semaphore::new(READS_IN_FLIGHT));
    let tasks: Vec<_> = live
        .into_iter()
        .map(|(m, path, c, url)| {
            let gate = gate.clone();
            rt.spawn(async move {
                let _permit = gate.acquire_owned().await;
                let read = within(m.deadlines.read, call(&c, &proxy_api::GET, Paths(vec![path.clone()])))
                    .await
                    .map_err(|e| m.fault_of(&url, e))
                    .and_then(|list| values_from(&url, list));
                m.lock().read_ahead.insert(path, read);
            })
        })
        .collect();
    rt.block_on(async {
        for t in tasks {
            let _ = t.await;
        }
    });
}

impl ProxyMount {
    /// Whether values read ahead wait to be taken (tests).
    #[cfg(test)]
    pub fn has_read_ahead(&self) -> bool {
        !self.lock().read_ahead.is_empty()
    }
}

/// Drops what [`read_all`] read and the request did not take.
pub fn forget_reads<'a>(mounts: impl IntoIterator<Item = &'a ProxyMount>) {
    for m in mounts {
        m.lock().read_ahead.clear();
    }
}

/// Sends each mount its values, every call in flight at once; the outcomes in order.
fn send_all(rt: &tokio::runtime::Handle, parts: Vec<(ProxyMount, Vec<ParameterValue>)>) -> Vec<Result<(), Fault>> {
    let tasks: Vec<_> = parts.into_iter().map(|(m, values)| rt.spawn(async move { m.send(&values).await })).collect();
    rt.block_on(async {
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await.unwrap_or_else(|e| {
                Err(Fault::with_string(FaultCode::InternalError, format!("a call to a vRGW's proxy failed: {e}")))
            }));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::answers_quickly;

    #[test]
    fn only_on_link_networks_are_called() {
        // A default route through a gateway, an on-link /24, an unreachable /16, a bridge's /16.
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     *\t0000FA0A\t00000000\t0201\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                     tb-mgmt\t0000630A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = super::on_link_routes(table);
        let net = |a: [u8; 4], bits: u32| (u32::from(std::net::Ipv4Addr::from(a)), u32::MAX << (32 - bits));
        assert_eq!(routes, vec![net([192, 0, 2, 0], 24), net([10, 99, 0, 0], 16)]);
        // Loopback always; an address only the default route reaches: never.
        assert!(super::on_link("127.0.0.1".parse().expect("ip")));
        assert!(!super::on_link("203.0.113.7".parse().expect("ip")), "routed off the host: not called");
        assert!(!answers_quickly("http://203.0.113.7:8730/RPC2", super::Deadlines::default().connect));
    }

    #[test]
    fn a_proxy_that_does_not_answer_is_given_up_on_quickly() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/RPC2", l.local_addr().expect("addr"));
        let d = super::Deadlines::default().connect;
        assert!(answers_quickly(&url, d));
        drop(l);
        let t = std::time::Instant::now();
        assert!(!answers_quickly(&url, d));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // Not an address and port: the call decides.
        assert!(answers_quickly("https://name.example/RPC2", d));
    }
}
