//! Writes deferred for the next group commit, shared by the engines: the parameter cache, what
//! CPEs tell of their paths, the event log and a known device's Inform details are queued and
//! written a few milliseconds later, many sessions' worth in one transaction. Reads of what is
//! queued flush first, so a node always reads its own writes.
//!
//! Locks: an engine that has a lock of its own on the database (SQLite's connection) takes it
//! before [`Deferred::flush`] or [`Deferred::without`]; those take the queue's write lock (held
//! for the whole write, so a reader's flush waits for a batch another thread has taken but not
//! committed), then the queue itself, briefly.

use std::sync::{Mutex, MutexGuard, OnceLock};

use super::{CachedParam, Device, PathInfo, Result};

/// A deferred write.
pub(crate) enum Pending {
    /// A known device's details from its latest Inform.
    Device(Device),
    /// Values read from a device.
    Params(String, Vec<CachedParam>),
    /// What a device told of its paths besides values (GetParameterNames, GetParameterAttributes).
    PathInfo(String, Vec<PathInfo>),
    /// An Inform event: device, code, command key, time.
    Event(String, String, String, i64),
}

impl Pending {
    fn device(&self) -> &str {
        match self {
            Pending::Device(d) => &d.id,
            Pending::Params(dev, _) | Pending::PathInfo(dev, _) | Pending::Event(dev, ..) => dev,
        }
    }
}

/// The queue of deferred writes and the group commit's counters.
#[derive(Default)]
pub(crate) struct Deferred {
    queue: Mutex<Vec<Pending>>,
    /// Held while a batch is being written.
    writing: Mutex<()>,
    metrics: OnceLock<crate::metrics::StoreMetrics>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Deferred {
    /// Queues a write.
    pub(crate) fn push(&self, p: Pending) {
        lock(&self.queue).push(p);
    }

    /// Queues several writes.
    pub(crate) fn extend(&self, ps: impl IntoIterator<Item = Pending>) {
        lock(&self.queue).extend(ps);
    }

    /// Counts the group commits into `m` from now on (once; later calls change nothing).
    pub(crate) fn set_metrics(&self, m: crate::metrics::StoreMetrics) {
        let _ = self.metrics.set(m);
    }

    /// Writes what is queued with `write` (one transaction, all or nothing). On failure nothing
    /// is dropped: the batch goes back before what was queued meanwhile, for the next flush.
    pub(crate) fn flush(&self, write: impl FnOnce(&[Pending]) -> Result<()>) -> Result<()> {
        let _writing = lock(&self.writing);
        let batch = std::mem::take(&mut *lock(&self.queue));
        if batch.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let written = write(&batch);
        if let Some(m) = self.metrics.get() {
            m.flush_seconds.observe(started.elapsed().as_secs_f64());
            m.batch_writes.observe(batch.len() as f64);
            if written.is_err() {
                m.flush_failures.inc();
            }
        }
        if let Err(e) = written {
            let mut queue = lock(&self.queue);
            let newer = std::mem::replace(&mut *queue, batch);
            queue.extend(newer);
            tracing::error!(writes = queue.len(), "the cache's group commit failed, kept to retry: {e}");
            return Err(e);
        }
        Ok(())
    }

    /// Drops what is queued for `device` and runs `then` (its deletion) while no batch is being
    /// written, so none puts back what `then` deletes.
    pub(crate) fn without<T>(&self, device: &str, then: impl FnOnce() -> Result<T>) -> Result<T> {
        let _writing = lock(&self.writing);
        lock(&self.queue).retain(|w| w.device() != device);
        then()
    }
}
