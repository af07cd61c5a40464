//! The credentials CPEs authenticate with, each bound to what it may speak for.

use rusqlite::{params, OptionalExtension};

use super::sqlite::SqliteStore;
use super::Result;
use crate::auth::Ha1;

/// Which devices a credential may inform as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// Exactly this DeviceId (`OUI-ProductClass-SerialNumber`, as the NBI names devices).
    Device(String),
    /// Every DeviceId that starts with this text, e.g. `00D09E-HV-` for a fleet provisioned with
    /// one secret. Never empty (an empty prefix would be any device; refused where it is made).
    DevicePrefix(String),
}

impl Scope {
    /// Whether a CPE logged in with this credential may speak for `device`.
    pub fn allows(&self, device: &str) -> bool {
        match self {
            Scope::Device(d) => d == device,
            Scope::DevicePrefix(p) => !p.is_empty() && device.starts_with(p.as_str()),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Device(d) => write!(f, "device {d}"),
            Scope::DevicePrefix(p) => write!(f, "devices {p}*"),
        }
    }
}

/// A CPE's credential: its user name, the Digest secrets of its password (never the password),
/// and the devices it may speak for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpeCredential {
    /// The user name the CPE authenticates with.
    pub username: String,
    /// `H(user:realm:password)` per algorithm.
    pub ha1: Ha1,
    /// What it may inform as.
    pub scope: Scope,
    /// With [`Scope::Device`], a host's credential: the DeviceId prefix of the virtual devices
    /// (TR-069 Annex J.2) the host proxies. It may speak for a device under that prefix whose
    /// SerialNumber is a subscriber the ACS placed on the host (or whose running migration
    /// goes to it), and for no other: see `endpoint::Acs::may_speak_for`.
    pub proxies: Option<String>,
}

/// CPE credentials managed through the NBI.
pub trait CredentialStore {
    /// A credential by user name.
    fn cpe_credential(&self, username: &str) -> Result<Option<CpeCredential>>;
    /// Creates or replaces a credential; true when it is new.
    fn put_cpe_credential(&self, c: &CpeCredential, now: i64) -> Result<bool>;
    /// Removes a credential; false when there was none.
    fn delete_cpe_credential(&self, username: &str) -> Result<bool>;
    /// Every credential, by user name.
    fn cpe_credentials(&self) -> Result<Vec<CpeCredential>>;
    /// The ACS's own 32-byte key `name`, made (random) on first use and kept.
    fn server_key(&self, name: &str) -> Result<Vec<u8>>;
}

/// A credential from the columns [`COLUMNS`] names, in that order.
pub(crate) fn credential_of(r: &impl super::Columns) -> Result<CpeCredential> {
    Ok(CpeCredential {
        username: r.text(0)?,
        ha1: Ha1 { md5: r.text(1)?, sha256: r.text(2)? },
        scope: match (r.opt_text(3)?, r.opt_text(4)?) {
            (Some(d), _) => Scope::Device(d),
            (None, Some(p)) => Scope::DevicePrefix(p),
            // The table's CHECK makes this unreachable; an empty prefix allows nothing.
            (None, None) => Scope::DevicePrefix(String::new()),
        },
        proxies: r.opt_text(5)?,
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CpeCredential> {
    super::in_row(credential_of(r))
}

pub(crate) const COLUMNS: &str = "username, ha1_md5, ha1_sha256, device, device_prefix, proxies";

impl CredentialStore for SqliteStore {
    fn cpe_credential(&self, username: &str) -> Result<Option<CpeCredential>> {
        let db = self.db();
        let mut st = db.prepare_cached(&format!("SELECT {COLUMNS} FROM cpe_credentials WHERE username = ?1"))?;
        Ok(st.query_row([username], row).optional()?)
    }

    fn put_cpe_credential(&self, c: &CpeCredential, now: i64) -> Result<bool> {
        let (device, prefix) = match &c.scope {
            Scope::Device(d) => (Some(d.as_str()), None),
            Scope::DevicePrefix(p) => (None, Some(p.as_str())),
        };
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        let existed = tx
            .query_row("SELECT 1 FROM cpe_credentials WHERE username = ?1", [&c.username], |_| Ok(()))
            .optional()?
            .is_some();
        tx.execute(
            "INSERT INTO cpe_credentials (username, ha1_md5, ha1_sha256, device, device_prefix, created, proxies)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (username) DO UPDATE SET ha1_md5 = ?2, ha1_sha256 = ?3, device = ?4, device_prefix = ?5,
                proxies = ?7",
            params![c.username, c.ha1.md5, c.ha1.sha256, device, prefix, now, c.proxies],
        )?;
        tx.commit()?;
        Ok(!existed)
    }

    fn delete_cpe_credential(&self, username: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM cpe_credentials WHERE username = ?1", [username])? > 0)
    }

    fn cpe_credentials(&self) -> Result<Vec<CpeCredential>> {
        let db = self.db();
        let mut st = db.prepare(&format!("SELECT {COLUMNS} FROM cpe_credentials ORDER BY username"))?;
        let rows = st.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn server_key(&self, name: &str) -> Result<Vec<u8>> {
        let db = self.db();
        let mut fresh = [0u8; 32];
        http_shell::fill_random(&mut fresh);
        db.execute("INSERT OR IGNORE INTO server_keys (name, value) VALUES (?1, ?2)", params![name, &fresh[..]])?;
        Ok(db.query_row("SELECT value FROM server_keys WHERE name = ?1", [name], |r| r.get(0))?)
    }
}
