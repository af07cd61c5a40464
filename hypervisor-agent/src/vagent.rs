//! Virtual CWMP devices toward the ACS (TR-069 Annex J.2): each vRGW managed as a device of its
//! own ([`crate::vdevice`]) gets its own session loop ([`crate::session`]) in the agent's
//! process, its own durable events, periodic informs spread over the interval, TR-069's retry
//! wait, and connection requests on the agent's listener at `/vd/{instance}` with its own
//! Digest credentials.
//!
//! [`supervise`] keeps one loop per virtual device the host lists: a device seen for the first
//! time is made (its state saved, "0 BOOTSTRAP" queued), every device starting in this process
//! queues "1 BOOT", and a device the host no longer lists is stopped and forgotten.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cwmp::auth::Verifier;
use cwmp::{Body, DateTime, DeviceId, Event, Fault, FaultCode, Inform, Value};

use crate::agent::SessionFailure;
use crate::host::arrived_key;
use crate::session::{Cpe, LinkSettings, LoopState};
use crate::vdevice::{Start, VirtualDevice};
use crate::worker::HostHandle;

/// What every virtual device of the agent shares: how they reach the ACS, and where the ACS
/// reaches them.
#[derive(Clone)]
pub struct Settings {
    /// The ACS URL.
    pub acs_url: String,
    /// The user name the virtual devices log in to the ACS with (a credential the ACS binds to
    /// their DeviceIds, say by the prefix `OUI-ProductClass-`).
    pub acs_username: String,
    /// Its password (never logged).
    pub acs_password: String,
    /// TLS toward an `https://` ACS.
    pub tls: Option<http_shell::client::TlsConnector>,
    /// The connection-request listener's base URL (`http://ADDR:PORT`); a device's is
    /// `BASE/vd/{instance}`.
    pub cr_base: String,
    /// PeriodicInformInterval of a new virtual device, seconds.
    pub periodic_inform_interval: u32,
    /// First sessions per second of the devices the agent starts with (spread, not together).
    pub start_rate: u32,
    /// Idle connections to the ACS, shared by every virtual device's sessions.
    pub pool: http_shell::cpe::Pool,
    /// Where firmware images downloaded to virtual devices are kept (by hash, see
    /// [`crate::firmware::store`]).
    pub firmware_dir: std::path::PathBuf,
    /// The largest image a Download may bring, bytes.
    pub download_max_bytes: u64,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("acs", &self.acs_url).field("user", &self.acs_username).finish()
    }
}

/// The virtual devices running now, by instance: what the connection-request listener looks
/// requests up in.
pub type Registry = Arc<Mutex<BTreeMap<u32, Arc<VirtualCpe>>>>;

/// One virtual device toward the ACS.
pub struct VirtualCpe {
    instance: u32,
    key: String,
    id: DeviceId,
    device: Arc<Mutex<VirtualDevice>>,
    host: HostHandle,
    settings: Arc<Settings>,
    loop_state: LoopState,
    /// Its connection requests' Digest checker.
    pub verifier: Verifier,
    /// Its connection requests' rate limit.
    pub cr_bucket: crate::agent::CrBucket,
    /// A Download under way (one at a time).
    downloading: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for VirtualCpe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualCpe").field("device", &self.key).field("instance", &self.instance).finish()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl VirtualCpe {
    /// The device's own connection-request credentials (ManagementServer.ConnectionRequest*).
    pub fn cr_credentials(&self) -> (String, String) {
        let d = self.device.lock().unwrap_or_else(|e| e.into_inner());
        let s = |n: &str| match d.management(n) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        (s("ConnectionRequestUsername"), s("ConnectionRequestPassword"))
    }

    /// Its DeviceId's key (`OUI-ProductClass-SerialNumber`, escaped).
    pub fn key(&self) -> &str {
        &self.key
    }

    fn save(&self) {
        let snap = self.device.lock().unwrap_or_else(|e| e.into_inner()).snapshot();
        if let Err(e) = self.host.shared().state().save_virtual_device(&self.key, &snap) {
            tracing::error!(device = %self.key, "saving the virtual device: {e}");
        }
    }

    /// A fraction of the periodic interval, the same for a device every time: devices with one
    /// interval inform spread over it rather than together (a host restarting with a thousand).
    fn phase(&self, interval: i64) -> i64 {
        let h =
            self.key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        (h % interval.max(1) as u64) as i64
    }
}

impl Cpe for VirtualCpe {
    fn who(&self) -> String {
        self.key.clone()
    }

    fn link(&self) -> LinkSettings<'_> {
        LinkSettings {
            url: &self.settings.acs_url,
            tls: self.settings.tls.clone(),
            username: &self.settings.acs_username,
            password: &self.settings.acs_password,
            pool: Some(&self.settings.pool),
        }
    }

    fn loop_state(&self) -> &LoopState {
        &self.loop_state
    }

    fn pending(&self) -> Result<bool, String> {
        self.host.shared().state().events_of(&self.key).map(|e| !e.is_empty()).map_err(|e| e.to_string())
    }

    fn periodic_wait(&self) -> Option<Duration> {
        let (enabled, interval, anchor) = {
            let d = self.device.lock().unwrap_or_else(|e| e.into_inner());
            (
                d.management("PeriodicInformEnable"),
                d.management("PeriodicInformInterval"),
                d.management("PeriodicInformTime"),
            )
        };
        let (Some(Value::Boolean(true)), Some(Value::UnsignedInt(interval))) = (enabled, interval) else {
            return None;
        };
        let interval = i64::from(interval.max(1));
        // PeriodicInformTime when the ACS set one, else the device's own phase.
        let anchor = match anchor {
            Some(Value::DateTime(t)) if t.to_unix().is_some_and(|u| u > 0) => t.to_unix().unwrap_or(0),
            _ => self.phase(interval),
        };
        let since = (now_secs() - anchor).rem_euclid(interval);
        Some(Duration::from_secs((interval - since) as u64))
    }

    async fn trigger(&self, code: &str, command_key: &str) {
        if let Err(e) = self.host.shared().state().push_event_of(&self.key, code, command_key) {
            tracing::error!(device = %self.key, event = code, "queueing: {e}");
        }
        self.loop_state.wake.notify_one();
    }

    async fn inform(&self) -> Result<(Inform, i64, Vec<String>), SessionFailure> {
        let events =
            self.host.shared().state().events_of(&self.key).map_err(|e| SessionFailure::State(e.to_string()))?;
        let last = events.last().map_or(0, |e| e.0);
        let (n, device) = (self.instance, self.device.clone());
        let mut list =
            self.host.run(move |h| h.virtual_inform(n, &copy_of(&device))).await.map_err(|_| SessionFailure::Host)?;
        // Changed values with notification on, once each.
        let changed = self.device.lock().unwrap_or_else(|e| e.into_inner()).pending_changes();
        let reported: Vec<String> = changed.iter().map(|p| p.name.clone()).collect();
        list.retain(|p| !reported.contains(&p.name));
        list.extend(changed);
        let inform = Inform {
            device_id: self.id.clone(),
            events: events.into_iter().map(|(_, code, key)| Event { code, command_key: key }).collect(),
            max_envelopes: 1,
            current_time: DateTime::from_unix(now_secs()),
            retry_count: self.loop_state.retry_count(),
            parameter_list: list,
        };
        Ok((inform, last, reported))
    }

    fn accepted(&self, last_event: i64, reported: &[String]) {
        if let Err(e) = self.host.shared().state().delivered_of(&self.key, last_event) {
            tracing::error!(device = %self.key, "removing the delivered events: {e}");
        }
        self.device.lock().unwrap_or_else(|e| e.into_inner()).changes_reported(reported);
    }

    async fn carry_out(&self, req: Body, after: &mut Vec<(String, String)>) -> Body {
        match req {
            Body::Reboot(r) => {
                let n = self.instance;
                match self.host.run(move |h| h.restart_instance(n).map_err(|e| e.fault())).await {
                    Ok(Ok(())) => {
                        after.push((cwmp::event::BOOT.into(), String::new()));
                        after.push((cwmp::event::M_REBOOT.into(), r.command_key));
                        Body::RebootResponse(cwmp::RebootResponse {})
                    }
                    Ok(Err(f)) => Body::Fault(f),
                    Err(_) => Body::Fault(Fault::with_string(FaultCode::InternalError, "the host thread stopped")),
                }
            }
            Body::FactoryReset(_) => {
                let (n, device, id) = (self.instance, self.device.clone(), self.id.clone());
                let start = start_values(&self.settings, n);
                // Its own management server as when it was first made (the ACS sets it again at
                // the BOOTSTRAP that follows), replaced on the host thread as every change is.
                let reset = move |h: &mut crate::host::Host| {
                    h.factory_reset_instance(n).map_err(|e| e.fault())?;
                    with_copy(&device, |d| *d = VirtualDevice::new(id, d.host.clone(), &start));
                    Ok::<(), Fault>(())
                };
                match self.host.run(reset).await {
                    Ok(Ok(())) => {
                        self.save();
                        tracing::info!(device = %self.key, instance = n, "virtual device factory-reset");
                        after.push((cwmp::event::BOOTSTRAP.into(), String::new()));
                        after.push((cwmp::event::BOOT.into(), String::new()));
                        Body::FactoryResetResponse(cwmp::FactoryResetResponse {})
                    }
                    Ok(Err(f)) => Body::Fault(f),
                    Err(_) => Body::Fault(Fault::with_string(FaultCode::InternalError, "the host thread stopped")),
                }
            }
            Body::ScheduleInform(si) => {
                // "3 SCHEDULED" and "M ScheduleInform" after the delay, kept in memory (a restart
                // of the agent informs "1 BOOT" instead), as the host does.
                let (state, key, wake) = (self.host.shared().clone(), self.key.clone(), self.loop_state.wake.clone());
                tracing::info!(device = %self.key, delay_s = si.delay_seconds, "Inform scheduled");
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(u64::from(si.delay_seconds))).await;
                    for (code, command_key) in [("3 SCHEDULED", String::new()), ("M ScheduleInform", si.command_key)] {
                        if let Err(e) = state.state().push_event_of(&key, code, &command_key) {
                            tracing::error!(device = %key, event = code, "queueing: {e}");
                        }
                    }
                    wake.notify_one();
                });
                Body::ScheduleInformResponse(cwmp::ScheduleInformResponse {})
            }
            Body::Download(d) => self.download(d),
            Body::Upload(_) | Body::ScheduleDownload(_) => Body::Fault(Fault::with_string(
                FaultCode::MethodNotSupported,
                format!("{} of a virtual device is not available yet", req.method_name()),
            )),
            req => {
                let (n, device) = (self.instance, self.device.clone());
                let resp =
                    self.host.run(move |h| with_copy(&device, |d| h.serve_virtual(n, d, &req))).await.unwrap_or_else(
                        |_| Body::Fault(Fault::with_string(FaultCode::InternalError, "the host thread stopped")),
                    );
                if matches!(
                    resp,
                    Body::SetParameterValuesResponse(_)
                        | Body::AddObjectResponse(_)
                        | Body::DeleteObjectResponse(_)
                        | Body::SetParameterAttributesResponse(_)
                ) {
                    self.save();
                }
                resp
            }
        }
    }
}

impl VirtualCpe {
    /// A Download: a firmware image ("1 Firmware Upgrade Image") its vRGW is rebuilt from,
    /// after the session (DownloadResponse status 1), `DelaySeconds` later. The outcome comes as
    /// TransferComplete in the session that informs "7 TRANSFER COMPLETE" and "M Download"
    /// (and "1 BOOT" when the vRGW restarted on it). A file that is no firmware image, or of the
    /// other kind than the template boots, fails with 9018 and changes nothing.
    fn download(&self, d: cwmp::Download) -> Body {
        if d.file_type != "1 Firmware Upgrade Image" {
            return Body::Fault(Fault::with_string(
                FaultCode::InvalidArguments,
                format!("FileType {:?}: a virtual device takes \"1 Firmware Upgrade Image\" only", d.file_type),
            ));
        }
        if !d.url.starts_with("http://") && !d.url.starts_with("https://") {
            return Body::Fault(Fault::new(FaultCode::UnsupportedTransferProtocol));
        }
        if self.downloading.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Body::Fault(Fault::with_string(FaultCode::ResourcesExceeded, "a download is under way"));
        }
        let (host, settings, key, n) = (self.host.clone(), self.settings.clone(), self.key.clone(), self.instance);
        let (loop_state_wake, busy) = (self.loop_state.wake.clone(), self.downloading.clone());
        let own = self.loop_state.own_queue();
        tracing::info!(device = %key, instance = n, delay_s = d.delay_seconds, "firmware download accepted");
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(u64::from(d.delay_seconds))).await;
            let started = now_secs();
            let outcome = install(&host, &settings, n, &d.url).await;
            let (fault, booted) = match outcome {
                Ok(path) => {
                    tracing::info!(device = %key, instance = n, firmware = %path.display(), "firmware installed");
                    (cwmp::TransferFault::none(), true)
                }
                Err((code, why, booted)) => {
                    tracing::warn!(device = %key, instance = n, code, "firmware download failed: {why}");
                    (cwmp::TransferFault { code, string: why }, booted)
                }
            };
            own.push(Body::TransferComplete(cwmp::TransferComplete {
                command_key: d.command_key.clone(),
                fault,
                start_time: DateTime::from_unix(started),
                complete_time: DateTime::from_unix(now_secs()),
            }));
            let mut events =
                vec![(cwmp::event::TRANSFER_COMPLETE, String::new()), (cwmp::event::M_DOWNLOAD, d.command_key)];
            if booted {
                events.push((cwmp::event::BOOT, String::new()));
            }
            for (code, command_key) in events {
                if let Err(e) = host.shared().state().push_event_of(&key, code, &command_key) {
                    tracing::error!(device = %key, event = code, "queueing: {e}");
                }
            }
            busy.store(false, std::sync::atomic::Ordering::SeqCst);
            loop_state_wake.notify_one();
        });
        Body::DownloadResponse(cwmp::DownloadResponse {
            status: 1,
            start_time: DateTime::unknown(),
            complete_time: DateTime::unknown(),
        })
    }
}

/// Fetches, checks, stores and installs a firmware image for instance `n`: its path, or the
/// TransferComplete fault (code, why, whether the vRGW restarted anyway).
async fn install(
    host: &HostHandle,
    settings: &Settings,
    n: u32,
    url: &str,
) -> Result<std::path::PathBuf, (u32, String, bool)> {
    let dir = settings.firmware_dir.clone();
    let part = crate::agent::fetch_to_file(url, settings.tls.clone(), &dir, settings.download_max_bytes)
        .await
        .map_err(|(code, why)| (code, why, false))?;
    // Told by its content, then kept by its hash: read from the file, never whole in memory.
    let checked = tokio::task::spawn_blocking(move || {
        let kind = std::fs::File::open(&part)
            .map_err(|e| crate::firmware::NotFirmware::Unreadable(e.to_string()))
            .and_then(crate::firmware::kind);
        match kind {
            Ok(kind) => {
                crate::firmware::store(&dir, &part, kind).map_err(|e| (9010, format!("storing the image: {e}"), false))
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                Err((9018, e.to_string(), false))
            }
        }
    });
    let path = checked.await.map_err(|e| (9002, e.to_string(), false))??;
    let at = path.clone();
    match host.run(move |h| h.install_firmware(n, &at)).await {
        Ok(Ok(())) => Ok(path),
        // Of the other kind than the template boots: nothing changed.
        Ok(Err(crate::host::HostError::Refused(why))) => Err((9018, why, false)),
        // The rebuild failed: the previous firmware was put back (the vRGW restarted).
        Ok(Err(e)) => Err((9010, e.to_string(), true)),
        Err(_) => Err((9002, "the host thread stopped".into(), false)),
    }
}

/// A copy of the device, its lock held only to copy it. The host thread works on copies: it may
/// block on a vRGW's proxy through the runtime (`ProxyMount`), and a runtime worker waiting
/// for this lock meanwhile (a connection request, a poll) could leave no worker to drive that
/// call: the agent would hang. Every change of a device is made on the host thread, one job
/// after another, so writing the copy back loses nothing.
fn copy_of(device: &Mutex<VirtualDevice>) -> VirtualDevice {
    device.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Runs `f` on a copy of the device (see [`copy_of`]) and keeps what it changed.
fn with_copy<R>(device: &Mutex<VirtualDevice>, f: impl FnOnce(&mut VirtualDevice) -> R) -> R {
    let mut d = copy_of(device);
    let r = f(&mut d);
    *device.lock().unwrap_or_else(|e| e.into_inner()) = d;
    r
}

/// A running virtual device: its loop and how to stop it.
pub(crate) struct Running {
    pub(crate) cpe: Arc<VirtualCpe>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops its loop (a session under way finishes first).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Keeps one session loop per virtual device the host lists (looked at every second), until
/// `shutdown`; then stops them all (a session under way finishes first).
pub async fn supervise(
    host: HostHandle,
    settings: Arc<Settings>,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut running: BTreeMap<u32, Running> = BTreeMap::new();
    // The devices listed at the agent's start inform "1 BOOT" (their vRGWs may have restarted
    // meanwhile); those that appear later are new, or came with a migration.
    let mut at_agent_start = true;
    let mut rounds: u64 = 0;
    loop {
        rounds += 1;
        if rounds % VALUE_POLL_ROUNDS == 0 {
            poll_value_changes(&host, &running).await;
        }
        match host.run(|h| (h.virtual_devices(), h.device_id())).await {
            Ok((listed, host_id)) => {
                // Gone, or another device on the same instance (its Subscriber changed).
                let stale: Vec<u32> = running
                    .iter()
                    .filter(|(n, r)| !listed.iter().any(|(m, id)| m == *n && id.key() == r.cpe.key))
                    .map(|(n, _)| *n)
                    .collect();
                for n in stale {
                    if let Some(r) = running.remove(&n) {
                        registry.lock().unwrap_or_else(|e| e.into_inner()).remove(&n);
                        let key = r.cpe.key.clone();
                        r.stop().await;
                        tracing::info!(device = %key, instance = n, "virtual device stopped");
                        if let Err(e) = host.shared().state().drop_virtual_device(&key) {
                            tracing::error!(device = %key, "forgetting the virtual device: {e}");
                        }
                    }
                }
                let mut starting = 0u32;
                for (n, id) in listed {
                    if running.contains_key(&n) {
                        continue;
                    }
                    // Devices starting together (the agent's start, instances made in bulk)
                    // open their first sessions `start_rate` a second, not all at once.
                    let delay = Duration::from_secs_f64(f64::from(starting) / f64::from(settings.start_rate.max(1)));
                    starting += 1;
                    match start(&host, &settings, n, id, &host_id, at_agent_start, delay).await {
                        Ok(r) => {
                            registry.lock().unwrap_or_else(|e| e.into_inner()).insert(n, r.cpe.clone());
                            running.insert(n, r);
                        }
                        Err(e) => tracing::error!(instance = n, "virtual device not started: {e}"),
                    }
                }
            }
            Err(_) => tracing::error!("virtual devices: the host thread stopped"),
        }
        at_agent_start = false;
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    registry.lock().unwrap_or_else(|e| e.into_inner()).clear();
    for (_, r) in running {
        r.stop().await;
    }
}

/// What instance `n`'s virtual device starts with when it is first made (and after a factory
/// reset): its path on the listener, a user name and a random password of its own.
fn start_values(settings: &Settings, n: u32) -> Start {
    let mut password = [0u8; 16];
    http_shell::fill_random(&mut password);
    Start {
        acs_url: settings.acs_url.clone(),
        connection_request_url: format!("{}/vd/{n}", settings.cr_base),
        cr_username: format!("vd-{n}"),
        cr_password: password.iter().map(|b| format!("{b:02x}")).collect(),
        periodic_inform_interval: settings.periodic_inform_interval,
    }
}

/// Every how many rounds of [`supervise`] (seconds) the parameters with notification on are
/// read: the host's own poll is 2 s; a thousand devices without any such parameter cost nothing.
const VALUE_POLL_ROUNDS: u64 = 5;

/// Reads the parameters with notification on of every running device that has some, in one
/// job of the host thread; a device whose actively notified parameter changed informs
/// "4 VALUE CHANGE".
async fn poll_value_changes(host: &HostHandle, running: &BTreeMap<u32, Running>) {
    let watching: Vec<Arc<VirtualCpe>> = running
        .values()
        .filter(|r| r.cpe.device.lock().unwrap_or_else(|e| e.into_inner()).watches())
        .map(|r| r.cpe.clone())
        .collect();
    if watching.is_empty() {
        return;
    }
    let polled = watching.clone();
    let active = host
        .run(move |h| {
            polled
                .iter()
                .map(|c| with_copy(&c.device, |d| h.virtual_value_changes(c.instance, d)))
                .collect::<Vec<bool>>()
        })
        .await
        .unwrap_or_default();
    for (cpe, active) in watching.iter().zip(active) {
        if active {
            tracing::info!(device = %cpe.key, "a parameter with active notification changed");
            cpe.trigger(cwmp::event::VALUE_CHANGE, "").await;
        }
    }
}

/// Makes (or restores) instance `n`'s virtual device and starts its loop: a new device queues
/// "0 BOOTSTRAP" and "1 BOOT"; one kept here queues "1 BOOT" at the agent's start; one that came
/// with its vRGW from another host continues as the same device ("1 BOOT" only if its vRGW
/// started afresh); "4 VALUE CHANGE" when its connection-request URL is new.
pub(crate) async fn start(
    host: &HostHandle,
    settings: &Arc<Settings>,
    n: u32,
    id: DeviceId,
    host_id: &DeviceId,
    at_agent_start: bool,
    delay: Duration,
) -> Result<Running, String> {
    let key = id.key();
    let state = host.shared().state();
    // The state that came with the vRGW from another host, if it did (kept by the migration).
    let arrived = state.virtual_device(&arrived_key(n)).map_err(|e| e.to_string())?;
    if arrived.is_some() {
        state.drop_virtual_device(&arrived_key(n)).map_err(|e| e.to_string())?;
    }
    let came = arrived.filter(|a| {
        let same = a["key"].as_str() == Some(key.as_str());
        if !same {
            tracing::warn!(device = %key, came = %a["key"], instance = n,
                "the virtual device that came with the vRGW had another DeviceId: it starts afresh here");
        }
        same
    });
    let mut events: Vec<&str> = Vec::new();
    let mut device = match (came, state.virtual_device(&key).map_err(|e| e.to_string())?) {
        (Some(a), _) => {
            // The same device, continuing from this host: no BOOTSTRAP.
            let d = VirtualDevice::restore(id.clone(), host_id.clone(), a["state"].clone())?;
            if a["booted"].as_bool() == Some(true) {
                events.push(cwmp::event::BOOT);
            }
            tracing::info!(device = %key, instance = n, "virtual device arrived with its vRGW");
            d
        }
        (None, Some(snap)) => {
            if at_agent_start {
                events.push(cwmp::event::BOOT);
            }
            VirtualDevice::restore(id.clone(), host_id.clone(), snap)?
        }
        (None, None) => {
            let d = VirtualDevice::new(id.clone(), host_id.clone(), &start_values(settings, n));
            events.extend([cwmp::event::BOOTSTRAP, cwmp::event::BOOT]);
            tracing::info!(device = %key, instance = n, "virtual device made");
            d
        }
    };
    // Its connection-request path on this host's listener (a migration changes it).
    if device.set_connection_request_url(&format!("{}/vd/{n}", settings.cr_base))
        && !events.contains(&cwmp::event::BOOTSTRAP)
    {
        events.push(cwmp::event::VALUE_CHANGE);
    }
    state.save_virtual_device(&key, &device.snapshot()).map_err(|e| e.to_string())?;
    for code in events {
        state.push_event_of(&key, code, "").map_err(|e| e.to_string())?;
    }
    let mut secret = [0u8; 32];
    http_shell::fill_random(&mut secret);
    let cpe = Arc::new(VirtualCpe {
        instance: n,
        key: key.clone(),
        id,
        device: Arc::new(Mutex::new(device)),
        host: host.clone(),
        settings: settings.clone(),
        loop_state: LoopState::with_own(crate::agent::kept_own_requests(host, &key)),
        verifier: Verifier::new("hypervisor-agent", secret),
        cr_bucket: Default::default(),
        downloading: Default::default(),
    });
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let looping = cpe.clone();
    let task = tokio::spawn(async move {
        if !delay.is_zero() {
            let mut early = stopped.clone();
            tokio::select! {
                _ = early.wait_for(|s| *s) => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
        crate::session::run_until(&*looping, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await
    });
    tracing::info!(device = %key, instance = n, "virtual device started");
    Ok(Running { cpe, stop, task })
}
