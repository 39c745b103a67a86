//! `harness experiment NAME`: run every mode of the experiment, `--repeat N`
//! times interleaved (the mode order rotated each repeat so that drift on
//! the machine favours no mode), then write one run directory and
//! regenerate its summary and figures from it.

pub mod config;
mod counters;
mod machine;
mod mode;
pub mod search;

use std::path::PathBuf;
use std::time::Instant;

use self::config::{ExperimentFile, Load};
use self::mode::{ModeResult, Plan};
use crate::collect::ebpf::AuditProbe;
use crate::deploy::{pin_current_thread, Binaries, Mode, Workload};
use crate::results::{Manifest, RunData};

pub struct Args {
    pub name: String,
    pub modes: Option<Vec<Mode>>,
    pub profile: String,
    pub duration_s: Option<f64>,
    pub out: Option<PathBuf>,
    /// Run the profile's open-loop saturation search instead of the users.
    pub sweep: bool,
    /// Motion: replay this trace file instead of the synthetic trace.
    pub trace: Option<PathBuf>,
    /// Replaces the experiment file's collectors.
    pub collectors: Option<Vec<String>>,
    /// Runs of the whole mode sequence.
    pub repeat: usize,
    /// Write a reference run (results/reference/..., parquet only, clean tree).
    pub reference: bool,
    /// Let a reference run come from a tree with uncommitted changes (marked).
    pub allow_dirty: bool,
}

/// What a finished run left.
pub struct Outcome {
    pub dir: PathBuf,
    /// Modes (and repeats) that failed, were skipped or cut short.
    pub incomplete: Vec<String>,
}

/// The modes of repeat `r`: the list rotated left by `r`.
fn rotated<T: Copy>(modes: &[T], r: usize) -> Vec<(usize, T)> {
    let n = modes.len().max(1);
    (0..modes.len()).map(|i| ((i + r) % n, modes[(i + r) % n])).collect()
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

/// Runs the experiment and writes its run directory.
pub fn run(args: &Args) -> Result<Outcome, String> {
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
    if args.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let bins = Binaries::beside_current_exe();
    let git_revision = machine::git_revision();
    if args.reference {
        if !bins.release {
            return Err("a reference run measures optimized builds only (no --allow-unoptimized)".into());
        }
        if git_revision.ends_with("-dirty") && !args.allow_dirty {
            return Err(format!(
                "the tree has uncommitted changes ({git_revision}): a reference run must come from a commit; commit first, or pass --allow-dirty (the run is then marked)"
            ));
        }
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut warnings = Vec::new();
    if !bins.release {
        warnings.push("UNOPTIMIZED BUILD: the measured binaries are debug builds; numbers are not valid".into());
    }
    if args.reference && args.allow_dirty && git_revision.ends_with("-dirty") {
        warnings.push(format!("reference run from a tree with uncommitted changes ({git_revision}), allowed by --allow-dirty"));
    }
    if !root {
        warnings.push("not root: s-spright (eBPF sk_msg) is skipped and the eBPF collector does not run".into());
    }
    let system_cpus = usable(&profile.pin.system, "system", &mut warnings);
    let load_cpus = usable(&profile.pin.load, "load generator", &mut warnings);
    // The machine as this process found it, before it pins itself.
    let (allowed_cpus, cores) = (spright::sys::allowed_cpus(), std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    // The harness's own threads (collectors, progress) run with the load
    // generator, off the system's CPUs.
    pin_current_thread(&load_cpus)?;
    let started = chrono::Local::now();
    let dir = match (&args.out, args.reference) {
        (Some(out), _) => out.clone(),
        (None, true) => crate::workspace_dir().join("results/reference").join(format!(
            "{}-{}",
            file.name,
            if args.sweep { "sweep" } else { args.profile.as_str() }
        )),
        (None, false) => crate::workspace_dir().join("results").join(&file.name).join(started.format("%Y%m%d-%H%M%S").to_string()),
    };
    eprintln!(
        "harness: experiment {} (profile {}, {} build, {} repeat{}), modes {}; results in {}",
        file.name,
        args.profile,
        if bins.release { "release" } else { "debug" },
        args.repeat,
        if args.repeat == 1 { "" } else { "s" },
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
    crate::stop::install();
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
    let mut results: Vec<ModeResult> = Vec::new();
    for repeat in 0..args.repeat {
        for (index, mode) in rotated(&modes, repeat) {
            let r = if crate::stop::requested() {
                ModeResult::not_run(repeat, index, mode, "cut short: not run (interrupted)".into())
            } else if mode == Mode::SSpright && !root {
                ModeResult::not_run(repeat, index, mode, "skipped: needs root (eBPF sk_msg)".into())
            } else {
                eprintln!("harness: {} (repeat {} of {}) ...", mode.label(), repeat + 1, args.repeat);
                mode::run_mode(&plan, mode, repeat, index)
            };
            results.push(r);
        }
    }
    let incomplete: Vec<String> =
        results.iter().filter(|r| !r.run.ok()).map(|r| format!("{} (repeat {}): {}", r.run.mode, r.run.repeat + 1, r.run.status)).collect();
    warnings.extend(incomplete.iter().cloned());
    let manifest = Manifest {
        experiment: file.name.clone(),
        workload: workload.name().into(),
        profile_name: args.profile.clone(),
        profile: profile.clone(),
        load_kind: match (&profile.load, args.sweep) {
            (_, true) => "sweep",
            (Load::Users { .. }, false) => "users",
            _ => "replay",
        }
        .into(),
        seed: file.seed,
        repeats: args.repeat,
        started_at: started.to_rfc3339(),
        git_revision,
        reference: args.reference,
        allow_dirty: args.allow_dirty,
        build_profile: if bins.release { "release" } else { "debug" }.into(),
        kernel: machine::kernel(),
        cpu_model: machine::cpu_model(),
        cpu_accounting: machine::cpu_accounting(),
        cores,
        allowed_cpus,
        root,
        bpf: machine::bpf_status(root),
        collectors: file.collectors.clone(),
        sample_ms: file.sample_ms,
        crate_versions: machine::crate_versions(),
        modes: results.iter().map(|r| r.run.clone()).collect(),
        warnings,
    };
    let mut data =
        RunData { manifest, requests: Vec::new(), cpu: Vec::new(), cpustat: Vec::new(), counters: Vec::new(), probes: Vec::new() };
    for r in results {
        data.requests.extend(r.requests);
        data.cpu.extend(r.cpu);
        data.cpustat.extend(r.cpustat);
        data.counters.extend(r.counters);
        data.probes.extend(r.probes);
    }
    if args.reference {
        // A reference directory holds exactly one run.
        let _ = std::fs::remove_dir_all(&dir);
    }
    data.write(&dir, !args.reference)?;
    let table = crate::report::regenerate(&dir)?;
    println!("{table}");
    println!("results: {}", dir.display());
    println!("summary: {}", dir.join("summary.md").display());
    println!("figures: {} (again from the stored data: harness figures {})", dir.join("figures").display(), dir.display());
    Ok(Outcome { dir, incomplete })
}

/// A directory removed (with its contents) when this is dropped.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::rotated;

    #[test]
    fn each_repeat_rotates_the_mode_order() {
        let modes = ["a", "b", "c"];
        assert_eq!(rotated(&modes, 0), vec![(0, "a"), (1, "b"), (2, "c")]);
        assert_eq!(rotated(&modes, 1), vec![(1, "b"), (2, "c"), (0, "a")]);
        assert_eq!(rotated(&modes, 2), vec![(2, "c"), (0, "a"), (1, "b")]);
        assert_eq!(rotated(&modes, 3), rotated(&modes, 0));
    }
}
