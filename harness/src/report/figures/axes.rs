//! Axis ranges, ticks and tick labels. Log axes get labelled minor ticks
//! (1, 2, 5 x 10^k, denser when the range is short) printed as plain
//! decimals; every axis gets at least three labelled ticks; integer axes
//! print no decimals.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

/// What a figure asks of an axis.
#[derive(Clone, Debug)]
pub struct AxisSpec {
    /// The label, with its unit: `latency (ms)`.
    pub desc: String,
    pub scale: Scale,
    /// Values are whole numbers (counts, rates): whole-number ticks, no decimals.
    pub integer: bool,
    /// A fixed range; otherwise the data's, padded and rounded out to ticks.
    pub range: Option<(f64, f64)>,
    /// Linear axes: include zero (counts, rates, cores).
    pub from_zero: bool,
    /// A categorical axis: these names at 1, 2, ... (the first at the top of a y axis).
    pub categories: Vec<String>,
}

impl AxisSpec {
    pub fn linear(desc: &str) -> Self {
        Self { desc: desc.into(), scale: Scale::Linear, integer: false, range: None, from_zero: true, categories: Vec::new() }
    }

    /// Rows named `categories`, the first at the top: place row `i` at [`AxisSpec::row`].
    pub fn categories(desc: &str, categories: Vec<String>) -> Self {
        Self { categories, from_zero: false, ..Self::linear(desc) }
    }

    /// Where the `i`-th category sits.
    pub fn row(&self, i: usize) -> f64 {
        (self.categories.len() - i) as f64
    }

    pub fn log(desc: &str) -> Self {
        Self { desc: desc.into(), scale: Scale::Log, integer: false, range: None, from_zero: false, categories: Vec::new() }
    }

    pub fn integer(mut self) -> Self {
        self.integer = true;
        self
    }

    pub fn range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tick {
    pub value: f64,
    /// None: an unlabelled minor tick (a light grid line).
    pub label: Option<String>,
    /// Labels of major ticks are drawn first; others only where they fit.
    pub major: bool,
}

/// A resolved axis: its range and ticks.
#[derive(Clone, Debug)]
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub scale: Scale,
    pub ticks: Vec<Tick>,
}

impl Axis {
    /// Where `v` falls, 0 at `lo` and 1 at `hi`.
    pub fn frac(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10()),
        }
    }

    /// Whether `v` can be placed (log axes have no place for zero or less).
    pub fn accepts(&self, v: f64) -> bool {
        v.is_finite() && (self.scale == Scale::Linear || v > 0.0)
    }
}

/// The smallest step of 1, 2, 2.5, 5 x 10^k giving at most about `target` intervals.
fn nice_step(span: f64, target: f64, integer: bool) -> f64 {
    let raw = (span / target).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        let step = m * mag;
        if step >= raw * (1.0 - 1e-9) && (!integer || (step >= 1.0 && step.fract() == 0.0)) {
            return step;
        }
    }
    if integer {
        (10.0 * mag).max(1.0)
    } else {
        10.0 * mag
    }
}

/// Decimals that print every multiple of `step` exactly.
fn decimals(step: f64) -> usize {
    (0..=6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6)
}

/// `v` with `d` decimals, never `-0`.
fn fixed(v: f64, d: usize) -> String {
    let s = format!("{v:.d$}");
    if s.trim_start_matches('-').chars().all(|c| c == '0' || c == '.') {
        s.trim_start_matches('-').to_string()
    } else {
        s
    }
}

/// Multiples of `step` in `[lo, hi]`, labelled with the decimals the step needs.
fn linear_ticks(lo: f64, hi: f64, step: f64, integer: bool) -> Vec<Tick> {
    let d = if integer { 0 } else { decimals(step) };
    let (k0, k1) = ((lo / step - 1e-9).ceil() as i64, (hi / step + 1e-9).floor() as i64);
    (k0..=k1)
        .map(|k| {
            let value = k as f64 * step;
            Tick { value, label: Some(fixed(value, d)), major: true }
        })
        .collect()
}

fn linear(spec: &AxisSpec, data: Option<(f64, f64)>) -> Axis {
    let target = 7.0;
    if let Some((lo, hi)) = spec.range.filter(|(lo, hi)| hi > lo) {
        let step = nice_step(hi - lo, target, spec.integer);
        return Axis { lo, hi, scale: Scale::Linear, ticks: linear_ticks(lo, hi, step, spec.integer) };
    }
    let (mut lo, mut hi) = data.unwrap_or((0.0, 1.0));
    if spec.from_zero {
        (lo, hi) = (lo.min(0.0), hi.max(0.0));
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = if spec.integer { 1.0 } else { (hi.abs() * 0.1).max(0.1) };
        (lo, hi) = if spec.from_zero && lo >= 0.0 { (lo, hi + 2.0 * pad) } else { (lo - pad, hi + pad) };
    }
    let pad = (hi - lo) * 0.04;
    if !(spec.from_zero && hi == 0.0) {
        hi += pad;
    }
    if !(spec.from_zero && lo == 0.0) {
        lo -= pad;
    }
    let step = nice_step(hi - lo, target, spec.integer);
    lo = (lo / step + 1e-9).floor() * step;
    hi = (hi / step - 1e-9).ceil() * step;
    // At least three labelled ticks, even for a flat series.
    while ((hi - lo) / step).round() < 2.0 {
        hi += step;
    }
    let ticks = linear_ticks(lo, hi, step, spec.integer);
    // A little room under zero: a series at zero stays off the frame.
    if spec.from_zero && lo == 0.0 {
        lo = -0.015 * hi;
    }
    Axis { lo, hi, scale: Scale::Linear, ticks }
}

/// `m x 10^k` as a plain decimal, exactly: `0.05`, `2`, `500`.
fn plain(m: u32, k: i32) -> String {
    if k >= 0 {
        format!("{m}{}", "0".repeat(k as usize))
    } else {
        format!("0.{}{m}", "0".repeat((-k - 1) as usize))
    }
}

/// Candidate ticks `m x 10^k` for m in `mults`, covering `[lo, hi]` and one beyond each end.
fn log_candidates(lo: f64, hi: f64, mults: &[u32]) -> Vec<(f64, u32, i32)> {
    let (k0, k1) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    (k0..=k1).flat_map(|k| mults.iter().map(move |&m| (m as f64 * 10f64.powi(k), m, k))).collect()
}

fn log(spec: &AxisSpec, data: Option<(f64, f64)>) -> Axis {
    let fixed_range = spec.range.filter(|(lo, hi)| *lo > 0.0 && hi > lo);
    let (mut lo, mut hi) = fixed_range.or(data.filter(|(lo, hi)| *lo > 0.0 && hi >= lo)).unwrap_or((1.0, 10.0));
    if hi <= lo {
        (lo, hi) = (lo / 2.0, hi * 2.0);
    }
    if fixed_range.is_none() {
        (lo, hi) = (lo / 1.03, hi * 1.03);
    }
    let decades = (hi / lo).log10();
    let all: Vec<u32> = (1..=9).collect();
    let (labelled, minor): (Vec<u32>, Vec<u32>) = if decades > 6.0 {
        (vec![1], vec![])
    } else if decades > 3.5 {
        (vec![1], (2..=9).collect())
    } else {
        let sets: [&[u32]; 3] = [&[1, 2, 5], &[1, 2, 3, 5], &[1, 2, 3, 4, 5, 6, 7, 8, 9]];
        let inside = |mults: &[u32]| log_candidates(lo, hi, mults).iter().filter(|(v, _, _)| *v >= lo && *v <= hi).count();
        let set = sets.iter().find(|s| inside(s) >= 4).copied().unwrap_or(sets[2]);
        (set.to_vec(), all.iter().copied().filter(|m| !set.contains(m)).collect())
    };
    if fixed_range.is_none() {
        // Round out to labelled ticks.
        let c = log_candidates(lo, hi, &labelled);
        lo = c.iter().rev().find(|(v, _, _)| *v <= lo * (1.0 + 1e-9)).map_or(lo, |t| t.0);
        hi = c.iter().find(|(v, _, _)| *v >= hi * (1.0 - 1e-9)).map_or(hi, |t| t.0);
    }
    let within = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let mut ticks: Vec<Tick> = log_candidates(lo, hi, &all)
        .into_iter()
        .filter(|(v, _, _)| within(*v))
        .filter_map(|(value, m, k)| {
            if labelled.contains(&m) {
                Some(Tick { value, label: Some(plain(m, k)), major: m == 1 })
            } else {
                minor.contains(&m).then_some(Tick { value, label: None, major: false })
            }
        })
        .collect();
    if ticks.iter().filter(|t| t.label.is_some()).count() < 3 {
        // A range too short for the 1..9 x 10^k ticks: evenly stepped ones.
        let step = nice_step(hi - lo, 5.0, false);
        ticks = linear_ticks(lo, hi, step, false).into_iter().filter(|t| t.value > 0.0).collect();
    }
    Axis { lo, hi, scale: Scale::Log, ticks }
}

/// Resolves an axis from the spec and the data's extent (`None`: no data).
pub fn resolve(spec: &AxisSpec, data: Option<(f64, f64)>) -> Axis {
    if !spec.categories.is_empty() {
        let n = spec.categories.len();
        let ticks =
            spec.categories.iter().enumerate().map(|(i, c)| Tick { value: spec.row(i), label: Some(c.clone()), major: true }).collect();
        return Axis { lo: 0.4, hi: n as f64 + 0.6, scale: Scale::Linear, ticks };
    }
    match spec.scale {
        Scale::Linear => linear(spec, data),
        Scale::Log => log(spec, data),
    }
}

/// The extent of `values` an axis of `scale` can show.
pub fn extent(values: impl Iterator<Item = f64>, scale: Scale) -> Option<(f64, f64)> {
    values.filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0)).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A value for a label: three significant digits, no exponent (`4480`, `12.5`, `0.0312`).
pub fn significant(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let d = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    let s = fixed(v, d);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(a: &Axis) -> Vec<&str> {
        a.ticks.iter().filter_map(|t| t.label.as_deref()).collect()
    }

    #[test]
    fn log_axes_label_minor_ticks_as_plain_decimals() {
        let a = resolve(&AxisSpec::log("ms"), Some((0.4, 180.0)));
        assert_eq!(labels(&a), ["0.2", "0.5", "1", "2", "5", "10", "20", "50", "100", "200"]);
        assert_eq!((a.lo, a.hi), (0.2, 200.0));
        // A single decade (Fig. 12a): the denser set.
        let a = resolve(&AxisSpec::log("ms"), Some((30.0, 95.0)));
        assert!(labels(&a).len() >= 4, "{:?}", labels(&a));
        assert!(labels(&a).iter().all(|l| !l.contains('e')));
        // Very short: evenly stepped.
        let a = resolve(&AxisSpec::log("ms"), Some((3.3, 3.6)));
        assert!(labels(&a).len() >= 3, "{:?}", labels(&a));
        // Many decades: powers of ten, minor ticks unlabelled.
        let a = resolve(&AxisSpec::log("ms"), Some((0.01, 5000.0)));
        assert_eq!(labels(&a), ["0.001", "0.01", "0.1", "1", "10", "100", "1000", "10000"]);
    }

    #[test]
    fn integer_axes_print_no_decimals() {
        let a = resolve(&AxisSpec::linear("req/s").integer(), Some((0.0, 612.0)));
        assert_eq!(labels(&a), ["0", "100", "200", "300", "400", "500", "600", "700"]);
        let a = resolve(&AxisSpec::linear("req/s").integer(), Some((0.0, 0.0)));
        assert!(labels(&a).len() >= 3 && labels(&a).iter().all(|l| !l.contains('.')), "{:?}", labels(&a));
        let a = resolve(&AxisSpec::linear("cores"), Some((0.0, 1.04)));
        assert_eq!(labels(&a), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2"]);
    }

    #[test]
    fn fixed_ranges_keep_their_ends() {
        let a = resolve(&AxisSpec::linear("s").range(-1.03, 8.9), None);
        assert_eq!((a.lo, a.hi), (-1.03, 8.9));
        assert_eq!(labels(&a), ["0", "2", "4", "6", "8"]);
        let a = resolve(&AxisSpec::linear("fraction").range(0.0, 1.0), None);
        assert_eq!(labels(&a), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
    }

    #[test]
    fn significant_digits() {
        assert_eq!(significant(4482.3), "4482");
        assert_eq!(significant(12.54), "12.5");
        assert_eq!(significant(2.0), "2");
        assert_eq!(significant(84.0), "84");
        assert_eq!(significant(1.296), "1.3");
        assert_eq!(significant(0.03125), "0.0312");
        assert_eq!(significant(0.0), "0");
    }
}
