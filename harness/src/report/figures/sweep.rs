//! The open-loop sweep: achieved requests/s and p99 latency against the
//! offered rate. Every repeat's probes are small markers of the mode's
//! style, the line joins their means per rate; under the throughput, each
//! mode's saturation point is the mean over the repeats with its 95% interval.

use std::collections::BTreeMap;

use super::axes::{significant, AxisSpec};
use super::chart::{Chart, HLine, Panel, Series, Whiskered};
use super::style;
use crate::report::estimate::{Estimate, MIN_REPEATS_FOR_CI};
use crate::report::stats::{self, ModeStats};
use crate::results::{ProbeRow, RunData};

const OFFERED: &str = "offered load (Online Boutique tasks/s)";

/// Pixels between modes at the same rate, so their points stay visible.
const DODGE: f64 = 6.0;

pub fn charts(data: &RunData, stats: &[ModeStats]) -> [Chart; 2] {
    let modes: Vec<_> = stats::by_mode(data, stats).into_iter().filter(|m| m.ok().next().is_some()).collect();
    let n = modes.len() as f64;
    let mut tput = Vec::new();
    let mut p99 = Vec::new();
    let mut saturation = Vec::new();
    let mut lower_bound = false;
    let (mut tasks, mut requests) = (0u64, 0u64);
    let rows = AxisSpec::categories("", modes.iter().map(|m| m.mode.clone()).collect());
    for (i, m) in modes.iter().enumerate() {
        let st = style::mode(&m.mode, i);
        let dodge = (i as f64 - (n - 1.0) / 2.0) * DODGE;
        let repeats: Vec<usize> = m.ok().map(|s| s.run.repeat).collect();
        let probes: Vec<&ProbeRow> = data.probes.iter().filter(|p| p.mode == m.mode && repeats.contains(&p.repeat)).collect();
        tasks += probes.iter().map(|p| p.tasks).sum::<u64>();
        requests += probes.iter().map(|p| p.stats.requests).sum::<u64>();
        // Means per offered rate (keyed in thousandths of a task/s: a BTreeMap needs an order).
        let mut by_rate: BTreeMap<i64, Vec<&ProbeRow>> = BTreeMap::new();
        for p in &probes {
            by_rate.entry((p.offered * 1000.0).round() as i64).or_default().push(p);
        }
        let means = |f: fn(&ProbeRow) -> f64| -> Vec<(f64, f64)> {
            by_rate.iter().map(|(k, v)| (*k as f64 / 1000.0, v.iter().map(|p| f(p)).sum::<f64>() / v.len() as f64)).collect()
        };
        let each = |f: fn(&ProbeRow) -> f64| -> Vec<(f64, f64)> { probes.iter().map(|p| (p.offered, f(p))).collect() };
        let achieved: fn(&ProbeRow) -> f64 = ProbeRow::achieved_rps;
        let tail: fn(&ProbeRow) -> f64 = |p| p.stats.p99_ms;
        for (out, f) in [(&mut tput, achieved), (&mut p99, tail)] {
            out.push(Series { dodge, ..Series::line(m.mode.clone(), st, means(f)) });
            out.push(Series { dodge, legend: false, marker: 3.0, ..Series::scatter(format!("{} probes", m.mode), st, each(f)) });
        }
        let sats: Vec<stats::Saturation> = m.ok().map(|s| stats::saturation(&data.probes, &s.run)).collect();
        let offered = Estimate::of(&sats.iter().filter_map(|s| s.offered).collect::<Vec<_>>());
        let rps = Estimate::of(&sats.iter().filter_map(|s| s.achieved_rps).collect::<Vec<_>>());
        if let Some(x) = offered {
            let bound = sats.iter().any(|s| s.lower_bound);
            lower_bound |= bound;
            let at = rps.map_or(String::new(), |r| format!(", {} req/s", significant(r.mean)));
            let note = format!("{}{} tasks/s{at}", if bound { "\u{2265} " } else { "" }, significant(x.mean));
            saturation.push(Whiskered { style: st, x, y: Estimate { mean: rows.row(i), ci: None, n: 1 }, note: Some(note), dodge: 0.0 });
        }
    }
    let n_rep = super::repeats(data);
    let repeats = if n_rep == 1 { "one repeat".to_string() } else { format!("{n_rep} repeats") };
    let probes_note = format!("{repeats}: small markers are single probes, lines join their means per offered rate; modes are drawn a few pixels apart so points at the same rate stay visible");
    let mut top = Panel::new(AxisSpec::linear("achieved (requests/s answered in time)").integer(), tput);
    top.title = Some("throughput".into());
    let mut bottom = Panel::new(rows, Vec::new());
    bottom.whiskered = saturation;
    bottom.weight = 0.2 + 0.06 * n;
    bottom.title = Some(if n_rep >= MIN_REPEATS_FOR_CI {
        "saturation point: highest offered rate that passed, mean over the repeats with its 95% interval".into()
    } else {
        format!("saturation point: highest offered rate that passed ({repeats}: no interval)")
    });
    let mut ta = Chart::new("Open-loop sweep - throughput and saturation", AxisSpec::linear(OFFERED).integer(), vec![top, bottom]);
    ta.size = (1000, 640 + 22 * modes.len() as u32);
    ta.whisker_label = if n_rep >= MIN_REPEATS_FOR_CI { "saturation: mean, 95% interval".into() } else { "saturation point".into() };
    ta.notes = vec![probes_note.clone()];
    if tasks > 0 {
        ta.notes.push(format!(
            "offered load counts tasks, achieved counts requests: a task was {:.2} requests on average over these probes",
            requests as f64 / tasks as f64
        ));
    }
    if lower_bound {
        ta.notes.push("\u{2265}: a lower bound (no probe failed in a repeat, or the load generator fell behind)".into());
    }
    ta.legend.title = Some("mode".into());
    let mut b = Panel::new(AxisSpec::log("p99 latency (ms)"), p99);
    if let Some(bound) = data.manifest.profile.sweep.as_ref().map(|s| s.p99_bound_ms) {
        b.hlines.push(HLine { label: format!("p99 bound ({} ms): a probe above it fails", significant(bound)), y: bound, legend: true });
    }
    let mut tb = Chart::new("Open-loop sweep - p99 latency", AxisSpec::linear(OFFERED).integer(), vec![b]);
    tb.notes = vec![probes_note];
    tb.legend.title = Some("mode".into());
    [ta, tb]
}
