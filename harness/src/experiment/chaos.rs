//! Faults under load (`harness chaos`): after the sweep has found a mode's
//! saturation, open-loop load at a fraction of it runs while faults are
//! injected one after another - SIGSTOP of the front function beyond the
//! chain's timeout, a shorter stall that exhausts a SPRIGHT pool, a slowed
//! function, SIGKILL of each function, and last SIGKILL of the front door.
//!
//! Each fault is a phase of the mode's timeline (`fault N: ACTION TARGET`),
//! so the run directory stores when it happened next to every request; the
//! summary's chaos table and figure are computed from those alone
//! ([`outcomes`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::load::RequestRecord;
use crate::results::Phase;

/// What the node does to a process of the system under test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FaultAction {
    Kill,
    Stop,
    Cont,
    /// Stops and continues the process in turn (`run_ms` running,
    /// `stop_ms` stopped) for `secs`, from a thread of the node.
    Slow {
        run_ms: u64,
        stop_ms: u64,
        secs: f64,
    },
}

/// One injected fault: what is done to whom, then (for a stop) what undoes
/// it after how long.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// `kill`, `stop`, `stall`, `slow`, `kill front door`.
    pub kind: &'static str,
    pub target: String,
    pub action: FaultAction,
    /// SIGCONT after this long (stop and stall).
    pub cont_after: Option<Duration>,
}

impl Fault {
    /// The phase label the fault's window gets.
    pub fn label(&self, n: usize) -> String {
        format!("{PREFIX}{n}: {} {}", self.kind, self.target)
    }
}

const PREFIX: &str = "fault ";

/// The faults of one mode, in order. `functions` are the mode's function
/// processes (the first is the one every request enters: the Boutique's
/// frontend); `front_door` is its gateway or ingress, killed last because
/// nothing comes back after it.
pub fn plan(spec: &super::config::ChaosSpec, functions: &[String], front_door: Option<&str>) -> Vec<Fault> {
    let mut faults = Vec::new();
    // What every mode survives first; then the kills, which the baselines'
    // processes do not come back from (no kubelet restarts them here).
    if let Some(front) = functions.first() {
        let stop = |kind, secs: f64| Fault {
            kind,
            target: front.clone(),
            action: FaultAction::Stop,
            cont_after: Some(Duration::from_secs_f64(secs)),
        };
        faults.push(stop("stop", spec.stop_s));
        faults.push(stop("stall", spec.stall_s));
        let [run_ms, stop_ms] = spec.slow_duty_ms;
        faults.push(Fault {
            kind: "slow",
            target: front.clone(),
            action: FaultAction::Slow { run_ms, stop_ms, secs: spec.slow_s },
            cont_after: None,
        });
    }
    faults.extend(functions.iter().take(spec.kill_functions.unwrap_or(usize::MAX)).map(|f| Fault {
        kind: "kill",
        target: f.clone(),
        action: FaultAction::Kill,
        cont_after: None,
    }));
    if let Some(door) = front_door {
        faults.push(Fault { kind: "kill front door", target: door.to_string(), action: FaultAction::Kill, cont_after: None });
    }
    faults
}

/// How long a fault's phase lasts: while it is applied, then `slot_s`.
pub fn window_s(fault: &Fault, spec: &super::config::ChaosSpec) -> f64 {
    let applied = match fault.action {
        FaultAction::Slow { secs, .. } => secs,
        _ => fault.cont_after.map_or(0.0, |d| d.as_secs_f64()),
    };
    applied + spec.slot_s
}

/// What a fault did to the requests around it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultOutcome {
    pub label: String,
    /// Requests sent before the fault and answered after it.
    pub in_flight: u64,
    /// What those got: `2xx`, `4xx`, `502`, `503`, `504`, `no answer` ...
    pub in_flight_outcomes: BTreeMap<String, u64>,
    /// Requests sent during the fault's window, and how many of them failed.
    pub after: u64,
    pub after_errors: u64,
    pub after_outcomes: BTreeMap<String, u64>,
    /// From the fault until the first second in which every request sent
    /// succeeded within the bound; `None`: not within the fault's window.
    pub recovery_s: Option<f64>,
    /// An earlier fault the service had not recovered from when this one
    /// came: this one's numbers say nothing of its own.
    pub down_since: Option<String>,
}

/// A status as the chaos table groups it.
pub fn outcome_class(status: u16) -> String {
    match status {
        0 => "no answer".into(),
        200..=299 => "2xx".into(),
        400..=499 => "4xx".into(),
        s => s.to_string(),
    }
}

/// The fault phases of a mode, in order.
pub fn fault_phases(phases: &[Phase]) -> Vec<&Phase> {
    phases.iter().filter(|p| p.label.starts_with(PREFIX)).collect()
}

/// Every fault's outcome, from the mode's requests and its fault phases.
/// A second counts as recovered when every request sent in it was answered
/// without error within `recovered_ms`; recovery is the time from the fault
/// to the start of the first such second (searched in steps of 100 ms).
pub fn outcomes<'a>(requests: impl IntoIterator<Item = &'a RequestRecord>, phases: &[Phase], recovered_ms: f64) -> Vec<FaultOutcome> {
    // Sorted by send time once: each recovery step is then a slice.
    let mut requests: Vec<&RequestRecord> = requests.into_iter().collect();
    requests.sort_by(|a, b| a.time_s.total_cmp(&b.time_s));
    let mut down_since: Option<String> = None;
    fault_phases(phases)
        .iter()
        .map(|f| {
            let at = f.from_s;
            let end = f.to_s;
            let mut o = FaultOutcome { label: f.label.clone(), ..Default::default() };
            for r in &requests {
                let answered = r.time_s + r.latency_us / 1e6;
                if r.time_s <= at && answered > at {
                    o.in_flight += 1;
                    *o.in_flight_outcomes.entry(outcome_class(r.status)).or_default() += 1;
                } else if r.time_s > at && r.time_s <= end {
                    o.after += 1;
                    if super::search::is_error(r.status) {
                        o.after_errors += 1;
                    }
                    *o.after_outcomes.entry(outcome_class(r.status)).or_default() += 1;
                }
            }
            o.recovery_s = recovery(&requests, at, end, recovered_ms);
            o.down_since = down_since.clone();
            // A window nobody sent a request in says nothing either way.
            if o.recovery_s.is_none() && down_since.is_none() && o.after > 0 {
                down_since = Some(f.label.clone());
            }
            o
        })
        .collect()
}

/// `sorted`: by send time.
fn recovery(sorted: &[&RequestRecord], at: f64, end: f64, recovered_ms: f64) -> Option<f64> {
    let good = |r: &&RequestRecord| !super::search::is_error(r.status) && r.latency_us / 1e3 <= recovered_ms;
    let mut t = at;
    while t + 1.0 <= end {
        let from = sorted.partition_point(|r| r.time_s < t);
        let to = sorted.partition_point(|r| r.time_s < t + 1.0);
        let window = &sorted[from..to];
        if !window.is_empty() && window.iter().all(good) {
            return Some(t - at);
        }
        t += 0.1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(t: f64, ms: f64, status: u16) -> RequestRecord {
        RequestRecord { time_s: t, request: "home".into(), latency_us: ms * 1e3, status }
    }

    fn phase(label: &str, from: f64, to: f64) -> Phase {
        Phase { label: label.into(), from_s: from, to_s: to, offered: Some(10.0) }
    }

    #[test]
    fn in_flight_requests_and_recovery_are_read_off_the_records() {
        let mut requests = Vec::new();
        // Healthy at 10/s before the fault at t = 10.
        for i in 0..100 {
            requests.push(req(i as f64 * 0.1, 2.0, 200));
        }
        // In flight at the fault: two failed, one was served late.
        requests.push(req(9.95, 100.0, 502));
        requests.push(req(9.99, 50.0, 502));
        requests.push(req(9.97, 400.0, 200));
        // Errors for 1.5 s, then healthy again.
        for i in 0..15 {
            requests.push(req(10.05 + i as f64 * 0.1, 1.0, 503));
        }
        for i in 0..60 {
            requests.push(req(11.6 + i as f64 * 0.1, 2.0, 200));
        }
        let phases = vec![phase("lead-in", 0.0, 10.0), phase("fault 1: kill fn3", 10.0, 18.0)];
        let o = &outcomes(&requests, &phases, 50.0)[0];
        assert_eq!(o.in_flight, 3);
        assert_eq!(o.in_flight_outcomes, BTreeMap::from([("2xx".to_string(), 1), ("502".to_string(), 2)]));
        assert_eq!((o.after, o.after_errors), (75, 15));
        let rec = o.recovery_s.unwrap();
        assert!((1.4..=1.7).contains(&rec), "{rec}");
    }

    #[test]
    fn a_service_that_never_recovers_has_no_recovery_time() {
        let requests: Vec<_> = (0..50).map(|i| req(10.0 + i as f64 * 0.1, 1.0, 0)).collect();
        let phases = vec![phase("fault 1: kill front door gateway", 10.0, 15.0)];
        let o = &outcomes(&requests, &phases, 50.0)[0];
        assert_eq!(o.recovery_s, None);
        assert_eq!(o.after_outcomes, BTreeMap::from([("no answer".to_string(), 49)]));
    }

    #[test]
    fn a_window_without_load_does_not_mark_the_service_down() {
        let mut requests: Vec<_> = (0..50).map(|i| req(i as f64 * 0.1, 1.0, 200)).collect();
        requests.extend((0..50).map(|i| req(20.0 + i as f64 * 0.1, 1.0, 200)));
        let phases = vec![phase("fault 1: kill fn9", 5.0, 13.0), phase("fault 2: kill fn10", 20.0, 28.0)];
        let o = outcomes(&requests, &phases, 50.0);
        assert_eq!((o[0].after, o[0].recovery_s, o[0].down_since.as_deref()), (0, None, None));
        assert_eq!(o[1].down_since, None, "the next fault is measured: {:?}", o[1]);
        assert!(o[1].recovery_s.is_some());
    }

    #[test]
    fn the_plan_kills_every_function_then_the_front_door() {
        let spec = crate::experiment::config::ChaosSpec {
            load_fraction: 0.5,
            lead_s: 3.0,
            slot_s: 6.0,
            stop_s: 11.0,
            stall_s: 2.0,
            slow_duty_ms: [10, 10],
            slow_s: 4.0,
            quiesce_s: 11.0,
            kill_functions: None,
            recovered_ms: 50.0,
        };
        let f = plan(&spec, &["fn1".into(), "fn2".into()], Some("gateway"));
        let kinds: Vec<String> = f.iter().enumerate().map(|(i, f)| f.label(i + 1)).collect();
        assert_eq!(
            kinds,
            [
                "fault 1: stop fn1",
                "fault 2: stall fn1",
                "fault 3: slow fn1",
                "fault 4: kill fn1",
                "fault 5: kill fn2",
                "fault 6: kill front door gateway"
            ]
        );
        assert_eq!(f[0].cont_after, Some(Duration::from_secs(11)));
        assert_eq!(window_s(&f[0], &spec), 17.0);
        assert_eq!(window_s(&f[2], &spec), 10.0);
        assert_eq!(window_s(&f[3], &spec), 6.0);
    }
}
