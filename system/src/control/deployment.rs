//! A running deployment: pools, fabric, gateway, registrations, functions.
//!
//! Everything is owned here and released by [`Deployment::shutdown`] (or on
//! drop): children are stopped, receive loops closed, BPF programs and maps
//! detached, memfds unmapped and closed. The control socket is an abstract
//! unix socket, which vanishes with it.

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::chain::{ChainFile, ChainFileError, FunctionSpec};
use super::fabric::{Fabric, FabricError};
use super::registration::{send_refusal, send_welcome, Hello};
use super::supervisor::{SpawnSpec, Supervisor};
use crate::bpf::Eproxy;
use crate::descriptor::{ChainId, Endpoint, FunctionId, DESCRIPTOR_SIZE};
use crate::gateway::{Gateway, GatewayChain, GatewayRoute};
use crate::pool::{Holder, Lease, Pool, PoolError};
use crate::service_time::{ServiceTime, ServiceTimeOverride};
use crate::sys;

/// How long the control plane waits for a function's process to exit (after
/// SIGKILL if it dropped its registration alive), and a new instance for the
/// previous one's registration to end.
const EXIT_WAIT: Duration = Duration::from_secs(5);
use crate::transport::{Closer, TransportKind};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    ChainFile(#[from] ChainFileError),
    #[error("chain {chain}: {source}")]
    Pool { chain: String, source: PoolError },
    #[error("{0}")]
    Fabric(#[from] FabricError),
    #[error("control socket: {0}")]
    Control(#[source] std::io::Error),
    #[error("functions not registered after {secs} s: {missing}")]
    NotReady { secs: u64, missing: String },
}

/// What `spright run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub chain_file: PathBuf,
    pub transport: Option<TransportKind>,
    /// Program run as `<program> function ...` for functions without their
    /// own `binary`; default: this executable.
    pub function_program: Option<PathBuf>,
    /// Interface for EPROXY; `None` = no EPROXY.
    pub eproxy_interface: Option<String>,
    pub eproxy_port: u16,
    /// Scales or re-modes every function's emulated service time.
    pub service_time: ServiceTimeOverride,
    /// The control socket's name (`@name` = abstract); default: one made
    /// unique by pid and a random number.
    pub control: Option<String>,
    /// Start no function: each registers from outside (a container of the
    /// chain's pod), and `/healthz` says when all have.
    pub external_functions: bool,
    /// A user besides our own whose processes may register functions
    /// (functions in their own unprivileged containers next to a root
    /// gateway).
    pub function_uid: Option<u32>,
}

/// A registered function process.
#[derive(Clone, Copy, Debug)]
pub struct Registration {
    pub pid: u32,
    pub lease: Lease,
    pub since: Instant,
    /// Its transport endpoint exists and it has been told so: descriptors
    /// sent to it now reach it. Admission comes first (one instance at a
    /// time), so a registration is briefly live but not yet reachable.
    pub reachable: bool,
}

#[derive(Default)]
pub(crate) struct Registrations {
    live: Mutex<HashMap<Endpoint, Registration>>,
    changed: Condvar,
    pub registered_total: AtomicU32,
    /// Registrations refused (unknown function, foreign uid, not the process
    /// started for the function, another instance registered, unwatchable).
    pub refused_total: AtomicU32,
}

pub(crate) struct Shared {
    pub file: ChainFile,
    pub kind: TransportKind,
    pub pools: Vec<(ChainId, Arc<Pool>)>,
    pub fabric: Fabric,
    pub gateway: Arc<Gateway>,
    pub registrations: Registrations,
    pub supervisor: Arc<Supervisor>,
    pub eproxy: Option<Eproxy>,
    pub oversubscribed: Option<(usize, usize)>,
    pub service_time: ServiceTimeOverride,
    /// No function is ours to start (see [`RunOptions::external_functions`]).
    external_functions: bool,
    function_uid: Option<u32>,
    stopping: AtomicBool,
    next_lease: AtomicU32,
}

pub struct Deployment {
    shared: Arc<Shared>,
    control_addr: String,
    closers: Vec<Arc<dyn Closer>>,
    sink: Option<TcpStream>,
    threads: Vec<JoinHandle<()>>,
    stopped: bool,
}

impl Deployment {
    /// Creates pools and transports, loads eBPF, starts the completion
    /// loops, the registration server and the functions. Call
    /// [`Self::wait_ready`] before serving.
    pub fn start(opts: &RunOptions) -> Result<Self, DeployError> {
        let file = ChainFile::load(&opts.chain_file)?;
        let kind = opts.transport.unwrap_or(file.transport);
        let mut pools = Vec::new();
        for (id, chain) in file.chains() {
            let pool = Pool::create(id, chain.pool.geometry()).map_err(|source| DeployError::Pool { chain: chain.name.clone(), source })?;
            pools.push((id, Arc::new(pool)));
        }
        let (fabric, sink) = Fabric::new(kind, &file)?;

        let mut gw_chains = Vec::new();
        let mut receivers = Vec::new();
        let mut closers: Vec<Arc<dyn Closer>> = Vec::new();
        let mut routes = Vec::new();
        for (i, ((id, chain), (_, pool))) in file.chains().zip(&pools).enumerate() {
            let link = fabric.gateway_link(id)?;
            gw_chains.push(GatewayChain::new(id, &chain.name, pool.clone(), link.tx, chain.pool.app_bytes as usize));
            receivers.push((id, link.rx));
            closers.push(link.closer);
            for (r, spec) in chain.routes.iter().enumerate() {
                routes.push(GatewayRoute { prefix: spec.path.clone(), chain: i, route: r as u16, sequence: spec.sequence() });
            }
        }
        let gateway = Arc::new(Gateway::new(file.gateway, gw_chains, routes));

        let eproxy = match &opts.eproxy_interface {
            Some(ifname) => match Eproxy::attach(ifname, opts.eproxy_port) {
                Ok(e) => Some(e),
                Err(e) => {
                    eprintln!("spright: EPROXY not attached to {ifname}: {e}");
                    None
                }
            },
            None => None,
        };

        let oversubscribed = (kind == TransportKind::Ring).then(|| {
            // One receive loop per function plus one per chain at the gateway.
            let pollers = file.chains.len() + file.chains.iter().map(|c| c.functions.len()).sum::<usize>();
            (pollers, sys::allowed_cpus().len())
        });
        let oversubscribed = oversubscribed.filter(|(p, c)| p > c);
        if let Some((pollers, cores)) = oversubscribed {
            eprintln!(
                "spright: d-spright runs {pollers} busy-polling receivers on {cores} cores: oversubscribed. \
                 Pollers yield between polls so all progress, at scheduler-tick latency, and every core stays busy."
            );
        }

        let control_addr = opts.control.clone().unwrap_or_else(|| format!("@spright-{}-{:016x}", std::process::id(), rand_u64()));
        let listener = sys::unix_listen(&control_addr).map_err(DeployError::Control)?;

        let shared = Arc::new(Shared {
            file,
            kind,
            pools,
            fabric,
            gateway,
            registrations: Registrations::default(),
            supervisor: Supervisor::new(),
            eproxy,
            oversubscribed,
            service_time: opts.service_time,
            external_functions: opts.external_functions,
            function_uid: opts.function_uid,
            stopping: AtomicBool::new(false),
            next_lease: AtomicU32::new(0),
        });

        let mut threads = Vec::new();
        for (id, rx) in receivers {
            let gw = shared.gateway.clone();
            threads.push(spawn_named(format!("gateway-rx-{}", id.0), move || gw.run_completions(id, rx)));
        }
        let sink_reader = match &sink {
            Some(s) => Some(s.try_clone().map_err(DeployError::Control)?),
            None => None,
        };
        if let Some(sink) = sink_reader {
            let sh = shared.clone();
            threads.push(spawn_named("sproxy-sink".into(), move || sh.drain_sink(sink)));
        }
        {
            let sh = shared.clone();
            threads.push(spawn_named("registrations".into(), move || {
                for conn in listener.incoming() {
                    if sh.stopping.load(Ordering::Acquire) {
                        return;
                    }
                    if let Ok(conn) = conn {
                        let sh = sh.clone();
                        spawn_named("registration".into(), move || sh.serve_registration(conn));
                    }
                }
            }));
        }

        let default_program = match &opts.function_program {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(DeployError::Control)?,
        };
        let chain_file = std::fs::canonicalize(&opts.chain_file).unwrap_or_else(|_| opts.chain_file.clone());
        for (id, chain) in shared.file.chains() {
            for f in chain.functions.iter().filter(|f| shared.starts(f)) {
                shared.supervisor.supervise(SpawnSpec {
                    endpoint: Endpoint::new(id, f.function_id()),
                    name: format!("{}/{}", chain.name, f.name),
                    program: shared.file.binary_for(f).unwrap_or_else(|| default_program.clone()),
                    args: vec![
                        "function".into(),
                        "--chain-file".into(),
                        chain_file.display().to_string(),
                        "--chain".into(),
                        chain.name.clone(),
                        "--function".into(),
                        f.id.to_string(),
                        "--control".into(),
                        control_addr.clone(),
                    ],
                });
            }
        }
        Ok(Self { shared, control_addr, closers, sink, threads, stopped: false })
    }

    pub fn gateway(&self) -> Arc<Gateway> {
        self.shared.gateway.clone()
    }

    pub fn transport(&self) -> TransportKind {
        self.shared.kind
    }

    /// The control socket functions register on (`@name` = abstract).
    pub fn control_address(&self) -> &str {
        &self.control_addr
    }

    /// Waits until every function we started has registered (with external
    /// functions: none; `/healthz` tells when they have).
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), DeployError> {
        let shared = &self.shared;
        let want: Vec<(Endpoint, String)> = shared
            .file
            .chains()
            .flat_map(|(id, c)| {
                c.functions
                    .iter()
                    .filter(|f| shared.starts(f))
                    .map(move |f| (Endpoint::new(id, f.function_id()), format!("{}/{}", c.name, f.name)))
            })
            .collect();
        let regs = &self.shared.registrations;
        let live = regs.live.lock().unwrap();
        let reachable = |l: &HashMap<Endpoint, Registration>, e: &Endpoint| l.get(e).is_some_and(|r| r.reachable);
        let (live, _) = regs.changed.wait_timeout_while(live, timeout, |l| want.iter().any(|(e, _)| !reachable(l, e))).unwrap();
        let missing: Vec<&str> = want.iter().filter(|(e, _)| !reachable(&live, e)).map(|(_, n)| n.as_str()).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(DeployError::NotReady { secs: timeout.as_secs(), missing: missing.join(", ") })
        }
    }

    /// A snapshot for the admin endpoint and `spright stats`.
    pub fn metrics(&self) -> super::admin::MetricsSource {
        super::admin::MetricsSource::new(self.shared.clone())
    }

    /// Stops functions and receive loops and releases everything. Call after
    /// the HTTP server has drained.
    pub fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.shared.stopping.store(true, Ordering::Release);
        self.shared.supervisor.stop_all(Duration::from_secs(3));
        for c in &self.closers {
            c.close();
        }
        if let Some(s) = &self.sink {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        // Wake the registration accept loop so it sees `stopping`.
        let _ = sys::unix_connect(&self.control_addr);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn_named(name: String, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new().name(name).spawn(f).expect("spawn thread")
}

fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    u64::from_ne_bytes(b)
}

impl Shared {
    /// The service time `e` emulates after the CLI's override.
    pub(crate) fn effective_service_time(&self, e: Endpoint) -> Option<ServiceTime> {
        let (_, chain) = self.file.chains().find(|(id, _)| *id == e.chain)?;
        self.service_time.apply(chain.function(e.function)?.service_time)
    }

    pub(crate) fn registration(&self, e: Endpoint) -> Option<Registration> {
        self.registrations.live.lock().unwrap().get(&e).copied()
    }

    /// Whether the control plane starts (and supervises) this function.
    fn starts(&self, f: &FunctionSpec) -> bool {
        f.spawn && !self.external_functions
    }

    /// Registered functions that descriptors reach.
    pub(crate) fn reachable_endpoints(&self) -> Vec<Endpoint> {
        self.registrations.live.lock().unwrap().iter().filter(|(_, r)| r.reachable).map(|(e, _)| *e).collect()
    }

    fn pool(&self, chain: ChainId) -> Option<&Arc<Pool>> {
        self.pools.iter().find(|(id, _)| *id == chain).map(|(_, p)| p)
    }

    /// One function's registration, from HELLO until its process is gone.
    fn serve_registration(&self, conn: UnixStream) {
        let Ok(hello) = Hello::recv(&conn) else {
            return;
        };
        // The process itself, not its pid: its death is what frees its
        // slots, so it must be observed exactly.
        let process = sys::Pidfd::of_peer(&conn).map_err(|e| format!("cannot watch the registering process: {e}"));
        // Leases 2..=MAX, one per registration (0 = none, 1 = the gateway).
        let lease = Lease(2 + self.next_lease.fetch_add(1, Ordering::Relaxed) % (Lease::MAX - 1));
        let (endpoint, process) = match process.and_then(|p| Ok((self.admit(&conn, &hello, lease)?, p))) {
            Ok(ok) => ok,
            Err(reason) => {
                eprintln!("spright: refused registration of {}/{} (pid {}): {reason}", hello.chain, hello.function, hello.pid);
                self.registrations.refused_total.fetch_add(1, Ordering::Relaxed);
                let _ = send_refusal(&conn, &reason);
                return;
            }
        };
        let pool = self.pool(endpoint.chain).expect("admitted endpoint has a pool");
        let fds = self.fabric.function_fds(endpoint).map_err(|e| e.to_string()).and_then(|fds| {
            let pool_fd = pool.fd().try_clone_to_owned().map_err(|e| e.to_string())?;
            Ok((pool_fd, fds))
        });
        let welcomed = match &fds {
            Ok((pool_fd, fds)) => {
                let mut raw = vec![std::os::fd::AsRawFd::as_raw_fd(pool_fd)];
                raw.extend(fds.iter().map(std::os::fd::AsRawFd::as_raw_fd));
                send_welcome(&conn, self.kind, endpoint.chain, lease, self.effective_service_time(endpoint), &raw).is_ok()
            }
            Err(e) => {
                let _ = send_refusal(&conn, e);
                false
            }
        };
        // Our copies close here: the function's socket now lives only in the
        // function, so its death removes it from SPROXY's map.
        drop(fds);
        if welcomed {
            if self.fabric.loses_in_transit() {
                // What was sent to the previous instance died with its
                // socket queue: the new one gets it again.
                self.gateway.resend_sent_to(endpoint);
            }
            // Ready only now: before, `wait_ready` could let requests in
            // whose descriptors the resend above would send twice.
            let mut live = self.registrations.live.lock().unwrap();
            if let Some(r) = live.get_mut(&endpoint).filter(|r| r.lease == lease) {
                r.reachable = true;
            }
            drop(live);
            self.registrations.changed.notify_all();
            // Liveness: the connection ends when the process does.
            let mut b = [0u8; 64];
            while matches!((&conn).read(&mut b), Ok(n) if n > 0) {}
        }
        self.end_registration(endpoint, hello.pid, lease, &process);
    }
    /// After a registration's connection ended: makes sure its process is
    /// gone - one that dropped its registration but lives on is killed,
    /// because its slots may only be recalled once nothing can write them -
    /// then repairs the transport and fails what it had taken. Only then is
    /// the registration removed, so a new instance is admitted after this.
    fn end_registration(&self, endpoint: Endpoint, pid: u32, lease: Lease, process: &sys::Pidfd) {
        // At shutdown every registration ends; nothing is recalled then.
        if !self.stopping.load(Ordering::Acquire) {
            // A dying process closes its fds a moment before it is reaped.
            if !process.wait_exit(Duration::from_millis(200)) {
                eprintln!("spright: function {endpoint} (pid {pid}) dropped its registration but still runs: killing it");
                let _ = process.kill();
            }
            if process.wait_exit(EXIT_WAIT) {
                self.fabric.function_gone(endpoint);
                let f = endpoint.function;
                // Only what it had taken fails; requests on their way to it
                // wait for its next instance (see `resend_sent_to`).
                let failed =
                    self.gateway.recall(endpoint.chain, Holder::Taken(lease), &format!("function {f} died while handling the request"));
                eprintln!("spright: function {endpoint} (pid {pid}) is gone: {failed} requests failed");
            } else {
                // Better a slot out of circulation than one handed out while
                // a live process can still write it.
                eprintln!("spright: function {endpoint} (pid {pid}) survived SIGKILL for {EXIT_WAIT:?}: its slots stay with it");
            }
        }
        let mut live = self.registrations.live.lock().unwrap();
        if live.get(&endpoint).is_some_and(|r| r.lease == lease) {
            live.remove(&endpoint);
        }
        self.registrations.changed.notify_all();
    }

    /// Checks a HELLO: known function, our user (or the one allowed for
    /// functions), and - for functions we start - the very process we started.
    /// Admitted, it is registered under `lease` (in the same critical section
    /// as the check that no other instance is).
    fn admit(&self, conn: &UnixStream, hello: &Hello, lease: Lease) -> Result<Endpoint, String> {
        let (id, chain) = self.file.chain_by_name(&hello.chain).ok_or_else(|| format!("unknown chain {:?}", hello.chain))?;
        let spec =
            chain.function(FunctionId(hello.function)).ok_or_else(|| format!("chain {} has no function {}", chain.name, hello.function))?;
        let endpoint = Endpoint::new(id, spec.function_id());
        let (pid, uid) = sys::peer_credentials(conn).map_err(|e| format!("peer credentials: {e}"))?;
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        if uid != unsafe { libc::geteuid() } && Some(uid) != self.function_uid {
            return Err(format!("uid {uid} may not register functions of this control plane"));
        }
        if self.starts(spec) && !self.supervisor.wait_for_pid(endpoint, pid, Duration::from_secs(2)) {
            return Err(format!("pid {pid} is not the process started for this function"));
        }
        // One instance at a time: a new one is admitted once the previous
        // one's registration has ended (its process is gone and what it left
        // behind repaired).
        let regs = &self.registrations;
        let live = regs.live.lock().unwrap();
        let (mut live, _) = regs.changed.wait_timeout_while(live, EXIT_WAIT, |l| l.contains_key(&endpoint)).unwrap();
        if let Some(old) = live.get(&endpoint) {
            return Err(format!("already registered by pid {}", old.pid));
        }
        live.insert(endpoint, Registration { pid: hello.pid, lease, since: Instant::now(), reachable: false });
        regs.registered_total.fetch_add(1, Ordering::Relaxed);
        regs.changed.notify_all();
        Ok(endpoint)
    }

    /// Reads descriptors SPROXY refused. One addressed to a function that is
    /// not registered was sent while that function restarts: its slot stays
    /// on its way there and the next instance gets it at registration - or
    /// now, if it registered in the meantime. (The request's timeout bounds
    /// the wait.)
    fn drain_sink(&self, sink: TcpStream) {
        let mut buf = [0u8; 64 * DESCRIPTOR_SIZE];
        let mut decoder = crate::descriptor::ScanningDecoder::default();
        let mut out = Vec::new();
        loop {
            let n = match (&sink).read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // Refused messages need not be descriptor-sized: the decoder
            // finds descriptors by their magic, whatever came before.
            out.clear();
            decoder.feed(&buf[..n], &mut out);
            for d in &out {
                let dst = d.destination();
                if d.is_well_formed() && self.fabric.is_reachable(dst) {
                    self.gateway.resend_if_sent(d);
                }
            }
        }
    }
}
