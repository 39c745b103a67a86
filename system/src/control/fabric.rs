//! The transport-specific resources of a deployment: SPROXY with its
//! sockets, or the chains' ring segments and doorbells.

use std::collections::HashMap;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use crate::bpf::{BpfError, DropCounters, FnStats, Sproxy};
use crate::control::chain::ChainFile;
use crate::descriptor::{ChainId, Endpoint, FunctionId};
use crate::transport::eventring::{self, Doorbells};
use crate::transport::ring::{self, RingSegment};
use crate::transport::{skmsg, Link, TransportKind};

#[derive(Debug, thiserror::Error)]
pub enum FabricError {
    #[error(transparent)]
    Bpf(#[from] BpfError),
    #[error("{0}: {1}")]
    Io(&'static str, #[source] io::Error),
}

/// A connected loopback TCP pair: (endpoint's end, control plane's end).
/// The listener exists only while the pair is made; anyone else who
/// connects to it in that instant is accepted and dropped, never paired.
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let a = TcpStream::connect(l.local_addr()?)?;
    let ours = a.local_addr()?;
    loop {
        let (b, peer) = l.accept()?;
        if peer == ours {
            return Ok((a, b));
        }
    }
}

struct SkmsgSocket {
    port: u16,
    /// The control plane's end of the pair; kept so the endpoint's socket
    /// stays established (nothing is ever sent to it with a sink in place).
    _peer: TcpStream,
}

pub struct SkmsgFabric {
    sproxy: Mutex<Sproxy>,
    sockets: Mutex<HashMap<Endpoint, SkmsgSocket>>,
}

pub struct RingChain {
    pub segment: Arc<RingSegment>,
    pub bells: Option<Arc<Doorbells>>,
}

pub enum Fabric {
    Skmsg(Box<SkmsgFabric>),
    Rings { kind: TransportKind, chains: HashMap<ChainId, RingChain> },
}

impl Fabric {
    /// Sets up `kind` for every chain of `file`. For skmsg this loads SPROXY
    /// and allows every edge inside each chain (the chain is the trust
    /// domain), and none across chains. Returns the sink socket for skmsg.
    pub fn new(kind: TransportKind, file: &ChainFile) -> Result<(Self, Option<TcpStream>), FabricError> {
        match kind {
            TransportKind::Skmsg => {
                let mut sproxy = Sproxy::load()?;
                for (id, chain) in file.chains() {
                    let members: Vec<Endpoint> = std::iter::once(FunctionId::GATEWAY)
                        .chain(chain.functions.iter().map(|f| f.function_id()))
                        .map(|f| Endpoint::new(id, f))
                        .collect();
                    for &a in &members {
                        for &b in &members {
                            if a != b {
                                sproxy.allow(a, b)?;
                            }
                        }
                    }
                }
                let (sink, sink_peer) = loopback_pair().map_err(|e| FabricError::Io("sink socket", e))?;
                sproxy.register_sink(&sink)?;
                let fabric = SkmsgFabric { sproxy: Mutex::new(sproxy), sockets: Mutex::new(HashMap::new()) };
                fabric.sockets.lock().unwrap().insert(
                    Endpoint::from_key(crate::bpf::SINK_KEY),
                    SkmsgSocket { port: sink.local_addr().map(|a| a.port()).unwrap_or(0), _peer: sink_peer },
                );
                Ok((Fabric::Skmsg(Box::new(fabric)), Some(sink)))
            }
            TransportKind::Ring | TransportKind::Eventring => {
                let mut chains = HashMap::new();
                for (id, chain) in file.chains() {
                    let rings = chain.ring_count();
                    let segment =
                        Arc::new(RingSegment::create(id, rings, chain.pool.slots).map_err(|e| FabricError::Io("ring segment", e))?);
                    let bells = match kind {
                        TransportKind::Eventring => Some(Arc::new(Doorbells::create(rings).map_err(|e| FabricError::Io("eventfd", e))?)),
                        _ => None,
                    };
                    chains.insert(id, RingChain { segment, bells });
                }
                Ok((Fabric::Rings { kind, chains }, None))
            }
        }
    }

    fn ring_chain(&self, chain: ChainId) -> io::Result<&RingChain> {
        match self {
            Fabric::Rings { chains, .. } => chains.get(&chain).ok_or_else(|| io::Error::other(format!("no rings for chain {}", chain.0))),
            Fabric::Skmsg(_) => Err(io::Error::other("not a ring fabric")),
        }
    }

    /// Creates the registered socket of `endpoint` (skmsg), replacing an
    /// earlier one, and returns the endpoint's end.
    fn skmsg_socket(f: &SkmsgFabric, endpoint: Endpoint) -> Result<TcpStream, FabricError> {
        let (mine, peer) = loopback_pair().map_err(|e| FabricError::Io("endpoint socket", e))?;
        let port = mine.local_addr().map_err(|e| FabricError::Io("endpoint socket", e))?.port();
        let mut sproxy = f.sproxy.lock().unwrap();
        sproxy.register(endpoint, &mine)?;
        if let Some(old) = f.sockets.lock().unwrap().insert(endpoint, SkmsgSocket { port, _peer: peer }) {
            sproxy.forget_port(old.port);
        }
        Ok(mine)
    }

    /// The gateway's link for `chain`.
    pub fn gateway_link(&self, chain: ChainId) -> Result<Link, FabricError> {
        let me = Endpoint::gateway(chain);
        let link = match self {
            Fabric::Skmsg(f) => skmsg::link(Self::skmsg_socket(f, me)?.into()),
            Fabric::Rings { .. } => {
                let rc = self.ring_chain(chain).map_err(|e| FabricError::Io("gateway ring", e))?;
                match &rc.bells {
                    Some(bells) => eventring::link(rc.segment.clone(), bells.clone(), me),
                    None => ring::polling_link(rc.segment.clone(), me),
                }
            }
        };
        link.map_err(|e| FabricError::Io("gateway link", e))
    }

    /// The transport fds a function receives at registration (after its
    /// pool). For skmsg the socket is already in SPROXY's map.
    pub fn function_fds(&self, endpoint: Endpoint) -> Result<Vec<OwnedFd>, FabricError> {
        let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map_err(|e| FabricError::Io("dup", e));
        match self {
            Fabric::Skmsg(f) => Ok(vec![Self::skmsg_socket(f, endpoint)?.into()]),
            Fabric::Rings { .. } => {
                let rc = self.ring_chain(endpoint.chain).map_err(|e| FabricError::Io("rings", e))?;
                rc.segment.reopen(endpoint.function.0 as u32);
                let mut fds = vec![dup(rc.segment.fd())?];
                if let Some(bells) = &rc.bells {
                    for b in bells.fds() {
                        fds.push(dup(b.as_fd())?);
                    }
                }
                Ok(fds)
            }
        }
    }

    /// Cleans up after a function process is gone.
    pub fn function_gone(&self, endpoint: Endpoint) {
        match self {
            Fabric::Skmsg(f) => {
                // The kernel dropped the closed socket from the map already.
                if let Some(old) = f.sockets.lock().unwrap().remove(&endpoint) {
                    f.sproxy.lock().unwrap().forget_port(old.port);
                }
            }
            Fabric::Rings { .. } => {
                if let Ok(rc) = self.ring_chain(endpoint.chain) {
                    rc.segment.repair_consumer(endpoint.function.0 as u32);
                    match &rc.bells {
                        Some(bells) => crate::transport::eventring::repair_producer(&rc.segment, bells, endpoint.function),
                        None => rc.segment.repair_producer(endpoint.function),
                    };
                }
            }
        }
    }

    /// Whether descriptors on their way to a function die with its process
    /// (a socket's queue) rather than wait for its next instance (a ring).
    pub fn loses_in_transit(&self) -> bool {
        matches!(self, Fabric::Skmsg(_))
    }

    /// Whether a descriptor sent to `endpoint` now would be delivered.
    pub fn is_reachable(&self, endpoint: Endpoint) -> bool {
        match self {
            Fabric::Skmsg(f) => f.sproxy.lock().unwrap().is_registered(endpoint),
            Fabric::Rings { .. } => true,
        }
    }

    /// SPROXY counters (skmsg only).
    pub fn sproxy_stats(&self, endpoints: &[Endpoint]) -> Option<(Vec<(Endpoint, FnStats)>, DropCounters)> {
        match self {
            Fabric::Skmsg(f) => {
                let sp = f.sproxy.lock().unwrap();
                Some((endpoints.iter().map(|&e| (e, sp.stats(e))).collect(), sp.drops()))
            }
            Fabric::Rings { .. } => None,
        }
    }

    /// Cells of an endpoint's ring passed over after their producer died
    /// (rings only).
    pub fn ring_cells_skipped(&self, endpoint: Endpoint) -> Option<u64> {
        match self {
            Fabric::Rings { .. } => self.ring_chain(endpoint.chain).ok().map(|rc| rc.segment.skipped(endpoint.function.0 as u32)),
            Fabric::Skmsg(_) => None,
        }
    }

    /// Doorbells rung per endpoint (eventring only).
    pub fn wakeups(&self, endpoint: Endpoint) -> Option<u64> {
        match self {
            Fabric::Rings { kind: TransportKind::Eventring, .. } => {
                self.ring_chain(endpoint.chain).ok().map(|rc| rc.segment.wakeups(endpoint.function.0 as u32))
            }
            _ => None,
        }
    }
}
