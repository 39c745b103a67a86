//! Fig. 10: the latency CDF of each request type, one mode, measured phase.

use std::collections::BTreeMap;

use super::axes::AxisSpec;
use super::chart::{Chart, HLine, Panel, Series};
use super::style;
use super::{repeat_note, with_repeat};
use crate::report::stats::chain_label;
use crate::results::{ModeRun, RunData};

/// Points per curve at most (the slowest request always included).
const CURVE: usize = 400;

pub fn fig10(data: &RunData, run: &ModeRun) -> Chart {
    let phase = run.headline_phase();
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in data.requests.iter().filter(|r| r.mode == run.mode && r.repeat == run.repeat && r.phase == phase) {
        by_type.entry(&r.r.request).or_default().push(r.r.latency_us / 1e3);
    }
    // Sorted by chain id, as the paper's legend.
    let mut by_type: Vec<_> = by_type.into_iter().collect();
    by_type.sort_by_key(|(ty, _)| chain_label(ty));
    let series = by_type
        .into_iter()
        .enumerate()
        .map(|(i, (ty, mut v))| {
            v.sort_by(f64::total_cmp);
            let n = v.len() as f64;
            let step = v.len().div_ceil(CURVE).max(1);
            let mut points: Vec<(f64, f64)> = v.iter().enumerate().step_by(step).map(|(i, &x)| (x, (i + 1) as f64 / n)).collect();
            if let Some(&last) = v.last() {
                if points.last() != Some(&(last, 1.0)) {
                    points.push((last, 1.0));
                }
            }
            Series { marker: 4.0, ..Series::line(format!("{} (n={})", chain_label(ty), v.len()), style::request(ty, i), points) }
        })
        .collect();
    let mut panel = Panel::new(AxisSpec::linear("fraction of requests at or below (CDF)").range(0.0, 1.0), series);
    panel.hlines = ["p50", "p99"].iter().zip([0.5, 0.99]).map(|(l, y)| HLine { label: l.to_string(), y, legend: false }).collect();
    let title = with_repeat("Fig. 10 - latency CDF per request type".to_string(), repeat_note(data, &[run]));
    let mut c = Chart::new(title, AxisSpec::log("latency (ms)"), vec![panel]);
    let what = if phase == "common" {
        let rate = run.headline().and_then(|p| p.offered).map_or(String::new(), |r| format!(" ({r} tasks/s)"));
        format!("the sweep's common-rate step{rate}")
    } else {
        "measured phase (warm-up left out)".into()
    };
    c.notes.push(format!("{} - {what}", run.label));
    c.legend.title = Some("request type".into());
    c
}
