//! `harness`: the testbed. `harness experiment NAME` runs an experiment
//! over every mode and writes a run directory with its summary and
//! figures; `harness figures RUN_DIR` regenerates those from the stored
//! files; `harness up` brings any mode of any workload up as OS processes
//! and keeps it up until SIGINT/SIGTERM.

mod collect;
mod deploy;
mod experiment;
mod load;
mod node;
mod report;
mod results;
mod stop;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command as Process, ExitCode};

use clap::{Parser, Subcommand};

use deploy::{Binaries, Deployment, Mode, Options, Workload};

/// Where the experiment files, chain files and results are: for an
/// installed harness (`PREFIX/bin/harness`, as the Ansible roles install
/// it) `PREFIX/share/spright`, else the workspace it was built from.
pub fn workspace_dir() -> PathBuf {
    let installed = std::env::current_exe().ok().and_then(|exe| Some(exe.parent()?.parent()?.join("share/spright")));
    if let Some(share) = installed.filter(|d| d.join("harness/experiments").is_dir()) {
        return share;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    dir.canonicalize().unwrap_or(dir)
}

#[derive(Parser)]
#[command(name = "harness", about = "spright-rs testbed")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment (harness/experiments/NAME.yaml) over its modes and write a run directory.
    Experiment {
        /// boutique, motion or parking.
        name: String,
        /// Comma-separated subset of the experiment's modes.
        #[arg(long, value_delimiter = ',')]
        modes: Option<Vec<Mode>>,
        /// `local` (this machine, the default) or `paper`.
        #[arg(long, default_value = "local")]
        profile: String,
        /// Override the measured phase's length (seconds).
        #[arg(long)]
        duration: Option<f64>,
        /// Run directory (default: results/NAME/TIMESTAMP).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Measure debug builds instead of rebuilding optimized ones (the
        /// manifest and summary then say the numbers are not valid).
        #[arg(long)]
        allow_unoptimized: bool,
        /// Run the profile's open-loop rate sweep (saturation points) instead of the users.
        #[arg(long)]
        sweep: bool,
        /// After the sweep, inject the profile's faults under load at a
        /// fraction of each mode's saturation (what `harness chaos` runs).
        #[arg(long)]
        chaos: bool,
        /// Motion: replay a real trace (`<sensor> <start_ms> <stop_ms>` lines) instead of the synthetic one.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Replace the experiment file's collectors (procfs, perf, interrupts, ebpf; procfs always runs).
        #[arg(long, value_delimiter = ',')]
        collectors: Option<Vec<String>>,
        /// Run the whole mode sequence N times, interleaved (the mode order
        /// rotated each repeat); N >= 3 gives confidence intervals.
        #[arg(long, default_value_t = 1)]
        repeat: usize,
        /// Write a reference run: results/reference/NAME-PROFILE (or -sweep),
        /// parquet only, from a clean commit.
        #[arg(long)]
        reference: bool,
        /// Let a reference run come from a tree with uncommitted changes (marked as such).
        #[arg(long, requires = "reference")]
        allow_dirty: bool,
        /// Two nodes: run the system under test and its collectors on the
        /// node at `ssh://USER@HOST[:PORT]` (with `harness node --stdio`
        /// there); the load generator runs here.
        #[arg(long)]
        sut: Option<String>,
        /// The system-under-test node's address that the load targets
        /// (default: the SSH host's).
        #[arg(long, requires = "sut")]
        sut_listen: Option<std::net::IpAddr>,
        /// The harness binary on the system-under-test node.
        #[arg(long, requires = "sut", default_value = "harness")]
        sut_harness: String,
        /// An ssh_config file for reaching that node (keys, known hosts).
        #[arg(long, requires = "sut")]
        ssh_config: Option<PathBuf>,
        /// Where node-0 runs the modes: `processes` it starts itself, or
        /// `k8s`: the project's manifests on the Kubernetes cluster that
        /// the Ansible `cluster` tag set up (real Knative, gRPC and SPRIGHT
        /// pods; the load targets their node ports).
        #[arg(long, requires = "sut", default_value = "processes")]
        target: deploy::Target,
    },
    /// Faults under load: `experiment boutique --chaos` - each mode's
    /// saturation, then open-loop load at the profile's fraction of it while
    /// functions are stopped, stalled, slowed and killed, and last the
    /// front door; a chaos table and figure in the run's summary.
    Chaos {
        /// Comma-separated subset of the experiment's modes.
        #[arg(long, value_delimiter = ',')]
        modes: Option<Vec<Mode>>,
        /// `local` (the default) or `smoke`.
        #[arg(long, default_value = "local")]
        profile: String,
        /// Run directory (default: results/boutique/TIMESTAMP).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Measure debug builds (the manifest and summary then say so).
        #[arg(long)]
        allow_unoptimized: bool,
        /// Write a reference run (results/reference/boutique-chaos).
        #[arg(long)]
        reference: bool,
    },
    /// Soak: each mode under open-loop Online Boutique load at a share
    /// (70%) of its saturation - found by a short search unless `--rate`
    /// fixes the load - for a long time, every process sampled each second
    /// (resident memory, open descriptors, BPF map entries, pool slots in
    /// use); fails when any grows beyond the tolerances.
    Soak {
        /// Comma-separated modes (default: s-spright, d-spright, e-spright).
        #[arg(long, alias = "mode", value_delimiter = ',')]
        modes: Option<Vec<Mode>>,
        /// The boutique experiment's profile: pinning, warm-up, the search's
        /// parameters (`local`, `smoke` or `paper`).
        #[arg(long, default_value = "local")]
        profile: String,
        /// How long each mode soaks: `90s`, `30m`, `1h` (or seconds).
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        duration: f64,
        /// Offer this many tasks/s to every mode (no search).
        #[arg(long, conflicts_with = "find_saturation")]
        rate: Option<f64>,
        /// Find each mode's saturation with a short search first (what
        /// happens without --rate).
        #[arg(long)]
        find_saturation: bool,
        /// The share of each mode's saturation offered.
        #[arg(long, default_value_t = 0.7)]
        load_fraction: f64,
        /// Cap on the search's probes, its common-rate probe included (the
        /// profile's cap if that is shorter).
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        search_time: f64,
        /// How long after the load the pools have to drain.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        after_load: f64,
        /// Private resident memory (RssAnon) may grow by this many percent
        /// of its level at the start ...
        #[arg(long, default_value_t = experiment::soak::Tolerances::default().private_memory_fraction * 100.0)]
        memory_growth_pct: f64,
        /// ... or by this many MiB, whichever is larger.
        #[arg(long, default_value_t = experiment::soak::Tolerances::default().private_memory_bytes >> 20)]
        memory_growth_mib: u64,
        /// Open descriptors may grow by this many, at rest: the last sample
        /// before the load against the last after it.
        #[arg(long, default_value_t = experiment::soak::Tolerances::default().open_fds)]
        fd_growth: u64,
        /// Run directory (default: results/boutique/TIMESTAMP).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Measure debug builds (the manifest and summary then say so).
        #[arg(long)]
        allow_unoptimized: bool,
    },
    /// Regenerate summary.md and figures/ of a run from its stored files.
    Figures { run_dir: PathBuf },
    /// Serve the node protocol (one JSON object per line) on stdin and
    /// stdout: what the experiment driver runs on the system-under-test
    /// node, over SSH. Everything it started stops when stdin ends.
    Node {
        /// Speak on stdin and stdout (the one transport).
        #[arg(long, required = true)]
        stdio: bool,
        /// End the session (tearing everything down) after this many
        /// seconds without a request: the driver or its link is gone. The
        /// driver sends a heartbeat every 5 s.
        #[arg(long, default_value_t = node::server::IDLE_LIMIT.as_secs())]
        idle_limit_s: u64,
    },
    /// Bring a deployment up; prints `ready http://ADDR`, runs until SIGINT/SIGTERM, then tears it down.
    Up {
        /// s-spright, d-spright, e-spright, knative (local model, pre-warmed), knative-stz (scale to zero) or grpc.
        #[arg(long)]
        mode: Mode,
        /// boutique, motion or parking.
        #[arg(long)]
        workload: Workload,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Also print every component: name, role, pid.
        #[arg(long)]
        list_components: bool,
        /// Multiply every emulated service time (1 = the paper's).
        #[arg(long, default_value_t = 1.0)]
        service_time_scale: f64,
        /// knative-stz: scale a function to zero after this idle window (the
        /// activator starts it on the next request).
        #[arg(long)]
        scale_to_zero_ms: Option<u64>,
        /// knative-stz: a cold start takes at least this long (default: only
        /// the model's own process start-up).
        #[arg(long)]
        cold_start_ms: Option<u64>,
    },
}

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts),
/// so that none is lost before [`wait_for_signal`]; returns the set.
fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: plain signal-set manipulation on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_for_signal(set: &libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: `set` is blocked in this thread, as sigwait requires.
    unsafe { libc::sigwait(set, &mut sig) };
}

/// A debug harness measures nothing: it builds the optimized binaries and
/// hands over to the optimized harness with the same arguments.
fn reexec_optimized() -> ExitCode {
    let workspace = workspace_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("harness: building optimized binaries (release profile) for the measurement");
    // By binary name: `parking` is also the name of a dependency crate.
    let bins = ["harness", "boutique", "motion", "parking", "knative-model", "grpc-baseline"];
    let mut build = Process::new(cargo);
    build.current_dir(&workspace).args(["build", "--release"]);
    for b in bins {
        build.args(["--bin", b]);
    }
    match build.status() {
        Ok(s) if s.success() => {}
        Ok(s) => {
            eprintln!("harness: the release build failed ({s})");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("harness: cannot run cargo: {e}");
            return ExitCode::FAILURE;
        }
    }
    let release = Binaries::beside_current_exe().dir.parent().map(|t| t.join("release").join("harness"));
    let Some(release) = release.filter(|p| p.exists()) else {
        eprintln!("harness: no release harness next to the debug one");
        return ExitCode::FAILURE;
    };
    use std::os::unix::process::CommandExt;
    let err = Process::new(&release).args(std::env::args_os().skip(1)).exec();
    eprintln!("harness: cannot run {}: {err}", release.display());
    ExitCode::FAILURE
}

/// `90s`, `30m`, `1h` or plain seconds, as seconds.
fn parse_duration(s: &str) -> Result<f64, String> {
    let (number, unit) = match s.trim().char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => s.trim().split_at(i),
        None => (s.trim(), "s"),
    };
    let v: f64 = number.trim().parse().map_err(|_| format!("{s:?}: not a duration (90s, 30m, 1h)"))?;
    let scale = match unit {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{s:?}: the unit is s, m or h")),
    };
    if v.is_finite() && v > 0.0 {
        Ok(v * scale)
    } else {
        Err(format!("{s:?}: must be positive"))
    }
}

/// The command line as typed after the binary: `harness ARGS`.
fn command_line() -> String {
    let args = std::env::args().skip(1).map(|a| if a.contains(char::is_whitespace) { format!("'{a}'") } else { a });
    std::iter::once("harness".to_string()).chain(args).collect::<Vec<_>>().join(" ")
}

/// Runs a soak, then checks it from the stored run directory: failure when
/// it could not run, is incomplete, or grew beyond its tolerances.
fn run_soak(args: &experiment::Args) -> ExitCode {
    let outcome = match experiment::run(args) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("harness: {e}");
            return ExitCode::FAILURE;
        }
    };
    let verdicts = match results::RunData::read(&outcome.dir) {
        Ok(data) => experiment::soak::verdicts(&data),
        Err(e) => {
            eprintln!("harness: cannot read the run back: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = outcome.incomplete.is_empty();
    for v in &verdicts {
        if v.pass() {
            println!("soak {}: PASS", v.mode);
        } else {
            ok = false;
            println!("soak {}: FAIL", v.mode);
            for f in v.failures() {
                println!("  {f}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("harness: the soak failed (everything measured is in {})", outcome.dir.display());
        ExitCode::FAILURE
    }
}

/// Runs an experiment; failure when it could not run or is incomplete.
fn run_experiment(args: &experiment::Args) -> ExitCode {
    match experiment::run(args) {
        Ok(outcome) if outcome.incomplete.is_empty() => ExitCode::SUCCESS,
        Ok(outcome) => {
            eprintln!("harness: the run is incomplete (everything measured is in {}):", outcome.dir.display());
            for m in &outcome.incomplete {
                eprintln!("  {m}");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("harness: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Experiment {
            name,
            modes,
            profile,
            duration,
            out,
            allow_unoptimized,
            sweep,
            chaos,
            trace,
            collectors,
            repeat,
            reference,
            allow_dirty,
            sut,
            sut_listen,
            sut_harness,
            ssh_config,
            target: deploy_target,
        } => {
            if cfg!(debug_assertions) && !allow_unoptimized {
                return reexec_optimized();
            }
            let args = experiment::Args {
                name,
                modes,
                profile,
                duration_s: duration,
                out,
                sweep,
                chaos,
                trace,
                collectors,
                repeat,
                reference,
                allow_dirty,
                sut: sut.map(|target| experiment::Sut { target, listen: sut_listen, harness: sut_harness, ssh_config, deploy_target }),
                soak: None,
            };
            run_experiment(&args)
        }
        Command::Chaos { modes, profile, out, allow_unoptimized, reference } => {
            if cfg!(debug_assertions) && !allow_unoptimized {
                return reexec_optimized();
            }
            let args = experiment::Args {
                name: "boutique".into(),
                modes,
                profile,
                duration_s: None,
                out,
                sweep: true,
                chaos: true,
                trace: None,
                collectors: None,
                repeat: 1,
                reference,
                allow_dirty: false,
                sut: None,
                soak: None,
            };
            run_experiment(&args)
        }
        Command::Soak {
            modes,
            profile,
            duration,
            rate,
            find_saturation: _,
            load_fraction,
            search_time,
            after_load,
            memory_growth_pct,
            memory_growth_mib,
            fd_growth,
            out,
            allow_unoptimized,
        } => {
            if cfg!(debug_assertions) && !allow_unoptimized {
                return reexec_optimized();
            }
            let tolerances = experiment::soak::Tolerances {
                private_memory_fraction: memory_growth_pct / 100.0,
                private_memory_bytes: memory_growth_mib << 20,
                open_fds: fd_growth,
                ..Default::default()
            };
            let args = experiment::Args {
                name: "boutique".into(),
                modes: Some(modes.unwrap_or_else(|| vec![Mode::SSpright, Mode::DSpright, Mode::ESpright])),
                profile,
                duration_s: None,
                out,
                sweep: false,
                chaos: false,
                trace: None,
                collectors: Some(vec!["procfs".into()]),
                repeat: 1,
                reference: false,
                allow_dirty: false,
                sut: None,
                soak: Some(experiment::soak::Args {
                    duration_s: duration,
                    rate,
                    load_fraction,
                    search_s: search_time,
                    after_load_s: after_load,
                    tolerances,
                    command: command_line(),
                }),
            };
            run_soak(&args)
        }
        Command::Figures { run_dir } => match report::regenerate(&run_dir) {
            Ok(table) => {
                println!("{table}");
                println!("regenerated {}/summary.md and figures/", run_dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("harness: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Node { stdio: _, idle_limit_s } => match node::server::serve(
            std::io::BufReader::new(std::io::stdin()),
            std::io::stdout().lock(),
            std::time::Duration::from_secs(idle_limit_s.max(1)),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("harness node: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Up { mode, workload, listen, list_components, service_time_scale, scale_to_zero_ms, cold_start_ms } => {
            let signals = block_termination_signals();
            let ms = |v: Option<u64>| v.map(std::time::Duration::from_millis);
            let opts =
                Options { service_time_scale, scale_to_zero: ms(scale_to_zero_ms), cold_start: ms(cold_start_ms), ..Options::default() };
            let mut d = match Deployment::up_with(mode, workload, listen, &Binaries::beside_current_exe(), &opts) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("harness: {e}");
                    return ExitCode::FAILURE;
                }
            };
            println!("ready http://{} mode={} workload={}", d.addr, mode.name(), workload.name());
            if list_components {
                for c in d.components() {
                    println!("component {} role={} pid={}", c.name, c.role.name(), c.pid);
                }
                println!("components end");
            }
            let _ = std::io::stdout().flush();
            wait_for_signal(&signals);
            eprintln!("harness: tearing down {} of {}", mode.label(deploy::Target::Processes), d.workload.name());
            d.down();
            ExitCode::SUCCESS
        }
    }
}
