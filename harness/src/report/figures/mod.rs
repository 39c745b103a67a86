//! The paper's figures, as PNG and SVG (PNG only for a committed reference
//! run), drawn with plotters from a run's stored rows (fonts: the committed
//! DejaVu Sans, no system font library).
//!
//! Every figure is first built as data ([`chart::Chart`] or
//! [`bars::Bars`]), then drawn on both backends by the same code. Styles
//! come from one table ([`style`]): a mode looks the same in every figure.
//! Output depends on the stored rows alone (ordered maps, no clocks).

mod audit;
mod axes;
mod bars;
mod canvas;
mod cdf;
mod chaos;
mod chart;
mod legend;
mod soak;
mod style;
mod sweep;
mod timeline;

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use super::stats::ModeStats;
use crate::results::{ModeRun, RunData};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The bytes are a valid TrueType font committed with the harness.
        let _ = plotters::style::register_font(canvas::FONT, FontStyle::Normal, include_bytes!("../../../assets/DejaVuSans.ttf"));
    });
}

/// A figure as data.
enum Figure {
    Chart(chart::Chart),
    Bars(bars::Bars),
}

impl Figure {
    fn size(&self) -> (u32, u32) {
        match self {
            Figure::Chart(c) => c.size,
            Figure::Bars(b) => b.size,
        }
    }

    fn render<DB: DrawingBackend>(&self, root: DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String> {
        let c = canvas::Canvas { area: &root };
        match self {
            Figure::Chart(ch) => chart::render(&c, ch)?,
            Figure::Bars(b) => bars::render(&c, b)?,
        }
        root.present().map_err(|e| e.to_string())
    }
}

/// Writes `<name>.png` and, unless `png_only`, `<name>.svg`.
fn save(dir: &Path, name: &str, fig: &Figure, png_only: bool) -> Result<(), String> {
    let png = dir.join(format!("{name}.png"));
    fig.render(BitMapBackend::new(&png, fig.size()).into_drawing_area()).map_err(|e| format!("{}: {e}", png.display()))?;
    if png_only {
        return Ok(());
    }
    let svg = dir.join(format!("{name}.svg"));
    fig.render(SVGBackend::new(&svg, fig.size()).into_drawing_area()).map_err(|e| format!("{}: {e}", svg.display()))
}

/// The runs a time-series figure draws: the first repeat that ran ok, per mode.
fn first_ok_runs(data: &RunData) -> Vec<&ModeRun> {
    data.manifest
        .mode_names()
        .into_iter()
        .filter_map(|m| data.manifest.modes.iter().filter(|r| r.mode == m && r.ok()).min_by_key(|r| r.repeat))
        .collect()
}

/// How many repeats the run has.
fn repeats(data: &RunData) -> usize {
    data.manifest.modes.iter().map(|r| r.repeat + 1).max().unwrap_or(0).max(data.manifest.repeats)
}

/// `repeat 1 of 3` for a time series drawn from some of the run's repeats (None with one repeat).
fn repeat_note(data: &RunData, runs: &[&ModeRun]) -> Option<String> {
    let n = repeats(data);
    if n <= 1 {
        return None;
    }
    let first = runs.first()?.repeat;
    Some(if runs.iter().all(|r| r.repeat == first) {
        format!("repeat {} of {n}", first + 1)
    } else {
        let each: Vec<String> = runs.iter().map(|r| format!("{} {}", r.mode, r.repeat + 1)).collect();
        format!("first repeat that ran ok, of {n}: {}", each.join(", "))
    })
}

/// How bars and saturation points were estimated over the repeats.
fn bars_note(data: &RunData) -> String {
    match repeats(data) {
        n if n >= crate::report::estimate::MIN_REPEATS_FOR_CI => {
            format!("bars: mean over {n} repeats; whiskers: its 95% interval (Student's t over the repeats' values)")
        }
        2 => "bars: mean over 2 repeats (intervals need --repeat 3 or more)".into(),
        _ => "one repeat: no interval (run with --repeat 3 or more for intervals)".into(),
    }
}

/// `title, repeat r of N`.
fn with_repeat(title: String, note: Option<String>) -> String {
    match note {
        Some(n) => format!("{title} ({n})"),
        None => title,
    }
}

/// Draws every figure the run's data supports into `dir`; returns their names.
pub fn draw_all(data: &RunData, stats: &[ModeStats], dir: &Path) -> Result<Vec<String>, String> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut figures: Vec<(String, Figure)> = vec![("fig09_throughput".into(), Figure::Chart(timeline::fig9(data)))];
    let iot = match data.manifest.workload.as_str() {
        "motion" => Some("11"),
        "parking" => Some("12"),
        _ => None,
    };
    if let Some(fig) = iot {
        let [latency, cpu] = timeline::iot(data, fig);
        figures.push((format!("fig{fig}a_latency"), Figure::Chart(latency)));
        figures.push((format!("fig{fig}b_cpu"), Figure::Chart(cpu)));
    } else {
        for run in first_ok_runs(data) {
            figures.push((format!("fig10_cdf_{}", run.mode), Figure::Chart(cdf::fig10(data, run))));
            figures.push((format!("fig10_latency_{}", run.mode), Figure::Chart(timeline::fig10_latency(data, run))));
            figures.push((format!("fig10_cpu_{}", run.mode), Figure::Chart(timeline::fig10_cpu(data, run))));
        }
    }
    if data.manifest.workload == "boutique" {
        if let Some(b) = audit::headline(data, stats) {
            figures.push(("headline".into(), Figure::Bars(b)));
        }
    }
    if data.manifest.has_sweep() {
        let [tput, p99] = sweep::charts(data, stats);
        figures.push(("sweep_throughput".into(), Figure::Chart(tput)));
        figures.push(("sweep_p99".into(), Figure::Chart(p99)));
    }
    for run in data.manifest.modes.iter().filter(|_| data.manifest.soak.is_some()) {
        if let Some(c) = soak::chart(data, run) {
            figures.push((format!("soak_{}", run.mode), Figure::Chart(c)));
        }
    }
    if data.manifest.load_kind == "chaos" {
        for (i, run) in data.manifest.modes.iter().enumerate() {
            if let Some(c) = chaos::chart(data, run, i) {
                figures.push((format!("chaos_{}", run.mode), Figure::Chart(c)));
            }
        }
    }
    if data.counters.iter().any(|c| c.source == "ebpf") {
        figures.push(("audit".into(), Figure::Bars(audit::audit(data, stats))));
    }
    // Reference runs are committed: PNG only keeps them small.
    for (name, fig) in &figures {
        save(dir, name, fig, data.manifest.reference)?;
    }
    Ok(figures.into_iter().map(|(n, _)| n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::RequestRecord;
    use crate::report::stats;
    use crate::results::{fixture, RequestRow};

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    }

    /// The fixture with 200 000 more requests: figures stay bounded, and the same bytes twice.
    #[test]
    fn large_runs_draw_bounded_and_deterministic_figures() {
        let mut data = fixture::run();
        let types = ["home", "product", "checkout", "view_cart"];
        // A deterministic spread: latencies 0.1 ms .. ~100 ms, one very slow request.
        data.requests.extend((0..200_000u64).map(|i| RequestRow {
            repeat: 0,
            mode: "s-spright".into(),
            phase: "measure".into(),
            r: RequestRecord {
                time_s: 10.0 + i as f64 * 10.0 / 200_000.0,
                request: types[(i % 4) as usize].into(),
                latency_us: if i == 123_457 { 2_000_000.0 } else { 100.0 + ((i * 7919) % 100_000) as f64 },
                status: 200,
            },
        }));
        let stats = stats::compute(&data);
        let base = std::env::temp_dir().join(format!("harness-figures-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        let names = draw_all(&data, &stats, &a).unwrap();
        assert!(names.contains(&"headline".to_string()) && names.contains(&"fig10_latency_s-spright".to_string()), "{names:?}");
        draw_all(&data, &stats, &b).unwrap();
        let (fa, fb) = (files(&a), files(&b));
        assert_eq!(fa.len(), 2 * names.len());
        for ((na, ba), (nb, bb)) in fa.iter().zip(&fb) {
            assert_eq!(na, nb);
            assert!(ba == bb, "{na} differs between two drawings of the same data");
        }
        let svg = String::from_utf8(std::fs::read(a.join("fig10_latency_s-spright.svg")).unwrap()).unwrap();
        let shapes = svg.matches("<circle").count() + svg.matches("<polygon").count();
        assert!(shapes < 7000, "{shapes} markers: the scatter plot is not bounded");
        assert!(svg.contains("2000"), "the slowest request (2 s) is still drawn, its tick labelled");
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// Every axis of every chart drawn from the fixture has at least three labelled ticks.
    #[test]
    fn every_axis_has_three_labelled_ticks() {
        register_font();
        let data = fixture::run();
        let mut charts = vec![timeline::fig9(&data)];
        for run in first_ok_runs(&data) {
            charts.extend([cdf::fig10(&data, run), timeline::fig10_latency(&data, run), timeline::fig10_cpu(&data, run)]);
        }
        charts.extend(timeline::iot(&data, "11"));
        for c in &charts {
            let (x, ys) = chart::resolved_axes(c);
            for a in std::iter::once(&x).chain(&ys) {
                let labels: Vec<&str> = a.ticks.iter().filter_map(|t| t.label.as_deref()).collect();
                assert!(labels.len() >= 3, "{}: {labels:?}", c.title);
                assert!(labels.iter().all(|l| !l.contains('e')), "{}: {labels:?}", c.title);
            }
        }
    }
}
