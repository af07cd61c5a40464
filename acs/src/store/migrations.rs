//! Migrations of vRGWs between hosts: each a JSON record its orchestration keeps current.

use rusqlite::params;

use super::sqlite::SqliteStore;
use super::{json_col, Result};

/// Migration records.
pub trait MigrationStore {
    /// Records a migration (a new one when `id` is `None`); returns its id.
    fn put_migration(&self, id: Option<i64>, record: &serde_json::Value) -> Result<i64>;
    /// Every migration, oldest first.
    fn migrations(&self) -> Result<Vec<(i64, serde_json::Value)>>;
}

impl MigrationStore for SqliteStore {
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
        let rows = st.query_map([], |r| {
            let id: i64 = r.get(0)?;
            Ok((id, json_col(r, 1, &format!("migration {id}"))?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
