//! Presets (GenieACS provisioning profiles) and what they name: provision and virtual-parameter
//! scripts (JavaScript source, kept as received) and the objects of `add_object`/`delete_object`
//! configurations. Presets and objects are kept as the NBI received them.

use rusqlite::params;

use super::sqlite::SqliteStore;
use super::{json_col, Result, StoreError};

/// The two kinds of script GenieACS keeps, each a collection of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// `/provisions`: scripts a preset runs.
    Provision,
    /// `/virtual_parameters`: scripts computing a `VirtualParameters.<name>` value.
    VirtualParameter,
}

impl ScriptKind {
    /// The kind's name in the store.
    pub(crate) fn key(self) -> &'static str {
        match self {
            ScriptKind::Provision => "provision",
            ScriptKind::VirtualParameter => "virtual_parameter",
        }
    }
}

/// Presets, provisions, virtual parameters and objects, by name.
pub trait PresetStore {
    /// Provisioning profiles (GenieACS presets), by name.
    fn put_preset(&self, name: &str, preset: &serde_json::Value) -> Result<()>;
    /// Deletes a preset; whether it existed.
    fn delete_preset(&self, name: &str) -> Result<bool>;
    /// Every preset, by name.
    fn presets(&self) -> Result<Vec<(String, serde_json::Value)>>;
    /// Stores (or replaces) a script.
    fn put_script(&self, kind: ScriptKind, name: &str, script: &str) -> Result<()>;
    /// Deletes a script; whether it existed.
    fn delete_script(&self, kind: ScriptKind, name: &str) -> Result<bool>;
    /// Every script of a kind, by name.
    fn scripts(&self, kind: ScriptKind) -> Result<Vec<(String, String)>>;
    /// Stores (or replaces) an object (a JSON object, without its `_id`).
    fn put_object(&self, name: &str, object: &serde_json::Value) -> Result<()>;
    /// Deletes an object; whether it existed.
    fn delete_object(&self, name: &str) -> Result<bool>;
    /// Every object, by name.
    fn objects(&self) -> Result<Vec<(String, serde_json::Value)>>;
}

/// Rows of `(name, JSON text)`, those that decode; one that does not is logged and left out, so
/// it cannot stop the others (every Inform may read them).
fn json_rows(db: &rusqlite::Connection, sql: &str, what: &str) -> Result<Vec<(String, serde_json::Value)>> {
    let mut st = db.prepare_cached(sql)?;
    let rows = st.query_map([], |r| {
        let name: String = r.get(0)?;
        Ok((json_col(r, 1, &format!("{what} {name}")), name))
    })?;
    let mut out = Vec::new();
    for row in rows {
        match row? {
            (Ok(p), name) => out.push((name, p)),
            (Err(e), name) => tracing::error!(name = %name, "{what} left out: {}", StoreError::from(e)),
        }
    }
    Ok(out)
}

impl PresetStore for SqliteStore {
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
        json_rows(&self.db(), "SELECT name, configuration FROM profiles ORDER BY name", "preset")
    }

    fn put_script(&self, kind: ScriptKind, name: &str, script: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO scripts (kind, name, script) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, name) DO UPDATE SET script = ?3",
            params![kind.key(), name, script],
        )?;
        Ok(())
    }

    fn delete_script(&self, kind: ScriptKind, name: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM scripts WHERE kind = ?1 AND name = ?2", params![kind.key(), name])? > 0)
    }

    fn scripts(&self, kind: ScriptKind) -> Result<Vec<(String, String)>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT name, script FROM scripts WHERE kind = ?1 ORDER BY name")?;
        let rows = st.query_map([kind.key()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn put_object(&self, name: &str, object: &serde_json::Value) -> Result<()> {
        self.db().execute(
            "INSERT INTO objects (name, object) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET object = ?2",
            params![name, object.to_string()],
        )?;
        Ok(())
    }

    fn delete_object(&self, name: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM objects WHERE name = ?1", [name])? > 0)
    }

    fn objects(&self) -> Result<Vec<(String, serde_json::Value)>> {
        json_rows(&self.db(), "SELECT name, object FROM objects ORDER BY name", "object")
    }
}

#[cfg(test)]
mod tests {
    use super::ScriptKind;
    use serde_json::json;

    #[test]
    fn scripts_are_kept_by_kind_and_replaced_by_name() {
        crate::store::testing::on_each(|s| {
            s.put_script(ScriptKind::Provision, "p", "log('a');").expect("put");
            s.put_script(ScriptKind::Provision, "p", "log('b');").expect("replace");
            s.put_script(ScriptKind::VirtualParameter, "p", "return {writable: false, value: [1, 'xsd:int']};")
                .expect("put vp");
            assert_eq!(s.scripts(ScriptKind::Provision).expect("list"), vec![("p".into(), "log('b');".into())]);
            assert_eq!(s.scripts(ScriptKind::VirtualParameter).expect("list").len(), 1);
            assert!(s.delete_script(ScriptKind::Provision, "p").expect("delete"));
            assert!(!s.delete_script(ScriptKind::Provision, "p").expect("delete again"));
            assert_eq!(s.scripts(ScriptKind::VirtualParameter).expect("list").len(), 1);
        });
    }

    #[test]
    fn objects_round_trip() {
        crate::store::testing::on_each(|s| {
            s.put_object("wifi", &json!({"SSID": "lab", "_keys": ["SSID"]})).expect("put");
            assert_eq!(s.objects().expect("list"), vec![("wifi".into(), json!({"SSID": "lab", "_keys": ["SSID"]}))]);
            assert!(s.delete_object("wifi").expect("delete"));
            assert!(s.objects().expect("list").is_empty());
        });
    }
}
