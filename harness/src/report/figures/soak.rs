//! A soak over time, one figure per mode: resident memory (all of it, and
//! the private part the check reads) and open descriptors per component
//! group, and the pool slots in use - the samples the soak's verdict is
//! computed from.

use std::collections::BTreeMap;

use super::axes::AxisSpec;
use super::chart::{Chart, Panel, Series};
use super::style::{self, Stroke};
use super::timeline::{bands, TIME};
use crate::experiment::soak::MIB;
use crate::report::stats::GROUPS;
use crate::results::{ModeRun, ResourceSample, RunData};

/// `value` of `rows`, summed over the processes of each sample instant,
/// against time since `t0`.
fn summed(rows: &[&ResourceSample], t0: f64, value: impl Fn(&ResourceSample) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut at: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for r in rows {
        if let Some(v) = value(r) {
            // Keyed by microsecond: a BTreeMap needs an order.
            let e = at.entry((r.s.time_s * 1e6).round() as i64).or_insert((r.s.time_s - t0, 0.0));
            e.1 += v;
        }
    }
    at.into_values().collect()
}

/// The soak of `run`, or None when it has no samples.
pub fn chart(data: &RunData, run: &ModeRun) -> Option<Chart> {
    let mine: Vec<&ResourceSample> = data.resources.iter().filter(|r| r.mode == run.mode && r.repeat == run.repeat).collect();
    if mine.is_empty() {
        return None;
    }
    let t0 = run.load_from_s();
    let groups: Vec<(usize, &str)> = GROUPS.iter().copied().enumerate().filter(|(_, g)| mine.iter().any(|r| r.s.group == *g)).collect();
    let mut memory = Vec::new();
    let mut fds = Vec::new();
    for &(i, g) in &groups {
        let rows: Vec<&ResourceSample> = mine.iter().copied().filter(|r| r.s.group == g).collect();
        let n = rows.iter().map(|r| r.s.pid).collect::<std::collections::BTreeSet<_>>().len();
        let who = if n == 1 { g.to_string() } else { format!("{g} ({n} processes, summed)") };
        let st = style::group(g, i);
        memory.push(Series::line(format!("{who}: resident"), st, summed(&rows, t0, |r| Some(r.s.rss_bytes as f64 / MIB))));
        let private = style::Style { dash: Stroke::Dotted, ..st };
        memory.push(Series::line(
            format!("{who}: private (checked)"),
            private,
            summed(&rows, t0, |r| Some(r.s.rss_anon_bytes as f64 / MIB)),
        ));
        fds.push(Series::line(format!("{who}: open descriptors"), st, summed(&rows, t0, |r| Some(r.s.open_fds as f64))));
    }
    let slots: Vec<&ResourceSample> = mine.iter().copied().filter(|r| r.s.pool_slots_in_use.is_some()).collect();
    let mut panels = vec![Panel::new(AxisSpec::linear("resident memory (MiB)"), memory)];
    if !slots.is_empty() {
        let st = style::mode(&run.mode, 0);
        let series = vec![Series::line("pool slots in use", st, summed(&slots, t0, |r| r.s.pool_slots_in_use.map(|n| n as f64)))];
        panels.push(Panel { weight: 0.6, ..Panel::new(AxisSpec::linear("pool slots in use").integer(), series) });
    }
    panels.push(Panel { weight: 0.6, ..Panel::new(AxisSpec::linear("open descriptors").integer(), fds) });
    let hi = mine.iter().map(|r| r.s.time_s - t0).fold(0.0, f64::max);
    let lo = run.phases.first().map_or(0.0, |p| p.from_s - t0).min(0.0);
    let mut c = Chart::new(
        format!("Soak - {}: memory, pool slots and descriptors over time", run.mode),
        AxisSpec::linear(TIME).range(lo, hi.max(lo + 1.0)),
        panels,
    );
    c.notes.push(run.label.clone());
    let soak = run
        .phase("measure")
        .map_or(String::new(), |p| format!("the soak runs from {:.0} s to {:.0} s, then no load; ", p.from_s - t0, p.to_s - t0));
    c.notes.push(format!(
        "{soak}every process sampled each second; resident = private (heap, stacks: what the check reads) + shared (the pools' pages, faulted in as slots are first used) + file-backed"
    ));
    c.bands = bands(run);
    c.legend.title = Some("component group".into());
    c.size = (1000, 820);
    Some(c)
}
