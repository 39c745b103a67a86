//! Gateway counters, rendered by the admin endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Responses by status code, latency sum, and descriptor anomalies.
pub struct GatewayMetrics {
    by_status: Box<[Counter]>,
    pub latency_us_sum: Counter,
    pub rejected_descriptors: Counter,
    pub stray_descriptors: Counter,
    pub late_completions: Counter,
    pub connections: Counter,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self {
            by_status: (0..600).map(|_| Counter::default()).collect(),
            latency_us_sum: Counter::default(),
            rejected_descriptors: Counter::default(),
            stray_descriptors: Counter::default(),
            late_completions: Counter::default(),
            connections: Counter::default(),
        }
    }
}

impl GatewayMetrics {
    pub fn record(&self, status: u16, latency: Duration) {
        if let Some(c) = self.by_status.get(status as usize) {
            c.inc();
        }
        self.latency_us_sum.add(latency.as_micros() as u64);
    }

    /// Non-zero (status, count) pairs.
    pub fn responses(&self) -> Vec<(u16, u64)> {
        self.by_status.iter().enumerate().filter(|(_, c)| c.get() > 0).map(|(s, c)| (s as u16, c.get())).collect()
    }

    pub fn total_responses(&self) -> u64 {
        self.by_status.iter().map(Counter::get).sum()
    }
}
