//! Where each subscriber's vRGW is: the ACS's own record (host, instance), set by the tasks the
//! ACS sends (the NBI's `addObject`/`setParameterValues` of an instance's `Subscriber`, the
//! migration orchestration) and never by what a host reports. See `crate::profiles`.

use rusqlite::{params, OptionalExtension};

use super::sqlite::SqliteStore;
use super::Result;

/// A subscriber's vRGW: host device and instance number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The subscriber's id.
    pub subscriber: String,
    /// The host's DeviceId.
    pub device: String,
    /// The instance number on that host.
    pub instance: u32,
}

/// The record of placements.
pub trait PlacementStore {
    /// Where `subscriber`'s vRGW is, if the ACS placed it anywhere.
    fn placement(&self, subscriber: &str) -> Result<Option<Placement>>;
    /// The subscribers placed on `device`.
    fn placements_on(&self, device: &str) -> Result<Vec<Placement>>;
    /// Records `subscriber` at `device`, `instance` (moving it from where it was; whoever was
    /// recorded at that instance is no longer placed anywhere).
    fn place(&self, subscriber: &str, device: &str, instance: u32, now: i64) -> Result<()>;
    /// Forgets whoever is recorded at `device`, `instance`: their id, if anyone.
    fn unplace(&self, device: &str, instance: u32) -> Result<Option<String>>;
}

/// A placement from its columns: subscriber, device, instance.
pub(crate) fn placement_of(r: &impl super::Columns) -> Result<Placement> {
    let instance = r.int(2)?;
    Ok(Placement {
        subscriber: r.text(0)?,
        device: r.text(1)?,
        instance: u32::try_from(instance)
            .map_err(|_| super::StoreError::Corrupt { what: format!("placement instance {instance}") })?,
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Placement> {
    super::in_row(placement_of(r))
}

impl PlacementStore for SqliteStore {
    fn placement(&self, subscriber: &str) -> Result<Option<Placement>> {
        let db = self.db();
        let mut st = db.prepare_cached("SELECT subscriber, device, instance FROM placements WHERE subscriber = ?1")?;
        Ok(st.query_row([subscriber], row).optional()?)
    }

    fn placements_on(&self, device: &str) -> Result<Vec<Placement>> {
        let db = self.db();
        let mut st = db.prepare_cached(
            "SELECT subscriber, device, instance FROM placements WHERE device = ?1 ORDER BY instance",
        )?;
        let rows = st.query_map([device], row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn place(&self, subscriber: &str, device: &str, instance: u32, now: i64) -> Result<()> {
        let db = self.db();
        let tx = db.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM placements WHERE device = ?1 AND instance = ?2 AND subscriber != ?3",
            params![device, instance, subscriber],
        )?;
        tx.execute(
            "INSERT INTO placements (subscriber, device, instance, placed) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (subscriber) DO UPDATE SET device = ?2, instance = ?3, placed = ?4",
            params![subscriber, device, instance, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn unplace(&self, device: &str, instance: u32) -> Result<Option<String>> {
        let db = self.db();
        let mut st =
            db.prepare_cached("DELETE FROM placements WHERE device = ?1 AND instance = ?2 RETURNING subscriber")?;
        Ok(st.query_row(params![device, instance], |r| r.get(0)).optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_is_in_one_place_and_a_place_holds_one_subscriber() {
        crate::store::testing::on_each(|s| {
            s.place("alice", "h1", 1, 10).expect("place");
            s.place("bob", "h1", 2, 10).expect("place");
            assert_eq!(s.placements_on("h1").expect("read").len(), 2);
            // Alice moves: h1's instance 1 is free.
            s.place("alice", "h2", 5, 11).expect("move");
            assert_eq!(
                s.placement("alice").expect("read"),
                Some(Placement { subscriber: "alice".into(), device: "h2".into(), instance: 5 })
            );
            assert_eq!(s.placements_on("h1").expect("read").iter().map(|p| p.instance).collect::<Vec<_>>(), vec![2]);
            // Carol is given Bob's instance: Bob is placed nowhere.
            s.place("carol", "h1", 2, 12).expect("place");
            assert_eq!(s.placement("bob").expect("read"), None);
            assert_eq!(s.unplace("h1", 2).expect("unplace"), Some("carol".into()));
            assert_eq!(s.unplace("h1", 2).expect("unplace"), None);
        });
    }
}
