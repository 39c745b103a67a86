//! The driver side of the protocol: a [`Node`] is a session with the node
//! that runs the system under test, here (a thread over a socket pair) or
//! over any command that speaks the protocol on its stdio (`ssh NODE
//! harness node --stdio`). Dropping it ends the session, which tears down
//! everything the node started.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::protocol::{self, Collected, FaultAction, NodeFacts, Reply, Request, UpRequest};
use crate::load::FrontDoor;
use crate::results::ComponentInfo;

/// How the session's other end runs.
enum Peer {
    Thread(JoinHandle<Result<(), String>>),
    Process(Child),
}

/// The session's two directions; a request and its reply are one critical
/// section (the heartbeat shares the link with the driver's requests).
struct Link {
    input: Box<dyn BufRead + Send>,
    output: Box<dyn Write + Send>,
}

impl Link {
    fn call(&mut self, name: &str, request: &Request) -> Result<Reply, String> {
        let lost = |e: String| format!("node {name}: {e}");
        protocol::send(&mut self.output, request).map_err(|e| lost(format!("the link failed: {e}")))?;
        match protocol::receive::<Reply>(&mut self.input).map_err(|e| lost(format!("the link failed: {e}")))? {
            None => Err(lost("the session ended (the node or its link is gone)".into())),
            Some(Err(e)) => Err(lost(e)),
            Some(Ok(Reply::Error { message })) => Err(lost(message)),
            Some(Ok(reply)) => Ok(reply),
        }
    }
}

pub struct Node {
    /// `local`, or the command's target.
    pub name: String,
    /// None once the session is closed.
    link: Arc<Mutex<Option<Link>>>,
    /// Dropping the sender stops the heartbeat.
    heartbeat: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    peer: Option<Peer>,
    /// A local node's end of the socket pair, shut down to end the session.
    socket: Option<UnixStream>,
    /// The driver's clock: seconds since `epoch`; a node time plus `shift_s` is one of it.
    epoch: Instant,
    shift_s: f64,
    pub facts: NodeFacts,
}

impl Node {
    /// A node on this machine: a thread of this process, over a socket pair.
    pub fn local(epoch: Instant) -> Result<Self, String> {
        let (ours, theirs) = UnixStream::pair().map_err(|e| format!("cannot make a socket pair: {e}"))?;
        let reader = theirs.try_clone().map_err(|e| e.to_string())?;
        let thread = std::thread::Builder::new()
            .name("node".into())
            .spawn(move || super::server::serve(BufReader::new(reader), theirs, super::server::IDLE_LIMIT))
            .map_err(|e| format!("cannot start the local node: {e}"))?;
        let input = BufReader::new(ours.try_clone().map_err(|e| e.to_string())?);
        let output = ours.try_clone().map_err(|e| e.to_string())?;
        let mut node = Self::with("local".into(), Box::new(input), Box::new(output), Peer::Thread(thread), epoch);
        node.socket = Some(ours);
        Ok(node)
    }

    /// A node at the other end of `command`'s stdin and stdout (its stderr
    /// is ours), e.g. `ssh USER@NODE0 harness node --stdio`.
    pub fn command(name: String, mut command: Command, epoch: Instant) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {:?} for node {name}: {e}", command.get_program()))?;
        let (stdin, stdout) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
        Ok(Self::with(name, Box::new(BufReader::new(stdout)), Box::new(stdin), Peer::Process(child), epoch))
    }

    fn with(name: String, input: Box<dyn BufRead + Send>, output: Box<dyn Write + Send>, peer: Peer, epoch: Instant) -> Self {
        Self {
            name,
            link: Arc::new(Mutex::new(Some(Link { input, output }))),
            heartbeat: None,
            peer: Some(peer),
            socket: None,
            epoch,
            shift_s: 0.0,
            facts: NodeFacts::default(),
        }
    }

    fn call(&mut self, request: &Request) -> Result<Reply, String> {
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        link.as_mut().ok_or_else(|| format!("node {}: the session is closed", self.name))?.call(&self.name, request)
    }

    /// Keeps the node's idle limit from firing while the driver has nothing
    /// to ask (a long load phase): a `clock` request every [`HEARTBEAT`].
    fn start_heartbeat(&mut self) -> Result<(), String> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (link, name) = (Arc::clone(&self.link), self.name.clone());
        let thread = std::thread::Builder::new()
            .name("node-heartbeat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                    let mut link = link.lock().unwrap_or_else(|e| e.into_inner());
                    // A failure is the driver's to report, at its next request.
                    if link.as_mut().is_none_or(|l| l.call(&name, &Request::Clock).is_err()) {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the heartbeat: {e}"))?;
        self.heartbeat = Some((stop, thread));
        Ok(())
    }

    fn unexpected<T>(&self, reply: Reply) -> Result<T, String> {
        Err(format!("node {}: unexpected reply {reply:?}", self.name))
    }

    /// Opens the session and maps the node's clock onto the driver's.
    /// Returns the node's warnings.
    pub fn hello(&mut self, collectors: &[String], sample_ms: u64, collector_cpus: &[usize]) -> Result<Vec<String>, String> {
        let request = Request::Hello {
            version: protocol::VERSION,
            collectors: collectors.to_vec(),
            sample_ms,
            collector_cpus: collector_cpus.to_vec(),
        };
        let warnings = match self.call(&request)? {
            Reply::Hello { facts, warnings } => {
                self.facts = facts;
                warnings
            }
            other => return self.unexpected(other),
        };
        self.sync_clock()?;
        self.start_heartbeat()?;
        Ok(warnings)
    }

    /// The node's "now" is taken as the midpoint of the quickest of a few
    /// round trips: off by at most half of it (microseconds here, the
    /// link's latency across machines).
    fn sync_clock(&mut self) -> Result<(), String> {
        let mut best: Option<(f64, f64)> = None;
        for _ in 0..CLOCK_ROUND_TRIPS {
            let sent = self.epoch.elapsed().as_secs_f64();
            let now_s = match self.call(&Request::Clock)? {
                Reply::Clock { now_s } => now_s,
                other => return self.unexpected(other),
            };
            let received = self.epoch.elapsed().as_secs_f64();
            let (rtt, shift) = (received - sent, (sent + received) / 2.0 - now_s);
            if best.is_none_or(|(r, _)| rtt < r) {
                best = Some((rtt, shift));
            }
        }
        self.shift_s = best.map_or(0.0, |(_, shift)| shift);
        Ok(())
    }

    /// Brings a mode up: where its front door is, and its processes.
    pub fn up(&mut self, request: UpRequest) -> Result<(FrontDoor, Vec<ComponentInfo>), String> {
        match self.call(&Request::Up(Box::new(request)))? {
            Reply::Up { addr, host, components } => Ok((FrontDoor { addr, host }, components)),
            other => self.unexpected(other),
        }
    }

    /// Ends the open phase and begins `label`; the boundary's time (driver clock).
    pub fn enter(&mut self, label: &str, offered: Option<f64>) -> Result<f64, String> {
        self.mark(Request::Enter { label: label.into(), offered })
    }

    pub fn close(&mut self) -> Result<f64, String> {
        self.mark(Request::Close)
    }

    fn mark(&mut self, request: Request) -> Result<f64, String> {
        match self.call(&request)? {
            Reply::Mark { t_s } => Ok(t_s + self.shift_s),
            other => self.unexpected(other),
        }
    }

    /// Injects `fault` into the mode's process `target`.
    pub fn fault(&mut self, target: &str, fault: FaultAction) -> Result<(), String> {
        match self.call(&Request::Fault { target: target.into(), fault })? {
            Reply::Done => Ok(()),
            other => self.unexpected(other),
        }
    }

    /// Slots in use per SPRIGHT pool of the mode that is up.
    pub fn pool_slots(&mut self) -> Result<Vec<(String, u64)>, String> {
        match self.call(&Request::PoolSlots)? {
            Reply::PoolSlots { pools } => Ok(pools),
            other => self.unexpected(other),
        }
    }

    pub fn start_perf(&mut self) -> Result<(), String> {
        match self.call(&Request::StartPerf)? {
            Reply::Done => Ok(()),
            other => self.unexpected(other),
        }
    }

    /// Tears the mode down; what was collected, in the driver's clock.
    pub fn down(&mut self) -> Result<Collected, String> {
        let mut c = match self.call(&Request::Down)? {
            Reply::Down(c) => *c,
            other => return self.unexpected(other),
        };
        let shift = self.shift_s;
        for p in &mut c.phases {
            p.from_s += shift;
            p.to_s += shift;
        }
        c.processes.iter_mut().for_each(|r| r.time_s += shift);
        c.cpus.iter_mut().for_each(|r| r.time_s += shift);
        c.resources.iter_mut().for_each(|r| r.time_s += shift);
        Ok(c)
    }
}

/// Clock round trips at the start of a session.
const CLOCK_ROUND_TRIPS: usize = 8;

/// How often an otherwise silent driver says it is there (well within
/// the node's idle limit, [`super::server::IDLE_LIMIT`]).
const HEARTBEAT: Duration = Duration::from_secs(5);

/// How long a node may take to tear down after its session ends.
const TEARDOWN: Duration = Duration::from_secs(30);

impl Drop for Node {
    /// Ends the session (the node's input closes) and waits for the node to
    /// have torn everything down.
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.heartbeat.take() {
            drop(stop);
            let _ = thread.join();
        }
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(Link { mut input, output }) = link else { return };
        drop(output);
        if let Some(socket) = self.socket.take() {
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
        match self.peer.take() {
            Some(Peer::Thread(t)) => {
                let _ = t.join();
            }
            Some(Peer::Process(mut child)) => {
                let deadline = Instant::now() + TEARDOWN;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            None => {}
        }
        // What is left unread does not matter any more.
        let mut sink = Vec::new();
        let _ = input.read_to_end(&mut sink);
    }
}
