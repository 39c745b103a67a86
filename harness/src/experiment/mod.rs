//! `harness experiment NAME`: for each mode, bring the deployment up,
//! measure it idle, warm it up, load it, collect, tear it down; then write
//! the run directory and regenerate the summary and figures from it.

pub mod config;
mod machine;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use self::config::{ExperimentFile, Load, Profile};
use crate::collect::interrupts;
use crate::collect::sampler::{Sampler, Watched};
use crate::deploy::{pin_current_thread, Binaries, Deployment, Mode, Options, Workload};
use crate::load::{users, Recorder};
use crate::results::{ComponentInfo, CounterRow, CpuSample, Manifest, ModeRun, RequestRow, RunData};

pub struct Args {
    pub name: String,
    pub modes: Option<Vec<Mode>>,
    pub profile: String,
    pub duration_s: Option<f64>,
    pub out: Option<PathBuf>,
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
}

fn run_mode(plan: &Plan, mode: Mode) -> ModeResult {
    let p = plan.profile;
    let duration = p.max_duration_s.get(mode.name()).map_or(p.duration_s, |cap| cap.min(p.duration_s));
    let bar = progress(p.idle_s + p.warmup_s + duration, mode);
    bar.set_message("up");
    let opts = Options {
        service_time_scale: p.service_time_scale,
        service_time_mode: (!p.service_time_mode.is_empty()).then(|| p.service_time_mode.clone()),
        scale_to_zero: None,
        cpus: plan.system_cpus.clone(),
    };
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
    let mut watched: Vec<Watched> =
        components.iter().map(|c| Watched { component: c.name.clone(), group: c.role.name().into(), pid: c.pid }).collect();
    watched.push(Watched { component: "harness (goose + collectors)".into(), group: "load".into(), pid: std::process::id() });
    let since = |t: Instant| t.saturating_duration_since(plan.epoch).as_secs_f64();
    let sampler = Sampler::start(watched, Duration::from_millis(plan.file.sample_ms), plan.epoch);
    let idle_from = since(Instant::now());
    wait(&bar, "idle", p.idle_s);

    let recorder = Recorder::new(plan.epoch);
    let Load::Users { increase_rate, think_ms, .. } = &p.load;
    let load = users::UserLoad {
        host: format!("http://{}", d.addr),
        users: p.load.users_for(mode),
        increase_rate: *increase_rate,
        think: (Duration::from_millis(think_ms[0]), Duration::from_millis(think_ms[1])),
        run_time: Duration::from_secs_f64(p.warmup_s + duration),
        seed: plan.file.seed,
    };
    let (rec, load_cpus) = (recorder.clone(), plan.load_cpus.clone());
    let load_from = since(Instant::now());
    let generator = std::thread::spawn(move || -> Result<(), String> {
        pin_current_thread(&load_cpus)?;
        let workers = if load_cpus.is_empty() { 2 } else { load_cpus.len() };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(users::run(&load, &rec))
    });
    wait(&bar, "warm-up", p.warmup_s);
    let (irq0, soft0) = (interrupts::read_interrupts(), interrupts::read_softirqs());
    let measure_from = since(Instant::now());
    wait(&bar, "load", duration);
    let (irq1, soft1) = (interrupts::read_interrupts(), interrupts::read_softirqs());
    let measure_to = since(Instant::now());
    bar.set_message("draining");
    let load_result = generator.join().unwrap_or_else(|_| Err("load generator panicked".into()));
    let cpu_rows = sampler.stop();
    bar.set_message("down");
    d.down();
    bar.finish_and_clear();

    let timeline = Timeline { idle_from, load_from, measure_from, measure_to };
    let name = mode.name().to_string();
    let requests = recorder
        .take()
        .into_iter()
        .map(|r| RequestRow { mode: name.clone(), phase: timeline.phase(r.time_s).into(), r })
        .collect::<Vec<_>>();
    let cpu = cpu_rows
        .into_iter()
        .map(|s| CpuSample { mode: name.clone(), phase: timeline.phase(s.time_s - s.interval_s / 2.0).into(), s })
        .collect();
    let mut counters = Vec::new();
    for (source, delta) in [("irq", interrupts::delta(&irq0, &irq1)), ("softirq", interrupts::delta(&soft0, &soft1))] {
        for (k, v) in delta.into_iter().filter(|(_, v)| *v > 0) {
            counters.push(CounterRow {
                mode: name.clone(),
                phase: "measure".into(),
                source: source.into(),
                scope: "system".into(),
                name: k,
                value: v as f64,
            });
        }
    }
    let status = match load_result {
        Ok(()) if requests.iter().any(|r| r.phase == "measure") => "ok".to_string(),
        Ok(()) => "failed: no request completed in the measured phase".to_string(),
        Err(e) => format!("failed: {e}"),
    };
    let run = ModeRun {
        mode: name,
        label: mode.label().into(),
        status,
        users: p.load.users_for(mode),
        idle_from_s: idle_from,
        measure_from_s: measure_from,
        measure_to_s: measure_to,
        flags,
        components: components.iter().map(|c| ComponentInfo { name: c.name.clone(), group: c.role.name().into(), pid: c.pid }).collect(),
    };
    ModeResult { run, requests, cpu, counters }
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
    let file = ExperimentFile::load(&ExperimentFile::path(&args.name))?;
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
    let plan = Plan { file: &file, workload, profile: &profile, bins: &bins, epoch: Instant::now(), system_cpus, load_cpus };
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
