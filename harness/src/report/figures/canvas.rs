//! Drawing primitives in pixels on any plotters backend: clipped dashed
//! polylines, markers, text. Everything a figure draws goes through here,
//! so the PNG and the SVG get the same shapes.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{Marker, Stroke, Style};

pub const FONT: &str = "sans-serif";

/// A pixel rectangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    pub fn contains(&self, (x, y): (f64, f64), slack: f64) -> bool {
        x >= self.x0 - slack && x <= self.x1 + slack && y >= self.y0 - slack && y <= self.y1 + slack
    }

    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f64 {
        self.y1 - self.y0
    }
}

/// The size of `text` in pixels at `size` (the committed font's metrics).
pub fn text_size(text: &str, size: f64) -> (f64, f64) {
    match (FONT, size).into_font().box_size(text) {
        Ok((w, h)) => (w as f64, h as f64),
        Err(_) => (text.chars().count() as f64 * size * 0.6, size),
    }
}

/// `text` broken into lines at most `width` pixels wide (at spaces).
pub fn wrap(text: &str, size: f64, width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if text_size(&format!("{line} {word}"), size).0 <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

fn px((x, y): (f64, f64)) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

/// The part of segment `a`-`b` inside `r` (Liang-Barsky), if any.
fn clip(a: (f64, f64), b: (f64, f64), r: &Rect) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [(-dx, a.0 - r.x0), (dx, r.x1 - a.0), (-dy, a.1 - r.y0), (dy, r.y1 - a.1)] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 <= t1).then_some(((a.0 + t0 * dx, a.1 + t0 * dy), (a.0 + t1 * dx, a.1 + t1 * dy)))
}

/// Runs of `points` inside `r`: a run breaks where the line leaves it.
fn clipped_runs(points: &[(f64, f64)], r: &Rect) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut open = false;
    for w in points.windows(2) {
        match clip(w[0], w[1], r) {
            Some((a, b)) => {
                let continues = open && runs.last().and_then(|run| run.last()).is_some_and(|&p| p == a);
                if !continues {
                    runs.push(vec![a]);
                }
                if let Some(run) = runs.last_mut() {
                    run.push(b);
                }
                open = b == w[1];
            }
            None => open = false,
        }
    }
    runs
}

/// The "on" pieces of a polyline under a dash pattern.
fn dashed(run: &[(f64, f64)], pattern: &[f64]) -> Vec<Vec<(f64, f64)>> {
    if pattern.is_empty() {
        return vec![run.to_vec()];
    }
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let (mut k, mut left, mut on) = (0usize, pattern[0], true);
    let mut current: Vec<(f64, f64)> = run.first().map(|&p| vec![p]).unwrap_or_default();
    for w in run.windows(2) {
        let (a, b) = (w[0], w[1]);
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let mut pos = 0.0;
        while len - pos > left {
            pos += left;
            let p = (a.0 + (b.0 - a.0) * pos / len, a.1 + (b.1 - a.1) * pos / len);
            if on {
                current.push(p);
                out.push(std::mem::take(&mut current));
            } else {
                current = vec![p];
            }
            on = !on;
            k = (k + 1) % pattern.len();
            left = pattern[k];
        }
        left -= len - pos;
        if on {
            current.push(b);
        }
    }
    if on && current.len() > 1 {
        out.push(current);
    }
    out
}

pub struct Canvas<'a, DB: DrawingBackend> {
    pub area: &'a DrawingArea<DB, Shift>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl<DB: DrawingBackend> Canvas<'_, DB> {
    pub fn fill(&self, color: RGBColor) -> Result<(), String> {
        self.area.fill(&color).map_err(err)
    }

    pub fn rect(&self, r: &Rect, color: RGBColor, filled: bool) -> Result<(), String> {
        let style = if filled { color.filled() } else { color.stroke_width(1) };
        self.area.draw(&Rectangle::new([px((r.x0, r.y0)), px((r.x1, r.y1))], style)).map_err(err)
    }

    /// A polyline clipped to `clip`, dashed.
    pub fn line(&self, points: &[(f64, f64)], color: RGBColor, width: u32, dash: Stroke, clip: &Rect) -> Result<(), String> {
        for run in clipped_runs(points, clip) {
            for piece in dashed(&run, dash.pattern()) {
                let pts: Vec<(i32, i32)> = piece.into_iter().map(px).collect();
                self.area.draw(&PathElement::new(pts, color.stroke_width(width))).map_err(err)?;
            }
        }
        Ok(())
    }

    /// A marker of `style` centred on `at` with radius `r`.
    pub fn marker(&self, style: &Style, at: (f64, f64), r: f64) -> Result<(), String> {
        self.shape(style.marker, style.filled, style.color, at, r)
    }

    pub fn shape(&self, marker: Marker, filled: bool, color: RGBColor, (x, y): (f64, f64), r: f64) -> Result<(), String> {
        let poly = |v: &[(f64, f64)]| -> Vec<(i32, i32)> { v.iter().map(|&(dx, dy)| px((x + dx * r, y + dy * r))).collect() };
        let outline = |pts: &Vec<(i32, i32)>, c: RGBColor, w: u32| {
            let mut closed = pts.clone();
            closed.push(pts[0]);
            self.area.draw(&PathElement::new(closed, c.stroke_width(w))).map_err(err)
        };
        // A white edge keeps overlapping markers apart; small ones would drown in it.
        let (fill, edge, edge_w) = match (filled, r >= 4.0) {
            (true, true) => (color, WHITE, 1),
            (true, false) => (color, color, 1),
            (false, _) => (WHITE, color, 2),
        };
        let strokes = |lines: &[[(f64, f64); 2]]| -> Result<(), String> {
            for l in lines {
                self.area.draw(&PathElement::new(poly(l), color.stroke_width(if filled { 3 } else { 2 }))).map_err(err)?;
            }
            Ok(())
        };
        let shape: Vec<(f64, f64)> = match marker {
            Marker::Circle => {
                let c = px((x, y));
                let rad = r.round() as i32;
                self.area.draw(&Circle::new(c, rad, fill.filled())).map_err(err)?;
                return self.area.draw(&Circle::new(c, rad, edge.stroke_width(edge_w))).map_err(err);
            }
            Marker::Square => vec![(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
            Marker::Diamond => vec![(0.0, -1.2), (1.1, 0.0), (0.0, 1.2), (-1.1, 0.0)],
            Marker::TriangleUp => vec![(0.0, -1.25), (1.15, 0.8), (-1.15, 0.8)],
            Marker::TriangleDown => vec![(0.0, 1.25), (1.15, -0.8), (-1.15, -0.8)],
            Marker::Star => (0..10)
                .map(|i| {
                    let a = std::f64::consts::PI * (i as f64 / 5.0 - 0.5);
                    let rad = if i % 2 == 0 { 1.35 } else { 0.6 };
                    (rad * a.cos(), rad * a.sin())
                })
                .collect(),
            Marker::Cross => return strokes(&[[(-0.9, -0.9), (0.9, 0.9)], [(-0.9, 0.9), (0.9, -0.9)]]),
            Marker::Plus => return strokes(&[[(-1.1, 0.0), (1.1, 0.0)], [(0.0, -1.1), (0.0, 1.1)]]),
        };
        let pts = poly(&shape);
        self.area.draw(&Polygon::new(pts.clone(), fill.filled())).map_err(err)?;
        outline(&pts, edge, edge_w)
    }

    /// Text anchored at `at` by (`h`, `v`); `rotate` turns it to read upwards.
    pub fn text(&self, text: &str, at: (f64, f64), size: f64, color: RGBColor, (h, v): (HPos, VPos), rotate: bool) -> Result<(), String> {
        let mut style = TextStyle::from((FONT, size).into_font()).color(&color).pos(Pos::new(h, v));
        if rotate {
            style = style.transform(FontTransform::Rotate270);
        }
        self.area.draw_text(text, &style, px(at)).map_err(err)
    }

    /// A whisker from `a` to `b` (`vertical` or horizontal: it may have no length) with end caps `cap` pixels long.
    pub fn whisker(&self, a: (f64, f64), b: (f64, f64), vertical: bool, cap: f64, color: RGBColor) -> Result<(), String> {
        let seg = |p: (f64, f64), q: (f64, f64)| self.area.draw(&PathElement::new(vec![px(p), px(q)], color.stroke_width(2))).map_err(err);
        seg(a, b)?;
        for p in [a, b] {
            if vertical {
                seg((p.0 - cap / 2.0, p.1), (p.0 + cap / 2.0, p.1))?;
            } else {
                seg((p.0, p.1 - cap / 2.0), (p.0, p.1 + cap / 2.0))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_clipped_and_dashed() {
        let r = Rect { x0: 0.0, y0: 0.0, x1: 10.0, y1: 10.0 };
        let runs = clipped_runs(&[(-5.0, 5.0), (5.0, 5.0), (15.0, 5.0), (20.0, 5.0), (5.0, 6.0)], &r);
        assert_eq!(runs, vec![vec![(0.0, 5.0), (5.0, 5.0), (10.0, 5.0)], vec![(10.0, 5.666666666666667), (5.0, 6.0)]]);
        let d = dashed(&[(0.0, 0.0), (25.0, 0.0)], &[10.0, 5.0]);
        assert_eq!(d, vec![vec![(0.0, 0.0), (10.0, 0.0)], vec![(15.0, 0.0), (25.0, 0.0)]]);
        assert_eq!(dashed(&[(0.0, 0.0), (3.0, 0.0)], &[]), vec![vec![(0.0, 0.0), (3.0, 0.0)]]);
    }

    #[test]
    fn text_wraps_at_spaces() {
        crate::report::figures::register_font();
        let lines = wrap("a long subtitle that does not fit on one line of the figure", 14.0, 200.0);
        assert!(lines.len() > 1 && lines.iter().all(|l| text_size(l, 14.0).0 <= 200.0 || !l.contains(' ')), "{lines:?}");
    }
}
