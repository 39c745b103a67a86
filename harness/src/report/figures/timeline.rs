//! Figures over time since a mode's load began: requests/s (Fig. 9), each
//! request's latency and CPU per component group (Fig. 10), and latency and
//! CPU of every mode (Fig. 11 motion, Fig. 12 parking). Phases are shaded;
//! the time series of a repeated run come from one repeat per mode.

use std::collections::BTreeMap;

use super::axes::AxisSpec;
use super::chart::{self, Band, Chart, Panel, Series};
use super::style;
use super::{first_ok_runs, repeat_note, with_repeat};
use crate::report::stats::{chain_label, GROUPS};
use crate::results::{CpuSample, ModeRun, RunData};

pub const TIME: &str = "time since the load began (s)";

/// Pixels between modes, so that equal values stay visible.
const DODGE: f64 = 3.0;
const DODGED: &str = "modes are drawn a few pixels apart so equal values stay visible";

/// At most this many latency points in a figure, whatever the run's size.
const POINTS: usize = 6000;

/// The idle and warm-up windows of `run`, relative to its load's start.
pub(super) fn bands(run: &ModeRun) -> Vec<Band> {
    let t0 = run.load_from_s();
    run.phases
        .iter()
        .filter_map(|p| {
            let (label, color) = match p.label.as_str() {
                "idle" => ("idle (no load)", style::IDLE_BAND),
                "warmup" => ("warm-up (not measured)", style::WARMUP_BAND),
                _ => return None,
            };
            Some(Band { label: label.into(), from: p.from_s - t0, to: p.to_s - t0, color })
        })
        .collect()
}

/// Where `run`'s per-request rows end, relative to its load's start: a
/// sweep keeps none for its probes, after the common-rate step.
fn requests_end(run: &ModeRun) -> f64 {
    let last = if run.phase("common").is_some() { run.phase("common") } else { run.phases.last() };
    last.map_or(0.0, |p| p.to_s - run.load_from_s())
}

/// The x window of `runs`, relative to each one's load start: from the
/// first phase (the idle one when `idle`) to the end of the last (of the
/// last with per-request rows when `requests`).
fn window(runs: &[&ModeRun], idle: bool, requests: bool) -> (f64, f64) {
    let mut lo = 0.0f64;
    let mut hi = 0.0f64;
    for r in runs {
        let t0 = r.load_from_s();
        if idle {
            lo = lo.min(r.phases.first().map_or(0.0, |p| p.from_s - t0));
        }
        hi = hi.max(if requests { requests_end(r) } else { r.phases.last().map_or(0.0, |p| p.to_s - t0) });
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    (lo, hi)
}

/// The smallest of `1, 2, 5, 10 ...` x `base` giving at most `max` bins over `span`.
fn bin_width(base: f64, span: f64, max: f64) -> f64 {
    let mut k = 1.0;
    for m in [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0] {
        k = m;
        if span / (base * m) <= max {
            break;
        }
    }
    base * k
}

/// Sums `(x, len, amount)` - an amount spread over `[x - len, x]`, or at
/// `x` when `len` is 0 - into bins of `bw` over `[lo, hi]`, divided by the
/// time each bin covers. A bin less than half covered is dropped, unless
/// `keep_partial` and something fell in it (a burst at the very end).
pub fn rate_bins(items: impl Iterator<Item = (f64, f64, f64)>, (lo, hi): (f64, f64), bw: f64, keep_partial: bool) -> Vec<(f64, f64)> {
    let k0 = (lo / bw).floor() as i64;
    let k1 = (hi / bw).ceil() as i64;
    let mut sums: BTreeMap<i64, f64> = BTreeMap::new();
    for (end, len, amount) in items {
        let start = end - len.max(0.0);
        if len <= 0.0 {
            let k = (end / bw).floor() as i64;
            *sums.entry(k).or_default() += amount;
            continue;
        }
        let (a, b) = ((start / bw).floor() as i64, (end / bw).ceil() as i64);
        for k in a..b {
            let overlap = (end.min((k + 1) as f64 * bw) - start.max(k as f64 * bw)).max(0.0);
            if overlap > 0.0 {
                *sums.entry(k).or_default() += amount * overlap / len;
            }
        }
    }
    (k0..k1)
        .filter_map(|k| {
            let (a, b) = ((k as f64 * bw).max(lo), ((k + 1) as f64 * bw).min(hi));
            let (covered, sum) = (b - a, sums.get(&k).copied());
            (covered >= bw * 0.5 || (keep_partial && covered > 0.0 && sum.is_some())).then(|| ((a + b) / 2.0, sum.unwrap_or(0.0) / covered))
        })
        .collect()
}

/// Cores of `samples` (procfs CPU-seconds over their intervals) over time since `t0`.
fn cores<'a>(samples: impl Iterator<Item = &'a CpuSample>, t0: f64, (lo, hi): (f64, f64), bw: f64) -> Vec<(f64, f64)> {
    rate_bins(samples.map(|c| (c.s.time_s - t0, c.s.interval_s, c.s.cpu_s)), (lo, hi), bw, false)
}

fn cpu_bin(data: &RunData, span: f64) -> f64 {
    bin_width((data.manifest.sample_ms as f64 / 1000.0).max(0.05), span, 300.0)
}

/// At most `budget` of `points` (x ascending): all when they fit, else per
/// time slice its lowest, quartiles, p99 and highest - the shape and the tail stay.
fn thin(mut points: Vec<(f64, f64)>, budget: usize, (lo, hi): (f64, f64)) -> (Vec<(f64, f64)>, bool) {
    if points.len() <= budget {
        return (points, false);
    }
    let slices = (budget / 6).max(1);
    let width = (hi - lo).max(f64::MIN_POSITIVE) / slices as f64;
    let mut by_slice: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for p in points.drain(..) {
        let k = (((p.0 - lo) / width).floor().max(0.0) as usize).min(slices - 1);
        by_slice.entry(k).or_default().push(p);
    }
    let mut out = Vec::new();
    for (_, mut v) in by_slice {
        v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.total_cmp(&b.0)));
        let mut picks: Vec<usize> = [0.0, 0.25, 0.5, 0.75, 0.99, 1.0].iter().map(|q| (q * (v.len() - 1) as f64).round() as usize).collect();
        picks.dedup();
        out.extend(picks.into_iter().map(|i| v[i]));
    }
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    (out, true)
}

fn thinned_note(thinned: bool, budget: usize) -> Option<String> {
    thinned.then(|| {
        format!(
            "more than {budget} requests per series: shown per time slice are the fastest, the quartiles, the p99 and the slowest request"
        )
    })
}

/// Fig. 9: requests sent per second, per mode.
pub fn fig9(data: &RunData) -> Chart {
    let runs = first_ok_runs(data);
    let (_, hi) = window(&runs, false, true);
    let bw = bin_width(1.0, hi, 300.0);
    let series = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let t0 = run.load_from_s();
            let end = requests_end(run);
            let sent = data.requests.iter().filter(|r| r.mode == run.mode && r.repeat == run.repeat).map(|r| (r.r.time_s - t0, 0.0, 1.0));
            let dodge = (i as f64 - (runs.len() as f64 - 1.0) / 2.0) * DODGE;
            Series { dodge, ..Series::line(run.mode.clone(), style::mode(&run.mode, i), rate_bins(sent, (0.0, end), bw, true)) }
        })
        .collect();
    let mut c = Chart::new(
        with_repeat("Fig. 9 - requests per second over time".into(), repeat_note(data, &runs)),
        AxisSpec::linear(TIME).range(0.0, hi),
        vec![Panel::new(AxisSpec::linear(&format!("requests/s (sent, {} s bins)", axis_number(bw))).integer(), series)],
    );
    c.bands = runs.first().map(|r| bands(r)).unwrap_or_default();
    c.legend.title = Some("mode".into());
    c.notes.push(DODGED.into());
    if data.manifest.has_sweep() {
        c.notes.push("up to the end of the sweep's common-rate step: its probes keep no per-request rows (see sweep_throughput)".into());
    }
    c
}

fn axis_number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Fig. 10: every request's latency over time, per request type, one mode.
pub fn fig10_latency(data: &RunData, run: &ModeRun) -> Chart {
    let t0 = run.load_from_s();
    let (lo, hi) = window(&[run], false, true);
    let mut by_type: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for r in data.requests.iter().filter(|r| r.mode == run.mode && r.repeat == run.repeat) {
        by_type.entry(&r.r.request).or_default().push((r.r.time_s - t0, r.r.latency_us / 1e3));
    }
    let mut types: Vec<(&str, Vec<(f64, f64)>)> = by_type.into_iter().collect();
    types.sort_by_key(|(ty, _)| chain_label(ty));
    let budget = POINTS / types.len().max(1);
    let mut any_thinned = false;
    let series = types
        .into_iter()
        .enumerate()
        .map(|(i, (ty, mut pts))| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            let (pts, thinned) = thin(pts, budget, (lo, hi));
            any_thinned |= thinned;
            Series::scatter(chain_label(ty), style::request(ty, i), pts)
        })
        .collect();
    let mut c = Chart::new(
        with_repeat("Fig. 10 - latency of each request over time".to_string(), repeat_note(data, &[run])),
        AxisSpec::linear(TIME).range(lo, hi),
        vec![Panel::new(AxisSpec::log("latency (ms)"), series)],
    );
    c.notes.push(run.label.clone());
    c.notes.extend(thinned_note(any_thinned, budget));
    c.bands = bands(run);
    c.legend.title = Some("request type".into());
    c
}

/// Fig. 10: CPU per component group over time, one mode (idle included).
pub fn fig10_cpu(data: &RunData, run: &ModeRun) -> Chart {
    let t0 = run.load_from_s();
    let win = window(&[run], true, false);
    let bw = cpu_bin(data, win.1 - win.0);
    let mine: Vec<&CpuSample> = data.cpu.iter().filter(|c| c.mode == run.mode && c.repeat == run.repeat).collect();
    let groups: Vec<(usize, &str)> = GROUPS.iter().copied().enumerate().filter(|(_, g)| mine.iter().any(|c| c.s.group == *g)).collect();
    let n = groups.len() as f64;
    let series: Vec<Series> = groups
        .iter()
        .enumerate()
        .map(|(k, &(i, g))| {
            let dodge = (k as f64 - (n - 1.0) / 2.0) * DODGE;
            Series { dodge, ..Series::line(g, style::group(g, i), cores(mine.iter().copied().filter(|c| c.s.group == g), t0, win, bw)) }
        })
        .collect();
    let mut c = Chart::new(
        with_repeat("Fig. 10 - CPU per component group over time".to_string(), repeat_note(data, &[run])),
        AxisSpec::linear(TIME).range(win.0, win.1),
        vec![Panel { split_dominant: true, ..Panel::new(AxisSpec::linear(&format!("CPU (cores, {} s bins)", axis_number(bw))), series) }],
    );
    c.notes.push(run.label.clone());
    c.notes.push("by process (procfs utime + stime); load: the harness (load generator and collectors); groups are drawn a few pixels apart so equal values stay visible".into());
    c.bands = bands(run);
    c.legend.title = Some("component group".into());
    tall_if_split(&mut c);
    c
}

/// Two stacked panels need more height.
fn tall_if_split(c: &mut Chart) {
    if c.panels.iter().any(|p| p.split_dominant && chart::dominant(&p.series).is_some()) {
        c.size = (1000, 780);
    }
}

/// Fig. 11 / 12: every mode's latency, and CPU of the system under test, over time.
pub fn iot(data: &RunData, fig: &str) -> [Chart; 2] {
    let runs = first_ok_runs(data);
    let note = repeat_note(data, &runs);
    let win = window(&runs, true, false);
    let load_win = (0.0, win.1);
    let budget = POINTS / runs.len().max(1);
    let mut any_thinned = false;
    let bw = cpu_bin(data, win.1 - win.0);
    let mut latency = Vec::new();
    let mut cpu = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let t0 = run.load_from_s();
        let st = style::mode(&run.mode, i);
        let mut pts: Vec<(f64, f64)> = data
            .requests
            .iter()
            .filter(|r| r.mode == run.mode && r.repeat == run.repeat)
            .map(|r| (r.r.time_s - t0, r.r.latency_us / 1e3))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let (pts, thinned) = thin(pts, budget, load_win);
        any_thinned |= thinned;
        let dodge = (i as f64 - (runs.len() as f64 - 1.0) / 2.0) * DODGE;
        latency.push(Series { marker: 3.5, dodge, ..Series::scatter(run.mode.clone(), st, pts) });
        let sut = data.cpu.iter().filter(|c| c.mode == run.mode && c.repeat == run.repeat && c.s.group != "load");
        let dodge = (i as f64 - (runs.len() as f64 - 1.0) / 2.0) * DODGE;
        cpu.push(Series { dodge, ..Series::line(run.mode.clone(), st, cores(sut, t0, win, bw)) });
    }
    let workload = &data.manifest.workload;
    let mut a = Chart::new(
        with_repeat(format!("Fig. {fig}a - {workload}: latency of each request over time"), note.clone()),
        AxisSpec::linear(TIME).range(load_win.0, load_win.1),
        vec![Panel::new(AxisSpec::log("latency (ms)"), latency)],
    );
    a.notes.push(DODGED.into());
    a.notes.extend(thinned_note(any_thinned, budget));
    let mut b = Chart::new(
        with_repeat(format!("Fig. {fig}b - {workload}: CPU of the system under test over time"), note),
        AxisSpec::linear(TIME).range(win.0, win.1),
        vec![Panel { split_dominant: true, ..Panel::new(AxisSpec::linear(&format!("CPU (cores, {} s bins)", axis_number(bw))), cpu) }],
    );
    b.notes.push(format!("all of the system's processes (procfs utime + stime), the load generator left out; {DODGED}"));
    tall_if_split(&mut b);
    if let Some(first) = runs.first() {
        a.bands = bands(first);
        b.bands = bands(first);
    }
    a.legend.title = Some("mode".into());
    b.legend.title = Some("mode".into());
    [a, b]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_spread_over_the_bins_they_cover() {
        // 1 CPU-s over [0.5, 1.5]: half in each 1 s bin.
        let b = rate_bins([(1.5, 1.0, 1.0)].into_iter(), (0.0, 2.0), 1.0, false);
        assert_eq!(b, vec![(0.5, 0.5), (1.5, 0.5)]);
        // Counts (no length) in a partly covered last bin are divided by the part covered.
        let b = rate_bins([(0.2, 0.0, 1.0), (2.1, 0.0, 1.0), (2.2, 0.0, 1.0)].into_iter(), (0.0, 2.5), 1.0, false);
        assert_eq!(b, vec![(0.5, 1.0), (1.5, 0.0), (2.25, 4.0)]);
        // A bin less than half covered is dropped.
        assert_eq!(rate_bins(std::iter::empty(), (0.0, 2.2), 1.0, true).len(), 2);
        // ... unless something fell in it and partial bins are kept: a burst at the end.
        let last = rate_bins([(2.1, 0.0, 1.0)].into_iter(), (0.0, 2.2), 1.0, true).pop().unwrap();
        assert!((last.0 - 2.1).abs() < 1e-9 && (last.1 - 5.0).abs() < 1e-9, "{last:?}");
    }

    #[test]
    fn thinning_keeps_the_extremes() {
        let pts: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64 / 1000.0, if i == 5555 { 900.0 } else { (i % 97) as f64 })).collect();
        let (kept, thinned) = thin(pts.clone(), 600, (0.0, 10.0));
        assert!(thinned && kept.len() <= 600, "{}", kept.len());
        assert!(kept.contains(&(5.555, 900.0)), "the slowest request stays");
        assert_eq!(thin(pts[..100].to_vec(), 600, (0.0, 10.0)).0.len(), 100);
        assert_eq!(thin(pts.clone(), 600, (0.0, 10.0)), (kept, true), "deterministic");
    }

    #[test]
    fn bins_grow_with_long_runs() {
        assert_eq!(bin_width(0.5, 30.0, 300.0), 0.5);
        assert_eq!(bin_width(1.0, 900.0, 300.0), 5.0);
    }
}
