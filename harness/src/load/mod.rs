//! Load generation. Every generator records each request itself, with
//! microsecond latencies and times on the run's common clock, so results
//! do not depend on a load tool's own (millisecond) metrics.

pub mod open_loop;
pub mod replay;
pub mod users;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the load goes: the front door's address, and the Host header it
/// routes by when it routes by one (Knative's ingress on the cluster).
#[derive(Clone, Debug)]
pub struct FrontDoor {
    pub addr: SocketAddr,
    pub host: Option<String>,
}

/// xorshift64*: the load generators' small seedable generator, the same
/// on every platform.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sleeps until `at`; false when an interrupt asked the run to stop first.
pub async fn sleep_until(at: Instant) -> bool {
    loop {
        if crate::stop::requested() {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        tokio::time::sleep((at - now).min(Duration::from_millis(200))).await;
    }
}

/// One request as the load generator saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// When it was sent - for open-loop load, when it should have been
    /// sent - in seconds since the run started.
    pub time_s: f64,
    /// Request type (`home`, `product`, ... or a chain/route name).
    pub request: String,
    /// From `time_s` to the end of the response's body.
    pub latency_us: f64,
    /// HTTP status; 0 when no response came (connection error, timeout).
    pub status: u16,
}

/// Shared by the generator's tasks; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    epoch: Instant,
    records: Arc<Mutex<Vec<RequestRecord>>>,
}

impl Recorder {
    pub fn new(epoch: Instant) -> Self {
        Self { epoch, records: Arc::default() }
    }

    pub fn since_epoch(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.epoch).as_secs_f64()
    }

    /// A request answered now, timed from `from`: when a closed-loop
    /// request was sent, or when an open-loop one should have been.
    pub fn record(&self, request: &str, from: Instant, status: u16) {
        let r = RequestRecord {
            time_s: self.since_epoch(from),
            request: request.to_string(),
            latency_us: from.elapsed().as_secs_f64() * 1e6,
            status,
        };
        self.records.lock().unwrap().push(r);
    }

    pub fn take(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}
