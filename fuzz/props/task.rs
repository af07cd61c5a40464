//! The property of the fuzz target `task`: a task body as the NBI receives it
//! (`POST /devices/<id>/tasks`), typed once by `acs::tasks::Order::from_nbi` and
//! `acs::tasks::Terms::from_nbi`. Accepted or refused, it never panics; an accepted task reads
//! back (`to_json`, then `Order::from_json`, as the store reads it) as the same task, and its
//! JSON form takes no migration mark from the client. Included with `#[path]` by the fuzz
//! target and by `acs/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use acs::tasks::{Order, Terms};
use serde_json::Value as Json;

/// Whether the task was accepted (the property holding either way).
pub fn check_task(data: &[u8]) -> bool {
    let Ok(j) = serde_json::from_slice::<Json>(data) else { return false };
    let Ok(order) = Order::from_nbi(&j) else { return false };
    if Terms::from_nbi(&j, 1_795_302_534_000).is_err() {
        return false;
    }
    assert_eq!(order.migration, None, "a client gave a migration mark: {j}");
    let stored = order.to_json();
    let again = Order::from_json(&stored).unwrap_or_else(|e| panic!("{stored} does not read back: {e}"));
    assert_eq!(again, order, "{stored} reads back as another task");
    true
}
