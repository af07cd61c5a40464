//! The host's own thread. [`Host`] calls libvirt, `ovs-vsctl` and the proxies synchronously, so
//! it lives on a thread of its own; async code sends it jobs. Between jobs the thread does the
//! background work: one pool step at a time, pushing profiles to vRGWs that just came up, and
//! every few seconds reading the domains' states (lifecycle changes) and the value changes that
//! must be notified. After every job and every poll it publishes what the CWMP side reads
//! without it ([`Shared`]): Informs and connection requests never wait for this thread, which
//! may be waiting for libvirt (at most a call's deadline, see [`crate::compute`]) or a vRGW.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};

use crate::host::{Host, Shared};

type Job = Box<dyn FnOnce(&mut Host) + Send>;

/// A handle to the host thread.
#[derive(Clone)]
pub struct HostHandle {
    tx: mpsc::Sender<Job>,
    shared: Shared,
}

impl std::fmt::Debug for HostHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostHandle")
    }
}

/// The host thread is gone (it panicked).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the host thread stopped")]
pub struct Gone;

impl HostHandle {
    /// What the CWMP side reads without the host thread.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Runs `f` on the host thread and returns its result (once what it changed is published).
    pub async fn run<R: Send + 'static>(&self, f: impl FnOnce(&mut Host) -> R + Send + 'static) -> Result<R, Gone> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move |h| {
                let r = f(h);
                h.publish();
                let _ = tx.send(r);
            }))
            .map_err(|_| Gone)?;
        rx.await.map_err(|_| Gone)
    }

    /// The same from a thread outside the runtime.
    pub fn run_blocking<R: Send + 'static>(&self, f: impl FnOnce(&mut Host) -> R + Send + 'static) -> Result<R, Gone> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx
            .send(Box::new(move |h| {
                let r = f(h);
                h.publish();
                let _ = tx.send(r);
            }))
            .map_err(|_| Gone)?;
        rx.recv().map_err(|_| Gone)
    }
}

/// How often the thread reads states and value changes when idle.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between two reads of the domains' states.
    pub poll: Duration,
    /// Between two pool steps while a pool is not at its target.
    pub pool_step: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing { poll: Duration::from_secs(2), pool_step: Duration::from_millis(10) }
    }
}

/// Instances read per slice of a round (about 35 ms on libvirt's test driver with a thousand
/// domains: what a job may wait).
const STATS_SLICE: usize = 50;

/// Starts the host thread. `changed` is notified when a parameter with active notification
/// changed (the agent then opens a session with "4 VALUE CHANGE").
pub fn spawn(mut host: Host, timing: Timing, changed: std::sync::Arc<Notify>) -> HostHandle {
    let (tx, rx) = mpsc::channel::<Job>();
    let shared = host.shared();
    std::thread::Builder::new()
        .name("host".into())
        .spawn(move || {
            let mut next_poll = Instant::now();
            let mut pool_busy = true;
            // A round of reading the instances under way: the last instance read. The round
            // goes in slices with the jobs that come meanwhile run between them, so a session
            // never waits for a whole round (a thousand domains take most of a second).
            let mut round: Option<u32> = None;
            loop {
                let wait = if round.is_some() {
                    Duration::ZERO
                } else if pool_busy {
                    timing.pool_step
                } else {
                    next_poll.saturating_duration_since(Instant::now())
                };
                match rx.recv_timeout(wait) {
                    Ok(job) => {
                        job(&mut host);
                        pool_busy = true;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
                // A live migration's end is picked up at once.
                let migrating = host.migration_poll();
                // While libvirt does not answer, pools wait (their steps would fail at once).
                if pool_busy && host.libvirt_answers() {
                    pool_busy = match host.pool_step() {
                        Ok(did) => did,
                        Err(e) => {
                            tracing::error!("pool: {e}");
                            false
                        }
                    };
                }
                pool_busy |= migrating;
                if round.is_none() && Instant::now() >= next_poll {
                    // Pool domains still booting are looked at again.
                    pool_busy = true;
                    round = Some(0);
                }
                if let Some(after) = round {
                    round = host.refresh_stats_slice(after, STATS_SLICE);
                    if round.is_none() {
                        host.sync_proxies();
                        if host.collect_changes() {
                            changed.notify_one();
                        }
                        host.publish();
                        next_poll = Instant::now() + timing.poll;
                    }
                }
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!("the host thread could not start: {e}"));
    HostHandle { tx, shared }
}
