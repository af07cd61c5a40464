//! Faults: what devices (or tasks that cannot run) answered, kept until deleted or retried.

use rusqlite::params;
use serde::Serialize;

use super::sqlite::SqliteStore;
use super::Result;

/// A recorded fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// Fault id.
    pub id: i64,
    /// Device id.
    pub device: String,
    /// The task that faulted, if any.
    pub task: Option<i64>,
    /// `cwmp.<code>` for CPE faults, `task.invalid` for tasks that cannot run.
    pub code: String,
    /// Fault string.
    pub message: String,
    /// Per-parameter detail or context.
    pub detail: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// Faults.
pub trait FaultStore {
    /// Records a fault and marks its task faulted (one transaction).
    fn fault(&self, device: &str, task: Option<i64>, code: &str, message: &str, detail: &str, at: i64) -> Result<i64>;
    /// Every fault.
    fn faults(&self) -> Result<Vec<FaultRecord>>;
    /// Deletes a fault; whether it existed.
    fn delete_fault(&self, id: i64) -> Result<bool>;
}

impl FaultStore for SqliteStore {
    fn fault(&self, device: &str, task: Option<i64>, code: &str, message: &str, detail: &str, at: i64) -> Result<i64> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute(
            "INSERT INTO faults (device, task, code, message, detail, timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![device, task, code, message, detail, at],
        )?;
        let id = tx.last_insert_rowid();
        if let Some(t) = task {
            tx.execute("UPDATE tasks SET status = 'fault' WHERE id = ?1", [t])?;
        }
        tx.commit()?;
        Ok(id)
    }

    fn faults(&self) -> Result<Vec<FaultRecord>> {
        let db = self.db();
        let mut st = db.prepare("SELECT id, device, task, code, message, detail, timestamp FROM faults ORDER BY id")?;
        let rows = st
            .query_map([], |r| {
                Ok(FaultRecord {
                    id: r.get(0)?,
                    device: r.get(1)?,
                    task: r.get(2)?,
                    code: r.get(3)?,
                    message: r.get(4)?,
                    detail: r.get(5)?,
                    timestamp: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn delete_fault(&self, id: i64) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM faults WHERE id = ?1", [id])? > 0)
    }
}
