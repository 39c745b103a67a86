//! What each mode starts, as data: an ordered list of [`Launch`]es whose
//! arguments may name the address of a launch before them. The one
//! spawner that carries a plan out is [`super::Deployment`]'s.

use std::net::{SocketAddr, TcpListener};

use spright::control::chain::{ChainFile, FunctionSpec};
use spright::service_time::ServiceTimeOverride;

use super::{workspace_file, Mode, Options, Role, Workload};

/// A listening socket on `listen` (port 0: a free port), bound now and
/// handed to the process that serves it, so that the address can be given
/// to others before that process starts and nobody can take it meanwhile.
fn bind(listen: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))
}

const LOCAL: &str = "127.0.0.1:0";
/// What `spright run` prints once its gateway serves.
const SPRIGHT_READY: &str = "ready http://";
/// What every process of the baselines prints once it serves.
const BASELINE_READY: &str = "listening traffic";

/// One process of a deployment, as data: what it runs, with which
/// arguments, and how the harness knows it serves.
pub(super) struct Launch {
    /// Its component name; later launches refer to its address by it.
    pub(super) name: String,
    pub(super) role: Role,
    /// The workspace binary.
    pub(super) bin: String,
    pub(super) args: Vec<Arg>,
    /// The line it prints, with its address, once it serves.
    pub(super) ready: &'static str,
    /// Its children are the chain's functions (SPRIGHT's control plane
    /// starts them): record them as components it does not own.
    pub(super) adopts_functions: bool,
    /// A socket bound for it, which it serves instead of binding its own
    /// (passed down as `baseline_common::http::LISTEN_FD_ENV`).
    pub(super) listener: Option<TcpListener>,
}

impl Launch {
    fn new(name: impl Into<String>, role: Role, bin: &str, args: Vec<Arg>) -> Self {
        Self { name: name.into(), role, bin: bin.into(), args, ready: BASELINE_READY, adopts_functions: false, listener: None }
    }
}

/// An argument of a [`Launch`], rendered once the launches before it serve.
pub(super) enum Arg {
    Text(String),
    /// The address that the launch of this name printed.
    AddrOf(String),
    /// `KEY=ADDR`, ADDR that of the launch named (routes and peers).
    Route {
        key: String,
        to: String,
    },
}

fn texts(args: &[&str]) -> Vec<Arg> {
    args.iter().map(|a| Arg::Text(a.to_string())).collect()
}

impl Arg {
    fn route(key: &str, to: &str) -> Self {
        Arg::Route { key: key.into(), to: to.into() }
    }

    pub(super) fn render(&self, started: &[(String, SocketAddr)]) -> Result<String, String> {
        let addr = |name: &str| {
            started.iter().find(|(n, _)| n == name).map(|(_, a)| *a).ok_or_else(|| format!("{name} must start before what calls it"))
        };
        Ok(match self {
            Arg::Text(t) => t.clone(),
            Arg::AddrOf(name) => addr(name)?.to_string(),
            Arg::Route { key, to } => format!("{key}={}", addr(to)?),
        })
    }
}

/// The service time a baseline function emulates: the chain file's, as
/// the profile overrides it.
fn service_time(f: &FunctionSpec, opts: &Options) -> Result<(String, String), String> {
    let mode = opts.service_time_mode.as_deref().map(str::parse).transpose()?;
    let st = ServiceTimeOverride { scale: opts.service_time_scale, mode }.apply(f.service_time);
    Ok(st.map_or(("0".into(), "sleep".into()), |s| (s.ms.to_string(), s.mode.as_str().to_string())))
}

/// SPRIGHT: the workload's binary runs the gateway and control plane,
/// which starts every function of the chain.
fn spright_plan(mode: Mode, w: Workload, listen: SocketAddr, opts: &Options) -> Vec<Launch> {
    let chain = workspace_file(&format!("workloads/{}/chain.yaml", w.name()));
    let mut args = texts(&["run", "--chain", &chain.to_string_lossy(), "--transport", mode.transport().unwrap_or_default()]);
    args.extend(texts(&["--listen", &listen.to_string(), "--service-time-scale", &opts.service_time_scale.to_string()]));
    if let Some(m) = &opts.service_time_mode {
        args.extend(texts(&["--service-time-mode", m]));
    }
    vec![Launch { ready: SPRIGHT_READY, adopts_functions: true, ..Launch::new("gateway", Role::Gateway, w.name(), args) }]
}

/// A user container and its queue-proxy (`concurrency`: requests in flight
/// it lets through, None: unlimited).
fn knative_revision(name: &str, container: Vec<Arg>, concurrency: Option<usize>) -> [Launch; 2] {
    let mut proxy = texts(&["queue-proxy", "--listen", LOCAL, "--metrics", LOCAL, "--upstream"]);
    proxy.push(Arg::AddrOf(name.into()));
    if let Some(c) = concurrency {
        proxy.extend(texts(&["--concurrency", &c.to_string()]));
    }
    [
        Launch::new(name, Role::Function, KNATIVE_BIN, container),
        Launch::new(format!("{name}-queue-proxy"), Role::Sidecar, KNATIVE_BIN, proxy),
    ]
}

const KNATIVE_BIN: &str = "knative-model";
const BOUTIQUE_SERVICES: [&str; 10] =
    ["frontend", "currency", "productcatalog", "cart", "recommendation", "shipping", "checkout", "payment", "email", "ad"];

/// Online Boutique on the Knative model: a revision per service, all
/// reaching each other through the ingress on the public address.
fn knative_boutique_plan(listen: SocketAddr) -> Result<Vec<Launch>, String> {
    let listener = bind(listen)?;
    let ingress = listener.local_addr().map_err(|e| e.to_string())?.to_string();
    let mut plan = Vec::new();
    let mut ingress_args = texts(&["ingress", "--listen", &ingress, "--default-service", "frontend"]);
    for s in BOUTIQUE_SERVICES {
        plan.extend(knative_revision(s, texts(&["boutique", "--service", s, "--listen", LOCAL, "--ingress", &ingress]), None));
        ingress_args.extend([Arg::Text("--route".into()), Arg::route(s, &format!("{s}-queue-proxy"))]);
    }
    plan.push(Launch { listener: Some(listener), ..Launch::new("ingress", Role::Gateway, KNATIVE_BIN, ingress_args) });
    Ok(plan)
}

/// Motion or parking on the Knative model: a revision per function
/// (pre-warmed), or the activator standing in for all of them (scale to
/// zero), the ingress, and the front-end orchestrator on the public address.
fn knative_functions_plan(w: Workload, listen: SocketAddr, opts: &Options) -> Result<Vec<Launch>, String> {
    let chain = ChainFile::load(&workspace_file(&format!("workloads/{}/chain.yaml", w.name()))).map_err(|e| e.to_string())?;
    let functions = &chain.chains[0].functions;
    let mut plan = Vec::new();
    let mut ingress_args = texts(&["ingress", "--listen", LOCAL]);
    if let Some(idle) = opts.scale_to_zero {
        let mut args = texts(&["activator", "--listen", LOCAL, "--idle-ms", &idle.as_millis().to_string()]);
        if let Some(c) = opts.cold_start {
            args.extend(texts(&["--cold-start-ms", &c.as_millis().to_string()]));
        }
        for f in functions {
            let (ms, mode) = service_time(f, opts)?;
            let command = format!("{}|{}|{} --function {} --service-ms {ms} --service-mode {mode}", f.name, f.threads, w.name(), f.name);
            args.extend(texts(&["--service", &command]));
            ingress_args.extend([Arg::Text("--route".into()), Arg::route(&f.name, "activator")]);
        }
        plan.push(Launch::new("activator", Role::Gateway, KNATIVE_BIN, args));
    } else {
        for f in functions {
            let (ms, mode) = service_time(f, opts)?;
            let container = texts(&[w.name(), "--function", &f.name, "--listen", LOCAL, "--service-ms", &ms, "--service-mode", &mode]);
            // As many in flight as the SPRIGHT function has worker threads.
            plan.extend(knative_revision(&f.name, container, Some(f.threads)));
            ingress_args.extend([Arg::Text("--route".into()), Arg::route(&f.name, &format!("{}-queue-proxy", f.name))]);
        }
    }
    plan.push(Launch::new("ingress", Role::Gateway, KNATIVE_BIN, ingress_args));
    let mut orchestrator = texts(&[w.name(), "--function", "orchestrator", "--listen", &listen.to_string(), "--ingress"]);
    orchestrator.push(Arg::AddrOf("ingress".into()));
    plan.push(Launch::new("orchestrator", Role::Orchestrator, KNATIVE_BIN, orchestrator));
    Ok(plan)
}

/// Online Boutique as gRPC microservices: the services that call no one
/// first, then recommendation and checkout, then the frontend on the
/// public address; each process learns its peers' addresses up front.
fn grpc_boutique_plan(listen: SocketAddr) -> Vec<Launch> {
    let stages: [&[&str]; 3] =
        [&["currency", "productcatalog", "cart", "shipping", "payment", "email", "ad"], &["recommendation", "checkout"], &["frontend"]];
    let mut plan = Vec::new();
    let mut peers: Vec<&str> = Vec::new();
    for stage in stages {
        for &s in stage {
            let at = if s == "frontend" { listen.to_string() } else { LOCAL.to_string() };
            let mut args = texts(&["--service", s, "--listen", &at]);
            for &p in &peers {
                args.extend([Arg::Text("--peer".into()), Arg::route(p, p)]);
            }
            plan.push(Launch::new(s, Role::Function, "grpc-baseline", args));
        }
        peers.extend(stage);
    }
    plan
}

/// What to start for `workload` in `mode`, in order.
pub(super) fn for_mode(mode: Mode, workload: Workload, listen: SocketAddr, opts: &Options) -> Result<Vec<Launch>, String> {
    Ok(match (mode, workload) {
        (m, w) if m.transport().is_some() => spright_plan(m, w, listen, opts),
            (Mode::Knative, Workload::Boutique) => knative_boutique_plan(listen)?,
            (Mode::Knative | Mode::KnativeStz, w) if w != Workload::Boutique => knative_functions_plan(w, listen, opts)?,
            (Mode::Grpc, Workload::Boutique) => grpc_boutique_plan(listen),
            (m, w) => {
                return Err(format!(
                    "mode {} does not run workload {} (the paper's gRPC baseline is Online Boutique only; Online Boutique runs pre-warmed, as in the paper)",
                    m.name(),
                    w.name()
                ))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts_for(mode: Mode) -> Options {
        let stz = mode == Mode::KnativeStz;
        Options {
            scale_to_zero: stz.then(|| std::time::Duration::from_secs(3)),
            cold_start: stz.then(|| std::time::Duration::from_secs(2)),
            ..Options::default()
        }
    }

    /// Every plan names only addresses of launches before it (so the one
    /// spawner can start it in order), names each component once, and
    /// ends with the front door on the address it was given.
    #[test]
    fn plans_start_in_order_and_end_at_the_front_door() {
        let listen: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        let mut planned = 0;
        for mode in Mode::ALL {
            for workload in [Workload::Boutique, Workload::Motion, Workload::Parking] {
                let plan = match for_mode(mode, workload, listen, &opts_for(mode)) {
                    Ok(plan) => plan,
                    Err(e) => {
                        let unsupported = matches!((mode, workload), (Mode::Grpc, Workload::Motion | Workload::Parking))
                            || (mode == Mode::KnativeStz && workload == Workload::Boutique);
                        assert!(unsupported && e.contains("does not run"), "{} {}: {e}", mode.name(), workload.name());
                        continue;
                    }
                };
                planned += 1;
                let mut started: Vec<(String, SocketAddr)> = Vec::new();
                for (i, launch) in plan.iter().enumerate() {
                    for arg in &launch.args {
                        arg.render(&started).unwrap_or_else(|e| panic!("{} {}: {}: {e}", mode.name(), workload.name(), launch.name));
                    }
                    assert!(started.iter().all(|(n, _)| *n != launch.name), "{}: {} twice", mode.name(), launch.name);
                    started.push((launch.name.clone(), SocketAddr::from(([127, 0, 0, 1], 20000 + i as u16))));
                }
                let front = plan.last().unwrap();
                let rendered: Vec<String> = front.args.iter().map(|a| a.render(&started).unwrap()).collect();
                assert!(
                    rendered.contains(&listen.to_string()),
                    "{} {}: the front door {} is not on {listen}",
                    mode.name(),
                    workload.name(),
                    front.name
                );
            }
        }
        // SPRIGHT 3 x 3, the Knative model 3, with scale to zero 2, gRPC 1.
        assert_eq!(planned, 9 + 3 + 2 + 1, "every supported pair has a plan");
    }

    /// The Knative model's ingress address is handed to every service
    /// before the ingress starts: it is bound from the start, by the plan,
    /// and nobody else can take it meanwhile (a free port picked, released
    /// and bound later once made a smoke run fail).
    #[test]
    fn the_ingress_address_is_held_from_the_moment_it_is_handed_out() {
        let plan = for_mode(Mode::Knative, Workload::Boutique, "127.0.0.1:0".parse().unwrap(), &opts_for(Mode::Knative)).unwrap();
        let ingress = plan.iter().find(|l| l.name == "ingress").unwrap();
        let held = ingress.listener.as_ref().expect("the ingress gets a bound socket").local_addr().unwrap();
        let handed_out = format!("--ingress {held}");
        let frontend = plan.iter().find(|l| l.name == "frontend").unwrap();
        let args: Vec<String> = frontend.args.iter().map(|a| a.render(&[]).unwrap()).collect();
        assert!(args.join(" ").contains(&handed_out), "{args:?}");
        assert!(TcpListener::bind(held).is_err(), "{held} could be taken before the ingress starts");
        assert!(plan.iter().filter(|l| l.listener.is_some()).count() == 1);
    }
}
