//! `harness soak`: a mode under open-loop Online Boutique load at a
//! fraction (70%) of its saturation for a long time, every process of it
//! sampled each second - resident memory, open descriptors, entries of the
//! BPF maps it holds, and the pool slots in use
//! ([`crate::collect::resources`]) - and the run checked for growth
//! ([`check`]): what a leak looks like when the numbers of a short run do
//! not show it.
//!
//! Each mode's saturation comes from a short run of the sweep's search on
//! a deployment of its own (or `--rate` fixes the rate); the soak then runs
//! on a fresh deployment: the profile's warm-up, the soak (the phase
//! `measure`, the run's headline), and [`AFTER_LOAD`], in which the pools
//! must drain. Everything the check reads is stored in the run directory,
//! so the summary's soak table comes from the stored files alone.

use serde::{Deserialize, Serialize};

use super::config::SweepSpec;
use super::mode::{self, ModeResult, Plan};
use crate::deploy::Mode;
use crate::node::client::Node;
use crate::report::stats::quantile;
use crate::results::{ModeRun, ResourceSample, RunData};

/// The phase after the load: no requests; every slot must be back.
pub const AFTER_LOAD: &str = "after load";

/// How often every process is sampled.
pub const SAMPLE_MS: u64 = 1000;

/// What growth a soak tolerates: beyond any of these, it fails.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    /// Private resident memory (`RssAnon`: heap, stacks) may grow by this
    /// share of its level at the start ...
    pub private_memory_fraction: f64,
    /// ... or by this many bytes, whichever is larger. (Shared memory - the
    /// pools' pages, faulted in as slots are first used - is reported, not
    /// checked: it is bounded by the pools' size.)
    pub private_memory_bytes: u64,
    /// Open descriptors may grow by this many, at rest: the last sample
    /// before the load against the last after it (under load they follow
    /// the connections the load generator holds open, by the hundred).
    pub open_fds: u64,
    /// Entries of the BPF maps a process holds may grow by this many, at
    /// rest as descriptors.
    pub bpf_map_entries: u64,
    /// Pool slots still in use at the end of the phase after the load.
    pub pool_slots_after_load: u64,
    /// The start and the end of the soak are each the median over this
    /// share of it ...
    pub window_fraction: f64,
    /// ... and at least this many seconds.
    pub min_window_s: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Self {
            private_memory_fraction: 0.10,
            private_memory_bytes: 4 << 20,
            open_fds: 4,
            bpf_map_entries: 0,
            pool_slots_after_load: 0,
            window_fraction: 0.10,
            min_window_s: 3.0,
        }
    }
}

impl Tolerances {
    /// The tolerances in words, as the summary and the README state them.
    pub fn describe(&self, after_load_s: f64) -> String {
        format!(
            "private resident memory (RssAnon) may grow by max({:.0}%, {} MiB) over the soak - start and end are medians over its first and last {:.0}% (at least {} s each); at rest - the last sample before the load against the last of the {after_load_s} s after it - open descriptors may grow by {} and BPF map entries by {}, and at most {} pool slots may still be in use",
            self.private_memory_fraction * 100.0,
            self.private_memory_bytes as f64 / (1 << 20) as f64,
            self.window_fraction * 100.0,
            self.min_window_s,
            self.open_fds,
            self.bpf_map_entries,
            self.pool_slots_after_load,
        )
    }
}

/// What `harness soak` was asked for.
#[derive(Clone, Debug)]
pub struct Args {
    /// The soak's length (the phase `measure`), seconds.
    pub duration_s: f64,
    /// A fixed offered rate (tasks/s) instead of a share of the saturation.
    pub rate: Option<f64>,
    /// The share of each mode's saturation offered.
    pub load_fraction: f64,
    /// Cap on the search's probes, seconds (the profile's, if shorter).
    pub search_s: f64,
    /// The phase after the load, seconds.
    pub after_load_s: f64,
    pub tolerances: Tolerances,
    /// The command line, to print next to the numbers.
    pub command: String,
}

/// A soak as the manifest records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakRecord {
    /// The command that made the run.
    pub command: String,
    pub duration_s: f64,
    /// The share of the saturation offered (None: `--rate`).
    pub load_fraction: Option<f64>,
    /// The search's cap on its probes, seconds (None: `--rate`, no search).
    pub search_s: Option<f64>,
    pub after_load_s: f64,
    pub sample_ms: u64,
    pub tolerances: Tolerances,
    pub modes: Vec<SoakMode>,
}

/// How one mode's soak rate came about.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SoakMode {
    pub mode: String,
    /// The highest rate the search passed, tasks/s (None without a search).
    pub saturation_tasks_s: Option<f64>,
    /// How the search ended: its status and flags (`--rate`: none ran).
    pub search: String,
    /// The rate the soak offered, tasks/s (None: it did not run).
    pub rate_tasks_s: Option<f64>,
}

/// The soak's load, for [`mode::run_mode`].
#[derive(Clone, Copy, Debug)]
pub struct SoakLoad<'a> {
    /// Tasks per second.
    pub rate: f64,
    pub after_load_s: f64,
    pub sample_ms: u64,
    /// Arrivals and sessions (the profile's sweep).
    pub spec: &'a SweepSpec,
}

impl Args {
    /// The search's cap on its probes: ours, or the profile's if shorter.
    pub fn search_cap_s(&self, spec: &SweepSpec) -> f64 {
        spec.max_search_s.min(self.search_s)
    }

    pub fn record(&self, modes: Vec<SoakMode>, spec: &SweepSpec) -> SoakRecord {
        let searched = self.rate.is_none();
        SoakRecord {
            command: self.command.clone(),
            duration_s: self.duration_s,
            load_fraction: searched.then_some(self.load_fraction),
            search_s: searched.then(|| self.search_cap_s(spec)),
            after_load_s: self.after_load_s,
            sample_ms: SAMPLE_MS,
            tolerances: self.tolerances,
            modes,
        }
    }
}

/// One mode: its saturation (a short search on a deployment of its own)
/// unless the rate is given, then the soak on a fresh deployment. The
/// search's probes come back with the soak's rows.
pub fn run_mode(plan: &Plan, node: &mut Node, mode: Mode, index: usize, args: &Args, spec: &SweepSpec) -> (ModeResult, SoakMode) {
    let mut record = SoakMode { mode: mode.name().into(), ..Default::default() };
    let mut probes = Vec::new();
    let rate = match args.rate {
        Some(rate) => {
            record.search = "none: --rate".into();
            rate
        }
        None => {
            let short = SweepSpec { max_search_s: args.search_cap_s(spec), ..spec.clone() };
            eprintln!("harness: {}: the saturation search (at most {} s of probes) ...", mode.name(), short.max_search_s);
            let search = mode::run_mode(&Plan { sweep: Some(&short), soak: None, chaos: None, ..plan.clone() }, node, mode, 0, index);
            let saturation = crate::report::stats::saturation(&search.probes, &search.run);
            probes = search.probes;
            record.saturation_tasks_s = saturation.offered;
            record.search =
                std::iter::once(search.run.status.clone()).chain(search.run.flags.iter().cloned()).collect::<Vec<_>>().join("; ");
            match saturation.offered {
                Some(s) if !crate::stop::requested() => (args.load_fraction * s).round().max(1.0),
                _ => {
                    let why = if crate::stop::requested() {
                        "cut short: interrupted".to_string()
                    } else {
                        format!("failed: the search found no rate that passed ({})", record.search)
                    };
                    let mut r = ModeResult::not_run(0, index, mode, plan.target, why);
                    r.probes = probes;
                    return (r, record);
                }
            }
        }
    };
    record.rate_tasks_s = Some(rate);
    eprintln!("harness: {}: soak at {rate} tasks/s for {} s ...", mode.name(), args.duration_s);
    let load = SoakLoad { rate, after_load_s: args.after_load_s, sample_ms: SAMPLE_MS, spec };
    let mut r = mode::run_mode(&Plan { sweep: None, chaos: None, soak: Some(load), ..plan.clone() }, node, mode, 0, index);
    r.run.flags.push(match record.saturation_tasks_s {
        Some(s) => {
            format!("soak at {rate} tasks/s: {:.0}% of the highest rate its search passed ({s} tasks/s)", args.load_fraction * 100.0)
        }
        None => format!("soak at {rate} tasks/s (--rate)"),
    });
    r.probes.extend(probes);
    (r, record)
}

/// One metric of one process over the soak.
#[derive(Clone, Debug, PartialEq)]
pub struct Growth {
    /// Median over the start window.
    pub start: f64,
    /// Median over the end window.
    pub end: f64,
    /// Highest sample of the soak.
    pub max: f64,
    /// How much it may grow (None: reported, not checked).
    pub allowed: Option<f64>,
}

impl Growth {
    pub fn growth(&self) -> f64 {
        self.end - self.start
    }

    pub fn pass(&self) -> bool {
        self.allowed.is_none_or(|a| self.growth() <= a)
    }
}

/// The pools a control plane holds: in use during the soak and after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Slots {
    pub soak_max: f64,
    /// The last sample of the phase after the load (None: none was taken).
    pub after_load: Option<f64>,
    pub allowed: f64,
}

impl Slots {
    pub fn pass(&self) -> bool {
        self.after_load.is_some_and(|n| n <= self.allowed)
    }
}

/// One process of a soaked mode, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessCheck {
    pub component: String,
    pub group: String,
    pub pid: u32,
    /// Resident memory, all of it (reported) ...
    pub rss: Option<Growth>,
    /// ... private (checked) ...
    pub private_memory: Option<Growth>,
    /// ... and shared: the pools' pages (reported).
    pub shared_memory: Option<Growth>,
    pub fds: Option<Growth>,
    /// None: the process holds no counted BPF map.
    pub map_entries: Option<Growth>,
    /// None: the process holds no pool (not SPRIGHT's control plane).
    pub slots: Option<Slots>,
    /// What else failed it (it exited, or started, during the soak).
    pub problems: Vec<String>,
}

impl ProcessCheck {
    pub fn pass(&self) -> bool {
        self.problems.is_empty()
            && [&self.rss, &self.private_memory, &self.shared_memory, &self.fds, &self.map_entries].into_iter().flatten().all(Growth::pass)
            && self.slots.as_ref().is_none_or(Slots::pass)
    }

    /// Why it failed, one phrase per metric.
    pub fn failures(&self) -> Vec<String> {
        let mut out = self.problems.clone();
        for (name, g, unit) in [
            ("private memory", &self.private_memory, 1.0 / MIB),
            ("open descriptors", &self.fds, 1.0),
            ("BPF map entries", &self.map_entries, 1.0),
        ] {
            if let Some((g, allowed)) = g.as_ref().filter(|g| !g.pass()).and_then(|g| Some((g, g.allowed?))) {
                // MiB to a tenth, counts whole.
                let (u, n) = if unit == 1.0 { ("", 0) } else { (" MiB", 1) };
                out.push(format!("{name} grew by {:.n$}{u} (allowed {:.n$}{u})", g.growth() * unit, allowed * unit));
            }
        }
        if let Some(s) = self.slots.as_ref().filter(|s| !s.pass()) {
            out.push(match s.after_load {
                Some(n) => format!("{n} pool slots still in use after the load (allowed {})", s.allowed),
                None => "no sample of the pool slots after the load".into(),
            });
        }
        out
    }
}

/// Bytes in a MiB.
pub const MIB: f64 = (1u64 << 20) as f64;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// Checks every process of one soaked mode (`samples`: its rows) against
/// `tol`: memory at the start and the end of the soak (the phase
/// `measure`); descriptors, map entries and pool slots at rest, before the
/// load and after it. A process that exited, or started, during the soak
/// fails: in a soak that is a crash (or a restart after one).
pub fn check(samples: &[&ResourceSample], run: &ModeRun, tol: &Tolerances) -> Result<Vec<ProcessCheck>, String> {
    let soak = run.phase("measure").ok_or("no soak phase")?;
    let len = soak.secs();
    let w = (len * tol.window_fraction).max(tol.min_window_s).min(len / 2.0);
    let in_soak = |t: f64| t >= soak.from_s && t <= soak.to_s;
    let early = |t: f64| t >= soak.from_s && t <= soak.from_s + w;
    let late = |t: f64| t >= soak.to_s - w && t <= soak.to_s;
    let after = run.phase(AFTER_LOAD);
    let load_from = run.load_from_s();
    let before_load = |t: f64| t <= load_from;
    let after_load = |t: f64| after.is_some_and(|p| t > p.from_s && t <= p.to_s);
    // Gateway first, then by component (fn2 before fn10), as the reports list them.
    let order = |s: &ResourceSample| {
        let g = crate::report::stats::GROUPS.iter().position(|g| *g == s.s.group).unwrap_or(usize::MAX);
        let digits: String = s.s.component.chars().filter(char::is_ascii_digit).collect();
        (
            g,
            s.s.component.trim_end_matches(|c: char| c.is_ascii_digit()).to_string(),
            digits.parse::<u64>().unwrap_or(0),
            s.s.component.clone(),
            s.s.pid,
        )
    };
    let mut keys: Vec<_> = samples.iter().filter(|s| in_soak(s.s.time_s)).map(|s| order(s)).collect();
    keys.sort();
    keys.dedup();
    let keys: Vec<(String, u32)> = keys.into_iter().map(|k| (k.3, k.4)).collect();
    let mut out = Vec::new();
    for (component, pid) in keys {
        let (component, pid) = (component.as_str(), pid);
        let mine: Vec<&ResourceSample> = samples.iter().copied().filter(|s| s.s.pid == pid && s.s.component == component).collect();
        let growth = |value: &dyn Fn(&ResourceSample) -> Option<f64>, allowed: &dyn Fn(f64) -> Option<f64>| -> Option<Growth> {
            let at =
                |keep: &dyn Fn(f64) -> bool| -> Vec<f64> { mine.iter().filter(|s| keep(s.s.time_s)).filter_map(|s| value(s)).collect() };
            let (first, last, all) = (at(&early), at(&late), at(&in_soak));
            if first.is_empty() || last.is_empty() {
                return None;
            }
            let start = median(first);
            Some(Growth { start, end: median(last), max: all.into_iter().fold(f64::MIN, f64::max), allowed: allowed(start) })
        };
        // At rest: the last sample before the load against the last after it.
        let at_rest = |value: &dyn Fn(&ResourceSample) -> Option<f64>, allowed: u64| -> Option<Growth> {
            let last = |keep: &dyn Fn(f64) -> bool| mine.iter().filter(|s| keep(s.s.time_s)).filter_map(|s| value(s)).next_back();
            let (start, end) = (last(&before_load)?, last(&after_load)?);
            let max = mine.iter().filter_map(|s| value(s)).fold(f64::MIN, f64::max);
            Some(Growth { start, end, max, allowed: Some(allowed as f64) })
        };
        let mut problems = Vec::new();
        let seen = |keep: &dyn Fn(f64) -> bool| mine.iter().any(|s| keep(s.s.time_s));
        if !seen(&early) {
            problems.push("started during the soak (a restart?)".to_string());
        }
        if !seen(&late) {
            let last = mine.iter().map(|s| s.s.time_s).fold(f64::MIN, f64::max);
            problems.push(format!("exited during the soak ({:.0} s into it)", last - soak.from_s));
        }
        let slots = mine.iter().any(|s| s.s.pool_slots_in_use.is_some()).then(|| Slots {
            soak_max: mine.iter().filter(|s| in_soak(s.s.time_s)).filter_map(|s| s.s.pool_slots_in_use).max().unwrap_or(0) as f64,
            after_load: after
                .and_then(|p| {
                    mine.iter().filter(|s| s.s.time_s > p.from_s && s.s.time_s <= p.to_s).filter_map(|s| s.s.pool_slots_in_use).next_back()
                })
                .map(|n| n as f64),
            allowed: tol.pool_slots_after_load as f64,
        });
        out.push(ProcessCheck {
            component: component.to_string(),
            group: mine.first().map(|s| s.s.group.clone()).unwrap_or_default(),
            pid,
            rss: growth(&|s| Some(s.s.rss_bytes as f64), &|_| None),
            private_memory: growth(&|s| Some(s.s.rss_anon_bytes as f64), &|start| {
                Some((start * tol.private_memory_fraction).max(tol.private_memory_bytes as f64))
            }),
            shared_memory: growth(&|s| Some(s.s.rss_shmem_bytes as f64), &|_| None),
            fds: at_rest(&|s| Some(s.s.open_fds as f64), tol.open_fds),
            map_entries: at_rest(&|s| s.s.bpf_map_entries.map(|n| n as f64), tol.bpf_map_entries),
            slots,
            problems,
        });
    }
    Ok(out)
}

/// A soaked mode's verdict.
#[derive(Clone, Debug)]
pub struct ModeVerdict {
    pub mode: String,
    pub processes: Vec<ProcessCheck>,
    /// Why the mode fails beyond its processes (it did not run, no samples).
    pub problem: Option<String>,
    /// The soak's requests: how many, how many failed (no answer or 5xx),
    /// their p99 (ms), and the saturation search's bound on it (ms).
    pub requests: usize,
    pub errors: usize,
    pub p99_ms: f64,
    pub p99_bound_ms: Option<f64>,
}

impl ModeVerdict {
    pub fn pass(&self) -> bool {
        self.problem.is_none() && !self.processes.is_empty() && self.processes.iter().all(ProcessCheck::pass)
    }

    /// Whether the mode was overloaded during the soak: p99 beyond the
    /// search's bound, or 1% of the requests or more failed.
    pub fn overloaded(&self) -> bool {
        self.p99_bound_ms.is_some_and(|b| self.p99_ms > b) || self.errors * 100 >= self.requests.max(1)
    }

    /// What the verdict rests on when the soak was overloaded.
    pub fn overload_note(&self) -> Option<String> {
        self.overloaded().then(|| {
            format!(
                "overloaded during the soak (p99 {:.1} ms{}, {:.2}% of {} requests failed): memory can grow to what the overload held in flight and stay with the allocator - a lower rate (--rate, --load-fraction) tells that from a leak",
                self.p99_ms,
                self.p99_bound_ms.map_or(String::new(), |b| format!(" against the search's bound of {b} ms")),
                100.0 * self.errors as f64 / self.requests.max(1) as f64,
                self.requests
            )
        })
    }

    /// One line per failure: `MODE PROCESS: what`, and why the soak may
    /// say little when it was overloaded.
    pub fn failures(&self) -> Vec<String> {
        let mut out: Vec<String> = self.problem.iter().map(|p| format!("{}: {p}", self.mode)).collect();
        for p in &self.processes {
            out.extend(p.failures().into_iter().map(|f| format!("{} {} (pid {}): {f}", self.mode, p.component, p.pid)));
        }
        if !out.is_empty() {
            out.extend(self.overload_note().map(|n| format!("{}: {n}", self.mode)));
        }
        out
    }
}

/// Every soaked mode of a run, from its stored rows (empty for other runs).
pub fn verdicts(data: &RunData) -> Vec<ModeVerdict> {
    let Some(soak) = &data.manifest.soak else { return Vec::new() };
    data.manifest
        .modes
        .iter()
        .map(|run| {
            let mine: Vec<&ResourceSample> = data.resources.iter().filter(|s| s.mode == run.mode && s.repeat == run.repeat).collect();
            let (processes, problem) = if !run.ok() {
                (Vec::new(), Some(format!("not soaked: {}", run.status)))
            } else {
                match check(&mine, run, &soak.tolerances) {
                    Ok(p) if p.is_empty() => (p, Some("no process was sampled during the soak".into())),
                    Ok(p) => (p, None),
                    Err(e) => (Vec::new(), Some(e)),
                }
            };
            let mut latency: Vec<f64> = Vec::new();
            let mut errors = 0;
            for r in data.requests.iter().filter(|r| r.mode == run.mode && r.repeat == run.repeat && r.phase == "measure") {
                latency.push(r.r.latency_us / 1e3);
                errors += usize::from(super::search::is_error(r.r.status));
            }
            latency.sort_by(f64::total_cmp);
            ModeVerdict {
                mode: run.mode.clone(),
                processes,
                problem,
                requests: latency.len(),
                errors,
                p99_ms: quantile(&latency, 0.99),
                p99_bound_ms: data.manifest.profile.sweep.as_ref().map(|s| s.p99_bound_ms),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::resources::ResourceRow;
    use crate::results::Phase;

    /// A 600 s soak from t = 100 (after an idle and a warm-up phase), then
    /// 10 s after the load.
    fn run() -> ModeRun {
        let phase = |label: &str, from_s: f64, to_s: f64| Phase { label: label.into(), from_s, to_s, offered: None };
        ModeRun {
            mode: "s-spright".into(),
            status: "ok".into(),
            phases: vec![
                phase("idle", 80.0, 90.0),
                phase("warmup", 90.0, 100.0),
                phase("measure", 100.0, 700.0),
                phase(AFTER_LOAD, 700.0, 710.0),
            ],
            ..Default::default()
        }
    }

    /// Deterministic noise in [-1, 1].
    fn noise(i: u64) -> f64 {
        let mut r = crate::load::Rng(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        r.unit() * 2.0 - 1.0
    }

    /// One sample a second from t = 80 to 710 of a process whose numbers
    /// `f(t)` gives: (private memory, fds, map entries, slots); its shared
    /// memory grows as a pool's pages are first touched (100 KiB a second,
    /// up to 48 MiB): reported, never a failure.
    fn series(component: &str, group: &str, f: impl Fn(f64, u64) -> (f64, f64, Option<u64>, Option<u64>)) -> Vec<ResourceSample> {
        (80..=710)
            .map(|t| {
                let (anon, fds, maps, slots) = f(t as f64, t);
                let shmem = (t as f64 * 100.0 * 1024.0).min(48.0 * MIB);
                ResourceSample {
                    repeat: 0,
                    mode: "s-spright".into(),
                    phase: run().phase_at(t as f64).into(),
                    s: ResourceRow {
                        time_s: t as f64,
                        component: component.into(),
                        group: group.into(),
                        pid: if group == "gateway" { 10 } else { 11 },
                        rss_bytes: (anon + shmem).max(0.0) as u64,
                        rss_anon_bytes: anon.max(0.0) as u64,
                        rss_shmem_bytes: shmem as u64,
                        open_fds: fds.max(0.0) as u64,
                        bpf_map_entries: maps,
                        pool_slots_in_use: slots,
                    },
                }
            })
            .collect()
    }

    fn checked(rows: &[ResourceSample]) -> Vec<ProcessCheck> {
        check(&rows.iter().collect::<Vec<_>>(), &run(), &Tolerances::default()).unwrap()
    }

    /// Under load from t = 90 to 700.
    fn loaded(t: f64) -> bool {
        t > 90.0 && t <= 700.0
    }

    /// A gateway at 40 MiB +- 3 MiB, 30 descriptors at rest and 30 to 110
    /// under load (the load generator's connections come and go), 24 map
    /// entries, a few slots in use under load and none after it; a
    /// function at 8 MiB +- 1 MiB: both pass.
    #[test]
    fn a_flat_noisy_soak_passes() {
        let mut rows = series("gateway", "gateway", |t, i| {
            let slots = if loaded(t) { (3.0 + 3.0 * noise(i + 7)).round() as u64 } else { 0 };
            let fds = if loaded(t) { 70.0 + (40.0 * noise(i + 1)).round() } else { 30.0 };
            (40.0 * MIB + 3.0 * MIB * noise(i), fds, Some(24), Some(slots))
        });
        rows.extend(series("fn1", "function", |_, i| (8.0 * MIB + MIB * noise(i + 3), 12.0 + noise(i + 5).round(), None, None)));
        let checks = checked(&rows);
        assert_eq!(checks.len(), 2);
        for c in &checks {
            assert!(c.pass(), "{c:?}: {:?}", c.failures());
        }
        let gw = checks.iter().find(|c| c.component == "gateway").unwrap();
        assert_eq!(gw.map_entries.as_ref().map(|g| (g.start, g.end)), Some((24.0, 24.0)));
        assert_eq!(gw.slots.as_ref().and_then(|s| s.after_load), Some(0.0));
        assert!(gw.private_memory.as_ref().unwrap().max > 42.0 * MIB);
        let shared = gw.shared_memory.as_ref().unwrap();
        assert!(shared.growth() > 30.0 * MIB && shared.pass(), "the pool's pages: reported, not checked");
        let f = checks.iter().find(|c| c.component == "fn1").unwrap();
        assert!(f.map_entries.is_none() && f.slots.is_none(), "n.a. for a function");
    }

    /// 20 KiB a second more (12 MiB over the 10 minutes) under the same
    /// noise: the memory check fails, and says by how much.
    #[test]
    fn a_leaking_soak_fails() {
        let rows = series("gateway", "gateway", |t, i| {
            let leak = (t - 100.0).max(0.0) * 20.0 * 1024.0;
            let fds = if loaded(t) { 70.0 + (40.0 * noise(i + 1)).round() } else { 30.0 };
            (40.0 * MIB + leak + 3.0 * MIB * noise(i), fds, Some(24), Some(0))
        });
        let c = &checked(&rows)[0];
        assert!(!c.pass());
        let f = c.failures();
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("private memory grew by 1"), "{f:?}");
        assert!(f[0].ends_with("(allowed 4.0 MiB)"), "{f:?}");
    }

    /// A descriptor per minute, a map entry every 100 s, slots left in use
    /// after the load: each fails on its own (at rest, after the load).
    #[test]
    fn leaked_descriptors_map_entries_and_slots_fail() {
        let rows = series("gateway", "gateway", |t, _| {
            let s = (t - 100.0).max(0.0);
            (40.0 * MIB, 30.0 + (s / 60.0).floor(), Some(24 + (s / 100.0) as u64), Some(if t > 700.0 { 2 } else { 5 }))
        });
        let c = &checked(&rows)[0];
        let f = c.failures();
        assert_eq!(f.len(), 3, "{f:?}");
        assert_eq!(f[0], "open descriptors grew by 10 (allowed 4)", "{f:?}");
        assert_eq!(f[1], "BPF map entries grew by 6 (allowed 0)", "{f:?}");
        assert_eq!(f[2], "2 pool slots still in use after the load (allowed 0)");
    }

    /// A failure while the mode was overloaded says so: the growth may be
    /// the overload's, kept by the allocator.
    #[test]
    fn an_overloaded_soak_says_what_its_failure_rests_on() {
        let rows = series("gateway", "gateway", |t, _| (40.0 * MIB + if t > 300.0 { 20.0 * MIB } else { 0.0 }, 30.0, None, Some(0)));
        let v = |p99_ms: f64| ModeVerdict {
            mode: "e-spright".into(),
            processes: checked(&rows),
            problem: None,
            requests: 1000,
            errors: 0,
            p99_ms,
            p99_bound_ms: Some(50.0),
        };
        let (calm, overloaded) = (v(5.0), v(180.0));
        assert!(!calm.pass() && !overloaded.pass());
        assert_eq!(calm.failures().len(), 1, "{:?}", calm.failures());
        let f = overloaded.failures();
        assert!(f[1].starts_with("e-spright: overloaded during the soak (p99 180.0 ms against the search's bound of 50 ms"), "{f:?}");
        assert!(ModeVerdict { errors: 10, ..calm }.overloaded(), "1% of the requests failed");
    }

    #[test]
    fn a_process_that_exits_during_the_soak_fails() {
        let mut rows = series("fn1", "function", |_, _| (8.0 * MIB, 12.0, None, None));
        rows.retain(|r| r.s.time_s < 400.0);
        let c = &checked(&rows)[0];
        assert_eq!(c.failures(), vec!["exited during the soak (299 s into it)".to_string()]);
        assert!(c.private_memory.is_none());
    }
}
