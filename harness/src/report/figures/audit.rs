//! Per-mode numbers as bars, the mean over the repeats with whiskers for
//! its 95% interval: the overhead audit, and the headline (CPU per request,
//! p99 per request type).

use std::collections::BTreeSet;

use super::axes::AxisSpec;
use super::bars::{BarPanel, BarSeries, Bars};
use super::style;
use crate::report::estimate::Estimate;
use crate::report::stats::{self, chain_label, ModeRepeats, ModeStats};
use crate::results::RunData;

fn series(modes: &[ModeRepeats], value: impl Fn(&ModeRepeats) -> Vec<Option<Estimate>>) -> Vec<BarSeries> {
    modes.iter().enumerate().map(|(i, m)| BarSeries { label: m.mode.clone(), style: style::mode(&m.mode, i), values: value(m) }).collect()
}

/// `f` over the repeats that ran ok and pass `keep`.
fn estimate(m: &ModeRepeats, keep: impl Fn(&ModeStats) -> bool, f: impl Fn(&ModeStats) -> f64) -> Option<Estimate> {
    Estimate::of(&m.ok().filter(|s| keep(s)).map(f).collect::<Vec<_>>())
}

/// What the headline numbers were measured over.
fn phase_note(data: &RunData) -> String {
    if data.manifest.has_sweep() {
        let rate = data.manifest.profile.sweep.as_ref().map_or(0.0, |s| s.start_rate);
        format!("at the sweep's common rate ({rate} tasks/s)")
    } else {
        "over the measured phase".into()
    }
}

/// The overhead audit: per request (both legs), per mode, one panel per kind of event.
pub fn audit(data: &RunData, stats: &[ModeStats]) -> Bars {
    use crate::report::summary::{CHAIN, DESCRIPTORS, EXTERNAL, PAYLOAD, STACK, SWITCHES};
    let modes: Vec<ModeRepeats> = stats::by_mode(data, stats).into_iter().filter(|m| m.ok().any(|s| s.has_source("ebpf"))).collect();
    let legs: Vec<&str> = EXTERNAL.iter().chain(CHAIN).copied().collect();
    let metrics: [(&str, &str, &[&str]); 6] = [
        ("payload transfers", "ebpf", PAYLOAD),
        ("descriptor transfers", "ebpf", DESCRIPTORS),
        ("context switches", "ebpf", SWITCHES),
        ("protocol stack passes", "ebpf", STACK),
        ("serializations", "runtime", &["serializations"]),
        ("deserializations", "runtime", &["deserializations"]),
    ];
    let panels: Vec<BarPanel> = metrics
        .iter()
        .map(|&(title, source, names)| BarPanel {
            title: title.into(),
            y: AxisSpec::linear("events per request"),
            categories: vec![String::new()],
            series: series(&modes, |m| vec![estimate(m, |s| s.has_source(source), |s| s.source_per_request(source, &legs, names))]),
            weight: 1.0,
        })
        .collect();
    let mut rows = vec![panels[..3].to_vec(), panels[3..].to_vec()];
    rows.retain(|r| !r.is_empty());
    let mut b = Bars {
        title: "Overhead audit - events per request, both legs (gateway and chain)".into(),
        notes: vec![
            format!("eBPF: transfers, switches and stack passes; the runtimes' own counters: (de)serializations - {}", phase_note(data)),
            super::bars_note(data),
        ],
        rows,
        legend: Default::default(),
        size: (1100, 720),
    };
    b.legend.title = Some("mode".into());
    b
}

/// The headline for Online Boutique: CPU-seconds per 1000 requests and p99 per request type.
pub fn headline(data: &RunData, stats: &[ModeStats]) -> Option<Bars> {
    let modes: Vec<ModeRepeats> = stats::by_mode(data, stats).into_iter().filter(|m| m.ok().next().is_some()).collect();
    if modes.is_empty() {
        return None;
    }
    let types: BTreeSet<&str> = modes.iter().flat_map(|m| m.ok()).flat_map(|s| s.latency.keys().map(String::as_str)).collect();
    let mut types: Vec<&str> = types.into_iter().collect();
    types.sort_by_key(|t| chain_label(t));
    let cpu = BarPanel {
        title: "CPU per request".into(),
        y: AxisSpec::linear("CPU-s per 1000 requests (kernel included)"),
        categories: vec![String::new()],
        series: series(&modes, |m| vec![m.estimate(ModeStats::cpu_per_1000)]),
        weight: 1.0,
    };
    let p99 = BarPanel {
        title: "p99 latency per request type".into(),
        y: AxisSpec::linear("p99 latency (ms)"),
        categories: types.iter().map(|t| chain_label(t)).collect(),
        series: series(&modes, |m| {
            types
                .iter()
                .map(|t| estimate(m, |s| s.latency.contains_key(*t), |s| s.latency.get(*t).map_or(f64::NAN, |l| l.p99_ms)))
                .collect()
        }),
        weight: 3.2,
    };
    let mut b = Bars {
        title: "Headline - CPU per request and tail latency, per mode".into(),
        notes: vec![format!("{} (Online Boutique, {} load)", phase_note(data), data.manifest.load_kind), super::bars_note(data)],
        rows: vec![vec![cpu, p99]],
        legend: Default::default(),
        size: (1200, 600),
    };
    b.legend.title = Some("mode".into());
    Some(b)
}
