//! The legend: a column to the right of the plots, never on the data.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{text_size, wrap, Canvas, Rect};
use super::style::{self, Stroke, Style};

/// What an entry's swatch shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Swatch {
    /// A line in the style, with its marker.
    Line(Style),
    /// The marker alone (scatter plots).
    Marker(Style),
    /// A bar of the style's colour with its marker.
    Bar(Style),
    /// A shaded time window.
    Band(RGBColor),
    /// A reference line.
    Reference(Stroke),
    /// Whiskers (drawn in black): horizontal ones with a point, or a bar's vertical one.
    Whiskers { horizontal: bool },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub swatch: Swatch,
    pub label: String,
}

impl Entry {
    pub fn new(swatch: Swatch, label: impl Into<String>) -> Self {
        Self { swatch, label: label.into() }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Legend {
    pub title: Option<String>,
    pub entries: Vec<Entry>,
}

const SIZE: f64 = 13.0;
const SWATCH: f64 = 38.0;
const ROW: f64 = 20.0;
const MAX_TEXT: f64 = 200.0;

impl Legend {
    /// Adds an entry unless one with the same label is there.
    pub fn push(&mut self, e: Entry) {
        if !self.entries.iter().any(|x| x.label == e.label) {
            self.entries.push(e);
        }
    }

    fn lines(&self) -> Vec<Vec<String>> {
        self.entries.iter().map(|e| wrap(&e.label, SIZE, MAX_TEXT)).collect()
    }

    /// The column's width in pixels (0 without entries).
    pub fn width(&self) -> f64 {
        if self.entries.is_empty() {
            return 0.0;
        }
        let text = self.lines().iter().flatten().map(|l| text_size(l, SIZE).0).fold(0.0, f64::max);
        let title = self.title.as_deref().map_or(0.0, |t| text_size(t, SIZE).0);
        (SWATCH + 8.0 + text).max(title) + 20.0
    }

    /// Draws the column with its top-left corner at `(x, y)`.
    pub fn draw<DB: DrawingBackend>(&self, c: &Canvas<DB>, x: f64, y: f64) -> Result<(), String> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let lines = self.lines();
        let rows: f64 = lines.iter().map(|l| l.len() as f64).sum::<f64>() + if self.title.is_some() { 1.2 } else { 0.0 };
        let frame = Rect { x0: x, y0: y, x1: x + self.width(), y1: y + rows * ROW + 12.0 };
        c.rect(&frame, style::GRID_MAJOR, false)?;
        let mut top = y + 6.0;
        if let Some(t) = &self.title {
            c.text(t, (x + 10.0, top + ROW / 2.0), SIZE, style::TEXT, (HPos::Left, VPos::Center), false)?;
            top += 1.2 * ROW;
        }
        for (e, text) in self.entries.iter().zip(&lines) {
            let mid = (x + 10.0 + SWATCH / 2.0, top + ROW / 2.0);
            swatch(c, &e.swatch, mid)?;
            for (i, line) in text.iter().enumerate() {
                c.text(line, (x + 18.0 + SWATCH, top + ROW / 2.0 + i as f64 * ROW), SIZE, style::TEXT, (HPos::Left, VPos::Center), false)?;
            }
            top += ROW * text.len() as f64;
        }
        Ok(())
    }
}

/// A swatch centred on `(x, y)`.
pub fn swatch<DB: DrawingBackend>(c: &Canvas<DB>, s: &Swatch, (x, y): (f64, f64)) -> Result<(), String> {
    let half = SWATCH / 2.0;
    let all = Rect { x0: x - half - 1.0, y0: y - ROW, x1: x + half + 1.0, y1: y + ROW };
    match s {
        Swatch::Line(st) => {
            c.line(&[(x - half, y), (x + half, y)], st.color, 2, st.dash, &all)?;
            c.marker(st, (x, y), 4.5)
        }
        Swatch::Marker(st) => c.marker(st, (x, y), 4.5),
        Swatch::Bar(st) => {
            c.rect(&Rect { x0: x - 12.0, y0: y - 7.0, x1: x + 12.0, y1: y + 7.0 }, st.color, true)?;
            c.marker(st, (x, y), 4.0)
        }
        Swatch::Band(color) => {
            let r = Rect { x0: x - 14.0, y0: y - 7.0, x1: x + 14.0, y1: y + 7.0 };
            c.rect(&r, *color, true)?;
            c.rect(&r, style::GRID_MAJOR, false)
        }
        Swatch::Reference(dash) => c.line(&[(x - half, y), (x + half, y)], style::REFERENCE, 2, *dash, &all),
        Swatch::Whiskers { horizontal: true } => {
            c.whisker((x - 14.0, y), (x + 14.0, y), false, 10.0, BLACK)?;
            c.shape(style::Marker::Circle, false, BLACK, (x, y), 5.0)
        }
        Swatch::Whiskers { horizontal: false } => c.whisker((x, y - 8.0), (x, y + 8.0), true, 8.0, BLACK),
    }
}
