//! A simulated CPE: a TR-181 host data model, or a TR-098 residential gateway's ([`SimModel`]),
//! behind the `cwmp` crate's CPE session, talking HTTP to an ACS through `http_shell::cpe::Link`
//! (cookies, Digest, else Basic), answering connection requests (Digest), and rebooting or
//! resetting on request, carrying out file transfers (Download, Upload, ScheduleDownload with
//! its queue) and deployment-unit changes ([`transfers`]) and reporting them in a later session.
//! Tests drive the ACS with it; `cwmp-sim` runs many for load.
//!
//! The device's clock is the system's plus an offset a test moves on ([`SimCpe::advance_clock`]):
//! a ScheduleDownload's window or an Upload's delay is reached at the first session on or after
//! it, so a test plays hours of a device's life without waiting.

pub mod transfers;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cwmp::session::{CpeConfig, CpeEvent, CpeSession, Transmit};
use cwmp::{Body, DateTime, DeviceId, Event, Inform, ParameterValue, Value};
use datamodel::{DataModel, Schema, Tree};
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use crate::auth::Verifier;
use crate::endpoint::now;
pub use transfers::DeploymentUnit;
use transfers::{Transfers, UploadKind, Work};

/// Lines the device's log keeps (what a "Vendor Log File" upload sends).
const LOG_LINES: usize = 200;

/// The connection-request credentials, below the model's root object.
const CR_USER: &str = "ManagementServer.ConnectionRequestUsername";
const CR_PASS: &str = "ManagementServer.ConnectionRequestPassword";

/// The data model a simulated device serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimModel {
    /// A TR-181 (`Device.`) virtualization host: [`Schema::host`].
    #[default]
    Tr181Host,
    /// A TR-098 (`InternetGatewayDevice.`) residential gateway as a real one reports itself:
    /// [`Schema::tr098`] with [`datamodel::factory::tr098_gateway`]'s values.
    Tr098Gateway,
    /// A physical TR-181 (`Device.`) residential gateway with the parameters a vRGW has (DHCP
    /// pool, Wi-Fi SSID and passphrase, firewall level): [`Schema::gateway`] with
    /// [`datamodel::factory::tr181_gateway`]'s values. Like a real gateway it reboots and informs
    /// at once after a Reboot or a FactoryReset (the others wait for the test's next session).
    Tr181Gateway,
}

impl SimModel {
    /// The root object (`Device.` or `InternetGatewayDevice.`).
    pub fn root(self) -> &'static str {
        match self {
            SimModel::Tr181Host | SimModel::Tr181Gateway => "Device.",
            SimModel::Tr098Gateway => datamodel::schema::TR098_ROOT,
        }
    }

    /// The parameters an Inform carries.
    fn inform_names(self) -> &'static [&'static str] {
        match self {
            SimModel::Tr181Host | SimModel::Tr181Gateway => &[
                "Device.DeviceInfo.SoftwareVersion",
                "Device.ManagementServer.ConnectionRequestURL",
                "Device.ManagementServer.ParameterKey",
            ],
            SimModel::Tr098Gateway => datamodel::factory::TR098_INFORM,
        }
    }
}

impl std::str::FromStr for SimModel {
    type Err = String;
    /// `tr181`, `tr098` or `tr181-gateway`.
    fn from_str(s: &str) -> Result<SimModel, String> {
        match s {
            "tr181" => Ok(SimModel::Tr181Host),
            "tr098" => Ok(SimModel::Tr098Gateway),
            "tr181-gateway" => Ok(SimModel::Tr181Gateway),
            other => Err(format!("unknown device model {other:?} (tr181, tr098 or tr181-gateway)")),
        }
    }
}

/// The factory tree of a `model` device: identity, connection-request URL and factory
/// credentials (the ACS replaces them at BOOTSTRAP and BOOT), and for a gateway the ACS it
/// reports to. Errors: a value its data model refuses (a serial number over 64 characters).
fn factory_tree(
    model: SimModel,
    serial: &str,
    acs: (&str, &str, &str),
    cr_url: &str,
    cr_creds: (&str, &str),
) -> Result<Tree, String> {
    let root = model.root();
    let s = |v: &str| Value::String(v.to_string());
    let (mut tree, own) = match model {
        SimModel::Tr181Host => {
            let mut tree = Tree::new(Schema::host());
            // A host has always been lenient here: a value that does not fit is left unset.
            let _ = tree.set_internal("Device.DeviceInfo.SoftwareVersion", s(env!("CARGO_PKG_VERSION")));
            let _ = tree.set_internal("Device.DeviceInfo.SerialNumber", s(serial));
            (tree, Vec::new())
        }
        SimModel::Tr098Gateway | SimModel::Tr181Gateway => {
            let tree = match model {
                SimModel::Tr098Gateway => datamodel::factory::tr098_gateway(serial, env!("CARGO_PKG_VERSION")),
                _ => datamodel::factory::tr181_gateway(serial, env!("CARGO_PKG_VERSION")),
            }
            .map_err(|f| format!("serial number {serial:?}: {}", f.string))?;
            let ms = format!("{root}ManagementServer.");
            let own = vec![
                (format!("{ms}URL"), s(acs.0)),
                (format!("{ms}Username"), s(acs.1)),
                (format!("{ms}Password"), s(acs.2)),
            ];
            (tree, own)
        }
    };
    let values = [
        (format!("{root}ManagementServer.ConnectionRequestURL"), s(cr_url)),
        (format!("{root}{CR_USER}"), s(cr_creds.0)),
        (format!("{root}{CR_PASS}"), s(cr_creds.1)),
    ];
    for (path, value) in values.into_iter().chain(own) {
        match tree.set_internal(&path, value) {
            Err(f) if model != SimModel::Tr181Host => return Err(format!("{path}: {}", f.string)),
            _ => {}
        }
    }
    Ok(tree)
}

/// One simulated device.
pub struct SimCpe {
    /// Serial number (also in the device id).
    pub serial: String,
    /// The data model it serves.
    pub model_kind: SimModel,
    /// Where its sessions go (a load balancer may send it elsewhere: [`SimCpe::set_acs_url`]).
    acs_url: std::sync::Mutex<String>,
    acs_user: String,
    acs_pass: String,
    cr_url: String,
    /// The factory connection-request credentials (back after a factory reset).
    cr_factory: (String, String),
    model: std::sync::Mutex<DataModel>,
    /// Events for the next Inform (e.g. "M Reboot" after a reboot).
    next_events: std::sync::Mutex<Vec<Event>>,
    /// Requests for the next session (TransferComplete after a download).
    next_requests: std::sync::Mutex<Vec<Body>>,
    /// Bytes of the last file downloaded.
    pub downloaded: std::sync::Mutex<Vec<u8>>,
    /// Queued transfers, pending deployment-unit changes, installed units.
    transfers: std::sync::Mutex<Transfers>,
    /// Seconds the device's clock is ahead of the system's.
    clock_offset: AtomicI64,
    /// The device's log, newest last.
    log: std::sync::Mutex<VecDeque<String>>,
    session: Mutex<()>,
    verifier: Verifier,
    /// Sessions completed.
    pub sessions: std::sync::atomic::AtomicU64,
    /// SetParameterValues requests applied.
    pub sets_applied: std::sync::atomic::AtomicU64,
    /// The ACS's requests since [`SimCpe::take_requests`], each as [`describe`] tells it.
    requests: std::sync::Mutex<Vec<String>>,
}

/// An ACS request in a line: the method and what it names (`GetParameterValues A B`,
/// `GetParameterNames A. true`, `SetParameterValues A=1 B=x`, `AddObject T.`, ...).
pub fn describe(req: &Body) -> String {
    match req {
        Body::GetParameterValues(r) => format!("GetParameterValues {}", r.parameter_names.join(" ")),
        Body::GetParameterNames(r) => format!("GetParameterNames {} {}", r.parameter_path, r.next_level),
        Body::SetParameterValues(r) => {
            let list: Vec<String> =
                r.parameter_list.iter().map(|p| format!("{}={}", p.name, p.value.to_lexical())).collect();
            format!("SetParameterValues {}", list.join(" "))
        }
        Body::AddObject(r) => format!("AddObject {}", r.object_name),
        Body::DeleteObject(r) => format!("DeleteObject {}", r.object_name),
        other => other.method_name().to_string(),
    }
}

/// What a session took.
#[derive(Debug, Clone, Copy)]
pub struct SessionStats {
    /// Wall-clock time of the session.
    pub duration: Duration,
    /// ACS requests answered in it.
    pub requests_served: usize,
}

impl SimCpe {
    /// Where its next session goes.
    pub fn acs_url(&self) -> String {
        self.acs_url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends its next sessions to `url` (as a load balancer sends a CPE to another ACS node).
    pub fn set_acs_url(&self, url: &str) {
        *self.acs_url.lock().unwrap_or_else(|e| e.into_inner()) = url.to_string();
    }

    /// A TR-181 host with serial `serial`, whose connection requests arrive at `cr_addr`.
    pub fn new(
        serial: &str,
        acs_url: &str,
        acs_user: &str,
        acs_pass: &str,
        cr_addr: SocketAddr,
        cr_creds: (&str, &str),
    ) -> Arc<SimCpe> {
        let cr_url = format!("http://{cr_addr}/cr/{serial}");
        // The TR-181 tree takes any serial number (one that does not fit is left unset).
        let tree = factory_tree(SimModel::Tr181Host, serial, (acs_url, acs_user, acs_pass), &cr_url, cr_creds)
            .unwrap_or_else(|_| Tree::new(Schema::host()));
        SimCpe::from_tree(SimModel::Tr181Host, tree, serial, (acs_url, acs_user, acs_pass), cr_url, cr_creds)
    }

    /// A TR-098 gateway ([`SimModel::Tr098Gateway`]) with serial `serial`, whose connection
    /// requests arrive at `cr_addr`. Errors: a serial number, ACS URL or credential its data
    /// model refuses (longer than the parameter allows), naming the parameter.
    pub fn new_tr098(
        serial: &str,
        acs_url: &str,
        acs_user: &str,
        acs_pass: &str,
        cr_addr: SocketAddr,
        cr_creds: (&str, &str),
    ) -> Result<Arc<SimCpe>, String> {
        SimCpe::of_model(SimModel::Tr098Gateway, serial, acs_url, acs_user, acs_pass, cr_addr, cr_creds)
    }

    /// A device of `model`: [`SimCpe::new`] or [`SimCpe::new_tr098`].
    pub fn of_model(
        model: SimModel,
        serial: &str,
        acs_url: &str,
        acs_user: &str,
        acs_pass: &str,
        cr_addr: SocketAddr,
        cr_creds: (&str, &str),
    ) -> Result<Arc<SimCpe>, String> {
        if model == SimModel::Tr181Host {
            return Ok(SimCpe::new(serial, acs_url, acs_user, acs_pass, cr_addr, cr_creds));
        }
        let cr_url = format!("http://{cr_addr}/cr/{serial}");
        let tree = factory_tree(model, serial, (acs_url, acs_user, acs_pass), &cr_url, cr_creds)?;
        Ok(SimCpe::from_tree(model, tree, serial, (acs_url, acs_user, acs_pass), cr_url, cr_creds))
    }

    fn from_tree(
        model: SimModel,
        tree: Tree,
        serial: &str,
        acs: (&str, &str, &str),
        cr_url: String,
        cr_creds: (&str, &str),
    ) -> Arc<SimCpe> {
        let mut secret = [0u8; 32];
        secret[..serial.len().min(32)].copy_from_slice(&serial.as_bytes()[..serial.len().min(32)]);
        Arc::new(SimCpe {
            serial: serial.into(),
            model_kind: model,
            acs_url: std::sync::Mutex::new(acs.0.into()),
            acs_user: acs.1.into(),
            acs_pass: acs.2.into(),
            cr_url,
            cr_factory: (cr_creds.0.into(), cr_creds.1.into()),
            model: std::sync::Mutex::new(DataModel::new(tree)),
            next_events: std::sync::Mutex::new(vec![Event::new(cwmp::event::BOOTSTRAP), Event::new(cwmp::event::BOOT)]),
            next_requests: std::sync::Mutex::new(Vec::new()),
            downloaded: std::sync::Mutex::new(Vec::new()),
            transfers: std::sync::Mutex::new(Transfers::new(model.root())),
            clock_offset: AtomicI64::new(0),
            log: std::sync::Mutex::new(VecDeque::new()),
            session: Mutex::new(()),
            verifier: Verifier::new("sim-cpe", secret),
            sessions: std::sync::atomic::AtomicU64::new(0),
            sets_applied: std::sync::atomic::AtomicU64::new(0),
            requests: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The identity the ACS knows this device by.
    pub fn device_id(&self) -> String {
        DeviceId {
            manufacturer: "vRGW Project".into(),
            oui: "00A0B1".into(),
            product_class: "SimCPE".into(),
            serial_number: self.serial.clone(),
        }
        .key()
    }

    /// Credentials the ACS must use for connection requests: the device's
    /// `ManagementServer.ConnectionRequestUsername/Password` now.
    pub fn cr_credentials(&self) -> (String, String) {
        let root = self.model_kind.root();
        self.with_model(|m| {
            let s = |p: &str| match m.root().value(p) {
                Some(Value::String(s)) => s,
                _ => String::new(),
            };
            (s(&format!("{root}{CR_USER}")), s(&format!("{root}{CR_PASS}")))
        })
    }

    /// Carries out a data-model request as the device would.
    pub fn apply(&self, req: &Body) -> Body {
        if matches!(req, Body::SetParameterValues(_)) {
            self.sets_applied.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        datamodel::rpc::serve(&mut self.model.lock().unwrap_or_else(|e| e.into_inner()), req)
    }

    /// The Inform this device would send now, with `events`.
    pub fn inform_envelope(&self, events: &[&str]) -> String {
        let inform = self.inform(events.iter().map(|e| Event::new(e)).collect());
        cwmp::Envelope::new(cwmp::CwmpNs::V1_2, Some("sim-1".into()), Body::Inform(inform)).encode()
    }

    /// Write access to the data model (tests shape the device with it).
    pub fn with_model_mut<R>(&self, f: impl FnOnce(&mut DataModel) -> R) -> R {
        f(&mut self.model.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Read access to the data model.
    pub fn with_model<R>(&self, f: impl FnOnce(&DataModel) -> R) -> R {
        f(&self.model.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The device's clock, in Unix seconds: the system's, moved on by [`SimCpe::advance_clock`].
    pub fn clock(&self) -> i64 {
        now() + self.clock_offset.load(Ordering::Relaxed)
    }

    /// Moves the device's clock `secs` seconds on: a ScheduleDownload's window or an Upload's
    /// delay that much nearer. The next session carries out what is then due.
    pub fn advance_clock(&self, secs: i64) {
        self.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// The deployment units installed (ChangeDUState).
    pub fn deployment_units(&self) -> Vec<DeploymentUnit> {
        self.transfers().units().to_vec()
    }

    /// The ACS's requests since the last call, each as [`describe`] tells it.
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The device's log, oldest line first (what a "2 Vendor Log File" upload sends).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    fn transfers(&self) -> std::sync::MutexGuard<'_, Transfers> {
        self.transfers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A line in the device's log, stamped with its clock.
    fn note(&self, line: String) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() == LOG_LINES {
            log.pop_front();
        }
        log.push_back(format!("{} {}: {line}", DateTime::from_unix(self.clock()).as_str(), self.serial));
    }

    /// Queues a report for the next session: its Inform's event (once), the method's own event
    /// with its CommandKey, and the request.
    fn report(&self, event: &str, method: Event, request: Body) {
        let mut events = self.next_events.lock().unwrap_or_else(|e| e.into_inner());
        if !events.iter().any(|e| e.code == event) {
            events.push(Event::new(event));
        }
        events.push(method);
        self.next_requests.lock().unwrap_or_else(|e| e.into_inner()).push(request);
    }

    /// What an Upload of `file_type` sends: the device's log, or its configuration (every
    /// parameter value as GetParameterValues shows it, passwords empty, `name=value` a line).
    fn upload_file(&self, file_type: &str) -> Vec<u8> {
        if transfers::upload_kind(file_type) == Some(UploadKind::Log) {
            return self.log_lines().iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
        }
        let root = self.model_kind.root();
        let mut text =
            format!("# {root} configuration of {} at {}\n", self.serial, DateTime::from_unix(self.clock()).as_str());
        for p in values(self, root) {
            text.push_str(&format!("{}={}\n", p.name, p.value));
        }
        text.into_bytes()
    }

    /// Carries out what is due on the device's clock (uploads, scheduled downloads,
    /// deployment-unit changes) and queues their reports for the next Inform.
    async fn carry_out_due(&self) {
        let work = self.transfers().take_due(self.clock());
        for w in work {
            match w {
                Work::Upload(u) => {
                    let start = self.clock();
                    let file = self.upload_file(&u.file_type);
                    let fault = match transfers::put(&u.url, &u.username, &u.password, file).await {
                        Ok(()) => cwmp::TransferFault::none(),
                        Err(f) => f,
                    };
                    self.note(format!(
                        "upload of {:?} to {}: {}",
                        u.file_type,
                        transfers::shown(&u.url),
                        outcome(&fault)
                    ));
                    let tc = cwmp::TransferComplete {
                        command_key: u.command_key.clone(),
                        fault,
                        start_time: DateTime::from_unix(start),
                        complete_time: DateTime::from_unix(self.clock()),
                    };
                    let method = Event { code: "M Upload".into(), command_key: u.command_key };
                    self.report(cwmp::event::TRANSFER_COMPLETE, method, Body::TransferComplete(tc));
                }
                Work::Download(d) => {
                    let start = self.clock();
                    let fault = match transfers::get(&d.url, &d.username, &d.password).await {
                        Ok(bytes) => {
                            *self.downloaded.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
                            cwmp::TransferFault::none()
                        }
                        Err(f) => f,
                    };
                    self.note(format!("scheduled download of {}: {}", transfers::shown(&d.url), outcome(&fault)));
                    let tc = cwmp::TransferComplete {
                        command_key: d.command_key.clone(),
                        fault,
                        start_time: DateTime::from_unix(start),
                        complete_time: DateTime::from_unix(self.clock()),
                    };
                    let method = Event { code: "M ScheduleDownload".into(), command_key: d.command_key };
                    self.report(cwmp::event::TRANSFER_COMPLETE, method, Body::TransferComplete(tc));
                }
                Work::Missed(d) => {
                    let fault = cwmp::TransferFault::from_fault(
                        cwmp::FaultCode::DownloadWindowMissed,
                        "every time window passed without a session to start the download in",
                    );
                    self.note(format!("scheduled download of {}: {}", transfers::shown(&d.url), outcome(&fault)));
                    let tc = cwmp::TransferComplete {
                        command_key: d.command_key.clone(),
                        fault,
                        start_time: DateTime::unknown(),
                        complete_time: DateTime::unknown(),
                    };
                    let method = Event { code: "M ScheduleDownload".into(), command_key: d.command_key };
                    self.report(cwmp::event::TRANSFER_COMPLETE, method, Body::TransferComplete(tc));
                }
                Work::DuChange(c) => {
                    let mut results = Vec::new();
                    for op in &c.operations {
                        let start = self.clock();
                        let checked = self.transfers().check(op);
                        let fetched = match checked {
                            Err(fault) => Some(Err(fault)),
                            Ok(Some((url, user, pass))) => Some(transfers::get(&url, &user, &pass).await),
                            Ok(None) => None,
                        };
                        let result = self.transfers().apply(op, fetched, start, self.clock());
                        self.note(format!(
                            "deployment unit {} {}: {}",
                            result.uuid,
                            result.current_state,
                            outcome(&result.fault)
                        ));
                        results.push(result);
                    }
                    let method = Event { code: "M ChangeDUState".into(), command_key: c.command_key.clone() };
                    let done = cwmp::DUStateChangeComplete { results, command_key: c.command_key };
                    self.report("11 DU STATE CHANGE COMPLETE", method, Body::DUStateChangeComplete(done));
                }
            }
        }
    }

    fn inform(&self, events: Vec<Event>) -> Inform {
        let model = self.model.lock().unwrap_or_else(|e| e.into_inner());
        let names = self.model_kind.inform_names();
        let parameter_list =
            names.iter().filter_map(|n| model.get_parameter_values(&[n.to_string()]).ok()).flatten().collect();
        Inform {
            device_id: DeviceId {
                manufacturer: "vRGW Project".into(),
                oui: "00A0B1".into(),
                product_class: "SimCPE".into(),
                serial_number: self.serial.clone(),
            },
            events,
            max_envelopes: 1,
            current_time: DateTime::from_unix(self.clock()),
            retry_count: 0,
            parameter_list,
        }
    }

    /// Runs one session with `extra` events added to the pending ones.
    ///
    /// What the session accepted that is due at once (a download, an upload, a window open
    /// already, units to change) is carried out after it and reported in a new session right
    /// away, before this returns (and before another session of this device can start).
    pub async fn session(&self, extra: &[&str]) -> Result<SessionStats, String> {
        let _one = self.session.lock().await;
        let (stats, mut follow_up) = self.one_session(extra).await?;
        while follow_up {
            follow_up = self.one_session(&[]).await?.1;
        }
        Ok(stats)
    }

    /// Waits until no session of this device runs (one a connection request started, with its
    /// follow-ups).
    pub async fn idle(&self) {
        drop(self.session.lock().await);
    }

    /// One session (the caller holds `self.session`); whether another must follow.
    async fn one_session(&self, extra: &[&str]) -> Result<(SessionStats, bool), String> {
        let start = Instant::now();
        self.carry_out_due().await;
        let mut events = std::mem::take(&mut *self.next_events.lock().unwrap_or_else(|e| e.into_inner()));
        events.extend(extra.iter().map(|e| Event::new(e)));
        if events.is_empty() {
            events.push(Event::new(cwmp::event::PERIODIC));
        }
        let own = std::mem::take(&mut *self.next_requests.lock().unwrap_or_else(|e| e.into_inner()));
        // Put back when the session fails: a CPE reports until the ACS has taken it.
        let put_back = |events: Vec<Event>, own: Vec<Body>| {
            *self.next_events.lock().unwrap_or_else(|e| e.into_inner()) = events;
            let mut requests = self.next_requests.lock().unwrap_or_else(|e| e.into_inner());
            let later = std::mem::replace(&mut *requests, own);
            requests.extend(later);
        };
        let mut s = CpeSession::new(CpeConfig::default(), self.inform(events.clone()), own.clone(), Instant::now());
        let mut follow_up = false;
        let url = self.acs_url();
        let link = http_shell::cpe::Link::open(
            None,
            &url,
            None,
            &self.acs_user,
            &self.acs_pass,
            http_shell::cpe::Basic::Fallback,
        )
        .await;
        let mut link = match link {
            Ok(l) => l,
            Err(e) => {
                put_back(events, own);
                return Err(format!("ACS unreachable: {e}"));
            }
        };
        let mut served = 0;
        let mut after: Vec<Event> = Vec::new();
        let mut reset = false;
        while let Some(tx) = s.poll_transmit() {
            let body = match tx {
                Transmit::Envelope(x) => x,
                Transmit::Empty => String::new(),
            };
            let (status, reply) = match link.post(&body).await {
                Ok(r) => r,
                Err(e) => {
                    put_back(events, own);
                    return Err(format!("ACS unreachable: {e}"));
                }
            };
            if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::UNAUTHORIZED {
                put_back(events, own);
                return Err(format!("ACS answered {status}"));
            }
            s.handle_response(status.as_u16(), &reply, Instant::now());
            while let Some(ev) = s.poll_event() {
                match ev {
                    CpeEvent::Request(req) => {
                        served += 1;
                        self.requests.lock().unwrap_or_else(|e| e.into_inner()).push(describe(&req));
                        let resp = match &req {
                            Body::Reboot(r) => {
                                after.push(Event::new(cwmp::event::BOOT));
                                after.push(Event { code: "M Reboot".into(), command_key: r.command_key.clone() });
                                follow_up |= self.model_kind == SimModel::Tr181Gateway;
                                Body::RebootResponse(cwmp::RebootResponse {})
                            }
                            Body::Download(d) => {
                                let started = now();
                                let fault = match transfers::get(&d.url, &d.username, &d.password).await {
                                    Ok(bytes) => {
                                        *self.downloaded.lock().unwrap_or_else(|e| e.into_inner()) = bytes;
                                        cwmp::TransferFault::none()
                                    }
                                    Err(f) => f,
                                };
                                self.note(format!("download of {}: {}", transfers::shown(&d.url), outcome(&fault)));
                                after.push(Event::new(cwmp::event::TRANSFER_COMPLETE));
                                after.push(Event { code: "M Download".into(), command_key: d.command_key.clone() });
                                self.next_requests.lock().unwrap_or_else(|e| e.into_inner()).push(
                                    Body::TransferComplete(cwmp::TransferComplete {
                                        command_key: d.command_key.clone(),
                                        fault,
                                        start_time: DateTime::from_unix(started),
                                        complete_time: DateTime::from_unix(now()),
                                    }),
                                );
                                follow_up = true;
                                Body::DownloadResponse(cwmp::DownloadResponse {
                                    status: 1,
                                    start_time: DateTime::unknown(),
                                    complete_time: DateTime::unknown(),
                                })
                            }
                            Body::ScheduleInform(si) => {
                                // Its next session informs with them (the delay is the test's
                                // to play: it runs that session).
                                after.push(Event::new("3 SCHEDULED"));
                                after.push(Event {
                                    code: "M ScheduleInform".into(),
                                    command_key: si.command_key.clone(),
                                });
                                Body::ScheduleInformResponse(cwmp::ScheduleInformResponse {})
                            }
                            Body::Upload(u) => self.transfers().upload(u, self.clock()),
                            Body::ScheduleDownload(d) => self.transfers().schedule_download(d, self.clock()),
                            Body::CancelTransfer(c) => self.transfers().cancel(&c.command_key),
                            Body::GetQueuedTransfers(_) => self.transfers().queued(),
                            Body::GetAllQueuedTransfers(_) => self.transfers().all_queued(),
                            Body::ChangeDUState(c) => self.transfers().change_du_state(c),
                            Body::FactoryReset(_) => {
                                reset = true;
                                follow_up |= self.model_kind == SimModel::Tr181Gateway;
                                Body::FactoryResetResponse(cwmp::FactoryResetResponse {})
                            }
                            other => self.apply(other),
                        };
                        let _ = s.respond(resp, Instant::now());
                    }
                    CpeEvent::Failed(e) => {
                        put_back(events, own);
                        return Err(e.to_string());
                    }
                    _ => {}
                }
            }
        }
        if reset {
            // Back to the factory tree, built from the values this device was built from (so it
            // succeeds as it did then).
            let url = self.acs_url();
            let acs = (url.as_str(), self.acs_user.as_str(), self.acs_pass.as_str());
            let creds = (self.cr_factory.0.as_str(), self.cr_factory.1.as_str());
            if let Ok(tree) = factory_tree(self.model_kind, &self.serial, acs, &self.cr_url, creds) {
                *self.model.lock().unwrap_or_else(|e| e.into_inner()) = DataModel::new(tree);
            }
            after = vec![Event::new(cwmp::event::BOOTSTRAP), Event::new(cwmp::event::BOOT)];
        }
        self.next_events.lock().unwrap_or_else(|e| e.into_inner()).extend(after);
        self.sessions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let codes: Vec<String> = events.iter().map(|e| e.code.clone()).collect();
        self.note(format!("session: Inform {}; ACS requests answered: {served}", codes.join(", ")));
        follow_up |= self.transfers().has_due(self.clock());
        Ok((SessionStats { duration: start.elapsed(), requests_served: served }, follow_up))
    }

    /// Serves connection requests (Digest-authenticated GETs) for the devices in `sims`; each
    /// accepted request starts a session with "6 CONNECTION REQUEST".
    pub async fn serve_connection_requests(sims: Vec<Arc<SimCpe>>, listener: TcpListener) -> std::io::Result<()> {
        let sims = Arc::new(sims);
        let limits = http_shell::Limits { max_body: 64 * 1024, ..http_shell::Limits::default() };
        http_shell::serve(
            listener,
            None,
            limits,
            move |req, _peer| {
                let sims = sims.clone();
                async move { connection_request(&sims, req) }
            },
            std::future::pending(),
        )
        .await
    }
}

/// Answers a connection request for one of `sims`: 404 for an unknown device, 401 with a
/// Digest challenge without valid credentials, else 204 and a session with "6 CONNECTION
/// REQUEST" started.
fn connection_request(sims: &[Arc<SimCpe>], req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let serial = req.uri().path().rsplit('/').next().unwrap_or("").to_string();
    let Some(sim) = sims.iter().find(|s| s.serial == serial).cloned() else {
        let mut r = Response::new(Full::new(Bytes::from_static(b"no such device\n")));
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let header = req.headers().get(header::AUTHORIZATION).and_then(|h| h.to_str().ok());
    let (user, pass) = sim.cr_credentials();
    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let attempt = crate::auth::Attempt { method: "GET", uri, header, tls: false };
    if sim.verifier.check_password(attempt, |u| (u == user).then(|| pass.clone()), now()).is_err() {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        for c in sim.verifier.challenges(now()).into_iter().filter(|c| c.starts_with("Digest")) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        return r;
    }
    tokio::spawn(async move {
        if let Err(e) = sim.session(&[cwmp::event::CONNECTION_REQUEST]).await {
            tracing::warn!(serial = %sim.serial, "session after a connection request failed: {e}");
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// A transfer's outcome as the log says it.
fn outcome(fault: &cwmp::TransferFault) -> String {
    if fault.code == 0 {
        "done".into()
    } else {
        format!("fault {} {}", fault.code, fault.string)
    }
}

/// The parameter values a device's data model holds under `path`.
pub fn values(sim: &SimCpe, path: &str) -> Vec<ParameterValue> {
    sim.with_model(|m| m.get_parameter_values(&[path.to_string()]).unwrap_or_default())
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Sessions completed.
    pub sessions: u64,
    /// Sessions that failed.
    pub failures: u64,
    /// Length of the run.
    pub seconds: f64,
    /// Median session time.
    pub p50: Duration,
    /// 99th-percentile session time.
    pub p99: Duration,
}

impl LoadReport {
    /// Completed sessions per second.
    pub fn per_second(&self) -> f64 {
        self.sessions as f64 / self.seconds.max(1e-9)
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sessions in {:.1} s: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, {} failed",
            self.sessions,
            self.seconds,
            self.per_second(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.failures
        )
    }
}

/// Runs sessions back to back on every device for `duration`; `before` runs before each
/// session (to queue a task, say).
pub async fn load(
    sims: Vec<Arc<SimCpe>>,
    duration: Duration,
    before: Arc<dyn Fn(&SimCpe) + Send + Sync>,
) -> LoadReport {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for sim in sims {
        let before = before.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut failed) = (Vec::new(), 0u64);
            while Instant::now() < deadline {
                before(&sim);
                let t = Instant::now();
                match sim.session(&[]).await {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(_) => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            (lat, failed)
        }));
    }
    let (mut all, mut failures) = (Vec::new(), 0);
    for t in tasks {
        if let Ok((l, f)) = t.await {
            all.extend(l);
            failures += f;
        }
    }
    all.sort();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    LoadReport {
        sessions: all.len() as u64,
        failures,
        seconds: start.elapsed().as_secs_f64(),
        p50: pick(0.5),
        p99: pick(0.99),
    }
}

#[cfg(test)]
mod tests {
    use super::{SimCpe, SimModel};

    fn addr() -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], 7548))
    }

    #[test]
    fn a_tr098_gateway_informs_as_one_and_refuses_what_does_not_fit() {
        let sim = SimCpe::new_tr098("gw-1", "http://127.0.0.1:9/", "cpe", "pw", addr(), ("cr", "cr-pw")).expect("gw");
        let inform = sim.inform_envelope(&["0 BOOTSTRAP"]);
        for name in datamodel::factory::TR098_INFORM {
            assert!(inform.contains(&format!("<Name>{name}</Name>")), "{name} in {inform}");
        }
        assert!(inform.contains("http://127.0.0.1:7548/cr/gw-1"), "{inform}");
        assert_eq!(sim.cr_credentials(), ("cr".to_string(), "cr-pw".to_string()));
        let err = SimCpe::new_tr098(&"x".repeat(65), "http://127.0.0.1:9/", "cpe", "pw", addr(), ("cr", "cr-pw"))
            .err()
            .expect("too long a serial number");
        assert!(err.contains("SerialNumber: 65 characters, at most 64 allowed"), "{err}");
        assert_eq!("tr098".parse(), Ok(SimModel::Tr098Gateway));
        assert_eq!("tr181".parse(), Ok(SimModel::Tr181Host));
        assert_eq!("tr181-gateway".parse(), Ok(SimModel::Tr181Gateway));
        assert_eq!(
            "tr-098".parse::<SimModel>(),
            Err("unknown device model \"tr-098\" (tr181, tr098 or tr181-gateway)".into())
        );
    }
}
