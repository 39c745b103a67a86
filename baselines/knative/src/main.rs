//! `knative-model`: the components of a local model of Knative Serving's
//! data path. Each runs as its own process (as pods do), so CPU and context
//! switches can be attributed per component. Not Knative itself: a model
//! of its data path, labelled as such in every report.

mod activator;
mod boutique;
mod ingress;
mod iot;
mod queue_proxy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use spright::service_time::{ServiceMode, ServiceTime};

#[derive(Parser)]
#[command(name = "knative-model", about = "Local model of Knative Serving's data path (ingress, queue-proxy, user containers)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Host-routing ingress (Envoy's role): `--route SERVICE=ADDR`.
    Ingress {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long = "route", value_parser = parse_route)]
        routes: Vec<(String, SocketAddr)>,
        /// Service for requests whose Host is not `<service>.<ns>.example.com`.
        #[arg(long)]
        default_service: Option<String>,
    },
    /// The queue-proxy sidecar of one user container.
    QueueProxy {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        metrics: Option<SocketAddr>,
        #[arg(long)]
        upstream: SocketAddr,
        /// containerConcurrency (0 = unlimited).
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10_000)]
        queue_depth: usize,
        #[arg(long, default_value_t = 300_000)]
        timeout_ms: u64,
    },
    /// The activator: starts scale-to-zero services on demand, stops idle ones.
    Activator {
        #[arg(long)]
        listen: SocketAddr,
        /// Idle window before a service is scaled to zero (Knative's default
        /// stable window: the last pod goes after 60 s without traffic).
        #[arg(long, default_value_t = 60_000)]
        idle_ms: u64,
        /// A cold start takes at least this long: the activator holds the
        /// request until then (what pod scheduling, container start and
        /// readiness cost real Knative; 0: only this model's process start).
        #[arg(long, default_value_t = 0)]
        cold_start_ms: u64,
        /// `NAME|CONCURRENCY|CONTAINER ARGS` (args of this executable).
        #[arg(long = "service")]
        services: Vec<activator::ServiceSpec>,
    },
    /// A motion-detection container: `sensor`, `actuator` or `orchestrator`.
    Motion(FunctionContainer),
    /// A parking container: `detection`, `search`, `index`, `charging`, `persist` or `orchestrator`.
    Parking(FunctionContainer),
    /// A user container: an Online Boutique service (or the frontend).
    Boutique {
        #[arg(long)]
        service: String,
        #[arg(long)]
        listen: SocketAddr,
        /// The ingress every call goes through (`HOST:PORT` is resolved at start).
        #[arg(long, value_parser = baseline_common::resolve)]
        ingress: SocketAddr,
    },
}

/// A motion or parking container.
#[derive(clap::Args)]
struct FunctionContainer {
    #[arg(long)]
    function: String,
    #[arg(long)]
    listen: SocketAddr,
    /// The ingress (the orchestrator calls the functions through it;
    /// `HOST:PORT` is resolved at start).
    #[arg(long, value_parser = baseline_common::resolve)]
    ingress: Option<SocketAddr>,
    /// Emulated service time per request (as in the workload's chain file).
    #[arg(long, default_value_t = 0.0)]
    service_ms: f64,
    #[arg(long, default_value = "sleep")]
    service_mode: ServiceMode,
}

fn service(ms: f64, mode: ServiceMode) -> Option<ServiceTime> {
    (ms > 0.0).then_some(ServiceTime { ms, mode })
}

fn fail(msg: &str) {
    eprintln!("knative-model: {msg}");
    std::process::exit(2);
}

fn parse_route(s: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = s.split_once('=').ok_or("expected SERVICE=ADDR")?;
    Ok((name.to_string(), baseline_common::resolve(addr)?))
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        match cli.command {
            Command::Ingress { listen, routes, default_service } => {
                let routes: HashMap<String, SocketAddr> = routes.into_iter().collect();
                ingress::run(listen, ingress::Ingress::new(routes, default_service.as_deref())).await
            }
            Command::QueueProxy { listen, metrics, upstream, concurrency, queue_depth, timeout_ms } => {
                let cfg = queue_proxy::QueueProxyConfig { upstream, concurrency, queue_depth, timeout: Duration::from_millis(timeout_ms) };
                queue_proxy::run(listen, metrics, cfg).await
            }
            Command::Activator { listen, idle_ms, cold_start_ms, services } => {
                let exe = std::env::current_exe().expect("current exe");
                let (idle, cold_start) = (Duration::from_millis(idle_ms), Duration::from_millis(cold_start_ms));
                activator::run(listen, activator::Activator::new(exe, services, idle, cold_start)).await
            }
            Command::Motion(FunctionContainer { function, listen, ingress, service_ms, service_mode }) => {
                match (function.as_str(), ingress) {
                    ("orchestrator", Some(ingress)) => iot::run_motion_orchestrator(listen, ingress).await,
                    ("sensor" | "actuator", _) => iot::run_motion_function(function, listen, service(service_ms, service_mode)).await,
                    _ => fail(&format!("motion has no function {function:?} (or the orchestrator lacks --ingress)")),
                }
            }
            Command::Parking(FunctionContainer { function, listen, ingress, service_ms, service_mode }) => {
                match (function.as_str(), ingress) {
                    ("orchestrator", Some(ingress)) => iot::run_parking_orchestrator(listen, ingress).await,
                    ("detection" | "search" | "index" | "charging" | "persist", _) => {
                        iot::run_parking_function(function, listen, service(service_ms, service_mode)).await
                    }
                    _ => fail(&format!("parking has no function {function:?} (or the orchestrator lacks --ingress)")),
                }
            }
            Command::Boutique { service, listen, ingress } => {
                if service == "frontend" {
                    boutique::run_frontend(listen, ingress).await
                } else if boutique::rpc_service_exists(&service) {
                    boutique::run_service(service, listen, ingress).await
                } else {
                    eprintln!("no Online Boutique service {service:?}");
                    std::process::exit(2);
                }
            }
        }
    });
}
