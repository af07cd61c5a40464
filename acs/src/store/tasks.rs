//! The durable task queue: tasks of a device in order, sent, retried, done or faulted.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::sqlite::SqliteStore;
use super::{Result, StoreError};

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting for a session.
    Pending,
    /// Sent to the device in a session whose answer was not recorded yet.
    Sent,
    /// Finished; `result` holds the answer.
    Done,
    /// Finished with a fault; see the faults.
    Fault,
}

impl TaskStatus {
    pub(crate) fn parse(s: &str) -> Option<TaskStatus> {
        match s {
            "pending" => Some(TaskStatus::Pending),
            "sent" => Some(TaskStatus::Sent),
            "done" => Some(TaskStatus::Done),
            "fault" => Some(TaskStatus::Fault),
            _ => None,
        }
    }
}

/// A queued task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// Task id.
    pub id: i64,
    /// Device id.
    pub device: String,
    /// What it does (stored as GenieACS's task JSON, `{"name": "getParameterValues", ...}`).
    pub order: crate::tasks::Order,
    /// Where it is.
    pub status: TaskStatus,
    /// How many times it was sent.
    pub attempts: i64,
    /// Unix seconds before which a retry must not run.
    pub not_before: i64,
    /// CommandKey/ParameterKey the task is sent with: `task-<id>-<attempt>`.
    pub key: String,
    /// Unix seconds when it was queued.
    pub created: i64,
    /// The result, once done.
    pub result: Option<serde_json::Value>,
    /// Its `expiry` and `uniqueKey` (kept in the task's JSON).
    pub terms: crate::tasks::Terms,
}

/// A task's stored columns, as either engine reads them.
pub(crate) struct StoredTask<'a> {
    pub id: i64,
    pub device: String,
    pub spec: &'a str,
    pub status: &'a str,
    pub attempts: i64,
    pub not_before: i64,
    pub key: String,
    pub created: i64,
    pub result: Option<&'a str>,
}

impl StoredTask<'_> {
    /// The task, or [`StoreError::Corrupt`] naming what does not decode.
    pub(crate) fn decode(self) -> Result<Task> {
        let id = self.id;
        let status = TaskStatus::parse(self.status).ok_or_else(|| StoreError::Corrupt {
            what: format!("task {id} has an unknown status {:?}", self.status),
        })?;
        let result = match self.result {
            None => None,
            Some(text) => Some(super::json_text(text, &format!("the result of task {id}"))?),
        };
        let spec: serde_json::Value = super::json_text(self.spec, &format!("task {id}"))?;
        let order = crate::tasks::Order::from_json(&spec).map_err(|e| StoreError::Corrupt {
            what: format!("task {id} does not decode ({e}): {:.200}", spec.to_string()),
        })?;
        Ok(Task {
            id,
            device: self.device,
            terms: crate::tasks::Terms::from_stored(&spec),
            order,
            status,
            attempts: self.attempts,
            not_before: self.not_before,
            key: self.key,
            created: self.created,
            result,
        })
    }
}

/// A task from the columns [`TASK_COLS`] names, in that order.
pub(crate) fn task_of(r: &impl super::Columns) -> Result<Task> {
    let (spec, status, result) = (r.text(2)?, r.text(3)?, r.opt_text(8)?);
    StoredTask {
        id: r.int(0)?,
        device: r.text(1)?,
        spec: &spec,
        status: &status,
        attempts: r.int(4)?,
        not_before: r.int(5)?,
        key: r.text(6)?,
        created: r.int(7)?,
        result: result.as_deref(),
    }
    .decode()
}

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    super::in_row(task_of(r))
}

pub(crate) const TASK_COLS: &str = "id, device, spec, status, attempts, not_before, key, created, result";

/// Tasks: queued by the NBI, profiles and migrations; run by the endpoint.
pub trait TaskStore {
    /// Queues a task.
    fn enqueue(&self, device: &str, order: &crate::tasks::Order, now: i64) -> Result<Task> {
        self.enqueue_with(device, order, &crate::tasks::Terms::default(), now)
    }
    /// Queues a task with its terms; with a `uniqueKey`, the device's task of that key that is
    /// not done yet (and its fault) is deleted first, in the same transaction (GenieACS's
    /// `insertTasks`).
    fn enqueue_with(
        &self,
        device: &str,
        order: &crate::tasks::Order,
        terms: &crate::tasks::Terms,
        now: i64,
    ) -> Result<Task>;
    /// Deletes the device's tasks whose `expiry` is at or before `now_ms` (milliseconds) and
    /// that are waiting or faulted, with their faults; those deleted. A task sent and awaiting
    /// its TransferComplete stays.
    fn expire_tasks(&self, device: &str, now_ms: i64) -> Result<Vec<Task>>;
    /// A task by id.
    fn task(&self, id: i64) -> Result<Option<Task>>;
    /// Tasks, all or of one device.
    fn tasks(&self, device: Option<&str>) -> Result<Vec<Task>>;
    /// How many tasks there are of each status (`pending`, `sent`, `fault`, `done`).
    fn count_by_status(&self) -> Result<Vec<(String, i64)>>;
    /// Tasks of a device that are pending or sent, oldest first.
    fn open_tasks(&self, device: &str) -> Result<Vec<Task>>;
    /// Claims a pending task and marks it sent under `key` (durably, before it leaves), in one
    /// statement; `false` when it is not pending any more (another node's session sent it, the
    /// NBI deleted it) or this node does not hold its device's lease ([`LeaseStore`]).
    ///
    /// [`LeaseStore`]: super::LeaseStore
    fn mark_sent(&self, id: i64, key: &str) -> Result<bool>;
    /// Records that the device accepted a sent transfer task (its response's `status` 1: done
    /// later, reported by a TransferComplete or DUStateChangeComplete), as the task's interim
    /// `result`; the task stays sent.
    fn mark_accepted(&self, id: i64, result: &serde_json::Value) -> Result<()>;
    /// Makes a task pending again, not before `not_before` (Unix seconds).
    fn mark_pending(&self, id: i64, not_before: i64) -> Result<()>;
    /// Marks a task done with its result.
    fn complete(&self, id: i64, result: &serde_json::Value) -> Result<()>;
    /// Deletes a task and its faults; whether it existed.
    fn delete_task(&self, id: i64) -> Result<bool>;
    /// Makes a faulted task pending again and drops its faults; whether the task is still to
    /// run (a task done, or not there, is not: GenieACS has deleted it by then).
    fn retry_task(&self, id: i64) -> Result<bool>;
}

impl TaskStore for SqliteStore {
    fn enqueue_with(
        &self,
        device: &str,
        order: &crate::tasks::Order,
        terms: &crate::tasks::Terms,
        now: i64,
    ) -> Result<Task> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        if let Some(key) = &terms.unique_key {
            let same = "SELECT id FROM tasks WHERE device = ?1 AND status <> 'done'
                        AND json_extract(spec, '$.uniqueKey') = ?2";
            tx.execute(&format!("DELETE FROM faults WHERE task IN ({same})"), params![device, key])?;
            let replaced = tx.execute(&format!("DELETE FROM tasks WHERE id IN ({same})"), params![device, key])?;
            if replaced > 0 {
                tracing::info!(device, unique_key = %key, replaced, "a task replaced by one of the same uniqueKey");
            }
        }
        let mut spec = order.to_json();
        terms.add_to(&mut spec);
        tx.execute(
            "INSERT INTO tasks (device, spec, status, created) VALUES (?1, ?2, 'pending', ?3)",
            params![device, spec.to_string(), now],
        )?;
        let id = tx.last_insert_rowid();
        let task =
            tx.prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"))?.query_row([id], task_row)?;
        tx.commit()?;
        Ok(task)
    }

    fn expire_tasks(&self, device: &str, now_ms: i64) -> Result<Vec<Task>> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        let candidates = {
            let mut st = tx.prepare_cached(&format!(
                "SELECT {TASK_COLS} FROM tasks WHERE device = ?1 AND status IN ('pending', 'fault')
                 AND json_extract(spec, '$.expiry') IS NOT NULL"
            ))?;
            let rows = st.query_map([device], task_row)?;
            // A task that does not decode is open_tasks' to fault, not this one's to expire.
            rows.filter_map(|t| t.ok()).filter(|t| t.terms.expired(now_ms)).collect::<Vec<_>>()
        };
        for t in &candidates {
            tx.execute("DELETE FROM faults WHERE task = ?1", [t.id])?;
            tx.execute("DELETE FROM tasks WHERE id = ?1", [t.id])?;
        }
        tx.commit()?;
        Ok(candidates)
    }

    fn task(&self, id: i64) -> Result<Option<Task>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"))?;
        Ok(st.query_row([id], task_row).optional()?)
    }

    fn tasks(&self, device: Option<&str>) -> Result<Vec<Task>> {
        let db = self.db();
        let mut st =
            db.prepare(&format!("SELECT {TASK_COLS} FROM tasks WHERE ?1 IS NULL OR device = ?1 ORDER BY id"))?;
        let rows = st.query_map([device], task_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn count_by_status(&self) -> Result<Vec<(String, i64)>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT status, COUNT(*) FROM tasks GROUP BY status")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn open_tasks(&self, device: &str) -> Result<Vec<Task>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "SELECT {TASK_COLS} FROM tasks WHERE device = ?1 AND status IN ('pending', 'sent') ORDER BY id"
        ))?;
        // A task that does not decode (a row written by hand or by a newer ACS) must not hold up
        // the device's other tasks: it is faulted as `task.invalid`, as one that cannot run.
        let mut open = Vec::new();
        let mut invalid = Vec::new();
        let mut rows = st.query([device])?;
        while let Some(r) = rows.next()? {
            match task_row(r).map_err(StoreError::from) {
                Ok(t) => open.push(t),
                Err(StoreError::Corrupt { what }) => invalid.push((r.get::<_, i64>(0)?, what)),
                Err(e) => return Err(e),
            }
        }
        drop(rows);
        drop(st);
        for (id, what) in invalid {
            tracing::error!(device, task = id, "faulting a stored task that cannot run: {what}");
            let tx = db.unchecked_transaction()?;
            let failure = crate::tasks::Failure::Invalid(what);
            tx.execute(
                "INSERT INTO faults (device, channel, task, code, message, detail, timestamp)
                 VALUES (?1, 'task_' || ?2, ?2, ?3, ?4, '', strftime('%s', 'now'))
                 ON CONFLICT (device, channel) DO UPDATE SET code = excluded.code,
                    message = excluded.message, detail = '', timestamp = excluded.timestamp,
                    retries = faults.retries + 1",
                params![device, id, failure.code(), failure.message()],
            )?;
            tx.execute("UPDATE tasks SET status = 'fault' WHERE id = ?1", [id])?;
            tx.commit()?;
        }
        Ok(open)
    }

    fn mark_sent(&self, id: i64, key: &str) -> Result<bool> {
        let n = self
            .db()
            .prepare_cached(
                "UPDATE tasks SET status = 'sent', key = ?2, attempts = attempts + 1, result = NULL
                 WHERE id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, key])?;
        Ok(n == 1)
    }

    fn mark_accepted(&self, id: i64, result: &serde_json::Value) -> Result<()> {
        self.db()
            .prepare_cached("UPDATE tasks SET result = ?2 WHERE id = ?1 AND status = 'sent'")?
            .execute(params![id, result.to_string()])?;
        Ok(())
    }

    fn mark_pending(&self, id: i64, not_before: i64) -> Result<()> {
        self.db()
            .prepare_cached("UPDATE tasks SET status = 'pending', not_before = ?2 WHERE id = ?1")?
            .execute(params![id, not_before])?;
        Ok(())
    }

    fn complete(&self, id: i64, result: &serde_json::Value) -> Result<()> {
        self.db()
            .prepare_cached("UPDATE tasks SET status = 'done', result = ?2 WHERE id = ?1")?
            .execute(params![id, result.to_string()])?;
        Ok(())
    }

    fn delete_task(&self, id: i64) -> Result<bool> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        let n = tx.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM faults WHERE task = ?1", [id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn retry_task(&self, id: i64) -> Result<bool> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute("UPDATE tasks SET status = 'pending', not_before = 0 WHERE id = ?1 AND status = 'fault'", [id])?;
        tx.execute("DELETE FROM faults WHERE task = ?1", [id])?;
        let open: i64 =
            tx.query_row("SELECT count(*) FROM tasks WHERE id = ?1 AND status <> 'done'", [id], |r| r.get(0))?;
        tx.commit()?;
        Ok(open > 0)
    }
}
