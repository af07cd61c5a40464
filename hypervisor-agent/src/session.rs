//! The CPE side's session loop, one code for every device the agent speaks for: the host
//! itself ([`crate::agent::Agent`]) and each vRGW managed as a virtual device.
//!
//! A device ([`Cpe`]) says what it has queued, what its Inform is, what an accepted Inform
//! acknowledges and how it carries out a request; the loop opens a session whenever events are
//! queued or its periodic time comes, retries a failed session after TR-069's wait (3.2.1.1),
//! and puts the device's own requests (TransferComplete) back when a session fails before
//! they were answered.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cwmp::session::{CpeConfig, CpeEvent, CpeSession, RetryPolicy, Transmit};
use cwmp::{Body, Inform};
use tokio::sync::Notify;

use crate::agent::SessionFailure;

/// Where and as whom a device reaches the ACS.
pub struct LinkSettings<'a> {
    /// The ACS URL.
    pub url: &'a str,
    /// TLS toward an `https://` ACS.
    pub tls: Option<http_shell::client::TlsConnector>,
    /// User name toward the ACS.
    pub username: &'a str,
    /// Its password.
    pub password: &'a str,
    /// Idle connections shared with other devices' sessions, if any.
    pub pool: Option<&'a http_shell::cpe::Pool>,
}

/// What a session loop keeps between sessions.
#[derive(Debug, Default)]
pub struct LoopState {
    /// Wakes the loop (an event was queued).
    pub wake: Arc<Notify>,
    /// Failed sessions in a row.
    retry_count: AtomicU32,
    /// The device's own requests for the next session (TransferComplete).
    own: OwnQueue,
    /// Sessions completed (for tests and logs).
    pub sessions: AtomicU32,
}

impl LoopState {
    /// Failed sessions in a row (the Inform's RetryCount).
    pub fn retry_count(&self) -> u32 {
        self.retry_count.load(Ordering::SeqCst)
    }

    /// Queues a request of the device's own for its next session.
    pub fn push_own(&self, b: Body) {
        self.own.push(b);
    }

    /// Its queue of own requests, for work that ends after the session that started it (a
    /// download in the background).
    pub fn own_queue(&self) -> OwnQueue {
        self.own.clone()
    }

    /// A loop state whose own requests are kept by `own` (see [`OwnQueue::kept`]).
    pub fn with_own(own: OwnQueue) -> LoopState {
        LoopState { own, ..LoopState::default() }
    }

    fn take_own(&self) -> Vec<Body> {
        self.own.take()
    }

    fn put_back(&self, own: impl IntoIterator<Item = Body>) {
        self.own.put_back(own);
    }
}

/// Keeps a device's own requests where a restarted agent finds them (TR-069 3.7.1.5: a
/// TransferComplete goes to the ACS until it answered, across reboots): given the queued and
/// in-flight requests after every change that matters.
pub type OwnSaver = Arc<dyn Fn(&[Body]) + Send + Sync>;

/// A device's own requests for its next session (TransferComplete), shared: those queued, and
/// those a session under way carries (kept until it ends, so a crash loses neither).
#[derive(Clone, Default)]
pub struct OwnQueue {
    items: Arc<Mutex<(Vec<Body>, Vec<Body>)>>,
    saver: Option<OwnSaver>,
}

impl std::fmt::Debug for OwnQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.items.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("OwnQueue").field("queued", &g.0.len()).field("in_flight", &g.1.len()).finish()
    }
}

impl OwnQueue {
    /// A queue kept by `saver`, starting with `restored` (what it kept before a restart).
    pub fn kept(saver: OwnSaver, restored: Vec<Body>) -> OwnQueue {
        OwnQueue { items: Arc::new(Mutex::new((restored, Vec::new()))), saver: Some(saver) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Body>, Vec<Body>)> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, g: &(Vec<Body>, Vec<Body>)) {
        if let Some(saver) = &self.saver {
            let all: Vec<Body> = g.1.iter().chain(&g.0).cloned().collect();
            saver(&all);
        }
    }

    /// Queues one.
    pub fn push(&self, b: Body) {
        let mut g = self.lock();
        g.0.push(b);
        self.save(&g);
    }

    /// Takes the queued ones for a session (they stay kept until [`OwnQueue::session_ended`]).
    fn take(&self) -> Vec<Body> {
        let mut g = self.lock();
        let taken = std::mem::take(&mut g.0);
        g.1 = taken.clone();
        taken
    }

    fn put_back(&self, own: impl IntoIterator<Item = Body>) {
        self.lock().0.extend(own);
    }

    /// The session ended: what was not answered is queued again (put back), the rest is gone.
    fn session_ended(&self) {
        let mut g = self.lock();
        g.1.clear();
        self.save(&g);
    }
}

/// A device the agent speaks for.
pub trait Cpe: Send + Sync {
    /// The device's name in logs.
    fn who(&self) -> String;
    /// Where and as whom it reaches the ACS.
    fn link(&self) -> LinkSettings<'_>;
    /// Its loop's state.
    fn loop_state(&self) -> &LoopState;
    /// Whether events are queued (an error is logged and counts as none until the next wake).
    fn pending(&self) -> Result<bool, String>;
    /// Time until its next periodic Inform, if periodic informs are on.
    fn periodic_wait(&self) -> Option<Duration>;
    /// Queues an event durably and wakes the loop.
    fn trigger(&self, code: &str, command_key: &str) -> impl Future<Output = ()> + Send;
    /// The Inform, the last queued event's id it carries, and the changed parameters it reports.
    fn inform(&self) -> impl Future<Output = Result<(Inform, i64, Vec<String>), SessionFailure>> + Send;
    /// The ACS accepted the Inform: its events and reported changes are delivered.
    fn accepted(&self, last_event: i64, reported: &[String]);
    /// Carries out one ACS request; events to queue after the session go in `after`.
    fn carry_out(&self, req: Body, after: &mut Vec<(String, String)>) -> impl Future<Output = Body> + Send;
}

/// The session loop: a session whenever events are queued, retries with the TR-069 wait, until
/// `shutdown` completes (a session under way is finished first: its events are acknowledged or
/// stay queued).
pub async fn run_until<C: Cpe>(cpe: &C, shutdown: impl Future<Output = ()>) {
    let retry = RetryPolicy::default();
    let state = cpe.loop_state();
    tokio::pin!(shutdown);
    loop {
        let pending = match cpe.pending() {
            Ok(p) => p,
            Err(e) => {
                // Waits for the next wake-up or period, then reads again.
                tracing::error!(device = %cpe.who(), "reading the queued events: {e}");
                false
            }
        };
        if !pending {
            let wake = state.wake.clone();
            match cpe.periodic_wait() {
                Some(d) => {
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = wake.notified() => {}
                        () = tokio::time::sleep(d) => cpe.trigger(cwmp::event::PERIODIC, "").await,
                    }
                }
                None => {
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = wake.notified() => {}
                    }
                }
            }
            continue;
        }
        match session(cpe).await {
            Ok(()) => {
                state.retry_count.store(0, Ordering::SeqCst);
                state.sessions.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                let n = state.retry_count.fetch_add(1, Ordering::SeqCst);
                let jitter = jitter_of(&cpe.who());
                let wait = retry.wait(n, jitter);
                tracing::warn!(device = %cpe.who(), retry = n + 1, wait_secs = wait.as_secs(), "session failed: {e}");
                // Nothing shortens the retry wait (TR-069 3.2.1.1); events queued meanwhile
                // are in the store and go in the next session.
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// A fraction in [0, 1) for the retry wait's random part: the time, mixed with the device's
/// name, so devices failing in the same second spread their retries.
fn jitter_of(who: &str) -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let h = who.bytes().fold(now, |h, b| h.wrapping_mul(0x100_0000_01b3).wrapping_add(u64::from(b)));
    (h % 1000) as f64 / 1000.0
}

/// One session: the Inform, the device's own requests, then the ACS's requests until it ends
/// the session.
pub async fn session<C: Cpe>(cpe: &C) -> Result<(), SessionFailure> {
    let (inform, last_event, reported) = cpe.inform().await?;
    let events: Vec<String> = inform.events.iter().map(|e| e.code.clone()).collect();
    tracing::info!(device = %cpe.who(), events = ?events, "session: informing the ACS");
    let state = cpe.loop_state();
    let own = state.take_own();
    let mut s = CpeSession::new(CpeConfig::default(), inform, own.clone(), Instant::now());
    let settings = cpe.link();
    let basic = http_shell::cpe::Basic::WhenOffered;
    let (url, user, pass) = (settings.url, settings.username, settings.password);
    let opened = http_shell::cpe::Link::open(settings.pool, url, settings.tls.clone(), user, pass, basic).await;
    let mut link = opened.map_err(|e| SessionFailure::Transport(e.to_string())).inspect_err(|_| {
        state.put_back(own.clone());
        state.own.session_ended();
    })?;
    let mut after: Vec<(String, String)> = Vec::new();
    let mut answered_own = 0;
    let result = async {
        while let Some(tx) = s.poll_transmit() {
            let body = match tx {
                Transmit::Envelope(x) => x,
                Transmit::Empty => String::new(),
            };
            let (status, reply) = link.post(&body).await.map_err(|e| SessionFailure::Transport(e.to_string()))?;
            let status = status.as_u16();
            if status != 200 && status != 204 {
                return Err(SessionFailure::Http(status));
            }
            s.handle_response(status, &reply, Instant::now());
            while let Some(ev) = s.poll_event() {
                match ev {
                    CpeEvent::InformAccepted { .. } => cpe.accepted(last_event, &reported),
                    CpeEvent::Request(req) => {
                        let resp = cpe.carry_out(req, &mut after).await;
                        s.respond(resp, Instant::now()).map_err(|e| SessionFailure::Cwmp(e.to_string()))?;
                    }
                    CpeEvent::RequestAnswered { .. } => answered_own += 1,
                    CpeEvent::Ended { unsent } => state.put_back(unsent),
                    CpeEvent::Failed(e) => return Err(SessionFailure::Cwmp(e.to_string())),
                }
            }
        }
        Ok(())
    }
    .await;
    if result.is_err() {
        // The device's own requests not answered go again next time.
        state.put_back(own.into_iter().skip(answered_own));
    }
    state.own.session_ended();
    result?;
    if let Some(pool) = settings.pool {
        link.finish(pool, url);
    }
    for (code, key) in after {
        cpe.trigger(&code, &key).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(key: &str) -> Body {
        Body::TransferComplete(cwmp::TransferComplete {
            command_key: key.into(),
            fault: cwmp::TransferFault::none(),
            start_time: cwmp::DateTime::unknown(),
            complete_time: cwmp::DateTime::unknown(),
        })
    }

    fn keys(list: &[Body]) -> Vec<String> {
        list.iter()
            .map(|b| match b {
                Body::TransferComplete(t) => t.command_key.clone(),
                other => other.method_name().to_string(),
            })
            .collect()
    }

    #[test]
    fn own_requests_stay_kept_while_a_session_carries_them_and_go_when_answered() {
        let kept: Arc<Mutex<Vec<String>>> = Arc::default();
        let k = kept.clone();
        let saver: OwnSaver = Arc::new(move |own: &[Body]| *k.lock().expect("lock") = keys(own));
        let q = OwnQueue::kept(saver, vec![tc("restored")]);
        q.push(tc("a"));
        assert_eq!(*kept.lock().expect("lock"), ["restored", "a"]);
        // A session takes them: still kept (an agent killed now sends them again).
        assert_eq!(keys(&q.take()), ["restored", "a"]);
        q.push(tc("b"));
        assert_eq!(*kept.lock().expect("lock"), ["restored", "a", "b"], "in flight and queued");
        // It ends with "a" unanswered: "restored" is gone, "a" and "b" stay.
        q.put_back(vec![tc("a")]);
        q.session_ended();
        assert_eq!(*kept.lock().expect("lock"), ["b", "a"]);
        assert_eq!(keys(&q.take()), ["b", "a"]);
        q.session_ended();
        assert_eq!(*kept.lock().expect("lock"), Vec::<String>::new());
    }
}
