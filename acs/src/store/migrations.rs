//! Migrations of vRGWs between hosts: each a JSON record its orchestration keeps current.

use rusqlite::params;

use super::sqlite::SqliteStore;
use super::{json_col, Result};

/// Migration records.
pub trait MigrationStore {
    /// Keeps migration `id`'s record current.
    fn put_migration(&self, id: i64, record: &serde_json::Value) -> Result<()>;
    /// Records a new running migration of `record`'s `source` and `instance` and returns its
    /// id, or `None` when one of that instance is running already: the check and the insert
    /// are one statement, so of two nodes starting it at the same moment one wins.
    fn start_migration(&self, record: &serde_json::Value) -> Result<Option<i64>>;
    /// Every migration, oldest first.
    fn migrations(&self) -> Result<Vec<(i64, serde_json::Value)>>;
}

impl MigrationStore for SqliteStore {
    fn put_migration(&self, id: i64, record: &serde_json::Value) -> Result<()> {
        self.db().execute("UPDATE migrations SET record = ?2 WHERE id = ?1", params![id, record.to_string()])?;
        Ok(())
    }

    fn start_migration(&self, record: &serde_json::Value) -> Result<Option<i64>> {
        let db = self.db();
        // The unique index on running migrations (schema step 14) ignores the duplicate.
        let n = db.execute("INSERT OR IGNORE INTO migrations (record) VALUES (?1)", [record.to_string()])?;
        Ok((n == 1).then(|| db.last_insert_rowid()))
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

#[cfg(test)]
mod tests {
    use super::MigrationStore;
    use serde_json::json;

    fn running(source: &str, instance: u32) -> serde_json::Value {
        json!({"source": source, "instance": instance, "target": "t", "status": "running"})
    }

    #[test]
    fn one_running_migration_per_instance() {
        crate::store::testing::on_each(|s| {
            let first = s.start_migration(&running("h1", 1)).expect("start").expect("the first");
            assert_eq!(s.start_migration(&running("h1", 1)).expect("again"), None, "the instance is migrating");
            let other = s.start_migration(&running("h1", 2)).expect("another instance").expect("started");
            let elsewhere = s.start_migration(&running("h2", 1)).expect("another host's").expect("started");
            assert_eq!(
                s.migrations().expect("list").iter().map(|(id, _)| *id).collect::<Vec<_>>(),
                [first, other, elsewhere]
            );
            let mut done = running("h1", 1);
            done["status"] = json!("done");
            s.put_migration(first, &done).expect("finished");
            let next = s.start_migration(&running("h1", 1)).expect("after it ended").expect("started");
            assert!(next > first);
            assert_eq!(s.migrations().expect("list")[0].1["status"], "done", "the ended one is kept");
        });
    }

    #[test]
    fn two_nodes_starting_one_migration_at_once_start_it_once() {
        let db = test_support::pg::cluster().database();
        let password = std::fs::read_to_string(&db.password_file).expect("password file");
        let nodes: Vec<_> = ["a", "b"]
            .map(|n| crate::store::PgStore::open(&db.url, Some(password.trim()), 2, n).expect("store"))
            .into_iter()
            .collect();
        for instance in 0..40 {
            let barrier = std::sync::Barrier::new(2);
            let won: Vec<bool> = std::thread::scope(|t| {
                let runs: Vec<_> = nodes
                    .iter()
                    .map(|s| {
                        let barrier = &barrier;
                        t.spawn(move || {
                            barrier.wait();
                            s.start_migration(&running("h1", instance)).expect("start").is_some()
                        })
                    })
                    .collect();
                runs.into_iter().map(|r| r.join().expect("thread")).collect()
            });
            assert_eq!(won.iter().filter(|w| **w).count(), 1, "instance {instance}: {won:?}");
        }
        assert_eq!(nodes[0].migrations().expect("list").len(), 40);
    }
}
