//! The activator with scale-to-zero (Knative's activator and autoscaler
//! roles, for the workloads the paper ran that way: motion and parking).
//!
//! It sits between the ingress and the functions. A request for a service
//! that is down is held while the activator starts the service's user
//! container and queue-proxy and waits for readiness (real process
//! start-up), and then, if that was quicker, until the configured cold
//! start time has passed: a process spawn takes milliseconds where Knative
//! schedules a pod, starts its containers and probes readiness (about 2 s
//! at best, measured). A service idle for the window (no request, nothing
//! in flight) is stopped: scaled to zero.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::Request;
use tokio::sync::Mutex;

use baseline_common::http::{self, client, forward, json_error, Body, HttpClient};
use baseline_common::Held;

/// One scale-to-zero service: how to start its user container.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    pub name: String,
    pub concurrency: usize,
    /// Arguments to this executable for the user container (`--listen` is added).
    pub container_args: Vec<String>,
}

impl std::str::FromStr for ServiceSpec {
    type Err = String;
    /// `NAME|CONCURRENCY|ARG ARG ...`
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.splitn(3, '|');
        let (Some(name), Some(c), Some(args)) = (it.next(), it.next(), it.next()) else {
            return Err("expected NAME|CONCURRENCY|ARGS".into());
        };
        Ok(Self {
            name: name.into(),
            concurrency: c.parse().map_err(|_| "bad concurrency")?,
            container_args: args.split_whitespace().map(String::from).collect(),
        })
    }
}

struct Running {
    queue_proxy: SocketAddr,
    processes: Vec<Child>,
}

struct Revision {
    spec: ServiceSpec,
    running: Mutex<Option<Running>>,
    in_flight: AtomicI64,
    last_request_ms: AtomicU64,
    cold_starts: AtomicU64,
}

pub struct Activator {
    exe: PathBuf,
    revisions: HashMap<String, Arc<Revision>>,
    client: HttpClient,
    epoch: Instant,
    idle: Duration,
    cold_start: Duration,
    spawner: Spawner,
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts containers from one thread that lives as long as the activator.
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked a child exits:
/// forking from tokio's blocking pool, whose idle threads are retired after
/// about 10 s, would kill running containers.
struct Spawner {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Spawner {
    fn new() -> Self {
        let (jobs, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("spawn the container-starting thread");
        Self { jobs }
    }

    /// Runs `f` on the spawner thread and waits for its result.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs.send(Box::new(move || drop(tx.send(f())))).map_err(|_| "the spawner thread is gone".to_string())?;
        rx.await.map_err(|_| "the spawner thread dropped a job".to_string())
    }
}

fn spawn_listening(exe: &PathBuf, args: &[String]) -> Result<(Child, SocketAddr), String> {
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {args:?}: {e}"))?;
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    while out.read_line(&mut line).map_err(|e| e.to_string())? > 0 {
        if line.starts_with("listening traffic") {
            let addr =
                line.split_whitespace().find_map(|w| w.strip_prefix("http://")).and_then(|a| a.parse().ok()).ok_or("bad listening line")?;
            std::thread::spawn(move || while out.read_line(&mut String::new()).map(|n| n > 0).unwrap_or(false) {});
            return Ok((child, addr));
        }
        line.clear();
    }
    let _ = child.kill();
    Err(format!("{args:?} exited before listening"))
}

fn stop(mut r: Running) {
    for p in &r.processes {
        // SAFETY: kill(2) on a child we started and have not reaped yet.
        unsafe { libc::kill(p.id() as i32, libc::SIGTERM) };
    }
    for p in &mut r.processes {
        let _ = p.wait();
    }
}

impl Activator {
    pub fn new(exe: PathBuf, services: Vec<ServiceSpec>, idle: Duration, cold_start: Duration) -> Self {
        let revisions = services
            .into_iter()
            .map(|spec| {
                let r = Revision {
                    spec,
                    running: Mutex::new(None),
                    in_flight: AtomicI64::new(0),
                    last_request_ms: AtomicU64::new(0),
                    cold_starts: AtomicU64::new(0),
                };
                (r.spec.name.clone(), Arc::new(r))
            })
            .collect();
        Self { exe, revisions, client: client(), epoch: Instant::now(), idle, cold_start, spawner: Spawner::new() }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The revision's queue-proxy, starting the revision if it is at zero.
    async fn ensure_up(&self, rev: &Arc<Revision>) -> Result<SocketAddr, String> {
        let mut running = rev.running.lock().await;
        if let Some(r) = running.as_ref() {
            return Ok(r.queue_proxy);
        }
        let started = Instant::now();
        let (exe, spec) = (self.exe.clone(), rev.spec.clone());
        let up = self
            .spawner
            .run(move || -> Result<Running, String> {
                let mut args = spec.container_args.clone();
                args.extend(["--listen".into(), "127.0.0.1:0".into()]);
                let (container, caddr) = spawn_listening(&exe, &args)?;
                // The queue-proxy listens only once the container is ready.
                let qp_args: Vec<String> = [
                    "queue-proxy",
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream",
                    &caddr.to_string(),
                    "--concurrency",
                    &spec.concurrency.to_string(),
                ]
                .map(String::from)
                .to_vec();
                match spawn_listening(&exe, &qp_args) {
                    Ok((qp, qaddr)) => Ok(Running { queue_proxy: qaddr, processes: vec![qp, container] }),
                    Err(e) => {
                        stop(Running { queue_proxy: caddr, processes: vec![container] });
                        Err(e)
                    }
                }
            })
            .await??;
        let spawned = started.elapsed();
        // The request waits as long as a real cold start would have.
        tokio::time::sleep(self.cold_start.saturating_sub(spawned)).await;
        rev.cold_starts.fetch_add(1, Ordering::Relaxed);
        eprintln!(
            "activator: cold start of {}: processes ready in {} ms, request held {} ms",
            rev.spec.name,
            spawned.as_millis(),
            started.elapsed().as_millis()
        );
        let addr = up.queue_proxy;
        *running = Some(up);
        Ok(addr)
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> hyper::Response<Body> {
        let host = req.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
        let service = host.split('.').next().unwrap_or("");
        let Some(rev) = self.revisions.get(service).cloned() else {
            return json_error(404, &format!("activator: no service for host {host:?}"));
        };
        let in_flight = Held::new(&rev.in_flight);
        rev.last_request_ms.store(self.now_ms(), Ordering::Relaxed);
        let resp = match self.ensure_up(&rev).await {
            Ok(addr) => forward(&self.client, addr, None, req).await,
            Err(e) => json_error(503, &format!("activator: cannot start {service}: {e}")),
        };
        rev.last_request_ms.store(self.now_ms(), Ordering::Relaxed);
        drop(in_flight);
        resp
    }

    /// Scales idle revisions to zero.
    async fn reap(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            for rev in self.revisions.values() {
                let idle_for = self.now_ms().saturating_sub(rev.last_request_ms.load(Ordering::Relaxed));
                if rev.in_flight.load(Ordering::SeqCst) > 0 || idle_for < self.idle.as_millis() as u64 {
                    continue;
                }
                let mut running = rev.running.lock().await;
                if rev.in_flight.load(Ordering::SeqCst) == 0 {
                    if let Some(r) = running.take() {
                        eprintln!("activator: scaling {} to zero after {} ms idle", rev.spec.name, idle_for);
                        tokio::task::spawn_blocking(move || stop(r));
                    }
                }
            }
        }
    }
}

pub async fn run(listen: SocketAddr, activator: Activator) {
    let a = Arc::new(activator);
    tokio::spawn(a.clone().reap());
    let a2 = a.clone();
    http::serve("traffic", listen, move |req| a2.clone().handle(req)).await;
    // Draining done: stop whatever still runs.
    for rev in a.revisions.values() {
        if let Some(r) = rev.running.lock().await.take() {
            stop(r);
        }
    }
}
