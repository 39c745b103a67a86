//! Load generation. Every generator records each request itself, with
//! microsecond latencies and times on the run's common clock, so results
//! do not depend on a load tool's own (millisecond) metrics.

pub mod open_loop;
pub mod replay;
pub mod users;

use std::sync::{Arc, Mutex};
use std::time::Instant;

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

    pub fn record(&self, request: &str, sent: Instant, status: u16) {
        let r = RequestRecord {
            time_s: self.since_epoch(sent),
            request: request.to_string(),
            latency_us: sent.elapsed().as_secs_f64() * 1e6,
            status,
            intended_s: None,
        };
        self.records.lock().unwrap().push(r);
    }

    /// A scheduled request: latency from its intended send time.
    pub fn record_intended(&self, request: &str, intended: Instant, status: u16) {
        let r = RequestRecord {
            time_s: self.since_epoch(intended),
            request: request.to_string(),
            latency_us: intended.elapsed().as_secs_f64() * 1e6,
            status,
            intended_s: Some(self.since_epoch(intended)),
        };
        self.records.lock().unwrap().push(r);
    }

    /// An open-loop request: latency from `intended`, the phase label kept
    /// in `request` as `TYPE` and returned separately by [`Recorder::take_labelled`].
    pub fn record_open(&self, request: &str, label: &str, intended: Instant, status: u16) {
        let r = RequestRecord {
            time_s: self.since_epoch(intended),
            request: request.to_string(),
            latency_us: intended.elapsed().as_secs_f64() * 1e6,
            status,
            intended_s: Some(self.since_epoch(intended)),
        };
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
