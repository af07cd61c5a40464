//! Devices and their parameter cache: what an Inform records, tags, and the cached values
//! tasks read (the SQLite engine defers cache and event writes; see `sqlite::SqliteStore::flush`).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::sqlite::{Pending, SqliteStore};
use super::Result;

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

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    let id: String = r.get(0)?;
    Ok(Device {
        tags: super::json_col(r, 9, &format!("the tags of device {id}"))?,
        id,
        manufacturer: r.get(1)?,
        oui: r.get(2)?,
        product_class: r.get(3)?,
        serial_number: r.get(4)?,
        cr_url: r.get(5)?,
        cr_username: r.get(6)?,
        cr_password: r.get(7)?,
        last_inform: r.get(8)?,
    })
}

const DEVICE_COLS: &str =
    "id, manufacturer, oui, product_class, serial_number, cr_url, cr_username, cr_password, last_inform, tags";

/// Devices: created and updated by their Informs.
pub trait DeviceStore {
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
    /// Records an Inform event.
    fn add_event(&self, device: &str, code: &str, command_key: &str, at: i64) -> Result<()>;
    /// The connection-request credentials the ACS set on `device`, if any (a point read that
    /// does not wait for the deferred writes: these columns are never deferred).
    fn cr_credentials(&self, device: &str) -> Result<Option<(String, String)>>;
    /// Records the connection-request credentials the device accepted.
    fn set_cr_credentials(&self, device: &str, username: &str, password: &str) -> Result<()>;
}

/// The parameter cache: values as devices last reported them.
pub trait ParamStore {
    /// Stores parameter values (one transaction).
    fn cache_params(&self, device: &str, params: &[CachedParam]) -> Result<()>;
    /// Forgets cached parameters below a path (after a delete).
    fn forget_params(&self, device: &str, prefix: &str) -> Result<()>;
    /// A device's cached parameters.
    fn params(&self, device: &str) -> Result<Vec<CachedParam>>;
    /// Every cached parameter whose name ends in `.Subscriber` and whose value is `value`:
    /// (device, name) pairs (a scan of the cache: no index slows every cache write for it).
    fn subscriber_params(&self, value: &str) -> Result<Vec<(String, String)>>;
    /// The `(name, value)` of every cached parameter of `device` whose name ends in `.Subscriber`.
    fn subscriber_rows(&self, device: &str) -> Result<Vec<(String, String)>>;
}

impl DeviceStore for SqliteStore {
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

    fn cr_credentials(&self, device: &str) -> Result<Option<(String, String)>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT cr_username, cr_password FROM devices WHERE id = ?1")?;
        let row: Option<(String, String)> = st.query_row([device], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        Ok(row.filter(|(u, p)| !u.is_empty() || !p.is_empty()))
    }

    fn set_cr_credentials(&self, device: &str, username: &str, password: &str) -> Result<()> {
        self.db().execute(
            "UPDATE devices SET cr_username = ?2, cr_password = ?3 WHERE id = ?1",
            params![device, username, password],
        )?;
        Ok(())
    }

    fn add_event(&self, device: &str, code: &str, command_key: &str, at: i64) -> Result<()> {
        self.flush()?;
        self.db().execute(
            "INSERT INTO events (device, code, command_key, timestamp) VALUES (?1, ?2, ?3, ?4)",
            params![device, code, command_key, at],
        )?;
        Ok(())
    }
}

impl ParamStore for SqliteStore {
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

    fn subscriber_params(&self, value: &str) -> Result<Vec<(String, String)>> {
        self.flush()?;
        let db = self.db();
        let mut st = db
            .prepare_cached("SELECT device, name FROM params WHERE substr(name, -11) = '.Subscriber' AND value = ?1")?;
        let rows = st.query_map([value], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn subscriber_rows(&self, device: &str) -> Result<Vec<(String, String)>> {
        self.flush()?;
        let db = self.db();
        let mut st = db
            .prepare_cached("SELECT name, value FROM params WHERE device = ?1 AND substr(name, -11) = '.Subscriber'")?;
        let rows = st.query_map([device], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
