//! Numbers per mode, computed from a run's stored rows only.

use std::collections::BTreeMap;

use crate::results::{ModeRun, RunData};

/// The paper's chain ids for Online Boutique's request types (WORKLOADS.md
/// §1), for labels: `ch3 product`. Other request types keep their name.
pub fn chain_label(request: &str) -> String {
    let ch = match request {
        "home" => "ch1",
        "set_currency" => "ch2",
        "product" => "ch3",
        "view_cart" => "ch4",
        "add_to_cart" => "ch5",
        "checkout" => "ch6",
        _ => return request.to_string(),
    };
    format!("{ch} {request}")
}

/// Component groups in report order.
pub const GROUPS: [&str; 5] = ["gateway", "sidecar", "function", "orchestrator", "load"];

#[derive(Clone, Debug, Default)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

#[derive(Clone, Debug, Default)]
pub struct ModeStats {
    pub mode: String,
    pub run: ModeRun,
    pub requests: usize,
    /// No response, or a 5xx.
    pub errors: usize,
    pub throughput: f64,
    pub latency_all: Latency,
    pub latency: BTreeMap<String, Latency>,
    /// CPU-seconds in the measured phase, per group.
    pub cpu_s: BTreeMap<String, f64>,
    /// Mean cores with no load, per group.
    pub idle_cores: BTreeMap<String, f64>,
    /// Context switches (voluntary + involuntary) in the measured phase, per group.
    pub switches: BTreeMap<String, u64>,
    /// Counters by (source, scope, name) in the measured phase.
    pub counters: BTreeMap<(String, String, String), f64>,
}

/// The `q` quantile of sorted values (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn latency(mut us: Vec<f64>) -> Latency {
    us.sort_by(f64::total_cmp);
    let ms = |q| quantile(&us, q) / 1e3;
    Latency { count: us.len(), p50_ms: ms(0.5), p90_ms: ms(0.9), p99_ms: ms(0.99) }
}

impl ModeStats {
    pub fn cpu_total(&self) -> f64 {
        self.cpu_s.iter().filter(|(g, _)| *g != "load").fold(0.0, |a, (_, v)| a + v)
    }

    /// CPU-seconds per 1 000 requests of the system under test (and of one group).
    pub fn cpu_per_1000(&self, group: Option<&str>) -> f64 {
        let cpu = match group {
            Some(g) => self.cpu_s.get(g).copied().unwrap_or(0.0),
            None => self.cpu_total(),
        };
        if self.requests == 0 {
            0.0
        } else {
            cpu * 1000.0 / self.requests as f64
        }
    }

    pub fn cores(&self) -> f64 {
        let s = self.run.measure_s();
        if s > 0.0 {
            self.cpu_total() / s
        } else {
            0.0
        }
    }

    pub fn idle_total(&self) -> f64 {
        self.idle_cores.iter().filter(|(g, _)| *g != "load").fold(0.0, |a, (_, v)| a + v)
    }

    pub fn per_request(&self, value: f64) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            value / self.requests as f64
        }
    }

    /// The counters whose (source, scope, name) `keep` accepts, summed, per
    /// measured request.
    pub fn per_request_where(&self, keep: impl Fn(&str, &str, &str) -> bool) -> f64 {
        // fold, not sum: an empty f64 sum is -0.0.
        let total = self.counters.iter().filter(|((s, g, n), _)| keep(s, g, n)).fold(0.0, |a, (_, v)| a + v);
        self.per_request(total)
    }

    /// Counters of `source` named `names` in processes of `groups`, per measured request.
    pub fn source_per_request(&self, source: &str, groups: &[&str], names: &[&str]) -> f64 {
        self.per_request_where(|s, g, n| s == source && groups.contains(&g) && names.contains(&n))
    }

    /// eBPF events in processes of `groups`, per measured request.
    pub fn ebpf_per_request(&self, groups: &[&str], events: &[&str]) -> f64 {
        self.source_per_request("ebpf", groups, events)
    }

    /// Whether this run collected counters of `source` for the mode.
    pub fn has_source(&self, source: &str) -> bool {
        self.counters.keys().any(|(s, _, _)| s == source)
    }

    /// Sum of counters of one source (all scopes), per measured request.
    pub fn counter_per_request(&self, source: &str, name_filter: impl Fn(&str) -> bool) -> f64 {
        self.per_request_where(|s, _, n| s == source && name_filter(n))
    }
}

/// Per-mode statistics, in the manifest's mode order.
pub fn compute(data: &RunData) -> Vec<ModeStats> {
    data.manifest
        .modes
        .iter()
        .map(|run| {
            let mut s = ModeStats { mode: run.mode.clone(), run: run.clone(), ..Default::default() };
            let measured: Vec<_> = data.requests.iter().filter(|r| r.mode == run.mode && r.measured()).collect();
            s.requests = measured.len();
            s.errors = measured.iter().filter(|r| r.r.status == 0 || r.r.status >= 500).count();
            let secs = run.measure_s();
            s.throughput = if secs > 0.0 { s.requests as f64 / secs } else { 0.0 };
            s.latency_all = latency(measured.iter().map(|r| r.r.latency_us).collect());
            let mut by_type: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in &measured {
                by_type.entry(r.r.request.clone()).or_default().push(r.r.latency_us);
            }
            s.latency = by_type.into_iter().map(|(k, v)| (k, latency(v))).collect();
            // Idle CPU-seconds over the idle window (as sampled) become mean cores.
            let mut idle_window: BTreeMap<&str, f64> = BTreeMap::new();
            for c in data.cpu.iter().filter(|c| c.mode == run.mode) {
                match c.phase.as_str() {
                    "measure" => {
                        *s.cpu_s.entry(c.s.group.clone()).or_default() += c.s.cpu_s;
                        *s.switches.entry(c.s.group.clone()).or_default() += c.s.voluntary + c.s.involuntary;
                    }
                    "idle" => {
                        *s.idle_cores.entry(c.s.group.clone()).or_default() += c.s.cpu_s;
                        *idle_window.entry(&c.s.component).or_default() += c.s.interval_s;
                    }
                    _ => {}
                }
            }
            let window = idle_window.into_values().fold(0.0, f64::max);
            for v in s.idle_cores.values_mut() {
                *v = if window > 0.0 { *v / window } else { 0.0 };
            }
            for k in data.counters.iter().filter(|k| k.mode == run.mode && k.phase == "measure") {
                *s.counters.entry((k.source.clone(), k.scope.clone(), k.name.clone())).or_default() += k.value;
            }
            s
        })
        .collect()
}

/// One step of an open-loop sweep.
#[derive(Clone, Debug)]
pub struct SweepPoint {
    pub mode: String,
    /// Offered Online Boutique tasks per second.
    pub offered: f64,
    /// Requests answered (not 5xx) within the step, per second.
    pub achieved_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub error_pct: f64,
    pub requests: usize,
}

/// The sweep's points, per mode in manifest order and by offered rate.
pub fn sweep(data: &RunData) -> Vec<SweepPoint> {
    let Some(spec) = &data.manifest.profile.sweep else { return Vec::new() };
    let mut out = Vec::new();
    for run in &data.manifest.modes {
        let mut by_rate: BTreeMap<String, Vec<&crate::load::RequestRecord>> = BTreeMap::new();
        for r in data.requests.iter().filter(|r| r.mode == run.mode) {
            if let Some(rate) = r.phase.strip_prefix("sweep ") {
                by_rate.entry(rate.to_string()).or_default().push(&r.r);
            }
        }
        let mut points: Vec<SweepPoint> = by_rate
            .into_iter()
            .filter_map(|(rate, recs)| {
                let offered: f64 = rate.parse().ok()?;
                let start = recs.iter().map(|r| r.time_s).fold(f64::MAX, f64::min);
                let end = start + spec.step_s;
                let ok = |r: &&&crate::load::RequestRecord| r.status > 0 && r.status < 500;
                let in_time = recs.iter().filter(ok).filter(|r| r.time_s + r.latency_us / 1e6 <= end).count();
                let errors = recs.iter().filter(|r| r.status == 0 || r.status >= 500).count();
                let mut lat: Vec<f64> = recs.iter().map(|r| r.latency_us).collect();
                lat.sort_by(f64::total_cmp);
                Some(SweepPoint {
                    mode: run.mode.clone(),
                    offered,
                    achieved_rps: in_time as f64 / spec.step_s,
                    p50_ms: quantile(&lat, 0.5) / 1e3,
                    p99_ms: quantile(&lat, 0.99) / 1e3,
                    error_pct: 100.0 * errors as f64 / recs.len() as f64,
                    requests: recs.len(),
                })
            })
            .collect();
        points.sort_by(|a, b| a.offered.total_cmp(&b.offered));
        out.extend(points);
    }
    out
}

/// The highest offered rate each mode sustained (p99 under the bound,
/// under 1% errors), with the requests per second it achieved there.
pub fn saturation(points: &[SweepPoint], p99_bound_ms: f64) -> BTreeMap<String, Option<(f64, f64)>> {
    let mut out: BTreeMap<String, Option<(f64, f64)>> = BTreeMap::new();
    for p in points {
        let best = out.entry(p.mode.clone()).or_default();
        if p.p99_ms <= p99_bound_ms && p.error_pct < 1.0 && best.is_none_or(|(o, _)| p.offered > o) {
            *best = Some((p.offered, p.achieved_rps));
        }
    }
    out
}
