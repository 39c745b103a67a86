//! Bringing a deployment of any mode up and down, as OS processes.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use spright::control::chain::ChainFile;
use spright::service_time::ServiceTimeOverride;

/// The comparison modes: SPRIGHT with each transport, the local model of
/// Knative's data path pre-warmed or scaling to zero, and gRPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    SSpright,
    DSpright,
    ESpright,
    Knative,
    /// The Knative model with its activator: functions scale to zero when
    /// idle and cold-start on the next request (motion and parking).
    KnativeStz,
    Grpc,
}

impl Mode {
    pub const ALL: [Mode; 6] = [Mode::SSpright, Mode::DSpright, Mode::ESpright, Mode::Knative, Mode::KnativeStz, Mode::Grpc];

    pub fn name(self) -> &'static str {
        match self {
            Mode::SSpright => "s-spright",
            Mode::DSpright => "d-spright",
            Mode::ESpright => "e-spright",
            Mode::Knative => "knative",
            Mode::KnativeStz => "knative-stz",
            Mode::Grpc => "grpc",
        }
    }

    /// How reports label it (a local model is not "Knative").
    pub fn label(self) -> &'static str {
        match self {
            Mode::Knative => "knative (local model of Knative's data path, pre-warmed)",
            Mode::KnativeStz => "knative-stz (local model of Knative's data path, scale to zero)",
            m => m.name(),
        }
    }

    fn transport(self) -> Option<&'static str> {
        match self {
            Mode::SSpright => Some("skmsg"),
            Mode::DSpright => Some("ring"),
            Mode::ESpright => Some("eventring"),
            _ => None,
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?} (s-spright, d-spright, e-spright, knative, knative-stz, grpc)"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Boutique,
    Motion,
    Parking,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Boutique => "boutique",
            Workload::Motion => "motion",
            Workload::Parking => "parking",
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Workload::Boutique, Workload::Motion, Workload::Parking]
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| format!("unknown workload {s:?} (boutique, motion, parking)"))
    }
}

/// What a process is, for grouping CPU and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The SPRIGHT gateway (with its control plane) or the Knative ingress.
    Gateway,
    /// A Knative queue-proxy.
    Sidecar,
    Function,
    Orchestrator,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Sidecar => "sidecar",
            Role::Function => "function",
            Role::Orchestrator => "orchestrator",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Component {
    pub name: String,
    pub role: Role,
    pub pid: u32,
}

/// Where the launched binaries are and which workspace to build them from.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
    pub release: bool,
}

impl Binaries {
    /// The binaries next to this executable (`target/<profile>/`).
    pub fn beside_current_exe() -> Self {
        let exe = std::env::current_exe().expect("current exe");
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        // `target/<profile>/deps/<test>` for tests, `target/<profile>/<bin>` otherwise.
        let dir = if dir.ends_with("deps") { dir.parent().unwrap().to_path_buf() } else { dir };
        let release = dir.file_name().is_some_and(|n| n == "release" || n == "bench");
        Self { dir, release }
    }

    /// Path to the workspace binary `bin`, building it first if it is missing.
    pub fn get(&self, bin: &str) -> Result<PathBuf, String> {
        let path = self.dir.join(bin);
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            // By binary name only: `parking` is also a dependency's name.
            cmd.current_dir(workspace_file("")).args(["build", "--bin", bin]);
            if self.release {
                cmd.arg("--release");
            }
            eprintln!("harness: building {bin} ({})", if self.release { "release" } else { "dev" });
            let st = cmd.status().map_err(|e| format!("cannot run cargo to build {bin}: {e}"))?;
            if !st.success() || !path.exists() {
                return Err(format!("building {bin} failed; build it with `cargo build --bin {bin}`"));
            }
        }
        Ok(path)
    }
}

fn workspace_file(rel: &str) -> PathBuf {
    crate::workspace_dir().join(rel)
}

/// How to bring a deployment up.
#[derive(Clone, Debug)]
pub struct Options {
    /// Multiplies every emulated service time (1 = the paper's).
    pub service_time_scale: f64,
    /// `sleep` or `spin` for every function (None: each function's own).
    pub service_time_mode: Option<String>,
    /// knative-stz: functions behind the activator, stopped after this idle window.
    pub scale_to_zero: Option<Duration>,
    /// knative-stz: a cold start takes at least this long (the activator
    /// holds the request): what real Knative pays beyond a process start.
    pub cold_start: Option<Duration>,
    /// CPUs every process of the deployment runs on (empty: unpinned).
    pub cpus: Vec<usize>,
    /// Where every process keeps its (de)serialization counters
    /// (`spright::wire`); None: not collected.
    pub wire_counts: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            service_time_scale: 1.0,
            service_time_mode: None,
            scale_to_zero: None,
            cold_start: None,
            cpus: Vec::new(),
            wire_counts: None,
        }
    }
}

/// Restricts the calling thread (and what it starts from now on) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> Result<(), String> {
    if cpus.is_empty() || set_affinity(cpus) {
        Ok(())
    } else {
        Err(format!("cannot pin to CPUs {cpus:?}: {}", std::io::Error::last_os_error()))
    }
}

/// `sched_setaffinity` of the calling thread. Allocates nothing, so a
/// child may call it between fork and exec.
fn set_affinity(cpus: &[usize]) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET bounds-checks.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// A running deployment; dropping it tears everything down.
pub struct Deployment {
    pub mode: Mode,
    pub workload: Workload,
    pub addr: SocketAddr,
    /// Processes we started (`Some`) and those another process owns (`None`:
    /// SPRIGHT's functions belong to its control plane).
    children: Vec<(Component, Option<Child>)>,
    cpus: Vec<usize>,
    wire_counts: Option<PathBuf>,
}

fn spawn_on(cmd: &mut Command, cpus: &[usize]) -> Result<Child, String> {
    let cpus = cpus.to_vec();
    // SAFETY: prctl, sigmask and sched_setaffinity are async-signal-safe.
    // Children die with the harness.
    unsafe {
        cmd.pre_exec(move || {
            if !cpus.is_empty() {
                set_affinity(&cpus);
            }
            // The harness blocks SIGINT/SIGTERM to sigwait for them; a
            // child must not inherit that mask or it would never stop.
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))
}

/// Reads the child's stdout until a line starting with `prefix`, returns
/// the rest of that line, and keeps draining stdout in the background.
fn wait_line(child: &mut Child, prefix: &str, timeout: Duration) -> Result<String, String> {
    let out = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = prefix.to_string();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        let mut sent = false;
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if !sent && line.starts_with(&wanted) {
                let _ = tx.send(line.trim_end().to_string());
                sent = true;
            }
            line.clear();
        }
        let mut sink = Vec::new();
        let _ = r.read_to_end(&mut sink);
    });
    rx.recv_timeout(timeout).map_err(|_| format!("no {prefix:?} line within {timeout:?} (see its stderr above)"))
}

fn addr_in(line: &str) -> Result<SocketAddr, String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("no address in {line:?}"))
}

/// A concrete address for `listen` (port 0 picks a free port now).
fn resolve(listen: SocketAddr) -> Result<SocketAddr, String> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    TcpListener::bind(listen).and_then(|l| l.local_addr()).map_err(|e| format!("cannot find a free port on {listen}: {e}"))
}

const LOCAL: &str = "127.0.0.1:0";
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl Deployment {
    /// Brings `workload` up in `mode`.
    pub fn up_with(mode: Mode, workload: Workload, listen: SocketAddr, bins: &Binaries, opts: &Options) -> Result<Self, String> {
        if (opts.scale_to_zero.is_some() || opts.cold_start.is_some()) != (mode == Mode::KnativeStz) {
            return Err("a scale-to-zero window (and cold-start time) goes with mode knative-stz, and knative-stz needs one".into());
        }
        let mut d =
            Self { mode, workload, addr: listen, children: Vec::new(), cpus: opts.cpus.clone(), wire_counts: opts.wire_counts.clone() };
        match (mode, workload) {
            (m, w) if m.transport().is_some() => d.up_spright(w, listen, bins, opts)?,
            (Mode::Knative, Workload::Boutique) => d.up_knative_boutique(listen, bins)?,
            (Mode::Knative | Mode::KnativeStz, w) if w != Workload::Boutique => d.up_knative_functions(w, listen, bins, opts)?,
            (Mode::Grpc, Workload::Boutique) => d.up_grpc_boutique(listen, bins)?,
            (m, w) => {
                return Err(format!(
                    "mode {} does not run workload {} (the paper's gRPC baseline is Online Boutique only; Online Boutique runs pre-warmed, as in the paper)",
                    m.name(),
                    w.name()
                ))
            }
        }
        Ok(d)
    }

    fn push(&mut self, name: impl Into<String>, role: Role, child: Child) {
        let pid = child.id();
        self.children.push((Component { name: name.into(), role, pid }, Some(child)));
    }

    fn spawn(&self, cmd: &mut Command) -> Result<Child, String> {
        if let Some(dir) = &self.wire_counts {
            // Inherited by everything the process starts (functions, cold starts).
            cmd.env(spright::wire::ENV, dir);
        }
        spawn_on(cmd, &self.cpus)
    }

    fn up_spright(&mut self, w: Workload, listen: SocketAddr, bins: &Binaries, opts: &Options) -> Result<(), String> {
        let bin = bins.get(w.name())?;
        let chain = workspace_file(&format!("workloads/{}/chain.yaml", w.name()));
        let mut cmd = Command::new(bin);
        cmd.args(["run", "--chain"]).arg(chain).args([
            "--transport",
            self.mode.transport().unwrap(),
            "--listen",
            &listen.to_string(),
            "--service-time-scale",
            &opts.service_time_scale.to_string(),
        ]);
        if let Some(m) = &opts.service_time_mode {
            cmd.args(["--service-time-mode", m]);
        }
        let mut child = self.spawn(&mut cmd)?;
        let line = wait_line(&mut child, "ready http://", START_TIMEOUT);
        let gateway_pid = child.id();
        self.push("gateway", Role::Gateway, child);
        self.addr = addr_in(&line?)?;
        // The functions are the control plane's children.
        for pid in testkit::children_of(gateway_pid) {
            let args = testkit::proc::cmdline(pid);
            let name = args.iter().skip_while(|a| *a != "--function").nth(1).map_or_else(|| format!("pid{pid}"), |id| format!("fn{id}"));
            self.children.push((Component { name, role: Role::Function, pid }, None));
        }
        Ok(())
    }

    fn up_knative_boutique(&mut self, listen: SocketAddr, bins: &Binaries) -> Result<(), String> {
        let bin = bins.get("knative-model")?;
        let ingress = resolve(listen)?;
        let services =
            ["frontend", "currency", "productcatalog", "cart", "recommendation", "shipping", "checkout", "payment", "email", "ad"];
        let mut routes = Vec::new();
        for s in services {
            let mut c =
                self.spawn(Command::new(&bin).args(["boutique", "--service", s, "--listen", LOCAL, "--ingress", &ingress.to_string()]))?;
            let line = wait_line(&mut c, "listening traffic", START_TIMEOUT);
            self.push(s, Role::Function, c);
            let container = addr_in(&line?)?;
            let mut q = self.spawn(Command::new(&bin).args([
                "queue-proxy",
                "--listen",
                LOCAL,
                "--metrics",
                LOCAL,
                "--upstream",
                &container.to_string(),
            ]))?;
            let line = wait_line(&mut q, "listening traffic", START_TIMEOUT);
            self.push(format!("{s}-queue-proxy"), Role::Sidecar, q);
            routes.push(format!("{s}={}", addr_in(&line?)?));
        }
        let mut cmd = Command::new(&bin);
        cmd.args(["ingress", "--listen", &ingress.to_string(), "--default-service", "frontend"]);
        for r in &routes {
            cmd.args(["--route", r]);
        }
        let mut i = self.spawn(&mut cmd)?;
        let line = wait_line(&mut i, "listening traffic", START_TIMEOUT);
        self.push("ingress", Role::Gateway, i);
        self.addr = addr_in(&line?)?;
        Ok(())
    }

    /// Online Boutique as gRPC microservices: the services that call no one
    /// first, then recommendation and checkout, then the frontend on the
    /// public address; each process learns its peers' addresses up front.
    fn up_grpc_boutique(&mut self, listen: SocketAddr, bins: &Binaries) -> Result<(), String> {
        let bin = bins.get("grpc-baseline")?;
        let leaves = ["currency", "productcatalog", "cart", "shipping", "payment", "email", "ad"];
        let callers = ["recommendation", "checkout"];
        let mut peers: Vec<String> = Vec::new();
        for stage in [&leaves[..], &callers[..], &["frontend"][..]] {
            let mut started = Vec::new();
            for &s in stage {
                let at = if s == "frontend" { listen.to_string() } else { LOCAL.to_string() };
                let mut cmd = Command::new(&bin);
                cmd.args(["--service", s, "--listen", &at]);
                for p in &peers {
                    cmd.args(["--peer", p]);
                }
                let mut c = self.spawn(&mut cmd)?;
                let line = wait_line(&mut c, "listening traffic", START_TIMEOUT);
                self.push(s, Role::Function, c);
                let addr = addr_in(&line?)?;
                if s == "frontend" {
                    self.addr = addr;
                }
                started.push(format!("{s}={addr}"));
            }
            peers.extend(started);
        }
        Ok(())
    }

    /// Motion or parking on the Knative model: a container and queue-proxy
    /// per function (pre-warmed), the ingress, and the front-end
    /// orchestrator on the public address.
    fn up_knative_functions(&mut self, w: Workload, listen: SocketAddr, bins: &Binaries, opts: &Options) -> Result<(), String> {
        let (scale, scale_to_zero) = (opts.service_time_scale, opts.scale_to_zero);
        let mode = opts.service_time_mode.as_deref().map(str::parse).transpose().map_err(|e: String| e)?;
        let bin = bins.get("knative-model")?;
        let chain = ChainFile::load(&workspace_file(&format!("workloads/{}/chain.yaml", w.name()))).map_err(|e| e.to_string())?;
        let spec = &chain.chains[0];
        let mut routes = Vec::new();
        if let Some(idle) = scale_to_zero {
            let mut cmd = Command::new(&bin);
            cmd.args(["activator", "--listen", LOCAL, "--idle-ms", &idle.as_millis().to_string()]);
            if let Some(c) = opts.cold_start {
                cmd.args(["--cold-start-ms", &c.as_millis().to_string()]);
            }
            for f in &spec.functions {
                let st = ServiceTimeOverride { scale, mode }.apply(f.service_time);
                let (ms, mode) = st.map(|s| (s.ms, s.mode.as_str())).unwrap_or((0.0, "sleep"));
                cmd.args([
                    "--service",
                    &format!("{}|{}|{} --function {} --service-ms {ms} --service-mode {mode}", f.name, f.threads, w.name(), f.name),
                ]);
            }
            let mut a = self.spawn(&mut cmd)?;
            let line = wait_line(&mut a, "listening traffic", START_TIMEOUT);
            self.push("activator", Role::Gateway, a);
            let activator = addr_in(&line?)?;
            routes.extend(spec.functions.iter().map(|f| format!("{}={activator}", f.name)));
        }
        for f in spec.functions.iter().filter(|_| scale_to_zero.is_none()) {
            let st = ServiceTimeOverride { scale, mode }.apply(f.service_time);
            let (ms, mode) = st.map(|s| (s.ms, s.mode.as_str())).unwrap_or((0.0, "sleep"));
            let mut c = self.spawn(Command::new(&bin).args([
                w.name(),
                "--function",
                &f.name,
                "--listen",
                LOCAL,
                "--service-ms",
                &ms.to_string(),
                "--service-mode",
                mode,
            ]))?;
            let line = wait_line(&mut c, "listening traffic", START_TIMEOUT);
            self.push(f.name.clone(), Role::Function, c);
            let container = addr_in(&line?)?;
            // As many in flight as the SPRIGHT function has worker threads.
            let concurrency = f.threads.to_string();
            let mut q = self.spawn(Command::new(&bin).args([
                "queue-proxy",
                "--listen",
                LOCAL,
                "--metrics",
                LOCAL,
                "--upstream",
                &container.to_string(),
                "--concurrency",
                &concurrency,
            ]))?;
            let line = wait_line(&mut q, "listening traffic", START_TIMEOUT);
            self.push(format!("{}-queue-proxy", f.name), Role::Sidecar, q);
            routes.push(format!("{}={}", f.name, addr_in(&line?)?));
        }
        let mut cmd = Command::new(&bin);
        cmd.args(["ingress", "--listen", LOCAL]);
        for r in &routes {
            cmd.args(["--route", r]);
        }
        let mut i = self.spawn(&mut cmd)?;
        let line = wait_line(&mut i, "listening traffic", START_TIMEOUT);
        self.push("ingress", Role::Gateway, i);
        let ingress = addr_in(&line?)?;
        let mut o = self.spawn(Command::new(&bin).args([
            w.name(),
            "--function",
            "orchestrator",
            "--listen",
            &listen.to_string(),
            "--ingress",
            &ingress.to_string(),
        ]))?;
        let line = wait_line(&mut o, "listening traffic", START_TIMEOUT);
        self.push("orchestrator", Role::Orchestrator, o);
        self.addr = addr_in(&line?)?;
        Ok(())
    }

    pub fn components(&self) -> Vec<Component> {
        self.children.iter().map(|(c, _)| c.clone()).collect()
    }

    /// SIGTERM everything (front door first), SIGKILL what is left after
    /// the grace period, reap.
    pub fn down(&mut self) {
        let mut order: Vec<usize> = (0..self.children.len()).collect();
        order.sort_by_key(|&i| match self.children[i].0.role {
            Role::Gateway => 0,
            Role::Orchestrator => 1,
            Role::Sidecar => 2,
            Role::Function => 3,
        });
        for &i in &order {
            if self.children[i].1.is_some() {
                unsafe { libc::kill(self.children[i].0.pid as i32, libc::SIGTERM) };
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (c, child) in &mut self.children {
            let Some(child) = child else { continue };
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        unsafe { libc::kill(c.pid as i32, libc::SIGKILL) };
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.down();
    }
}
