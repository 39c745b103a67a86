//! The node side of the protocol: `harness node --stdio` on another
//! machine, or a thread of the harness on this one. One session per
//! connection, one mode up at a time. When the input ends - the driver
//! finished, crashed, or the link dropped - everything the session started
//! is torn down (the deployment's processes, the sampler, the eBPF
//! programs, the counter files).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::protocol::{self, Collected, FaultAction, NodeFacts, Reply, Request, Target, UpRequest};
use crate::collect::attribution::Registry;
use crate::collect::ebpf::AuditProbe;
use crate::collect::perf::PerfCounters;
use crate::collect::resources::ResourceSampler;
use crate::collect::sampler::Sampler;
use crate::deploy::cluster::ClusterDeployment;
use crate::deploy::{pin_current_thread, Binaries, Component, Deployment, Mode, Options, Workload};
use crate::experiment::counters::{self, Collectors, RowKey, Snapshot};
use crate::experiment::machine;
use crate::results::{ComponentInfo, CounterRow, Phase};

/// A driver sends a request (a heartbeat `clock` at least) more often than
/// this; a session that stays silent longer has lost its driver or its
/// link - which a half-open TCP connection would not say for many minutes -
/// and ends like one whose input closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// Serves one session until `input` ends or stays silent for `idle_limit`
/// ([`IDLE_LIMIT`] unless told otherwise).
pub fn serve<R: BufRead + Send + 'static>(mut input: R, mut output: impl Write, idle_limit: Duration) -> Result<(), String> {
    // Lines are read on their own thread so that silence can be timed.
    let (lines, rx) = std::sync::mpsc::sync_channel::<Option<Result<Request, String>>>(1);
    std::thread::Builder::new()
        .name("node-input".into())
        .spawn(move || loop {
            // A failed link ends the session as its end does.
            let message = protocol::receive::<Request>(&mut input).unwrap_or(None);
            let end = message.is_none();
            if lines.send(message).is_err() || end {
                return;
            }
        })
        .map_err(|e| format!("cannot start the node's reader: {e}"))?;
    let mut node = Node::default();
    loop {
        let reply = match rx.recv_timeout(idle_limit) {
            Ok(None) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("no request for {} s: the driver or its link is gone; tearing down", idle_limit.as_secs()))
            }
            Ok(Some(Ok(request))) => node.handle(request).unwrap_or_else(|message| Reply::Error { message }),
            Ok(Some(Err(message))) => Reply::Error { message },
        };
        protocol::send(&mut output, &reply).map_err(|e| format!("the node link failed: {e}"))?;
    }
}

#[derive(Default)]
struct Node {
    session: Option<Session>,
}

struct Session {
    epoch: Instant,
    sample: Duration,
    perf: bool,
    audit: Option<Arc<AuditProbe>>,
    bins: Binaries,
    /// Where the runtimes keep their (de)serialization counters; emptied
    /// for every mode, removed with the session.
    wire_dir: RemovedOnDrop,
    mode: Option<ModeSession>,
}

/// A mode that is up: its processes and its timeline.
struct ModeSession {
    deployment: Running,
    timeline: Timeline,
    /// A soak's memory, descriptor, map and pool sampler.
    resources: Option<ResourceSampler>,
}

/// A mode's deployment, wherever it runs.
enum Running {
    Processes(Deployment),
    Cluster(ClusterDeployment),
}

impl Running {
    fn components(&self) -> Vec<Component> {
        match self {
            Running::Processes(d) => d.components(),
            Running::Cluster(d) => d.components(),
        }
    }

    fn front_door(&self) -> (SocketAddr, Option<String>) {
        match self {
            Running::Processes(d) => (d.addr, None),
            Running::Cluster(d) => (d.addr, d.host.clone()),
        }
    }

    fn down(&mut self) {
        match self {
            Running::Processes(d) => d.down(),
            Running::Cluster(d) => d.down(),
        }
    }
}

impl Node {
    fn handle(&mut self, request: Request) -> Result<Reply, String> {
        if let Request::Hello { version, collectors, sample_ms, collector_cpus } = request {
            if version != protocol::VERSION {
                return Err(format!("this node speaks protocol version {}, the driver {version}", protocol::VERSION));
            }
            if self.session.is_some() {
                return Err("the session is already open".into());
            }
            let (session, facts, warnings) = Session::open(&collectors, sample_ms, &collector_cpus)?;
            self.session = Some(session);
            return Ok(Reply::Hello { facts, warnings });
        }
        let s = self.session.as_mut().ok_or("say hello first")?;
        match request {
            Request::Hello { .. } => unreachable!("handled above"),
            Request::Clock => Ok(Reply::Clock { now_s: s.epoch.elapsed().as_secs_f64() }),
            Request::Up(up) => s.up(&up),
            Request::Enter { label, offered } => Ok(Reply::Mark { t_s: s.timeline()?.enter(&label, offered) }),
            Request::Close => Ok(Reply::Mark { t_s: s.timeline()?.close() }),
            Request::StartPerf => s.start_perf(),
            Request::Fault { target, fault } => s.fault(&target, fault),
            Request::PoolSlots => Ok(Reply::PoolSlots {
                pools: match s.mode.as_ref().map(|m| &m.deployment) {
                    Some(Running::Processes(d)) => d.pool_slots_in_use(),
                    _ => Vec::new(),
                },
            }),
            Request::Down => s.down(),
        }
    }
}

impl Session {
    fn open(collectors: &[String], sample_ms: u64, collector_cpus: &[usize]) -> Result<(Self, NodeFacts, Vec<String>), String> {
        let bins = Binaries::beside_current_exe();
        // The machine as found, before this thread pins itself.
        let facts = machine::facts();
        let root = facts.root;
        // The sampler and the eBPF reader start from this thread.
        pin_current_thread(collector_cpus)?;
        let mut warnings = Vec::new();
        let audit = if collectors.iter().any(|c| c == "ebpf") && root {
            AuditProbe::start().map(Arc::new).map_err(|e| warnings.push(format!("eBPF collector not running: {e}"))).ok()
        } else {
            None
        };
        let session = Self {
            epoch: Instant::now(),
            sample: Duration::from_millis(sample_ms.max(1)),
            perf: collectors.iter().any(|c| c == "perf"),
            audit,
            bins,
            wire_dir: RemovedOnDrop(PathBuf::from(format!("/dev/shm/spright-wire-{}", std::process::id()))),
            mode: None,
        };
        Ok((session, facts, warnings))
    }

    fn timeline(&mut self) -> Result<&mut Timeline, String> {
        self.mode.as_mut().map(|m| &mut m.timeline).ok_or_else(|| "no mode is up".to_string())
    }

    fn up(&mut self, up: &UpRequest) -> Result<Reply, String> {
        if self.mode.is_some() {
            return Err("a mode is already up: bring it down first".into());
        }
        let mode: Mode = up.mode.parse()?;
        let workload: Workload = up.workload.parse()?;
        // Each mode starts with no counter files.
        let _ = std::fs::remove_dir_all(&self.wire_dir.0);
        std::fs::create_dir_all(&self.wire_dir.0).map_err(|e| format!("{}: {e}", self.wire_dir.0.display()))?;
        let opts = Options {
            service_time_scale: up.service_time_scale,
            service_time_mode: up.service_time_mode.clone(),
            scale_to_zero: up.scale_to_zero_ms.map(Duration::from_millis),
            cold_start: up.cold_start_ms.map(Duration::from_millis),
            cpus: up.cpus.clone(),
            wire_counts: Some(self.wire_dir.0.clone()),
        };
        let deployment = match up.target {
            Target::Processes => Running::Processes(Deployment::up_with(mode, workload, up.listen, &self.bins, &opts)?),
            Target::K8s => {
                if up.service_time_scale != 1.0 || up.service_time_mode.is_some() {
                    return Err("the cluster runs the chain files' service times: use a profile that keeps them".into());
                }
                Running::Cluster(ClusterDeployment::up(mode, workload, up.listen.ip())?)
            }
        };
        let components = deployment.components();
        let registry = Registry::new(components.iter().map(|c| (c.pid, c.name.clone(), c.role.name().to_string())), std::process::id());
        let sampler = Sampler::start(registry.clone(), self.sample, self.epoch);
        let resources = up.resources_ms.map(|ms| ResourceSampler::start(registry.clone(), Duration::from_millis(ms.max(1)), self.epoch));
        // The pods' containers do not write (de)serialization counters (no
        // shared directory with this node): not collected, rather than zero.
        let wire_dir = (up.target == Target::Processes).then(|| self.wire_dir.0.clone());
        let collectors = Collectors { audit: self.audit.clone(), perf: None, wire_dir, registry };
        let timeline = Timeline {
            sampler,
            collectors,
            repeat: up.repeat,
            mode: up.mode.clone(),
            phases: Vec::new(),
            open: None,
            counters: Vec::new(),
        };
        let (addr, host) = deployment.front_door();
        self.mode = Some(ModeSession { deployment, timeline, resources });
        let components = components.into_iter().map(|c| ComponentInfo { name: c.name, group: c.role.name().into(), pid: c.pid }).collect();
        Ok(Reply::Up { addr, host, components })
    }

    /// Software perf counters on every thread of the run's processes,
    /// opened once the idle phase is over so that opening costs nothing measured.
    fn start_perf(&mut self) -> Result<Reply, String> {
        if !self.perf {
            return Err("the perf collector was not asked for".into());
        }
        let tl = self.timeline()?;
        let pids: Vec<u32> = tl.collectors.registry.members().into_iter().map(|(pid, _)| pid).collect();
        tl.collectors.perf = Some(PerfCounters::start(&pids)?);
        Ok(Reply::Done)
    }

    /// Signals the mode's process `target` - looked up now, so a function
    /// its control plane restarted is found under its new pid.
    fn fault(&mut self, target: &str, fault: FaultAction) -> Result<Reply, String> {
        let mode = self.mode.as_mut().ok_or("no mode is up")?;
        let Running::Processes(d) = &mut mode.deployment else {
            return Err("faults are injected into processes the node started, not into the cluster's pods".into());
        };
        let pid = d.pid_of(target).ok_or_else(|| format!("no running process {target:?} in this mode"))?;
        let signal = |sig| {
            // SAFETY: kill(2) takes plain integers and touches no memory of ours.
            unsafe { libc::kill(pid as i32, sig) }
        };
        match fault {
            FaultAction::Kill => signal(libc::SIGKILL),
            FaultAction::Stop => signal(libc::SIGSTOP),
            FaultAction::Cont => signal(libc::SIGCONT),
            FaultAction::Slow { run_ms, stop_ms, secs } => {
                std::thread::Builder::new()
                    .name("fault-slow".into())
                    .spawn(move || {
                        let end = Instant::now() + Duration::from_secs_f64(secs);
                        while Instant::now() < end {
                            // SAFETY: as above; the last step always continues the process.
                            unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
                            std::thread::sleep(Duration::from_millis(stop_ms));
                            // SAFETY: as above.
                            unsafe { libc::kill(pid as i32, libc::SIGCONT) };
                            std::thread::sleep(Duration::from_millis(run_ms));
                        }
                    })
                    .map_err(|e| format!("cannot start the slow-down thread: {e}"))?;
                0
            }
        };
        Ok(Reply::Done)
    }

    fn down(&mut self) -> Result<Reply, String> {
        let ModeSession { mut deployment, timeline, resources } = self.mode.take().ok_or("no mode is up")?;
        let samples = timeline.sampler.stop();
        let resources = resources.map(ResourceSampler::stop).unwrap_or_default();
        deployment.down();
        let components = timeline
            .collectors
            .registry
            .members()
            .into_iter()
            .filter(|(_, m)| m.group != "load")
            .map(|(pid, m)| ComponentInfo { name: m.component, group: m.group, pid })
            .collect();
        Ok(Reply::Down(Box::new(Collected {
            phases: timeline.phases,
            counters: timeline.counters,
            processes: samples.processes,
            cpus: samples.cpus,
            components,
            resources,
        })))
    }
}

/// A mode's timeline: every boundary samples the CPU sampler and reads
/// every counter, so that each phase's numbers cover exactly its window.
struct Timeline {
    sampler: Sampler,
    collectors: Collectors,
    repeat: usize,
    mode: String,
    phases: Vec<Phase>,
    open: Option<(Phase, Snapshot)>,
    counters: Vec<CounterRow>,
}

impl Timeline {
    /// Ends the open phase (if any) now and begins `label`; returns the boundary's time.
    fn enter(&mut self, label: &str, offered: Option<f64>) -> f64 {
        let (t, snap) = self.boundary();
        self.close_at(t, &snap);
        self.open = Some((Phase { label: label.into(), from_s: t, to_s: t, offered }, snap));
        t
    }

    /// Ends the open phase now.
    fn close(&mut self) -> f64 {
        let (t, snap) = self.boundary();
        self.close_at(t, &snap);
        t
    }

    fn boundary(&mut self) -> (f64, Snapshot) {
        let t = self.sampler.mark();
        (t, Snapshot::read(&mut self.collectors))
    }

    fn close_at(&mut self, t: f64, end: &Snapshot) {
        let Some((mut phase, start)) = self.open.take() else { return };
        phase.to_s = t;
        let forks = self.collectors.audit.as_deref().map(AuditProbe::parents).unwrap_or_default();
        let key = RowKey { repeat: self.repeat, mode: &self.mode, phase: &phase.label };
        self.counters.extend(counters::rows(&key, &start, end, &self.collectors.registry, &forks));
        self.phases.push(phase);
    }
}

/// A directory removed (with its contents) when this is dropped.
pub struct RemovedOnDrop(pub PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
