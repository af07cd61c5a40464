//! Presets (GenieACS provisioning profiles), kept as the NBI received them.

use rusqlite::params;

use super::sqlite::SqliteStore;
use super::{json_col, Result, StoreError};

/// Presets, by name.
pub trait PresetStore {
    /// Provisioning profiles (GenieACS presets), by name.
    fn put_preset(&self, name: &str, preset: &serde_json::Value) -> Result<()>;
    /// Deletes a preset; whether it existed.
    fn delete_preset(&self, name: &str) -> Result<bool>;
    /// Every preset, by name.
    fn presets(&self) -> Result<Vec<(String, serde_json::Value)>>;
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
        let db = self.db();
        let mut st = db.prepare_cached("SELECT name, configuration FROM profiles ORDER BY name")?;
        let rows = st.query_map([], |r| {
            let name: String = r.get(0)?;
            Ok((json_col(r, 1, &format!("preset {name}")), name))
        })?;
        let mut out = Vec::new();
        for row in rows {
            match row? {
                (Ok(p), name) => out.push((name, p)),
                // One preset that does not decode must not stop the others (every Inform reads them).
                (Err(e), name) => tracing::error!(preset = %name, "preset left out: {}", StoreError::from(e)),
            }
        }
        Ok(out)
    }
}
