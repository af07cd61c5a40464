//! The agent's Prometheus metrics (`prometheus-client`), served at `GET /metrics` on
//! `metrics_listen` when it is set: vRGWs by `Status`, each pool's target size and ready
//! instances (as the host thread last published them), and the latency of libvirt calls by
//! operation (counted on the libvirt thread as each call ends, in one process-wide family).

use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A metric's labels.
type Labels = Vec<(&'static str, String)>;

/// What the host thread publishes for the metrics: counts read from its data model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCounts {
    /// vRGW instances by their `Status`.
    pub instances: std::collections::BTreeMap<String, i64>,
    /// Each pool: its row, `TargetSize`, `Ready`.
    pub pools: Vec<(u32, i64, i64)>,
}

fn libvirt_family() -> &'static Family<Labels, Histogram> {
    static FAMILY: OnceLock<Family<Labels, Histogram>> = OnceLock::new();
    FAMILY.get_or_init(|| {
        // 0.1 ms to about 26 s.
        Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 4.0, 10)))
    })
}

/// Counts one libvirt call of `op` that took `seconds` (answered or failed).
pub fn libvirt_call(op: &'static str, seconds: f64) {
    libvirt_family().get_or_create(&vec![("op", op.to_string())]).observe(seconds);
}

/// The metrics in Prometheus's text format.
pub fn encode_text(counts: &HostCounts) -> String {
    let mut registry = Registry::default();
    let instances = Family::<Labels, Gauge>::default();
    for (status, n) in &counts.instances {
        instances.get_or_create(&vec![("status", status.clone())]).set(*n);
    }
    registry.register("vrgw_instances", "vRGW instances by Status.", instances);
    let (target, ready) = (Family::<Labels, Gauge>::default(), Family::<Labels, Gauge>::default());
    for (pool, t, r) in &counts.pools {
        target.get_or_create(&vec![("pool", pool.to_string())]).set(*t);
        ready.get_or_create(&vec![("pool", pool.to_string())]).set(*r);
    }
    registry.register("vrgw_pool_target", "Instances each pool keeps suspended and ready (TargetSize).", target);
    registry.register("vrgw_pool_ready", "Instances ready in each pool now (Ready).", ready);
    registry.register("libvirt_call_seconds", "Seconds of libvirt calls, by operation.", libvirt_family().clone());
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &registry) {
        tracing::error!("encoding the metrics: {e}");
    }
    out
}
