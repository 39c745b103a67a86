//! One self-describing directory per run: `manifest.yaml`, then the
//! tables as parquet (written and read with polars; CSV copies unless the
//! run is a committed reference). Reports and figures are computed from
//! these files alone, so `harness figures RUN_DIR` reproduces them.
//!
//! Tables (one row per ...):
//! * `requests`: request, with its repeat, mode, phase and type, when it
//!   was sent (microseconds since the run started) and its latency
//!   (microseconds). Not kept for the saturation search's probes, which
//!   `probes` summarizes (a search sends millions of requests);
//! * `cpu`: process per sampling interval (procfs utime + stime, switches);
//! * `cpustat`: CPU per sampling interval (`/proc/stat`: user, nice, system,
//!   idle, iowait, irq, softirq, steal, seconds);
//! * `counters`: counter per phase (interrupts and softirqs per CPU, eBPF
//!   events per component group, perf, the runtimes' (de)serializations);
//! * `probes`: step of an open-loop sweep, with the statistics computed
//!   from every request it sent;
//! * `resources` (soak runs): process per second - resident memory (all,
//!   private anonymous, shared), open descriptors, BPF map entries, pool
//!   slots in use (null: not held).

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::collect::resources::ResourceRow;
use crate::collect::sampler::{CpuRow, CpuStatRow};
use crate::experiment::config::Profile;
use crate::experiment::search::ProbeStats;
use crate::load::RequestRecord;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub workload: String,
    pub profile_name: String,
    pub profile: Profile,
    /// `users` (closed loop), `sweep` (open-loop saturation search) or
    /// `replay` (motion trace, parking bursts).
    pub load_kind: String,
    pub seed: u64,
    /// How many times the whole mode sequence ran (interleaved, the mode
    /// order rotated each repeat).
    pub repeats: usize,
    pub started_at: String,
    /// The commit every binary was built from; `-dirty` when the tree had
    /// uncommitted changes.
    pub git_revision: String,
    /// Written as a reference run (`--reference`); with `allow_dirty` it
    /// was made from a dirty tree, which the summary says.
    #[serde(default)]
    pub reference: bool,
    #[serde(default)]
    pub allow_dirty: bool,
    /// `release` or `debug` - the build every measured binary came from.
    pub build_profile: String,
    pub kernel: String,
    pub cpu_model: String,
    /// How the kernel accounts CPU time (tick sampling or precise, and
    /// where interrupt time goes): what the CPU columns can resolve.
    #[serde(default)]
    pub cpu_accounting: String,
    /// CPUs this process could use when the run began (before it pinned itself).
    pub cores: usize,
    pub allowed_cpus: Vec<usize>,
    pub root: bool,
    pub bpf: String,
    pub collectors: Vec<String>,
    /// How often the CPU sampler read procfs (it also samples at every phase boundary).
    pub sample_ms: u64,
    pub crate_versions: Vec<String>,
    /// Two nodes (`--sut`): the machine fields above are then the
    /// system-under-test node's; this says how it was reached and what the
    /// load generator ran on. None: one node, this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_nodes: Option<TwoNodes>,
    /// One entry per (repeat, mode), in the order they ran.
    pub modes: Vec<ModeRun>,
    pub warnings: Vec<String>,
    /// A soak (`harness soak`): its length, rates, and tolerances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::experiment::soak::SoakRecord>,
}

/// Where each side of a two-node run ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TwoNodes {
    /// How the driver reached the system-under-test node (`ssh://USER@HOST[:PORT]`).
    pub sut: String,
    pub sut_hostname: String,
    /// The address there that the load targeted.
    pub target: String,
    /// The network path the load crossed: the load node's route to `target`.
    pub path: String,
    /// The load generator's node.
    pub load: crate::node::protocol::NodeFacts,
    /// How node-0 ran the modes: `processes` it started, or `k8s` (the
    /// project's manifests on the Kubernetes cluster).
    #[serde(default)]
    pub deployed_as: crate::deploy::Target,
}

impl Manifest {
    /// Whether the modes ran the saturation search (a sweep, or the one a
    /// chaos run begins with).
    pub fn has_sweep(&self) -> bool {
        matches!(self.load_kind.as_str(), "sweep" | "chaos")
    }

    /// The CPUs the system under test ran on (all allowed CPUs when unpinned).
    pub fn system_cpus(&self) -> Vec<usize> {
        if self.profile.pin.system.is_empty() {
            self.allowed_cpus.clone()
        } else {
            self.profile.pin.system.clone()
        }
    }

    /// The CPUs the load generator (and the harness) ran on.
    pub fn load_cpus(&self) -> Vec<usize> {
        if self.profile.pin.load.is_empty() {
            self.allowed_cpus.clone()
        } else {
            self.profile.pin.load.clone()
        }
    }

    /// Whether the system under test and the load generator had CPUs of their own.
    pub fn pinned_apart(&self) -> bool {
        let (s, l) = (&self.profile.pin.system, &self.profile.pin.load);
        !s.is_empty() && !l.is_empty() && s.iter().all(|c| !l.contains(c))
    }

    /// Mode names in the order of the experiment (the first repeat's order).
    pub fn mode_names(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut runs: Vec<&ModeRun> = self.modes.iter().collect();
        runs.sort_by_key(|r| r.repeat);
        let first = runs.first().map(|r| r.repeat).unwrap_or(0);
        let mut firsts: Vec<&ModeRun> = runs.iter().copied().filter(|r| r.repeat == first).collect();
        firsts.sort_by_key(|r| r.mode_index);
        for r in firsts.into_iter().chain(runs) {
            if !out.contains(&r.mode) {
                out.push(r.mode.clone());
            }
        }
        out
    }
}

/// A window of a mode's timeline, between two samples of every collector.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `idle`, `warmup`, `measure`, or a sweep step (`common`, `probe N`).
    pub label: String,
    /// Seconds since the run started.
    pub from_s: f64,
    pub to_s: f64,
    /// Open-loop steps: offered Online Boutique tasks per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered: Option<f64>,
}

impl Phase {
    pub fn secs(&self) -> f64 {
        (self.to_s - self.from_s).max(0.0)
    }
}

/// What happened to one mode in one repeat.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeRun {
    pub repeat: usize,
    /// The mode's place in the experiment's mode list (not in this repeat's rotated order).
    pub mode_index: usize,
    pub mode: String,
    pub label: String,
    /// `ok`, `skipped: why`, `failed: why` or `cut short: why`.
    pub status: String,
    pub users: usize,
    /// Consecutive windows, in time order; counters and CPU rows carry their labels.
    pub phases: Vec<Phase>,
    pub flags: Vec<String>,
    pub components: Vec<ComponentInfo>,
}

impl ModeRun {
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }

    pub fn phase(&self, label: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.label == label)
    }

    /// The phase whose numbers the summary reports: the measured load, or
    /// the sweep's common-rate step.
    pub fn headline_phase(&self) -> &str {
        if self.phase("common").is_some() {
            "common"
        } else {
            "measure"
        }
    }

    pub fn headline(&self) -> Option<&Phase> {
        self.phase(self.headline_phase())
    }

    pub fn measure_s(&self) -> f64 {
        self.headline().map_or(0.0, Phase::secs)
    }

    /// Seconds since the run started when the load began (warm-up included).
    pub fn load_from_s(&self) -> f64 {
        self.phases.iter().find(|p| p.label != "idle").map_or(0.0, |p| p.from_s)
    }

    /// The phase a time falls in (`setup` before the first, `drain` after
    /// the last, `between` in a pause between two).
    pub fn phase_at(&self, t: f64) -> &str {
        match self.phases.iter().find(|p| t > p.from_s && t <= p.to_s) {
            Some(p) => &p.label,
            None if self.phases.first().is_none_or(|p| t <= p.from_s) => "setup",
            None if self.phases.last().is_some_and(|p| t > p.to_s) => "drain",
            None => "between",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentInfo {
    pub name: String,
    pub group: String,
    pub pid: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RequestRow {
    pub repeat: usize,
    pub mode: String,
    pub phase: String,
    pub r: RequestRecord,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CpuSample {
    pub repeat: usize,
    pub mode: String,
    pub phase: String,
    pub s: CpuRow,
}

/// One process at one instant of a soak.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceSample {
    pub repeat: usize,
    pub mode: String,
    pub phase: String,
    pub s: ResourceRow,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CpuStatSample {
    pub repeat: usize,
    pub mode: String,
    pub phase: String,
    pub s: CpuStatRow,
}

/// A count over a phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CounterRow {
    pub repeat: usize,
    pub mode: String,
    pub phase: String,
    /// `irq`, `softirq`, `ebpf`, `perf` or `runtime`.
    pub source: String,
    /// `cpuN` for per-CPU interrupt counts, else the component group.
    pub scope: String,
    pub name: String,
    pub value: f64,
}

/// One step of an open-loop sweep, summarized from every request it sent.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeRow {
    pub repeat: usize,
    pub mode: String,
    pub phase: String,
    /// Offered Online Boutique tasks per second.
    pub offered: f64,
    pub duration_s: f64,
    pub tasks: u64,
    pub stats: ProbeStats,
    /// p99 under the bound, errors under 1%, generator on time.
    pub passed: bool,
}

impl ProbeRow {
    pub fn achieved_rps(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.stats.in_time as f64 / self.duration_s
        } else {
            0.0
        }
    }

    pub fn error_pct(&self) -> f64 {
        if self.stats.requests == 0 {
            100.0
        } else {
            100.0 * self.stats.errors as f64 / self.stats.requests as f64
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunData {
    pub manifest: Manifest,
    pub requests: Vec<RequestRow>,
    pub cpu: Vec<CpuSample>,
    pub cpustat: Vec<CpuStatSample>,
    pub counters: Vec<CounterRow>,
    pub probes: Vec<ProbeRow>,
    pub resources: Vec<ResourceSample>,
}

fn err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// A column of a frame being built: name and values.
fn col<T, V>(name: &str, rows: &[T], f: impl Fn(&T) -> V) -> Column
where
    Series: NamedFrom<Vec<V>, [V]>,
{
    Series::new(name.into(), rows.iter().map(f).collect::<Vec<V>>()).into_column()
}

/// A text column stored as a dictionary (categorical): repeated labels cost nothing.
fn cat<T>(name: &str, rows: &[T], f: impl Fn(&T) -> &str) -> Result<Column, String> {
    let s = Series::new(name.into(), rows.iter().map(f).collect::<Vec<&str>>());
    s.cast(&DataType::from_categories(Categories::global())).map(Series::into_column).map_err(|e| err(name, e))
}

fn frame(columns: Vec<Column>) -> Result<DataFrame, String> {
    DataFrame::new_infer_height(columns).map_err(|e| e.to_string())
}

fn write_frame(dir: &Path, name: &str, df: &mut DataFrame, csv: bool) -> Result<(), String> {
    let parquet = dir.join(format!("{name}.parquet"));
    let f = File::create(&parquet).map_err(|e| err(parquet.display(), e))?;
    ParquetWriter::new(f)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::empty())
        .finish(df)
        .map_err(|e| err(parquet.display(), e))?;
    if csv {
        let path = dir.join(format!("{name}.csv"));
        let mut f = File::create(&path).map_err(|e| err(path.display(), e))?;
        CsvWriter::new(&mut f).finish(df).map_err(|e| err(path.display(), e))?;
    }
    Ok(())
}

/// Reads a table; a run without it (older runs, non-sweep runs) reads as empty.
fn read_frame(dir: &Path, name: &str) -> Result<Option<DataFrame>, String> {
    let path = dir.join(format!("{name}.parquet"));
    if !path.exists() {
        return Ok(None);
    }
    let f = File::open(&path).map_err(|e| err(path.display(), e))?;
    ParquetReader::new(f).finish().map(Some).map_err(|e| err(path.display(), e))
}

/// Typed access to a frame's columns, with errors naming table and column.
struct Table<'a> {
    name: &'static str,
    df: &'a DataFrame,
}

impl Table<'_> {
    fn column(&self, c: &str) -> Result<Series, String> {
        Ok(self.df.column(c).map_err(|e| err(format!("{}.{c}", self.name), e))?.as_materialized_series().clone())
    }
    fn cast(&self, c: &str, to: &DataType) -> Result<Series, String> {
        self.column(c)?.cast(to).map_err(|e| err(format!("{}.{c}", self.name), e))
    }
    fn f64s(&self, c: &str) -> Result<Vec<f64>, String> {
        let s = self.cast(c, &DataType::Float64)?;
        Ok(s.f64().map_err(|e| err(c, e))?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
    fn u64s(&self, c: &str) -> Result<Vec<u64>, String> {
        Ok(self.opt_u64s(c)?.into_iter().map(|v| v.unwrap_or(0)).collect())
    }
    fn opt_u64s(&self, c: &str) -> Result<Vec<Option<u64>>, String> {
        let s = self.cast(c, &DataType::UInt64)?;
        Ok(s.u64().map_err(|e| err(c, e))?.into_iter().collect())
    }
    fn usizes(&self, c: &str) -> Result<Vec<usize>, String> {
        Ok(self.u64s(c)?.into_iter().map(|v| v as usize).collect())
    }
    fn bools(&self, c: &str) -> Result<Vec<bool>, String> {
        let s = self.cast(c, &DataType::Boolean)?;
        Ok(s.bool().map_err(|e| err(c, e))?.into_iter().map(|v| v.unwrap_or(false)).collect())
    }
    fn texts(&self, c: &str) -> Result<Vec<String>, String> {
        let s = self.cast(c, &DataType::String)?;
        Ok(s.str().map_err(|e| err(c, e))?.into_iter().map(|v| v.unwrap_or("").to_string()).collect())
    }
}

impl RunData {
    /// A run with its manifest and no rows yet.
    pub fn empty(manifest: Manifest) -> Self {
        Self {
            manifest,
            requests: Vec::new(),
            cpu: Vec::new(),
            cpustat: Vec::new(),
            counters: Vec::new(),
            probes: Vec::new(),
            resources: Vec::new(),
        }
    }

    /// Writes the run directory: manifest and parquet tables, plus CSV
    /// copies when `csv` (not for committed reference runs).
    pub fn write(&self, dir: &Path, csv: bool) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| err(dir.display(), e))?;
        let yaml = serde_norway::to_string(&self.manifest).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("manifest.yaml"), yaml).map_err(|e| err("manifest.yaml", e))?;
        let r = &self.requests;
        let mut requests = frame(vec![
            col("repeat", r, |x| x.repeat as u32),
            cat("mode", r, |x| &x.mode)?,
            cat("phase", r, |x| &x.phase)?,
            cat("request", r, |x| &x.r.request)?,
            col("sent_us", r, |x| (x.r.time_s * 1e6).round() as u64),
            col("latency_us", r, |x| x.r.latency_us.round() as u32),
            col("status", r, |x| x.r.status as u32),
        ])?;
        write_frame(dir, "requests", &mut requests, csv)?;
        let c = &self.cpu;
        let mut cpu = frame(vec![
            col("repeat", c, |x| x.repeat as u32),
            cat("mode", c, |x| &x.mode)?,
            cat("phase", c, |x| &x.phase)?,
            col("time_s", c, |x| x.s.time_s),
            cat("component", c, |x| &x.s.component)?,
            cat("group", c, |x| &x.s.group)?,
            col("interval_s", c, |x| x.s.interval_s),
            col("cpu_s", c, |x| x.s.cpu_s),
            col("voluntary_switches", c, |x| x.s.voluntary),
            col("involuntary_switches", c, |x| x.s.involuntary),
        ])?;
        write_frame(dir, "cpu", &mut cpu, csv)?;
        let s = &self.cpustat;
        let mut cpustat = frame(vec![
            col("repeat", s, |x| x.repeat as u32),
            cat("mode", s, |x| &x.mode)?,
            cat("phase", s, |x| &x.phase)?,
            col("time_s", s, |x| x.s.time_s),
            col("cpu", s, |x| x.s.cpu as u32),
            col("interval_s", s, |x| x.s.interval_s),
            col("user_s", s, |x| x.s.t.user),
            col("nice_s", s, |x| x.s.t.nice),
            col("system_s", s, |x| x.s.t.system),
            col("idle_s", s, |x| x.s.t.idle),
            col("iowait_s", s, |x| x.s.t.iowait),
            col("irq_s", s, |x| x.s.t.irq),
            col("softirq_s", s, |x| x.s.t.softirq),
            col("steal_s", s, |x| x.s.t.steal),
        ])?;
        write_frame(dir, "cpustat", &mut cpustat, csv)?;
        let k = &self.counters;
        let mut counters = frame(vec![
            col("repeat", k, |x| x.repeat as u32),
            cat("mode", k, |x| &x.mode)?,
            cat("phase", k, |x| &x.phase)?,
            cat("source", k, |x| &x.source)?,
            cat("scope", k, |x| &x.scope)?,
            cat("name", k, |x| &x.name)?,
            col("value", k, |x| x.value),
        ])?;
        write_frame(dir, "counters", &mut counters, csv)?;
        if !self.probes.is_empty() {
            let p = &self.probes;
            let mut probes = frame(vec![
                col("repeat", p, |x| x.repeat as u32),
                cat("mode", p, |x| &x.mode)?,
                cat("phase", p, |x| &x.phase)?,
                col("offered_tasks_s", p, |x| x.offered),
                col("duration_s", p, |x| x.duration_s),
                col("tasks", p, |x| x.tasks),
                col("requests", p, |x| x.stats.requests),
                col("in_time", p, |x| x.stats.in_time),
                col("errors", p, |x| x.stats.errors),
                col("p50_ms", p, |x| x.stats.p50_ms),
                col("p90_ms", p, |x| x.stats.p90_ms),
                col("p99_ms", p, |x| x.stats.p99_ms),
                col("max_ms", p, |x| x.stats.max_ms),
                col("send_lag_p50_ms", p, |x| x.stats.send_lag_p50_ms),
                col("send_lag_p99_ms", p, |x| x.stats.send_lag_p99_ms),
                col("passed", p, |x| x.passed),
            ])?;
            write_frame(dir, "probes", &mut probes, csv)?;
        }
        if !self.resources.is_empty() {
            let r = &self.resources;
            let mut resources = frame(vec![
                col("repeat", r, |x| x.repeat as u32),
                cat("mode", r, |x| &x.mode)?,
                cat("phase", r, |x| &x.phase)?,
                col("time_s", r, |x| x.s.time_s),
                cat("component", r, |x| &x.s.component)?,
                cat("group", r, |x| &x.s.group)?,
                col("pid", r, |x| x.s.pid),
                col("rss_bytes", r, |x| x.s.rss_bytes),
                col("rss_anon_bytes", r, |x| x.s.rss_anon_bytes),
                col("rss_shmem_bytes", r, |x| x.s.rss_shmem_bytes),
                col("open_fds", r, |x| x.s.open_fds),
                col("bpf_map_entries", r, |x| x.s.bpf_map_entries),
                col("pool_slots_in_use", r, |x| x.s.pool_slots_in_use),
            ])?;
            write_frame(dir, "resources", &mut resources, csv)?;
        }
        Ok(())
    }

    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("manifest.yaml");
        let text = std::fs::read_to_string(&path).map_err(|e| err(path.display(), e))?;
        let manifest: Manifest = serde_norway::from_str(&text).map_err(|e| err(path.display(), e))?;
        let mut data = Self::empty(manifest);
        if let Some(df) = read_frame(dir, "requests")? {
            let t = Table { name: "requests", df: &df };
            let (rep, mode, phase, req) = (t.usizes("repeat")?, t.texts("mode")?, t.texts("phase")?, t.texts("request")?);
            let (sent, lat, status) = (t.u64s("sent_us")?, t.u64s("latency_us")?, t.u64s("status")?);
            data.requests = (0..df.height())
                .map(|i| RequestRow {
                    repeat: rep[i],
                    mode: mode[i].clone(),
                    phase: phase[i].clone(),
                    r: RequestRecord {
                        time_s: sent[i] as f64 / 1e6,
                        request: req[i].clone(),
                        latency_us: lat[i] as f64,
                        status: status[i] as u16,
                    },
                })
                .collect();
        }
        if let Some(df) = read_frame(dir, "cpu")? {
            let t = Table { name: "cpu", df: &df };
            let (rep, mode, phase, time) = (t.usizes("repeat")?, t.texts("mode")?, t.texts("phase")?, t.f64s("time_s")?);
            let (comp, group, interval, cpu_s) = (t.texts("component")?, t.texts("group")?, t.f64s("interval_s")?, t.f64s("cpu_s")?);
            let (vol, invol) = (t.u64s("voluntary_switches")?, t.u64s("involuntary_switches")?);
            data.cpu = (0..df.height())
                .map(|i| CpuSample {
                    repeat: rep[i],
                    mode: mode[i].clone(),
                    phase: phase[i].clone(),
                    s: CpuRow {
                        time_s: time[i],
                        component: comp[i].clone(),
                        group: group[i].clone(),
                        interval_s: interval[i],
                        cpu_s: cpu_s[i],
                        voluntary: vol[i],
                        involuntary: invol[i],
                    },
                })
                .collect();
        }
        if let Some(df) = read_frame(dir, "cpustat")? {
            let t = Table { name: "cpustat", df: &df };
            let (rep, mode, phase, time) = (t.usizes("repeat")?, t.texts("mode")?, t.texts("phase")?, t.f64s("time_s")?);
            let (cpu, interval) = (t.usizes("cpu")?, t.f64s("interval_s")?);
            let fields = ["user_s", "nice_s", "system_s", "idle_s", "iowait_s", "irq_s", "softirq_s", "steal_s"];
            let v: Vec<Vec<f64>> = fields.iter().map(|f| t.f64s(f)).collect::<Result<_, _>>()?;
            data.cpustat = (0..df.height())
                .map(|i| CpuStatSample {
                    repeat: rep[i],
                    mode: mode[i].clone(),
                    phase: phase[i].clone(),
                    s: CpuStatRow {
                        time_s: time[i],
                        cpu: cpu[i],
                        interval_s: interval[i],
                        t: testkit::proc::CpuTimes {
                            user: v[0][i],
                            nice: v[1][i],
                            system: v[2][i],
                            idle: v[3][i],
                            iowait: v[4][i],
                            irq: v[5][i],
                            softirq: v[6][i],
                            steal: v[7][i],
                        },
                    },
                })
                .collect();
        }
        if let Some(df) = read_frame(dir, "counters")? {
            let t = Table { name: "counters", df: &df };
            let (rep, mode, phase) = (t.usizes("repeat")?, t.texts("mode")?, t.texts("phase")?);
            let (source, scope, name, value) = (t.texts("source")?, t.texts("scope")?, t.texts("name")?, t.f64s("value")?);
            data.counters = (0..df.height())
                .map(|i| CounterRow {
                    repeat: rep[i],
                    mode: mode[i].clone(),
                    phase: phase[i].clone(),
                    source: source[i].clone(),
                    scope: scope[i].clone(),
                    name: name[i].clone(),
                    value: value[i],
                })
                .collect();
        }
        if let Some(df) = read_frame(dir, "probes")? {
            let t = Table { name: "probes", df: &df };
            let (rep, mode, phase) = (t.usizes("repeat")?, t.texts("mode")?, t.texts("phase")?);
            let (offered, duration) = (t.f64s("offered_tasks_s")?, t.f64s("duration_s")?);
            let (tasks, requests, in_time, errors) = (t.u64s("tasks")?, t.u64s("requests")?, t.u64s("in_time")?, t.u64s("errors")?);
            let (p50, p90, p99, max, lag) =
                (t.f64s("p50_ms")?, t.f64s("p90_ms")?, t.f64s("p99_ms")?, t.f64s("max_ms")?, t.f64s("send_lag_p99_ms")?);
            let lag50 = t.f64s("send_lag_p50_ms")?;
            let passed = t.bools("passed")?;
            data.probes = (0..df.height())
                .map(|i| ProbeRow {
                    repeat: rep[i],
                    mode: mode[i].clone(),
                    phase: phase[i].clone(),
                    offered: offered[i],
                    duration_s: duration[i],
                    tasks: tasks[i],
                    stats: ProbeStats {
                        requests: requests[i],
                        in_time: in_time[i],
                        errors: errors[i],
                        p50_ms: p50[i],
                        p90_ms: p90[i],
                        p99_ms: p99[i],
                        max_ms: max[i],
                        send_lag_p50_ms: lag50[i],
                        send_lag_p99_ms: lag[i],
                    },
                    passed: passed[i],
                })
                .collect();
        }
        if let Some(df) = read_frame(dir, "resources")? {
            let t = Table { name: "resources", df: &df };
            let (rep, mode, phase, time) = (t.usizes("repeat")?, t.texts("mode")?, t.texts("phase")?, t.f64s("time_s")?);
            let (comp, group, pid) = (t.texts("component")?, t.texts("group")?, t.u64s("pid")?);
            let (rss, anon, shmem) = (t.u64s("rss_bytes")?, t.u64s("rss_anon_bytes")?, t.u64s("rss_shmem_bytes")?);
            let (fds, maps, slots) = (t.u64s("open_fds")?, t.opt_u64s("bpf_map_entries")?, t.opt_u64s("pool_slots_in_use")?);
            data.resources = (0..df.height())
                .map(|i| ResourceSample {
                    repeat: rep[i],
                    mode: mode[i].clone(),
                    phase: phase[i].clone(),
                    s: ResourceRow {
                        time_s: time[i],
                        component: comp[i].clone(),
                        group: group[i].clone(),
                        pid: pid[i] as u32,
                        rss_bytes: rss[i],
                        rss_anon_bytes: anon[i],
                        rss_shmem_bytes: shmem[i],
                        open_fds: fds[i],
                        bpf_map_entries: maps[i],
                        pool_slots_in_use: slots[i],
                    },
                })
                .collect();
        }
        Ok(data)
    }
}

#[cfg(test)]
pub mod fixture {
    //! The small run committed in `tests/fixtures/run-small`, built with
    //! round numbers so report tests can check exact values.

    use super::*;
    use crate::experiment::config::{Load, Pinning};

    pub fn dir() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-small")
    }

    fn mode(index: usize, name: &str, label: &str, from: f64, users: usize) -> ModeRun {
        let phase = |label: &str, a: f64, b: f64| Phase { label: label.into(), from_s: from + a, to_s: from + b, offered: None };
        ModeRun {
            repeat: 0,
            mode_index: index,
            mode: name.into(),
            label: label.into(),
            status: "ok".into(),
            users,
            phases: vec![phase("idle", 0.0, 2.0), phase("warmup", 2.0, 10.0), phase("measure", 10.0, 20.0)],
            flags: Vec::new(),
            components: vec![ComponentInfo { name: "gateway".into(), group: "gateway".into(), pid: 1 }],
        }
    }

    fn cpu(mode: &str, group: &str, from: f64, per_sample: f64) -> Vec<CpuSample> {
        (1..=20)
            .map(|i| CpuSample {
                repeat: 0,
                mode: mode.into(),
                phase: "measure".into(),
                s: CpuRow {
                    time_s: from + 10.0 + i as f64 * 0.5,
                    component: format!("{group}-0"),
                    group: group.into(),
                    interval_s: 0.5,
                    cpu_s: per_sample,
                    voluntary: 3,
                    involuntary: 1,
                },
            })
            .collect()
    }

    /// Per-CPU /proc/stat rows: the system's CPU 0 busy `busy` of every
    /// 0.5 s (0.02 system, 0.03 softirq), the load generator's CPU 1 always 0.25.
    fn cpustat(mode: &str, from: f64, busy: f64) -> Vec<CpuStatSample> {
        (1..=20)
            .flat_map(|i| {
                let time_s = from + 10.0 + i as f64 * 0.5;
                [(0, busy), (1, 0.25)].map(|(cpu, b)| CpuStatSample {
                    repeat: 0,
                    mode: mode.into(),
                    phase: "measure".into(),
                    s: CpuStatRow {
                        time_s,
                        cpu,
                        interval_s: 0.5,
                        t: testkit::proc::CpuTimes { user: b - 0.05, system: 0.02, softirq: 0.03, idle: 0.5 - b, ..Default::default() },
                    },
                })
            })
            .collect()
    }

    fn counter(mode: &str, source: &str, scope: &str, name: &str, value: f64) -> CounterRow {
        CounterRow {
            repeat: 0,
            mode: mode.into(),
            phase: "measure".into(),
            source: source.into(),
            scope: scope.into(),
            name: name.into(),
            value,
        }
    }

    /// s-spright: 100 `home` requests of 10, 20, ... 1000 us in 10 s, 1.5
    /// CPU-s by process, 2.0 CPU-s busy on the system's CPU; knative: 50
    /// `product` requests of 100 ... 5000 us, 4 CPU-s by process, 4.5 busy.
    pub fn run() -> RunData {
        let profile = Profile {
            note: "fixture: round numbers for the report tests".into(),
            idle_s: 2.0,
            warmup_s: 8.0,
            duration_s: 10.0,
            max_duration_s: Default::default(),
            load: Load::Users { users: [("default".to_string(), 10)].into(), increase_rate: 10.0, think_ms: [100, 1000] },
            service_time_scale: 1.0,
            service_time_mode: String::new(),
            pin: Pinning { load: vec![1], system: vec![0] },
            knative: Default::default(),
            sweep: None,
            chaos: None,
        };
        let manifest = Manifest {
            experiment: "boutique".into(),
            workload: "boutique".into(),
            profile_name: "local".into(),
            profile,
            load_kind: "users".into(),
            seed: 42,
            repeats: 1,
            started_at: "2026-11-30T00:00:00+00:00".into(),
            git_revision: "fixture".into(),
            reference: false,
            allow_dirty: false,
            build_profile: "release".into(),
            kernel: "6.x".into(),
            cpu_model: "fixture CPU".into(),
            cpu_accounting: "sampled at each tick, HZ=250, interrupt time charged to the interrupted task too".into(),
            cores: 2,
            allowed_cpus: vec![0, 1],
            root: true,
            bpf: "available (root, BTF)".into(),
            collectors: vec!["procfs".into(), "interrupts".into()],
            sample_ms: 500,
            crate_versions: vec!["harness 0.1.0".into()],
            two_nodes: None,
            modes: vec![
                mode(0, "s-spright", "s-spright", 0.0, 10),
                mode(3, "knative", "knative (local model of Knative's data path)", 30.0, 2),
            ],
            warnings: Vec::new(),
            soak: None,
        };
        let request = |mode: &str, ty: &str, t: f64, us: f64| RequestRow {
            repeat: 0,
            mode: mode.into(),
            phase: "measure".into(),
            r: RequestRecord { time_s: t, request: ty.into(), latency_us: us, status: 200 },
        };
        // Send times are whole microseconds, as the run directory stores them.
        let at_us = |us: u64| us as f64 / 1e6;
        let mut requests: Vec<RequestRow> =
            (1..=100).map(|i| request("s-spright", "home", at_us(10_000_000 + i * 99_000), i as f64 * 10.0)).collect();
        requests.extend((1..=50).map(|i| request("knative", "product", at_us(40_000_000 + i * 199_000), i as f64 * 100.0)));
        let mut cpu_rows = cpu("s-spright", "gateway", 0.0, 0.05);
        cpu_rows.extend(cpu("s-spright", "function", 0.0, 0.025));
        cpu_rows.extend(cpu("knative", "gateway", 30.0, 0.05));
        cpu_rows.extend(cpu("knative", "sidecar", 30.0, 0.1));
        cpu_rows.extend(cpu("knative", "function", 30.0, 0.05));
        let mut stat_rows = cpustat("s-spright", 0.0, 0.1);
        stat_rows.extend(cpustat("knative", 30.0, 0.225));
        let counters = vec![
            counter("s-spright", "irq", "cpu0", "LOC Local timer interrupts", 150.0),
            counter("s-spright", "irq", "cpu1", "LOC Local timer interrupts", 50.0),
            counter("s-spright", "softirq", "cpu0", "NET_RX", 100.0),
            counter("knative", "irq", "cpu0", "LOC Local timer interrupts", 300.0),
            counter("knative", "irq", "cpu1", "LOC Local timer interrupts", 100.0),
            counter("knative", "softirq", "cpu0", "NET_RX", 200.0),
            counter("knative", "softirq", "cpu1", "NET_RX", 50.0),
        ];
        RunData { manifest, requests, cpu: cpu_rows, cpustat: stat_rows, counters, probes: Vec::new(), resources: Vec::new() }
    }

    /// Rewrites the committed fixture (run by hand after changing the format).
    #[test]
    #[ignore]
    fn write_fixture() {
        let d = dir();
        let _ = std::fs::remove_dir_all(&d);
        run().write(&d, false).unwrap();
    }

    /// Equal tables, reporting the first difference rather than both whole tables.
    fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
        assert_eq!(got.len(), want.len(), "{what}: row counts");
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!("{what} row {i}: got {:?}, want {:?}", got[i], want[i]);
        }
    }

    #[test]
    fn the_committed_fixture_reads_back_exactly() {
        let got = RunData::read(&dir()).unwrap();
        let want = run();
        same("requests", &got.requests, &want.requests);
        same("cpu", &got.cpu, &want.cpu);
        same("cpustat", &got.cpustat, &want.cpustat);
        same("counters", &got.counters, &want.counters);
        assert_eq!(serde_norway::to_string(&got.manifest).unwrap(), serde_norway::to_string(&want.manifest).unwrap());
    }

    #[test]
    fn probes_round_trip() {
        let mut run = run();
        run.probes = vec![ProbeRow {
            repeat: 2,
            mode: "e-spright".into(),
            phase: "probe 3".into(),
            offered: 400.0,
            duration_s: 6.0,
            tasks: 2400,
            stats: ProbeStats {
                requests: 2650,
                in_time: 2649,
                errors: 1,
                p50_ms: 0.5,
                p90_ms: 0.75,
                p99_ms: 2.0,
                max_ms: 9.5,
                send_lag_p50_ms: 0.0625,
                send_lag_p99_ms: 0.125,
            },
            passed: true,
        }];
        let dir = std::env::temp_dir().join(format!("harness-probes-{}", std::process::id()));
        run.write(&dir, true).unwrap();
        assert!(dir.join("probes.csv").exists());
        let got = RunData::read(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        same("probes", &got.probes, &run.probes);
        same("requests", &got.requests, &run.requests);
    }

    #[test]
    fn phases_cover_the_timeline() {
        let m = mode(0, "s-spright", "s-spright", 100.0, 1);
        assert_eq!(m.phase_at(100.0), "setup");
        assert_eq!(m.phase_at(101.0), "idle");
        assert_eq!(m.phase_at(102.0), "idle");
        assert_eq!(m.phase_at(102.5), "warmup");
        assert_eq!(m.phase_at(115.0), "measure");
        assert_eq!(m.phase_at(120.5), "drain");
        let mut gap = m.clone();
        gap.phases[2].from_s += 1.0;
        assert_eq!(gap.phase_at(110.5), "between");
        assert_eq!(m.headline_phase(), "measure");
        assert_eq!(m.measure_s(), 10.0);
        assert_eq!(m.load_from_s(), 102.0);
    }
}
