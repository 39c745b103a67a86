//! Numbers over repeats: the mean with a 95% confidence interval (Student's
//! t over the repeats' values, which assumes they are independent and
//! roughly normal), and ratios paired per repeat so that drift on the
//! machine between repeats cancels.

/// Two-sided 95% quantiles of Student's t for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093,
    2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// Repeats needed before an interval is reported.
///
/// Every quantity reported here is non-negative, so an interval's lower
/// bound is clamped at zero (Student's t over three repeats of a skewed
/// quantity such as a p99 can reach below it).
pub const MIN_REPEATS_FOR_CI: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    /// The 95% interval; None with fewer than [`MIN_REPEATS_FOR_CI`] values.
    pub ci: Option<(f64, f64)>,
    pub n: usize,
}

impl Estimate {
    /// From the repeats' values (NaNs - a repeat that measured nothing - are left out).
    pub fn of(values: &[f64]) -> Option<Self> {
        let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        let n = v.len();
        if n == 0 {
            return None;
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let ci = (n >= MIN_REPEATS_FOR_CI).then(|| {
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let t = T95.get(n - 2).copied().unwrap_or(1.96);
            let half = t * (var / n as f64).sqrt();
            ((mean - half).max(0.0), mean + half)
        });
        Some(Self { mean, ci, n })
    }

    /// `mean` with `digits` decimals, and ` [lo, hi]` when there is an interval.
    pub fn show(&self, digits: usize) -> String {
        match self.ci {
            Some((lo, hi)) => format!("{:.d$} [{:.d$}, {:.d$}]", self.mean, lo, hi, d = digits),
            None => format!("{:.d$}", self.mean, d = digits),
        }
    }

    /// As a ratio: `3.1x [2.8, 3.4]`.
    pub fn show_ratio(&self) -> String {
        match self.ci {
            Some((lo, hi)) => format!("{:.1}x [{:.1}, {:.1}]", self.mean, lo, hi),
            None => format!("{:.1}x", self.mean),
        }
    }
}

/// `a / b` per repeat (pairs where both were measured and `b > 0`), then estimated.
pub fn paired_ratio(pairs: &[(Option<f64>, Option<f64>)]) -> Option<Estimate> {
    let ratios: Vec<f64> = pairs
        .iter()
        .filter_map(|&(a, b)| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 && a.is_finite() => Some(a / b),
            _ => None,
        })
        .collect();
    Estimate::of(&ratios)
}

/// How the summary states the method.
pub fn method(repeats: usize) -> String {
    if repeats >= MIN_REPEATS_FOR_CI {
        format!(
            "{repeats} repeats, modes interleaved (order rotated each repeat); numbers are means over repeats with a 95% confidence interval in brackets (Student's t over the repeats' values, lower bounds clamped at 0); ratios are taken per repeat (same repeat, adjacent in time) and then averaged the same way"
        )
    } else if repeats == 1 {
        "single run: no confidence interval (run with --repeat 3 or more for intervals)".to_string()
    } else {
        format!("{repeats} repeats: means without intervals (intervals need --repeat 3 or more)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn student_t_interval() {
        // mean 10, sample sd 1, n 4: half-width 3.182 * 1 / 2.
        let e = Estimate::of(&[9.0, 10.0, 11.0, 10.0 + 0.0]).unwrap();
        assert_eq!(e.mean, 10.0);
        let sd = (2.0f64 / 3.0).sqrt();
        let (lo, hi) = e.ci.unwrap();
        assert!((hi - 10.0 - 3.182 * sd / 2.0).abs() < 1e-9 && (10.0 - lo - 3.182 * sd / 2.0).abs() < 1e-9);
        assert_eq!(Estimate::of(&[4.0, 6.0]).unwrap().ci, None, "two repeats: no interval");
        assert_eq!(Estimate::of(&[5.0]).unwrap().show(2), "5.00");
        assert_eq!(Estimate::of(&[f64::NAN]), None);
        assert_eq!(Estimate::of(&[1.0, 1.0, 1.0]).unwrap().show(1), "1.0 [1.0, 1.0]");
        assert_eq!(Estimate::of(&[0.1, 0.2, 3.0]).unwrap().ci.unwrap().0, 0.0, "no negative lower bound");
    }

    #[test]
    fn ratios_are_paired_per_repeat() {
        // Drift doubles both modes in the second repeat: the paired ratio stays 2.
        let e = paired_ratio(&[(Some(2.0), Some(1.0)), (Some(4.0), Some(2.0)), (Some(6.0), Some(3.0)), (None, Some(1.0))]).unwrap();
        assert_eq!((e.mean, e.n), (2.0, 3));
        assert_eq!(e.show_ratio(), "2.0x [2.0, 2.0]");
        assert_eq!(paired_ratio(&[(Some(1.0), Some(0.0))]), None);
    }
}
