//! The session retry wait of TR-069 3.2.1.1 (CWMPRetryMinimumWaitInterval and
//! CWMPRetryIntervalMultiplier, randomised within the window).

use std::time::Duration;

/// Retry parameters, as in `Device.ManagementServer.CWMPRetry*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// CWMPRetryMinimumWaitInterval, seconds (1 to 65535, default 5).
    pub minimum_wait_interval: u32,
    /// CWMPRetryIntervalMultiplier, thousandths (1000 to 65535, default 2000).
    pub interval_multiplier: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { minimum_wait_interval: 5, interval_multiplier: 2000 }
    }
}

impl RetryPolicy {
    /// The wait window `[min, max)` before retry number `retry_count` (1 after the first failure).
    /// From the tenth retry on the window stays that of the tenth.
    pub fn window(&self, retry_count: u32) -> (Duration, Duration) {
        let n = retry_count.clamp(1, 10) as i32;
        let m = f64::from(self.minimum_wait_interval.max(1));
        let k = f64::from(self.interval_multiplier.max(1000)) / 1000.0;
        let lo = m * k.powi(n - 1);
        let hi = m * k.powi(n);
        (Duration::from_secs_f64(lo), Duration::from_secs_f64(hi))
    }

    /// A wait inside the window; `jitter` in `[0, 1)` picks the point (pass a random number).
    pub fn wait(&self, retry_count: u32, jitter: f64) -> Duration {
        let (lo, hi) = self.window(retry_count);
        let j = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        lo + (hi - lo).mul_f64(j)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_3_of_tr069() {
        let p = RetryPolicy::default();
        let secs = |n| {
            let (a, b) = p.window(n);
            (a.as_secs(), b.as_secs())
        };
        assert_eq!(secs(1), (5, 10));
        assert_eq!(secs(2), (10, 20));
        assert_eq!(secs(5), (80, 160));
        assert_eq!(secs(10), (2560, 5120));
        assert_eq!(secs(25), (2560, 5120));
        assert_eq!(p.wait(1, 0.0), Duration::from_secs(5));
        assert_eq!(p.wait(1, 0.5), Duration::from_millis(7500));
        let q = RetryPolicy { minimum_wait_interval: 1, interval_multiplier: 1000 };
        assert_eq!(q.window(7), (Duration::from_secs(1), Duration::from_secs(1)));
    }
}
