//! The function process: register, map, receive, handle, forward.

use std::collections::HashSet;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};

use super::{Action, Handler, Registry};
use crate::control::chain::{ChainFile, ChainFileError};
use crate::control::registration::{Hello, Welcome};
use crate::descriptor::{Descriptor, Endpoint, FunctionId};
use crate::pool::{Lease, Pool, PoolError};
use crate::service_time::ServiceTime;
use crate::transport::eventring::{self, Doorbells};
use crate::transport::ring::{self, RingSegment};
use crate::transport::{skmsg, DescriptorRx, DescriptorTx, Link, TransportError, TransportKind};
use crate::txn::Txn;

/// How the control plane starts a function (`spright function ...`).
#[derive(Clone, Debug)]
pub struct FunctionArgs {
    pub chain_file: PathBuf,
    pub chain: String,
    pub function: u16,
    pub control: String,
    /// How long to keep trying while the control socket is not there yet
    /// (a container started before its pod's gateway); zero: fail at once.
    pub wait_for_control: std::time::Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    #[error(transparent)]
    ChainFile(#[from] ChainFileError),
    #[error("chain {0:?} is not in the chain file")]
    UnknownChain(String),
    #[error("chain {chain:?} has no function {function}")]
    UnknownFunction { chain: String, function: u16 },
    #[error("handler {name:?} is not in this binary (it has: {available})")]
    UnknownHandler { name: String, available: String },
    #[error("registration with the control plane at {path}: {source}")]
    Registration { path: String, source: std::io::Error },
    #[error("the control plane sent {0} fds, fewer than the transport needs")]
    MissingFds(usize),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
}

/// Everything a worker needs to process one descriptor.
struct Worker {
    pool: Pool,
    tx: Arc<dyn DescriptorTx>,
    handler: Arc<dyn Handler>,
    me: Endpoint,
    /// Our registration: the holder name of the slots we take.
    lease: Lease,
    name: String,
    chain_functions: HashSet<u16>,
    /// Emulated service time, spent before the handler runs.
    service_time: Option<ServiceTime>,
}

impl Worker {
    fn process(&self, d: Descriptor) {
        // Taking the slot checks the descriptor; refusals are counted in the
        // pool header and the slot is never touched.
        let Ok(slot) = self.pool.take(&d, self.lease) else {
            return;
        };
        // Taken by us: ours until we hand it over.
        let buf = self.pool.payload(slot);
        if let Some(st) = &self.service_time {
            st.spend();
        }
        let next = match Txn::open(buf) {
            Ok(mut txn) => {
                let next = match catch_unwind(AssertUnwindSafe(|| self.handler.handle(&mut txn))) {
                    Ok(Action::Reply) => FunctionId::GATEWAY,
                    Ok(Action::Next) => txn.advance().unwrap_or(FunctionId::GATEWAY),
                    Ok(Action::Call(f)) if self.chain_functions.contains(&f.0) => f,
                    Ok(Action::Call(f)) => {
                        txn.set_error(500, &format!("function {} called function {}, which its chain does not define", self.name, f));
                        FunctionId::GATEWAY
                    }
                    Err(_) => {
                        txn.set_error(500, &format!("function {} failed on this request", self.name));
                        FunctionId::GATEWAY
                    }
                };
                if next == FunctionId::GATEWAY && txn.header().status == 0 {
                    txn.set_error(500, &format!("function {} replied without a response", self.name));
                }
                next
            }
            // Not a transaction: hand it back so the gateway frees the slot.
            Err(_) => FunctionId::GATEWAY,
        };
        let dst = Endpoint::new(self.me.chain, next);
        if !self.pool.hand_over(slot, self.lease, next) {
            // Recalled by the control plane (it believes us gone): not ours.
            return;
        }
        if let Err(e) = self.tx.send(&Descriptor::new(dst, slot.index, slot.gen)) {
            eprintln!("spright function {}: cannot send to {dst}: {e}", self.name);
            // The descriptor never left: unless the control plane recalled
            // the slot meanwhile, give the request back to the gateway
            // rather than strand it.
            if !self.pool.take_back(slot, next, self.lease) {
                return;
            }
            if let Ok(mut txn) = Txn::open(self.pool.payload(slot)) {
                txn.set_error(502, &format!("function {} could not reach function {}", self.name, next));
            }
            let gw = Endpoint::gateway(self.me.chain);
            if self.pool.hand_over(slot, self.lease, gw.function) {
                let _ = self.tx.send(&Descriptor::new(gw, slot.index, slot.gen));
            }
        }
    }
}

/// Runs a function process until the control plane goes away.
/// Connects to the control socket, retrying while nobody listens on it yet
/// (refused or, for a path, missing) until `wait` has passed.
fn connect_control(addr: &str, wait: std::time::Duration) -> std::io::Result<std::os::unix::net::UnixStream> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match crate::sys::unix_connect(addr) {
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            r => return r,
        }
    }
}

/// The next batch; false once the control plane closed our link (it is
/// shutting down: a normal end, not a failure).
fn receive(rx: &mut dyn DescriptorRx, batch: &mut Vec<Descriptor>) -> Result<bool, SdkError> {
    match rx.recv(batch) {
        Err(TransportError::Closed) => Ok(false),
        r => r.map(|()| true).map_err(SdkError::from),
    }
}

pub fn serve_function(registry: &Registry, args: &FunctionArgs) -> Result<(), SdkError> {
    let file = ChainFile::load(&args.chain_file)?;
    let (_, chain) = file.chain_by_name(&args.chain).ok_or_else(|| SdkError::UnknownChain(args.chain.clone()))?;
    let spec = chain
        .function(FunctionId(args.function))
        .ok_or_else(|| SdkError::UnknownFunction { chain: args.chain.clone(), function: args.function })?;
    let handler = registry.get(&spec.handler).ok_or_else(|| SdkError::UnknownHandler {
        name: spec.handler.clone(),
        available: registry.names().collect::<Vec<_>>().join(", "),
    })?;

    let reg_err = |source| SdkError::Registration { path: args.control.clone(), source };
    let control = connect_control(&args.control, args.wait_for_control).map_err(reg_err)?;
    Hello { chain: args.chain.clone(), function: args.function, pid: std::process::id() }.send(&control).map_err(reg_err)?;
    let welcome = Welcome::recv(&control).map_err(reg_err)?;
    let me = Endpoint::new(welcome.chain, FunctionId(args.function));
    let service_time = welcome.service_time;
    let nfds = welcome.fds.len();
    let mut fds = welcome.fds.into_iter();
    let mut next_fd = || fds.next().ok_or(SdkError::MissingFds(nfds));
    let pool = Pool::open(next_fd()?)?;
    let Link { tx, mut rx, closer } = match welcome.transport {
        TransportKind::Skmsg => skmsg::link(next_fd()?).map_err(TransportError::from)?,
        TransportKind::Ring => {
            ring::polling_link(Arc::new(RingSegment::open(next_fd()?).map_err(TransportError::from)?), me).map_err(TransportError::from)?
        }
        TransportKind::Eventring => {
            let seg = Arc::new(RingSegment::open(next_fd()?).map_err(TransportError::from)?);
            let bells = Doorbells::from_fds(fds.by_ref().collect());
            eventring::link(seg, Arc::new(bells), me).map_err(TransportError::from)?
        }
    };

    // The registration connection doubles as a liveness link: when the
    // control plane goes away, so do we.
    std::thread::Builder::new()
        .name("control-watch".into())
        .spawn(move || {
            let mut b = [0u8; 64];
            while matches!((&control).read(&mut b), Ok(n) if n > 0) {}
            closer.close();
            std::process::exit(0);
        })
        .expect("spawn control watcher");

    let worker = Arc::new(Worker {
        pool,
        tx,
        handler,
        me,
        lease: welcome.lease,
        name: spec.name.clone(),
        chain_functions: chain.functions.iter().map(|f| f.id).collect(),
        service_time,
    });
    let mut batch = Vec::with_capacity(64);
    if spec.threads == 1 {
        // One thread: handle inline in the receive loop (no hand-off).
        loop {
            batch.clear();
            if !receive(&mut *rx, &mut batch)? {
                return Ok(());
            }
            for d in batch.drain(..) {
                worker.process(d);
            }
        }
    }
    let (work_tx, work_rx) = mpsc::sync_channel::<Descriptor>(worker.pool.slot_count() as usize);
    let work_rx = Arc::new(Mutex::new(work_rx));
    for i in 0..spec.threads {
        let (worker, work_rx) = (worker.clone(), work_rx.clone());
        std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || loop {
                let next = work_rx.lock().expect("work queue").recv();
                match next {
                    Ok(d) => worker.process(d),
                    Err(_) => return,
                }
            })
            .expect("spawn worker");
    }
    loop {
        batch.clear();
        if !receive(&mut *rx, &mut batch)? {
            return Ok(());
        }
        for d in batch.drain(..) {
            if work_tx.send(d).is_err() {
                return Ok(());
            }
        }
    }
}
