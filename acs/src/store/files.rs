//! Files devices download (firmware images, configuration files) and their metadata.

use rusqlite::{params, OptionalExtension};

use super::sqlite::SqliteStore;
use super::{json_col, Result};

/// Files, by name.
pub trait FileStore {
    /// Files devices download.
    fn put_file(&self, name: &str, content: &[u8], metadata: &serde_json::Value) -> Result<()>;
    /// A file's content and metadata.
    fn file(&self, name: &str) -> Result<Option<(Vec<u8>, serde_json::Value)>>;
    /// Every file: name, size, metadata.
    fn files(&self) -> Result<Vec<(String, usize, serde_json::Value)>>;
    /// Deletes a file; whether it existed.
    fn delete_file(&self, name: &str) -> Result<bool>;
}

impl FileStore for SqliteStore {
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
                Ok((r.get::<_, Vec<u8>>(0)?, json_col(r, 1, &format!("the metadata of file {name}"))?))
            })
            .optional()?)
    }

    fn files(&self) -> Result<Vec<(String, usize, serde_json::Value)>> {
        let db = self.db();
        let mut st = db.prepare("SELECT name, length(content), metadata FROM files ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                let name: String = r.get(0)?;
                let meta = json_col(r, 2, &format!("the metadata of file {name}"))?;
                Ok((name, r.get::<_, i64>(1)? as usize, meta))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn delete_file(&self, name: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM files WHERE name = ?1", [name])? > 0)
    }
}
