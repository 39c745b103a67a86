//! Load generation. Every generator records each request itself, with
//! microsecond latencies and times on the run's common clock, so results
//! do not depend on a load tool's own (millisecond) metrics.

pub mod open_loop;
pub mod replay;
pub mod users;

use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// One request as the load generator saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestRecord {
    /// When it was sent, seconds since the run started.
    pub time_s: f64,
    /// Request type (`home`, `product`, ... or a chain/route name).
    pub request: String,
    pub latency_us: f64,
    /// HTTP status; 0 when no response came (connection error, timeout).
    pub status: u16,
    /// Open loop: when it should have been sent (latency counts from here).
    pub intended_s: Option<f64>,
}

/// Shared by the generator's tasks; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    epoch: Instant,
    records: Arc<Mutex<Vec<RequestRecord>>>,
    labelled: Arc<Mutex<Vec<(String, RequestRecord)>>>,
}

impl Recorder {
    pub fn new(epoch: Instant) -> Self {
        Self { epoch, records: Arc::default(), labelled: Arc::default() }
    }

    pub fn since_epoch(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.epoch).as_secs_f64()
    }

    /// A request answered now, timed from `from`; `scheduled` when `from`
    /// is an open-loop send time rather than the actual one.
    fn finished(&self, request: &str, from: Instant, scheduled: bool, status: u16) -> RequestRecord {
        let time_s = self.since_epoch(from);
        RequestRecord {
            time_s,
            request: request.to_string(),
            latency_us: from.elapsed().as_secs_f64() * 1e6,
            status,
            intended_s: scheduled.then_some(time_s),
        }
    }

    /// A closed-loop request sent at `sent`.
    pub fn record(&self, request: &str, sent: Instant, status: u16) {
        let r = self.finished(request, sent, false, status);
        self.records.lock().unwrap().push(r);
    }

    /// A scheduled request: latency from its intended send time.
    pub fn record_intended(&self, request: &str, intended: Instant, status: u16) {
        let r = self.finished(request, intended, true, status);
        self.records.lock().unwrap().push(r);
    }

    /// An open-loop request: latency from `intended`, kept under `label`
    /// (its phase) and returned by [`Recorder::take_labelled`].
    pub fn record_open(&self, request: &str, label: &str, intended: Instant, status: u16) {
        let r = self.finished(request, intended, true, status);
        self.labelled.lock().unwrap().push((label.to_string(), r));
    }

    /// The open-loop records of one label so far.
    pub fn labelled(&self, label: &str) -> Vec<RequestRecord> {
        self.labelled.lock().unwrap().iter().filter(|(l, _)| l == label).map(|(_, r)| r.clone()).collect()
    }

    pub fn take_labelled(&self) -> Vec<(String, RequestRecord)> {
        std::mem::take(&mut *self.labelled.lock().unwrap())
    }

    pub fn take(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *self.records.lock().unwrap())
    }
}
