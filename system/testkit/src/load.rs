//! An open-loop load driver for benchmarks: requests are scheduled at a
//! fixed rate and latency is measured from each one's intended send time,
//! so a server that falls behind cannot hide its queueing (no coordinated
//! omission).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Http;

/// One scheduled task: its requests as (type, method, path, form body).
pub type Task = Vec<(&'static str, &'static str, String, String)>;

#[derive(Default)]
pub struct LoadResult {
    pub latencies: BTreeMap<&'static str, Vec<Duration>>,
    pub requests: u64,
    pub errors_5xx: u64,
    pub elapsed: Duration,
}

impl LoadResult {
    /// The `p` quantile of `kind`'s latencies, in milliseconds.
    pub fn quantile_ms(&mut self, kind: &str, p: f64) -> f64 {
        let Some(v) = self.latencies.get_mut(kind) else { return 0.0 };
        v.sort();
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or_default().as_secs_f64() * 1e3
    }
}

/// Runs `task(n)` for n = 0, 1, ... at `rate` tasks/s (`None`: as fast as
/// `workers` keep-alive connections go) for `phase`. Worker `w` sends the
/// cookie `cookie(w)` (one session per connection).
pub fn drive(
    addr: SocketAddr,
    rate: Option<f64>,
    phase: Duration,
    workers: usize,
    task: fn(u64) -> Task,
    cookie: fn(usize) -> String,
) -> LoadResult {
    let result = Arc::new(Mutex::new(LoadResult::default()));
    let ticket = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (result, ticket, stop) = (result.clone(), ticket.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut http = Http::connect(addr);
                let cookie = cookie(w);
                while !stop.load(Ordering::Relaxed) {
                    let n = ticket.fetch_add(1, Ordering::Relaxed);
                    let intended = match rate {
                        Some(r) => start + Duration::from_secs_f64(n as f64 / r),
                        None => Instant::now(),
                    };
                    if intended > start + phase {
                        break;
                    }
                    if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    for (kind, method, path, body) in task(n) {
                        let headers = [("cookie", cookie.as_str()), ("content-type", "application/x-www-form-urlencoded")];
                        let r = http.request_with(method, &path, &headers, body.as_bytes());
                        let mut res = result.lock().unwrap();
                        res.requests += 1;
                        res.errors_5xx += (r.status >= 500) as u64;
                        res.latencies.entry(kind).or_default().push(intended.elapsed());
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(phase);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let mut r = Arc::try_unwrap(result).ok().expect("workers joined").into_inner().unwrap();
    r.elapsed = start.elapsed();
    r
}
