//! How every series looks, as data: one row per mode, per component group
//! and per request type, the same in every figure. Modes have filled
//! markers, component groups hollow ones and colours of their own, so a
//! per-group plot never reads as a per-mode one.

use plotters::style::RGBColor;

/// A point's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Diamond,
    TriangleUp,
    TriangleDown,
    Cross,
    Plus,
    Star,
}

/// A line's dash pattern: on, off, on, off ... pixels (empty: solid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stroke {
    Solid,
    Dashed,
    DashDot,
    Dotted,
    LongDash,
    DashDotDot,
}

impl Stroke {
    pub fn pattern(self) -> &'static [f64] {
        match self {
            Stroke::Solid => &[],
            Stroke::Dashed => &[10.0, 5.0],
            Stroke::DashDot => &[10.0, 4.0, 2.5, 4.0],
            Stroke::Dotted => &[2.5, 4.0],
            Stroke::LongDash => &[20.0, 6.0],
            Stroke::DashDotDot => &[10.0, 4.0, 2.5, 4.0, 2.5, 4.0],
        }
    }
}

/// The look of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Style {
    pub color: RGBColor,
    pub marker: Marker,
    /// Filled marker (modes, request types) or hollow (component groups).
    pub filled: bool,
    pub dash: Stroke,
}

const fn row(name: &'static str, rgb: (u8, u8, u8), marker: Marker, filled: bool, dash: Stroke) -> (&'static str, Style) {
    (name, Style { color: RGBColor(rgb.0, rgb.1, rgb.2), marker, filled, dash })
}

use Marker::*;
use Stroke::*;

/// The modes (Okabe-Ito colours: told apart with colour blindness and, by
/// marker and dash, in grey print).
pub const MODES: [(&str, Style); 6] = [
    row("s-spright", (0, 114, 178), Circle, true, Solid),
    row("d-spright", (213, 94, 0), Square, true, Dashed),
    row("e-spright", (0, 158, 115), Diamond, true, DashDot),
    row("knative", (204, 121, 167), TriangleUp, true, Dotted),
    row("knative-stz", (230, 159, 0), TriangleDown, true, LongDash),
    row("grpc", (60, 60, 60), Cross, true, DashDotDot),
];

/// The component groups (Paul Tol's muted colours, hollow markers).
pub const GROUPS: [(&str, Style); 5] = [
    row("gateway", (51, 34, 136), Circle, false, Solid),
    row("sidecar", (153, 153, 51), Square, false, Dashed),
    row("function", (204, 102, 119), Diamond, false, DashDot),
    row("orchestrator", (68, 170, 153), TriangleUp, false, Dotted),
    row("load", (150, 150, 150), Plus, false, LongDash),
];

/// Online Boutique's request types (Paul Tol's vibrant colours), keyed by
/// the stored request name.
pub const REQUESTS: [(&str, Style); 6] = [
    row("home", (0, 119, 187), Circle, true, Solid),
    row("set_currency", (238, 119, 51), Square, true, Dashed),
    row("product", (0, 153, 136), Diamond, true, DashDot),
    row("view_cart", (238, 51, 119), TriangleUp, true, Dotted),
    row("add_to_cart", (51, 187, 238), TriangleDown, true, LongDash),
    row("checkout", (204, 51, 17), Star, true, DashDotDot),
];

/// For names no table knows (another workload's request types, a new mode):
/// picked by the series' place in its figure, so still deterministic.
const FALLBACK: [Style; 6] = [
    Style { color: RGBColor(0, 119, 187), marker: Circle, filled: true, dash: Solid },
    Style { color: RGBColor(204, 51, 17), marker: Square, filled: true, dash: Dashed },
    Style { color: RGBColor(0, 153, 136), marker: Diamond, filled: true, dash: DashDot },
    Style { color: RGBColor(238, 51, 119), marker: TriangleUp, filled: true, dash: Dotted },
    Style { color: RGBColor(238, 119, 51), marker: TriangleDown, filled: true, dash: LongDash },
    Style { color: RGBColor(51, 187, 238), marker: Star, filled: true, dash: DashDotDot },
];

fn lookup(table: &[(&str, Style)], name: &str, index: usize) -> Style {
    table.iter().find(|(n, _)| *n == name).map_or(FALLBACK[index % FALLBACK.len()], |(_, s)| *s)
}

pub fn mode(name: &str, index: usize) -> Style {
    lookup(&MODES, name, index)
}

pub fn group(name: &str, index: usize) -> Style {
    lookup(&GROUPS, name, index)
}

pub fn request(name: &str, index: usize) -> Style {
    lookup(&REQUESTS, name, index)
}

/// Shaded phases of a timeline.
pub const IDLE_BAND: RGBColor = RGBColor(228, 228, 228);
pub const WARMUP_BAND: RGBColor = RGBColor(255, 236, 196);
/// Reference lines (bounds, ideal rates).
pub const REFERENCE: RGBColor = RGBColor(120, 120, 120);
pub const GRID_MAJOR: RGBColor = RGBColor(215, 215, 215);
pub const GRID_MINOR: RGBColor = RGBColor(238, 238, 238);
pub const AXIS: RGBColor = RGBColor(60, 60, 60);
pub const TEXT: RGBColor = RGBColor(20, 20, 20);
pub const NOTE: RGBColor = RGBColor(90, 90, 90);

#[cfg(test)]
mod tests {
    use super::*;

    fn distinct<T: PartialEq + std::fmt::Debug>(what: &str, v: &[T]) {
        for (i, a) in v.iter().enumerate() {
            assert!(!v[i + 1..].contains(a), "{what}: {a:?} used twice");
        }
    }

    #[test]
    fn every_mode_has_its_own_colour_marker_and_dash() {
        for table in [&MODES[..], &GROUPS[..], &REQUESTS[..]] {
            distinct("names", &table.iter().map(|(n, _)| *n).collect::<Vec<_>>());
            distinct("colours", &table.iter().map(|(_, s)| s.color).collect::<Vec<_>>());
            distinct("markers", &table.iter().map(|(_, s)| (s.marker, s.filled)).collect::<Vec<_>>());
            distinct("dashes", &table.iter().map(|(_, s)| s.dash).collect::<Vec<_>>());
        }
    }

    #[test]
    fn groups_do_not_look_like_modes() {
        let mode_colours: Vec<RGBColor> = MODES.iter().map(|(_, s)| s.color).collect();
        for (name, g) in GROUPS {
            assert!(!g.filled, "{name}: groups have hollow markers");
            assert!(!mode_colours.contains(&g.color), "{name} shares a mode's colour");
        }
        assert!(MODES.iter().all(|(_, s)| s.filled));
    }

    #[test]
    fn the_tables_cover_the_experiments() {
        for m in ["s-spright", "d-spright", "e-spright", "knative", "knative-stz", "grpc"] {
            assert!(MODES.iter().any(|(n, _)| *n == m), "{m}");
        }
        for g in crate::report::stats::GROUPS {
            assert!(GROUPS.iter().any(|(n, _)| *n == g), "{g}");
        }
        assert_eq!(mode("s-spright", 3), MODES[0].1);
        assert_eq!(mode("new-mode", 1), FALLBACK[1]);
    }
}
