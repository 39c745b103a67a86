//! One mode in one repeat: bring the deployment up, measure it idle, load
//! it phase by phase (every phase boundary is a sample of every collector),
//! tear it down, and turn what was collected into rows.

use std::future::Future;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::chaos::{self, FaultAction};
use super::config::{ChaosSpec, ExperimentFile, Load, Profile, SweepSpec};
use super::search::{ProbeStats, Search, Verdict};
use crate::deploy::{pin_current_thread, Mode, Target, Workload};
use crate::load::{open_loop, replay, users, FrontDoor, Recorder, RequestRecord};
use crate::node::client::Node;
use crate::node::protocol::{Collected, UpRequest};
use crate::results::{CounterRow, CpuSample, CpuStatSample, ModeRun, ProbeRow, RequestRow, ResourceSample};

/// What every mode of a run shares.
#[derive(Clone)]
pub struct Plan<'a> {
    pub file: &'a ExperimentFile,
    pub workload: Workload,
    pub profile: &'a Profile,
    pub epoch: Instant,
    /// The address on the system-under-test node that its front door takes
    /// (any free port) and the load targets.
    pub listen: std::net::IpAddr,
    pub system_cpus: Vec<usize>,
    pub load_cpus: Vec<usize>,
    pub sweep: Option<&'a SweepSpec>,
    /// Faults under load after the sweep (`harness chaos`).
    pub chaos: Option<&'a ChaosSpec>,
    pub trace: Option<&'a [motion::core::TraceEvent]>,
    /// Processes the node starts, or the cluster's pods.
    pub target: Target,
    /// A soak's load instead of the profile's (`harness soak`).
    pub soak: Option<super::soak::SoakLoad<'a>>,
}

#[derive(Default)]
pub struct ModeResult {
    pub run: ModeRun,
    pub requests: Vec<RequestRow>,
    pub cpu: Vec<CpuSample>,
    pub cpustat: Vec<CpuStatSample>,
    pub counters: Vec<CounterRow>,
    pub probes: Vec<ProbeRow>,
    /// A soak's samples of every process's memory, descriptors, BPF map
    /// entries and pool slots.
    pub resources: Vec<ResourceSample>,
}

impl ModeResult {
    /// A mode that did not run (or did not come up).
    pub fn not_run(repeat: usize, mode_index: usize, mode: Mode, target: Target, why: String) -> Self {
        eprintln!("harness: {}: {why}", mode.name());
        Self {
            run: ModeRun {
                repeat,
                mode_index,
                mode: mode.name().into(),
                label: mode.label(target).into(),
                status: why,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

fn progress(len_s: f64, mode: Mode, repeat: usize) -> ProgressBar {
    let bar = ProgressBar::new((len_s * 4.0) as u64);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>14} {msg:<9} [{bar:40}] {elapsed}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("{} #{}", mode.name(), repeat + 1));
    bar
}

/// Sleeps `secs` (or until interrupted) while advancing the bar.
fn wait(bar: &ProgressBar, phase: &str, secs: f64) {
    wait_until(bar, phase, Instant::now() + Duration::from_secs_f64(secs));
}

/// Waits until `end` (or a stop request), showing `phase`.
fn wait_until(bar: &ProgressBar, phase: &str, end: Instant) {
    bar.set_message(phase.to_string());
    while Instant::now() < end && !crate::stop::requested() {
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(250)));
        bar.inc(1);
    }
}

/// Runs a load generator on the load CPUs, in its own thread and runtime.
fn spawn_load<T, F, Fut>(cpus: &[usize], load: F) -> JoinHandle<Result<T, String>>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, String>>,
{
    let cpus = cpus.to_vec();
    std::thread::spawn(move || {
        pin_current_thread(&cpus)?;
        let workers = if cpus.is_empty() { 2 } else { cpus.len() };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(load())
    })
}

/// Waits for a generator, advancing the bar.
fn join<T>(bar: &ProgressBar, phase: &str, generator: JoinHandle<Result<T, String>>) -> Result<T, String> {
    bar.set_message(phase.to_string());
    while !generator.is_finished() {
        std::thread::sleep(Duration::from_millis(250));
        bar.inc(1);
    }
    generator.join().unwrap_or_else(|_| Err("load generator panicked".into()))
}

/// The mode's phase boundaries, taken on the node (each samples every
/// collector there). The first failure is kept, and ends the mode: a node
/// that cannot mark a boundary has lost its measurements.
struct Timeline<'n> {
    node: &'n mut Node,
    repeat: usize,
    mode: Mode,
    failure: Option<String>,
}

impl Timeline<'_> {
    /// Ends the open phase (if any) now and begins `label`.
    fn enter(&mut self, label: &str, offered: Option<f64>) {
        if self.failure.is_none() {
            self.failure = self.node.enter(label, offered).err();
        }
    }

    /// Ends the open phase now.
    fn close(&mut self) {
        if self.failure.is_none() {
            self.failure = self.node.close().err();
        }
    }
}

/// How the load part of a mode went.
#[derive(Default)]
struct Loaded {
    requests: Vec<RequestRecord>,
    probes: Vec<ProbeRow>,
    /// Why the mode is not ok, if it is not.
    problem: Option<String>,
    flags: Vec<String>,
    /// The highest rate a sweep's probe passed at.
    saturation: Option<f64>,
    /// Counters the driver read itself (a chaos run's leaked slots).
    counters: Vec<CounterRow>,
}

pub fn run_mode(plan: &Plan, node: &mut Node, mode: Mode, repeat: usize, mode_index: usize) -> ModeResult {
    let p = plan.profile;
    let duration = p.max_duration_s.get(mode.name()).map_or(p.duration_s, |cap| cap.min(p.duration_s));
    let bar = progress(p.idle_s + p.warmup_s + duration, mode, repeat);
    bar.set_message("up");
    let scale_to_zero = mode == Mode::KnativeStz;
    let up = UpRequest {
        mode: mode.name().into(),
        workload: plan.workload.name().into(),
        listen: SocketAddr::new(plan.listen, 0),
        repeat,
        service_time_scale: p.service_time_scale,
        service_time_mode: (!p.service_time_mode.is_empty()).then(|| p.service_time_mode.clone()),
        scale_to_zero_ms: p.knative.scale_to_zero_ms.filter(|_| scale_to_zero),
        cold_start_ms: p.knative.cold_start_ms.filter(|_| scale_to_zero),
        cpus: plan.system_cpus.clone(),
        target: plan.target,
        resources_ms: plan.soak.map(|s| s.sample_ms),
    };
    let (door, components) = match node.up(up) {
        Ok(up) => up,
        Err(e) => return ModeResult::not_run(repeat, mode_index, mode, plan.target, format!("failed: {e}")),
    };
    let mut flags = Vec::new();
    let cores = if plan.system_cpus.is_empty() { node.facts.allowed_cpus.len() } else { plan.system_cpus.len() };
    let functions = components.iter().filter(|c| c.group == "function").count();
    if mode == Mode::DSpright && functions + 1 > cores {
        flags.push(format!("oversubscribed: {} polling processes on {cores} core(s)", functions + 1));
    }
    if duration < p.duration_s {
        flags.push(format!("load phase capped at {duration} s"));
    }
    let mut tl = Timeline { node, repeat, mode, failure: None };
    tl.enter("idle", None);
    wait(&bar, "idle", p.idle_s);
    if plan.file.collectors.iter().any(|c| c == "perf") && tl.failure.is_none() {
        if let Err(e) = tl.node.start_perf() {
            flags.push(format!("no perf counters: {e}"));
        }
    }
    let loaded = match (plan.sweep, &p.load) {
        _ if tl.failure.is_some() => Loaded::default(),
        _ if plan.soak.is_some() => soak(plan, plan.soak.as_ref().unwrap(), duration, &door, &mut tl, &bar),
        (Some(spec), _) => match plan.chaos {
            Some(faults) => chaos_run(plan, spec, faults, &door, &components, &mut tl, &bar),
            None => sweep(plan, spec, &door, &mut tl, &bar),
        },
        (None, Load::Users { increase_rate, think_ms, .. }) => {
            let load = users::UserLoad {
                door: door.clone(),
                users: p.load.users_for(mode),
                increase_rate: *increase_rate,
                think: (Duration::from_millis(think_ms[0]), Duration::from_millis(think_ms[1])),
                run_time: Duration::from_secs_f64(p.warmup_s + duration),
                seed: plan.file.seed,
            };
            let rec = Recorder::new(plan.epoch);
            let r = rec.clone();
            tl.enter("warmup", None);
            let generator = spawn_load(&plan.load_cpus, move || async move { users::run(&load, &r).await });
            wait(&bar, "warm-up", p.warmup_s);
            tl.enter("measure", None);
            wait(&bar, "load", duration);
            tl.close();
            let result = join(&bar, "draining", generator);
            Loaded { requests: rec.take(), problem: result.err(), ..Default::default() }
        }
        (None, load @ (Load::MotionTrace { .. } | Load::ParkingBursts { .. })) => {
            let schedule = replay_schedule(plan, load);
            let rec = Recorder::new(plan.epoch);
            let r = rec.clone();
            tl.enter("measure", None);
            let door = door.clone();
            let generator = spawn_load(&plan.load_cpus, move || async move {
                replay::run(door, schedule, &r).await;
                Ok(())
            });
            let result = join(&bar, "replay", generator);
            tl.close();
            Loaded { requests: rec.take(), problem: result.err(), ..Default::default() }
        }
    };
    let failure = tl.failure.take();
    bar.set_message("down");
    let collected = node.down();
    bar.finish_and_clear();
    flags.extend(loaded.flags);
    // A node that failed loses what it measured, not what the driver saw.
    let node_problem = failure.or_else(|| collected.as_ref().err().cloned()).map(|e| format!("failed: {e}"));
    let Collected { phases, counters, processes, cpus, components, resources } = collected.unwrap_or_default();

    let mut run = ModeRun {
        repeat,
        mode_index,
        mode: mode.name().into(),
        label: mode.label(plan.target).into(),
        status: String::new(),
        users: if plan.sweep.is_some() || plan.soak.is_some() { 0 } else { p.load.users_for(mode) },
        phases,
        flags,
        components,
    };
    let name = mode.name().to_string();
    let requests: Vec<RequestRow> =
        loaded.requests.into_iter().map(|r| RequestRow { repeat, mode: name.clone(), phase: run.phase_at(r.time_s).into(), r }).collect();
    let cpu = processes.into_iter().map(|s| CpuSample { repeat, mode: name.clone(), phase: run.phase_at(s.time_s).into(), s }).collect();
    let cpustat = cpus.into_iter().map(|s| CpuStatSample { repeat, mode: name.clone(), phase: run.phase_at(s.time_s).into(), s }).collect();
    let resources =
        resources.into_iter().map(|s| ResourceSample { repeat, mode: name.clone(), phase: run.phase_at(s.time_s).into(), s }).collect();
    run.status = match (node_problem, loaded.problem) {
        _ if crate::stop::requested() => "cut short: interrupted".to_string(),
        (Some(problem), _) | (None, Some(problem)) => problem,
        (None, None) if requests.iter().any(|r| r.phase == run.headline_phase()) => "ok".into(),
        (None, None) => "failed: no request completed in the measured phase".into(),
    };
    let mut counters = counters;
    counters.extend(loaded.counters);
    ModeResult { run, requests, cpu, cpustat, counters, probes: loaded.probes, resources }
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

/// Pause after a failed probe, outside every phase.
const SETTLE_S: f64 = 2.0;

/// An open-loop step of the sweep's kind (arrivals, sessions) at `rate`.
fn sweep_step(spec: &SweepSpec, door: &FrontDoor, rate: f64, secs: f64, seed: u64) -> open_loop::Step {
    open_loop::Step {
        door: door.clone(),
        rate,
        duration: Duration::from_secs_f64(secs),
        poisson: spec.arrivals == "poisson",
        seed,
        sessions: spec.sessions,
    }
}

/// One open-loop step at `rate` for `secs`: its records, when its schedule
/// began (seconds since the run started) and its send lags.
fn step(
    plan: &Plan,
    spec: &SweepSpec,
    door: &FrontDoor,
    rate: f64,
    secs: f64,
    seed: u64,
) -> Result<(Vec<RequestRecord>, f64, Vec<f64>), String> {
    let step = sweep_step(spec, door, rate, secs, seed);
    let rec = Recorder::new(plan.epoch);
    let r = rec.clone();
    let (start, lags) = spawn_load(&plan.load_cpus, move || async move { Ok(open_loop::run(&step, &r).await) })
        .join()
        .unwrap_or_else(|_| Err("load generator panicked".into()))?;
    Ok((rec.take(), rec.since_epoch(start), lags))
}

/// The saturation search: a warm-up, the common-rate probe, then probes
/// chosen by [`Search`] until it converges or the time cap is spent.
/// Requests are kept for the warm-up and the common probe; every probe is
/// summarized in a [`ProbeRow`].
fn sweep(plan: &Plan, spec: &SweepSpec, door: &FrontDoor, tl: &mut Timeline, bar: &ProgressBar) -> Loaded {
    let mut out = Loaded::default();
    bar.set_message("warm-up");
    tl.enter("warmup", Some(spec.start_rate));
    match step(plan, spec, door, spec.start_rate, plan.profile.warmup_s, plan.file.seed) {
        Ok((records, _, _)) => out.requests.extend(records),
        Err(e) => out.problem = Some(format!("failed: {e}")),
    }
    let mut search = Search::new(spec.start_rate, spec.growth, spec.max_rate, spec.tolerance);
    let mut spent = 0.0;
    let mut k = 0;
    while let Some(rate) = search.next_rate() {
        if out.problem.is_some() || tl.failure.is_some() || crate::stop::requested() {
            break;
        }
        let (label, secs) = if k == 0 { ("common".to_string(), spec.common_s) } else { (format!("probe {k}"), spec.step_s) };
        if k > 0 && spent + secs > spec.max_search_s {
            break;
        }
        bar.set_message(format!("{rate} /s"));
        bar.inc(1);
        tl.enter(&label, Some(rate));
        let result = step(plan, spec, door, rate, secs, plan.file.seed.wrapping_add(k as u64 + 1));
        tl.close();
        let (records, from_s, lags) = match result {
            Ok(r) => r,
            Err(e) => {
                out.problem = Some(format!("failed: {e}"));
                break;
            }
        };
        let stats = ProbeStats::of(&records, from_s, secs, &lags);
        let verdict = stats.verdict(spec.p99_bound_ms);
        search.record(rate, verdict);
        if verdict == Verdict::Fail {
            // An overloaded system may still work off what its clients gave up on.
            wait(bar, "settle", SETTLE_S);
        }
        spent += secs;
        out.probes.push(ProbeRow {
            repeat: tl.repeat,
            mode: tl.mode.name().into(),
            phase: label,
            offered: rate,
            duration_s: secs,
            tasks: lags.len() as u64,
            stats,
            passed: verdict == Verdict::Pass,
        });
        if k == 0 {
            out.requests.extend(records);
        }
        k += 1;
    }
    out.saturation = search.pass;
    use super::search::Outcome;
    match search.outcome() {
        Outcome::Found { pass, fail } => out.flags.push(format!("saturation between {pass} and {fail} tasks/s")),
        Outcome::NotSaturated { pass } => out.flags.push(format!("not saturated at the maximum rate ({pass} tasks/s)")),
        Outcome::BelowMinimum { fail } => out.flags.push(format!("no rate passed (lowest probed: {fail} tasks/s)")),
        Outcome::GeneratorLimited { pass } => out.flags.push(format!(
            "load generator limited: it fell behind its schedule above {} tasks/s, a lower bound",
            pass.map_or("no".to_string(), |p| p.to_string())
        )),
        Outcome::Unfinished { pass, fail } if out.problem.is_none() && !crate::stop::requested() => {
            out.problem = Some(format!(
                "cut short: the search's time cap ({} s) ended it between {} and {} tasks/s",
                spec.max_search_s,
                pass.map_or("-".to_string(), |p| p.to_string()),
                fail.map_or("-".to_string(), |f| f.to_string())
            ))
        }
        Outcome::Unfinished { .. } => {}
    }
    out
}

/// The sweep, then open-loop load at the chaos fraction of the saturation it
/// found while the faults of [`chaos::plan`] are injected one by one, each
/// in its own phase. Before the last - killing the front door - the load
/// stops for `quiesce_s` and the SPRIGHT pools' slots in use are read: what
/// is still held then has leaked.
fn chaos_run(
    plan: &Plan,
    spec: &SweepSpec,
    faults: &ChaosSpec,
    door: &FrontDoor,
    components: &[crate::results::ComponentInfo],
    tl: &mut Timeline,
    bar: &ProgressBar,
) -> Loaded {
    let mut out = sweep(plan, spec, door, tl, bar);
    if out.problem.is_some() || tl.failure.is_some() || crate::stop::requested() {
        return out;
    }
    let Some(saturation) = out.saturation else {
        out.problem = Some("failed: the sweep found no rate to take a fraction of".into());
        return out;
    };
    let rate = (faults.load_fraction * saturation).round().max(1.0);
    let functions: Vec<String> = components.iter().filter(|c| c.group == "function").map(|c| c.name.clone()).collect();
    let front_door = components.iter().find(|c| c.group == "gateway").map(|c| c.name.as_str());
    let mut schedule = chaos::plan(faults, &functions, front_door);
    let last = front_door.and_then(|_| schedule.pop());
    let mut n = 0;
    let mut run_faults = |tl: &mut Timeline, out: &mut Loaded, lead_in: &str, group: &[chaos::Fault], seed: u64| {
        let total: f64 = faults.lead_s + group.iter().map(|f| chaos::window_s(f, faults)).sum::<f64>();
        // A second more than the windows: the generator's clock starts a
        // moment after ours, and the last window must not lose its end.
        let step = sweep_step(spec, door, rate, total + 1.0, seed);
        let rec = Recorder::new(plan.epoch);
        let r = rec.clone();
        tl.enter(lead_in, Some(rate));
        let generator = spawn_load(&plan.load_cpus, move || async move {
            open_loop::run(&step, &r).await;
            Ok(())
        });
        // Every fault at a fixed offset from the load's start: the time
        // spent entering phases and injecting faults must not add up and
        // push the last windows past the end of the load.
        let started = Instant::now();
        let at = |s: f64| started + Duration::from_secs_f64(s);
        let mut offset = faults.lead_s;
        wait_until(bar, "lead-in", at(offset));
        for fault in group {
            if tl.failure.is_some() || crate::stop::requested() {
                break;
            }
            n += 1;
            let label = fault.label(n);
            // Inject, then begin the phase: a phase boundary reads every
            // counter first (a second or more with the audit maps full), so
            // the phase's start - the instant the outcomes are measured
            // from - is the fault's only this way round.
            if let Err(e) = tl.node.fault(&fault.target, fault.action) {
                out.flags.push(format!("{label}: not injected: {e}"));
            }
            tl.enter(&label, Some(rate));
            if let Some(after) = fault.cont_after {
                wait_until(bar, fault.kind, at(offset + after.as_secs_f64()));
                if let Err(e) = tl.node.fault(&fault.target, FaultAction::Cont) {
                    out.flags.push(format!("{label}: not continued: {e}"));
                }
            }
            offset += chaos::window_s(fault, faults);
            wait_until(bar, if fault.cont_after.is_some() { "recover" } else { fault.kind }, at(offset));
        }
        tl.close();
        if let Err(e) = join(bar, "draining", generator) {
            out.problem = Some(format!("failed: {e}"));
        }
        out.requests.extend(rec.take());
    };
    run_faults(tl, &mut out, "chaos lead-in", &schedule, plan.file.seed.wrapping_add(1000));
    // No load: whatever a pool still holds after the request timeout leaked.
    tl.enter("quiesce", None);
    wait(bar, "quiesce", faults.quiesce_s);
    match tl.node.pool_slots() {
        Ok(pools) => out.counters.extend(pools.into_iter().map(|(pool, in_use)| CounterRow {
            repeat: tl.repeat,
            mode: tl.mode.name().into(),
            phase: "quiesce".into(),
            source: "runtime".into(),
            scope: pool,
            name: "pool_slots_in_use".into(),
            value: in_use as f64,
        })),
        Err(e) => out.flags.push(format!("pool slots not read: {e}")),
    }
    tl.close();
    if let Some(last) = last {
        run_faults(tl, &mut out, "front door lead-in", std::slice::from_ref(&last), plan.file.seed.wrapping_add(2000));
    }
    out.flags.push(format!(
        "chaos at {rate} tasks/s: {:.0}% of the highest rate its sweep passed ({saturation} tasks/s)",
        faults.load_fraction * 100.0
    ));
    out
}

/// A soak: open-loop load at one rate - the profile's warm-up, then the
/// soak itself for `duration` - and then [`super::soak::AFTER_LOAD`], a
/// phase without load in which every slot must come back.
fn soak(plan: &Plan, s: &super::soak::SoakLoad, duration: f64, door: &FrontDoor, tl: &mut Timeline, bar: &ProgressBar) -> Loaded {
    let step = open_loop::Step {
        door: door.clone(),
        rate: s.rate,
        duration: Duration::from_secs_f64(plan.profile.warmup_s + duration),
        poisson: s.spec.arrivals == "poisson",
        seed: plan.file.seed,
        sessions: s.spec.sessions,
    };
    let rec = Recorder::new(plan.epoch);
    let r = rec.clone();
    tl.enter("warmup", Some(s.rate));
    let generator = spawn_load(&plan.load_cpus, move || async move {
        open_loop::run(&step, &r).await;
        Ok(())
    });
    wait(bar, "warm-up", plan.profile.warmup_s);
    tl.enter("measure", Some(s.rate));
    // Until the schedule ends and every request it sent is answered.
    let result = join(bar, "soak", generator);
    tl.enter(super::soak::AFTER_LOAD, None);
    wait(bar, "after load", s.after_load_s);
    tl.close();
    Loaded { requests: rec.take(), problem: result.err(), ..Default::default() }
}
