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
//! - [`placements`]: where each subscriber's vRGW is, as the ACS placed it ([`PlacementStore`]).
//! - [`sqlite`]: the SQLite engine: connection, schema migrations, deferred writes.
//!
//! Every logical write is one transaction. Callers bring the traits into scope with
//! `use crate::store::prelude::*`.

pub mod credentials;
pub mod devices;
pub mod faults;
pub mod files;
pub mod migrations;
pub mod placements;
pub mod presets;
pub mod sqlite;
pub mod subscribers;
pub mod tasks;

pub use credentials::{CpeCredential, CredentialStore, Scope};
pub use devices::{CachedParam, Device, DeviceStore, ParamStore, PathInfo};
pub use faults::{FaultRecord, FaultStore};
pub use files::FileStore;
pub use migrations::MigrationStore;
pub use placements::{Placement, PlacementStore};
pub use presets::{PresetStore, ScriptKind};
pub use sqlite::SqliteStore;
pub use subscribers::{PortalSession, Subscriber, SubscriberStore};
pub use tasks::{Task, TaskStatus, TaskStore};

/// The store traits, for `use crate::store::prelude::*`.
pub mod prelude {
    pub use super::{
        CredentialStore, DeviceStore, FaultStore, FileStore, MigrationStore, ParamStore, PlacementStore, PresetStore,
        Store, SubscriberStore, TaskStore,
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
    DeviceStore
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
    T: DeviceStore
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
