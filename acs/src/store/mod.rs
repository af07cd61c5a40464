//! The store: one narrow trait per aggregate (so another engine can back it later), each with
//! its SQLite implementation beside it; [`Store`] is all of them together.
//!
//! # Layout
//! - [`devices`]: devices and their parameter cache, values and what else CPEs tell of their
//!   paths ([`DeviceStore`], [`ParamStore`]).
//! - [`tasks`]: the task queue ([`TaskStore`]); [`faults`]: faults ([`FaultStore`]).
//! - [`presets`]: presets, provision and virtual-parameter scripts, objects ([`PresetStore`]);
//!   [`files`]: files for Download ([`FileStore`]).
//! - [`subscribers`]: web-form accounts, profiles, sessions ([`SubscriberStore`]).
//! - [`migrations`]: migration records ([`MigrationStore`]).
//! - [`credentials`]: the credentials CPEs authenticate with ([`CredentialStore`]).
//! - [`leases`]: one session per device across ACS nodes ([`LeaseStore`]).
//! - [`placements`]: where each subscriber's vRGW is, as the ACS placed it ([`PlacementStore`]).
//! - [`sqlite`]: the SQLite engine (the embedded default): connection, schema migrations.
//! - [`postgres`]: the PostgreSQL engine (a fleet of ACS nodes on one database): connection
//!   pool, schema migrations, the implementations of every aggregate's trait.
//! - `deferred`: the group commit both engines share (cache rows and events written a few
//!   milliseconds later, many sessions in one transaction).
//!
//! Every logical write is one transaction. Callers bring the traits into scope with
//! `use crate::store::prelude::*`; [`open`] opens the engine a [`Location`] names.

pub mod credentials;
pub(crate) mod deferred;
pub mod devices;
pub mod faults;
pub mod files;
pub mod leases;
pub mod migrations;
pub mod placements;
pub mod postgres;
pub mod presets;
pub mod sqlite;
pub mod subscribers;
pub mod tasks;

pub use credentials::{CpeCredential, CredentialStore, Scope};
pub use devices::{CachedParam, Device, DeviceStore, Need, ParamStore, PathInfo};
pub use faults::{FaultRecord, FaultStore};
pub use files::FileStore;
pub use leases::LeaseStore;
pub use migrations::MigrationStore;
pub use placements::{Placement, PlacementStore};
pub use postgres::PgStore;
pub use presets::{PresetStore, ScriptKind};
pub use sqlite::SqliteStore;
pub use subscribers::{PortalSession, Subscriber, SubscriberStore};
pub use tasks::{Task, TaskStatus, TaskStore};

/// The store traits, for `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        CredentialStore, DeviceStore, Engine, FaultStore, FileStore, LeaseStore, MigrationStore, ParamStore,
        PlacementStore, PresetStore, Store, SubscriberStore, TaskStore,
    };
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (I/O, a full disk, a locked or damaged file, a bad statement).
    #[error("store: {0}")]
    Sqlite(rusqlite::Error),
    /// A stored value does not decode (`what` names it and why).
    #[error("store: {what}")]
    Corrupt {
        /// The value and the reason.
        what: String,
    },
    /// PostgreSQL failed (a statement, a constraint, a connection lost mid-statement).
    #[error("store: PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] ::postgres::Error),
    /// The store's settings are wrong (the URL, where the password is).
    #[error("store: {0}")]
    Config(String),
    /// The database cannot be reached now (no connection within the pool's wait): callers
    /// answer 503 and the client retries.
    #[error("store: the database is unavailable: {0}")]
    Unavailable(String),
    /// The database was written by a newer ACS.
    #[error("store: {path}: schema version {found} is newer than this ACS knows ({known})")]
    TooNew {
        /// The database file.
        path: String,
        /// Its schema version.
        found: i64,
        /// The newest this ACS knows.
        known: usize,
    },
    /// The database file could not be made owner-only (path and reason).
    #[error("store: {0}")]
    Io(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match e {
            rusqlite::Error::FromSqlConversionFailure(i, ty, inner) => match inner.downcast::<Undecodable>() {
                Ok(u) => StoreError::Corrupt { what: u.0 },
                Err(inner) => StoreError::Sqlite(rusqlite::Error::FromSqlConversionFailure(i, ty, inner)),
            },
            e => StoreError::Sqlite(e),
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached (rather than refusing what was asked): the
    /// request may succeed when retried, so it is answered 503 with `Retry-After`.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Postgres(e) => pg_unavailable(e),
            _ => false,
        }
    }
}

/// Whether a PostgreSQL error means the server is out of reach (the connection broke, the
/// server is shutting down or starting, a connection-class SQLSTATE) rather than a refusal.
pub(crate) fn pg_unavailable(e: &::postgres::Error) -> bool {
    use std::error::Error as _;
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        // 08: connection exception; 57P: operator intervention (shutdown, cannot connect now).
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
        None => e.source().is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// A PostgreSQL error with what its `Display` leaves out: the server's message and SQLSTATE,
/// or the underlying cause.
pub(crate) fn pg_message(e: &::postgres::Error) -> String {
    use std::error::Error as _;
    match (e.as_db_error(), e.source()) {
        (Some(db), _) => format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code()),
        (None, Some(cause)) => format!("{e}: {cause}"),
        (None, None) => e.to_string(),
    }
}

/// Where the store is: the embedded default or a PostgreSQL database shared by ACS nodes.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite file (`:memory:` for tests).
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// `postgres://user@host:port/database` (a password in it is refused: see `password`).
        url: String,
        /// The password, read from a file of the operator's (`[store] password_file`).
        password: Option<String>,
        /// Connections this node keeps to it.
        pool: u32,
        /// This node's name in leases (`[store] node`; unset: the host's name and the CWMP
        /// port). Unique per node: a node starting drops the leases of its name.
        node: Option<String>,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            // The password never.
            Location::Postgres { url, pool, .. } => write!(f, "{url} (pool {pool})"),
        }
    }
}

/// Opens (creating and migrating as needed) the store at `at`, its group commit flushed every
/// few milliseconds from a thread of its own; on PostgreSQL this node is named `node` in
/// leases unless `at` names it.
pub fn open(at: &Location, node: &str) -> Result<std::sync::Arc<dyn Store>> {
    let store: std::sync::Arc<dyn Store> = match at {
        Location::Sqlite(path) => std::sync::Arc::new(SqliteStore::open(path)?),
        Location::Postgres { url, password, pool, node: named } => {
            std::sync::Arc::new(PgStore::open(url, password.as_deref(), *pool, named.as_deref().unwrap_or(node))?)
        }
    };
    start_flusher(&store, std::time::Duration::from_millis(3));
    Ok(store)
}

/// Flushes `store`'s deferred writes every `every` on a thread of its own, until the store is
/// dropped.
pub fn start_flusher(store: &std::sync::Arc<dyn Store>, every: std::time::Duration) {
    let weak = std::sync::Arc::downgrade(store);
    std::thread::spawn(move || loop {
        std::thread::sleep(every);
        let Some(store) = weak.upgrade() else { return };
        if let Err(e) = store.flush() {
            tracing::error!("writing the parameter cache: {e}");
        }
    });
}

/// What every engine does besides the aggregates.
pub trait Engine {
    /// Writes the deferred writes (cache rows, events) now, in one transaction. Reads of what
    /// they touch call it first.
    fn flush(&self) -> Result<()>;
    /// Counts the group commits into `m` from now on (once; later calls change nothing).
    fn set_metrics(&self, m: crate::metrics::StoreMetrics);
    /// Whether the database answers (the health check a load balancer polls).
    fn ping(&self) -> Result<()>;
    /// Calls `wake` whenever a node finishes or faults a task, so that what waits for a task
    /// run by another node's session (an NBI call with `timeout`, a migration step) wakes at
    /// once. One process's engine (SQLite) does nothing: its endpoint wakes them itself.
    fn watch_tasks(&self, wake: std::sync::Arc<dyn Fn() + Send + Sync>);
    /// Whether its calls wait on the network (a database server) rather than a local file:
    /// callers on an async runtime then run their store work on the blocking pool.
    fn remote(&self) -> bool {
        false
    }
}

/// A row as either engine returns it, its columns by index: each aggregate's rows are decoded
/// once, over this, for both engines.
pub(crate) trait Columns {
    /// A text column.
    fn text(&self, i: usize) -> Result<String>;
    /// A text column that may be NULL.
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    /// An integer column.
    fn int(&self, i: usize) -> Result<i64>;
    /// An integer column that may be NULL.
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
}

impl Columns for rusqlite::Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.get(i)?)
    }
}

impl Columns for ::postgres::Row {
    fn text(&self, i: usize) -> Result<String> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        Ok(self.try_get(i)?)
    }
}

/// A decoder's result inside rusqlite's row mapping; its failures come back out of the mapping
/// as they went in (see `From<rusqlite::Error>`).
pub(crate) fn in_row<T>(r: Result<T>) -> rusqlite::Result<T> {
    r.map_err(|e| {
        let what = match e {
            StoreError::Sqlite(e) => return e,
            StoreError::Corrupt { what } => what,
            e => e.to_string(),
        };
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(Undecodable(what)))
    })
}

/// JSON text decoded into `T`; `what` names the value in the error.
pub(crate) fn json_text<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt { what: format!("{what} does not decode ({e}): {text:.200}") })
}

/// A stored value that does not decode, carried out of rusqlite's row mapping to become
/// [`StoreError::Corrupt`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Undecodable(pub String);

/// Column `i` of a row, JSON text decoded into `T`; `what` names the value in the error.
pub(crate) fn json_col<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    i: usize,
    what: &str,
) -> rusqlite::Result<T> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::new(Undecodable(format!("{what} does not decode ({e}): {text:.200}"))),
        )
    })
}

/// For callers that carry on without the value when the store fails: the value, or `None`
/// with the failure logged at error level along with what was lost (`lost`).
pub fn logged<T>(r: Result<T>, lost: &str) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!("{lost} lost: {e}");
            None
        }
    }
}

/// A store result.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Everything the ACS needs from a store.
pub trait Store:
    Engine
    + LeaseStore
    + DeviceStore
    + CredentialStore
    + PlacementStore
    + ParamStore
    + TaskStore
    + FaultStore
    + PresetStore
    + FileStore
    + SubscriberStore
    + MigrationStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: Engine
        + LeaseStore
        + DeviceStore
        + CredentialStore
        + PlacementStore
        + ParamStore
        + TaskStore
        + FaultStore
        + PresetStore
        + FileStore
        + SubscriberStore
        + MigrationStore
        + Send
        + Sync
        + 'static
{
}

/// The engines for the store's tests: every test of an aggregate runs on each.
#[cfg(test)]
pub(crate) mod testing {
    use super::{PgStore, SqliteStore, Store};

    /// A fresh PostgreSQL store: a new database in the tests' cluster (started on first use).
    pub(crate) fn postgres() -> PgStore {
        let db = test_support::pg::cluster().database();
        let password = std::fs::read_to_string(&db.password_file).expect("password file");
        PgStore::open(&db.url, Some(password.trim()), 4, "test").expect("PostgreSQL store")
    }

    /// Runs `test` on an empty SQLite store (in memory), then on an empty PostgreSQL one.
    pub(crate) fn on_each(test: impl Fn(&dyn Store)) {
        let sqlite = SqliteStore::open(std::path::Path::new(":memory:")).expect("SQLite store");
        eprintln!("on SQLite");
        test(&sqlite);
        eprintln!("on PostgreSQL");
        test(&postgres());
    }
}
