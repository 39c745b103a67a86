//! Numbers per (repeat, mode), computed from a run's stored rows only, and
//! per mode over the repeats.

use std::collections::BTreeMap;

use testkit::proc::CpuTimes;

use super::estimate::{paired_ratio, Estimate};
use crate::results::{ModeRun, ProbeRow, RunData};

/// The paper's chain ids for Online Boutique's request types, for labels:
/// `ch3 product`. Other request types keep their name.
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
    pub p99_ms: f64,
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
    Latency { count: us.len(), p50_ms: ms(0.5), p99_ms: ms(0.99) }
}

fn add(a: &mut CpuTimes, b: &CpuTimes) {
    a.user += b.user;
    a.nice += b.nice;
    a.system += b.system;
    a.idle += b.idle;
    a.iowait += b.iowait;
    a.irq += b.irq;
    a.softirq += b.softirq;
    a.steal += b.steal;
}

/// Which CPUs a per-CPU number belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuSet {
    /// The CPUs the system under test was pinned to.
    System,
    /// The load generator's (and the harness's) CPUs.
    Load,
    /// Every CPU: the machine-wide cross-check.
    Machine,
}

/// One mode in one repeat, over its headline phase (the measured load, or
/// the sweep's common-rate probe).
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
    /// CPU-seconds by process (procfs utime + stime), per group.
    pub cpu_s: BTreeMap<String, f64>,
    /// Mean cores by process with no load, per group.
    pub idle_cores: BTreeMap<String, f64>,
    /// Context switches (voluntary + involuntary) by process, per group.
    pub switches: BTreeMap<String, u64>,
    /// `/proc/stat` time of the system's CPUs, of the load generator's CPUs and of all CPUs.
    pub cpus_system: CpuTimes,
    pub cpus_load: CpuTimes,
    pub cpus_machine: CpuTimes,
    /// Cores the system used with no load, measured as the headline is.
    pub idle_system_cores: f64,
    /// The system under test and the load generator ran on CPUs of their own.
    pub pinned_apart: bool,
    /// Counters by (source, scope, name); per-CPU interrupt rows are summed
    /// into the scopes `system`, `load` and `machine`.
    pub counters: BTreeMap<(String, String, String), f64>,
}

impl ModeStats {
    pub fn secs(&self) -> f64 {
        self.run.measure_s()
    }

    /// Whether per-process CPU comes from the eBPF collector's exact on-CPU
    /// time (else from procfs's utime + stime, in whole 10 ms clock ticks).
    pub fn exact_cpu(&self) -> bool {
        self.counters.keys().any(|(s, _, n)| s == "ebpf" && n == "oncpu_ns")
    }

    /// CPU-seconds of one group's processes: their exact on-CPU time where
    /// the eBPF collector ran, else utime + stime. None when the group has none.
    pub fn group_cpu(&self, group: &str) -> Option<f64> {
        if self.exact_cpu() {
            self.counters.get(&("ebpf".to_string(), group.to_string(), "oncpu_ns".to_string())).map(|ns| ns / 1e9)
        } else {
            self.cpu_s.get(group).copied()
        }
    }

    /// CPU-seconds of the system under test's processes ([`Self::group_cpu`] summed).
    pub fn cpu_by_process(&self) -> f64 {
        GROUPS.iter().filter(|g| **g != "load").filter_map(|g| self.group_cpu(g)).fold(0.0, |a, v| a + v)
    }

    /// On-CPU seconds on a CPU set of processes outside the run other than
    /// ksoftirqd: the machine's agents and kernel threads (eBPF; 0 without it).
    pub fn background_cpu(&self, set: CpuSet) -> f64 {
        self.oncpu_on(set, "background_oncpu_ns")
    }

    /// On-CPU seconds of ksoftirqd on a CPU set (eBPF; 0 without it).
    pub fn ksoftirqd_cpu(&self, set: CpuSet) -> f64 {
        self.oncpu_on(set, "ksoftirqd_oncpu_ns")
    }

    fn oncpu_on(&self, set: CpuSet, name: &str) -> f64 {
        let scope = match set {
            CpuSet::System => "system",
            CpuSet::Load => "load",
            CpuSet::Machine => "machine",
        };
        self.sum_where(|s, g, n| s == "ebpf" && g == scope && n == name) / 1e9
    }

    /// The CPU set whose numbers stand for the system: its own CPUs, or
    /// every CPU when it shared them with the load generator.
    fn system_set(&self) -> CpuSet {
        if self.pinned_apart {
            CpuSet::System
        } else {
            CpuSet::Machine
        }
    }

    /// CPU-seconds the system's CPUs were busy by `/proc/stat`, less what
    /// is known not to be the system's there: the background (every
    /// process outside the run but ksoftirqd, measured with eBPF where it
    /// ran) and, when the system shared its CPUs with the load generator,
    /// the harness process. Tick-sampled: at low utilization it misses or
    /// over-counts short bursts (see [`Self::cpu_with_kernel`]).
    pub fn cpu_by_proc_stat(&self) -> f64 {
        if self.pinned_apart {
            (self.cpus_system.busy() - self.background_cpu(CpuSet::System)).max(0.0)
        } else {
            (self.cpus_machine.busy() - self.group_cpu("load").unwrap_or(0.0) - self.background_cpu(CpuSet::Machine)).max(0.0)
        }
    }

    /// CPU-seconds the system under test cost, kernel included - the
    /// headline. With the eBPF collector: the exact on-CPU time of the
    /// system's processes (which includes the interrupt and softirq work -
    /// the network stack - done while they were on the CPU) plus that of
    /// ksoftirqd on the system's CPUs (network work deferred from
    /// interrupts). Without it: [`Self::cpu_by_proc_stat`].
    pub fn cpu_with_kernel(&self) -> f64 {
        if self.exact_cpu() {
            self.cpu_by_process() + self.ksoftirqd_cpu(self.system_set())
        } else {
            self.cpu_by_proc_stat()
        }
    }

    /// How far `/proc/stat`'s measure is from the headline, relative to the
    /// headline (without eBPF: how far the per-process sum is from it).
    pub fn cpu_gap(&self) -> f64 {
        let k = self.cpu_with_kernel();
        let other = if self.exact_cpu() { self.cpu_by_proc_stat() } else { self.cpu_by_process() };
        if k > 0.0 {
            (other - k) / k
        } else {
            0.0
        }
    }

    /// Headline: CPU-seconds per 1 000 requests, kernel included.
    pub fn cpu_per_1000(&self) -> f64 {
        self.per_request(self.cpu_with_kernel()) * 1000.0
    }

    /// CPU-seconds per 1 000 requests of one group's processes.
    pub fn group_cpu_per_1000(&self, group: &str) -> Option<f64> {
        self.group_cpu(group).map(|v| self.per_request(v) * 1000.0)
    }

    /// Mean busy cores of the system under test (kernel included).
    pub fn cores(&self) -> f64 {
        let s = self.secs();
        if s > 0.0 {
            self.cpu_with_kernel() / s
        } else {
            0.0
        }
    }

    /// Mean busy cores of the load generator's CPUs.
    pub fn load_cores(&self) -> f64 {
        let s = self.secs();
        if s > 0.0 {
            self.cpus_load.busy() / s
        } else {
            0.0
        }
    }

    pub fn per_request(&self, value: f64) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            value / self.requests as f64
        }
    }

    pub fn per_second(&self, value: f64) -> f64 {
        let s = self.secs();
        if s > 0.0 {
            value / s
        } else {
            0.0
        }
    }

    /// The counters whose (source, scope, name) `keep` accepts, summed.
    pub fn sum_where(&self, keep: impl Fn(&str, &str, &str) -> bool) -> f64 {
        // fold, not sum: an empty f64 sum is -0.0.
        self.counters.iter().filter(|((s, g, n), _)| keep(s, g, n)).fold(0.0, |a, (_, v)| a + v)
    }

    /// Counters of `source` named `names` in processes of `groups`, per request.
    pub fn source_per_request(&self, source: &str, groups: &[&str], names: &[&str]) -> f64 {
        self.per_request(self.sum_where(|s, g, n| s == source && groups.contains(&g) && names.contains(&n)))
    }

    /// Whether this run collected counters of `source` for the mode.
    pub fn has_source(&self, source: &str) -> bool {
        self.counters.keys().any(|(s, _, _)| s == source)
    }

    /// Interrupts of `source` (`irq` or `softirq`, optionally one `name`) on a CPU set.
    pub fn interrupts(&self, source: &str, set: CpuSet, name: Option<&str>) -> f64 {
        let scope = match set {
            CpuSet::System => "system",
            CpuSet::Load => "load",
            CpuSet::Machine => "machine",
        };
        self.sum_where(|s, g, n| s == source && g == scope && name.is_none_or(|want| want == n))
    }
}

/// The CPU numbers of one phase of one (repeat, mode): per-process CPU,
/// switches, `/proc/stat` per CPU set, and the counters - per-CPU rows
/// summed into the scopes `system`, `load` and `machine`.
fn phase_cpu(data: &RunData, run: &ModeRun, phase: &str) -> ModeStats {
    let m = &data.manifest;
    let (system, load) = (m.system_cpus(), m.load_cpus());
    let mine = |repeat: usize, mode: &str, p: &str| repeat == run.repeat && mode == run.mode && p == phase;
    let mut s = ModeStats { mode: run.mode.clone(), run: run.clone(), pinned_apart: m.pinned_apart(), ..Default::default() };
    for c in data.cpu.iter().filter(|c| mine(c.repeat, &c.mode, &c.phase)) {
        *s.cpu_s.entry(c.s.group.clone()).or_default() += c.s.cpu_s;
        *s.switches.entry(c.s.group.clone()).or_default() += c.s.voluntary + c.s.involuntary;
    }
    for c in data.cpustat.iter().filter(|c| mine(c.repeat, &c.mode, &c.phase)) {
        add(&mut s.cpus_machine, &c.s.t);
        if system.contains(&c.s.cpu) {
            add(&mut s.cpus_system, &c.s.t);
        }
        if load.contains(&c.s.cpu) {
            add(&mut s.cpus_load, &c.s.t);
        }
    }
    for k in data.counters.iter().filter(|k| mine(k.repeat, &k.mode, &k.phase)) {
        let cpu = k.scope.strip_prefix("cpu").and_then(|c| c.parse::<usize>().ok());
        let scopes: Vec<&str> = match cpu {
            Some(c) => [("system", system.contains(&c)), ("load", load.contains(&c)), ("machine", true)]
                .into_iter()
                .filter(|(_, yes)| *yes)
                .map(|(s, _)| s)
                .collect(),
            None => vec![k.scope.as_str()],
        };
        for scope in scopes {
            *s.counters.entry((k.source.clone(), scope.to_string(), k.name.clone())).or_default() += k.value;
        }
    }
    s
}

/// Per-(repeat, mode) statistics, in the manifest's order.
pub fn compute(data: &RunData) -> Vec<ModeStats> {
    data.manifest
        .modes
        .iter()
        .map(|run| {
            let phase = run.headline_phase();
            let mut s = phase_cpu(data, run, phase);
            let measured: Vec<_> =
                data.requests.iter().filter(|r| r.repeat == run.repeat && r.mode == run.mode && r.phase == phase).collect();
            s.requests = measured.len();
            s.errors = measured.iter().filter(|r| crate::experiment::search::is_error(r.r.status)).count();
            let secs = run.measure_s();
            s.throughput = if secs > 0.0 { s.requests as f64 / secs } else { 0.0 };
            s.latency_all = latency(measured.iter().map(|r| r.r.latency_us).collect());
            let mut by_type: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for r in &measured {
                by_type.entry(r.r.request.clone()).or_default().push(r.r.latency_us);
            }
            s.latency = by_type.into_iter().map(|(k, v)| (k, latency(v))).collect();
            // The idle phase, measured as the headline is.
            let idle_secs = run.phase("idle").map_or(0.0, |p| p.secs());
            if idle_secs > 0.0 {
                let idle = phase_cpu(data, run, "idle");
                s.idle_cores = idle.cpu_s.iter().map(|(g, v)| (g.clone(), v / idle_secs)).collect();
                s.idle_system_cores = idle.cpu_with_kernel() / idle_secs;
            }
            s
        })
        .collect()
}

/// One mode's repeats, in the order of the experiment's mode list.
pub struct ModeRepeats<'a> {
    pub mode: String,
    pub label: String,
    /// Indexed by repeat; None where the mode did not run ok.
    pub by_repeat: Vec<Option<&'a ModeStats>>,
}

impl<'a> ModeRepeats<'a> {
    pub fn ok(&self) -> impl Iterator<Item = &'a ModeStats> + '_ {
        self.by_repeat.iter().flatten().copied()
    }

    /// `f` over the repeats that ran ok.
    pub fn estimate(&self, f: impl Fn(&ModeStats) -> f64) -> Option<Estimate> {
        Estimate::of(&self.ok().map(f).collect::<Vec<_>>())
    }

    /// `f` per repeat (None where the mode did not run ok).
    pub fn per_repeat(&self, f: impl Fn(&ModeStats) -> f64) -> Vec<Option<f64>> {
        self.by_repeat.iter().map(|s| s.map(&f)).collect()
    }
}

/// The modes of the run with their repeats.
pub fn by_mode<'a>(data: &RunData, stats: &'a [ModeStats]) -> Vec<ModeRepeats<'a>> {
    let repeats = stats.iter().map(|s| s.run.repeat + 1).max().unwrap_or(0).max(data.manifest.repeats);
    data.manifest
        .mode_names()
        .into_iter()
        .map(|mode| {
            let mut by_repeat = vec![None; repeats];
            for s in stats.iter().filter(|s| s.mode == mode && s.run.ok() && s.requests > 0) {
                by_repeat[s.run.repeat] = Some(s);
            }
            let label = stats.iter().find(|s| s.mode == mode).map_or_else(|| mode.clone(), |s| s.run.label.clone());
            ModeRepeats { mode, label, by_repeat }
        })
        .collect()
}

/// `f(a) / f(b)` paired per repeat.
pub fn ratio(a: &ModeRepeats, b: &ModeRepeats, f: impl Fn(&ModeStats) -> f64) -> Option<Estimate> {
    let pairs: Vec<(Option<f64>, Option<f64>)> = a.per_repeat(&f).into_iter().zip(b.per_repeat(&f)).collect();
    paired_ratio(&pairs)
}

/// A mode's saturation point in one repeat, from its probes.
#[derive(Clone, Debug, PartialEq)]
pub struct Saturation {
    /// Highest offered rate that passed (tasks/s), and the requests/s answered in time there.
    pub offered: Option<f64>,
    pub achieved_rps: Option<f64>,
    /// No probe failed: the point is a lower bound.
    pub lower_bound: bool,
}

/// Saturation per (repeat, mode): the highest passing probe; a lower bound
/// when no probe failed or the generator fell behind (its flag says so).
pub fn saturation(probes: &[ProbeRow], run: &ModeRun) -> Saturation {
    let mine: Vec<&ProbeRow> = probes.iter().filter(|p| p.repeat == run.repeat && p.mode == run.mode).collect();
    let best = mine.iter().filter(|p| p.passed).max_by(|a, b| a.offered.total_cmp(&b.offered));
    // A probe the generator could not keep up with failed, but says nothing about the system.
    let generator_limited = run.flags.iter().any(|f| f.starts_with("load generator limited"));
    let any_failed = mine.iter().any(|p| !p.passed);
    Saturation {
        offered: best.map(|p| p.offered),
        achieved_rps: best.map(|p| p.achieved_rps()),
        lower_bound: best.is_some() && (!any_failed || generator_limited),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturation_is_the_highest_passing_probe() {
        let run = ModeRun { repeat: 0, mode: "s".into(), status: "ok".into(), ..Default::default() };
        let probe = |offered: f64, passed: bool| ProbeRow {
            repeat: 0,
            mode: "s".into(),
            phase: String::new(),
            offered,
            duration_s: 2.0,
            tasks: 0,
            stats: crate::experiment::search::ProbeStats { in_time: (offered * 2.2) as u64, ..Default::default() },
            passed,
        };
        let probes = [probe(50.0, true), probe(100.0, true), probe(200.0, false), probe(150.0, true), probe(175.0, false)];
        let s = saturation(&probes, &run);
        assert_eq!((s.offered, s.achieved_rps, s.lower_bound), (Some(150.0), Some(165.0), false));
        let never = saturation(&probes[..2], &run);
        assert_eq!((never.offered, never.lower_bound), (Some(100.0), true));
        assert_eq!(saturation(&[probe(50.0, false)], &run).offered, None);
    }
}
