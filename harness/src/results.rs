//! One self-describing directory per run: `manifest.yaml`, then
//! `requests`, `cpu` and `counters` as parquet (written and read with
//! polars) with CSV copies. Reports and figures are computed from these
//! files alone, so `harness figures RUN_DIR` reproduces them.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::collect::sampler::CpuRow;
use crate::experiment::config::Profile;
use crate::load::RequestRecord;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub experiment: String,
    pub workload: String,
    pub profile_name: String,
    pub profile: Profile,
    /// `users` (closed loop) or `sweep` (open-loop rate steps).
    #[serde(default)]
    pub load_kind: String,
    pub seed: u64,
    pub started_at: String,
    pub git_revision: String,
    /// `release` or `debug` - the build every measured binary came from.
    pub build_profile: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cores: usize,
    pub allowed_cpus: Vec<usize>,
    pub root: bool,
    pub bpf: String,
    pub collectors: Vec<String>,
    pub crate_versions: Vec<String>,
    pub modes: Vec<ModeRun>,
    pub warnings: Vec<String>,
}

/// What happened to one mode in this run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ModeRun {
    pub mode: String,
    pub label: String,
    /// `ok`, `skipped: why` or `failed: why`.
    pub status: String,
    pub users: usize,
    /// Seconds since the run started.
    pub idle_from_s: f64,
    pub measure_from_s: f64,
    pub measure_to_s: f64,
    pub flags: Vec<String>,
    pub components: Vec<ComponentInfo>,
}

impl ModeRun {
    pub fn ok(&self) -> bool {
        self.status == "ok"
    }
    pub fn measure_s(&self) -> f64 {
        (self.measure_to_s - self.measure_from_s).max(0.0)
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
    pub mode: String,
    pub phase: String,
    pub r: RequestRecord,
}

impl RequestRow {
    /// In a measured phase: the load phase, or one step of a sweep.
    pub fn measured(&self) -> bool {
        self.phase == "measure" || self.phase.starts_with("sweep ")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CpuSample {
    pub mode: String,
    pub phase: String,
    pub s: CpuRow,
}

/// A count over a phase: interrupts by source, eBPF events per group,
/// context switches per group.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterRow {
    pub mode: String,
    pub phase: String,
    /// `procfs`, `irq`, `softirq` or `ebpf`.
    pub source: String,
    /// Component group, or `system` for machine-wide counts.
    pub scope: String,
    pub name: String,
    pub value: f64,
}

#[derive(Clone, Debug)]
pub struct RunData {
    pub manifest: Manifest,
    pub requests: Vec<RequestRow>,
    pub cpu: Vec<CpuSample>,
    pub counters: Vec<CounterRow>,
}

fn strs<T>(rows: &[T], f: impl Fn(&T) -> &str) -> Vec<&str> {
    rows.iter().map(f).collect()
}

fn io_err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

fn write_frame(dir: &Path, name: &str, df: &mut DataFrame) -> Result<(), String> {
    let parquet = dir.join(format!("{name}.parquet"));
    let f = File::create(&parquet).map_err(|e| io_err(&parquet.display().to_string(), e))?;
    ParquetWriter::new(f).finish(df).map_err(|e| io_err(&parquet.display().to_string(), e))?;
    let csv = dir.join(format!("{name}.csv"));
    let mut f = File::create(&csv).map_err(|e| io_err(&csv.display().to_string(), e))?;
    CsvWriter::new(&mut f).finish(df).map_err(|e| io_err(&csv.display().to_string(), e))?;
    Ok(())
}

fn read_frame(dir: &Path, name: &str) -> Result<DataFrame, String> {
    let path = dir.join(format!("{name}.parquet"));
    let f = File::open(&path).map_err(|e| io_err(&path.display().to_string(), e))?;
    ParquetReader::new(f).finish().map_err(|e| io_err(&path.display().to_string(), e))
}

impl RunData {
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(&dir.display().to_string(), e))?;
        let yaml = serde_norway::to_string(&self.manifest).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("manifest.yaml"), yaml).map_err(|e| io_err("manifest.yaml", e))?;
        let r = &self.requests;
        let mut requests = df!(
            "time_s" => r.iter().map(|x| x.r.time_s).collect::<Vec<_>>(),
            "mode" => strs(r, |x| &x.mode),
            "phase" => strs(r, |x| &x.phase),
            "request" => strs(r, |x| &x.r.request),
            "latency_us" => r.iter().map(|x| x.r.latency_us).collect::<Vec<_>>(),
            "status" => r.iter().map(|x| x.r.status as u32).collect::<Vec<_>>(),
            "intended_s" => r.iter().map(|x| x.r.intended_s).collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
        write_frame(dir, "requests", &mut requests)?;
        let c = &self.cpu;
        let mut cpu = df!(
            "time_s" => c.iter().map(|x| x.s.time_s).collect::<Vec<_>>(),
            "mode" => strs(c, |x| &x.mode),
            "phase" => strs(c, |x| &x.phase),
            "component" => strs(c, |x| &x.s.component),
            "group" => strs(c, |x| &x.s.group),
            "interval_s" => c.iter().map(|x| x.s.interval_s).collect::<Vec<_>>(),
            "cpu_s" => c.iter().map(|x| x.s.cpu_s).collect::<Vec<_>>(),
            "voluntary_switches" => c.iter().map(|x| x.s.voluntary).collect::<Vec<_>>(),
            "involuntary_switches" => c.iter().map(|x| x.s.involuntary).collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
        write_frame(dir, "cpu", &mut cpu)?;
        let k = &self.counters;
        let mut counters = df!(
            "mode" => strs(k, |x| &x.mode),
            "phase" => strs(k, |x| &x.phase),
            "source" => strs(k, |x| &x.source),
            "scope" => strs(k, |x| &x.scope),
            "name" => strs(k, |x| &x.name),
            "value" => k.iter().map(|x| x.value).collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())?;
        write_frame(dir, "counters", &mut counters)
    }

    pub fn read(dir: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(dir.join("manifest.yaml")).map_err(|e| io_err(&format!("{}/manifest.yaml", dir.display()), e))?;
        let manifest: Manifest = serde_norway::from_str(&text).map_err(|e| format!("manifest.yaml: {e}"))?;
        let e = |e: PolarsError| e.to_string();
        let df = read_frame(dir, "requests")?;
        let (t, mode, phase, req) = (f64s(&df, "time_s")?, texts(&df, "mode")?, texts(&df, "phase")?, texts(&df, "request")?);
        let (lat, intended) =
            (f64s(&df, "latency_us")?, df.column("intended_s").map_err(e)?.f64().map_err(e)?.into_iter().collect::<Vec<_>>());
        let status: Vec<u32> = df.column("status").map_err(e)?.u32().map_err(e)?.into_iter().map(|v| v.unwrap_or(0)).collect();
        let requests = (0..df.height())
            .map(|i| RequestRow {
                mode: mode[i].clone(),
                phase: phase[i].clone(),
                r: RequestRecord {
                    time_s: t[i],
                    request: req[i].clone(),
                    latency_us: lat[i],
                    status: status[i] as u16,
                    intended_s: intended[i],
                },
            })
            .collect();
        let df = read_frame(dir, "cpu")?;
        let (t, mode, phase, comp, group) =
            (f64s(&df, "time_s")?, texts(&df, "mode")?, texts(&df, "phase")?, texts(&df, "component")?, texts(&df, "group")?);
        let (interval, cpu_s) = (f64s(&df, "interval_s")?, f64s(&df, "cpu_s")?);
        let (vol, invol) = (u64s(&df, "voluntary_switches")?, u64s(&df, "involuntary_switches")?);
        let cpu = (0..df.height())
            .map(|i| CpuSample {
                mode: mode[i].clone(),
                phase: phase[i].clone(),
                s: CpuRow {
                    time_s: t[i],
                    component: comp[i].clone(),
                    group: group[i].clone(),
                    interval_s: interval[i],
                    cpu_s: cpu_s[i],
                    voluntary: vol[i],
                    involuntary: invol[i],
                },
            })
            .collect();
        let df = read_frame(dir, "counters")?;
        let (mode, phase, source, scope, name, value) = (
            texts(&df, "mode")?,
            texts(&df, "phase")?,
            texts(&df, "source")?,
            texts(&df, "scope")?,
            texts(&df, "name")?,
            f64s(&df, "value")?,
        );
        let counters = (0..df.height())
            .map(|i| CounterRow {
                mode: mode[i].clone(),
                phase: phase[i].clone(),
                source: source[i].clone(),
                scope: scope[i].clone(),
                name: name[i].clone(),
                value: value[i],
            })
            .collect();
        Ok(Self { manifest, requests, cpu, counters })
    }
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<f64>, String> {
    let c = df.column(name).map_err(|e| e.to_string())?;
    Ok(c.f64().map_err(|e| format!("{name}: {e}"))?.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn u64s(df: &DataFrame, name: &str) -> Result<Vec<u64>, String> {
    let c = df.column(name).map_err(|e| e.to_string())?;
    Ok(c.u64().map_err(|e| format!("{name}: {e}"))?.into_iter().map(|v| v.unwrap_or(0)).collect())
}

fn texts(df: &DataFrame, name: &str) -> Result<Vec<String>, String> {
    let c = df.column(name).map_err(|e| e.to_string())?;
    Ok(c.str().map_err(|e| format!("{name}: {e}"))?.into_iter().map(|v| v.unwrap_or("").to_string()).collect())
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

    fn mode(name: &str, label: &str, from: f64, users: usize) -> ModeRun {
        ModeRun {
            mode: name.into(),
            label: label.into(),
            status: "ok".into(),
            users,
            idle_from_s: from,
            measure_from_s: from + 10.0,
            measure_to_s: from + 20.0,
            flags: Vec::new(),
            components: vec![ComponentInfo { name: "gateway".into(), group: "gateway".into(), pid: 1 }],
        }
    }

    fn cpu(mode: &str, group: &str, from: f64, per_sample: f64) -> Vec<CpuSample> {
        (1..=20)
            .map(|i| CpuSample {
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

    fn counter(mode: &str, source: &str, name: &str, value: f64) -> CounterRow {
        CounterRow { mode: mode.into(), phase: "measure".into(), source: source.into(), scope: "system".into(), name: name.into(), value }
    }

    /// s-spright: 100 `home` requests of 10, 20, ... 1000 us in 10 s, 1.5
    /// CPU-s; knative: 50 `product` requests of 100 ... 5000 us, 4 CPU-s.
    pub fn run() -> RunData {
        let profile = Profile {
            note: "fixture: round numbers for the report tests".into(),
            idle_s: 3.0,
            warmup_s: 8.0,
            duration_s: 10.0,
            max_duration_s: Default::default(),
            load: Load::Users { users: [("default".to_string(), 10)].into(), increase_rate: 10.0, think_ms: [100, 1000] },
            service_time_scale: 1.0,
            service_time_mode: String::new(),
            pin: Pinning { load: vec![1], system: vec![0] },
            knative_scale_to_zero_ms: None,
            sweep: None,
        };
        let manifest = Manifest {
            experiment: "boutique".into(),
            workload: "boutique".into(),
            profile_name: "local".into(),
            profile,
            load_kind: "users".into(),
            seed: 42,
            started_at: "2026-11-30T00:00:00+00:00".into(),
            git_revision: "fixture".into(),
            build_profile: "release".into(),
            kernel: "6.x".into(),
            cpu_model: "fixture CPU".into(),
            cores: 2,
            allowed_cpus: vec![0, 1],
            root: true,
            bpf: "available (root, BTF)".into(),
            collectors: vec!["procfs".into(), "interrupts".into()],
            crate_versions: vec!["harness 0.1.0".into()],
            modes: vec![mode("s-spright", "s-spright", 0.0, 10), mode("knative", "knative (local model of Knative's data path)", 30.0, 2)],
            warnings: Vec::new(),
        };
        let request = |mode: &str, ty: &str, t: f64, us: f64| RequestRow {
            mode: mode.into(),
            phase: "measure".into(),
            r: RequestRecord { time_s: t, request: ty.into(), latency_us: us, status: 200, intended_s: None },
        };
        let mut requests: Vec<RequestRow> =
            (1..=100).map(|i| request("s-spright", "home", 10.0 + i as f64 * 0.099, i as f64 * 10.0)).collect();
        requests.extend((1..=50).map(|i| request("knative", "product", 40.0 + i as f64 * 0.199, i as f64 * 100.0)));
        let mut cpu_rows = cpu("s-spright", "gateway", 0.0, 0.05);
        cpu_rows.extend(cpu("s-spright", "function", 0.0, 0.025));
        cpu_rows.extend(cpu("knative", "gateway", 30.0, 0.05));
        cpu_rows.extend(cpu("knative", "sidecar", 30.0, 0.1));
        cpu_rows.extend(cpu("knative", "function", 30.0, 0.05));
        let counters = vec![
            counter("s-spright", "irq", "LOC Local timer interrupts", 200.0),
            counter("s-spright", "softirq", "NET_RX", 100.0),
            counter("knative", "irq", "LOC Local timer interrupts", 400.0),
            counter("knative", "softirq", "NET_RX", 250.0),
        ];
        RunData { manifest, requests, cpu: cpu_rows, counters }
    }

    /// Rewrites the committed fixture (run by hand after changing the format).
    #[test]
    #[ignore]
    fn write_fixture() {
        let d = dir();
        let _ = std::fs::remove_dir_all(&d);
        run().write(&d).unwrap();
    }

    #[test]
    fn the_committed_fixture_reads_back_exactly() {
        let got = RunData::read(&dir()).unwrap();
        let want = run();
        assert_eq!(got.requests, want.requests);
        assert_eq!(got.cpu, want.cpu);
        assert_eq!(got.counters, want.counters);
        assert_eq!(serde_norway::to_string(&got.manifest).unwrap(), serde_norway::to_string(&want.manifest).unwrap());
    }
}
