//! The PostgreSQL engine: the store a fleet of ACS nodes shares. A pool of connections (r2d2
//! over rust-postgres's synchronous client: the store traits are synchronous, as SQLite's are),
//! the schema and its migrations (serialized across nodes by an advisory lock), and this node's
//! group commit (the same deferred writes as SQLite's, written with one statement per table per
//! batch). The aggregates' implementations are in `aggregates`.
//!
//! The synchronous client drives its connection on a runtime of its own, which Tokio forbids
//! inside a runtime's worker: every call leaves the runtime first (`off_runtime`).
//!
//! The database unreachable: a connection is waited for up to [`CHECKOUT_WAIT`], then the call
//! fails with [`StoreError::Unavailable`] (answered 503); the pool reconnects in the background
//! with backoff. A connection that died is dropped when it fails; its statement's transaction
//! was rolled back by the server.

mod aggregates;
mod conn;

use std::collections::BTreeMap;
use std::time::Duration;

use ::postgres::NoTls;
use conn::{Conn, Manager};
use r2d2_postgres::PostgresConnectionManager;

use super::deferred::{Deferred, Pending};
use super::{PathInfo, Result, StoreError};

/// How long a call waits for a connection before the database counts as unavailable.
pub const CHECKOUT_WAIT: Duration = Duration::from_secs(5);

/// The PostgreSQL store.
pub struct PgStore {
    /// How to connect (the task watcher's own connection).
    config: ::postgres::Config,
    /// Set when the store is dropped: the task watcher stops.
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// This node's name in leases (a restarted node is the same node: its old leases go).
    node: String,
    /// `None` only while the store is dropped (its connections close off the runtime).
    pool: Option<r2d2::Pool<Manager>>,
    deferred: Deferred,
}

/// The schema, one step per entry; `schema_version` holds how many ran. The columns are
/// SQLite's (the same values, decoded by the same code), with PostgreSQL's types.
const MIGRATIONS: &[&str] = &[
    // 1: the schema of SQLite's migration 13.
    "CREATE TABLE devices (
        id TEXT PRIMARY KEY, manufacturer TEXT NOT NULL, oui TEXT NOT NULL, product_class TEXT NOT NULL,
        serial_number TEXT NOT NULL, cr_url TEXT NOT NULL DEFAULT '', cr_username TEXT NOT NULL DEFAULT '',
        cr_password TEXT NOT NULL DEFAULT '', last_inform BIGINT NOT NULL, tags TEXT NOT NULL DEFAULT '[]',
        created BIGINT NOT NULL, last_boot BIGINT, last_bootstrap BIGINT);
     CREATE TABLE params (
        device TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,
        updated BIGINT NOT NULL, PRIMARY KEY (device, name));
     CREATE TABLE path_info (
        device TEXT NOT NULL, name TEXT NOT NULL, writable BOOLEAN, listed BIGINT, notification BIGINT,
        access_list TEXT, attributes_read BIGINT, PRIMARY KEY (device, name));
     CREATE TABLE tasks (
        id BIGSERIAL PRIMARY KEY, device TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0, not_before BIGINT NOT NULL DEFAULT 0, key TEXT NOT NULL DEFAULT '',
        created BIGINT NOT NULL, result TEXT);
     CREATE INDEX tasks_device ON tasks (device, status, id);
     CREATE INDEX tasks_open ON tasks (device, id) WHERE status IN ('pending', 'sent');
     CREATE TABLE faults (
        id BIGSERIAL PRIMARY KEY, device TEXT NOT NULL, channel TEXT NOT NULL, task BIGINT, code TEXT NOT NULL,
        message TEXT NOT NULL, detail TEXT NOT NULL, retries BIGINT NOT NULL DEFAULT 0,
        timestamp BIGINT NOT NULL, UNIQUE (device, channel));
     CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY, device TEXT NOT NULL, code TEXT NOT NULL, command_key TEXT NOT NULL,
        timestamp BIGINT NOT NULL);
     CREATE INDEX events_device ON events (device, id);
     CREATE TABLE files (
        name TEXT PRIMARY KEY, content BYTEA NOT NULL, metadata TEXT NOT NULL, uploaded BIGINT NOT NULL);
     CREATE TABLE profiles (name TEXT PRIMARY KEY, precondition TEXT NOT NULL, configuration TEXT NOT NULL);
     CREATE TABLE scripts (kind TEXT NOT NULL, name TEXT NOT NULL, script TEXT NOT NULL, PRIMARY KEY (kind, name));
     CREATE TABLE objects (name TEXT PRIMARY KEY, object TEXT NOT NULL);
     CREATE TABLE subscribers (
        id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, profile TEXT NOT NULL DEFAULT '{}',
        profile_version BIGINT NOT NULL DEFAULT 0, applied TEXT NOT NULL DEFAULT '', created BIGINT NOT NULL);
     CREATE TABLE portal_sessions (
        token TEXT PRIMARY KEY, subscriber TEXT NOT NULL, csrf TEXT NOT NULL, expires BIGINT NOT NULL);
     CREATE TABLE migrations (id BIGSERIAL PRIMARY KEY, record TEXT NOT NULL);
     CREATE TABLE cpe_credentials (
        username TEXT PRIMARY KEY, ha1_md5 TEXT NOT NULL, ha1_sha256 TEXT NOT NULL,
        device TEXT, device_prefix TEXT, created BIGINT NOT NULL,
        CHECK ((device IS NULL) <> (device_prefix IS NULL)),
        CHECK (device_prefix IS NULL OR device_prefix <> ''));
     CREATE TABLE placements (
        subscriber TEXT PRIMARY KEY, device TEXT NOT NULL, instance BIGINT NOT NULL,
        placed BIGINT NOT NULL, UNIQUE (device, instance));
     CREATE TABLE server_keys (name TEXT PRIMARY KEY, value BYTEA NOT NULL);",
    // 2: leases: who holds what, until when (Unix seconds of the database's clock): a device's
    // session (`device:<id>`), a migration's orchestration (`migration:<id>`).
    "CREATE TABLE leases (key TEXT PRIMARY KEY, node TEXT NOT NULL, expires BIGINT NOT NULL);",
    // 3: what the NBI's device queries look up: tags, and a parameter's cached value (by its
    // hash: a value may be longer than a B-tree entry can hold).
    "CREATE INDEX devices_tags ON devices USING gin ((tags::jsonb));
     CREATE INDEX params_value ON params (name, md5(value));",
    // 4: at most one running migration per instance of a host, kept by the database (two nodes
    // starting the same migration at the same moment: one insert wins). A duplicate left by an
    // older ACS is failed, the newest of each instance kept.
    "UPDATE migrations SET record = jsonb_set(jsonb_set(record::jsonb, '{status}', '\"failed\"'),
            '{error}', '\"another migration of the instance was running (found when upgrading the ACS)\"')::text
        WHERE record::jsonb->>'status' = 'running' AND id NOT IN (
            SELECT max(id) FROM migrations WHERE record::jsonb->>'status' = 'running'
            GROUP BY record::jsonb->>'source', record::jsonb->>'instance');
     CREATE UNIQUE INDEX migrations_running
        ON migrations ((record::jsonb->>'source'), (record::jsonb->>'instance'))
        WHERE record::jsonb->>'status' = 'running';",
    // 5: a host's credential names the virtual devices it proxies (their DeviceId prefix).
    "ALTER TABLE cpe_credentials ADD COLUMN proxies TEXT CHECK (proxies IS NULL OR (device IS NOT NULL AND proxies <> ''));",
    // 6: the device a subscriber's settings go to when it is not their embedded vRGW (a
    // physical gateway, a vRGW managed as a virtual device).
    "ALTER TABLE subscribers ADD COLUMN gateway TEXT;
     CREATE INDEX subscribers_gateway ON subscribers (gateway) WHERE gateway IS NOT NULL;",
];

/// The advisory lock the nodes migrate under, one at a time.
const MIGRATION_LOCK: i64 = 0x7672_6777_0001;

/// Runs `f` where a blocking client may block: as is outside a runtime (a plain thread, a
/// blocking-pool thread); moved off the worker on a multi-thread runtime (`block_in_place`);
/// on a scoped thread of its own on a current-thread runtime, whose one thread cannot lend it.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    match tokio::runtime::Handle::try_current() {
        Err(_) => f(),
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        Ok(_) => std::thread::scope(|s| s.spawn(f).join()).unwrap_or_else(|p| std::panic::resume_unwind(p)),
    }
}

/// The pool's connection failures, logged as ours are.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<::postgres::Error> for LogErrors {
    fn handle_error(&self, e: ::postgres::Error) {
        tracing::warn!("PostgreSQL: connecting: {}", super::pg_message(&e));
    }
}

impl PgStore {
    /// Connects to the database at `url` (a password in it is refused: it comes from a file,
    /// `password`), keeping up to `pool` connections, and migrates it; this node is `node` in
    /// leases, and the leases a previous run of it left are dropped.
    pub fn open(url: &str, password: Option<&str>, pool: u32, node: &str) -> Result<PgStore> {
        let mut config: ::postgres::Config = url.parse().map_err(|e| StoreError::Config(format!("{url}: {e}")))?;
        if config.get_password().is_some() {
            return Err(StoreError::Config(
                "the PostgreSQL URL holds a password: give it in [store] password_file (mode 0600) instead".into(),
            ));
        }
        if let Some(p) = password {
            config.password(p);
        }
        config.application_name("vrgw-acs").connect_timeout(CHECKOUT_WAIT);
        let manager = Manager(PostgresConnectionManager::new(config.clone(), NoTls));
        // One connection first, for the precise reason when it fails (the pool's error only says
        // it timed out).
        off_runtime(|| r2d2::ManageConnection::connect(&manager).map(drop))?;
        let pool = r2d2::Pool::builder()
            .max_size(pool.max(1))
            .min_idle(Some(1))
            .connection_timeout(CHECKOUT_WAIT)
            // A checkout is not a round trip: a dead connection fails its first statement and is
            // dropped then.
            .test_on_check_out(false)
            .error_handler(Box::new(LogErrors))
            .build(manager)
            .map_err(|e| StoreError::Unavailable(format!("{url}: {e}")))?;
        let store = PgStore {
            config,
            stopped: Default::default(),
            node: node.to_string(),
            pool: Some(pool),
            deferred: Deferred::default(),
        };
        store.with(|c| migrate(c, url))?;
        // Its sessions and migrations ended with its previous run.
        let dropped = store.with(|c| Ok(c.execute("DELETE FROM leases WHERE node = $1", &[&store.node])?))?;
        tracing::info!(node = %store.node, leases_dropped = dropped, "this ACS node's name in leases");
        Ok(store)
    }

    /// Runs `f` on a connection of the pool (see [`off_runtime`]).
    fn with<T: Send>(&self, f: impl FnOnce(&mut Conn) -> Result<T> + Send) -> Result<T> {
        off_runtime(|| {
            let pool = self.pool.as_ref().ok_or_else(|| StoreError::Unavailable("closing".into()))?;
            let mut c = pool.get().map_err(|e| StoreError::Unavailable(e.to_string()))?;
            f(&mut c)
        })
    }

    /// [`PgStore::with`] after the deferred writes are written (a read of what they touch).
    fn flushed<T: Send>(&self, f: impl FnOnce(&mut Conn) -> Result<T> + Send) -> Result<T> {
        super::Engine::flush(self)?;
        self.with(f)
    }
}

fn migrate(c: &mut Conn, url: &str) -> Result<()> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let found: i64 = match tx.query_opt("SELECT version FROM schema_version", &[])? {
        Some(r) => r.try_get(0)?,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
            0
        }
    };
    if found as usize > MIGRATIONS.len() {
        return Err(StoreError::TooNew { path: url.to_string(), found, known: MIGRATIONS.len() });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(m)?;
        tx.execute("UPDATE schema_version SET version = $1", &[&((i + 1) as i64)])?;
        tracing::info!(version = i + 1, "database migrated");
    }
    tx.commit()?;
    Ok(())
}

impl super::Engine for PgStore {
    fn flush(&self) -> Result<()> {
        self.deferred.flush(|batch| self.with(|c| write_batch(c, batch)))
    }

    fn set_metrics(&self, m: crate::metrics::StoreMetrics) {
        self.deferred.set_metrics(m);
    }

    fn ping(&self) -> Result<()> {
        self.with(|c| Ok(c.batch_execute("SELECT 1")?))
    }

    fn remote(&self) -> bool {
        true
    }

    fn watch_tasks(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>) {
        let (config, stopped) = (self.config.clone(), self.stopped.clone());
        let watch = move || {
            use ::postgres::fallible_iterator::FallibleIterator as _;
            let mut backoff = Duration::from_millis(100);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let listened = config.connect(NoTls).and_then(|mut c| {
                    c.batch_execute(&format!("LISTEN {TASK_EVENTS}"))?;
                    backoff = Duration::from_millis(100);
                    // Whatever finished while this connection was not listening.
                    wake();
                    let mut n = c.notifications();
                    let mut events = n.timeout_iter(Duration::from_secs(1));
                    while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                        match events.next() {
                            Ok(Some(_)) => wake(),
                            Ok(None) => {}
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(())
                });
                if let Err(e) = listened {
                    tracing::warn!("PostgreSQL: watching task events: {}", super::pg_message(&e));
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        if let Err(e) = std::thread::Builder::new().name("pg-task-events".into()).spawn(watch) {
            tracing::error!("the task-event watcher did not start ({e}): waits for other nodes' tasks poll");
        }
    }
}

/// The channel nodes tell each other of finished and faulted tasks on.
pub(super) const TASK_EVENTS: &str = "vrgw_task_events";

impl Drop for PgStore {
    fn drop(&mut self) {
        self.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = super::Engine::flush(self) {
            tracing::error!("writing the parameter cache at exit: {e}");
        }
        // Closing a connection blocks on its runtime: not on a Tokio worker.
        if let Some(pool) = self.pool.take() {
            off_runtime(move || drop(pool));
        }
    }
}

/// One group-commit batch in one transaction: one statement per table, rows in key order (two
/// nodes' batches lock shared rows in the same order), a row given twice written once (its
/// latest; path information merged field by field, as the upsert would have).
fn write_batch(c: &mut Conn, batch: &[Pending]) -> Result<()> {
    let mut devices = BTreeMap::new();
    let mut params = BTreeMap::new();
    let mut info: BTreeMap<(&str, &str), PathInfo> = BTreeMap::new();
    let mut events = Vec::new();
    for w in batch {
        match w {
            Pending::Device(d) => {
                devices.insert(d.id.as_str(), d);
            }
            Pending::Params(dev, ps) => {
                for p in ps {
                    params.insert((dev.as_str(), p.name.as_str()), p);
                }
            }
            Pending::PathInfo(dev, rows) => {
                for p in rows {
                    let merged = info
                        .entry((dev.as_str(), p.name.as_str()))
                        .or_insert_with(|| PathInfo { name: p.name.clone(), ..PathInfo::default() });
                    merged.writable = p.writable.or(merged.writable);
                    merged.listed = p.listed.or(merged.listed);
                    merged.notification = p.notification.or(merged.notification);
                    merged.access_list = p.access_list.clone().or(merged.access_list.take());
                    merged.attributes_read = p.attributes_read.or(merged.attributes_read);
                }
            }
            Pending::Event(dev, code, key, at) => events.push((dev, code, key, *at)),
        }
    }
    let mut tx = c.transaction()?;
    if !devices.is_empty() {
        let col = |f: fn(&super::Device) -> &str| devices.values().map(|d| f(d)).collect::<Vec<&str>>();
        let last: Vec<i64> = devices.values().map(|d| d.last_inform).collect();
        tx.execute(
            "UPDATE devices AS d SET manufacturer = u.m, oui = u.o, product_class = u.pc, serial_number = u.sn,
                cr_url = CASE WHEN u.cr = '' THEN d.cr_url ELSE u.cr END, last_inform = u.li
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                AS u(id, m, o, pc, sn, cr, li)
             WHERE d.id = u.id",
            &[
                &col(|d| &d.id),
                &col(|d| &d.manufacturer),
                &col(|d| &d.oui),
                &col(|d| &d.product_class),
                &col(|d| &d.serial_number),
                &col(|d| &d.cr_url),
                &last,
            ],
        )?;
    }
    if !params.is_empty() {
        let devs: Vec<&str> = params.keys().map(|k| k.0).collect();
        let names: Vec<&str> = params.keys().map(|k| k.1).collect();
        let types: Vec<&str> = params.values().map(|p| p.ty.as_str()).collect();
        let values: Vec<&str> = params.values().map(|p| p.value.as_str()).collect();
        let updated: Vec<i64> = params.values().map(|p| p.updated).collect();
        tx.execute(
            "INSERT INTO params (device, name, type, value, updated)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
             ON CONFLICT (device, name) DO UPDATE SET
                type = excluded.type, value = excluded.value, updated = excluded.updated",
            &[&devs, &names, &types, &values, &updated],
        )?;
    }
    if !info.is_empty() {
        let devs: Vec<&str> = info.keys().map(|k| k.0).collect();
        let names: Vec<&str> = info.keys().map(|k| k.1).collect();
        let writable: Vec<Option<bool>> = info.values().map(|p| p.writable).collect();
        let listed: Vec<Option<i64>> = info.values().map(|p| p.listed).collect();
        let notification: Vec<Option<i64>> = info.values().map(|p| p.notification.map(i64::from)).collect();
        let access: Vec<Option<String>> = info
            .values()
            .map(|p| p.access_list.as_ref().map(|l| serde_json::Value::from(l.clone()).to_string()))
            .collect();
        let read: Vec<Option<i64>> = info.values().map(|p| p.attributes_read).collect();
        // What is not given (NULL) keeps what is stored.
        tx.execute(
            "INSERT INTO path_info (device, name, writable, listed, notification, access_list, attributes_read)
             SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::bigint[], $5::bigint[], $6::text[],
                                  $7::bigint[])
             ON CONFLICT (device, name) DO UPDATE SET
                writable = coalesce(excluded.writable, path_info.writable),
                listed = coalesce(excluded.listed, path_info.listed),
                notification = coalesce(excluded.notification, path_info.notification),
                access_list = coalesce(excluded.access_list, path_info.access_list),
                attributes_read = coalesce(excluded.attributes_read, path_info.attributes_read)",
            &[&devs, &names, &writable, &listed, &notification, &access, &read],
        )?;
    }
    if !events.is_empty() {
        let devs: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
        let codes: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
        let keys: Vec<&str> = events.iter().map(|e| e.2.as_str()).collect();
        let at: Vec<i64> = events.iter().map(|e| e.3).collect();
        // In the order they came (ids are the log's order).
        tx.execute(
            "INSERT INTO events (device, code, command_key, timestamp)
             SELECT d, c, k, t FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                WITH ORDINALITY AS u(d, c, k, t, n) ORDER BY n",
            &[&devs, &codes, &keys, &at],
        )?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;
    use crate::store::{CachedParam, Device, TaskStatus};

    fn named(db: &test_support::pg::Database, name: &str) -> PgStore {
        let password = std::fs::read_to_string(&db.password_file).expect("password file");
        PgStore::open(&db.url, Some(password.trim()), 2, name).expect("store")
    }

    fn node(db: &test_support::pg::Database) -> PgStore {
        named(db, "n")
    }

    fn dev(id: &str) -> Device {
        Device { id: id.into(), oui: "00A0B1".into(), last_inform: 5, ..Device::default() }
    }

    fn param(name: &str, value: &str) -> CachedParam {
        CachedParam { name: name.into(), ty: "string".into(), value: value.into(), updated: 1 }
    }

    #[test]
    fn two_nodes_share_the_database_and_each_reads_its_own_writes() {
        let cluster = test_support::pg::cluster();
        let db = cluster.database();
        let (a, b) = (named(&db, "a"), named(&db, "b"));
        assert!(a.record_inform(&dev("d")).expect("new on a"));
        assert!(!b.record_inform(&dev("d")).expect("known on b"), "a new device is written at once");
        a.cache_params("d", &[param("Device.A", "1")]).expect("queued on a");
        assert_eq!(a.params("d").expect("a reads its own write").len(), 1);
        b.cache_params("d", &[param("Device.A", "2"), param("Device.B", "3")]).expect("queued on b");
        b.flush().expect("b's group commit");
        let got: Vec<(String, String)> = a.params("d").expect("a").into_iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(got, [("Device.A".to_string(), "2".to_string()), ("Device.B".to_string(), "3".to_string())]);
        let t = b.enqueue("d", &crate::tasks::TaskSpec::Reboot.into(), 7).expect("queued on b");
        assert_eq!(a.open_tasks("d").expect("a sees it").iter().map(|t| t.id).collect::<Vec<_>>(), [t.id]);
        assert_eq!(a.server_key("file-urls").expect("a"), b.server_key("file-urls").expect("b"), "one key for all");
        // A node's migration does not run again.
        drop(node(&db));
        let version = cluster.psql(&db.name, "SELECT version FROM schema_version").expect("version");
        assert_eq!(version, MIGRATIONS.len().to_string());
    }

    #[test]
    fn a_task_is_claimed_by_the_node_holding_its_devices_lease_and_once() {
        let db = test_support::pg::cluster().database();
        let (a, b) = (named(&db, "a"), named(&db, "b"));
        a.record_inform(&dev("d")).expect("new");
        let t = a.enqueue("d", &crate::tasks::TaskSpec::Reboot.into(), 7).expect("queued");
        let d = crate::store::leases::device_key("d");
        assert!(!a.mark_sent(t.id, "task-1-1").expect("no lease yet"), "no claim without the lease");
        assert!(a.lease(&d, 30).expect("a leases"));
        assert!(!b.lease(&d, 30).expect("b tries"), "one session per device across nodes");
        assert!(!b.mark_sent(t.id, "task-1-1").expect("b tries"), "b does not hold the lease");
        assert!(a.mark_sent(t.id, "task-1-1").expect("a claims"));
        assert!(!a.mark_sent(t.id, "task-1-1").expect("again"), "claimed once");
        assert!(a.lease(&d, 30).expect("a renews"));
        a.release(&d).expect("released");
        assert!(b.lease(&d, 30).expect("b leases"), "released: b takes it");
        assert!(!a.lease(&d, 30).expect("a tries"));
        b.release(&d).expect("released");
        // A lease that expired is taken over.
        assert!(a.lease(&d, -1).expect("a leases, already expired"));
        assert!(b.lease(&d, 30).expect("b takes the expired lease"));
        // A node restarted (the same name) drops what its previous run held.
        drop(b);
        let b = named(&db, "b");
        assert!(a.lease(&d, 30).expect("free again"));
        drop(b);
        assert_eq!(a.task(t.id).expect("read").map(|t| (t.status, t.attempts)), Some((TaskStatus::Sent, 1)));
    }

    #[test]
    fn a_failed_group_commit_is_kept_and_a_bad_task_row_is_faulted() {
        let cluster = test_support::pg::cluster();
        let db = cluster.database();
        let s = node(&db);
        s.record_inform(&dev("d")).expect("new");
        s.cache_params("d", &[param("Device.A", "1")]).expect("queued");
        // The database refuses for a while (as a full disk would).
        cluster
            .psql(
                &db.name,
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;
                 CREATE TRIGGER full_disk BEFORE INSERT ON params FOR EACH ROW EXECUTE FUNCTION refuse();",
            )
            .expect("trigger");
        assert!(s.flush().is_err(), "the failure is reported");
        s.cache_params("d", &[param("Device.A", "2"), param("Device.B", "3")]).expect("queued");
        assert!(s.params("d").is_err(), "a read that cannot flush fails rather than reading stale values");
        cluster.psql(&db.name, "DROP TRIGGER full_disk ON params").expect("drop");
        let got: Vec<(String, String)> = s.params("d").expect("read").into_iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(got, [("Device.A".to_string(), "2".to_string()), ("Device.B".to_string(), "3".to_string())]);
        // A row that does not decode is faulted, the others run.
        let good = s.enqueue("d", &crate::tasks::TaskSpec::Reboot.into(), 7).expect("good");
        cluster
            .psql(
                &db.name,
                "INSERT INTO tasks (device, spec, status, created) VALUES ('d', '{\"name\":\"fly\"}', 'pending', 9)",
            )
            .expect("bad row");
        let open: Vec<i64> = s.open_tasks("d").expect("open").iter().map(|t| t.id).collect();
        assert_eq!(open, [good.id]);
        let f = s.device_faults("d").expect("faults");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].code, "task.invalid");
        assert!(f[0].message.contains("unknown task \"fly\""), "{}", f[0].message);
        let bad = f[0].task.expect("its task");
        assert!(matches!(s.task(bad), Err(StoreError::Corrupt { .. })), "a typed error where it is read alone");
        let status = cluster.psql(&db.name, &format!("SELECT status FROM tasks WHERE id = {bad}")).expect("status");
        assert_eq!(status, "fault");
        assert_eq!(s.task(good.id).expect("good").map(|t| t.status), Some(TaskStatus::Pending));
    }

    #[test]
    fn duplicate_running_migrations_of_version_3_keep_the_newest_running() {
        let cluster = test_support::pg::cluster();
        let db = cluster.database();
        drop(node(&db));
        let r =
            |instance: u32, status: &str| format!(r#"'{{"source":"h","instance":{instance},"status":"{status}"}}'"#);
        cluster
            .psql(
                &db.name,
                &format!(
                    "DROP INDEX migrations_running; ALTER TABLE cpe_credentials DROP COLUMN proxies;
                     ALTER TABLE subscribers DROP COLUMN gateway;
                     UPDATE schema_version SET version = 3;
                     INSERT INTO migrations (record) VALUES ({}), ({}), ({}), ({});",
                    r(1, "running"),
                    r(1, "running"),
                    r(2, "running"),
                    r(1, "done")
                ),
            )
            .expect("an older database");
        let s = node(&db);
        let records = s.migrations().expect("records");
        let status: Vec<&str> = records.iter().map(|(_, r)| r["status"].as_str().unwrap_or_default()).collect();
        assert_eq!(status, ["failed", "running", "running", "done"]);
        assert!(records[0].1["error"].as_str().unwrap_or_default().contains("another migration"), "{}", records[0].1);
        assert_eq!(
            s.start_migration(&serde_json::json!({"source": "h", "instance": 1, "status": "running"})).expect("start"),
            None
        );
    }

    #[test]
    fn a_password_in_the_url_and_a_newer_schema_are_refused() {
        let cluster = test_support::pg::cluster();
        let db = cluster.database();
        let with_password = db.url.replacen("vrgw@", "vrgw:secret@", 1);
        let e = PgStore::open(&with_password, None, 1, "n").err().expect("refused");
        assert!(e.to_string().contains("password_file"), "{e}");
        let wrong = PgStore::open(&db.url, Some("wrong"), 1, "n").err().expect("refused");
        assert!(wrong.to_string().contains("password authentication failed"), "{wrong}");
        drop(node(&db));
        cluster.psql(&db.name, "UPDATE schema_version SET version = 99").expect("newer");
        let password = std::fs::read_to_string(&db.password_file).expect("password file");
        let e = PgStore::open(&db.url, Some(password.trim()), 1, "n").err().expect("refused");
        assert!(matches!(e, StoreError::TooNew { found: 99, .. }), "{e}");
    }
}
