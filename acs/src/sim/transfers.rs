//! The simulated CPE's file transfers and deployment units, carried out as TR-069 Amendment 6
//! (CWMP 1.4) has a CPE do it: an Upload or a ScheduleDownload is accepted into a queue (which
//! GetQueuedTransfers, GetAllQueuedTransfers and CancelTransfer see), carried out when due (an
//! upload after its DelaySeconds, a scheduled download in the first of its time windows open at
//! a session, a fault 9020 once they have all passed) and reported with TransferComplete; the
//! operations of a ChangeDUState are carried out after the session, each in turn, and reported
//! with one DUStateChangeComplete holding one result per operation.
//!
//! [`Transfers`] is the state, fed the device's clock and never doing I/O; [`get`] and [`put`]
//! are the HTTP transfers, answering a file server's 401 with Digest (or Basic where offered).

use bytes::Bytes;
use cwmp::{Body, DateTime, DuOperation, Fault, FaultCode, OpResult, TransferFault};
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};

/// At most this many transfers queued (a GetQueuedTransfersResponse lists up to 16); one more
/// is refused with 9004.
pub const QUEUE_LIMIT: usize = 16;
/// The largest file or package the device takes.
const MAX_FILE: usize = 16 * 1024 * 1024;

/// An accepted transfer the device has not carried out yet.
#[derive(Debug, Clone)]
enum Job {
    Upload(cwmp::Upload),
    Download(cwmp::ScheduleDownload),
}

#[derive(Debug, Clone)]
struct Queued {
    job: Job,
    /// The device's clock when the request came (windows and delays count from it).
    received: i64,
}

impl Queued {
    fn command_key(&self) -> &str {
        match &self.job {
            Job::Upload(u) => &u.command_key,
            Job::Download(d) => &d.command_key,
        }
    }

    /// What is to be done with it at `now`, if anything.
    fn due(&self, now: i64) -> Option<Work> {
        match &self.job {
            Job::Upload(u) => (now >= self.received + i64::from(u.delay_seconds)).then(|| Work::Upload(u.clone())),
            Job::Download(d) => {
                for w in &d.time_window_list {
                    if now < self.received + i64::from(w.window_start) {
                        return None;
                    }
                    if now < self.received + i64::from(w.window_end) {
                        return Some(Work::Download(d.clone()));
                    }
                }
                Some(Work::Missed(d.clone()))
            }
        }
    }
}

/// What the device is to carry out now.
#[derive(Debug, Clone)]
pub enum Work {
    /// PUT the file to the Upload's URL.
    Upload(cwmp::Upload),
    /// Fetch the scheduled download (a window of it is open).
    Download(cwmp::ScheduleDownload),
    /// Every window of the scheduled download has passed: report 9020.
    Missed(cwmp::ScheduleDownload),
    /// Carry out a ChangeDUState's operations.
    DuChange(cwmp::ChangeDUState),
}

/// A deployment unit installed on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentUnit {
    /// Its UUID.
    pub uuid: String,
    /// The package's `Name:`.
    pub name: String,
    /// The package's `Version:`.
    pub version: String,
    /// Where it was installed (or last updated) from.
    pub url: String,
    /// The execution environment it runs in (a path).
    pub execution_env_ref: String,
    /// Its instance number under `SoftwareModules.DeploymentUnit.` (and of its one execution
    /// unit under `SoftwareModules.ExecutionUnit.`).
    pub instance: u32,
}

/// The device's queue of transfers, its pending deployment-unit changes and its units.
#[derive(Debug)]
pub struct Transfers {
    /// `Device.` or `InternetGatewayDevice.`: where its SoftwareModules paths start.
    root: &'static str,
    queue: Vec<Queued>,
    du_changes: Vec<cwmp::ChangeDUState>,
    units: Vec<DeploymentUnit>,
    next_instance: u32,
    uuids_made: u32,
}

/// A package's source: URL, user name and password.
pub type Source = (String, String, String);

fn invalid(why: impl Into<String>) -> Body {
    Body::Fault(Fault::with_string(FaultCode::InvalidArguments, why))
}

/// `http://` URLs only (the simulated device has no TLS client).
fn http_url(url: &str) -> bool {
    url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// A URL as faults and logs show it: without its query (a signed URL's signature stays out).
pub fn shown(url: &str) -> &str {
    url.split_once('?').map_or(url, |(u, _)| u)
}

/// Whether `uuid` has the form RFC 4122 writes (`8-4-4-4-12` hex digits).
pub fn uuid_format(uuid: &str) -> bool {
    let b = uuid.as_bytes();
    b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() })
}

/// A package: `Name:` and `Version:` lines (an opkg/dpkg control file), an optional `UUID:`.
struct Package {
    name: String,
    version: String,
    uuid: Option<String>,
}

fn package(bytes: &[u8]) -> Result<Package, TransferFault> {
    let corrupt = |why: &str| TransferFault::from_fault(FaultCode::FileCorrupted, why);
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt("the package is not a control file (not UTF-8)"))?;
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name) && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    };
    match (field("Name").or_else(|| field("Package")), field("Version")) {
        (Some(name), Some(version)) => Ok(Package { name, version, uuid: field("UUID") }),
        _ => Err(corrupt("the package has no Name: and Version: lines")),
    }
}

impl Transfers {
    /// Nothing queued, no units, for a device whose model starts at `root`.
    pub fn new(root: &'static str) -> Transfers {
        Transfers {
            root,
            queue: Vec::new(),
            du_changes: Vec::new(),
            units: Vec::new(),
            next_instance: 1,
            uuids_made: 0,
        }
    }

    /// The execution environment units go to by default (enabled).
    pub fn default_exec_env(&self) -> String {
        format!("{}SoftwareModules.ExecEnv.1", self.root)
    }

    /// A second execution environment, present but disabled (installing there: 9024).
    pub fn disabled_exec_env(&self) -> String {
        format!("{}SoftwareModules.ExecEnv.2", self.root)
    }

    /// The units installed.
    pub fn units(&self) -> &[DeploymentUnit] {
        &self.units
    }

    /// An Upload: queued (UploadResponse, status 1: not yet done), or refused (9003 for a
    /// FileType the device cannot upload, 9013 for a URL that is not `http://`, 9004 when the
    /// queue is full).
    pub fn upload(&mut self, u: &cwmp::Upload, now: i64) -> Body {
        if upload_kind(&u.file_type).is_none() {
            return invalid(format!(
                "FileType {:?}: the device uploads 1/3 Vendor Configuration File and 2/4 Vendor Log File",
                u.file_type
            ));
        }
        if let Some(refused) = self.refuse(&u.url) {
            return refused;
        }
        self.queue.push(Queued { job: Job::Upload(u.clone()), received: now });
        Body::UploadResponse(cwmp::UploadResponse {
            status: 1,
            start_time: DateTime::unknown(),
            complete_time: DateTime::unknown(),
        })
    }

    /// A ScheduleDownload: queued (ScheduleDownloadResponse), or refused (9003 for time windows
    /// that are not one or two, in order, each ending after it starts, in a known mode; 9013,
    /// 9004 as for an upload).
    pub fn schedule_download(&mut self, d: &cwmp::ScheduleDownload, now: i64) -> Body {
        let w = &d.time_window_list;
        if w.is_empty() || w.len() > 2 {
            return invalid(format!("{} time windows: one or two are allowed", w.len()));
        }
        if let Some(bad) = w.iter().find(|w| w.window_end <= w.window_start) {
            return invalid(format!("a time window ends ({}) before it starts ({})", bad.window_end, bad.window_start));
        }
        if w.len() == 2 && w[1].window_start < w[0].window_end {
            return invalid("the second time window starts before the first ends");
        }
        let modes = ["1 At Any Time", "2 Immediately", "3 When Idle", "4 Confirmation Needed"];
        if let Some(bad) =
            w.iter().find(|w| !modes.contains(&w.window_mode.as_str()) && !w.window_mode.starts_with("X "))
        {
            return invalid(format!("WindowMode {:?}", bad.window_mode));
        }
        if d.file_type.is_empty() {
            return invalid("no FileType");
        }
        if let Some(refused) = self.refuse(&d.url) {
            return refused;
        }
        self.queue.push(Queued { job: Job::Download(d.clone()), received: now });
        Body::ScheduleDownloadResponse(cwmp::ScheduleDownloadResponse {})
    }

    fn refuse(&self, url: &str) -> Option<Body> {
        if !http_url(url) {
            let why = format!("URL {url:?}: the device transfers over http:// only");
            return Some(Body::Fault(Fault::with_string(FaultCode::UnsupportedTransferProtocol, why)));
        }
        (self.queue.len() >= QUEUE_LIMIT).then(|| {
            let why = format!("{QUEUE_LIMIT} transfers queued already");
            Body::Fault(Fault::with_string(FaultCode::ResourcesExceeded, why))
        })
    }

    /// A CancelTransfer: a queued transfer not yet started is dropped (CancelTransferResponse);
    /// any other CommandKey (unknown, started or finished) is 9021.
    pub fn cancel(&mut self, key: &str) -> Body {
        match self.queue.iter().position(|q| q.command_key() == key) {
            Some(i) => {
                self.queue.remove(i);
                Body::CancelTransferResponse(cwmp::CancelTransferResponse {})
            }
            None => Body::Fault(Fault::with_string(
                FaultCode::CancelNotPermitted,
                format!("no transfer with CommandKey {key:?} waits to start"),
            )),
        }
    }

    /// GetQueuedTransfersResponse: every queued transfer (all were asked for by the ACS), state
    /// 1 (not yet started: the device carries them out between sessions).
    pub fn queued(&self) -> Body {
        let transfer_list =
            self.queue.iter().map(|q| cwmp::QueuedTransfer { command_key: q.command_key().into(), state: 1 }).collect();
        Body::GetQueuedTransfersResponse(cwmp::GetQueuedTransfersResponse { transfer_list })
    }

    /// GetAllQueuedTransfersResponse: the same with direction, FileType, size and target name.
    pub fn all_queued(&self) -> Body {
        let transfer_list = self
            .queue
            .iter()
            .map(|q| {
                let (is_download, file_type, file_size, target_file_name) = match &q.job {
                    Job::Upload(u) => (false, u.file_type.clone(), 0, String::new()),
                    Job::Download(d) => (true, d.file_type.clone(), d.file_size, d.target_file_name.clone()),
                };
                cwmp::AllQueuedTransfer {
                    command_key: q.command_key().into(),
                    state: 1,
                    is_download,
                    file_type,
                    file_size,
                    target_file_name,
                }
            })
            .collect();
        Body::GetAllQueuedTransfersResponse(cwmp::GetAllQueuedTransfersResponse { transfer_list })
    }

    /// A ChangeDUState: accepted (ChangeDUStateResponse), carried out after the session; one
    /// with no operation is 9003.
    pub fn change_du_state(&mut self, c: &cwmp::ChangeDUState) -> Body {
        if c.operations.is_empty() {
            return invalid("a ChangeDUState with no operation");
        }
        self.du_changes.push(c.clone());
        Body::ChangeDUStateResponse(cwmp::ChangeDUStateResponse {})
    }

    /// Whether anything is to be carried out at `now`.
    pub fn has_due(&self, now: i64) -> bool {
        !self.du_changes.is_empty() || self.queue.iter().any(|q| q.due(now).is_some())
    }

    /// What is to be carried out at `now`, taken off the queue.
    pub fn take_due(&mut self, now: i64) -> Vec<Work> {
        let mut work = Vec::new();
        self.queue.retain(|q| match q.due(now) {
            Some(w) => {
                work.push(w);
                false
            }
            None => true,
        });
        work.extend(self.du_changes.drain(..).map(Work::DuChange));
        work
    }

    /// Checks a deployment-unit operation before anything is fetched: the package to fetch (none
    /// for an uninstall), or the fault its result reports (9022 a malformed UUID, 9023 an
    /// unknown execution environment, 9024 a disabled one, 9028 an unknown unit, 9026 a unit
    /// installed already, 9013 a URL that is not `http://`, 9003 an update naming nothing).
    pub fn check(&self, op: &DuOperation) -> Result<Option<Source>, TransferFault> {
        let f = TransferFault::from_fault;
        let (uuid, ee) = match op {
            DuOperation::Install { uuid, execution_env_ref, .. } => (uuid, execution_env_ref.as_str()),
            DuOperation::Update { uuid, .. } => (uuid, ""),
            DuOperation::Uninstall { uuid, execution_env_ref, .. } => (uuid, execution_env_ref.as_str()),
        };
        if !uuid.is_empty() && !uuid_format(uuid) {
            return Err(f(FaultCode::InvalidUuid, &format!("UUID {uuid:?} is not 8-4-4-4-12 hex digits")));
        }
        let ee = ee.trim_end_matches('.');
        if !ee.is_empty() && ee != self.default_exec_env() {
            return Err(if ee == self.disabled_exec_env() {
                f(FaultCode::DisabledExecutionEnvironment, &format!("{ee} is disabled"))
            } else {
                f(FaultCode::UnknownExecutionEnvironment, &format!("no execution environment {ee}"))
            });
        }
        let source = |url: &str, user: &str, pass: &str| {
            if http_url(url) {
                Ok(Some((url.to_string(), user.to_string(), pass.to_string())))
            } else {
                Err(f(FaultCode::UnsupportedTransferProtocol, &format!("URL {url:?}: http:// only")))
            }
        };
        match op {
            DuOperation::Install { url, uuid, username, password, .. } => {
                if self.units.iter().any(|u| &u.uuid == uuid) {
                    return Err(f(FaultCode::DuplicateDeploymentUnit, &format!("{uuid} is installed already")));
                }
                source(url, username, password)
            }
            DuOperation::Update { uuid, version, url, username, password } => {
                if uuid.is_empty() && url.is_empty() {
                    return Err(f(FaultCode::InvalidArguments, "an update names neither a UUID nor a URL"));
                }
                let unit = self.units.iter().find(|u| {
                    (if uuid.is_empty() { &u.url == url } else { &u.uuid == uuid })
                        && (version.is_empty() || &u.version == version)
                });
                let Some(unit) = unit else {
                    return Err(f(FaultCode::UnknownDeploymentUnit, &format!("no unit {uuid}{url} {version}")));
                };
                if url.is_empty() {
                    source(&unit.url, username, password)
                } else {
                    source(url, username, password)
                }
            }
            DuOperation::Uninstall { uuid, version, .. } => {
                if !self.units.iter().any(|u| &u.uuid == uuid && (version.is_empty() || &u.version == version)) {
                    return Err(f(FaultCode::UnknownDeploymentUnit, &format!("no unit {uuid} {version}")));
                }
                Ok(None)
            }
        }
    }

    /// Carries out a checked operation with its package (as fetched), between `start` and
    /// `end`: its result.
    pub fn apply(
        &mut self,
        op: &DuOperation,
        fetched: Option<Result<Vec<u8>, TransferFault>>,
        start: i64,
        end: i64,
    ) -> OpResult {
        let root = self.root;
        let mut result = OpResult {
            uuid: op_uuid(op).to_string(),
            deployment_unit_ref: String::new(),
            version: String::new(),
            current_state: String::new(),
            resolved: false,
            execution_unit_ref_list: String::new(),
            start_time: DateTime::from_unix(start),
            complete_time: DateTime::from_unix(end),
            fault: TransferFault::none(),
        };
        let outcome = match (op, fetched) {
            (_, Some(Err(fault))) => Err(fault),
            (DuOperation::Install { url, uuid, execution_env_ref, .. }, Some(Ok(bytes))) => {
                package(&bytes).and_then(|p| {
                    let uuid = if !uuid.is_empty() {
                        uuid.clone()
                    } else if let Some(u) = p.uuid.filter(|u| uuid_format(u)) {
                        u
                    } else {
                        self.make_uuid()
                    };
                    if self.units.iter().any(|u| u.uuid == uuid) {
                        return Err(TransferFault::from_fault(
                            FaultCode::DuplicateDeploymentUnit,
                            &format!("{uuid} is installed already"),
                        ));
                    }
                    let ee = execution_env_ref.trim_end_matches('.');
                    let instance = self.next_instance;
                    self.next_instance += 1;
                    self.units.push(DeploymentUnit {
                        uuid,
                        name: p.name,
                        version: p.version,
                        url: url.clone(),
                        execution_env_ref: if ee.is_empty() { self.default_exec_env() } else { ee.to_string() },
                        instance,
                    });
                    Ok(self.units.len() - 1)
                })
            }
            (DuOperation::Update { uuid, version, url, .. }, Some(Ok(bytes))) => package(&bytes).and_then(|p| {
                let i = self
                    .units
                    .iter()
                    .position(|u| {
                        (if uuid.is_empty() { &u.url == url } else { &u.uuid == uuid })
                            && (version.is_empty() || &u.version == version)
                    })
                    .ok_or_else(|| TransferFault::from_fault(FaultCode::UnknownDeploymentUnit, "the unit is gone"))?;
                let unit = &mut self.units[i];
                if unit.version == p.version {
                    return Err(TransferFault::from_fault(
                        FaultCode::VersionAlreadyExists,
                        &format!("version {} is installed already", p.version),
                    ));
                }
                unit.version = p.version;
                if !url.is_empty() {
                    unit.url = url.clone();
                }
                Ok(i)
            }),
            (DuOperation::Uninstall { uuid, version, .. }, None) => {
                match self.units.iter().position(|u| &u.uuid == uuid && (version.is_empty() || &u.version == version)) {
                    Some(i) => {
                        let unit = self.units.remove(i);
                        result.deployment_unit_ref = format!("{root}SoftwareModules.DeploymentUnit.{}", unit.instance);
                        result.version = unit.version;
                        result.current_state = "Uninstalled".into();
                        result.resolved = true;
                        return result;
                    }
                    None => {
                        Err(TransferFault::from_fault(FaultCode::UnknownDeploymentUnit, &format!("no unit {uuid}")))
                    }
                }
            }
            _ => Err(TransferFault::from_fault(FaultCode::InternalError, "no package fetched")),
        };
        match outcome {
            Ok(i) => {
                let unit = &self.units[i];
                result.uuid = unit.uuid.clone();
                result.deployment_unit_ref = format!("{root}SoftwareModules.DeploymentUnit.{}", unit.instance);
                result.version = unit.version.clone();
                result.current_state = "Installed".into();
                result.resolved = true;
                result.execution_unit_ref_list = format!("{root}SoftwareModules.ExecutionUnit.{}", unit.instance);
            }
            Err(fault) => {
                result.fault = fault;
                result.current_state = self.state_after_failure(op);
                if let Some(unit) = self.units.iter().find(|u| !result.uuid.is_empty() && u.uuid == result.uuid) {
                    result.deployment_unit_ref = format!("{root}SoftwareModules.DeploymentUnit.{}", unit.instance);
                    result.version = unit.version.clone();
                }
            }
        }
        result
    }

    /// CurrentState after a failed operation: an install `Failed`; an update or uninstall
    /// leaves the unit as it was (`Installed`, or `Uninstalled` when there is none).
    fn state_after_failure(&self, op: &DuOperation) -> String {
        match op {
            DuOperation::Install { .. } => "Failed".into(),
            DuOperation::Update { .. } | DuOperation::Uninstall { .. } => {
                let uuid = op_uuid(op);
                if self.units.iter().any(|u| !uuid.is_empty() && u.uuid == uuid) { "Installed" } else { "Uninstalled" }
                    .into()
            }
        }
    }

    /// A UUID for a unit installed without one (the device makes it, as Annex H lets it).
    fn make_uuid(&mut self) -> String {
        self.uuids_made += 1;
        let n = self.uuids_made;
        format!("{n:08x}-5a11-5000-8000-{:012x}", u64::from(n) * 0x9e37_79b9)
    }
}

fn op_uuid(op: &DuOperation) -> &str {
    match op {
        DuOperation::Install { uuid, .. } | DuOperation::Update { uuid, .. } | DuOperation::Uninstall { uuid, .. } => {
            uuid
        }
    }
}

/// What an Upload of `file_type` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// The device's configuration (its parameter values).
    Config,
    /// Its log.
    Log,
}

/// The kind of file an Upload's FileType names: `1 Vendor Configuration File`, `3 Vendor
/// Configuration File` (optionally with an instance number), `2 Vendor Log File`, `4 Vendor Log
/// File`.
pub fn upload_kind(file_type: &str) -> Option<UploadKind> {
    let (n, rest) = file_type.split_once(' ')?;
    let rest = rest.trim_end_matches(|c: char| c.is_ascii_digit() || c == ' ');
    match (n, rest) {
        ("1" | "3", "Vendor Configuration File") => Some(UploadKind::Config),
        ("2" | "4", "Vendor Log File") => Some(UploadKind::Log),
        _ => None,
    }
}

/// One request of a transfer, answering a 401 once: Digest when a challenge offers it (with
/// `user`'s credentials), else Basic when offered; without credentials the 401 stands.
async fn exchange(
    method: Method,
    url: &str,
    user: &str,
    pass: &str,
    body: Bytes,
) -> Result<http_shell::client::Reply, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| format!("invalid URL {}", shown(url)))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let client = http_shell::client::Builder::new().timeout(std::time::Duration::from_secs(60)).build();
    let request = |auth: Option<&str>| {
        let mut req = Request::builder().method(method.clone()).uri(uri.clone());
        if let Some(v) = auth.and_then(|a| HeaderValue::from_str(a).ok()) {
            req = req.header(header::AUTHORIZATION, v);
        }
        req.body(Full::new(body.clone())).map_err(|_| format!("invalid URL {}", shown(url)))
    };
    let reply = client.fetch(request(None)?, MAX_FILE).await.map_err(|e| format!("{}: {e}", shown(url)))?;
    if reply.status != StatusCode::UNAUTHORIZED || user.is_empty() {
        return Ok(reply);
    }
    let challenges: Vec<&str> =
        reply.headers.get_all(header::WWW_AUTHENTICATE).iter().filter_map(|h| h.to_str().ok()).collect();
    let cnonce = http_shell::random_hex(8);
    let auth = challenges
        .iter()
        .find_map(|c| cwmp::auth::answer(c, method.as_str(), &path, user, pass, &cnonce))
        .or_else(|| {
            challenges.iter().any(|c| c.starts_with("Basic")).then(|| {
                use base64::Engine as _;
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
            })
        });
    match auth {
        Some(a) => client.fetch(request(Some(&a))?, MAX_FILE).await.map_err(|e| format!("{}: {e}", shown(url))),
        None => Ok(reply),
    }
}

/// Fetches `url` for a download or a deployment unit: its body, or the TransferComplete fault
/// (9013 not `http://`, 9015 the server unreachable, 9012 credentials refused, 9016 any other
/// refusal).
pub async fn get(url: &str, user: &str, pass: &str) -> Result<Vec<u8>, TransferFault> {
    if !http_url(url) {
        return Err(TransferFault::from_fault(
            FaultCode::UnsupportedTransferProtocol,
            &format!("{}: http:// only", shown(url)),
        ));
    }
    let reply = exchange(Method::GET, url, user, pass, Bytes::new())
        .await
        .map_err(|e| TransferFault::from_fault(FaultCode::FileServerUnreachable, &e))?;
    match reply.status {
        StatusCode::UNAUTHORIZED => {
            Err(TransferFault::from_fault(FaultCode::FileTransferAuthFailure, &format!("{}: HTTP 401", shown(url))))
        }
        s if s.is_success() => Ok(reply.body.to_vec()),
        s => Err(TransferFault::from_fault(FaultCode::FileAccessFailure, &format!("{}: HTTP {s}", shown(url)))),
    }
}

/// PUTs `body` to `url` for an upload: done, or the TransferComplete fault (9013 not
/// `http://`, 9012 credentials refused, 9011 any other failure).
pub async fn put(url: &str, user: &str, pass: &str, body: Vec<u8>) -> Result<(), TransferFault> {
    if !http_url(url) {
        return Err(TransferFault::from_fault(
            FaultCode::UnsupportedTransferProtocol,
            &format!("{}: http:// only", shown(url)),
        ));
    }
    let reply = exchange(Method::PUT, url, user, pass, Bytes::from(body))
        .await
        .map_err(|e| TransferFault::from_fault(FaultCode::UploadFailure, &e))?;
    match reply.status {
        StatusCode::UNAUTHORIZED => {
            Err(TransferFault::from_fault(FaultCode::FileTransferAuthFailure, &format!("{}: HTTP 401", shown(url))))
        }
        s if s.is_success() => Ok(()),
        s => Err(TransferFault::from_fault(FaultCode::UploadFailure, &format!("{}: HTTP {s}", shown(url)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cwmp::{ScheduleDownload, TimeWindow, Upload};

    fn upload(key: &str, file_type: &str, delay: u32) -> Upload {
        Upload {
            command_key: key.into(),
            file_type: file_type.into(),
            url: "http://127.0.0.1:9/up".into(),
            username: String::new(),
            password: String::new(),
            delay_seconds: delay,
        }
    }

    fn scheduled(key: &str, windows: &[(u32, u32)]) -> ScheduleDownload {
        ScheduleDownload {
            command_key: key.into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://127.0.0.1:9/fw.bin".into(),
            username: String::new(),
            password: String::new(),
            file_size: 42,
            target_file_name: "fw.bin".into(),
            time_window_list: windows
                .iter()
                .map(|&(s, e)| TimeWindow {
                    window_start: s,
                    window_end: e,
                    window_mode: "1 At Any Time".into(),
                    user_message: String::new(),
                    max_retries: -1,
                })
                .collect(),
        }
    }

    fn fault(b: &Body) -> Option<FaultCode> {
        match b {
            Body::Fault(f) => Some(f.code),
            _ => None,
        }
    }

    fn keys(work: &[Work]) -> Vec<String> {
        work.iter()
            .map(|w| match w {
                Work::Upload(u) => format!("up {}", u.command_key),
                Work::Download(d) => format!("down {}", d.command_key),
                Work::Missed(d) => format!("missed {}", d.command_key),
                Work::DuChange(c) => format!("du {}", c.command_key),
            })
            .collect()
    }

    #[test]
    fn transfers_wait_for_their_time_and_only_queued_ones_cancel() {
        let mut t = Transfers::new("Device.");
        let at = 1_000;
        assert!(
            matches!(t.upload(&upload("u1", "1 Vendor Configuration File", 0), at), Body::UploadResponse(r) if r.status == 1)
        );
        assert!(matches!(t.upload(&upload("u2", "4 Vendor Log File 2", 600), at), Body::UploadResponse(_)));
        assert_eq!(
            fault(&t.upload(&upload("u3", "1 Firmware Upgrade Image", 0), at)),
            Some(FaultCode::InvalidArguments)
        );
        let mut https = upload("u4", "2 Vendor Log File", 0);
        https.url = "https://files.example/up".into();
        assert_eq!(fault(&t.upload(&https, at)), Some(FaultCode::UnsupportedTransferProtocol));
        assert!(matches!(
            t.schedule_download(&scheduled("d1", &[(60, 120), (3600, 7200)]), at),
            Body::ScheduleDownloadResponse(_)
        ));
        assert!(matches!(t.schedule_download(&scheduled("d2", &[(10, 20)]), at), Body::ScheduleDownloadResponse(_)));
        assert!(matches!(t.schedule_download(&scheduled("d3", &[(100, 200)]), at), Body::ScheduleDownloadResponse(_)));
        for bad in [&[][..], &[(5, 5)], &[(0, 100), (50, 200)], &[(0, 1), (2, 3), (4, 5)]] {
            assert_eq!(
                fault(&t.schedule_download(&scheduled("bad", bad), at)),
                Some(FaultCode::InvalidArguments),
                "{bad:?}"
            );
        }

        // What the ACS sees queued, in order, all not yet started.
        let Body::GetAllQueuedTransfersResponse(all) = t.all_queued() else {
            panic!("a GetAllQueuedTransfersResponse")
        };
        let seen: Vec<_> = all.transfer_list.iter().map(|q| (q.command_key.as_str(), q.is_download, q.state)).collect();
        assert_eq!(seen, [("u1", false, 1), ("u2", false, 1), ("d1", true, 1), ("d2", true, 1), ("d3", true, 1)]);
        assert_eq!((all.transfer_list[2].file_size, all.transfer_list[2].target_file_name.as_str()), (42, "fw.bin"));
        assert_eq!(all.transfer_list[1].file_type, "4 Vendor Log File 2");

        // Cancelled before it starts: gone; unknown (or gone already): 9021.
        assert!(matches!(t.cancel("d3"), Body::CancelTransferResponse(_)));
        assert_eq!(fault(&t.cancel("d3")), Some(FaultCode::CancelNotPermitted));
        assert_eq!(fault(&t.cancel("nothing")), Some(FaultCode::CancelNotPermitted));

        // Due: the upload at once, the rest as the clock reaches them.
        assert_eq!(keys(&t.take_due(at)), ["up u1"]);
        assert_eq!(fault(&t.cancel("u1")), Some(FaultCode::CancelNotPermitted), "started: not cancelled");
        assert!(!t.has_due(at + 9));
        assert_eq!(keys(&t.take_due(at + 15)), ["down d2"]);
        // d1's first window passed between sessions; its second is the one.
        assert!(!t.has_due(at + 500));
        assert_eq!(keys(&t.take_due(at + 3600)), ["up u2", "down d1"]);
        assert!(matches!(t.schedule_download(&scheduled("d4", &[(10, 20)]), at), Body::ScheduleDownloadResponse(_)));
        assert_eq!(keys(&t.take_due(at + 20)), ["missed d4"], "no session in its window");
        let Body::GetQueuedTransfersResponse(q) = t.queued() else { panic!("a GetQueuedTransfersResponse") };
        assert!(q.transfer_list.is_empty(), "{q:?}");

        // The queue holds 16.
        for i in 0..QUEUE_LIMIT {
            assert!(matches!(
                t.upload(&upload(&format!("q{i}"), "2 Vendor Log File", 60), at),
                Body::UploadResponse(_)
            ));
        }
        assert_eq!(fault(&t.upload(&upload("q16", "2 Vendor Log File", 60), at)), Some(FaultCode::ResourcesExceeded));
    }

    const U1: &str = "6a3f1c2e-0b7d-4e8a-9c1f-2d3e4f5a6b7c";

    fn install(url: &str, uuid: &str, ee: &str) -> DuOperation {
        DuOperation::Install {
            url: url.into(),
            uuid: uuid.into(),
            username: String::new(),
            password: String::new(),
            execution_env_ref: ee.into(),
        }
    }

    /// Checks and carries out `op` with `package` as what its URL serves.
    fn run(t: &mut Transfers, op: DuOperation, package: &[u8]) -> OpResult {
        let fetched = match t.check(&op) {
            Err(f) => Some(Err(f)),
            Ok(Some(_)) => Some(Ok(package.to_vec())),
            Ok(None) => None,
        };
        t.apply(&op, fetched, 10, 11)
    }

    #[test]
    fn deployment_units_install_update_and_uninstall_with_the_specs_faults() {
        let mut t = Transfers::new("Device.");
        let a1 = b"Package: a\nVersion: 1.0\n";
        let r = run(&mut t, install("http://h/a", U1, ""), a1);
        assert_eq!(r.fault, TransferFault::none());
        assert_eq!(
            (r.uuid.as_str(), r.deployment_unit_ref.as_str(), r.version.as_str(), r.current_state.as_str(), r.resolved),
            (U1, "Device.SoftwareModules.DeploymentUnit.1", "1.0", "Installed", true)
        );
        assert_eq!(r.execution_unit_ref_list, "Device.SoftwareModules.ExecutionUnit.1");
        assert_eq!((r.start_time, r.complete_time), (DateTime::from_unix(10), DateTime::from_unix(11)));
        // Without a UUID: the package's, else one the device makes.
        let r = run(&mut t, install("http://h/b", "", "Device.SoftwareModules.ExecEnv.1."), b"Name: b\nVersion: 3\n");
        assert!(uuid_format(&r.uuid) && r.uuid != U1, "{r:?}");
        assert_eq!(r.deployment_unit_ref, "Device.SoftwareModules.DeploymentUnit.2");

        let code = |r: &OpResult| (r.fault.code, r.current_state.clone());
        let failed = |c: FaultCode| (c.code(), "Failed".to_string());
        assert_eq!(code(&run(&mut t, install("http://h/a", U1, ""), a1)), failed(FaultCode::DuplicateDeploymentUnit));
        assert_eq!(code(&run(&mut t, install("http://h/c", "not-a-uuid", ""), a1)), failed(FaultCode::InvalidUuid));
        let other = install("http://h/c", "", "Device.SoftwareModules.ExecEnv.9");
        assert_eq!(code(&run(&mut t, other, a1)), failed(FaultCode::UnknownExecutionEnvironment));
        let disabled = install("http://h/c", "", &t.disabled_exec_env());
        assert_eq!(code(&run(&mut t, disabled, a1)), failed(FaultCode::DisabledExecutionEnvironment));
        assert_eq!(code(&run(&mut t, install("http://h/c", "", ""), b"\xff junk")), failed(FaultCode::FileCorrupted));
        assert_eq!(
            code(&run(&mut t, install("ftp://h/c", "", ""), a1)),
            failed(FaultCode::UnsupportedTransferProtocol)
        );
        assert_eq!(t.units().len(), 2, "no failed install left a unit");

        // Update: to a new version from its own URL; the same version again is 9032.
        let update = |version: &str| DuOperation::Update {
            uuid: U1.into(),
            version: version.into(),
            url: String::new(),
            username: String::new(),
            password: String::new(),
        };
        let r = run(&mut t, update("1.0"), b"Package: a\nVersion: 2.0\n");
        assert_eq!((r.fault.code, r.version.as_str(), r.current_state.as_str()), (0, "2.0", "Installed"));
        let r = run(&mut t, update(""), b"Package: a\nVersion: 2.0\n");
        assert_eq!((r.fault.code, r.version.as_str(), r.current_state.as_str()), (9032, "2.0", "Installed"));
        assert_eq!(code(&run(&mut t, update("1.0"), a1)), (9028, "Installed".into()), "no version 1.0 any more");

        // Uninstall: a unit it does not hold is 9028; its own goes.
        let uninstall = |uuid: &str| DuOperation::Uninstall {
            uuid: uuid.into(),
            version: String::new(),
            execution_env_ref: String::new(),
        };
        let r = run(&mut t, uninstall("00000000-0000-0000-0000-000000000000"), b"");
        assert_eq!((r.fault.code, r.current_state.as_str()), (9028, "Uninstalled"));
        let r = run(&mut t, uninstall(U1), b"");
        assert_eq!(
            (r.fault.code, r.current_state.as_str(), r.deployment_unit_ref.as_str(), r.version.as_str()),
            (0, "Uninstalled", "Device.SoftwareModules.DeploymentUnit.1", "2.0")
        );
        assert_eq!(t.units().iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn upload_file_types() {
        assert_eq!(upload_kind("1 Vendor Configuration File"), Some(UploadKind::Config));
        assert_eq!(upload_kind("3 Vendor Configuration File 2"), Some(UploadKind::Config));
        assert_eq!(upload_kind("2 Vendor Log File"), Some(UploadKind::Log));
        assert_eq!(upload_kind("4 Vendor Log File"), Some(UploadKind::Log));
        assert_eq!(upload_kind("2 Vendor Configuration File"), None);
        assert_eq!(upload_kind("X 00A0B1 dump"), None);
    }

    /// A file server wanting Digest (`cpe`/`pw`) for every request, recording the bodies it took.
    async fn digest_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
        use http_body_util::BodyExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/files/up.cfg?x=1", listener.local_addr().expect("addr"));
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let g = got.clone();
        let verifier = std::sync::Arc::new(cwmp::auth::Verifier::new("files", [3; 32]));
        tokio::spawn(http_shell::serve(
            listener,
            None,
            http_shell::Limits::default(),
            move |req: Request<hyper::body::Incoming>, _| {
                let (g, verifier) = (g.clone(), verifier.clone());
                async move {
                    let auth =
                        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
                    let uri = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
                    let method = req.method().as_str().to_string();
                    let attempt =
                        cwmp::auth::Attempt { method: &method, uri: &uri, header: auth.as_deref(), tls: false };
                    let ok = verifier.check_password(attempt, |u| (u == "cpe").then(|| "pw".to_string()), 0).is_ok();
                    let mut r = hyper::Response::new(Full::new(Bytes::new()));
                    if ok {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                        g.lock().unwrap_or_else(|e| e.into_inner()).push(body);
                        *r.status_mut() = StatusCode::CREATED;
                    } else {
                        *r.status_mut() = StatusCode::UNAUTHORIZED;
                        for c in verifier.challenges(0).into_iter().filter(|c| c.starts_with("Digest")) {
                            r.headers_mut()
                                .append(header::WWW_AUTHENTICATE, HeaderValue::from_str(&c).expect("header"));
                        }
                    }
                    r
                }
            },
            std::future::pending(),
        ));
        (url, got)
    }

    #[tokio::test]
    async fn an_upload_answers_digest_and_a_refused_one_is_9012_an_unreachable_one_9011() {
        let (url, got) = digest_server().await;
        put(&url, "cpe", "pw", b"A=1\n".to_vec()).await.expect("uploaded with Digest");
        assert_eq!(got.lock().unwrap_or_else(|e| e.into_inner()).clone(), [b"A=1\n".to_vec()]);
        let refused = put(&url, "cpe", "wrong", b"x".to_vec()).await.expect_err("a wrong password");
        assert_eq!(refused.code, 9012, "{refused:?}");
        let anonymous = put(&url, "", "", b"x".to_vec()).await.expect_err("no credentials");
        assert_eq!(anonymous.code, 9012, "{anonymous:?}");
        let fetched = get(&url, "cpe", "wrong").await.expect_err("a wrong password");
        assert_eq!(fetched.code, 9012);
        assert_eq!(got.lock().unwrap_or_else(|e| e.into_inner()).len(), 1, "nothing else taken");
        // Nothing listens on port 9 of loopback.
        let gone = put("http://127.0.0.1:9/up", "", "", b"x".to_vec()).await.expect_err("unreachable");
        assert_eq!(gone.code, 9011, "{gone:?}");
        let gone = get("http://127.0.0.1:9/fw", "", "").await.expect_err("unreachable");
        assert_eq!(gone.code, 9015, "{gone:?}");
    }
}
