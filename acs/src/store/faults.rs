//! Faults: what devices (or tasks that cannot run) answered, one per device and channel as
//! GenieACS keeps them (`task_<id>` for a task, `default` for presets), kept until deleted or
//! retried.

use rusqlite::params;
use serde::Serialize;

use super::sqlite::SqliteStore;
use super::Result;

/// A recorded fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// Row id (internal; the NBI names a fault by [`FaultRecord::genieacs_id`]).
    pub id: i64,
    /// Device id.
    pub device: String,
    /// GenieACS's channel: `task_<id>` for a task's fault, `default` for presets'.
    pub channel: String,
    /// The task that faulted, if any.
    pub task: Option<i64>,
    /// `cwmp.<code>` for CPE faults, `task.invalid` for tasks that cannot run.
    pub code: String,
    /// Fault string.
    pub message: String,
    /// Per-parameter detail or context.
    pub detail: String,
    /// How many times the channel faulted again before this fault (for a task: how many times
    /// it was sent before the one that faulted).
    pub retries: i64,
    /// Unix seconds.
    pub timestamp: i64,
}

impl FaultRecord {
    /// The fault's id as GenieACS names it: `<device>:<channel>`.
    pub fn genieacs_id(&self) -> String {
        format!("{}:{}", self.device, self.channel)
    }

    /// When a preset channel's fault lets the channel's presets run again (Unix seconds), as
    /// GenieACS's `applyPresets` holds a faulted channel back: `retry_delay` seconds after the
    /// fault (its `cwmp.retryDelay`, 300 by default), doubled for each retry before it.
    pub fn retry_at(&self, retry_delay: i64) -> i64 {
        let factor = 1i64 << self.retries.clamp(0, 32);
        self.timestamp.saturating_add(retry_delay.max(0).saturating_mul(factor))
    }
}

/// The channel of a task's faults (`task_<id>`), or of presets' (`default`).
pub fn channel_of(task: Option<i64>) -> String {
    match task {
        Some(t) => format!("task_{t}"),
        None => "default".into(),
    }
}

/// Faults.
pub trait FaultStore {
    /// Records a fault in the channel of `task` (`default` without one), replacing the
    /// channel's earlier fault, and marks the task faulted (one transaction); the fault's row id.
    fn fault(&self, device: &str, task: Option<i64>, code: &str, message: &str, detail: &str, at: i64) -> Result<i64> {
        self.fault_in(device, &channel_of(task), task, code, message, detail, at)
    }
    /// Records a fault in a named channel (a preset's), as [`FaultStore::fault`] does.
    #[allow(clippy::too_many_arguments)]
    fn fault_in(
        &self,
        device: &str,
        channel: &str,
        task: Option<i64>,
        code: &str,
        message: &str,
        detail: &str,
        at: i64,
    ) -> Result<i64>;
    /// Every fault.
    fn faults(&self) -> Result<Vec<FaultRecord>>;
    /// The faults of one device.
    fn device_faults(&self, device: &str) -> Result<Vec<FaultRecord>>;
    /// Deletes the fault of `device` in `channel`, and with a task's fault (`task_<id>`) the
    /// task too, as GenieACS does; whether a fault existed.
    fn delete_fault(&self, device: &str, channel: &str) -> Result<bool>;
}

pub(crate) const FAULT_COLS: &str = "id, device, channel, task, code, message, detail, retries, timestamp";

/// A fault from the columns [`FAULT_COLS`] names, in that order.
pub(crate) fn fault_of(r: &impl super::Columns) -> Result<FaultRecord> {
    Ok(FaultRecord {
        id: r.int(0)?,
        device: r.text(1)?,
        channel: r.text(2)?,
        task: r.opt_int(3)?,
        code: r.text(4)?,
        message: r.text(5)?,
        detail: r.text(6)?,
        retries: r.int(7)?,
        timestamp: r.int(8)?,
    })
}

fn fault_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FaultRecord> {
    super::in_row(fault_of(r))
}

impl FaultStore for SqliteStore {
    fn fault_in(
        &self,
        device: &str,
        channel: &str,
        task: Option<i64>,
        code: &str,
        message: &str,
        detail: &str,
        at: i64,
    ) -> Result<i64> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        let id = tx.query_row(
            "INSERT INTO faults (device, channel, task, code, message, detail, timestamp, retries)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                     coalesce((SELECT max(attempts - 1, 0) FROM tasks WHERE id = ?3), 0))
             ON CONFLICT (device, channel) DO UPDATE SET
                task = excluded.task, code = excluded.code, message = excluded.message,
                detail = excluded.detail, timestamp = excluded.timestamp,
                retries = max(faults.retries + 1, excluded.retries)
             RETURNING id",
            params![device, channel, task, code, message, detail, at],
            |r| r.get(0),
        )?;
        if let Some(t) = task {
            tx.execute("UPDATE tasks SET status = 'fault' WHERE id = ?1", [t])?;
        }
        tx.commit()?;
        Ok(id)
    }

    fn faults(&self) -> Result<Vec<FaultRecord>> {
        let db = self.db();
        let mut st = db.prepare(&format!("SELECT {FAULT_COLS} FROM faults ORDER BY id"))?;
        let rows = st.query_map([], fault_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn device_faults(&self, device: &str) -> Result<Vec<FaultRecord>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {FAULT_COLS} FROM faults WHERE device = ?1 ORDER BY id"))?;
        let rows = st.query_map([device], fault_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn delete_fault(&self, device: &str, channel: &str) -> Result<bool> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        let n = tx.execute("DELETE FROM faults WHERE device = ?1 AND channel = ?2", params![device, channel])?;
        if let Some(task) = channel.strip_prefix("task_").and_then(|t| t.parse::<i64>().ok()) {
            tx.execute("DELETE FROM tasks WHERE id = ?1 AND device = ?2", params![task, device])?;
        }
        tx.commit()?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_is_retried_after_the_delay_doubled_per_retry() {
        let f = |retries| FaultRecord {
            id: 1,
            device: "d".into(),
            channel: "default".into(),
            task: None,
            code: "cwmp.9008".into(),
            message: String::new(),
            detail: String::new(),
            retries,
            timestamp: 1000,
        };
        assert_eq!(f(0).retry_at(300), 1300, "GenieACS's default: 5 minutes");
        assert_eq!(f(1).retry_at(300), 1600);
        assert_eq!(f(3).retry_at(300), 1000 + 2400);
        assert_eq!(f(0).retry_at(0), 1000, "no delay: due at once");
        assert_eq!(f(1000).retry_at(300), 1000 + (300 << 32), "the doubling stops");
        assert_eq!(f(40).retry_at(i64::MAX), i64::MAX, "no overflow");
    }
}
