//! Scheduled requests replayed open loop: the motion trace (events at
//! their compressed trace times) and the parking bursts (many concurrent
//! uploads at once). Latency counts from each request's scheduled time.

use std::time::{Duration, Instant};

use bytes::Bytes;
use motion::core::{SplitMix, TraceEvent};
use tokio::task::JoinSet;

use super::open_loop::{client, send, Outgoing};
use super::{FrontDoor, Recorder};

pub struct Scheduled {
    pub at: Duration,
    /// Request type as recorded (`motion`, `route1`, `route2`).
    pub request: &'static str,
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: Bytes,
}

/// Motion events as JSON, sent at trace time / `compression`; the event
/// keeps its trace timestamp (the actuator's hold time runs on it).
pub fn motion_schedule(trace: &[TraceEvent], compression: f64) -> Vec<Scheduled> {
    trace
        .iter()
        .map(|e| Scheduled {
            at: Duration::from_secs_f64(e.at_ms as f64 / 1000.0 / compression.max(1e-9)),
            request: "motion",
            path: "/motion",
            content_type: "application/json",
            body: Bytes::from(format!(r#"{{"sensor_id":"{}","timestamp":{},"value":{}}}"#, e.sensor_id, e.at_ms, e.value)),
        })
        .collect()
}

/// `bursts` bursts of `size` concurrent JPEG uploads, `period` apart; a
/// `route2_share` of them are known vehicles (route 2), the rest new
/// (route 1). Every image is the sample with its own comment, so every
/// car has its own plate.
pub fn parking_schedule(seed: u64, bursts: usize, size: usize, period: Duration, route2_share: f64) -> Vec<Scheduled> {
    let mut rng = SplitMix::new(seed);
    let mut out = Vec::with_capacity(bursts * size);
    for b in 0..bursts {
        for i in 0..size {
            let known = (rng.next_u64() % 10_000) as f64 / 10_000.0 < route2_share;
            let (request, path) = if known { ("route2", "/parking/known") } else { ("route1", "/parking/new") };
            let jpeg = parking::core::with_comment(parking::core::SAMPLE_JPEG, &format!("car {b}-{i}"));
            out.push(Scheduled { at: period * b as u32, request, path, content_type: "image/jpeg", body: Bytes::from(jpeg) });
        }
    }
    out
}

/// Sends every request at its time (whatever earlier ones are doing) and
/// waits for all answers.
pub async fn run(door: FrontDoor, schedule: Vec<Scheduled>, rec: &Recorder) {
    let client = client();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for s in schedule {
        let intended = start + s.at;
        if !super::sleep_until(intended).await {
            break;
        }
        let (client, rec, door) = (client.clone(), rec.clone(), door.clone());
        tasks.spawn(async move {
            let out = Outgoing { method: "POST", path: s.path, content_type: s.content_type, cookie: None, body: s.body };
            let status = send(&client, &door, out).await;
            rec.record(s.request, intended, status);
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parking_bursts_follow_the_profile() {
        let s = parking_schedule(7, 3, 164, Duration::from_secs(24), 0.9);
        assert_eq!(s.len(), 3 * 164);
        assert_eq!(s.iter().filter(|x| x.at == Duration::from_secs(48)).count(), 164);
        let route2 = s.iter().filter(|x| x.request == "route2").count() as f64 / s.len() as f64;
        assert!((0.84..0.96).contains(&route2), "{route2}");
        assert!(s.iter().all(|x| parking::core::is_jpeg(&x.body)));
    }

    #[test]
    fn motion_time_is_compressed_but_timestamps_are_not() {
        let trace = motion::core::synthetic_trace(1, 600_000, 10);
        let s = motion_schedule(&trace, 20.0);
        assert_eq!(s.len(), trace.len());
        let last = trace.last().unwrap();
        assert!((s.last().unwrap().at.as_secs_f64() - last.at_ms as f64 / 20_000.0).abs() < 1e-6);
        assert!(std::str::from_utf8(&s[0].body).unwrap().contains(&format!("\"timestamp\":{}", trace[0].at_ms)));
    }
}
