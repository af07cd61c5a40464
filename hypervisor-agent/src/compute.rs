//! The compute backend: vRGW domains through libvirt (crate `virt`).
//!
//! Calls are blocking (libvirt's API is). [`Libvirt`] makes them on a thread of its own (the
//! *libvirt thread*, which owns the connection) and waits for each at most its deadline
//! ([`Deadlines`]): a libvirtd that stopped answering costs the caller one deadline, after which
//! every call fails at once with [`ComputeError::NotAnswering`] until the call that hung comes
//! back. The connection sends libvirt keepalives (5 s, 3 missed: libvirt closes it), and a
//! closed connection is opened again before the next call; both are logged.
//!
//! Lifecycle changes are found by polling [`Compute::owned`] and comparing with what the agent
//! expects (see docs/hypervisor-agent.md: the `virt` crate has no safe binding for libvirt's
//! event callbacks, and this workspace forbids `unsafe`).

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use datamodel::virtualization::InstanceStatus;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::ErrorNumber;

use crate::domain::{parse_owner, DomainSpec, Owner, META_NS};

/// A failed compute operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComputeError {
    /// No domain by that name.
    #[error("no domain named {0}")]
    NoDomain(String),
    /// What libvirt said.
    #[error("libvirt: {0}")]
    Libvirt(String),
    /// A container domain on a host whose agent has no LXC connection.
    #[error("this host runs no containers: the agent has no LXC connection (its `lxc` setting)")]
    NoContainers,
    /// libvirt did not answer a call within its deadline; calls fail at once until it answers.
    #[error(
        "libvirt at {uri} is not answering (for {secs} s); host operations that need it are refused until it answers"
    )]
    NotAnswering {
        /// The connection's URI.
        uri: String,
        /// Since when, seconds.
        secs: u64,
    },
}

impl From<virt::error::Error> for ComputeError {
    fn from(e: virt::error::Error) -> Self {
        ComputeError::Libvirt(e.message().to_string())
    }
}

/// Result of a compute operation.
pub type Result<T> = std::result::Result<T, ComputeError>;

/// A domain's state as the agent cares about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomState {
    /// Running.
    Running,
    /// Paused (a pooled instance waits like this).
    Paused,
    /// Defined, not running.
    ShutOff,
    /// Crashed.
    Crashed,
    /// Anything else libvirt reports (starting, shutting down, pm-suspended).
    Other,
}

impl DomState {
    /// The instance `Status` this state shows as; `None` for a domain between two states
    /// (starting, shutting down), which keeps the status it had.
    pub fn status(self) -> Option<InstanceStatus> {
        match self {
            DomState::Running => Some(InstanceStatus::Running),
            DomState::Paused => Some(InstanceStatus::Suspended),
            DomState::ShutOff => Some(InstanceStatus::Stopped),
            DomState::Crashed => Some(InstanceStatus::Error),
            DomState::Other => None,
        }
    }
}

/// Resource use of a running domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// CPU time used, nanoseconds.
    pub cpu_time_ns: u64,
    /// Memory in use, KiB.
    pub memory_kib: u64,
}

/// What [`Compute::poll`] reads of a domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    /// Its state.
    pub state: DomState,
    /// Its resource use, unless it is shut off.
    pub stats: Option<Stats>,
}

/// A domain carrying some agent's ownership mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedDomain {
    /// Domain name.
    pub name: String,
    /// The mark.
    pub owner: Owner,
    /// Its state.
    pub state: DomState,
}

/// What the agent needs from a hypervisor.
pub trait Compute: Send + Sync {
    /// Defines (persistently) a domain, or replaces the definition of one by that name.
    fn define(&self, spec: &DomainSpec) -> Result<()>;
    /// Starts a defined domain.
    fn start(&self, name: &str) -> Result<()>;
    /// Pauses a running domain.
    fn suspend(&self, name: &str) -> Result<()>;
    /// Resumes a paused domain.
    fn resume(&self, name: &str) -> Result<()>;
    /// Powers a domain off at once (nothing to do if it is not running).
    fn stop(&self, name: &str) -> Result<()>;
    /// Removes a domain's definition (nothing to do if there is none); stops it first.
    fn undefine(&self, name: &str) -> Result<()>;
    /// A domain's state; `None` when there is no such domain.
    fn state(&self, name: &str) -> Result<Option<DomState>>;
    /// CPU time and memory of a domain.
    fn stats(&self, name: &str) -> Result<Stats>;
    /// The state of each of these domains and the statistics of those not shut off, in two
    /// calls per domain (a name missing from the answer: no such domain), rather than
    /// [`Compute::state`] and [`Compute::stats`] (four calls per domain, two of them lookups).
    fn poll(&self, names: &[String]) -> Result<HashMap<String, Polled>>;
    /// Every domain's state, from one listing per state (four calls, however many domains there
    /// are, and one more per domain in none of libvirt's three main states): what the agent's
    /// periodic poll reads of all its domains each round. A domain that changes state between
    /// two listings may be in both or in neither.
    fn states(&self) -> Result<HashMap<String, DomState>>;
    /// Every domain carrying `agent`'s mark.
    fn owned(&self, agent: &str) -> Result<Vec<OwnedDomain>>;
    /// The host-side device name of a running domain's NIC with this MAC (the switch port).
    fn port_of(&self, name: &str, mac: &str) -> Result<Option<String>>;
    /// A domain's XML: its persistent definition (`inactive`) or what runs, in the form
    /// migrations use; `None` when there is no such domain.
    fn xml(&self, name: &str, inactive: bool) -> Result<Option<String>>;
    /// The same from another host's hypervisor, reached at `uri` (a migration peer).
    fn peer_xml(&self, uri: &str, name: &str, inactive: bool) -> Result<Option<String>>;
    /// Moves a running domain to the hypervisor at `uri`, live and peer to peer: the domain
    /// arrives as `dest_xml` (same devices; the destination's bridges, names and mark) and is
    /// kept defined there, and undefined here. Runs on a connection of its own (it takes as long
    /// as the copy), so [`Compute::job_progress`] can be asked meanwhile.
    fn migrate_live(&self, name: &str, uri: &str, migrate_uri: &str, dest_xml: &str) -> Result<LiveMigration>;
    /// Per cent done of a domain's running job (a migration), if one runs.
    fn job_progress(&self, name: &str) -> Result<Option<u32>>;
    /// Whether the hypervisor answers, without asking it: an error when a call is known to
    /// hang ([`ComputeError::NotAnswering`]).
    fn answering(&self) -> Result<()> {
        Ok(())
    }
}

/// What a live migration measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveMigration {
    /// The time the guest was paused for the switch-over, ms (libvirt's `downtime`).
    pub downtime_ms: u64,
    /// Time of the whole job, ms.
    pub total_ms: u64,
    /// Memory transferred, bytes.
    pub transferred_bytes: u64,
}

/// How long a libvirt call may take before libvirt counts as not answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// Calls that only read (states, statistics, lists, XML).
    pub read: Duration,
    /// Calls that change something (define, start, suspend, resume, stop, undefine).
    pub change: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines { read: Duration::from_secs(5), change: Duration::from_secs(30) }
    }
}

impl Deadlines {
    /// `change` for changes, and the shorter of it and the default for reads.
    pub fn with_change(change: Duration) -> Deadlines {
        Deadlines { read: change.min(Deadlines::default().read), change }
    }
}

/// Keepalive toward libvirtd: a probe every this many seconds...
const KEEPALIVE_INTERVAL: i32 = 5;
/// ...and the connection closed after this many without an answer.
const KEEPALIVE_COUNT: u32 = 3;

/// A call handed to the libvirt thread.
type Job = Box<dyn FnOnce(&mut Link) + Send>;

/// The connection, owned by the libvirt thread.
struct Link {
    uri: String,
    conn: Option<Connect>,
}

impl Link {
    /// The connection, opened again first when libvirt closed it (keepalive, a restarted
    /// libvirtd).
    fn get(&mut self) -> Result<&Connect> {
        let alive = self.conn.as_ref().map(|c| c.is_alive().unwrap_or(false));
        if alive == Some(false) {
            tracing::warn!(uri = %self.uri, "the connection to libvirt was closed; opening it again");
            if let Some(mut c) = self.conn.take() {
                let _ = c.close();
            }
        }
        if self.conn.is_none() {
            let c = open_with_keepalive(&self.uri)?;
            if alive.is_some() {
                tracing::info!(uri = %self.uri, "reconnected to libvirt");
            }
            self.conn = Some(c);
        }
        self.conn.as_ref().ok_or_else(|| ComputeError::Libvirt("no connection".into()))
    }
}

/// libvirt's own event loop, which keepalives need: registered once per process, before the
/// first connection, and run on a thread of its own.
fn event_loop() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Err(e) = virt::event::event_register_default_impl() {
            tracing::warn!("libvirt's event loop: {}; connections go without keepalive", e.message());
            return;
        }
        let started = std::thread::Builder::new().name("libvirt-events".into()).spawn(|| loop {
            if virt::event::event_run_default_impl().is_err() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        if let Err(e) = started {
            tracing::warn!("libvirt's event loop could not start: {e}");
        }
    });
}

/// Opens `uri` with keepalive on (drivers without it, such as the in-process test driver,
/// need none).
fn open_with_keepalive(uri: &str) -> Result<Connect> {
    event_loop();
    let conn = Connect::open(Some(uri)).map_err(|e| ComputeError::Libvirt(format!("{uri}: {}", e.message())))?;
    if let Err(e) = conn.set_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT) {
        tracing::debug!(uri, "no keepalive: {}", e.message());
    }
    Ok(conn)
}

/// What the libvirt thread is doing, as its callers see it.
#[derive(Default)]
struct Watch {
    /// The call under way: its number, when it started, what it is.
    running: Option<(u64, Instant, &'static str)>,
    /// Whether that call is past its deadline (calls fail at once meanwhile).
    hung: bool,
    /// Numbers calls.
    next: u64,
}

/// libvirt through the `virt` crate: `test:///default` in tests, `qemu:///system` on hosts.
/// Every call runs on the libvirt thread, within its deadline (see the module documentation).
pub struct Libvirt {
    uri: String,
    deadlines: Deadlines,
    tx: Mutex<mpsc::Sender<Job>>,
    watch: Arc<Mutex<Watch>>,
}

impl std::fmt::Debug for Libvirt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libvirt").field("uri", &self.uri).finish()
    }
}

impl Libvirt {
    /// Connects to `uri` with the default deadlines.
    pub fn open(uri: &str) -> Result<Libvirt> {
        Self::open_with(uri, Deadlines::default())
    }

    /// Connects to `uri`; calls are given up on after `deadlines`. The first connection is made
    /// here (an error when it fails), within the deadline of a change.
    pub fn open_with(uri: &str, deadlines: Deadlines) -> Result<Libvirt> {
        // libvirt prints every error to stderr by default; ours go through tracing instead.
        virt::error::clear_error_callback();
        let (tx, rx) = mpsc::channel::<Job>();
        let mut link = Link { uri: uri.to_string(), conn: None };
        std::thread::Builder::new()
            .name("libvirt".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut link);
                }
                if let Some(mut c) = link.conn.take() {
                    let _ = c.close();
                }
            })
            .map_err(|e| ComputeError::Libvirt(format!("starting the libvirt thread: {e}")))?;
        let lv = Libvirt { uri: uri.to_string(), deadlines, tx: Mutex::new(tx), watch: Default::default() };
        lv.call("connecting", deadlines.change, |_| Ok(()))?;
        Ok(lv)
    }

    /// The connection URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn not_answering(&self, since: Instant) -> ComputeError {
        ComputeError::NotAnswering { uri: self.uri.clone(), secs: since.elapsed().as_secs() }
    }

    /// Runs `f` on the libvirt thread and waits for it at most `deadline`.
    fn call<T: Send + 'static>(
        &self,
        op: &'static str,
        deadline: Duration,
        f: impl FnOnce(&Connect) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let id = {
            let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
            if let (true, Some((_, since, _))) = (w.hung, w.running) {
                return Err(self.not_answering(since));
            }
            w.next += 1;
            w.next
        };
        let (reply, answer) = mpsc::channel();
        let watch = self.watch.clone();
        let uri = self.uri.clone();
        let job: Job = Box::new(move |link| {
            let started = Instant::now();
            watch.lock().unwrap_or_else(|e| e.into_inner()).running = Some((id, started, op));
            let r = link.get().and_then(f);
            crate::metrics::libvirt_call(op, started.elapsed().as_secs_f64());
            let mut w = watch.lock().unwrap_or_else(|e| e.into_inner());
            if w.hung {
                let secs = w.running.map_or(0, |(_, t, _)| t.elapsed().as_secs());
                match &r {
                    Ok(_) => tracing::info!(%uri, op, after_secs = secs, "libvirt answers again"),
                    // The keepalive closed the connection, say: the next call opens it again.
                    Err(e) => tracing::warn!(%uri, op, after_secs = secs, "the libvirt call that hung came back: {e}"),
                }
                w.hung = false;
            }
            w.running = None;
            drop(w);
            let _ = reply.send(r);
        });
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| ComputeError::Libvirt("the libvirt thread stopped".into()))?;
        match answer.recv_timeout(deadline) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(ComputeError::Libvirt("the libvirt thread stopped".into()))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let mut w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
                match w.running {
                    // Still on it (or on a call queued before it): libvirt does not answer.
                    Some((_, since, stuck)) => {
                        if !w.hung {
                            tracing::error!(
                                uri = %self.uri, op = stuck, deadline_secs = deadline.as_secs_f32(),
                                "libvirt is not answering; host operations that need it are refused until it does"
                            );
                        }
                        w.hung = true;
                        Err(self.not_answering(since))
                    }
                    // It answered just now (or the call before it just ended and this one has yet
                    // to start): one more deadline, never an unbounded wait.
                    None => {
                        drop(w);
                        answer.recv_timeout(deadline).unwrap_or_else(|_| {
                            Err(ComputeError::NotAnswering { uri: self.uri.clone(), secs: deadline.as_secs() })
                        })
                    }
                }
            }
        }
    }

    fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connect) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.call(op, self.deadlines.read, f)
    }

    fn change<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connect) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.call(op, self.deadlines.change, f)
    }

    fn lookup(conn: &Connect, name: &str) -> Result<Option<Domain>> {
        match Domain::lookup_by_name(conn, name) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.code() == ErrorNumber::NoDomain => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn domain(conn: &Connect, name: &str) -> Result<Domain> {
        Self::lookup(conn, name)?.ok_or_else(|| ComputeError::NoDomain(name.to_string()))
    }
}

/// Runs `f` on a thread of its own and waits for it at most `deadline` (a call to another
/// host's libvirt, whose connection is not the agent's own); `what` names it in the error.
fn within<T: Send + 'static>(
    deadline: Duration,
    what: String,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("libvirt-peer".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| ComputeError::Libvirt(format!("starting a thread: {e}")))?;
    rx.recv_timeout(deadline)
        .unwrap_or_else(|_| Err(ComputeError::Libvirt(format!("{what}: no answer within {} s", deadline.as_secs()))))
}

fn dom_state(code: virt::sys::virDomainState) -> DomState {
    match code {
        virt::sys::VIR_DOMAIN_RUNNING => DomState::Running,
        virt::sys::VIR_DOMAIN_PAUSED => DomState::Paused,
        virt::sys::VIR_DOMAIN_SHUTOFF => DomState::ShutOff,
        virt::sys::VIR_DOMAIN_CRASHED => DomState::Crashed,
        _ => DomState::Other,
    }
}

impl Compute for Libvirt {
    fn define(&self, spec: &DomainSpec) -> Result<()> {
        let spec = spec.clone();
        self.change("define", move |c| {
            let mut xml = spec.to_xml();
            // Redefining keeps the domain's identity: libvirt matches definitions by UUID.
            if let (None, Some(d)) = (&spec.uuid, Self::lookup(c, &spec.name)?) {
                let uuid = d.get_uuid_string()?;
                let name_end = xml.find("</name>").map_or(0, |i| i + "</name>".len());
                xml.insert_str(name_end, &format!("<uuid>{uuid}</uuid>"));
            }
            Domain::define_xml(c, &xml).map(|_| ()).map_err(Into::into)
        })
    }

    fn start(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.change("start", move |c| Self::domain(c, &name)?.create().map(|_| ()).map_err(Into::into))
    }

    fn suspend(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.change("suspend", move |c| Self::domain(c, &name)?.suspend().map(|_| ()).map_err(Into::into))
    }

    fn resume(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.change("resume", move |c| Self::domain(c, &name)?.resume().map(|_| ()).map_err(Into::into))
    }

    fn stop(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.change("stop", move |c| {
            let d = Self::domain(c, &name)?;
            if d.is_active()? {
                d.destroy()?;
            }
            Ok(())
        })
    }

    fn undefine(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.change("undefine", move |c| {
            let Some(d) = Self::lookup(c, &name)? else { return Ok(()) };
            if d.is_active()? {
                d.destroy()?;
            }
            d.undefine()?;
            Ok(())
        })
    }

    fn state(&self, name: &str) -> Result<Option<DomState>> {
        let name = name.to_string();
        self.read("state", move |c| match Self::lookup(c, &name)? {
            Some(d) => Ok(Some(dom_state(d.get_state()?.0))),
            None => Ok(None),
        })
    }

    fn stats(&self, name: &str) -> Result<Stats> {
        let name = name.to_string();
        self.read("stats", move |c| {
            let info = Self::domain(c, &name)?.get_info()?;
            Ok(Stats { cpu_time_ns: info.cpu_time, memory_kib: info.memory })
        })
    }

    fn poll(&self, names: &[String]) -> Result<HashMap<String, Polled>> {
        let names = names.to_vec();
        self.read("poll", move |c| {
            let mut out = HashMap::new();
            for name in names {
                let Some(d) = Self::lookup(c, &name)? else { continue };
                let info = match d.get_info() {
                    Ok(info) => info,
                    // Gone since the lookup.
                    Err(e) if e.code() == ErrorNumber::NoDomain => continue,
                    Err(e) => return Err(e.into()),
                };
                let state = dom_state(info.state);
                let stats = (state != DomState::ShutOff)
                    .then_some(Stats { cpu_time_ns: info.cpu_time, memory_kib: info.memory });
                out.insert(name, Polled { state, stats });
            }
            Ok(out)
        })
    }

    fn states(&self) -> Result<HashMap<String, DomState>> {
        use virt::sys::{
            VIR_CONNECT_LIST_DOMAINS_OTHER, VIR_CONNECT_LIST_DOMAINS_PAUSED, VIR_CONNECT_LIST_DOMAINS_RUNNING,
            VIR_CONNECT_LIST_DOMAINS_SHUTOFF,
        };
        self.read("states", |c| {
            let mut out = HashMap::new();
            let listed = [
                (VIR_CONNECT_LIST_DOMAINS_RUNNING, DomState::Running),
                (VIR_CONNECT_LIST_DOMAINS_PAUSED, DomState::Paused),
                (VIR_CONNECT_LIST_DOMAINS_SHUTOFF, DomState::ShutOff),
            ];
            for (flag, state) in listed {
                for d in c.list_all_domains(flag)? {
                    out.insert(d.get_name()?, state);
                }
            }
            // Crashed, starting, shutting down, pm-suspended: asked one by one (rare).
            for d in c.list_all_domains(VIR_CONNECT_LIST_DOMAINS_OTHER)? {
                match d.get_state() {
                    Ok((state, _)) => {
                        out.insert(d.get_name()?, dom_state(state));
                    }
                    Err(e) if e.code() == ErrorNumber::NoDomain => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(out)
        })
    }

    fn owned(&self, agent: &str) -> Result<Vec<OwnedDomain>> {
        let agent = agent.to_string();
        self.read("list", move |c| {
            let mut out = Vec::new();
            for d in c.list_all_domains(0)? {
                let Ok(meta) = d.get_metadata(virt::sys::VIR_DOMAIN_METADATA_ELEMENT as i32, Some(META_NS), 0) else {
                    continue;
                };
                let Some(owner) = parse_owner(&meta) else { continue };
                if owner.agent != agent {
                    continue;
                }
                let state = match d.get_state() {
                    Ok((state, _)) => state,
                    // Gone since the listing (a live migration's source undefined, another
                    // agent's delete): not a domain of this host any more.
                    Err(e) if e.code() == ErrorNumber::NoDomain => continue,
                    Err(e) => return Err(e.into()),
                };
                out.push(OwnedDomain { name: d.get_name()?, owner, state: dom_state(state) });
            }
            out.sort_by_key(|d| d.owner.slot);
            Ok(out)
        })
    }

    fn port_of(&self, name: &str, mac: &str) -> Result<Option<String>> {
        let (name, mac) = (name.to_string(), mac.to_string());
        self.read("xml", move |c| {
            let xml = Self::domain(c, &name)?.get_xml_desc(0)?;
            Ok(target_dev_for_mac(&xml, &mac))
        })
    }

    fn xml(&self, name: &str, inactive: bool) -> Result<Option<String>> {
        let name = name.to_string();
        self.read("xml", move |c| Self::xml_on(c, &name, inactive))
    }

    fn peer_xml(&self, uri: &str, name: &str, inactive: bool) -> Result<Option<String>> {
        let (peer, name) = (uri.to_string(), name.to_string());
        within(self.deadlines.change, uri.to_string(), move || {
            let mut conn = open_with_keepalive(&peer)?;
            let r = Self::xml_on(&conn, &name, inactive);
            let _ = conn.close();
            match r {
                Err(ComputeError::Libvirt(m)) => Err(ComputeError::Libvirt(format!("{peer}: {m}"))),
                other => other,
            }
        })
    }

    fn migrate_live(&self, name: &str, uri: &str, migrate_uri: &str, dest_xml: &str) -> Result<LiveMigration> {
        self.answering()?;
        self.migrate_on_own_connection(name, uri, migrate_uri, dest_xml)
    }

    fn job_progress(&self, name: &str) -> Result<Option<u32>> {
        let name = name.to_string();
        self.read("job progress", move |c| {
            let d = Self::domain(c, &name)?;
            // virDomainGetJobInfo, not GetJobStats: with no job running, libvirt answers GetJobStats
            // with no parameters and a null array, which the `virt` crate (0.4) turns into a Vec
            // from a null pointer; debug builds abort there ("unsafe precondition(s) violated"),
            // which killed the agent when a poll met the end of a live migration.
            let Ok(s) = d.get_job_info() else { return Ok(None) };
            if s.r#type == virt::sys::VIR_DOMAIN_JOB_NONE as i32 {
                return Ok(None);
            }
            match (s.mem_processed, s.mem_total) {
                (Some(p), Some(t)) if t > 0 => Ok(Some(((p.min(t) * 100) / t) as u32)),
                _ => Ok(Some(0)),
            }
        })
    }

    fn answering(&self) -> Result<()> {
        let w = self.watch.lock().unwrap_or_else(|e| e.into_inner());
        match (w.hung, w.running) {
            (true, Some((_, since, _))) => Err(self.not_answering(since)),
            _ => Ok(()),
        }
    }
}

/// Each domain on the libvirt connection of its flavor: VMs on one (QEMU), containers on
/// another (LXC), the host's code unaware of it. A domain is defined where its spec's boot says
/// ([`Boot::Container`](crate::domain::Boot::Container) or not); calls by name go to the connection that holds it (remembered
/// from definitions and [`Compute::owned`], else asked, the containers' connection first);
/// `owned` is both connections' domains. With no containers' connection every call goes to
/// the VMs' and a container spec is refused ([`ComputeError::NoContainers`]). Both may be one
/// connection (libvirt's test driver serves both kinds of domain in tests).
pub struct Routed {
    vms: Arc<dyn Compute>,
    containers: Option<Arc<dyn Compute>>,
    /// Whether each domain seen is a container.
    known: Mutex<std::collections::HashMap<String, bool>>,
}

impl std::fmt::Debug for Routed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routed").field("containers", &self.containers.is_some()).finish()
    }
}

impl Routed {
    /// VMs on `vms`, containers on `containers` (none: this host runs no containers).
    pub fn new(vms: Arc<dyn Compute>, containers: Option<Arc<dyn Compute>>) -> Routed {
        Routed { vms, containers, known: Default::default() }
    }

    fn remember(&self, name: &str, container: bool) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), container);
    }

    fn forget(&self, name: &str) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
    }

    /// Freezes running container `name` before it is powered off: libvirt's LXC driver kills a
    /// frozen container's processes with SIGKILL at once (about 65 ms here), a running one's with
    /// SIGTERM first and SIGKILL 1.6 s later, which its init (busybox's, with its 2 s shutdown)
    /// always outlasts: 1.9 s per container, half an hour for a thousand. Nothing for a VM.
    fn freeze_first(&self, c: &dyn Compute, name: &str) {
        let container =
            self.containers.is_some() && self.known.lock().unwrap_or_else(|e| e.into_inner()).get(name) == Some(&true);
        if container && c.state(name).ok().flatten() == Some(DomState::Running) {
            if let Err(e) = c.suspend(name) {
                tracing::debug!(domain = name, "not frozen before it is stopped: {e}");
            }
        }
    }

    /// The connection that holds domain `name` (the VMs' when neither does).
    fn of(&self, name: &str) -> Result<&dyn Compute> {
        let Some(ct) = &self.containers else { return Ok(&*self.vms) };
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner()).get(name).copied();
        let container = match known {
            Some(c) => c,
            None => {
                let c = ct.state(name)?.is_some();
                if c || self.vms.state(name)?.is_some() {
                    self.remember(name, c);
                }
                c
            }
        };
        Ok(if container { &**ct } else { &*self.vms })
    }
}

impl Routed {
    /// A frozen container's processes stop, not its network namespace: the kernel there still
    /// answers pings and forwards its home's traffic (NAT). So while a container is suspended
    /// the host ends of its NICs are down, and it serves nothing, as a paused VM does. Nothing
    /// to do for a VM, or for an interface that is not on this host (libvirt's test driver).
    fn container_links(&self, c: &dyn Compute, name: &str, up: bool) -> Result<()> {
        if self.containers.is_none() {
            return Ok(());
        }
        let Some(xml) = c.xml(name, false)? else { return Err(ComputeError::NoDomain(name.to_string())) };
        if !is_container_xml(&xml) {
            return Ok(());
        }
        for dev in target_devs(&xml) {
            if !std::path::Path::new("/sys/class/net").join(&dev).exists() {
                continue;
            }
            let out = std::process::Command::new("ip")
                .args(["link", "set", "dev", &dev, if up { "up" } else { "down" }])
                .output()
                .map_err(|e| ComputeError::Libvirt(format!("ip link set {dev}: {e}")))?;
            if !out.status.success() {
                return Err(ComputeError::Libvirt(format!(
                    "ip link set {dev} {}: {}",
                    if up { "up" } else { "down" },
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
        }
        Ok(())
    }
}

impl Routed {
    /// A started container's limit of processes, which libvirt's XML cannot say (see
    /// [`set_pids_limit`]). A failure is logged, not fatal: the vRGW runs, without that limit.
    fn container_limits(&self, c: &dyn Compute, name: &str) {
        if self.containers.is_none() {
            return;
        }
        let xml = match c.xml(name, false) {
            Ok(Some(x)) => x,
            _ => return,
        };
        let (Some(max), true) = (crate::domain::max_processes_of(&xml), xml.contains("type='lxc'")) else { return };
        match set_pids_limit(std::path::Path::new(CGROUP_ROOT), name, max) {
            Ok(moved) => tracing::debug!(domain = name, max, moved, "container's process limit set"),
            Err(e) => tracing::warn!(domain = name, "the container runs without its process limit: {e}"),
        }
    }
}

/// Where the cgroup v1 hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Sets container `name`'s limit of processes in the cgroup v1 hierarchy under `root`: libvirt
/// puts an LXC domain's processes in cgroups of the controllers it manages (cpu, cpuacct,
/// memory, freezer...), not of pids, so the agent makes `pids/vrgw/NAME`, sets its `pids.max`
/// and moves the container's processes there (found in libvirt's cpuacct cgroup of the domain,
/// `machine/lxc-PID-NAME.libvirt-lxc`); what they start later stays there. How many it moved.
fn set_pids_limit(root: &std::path::Path, name: &str, max: u32) -> std::io::Result<usize> {
    use std::io::{Error, ErrorKind};
    let acct = libvirt_cgroup_of(&root.join("cpuacct/machine"), name).ok_or_else(|| {
        Error::new(ErrorKind::NotFound, format!("no cgroup of {name} under {}/cpuacct/machine", root.display()))
    })?;
    let dir = root.join("pids/vrgw").join(name);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("pids.max"), max.to_string())?;
    let mut moved = std::collections::BTreeSet::new();
    // Twice: a process its init started while the first pass ran is moved by the second.
    for _ in 0..2 {
        for pid in std::fs::read_to_string(acct.join("cgroup.procs"))?.lines().map(str::trim) {
            if pid.is_empty() || moved.contains(pid) {
                continue;
            }
            match std::fs::write(dir.join("cgroup.procs"), pid) {
                Ok(()) => {
                    moved.insert(pid.to_string());
                }
                // Gone since it was listed (ESRCH).
                Err(e) if e.raw_os_error() == Some(3) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(moved.len())
}

/// The cgroup libvirt's LXC driver made for domain `name` under `root` (`lxc-PID-NAME.libvirt-lxc`).
fn libvirt_cgroup_of(root: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(root).ok()?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| {
        let Some(f) = p.file_name().and_then(|f| f.to_str()) else { return false };
        f.strip_prefix("lxc-")
            .and_then(|r| r.strip_suffix(".libvirt-lxc"))
            .and_then(|r| r.split_once('-'))
            .is_some_and(|(pid, n)| pid.bytes().all(|b| b.is_ascii_digit()) && n == name)
    })
}

/// Whether a domain XML (libvirt's) is a container's: an init to run, no machine to boot.
fn is_container_xml(xml: &str) -> bool {
    xml.contains(">exe</type>")
}

/// The `<target dev='...'/>` of every interface of a live domain XML.
fn target_devs(xml: &str) -> Vec<String> {
    interfaces(xml).filter_map(target_of).collect()
}

/// The text of each `<interface>` element of a domain XML.
fn interfaces(xml: &str) -> impl Iterator<Item = &str> {
    xml.split("<interface").skip(1).filter_map(|iface| iface.find("</interface>").map(|end| &iface[..end]))
}

/// The `<target dev='...'/>` in an interface's text.
fn target_of(iface: &str) -> Option<String> {
    let at = iface.find("<target dev=")? + "<target dev=".len();
    let q = iface[at..].chars().next()?;
    let rest = &iface[at + 1..];
    Some(rest[..rest.find(q)?].to_string())
}

/// The LXC driver of the libvirtd a `qemu…` URI names (`qemu+tls://h/system` is
/// `lxc+tls://h/system`): where a migration peer keeps its containers.
pub fn lxc_uri_of(uri: &str) -> Option<String> {
    uri.strip_prefix("qemu").map(|rest| format!("lxc{rest}"))
}

impl Compute for Routed {
    fn define(&self, spec: &DomainSpec) -> Result<()> {
        let container = matches!(spec.boot, crate::domain::Boot::Container { .. });
        let target = match (container, &self.containers) {
            (true, None) => return Err(ComputeError::NoContainers),
            (true, Some(ct)) => &**ct,
            (false, _) => &*self.vms,
        };
        target.define(spec)?;
        self.remember(&spec.name, container);
        Ok(())
    }
    fn start(&self, name: &str) -> Result<()> {
        let c = self.of(name)?;
        c.start(name)?;
        self.container_limits(c, name);
        Ok(())
    }
    fn suspend(&self, name: &str) -> Result<()> {
        let c = self.of(name)?;
        c.suspend(name)?;
        self.container_links(c, name, false)
    }
    fn resume(&self, name: &str) -> Result<()> {
        let c = self.of(name)?;
        self.container_links(c, name, true)?;
        c.resume(name)
    }
    fn stop(&self, name: &str) -> Result<()> {
        let c = self.of(name)?;
        self.freeze_first(c, name);
        c.stop(name)
    }
    fn undefine(&self, name: &str) -> Result<()> {
        let c = self.of(name)?;
        self.freeze_first(c, name);
        c.undefine(name)?;
        self.forget(name);
        if self.containers.is_some() {
            // Its process limit's cgroup, if it had one (empty once it stopped).
            let _ = std::fs::remove_dir(std::path::Path::new(CGROUP_ROOT).join("pids/vrgw").join(name));
        }
        Ok(())
    }
    fn state(&self, name: &str) -> Result<Option<DomState>> {
        self.of(name)?.state(name)
    }
    fn stats(&self, name: &str) -> Result<Stats> {
        self.of(name)?.stats(name)
    }
    fn poll(&self, names: &[String]) -> Result<HashMap<String, Polled>> {
        let Some(ct) = self.containers.as_ref().filter(|ct| !Arc::ptr_eq(ct, &self.vms)) else {
            return self.vms.poll(names);
        };
        // Each name asked of its own connection (one that has no such domain costs a lookup).
        let (mut vms, mut cts) = (Vec::new(), Vec::new());
        for name in names {
            match self.of(name) {
                Ok(c) if std::ptr::addr_eq(c, &**ct) => cts.push(name.clone()),
                // Unknown to both, or not answering: the VMs' connection says so.
                _ => vms.push(name.clone()),
            }
        }
        let mut all = self.vms.poll(&vms)?;
        all.extend(ct.poll(&cts)?);
        Ok(all)
    }
    fn states(&self) -> Result<HashMap<String, DomState>> {
        let mut all = self.vms.states()?;
        if let Some(ct) = self.containers.as_ref().filter(|ct| !Arc::ptr_eq(ct, &self.vms)) {
            all.extend(ct.states()?);
        }
        Ok(all)
    }
    fn owned(&self, agent: &str) -> Result<Vec<OwnedDomain>> {
        let mut all = self.vms.owned(agent)?;
        let Some(ct) = &self.containers else { return Ok(all) };
        if Arc::ptr_eq(ct, &self.vms) {
            return Ok(all);
        }
        for d in &all {
            self.remember(&d.name, false);
        }
        let containers = ct.owned(agent)?;
        for d in &containers {
            self.remember(&d.name, true);
        }
        all.extend(containers);
        all.sort_by_key(|d| d.owner.slot);
        Ok(all)
    }
    fn port_of(&self, name: &str, mac: &str) -> Result<Option<String>> {
        self.of(name)?.port_of(name, mac)
    }
    fn xml(&self, name: &str, inactive: bool) -> Result<Option<String>> {
        self.of(name)?.xml(name, inactive)
    }
    fn peer_xml(&self, uri: &str, name: &str, inactive: bool) -> Result<Option<String>> {
        match self.vms.peer_xml(uri, name, inactive)? {
            Some(x) => Ok(Some(x)),
            None => match (&self.containers, lxc_uri_of(uri)) {
                (Some(ct), Some(lxc)) => ct.peer_xml(&lxc, name, inactive),
                _ => Ok(None),
            },
        }
    }
    fn migrate_live(&self, name: &str, uri: &str, migrate_uri: &str, dest_xml: &str) -> Result<LiveMigration> {
        self.of(name)?.migrate_live(name, uri, migrate_uri, dest_xml)
    }
    fn job_progress(&self, name: &str) -> Result<Option<u32>> {
        self.of(name)?.job_progress(name)
    }
    fn answering(&self) -> Result<()> {
        self.vms.answering()?;
        match &self.containers {
            Some(ct) => ct.answering(),
            None => Ok(()),
        }
    }
}

fn xml_flags(inactive: bool) -> u32 {
    let mut f = virt::sys::VIR_DOMAIN_XML_SECURE | virt::sys::VIR_DOMAIN_XML_MIGRATABLE;
    if inactive {
        f |= virt::sys::VIR_DOMAIN_XML_INACTIVE;
    }
    f
}

impl Libvirt {
    fn xml_on(conn: &Connect, name: &str, inactive: bool) -> Result<Option<String>> {
        match Self::lookup(conn, name)? {
            Some(d) => Ok(Some(d.get_xml_desc(xml_flags(inactive))?)),
            None => Ok(None),
        }
    }
}

impl Libvirt {
    /// The migration takes as long as the copy: it runs on the caller's thread (a live job's
    /// own) over a connection of its own, with keepalive, not on the libvirt thread.
    fn migrate_on_own_connection(
        &self,
        name: &str,
        uri: &str,
        migrate_uri: &str,
        dest_xml: &str,
    ) -> Result<LiveMigration> {
        let mut conn = open_with_keepalive(&self.uri)?;
        let result = (|| {
            let d = Self::domain(&conn, name)?;
            // libvirt wants the source's name in the XML and renames the domain at the
            // destination (its persistent definition is the migrated one, renamed).
            let dest_name = crate::domain::name_of(dest_xml);
            let xml = match &dest_name {
                Some(dn) => dest_xml.replacen(&format!("<name>{dn}</name>"), &format!("<name>{name}</name>"), 1),
                None => dest_xml.to_string(),
            };
            let params = virt::domain::MigrateParameters {
                uri: (!migrate_uri.is_empty()).then(|| migrate_uri.to_string()),
                dest_xml: Some(xml),
                dest_name: dest_name.clone(),
                ..Default::default()
            };
            let flags = virt::sys::VIR_MIGRATE_LIVE
                | virt::sys::VIR_MIGRATE_PEER2PEER
                | virt::sys::VIR_MIGRATE_PERSIST_DEST
                | virt::sys::VIR_MIGRATE_UNDEFINE_SOURCE;
            let dest_name = dest_name.unwrap_or_else(|| name.to_string());
            d.migrate_to_uri3(Some(uri), params, flags)?;
            Ok(completed_job(uri, &dest_name))
        })();
        let _ = conn.close();
        result
    }
}

/// The completed job's figures, kept by the destination's libvirt, through `virsh domjobinfo
/// --completed --rawstats`: the `virt` crate (0.4) reads them with `get_job_stats`, which builds
/// a Vec from the null pointer libvirt answers when it has none (a debug-build abort, undefined
/// behaviour in release). No figures (zeros) when virsh is missing or libvirt kept none.
fn completed_job(uri: &str, name: &str) -> LiveMigration {
    let out = std::process::Command::new("virsh")
        .args(["-c", uri, "domjobinfo", name, "--completed", "--rawstats"])
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => parse_rawstats(&String::from_utf8_lossy(&o.stdout)),
        Ok(o) => {
            tracing::warn!(
                uri,
                domain = name,
                "no figures of the migration: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            LiveMigration::default()
        }
        Err(e) => {
            tracing::warn!(uri, domain = name, "no figures of the migration: virsh: {e}");
            LiveMigration::default()
        }
    }
}

/// `downtime`, `time_elapsed` and `memory_processed` of virsh's `--rawstats` lines
/// (`name: value`).
fn parse_rawstats(text: &str) -> LiveMigration {
    let mut m = LiveMigration::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let Ok(v) = v.trim().parse::<u64>() else { continue };
        match k.trim() {
            "downtime" => m.downtime_ms = v,
            "time_elapsed" => m.total_ms = v,
            "memory_processed" => m.transferred_bytes = v,
            _ => {}
        }
    }
    m
}

/// In a live domain XML, the `<target dev='...'/>` of the interface whose MAC is `mac`.
fn target_dev_for_mac(xml: &str, mac: &str) -> Option<String> {
    interfaces(xml)
        .find(|iface| iface.contains(&format!("address='{mac}'")) || iface.contains(&format!("address=\"{mac}\"")))
        .and_then(target_of)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{mac, Boot, Nic};

    fn spec(agent: &str, slot: u32) -> DomainSpec {
        DomainSpec {
            name: format!("{agent}-slot-{slot}"),
            kind: "test".into(),
            memory_kib: 98304,
            vcpus: 1,
            boot: Boot::Kernel { kernel: "/k".into(), initrd: "/i".into(), cmdline: "quiet".into() },
            mgmt: Nic {
                bridge: "vrgw-mgmt".into(),
                openvswitch: false,
                vlan: None,
                mac: mac([0, 2], slot, 0),
                target: None,
            },
            lan: Nic {
                bridge: "vrgw-s100".into(),
                openvswitch: true,
                vlan: Some(7),
                mac: mac([0, 2], slot, 1),
                target: None,
            },
            wan: Nic {
                bridge: "vrgw-wan".into(),
                openvswitch: false,
                vlan: None,
                mac: mac([0, 2], slot, 2),
                target: None,
            },
            mgmt_address: "10.99.0.5/24".into(),
            secret: "5ec7e7".into(),
            secret_file: "/nonexistent/secret".into(),
            owner: Owner { agent: agent.into(), slot },
            tb_cache_mib: None,
            console_log: None,
            uuid: None,
            profile: None,
            max_processes: None,
        }
    }

    #[test]
    fn lifecycle_on_libvirts_test_driver() {
        let lv = Libvirt::open("test:///default").expect("test driver");
        let agent = "compute-lifecycle";
        let s = spec(agent, 1);
        assert_eq!(lv.state(&s.name).expect("state"), None);
        lv.define(&s).expect("define");
        assert_eq!(lv.state(&s.name).expect("state"), Some(DomState::ShutOff));
        lv.start(&s.name).expect("start");
        assert_eq!(lv.state(&s.name).expect("state"), Some(DomState::Running));
        lv.suspend(&s.name).expect("suspend");
        assert_eq!(lv.state(&s.name).expect("state"), Some(DomState::Paused));
        lv.resume(&s.name).expect("resume");
        assert_eq!(lv.state(&s.name).expect("state"), Some(DomState::Running));
        // Redefining a running domain (new VLAN tag) keeps it running under the same identity.
        let mut moved = s.clone();
        moved.lan.vlan = Some(9);
        lv.define(&moved).expect("redefine");
        assert_eq!(lv.state(&s.name).expect("state"), Some(DomState::Running));
        let st = lv.stats(&s.name).expect("stats");
        assert_eq!(st.memory_kib, 98304);
        let owned = lv.owned(agent).expect("owned");
        assert_eq!(owned.len(), 1);
        assert_eq!((owned[0].owner.slot, owned[0].state), (1, DomState::Running));
        assert!(lv.owned("some-other-agent").expect("owned").iter().all(|d| d.name != s.name));
        lv.stop(&s.name).expect("stop");
        assert_eq!(lv.state(&s.name).expect("state"), Some(DomState::ShutOff));
        lv.stop(&s.name).expect("stopping a stopped domain is not an error");
        lv.undefine(&s.name).expect("undefine");
        assert_eq!(lv.state(&s.name).expect("state"), None);
        lv.undefine(&s.name).expect("undefining twice is not an error");
        assert_eq!(lv.start(&s.name), Err(ComputeError::NoDomain(s.name.clone())));
        assert!(matches!(lv.suspend(&s.name), Err(ComputeError::NoDomain(_))));
    }

    #[test]
    fn one_poll_reads_the_named_domains_states_and_statistics() {
        let lv = Libvirt::open("test:///default").expect("test driver");
        let agent = "compute-poll";
        let (up, off, asleep) = (spec(agent, 1), spec(agent, 2), spec(agent, 3));
        for s in [&up, &off, &asleep] {
            lv.define(s).expect("define");
        }
        lv.start(&up.name).expect("start");
        lv.start(&asleep.name).expect("start");
        lv.suspend(&asleep.name).expect("suspend");
        let names: Vec<String> =
            [&up.name, &off.name, &asleep.name, &"compute-poll-none".to_string()].into_iter().cloned().collect();
        let polled = lv.poll(&names).expect("poll");
        let running = polled[&up.name];
        assert_eq!(running.state, DomState::Running);
        assert_eq!(running.stats.map(|s| s.memory_kib), Some(98304));
        assert_eq!(polled[&off.name], Polled { state: DomState::ShutOff, stats: None });
        assert_eq!(polled[&asleep.name].state, DomState::Paused);
        assert!(polled[&asleep.name].stats.is_some());
        assert!(!polled.contains_key("compute-poll-none"), "no such domain: not in the answer");
        // Only the names asked for (the test driver's own domain "test" runs too).
        assert_eq!(polled.len(), 3);
        // Every domain's state from the listings, the driver's own among them.
        let states = lv.states().expect("states");
        let ours: Vec<Option<&DomState>> = [&up.name, &off.name, &asleep.name].map(|n| states.get(n)).to_vec();
        assert_eq!(ours, vec![Some(&DomState::Running), Some(&DomState::ShutOff), Some(&DomState::Paused)]);
        assert_eq!(states.get("test"), Some(&DomState::Running));
        assert!(!states.contains_key("compute-poll-none"));
        for s in [&up, &off, &asleep] {
            lv.undefine(&s.name).expect("undefine");
        }
    }

    #[test]
    fn libvirt_refusals_are_reported() {
        let lv = Libvirt::open("test:///default").expect("test driver");
        let s = spec("compute-refusals", 1);
        lv.define(&s).expect("define");
        // Suspending a domain that is not running is refused by libvirt, with its reason.
        match lv.suspend(&s.name) {
            Err(ComputeError::Libvirt(m)) => assert!(!m.is_empty()),
            other => panic!("expected a libvirt error, got {other:?}"),
        }
        lv.undefine(&s.name).expect("undefine");
        assert!(Libvirt::open("no-such-driver:///x").is_err());
    }

    #[test]
    fn a_call_past_its_deadline_fails_and_so_do_the_next_until_it_comes_back() {
        let lv = Libvirt::open_with("test:///default", Deadlines::with_change(Duration::from_millis(50)))
            .expect("test driver");
        assert_eq!(lv.deadlines.read, Duration::from_millis(50), "reads never wait longer than changes");
        // A call that hangs until the test lets it go (as one does on a stopped libvirtd).
        let (release, hold) = mpsc::channel::<()>();
        let hung = lv.call("hanging", lv.deadlines.change, move |_| {
            let _ = hold.recv();
            Ok(())
        });
        let uri = "test:///default".to_string();
        assert!(matches!(hung, Err(ComputeError::NotAnswering { uri: ref u, .. }) if *u == uri), "{hung:?}");
        assert!(matches!(lv.answering(), Err(ComputeError::NotAnswering { .. })));
        // Every call now fails at once, and says why; none is queued behind the one that hangs.
        let e = lv.state("test").expect_err("refused while libvirt hangs");
        assert!(e.to_string().contains("is not answering"), "{e}");
        assert!(matches!(lv.define(&spec("compute-hang", 1)), Err(ComputeError::NotAnswering { .. })));
        // It comes back: calls go through again.
        release.send(()).expect("release");
        while lv.answering().is_err() {
            std::thread::yield_now();
        }
        assert_eq!(lv.state("test").expect("state"), Some(DomState::Running));
        assert_eq!(lv.state("compute-hang").expect("state"), None, "the refused define did nothing");
    }

    #[test]
    fn a_migration_without_figures_gives_zeros() {
        // libvirt keeps no completed job here (the test driver has no job statistics at all):
        // the figures are zeros, and nothing reads a null array.
        assert_eq!(completed_job("test:///default", "test"), LiveMigration::default());
        assert_eq!(completed_job("test:///default", "no-such-domain"), LiveMigration::default());
        // virsh's --rawstats lines, as libvirt 9 prints them after a migration.
        let text = "Job type: 3\n\noperation: 5\ntime_elapsed: 2345\ntime_elapsed_net: 2340\n\
                    downtime: 41\ndowntime_net: 40\nmemory_processed: 123456789\nmemory_total: 2147483648\n\
                    disk_total: 0\nbogus line\nmemory_bps: x\n";
        let m = parse_rawstats(text);
        assert_eq!((m.downtime_ms, m.total_ms, m.transferred_bytes), (41, 2345, 123_456_789));
    }

    #[test]
    fn routed_sends_each_domain_to_the_connection_of_its_flavor() {
        // Two hypervisors that share nothing: libvirt's test driver from a file of our own.
        let node = std::env::temp_dir().join(format!("routed-node-{}.xml", std::process::id()));
        std::fs::write(&node, "<node/>").expect("node file");
        let uri = |_: ()| format!("test://{}", node.display());
        let vms: Arc<dyn Compute> = Arc::new(Libvirt::open(&uri(())).expect("vms"));
        let cts: Arc<dyn Compute> = Arc::new(Libvirt::open(&uri(())).expect("containers"));
        let agent = "compute-routed";
        let vm = spec(agent, 1);
        let mut ct = spec(agent, 2);
        ct.boot = Boot::Container { root: "/nonexistent/root".into() };
        // No containers' connection: a container is refused, a VM defined.
        let alone = Routed::new(vms.clone(), None);
        assert_eq!(alone.define(&ct), Err(ComputeError::NoContainers));
        assert_eq!(alone.state(&ct.name).expect("state"), None, "nothing defined anywhere");
        let routed = Routed::new(vms.clone(), Some(cts.clone()));
        routed.define(&vm).expect("vm");
        routed.define(&ct).expect("container");
        assert_eq!(vms.state(&vm.name).expect("state"), Some(DomState::ShutOff));
        assert_eq!(vms.state(&ct.name).expect("state"), None, "the container is not on the VMs' connection");
        assert_eq!(cts.state(&ct.name).expect("state"), Some(DomState::ShutOff));
        // By name, each to its own, also for a router that has not seen them defined (a restart).
        let fresh = Routed::new(vms.clone(), Some(cts.clone()));
        fresh.start(&ct.name).expect("start the container");
        fresh.start(&vm.name).expect("start the vm");
        fresh.suspend(&ct.name).expect("freeze");
        assert_eq!(cts.state(&ct.name).expect("state"), Some(DomState::Paused));
        assert_eq!(vms.state(&vm.name).expect("state"), Some(DomState::Running));
        let owned: Vec<(String, DomState)> =
            fresh.owned(agent).expect("owned").into_iter().map(|d| (d.name, d.state)).collect();
        assert_eq!(owned, vec![(vm.name.clone(), DomState::Running), (ct.name.clone(), DomState::Paused)]);
        let polled = fresh.poll(&[vm.name.clone(), ct.name.clone()]).expect("poll both connections");
        let states: Vec<(String, DomState)> =
            [&vm.name, &ct.name].into_iter().map(|n| (n.clone(), polled[n].state)).collect();
        assert_eq!(states, owned, "one poll reads each from its own connection");
        let listed = fresh.states().expect("states of both connections");
        assert_eq!(
            (listed.get(&vm.name), listed.get(&ct.name)),
            (Some(&DomState::Running), Some(&DomState::Paused)),
            "both connections listed"
        );
        assert!(fresh.xml(&ct.name, true).expect("xml").expect("defined").contains(">exe</type>"));
        fresh.undefine(&ct.name).expect("undefine");
        assert_eq!(cts.state(&ct.name).expect("state"), None);
        assert_eq!(fresh.state(&ct.name).expect("state"), None, "gone from both");
        fresh.undefine(&vm.name).expect("undefine");
        let _ = std::fs::remove_file(&node);
        assert_eq!(
            lxc_uri_of("qemu+tls://10.98.0.1/system?pkipath=/p").as_deref(),
            Some("lxc+tls://10.98.0.1/system?pkipath=/p")
        );
        assert_eq!(lxc_uri_of("test:///default"), None);
    }

    #[test]
    fn finds_the_switch_port_by_mac() {
        let xml = "<domain><devices><interface type='bridge'><mac address='02:00:00:00:01:00'/>\
                   <target dev='vnet4'/></interface><interface type='bridge'>\
                   <mac address='02:00:00:00:01:01'/><target dev='vnet5'/></interface></devices></domain>";
        assert_eq!(target_dev_for_mac(xml, "02:00:00:00:01:01").as_deref(), Some("vnet5"));
        assert_eq!(target_dev_for_mac(xml, "02:00:00:00:01:09"), None);
        assert_eq!(target_devs(xml), vec!["vnet4".to_string(), "vnet5".to_string()]);
        assert!(!is_container_xml(xml));
        // A container's pids cgroup by its exact name (not one whose name ends the same).
        let root = std::env::temp_dir().join(format!("pids-cgroups-{}", std::process::id()));
        for d in [
            "lxc-41-xhost-1.libvirt-lxc",
            "lxc-42-host-11.libvirt-lxc",
            "lxc-43-host-1.libvirt-lxc",
            "qemu-1-host-1.libvirt-qemu",
        ] {
            std::fs::create_dir_all(root.join(d)).expect("dir");
        }
        assert_eq!(libvirt_cgroup_of(&root, "host-1"), Some(root.join("lxc-43-host-1.libvirt-lxc")));
        assert_eq!(libvirt_cgroup_of(&root, "host-2"), None);
        let _ = std::fs::remove_dir_all(&root);
        // The limit, and the container's processes moved under it (here plain files stand for
        // the hierarchy's control files, so the last one written is what the file holds).
        let root = std::env::temp_dir().join(format!("cgroups-{}", std::process::id()));
        let acct = root.join("cpuacct/machine/lxc-40-host-1.libvirt-lxc");
        std::fs::create_dir_all(&acct).expect("dir");
        std::fs::write(acct.join("cgroup.procs"), "4001\n4002\n").expect("procs");
        assert_eq!(set_pids_limit(&root, "host-1", 256).expect("limit"), 2);
        let pids = root.join("pids/vrgw/host-1");
        assert_eq!(std::fs::read_to_string(pids.join("pids.max")).expect("max"), "256");
        assert_eq!(std::fs::read_to_string(pids.join("cgroup.procs")).expect("procs"), "4002");
        assert!(set_pids_limit(&root, "host-2", 256).is_err(), "no cgroup of that container: an error, not a guess");
        let _ = std::fs::remove_dir_all(&root);
    }
}
