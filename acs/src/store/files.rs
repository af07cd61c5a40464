//! Files devices download (firmware images, configuration files), their metadata and when they
//! were uploaded.

use rusqlite::{params, OptionalExtension};

use super::sqlite::SqliteStore;
use super::{json_col, Result};

/// A stored file without its content.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// Its name (GenieACS's `_id` and `filename`).
    pub name: String,
    /// Its size in bytes.
    pub length: usize,
    /// GenieACS's metadata: `fileType`, `oui`, `productClass`, `version` (those given).
    pub metadata: serde_json::Value,
    /// Unix seconds when it was uploaded.
    pub uploaded: i64,
}

/// Files, by name.
pub trait FileStore {
    /// Stores (or replaces) a file, uploaded at `at` (Unix seconds).
    fn put_file(&self, name: &str, content: &[u8], metadata: &serde_json::Value, at: i64) -> Result<()>;
    /// A file's content and metadata.
    fn file(&self, name: &str) -> Result<Option<(Vec<u8>, serde_json::Value)>>;
    /// Every file, by name.
    fn files(&self) -> Result<Vec<FileInfo>>;
    /// Deletes a file; whether it existed.
    fn delete_file(&self, name: &str) -> Result<bool>;
}

impl FileStore for SqliteStore {
    fn put_file(&self, name: &str, content: &[u8], metadata: &serde_json::Value, at: i64) -> Result<()> {
        self.db().execute(
            "INSERT INTO files (name, content, metadata, uploaded) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET content = ?2, metadata = ?3, uploaded = ?4",
            params![name, content, metadata.to_string(), at],
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

    fn files(&self) -> Result<Vec<FileInfo>> {
        let db = self.db();
        let mut st = db.prepare("SELECT name, length(content), metadata, uploaded FROM files ORDER BY name")?;
        let rows = st
            .query_map([], |r| {
                let name: String = r.get(0)?;
                let metadata = json_col(r, 2, &format!("the metadata of file {name}"))?;
                Ok(FileInfo { length: r.get::<_, i64>(1)? as usize, metadata, uploaded: r.get(3)?, name })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn delete_file(&self, name: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM files WHERE name = ?1", [name])? > 0)
    }
}
