//! The ACS's Prometheus metrics (`prometheus-client`), served at `GET /metrics` on the NBI
//! (behind its bearer token): sessions by outcome, faults recorded by code, tasks finished by
//! outcome and open by status, connection requests by result, provision-script runs and
//! rounds, the store's group commits (latency, writes per batch, failures), sessions open.
//!
//! Counters live here and are counted where things happen (the endpoint, the NBI, the store's
//! flush); what is a state rather than an event (sessions open, tasks by status) is read when
//! the metrics are scraped.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A metric's labels.
pub type Labels = Vec<(&'static str, String)>;

/// One label.
pub fn label(key: &'static str, value: impl Into<String>) -> Labels {
    vec![(key, value.into())]
}

/// What the store's group commit reports (handed to the store, which counts into them).
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// Seconds one group commit took.
    pub flush_seconds: Histogram,
    /// Writes (cache rows, events) per group commit.
    pub batch_writes: Histogram,
    /// Group commits that failed (their writes kept for the next).
    pub flush_failures: Counter,
}

/// Every metric of one ACS process.
pub struct Metrics {
    registry: Registry,
    /// CWMP sessions by `outcome`: `completed`, `failed` (the session's state machine gave up),
    /// `timeout` (the CPE went quiet), `refused` (authentication, another session open).
    pub sessions: Family<Labels, Counter>,
    /// Faults recorded, by `code` (`cwmp.9002`, `script.TypeError`, ...).
    pub faults: Family<Labels, Counter>,
    /// Tasks finished, by `outcome`: `done`, `fault`, `retry` (a transient fault, tried again).
    pub tasks: Family<Labels, Counter>,
    /// Connection requests, by `result`: `answered`, `failed`.
    pub connection_requests: Family<Labels, Counter>,
    /// Provision and virtual-parameter script runs of presets' provisioning.
    pub script_runs: Counter,
    /// Rounds a session's presets' scripts took.
    pub script_rounds: Histogram,
    /// The store's group commit.
    pub store: StoreMetrics,
    open_sessions: Gauge,
    open_tasks: Family<Labels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under the `acs_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("acs");
        let sessions = Family::<Labels, Counter>::default();
        registry.register("sessions", "CWMP sessions by outcome", sessions.clone());
        let faults = Family::<Labels, Counter>::default();
        registry.register("faults", "Faults recorded, by code", faults.clone());
        let tasks = Family::<Labels, Counter>::default();
        registry.register("tasks_finished", "Tasks finished, by outcome", tasks.clone());
        let connection_requests = Family::<Labels, Counter>::default();
        registry.register("connection_requests", "Connection requests, by result", connection_requests.clone());
        let script_runs = Counter::default();
        registry.register("script_runs", "Provision script runs of presets", script_runs.clone());
        let script_rounds = Histogram::new(exponential_buckets(1.0, 2.0, 6));
        registry.register("script_rounds", "Rounds a session's preset scripts took", script_rounds.clone());
        let store = StoreMetrics {
            flush_seconds: Histogram::new(exponential_buckets(0.000_05, 4.0, 8)),
            batch_writes: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            flush_failures: Counter::default(),
        };
        registry.register("store_flush_seconds", "Seconds of one group commit", store.flush_seconds.clone());
        registry.register("store_batch_writes", "Writes per group commit", store.batch_writes.clone());
        registry.register("store_flush_failures", "Group commits that failed", store.flush_failures.clone());
        let open_sessions = Gauge::default();
        registry.register("sessions_open", "CWMP sessions open now", open_sessions.clone());
        let open_tasks = Family::<Labels, Gauge>::default();
        registry.register("tasks_open", "Tasks not done, by status", open_tasks.clone());
        Metrics {
            registry,
            sessions,
            faults,
            tasks,
            connection_requests,
            script_runs,
            script_rounds,
            store,
            open_sessions,
            open_tasks,
        }
    }

    /// A fault recorded with `code`.
    pub fn fault(&self, code: &str) {
        self.faults.get_or_create(&label("code", code)).inc();
    }

    /// The text exposition, with the states read now: sessions open, tasks by status.
    pub fn encode(&self, open_sessions: usize, tasks_by_status: &[(String, i64)]) -> String {
        self.open_sessions.set(i64::try_from(open_sessions).unwrap_or(i64::MAX));
        for status in ["pending", "sent", "fault"] {
            let n = tasks_by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
            self.open_tasks.get_or_create(&label("status", status)).set(n);
        }
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_states_are_exposed() {
        let m = Metrics::new();
        m.sessions.get_or_create(&label("outcome", "completed")).inc();
        m.fault("cwmp.9002");
        m.fault("cwmp.9002");
        m.store.flush_seconds.observe(0.001);
        let text = m.encode(3, &[("pending".into(), 2)]);
        assert!(text.contains("acs_sessions_total{outcome=\"completed\"} 1"), "{text}");
        assert!(text.contains("acs_faults_total{code=\"cwmp.9002\"} 2"), "{text}");
        assert!(text.contains("acs_sessions_open 3"), "{text}");
        assert!(text.contains("acs_tasks_open{status=\"pending\"} 2"), "{text}");
        assert!(text.contains("acs_tasks_open{status=\"sent\"} 0"), "{text}");
        assert!(text.contains("acs_store_flush_seconds_count 1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
