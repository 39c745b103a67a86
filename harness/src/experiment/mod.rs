//! `harness experiment NAME`: run every mode of the experiment, `--repeat N`
//! times interleaved (the mode order rotated each repeat so that drift on
//! the machine favours no mode), then write one run directory and
//! regenerate its summary and figures from it.

pub mod chaos;
pub mod config;
pub(crate) mod counters;
pub(crate) mod machine;
mod mode;
pub mod search;
pub mod soak;

use std::path::PathBuf;
use std::time::Instant;

use self::config::{ExperimentFile, Load};
use self::mode::{ModeResult, Plan};
use crate::deploy::{pin_current_thread, Mode, Target, Workload};
use crate::node::client::Node;
use crate::node::ssh::SshTarget;
use crate::results::{Manifest, RunData, TwoNodes};

pub struct Args {
    pub name: String,
    pub modes: Option<Vec<Mode>>,
    pub profile: String,
    pub duration_s: Option<f64>,
    pub out: Option<PathBuf>,
    /// Run the profile's open-loop saturation search instead of the users.
    pub sweep: bool,
    /// After the sweep, inject the profile's faults under load (implies `sweep`).
    pub chaos: bool,
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
    /// Two nodes: the system under test runs on another node (None: here).
    pub sut: Option<Sut>,
    /// A soak (`harness soak`) instead of the profile's load.
    pub soak: Option<soak::Args>,
}

/// The system-under-test node, reached over SSH.
pub struct Sut {
    /// `ssh://USER@HOST[:PORT]`.
    pub target: String,
    /// Its address the load targets (default: the SSH host's).
    pub listen: Option<std::net::IpAddr>,
    /// The harness binary there.
    pub harness: String,
    pub ssh_config: Option<PathBuf>,
    /// Processes the node starts, or the project's manifests on the
    /// Kubernetes cluster node-0 belongs to.
    pub deploy_target: Target,
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

/// Checks the pinning against the CPUs its node allows; drops it with a
/// warning when it cannot be honoured.
fn usable(cpus: &[usize], allowed: &[usize], what: &str, warnings: &mut Vec<String>) -> Vec<usize> {
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
    if let Some(s) = &args.soak {
        // Every mode soaks as long as asked.
        profile.duration_s = s.duration_s;
        profile.max_duration_s.clear();
    }
    let modes = match &args.modes {
        Some(m) => m.clone(),
        None => file.modes()?,
    };
    if args.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    let git_revision = machine::git_revision();
    if args.reference && git_revision.ends_with("-dirty") && !args.allow_dirty {
        return Err(format!(
            "the tree has uncommitted changes ({git_revision}): a reference run must come from a commit; commit first, or pass --allow-dirty (the run is then marked)"
        ));
    }
    let mut warnings = Vec::new();
    // The driver's CPUs, before anything pins itself; on two nodes, the
    // load node's whole machine for the manifest.
    let load_cpus = usable(&profile.pin.load, &spright::sys::allowed_cpus(), "load generator", &mut warnings);
    let load_node = args.sut.as_ref().map(|_| machine::facts());
    // The node that runs the system under test and its collectors: a thread
    // of this process, or `harness node --stdio` over SSH - the same
    // protocol either way. It reads its machine before anything pins
    // itself; its own threads (sampler, eBPF reader) run off the system's
    // CPUs (here: with the load generator).
    let epoch = Instant::now();
    let (mut node, listen) = match &args.sut {
        None => (Node::local(epoch)?, std::net::IpAddr::from([127, 0, 0, 1])),
        Some(sut) => {
            let target = SshTarget::parse(&sut.target)?;
            let listen = match sut.listen {
                Some(ip) => ip,
                None => target.ip()?,
            };
            let cmd = target.node_command(&sut.harness, sut.ssh_config.as_deref());
            (Node::command(target.to_string(), cmd, epoch)?, listen)
        }
    };
    warnings.extend(node.hello(&file.collectors, file.sample_ms, &load_cpus)?);
    let system_cpus = usable(&profile.pin.system, &node.facts.allowed_cpus, "system", &mut warnings);
    let release = node.facts.build_profile == "release";
    if args.reference && !release {
        return Err("a reference run measures optimized builds only (no --allow-unoptimized)".into());
    }
    if !release {
        warnings.push("UNOPTIMIZED BUILD: the measured binaries are debug builds; numbers are not valid".into());
    }
    if args.reference && args.allow_dirty && git_revision.ends_with("-dirty") {
        warnings.push(format!("reference run from a tree with uncommitted changes ({git_revision}), allowed by --allow-dirty"));
    }
    let root = node.facts.root;
    if !root {
        warnings.push("not root: s-spright (eBPF sk_msg) is skipped and the eBPF collector does not run".into());
    }
    // The driver's own threads (load generator, progress) run on the load CPUs.
    pin_current_thread(&load_cpus)?;
    let started = chrono::Local::now();
    let dir = match (&args.out, args.reference) {
        (Some(out), _) => out.clone(),
        (None, true) => crate::workspace_dir().join("results/reference").join(format!(
            "{}-{}",
            file.name,
            if args.chaos {
                "chaos"
            } else if args.sweep {
                "sweep"
            } else {
                args.profile.as_str()
            }
        )),
        (None, false) => crate::workspace_dir().join("results").join(&file.name).join(started.format("%Y%m%d-%H%M%S").to_string()),
    };
    eprintln!(
        "harness: experiment {} (profile {}, {} build, {} repeat{}), modes {}; results in {}",
        file.name,
        args.profile,
        node.facts.build_profile,
        args.repeat,
        if args.repeat == 1 { "" } else { "s" },
        modes.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
        dir.display()
    );
    let chaos = if args.chaos {
        Some(profile.chaos.as_ref().ok_or_else(|| format!("profile {} of {} has no chaos section", args.profile, file.name))?)
    } else {
        None
    };
    let sweep = if args.sweep || args.chaos {
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
    if args.soak.is_some() && workload != Workload::Boutique {
        return Err("a soak drives the Online Boutique mix: use it with the boutique experiment".into());
    }
    let soak_spec = match &args.soak {
        Some(_) => {
            let missing = || format!("profile {} of {} has no sweep section (the soak's search and arrivals)", args.profile, file.name);
            Some(profile.sweep.as_ref().ok_or_else(missing)?)
        }
        None => None,
    };
    if (args.sweep || args.chaos) && workload != Workload::Boutique {
        return Err("--sweep and chaos drive the Online Boutique mix: use them with the boutique experiment".into());
    }
    crate::stop::install();
    let target = args.sut.as_ref().map_or(Target::Processes, |s| s.deploy_target);
    if target == Target::K8s {
        warnings.push(
            "on the cluster the kubelet places and schedules the pods: the profile's system CPUs are not pinned; interrupts and /proc/stat columns are still node-0's".into(),
        );
    }
    let plan = Plan {
        trace: trace.as_deref(),
        file: &file,
        workload,
        profile: &profile,
        epoch,
        listen,
        system_cpus,
        load_cpus,
        sweep,
        chaos,
        target,
        soak: None,
    };
    let mut results: Vec<ModeResult> = Vec::new();
    let mut soaked: Vec<soak::SoakMode> = Vec::new();
    for repeat in 0..args.repeat {
        for (index, mode) in rotated(&modes, repeat) {
            let r = if crate::stop::requested() {
                ModeResult::not_run(repeat, index, mode, plan.target, "cut short: not run (interrupted)".into())
            } else if mode == Mode::SSpright && !root {
                ModeResult::not_run(repeat, index, mode, plan.target, "skipped: needs root (eBPF sk_msg)".into())
            } else {
                eprintln!("harness: {} (repeat {} of {}) ...", mode.label(plan.target), repeat + 1, args.repeat);
                match (&args.soak, soak_spec) {
                    (Some(s), Some(spec)) => {
                        let (r, record) = soak::run_mode(&plan, &mut node, mode, index, s, spec);
                        soaked.push(record);
                        r
                    }
                    _ => mode::run_mode(&plan, &mut node, mode, repeat, index),
                }
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
            _ if args.soak.is_some() => "soak",
            _ if args.chaos => "chaos",
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
        build_profile: node.facts.build_profile.clone(),
        kernel: node.facts.kernel.clone(),
        cpu_model: node.facts.cpu_model.clone(),
        cpu_accounting: node.facts.cpu_accounting.clone(),
        cores: node.facts.cores,
        allowed_cpus: node.facts.allowed_cpus.clone(),
        root,
        bpf: node.facts.bpf.clone(),
        collectors: file.collectors.clone(),
        sample_ms: file.sample_ms,
        crate_versions: machine::crate_versions(),
        two_nodes: load_node.map(|load| TwoNodes {
            sut: node.name.clone(),
            sut_hostname: node.facts.hostname.clone(),
            target: listen.to_string(),
            path: machine::route_to(listen),
            load,
            deployed_as: target,
        }),
        modes: results.iter().map(|r| r.run.clone()).collect(),
        warnings,
        soak: args.soak.as_ref().zip(soak_spec).map(|(s, spec)| s.record(soaked, spec)),
    };
    let mut data = RunData::empty(manifest);
    for r in results {
        data.requests.extend(r.requests);
        data.cpu.extend(r.cpu);
        data.cpustat.extend(r.cpustat);
        data.counters.extend(r.counters);
        data.probes.extend(r.probes);
        data.resources.extend(r.resources);
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
