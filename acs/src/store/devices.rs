//! Devices and their parameter cache: what an Inform records, tags, and the cached values
//! tasks read (the SQLite engine defers cache and event writes; see `sqlite::SqliteStore::flush`).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::deferred::Pending;
use super::sqlite::SqliteStore;
use super::{Columns, Engine, Result};

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

/// What GenieACS records of a device beyond its latest Inform, in Unix seconds: when it
/// registered (`_registered`), its last `1 BOOT` (`_lastBoot`) and `0 BOOTSTRAP`
/// (`_lastBootstrap`) Informs. `None`: not known (never booted, or a device seen only through
/// its Inform record).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Lifecycle {
    /// Its first Inform.
    pub registered: Option<i64>,
    /// Its last Inform with `1 BOOT`.
    pub last_boot: Option<i64>,
    /// Its last Inform with `0 BOOTSTRAP`.
    pub last_bootstrap: Option<i64>,
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

/// What a CPE told of a path besides its value, as GenieACS keeps it: from GetParameterNames,
/// whether it can be set (`_writable`) and, for an object, when its children were last listed
/// (an object's `_timestamp`); from GetParameterAttributes, `_notification`, `_accessList` and
/// when they were read (`_attributesTimestamp`). `None`: not known. An object's name ends in `.`
/// (as GetParameterNames gives it), so forgetting a subtree by prefix forgets the object too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PathInfo {
    /// Full path; an object's ends in `.`.
    pub name: String,
    /// Whether it can be set (an object: whether AddObject / DeleteObject apply to it).
    pub writable: Option<bool>,
    /// An object: Unix seconds when its children were last listed.
    pub listed: Option<i64>,
    /// The Notification attribute (0 to 6).
    pub notification: Option<u32>,
    /// The AccessList attribute.
    pub access_list: Option<Vec<String>>,
    /// Unix seconds when the attributes were read.
    pub attributes_read: Option<i64>,
}

impl PathInfo {
    /// Whether it names an object.
    pub fn is_object(&self) -> bool {
        self.name.ends_with('.')
    }
}

/// A device from the columns [`DEVICE_COLS`] names, in that order.
pub(crate) fn device_of(r: &impl Columns) -> Result<Device> {
    let id = r.text(0)?;
    Ok(Device {
        tags: super::json_text(&r.text(9)?, &format!("the tags of device {id}"))?,
        id,
        manufacturer: r.text(1)?,
        oui: r.text(2)?,
        product_class: r.text(3)?,
        serial_number: r.text(4)?,
        cr_url: r.text(5)?,
        cr_username: r.text(6)?,
        cr_password: r.text(7)?,
        last_inform: r.int(8)?,
    })
}

/// A device's [`Lifecycle`] from three columns from `from` on: created, last boot, last bootstrap.
pub(crate) fn lifecycle_of(r: &impl Columns, from: usize) -> Result<Lifecycle> {
    Ok(Lifecycle {
        registered: r.opt_int(from)?,
        last_boot: r.opt_int(from + 1)?,
        last_bootstrap: r.opt_int(from + 2)?,
    })
}

fn device_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    super::in_row(device_of(r))
}

pub(crate) const DEVICE_COLS: &str =
    "id, manufacturer, oui, product_class, serial_number, cr_url, cr_username, cr_password, last_inform, tags";

/// What every device a query asks for has (`Query::necessary`), for the store to look up by
/// index rather than reading every device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// The tag.
    Tag(String),
    /// A cached value of the parameter `name` whose text is `value`.
    Value {
        /// The parameter.
        name: String,
        /// Its value's text.
        value: String,
    },
}

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
    /// Every device with its [`Lifecycle`], by id.
    fn device_records(&self) -> Result<Vec<(Device, Lifecycle)>>;
    /// The devices that have everything `need` names, with their [`Lifecycle`], by id (all of
    /// them when `need` is empty).
    fn device_records_with(&self, need: &[Need]) -> Result<Vec<(Device, Lifecycle)>>;
    /// One device's registration and last BOOT / BOOTSTRAP times (a point read: these columns
    /// are written at once, never deferred).
    fn lifecycle(&self, id: &str) -> Result<Option<Lifecycle>>;
    /// Forgets a device: its record, parameter cache, events, tasks and faults (it registers
    /// again at its next Inform). Whether it was known.
    fn delete_device(&self, id: &str) -> Result<bool>;
    /// Replaces a device's tags.
    fn set_tags(&self, id: &str, tags: &[String]) -> Result<()>;
    /// Records an event: an Inform's (its code and CommandKey), or a method the CPE called
    /// (`RequestDownload`, `AutonomousTransferComplete`, ...: its name and CommandKey, if any).
    fn add_event(&self, device: &str, code: &str, command_key: &str, at: i64) -> Result<()>;
    /// A device's events, oldest first: (code, CommandKey, Unix seconds).
    fn events(&self, device: &str) -> Result<Vec<(String, String, i64)>>;
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
    /// Forgets these cached parameters, by exact name (one transaction).
    fn forget_param_names(&self, device: &str, names: &[String]) -> Result<()>;
    /// A device's cached parameters.
    fn params(&self, device: &str) -> Result<Vec<CachedParam>>;
    /// Every cached parameter whose name ends in `.Subscriber` and whose value is `value`:
    /// (device, name) pairs (a scan of the cache: no index slows every cache write for it).
    fn subscriber_params(&self, value: &str) -> Result<Vec<(String, String)>>;
    /// The `(name, value)` of every cached parameter of `device` whose name ends in `.Subscriber`.
    fn subscriber_rows(&self, device: &str) -> Result<Vec<(String, String)>>;
    /// Stores what a CPE told of paths besides their values (one transaction, deferred as values
    /// are). A field given as `None` keeps what is stored: a GetParameterNames answer leaves the
    /// attributes as they were, a GetParameterAttributes answer the writability. In SQL, an
    /// upsert whose every column is `coalesce(new, stored)`.
    fn cache_path_info(&self, device: &str, info: &[PathInfo]) -> Result<()>;
    /// A device's [`PathInfo`], by name.
    fn path_info(&self, device: &str) -> Result<Vec<PathInfo>>;
    /// Every name the cache holds for `device`, values and [`PathInfo`] alike (objects with their
    /// trailing dot), each once, by name: what a listing of the device's tree prunes.
    fn cached_names(&self, device: &str) -> Result<Vec<String>>;
}

/// The tables besides `devices` that hold a device's rows, deleted with it.
pub(crate) const DEVICE_TABLES: [&str; 5] = ["params", "path_info", "events", "tasks", "faults"];

/// What an Inform leaves for the group commit: a known device's new details (a new one is
/// written at once), its Inform parameters, its events.
pub(crate) fn deferred_inform(
    d: &Device,
    exists: bool,
    ps: &[CachedParam],
    events: &[(String, String)],
) -> Vec<Pending> {
    let mut out = Vec::with_capacity(2 + events.len());
    if exists {
        out.push(Pending::Device(d.clone()));
    }
    if !ps.is_empty() {
        out.push(Pending::Params(d.id.clone(), ps.to_vec()));
    }
    out.extend(events.iter().map(|(code, key)| Pending::Event(d.id.clone(), code.clone(), key.clone(), d.last_inform)));
    out
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
        // GenieACS's `_lastBoot` and `_lastBootstrap`: rare, so written at once.
        let at = |code: &str| events.iter().any(|(c, _)| c == code).then_some(d.last_inform);
        let (boot, bootstrap) = (at(cwmp::event::BOOT), at(cwmp::event::BOOTSTRAP));
        if exists && (boot.is_some() || bootstrap.is_some()) {
            db.prepare_cached(
                "UPDATE devices SET last_boot = coalesce(?2, last_boot), last_bootstrap = coalesce(?3, last_bootstrap)
                 WHERE id = ?1",
            )?
            .execute(params![d.id, boot, bootstrap])?;
        }
        if !exists {
            db.execute(
                "INSERT INTO devices (id, manufacturer, oui, product_class, serial_number, cr_url, cr_username,
                 cr_password, last_inform, tags, created, last_boot, last_bootstrap)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?9, ?11, ?12)",
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
                    serde_json::to_string(&d.tags).unwrap_or_else(|_| "[]".into()),
                    boot,
                    bootstrap
                ],
            )?;
        }
        drop(db);
        self.deferred.extend(deferred_inform(d, exists, ps, events));
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

    fn device_records(&self) -> Result<Vec<(Device, Lifecycle)>> {
        self.flush()?;
        let db = self.db();
        let mut st =
            db.prepare(&format!("SELECT {DEVICE_COLS}, created, last_boot, last_bootstrap FROM devices ORDER BY id"))?;
        let rows = st
            .query_map([], |r| Ok((device_row(r)?, super::in_row(lifecycle_of(r, 10))?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn device_records_with(&self, need: &[Need]) -> Result<Vec<(Device, Lifecycle)>> {
        if need.is_empty() {
            return self.device_records();
        }
        self.flush()?;
        let mut sql = format!("SELECT {DEVICE_COLS}, created, last_boot, last_bootstrap FROM devices WHERE 1");
        let mut args: Vec<&str> = Vec::new();
        for n in need {
            match n {
                Need::Tag(t) => {
                    sql.push_str(" AND EXISTS (SELECT 1 FROM json_each(devices.tags) WHERE value = ?)");
                    args.push(t);
                }
                Need::Value { name, value } => {
                    sql.push_str(" AND EXISTS (SELECT 1 FROM params p WHERE p.device = devices.id AND p.name = ? AND p.value = ?)");
                    args.extend([name.as_str(), value.as_str()]);
                }
            }
        }
        sql.push_str(" ORDER BY id");
        let db = self.db();
        let mut st = db.prepare_cached(&sql)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| Ok((device_row(r)?, super::in_row(lifecycle_of(r, 10))?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn lifecycle(&self, id: &str) -> Result<Option<Lifecycle>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT created, last_boot, last_bootstrap FROM devices WHERE id = ?1")?;
        Ok(st.query_row([id], |r| super::in_row(lifecycle_of(r, 0))).optional()?)
    }

    fn delete_device(&self, id: &str) -> Result<bool> {
        // The database lock first: no group commit is half done while it is held. What is queued
        // for the device is dropped, the rest stays queued.
        let db = self.db();
        self.deferred.without(id, || {
            let tx = db.unchecked_transaction()?;
            let known = tx.execute("DELETE FROM devices WHERE id = ?1", [id])? > 0;
            for table in DEVICE_TABLES {
                tx.execute(&format!("DELETE FROM {table} WHERE device = ?1"), [id])?;
            }
            tx.commit()?;
            Ok(known)
        })
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

    fn events(&self, device: &str) -> Result<Vec<(String, String, i64)>> {
        self.flush()?;
        let db = self.db();
        let mut st =
            db.prepare_cached("SELECT code, command_key, timestamp FROM events WHERE device = ?1 ORDER BY id")?;
        let rows = st.query_map([device], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

impl ParamStore for SqliteStore {
    fn cache_params(&self, device: &str, ps: &[CachedParam]) -> Result<()> {
        self.deferred.push(Pending::Params(device.to_string(), ps.to_vec()));
        Ok(())
    }

    fn forget_params(&self, device: &str, prefix: &str) -> Result<()> {
        self.flush()?;
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        for table in ["params", "path_info"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE device = ?1 AND substr(name, 1, length(?2)) = ?2"),
                params![device, prefix],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn forget_param_names(&self, device: &str, names: &[String]) -> Result<()> {
        self.flush()?;
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        {
            let mut values = tx.prepare_cached("DELETE FROM params WHERE device = ?1 AND name = ?2")?;
            let mut info = tx.prepare_cached("DELETE FROM path_info WHERE device = ?1 AND name = ?2")?;
            for n in names {
                values.execute(params![device, n])?;
                info.execute(params![device, n])?;
            }
        }
        tx.commit()?;
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

    fn cache_path_info(&self, device: &str, info: &[PathInfo]) -> Result<()> {
        if !info.is_empty() {
            self.deferred.push(Pending::PathInfo(device.to_string(), info.to_vec()));
        }
        Ok(())
    }

    fn path_info(&self, device: &str) -> Result<Vec<PathInfo>> {
        self.flush()?;
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT name, writable, listed, notification, access_list, attributes_read FROM path_info
             WHERE device = ?1 ORDER BY name",
        )?;
        let rows = st
            .query_map([device], |r| {
                let name: String = r.get(0)?;
                let access_list = match r.get_ref(4)? {
                    rusqlite::types::ValueRef::Null => None,
                    _ => Some(super::json_col(r, 4, &format!("the access list of {name} of device {device}"))?),
                };
                Ok(PathInfo {
                    writable: r.get(1)?,
                    listed: r.get(2)?,
                    notification: r.get(3)?,
                    access_list,
                    attributes_read: r.get(5)?,
                    name,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn cached_names(&self, device: &str) -> Result<Vec<String>> {
        self.flush()?;
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT name FROM params WHERE device = ?1 UNION SELECT name FROM path_info WHERE device = ?1 ORDER BY 1",
        )?;
        let rows = st.query_map([device], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{CachedParam, Device};

    fn dev(id: &str, at: i64) -> Device {
        Device { id: id.into(), oui: "00A0B1".into(), last_inform: at, ..Device::default() }
    }

    fn events(codes: &[&str]) -> Vec<(String, String)> {
        codes.iter().map(|c| (c.to_string(), String::new())).collect()
    }

    #[test]
    fn devices_are_narrowed_by_tag_and_cached_value() {
        use crate::store::Need;
        crate::store::testing::on_each(|s| {
            let p = |v: &str| CachedParam { name: "Device.X".into(), ty: "string".into(), value: v.into(), updated: 1 };
            for (id, tag, v) in [("a", true, "abc"), ("b", false, "abc"), ("c", true, "xyz"), ("d", false, "")] {
                s.record_inform(&dev(id, 1)).expect("device");
                if tag {
                    s.set_tags(id, &["gold".into(), "x".into()]).expect("tags");
                }
                if !v.is_empty() {
                    s.cache_params(id, &[p(v)]).expect("cache");
                }
            }
            let ids = |need: &[Need]| -> Vec<String> {
                s.device_records_with(need).expect("read").into_iter().map(|(d, _)| d.id).collect()
            };
            let tag = Need::Tag("gold".into());
            let value = Need::Value { name: "Device.X".into(), value: "abc".into() };
            assert_eq!(ids(&[]), ["a", "b", "c", "d"]);
            assert_eq!(ids(std::slice::from_ref(&tag)), ["a", "c"]);
            assert_eq!(ids(std::slice::from_ref(&value)), ["a", "b"], "the queued cache write is read");
            assert_eq!(ids(&[tag, value]), ["a"]);
            assert_eq!(ids(&[Need::Tag("gol".into())]), Vec::<String>::new(), "a whole tag, not a part");
        });
    }

    #[test]
    fn registration_boot_and_bootstrap_times_are_kept() {
        crate::store::testing::on_each(|s| {
            assert!(s.record_session_start(&dev("a", 100), &[], &events(&["0 BOOTSTRAP", "1 BOOT"])).expect("new"));
            assert!(!s.record_session_start(&dev("a", 200), &[], &events(&["2 PERIODIC"])).expect("known"));
            assert!(!s.record_session_start(&dev("a", 300), &[], &events(&["1 BOOT", "M Reboot"])).expect("known"));
            s.record_inform(&dev("b", 400)).expect("new");
            let got = s.device_records().expect("records");
            let life: Vec<_> = got.iter().map(|(d, l)| (d.id.as_str(), d.last_inform, *l)).collect();
            assert_eq!(
                life,
                [
                    (
                        "a",
                        300,
                        super::Lifecycle { registered: Some(100), last_boot: Some(300), last_bootstrap: Some(100) }
                    ),
                    ("b", 400, super::Lifecycle { registered: Some(400), last_boot: None, last_bootstrap: None }),
                ]
            );
        });
    }

    #[test]
    fn events_are_kept_in_order_and_cached_names_forgotten_exactly() {
        crate::store::testing::on_each(|s| {
            s.record_session_start(&dev("a", 100), &[], &events(&["1 BOOT"])).expect("a");
            s.add_event("a", "RequestDownload", "", 150).expect("event");
            s.add_event("a", "DUStateChangeComplete", "task-3-1", 160).expect("event");
            let got = s.events("a").expect("events");
            assert_eq!(
                got,
                [
                    ("1 BOOT".to_string(), String::new(), 100),
                    ("RequestDownload".to_string(), String::new(), 150),
                    ("DUStateChangeComplete".to_string(), "task-3-1".to_string(), 160),
                ]
            );
            assert!(s.events("b").expect("none").is_empty());
            let p = |n: &str| CachedParam { name: n.into(), ty: "string".into(), value: "v".into(), updated: 1 };
            s.cache_params("a", &[p("Device.X.1.Name"), p("Device.X.1.NameX"), p("Device.Y")]).expect("cache");
            s.forget_param_names("a", &["Device.X.1.Name".into(), "Device.Z".into()]).expect("forget");
            let left: Vec<String> = s.params("a").expect("params").into_iter().map(|c| c.name).collect();
            assert_eq!(left, ["Device.X.1.NameX", "Device.Y"], "by exact name, not by prefix");
        });
    }

    #[test]
    fn path_info_merges_what_each_rpc_tells_and_is_forgotten_with_the_values() {
        use crate::store::PathInfo;
        crate::store::testing::on_each(|s| {
            s.record_inform(&dev("a", 100)).expect("a");
            let listed = |name: &str, writable: bool, at: Option<i64>| PathInfo {
                name: name.into(),
                writable: Some(writable),
                listed: at,
                ..PathInfo::default()
            };
            let attrs = |name: &str, notification: u32, at: i64| PathInfo {
                name: name.into(),
                notification: Some(notification),
                access_list: Some(vec!["Subscriber".into()]),
                attributes_read: Some(at),
                ..PathInfo::default()
            };
            // GetParameterNames, then GetParameterAttributes: each keeps what the other told.
            s.cache_path_info(
                "a",
                &[
                    listed("Device.X.", true, Some(10)),
                    listed("Device.X.1.", true, None),
                    listed("Device.X.1.Name", true, None),
                    listed("Device.Y", false, None),
                ],
            )
            .expect("names");
            s.cache_path_info("a", &[attrs("Device.X.1.Name", 2, 20)]).expect("attributes");
            s.cache_path_info("a", &[listed("Device.X.1.Name", false, None), listed("Device.X.", true, None)])
                .expect("listed again");
            let got = s.path_info("a").expect("read");
            let name = got.iter().find(|i| i.name == "Device.X.1.Name").expect("Name");
            assert_eq!(
                name,
                &PathInfo {
                    name: "Device.X.1.Name".into(),
                    writable: Some(false),
                    listed: None,
                    notification: Some(2),
                    access_list: Some(vec!["Subscriber".into()]),
                    attributes_read: Some(20),
                }
            );
            let x = got.iter().find(|i| i.name == "Device.X.").expect("X");
            assert_eq!((x.writable, x.listed), (Some(true), Some(10)), "a later listing by its parent keeps the time");
            // Names of values and of info alike, once each.
            let p = CachedParam { name: "Device.X.1.Name".into(), ty: "string".into(), value: "v".into(), updated: 1 };
            s.cache_params("a", std::slice::from_ref(&p)).expect("value");
            assert_eq!(
                s.cached_names("a").expect("names"),
                ["Device.X.", "Device.X.1.", "Device.X.1.Name", "Device.Y"]
            );
            // Forgotten by exact name, by prefix (the object itself too), with the device.
            s.forget_param_names("a", &["Device.Y".into()]).expect("forget");
            assert_eq!(s.cached_names("a").expect("names"), ["Device.X.", "Device.X.1.", "Device.X.1.Name"]);
            s.forget_params("a", "Device.X.1.").expect("forget subtree");
            assert_eq!(s.cached_names("a").expect("names"), ["Device.X."]);
            s.cache_path_info("a", &[attrs("Device.Z", 1, 30)]).expect("queued");
            assert!(s.delete_device("a").expect("delete"));
            assert!(s.path_info("a").expect("read").is_empty(), "nothing left, queued writes included");
        });
    }

    #[test]
    fn a_deleted_device_leaves_nothing_behind_and_registers_again() {
        crate::store::testing::on_each(|s| {
            let p = CachedParam { name: "Device.X".into(), ty: "string".into(), value: "v".into(), updated: 1 };
            s.record_session_start(&dev("a", 100), std::slice::from_ref(&p), &events(&["1 BOOT"])).expect("a");
            s.record_session_start(&dev("b", 100), std::slice::from_ref(&p), &[]).expect("b");
            let t = s.enqueue("a", &crate::tasks::TaskSpec::Reboot.into(), 7).expect("task");
            s.fault("a", Some(t.id), "cwmp.9002", "Internal error", "", 8).expect("fault");
            // Queued, not yet written: dropped with the device.
            s.cache_params("a", std::slice::from_ref(&p)).expect("queued");
            assert!(s.delete_device("a").expect("delete"));
            assert!(!s.delete_device("a").expect("again"), "no longer known");
            assert_eq!(s.device("a").expect("read"), None);
            assert!(s.params("a").expect("params").is_empty());
            assert!(s.open_tasks("a").expect("tasks").is_empty());
            assert!(s.faults().expect("faults").iter().all(|f| f.device != "a"));
            assert_eq!(s.params("b").expect("b kept").len(), 1);
            assert!(s.record_inform(&dev("a", 500)).expect("registers again"), "new again");
            let (_, life) = s.device_records().expect("records").into_iter().find(|(d, _)| d.id == "a").expect("a");
            assert_eq!((life.registered, life.last_boot), (Some(500), None));
        });
    }
}
