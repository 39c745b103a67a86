//! The `spright` command line, reusable by workload binaries that add their
//! own handlers: `spright::cli::main_with(registry)`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tokio::sync::watch;

use crate::control::admin::{fetch, render_table, serve_admin};
use crate::control::chain::ChainFile;
use crate::control::{Deployment, RunOptions};
use crate::gateway;
use crate::sdk::{serve_function, FunctionArgs, Registry};
use crate::service_time::{ServiceMode, ServiceTimeOverride};
use crate::transport::TransportKind;

#[derive(Parser)]
#[command(name = "spright", version, about = "SPRIGHT: serverless function chains over shared memory and eBPF")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a deployment: pools, eBPF, gateway, functions; until SIGINT/SIGTERM.
    Run(RunArgs),
    /// Print a running deployment's metrics as a table.
    Stats {
        #[arg(long)]
        admin: SocketAddr,
    },
    /// Validate a chain file.
    Check {
        #[arg(long)]
        chain: PathBuf,
    },
    /// Run one function of a chain: started by the control plane, or by a
    /// container of the chain's pod next to `run --external-functions`.
    Function {
        /// The chain file the deployment runs.
        #[arg(long)]
        chain_file: PathBuf,
        /// The chain's name.
        #[arg(long)]
        chain: String,
        /// The function's id in that chain.
        #[arg(long)]
        function: u16,
        /// The control socket to register on (`@name` = abstract).
        #[arg(long)]
        control: String,
        /// Seconds to keep trying while the control socket is not there yet.
        #[arg(long, default_value_t = 0)]
        wait_for_control_s: u64,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Chain file (YAML).
    #[arg(long)]
    chain: PathBuf,
    /// skmsg (S-SPRIGHT, needs root), ring (D-SPRIGHT) or eventring (E-SPRIGHT).
    #[arg(long)]
    transport: Option<TransportKind>,
    /// Gateway address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Admin address serving /metrics and /healthz.
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// Do not attach EPROXY to the gateway's interface.
    #[arg(long)]
    no_eproxy: bool,
    /// Seconds to wait for every function to register.
    #[arg(long, default_value_t = 30)]
    ready_timeout: u64,
    /// Multiply every function's emulated service time (e.g. 0.01 for tests).
    #[arg(long, default_value_t = 1.0)]
    service_time_scale: f64,
    /// Emulate service time by `sleep` or `spin`, whatever the chain file says.
    #[arg(long)]
    service_time_mode: Option<ServiceMode>,
    /// The control socket's name (`@name` = abstract, in this network
    /// namespace); default: unique per process.
    #[arg(long)]
    control: Option<String>,
    /// Start no function: each registers itself (`function --control`),
    /// e.g. from its own container in the chain's pod. Serving starts at
    /// once; `/healthz` answers 503 until every function has registered.
    #[arg(long)]
    external_functions: bool,
    /// Also admit functions run by this user (their containers run
    /// unprivileged next to a root gateway).
    #[arg(long)]
    function_uid: Option<u32>,
}

/// Runs the CLI with `registry`'s handlers available to functions.
pub fn main_with(registry: Registry) -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Stats { admin } => stats(admin),
        Command::Check { chain } => ChainFile::load(&chain).map(|f| println!("ok: {} chains", f.chains.len())).map_err(|e| e.to_string()),
        Command::Function { chain_file, chain, function, control, wait_for_control_s } => {
            let wait_for_control = Duration::from_secs(wait_for_control_s);
            serve_function(&registry, &FunctionArgs { chain_file, chain, function, control, wait_for_control }).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spright: {e}");
            ExitCode::FAILURE
        }
    }
}

fn stats(admin: SocketAddr) -> Result<(), String> {
    let (status, body) = fetch(admin, "/metrics").map_err(|e| format!("cannot reach admin endpoint {admin}: {e}"))?;
    if status != 200 {
        return Err(format!("admin endpoint answered {status}"));
    }
    print!("{}", render_table(&body));
    Ok(())
}

fn run(args: RunArgs) -> Result<(), String> {
    let RunArgs {
        chain,
        transport,
        listen,
        admin,
        no_eproxy,
        ready_timeout,
        service_time_scale,
        service_time_mode,
        control,
        external_functions,
        function_uid,
    } = args;
    if !(service_time_scale >= 0.0 && service_time_scale.is_finite()) {
        return Err(format!("--service-time-scale must be a non-negative number, got {service_time_scale}"));
    }
    let ready = Duration::from_secs(ready_timeout);
    // Bind first: a busy port is reported before anything starts.
    let listener = std::net::TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_listener = match admin {
        Some(a) => Some(std::net::TcpListener::bind(a).map_err(|e| format!("cannot listen on {a}: {e}"))?),
        None => None,
    };
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let opts = RunOptions {
        chain_file: chain,
        transport,
        function_program: None,
        eproxy_interface: (!no_eproxy && root && addr.ip().is_loopback()).then(|| "lo".to_string()),
        eproxy_port: addr.port(),
        service_time: ServiceTimeOverride { scale: service_time_scale, mode: service_time_mode },
        control,
        external_functions,
        function_uid,
    };
    let mut deployment = Deployment::start(&opts).map_err(|e| e.to_string())?;
    if deployment.transport() != TransportKind::Skmsg {
        eprintln!(
            "spright: {}: chains are isolated by capability (a function maps only its chain's rings); inside a chain any function can write \
             into any ring and senders are not identified - skmsg checks every descriptor in the kernel",
            deployment.transport()
        );
    }
    deployment.wait_ready(ready).map_err(|e| e.to_string())?;
    let threads = deployment.gateway().limits().threads;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().map_err(|e| e.to_string())?;
    let served = rt.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        let mut admin_note = String::new();
        if let Some(a) = admin_listener {
            admin_note = format!(" admin=http://{}", a.local_addr().map_err(|e| e.to_string())?);
            a.set_nonblocking(true).map_err(|e| e.to_string())?;
            let a = tokio::net::TcpListener::from_std(a).map_err(|e| e.to_string())?;
            tokio::spawn(serve_admin(deployment.metrics(), a, stop_rx.clone()));
        }
        let server = tokio::spawn(gateway::serve(deployment.gateway(), listener, stop_rx));
        // Handlers before the ready line: a signal right after it must
        // still shut down cleanly.
        let signalled = wait_for_signal();
        println!(
            "ready http://{addr} transport={} mode={}{admin_note} control={}",
            deployment.transport(),
            deployment.transport().mode_name(),
            deployment.control_address()
        );
        let _ = std::io::stdout().flush();
        signalled.await;
        eprintln!("spright: shutting down (draining in-flight requests)");
        let _ = stop_tx.send(true);
        let _ = server.await;
        Ok::<(), String>(())
    });
    deployment.shutdown();
    drop(rt);
    served
}

/// Installs SIGINT/SIGTERM handlers now; the future resolves on either.
fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    }
}
