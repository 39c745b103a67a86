//! Motion detection's logic, transport-free: a sensor event is parsed and
//! classified, and the actuator switches a light.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Motion at or above this intensity counts as motion.
pub const MOTION_THRESHOLD: f64 = 0.5;
/// The light stays on this long after the last motion (trace time).
pub const HOLD_MS: u64 = 30_000;

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SensorEvent {
    pub sensor_id: String,
    /// Milliseconds on the trace's clock.
    pub timestamp: u64,
    /// Motion intensity, 0..=1.
    pub value: f64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BadEvent(pub String);

/// Parses a JSON (`{"sensor_id":..,"timestamp":..,"value":..}`) or
/// urlencoded form event.
pub fn parse_event(content_type: &str, body: &[u8]) -> Result<SensorEvent, BadEvent> {
    let ev = if content_type.trim_start().starts_with("application/json") || body.first() == Some(&b'{') {
        spright::wire::json::from_slice::<SensorEvent>(body).map_err(|e| BadEvent(format!("invalid event JSON: {e}")))?
    } else {
        let text = std::str::from_utf8(body).map_err(|_| BadEvent("event is not UTF-8".into()))?;
        let form = spright::wire::form::decode(text);
        let get =
            |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).ok_or_else(|| BadEvent(format!("missing field: {k}")));
        SensorEvent {
            sensor_id: get("sensor_id")?.to_string(),
            timestamp: get("timestamp")?.parse().map_err(|_| BadEvent("invalid field: timestamp".into()))?,
            value: get("value")?.parse().map_err(|_| BadEvent("invalid field: value".into()))?,
        }
    };
    if ev.sensor_id.is_empty()
        || ev.sensor_id.len() > 32
        || !ev.sensor_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(BadEvent("invalid field: sensor_id".into()));
    }
    if !(0.0..=1.0).contains(&ev.value) {
        return Err(BadEvent("invalid field: value (must be 0..=1)".into()));
    }
    Ok(ev)
}

/// The sensor's classification.
pub fn detect(ev: &SensorEvent) -> bool {
    ev.value >= MOTION_THRESHOLD
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    On,
    Off,
}

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub sensor_id: String,
    pub timestamp: u64,
    pub motion: bool,
    pub light: Light,
    pub changed: bool,
}

/// The actuator: one light per sensor, on with motion, off once no motion
/// was seen for [`HOLD_MS`] of trace time.
#[derive(Default)]
pub struct Actuator {
    lights: Mutex<HashMap<String, (Light, u64)>>,
}

impl Actuator {
    pub fn decide(&self, sensor_id: &str, timestamp: u64, motion: bool) -> Decision {
        let mut lights = self.lights.lock().unwrap_or_else(|p| p.into_inner());
        let entry = lights.entry(sensor_id.to_string()).or_insert((Light::Off, 0));
        let before = entry.0;
        if motion {
            *entry = (Light::On, timestamp.max(entry.1));
        } else if entry.0 == Light::On && timestamp.saturating_sub(entry.1) >= HOLD_MS {
            entry.0 = Light::Off;
        }
        Decision { sensor_id: sensor_id.to_string(), timestamp, motion, light: entry.0, changed: entry.0 != before }
    }
}

/// One replayed request: when to send it and what.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceEvent {
    pub at_ms: u64,
    pub sensor_id: String,
    pub value: f64,
}

/// splitmix64: a small seeded generator (no dependency, same everywhere).
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}

/// A seeded synthetic trace with the MERL data set's character: motion
/// activations come in bursts (a person walking past several sensors),
/// separated by quiet gaps of minutes - long enough for Knative to scale
/// functions to zero.
pub fn synthetic_trace(seed: u64, duration_ms: u64, sensors: usize) -> Vec<TraceEvent> {
    let mut rng = SplitMix::new(seed);
    let mut out = Vec::new();
    let mut t = rng.range(1_000, 30_000);
    while t < duration_ms {
        // A burst: several sensors fire within a few seconds.
        let events = rng.range(3, 25);
        for _ in 0..events {
            let sensor = rng.range(0, sensors.max(1) as u64);
            let at = t + rng.range(0, 8_000);
            if at < duration_ms {
                out.push(TraceEvent { at_ms: at, sensor_id: format!("s{sensor:03}"), value: 1.0 });
                out.push(TraceEvent {
                    at_ms: (at + rng.range(500, 3_000)).min(duration_ms - 1),
                    sensor_id: format!("s{sensor:03}"),
                    value: 0.0,
                });
            }
        }
        // A quiet gap: 1 to 6 minutes.
        t += rng.range(60_000, 360_000);
    }
    out.sort_by_key(|e| e.at_ms);
    out
}

/// Parses a real trace (`<sensor> <start_ms> <stop_ms>` per line, `#`
/// comments) into an activation and a release per line.
pub fn parse_trace(text: &str) -> Result<Vec<TraceEvent>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let [sensor, start, stop, ..] = f[..] else { return Err(format!("line {}: expected <sensor> <start_ms> <stop_ms>", n + 1)) };
        let start: u64 = start.parse().map_err(|_| format!("line {}: bad start_ms", n + 1))?;
        let stop: u64 = stop.parse().map_err(|_| format!("line {}: bad stop_ms", n + 1))?;
        if stop < start {
            return Err(format!("line {}: stop before start", n + 1));
        }
        out.push(TraceEvent { at_ms: start, sensor_id: sensor.to_string(), value: 1.0 });
        out.push(TraceEvent { at_ms: stop, sensor_id: sensor.to_string(), value: 0.0 });
    }
    out.sort_by_key(|e| e.at_ms);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_from_json_and_forms() {
        let j = parse_event("application/json", br#"{"sensor_id":"s1","timestamp":5,"value":0.9}"#).unwrap();
        let f = parse_event("application/x-www-form-urlencoded", b"sensor_id=s1&timestamp=5&value=0.9").unwrap();
        assert_eq!(j, f);
        assert!(detect(&j));
        assert_eq!(parse_event("", b"sensor_id=s1&timestamp=5").unwrap_err(), BadEvent("missing field: value".into()));
        assert!(parse_event("", b"sensor_id=s1&timestamp=5&value=2").is_err());
        assert!(parse_event("", b"sensor_id=a b&timestamp=5&value=1").is_err());
        assert!(parse_event("application/json", b"{nope").is_err());
    }

    #[test]
    fn light_holds_then_switches_off() {
        let a = Actuator::default();
        assert_eq!((a.decide("s", 0, true).light, a.decide("s", 0, true).changed), (Light::On, false));
        assert_eq!(a.decide("s", 10_000, false).light, Light::On, "held");
        let d = a.decide("s", 30_000, false);
        assert_eq!((d.light, d.changed), (Light::Off, true));
        assert_eq!(a.decide("other", 1, false).light, Light::Off);
    }

    #[test]
    fn synthetic_trace_is_bursty_and_seeded() {
        let t = synthetic_trace(7, 3_600_000, 20);
        assert_eq!(t, synthetic_trace(7, 3_600_000, 20));
        assert_ne!(t, synthetic_trace(8, 3_600_000, 20));
        assert!(t.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        let gaps = t.windows(2).filter(|w| w[1].at_ms - w[0].at_ms >= 60_000).count();
        assert!(gaps >= 5, "quiet gaps of a minute or more: {gaps}");
    }

    #[test]
    fn real_traces_parse() {
        let t = parse_trace("# MERL\ns17 1000 2500\ns03 1200 1300\n").unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!((t[0].at_ms, t[0].sensor_id.as_str(), t[0].value), (1000, "s17", 1.0));
        assert!(parse_trace("s1 5 1").is_err());
        assert!(parse_trace("s1 x 1").is_err());
    }
}
