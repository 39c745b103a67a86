//! Bar charts as data, and their drawing: panels in rows, each with its own
//! scale; per category one bar per series (mean, whiskers for the 95%
//! interval), the series' marker under its bar, the value over it.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::axes::{self, significant, AxisSpec};
use super::canvas::{text_size, Canvas, Rect};
use super::chart::{header, label_width, y_desc, y_ticks};
use super::legend::{Entry, Legend, Swatch};
use super::style::{self, Style};
use crate::report::estimate::Estimate;

#[derive(Clone, Debug)]
pub struct BarSeries {
    pub label: String,
    pub style: Style,
    /// One per category; None where the series has no value.
    pub values: Vec<Option<Estimate>>,
}

#[derive(Clone, Debug)]
pub struct BarPanel {
    pub title: String,
    pub y: AxisSpec,
    /// Category names under the groups of bars (one empty name: no label).
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    /// Share of its row's width.
    pub weight: f64,
}

#[derive(Clone, Debug)]
pub struct Bars {
    pub title: String,
    pub notes: Vec<String>,
    pub rows: Vec<Vec<BarPanel>>,
    /// Its title, and entries after the series' own.
    pub legend: Legend,
    pub size: (u32, u32),
}

const VALUE: f64 = 11.0;

fn legend(b: &Bars) -> Legend {
    let mut l = Legend { title: b.legend.title.clone(), entries: Vec::new() };
    for s in b.rows.iter().flatten().flat_map(|p| &p.series) {
        l.push(Entry::new(Swatch::Bar(s.style), s.label.clone()));
    }
    if b.rows.iter().flatten().flat_map(|p| &p.series).flat_map(|s| &s.values).any(|v| v.is_some_and(|e| e.ci.is_some())) {
        l.push(Entry::new(Swatch::Whiskers { horizontal: false }, "95% interval over the repeats"));
    }
    for e in &b.legend.entries {
        l.push(e.clone());
    }
    l
}

pub fn render<DB: DrawingBackend>(c: &Canvas<DB>, b: &Bars) -> Result<(), String> {
    let (w, h) = (b.size.0 as f64, b.size.1 as f64);
    c.fill(WHITE)?;
    let top = header(c, &b.title, &b.notes, w)?;
    let legend = legend(b);
    let right = w - legend.width() - 30.0;
    let row_h = (h - top - 10.0) / b.rows.len().max(1) as f64;
    for (i, row) in b.rows.iter().enumerate() {
        let total: f64 = row.iter().map(|p| p.weight).sum::<f64>().max(f64::MIN_POSITIVE);
        let mut x = 10.0;
        for p in row {
            let cw = (right - 10.0) * p.weight / total;
            let y0 = top + i as f64 * row_h;
            panel(c, p, &Rect { x0: x, y0, x1: x + cw, y1: y0 + row_h })?;
            x += cw;
        }
    }
    legend.draw(c, right + 16.0, top)
}

fn panel<DB: DrawingBackend>(c: &Canvas<DB>, p: &BarPanel, cell: &Rect) -> Result<(), String> {
    let values = || p.series.iter().flat_map(|s| s.values.iter().flatten());
    let high = values().map(|e| e.ci.map_or(e.mean, |(_, hi)| hi.max(e.mean))).fold(0.0, f64::max);
    // Head room for the values written over the bars.
    let ay = axes::resolve(&p.y, axes::extent([0.0, high * 1.2].into_iter(), p.y.scale));
    let left = cell.x0 + 20.0 + 10.0 + label_width(&ay) + 12.0;
    let labels = p.categories.iter().any(|c| !c.is_empty());
    let r = Rect { x0: left, y0: cell.y0 + 26.0, x1: cell.x1 - 12.0, y1: cell.y1 - if labels { 46.0 } else { 28.0 } };
    let fy = |v: f64| r.y1 - ay.frac(v.clamp(ay.lo, ay.hi)) * r.height();
    y_ticks(c, &r, &ay)?;
    let n = p.categories.len().max(1) as f64;
    let k = p.series.len().max(1) as f64;
    let group = r.width() / n;
    let slot = group * 0.84 / k;
    for (ci, cat) in p.categories.iter().enumerate() {
        let gx = r.x0 + ci as f64 * group + group * 0.08;
        for (si, s) in p.series.iter().enumerate() {
            let (x0, x1) = (gx + si as f64 * slot + slot * 0.08, gx + (si + 1) as f64 * slot - slot * 0.08);
            let mid = (x0 + x1) / 2.0;
            c.marker(&s.style, (mid, r.y1 + 10.0), (slot * 0.3).clamp(2.5, 4.5))?;
            let Some(e) = s.values.get(ci).copied().flatten() else {
                c.text("n/a", (mid, r.y1 - 3.0), 10.0, style::NOTE, (HPos::Left, VPos::Center), true)?;
                continue;
            };
            c.rect(&Rect { x0, y0: fy(e.mean), x1, y1: fy(0.0) }, s.style.color, true)?;
            let mut top = fy(e.mean);
            if let Some((lo, hi)) = e.ci {
                c.whisker((mid, fy(lo)), (mid, fy(hi)), true, (slot * 0.5).min(12.0), style::TEXT)?;
                top = top.min(fy(hi));
            }
            let text = significant(e.mean);
            if text_size(&text, VALUE).0 + 2.0 <= slot {
                c.text(&text, (mid, top - 3.0), VALUE, style::TEXT, (HPos::Center, VPos::Bottom), false)?;
            } else {
                c.text(&text, (mid, top - 4.0), VALUE, style::TEXT, (HPos::Left, VPos::Center), true)?;
            }
        }
        if !cat.is_empty() {
            c.text(cat, (r.x0 + (ci as f64 + 0.5) * group, r.y1 + 22.0), 13.0, style::TEXT, (HPos::Center, VPos::Top), false)?;
        }
    }
    c.rect(&r, style::AXIS, false)?;
    c.text(&p.title, (r.x0, r.y0 - 6.0), 14.0, style::TEXT, (HPos::Left, VPos::Bottom), false)?;
    y_desc(c, &p.y.desc, cell.x0 + 12.0, &r)
}
