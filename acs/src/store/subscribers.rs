//! Subscribers of the customer web form: accounts, their profiles and where those were
//! applied, and their web-form sessions.

use rusqlite::{params, OptionalExtension};

use super::sqlite::SqliteStore;
use super::{json_col, Result};

/// A subscriber's account on the customer web form and the settings they made there.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subscriber {
    /// The subscriber id: the value of their vRGW instance's `Subscriber` parameter, and their
    /// login name.
    pub id: String,
    /// Argon2 PHC string of the password.
    pub password_hash: String,
    /// Their settings (stored as a JSON object; see `acs::profiles`).
    pub profile: crate::profiles::Profile,
    /// Bumped at every change of the settings.
    pub profile_version: i64,
    /// Where and which version of the settings were last applied: `DEVICE|INSTANCE|VERSION`.
    pub applied: String,
    /// The device whose own `Device.` the settings go to, when that is not a vRGW embedded in
    /// its host: a physical TR-181 gateway (set through the NBI), or their vRGW managed as a
    /// virtual device (set when it first informs). None: their vRGW under its host.
    pub gateway: Option<String>,
}

/// A web-form session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// The subscriber logged in.
    pub subscriber: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// Unix seconds after which it is void.
    pub expires: i64,
}

/// Subscribers, their profiles and their web-form sessions.
pub trait SubscriberStore {
    /// Whether any subscriber has saved settings (cheap; no deferred write is flushed).
    fn has_profiles(&self) -> Result<bool>;
    /// Creates a subscriber or changes their password (the profile stays).
    fn put_subscriber(&self, id: &str, password_hash: &str, now: i64) -> Result<bool>;
    /// A subscriber.
    fn subscriber(&self, id: &str) -> Result<Option<Subscriber>>;
    /// Every subscriber id.
    fn subscribers(&self) -> Result<Vec<String>>;
    /// Removes a subscriber, their profile and their sessions.
    fn delete_subscriber(&self, id: &str) -> Result<bool>;
    /// Replaces a subscriber's profile; returns its new version.
    fn set_profile(&self, id: &str, profile: &crate::profiles::Profile) -> Result<i64>;
    /// Records where and which version of a profile was applied.
    fn set_applied(&self, id: &str, applied: &str) -> Result<()>;
    /// Sets (or clears) the subscriber's gateway device; false when there is no such subscriber.
    fn set_gateway(&self, id: &str, gateway: Option<&str>) -> Result<bool>;
    /// The subscribers whose gateway is `device`.
    fn gateway_of(&self, device: &str) -> Result<Vec<String>>;
    /// Stores a web-form session under `token`.
    fn put_portal_session(&self, token: &str, s: &PortalSession) -> Result<()>;
    /// A web-form session that has not expired.
    fn portal_session(&self, token: &str, now: i64) -> Result<Option<PortalSession>>;
    /// Ends a web-form session (and drops expired ones).
    fn delete_portal_session(&self, token: &str, now: i64) -> Result<()>;
}

impl SubscriberStore for SqliteStore {
    fn has_profiles(&self) -> Result<bool> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT 1 FROM subscribers WHERE profile_version > 0 LIMIT 1")?;
        Ok(st.exists([])?)
    }

    fn put_subscriber(&self, id: &str, password_hash: &str, now: i64) -> Result<bool> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        let existed: bool =
            tx.query_row("SELECT 1 FROM subscribers WHERE id = ?1", [id], |_| Ok(true)).optional()?.unwrap_or(false);
        tx.execute(
            "INSERT INTO subscribers (id, password_hash, created) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET password_hash = ?2",
            params![id, password_hash, now],
        )?;
        if existed {
            // A new password ends the sessions made with the old one.
            tx.execute("DELETE FROM portal_sessions WHERE subscriber = ?1", [id])?;
        }
        tx.commit()?;
        Ok(!existed)
    }

    fn subscriber(&self, id: &str) -> Result<Option<Subscriber>> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, password_hash, profile, profile_version, applied, gateway FROM subscribers WHERE id = ?1",
                [id],
                |r| {
                    let id: String = r.get(0)?;
                    Ok(Subscriber {
                        profile: json_col(r, 2, &format!("the profile of subscriber {id}"))?,
                        id,
                        password_hash: r.get(1)?,
                        profile_version: r.get(3)?,
                        applied: r.get(4)?,
                        gateway: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    fn subscribers(&self) -> Result<Vec<String>> {
        let db = self.db();
        let mut st = db.prepare("SELECT id FROM subscribers ORDER BY id")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn delete_subscriber(&self, id: &str) -> Result<bool> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute("DELETE FROM portal_sessions WHERE subscriber = ?1", [id])?;
        tx.execute("DELETE FROM placements WHERE subscriber = ?1", [id])?;
        let n = tx.execute("DELETE FROM subscribers WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    fn set_profile(&self, id: &str, profile: &crate::profiles::Profile) -> Result<i64> {
        let db = self.db();
        db.execute(
            "UPDATE subscribers SET profile = ?2, profile_version = profile_version + 1 WHERE id = ?1",
            params![id, profile.to_json().to_string()],
        )?;
        Ok(db.query_row("SELECT profile_version FROM subscribers WHERE id = ?1", [id], |r| r.get(0))?)
    }

    fn set_applied(&self, id: &str, applied: &str) -> Result<()> {
        self.db().execute("UPDATE subscribers SET applied = ?2 WHERE id = ?1", params![id, applied])?;
        Ok(())
    }

    fn set_gateway(&self, id: &str, gateway: Option<&str>) -> Result<bool> {
        Ok(self.db().execute("UPDATE subscribers SET gateway = ?2 WHERE id = ?1", params![id, gateway])? > 0)
    }

    fn gateway_of(&self, device: &str) -> Result<Vec<String>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT id FROM subscribers WHERE gateway = ?1 ORDER BY id")?;
        let rows = st.query_map([device], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn put_portal_session(&self, token: &str, s: &PortalSession) -> Result<()> {
        self.db().execute(
            "INSERT OR REPLACE INTO portal_sessions (token, subscriber, csrf, expires) VALUES (?1, ?2, ?3, ?4)",
            params![token, s.subscriber, s.csrf, s.expires],
        )?;
        Ok(())
    }

    fn portal_session(&self, token: &str, now: i64) -> Result<Option<PortalSession>> {
        Ok(self
            .db()
            .query_row(
                "SELECT subscriber, csrf, expires FROM portal_sessions WHERE token = ?1 AND expires > ?2",
                params![token, now],
                |r| Ok(PortalSession { subscriber: r.get(0)?, csrf: r.get(1)?, expires: r.get(2)? }),
            )
            .optional()?)
    }

    fn delete_portal_session(&self, token: &str, now: i64) -> Result<()> {
        let db = self.db();
        db.execute("DELETE FROM portal_sessions WHERE token = ?1 OR expires <= ?2", params![token, now])?;
        Ok(())
    }
}
