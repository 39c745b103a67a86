//! The chaos section of a summary: per mode and fault, what the requests in
//! flight at the fault got, what those sent during its window got, the time
//! to recovery, whether the service came back by itself, and the slots a
//! SPRIGHT pool still held once the load had stopped.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::experiment::chaos::{outcomes, FaultOutcome};
use crate::results::{ModeRun, RunData};

/// Each run's fault outcomes, in the manifest's order.
pub fn mode_outcomes(data: &RunData) -> Vec<(&ModeRun, Vec<FaultOutcome>)> {
    let Some(spec) = &data.manifest.profile.chaos else { return Vec::new() };
    data.manifest
        .modes
        .iter()
        .map(|run| {
            let requests = data.requests.iter().filter(|r| r.mode == run.mode && r.repeat == run.repeat).map(|r| &r.r);
            (run, outcomes(requests, &run.phases, spec.recovered_ms))
        })
        .filter(|(_, o)| !o.is_empty())
        .collect()
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
}

/// Slots in use per pool after the quiesce, for one run.
fn leaked(data: &RunData, run: &ModeRun) -> String {
    let rows: Vec<String> = data
        .counters
        .iter()
        .filter(|c| c.mode == run.mode && c.repeat == run.repeat && c.name == "pool_slots_in_use")
        .map(|c| format!("{} {}", c.value, c.scope))
        .collect();
    if rows.is_empty() {
        "n/a".into()
    } else {
        rows.join(", ")
    }
}

pub fn section(data: &RunData) -> Option<String> {
    let spec = data.manifest.profile.chaos.as_ref()?;
    let modes = mode_outcomes(data);
    if modes.is_empty() {
        return None;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Faults under load\n\nEach mode at {:.0}% of the highest rate its sweep passed (its flags give the rate), open-loop. In turn: SIGSTOP of the function every request enters for {} s (past the chain's request timeout) then SIGCONT; a {} s stall of it (requests pile up: at this rate a SPRIGHT pool fills); the same function slowed ({} ms running, {} ms stopped, for {} s); SIGKILL of each function; then the load stops for {} s and the SPRIGHT pools' slots still in use are read (leaked: anything above 0); last SIGKILL of the front door. Each fault is watched for {} s after it ends. *In flight*: requests sent before the fault and answered after it. *Recovered*: from the fault to the first second in which every request sent was answered without error within {} ms; *no* means not within the fault's window - the service did not come back by itself. Statuses: `no answer` is a connection error or no reply within 10 s.\n",
        spec.load_fraction * 100.0,
        spec.stop_s,
        spec.stall_s,
        spec.slow_duty_ms[0],
        spec.slow_duty_ms[1],
        spec.slow_s,
        spec.quiesce_s,
        spec.slot_s,
        spec.recovered_ms
    );
    let _ = writeln!(out, "| mode | fault | in flight at the fault: what they got | sent during its window | errors | recovered after | slots in use after the faults |");
    let _ = writeln!(out, "|---|---|---|---|---:|---|---|");
    for (run, faults) in &modes {
        let leak = leaked(data, run);
        for (i, f) in faults.iter().enumerate() {
            let recovered = match (&f.down_since, f.recovery_s) {
                (Some(since), _) => format!("not measured: down since {}", since.split(':').next().unwrap_or(since)),
                _ if f.after == 0 => "not measured: no load in its window".into(),
                (None, Some(s)) => format!("{s:.1} s"),
                (None, None) => "**no**".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} ({}) | {} ({}) | {} | {} | {} |",
                if i == 0 { run.label.as_str() } else { "" },
                f.label,
                f.in_flight,
                counts(&f.in_flight_outcomes),
                f.after,
                counts(&f.after_outcomes),
                f.after_errors,
                recovered,
                if i == 0 { leak.as_str() } else { "" },
            );
        }
    }
    Some(out)
}
