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
                trace,
                collectors,
                repeat,
                reference,
                allow_dirty,
                sut: sut.map(|target| experiment::Sut { target, listen: sut_listen, harness: sut_harness, ssh_config, deploy_target }),
            };
            match experiment::run(&args) {
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
