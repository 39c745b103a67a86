//! Line and scatter charts as data, and their drawing: one or more panels
//! stacked on a shared x axis, shaded time windows, reference lines, means
//! with whiskers, the legend in a column to the right.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axes::{self, Axis, AxisSpec};
use super::canvas::{text_size, wrap, Canvas, Rect};
use super::legend::{Entry, Legend, Swatch};
use super::style::{self, Stroke, Style};
use crate::report::estimate::Estimate;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Points joined by a line, with markers on some of them.
    Line,
    /// Markers only.
    Scatter,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub style: Style,
    pub kind: Kind,
    pub points: Vec<(f64, f64)>,
    /// Listed in the legend (a mode's second series, e.g. its single probes, is not).
    pub legend: bool,
    /// Shifted right by this many pixels, so series sharing x values stay apart.
    pub dodge: f64,
    /// Marker radius in pixels.
    pub marker: f64,
}

impl Series {
    pub fn line(label: impl Into<String>, style: Style, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), style, kind: Kind::Line, points, legend: true, dodge: 0.0, marker: 4.5 }
    }

    pub fn scatter(label: impl Into<String>, style: Style, points: Vec<(f64, f64)>) -> Self {
        Self { label: label.into(), style, kind: Kind::Scatter, points, legend: true, dodge: 0.0, marker: 3.0 }
    }
}

/// A mean with whiskers for its 95% interval, on either axis.
#[derive(Clone, Debug)]
pub struct Whiskered {
    pub style: Style,
    pub x: Estimate,
    pub y: Estimate,
    /// Written next to the point (e.g. `>=` for a lower bound).
    pub note: Option<String>,
    pub dodge: f64,
}

/// A horizontal reference line.
#[derive(Clone, Debug)]
pub struct HLine {
    pub label: String,
    pub y: f64,
    /// Listed in the legend too (its label is always written on the line).
    pub legend: bool,
}

/// A shaded window of the x axis (a phase), in every panel.
#[derive(Clone, Debug)]
pub struct Band {
    pub label: String,
    pub from: f64,
    pub to: f64,
    pub color: RGBColor,
}

#[derive(Clone, Debug)]
pub struct Panel {
    pub title: Option<String>,
    pub y: AxisSpec,
    pub series: Vec<Series>,
    pub whiskered: Vec<Whiskered>,
    pub hlines: Vec<HLine>,
    /// When one series' peak is more than [`DOMINANT`] times the next one's,
    /// draw it in a panel of its own above the others.
    pub split_dominant: bool,
    /// Share of the height, against the other panels' (1 each by default).
    pub weight: f64,
}

impl Panel {
    pub fn new(y: AxisSpec, series: Vec<Series>) -> Self {
        Self { title: None, y, series, whiskered: Vec::new(), hlines: Vec::new(), split_dominant: false, weight: 1.0 }
    }
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    /// Lines under the title: what is drawn, which repeat, how it was sampled.
    pub notes: Vec<String>,
    pub x: AxisSpec,
    pub panels: Vec<Panel>,
    pub bands: Vec<Band>,
    /// Its title, and entries after the series' own.
    pub legend: Legend,
    /// The legend's text for means with whiskers.
    pub whisker_label: String,
    pub size: (u32, u32),
}

impl Chart {
    pub fn new(title: impl Into<String>, x: AxisSpec, panels: Vec<Panel>) -> Self {
        Self {
            title: title.into(),
            notes: Vec::new(),
            x,
            panels,
            bands: Vec::new(),
            legend: Legend::default(),
            whisker_label: "mean, 95% interval".into(),
            size: (1000, 620),
        }
    }
}

/// How much larger a series' peak must be than the next one's to get a panel of its own.
pub const DOMINANT: f64 = 5.0;

/// A panel as drawn: the chart's panels after splitting off dominant series.
struct View<'a> {
    title: Option<String>,
    weight: f64,
    y: &'a AxisSpec,
    series: Vec<&'a Series>,
    whiskered: Vec<&'a Whiskered>,
    hlines: Vec<&'a HLine>,
}

fn peak(s: &Series) -> f64 {
    s.points.iter().map(|p| p.1).filter(|v| v.is_finite()).fold(0.0, f64::max)
}

/// The series to move into a panel of their own, if one or more dwarf the rest.
pub fn dominant(series: &[Series]) -> Option<(Vec<usize>, f64)> {
    let mut order: Vec<usize> = (0..series.len()).collect();
    order.sort_by(|&a, &b| peak(&series[b]).total_cmp(&peak(&series[a])).then(a.cmp(&b)));
    (0..order.len().saturating_sub(1)).find_map(|i| {
        let (big, next) = (peak(&series[order[i]]), peak(&series[order[i + 1]]));
        (next > 0.0 && big > DOMINANT * next).then(|| {
            let mut top = order[..=i].to_vec();
            top.sort();
            (top, big / next)
        })
    })
}

fn views(chart: &Chart) -> Vec<View<'_>> {
    let mut out = Vec::new();
    for p in &chart.panels {
        let all = View {
            title: p.title.clone(),
            weight: p.weight,
            y: &p.y,
            series: p.series.iter().collect(),
            whiskered: p.whiskered.iter().collect(),
            hlines: p.hlines.iter().collect(),
        };
        let split = if p.split_dominant { dominant(&p.series) } else { None };
        let Some((top, ratio)) = split else {
            out.push(all);
            continue;
        };
        let names = |keep: bool| -> Vec<&str> {
            p.series.iter().enumerate().filter(|(i, _)| top.contains(i) == keep).map(|(_, s)| s.label.as_str()).collect()
        };
        let (big, rest) = (names(true), names(false));
        let prefix = p.title.as_ref().map_or(String::new(), |t| format!("{t}: "));
        out.push(View {
            title: Some(format!("{prefix}{} on a scale of its own (peak {ratio:.0}x the others' highest)", big.join(", "))),
            weight: p.weight,
            y: &p.y,
            series: p.series.iter().enumerate().filter(|(i, _)| top.contains(i)).map(|(_, s)| s).collect(),
            whiskered: Vec::new(),
            hlines: Vec::new(),
        });
        out.push(View {
            title: Some(format!("{prefix}{} (scale below)", rest.join(", "))),
            weight: p.weight,
            y: &p.y,
            series: p.series.iter().enumerate().filter(|(i, _)| !top.contains(i)).map(|(_, s)| s).collect(),
            whiskered: p.whiskered.iter().collect(),
            hlines: p.hlines.iter().collect(),
        });
    }
    out
}

fn legend(chart: &Chart, ax: &Axis) -> Legend {
    let mut l = Legend { title: chart.legend.title.clone(), entries: Vec::new() };
    for s in chart.panels.iter().flat_map(|p| &p.series).filter(|s| s.legend) {
        let swatch = match s.kind {
            Kind::Line => Swatch::Line(s.style),
            Kind::Scatter => Swatch::Marker(s.style),
        };
        l.push(Entry::new(swatch, s.label.clone()));
    }
    for b in chart.bands.iter().filter(|b| b.from.max(ax.lo) < b.to.min(ax.hi)) {
        l.push(Entry::new(Swatch::Band(b.color), b.label.clone()));
    }
    for h in chart.panels.iter().flat_map(|p| &p.hlines).filter(|h| h.legend) {
        l.push(Entry::new(Swatch::Reference(Stroke::Dashed), h.label.clone()));
    }
    if chart.panels.iter().any(|p| !p.whiskered.is_empty()) {
        let horizontal = chart.panels.iter().flat_map(|p| &p.whiskered).any(|w| w.x.ci.is_some() || w.y.ci.is_none());
        l.push(Entry::new(Swatch::Whiskers { horizontal }, chart.whisker_label.clone()));
    }
    for e in &chart.legend.entries {
        l.push(e.clone());
    }
    l
}

fn estimate_values(e: &Estimate) -> impl Iterator<Item = f64> {
    let (lo, hi) = e.ci.unwrap_or((e.mean, e.mean));
    [e.mean, lo, hi].into_iter()
}

fn x_axis(chart: &Chart) -> Axis {
    let xs = chart.panels.iter().flat_map(|p| {
        p.series.iter().flat_map(|s| s.points.iter().map(|q| q.0)).chain(p.whiskered.iter().flat_map(|w| estimate_values(&w.x)))
    });
    axes::resolve(&chart.x, axes::extent(xs, chart.x.scale))
}

fn y_axis(v: &View) -> Axis {
    let ys = v
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|q| q.1))
        .chain(v.whiskered.iter().flat_map(|w| estimate_values(&w.y)))
        .chain(v.hlines.iter().map(|h| h.y));
    axes::resolve(v.y, axes::extent(ys, v.y.scale))
}

const TICK: f64 = 13.0;
const DESC: f64 = 14.0;

/// Tick labels along an axis: major ticks first, others where they fit.
fn place_labels(ticks: &[(f64, &str, bool)], extent: impl Fn(&str) -> f64) -> Vec<usize> {
    let mut taken: Vec<(f64, f64)> = Vec::new();
    let mut keep = Vec::new();
    for pass in [true, false] {
        for (i, (pos, label, major)) in ticks.iter().enumerate() {
            if *major != pass {
                continue;
            }
            let half = extent(label) / 2.0 + 3.0;
            if taken.iter().all(|&(a, b)| pos + half < a || pos - half > b) {
                taken.push((pos - half, pos + half));
                keep.push(i);
            }
        }
    }
    keep.sort();
    keep
}

/// Title and notes, centred; returns the y below them.
pub fn header<DB: DrawingBackend>(c: &Canvas<DB>, title: &str, notes: &[String], w: f64) -> Result<f64, String> {
    let mut y = 10.0;
    for line in wrap(title, 20.0, w - 40.0) {
        c.text(&line, (w / 2.0, y), 20.0, style::TEXT, (HPos::Center, VPos::Top), false)?;
        y += 25.0;
    }
    for note in notes {
        for line in wrap(note, 13.0, w - 60.0) {
            c.text(&line, (w / 2.0, y), 13.0, style::NOTE, (HPos::Center, VPos::Top), false)?;
            y += 17.0;
        }
    }
    Ok(y + 8.0)
}

/// Draws y ticks, grid lines and labels of `ay` on `r`.
pub fn y_ticks<DB: DrawingBackend>(c: &Canvas<DB>, r: &Rect, ay: &Axis) -> Result<(), String> {
    let fy = |v: f64| r.y1 - ay.frac(v) * r.height();
    for t in &ay.ticks {
        let y = fy(t.value);
        let color = if t.label.is_some() { style::GRID_MAJOR } else { style::GRID_MINOR };
        c.line(&[(r.x0, y), (r.x1, y)], color, 1, Stroke::Solid, &Rect { y0: r.y0 - 1.0, y1: r.y1 + 1.0, ..*r })?;
    }
    let labelled: Vec<(f64, &str, bool)> = ay.ticks.iter().filter_map(|t| t.label.as_deref().map(|l| (fy(t.value), l, t.major))).collect();
    for i in place_labels(&labelled, |_| TICK) {
        let (y, label, _) = labelled[i];
        c.line(&[(r.x0 - 5.0, y), (r.x0, y)], style::AXIS, 1, Stroke::Solid, &Rect { x0: r.x0 - 6.0, ..*r })?;
        c.text(label, (r.x0 - 8.0, y), TICK, style::TEXT, (HPos::Right, VPos::Center), false)?;
    }
    Ok(())
}

/// The widest tick label of `a`.
pub fn label_width(a: &Axis) -> f64 {
    a.ticks.iter().filter_map(|t| t.label.as_deref()).map(|l| text_size(l, TICK).0).fold(0.0, f64::max)
}

/// An axis description rotated along the left of `r`, at `x`.
pub fn y_desc<DB: DrawingBackend>(c: &Canvas<DB>, desc: &str, x: f64, r: &Rect) -> Result<(), String> {
    if desc.is_empty() {
        return Ok(());
    }
    let w = text_size(desc, DESC).0;
    let size = if w > r.height() { (DESC * r.height() / w).max(9.0) } else { DESC };
    c.text(desc, (x, (r.y0 + r.y1) / 2.0), size, style::TEXT, (HPos::Center, VPos::Center), true)
}

pub fn render<DB: DrawingBackend>(c: &Canvas<DB>, chart: &Chart) -> Result<(), String> {
    let (w, h) = (chart.size.0 as f64, chart.size.1 as f64);
    c.fill(WHITE)?;
    let top = header(c, &chart.title, &chart.notes, w)?;
    let ax = x_axis(chart);
    let legend = legend(chart, &ax);
    let lw = legend.width();
    let right = if lw > 0.0 { w - lw - 36.0 } else { w - 24.0 };
    let views = views(chart);
    let ays: Vec<Axis> = views.iter().map(y_axis).collect();
    let ylw = ays.iter().map(label_width).fold(0.0, f64::max);
    let left = 14.0 + 20.0 + 10.0 + ylw + 10.0;
    let bottom = h - 14.0 - 20.0 - 8.0 - 18.0;
    let titled = |v: &View| if v.title.is_some() { 22.0 } else { 0.0 };
    let gaps = 14.0 * (views.len().saturating_sub(1)) as f64 + views.iter().map(titled).sum::<f64>();
    let weights: f64 = views.iter().map(|v| v.weight).sum::<f64>().max(f64::MIN_POSITIVE);
    let mut y = top;
    for (i, (v, ay)) in views.iter().zip(&ays).enumerate() {
        let ph = ((bottom - top - gaps) * v.weight / weights).max(40.0);
        y += titled(v);
        let r = Rect { x0: left, y0: y, x1: right, y1: y + ph };
        panel(c, chart, v, &ax, ay, &r, i == 0, i + 1 == views.len())?;
        y += ph + 14.0;
    }
    c.text(&chart.x.desc, ((left + right) / 2.0, h - 12.0), DESC, style::TEXT, (HPos::Center, VPos::Bottom), false)?;
    legend.draw(c, right + 22.0, top)
}

#[allow(clippy::too_many_arguments)]
fn panel<DB: DrawingBackend>(
    c: &Canvas<DB>,
    chart: &Chart,
    v: &View,
    ax: &Axis,
    ay: &Axis,
    r: &Rect,
    first: bool,
    last: bool,
) -> Result<(), String> {
    let fx = |x: f64| r.x0 + ax.frac(x) * r.width();
    let fy = |y: f64| r.y1 - ay.frac(y) * r.height();
    let ok = |(x, y): (f64, f64)| ax.accepts(x) && ay.accepts(y);
    let shown = |b: &Band| {
        let (a, z) = (b.from.max(ax.lo), b.to.min(ax.hi));
        (z > a && ax.accepts(a)).then_some((fx(a), fx(z)))
    };
    for b in &chart.bands {
        if let Some((a, z)) = shown(b) {
            c.rect(&Rect { x0: a, x1: z, ..*r }, b.color, true)?;
        }
    }
    // Grid.
    for t in &ax.ticks {
        let color = if t.label.is_some() { style::GRID_MAJOR } else { style::GRID_MINOR };
        c.line(&[(fx(t.value), r.y0), (fx(t.value), r.y1)], color, 1, Stroke::Solid, &Rect { x0: r.x0 - 1.0, x1: r.x1 + 1.0, ..*r })?;
    }
    y_ticks(c, r, ay)?;
    for b in chart.bands.iter().filter(|_| first) {
        if let Some((a, z)) = shown(b).filter(|(a, z)| z - a > text_size(&b.label, 12.0).0 + 6.0) {
            c.text(&b.label, ((a + z) / 2.0, r.y0 + 4.0), 12.0, style::NOTE, (HPos::Center, VPos::Top), false)?;
        }
    }
    for hl in &v.hlines {
        if ay.accepts(hl.y) {
            let y = fy(hl.y);
            c.line(&[(r.x0, y), (r.x1, y)], style::REFERENCE, if hl.legend { 2 } else { 1 }, Stroke::Dashed, r)?;
            c.text(&hl.label, (r.x1 - 4.0, y - 3.0), 12.0, style::NOTE, (HPos::Right, VPos::Bottom), false)?;
        }
    }
    let map =
        |s: &Series| -> Vec<(f64, f64)> { s.points.iter().copied().filter(|&p| ok(p)).map(|(x, y)| (fx(x) + s.dodge, fy(y))).collect() };
    let clip = Rect { x0: r.x0 - 1.0, y0: r.y0 - 1.0, x1: r.x1 + 1.0, y1: r.y1 + 1.0 };
    for s in v.series.iter().filter(|s| s.kind == Kind::Line) {
        c.line(&map(s), s.style.color, 2, s.style.dash, &clip)?;
    }
    for s in v.series.iter().filter(|s| s.kind == Kind::Scatter) {
        for p in map(s).into_iter().filter(|&p| r.contains(p, 1.0)) {
            c.marker(&s.style, p, s.marker)?;
        }
    }
    // Markers on lines: all of them when few, else an evenly spaced subset,
    // shifted per series so that markers of overlapping lines do not coincide.
    let lines: Vec<&&Series> = v.series.iter().filter(|s| s.kind == Kind::Line).collect();
    for (k, s) in lines.iter().enumerate().filter(|(_, s)| s.marker > 0.0) {
        let pts = map(s);
        let n = pts.len();
        let picks: Vec<usize> = if n <= 40 {
            (0..n).collect()
        } else {
            let m = 24.0;
            let phase = (k as f64 + 1.0) / (lines.len() as f64 + 1.0);
            (0..24).map(|j| (((j as f64 + phase) * n as f64 / m) as usize).min(n - 1)).collect()
        };
        for i in picks {
            if r.contains(pts[i], 1.0) {
                c.marker(&s.style, pts[i], s.marker)?;
            }
        }
    }
    for wk in &v.whiskered {
        whiskered(c, wk, ax, ay, r)?;
    }
    c.rect(r, style::AXIS, false)?;
    // x ticks on every panel, labels under the last.
    let labelled: Vec<(f64, &str, bool)> = ax.ticks.iter().filter_map(|t| t.label.as_deref().map(|l| (fx(t.value), l, t.major))).collect();
    for i in place_labels(&labelled, |l| text_size(l, TICK).0) {
        let (x, label, _) = labelled[i];
        c.line(&[(x, r.y1), (x, r.y1 + 5.0)], style::AXIS, 1, Stroke::Solid, &Rect { y1: r.y1 + 6.0, ..*r })?;
        if last {
            c.text(label, (x, r.y1 + 8.0), TICK, style::TEXT, (HPos::Center, VPos::Top), false)?;
        }
    }
    if let Some(t) = &v.title {
        c.text(t, (r.x0, r.y0 - 5.0), 14.0, style::TEXT, (HPos::Left, VPos::Bottom), false)?;
    }
    y_desc(c, &v.y.desc, 24.0, r)
}

fn whiskered<DB: DrawingBackend>(c: &Canvas<DB>, w: &Whiskered, ax: &Axis, ay: &Axis, r: &Rect) -> Result<(), String> {
    let cx = |v: f64| if ax.accepts(v) { v.clamp(ax.lo, ax.hi) } else { ax.lo };
    let cy = |v: f64| if ay.accepts(v) { v.clamp(ay.lo, ay.hi) } else { ay.lo };
    let fx = |x: f64| r.x0 + ax.frac(cx(x)) * r.width() + w.dodge;
    let fy = |y: f64| r.y1 - ay.frac(cy(y)) * r.height();
    let (x, y) = (fx(w.x.mean), fy(w.y.mean));
    if let Some((lo, hi)) = w.x.ci {
        c.whisker((fx(lo), y), (fx(hi), y), false, 10.0, w.style.color)?;
    }
    if let Some((lo, hi)) = w.y.ci {
        c.whisker((x, fy(lo)), (x, fy(hi)), true, 10.0, w.style.color)?;
    }
    c.shape(w.style.marker, true, BLACK, (x, y), 8.5)?;
    c.marker(&w.style, (x, y), 6.5)?;
    if let Some(note) = &w.note {
        // Right of the point and its whisker, or left of them where it would not fit.
        let (start, end) = w.x.ci.map_or((x, x), |(lo, hi)| (fx(lo).min(x), fx(hi).max(x)));
        let tw = text_size(note, 13.0).0;
        if end + 12.0 + tw <= r.x1 {
            c.text(note, (end + 12.0, y), 13.0, style::TEXT, (HPos::Left, VPos::Center), false)?;
        } else if start - 12.0 - tw >= r.x0 {
            c.text(note, (start - 12.0, y), 13.0, style::TEXT, (HPos::Right, VPos::Center), false)?;
        } else {
            c.text(note, (x + 12.0, y - 3.0), 13.0, style::TEXT, (HPos::Left, VPos::Bottom), false)?;
        }
    }
    Ok(())
}

/// The x axis and the drawn panels' y axes, as resolved from the data (for tests).
#[cfg(test)]
pub fn resolved_axes(chart: &Chart) -> (Axis, Vec<Axis>) {
    (x_axis(chart), views(chart).iter().map(y_axis).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::figures::style;

    #[test]
    fn a_series_that_dwarfs_the_rest_gets_its_own_panel() {
        let s = |name: &str, peak: f64| Series::line(name, style::mode(name, 0), vec![(0.0, 0.0), (1.0, peak)]);
        let series = vec![s("s-spright", 0.1), s("d-spright", 1.0), s("e-spright", 0.15)];
        assert_eq!(dominant(&series).map(|d| d.0), Some(vec![1]));
        assert_eq!(dominant(&series[..1]), None);
        assert_eq!(dominant(&[s("a", 0.5), s("b", 0.2)]), None);
        assert_eq!(dominant(&[s("a", 0.5), s("b", 0.0)]), None, "nothing to compare with");
        let mut chart = Chart::new(
            "t",
            AxisSpec::linear("time (s)"),
            vec![Panel { split_dominant: true, ..Panel::new(AxisSpec::linear("CPU (cores)"), series) }],
        );
        chart.size = (800, 600);
        assert_eq!(views(&chart).len(), 2);
        assert!(views(&chart)[0].title.as_deref().unwrap().starts_with("d-spright on a scale of its own"));
        let (_, ys) = resolved_axes(&chart);
        assert!(ys[0].hi >= 1.0 && ys[1].hi < 0.5);
    }
}
