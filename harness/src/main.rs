//! `harness`: the testbed. `harness up` brings any mode of any workload up
//! as OS processes and keeps it up until SIGINT/SIGTERM. The experiments
//! (`harness experiment`) come next.

mod deploy;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use deploy::{Binaries, Deployment, Mode, Workload};

#[derive(Parser)]
#[command(name = "harness", about = "spright-rs testbed")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring a deployment up; prints `ready http://ADDR`, runs until SIGINT/SIGTERM, then tears it down.
    Up {
        /// s-spright, d-spright, e-spright, knative (local model) or grpc.
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
        /// Knative mode, motion/parking: scale functions to zero after this idle
        /// window (the activator starts them on the next request). Default: pre-warmed.
        #[arg(long)]
        scale_to_zero_ms: Option<u64>,
    },
}

fn wait_for_signal() {
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut sig = 0;
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::sigwait(&set, &mut sig);
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Up { mode, workload, listen, list_components, service_time_scale, scale_to_zero_ms } => {
            // Block the signals first so that none is lost before sigwait.
            let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
            unsafe {
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGINT);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            let mut d = match Deployment::up_with(
                mode,
                workload,
                listen,
                &Binaries::beside_current_exe(),
                service_time_scale,
                scale_to_zero_ms.map(std::time::Duration::from_millis),
            ) {
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
            wait_for_signal();
            eprintln!("harness: tearing down {} of {}", mode.label(), d.workload.name());
            d.down();
            ExitCode::SUCCESS
        }
    }
}
