//! `harness experiment NAME`: for each mode, bring the deployment up,
//! measure it idle, warm it up, load it, collect, tear it down; then write
//! the run directory and regenerate the summary and figures from it.

pub mod config;
mod counters;
mod machine;

use std::future::Future;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use self::config::{ExperimentFile, Load, Profile, SweepSpec};
use self::counters::Snapshot;
use crate::collect::ebpf::AuditProbe;
use crate::collect::perf::PerfCounters;
use crate::collect::sampler::{Sampler, Watched};
use crate::deploy::{pin_current_thread, Binaries, Deployment, Mode, Options, Workload};
use crate::load::{open_loop, replay, users, Recorder, RequestRecord};
use crate::results::{ComponentInfo, CounterRow, CpuSample, Manifest, ModeRun, RequestRow, RunData};

pub struct Args {
    pub name: String,
    pub modes: Option<Vec<Mode>>,
    pub profile: String,
    pub duration_s: Option<f64>,
    pub out: Option<PathBuf>,
    /// Run the profile's open-loop rate sweep instead of the users.
    pub sweep: bool,
    /// Motion: replay this trace file instead of the synthetic trace.
    pub trace: Option<PathBuf>,
    /// Replaces the experiment file's collectors.
    pub collectors: Option<Vec<String>>,
}

/// A directory removed (with its contents) when this is dropped.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a time falls in a mode's timeline.
struct Timeline {
    idle_from: f64,
    load_from: f64,
    measure_from: f64,
    measure_to: f64,
}

impl Timeline {
    fn phase(&self, t: f64) -> &'static str {
        if t < self.idle_from {
            "setup"
        } else if t < self.load_from {
            "idle"
        } else if t < self.measure_from {
            "warmup"
        } else if t <= self.measure_to {
            "measure"
        } else {
            "drain"
        }
    }
}

fn progress(len_s: f64, mode: Mode) -> ProgressBar {
    let bar = ProgressBar::new((len_s * 4.0) as u64);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} {msg:<9} [{bar:40}] {elapsed}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(mode.name());
    bar
}

/// Sleeps `secs` while advancing the bar, with `phase` as its message.
fn wait(bar: &ProgressBar, phase: &'static str, secs: f64) {
    bar.set_message(phase);
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(250)));
        bar.inc(1);
    }
}

/// Runs a load generator on the load CPUs, in its own thread and runtime.
fn spawn_load<F, Fut>(cpus: Vec<usize>, load: F) -> JoinHandle<Result<(), String>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>>,
{
    std::thread::spawn(move || {
        pin_current_thread(&cpus)?;
        let workers = if cpus.is_empty() { 2 } else { cpus.len() };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(load())
    })
}

/// Advances the bar until `generator` has finished.
fn wait_for(bar: &ProgressBar, phase: &'static str, generator: &JoinHandle<Result<(), String>>) {
    bar.set_message(phase);
    while !generator.is_finished() {
        std::thread::sleep(Duration::from_millis(250));
        bar.inc(1);
    }
}

struct ModeResult {
    run: ModeRun,
    requests: Vec<RequestRow>,
    cpu: Vec<CpuSample>,
    counters: Vec<CounterRow>,
}

fn skipped(mode: Mode, why: String) -> ModeResult {
    eprintln!("harness: {}: {why}", mode.name());
    ModeResult {
        run: ModeRun { mode: mode.name().into(), label: mode.label().into(), status: why, ..Default::default() },
        requests: Vec::new(),
        cpu: Vec::new(),
        counters: Vec::new(),
    }
}

struct Plan<'a> {
    file: &'a ExperimentFile,
    workload: Workload,
    profile: &'a Profile,
    bins: &'a Binaries,
    epoch: Instant,
    system_cpus: Vec<usize>,
    load_cpus: Vec<usize>,
    audit: Option<&'a AuditProbe>,
    sweep: Option<&'a SweepSpec>,
    trace: Option<&'a [motion::core::TraceEvent]>,
    /// Shared-memory directory for the runtimes' (de)serialization counters.
    wire_dir: Option<PathBuf>,
}

fn run_mode(plan: &Plan, mode: Mode) -> ModeResult {
    let p = plan.profile;
    let duration = p.max_duration_s.get(mode.name()).map_or(p.duration_s, |cap| cap.min(p.duration_s));
    let bar = progress(p.idle_s + p.warmup_s + duration, mode);
    bar.set_message("up");
    let opts = Options {
        service_time_scale: p.service_time_scale,
        service_time_mode: (!p.service_time_mode.is_empty()).then(|| p.service_time_mode.clone()),
        scale_to_zero: p
            .knative_scale_to_zero_ms
            .filter(|_| mode == Mode::Knative && plan.workload != Workload::Boutique)
            .map(Duration::from_millis),
        cpus: plan.system_cpus.clone(),
        wire_counts: plan.wire_dir.clone(),
    };
    // Each mode starts with no counter files.
    if let Some(dir) = &plan.wire_dir {
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::create_dir_all(dir);
    }
    let mut d = match Deployment::up_with(mode, plan.workload, "127.0.0.1:0".parse().unwrap(), plan.bins, &opts) {
        Ok(d) => d,
        Err(e) => return skipped(mode, format!("failed: {e}")),
    };
    let components = d.components();
    let mut flags = Vec::new();
    let cores = if plan.system_cpus.is_empty() { spright::sys::allowed_cpus().len() } else { plan.system_cpus.len() };
    let functions = components.iter().filter(|c| c.role.name() == "function").count();
    if mode == Mode::DSpright && functions + 1 > cores {
        flags.push(format!("oversubscribed: {} polling processes on {cores} core(s)", functions + 1));
    }
    if duration < p.duration_s {
        flags.push(format!("load phase capped at {duration} s"));
    }
    let mut watched: Vec<Watched> = components
        .iter()
        .map(|c| Watched { component: c.name.clone(), group: c.role.name().into(), pid: c.pid, adopt_children: c.name == "activator" })
        .collect();
    watched.push(Watched {
        component: "harness (load generator + collectors)".into(),
        group: "load".into(),
        pid: std::process::id(),
        adopt_children: false,
    });
    let since = |t: Instant| t.saturating_duration_since(plan.epoch).as_secs_f64();
    let sampler = Sampler::start(watched, Duration::from_millis(plan.file.sample_ms), plan.epoch);
    let idle_from = since(Instant::now());
    wait(&bar, "idle", p.idle_s);

    // Software perf counters on every thread of every component (and the
    // harness), opened before the load so that opening costs nothing measured.
    let mut pids: Vec<u32> = components.iter().map(|c| c.pid).collect();
    pids.push(std::process::id());
    let mut perf = match plan.file.collectors.iter().any(|c| c == "perf").then(|| PerfCounters::start(&pids)) {
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            flags.push(format!("no perf counters: {e}"));
            None
        }
        None => None,
    };
    let recorder = Recorder::new(plan.epoch);
    let (load_cpus, rec, addr) = (plan.load_cpus.clone(), recorder.clone(), d.addr);
    let load_from = since(Instant::now());
    let (start, generator) = match (plan.sweep, &p.load) {
        (Some(spec), _) => {
            let steps = sweep_steps(spec, addr, plan.file.seed, p.warmup_s);
            let bound_us = spec.p99_bound_ms * 1e3;
            let generator = spawn_load(load_cpus, move || async move {
                for step in &steps {
                    open_loop::run(step, &rec).await;
                    if step.label != "warmup" && far_past_saturation(&rec.labelled(&step.label), bound_us) {
                        break;
                    }
                }
                Ok(())
            });
            wait(&bar, "warm-up", p.warmup_s);
            let start = Snapshot::read(plan.audit, &mut perf, plan.wire_dir.as_deref());
            wait_for(&bar, "sweep", &generator);
            (start, generator)
        }
        (None, Load::Users { increase_rate, think_ms, .. }) => {
            let load = users::UserLoad {
                host: format!("http://{addr}"),
                users: p.load.users_for(mode),
                increase_rate: *increase_rate,
                think: (Duration::from_millis(think_ms[0]), Duration::from_millis(think_ms[1])),
                run_time: Duration::from_secs_f64(p.warmup_s + duration),
                seed: plan.file.seed,
            };
            let generator = spawn_load(load_cpus, move || async move { users::run(&load, &rec).await });
            wait(&bar, "warm-up", p.warmup_s);
            let start = Snapshot::read(plan.audit, &mut perf, plan.wire_dir.as_deref());
            wait(&bar, "load", duration);
            (start, generator)
        }
        (None, Load::MotionTrace { .. } | Load::ParkingBursts { .. }) => {
            let schedule = replay_schedule(plan, &p.load);
            let start = Snapshot::read(plan.audit, &mut perf, plan.wire_dir.as_deref());
            let generator = spawn_load(load_cpus, move || async move {
                replay::run(addr, schedule, &rec).await;
                Ok(())
            });
            wait_for(&bar, "replay", &generator);
            (start, generator)
        }
    };
    let end = Snapshot::read(plan.audit, &mut perf, plan.wire_dir.as_deref());
    let (measure_from, measure_to) = (since(start.at), since(end.at));
    bar.set_message("draining");
    let load_result = generator.join().unwrap_or_else(|_| Err("load generator panicked".into()));
    let cpu_rows = sampler.stop();
    bar.set_message("down");
    d.down();
    bar.finish_and_clear();

    let timeline = Timeline { idle_from, load_from, measure_from, measure_to };
    let name = mode.name().to_string();
    let mut requests = recorder
        .take()
        .into_iter()
        .map(|r| RequestRow { mode: name.clone(), phase: timeline.phase(r.time_s).into(), r })
        .collect::<Vec<_>>();
    requests.extend(recorder.take_labelled().into_iter().map(|(label, r)| RequestRow { mode: name.clone(), phase: label, r }));
    let cpu = cpu_rows
        .into_iter()
        .map(|s| CpuSample { mode: name.clone(), phase: timeline.phase(s.time_s - s.interval_s / 2.0).into(), s })
        .collect();
    let counters = counters::rows(&name, &start, &end, &components);
    let status = match load_result {
        Ok(()) if requests.iter().any(RequestRow::measured) => "ok".to_string(),
        Ok(()) => "failed: no request completed in the measured phase".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    let run = ModeRun {
        mode: name,
        label: mode.label().into(),
        status,
        users: if plan.sweep.is_some() { 0 } else { p.load.users_for(mode) },
        idle_from_s: idle_from,
        measure_from_s: measure_from,
        measure_to_s: measure_to,
        flags,
        components: components.iter().map(|c| ComponentInfo { name: c.name.clone(), group: c.role.name().into(), pid: c.pid }).collect(),
    };
    ModeResult { run, requests, cpu, counters }
}

/// The motion or parking requests of this run, on a relative timeline.
fn replay_schedule(plan: &Plan, load: &Load) -> Vec<replay::Scheduled> {
    match load {
        Load::MotionTrace { trace_ms, sensors, compression } => {
            let synthetic;
            let trace = match plan.trace {
                Some(t) => t,
                None => {
                    synthetic = motion::core::synthetic_trace(plan.file.seed, *trace_ms, *sensors);
                    &synthetic
                }
            };
            replay::motion_schedule(trace, *compression)
        }
        Load::ParkingBursts { bursts, size, period_s, route2_share } => {
            replay::parking_schedule(plan.file.seed, *bursts, *size, Duration::from_secs_f64(*period_s), *route2_share)
        }
        Load::Users { .. } => Vec::new(),
    }
}

/// The sweep's steps: a warm-up at the first rate, then each rate.
fn sweep_steps(spec: &SweepSpec, addr: std::net::SocketAddr, seed: u64, warmup_s: f64) -> Vec<open_loop::Step> {
    let step = |rate: f64, secs: f64, label: String, i: u64| open_loop::Step {
        addr,
        rate,
        duration: Duration::from_secs_f64(secs),
        poisson: spec.arrivals == "poisson",
        seed: seed.wrapping_add(i),
        sessions: spec.sessions,
        label,
    };
    let first = spec.rates.first().copied().unwrap_or(10.0);
    std::iter::once(step(first, warmup_s, "warmup".into(), 0))
        .chain(spec.rates.iter().enumerate().map(|(i, &r)| step(r, spec.step_s, format!("sweep {r}"), i as u64 + 1)))
        .collect()
}

/// Far enough past saturation that higher rates only add queueing: more
/// than 10% errors, or a p99 ten times the bound.
fn far_past_saturation(records: &[RequestRecord], bound_us: f64) -> bool {
    if records.is_empty() {
        return true;
    }
    let errors = records.iter().filter(|r| r.status == 0 || r.status >= 500).count();
    let mut lat: Vec<f64> = records.iter().map(|r| r.latency_us).collect();
    lat.sort_by(f64::total_cmp);
    errors * 10 > records.len() || crate::report::stats::quantile(&lat, 0.99) > bound_us * 10.0
}

/// Checks the pinning against the CPUs this process may use; drops it with
/// a warning when it cannot be honoured.
fn usable(cpus: &[usize], what: &str, warnings: &mut Vec<String>) -> Vec<usize> {
    let allowed = spright::sys::allowed_cpus();
    if cpus.iter().all(|c| allowed.contains(c)) {
        cpus.to_vec()
    } else {
        warnings.push(format!("{what} pinning {cpus:?} ignored: only CPUs {allowed:?} are available"));
        Vec::new()
    }
}

/// Runs the experiment; returns the run directory.
pub fn run(args: &Args) -> Result<PathBuf, String> {
    let mut file = ExperimentFile::load(&ExperimentFile::path(&args.name))?;
    if let Some(c) = &args.collectors {
        file.collectors = c.clone();
    }
    let workload = file.workload()?;
    let mut profile = file.profile(&args.profile)?.clone();
    if let Some(d) = args.duration_s {
        profile.duration_s = d;
    }
    let modes = match &args.modes {
        Some(m) => m.clone(),
        None => file.modes()?,
    };
    let bins = Binaries::beside_current_exe();
    let root = unsafe { libc::geteuid() } == 0;
    let mut warnings = Vec::new();
    if !bins.release {
        warnings.push("UNOPTIMIZED BUILD: the measured binaries are debug builds; numbers are not valid".into());
    }
    if !root {
        warnings.push("not root: s-spright (eBPF sk_msg) is skipped and the eBPF collector does not run".into());
    }
    let system_cpus = usable(&profile.pin.system, "system", &mut warnings);
    let load_cpus = usable(&profile.pin.load, "load generator", &mut warnings);
    let started = chrono::Local::now();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| crate::workspace_dir().join("results").join(&file.name).join(started.format("%Y%m%d-%H%M%S").to_string()));
    eprintln!(
        "harness: experiment {} (profile {}, {} build), modes {}; results in {}",
        file.name,
        args.profile,
        if bins.release { "release" } else { "debug" },
        modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
        dir.display()
    );
    let audit = if file.collectors.iter().any(|c| c == "ebpf") && root {
        match AuditProbe::start() {
            Ok(p) => Some(p),
            Err(e) => {
                warnings.push(format!("eBPF collector not running: {e}"));
                None
            }
        }
    } else {
        None
    };
    let sweep = if args.sweep {
        Some(profile.sweep.as_ref().ok_or_else(|| format!("profile {} of {} has no sweep section", args.profile, file.name))?)
    } else {
        None
    };
    let trace = match &args.trace {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(motion::core::parse_trace(&text).map_err(|e| format!("{}: {e}", path.display()))?)
        }
        None => None,
    };
    if trace.is_some() && !matches!(profile.load, Load::MotionTrace { .. }) {
        return Err("--trace replays a motion trace: use it with the motion experiment".into());
    }
    if args.sweep && workload != Workload::Boutique {
        return Err("--sweep drives the Online Boutique mix: use it with the boutique experiment".into());
    }
    // Shared memory where the runtimes bump their counters on every message;
    // removed when the run ends, however it ends.
    let wire_dir = RemovedOnDrop(PathBuf::from(format!("/dev/shm/spright-wire-{}", std::process::id())));
    let plan = Plan {
        trace: trace.as_deref(),
        file: &file,
        workload,
        profile: &profile,
        bins: &bins,
        epoch: Instant::now(),
        system_cpus,
        load_cpus,
        audit: audit.as_ref(),
        sweep,
        wire_dir: Some(wire_dir.0.clone()),
    };
    let mut results = Vec::new();
    for &mode in &modes {
        let r = if mode == Mode::SSpright && !root {
            skipped(mode, "skipped: needs root (eBPF sk_msg)".into())
        } else {
            eprintln!("harness: {} ...", mode.label());
            run_mode(&plan, mode)
        };
        if !r.run.ok() {
            warnings.push(format!("{}: {}", r.run.mode, r.run.status));
        }
        results.push(r);
    }
    let manifest = Manifest {
        experiment: file.name.clone(),
        workload: workload.name().into(),
        profile_name: args.profile.clone(),
        profile: profile.clone(),
        load_kind: if args.sweep { "sweep" } else { "users" }.into(),
        seed: file.seed,
        started_at: started.to_rfc3339(),
        git_revision: machine::git_revision(),
        build_profile: if bins.release { "release" } else { "debug" }.into(),
        kernel: machine::kernel(),
        cpu_model: machine::cpu_model(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        allowed_cpus: spright::sys::allowed_cpus(),
        root,
        bpf: machine::bpf_status(root),
        collectors: file.collectors.clone(),
        crate_versions: machine::crate_versions(),
        modes: results.iter().map(|r| r.run.clone()).collect(),
        warnings,
    };
    let mut data = RunData { manifest, requests: Vec::new(), cpu: Vec::new(), counters: Vec::new() };
    for r in results {
        data.requests.extend(r.requests);
        data.cpu.extend(r.cpu);
        data.counters.extend(r.counters);
    }
    data.write(&dir)?;
    let table = crate::report::regenerate(&dir)?;
    println!("{table}");
    println!("results: {}", dir.display());
    Ok(dir)
}
