//! The agent's own state, in SQLite: what must survive a crash or a restart.
//!
//! - `meta`: the agent's id, the ParameterKey, whether BOOTSTRAP was delivered;
//! - `events`: Inform events not yet delivered to the ACS (kept until an InformResponse);
//! - `model`: the configuration part of the host data model (templates, pools, instances and
//!   their settings), as a snapshot rewritten after every change;
//! - `slots`: every domain the agent owns, its secret and management address, and what it is for
//!   (waiting in a pool, serving an instance). A slot is recorded *before* its domain is defined,
//!   so a crash between the two leaves a record the next start completes or rolls back.

use std::path::Path;
use std::sync::Mutex;

use datamodel::tree::Row;
use rusqlite::{params, Connection, OptionalExtension};

/// A failed state operation.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite said no.
    #[error("agent state: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The stored model snapshot does not parse.
    #[error("agent state: stored data model: {0}")]
    Model(String),
    /// A stored value does not parse (what and why).
    #[error("agent state: {0}")]
    Corrupt(String),
    /// The store's file could not be made owner-only.
    #[error("agent state: making {path} owner-only: {source}")]
    Private {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Result of a state operation.
pub type Result<T> = std::result::Result<T, StateError>;

/// What a slot (an owned domain) is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotUse {
    /// Recorded, its domain not yet defined and started (a crash here is rolled back).
    Creating,
    /// Started for a pool, booting: suspended once its proxy answers.
    Warming,
    /// Started and suspended, waiting in a pool for a subscriber.
    Pooled,
    /// Serving an instance.
    Assigned,
    /// Being destroyed (a crash here is finished at the next start).
    Deleting,
    /// Prepared for an instance arriving from another host (a defined domain waiting for a live
    /// migration, or a pooled domain taking the configuration), its VLAN not yet switched here.
    Incoming,
    /// Its instance is leaving for another host: migrating (live), or stopped or suspended and
    /// unbound (cold) until the destination took over or the migration was aborted.
    Outgoing,
}

impl SlotUse {
    fn as_str(self) -> &'static str {
        match self {
            SlotUse::Creating => "creating",
            SlotUse::Warming => "warming",
            SlotUse::Pooled => "pooled",
            SlotUse::Assigned => "assigned",
            SlotUse::Deleting => "deleting",
            SlotUse::Incoming => "incoming",
            SlotUse::Outgoing => "outgoing",
        }
    }

    fn parse(s: &str) -> SlotUse {
        match s {
            "warming" => SlotUse::Warming,
            "pooled" => SlotUse::Pooled,
            "assigned" => SlotUse::Assigned,
            "deleting" => SlotUse::Deleting,
            "incoming" => SlotUse::Incoming,
            "outgoing" => SlotUse::Outgoing,
            _ => SlotUse::Creating,
        }
    }
}

/// One owned domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Slot number (also in the domain's name and ownership mark).
    pub id: u32,
    /// Domain name.
    pub domain: String,
    /// Template instance number it was made from.
    pub template: u32,
    /// Pool instance number it belongs to while pooled (kept after assignment for accounting).
    pub pool: Option<u32>,
    /// Instance number it serves, when assigned.
    pub instance: Option<u32>,
    /// What it is doing.
    pub usage: SlotUse,
    /// Management address with prefix length.
    pub mgmt_address: String,
    /// The proxy's secret (never logged, never a parameter).
    pub secret: String,
    /// The domain's UUID when it came from another host (empty: libvirt's choice).
    pub uuid: String,
    /// The NICs' MAC addresses (management, LAN, WAN) when they came from another host with the
    /// vRGW (empty: derived from the slot number).
    pub macs: Vec<String>,
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL, command_key TEXT NOT NULL);
     CREATE TABLE model (id INTEGER PRIMARY KEY CHECK (id = 1), snapshot TEXT NOT NULL);
     CREATE TABLE slots (
        id INTEGER PRIMARY KEY, domain TEXT NOT NULL UNIQUE, template INTEGER NOT NULL, pool INTEGER,
        instance INTEGER UNIQUE, usage TEXT NOT NULL, mgmt_address TEXT NOT NULL, secret TEXT NOT NULL);
     CREATE TABLE profiles (instance INTEGER PRIMARY KEY, snapshot TEXT NOT NULL);",
    // Migrations: a vRGW keeps its UUID and MAC addresses when it moves between hosts.
    "ALTER TABLE slots ADD COLUMN uuid TEXT NOT NULL DEFAULT '';
     ALTER TABLE slots ADD COLUMN macs TEXT NOT NULL DEFAULT '';",
    // Virtual CWMP devices (TR-069 Annex J.2): each one's own state (its management server,
    // attributes) by DeviceId, and its events in the one queue (`device` '' is the host's).
    "CREATE TABLE virtual_devices (device TEXT PRIMARY KEY, snapshot TEXT NOT NULL);
     ALTER TABLE events ADD COLUMN device TEXT NOT NULL DEFAULT '';
     CREATE INDEX events_device ON events (device, id);",
    // The host model kept row by row (a parameter's value, a table, a write-once mark), so that
    // a change writes what changed: the one-row snapshot before made every change O(host).
    // The old row is read until the first save replaces it.
    "CREATE TABLE model_rows (part TEXT NOT NULL, path TEXT NOT NULL, row TEXT NOT NULL, PRIMARY KEY (part, path))
     WITHOUT ROWID;",
];

/// The host's own events in the queue (a virtual device's are under its DeviceId).
const HOST: &str = "";

/// The agent's SQLite store.
pub struct State {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("State")
    }
}

fn slot_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Slot> {
    let usage: String = r.get(5)?;
    Ok(Slot {
        id: r.get(0)?,
        domain: r.get(1)?,
        template: r.get(2)?,
        pool: r.get(3)?,
        instance: r.get(4)?,
        usage: SlotUse::parse(&usage),
        mgmt_address: r.get(6)?,
        secret: r.get(7)?,
        uuid: r.get(8)?,
        macs: r.get::<_, String>(9)?.split(',').filter(|m| !m.is_empty()).map(str::to_string).collect(),
    })
}

const SLOT_COLS: &str = "id, domain, template, pool, instance, usage, mgmt_address, secret, uuid, macs";

impl State {
    /// Opens (creating and migrating) the store at `path`.
    pub fn open(path: &Path) -> Result<State> {
        // It holds every vRGW's proxy secret: owner-only (0600) from its creation, an existing
        // wider one tightened with a warning; SQLite gives its WAL and shared-memory files the
        // database file's mode when it makes them, older wider ones are tightened too.
        let private = |p: &Path, what: &str, made: bool| {
            let r = if made { crate::secrets::ensure_private_file(p, what) } else { crate::secrets::tighten(p, what) };
            r.map_err(|source| StateError::Private { path: p.display().to_string(), source })
        };
        private(path, "the agent's store", true)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            private(Path::new(&side), "the agent's store", false)?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Every change here is a state transition of real resources: make it durable.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(State { conn: Mutex::new(conn) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A `meta` value.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.db().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Sets a `meta` value.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }

    /// Device `device`'s own requests kept for its next session (TransferComplete; `""` the
    /// host), as [`State::save_own_requests`] left them. One that cannot be read back is
    /// logged and left out.
    pub fn own_requests(&self, device: &str) -> Result<Vec<cwmp::Body>> {
        let Some(text) = self.meta(&own_key(device))? else { return Ok(Vec::new()) };
        let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|v| {
                let t = |k: &str| v[k].as_str().and_then(cwmp::DateTime::parse);
                let tc = cwmp::TransferComplete {
                    command_key: v["command_key"].as_str()?.to_string(),
                    fault: cwmp::TransferFault {
                        code: u32::try_from(v["fault"]["code"].as_u64()?).ok()?,
                        string: v["fault"]["string"].as_str().unwrap_or_default().to_string(),
                    },
                    start_time: t("start_time").unwrap_or_else(cwmp::DateTime::unknown),
                    complete_time: t("complete_time").unwrap_or_else(cwmp::DateTime::unknown),
                };
                Some(cwmp::Body::TransferComplete(tc))
            })
            .collect())
    }

    /// Keeps device `device`'s own requests (see [`State::own_requests`]); only
    /// TransferComplete is one.
    pub fn save_own_requests(&self, device: &str, own: &[cwmp::Body]) -> Result<()> {
        let list: Vec<serde_json::Value> = own
            .iter()
            .filter_map(|b| match b {
                cwmp::Body::TransferComplete(tc) => serde_json::to_value(tc).ok(),
                _ => None,
            })
            .collect();
        self.set_meta(&own_key(device), &serde_json::Value::Array(list).to_string())
    }

    /// Queues an Inform event of the host (a single-instance event code replaces an earlier one).
    pub fn push_event(&self, code: &str, command_key: &str) -> Result<()> {
        self.push_event_of(HOST, code, command_key)
    }

    /// The host's undelivered events, oldest first, with their row ids.
    pub fn events(&self) -> Result<Vec<(i64, String, String)>> {
        self.events_of(HOST)
    }

    /// Forgets the host's events the ACS acknowledged (ids up to and including `last`).
    pub fn delivered(&self, last: i64) -> Result<()> {
        self.delivered_of(HOST, last)
    }

    /// Queues an Inform event of `device` (`""`: the host; else a virtual device's DeviceId key).
    pub fn push_event_of(&self, device: &str, code: &str, command_key: &str) -> Result<()> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        if !code.starts_with('M') {
            tx.execute("DELETE FROM events WHERE device = ?1 AND code = ?2", [device, code])?;
        }
        tx.execute(
            "INSERT INTO events (device, code, command_key) VALUES (?1, ?2, ?3)",
            params![device, code, command_key],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// `device`'s undelivered events, oldest first, with their row ids.
    pub fn events_of(&self, device: &str) -> Result<Vec<(i64, String, String)>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT id, code, command_key FROM events WHERE device = ?1 ORDER BY id")?;
        let rows =
            st.query_map([device], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Forgets `device`'s events the ACS acknowledged (ids up to and including `last`).
    pub fn delivered_of(&self, device: &str, last: i64) -> Result<()> {
        self.db().execute("DELETE FROM events WHERE device = ?1 AND id <= ?2", params![device, last])?;
        Ok(())
    }

    /// A virtual device's own state, as `vdevice::VirtualDevice::snapshot` made it.
    pub fn virtual_device(&self, device: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = self
            .db()
            .query_row("SELECT snapshot FROM virtual_devices WHERE device = ?1", [device], |r| r.get(0))
            .optional()?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| StateError::Corrupt(format!("virtual device {device}: {e}"))))
            .transpose()
    }

    /// Keeps a virtual device's own state.
    pub fn save_virtual_device(&self, device: &str, snapshot: &serde_json::Value) -> Result<()> {
        self.db().execute(
            "INSERT INTO virtual_devices (device, snapshot) VALUES (?1, ?2)
             ON CONFLICT (device) DO UPDATE SET snapshot = ?2",
            params![device, snapshot.to_string()],
        )?;
        Ok(())
    }

    /// Forgets a virtual device (its vRGW left the host or stopped being one): its state and
    /// its events.
    pub fn drop_virtual_device(&self, device: &str) -> Result<()> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute("DELETE FROM virtual_devices WHERE device = ?1", [device])?;
        tx.execute("DELETE FROM events WHERE device = ?1", [device])?;
        tx.execute("DELETE FROM meta WHERE key = ?1", [own_key(device)])?;
        tx.commit()?;
        Ok(())
    }

    /// The stored data-model snapshot: its rows, or (a store not saved since the model was
    /// kept row by row) the one-row snapshot of before.
    pub fn model(&self) -> Result<Option<datamodel::tree::Snapshot>> {
        let db = self.db();
        let mut st = db.prepare("SELECT path, row FROM model_rows")?;
        let rows: Vec<(String, String)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        if !rows.is_empty() {
            let rows = rows
                .into_iter()
                .map(|(path, row)| {
                    let row: Row = serde_json::from_str(&row).map_err(|e| StateError::Model(format!("{path}: {e}")))?;
                    Ok((path, row))
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Some(datamodel::tree::Snapshot::from_rows(rows)));
        }
        let s: Option<String> = db.query_row("SELECT snapshot FROM model WHERE id = 1", [], |r| r.get(0)).optional()?;
        s.map(|s| serde_json::from_str(&s).map_err(|e| StateError::Model(e.to_string()))).transpose()
    }

    /// Replaces the stored data model with this snapshot, whole (one transaction).
    pub fn save_model(&self, snap: &datamodel::tree::Snapshot) -> Result<()> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute("DELETE FROM model_rows", [])?;
        tx.execute("DELETE FROM model", [])?;
        {
            let mut st = tx.prepare_cached("INSERT INTO model_rows (part, path, row) VALUES (?1, ?2, ?3)")?;
            for (path, row) in snap.rows() {
                let text = serde_json::to_string(&row).map_err(|e| StateError::Model(e.to_string()))?;
                st.execute(params![row.part().as_str(), path, text])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Writes the rows of the data model that changed (`Tree::take_changes`) over those stored
    /// (one transaction).
    pub fn save_model_changes(&self, changes: &datamodel::tree::Changes) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO model_rows (part, path, row) VALUES (?1, ?2, ?3)
                 ON CONFLICT (part, path) DO UPDATE SET row = ?3",
            )?;
            let mut drop = tx.prepare_cached("DELETE FROM model_rows WHERE part = ?1 AND path = ?2")?;
            for ((part, path), row) in changes {
                match row {
                    Some(row) => {
                        let text = serde_json::to_string(row).map_err(|e| StateError::Model(e.to_string()))?;
                        put.execute(params![part.as_str(), path, text])?;
                    }
                    None => {
                        drop.execute(params![part.as_str(), path])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Each instance's profile (the settings of its own data model), by instance number.
    pub fn profiles(&self) -> Result<Vec<(u32, datamodel::tree::Snapshot)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT instance, snapshot FROM profiles ORDER BY instance")?;
        let rows: Vec<(u32, String)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(n, s)| {
                Ok((n, serde_json::from_str(&s).map_err(|e| StateError::Model(format!("profile {n}: {e}")))?))
            })
            .collect()
    }

    /// Replaces the stored profiles with these (one transaction).
    pub fn save_profiles(&self, profiles: &[(u32, datamodel::tree::Snapshot)]) -> Result<()> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute("DELETE FROM profiles", [])?;
        for (n, snap) in profiles {
            let s = serde_json::to_string(snap).map_err(|e| StateError::Model(e.to_string()))?;
            tx.execute("INSERT INTO profiles (instance, snapshot) VALUES (?1, ?2)", params![n, s])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Keeps these instances' profiles and forgets those of `gone` (one transaction; the others
    /// untouched).
    pub fn save_some_profiles(&self, changed: &[(u32, datamodel::tree::Snapshot)], gone: &[u32]) -> Result<()> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        for (n, snap) in changed {
            let s = serde_json::to_string(snap).map_err(|e| StateError::Model(e.to_string()))?;
            tx.execute(
                "INSERT INTO profiles (instance, snapshot) VALUES (?1, ?2)
                 ON CONFLICT (instance) DO UPDATE SET snapshot = ?2",
                params![n, s],
            )?;
        }
        for n in gone {
            tx.execute("DELETE FROM profiles WHERE instance = ?1", [n])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Keeps one instance's profile (the others untouched): what a change through one virtual
    /// device writes, rather than every profile of the host.
    pub fn save_profile(&self, n: u32, snap: &datamodel::tree::Snapshot) -> Result<()> {
        let s = serde_json::to_string(snap).map_err(|e| StateError::Model(e.to_string()))?;
        self.db().execute(
            "INSERT INTO profiles (instance, snapshot) VALUES (?1, ?2)
             ON CONFLICT (instance) DO UPDATE SET snapshot = ?2",
            params![n, s],
        )?;
        Ok(())
    }

    /// Records a new slot (before its domain exists), its domain named `AGENT-N`.
    pub fn new_slot(
        &self,
        agent: &str,
        template: u32,
        pool: Option<u32>,
        mgmt: &dyn Fn(u32) -> String,
        secret: &str,
    ) -> Result<Slot> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        // Slot numbers are never reused (they name domains, MAC addresses and log lines).
        let next: Option<String> =
            tx.query_row("SELECT value FROM meta WHERE key = 'next_slot'", [], |r| r.get(0)).optional()?;
        let id: u32 = next.and_then(|n| n.parse().ok()).unwrap_or(1);
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('next_slot', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1",
            [(id + 1).to_string()],
        )?;
        let slot = Slot {
            id,
            domain: format!("{agent}-{id}"),
            template,
            pool,
            instance: None,
            usage: SlotUse::Creating,
            mgmt_address: mgmt(id),
            secret: secret.to_string(),
            uuid: String::new(),
            macs: Vec::new(),
        };
        tx.execute(
            &format!("INSERT INTO slots ({SLOT_COLS}) VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, '', '')"),
            params![
                slot.id,
                slot.domain,
                slot.template,
                slot.pool,
                slot.usage.as_str(),
                slot.mgmt_address,
                slot.secret
            ],
        )?;
        tx.commit()?;
        Ok(slot)
    }

    /// Sets what a slot does (and which instance it serves).
    pub fn set_slot(&self, id: u32, usage: SlotUse, instance: Option<u32>) -> Result<()> {
        self.db().execute(
            "UPDATE slots SET usage = ?2, instance = ?3 WHERE id = ?1",
            params![id, usage.as_str(), instance],
        )?;
        Ok(())
    }

    /// Gives a slot the identity of a vRGW that came from another host: its domain UUID, MAC
    /// addresses and (live) management address and secret.
    pub fn set_identity(&self, id: u32, uuid: &str, macs: &[String], mgmt_address: &str, secret: &str) -> Result<()> {
        self.db().execute(
            "UPDATE slots SET uuid = ?2, macs = ?3, mgmt_address = ?4, secret = ?5 WHERE id = ?1",
            params![id, uuid, macs.join(","), mgmt_address, secret],
        )?;
        Ok(())
    }

    /// Forgets a slot (its domain is gone).
    pub fn drop_slot(&self, id: u32) -> Result<()> {
        self.db().execute("DELETE FROM slots WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every slot.
    pub fn slots(&self) -> Result<Vec<Slot>> {
        let db = self.db();
        let mut st = db.prepare(&format!("SELECT {SLOT_COLS} FROM slots ORDER BY id"))?;
        let rows = st.query_map([], slot_row)?.collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// A pooled slot of `pool` to hand to an instance, oldest first.
    pub fn take_pooled(&self, pool: u32) -> Result<Option<Slot>> {
        Ok(self
            .db()
            .query_row(
                &format!("SELECT {SLOT_COLS} FROM slots WHERE pool = ?1 AND usage = 'pooled' ORDER BY id LIMIT 1"),
                [pool],
                slot_row,
            )
            .optional()?)
    }

    /// The slot serving `instance`.
    pub fn slot_of(&self, instance: u32) -> Result<Option<Slot>> {
        Ok(self
            .db()
            .query_row(&format!("SELECT {SLOT_COLS} FROM slots WHERE instance = ?1"), [instance], slot_row)
            .optional()?)
    }
}

/// Where a device's own requests are kept in `meta`.
fn own_key(device: &str) -> String {
    format!("own/{device}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store's path in a folder of its own, removed with it when dropped.
    struct TempDb(std::path::PathBuf);

    impl std::ops::Deref for TempDb {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for TempDb {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn temp(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!("hv-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        TempDb(dir.join("agent.db"))
    }

    #[test]
    fn transfer_completes_are_kept_per_device_across_a_reopen_and_forgotten_with_it() {
        let path = temp("own");
        let st = State::open(&path).expect("open");
        let vd = "00A0B1-vRGW-alice";
        let tc = |key: &str, code: u32| {
            cwmp::Body::TransferComplete(cwmp::TransferComplete {
                command_key: key.into(),
                fault: cwmp::TransferFault { code, string: if code == 0 { String::new() } else { "why".into() } },
                start_time: cwmp::DateTime::from_unix(1_800_000_000),
                complete_time: cwmp::DateTime::from_unix(1_800_000_007),
            })
        };
        assert_eq!(st.own_requests(vd).expect("none yet"), Vec::new());
        st.save_own_requests(vd, &[tc("fw-1", 0), tc("fw-2", 9018)]).expect("kept");
        st.save_own_requests("", &[tc("host-1", 0)]).expect("kept");
        drop(st);
        let st = State::open(&path).expect("reopen");
        assert_eq!(st.own_requests(vd).expect("read"), vec![tc("fw-1", 0), tc("fw-2", 9018)]);
        assert_eq!(st.own_requests("").expect("read"), vec![tc("host-1", 0)]);
        st.drop_virtual_device(vd).expect("forgotten");
        assert_eq!(st.own_requests(vd).expect("read"), Vec::new());
        assert_eq!(st.own_requests("").expect("read"), vec![tc("host-1", 0)], "the host's stay");
    }

    #[test]
    fn each_device_has_its_own_events_and_a_virtual_device_is_forgotten_whole() {
        let path = temp("events-of");
        let st = State::open(&path).expect("open");
        let vd = "00A0B1-vRGW-alice";
        st.push_event("1 BOOT", "").expect("host");
        st.push_event_of(vd, "0 BOOTSTRAP", "").expect("vd");
        st.push_event_of(vd, "1 BOOT", "").expect("vd");
        st.push_event_of(vd, "1 BOOT", "").expect("single: replaces");
        st.push_event_of(vd, "M Reboot", "k").expect("multiple");
        let codes = |e: Vec<(i64, String, String)>| e.into_iter().map(|(_, c, _)| c).collect::<Vec<_>>();
        assert_eq!(codes(st.events().expect("host")), ["1 BOOT"]);
        let of = st.events_of(vd).expect("vd");
        assert_eq!(codes(of.clone()), ["0 BOOTSTRAP", "1 BOOT", "M Reboot"]);
        // Acknowledging the device's first two leaves the host's and its third.
        st.delivered_of(vd, of[1].0).expect("delivered");
        assert_eq!(codes(st.events_of(vd).expect("vd")), ["M Reboot"]);
        assert_eq!(codes(st.events().expect("host")), ["1 BOOT"]);
        st.save_virtual_device(vd, &serde_json::json!({"own": 1})).expect("save");
        st.save_virtual_device(vd, &serde_json::json!({"own": 2})).expect("replace");
        drop(st);
        let st = State::open(&path).expect("reopen");
        assert_eq!(st.virtual_device(vd).expect("read"), Some(serde_json::json!({"own": 2})));
        st.drop_virtual_device(vd).expect("drop");
        assert_eq!(st.virtual_device(vd).expect("read"), None);
        assert!(st.events_of(vd).expect("vd").is_empty());
        assert_eq!(codes(st.events().expect("host")), ["1 BOOT"], "the host's stay");
    }

    #[test]
    fn the_model_is_kept_row_by_row_and_an_old_one_row_store_is_read_then_replaced() {
        use datamodel::{Schema, Tree};
        let path = temp("model-rows");
        let mut t = Tree::new(Schema::host());
        let instances = "Device.X_VRGW-ORG_Virtualization.Instance.";
        t.add_object(instances).expect("1");
        // A store of before: the model as one row.
        {
            let s = State::open(&path).expect("open");
            let json = serde_json::to_string(&t.snapshot()).expect("json");
            s.db().execute("INSERT INTO model (id, snapshot) VALUES (1, ?1)", [json]).expect("old row");
        }
        let s = State::open(&path).expect("reopen");
        assert_eq!(s.model().expect("read").as_ref(), Some(&t.snapshot()), "the old row is read");
        // The first save writes every row and drops the old one; then only changes.
        s.save_model(&t.snapshot()).expect("full");
        let old: i64 = s.db().query_row("SELECT count(*) FROM model", [], |r| r.get(0)).expect("count");
        assert_eq!(old, 0);
        t.track_changes();
        t.add_object(instances).expect("2");
        t.delete_object(&format!("{instances}1.")).expect("delete 1");
        let changes = t.take_changes();
        assert!(!changes.is_empty());
        let rows =
            |s: &State| -> i64 { s.db().query_row("SELECT count(*) FROM model_rows", [], |r| r.get(0)).expect("n") };
        let before = rows(&s);
        s.save_model_changes(&changes).expect("changes");
        drop(s);
        let s = State::open(&path).expect("reopen");
        assert_eq!(s.model().expect("read"), Some(t.snapshot()), "stored rows plus changes are the model");
        assert_eq!(rows(&s), before, "one instance's rows in for another's out");
    }

    #[test]
    fn the_store_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        let path = temp("mode");
        let s = State::open(&path).expect("open");
        s.new_slot("vrgw", 1, None, &|n| format!("10.99.0.{n}/24"), "secret").expect("slot");
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        assert_eq!((mode(&path), mode(Path::new(&wal))), (0o600, 0o600), "new store and its WAL");
        drop(s);
        // A store an older agent made world-readable is tightened when opened.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("widen");
        // (SQLite removed the WAL when the store closed: an empty one, as a crash leaves it.)
        std::fs::write(&wal, b"").expect("wal");
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).expect("widen");
        let s = State::open(&path).expect("reopen");
        assert_eq!((mode(&path), mode(Path::new(&wal))), (0o600, 0o600), "tightened");
        assert_eq!(s.slots().expect("slots").len(), 1, "and still read");
        // A store the agent cannot make owner-only is refused, not opened wide.
        let missing = path.with_file_name("no-such-dir").join("agent.db");
        assert!(matches!(State::open(&missing), Err(StateError::Private { .. })));
    }

    #[test]
    fn events_slots_and_model_survive_reopening() {
        let path = temp("reopen");
        {
            let s = State::open(&path).expect("open");
            s.set_meta("ParameterKey", "k-1").expect("meta");
            s.push_event("0 BOOTSTRAP", "").expect("event");
            s.push_event("1 BOOT", "").expect("event");
            s.push_event("1 BOOT", "").expect("single event not doubled");
            s.push_event("M Reboot", "cmd-1").expect("event");
            let a = s.new_slot("vrgw", 1, Some(1), &|n| format!("10.99.0.{}/24", n + 10), "aa").expect("slot");
            let b = s.new_slot("vrgw", 1, Some(1), &|n| format!("10.99.0.{}/24", n + 10), "bb").expect("slot");
            assert_eq!((a.id, b.id, a.domain.as_str(), b.mgmt_address.as_str()), (1, 2, "vrgw-1", "10.99.0.12/24"));
            s.set_slot(1, SlotUse::Pooled, None).expect("pooled");
            s.set_slot(2, SlotUse::Pooled, None).expect("pooled");
            let t = s.take_pooled(1).expect("take").expect("one pooled");
            assert_eq!(t.id, 1);
            s.set_slot(t.id, SlotUse::Assigned, Some(7)).expect("assign");
            assert_eq!(s.take_pooled(1).expect("take").map(|x| x.id), Some(2));
        }
        let s = State::open(&path).expect("reopen");
        assert_eq!(s.meta("ParameterKey").expect("meta").as_deref(), Some("k-1"));
        let ev: Vec<(String, String)> = s.events().expect("events").into_iter().map(|(_, c, k)| (c, k)).collect();
        assert_eq!(
            ev,
            vec![
                ("0 BOOTSTRAP".into(), String::new()),
                ("1 BOOT".into(), String::new()),
                ("M Reboot".into(), "cmd-1".into())
            ]
        );
        let last = s.events().expect("events").last().map(|e| e.0).expect("last");
        s.delivered(last).expect("delivered");
        assert!(s.events().expect("events").is_empty());
        let slot = s.slot_of(7).expect("slot_of").expect("assigned");
        assert_eq!((slot.id, slot.usage, slot.secret.as_str()), (1, SlotUse::Assigned, "aa"));
        s.drop_slot(2).expect("drop");
        assert_eq!(s.slots().expect("slots").len(), 1);
        // A slot number is never reused.
        let c = s.new_slot("vrgw", 1, None, &|n| format!("10.99.0.{n}/24"), "cc").expect("slot");
        assert_eq!(c.id, 3);
        // One instance, one slot.
        assert!(s.set_slot(3, SlotUse::Assigned, Some(7)).is_err());
    }
}
