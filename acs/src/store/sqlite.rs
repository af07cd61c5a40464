//! The SQLite engine: the connection (WAL), the schema and its migrations by `user_version`,
//! and the deferred (group-committed) writes of the parameter cache and the event log.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection};
use serde_json::Value as Json;

use super::deferred::{Deferred, Pending};
use super::{Result, StoreError};

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// Parameter-cache rows and events waiting for the next group commit (see `flush`).
    pub(super) deferred: Deferred,
}

/// Parameter rows written by one statement when the deferred writes are flushed.
const PARAM_ROWS: usize = 16;

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
    // 6: the credentials CPEs authenticate with, each bound to one device or a DeviceId prefix;
    // the password is kept only as its Digest secrets for the ACS's realm.
    "CREATE TABLE cpe_credentials (
        username TEXT PRIMARY KEY, ha1_md5 TEXT NOT NULL, ha1_sha256 TEXT NOT NULL,
        device TEXT, device_prefix TEXT, created INTEGER NOT NULL,
        CHECK ((device IS NULL) <> (device_prefix IS NULL)),
        CHECK (device_prefix IS NULL OR device_prefix <> ''));",
    // 7: where each subscriber's vRGW is, as the ACS placed it (before, the ACS believed the
    // `Instance.{n}.Subscriber` hosts reported). Seeded once from those reports, for subscribers
    // reported by exactly one instance; from here on only the ACS's own tasks change it.
    "CREATE TABLE placements (
        subscriber TEXT PRIMARY KEY, device TEXT NOT NULL, instance INTEGER NOT NULL,
        placed INTEGER NOT NULL, UNIQUE (device, instance));
     INSERT INTO placements (subscriber, device, instance, placed)
        SELECT value, device,
               CAST(substr(name, 43, length(name) - 42 - length('.Subscriber')) AS INTEGER), 0
        FROM params
        WHERE name GLOB 'Device.X_VRGW-ORG_Virtualization.Instance.[0-9]*.Subscriber'
          AND name NOT GLOB 'Device.X_VRGW-ORG_Virtualization.Instance.*.*.Subscriber'
          AND value <> ''
          AND value IN (SELECT value FROM params
                        WHERE name GLOB 'Device.X_VRGW-ORG_Virtualization.Instance.[0-9]*.Subscriber'
                          AND name NOT GLOB 'Device.X_VRGW-ORG_Virtualization.Instance.*.*.Subscriber'
                        GROUP BY value HAVING count(*) = 1);",
    // 8: keys the ACS signs with and must keep across restarts (the file URLs it gives devices).
    "CREATE TABLE server_keys (name TEXT PRIMARY KEY, value BLOB NOT NULL);",
    // 9: faults as GenieACS keeps them: one per device and channel (`task_<id>`, `default` for
    // presets), with how many times the channel faulted again (the latest fault of each is kept);
    // files with the time they were uploaded (GenieACS's `uploadDate`; the migration's for older).
    "ALTER TABLE faults ADD COLUMN channel TEXT NOT NULL DEFAULT '';
     ALTER TABLE faults ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
     UPDATE faults SET channel = CASE WHEN task IS NULL THEN 'default' ELSE 'task_' || task END;
     UPDATE faults SET retries =
        (SELECT count(*) - 1 FROM faults f WHERE f.device = faults.device AND f.channel = faults.channel);
     DELETE FROM faults WHERE id NOT IN (SELECT max(id) FROM faults GROUP BY device, channel);
     CREATE UNIQUE INDEX faults_channel ON faults (device, channel);
     ALTER TABLE files ADD COLUMN uploaded INTEGER NOT NULL DEFAULT 0;
     UPDATE files SET uploaded = strftime('%s', 'now');",
    // 10: GenieACS's `_lastBoot` and `_lastBootstrap` of each device (`_registered` is
    // `created`), seeded from the event log.
    "ALTER TABLE devices ADD COLUMN last_boot INTEGER;
     ALTER TABLE devices ADD COLUMN last_bootstrap INTEGER;
     UPDATE devices SET
        last_boot = (SELECT max(timestamp) FROM events WHERE events.device = devices.id AND code = '1 BOOT'),
        last_bootstrap =
            (SELECT max(timestamp) FROM events WHERE events.device = devices.id AND code = '0 BOOTSTRAP');",
    // 11: what presets name, as GenieACS keeps them: provision and virtual-parameter scripts
    // (JavaScript source, by kind and name) and the objects of `add_object`/`delete_object`.
    "CREATE TABLE scripts (kind TEXT NOT NULL, name TEXT NOT NULL, script TEXT NOT NULL, PRIMARY KEY (kind, name));
     CREATE TABLE objects (name TEXT PRIMARY KEY, object TEXT NOT NULL);",
    // 12: what CPEs tell of their paths besides values, as GenieACS keeps it: writability and,
    // for objects (named with their trailing dot), when their children were listed
    // (GetParameterNames); Notification, AccessList (JSON) and when they were read
    // (GetParameterAttributes). NULL: not known. A table of its own: the value cache's writes
    // (`INSERT OR REPLACE`, every column given) stay as they are, and a path listed but never
    // read has a row here only. Existing caches have no rows: everything unknown.
    "CREATE TABLE path_info (
        device TEXT NOT NULL, name TEXT NOT NULL, writable INTEGER, listed INTEGER, notification INTEGER,
        access_list TEXT, attributes_read INTEGER, PRIMARY KEY (device, name)) WITHOUT ROWID;",
    // 13: device ids escaped as GenieACS escapes them (`cwmp::DeviceId::key`: `-` inside a part is
    // `%2D`, so `00A0B1-vRGW-Host-h1` is `00A0B1-vRGW%2DHost-h1`). No SQL: [`rekey_devices`] runs
    // in this step's transaction.
    "",
    // 14: at most one running migration per instance of a host, kept by the database: the check
    // and the insert are one statement (two NBI calls at the same moment start one migration).
    // A duplicate left by an older ACS is failed, the newest of each instance kept.
    "UPDATE migrations SET record = json_set(record, '$.status', 'failed',
            '$.error', 'another migration of the instance was running (found when upgrading the ACS)')
        WHERE json_extract(record, '$.status') = 'running' AND id NOT IN (
            SELECT max(id) FROM migrations WHERE json_extract(record, '$.status') = 'running'
            GROUP BY json_extract(record, '$.source'), json_extract(record, '$.instance'));
     CREATE UNIQUE INDEX migrations_running
        ON migrations (json_extract(record, '$.source'), json_extract(record, '$.instance'))
        WHERE json_extract(record, '$.status') = 'running';",
    // 15: a host's credential names the virtual devices it proxies (their DeviceId prefix).
    "ALTER TABLE cpe_credentials ADD COLUMN proxies TEXT CHECK (proxies IS NULL OR (device IS NOT NULL AND proxies <> ''));",
    // 16: the device a subscriber's settings go to when it is not their embedded vRGW (a
    // physical gateway, a vRGW managed as a virtual device).
    "ALTER TABLE subscribers ADD COLUMN gateway TEXT;
     CREATE INDEX subscribers_gateway ON subscribers (gateway) WHERE gateway IS NOT NULL;",
];

/// The migration (its 1-based number) that renames devices to their escaped ids.
const REKEY_MIGRATION: usize = 13;

/// Migration 13: each device whose id is not `cwmp::DeviceId::key` of its OUI, product class and
/// serial number is renamed to it, in every table that names it (the value and path caches,
/// tasks, faults, events, placements, credentials bound to it, migration records). A credential's
/// device prefix is rewritten when the devices it covered agree on what it becomes (the same
/// part boundary in their new ids), else kept, with a warning naming it. Returns how many
/// devices were renamed.
fn rekey_devices(tx: &rusqlite::Transaction<'_>) -> Result<usize> {
    let renames: Vec<(String, String, [String; 3])> = {
        let mut st = tx.prepare("SELECT id, oui, product_class, serial_number FROM devices")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, [r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?]))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (old, [oui, product_class, serial_number]) = row?;
            let new = cwmp::DeviceId {
                manufacturer: String::new(),
                oui: oui.clone(),
                product_class: product_class.clone(),
                serial_number: serial_number.clone(),
            }
            .key();
            if new != old {
                out.push((old, new, [oui, product_class, serial_number]));
            }
        }
        out
    };
    for (old, new, _) in &renames {
        for table in ["params", "path_info", "tasks", "faults", "events", "placements", "cpe_credentials"] {
            tx.execute(&format!("UPDATE {table} SET device = ?2 WHERE device = ?1"), params![old, new])?;
        }
        tx.execute("UPDATE devices SET id = ?2 WHERE id = ?1", params![old, new])?;
        tracing::info!(from = %old, to = %new, "device renamed to its escaped id");
    }
    // Migration records name their source and target hosts.
    let records: Vec<(i64, String)> = {
        let mut st = tx.prepare("SELECT id, record FROM migrations")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, text) in records {
        let Ok(mut record) = serde_json::from_str::<Json>(&text) else { continue };
        let mut changed = false;
        for field in ["source", "target"] {
            if let Some((_, new, _)) = renames.iter().find(|(old, _, _)| record[field] == old.as_str()) {
                record[field] = Json::from(new.as_str());
                changed = true;
            }
        }
        if changed {
            tx.execute("UPDATE migrations SET record = ?2 WHERE id = ?1", params![id, record.to_string()])?;
        }
    }
    // Prefixes: where the old prefix ends inside each device it covered, that device's new id
    // has a prefix ending at the same place; rewritten when those all agree.
    let prefixes: Vec<(String, String)> = {
        let mut st =
            tx.prepare("SELECT username, device_prefix FROM cpe_credentials WHERE device_prefix IS NOT NULL")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (username, prefix) in prefixes {
        let mut candidates: Vec<String> = renames
            .iter()
            .filter(|(old, _, _)| old.starts_with(&prefix))
            .map(|(_, _, parts)| escaped_prefix(parts, prefix.chars().count()))
            .collect();
        candidates.sort();
        candidates.dedup();
        match candidates.as_slice() {
            [] => {}
            [new] if *new == prefix => {}
            [new] => {
                tx.execute(
                    "UPDATE cpe_credentials SET device_prefix = ?2 WHERE username = ?1",
                    params![username, new],
                )?;
                tracing::info!(%username, from = %prefix, to = %new, "credential's device prefix rewritten to escaped ids");
            }
            _ => tracing::warn!(
                %username, %prefix, ?candidates,
                "a credential's device prefix covers devices whose escaped ids do not share one prefix; kept as it was: set it again through the NBI"
            ),
        }
    }
    Ok(renames.len())
}

/// The first `chars` characters of the unescaped id `OUI-ProductClass-SerialNumber` (`parts`;
/// `OUI-SerialNumber` without a product class), escaped: the prefix of the escaped id that ends
/// where they end.
fn escaped_prefix(parts: &[String; 3], chars: usize) -> String {
    let [oui, product_class, serial_number] = parts;
    let parts: Vec<&String> =
        if product_class.is_empty() { vec![oui, serial_number] } else { vec![oui, product_class, serial_number] };
    let mut rest = chars;
    let mut out = String::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            if rest == 0 {
                break;
            }
            out.push('-');
            rest -= 1;
        }
        let taken: String = part.chars().take(rest).collect();
        rest -= taken.chars().count();
        out.push_str(&cwmp::DeviceId::escape_part(&taken));
    }
    out
}

/// Makes the database file at `path` readable by its owner only, creating it so if missing: it
/// holds credentials' hashes, subscribers' profiles and devices' secrets. SQLite gives the WAL and
/// shared-memory files the database file's mode. A file found readable by others is tightened,
/// with a warning. `:memory:` and the empty path (temporary databases) are left alone.
fn owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let mode = file.metadata().map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(db = %path.display(), mode = format!("{:o}", mode & 0o777), "the database was readable by others; now 0600");
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path` (`:memory:` for tests).
    pub fn open(path: &Path) -> Result<SqliteStore> {
        owner_only(path)?;
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
            return Err(StoreError::TooNew {
                path: path.display().to_string(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            if i + 1 == REKEY_MIGRATION {
                let renamed = rekey_devices(&tx)?;
                tracing::info!(renamed, "devices renamed to escaped ids");
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
            tracing::info!(version = i + 1, "database migrated");
        }
        Ok(SqliteStore { conn: Mutex::new(conn), deferred: Deferred::default() })
    }
}

impl super::Engine for SqliteStore {
    fn flush(&self) -> Result<()> {
        // The database lock first: a reader that flushes waits for a batch another thread has
        // taken but not yet committed, so it always reads its own writes.
        let db = self.db();
        self.deferred.flush(|batch| write_batch(&db, batch))
    }

    fn set_metrics(&self, m: crate::metrics::StoreMetrics) {
        self.deferred.set_metrics(m);
    }

    fn ping(&self) -> Result<()> {
        self.db().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    fn watch_tasks(&self, _wake: std::sync::Arc<dyn Fn() + Send + Sync>) {}
}

/// Writes one group-commit batch in one transaction (all or nothing).
fn write_batch(db: &Connection, batch: &[Pending]) -> Result<()> {
    {
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
            // What is not given (NULL) keeps what is stored.
            let mut info = tx.prepare_cached(
                "INSERT INTO path_info (device, name, writable, listed, notification, access_list, attributes_read)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (device, name) DO UPDATE SET
                    writable = coalesce(excluded.writable, writable),
                    listed = coalesce(excluded.listed, listed),
                    notification = coalesce(excluded.notification, notification),
                    access_list = coalesce(excluded.access_list, access_list),
                    attributes_read = coalesce(excluded.attributes_read, attributes_read)",
            )?;
            let mut dev = tx.prepare_cached(
                "UPDATE devices SET manufacturer = ?2, oui = ?3, product_class = ?4, serial_number = ?5,
                 cr_url = CASE WHEN ?6 = '' THEN cr_url ELSE ?6 END, last_inform = ?7 WHERE id = ?1",
            )?;
            for w in batch {
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
                    Pending::PathInfo(device, rows) => {
                        for p in rows {
                            let access_list = p.access_list.as_ref().map(|l| Json::from(l.clone()).to_string());
                            info.execute(params![
                                device,
                                p.name,
                                p.writable,
                                p.listed,
                                p.notification,
                                access_list,
                                p.attributes_read
                            ])?;
                        }
                    }
                }
            }
        }
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if let Err(e) = super::Engine::flush(self) {
            tracing::error!("writing the parameter cache at exit: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;
    use crate::store::TaskStatus;
    use crate::store::{CachedParam, Device, PathInfo};

    #[test]
    fn placements_are_seeded_once_from_what_hosts_reported_before() {
        let dir = test_support::TempDir::new("acs-store-seed");
        let path = dir.join("old.db");
        {
            let conn = Connection::open(&path).expect("open");
            for m in &MIGRATIONS[..6] {
                conn.execute_batch(m).expect("migrate");
            }
            conn.pragma_update(None, "user_version", 6).expect("version");
            let inst = "Device.X_VRGW-ORG_Virtualization.Instance.";
            for (device, name, value) in [
                ("h1", format!("{inst}3.Subscriber"), "alice"),
                ("h1", format!("{inst}12.Subscriber"), "bob"),
                ("h2", format!("{inst}1.Subscriber"), "bob"),
                ("h2", format!("{inst}2.Subscriber"), ""),
                ("h2", format!("{inst}4.Device.X.Subscriber"), "carol"),
            ] {
                conn.execute(
                    "INSERT INTO params (device, name, type, value, updated) VALUES (?1, ?2, 'string', ?3, 1)",
                    rusqlite::params![device, name, value],
                )
                .expect("row");
            }
        }
        let store = SqliteStore::open(&path).expect("migrated");
        let alice = store.placement("alice").expect("read").expect("alice placed");
        assert_eq!((alice.device.as_str(), alice.instance), ("h1", 3));
        assert_eq!(store.placement("bob").expect("read"), None, "reported twice: placed by no one's word");
        assert_eq!(store.placement("carol").expect("read"), None, "not an instance's own Subscriber");
        assert_eq!(store.placements_on("h2").expect("read"), vec![]);
    }

    #[test]
    fn a_cache_of_version_11_opens_with_nothing_known_beyond_values() {
        let dir = test_support::TempDir::new("acs-store-v11");
        let path = dir.join("old.db");
        let d = "00A0B1-p-s"; // its escaped id (migration 13 renames any other)
        {
            let conn = Connection::open(&path).expect("open");
            for m in &MIGRATIONS[..11] {
                conn.execute_batch(m).expect("migrate");
            }
            conn.pragma_update(None, "user_version", 11).expect("version");
            conn.execute(
                "INSERT INTO devices (id, manufacturer, oui, product_class, serial_number, last_inform, created)
                 VALUES ('00A0B1-p-s', 'm', '00A0B1', 'p', 's', 5, 5)",
                [],
            )
            .expect("device");
            conn.execute(
                "INSERT INTO params (device, name, type, value, updated) VALUES ('00A0B1-p-s', 'Device.A.B', 'string', 'v', 5)",
                [],
            )
            .expect("row");
        }
        let store = SqliteStore::open(&path).expect("migrated");
        let version: i64 = store.db().pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
        let values: Vec<(String, String)> =
            store.params(d).expect("values").into_iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(values, [("Device.A.B".to_string(), "v".to_string())], "the values are kept");
        assert_eq!(store.path_info(d).expect("info"), vec![], "writability and attributes unknown, not false");
        let told = PathInfo { name: "Device.A.".into(), writable: Some(false), listed: Some(6), ..PathInfo::default() };
        store.cache_path_info(d, std::slice::from_ref(&told)).expect("write");
        assert_eq!(store.path_info(d).expect("info"), [told]);
    }

    #[test]
    fn duplicate_running_migrations_of_version_13_keep_the_newest_running() {
        let dir = test_support::TempDir::new("acs-store-v13");
        let path = dir.join("old.db");
        {
            let conn = Connection::open(&path).expect("open");
            for m in &MIGRATIONS[..13] {
                conn.execute_batch(m).expect("migrate");
            }
            conn.pragma_update(None, "user_version", 13).expect("version");
            conn.execute_batch(
                "INSERT INTO migrations (record) VALUES
                    ('{\"source\":\"h\",\"instance\":1,\"status\":\"running\"}'),
                    ('{\"source\":\"h\",\"instance\":1,\"status\":\"running\"}'),
                    ('{\"source\":\"h\",\"instance\":2,\"status\":\"running\"}'),
                    ('{\"source\":\"h\",\"instance\":1,\"status\":\"done\"}');",
            )
            .expect("rows");
        }
        let store = SqliteStore::open(&path).expect("migrated");
        let status: Vec<String> = store
            .migrations()
            .expect("records")
            .iter()
            .map(|(_, r)| r["status"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(status, ["failed", "running", "running", "done"]);
        let first = &store.migrations().expect("records")[0].1;
        assert!(first["error"].as_str().unwrap_or_default().contains("another migration"), "{first}");
        assert_eq!(
            store
                .start_migration(&serde_json::json!({"source": "h", "instance": 1, "status": "running"}))
                .expect("start"),
            None
        );
    }

    #[test]
    fn devices_of_version_12_are_renamed_to_their_escaped_ids_everywhere() {
        let dir = test_support::TempDir::new("acs-store-v12");
        let path = dir.join("old.db");
        let (old, new) = ("00A0B1-vRGW-Host-h-1", "00A0B1-vRGW%2DHost-h%2D1");
        {
            let conn = Connection::open(&path).expect("open");
            for m in &MIGRATIONS[..12] {
                conn.execute_batch(m).expect("migrate");
            }
            conn.pragma_update(None, "user_version", 12).expect("version");
            conn.execute_batch(&format!(
                "INSERT INTO devices (id, manufacturer, oui, product_class, serial_number, last_inform, created)
                    VALUES ('{old}', 'm', '00A0B1', 'vRGW-Host', 'h-1', 5, 5),
                           ('00A0B1-SimCPE-s1', 'm', '00A0B1', 'SimCPE', 's1', 5, 5);
                 INSERT INTO params (device, name, type, value, updated) VALUES ('{old}', 'Device.A', 'string', 'v', 5);
                 INSERT INTO path_info (device, name, writable) VALUES ('{old}', 'Device.A', 1);
                 INSERT INTO tasks (device, spec, status, created) VALUES ('{old}', '{{}}', 'pending', 5);
                 INSERT INTO faults (device, code, message, detail, timestamp, channel) VALUES ('{old}', 'c', 'm', '', 5, 'default');
                 INSERT INTO events (device, code, command_key, timestamp) VALUES ('{old}', '1 BOOT', '', 5);
                 INSERT INTO placements (subscriber, device, instance, placed) VALUES ('alice', '{old}', 1, 5);
                 INSERT INTO cpe_credentials (username, ha1_md5, ha1_sha256, device, created) VALUES ('one', 'x', 'y', '{old}', 5);
                 INSERT INTO cpe_credentials (username, ha1_md5, ha1_sha256, device_prefix, created)
                    VALUES ('hosts', 'x', 'y', '00A0B1-vRGW-Host-', 5), ('sims', 'x', 'y', '00A0B1-SimCPE-', 5),
                           ('nobody', 'x', 'y', '00FFFF-A-B-', 5);
                 INSERT INTO migrations (record) VALUES ('{{\"source\":\"{old}\",\"target\":\"00A0B1-SimCPE-s1\",\"instance\":1}}');"
            ))
            .expect("rows");
        }
        let store = SqliteStore::open(&path).expect("migrated");
        let db = store.db();
        let count = |sql: &str, id: &str| -> i64 { db.query_row(sql, [id], |r| r.get(0)).expect(sql) };
        for table in ["params", "path_info", "tasks", "faults", "events", "placements", "cpe_credentials"] {
            let sql = format!("SELECT count(*) FROM {table} WHERE device = ?1");
            assert_eq!((table, count(&sql, new), count(&sql, old)), (table, 1, 0));
        }
        assert_eq!(count("SELECT count(*) FROM devices WHERE id = ?1", new), 1);
        assert_eq!(count("SELECT count(*) FROM devices WHERE id = ?1", "00A0B1-SimCPE-s1"), 1, "already escaped");
        let prefix = |user: &str| -> String {
            db.query_row("SELECT device_prefix FROM cpe_credentials WHERE username = ?1", [user], |r| r.get(0))
                .expect("prefix")
        };
        assert_eq!(prefix("hosts"), "00A0B1-vRGW%2DHost-");
        assert_eq!(prefix("sims"), "00A0B1-SimCPE-");
        assert_eq!(prefix("nobody"), "00FFFF-A-B-", "covers no device: kept");
        drop(db);
        let records = store.migrations().expect("records");
        assert_eq!(
            (records[0].1["source"].as_str(), records[0].1["target"].as_str()),
            (Some(new), Some("00A0B1-SimCPE-s1"))
        );
    }

    #[test]
    fn an_escaped_prefix_ends_where_the_unescaped_one_did() {
        let parts = ["00A0B1".to_string(), "vRGW-Host".to_string(), "h-1".to_string()];
        for (chars, want) in [
            (3, "00A"),
            (6, "00A0B1"),
            (7, "00A0B1-"),
            (11, "00A0B1-vRGW"),
            (12, "00A0B1-vRGW%2D"),
            (17, "00A0B1-vRGW%2DHost-"),
            (19, "00A0B1-vRGW%2DHost-h%2D"),
        ] {
            assert_eq!(escaped_prefix(&parts, chars), want, "{chars}");
        }
        let no_class = ["00A0B1".to_string(), String::new(), "a-b".to_string()];
        assert_eq!(escaped_prefix(&no_class, 9), "00A0B1-a%2D");
    }

    #[test]
    fn a_failed_group_commit_is_kept_and_written_by_the_next_flush() {
        let s = SqliteStore::open(Path::new(":memory:")).expect("store");
        let p = |name: &str, value: &str| CachedParam {
            name: name.into(),
            ty: "string".into(),
            value: value.into(),
            updated: 1,
        };
        s.cache_params("d", &[p("Device.A", "1")]).expect("queued");
        // The disk refuses for a while (as a full disk or an I/O error would).
        s.db()
            .execute_batch("CREATE TRIGGER full BEFORE INSERT ON params BEGIN SELECT RAISE(ABORT, 'disk full'); END;")
            .expect("trigger");
        assert!(s.flush().is_err(), "the failure is reported");
        s.cache_params("d", &[p("Device.A", "2"), p("Device.B", "3")]).expect("queued");
        assert!(s.flush().is_err());
        s.db().execute_batch("DROP TRIGGER full;").expect("drop");
        let mut got: Vec<(String, String)> =
            s.params("d").expect("read (flushes)").into_iter().map(|c| (c.name, c.value)).collect();
        got.sort();
        assert_eq!(
            got,
            vec![("Device.A".into(), "2".into()), ("Device.B".into(), "3".into())],
            "nothing lost, in order"
        );
    }

    #[test]
    fn the_database_is_owner_only_new_or_found_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = test_support::TempDir::new("acs-store-mode");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        let fresh = dir.join("new.db");
        drop(SqliteStore::open(&fresh).expect("open"));
        assert_eq!(mode(&fresh), 0o600);
        let old = dir.join("old.db");
        std::fs::write(&old, b"").expect("write");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let store = SqliteStore::open(&old).expect("open");
        store.set_cr_credentials("d", "acs", "written-through").expect("write");
        assert_eq!(mode(&old), 0o600);
        let wal = dir.join("old.db-wal");
        assert_eq!(mode(&wal), 0o600, "SQLite gives the WAL the database's mode");
    }

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
        // A row that does not decode is a typed error where it is read alone, and is faulted
        // (`task.invalid`) rather than holding up the device's other tasks.
        s.db()
            .execute("INSERT INTO tasks (id, device, spec, status, created) VALUES (100, 'a', '{\"name\":\"fly\"}', 'pending', 9)", [])
            .expect("bad row");
        assert!(matches!(s.task(100), Err(StoreError::Corrupt { .. })), "{:?}", s.task(100));
        let open: Vec<i64> = s.open_tasks("a").expect("open").iter().map(|t| t.id).collect();
        assert!(open.contains(&99) && !open.contains(&100), "{open:?}");
        let f = s.faults().expect("faults").into_iter().find(|f| f.task == Some(100)).expect("faulted");
        assert_eq!(f.code, "task.invalid");
        assert!(f.message.contains("unknown task \"fly\""), "{}", f.message);
        assert!(s.open_tasks("a").expect("open again").iter().all(|t| t.id != 100));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
