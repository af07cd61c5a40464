//! What one ACS node does at a time across every node on the store, held as a lease that
//! expires on its own when the node holding it dies: a device's CWMP session (key
//! [`device_key`]; task claims, `TaskStore::mark_sent`, check it, so a task is sent by the
//! lease's holder only) and a migration's orchestration ([`migration_key`]).
//!
//! SQLite is one process's (the file is opened exclusively): its leases are always granted; the
//! endpoint's table of open sessions and the migrations' table of those running keep the one
//! process to one of each.

use super::sqlite::SqliteStore;
use super::Result;

/// The lease of a device's session.
pub fn device_key(device: &str) -> String {
    format!("device:{device}")
}

/// The lease of a migration's orchestration.
pub fn migration_key(id: i64) -> String {
    format!("migration:{id}")
}

/// Leases.
pub trait LeaseStore {
    /// Takes (or renews) lease `key` for this node for `ttl_secs` from the database's clock;
    /// `false` when another node holds it and it has not expired.
    fn lease(&self, key: &str, ttl_secs: i64) -> Result<bool>;
    /// Gives lease `key` back, if this node holds it.
    fn release(&self, key: &str) -> Result<()>;
    /// Whether some node holds lease `key` now (SQLite: never; the process knows its own).
    fn held(&self, key: &str) -> Result<bool>;
}

impl LeaseStore for SqliteStore {
    fn lease(&self, _key: &str, _ttl_secs: i64) -> Result<bool> {
        Ok(true)
    }

    fn release(&self, _key: &str) -> Result<()> {
        Ok(())
    }

    fn held(&self, _key: &str) -> Result<bool> {
        Ok(false)
    }
}
