//! Bringing a deployment of any mode up and down, as OS processes.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod cluster;
mod plan;

use plan::Launch;

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

    /// How reports label it where it ran (a local model is not "Knative").
    pub fn label(self, target: Target) -> &'static str {
        match (self, target) {
            (Mode::Knative, Target::Processes) => "knative (local model of Knative's data path, pre-warmed)",
            (Mode::KnativeStz, Target::Processes) => "knative-stz (local model of Knative's data path, scale to zero)",
            (Mode::Knative, Target::K8s) => "knative (Knative Serving with Kourier on Kubernetes, pre-warmed)",
            (Mode::KnativeStz, Target::K8s) => "knative-stz (Knative Serving with Kourier on Kubernetes, scale to zero)",
            (Mode::SSpright, Target::K8s) => "s-spright (a pod per chain on Kubernetes)",
            (Mode::DSpright, Target::K8s) => "d-spright (a pod per chain on Kubernetes)",
            (Mode::ESpright, Target::K8s) => "e-spright (a pod per chain on Kubernetes)",
            (Mode::Grpc, Target::K8s) => "grpc (Deployments and Services on Kubernetes)",
            (m, Target::Processes) => m.name(),
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

/// Where a node brings modes up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Processes the node starts and stops itself.
    #[default]
    Processes,
    /// The project's manifests on the Kubernetes cluster node-0 belongs to.
    K8s,
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "processes" => Ok(Target::Processes),
            "k8s" => Ok(Target::K8s),
            _ => Err(format!("unknown target {s:?} (processes or k8s)")),
        }
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
}

/// Every binary comes from the build this one came from (the workspace's
/// target/<profile>, or the set Ansible installs): optimized or not as it is.
pub const RELEASE: bool = !cfg!(debug_assertions);

impl Binaries {
    /// The binaries next to this executable (`target/<profile>/`).
    pub fn beside_current_exe() -> Self {
        let exe = std::env::current_exe().expect("current exe");
        let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
        // `target/<profile>/deps/<test>` for tests, `target/<profile>/<bin>` otherwise.
        let dir = if dir.ends_with("deps") { dir.parent().unwrap().to_path_buf() } else { dir };
        Self { dir }
    }

    /// Path to the workspace binary `bin`, building it first if it is missing.
    pub fn get(&self, bin: &str) -> Result<PathBuf, String> {
        let path = self.dir.join(bin);
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            // By binary name only: `parking` is also a dependency's name.
            cmd.current_dir(workspace_file("")).args(["build", "--bin", bin]);
            if RELEASE {
                cmd.arg("--release");
            }
            eprintln!("harness: building {bin} ({})", if RELEASE { "release" } else { "dev" });
            let st = cmd.status().map_err(|e| format!("cannot run cargo to build {bin}: {e}"))?;
            if !st.success() || !path.exists() {
                return Err(format!("building {bin} failed; build it with `cargo build --bin {bin}`"));
            }
        }
        Ok(path)
    }
}

pub(crate) fn workspace_file(rel: &str) -> PathBuf {
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

/// How long a process may take to print that it serves.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running deployment; dropping it tears everything down.
pub struct Deployment {
    pub workload: Workload,
    pub addr: SocketAddr,
    /// Processes we started (`Some`) and those another process owns (`None`:
    /// SPRIGHT's functions belong to its control plane).
    children: Vec<(Component, Option<Child>)>,
    cpus: Vec<usize>,
    wire_counts: Option<PathBuf>,
}

/// The fd a child finds its inherited listener on.
const LISTEN_FD: i32 = 3;

/// Starts `cmd` on `cpus`; `listener`: a bound socket it serves, passed as
/// fd [`LISTEN_FD`] (named by `baseline_common::http::LISTEN_FD_ENV`).
fn spawn_on(cmd: &mut Command, cpus: &[usize], listener: Option<&std::net::TcpListener>) -> Result<Child, String> {
    use std::os::fd::AsRawFd;
    let cpus = cpus.to_vec();
    let inherit = listener.map(|l| l.as_raw_fd());
    if inherit.is_some() {
        cmd.env(baseline_common::http::LISTEN_FD_ENV, LISTEN_FD.to_string());
    }
    // SAFETY: prctl, sigmask, sched_setaffinity, dup2 and fcntl are
    // async-signal-safe. Children die with the harness.
    unsafe {
        cmd.pre_exec(move || {
            if let Some(fd) = inherit {
                // dup2 clears close-on-exec on the copy; a socket already
                // at that number keeps its flag, so clear it there.
                if fd == LISTEN_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                } else if libc::dup2(fd, LISTEN_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
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

impl Deployment {
    /// Brings `workload` up in `mode`.
    pub fn up_with(mode: Mode, workload: Workload, listen: SocketAddr, bins: &Binaries, opts: &Options) -> Result<Self, String> {
        if (opts.scale_to_zero.is_some() || opts.cold_start.is_some()) != (mode == Mode::KnativeStz) {
            return Err("a scale-to-zero window (and cold-start time) goes with mode knative-stz, and knative-stz needs one".into());
        }
        let plan = plan::for_mode(mode, workload, listen, opts)?;
        let mut d = Self { workload, addr: listen, children: Vec::new(), cpus: opts.cpus.clone(), wire_counts: opts.wire_counts.clone() };
        d.start(plan, bins)?;
        Ok(d)
    }

    /// The one spawner: starts every launch in order, each once those it
    /// refers to serve. The last one started is the front door. On error,
    /// what was started is torn down when `self` drops.
    fn start(&mut self, plan: Vec<Launch>, bins: &Binaries) -> Result<(), String> {
        let mut started: Vec<(String, SocketAddr)> = Vec::new();
        for launch in plan {
            let args = launch.args.iter().map(|a| a.render(&started)).collect::<Result<Vec<_>, _>>()?;
            let mut cmd = Command::new(bins.get(&launch.bin)?);
            cmd.args(args);
            if let Some(dir) = &self.wire_counts {
                // Inherited by everything the process starts (functions, cold starts).
                cmd.env(spright::wire::ENV, dir);
            }
            let mut child = spawn_on(&mut cmd, &self.cpus, launch.listener.as_ref())?;
            // Ours no longer: the child serves it.
            drop(launch.listener);
            let line = wait_line(&mut child, launch.ready, START_TIMEOUT);
            let pid = child.id();
            self.children.push((Component { name: launch.name.clone(), role: launch.role, pid }, Some(child)));
            let addr = addr_in(&line?)?;
            if launch.adopts_functions {
                self.adopt_functions(pid);
            }
            started.push((launch.name, addr));
            self.addr = addr;
        }
        Ok(())
    }

    /// Records the functions that `parent` (SPRIGHT's control plane) started.
    fn adopt_functions(&mut self, parent: u32) {
        for pid in testkit::children_of(parent) {
            self.children.push((Component { name: function_name(pid), role: Role::Function, pid }, None));
        }
    }

    /// Pids of the gateways / control planes the harness started and still holds.
    fn control_planes(&self) -> impl Iterator<Item = u32> + '_ {
        self.children.iter().filter(|(c, ch)| c.role == Role::Gateway && ch.is_some()).map(|(c, _)| c.pid)
    }

    /// Slots in use per pool of the SPRIGHT control planes this deployment runs.
    pub fn pool_slots_in_use(&self) -> Vec<(String, u64)> {
        self.control_planes().flat_map(pools_of).collect()
    }

    /// The pid of the running process named `name`, looked up now: one the
    /// harness started while it runs, or a function SPRIGHT's control plane
    /// (re)started - under its current pid.
    pub fn pid_of(&mut self, name: &str) -> Option<u32> {
        if let Some((c, Some(child))) = self.children.iter_mut().find(|(c, child)| c.name == name && child.is_some()) {
            return matches!(child.try_wait(), Ok(None)).then_some(c.pid);
        }
        self.control_planes().flat_map(testkit::children_of).find(|&pid| function_name(pid) == name)
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
                // SAFETY: kill(2) takes plain integers; the pid is a child we have not reaped.
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
                        // SAFETY: as above.
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

/// Slots in use in every SPRIGHT pool `pid` holds: each pool memfd is
/// opened through `/proc` and read with the runtime's own pool code.
pub fn pools_of(pid: u32) -> Vec<(String, u64)> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    let mut pools: Vec<(String, u64)> = fds
        .flatten()
        .filter_map(|e| {
            let link = std::fs::read_link(e.path()).ok()?.to_string_lossy().into_owned();
            // spright-<pid>-pool-chain<N>
            let name = link.strip_prefix("/memfd:")?.split(' ').next()?.split("-pool-").nth(1)?.to_string();
            let file = std::fs::OpenOptions::new().read(true).write(true).open(e.path()).ok()?;
            let pool = spright::pool::Pool::open(file.into()).ok()?;
            Some((name, pool.occupancy() as u64))
        })
        .collect();
    pools.sort();
    pools
}

/// A SPRIGHT function process's name: `fn<ID>` from its `--function ID`.
fn function_name(pid: u32) -> String {
    let args = testkit::proc::cmdline(pid);
    args.iter().skip_while(|a| *a != "--function").nth(1).map_or_else(|| format!("pid{pid}"), |id| format!("fn{id}"))
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.down();
    }
}
