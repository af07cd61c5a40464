//! The store: a narrow trait (so another engine can back it later) and its SQLite implementation
//! (WAL, schema migrations by `user_version`, one transaction per logical write).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// A store error: what failed, in words.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// A device as the ACS knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Device {
    /// `OUI-ProductClass-SerialNumber`.
    pub id: String,
    /// DeviceId Manufacturer.
    pub manufacturer: String,
    /// DeviceId OUI.
    pub oui: String,
    /// DeviceId ProductClass.
    pub product_class: String,
    /// DeviceId SerialNumber.
    pub serial_number: String,
    /// Where connection requests go.
    pub cr_url: String,
    /// Username for connection requests (empty: the configured default).
    pub cr_username: String,
    /// Password for connection requests.
    pub cr_password: String,
    /// Unix seconds of the last Inform.
    pub last_inform: i64,
    /// Tags (set through the NBI or presets).
    pub tags: Vec<String>,
}

/// A cached parameter value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CachedParam {
    /// Full parameter path.
    pub name: String,
    /// xsd type name without prefix (`string`, `unsignedInt`, ...).
    pub ty: String,
    /// Lexical value.
    pub value: String,
    /// Unix seconds when it was read.
    pub updated: i64,
}

impl CachedParam {
    /// A value as read from a device at `now`.
    pub fn from_value(p: &cwmp::ParameterValue, now: i64) -> CachedParam {
        CachedParam {
            name: p.name.clone(),
            ty: p.value.xsd_type().qname().trim_start_matches("xsd:").into(),
            value: p.value.to_lexical().into_owned(),
            updated: now,
        }
    }
}

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
    fn parse(s: &str) -> TaskStatus {
        match s {
            "sent" => TaskStatus::Sent,
            "done" => TaskStatus::Done,
            "fault" => TaskStatus::Fault,
            _ => TaskStatus::Pending,
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
}

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

/// A subscriber's account on the customer web form and the settings they made there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subscriber {
    /// The subscriber id: the value of their vRGW instance's `Subscriber` parameter, and their
    /// login name.
    pub id: String,
    /// Argon2 PHC string of the password.
    pub password_hash: String,
    /// Their settings (stored as a JSON object; see `acs::profiles`).
    pub profile: crate::profiles::Profile,
    /// Bumped at every change of the settings.
    pub profile_version: i64,
    /// Where and which version of the settings were last applied: `DEVICE|INSTANCE|VERSION`.
    pub applied: String,
}

/// A web-form session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// The subscriber logged in.
    pub subscriber: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Unix seconds after which it is void.
    pub expires: i64,
}

/// What the ACS needs from a store.
pub trait Store: Send + Sync + 'static {
    /// Creates or updates a device from an Inform; returns whether it is new.
    fn record_inform(&self, d: &Device) -> Result<bool>;
    /// Everything an Inform brings, in one transaction: the device, its Inform parameters and
    /// its events. Returns whether the device is new.
    fn record_session_start(&self, d: &Device, params: &[CachedParam], events: &[(String, String)]) -> Result<bool>;
    /// A device by id.
    fn device(&self, id: &str) -> Result<Option<Device>>;
    /// Every device.
    fn devices(&self) -> Result<Vec<Device>>;
    /// Replaces a device's tags.
    fn set_tags(&self, id: &str, tags: &[String]) -> Result<()>;
    /// Stores parameter values (one transaction).
    fn cache_params(&self, device: &str, params: &[CachedParam]) -> Result<()>;
    /// Forgets cached parameters below a path (after a delete).
    fn forget_params(&self, device: &str, prefix: &str) -> Result<()>;
    /// A device's cached parameters.
    fn params(&self, device: &str) -> Result<Vec<CachedParam>>;
    /// Records an Inform event.
    fn add_event(&self, device: &str, code: &str, command_key: &str, at: i64) -> Result<()>;
    /// Queues a task.
    fn enqueue(&self, device: &str, order: &crate::tasks::Order, now: i64) -> Result<Task>;
    /// A task by id.
    fn task(&self, id: i64) -> Result<Option<Task>>;
    /// Tasks, all or of one device.
    fn tasks(&self, device: Option<&str>) -> Result<Vec<Task>>;
    /// Tasks of a device that are pending or sent, oldest first.
    fn open_tasks(&self, device: &str) -> Result<Vec<Task>>;
    /// Marks a task sent under `key` (durably, before it leaves).
    fn mark_sent(&self, id: i64, key: &str) -> Result<()>;
    /// Makes a task pending again, not before `not_before` (Unix seconds).
    fn mark_pending(&self, id: i64, not_before: i64) -> Result<()>;
    /// Marks a task done with its result.
    fn complete(&self, id: i64, result: &serde_json::Value) -> Result<()>;
    /// Records a fault and marks its task faulted (one transaction).
    fn fault(&self, device: &str, task: Option<i64>, code: &str, message: &str, detail: &str, at: i64) -> Result<i64>;
    /// Deletes a task and its faults; whether it existed.
    fn delete_task(&self, id: i64) -> Result<bool>;
    /// Makes a faulted task pending again and drops its faults.
    fn retry_task(&self, id: i64) -> Result<bool>;
    /// Every fault.
    fn faults(&self) -> Result<Vec<FaultRecord>>;
    /// Deletes a fault; whether it existed.
    fn delete_fault(&self, id: i64) -> Result<bool>;
    /// Provisioning profiles (GenieACS presets), by name.
    fn put_preset(&self, name: &str, preset: &serde_json::Value) -> Result<()>;
    /// Deletes a preset; whether it existed.
    fn delete_preset(&self, name: &str) -> Result<bool>;
    /// Every preset, by name.
    fn presets(&self) -> Result<Vec<(String, serde_json::Value)>>;
    /// Files devices download.
    fn put_file(&self, name: &str, content: &[u8], metadata: &serde_json::Value) -> Result<()>;
    /// A file's content and metadata.
    fn file(&self, name: &str) -> Result<Option<(Vec<u8>, serde_json::Value)>>;
    /// Every file: name, size, metadata.
    fn files(&self) -> Result<Vec<(String, usize, serde_json::Value)>>;
    /// Deletes a file; whether it existed.
    fn delete_file(&self, name: &str) -> Result<bool>;
    /// Every cached parameter whose name ends in `.Subscriber` and whose value is `value`:
    /// (device, name) pairs (a scan of the cache: no index slows every cache write for it).
    fn subscriber_params(&self, value: &str) -> Result<Vec<(String, String)>>;
    /// Whether any subscriber has saved settings (cheap; no deferred write is flushed).
    fn has_profiles(&self) -> Result<bool>;
    /// Records a migration (a new one when `id` is `None`); returns its id.
    fn put_migration(&self, id: Option<i64>, record: &serde_json::Value) -> Result<i64>;
    /// Every migration, oldest first.
    fn migrations(&self) -> Result<Vec<(i64, serde_json::Value)>>;
    /// The `(name, value)` of every cached parameter of `device` whose name ends in `.Subscriber`.
    fn subscriber_rows(&self, device: &str) -> Result<Vec<(String, String)>>;
    /// Creates a subscriber or changes their password (the profile stays).
    fn put_subscriber(&self, id: &str, password_hash: &str, now: i64) -> Result<bool>;
    /// A subscriber.
    fn subscriber(&self, id: &str) -> Result<Option<Subscriber>>;
    /// Every subscriber id.
    fn subscribers(&self) -> Result<Vec<String>>;
    /// Removes a subscriber, their profile and their sessions.
    fn delete_subscriber(&self, id: &str) -> Result<bool>;
    /// Replaces a subscriber's profile; returns its new version.
    fn set_profile(&self, id: &str, profile: &crate::profiles::Profile) -> Result<i64>;
    /// Records where and which version of a profile was applied.
    fn set_applied(&self, id: &str, applied: &str) -> Result<()>;
    /// Stores a web-form session under `token`.
    fn put_portal_session(&self, token: &str, s: &PortalSession) -> Result<()>;
    /// A web-form session that has not expired.
    fn portal_session(&self, token: &str, now: i64) -> Result<Option<PortalSession>>;
    /// Ends a web-form session (and drops expired ones).
    fn delete_portal_session(&self, token: &str, now: i64) -> Result<()>;
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Parameter-cache rows and events waiting for the next group commit (see `flush`).
    pending: Mutex<Vec<Pending>>,
}

/// A deferred write: the parameter cache and the event log are written in batches, a few
/// milliseconds later, in one transaction for many sessions. Reads of the cache flush first.
/// Parameter rows written by one statement when the deferred writes are flushed.
const PARAM_ROWS: usize = 16;

enum Pending {
    /// A known device's details from its latest Inform.
    Device(Device),
    Params(String, Vec<CachedParam>),
    Event(String, String, String, i64),
}

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE devices (
        id TEXT PRIMARY KEY, manufacturer TEXT NOT NULL, oui TEXT NOT NULL, product_class TEXT NOT NULL,
        serial_number TEXT NOT NULL, cr_url TEXT NOT NULL DEFAULT '', cr_username TEXT NOT NULL DEFAULT '',
        cr_password TEXT NOT NULL DEFAULT '', last_inform INTEGER NOT NULL, tags TEXT NOT NULL DEFAULT '[]',
        created INTEGER NOT NULL);
     CREATE TABLE params (
        device TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,
        updated INTEGER NOT NULL, PRIMARY KEY (device, name)) WITHOUT ROWID;
     CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, spec TEXT NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0,
        key TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL, result TEXT);
     CREATE INDEX tasks_device ON tasks (device, status, id);
     CREATE TABLE faults (
        id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, task INTEGER, code TEXT NOT NULL,
        message TEXT NOT NULL, detail TEXT NOT NULL, timestamp INTEGER NOT NULL);
     CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, code TEXT NOT NULL,
        command_key TEXT NOT NULL, timestamp INTEGER NOT NULL);
     CREATE TABLE files (name TEXT PRIMARY KEY, content BLOB NOT NULL, metadata TEXT NOT NULL);
     CREATE TABLE profiles (name TEXT PRIMARY KEY, precondition TEXT NOT NULL, configuration TEXT NOT NULL);",
    // 2: a device's open tasks in order straight from an index (no sort, done tasks skipped).
    "CREATE INDEX tasks_open ON tasks (device, id) WHERE status IN ('pending', 'sent');",
    // 3: subscribers of the customer web form, their settings, their sessions.
    "CREATE TABLE subscribers (
        id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, profile TEXT NOT NULL DEFAULT '{}',
        profile_version INTEGER NOT NULL DEFAULT 0, applied TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL);
     CREATE TABLE portal_sessions (
        token TEXT PRIMARY KEY, subscriber TEXT NOT NULL, csrf TEXT NOT NULL, expires INTEGER NOT NULL);
     CREATE INDEX params_subscriber_value ON params (value) WHERE name LIKE '%.Subscriber';
     CREATE INDEX params_subscriber_device ON params (device) WHERE name LIKE '%.Subscriber';",
    // 4: no partial indexes on the cache: every cached row was matched against their patterns on
    // insert, about a quarter of the instructions of a session (acs/bench/instructions.sh: 657k
    // with them, 509k without). A device's Subscriber rows come from its primary-key range; a
    // subscriber's vRGW (a web-form page, the NBI's list) is a scan of the cache.
    "DROP INDEX params_subscriber_value;
     DROP INDEX params_subscriber_device;",
    // 5: migrations of vRGWs between hosts, each a JSON record its orchestration keeps current.
    "CREATE TABLE migrations (id INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);",
];

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    let spec: String = r.get(2)?;
    let status: String = r.get(3)?;
    let result: Option<String> = r.get(8)?;
    Ok(Task {
        id: r.get(0)?,
        device: r.get(1)?,
        order: serde_json::from_str(&spec)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?,
        status: TaskStatus::parse(&status),
        attempts: r.get(4)?,
        not_before: r.get(5)?,
        key: r.get(6)?,
        created: r.get(7)?,
        result: result.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

const TASK_COLS: &str = "id, device, spec, status, attempts, not_before, key, created, result";

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    let tags: String = r.get(9)?;
    Ok(Device {
        id: r.get(0)?,
        manufacturer: r.get(1)?,
        oui: r.get(2)?,
        product_class: r.get(3)?,
        serial_number: r.get(4)?,
        cr_url: r.get(5)?,
        cr_username: r.get(6)?,
        cr_password: r.get(7)?,
        last_inform: r.get(8)?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
    })
}

const DEVICE_COLS: &str =
    "id, manufacturer, oui, product_class, serial_number, cr_url, cr_username, cr_password, last_inform, tags";

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path` (`:memory:` for tests).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL with synchronous=NORMAL: a committed transaction survives the process being killed
        // (SIGKILL, crash); only a power loss can take the last ones back.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The ACS is the database's only user while it runs: no per-transaction file locks.
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        conn.pragma_update(None, "cache_size", -16384)?;
        // Fewer, larger checkpoints (each one syncs): up to about 40 MB of WAL between them.
        conn.pragma_update(None, "wal_autocheckpoint", 10000)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError(format!(
                "{}: schema version {version} is newer than this ACS knows ({})",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "database migrated");
        }
        Ok(SqliteStore { conn: Mutex::new(conn), pending: Mutex::new(Vec::new()) })
    }

    /// Writes the deferred cache rows and events in one transaction.
    pub fn flush(&self) -> Result<()> {
        // The database lock first: a reader that flushes waits for a batch another thread has
        // taken but not yet committed, so it always reads its own writes.
        let db = self.db();
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        let tx = db.unchecked_transaction()?;
        {
            // Rows go in groups of PARAM_ROWS per statement (far fewer statement runs), the rest
            // one by one.
            let upsert = |rows: usize| {
                let values = vec!["(?, ?, ?, ?, ?)"; rows].join(", ");
                // Every column is given, so REPLACE (one seek, the row overwritten) does what an
                // upsert does, for less work.
                format!("INSERT OR REPLACE INTO params (device, name, type, value, updated) VALUES {values}")
            };
            let mut one = tx.prepare_cached(&upsert(1))?;
            let mut group = tx.prepare_cached(&upsert(PARAM_ROWS))?;
            let mut ev =
                tx.prepare_cached("INSERT INTO events (device, code, command_key, timestamp) VALUES (?1, ?2, ?3, ?4)")?;
            let mut dev = tx.prepare_cached(
                "UPDATE devices SET manufacturer = ?2, oui = ?3, product_class = ?4, serial_number = ?5,
                 cr_url = CASE WHEN ?6 = '' THEN cr_url ELSE ?6 END, last_inform = ?7 WHERE id = ?1",
            )?;
            for w in &batch {
                match w {
                    Pending::Device(d) => {
                        dev.execute(params![
                            d.id,
                            d.manufacturer,
                            d.oui,
                            d.product_class,
                            d.serial_number,
                            d.cr_url,
                            d.last_inform
                        ])?;
                    }
                    Pending::Params(device, ps) => {
                        let mut chunks = ps.chunks_exact(PARAM_ROWS);
                        for chunk in &mut chunks {
                            let mut i = 1;
                            for p in chunk {
                                group.raw_bind_parameter(i, device)?;
                                group.raw_bind_parameter(i + 1, &p.name)?;
                                group.raw_bind_parameter(i + 2, &p.ty)?;
                                group.raw_bind_parameter(i + 3, &p.value)?;
                                group.raw_bind_parameter(i + 4, p.updated)?;
                                i += 5;
                            }
                            group.raw_execute()?;
                        }
                        for p in chunks.remainder() {
                            one.execute(params![device, p.name, p.ty, p.value, p.updated])?;
                        }
                    }
                    Pending::Event(device, code, key, at) => {
                        ev.execute(params![device, code, key, at])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Flushes deferred writes every `every` on a thread of its own, until the store is dropped.
    pub fn start_flusher(self: &std::sync::Arc<Self>, every: std::time::Duration) {
        let weak = std::sync::Arc::downgrade(self);
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            let Some(store) = weak.upgrade() else { return };
            if let Err(e) = store.flush() {
                tracing::error!("writing the parameter cache: {e}");
            }
        });
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for SqliteStore {
    fn record_inform(&self, d: &Device) -> Result<bool> {
        self.record_session_start(d, &[], &[])
    }

    fn record_session_start(&self, d: &Device, ps: &[CachedParam], events: &[(String, String)]) -> Result<bool> {
        let db = self.db();
        // A known device is the common case: its new Inform details join the deferred writes;
        // a new one is inserted at once (the NBI must see it, and its id must exist for tasks).
        let exists = db.prepare_cached("SELECT 1 FROM devices WHERE id = ?1")?.exists([&d.id])?;
        if !exists {
            db.execute(
                "INSERT INTO devices (id, manufacturer, oui, product_class, serial_number, cr_url, cr_username,
                 cr_password, last_inform, tags, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9)",
                params![
                    d.id,
                    d.manufacturer,
                    d.oui,
                    d.product_class,
                    d.serial_number,
                    d.cr_url,
                    d.cr_username,
                    d.cr_password,
                    d.last_inform,
                    serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into())
                ],
            )?;
        }
        drop(db);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if exists {
            pending.push(Pending::Device(d.clone()));
        }
        if !ps.is_empty() {
            pending.push(Pending::Params(d.id.clone(), ps.to_vec()));
        }
        for (code, key) in events {
            pending.push(Pending::Event(d.id.clone(), code.clone(), key.clone(), d.last_inform));
        }
        Ok(!exists)
    }

    fn device(&self, id: &str) -> Result<Option<Device>> {
        self.flush()?;
        Ok(self
            .db()
            .prepare_cached(&format!("SELECT {DEVICE_COLS} FROM devices WHERE id = ?1"))?
            .query_row([id], device_row)
            .optional()?)
    }

    fn devices(&self) -> Result<Vec<Device>> {
        self.flush()?;
        let db = self.db();
        let mut st = db.prepare(&format!("SELECT {DEVICE_COLS} FROM devices ORDER BY id"))?;
        let rows = st.query_map([], device_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn set_tags(&self, id: &str, tags: &[String]) -> Result<()> {
        self.flush()?;
        self.db().execute(
            "UPDATE devices SET tags = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())],
        )?;
        Ok(())
    }

    fn cache_params(&self, device: &str, ps: &[CachedParam]) -> Result<()> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).push(Pending::Params(device.to_string(), ps.to_vec()));
        Ok(())
    }

    fn forget_params(&self, device: &str, prefix: &str) -> Result<()> {
        self.flush()?;
        self.db().execute(
            "DELETE FROM params WHERE device = ?1 AND substr(name, 1, length(?2)) = ?2",
            params![device, prefix],
        )?;
        Ok(())
    }

    fn params(&self, device: &str) -> Result<Vec<CachedParam>> {
        self.flush()?;
        let db = self.db();
        let mut st =
            db.prepare_cached("SELECT name, type, value, updated FROM params WHERE device = ?1 ORDER BY name")?;
        let rows = st
            .query_map([device], |r| {
                Ok(CachedParam { name: r.get(0)?, ty: r.get(1)?, value: r.get(2)?, updated: r.get(3)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn add_event(&self, device: &str, code: &str, command_key: &str, at: i64) -> Result<()> {
        self.flush()?;
        self.db().execute(
            "INSERT INTO events (device, code, command_key, timestamp) VALUES (?1, ?2, ?3, ?4)",
            params![device, code, command_key, at],
        )?;
        Ok(())
    }

    fn enqueue(&self, device: &str, order: &crate::tasks::Order, now: i64) -> Result<Task> {
        let db = self.db();
        db.execute(
            "INSERT INTO tasks (device, spec, status, created) VALUES (?1, ?2, 'pending', ?3)",
            params![device, order.to_json().to_string(), now],
        )?;
        let id = db.last_insert_rowid();
        let task =
            db.prepare_cached(&format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1"))?.query_row([id], task_row)?;
        Ok(task)
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

    fn open_tasks(&self, device: &str) -> Result<Vec<Task>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!(
            "SELECT {TASK_COLS} FROM tasks WHERE device = ?1 AND status IN ('pending', 'sent') ORDER BY id"
        ))?;
        let rows = st.query_map([device], task_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn mark_sent(&self, id: i64, key: &str) -> Result<()> {
        self.db()
            .prepare_cached("UPDATE tasks SET status = 'sent', key = ?2, attempts = attempts + 1 WHERE id = ?1")?
            .execute(params![id, key])?;
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
        let n =
            tx.execute("UPDATE tasks SET status = 'pending', not_before = 0 WHERE id = ?1 AND status = 'fault'", [id])?;
        if n > 0 {
            tx.execute("DELETE FROM faults WHERE task = ?1", [id])?;
        }
        tx.commit()?;
        Ok(n > 0)
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

    fn put_preset(&self, name: &str, preset: &serde_json::Value) -> Result<()> {
        let pre = preset.get("precondition").map(|p| p.to_string()).unwrap_or_else(|| "{}".into());
        self.db().execute(
            "INSERT INTO profiles (name, precondition, configuration) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET precondition = ?2, configuration = ?3",
            params![name, pre, preset.to_string()],
        )?;
        Ok(())
    }

    fn delete_preset(&self, name: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM profiles WHERE name = ?1", [name])? > 0)
    }

    fn presets(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT name, configuration FROM profiles ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                let c: String = r.get(1)?;
                Ok((r.get::<_, String>(0)?, serde_json::from_str(&c).unwrap_or(serde_json::Value::Null)))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn put_file(&self, name: &str, content: &[u8], metadata: &serde_json::Value) -> Result<()> {
        self.db().execute(
            "INSERT INTO files (name, content, metadata) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET content = ?2, metadata = ?3",
            params![name, content, metadata.to_string()],
        )?;
        Ok(())
    }

    fn file(&self, name: &str) -> Result<Option<(Vec<u8>, serde_json::Value)>> {
        Ok(self
            .db()
            .query_row("SELECT content, metadata FROM files WHERE name = ?1", [name], |r| {
                let m: String = r.get(1)?;
                Ok((r.get::<_, Vec<u8>>(0)?, serde_json::from_str(&m).unwrap_or(serde_json::Value::Null)))
            })
            .optional()?)
    }

    fn files(&self) -> Result<Vec<(String, usize, serde_json::Value)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT name, length(content), metadata FROM files ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                let m: String = r.get(2)?;
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)? as usize,
                    serde_json::from_str(&m).unwrap_or(serde_json::Value::Null),
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn delete_file(&self, name: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM files WHERE name = ?1", [name])? > 0)
    }

    fn subscriber_params(&self, value: &str) -> Result<Vec<(String, String)>> {
        self.flush()?;
        let db = self.db();
        let mut st = db
            .prepare_cached("SELECT device, name FROM params WHERE substr(name, -11) = '.Subscriber' AND value = ?1")?;
        let rows = st.query_map([value], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn put_migration(&self, id: Option<i64>, record: &serde_json::Value) -> Result<i64> {
        let db = self.db();
        match id {
            Some(id) => {
                db.execute("UPDATE migrations SET record = ?2 WHERE id = ?1", params![id, record.to_string()])?;
                Ok(id)
            }
            None => {
                db.execute("INSERT INTO migrations (record) VALUES (?1)", [record.to_string()])?;
                Ok(db.last_insert_rowid())
            }
        }
    }

    fn migrations(&self) -> Result<Vec<(i64, serde_json::Value)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT id, record FROM migrations ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, text) = r?;
            out.push((id, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)));
        }
        Ok(out)
    }

    fn has_profiles(&self) -> Result<bool> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT 1 FROM subscribers WHERE profile_version > 0 LIMIT 1")?;
        Ok(st.exists([])?)
    }

    fn subscriber_rows(&self, device: &str) -> Result<Vec<(String, String)>> {
        self.flush()?;
        let db = self.db();
        let mut st = db
            .prepare_cached("SELECT name, value FROM params WHERE device = ?1 AND substr(name, -11) = '.Subscriber'")?;
        let rows = st.query_map([device], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn put_subscriber(&self, id: &str, password_hash: &str, now: i64) -> Result<bool> {
        let db = self.db();
        let existed: bool =
            db.query_row("SELECT 1 FROM subscribers WHERE id = ?1", [id], |_| Ok(true)).optional()?.unwrap_or(false);
        db.execute(
            "INSERT INTO subscribers (id, password_hash, created) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET password_hash = ?2",
            params![id, password_hash, now],
        )?;
        if existed {
            // A new password ends the sessions made with the old one.
            db.execute("DELETE FROM portal_sessions WHERE subscriber = ?1", [id])?;
        }
        Ok(!existed)
    }

    fn subscriber(&self, id: &str) -> Result<Option<Subscriber>> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, password_hash, profile, profile_version, applied FROM subscribers WHERE id = ?1",
                [id],
                |r| {
                    let p: String = r.get(2)?;
                    Ok(Subscriber {
                        id: r.get(0)?,
                        password_hash: r.get(1)?,
                        profile: crate::profiles::Profile::from_json(
                            &serde_json::from_str(&p).unwrap_or_else(|_| serde_json::json!({})),
                        ),
                        profile_version: r.get(3)?,
                        applied: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    fn subscribers(&self) -> Result<Vec<String>> {
        let db = self.db();
        let mut st = db.prepare("SELECT id FROM subscribers ORDER BY id")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn delete_subscriber(&self, id: &str) -> Result<bool> {
        let db = self.db();
        db.execute("DELETE FROM portal_sessions WHERE subscriber = ?1", [id])?;
        Ok(db.execute("DELETE FROM subscribers WHERE id = ?1", [id])? > 0)
    }

    fn set_profile(&self, id: &str, profile: &crate::profiles::Profile) -> Result<i64> {
        let db = self.db();
        db.execute(
            "UPDATE subscribers SET profile = ?2, profile_version = profile_version + 1 WHERE id = ?1",
            params![id, profile.to_json().to_string()],
        )?;
        Ok(db.query_row("SELECT profile_version FROM subscribers WHERE id = ?1", [id], |r| r.get(0))?)
    }

    fn set_applied(&self, id: &str, applied: &str) -> Result<()> {
        self.db().execute("UPDATE subscribers SET applied = ?2 WHERE id = ?1", params![id, applied])?;
        Ok(())
    }

    fn put_portal_session(&self, token: &str, s: &PortalSession) -> Result<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO portal_sessions (token, subscriber, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
            params![token, s.subscriber, s.csrf, s.expires],
        )?;
        Ok(())
    }

    fn portal_session(&self, token: &str, now: i64) -> Result<Option<PortalSession>> {
        Ok(self
            .db()
            .query_row(
                "SELECT subscriber, csrf, expires FROM portal_sessions WHERE token = ?1 AND expires > ?2",
                params![token, now],
                |r| Ok(PortalSession { subscriber: r.get(0)?, csrf: r.get(1)?, expires: r.get(2)? }),
            )
            .optional()?)
    }

    fn delete_portal_session(&self, token: &str, now: i64) -> Result<()> {
        let db = self.db();
        db.execute("DELETE FROM portal_sessions WHERE token = ?1 OR expires <= ?2", params![token, now])?;
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!("writing the parameter cache at exit: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str) -> Device {
        Device {
            id: id.into(),
            manufacturer: "m".into(),
            oui: "00A0B1".into(),
            product_class: "p".into(),
            serial_number: "s".into(),
            cr_url: "http://127.0.0.1:1/".into(),
            cr_username: "u".into(),
            cr_password: "pw".into(),
            last_inform: 1,
            tags: vec![],
        }
    }

    #[test]
    fn devices_params_tasks_faults() {
        let dir = std::env::temp_dir().join(format!("acs-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let db = dir.join("acs.db");
        {
            let s = SqliteStore::open(&db).expect("open");
            assert!(s.record_inform(&dev("a")).expect("new"));
            let mut again = dev("a");
            again.cr_url = String::new();
            again.last_inform = 5;
            assert!(!s.record_inform(&again).expect("known"));
            let d = s.device("a").expect("get").expect("present");
            assert_eq!(
                (d.last_inform, d.cr_url.as_str()),
                (5, "http://127.0.0.1:1/"),
                "an empty URL keeps the old one"
            );
            s.cache_params(
                "a",
                &[CachedParam { name: "Device.X.Y".into(), ty: "string".into(), value: "v".into(), updated: 5 }],
            )
            .expect("cache");
            s.cache_params(
                "a",
                &[CachedParam { name: "Device.X.Y".into(), ty: "string".into(), value: "w".into(), updated: 6 }],
            )
            .expect("update");
            assert_eq!(s.params("a").expect("params")[0].value, "w");
            // 37 rows: two groups of PARAM_ROWS and five single rows, written twice (replaced).
            for round in 0..2 {
                let many: Vec<CachedParam> = (0..37)
                    .map(|i| CachedParam {
                        name: format!("Device.Z.P{i:02}"),
                        ty: "unsignedInt".into(),
                        value: format!("{}", i * 10 + round),
                        updated: 10 + round,
                    })
                    .collect();
                s.cache_params("a", &many).expect("cache many");
            }
            let got = s.params("a").expect("params");
            assert_eq!(got.len(), 38);
            assert!(got
                .iter()
                .filter(|p| p.name.starts_with("Device.Z."))
                .enumerate()
                .all(|(i, p)| p.value == format!("{}", i * 10 + 1) && p.updated == 11 && p.ty == "unsignedInt"));
            s.forget_params("a", "Device.Z.").expect("forget");
            s.forget_params("a", "Device.X.").expect("forget");
            assert!(s.params("a").expect("params").is_empty());
            let t = s.enqueue("a", &crate::tasks::TaskSpec::Reboot.into(), 7).expect("enqueue");
            s.mark_sent(t.id, "task-1-1").expect("sent");
            let f = s.fault("a", Some(t.id), "cwmp.9002", "Internal error", "", 8).expect("fault");
            assert_eq!(s.task(t.id).expect("task").map(|t| t.status), Some(TaskStatus::Fault));
            assert_eq!(s.faults().expect("faults")[0].id, f);
            assert!(s.retry_task(t.id).expect("retry"));
            assert!(s.faults().expect("faults").is_empty());
            assert_eq!(s.open_tasks("a").expect("open").len(), 1);
        }
        // Reopening keeps everything and does not migrate twice.
        let s = SqliteStore::open(&db).expect("reopen");
        assert_eq!(s.open_tasks("a").expect("open")[0].attempts, 1);
        // A row as the NBI of earlier versions stored it (the request's JSON, untyped triples and
        // the web form's mark) decodes into its typed task.
        let old = r#"{"name":"addObject","objectName":"Device.X.","parameterValues":[["Subscriber","alice"],["CVLAN",7,"xsd:unsignedInt"]],"profile":true}"#;
        s.db()
            .execute("INSERT INTO tasks (id, device, spec, status, created) VALUES (99, 'a', ?1, 'pending', 9)", [old])
            .expect("old row");
        let t = s.task(99).expect("task").expect("present");
        assert!(t.order.profile);
        let crate::tasks::TaskSpec::AddObject { object_name, parameter_values } = &t.order.spec else {
            panic!("an addObject: {:?}", t.order)
        };
        assert_eq!(object_name, "Device.X.");
        assert_eq!(
            parameter_values.iter().map(|p| (p.name.as_str(), p.value.to_lexical().into_owned())).collect::<Vec<_>>(),
            [("Subscriber", "alice".to_string()), ("CVLAN", "7".to_string())]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
