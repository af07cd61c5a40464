//! Every aggregate's trait on PostgreSQL: the same statements as SQLite's in PostgreSQL's
//! dialect, rows decoded by the same decoders (each aggregate's `*_of` over
//! [`Columns`](crate::store::Columns), JSON columns by [`json_text`]).

use ::postgres::Row;

use super::{PgStore, TASK_EVENTS};
use crate::store::credentials::{credential_of as credential, COLUMNS as CREDENTIAL_COLS};
use crate::store::deferred::Pending;
use crate::store::devices::{
    deferred_inform, device_of as device, lifecycle_of as lifecycle, Lifecycle, DEVICE_COLS, DEVICE_TABLES,
};
use crate::store::faults::{fault_of as fault, FAULT_COLS};
use crate::store::files::FileInfo;
use crate::store::placements::placement_of as placement;
use crate::store::tasks::{task_of as task, TASK_COLS};
use crate::store::{
    json_text, CachedParam, CpeCredential, CredentialStore, Device, DeviceStore, FaultRecord, FaultStore, FileStore,
    LeaseStore, MigrationStore, Need, ParamStore, PathInfo, Placement, PlacementStore, PortalSession, PresetStore,
    Result, Scope, ScriptKind, StoreError, Subscriber, SubscriberStore, Task, TaskStore,
};

fn all<T>(rows: Vec<Row>, f: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

fn pair(r: &Row) -> Result<(String, String)> {
    Ok((r.try_get(0)?, r.try_get(1)?))
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

impl DeviceStore for PgStore {
    fn record_inform(&self, d: &Device) -> Result<bool> {
        self.record_session_start(d, &[], &[])
    }

    fn record_session_start(&self, d: &Device, ps: &[CachedParam], events: &[(String, String)]) -> Result<bool> {
        let at = |code: &str| events.iter().any(|(c, _)| c == code).then_some(d.last_inform);
        let (boot, bootstrap) = (at(cwmp::event::BOOT), at(cwmp::event::BOOTSTRAP));
        // One round trip for the common case: the insert of a known device does nothing.
        let new = self.with(|c| {
            let inserted = c.execute(
                "INSERT INTO devices (id, manufacturer, oui, product_class, serial_number, cr_url, cr_username,
                 cr_password, last_inform, tags, created, last_boot, last_bootstrap)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $11, $12)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &d.id,
                    &d.manufacturer,
                    &d.oui,
                    &d.product_class,
                    &d.serial_number,
                    &d.cr_url,
                    &d.cr_username,
                    &d.cr_password,
                    &d.last_inform,
                    &tags_json(&d.tags),
                    &boot,
                    &bootstrap,
                ],
            )? == 1;
            if !inserted && (boot.is_some() || bootstrap.is_some()) {
                c.execute(
                    "UPDATE devices SET last_boot = coalesce($2, last_boot),
                     last_bootstrap = coalesce($3, last_bootstrap) WHERE id = $1",
                    &[&d.id, &boot, &bootstrap],
                )?;
            }
            Ok(inserted)
        })?;
        self.deferred.extend(deferred_inform(d, !new, ps, events));
        Ok(new)
    }

    fn device(&self, id: &str) -> Result<Option<Device>> {
        self.flushed(|c| {
            c.query_opt(&format!("SELECT {DEVICE_COLS} FROM devices WHERE id = $1"), &[&id])?
                .as_ref()
                .map(device)
                .transpose()
        })
    }

    fn devices(&self) -> Result<Vec<Device>> {
        self.flushed(|c| all(c.query(&format!("SELECT {DEVICE_COLS} FROM devices ORDER BY id"), &[])?, device))
    }

    fn device_records(&self) -> Result<Vec<(Device, Lifecycle)>> {
        self.flushed(|c| {
            let rows = c.query(
                &format!("SELECT {DEVICE_COLS}, created, last_boot, last_bootstrap FROM devices ORDER BY id"),
                &[],
            )?;
            all(rows, |r| Ok((device(r)?, lifecycle(r, 10)?)))
        })
    }

    fn device_records_with(&self, need: &[Need]) -> Result<Vec<(Device, Lifecycle)>> {
        if need.is_empty() {
            return self.device_records();
        }
        let mut sql = format!("SELECT {DEVICE_COLS}, created, last_boot, last_bootstrap FROM devices WHERE true");
        let mut args: Vec<String> = Vec::new();
        for n in need {
            match n {
                Need::Tag(t) => {
                    args.push(t.clone());
                    sql.push_str(&format!(" AND (tags::jsonb) ? ${}", args.len()));
                }
                Need::Value { name, value } => {
                    args.extend([name.clone(), value.clone()]);
                    let (a, b) = (args.len() - 1, args.len());
                    sql.push_str(&format!(
                        " AND id IN (SELECT device FROM params WHERE name = ${a} AND md5(value) = md5(${b}) AND value = ${b})"
                    ));
                }
            }
        }
        sql.push_str(" ORDER BY id");
        let params: Vec<&(dyn ::postgres::types::ToSql + Sync)> =
            args.iter().map(|a| a as &(dyn ::postgres::types::ToSql + Sync)).collect();
        self.flushed(|c| all(c.query(&sql, &params)?, |r| Ok((device(r)?, lifecycle(r, 10)?))))
    }

    fn lifecycle(&self, id: &str) -> Result<Option<Lifecycle>> {
        self.with(|c| {
            c.query_opt("SELECT created, last_boot, last_bootstrap FROM devices WHERE id = $1", &[&id])?
                .map(|r| lifecycle(&r, 0))
                .transpose()
        })
    }

    fn delete_device(&self, id: &str) -> Result<bool> {
        self.deferred.without(id, || {
            self.with(|c| {
                let mut tx = c.transaction()?;
                let known = tx.execute("DELETE FROM devices WHERE id = $1", &[&id])? > 0;
                for table in DEVICE_TABLES {
                    tx.execute(&format!("DELETE FROM {table} WHERE device = $1"), &[&id])?;
                }
                tx.commit()?;
                Ok(known)
            })
        })
    }

    fn set_tags(&self, id: &str, tags: &[String]) -> Result<()> {
        self.flushed(|c| {
            c.execute("UPDATE devices SET tags = $2 WHERE id = $1", &[&id, &tags_json(tags)])?;
            Ok(())
        })
    }

    fn add_event(&self, device: &str, code: &str, command_key: &str, at: i64) -> Result<()> {
        self.flushed(|c| {
            c.execute(
                "INSERT INTO events (device, code, command_key, timestamp) VALUES ($1, $2, $3, $4)",
                &[&device, &code, &command_key, &at],
            )?;
            Ok(())
        })
    }

    fn events(&self, device: &str) -> Result<Vec<(String, String, i64)>> {
        self.flushed(|c| {
            let rows =
                c.query("SELECT code, command_key, timestamp FROM events WHERE device = $1 ORDER BY id", &[&device])?;
            all(rows, |r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        })
    }

    fn cr_credentials(&self, device: &str) -> Result<Option<(String, String)>> {
        let row = self.with(|c| {
            c.query_opt("SELECT cr_username, cr_password FROM devices WHERE id = $1", &[&device])?
                .as_ref()
                .map(pair)
                .transpose()
        })?;
        Ok(row.filter(|(u, p)| !u.is_empty() || !p.is_empty()))
    }

    fn set_cr_credentials(&self, device: &str, username: &str, password: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE devices SET cr_username = $2, cr_password = $3 WHERE id = $1",
                &[&device, &username, &password],
            )?;
            Ok(())
        })
    }
}

impl ParamStore for PgStore {
    fn cache_params(&self, device: &str, ps: &[CachedParam]) -> Result<()> {
        self.deferred.push(Pending::Params(device.to_string(), ps.to_vec()));
        Ok(())
    }

    fn forget_params(&self, device: &str, prefix: &str) -> Result<()> {
        self.flushed(|c| {
            let mut tx = c.transaction()?;
            for table in ["params", "path_info"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE device = $1 AND starts_with(name, $2)"),
                    &[&device, &prefix],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn forget_param_names(&self, device: &str, names: &[String]) -> Result<()> {
        self.flushed(|c| {
            let mut tx = c.transaction()?;
            for table in ["params", "path_info"] {
                tx.execute(&format!("DELETE FROM {table} WHERE device = $1 AND name = ANY($2)"), &[&device, &names])?;
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn params(&self, device: &str) -> Result<Vec<CachedParam>> {
        self.flushed(|c| {
            let rows =
                c.query("SELECT name, type, value, updated FROM params WHERE device = $1 ORDER BY name", &[&device])?;
            all(rows, |r| {
                Ok(CachedParam { name: r.try_get(0)?, ty: r.try_get(1)?, value: r.try_get(2)?, updated: r.try_get(3)? })
            })
        })
    }

    fn subscriber_params(&self, value: &str) -> Result<Vec<(String, String)>> {
        self.flushed(|c| {
            let rows = c.query(
                "SELECT device, name FROM params WHERE right(name, 11) = '.Subscriber' AND value = $1",
                &[&value],
            )?;
            all(rows, pair)
        })
    }

    fn subscriber_rows(&self, device: &str) -> Result<Vec<(String, String)>> {
        self.flushed(|c| {
            let rows = c.query(
                "SELECT name, value FROM params WHERE device = $1 AND right(name, 11) = '.Subscriber'",
                &[&device],
            )?;
            all(rows, pair)
        })
    }

    fn cache_path_info(&self, device: &str, info: &[PathInfo]) -> Result<()> {
        if !info.is_empty() {
            self.deferred.push(Pending::PathInfo(device.to_string(), info.to_vec()));
        }
        Ok(())
    }

    fn path_info(&self, device: &str) -> Result<Vec<PathInfo>> {
        self.flushed(|c| {
            let rows = c.query(
                "SELECT name, writable, listed, notification, access_list, attributes_read FROM path_info
                 WHERE device = $1 ORDER BY name",
                &[&device],
            )?;
            all(rows, |r| {
                let name: String = r.try_get(0)?;
                let access: Option<String> = r.try_get(4)?;
                let notification: Option<i64> = r.try_get(3)?;
                Ok(PathInfo {
                    writable: r.try_get(1)?,
                    listed: r.try_get(2)?,
                    notification: notification
                        .map(|n| {
                            u32::try_from(n).map_err(|_| StoreError::Corrupt {
                                what: format!("the notification of {name} of device {device} is {n}"),
                            })
                        })
                        .transpose()?,
                    access_list: access
                        .map(|a| json_text(&a, &format!("the access list of {name} of device {device}")))
                        .transpose()?,
                    attributes_read: r.try_get(5)?,
                    name,
                })
            })
        })
    }

    fn cached_names(&self, device: &str) -> Result<Vec<String>> {
        self.flushed(|c| {
            let rows = c.query(
                "SELECT name FROM params WHERE device = $1 UNION SELECT name FROM path_info WHERE device = $1
                 ORDER BY 1",
                &[&device],
            )?;
            all(rows, |r| Ok(r.try_get(0)?))
        })
    }
}

/// Faults a stored task that does not decode (see `open_tasks`), in its own transaction.
fn fault_invalid(c: &mut super::conn::Conn, device: &str, id: i64, what: String) -> Result<()> {
    tracing::error!(device, task = id, "faulting a stored task that cannot run: {what}");
    let failure = crate::tasks::Failure::Invalid(what);
    let mut tx = c.transaction()?;
    tx.execute(
        "INSERT INTO faults (device, channel, task, code, message, detail, timestamp)
         VALUES ($1, 'task_' || $2::bigint, $2, $3, $4, '', extract(epoch FROM now())::bigint)
         ON CONFLICT (device, channel) DO UPDATE SET code = excluded.code,
            message = excluded.message, detail = '', timestamp = excluded.timestamp,
            retries = faults.retries + 1",
        &[&device, &id, &failure.code(), &failure.message()],
    )?;
    tx.execute("UPDATE tasks SET status = 'fault' WHERE id = $1", &[&id])?;
    tx.commit()?;
    Ok(())
}

impl TaskStore for PgStore {
    fn enqueue_with(
        &self,
        device: &str,
        order: &crate::tasks::Order,
        terms: &crate::tasks::Terms,
        now: i64,
    ) -> Result<Task> {
        let mut spec = order.to_json();
        terms.add_to(&mut spec);
        let spec = spec.to_string();
        self.with(|c| {
            let mut tx = c.transaction()?;
            if let Some(key) = &terms.unique_key {
                let same = "SELECT id FROM tasks WHERE device = $1 AND status <> 'done'
                            AND (spec::jsonb) ->> 'uniqueKey' = $2";
                tx.execute(&format!("DELETE FROM faults WHERE task IN ({same})"), &[&device, key])?;
                let replaced = tx.execute(&format!("DELETE FROM tasks WHERE id IN ({same})"), &[&device, key])?;
                if replaced > 0 {
                    tracing::info!(device, unique_key = %key, replaced, "a task replaced by one of the same uniqueKey");
                }
            }
            let row = tx.query_one(
                &format!(
                    "INSERT INTO tasks (device, spec, status, created) VALUES ($1, $2, 'pending', $3)
                     RETURNING {TASK_COLS}"
                ),
                &[&device, &spec, &now],
            )?;
            let t = task(&row)?;
            tx.commit()?;
            Ok(t)
        })
    }

    fn expire_tasks(&self, device: &str, now_ms: i64) -> Result<Vec<Task>> {
        self.with(|c| {
            // Read first, outside a transaction: at most Informs nothing has expired.
            let rows = c.query(
                &format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE device = $1 AND status IN ('pending', 'fault')
                     AND (spec::jsonb -> 'expiry') IS NOT NULL"
                ),
                &[&device],
            )?;
            // A task that does not decode is open_tasks' to fault, not this one's to expire.
            let expired: Vec<Task> =
                rows.iter().filter_map(|r| task(r).ok()).filter(|t| t.terms.expired(now_ms)).collect();
            if expired.is_empty() {
                return Ok(expired);
            }
            let ids: Vec<i64> = expired.iter().map(|t| t.id).collect();
            let mut tx = c.transaction()?;
            // Only those still waiting or faulted (a session elsewhere may have sent one since).
            let gone: Vec<i64> = tx
                .query("DELETE FROM tasks WHERE id = ANY($1) AND status IN ('pending', 'fault') RETURNING id", &[&ids])?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            tx.execute("DELETE FROM faults WHERE task = ANY($1)", &[&gone])?;
            tx.commit()?;
            Ok(expired.into_iter().filter(|t| gone.contains(&t.id)).collect())
        })
    }

    fn task(&self, id: i64) -> Result<Option<Task>> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = $1"), &[&id])?.as_ref().map(task).transpose()
        })
    }

    fn tasks(&self, device: Option<&str>) -> Result<Vec<Task>> {
        self.with(|c| {
            let rows = c.query(
                &format!("SELECT {TASK_COLS} FROM tasks WHERE $1::text IS NULL OR device = $1 ORDER BY id"),
                &[&device],
            )?;
            all(rows, task)
        })
    }

    fn count_by_status(&self) -> Result<Vec<(String, i64)>> {
        self.with(|c| {
            let rows = c.query("SELECT status, count(*) FROM tasks GROUP BY status ORDER BY status", &[])?;
            all(rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
        })
    }

    fn open_tasks(&self, device: &str) -> Result<Vec<Task>> {
        self.with(|c| {
            let rows = c.query(
                &format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE device = $1 AND status IN ('pending', 'sent') ORDER BY id"
                ),
                &[&device],
            )?;
            // A task that does not decode (a row written by hand or by a newer ACS) must not hold
            // up the device's other tasks: it is faulted as `task.invalid`.
            let mut open = Vec::new();
            for r in &rows {
                match task(r) {
                    Ok(t) => open.push(t),
                    Err(StoreError::Corrupt { what }) => fault_invalid(c, device, r.try_get(0)?, what)?,
                    Err(e) => return Err(e),
                }
            }
            Ok(open)
        })
    }

    fn mark_sent(&self, id: i64, key: &str) -> Result<bool> {
        // The claim: one statement, so of two nodes racing for a task one updates it and the
        // other, waiting on the row's lock, finds it sent and updates nothing.
        self.with(|c| {
            let n = c.execute(
                "UPDATE tasks SET status = 'sent', key = $2, attempts = attempts + 1, result = NULL
                 WHERE id = $1 AND status = 'pending'
                   AND EXISTS (SELECT 1 FROM leases l WHERE l.key = 'device:' || tasks.device AND l.node = $3
                               AND l.expires >= extract(epoch FROM clock_timestamp())::bigint)",
                &[&id, &key, &self.node],
            )?;
            Ok(n == 1)
        })
    }

    fn mark_accepted(&self, id: i64, result: &serde_json::Value) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE tasks SET result = $2 WHERE id = $1 AND status = 'sent'", &[&id, &result.to_string()])?;
            Ok(())
        })
    }

    fn mark_pending(&self, id: i64, not_before: i64) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE tasks SET status = 'pending', not_before = $2 WHERE id = $1", &[&id, &not_before])?;
            Ok(())
        })
    }

    fn complete(&self, id: i64, result: &serde_json::Value) -> Result<()> {
        // Other nodes' waiters are told on commit.
        self.with(|c| {
            c.query(
                &format!(
                    "WITH done AS (UPDATE tasks SET status = 'done', result = $2 WHERE id = $1 RETURNING id)
                     SELECT pg_notify('{TASK_EVENTS}', id::text) FROM done"
                ),
                &[&id, &result.to_string()],
            )?;
            Ok(())
        })
    }

    fn delete_task(&self, id: i64) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let n = tx.execute("DELETE FROM tasks WHERE id = $1", &[&id])?;
            tx.execute("DELETE FROM faults WHERE task = $1", &[&id])?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn retry_task(&self, id: i64) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "UPDATE tasks SET status = 'pending', not_before = 0 WHERE id = $1 AND status = 'fault'",
                &[&id],
            )?;
            tx.execute("DELETE FROM faults WHERE task = $1", &[&id])?;
            let open = tx.query_opt("SELECT 1 FROM tasks WHERE id = $1 AND status <> 'done'", &[&id])?.is_some();
            tx.commit()?;
            Ok(open)
        })
    }
}

impl LeaseStore for PgStore {
    fn lease(&self, key: &str, ttl_secs: i64) -> Result<bool> {
        self.with(|c| {
            let row = c.query_opt(
                "INSERT INTO leases (key, node, expires)
                 VALUES ($1, $2, extract(epoch FROM clock_timestamp())::bigint + $3)
                 ON CONFLICT (key) DO UPDATE SET node = excluded.node, expires = excluded.expires
                 WHERE leases.node = excluded.node OR leases.expires < extract(epoch FROM clock_timestamp())::bigint
                 RETURNING node",
                &[&key, &self.node, &ttl_secs],
            )?;
            Ok(row.is_some())
        })
    }

    fn release(&self, key: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM leases WHERE key = $1 AND node = $2", &[&key, &self.node])?;
            Ok(())
        })
    }

    fn held(&self, key: &str) -> Result<bool> {
        self.with(|c| {
            let row = c.query_opt(
                "SELECT 1 FROM leases WHERE key = $1 AND expires >= extract(epoch FROM clock_timestamp())::bigint",
                &[&key],
            )?;
            Ok(row.is_some())
        })
    }
}

impl FaultStore for PgStore {
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
        self.with(|c| {
            let mut tx = c.transaction()?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO faults (device, channel, task, code, message, detail, timestamp, retries)
                     VALUES ($1, $2, $3, $4, $5, $6, $7,
                             coalesce((SELECT greatest(attempts - 1, 0) FROM tasks WHERE id = $3), 0))
                     ON CONFLICT (device, channel) DO UPDATE SET
                        task = excluded.task, code = excluded.code, message = excluded.message,
                        detail = excluded.detail, timestamp = excluded.timestamp,
                        retries = greatest(faults.retries + 1, excluded.retries)
                     RETURNING id",
                    &[&device, &channel, &task, &code, &message, &detail, &at],
                )?
                .try_get(0)?;
            if let Some(t) = task {
                tx.execute("UPDATE tasks SET status = 'fault' WHERE id = $1", &[&t])?;
                tx.execute(&format!("SELECT pg_notify('{TASK_EVENTS}', $1::bigint::text)"), &[&t])?;
            }
            tx.commit()?;
            Ok(id)
        })
    }

    fn faults(&self) -> Result<Vec<FaultRecord>> {
        self.with(|c| all(c.query(&format!("SELECT {FAULT_COLS} FROM faults ORDER BY id"), &[])?, fault))
    }

    fn device_faults(&self, device: &str) -> Result<Vec<FaultRecord>> {
        self.with(|c| {
            all(c.query(&format!("SELECT {FAULT_COLS} FROM faults WHERE device = $1 ORDER BY id"), &[&device])?, fault)
        })
    }

    fn delete_fault(&self, device: &str, channel: &str) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let n = tx.execute("DELETE FROM faults WHERE device = $1 AND channel = $2", &[&device, &channel])?;
            if let Some(task) = channel.strip_prefix("task_").and_then(|t| t.parse::<i64>().ok()) {
                tx.execute("DELETE FROM tasks WHERE id = $1 AND device = $2", &[&task, &device])?;
            }
            tx.commit()?;
            Ok(n > 0)
        })
    }
}

/// `(name, JSON)` rows; one that does not decode is logged and left out (as SQLite's are).
fn json_rows(rows: Vec<Row>, what: &str) -> Result<Vec<(String, serde_json::Value)>> {
    let mut out = Vec::new();
    for r in &rows {
        let (name, text) = pair(r)?;
        match json_text(&text, &format!("{what} {name}")) {
            Ok(v) => out.push((name, v)),
            Err(e) => tracing::error!(name = %name, "{what} left out: {e}"),
        }
    }
    Ok(out)
}

impl PresetStore for PgStore {
    fn put_preset(&self, name: &str, preset: &serde_json::Value) -> Result<()> {
        let pre = preset.get("precondition").map(|p| p.to_string()).unwrap_or_else(|| "{}".into());
        self.with(|c| {
            c.execute(
                "INSERT INTO profiles (name, precondition, configuration) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET precondition = $2, configuration = $3",
                &[&name, &pre, &preset.to_string()],
            )?;
            Ok(())
        })
    }

    fn delete_preset(&self, name: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM profiles WHERE name = $1", &[&name])? > 0))
    }

    fn presets(&self) -> Result<Vec<(String, serde_json::Value)>> {
        self.with(|c| json_rows(c.query("SELECT name, configuration FROM profiles ORDER BY name", &[])?, "preset"))
    }

    fn put_script(&self, kind: ScriptKind, name: &str, script: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO scripts (kind, name, script) VALUES ($1, $2, $3)
                 ON CONFLICT (kind, name) DO UPDATE SET script = $3",
                &[&kind.key(), &name, &script],
            )?;
            Ok(())
        })
    }

    fn delete_script(&self, kind: ScriptKind, name: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM scripts WHERE kind = $1 AND name = $2", &[&kind.key(), &name])? > 0))
    }

    fn scripts(&self, kind: ScriptKind) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            all(c.query("SELECT name, script FROM scripts WHERE kind = $1 ORDER BY name", &[&kind.key()])?, pair)
        })
    }

    fn put_object(&self, name: &str, object: &serde_json::Value) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO objects (name, object) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET object = $2",
                &[&name, &object.to_string()],
            )?;
            Ok(())
        })
    }

    fn delete_object(&self, name: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM objects WHERE name = $1", &[&name])? > 0))
    }

    fn objects(&self) -> Result<Vec<(String, serde_json::Value)>> {
        self.with(|c| json_rows(c.query("SELECT name, object FROM objects ORDER BY name", &[])?, "object"))
    }
}

impl FileStore for PgStore {
    fn put_file(&self, name: &str, content: &[u8], metadata: &serde_json::Value, at: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO files (name, content, metadata, uploaded) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (name) DO UPDATE SET content = $2, metadata = $3, uploaded = $4",
                &[&name, &content, &metadata.to_string(), &at],
            )?;
            Ok(())
        })
    }

    fn file(&self, name: &str) -> Result<Option<(Vec<u8>, serde_json::Value)>> {
        self.with(|c| {
            c.query_opt("SELECT content, metadata FROM files WHERE name = $1", &[&name])?
                .map(|r| {
                    let metadata: String = r.try_get(1)?;
                    Ok((r.try_get(0)?, json_text(&metadata, &format!("the metadata of file {name}"))?))
                })
                .transpose()
        })
    }

    fn files(&self) -> Result<Vec<FileInfo>> {
        self.with(|c| {
            let rows =
                c.query("SELECT name, octet_length(content), metadata, uploaded FROM files ORDER BY name", &[])?;
            all(rows, |r| {
                let name: String = r.try_get(0)?;
                let length: i32 = r.try_get(1)?;
                let metadata: String = r.try_get(2)?;
                Ok(FileInfo {
                    length: usize::try_from(length).unwrap_or(0),
                    metadata: json_text(&metadata, &format!("the metadata of file {name}"))?,
                    uploaded: r.try_get(3)?,
                    name,
                })
            })
        })
    }

    fn delete_file(&self, name: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM files WHERE name = $1", &[&name])? > 0))
    }
}

impl SubscriberStore for PgStore {
    fn has_profiles(&self) -> Result<bool> {
        self.with(|c| Ok(c.query_opt("SELECT 1 FROM subscribers WHERE profile_version > 0 LIMIT 1", &[])?.is_some()))
    }

    fn put_subscriber(&self, id: &str, password_hash: &str, now: i64) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            // `xmax = 0`: the row was inserted, not updated.
            let inserted: bool = tx
                .query_one(
                    "INSERT INTO subscribers (id, password_hash, created) VALUES ($1, $2, $3)
                     ON CONFLICT (id) DO UPDATE SET password_hash = $2 RETURNING (xmax = 0)",
                    &[&id, &password_hash, &now],
                )?
                .try_get(0)?;
            if !inserted {
                // A new password ends the sessions made with the old one.
                tx.execute("DELETE FROM portal_sessions WHERE subscriber = $1", &[&id])?;
            }
            tx.commit()?;
            Ok(inserted)
        })
    }

    fn subscriber(&self, id: &str) -> Result<Option<Subscriber>> {
        self.with(|c| {
            c.query_opt(
                "SELECT id, password_hash, profile, profile_version, applied, gateway FROM subscribers WHERE id = $1",
                &[&id],
            )?
            .map(|r| {
                let profile: String = r.try_get(2)?;
                Ok(Subscriber {
                    profile: json_text(&profile, &format!("the profile of subscriber {id}"))?,
                    id: r.try_get(0)?,
                    password_hash: r.try_get(1)?,
                    profile_version: r.try_get(3)?,
                    applied: r.try_get(4)?,
                    gateway: r.try_get(5)?,
                })
            })
            .transpose()
        })
    }

    fn subscribers(&self) -> Result<Vec<String>> {
        self.with(|c| all(c.query("SELECT id FROM subscribers ORDER BY id", &[])?, |r| Ok(r.try_get(0)?)))
    }

    fn delete_subscriber(&self, id: &str) -> Result<bool> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute("DELETE FROM portal_sessions WHERE subscriber = $1", &[&id])?;
            tx.execute("DELETE FROM placements WHERE subscriber = $1", &[&id])?;
            let n = tx.execute("DELETE FROM subscribers WHERE id = $1", &[&id])?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    fn set_profile(&self, id: &str, profile: &crate::profiles::Profile) -> Result<i64> {
        self.with(|c| {
            let row = c.query_opt(
                "UPDATE subscribers SET profile = $2, profile_version = profile_version + 1 WHERE id = $1
                 RETURNING profile_version",
                &[&id, &profile.to_json().to_string()],
            )?;
            match row {
                Some(r) => Ok(r.try_get(0)?),
                None => Err(StoreError::Corrupt { what: format!("no subscriber {id} to set the profile of") }),
            }
        })
    }

    fn set_applied(&self, id: &str, applied: &str) -> Result<()> {
        self.with(|c| {
            c.execute("UPDATE subscribers SET applied = $2 WHERE id = $1", &[&id, &applied])?;
            Ok(())
        })
    }

    fn set_gateway(&self, id: &str, gateway: Option<&str>) -> Result<bool> {
        self.with(|c| Ok(c.execute("UPDATE subscribers SET gateway = $2 WHERE id = $1", &[&id, &gateway])? > 0))
    }

    fn gateway_of(&self, device: &str) -> Result<Vec<String>> {
        self.with(|c| {
            all(
                c.query("SELECT id FROM subscribers WHERE gateway = $1 ORDER BY id", &[&device])?,
                |r| Ok(r.try_get(0)?),
            )
        })
    }

    fn put_portal_session(&self, token: &str, s: &PortalSession) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO portal_sessions (token, subscriber, csrf, expires) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (token) DO UPDATE SET subscriber = $2, csrf = $3, expires = $4",
                &[&token, &s.subscriber, &s.csrf, &s.expires],
            )?;
            Ok(())
        })
    }

    fn portal_session(&self, token: &str, now: i64) -> Result<Option<PortalSession>> {
        self.with(|c| {
            c.query_opt(
                "SELECT subscriber, csrf, expires FROM portal_sessions WHERE token = $1 AND expires > $2",
                &[&token, &now],
            )?
            .map(|r| Ok(PortalSession { subscriber: r.try_get(0)?, csrf: r.try_get(1)?, expires: r.try_get(2)? }))
            .transpose()
        })
    }

    fn delete_portal_session(&self, token: &str, now: i64) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM portal_sessions WHERE token = $1 OR expires <= $2", &[&token, &now])?;
            Ok(())
        })
    }
}

impl MigrationStore for PgStore {
    fn put_migration(&self, id: i64, record: &serde_json::Value) -> Result<()> {
        let text = record.to_string();
        self.with(|c| {
            c.execute("UPDATE migrations SET record = $2 WHERE id = $1", &[&id, &text])?;
            Ok(())
        })
    }

    fn start_migration(&self, record: &serde_json::Value) -> Result<Option<i64>> {
        let text = record.to_string();
        self.with(|c| {
            // The unique index on running migrations (schema step 4) makes the loser a no-op.
            c.query_opt("INSERT INTO migrations (record) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id", &[&text])?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(Into::into)
        })
    }

    fn migrations(&self) -> Result<Vec<(i64, serde_json::Value)>> {
        self.with(|c| {
            all(c.query("SELECT id, record FROM migrations ORDER BY id", &[])?, |r| {
                let id: i64 = r.try_get(0)?;
                let record: String = r.try_get(1)?;
                Ok((id, json_text(&record, &format!("migration {id}"))?))
            })
        })
    }
}

impl CredentialStore for PgStore {
    fn cpe_credential(&self, username: &str) -> Result<Option<CpeCredential>> {
        self.with(|c| {
            c.query_opt(&format!("SELECT {CREDENTIAL_COLS} FROM cpe_credentials WHERE username = $1"), &[&username])?
                .as_ref()
                .map(credential)
                .transpose()
        })
    }

    fn put_cpe_credential(&self, k: &CpeCredential, now: i64) -> Result<bool> {
        let (device, prefix) = match &k.scope {
            Scope::Device(d) => (Some(d.as_str()), None),
            Scope::DevicePrefix(p) => (None, Some(p.as_str())),
        };
        self.with(|c| {
            Ok(c.query_one(
                "INSERT INTO cpe_credentials (username, ha1_md5, ha1_sha256, device, device_prefix, created, proxies)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (username) DO UPDATE SET ha1_md5 = $2, ha1_sha256 = $3, device = $4, device_prefix = $5,
                    proxies = $7
                 RETURNING (xmax = 0)",
                &[&k.username, &k.ha1.md5, &k.ha1.sha256, &device, &prefix, &now, &k.proxies],
            )?
            .try_get(0)?)
        })
    }

    fn delete_cpe_credential(&self, username: &str) -> Result<bool> {
        self.with(|c| Ok(c.execute("DELETE FROM cpe_credentials WHERE username = $1", &[&username])? > 0))
    }

    fn cpe_credentials(&self) -> Result<Vec<CpeCredential>> {
        self.with(|c| {
            all(c.query(&format!("SELECT {CREDENTIAL_COLS} FROM cpe_credentials ORDER BY username"), &[])?, credential)
        })
    }

    fn server_key(&self, name: &str) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        http_shell::fill_random(&mut fresh);
        // Every node gets the key the first one made.
        self.with(|c| {
            c.execute(
                "INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &&fresh[..]],
            )?;
            Ok(c.query_one("SELECT value FROM server_keys WHERE name = $1", &[&name])?.try_get(0)?)
        })
    }
}

impl PlacementStore for PgStore {
    fn placement(&self, subscriber: &str) -> Result<Option<Placement>> {
        self.with(|c| {
            c.query_opt("SELECT subscriber, device, instance FROM placements WHERE subscriber = $1", &[&subscriber])?
                .as_ref()
                .map(placement)
                .transpose()
        })
    }

    fn placements_on(&self, device: &str) -> Result<Vec<Placement>> {
        self.with(|c| {
            all(
                c.query(
                    "SELECT subscriber, device, instance FROM placements WHERE device = $1 ORDER BY instance",
                    &[&device],
                )?,
                placement,
            )
        })
    }

    fn place(&self, subscriber: &str, device: &str, instance: u32, now: i64) -> Result<()> {
        let instance = i64::from(instance);
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "DELETE FROM placements WHERE device = $1 AND instance = $2 AND subscriber <> $3",
                &[&device, &instance, &subscriber],
            )?;
            tx.execute(
                "INSERT INTO placements (subscriber, device, instance, placed) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (subscriber) DO UPDATE SET device = $2, instance = $3, placed = $4",
                &[&subscriber, &device, &instance, &now],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn unplace(&self, device: &str, instance: u32) -> Result<Option<String>> {
        let instance = i64::from(instance);
        self.with(|c| {
            Ok(c.query_opt(
                "DELETE FROM placements WHERE device = $1 AND instance = $2 RETURNING subscriber",
                &[&device, &instance],
            )?
            .map(|r| r.try_get(0))
            .transpose()?)
        })
    }
}
