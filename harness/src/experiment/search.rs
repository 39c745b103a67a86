//! The saturation search: which offered rate to probe next, and whether a
//! probe passed. A mode's saturation point is the highest offered rate at
//! which p99 stays under the bound with under 1% errors; the search grows
//! the rate until a probe fails (or shrinks it until one passes), then
//! bisects between the highest pass and the lowest failure until they are
//! within the tolerance.

use crate::load::RequestRecord;
use crate::report::stats::quantile;

/// Where the search stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Search {
    growth: f64,
    max_rate: f64,
    min_rate: f64,
    tolerance: f64,
    /// Highest rate that passed.
    pub pass: Option<f64>,
    /// Lowest rate that failed.
    pub fail: Option<f64>,
    /// The generator could not keep up: what passed is a lower bound.
    pub generator_limited: bool,
    next: Option<f64>,
}

/// How a search ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Saturation found: between `pass` and `fail`, within the tolerance.
    Found { pass: f64, fail: f64 },
    /// Every probe up to the maximum rate passed.
    NotSaturated { pass: f64 },
    /// Not even the lowest rate passed.
    BelowMinimum { fail: f64 },
    /// The load generator fell behind before the system did.
    GeneratorLimited { pass: Option<f64> },
    /// Stopped before converging (time cap or interruption).
    Unfinished { pass: Option<f64>, fail: Option<f64> },
}

impl Search {
    pub fn new(start: f64, growth: f64, max_rate: f64, tolerance: f64) -> Self {
        let min_rate = 1.0;
        Self { growth, max_rate, min_rate, tolerance, pass: None, fail: None, generator_limited: false, next: Some(start.max(min_rate)) }
    }

    /// The rate to probe next (whole tasks per second), or None when done.
    pub fn next_rate(&self) -> Option<f64> {
        self.next
    }

    /// Records the probe at `rate`.
    pub fn record(&mut self, rate: f64, verdict: Verdict) {
        match verdict {
            Verdict::Pass => self.pass = Some(self.pass.map_or(rate, |p| p.max(rate))),
            Verdict::Fail => self.fail = Some(self.fail.map_or(rate, |f| f.min(rate))),
            Verdict::GeneratorBehind => {
                self.generator_limited = true;
                self.next = None;
                return;
            }
        }
        self.next = match (self.pass, self.fail) {
            (Some(p), None) if p >= self.max_rate => None,
            (Some(p), None) => Some((p * self.growth).round().min(self.max_rate)),
            (None, Some(f)) if f <= self.min_rate => None,
            (None, Some(f)) => Some((f / self.growth).round().max(self.min_rate)),
            (Some(p), Some(f)) if (f - p) <= p * self.tolerance || f - p <= 1.0 => None,
            (Some(p), Some(f)) => Some(((p + f) / 2.0).round()),
            (None, None) => self.next,
        };
    }

    pub fn outcome(&self) -> Outcome {
        if self.generator_limited {
            return Outcome::GeneratorLimited { pass: self.pass };
        }
        match (self.next, self.pass, self.fail) {
            (Some(_), pass, fail) => Outcome::Unfinished { pass, fail },
            (None, Some(pass), Some(fail)) => Outcome::Found { pass, fail },
            (None, Some(pass), None) => Outcome::NotSaturated { pass },
            (None, None, Some(fail)) => Outcome::BelowMinimum { fail },
            (None, None, None) => Outcome::Unfinished { pass: None, fail: None },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// The generator sent late: the probe says nothing about the system.
    GeneratorBehind,
}

/// A probe's numbers, from every request it sent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeStats {
    pub requests: u64,
    pub in_time: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// How late the generator started its tasks: the median says whether it
    /// kept up with its schedule, the p99 how much its hiccups added.
    pub send_lag_p50_ms: f64,
    pub send_lag_p99_ms: f64,
}

/// No answer, or a 5xx.
pub fn is_error(status: u16) -> bool {
    status == 0 || status >= 500
}

impl ProbeStats {
    /// `records` of a step that began at `from_s` and offered load for
    /// `secs`; `lags_s`: how late each task was sent.
    pub fn of(records: &[RequestRecord], from_s: f64, secs: f64, lags_s: &[f64]) -> Self {
        let mut lat: Vec<f64> = records.iter().map(|r| r.latency_us / 1e3).collect();
        lat.sort_by(f64::total_cmp);
        let mut lags: Vec<f64> = lags_s.iter().map(|l| l * 1e3).collect();
        lags.sort_by(f64::total_cmp);
        let end = from_s + secs;
        Self {
            requests: records.len() as u64,
            in_time: records.iter().filter(|r| !is_error(r.status) && r.time_s + r.latency_us / 1e6 <= end).count() as u64,
            errors: records.iter().filter(|r| is_error(r.status)).count() as u64,
            p50_ms: quantile(&lat, 0.5),
            p90_ms: quantile(&lat, 0.9),
            p99_ms: quantile(&lat, 0.99),
            max_ms: lat.last().copied().unwrap_or(0.0),
            send_lag_p50_ms: quantile(&lags, 0.5),
            send_lag_p99_ms: quantile(&lags, 0.99),
        }
    }

    /// Passes with p99 under the bound and under 1% errors. A generator
    /// that did not keep up with its schedule - half its tasks started more
    /// than a tenth of the bound late - voids the probe, pass or fail. (Its
    /// occasional hiccups, the p99 lag, count against the system: latency
    /// runs from the intended send time, and a few milliseconds against a
    /// bound of tens are within what the bound allows.)
    pub fn verdict(&self, p99_bound_ms: f64) -> Verdict {
        if self.send_lag_p50_ms > p99_bound_ms / 10.0 {
            Verdict::GeneratorBehind
        } else if self.requests > 0 && self.p99_ms <= p99_bound_ms && self.errors * 100 < self.requests {
            Verdict::Pass
        } else {
            Verdict::Fail
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a system that sustains `capacity`.
    fn run(start: f64, capacity: f64, max_rate: f64) -> (Vec<f64>, Outcome) {
        let mut s = Search::new(start, 2.0, max_rate, 0.05);
        let mut probed = Vec::new();
        while let Some(r) = s.next_rate() {
            assert!(!probed.contains(&r), "{r} probed twice: {probed:?}");
            probed.push(r);
            s.record(r, if r <= capacity { Verdict::Pass } else { Verdict::Fail });
            assert!(probed.len() < 40, "{probed:?}");
        }
        (probed, s.outcome())
    }

    #[test]
    fn grows_then_bisects_to_within_five_percent() {
        let (probed, out) = run(50.0, 5000.0, 100_000.0);
        assert_eq!(&probed[..8], &[50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0]);
        let Outcome::Found { pass, fail } = out else { panic!("{out:?}") };
        assert!(pass <= 5000.0 && fail > 5000.0 && (fail - pass) <= pass * 0.05, "{pass} {fail} {probed:?}");
    }

    #[test]
    fn shrinks_when_the_start_rate_fails() {
        let (probed, out) = run(50.0, 7.0, 100_000.0);
        assert_eq!(&probed[..4], &[50.0, 25.0, 13.0, 7.0]);
        assert!(matches!(out, Outcome::Found { pass, fail } if pass == 7.0 && fail == 8.0), "{out:?} {probed:?}");
    }

    #[test]
    fn stops_at_the_maximum_rate() {
        let (probed, out) = run(50.0, 1e9, 1000.0);
        assert_eq!(probed, vec![50.0, 100.0, 200.0, 400.0, 800.0, 1000.0]);
        assert_eq!(out, Outcome::NotSaturated { pass: 1000.0 });
    }

    #[test]
    fn a_late_generator_ends_the_search_with_a_lower_bound() {
        let mut s = Search::new(50.0, 2.0, 1e6, 0.05);
        s.record(50.0, Verdict::Pass);
        s.record(100.0, Verdict::GeneratorBehind);
        assert_eq!(s.next_rate(), None);
        assert_eq!(s.outcome(), Outcome::GeneratorLimited { pass: Some(50.0) });
        let fresh = Search::new(50.0, 2.0, 1e6, 0.05);
        assert_eq!(fresh.outcome(), Outcome::Unfinished { pass: None, fail: None });
    }

    #[test]
    fn probe_statistics_and_verdicts() {
        let rec = |t: f64, ms: f64, status: u16| RequestRecord { time_s: t, request: "product".into(), latency_us: ms * 1e3, status };
        // 100 requests from t = 10 s, 1..100 ms; the last one answered after the step's end; one 503.
        let mut records: Vec<RequestRecord> = (1..=100).map(|i| rec(10.0 + i as f64 * 0.005, i as f64, 200)).collect();
        records[99].time_s = 10.95;
        records[49].status = 503;
        let stats = ProbeStats::of(&records, 10.0, 1.0, &[0.0, 0.001, 0.002]);
        assert_eq!(stats.send_lag_p50_ms, 1.0);
        assert_eq!((stats.requests, stats.errors), (100, 1));
        assert_eq!(stats.in_time, 98, "the 503 and the request answered at 11.05 s do not count");
        assert_eq!((stats.p50_ms, stats.p99_ms, stats.max_ms), (50.0, 99.0, 100.0));
        assert_eq!(stats.send_lag_p99_ms, 2.0);
        assert_eq!(stats.verdict(100.0), Verdict::Fail, "1% errors is too many");
        let ok = ProbeStats { errors: 0, ..stats.clone() };
        assert_eq!(ok.verdict(100.0), Verdict::Pass);
        assert_eq!(ok.verdict(50.0), Verdict::Fail);
        assert_eq!(ok.verdict(20.0), Verdict::Fail, "one task 2 ms late: a hiccup, not a generator behind");
        assert_eq!(ok.verdict(5.0), Verdict::GeneratorBehind, "half the tasks 1 ms late against a 5 ms bound");
    }
}
