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
    /// Deletes the fault of `device` in `channel`, and with a task's fault (`task_<id>`) the
    /// task too, as GenieACS does; whether a fault existed.
    fn delete_fault(&self, device: &str, channel: &str) -> Result<bool>;
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
        let mut st = db.prepare(
            "SELECT id, device, channel, task, code, message, detail, retries, timestamp FROM faults ORDER BY id",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok(FaultRecord {
                    id: r.get(0)?,
                    device: r.get(1)?,
                    channel: r.get(2)?,
                    task: r.get(3)?,
                    code: r.get(4)?,
                    message: r.get(5)?,
                    detail: r.get(6)?,
                    retries: r.get(7)?,
                    timestamp: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
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
