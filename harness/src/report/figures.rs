//! The paper's figures, as PNG and SVG, drawn with plotters from a run's
//! stored rows (fonts: the committed DejaVu Sans, no system font library).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::stats::{ModeStats, SweepPoint, GROUPS};
use crate::results::{ModeRun, RunData};

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        // The bytes are a valid TrueType font committed with the harness.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../../assets/DejaVuSans.ttf"));
    });
}

#[derive(Clone, Copy)]
enum Style {
    Line,
    Points,
}

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    style: Style,
}

/// A figure as data; [`render`] draws it on any backend.
struct Plot {
    title: String,
    x_desc: String,
    y_desc: String,
    y_log: bool,
    x_log: bool,
    series: Vec<Series>,
}

fn color(i: usize, name: &str) -> RGBColor {
    match name {
        "s-spright" | "gateway" => RGBColor(31, 119, 180),
        "d-spright" | "sidecar" => RGBColor(44, 160, 44),
        "e-spright" | "orchestrator" => RGBColor(148, 103, 189),
        "knative" | "function" => RGBColor(214, 39, 40),
        "grpc" | "load" => RGBColor(255, 127, 14),
        _ => {
            let c = Palette99::pick(i).to_rgba();
            RGBColor(c.0, c.1, c.2)
        }
    }
}

fn bounds(plot: &Plot) -> ((f64, f64), (f64, f64)) {
    let pts = plot.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts {
        if (plot.x_log && x <= 0.0) || (plot.y_log && y <= 0.0) {
            continue;
        }
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (1.0, 10.0, 1.0, 10.0);
    }
    let pad = |lo: f64, hi: f64, log: bool| {
        if log {
            (lo / 1.5, hi * 1.5)
        } else {
            let lo = if lo >= 0.0 { 0.0 } else { lo };
            (lo, if hi > lo { hi * 1.05 } else { lo + 1.0 })
        }
    };
    (pad(x0, x1, plot.x_log), pad(y0, y1, plot.y_log))
}

macro_rules! draw_on {
    ($chart:expr, $plot:expr) => {{
        let mut chart = $chart;
        chart
            .configure_mesh()
            .x_desc($plot.x_desc.as_str())
            .y_desc($plot.y_desc.as_str())
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in $plot.series.iter().enumerate() {
            let c = color(i, &s.name);
            let pts = s.points.iter().copied().filter(|&(x, y)| (!$plot.x_log || x > 0.0) && (!$plot.y_log || y > 0.0));
            let anno = match s.style {
                Style::Line => chart.draw_series(LineSeries::new(pts, c.stroke_width(2))).map_err(|e| e.to_string())?,
                Style::Points => chart.draw_series(pts.map(|p| Circle::new(p, 2, c.mix(0.6).filled()))).map_err(|e| e.to_string())?,
            };
            anno.label(s.name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(3)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }};
}

fn render<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, plot: &Plot) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let ((x0, x1), (y0, y1)) = bounds(plot);
    let mut b = ChartBuilder::on(&root);
    b.caption(plot.title.as_str(), ("sans-serif", 20)).margin(12).x_label_area_size(45).y_label_area_size(65);
    match (plot.x_log, plot.y_log) {
        (false, false) => draw_on!(b.build_cartesian_2d(x0..x1, y0..y1).map_err(|e| e.to_string())?, plot),
        (false, true) => draw_on!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(|e| e.to_string())?, plot),
        (true, false) => draw_on!(b.build_cartesian_2d((x0..x1).log_scale(), y0..y1).map_err(|e| e.to_string())?, plot),
        (true, true) => draw_on!(b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale()).map_err(|e| e.to_string())?, plot),
    }
    root.present().map_err(|e| e.to_string())
}

/// Draws `$draw(root, args...)` into `<name>.png` and `<name>.svg` (a macro:
/// the drawing functions are generic over the backend).
macro_rules! save_both {
    ($dir:expr, $name:expr, $draw:ident($($arg:expr),*)) => {{
        let png = $dir.join(format!("{}.png", $name));
        $draw(BitMapBackend::new(&png, (960, 600)).into_drawing_area(), $($arg),*).map_err(|e| format!("{}: {e}", png.display()))?;
        let svg = $dir.join(format!("{}.svg", $name));
        $draw(SVGBackend::new(&svg, (960, 600)).into_drawing_area(), $($arg),*).map_err(|e| format!("{}: {e}", svg.display()))
    }};
}

fn save(dir: &Path, name: &str, plot: &Plot) -> Result<(), String> {
    save_both!(dir, name, render(plot))
}

/// Seconds since the mode's load began (warm-up included).
fn load_start(run: &ModeRun, warmup: f64) -> f64 {
    run.measure_from_s - warmup
}

fn fig9_throughput(data: &RunData) -> Plot {
    let warmup = data.manifest.profile.warmup_s;
    let series = data
        .manifest
        .modes
        .iter()
        .filter(|r| r.ok())
        .map(|run| {
            let t0 = load_start(run, warmup);
            let mut bins: BTreeMap<i64, f64> = BTreeMap::new();
            for r in data.requests.iter().filter(|r| r.mode == run.mode) {
                *bins.entry((r.r.time_s - t0).floor() as i64).or_default() += 1.0;
            }
            Series { name: run.mode.clone(), points: bins.into_iter().map(|(t, n)| (t as f64, n)).collect(), style: Style::Line }
        })
        .collect();
    Plot {
        title: "Fig. 9 - requests per second over time".into(),
        x_desc: "seconds since the load started (warm-up included)".into(),
        y_desc: "requests / s".into(),
        y_log: false,
        x_log: false,
        series,
    }
}

fn fig10_cdf(data: &RunData, run: &ModeRun) -> Plot {
    let mut by_type: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in data.requests.iter().filter(|r| r.mode == run.mode && r.phase == "measure") {
        by_type.entry(&r.r.request).or_default().push(r.r.latency_us / 1e3);
    }
    // Sorted by chain id, as the paper's legend.
    let mut by_type: Vec<_> = by_type.into_iter().collect();
    by_type.sort_by_key(|(ty, _)| super::stats::chain_label(ty));
    let series = by_type
        .into_iter()
        .map(|(ty, mut v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len() as f64;
            // At most ~400 points per curve, always keeping the tail.
            let step = (v.len() / 400).max(1);
            let mut points: Vec<(f64, f64)> = v.iter().enumerate().step_by(step).map(|(i, &x)| (x, (i + 1) as f64 / n)).collect();
            if let Some(&last) = v.last() {
                points.push((last, 1.0));
            }
            Series { name: super::stats::chain_label(ty), points, style: Style::Line }
        })
        .collect();
    Plot {
        title: format!("Fig. 10 - latency CDF per request type, {}", run.label),
        x_desc: "latency (ms, log)".into(),
        y_desc: "fraction of requests".into(),
        y_log: false,
        x_log: true,
        series,
    }
}

fn fig10_latency_over_time(data: &RunData, run: &ModeRun) -> Plot {
    let t0 = load_start(run, data.manifest.profile.warmup_s);
    let mut by_type: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for r in data.requests.iter().filter(|r| r.mode == run.mode) {
        by_type.entry(&r.r.request).or_default().push((r.r.time_s - t0, r.r.latency_us / 1e3));
    }
    Plot {
        title: format!("Fig. 10 - latency of each request over time, {}", run.label),
        x_desc: "seconds since the load started".into(),
        y_desc: "latency (ms, log)".into(),
        y_log: true,
        x_log: false,
        series: by_type.into_iter().map(|(ty, points)| Series { name: ty.to_string(), points, style: Style::Points }).collect(),
    }
}

fn fig10_cpu_over_time(data: &RunData, run: &ModeRun) -> Plot {
    let t0 = load_start(run, data.manifest.profile.warmup_s);
    // Samples of one tick share a timestamp; sum them per group.
    let mut by_group: BTreeMap<&str, BTreeMap<i64, f64>> = BTreeMap::new();
    for c in data.cpu.iter().filter(|c| c.mode == run.mode) {
        *by_group.entry(&c.s.group).or_default().entry((c.s.time_s * 1000.0).round() as i64).or_default() += c.s.cores();
    }
    let series = GROUPS
        .iter()
        .filter_map(|g| {
            let pts = by_group.remove(g)?;
            Some(Series {
                name: g.to_string(),
                points: pts.into_iter().map(|(t, c)| (t as f64 / 1000.0 - t0, c)).collect(),
                style: Style::Line,
            })
        })
        .collect();
    Plot {
        title: format!("Fig. 10 - CPU per component group, {}", run.label),
        x_desc: "seconds since the load started (negative: idle)".into(),
        y_desc: "CPU (cores)".into(),
        y_log: false,
        x_log: false,
        series,
    }
}

/// The overhead audit as grouped bars: per request, for each mode, copies,
/// context switches and protocol-stack passes (both legs).
fn audit_bars<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, stats: &[ModeStats]) -> Result<(), String> {
    use super::summary::{CHAIN, COPIES, EXTERNAL, STACK, SWITCHES};
    let stats: Vec<&ModeStats> = stats.iter().filter(|s| s.requests > 0 && s.has_source("ebpf")).collect();
    let legs: Vec<&str> = EXTERNAL.iter().chain(CHAIN).copied().collect();
    let metrics = [
        ("copies", "ebpf", COPIES),
        ("context switches", "ebpf", SWITCHES),
        ("stack passes", "ebpf", STACK),
        ("serializations", "runtime", &["serializations"][..]),
        ("deserializations", "runtime", &["deserializations"][..]),
    ];
    let values: Vec<Vec<f64>> =
        stats.iter().map(|s| metrics.iter().map(|(_, source, names)| s.source_per_request(source, &legs, names)).collect()).collect();
    let ymax = values.iter().flatten().fold(1.0f64, |a, &b| a.max(b)) * 1.15;
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Overhead audit - per request, both legs (eBPF; runtime counters)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0f64..metrics.len() as f64, 0f64..ymax)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(metrics.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 && i < metrics.len() {
                metrics[i].0.to_string()
            } else {
                String::new()
            }
        })
        .y_desc("events per request")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / stats.len().max(1) as f64;
    for (k, s) in stats.iter().enumerate() {
        let c = color(k, &s.mode);
        let bars = (0..metrics.len()).map(|m| {
            let x0 = m as f64 + 0.1 + k as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.9, values[k][m])], c.filled())
        });
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(s.mode.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Fig. 11/12: every mode's latency, and CPU of the system under test,
/// over time since its load began.
fn iot_plots(data: &RunData, fig: &str) -> [Plot; 2] {
    let mut latency = Vec::new();
    let mut cpu = Vec::new();
    for run in data.manifest.modes.iter().filter(|r| r.ok()) {
        let t0 = run.measure_from_s;
        let points = data.requests.iter().filter(|r| r.mode == run.mode).map(|r| (r.r.time_s - t0, r.r.latency_us / 1e3)).collect();
        latency.push(Series { name: run.mode.clone(), points, style: Style::Points });
        let mut by_tick: BTreeMap<i64, f64> = BTreeMap::new();
        for c in data.cpu.iter().filter(|c| c.mode == run.mode && c.s.group != "load") {
            *by_tick.entry((c.s.time_s * 1000.0).round() as i64).or_default() += c.s.cores();
        }
        cpu.push(Series {
            name: run.mode.clone(),
            points: by_tick.into_iter().map(|(t, c)| (t as f64 / 1000.0 - t0, c)).collect(),
            style: Style::Line,
        });
    }
    [
        Plot {
            title: format!("Fig. {fig}a - {} latency over time", data.manifest.workload),
            x_desc: "seconds since the load began".into(),
            y_desc: "latency (ms, log)".into(),
            y_log: true,
            x_log: false,
            series: latency,
        },
        Plot {
            title: format!("Fig. {fig}b - {} CPU of the system under test over time", data.manifest.workload),
            x_desc: "seconds since the load began (negative: idle)".into(),
            y_desc: "CPU (cores)".into(),
            y_log: false,
            x_log: false,
            series: cpu,
        },
    ]
}

/// The sweep: achieved requests/s, and p99, against the offered rate.
fn sweep_plots(points: &[SweepPoint]) -> [Plot; 2] {
    let mut tput: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut p99: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for p in points {
        tput.entry(&p.mode).or_default().push((p.offered, p.achieved_rps));
        p99.entry(&p.mode).or_default().push((p.offered, p.p99_ms));
    }
    let series = |m: BTreeMap<&str, Vec<(f64, f64)>>| {
        m.into_iter().map(|(mode, points)| Series { name: mode.to_string(), points, style: Style::Line }).collect()
    };
    [
        Plot {
            title: "Open-loop sweep - throughput".into(),
            x_desc: "offered load (Online Boutique tasks / s)".into(),
            y_desc: "achieved requests / s".into(),
            y_log: false,
            x_log: false,
            series: series(tput),
        },
        Plot {
            title: "Open-loop sweep - p99 latency".into(),
            x_desc: "offered load (Online Boutique tasks / s)".into(),
            y_desc: "p99 latency (ms, log)".into(),
            y_log: true,
            x_log: false,
            series: series(p99),
        },
    ]
}

/// Draws every figure the run's data supports into `dir`.
pub fn draw_all(data: &RunData, stats: &[ModeStats], sweep: &[SweepPoint], dir: &Path) -> Result<Vec<String>, String> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = vec!["fig09_throughput".to_string()];
    save(dir, &names[0], &fig9_throughput(data))?;
    let fig = match data.manifest.workload.as_str() {
        "motion" => Some("11"),
        "parking" => Some("12"),
        _ => None,
    };
    if let Some(fig) = fig {
        let [latency, cpu] = iot_plots(data, fig);
        for (name, plot) in [(format!("fig{fig}a_latency"), latency), (format!("fig{fig}b_cpu"), cpu)] {
            save(dir, &name, &plot)?;
            names.push(name);
        }
    }
    for run in data.manifest.modes.iter().filter(|r| r.ok() && fig.is_none()) {
        for (name, plot) in [
            (format!("fig10_cdf_{}", run.mode), fig10_cdf(data, run)),
            (format!("fig10_latency_{}", run.mode), fig10_latency_over_time(data, run)),
            (format!("fig10_cpu_{}", run.mode), fig10_cpu_over_time(data, run)),
        ] {
            save(dir, &name, &plot)?;
            names.push(name);
        }
    }
    if data.manifest.load_kind == "sweep" {
        let [tput, p99] = sweep_plots(sweep);
        save(dir, "sweep_throughput", &tput)?;
        save(dir, "sweep_p99", &p99)?;
        names.extend(["sweep_throughput".to_string(), "sweep_p99".to_string()]);
    }
    if data.counters.iter().any(|c| c.source == "ebpf") {
        save_both!(dir, "audit", audit_bars(stats))?;
        names.push("audit".into());
    }
    Ok(names)
}
