//! SPROXY: the sk_msg program and its maps.

use std::net::TcpStream;
use std::os::fd::AsRawFd;

use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues, SockHash};
use aya::programs::SkMsg;
use aya::Ebpf;

use super::{sum, BpfError, SPROXY_OBJECT};
use crate::descriptor::Endpoint;

/// Key of the sink socket in the `endpoints` map (spright_common.h).
pub const SINK_KEY: u32 = u32::MAX;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Edge {
    src: u32,
    dst: u32,
}

/// Per-endpoint traffic counted by SPROXY.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FnStats {
    pub tx_msgs: u64,
    pub tx_bytes: u64,
    pub rx_msgs: u64,
    pub rx_bytes: u64,
}

// SAFETY: plain-old-data, #[repr(C)], no padding.
unsafe impl aya::Pod for Edge {}
unsafe impl aya::Pod for FnStats {}

/// Descriptors SPROXY refused, by reason (redirected to the sink).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters {
    pub bad_length: u64,
    pub bad_magic: u64,
    pub unknown_sender: u64,
    pub edge_denied: u64,
    pub no_route: u64,
}

impl DropCounters {
    pub fn total(&self) -> u64 {
        self.bad_length + self.bad_magic + self.unknown_sender + self.edge_denied + self.no_route
    }

    pub fn by_reason(&self) -> [(&'static str, u64); 5] {
        [
            ("bad_length", self.bad_length),
            ("bad_magic", self.bad_magic),
            ("unknown_sender", self.unknown_sender),
            ("edge_denied", self.edge_denied),
            ("no_route", self.no_route),
        ]
    }
}

/// The loaded SPROXY. Dropping it detaches the program and frees the maps;
/// sockets still in the map are released by the kernel.
pub struct Sproxy {
    endpoints: SockHash<MapData, u32>,
    sender_ports: HashMap<MapData, u32, u32>,
    edges: HashMap<MapData, Edge, u8>,
    fn_stats: PerCpuHashMap<MapData, u32, FnStats>,
    drops: PerCpuArray<MapData, u64>,
    nr_cpus: usize,
    // Owns the program and its attachment; declared last so maps drop first.
    _ebpf: Ebpf,
}

impl Sproxy {
    /// Loads, verifies and attaches SPROXY to a fresh socket map.
    pub fn load() -> Result<Self, BpfError> {
        let mut ebpf = Ebpf::load(SPROXY_OBJECT).map_err(|e| BpfError::from_display("load SPROXY object", e))?;
        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(BpfError::Kernel { what: "SPROXY map", detail: format!("{name} missing from object") })
        };
        let endpoints: SockHash<MapData, u32> =
            take(&mut ebpf, "endpoints")?.try_into().map_err(|e| BpfError::from_display("endpoints map", e))?;
        let sender_ports = take(&mut ebpf, "sender_ports")?.try_into().map_err(|e| BpfError::from_display("sender_ports map", e))?;
        let edges = take(&mut ebpf, "edges")?.try_into().map_err(|e| BpfError::from_display("edges map", e))?;
        let fn_stats = take(&mut ebpf, "fn_stats")?.try_into().map_err(|e| BpfError::from_display("fn_stats map", e))?;
        let drops = take(&mut ebpf, "sproxy_drops")?.try_into().map_err(|e| BpfError::from_display("drops map", e))?;
        {
            let prog: &mut SkMsg = ebpf
                .program_mut("sproxy")
                .ok_or(BpfError::Kernel { what: "SPROXY program", detail: "sproxy missing from object".into() })?
                .try_into()
                .map_err(|e| BpfError::from_display("SPROXY program type", e))?;
            prog.load().map_err(|e| BpfError::from_display("verify SPROXY", e))?;
            // Attach before any socket enters the map.
            prog.attach(endpoints.fd()).map_err(|e| BpfError::from_display("attach SPROXY", e))?;
        }
        let nr_cpus = aya::util::nr_cpus().map_err(|(_, e)| BpfError::from_display("count CPUs", e))?;
        Ok(Self { endpoints, sender_ports, edges, fn_stats, drops, nr_cpus, _ebpf: ebpf })
    }

    /// Puts `sock` in the map as `endpoint` and records its local port as the
    /// sender identity. Replaces an earlier registration of the endpoint.
    pub fn register(&mut self, endpoint: Endpoint, sock: &TcpStream) -> Result<(), BpfError> {
        self.register_key(endpoint.key(), sock)?;
        if self.fn_stats.get(&endpoint.key(), 0).is_err() {
            let zero =
                PerCpuValues::try_from(vec![FnStats::default(); self.nr_cpus]).map_err(|e| BpfError::from_display("fn_stats values", e))?;
            self.fn_stats.insert(endpoint.key(), zero, 0).map_err(|e| BpfError::from_display("fn_stats insert", e))?;
        }
        Ok(())
    }

    /// Registers the control plane's sink socket, where refused descriptors go.
    pub fn register_sink(&mut self, sock: &TcpStream) -> Result<(), BpfError> {
        self.register_key(SINK_KEY, sock)
    }

    fn register_key(&mut self, key: u32, sock: &TcpStream) -> Result<(), BpfError> {
        let port = sock.local_addr().map_err(|e| BpfError::from_display("socket address", e))?.port() as u32;
        self.sender_ports.insert(port, key, 0).map_err(|e| BpfError::from_display("sender_ports insert", e))?;
        self.endpoints.insert(key, sock.as_raw_fd(), 0).map_err(|e| BpfError::from_display("endpoints insert", e))?;
        Ok(())
    }

    /// Forgets a sender port (its socket is gone; the kernel already
    /// removed the socket from the map when it closed).
    pub fn forget_port(&mut self, port: u16) {
        let _ = self.sender_ports.remove(&(port as u32));
    }

    /// Whether `endpoint` has a live socket in the map. Walks the keys: the
    /// kernel answers a userspace lookup in a SOCKHASH only for 8-byte
    /// values (it returns the socket cookie), and ours hold a 4-byte fd, so
    /// a lookup fails (ENOSPC) whether the socket is there or not.
    pub fn is_registered(&self, endpoint: Endpoint) -> bool {
        let key = endpoint.key();
        self.endpoints.keys().any(|k| k.is_ok_and(|k| k == key))
    }

    /// Allows descriptors from `src` to `dst`.
    pub fn allow(&mut self, src: Endpoint, dst: Endpoint) -> Result<(), BpfError> {
        self.edges.insert(Edge { src: src.key(), dst: dst.key() }, 1, 0).map_err(|e| BpfError::from_display("edges insert", e))
    }

    /// Traffic through SPROXY for `endpoint` (summed over CPUs).
    pub fn stats(&self, endpoint: Endpoint) -> FnStats {
        match self.fn_stats.get(&endpoint.key(), 0) {
            Ok(vals) => FnStats {
                tx_msgs: sum(vals.iter(), |v| v.tx_msgs),
                tx_bytes: sum(vals.iter(), |v| v.tx_bytes),
                rx_msgs: sum(vals.iter(), |v| v.rx_msgs),
                rx_bytes: sum(vals.iter(), |v| v.rx_bytes),
            },
            Err(_) => FnStats::default(),
        }
    }

    /// Refused descriptors by reason (summed over CPUs).
    pub fn drops(&self) -> DropCounters {
        let get = |i: u32| self.drops.get(&i, 0).map(|v| sum(v.iter(), |x| *x)).unwrap_or(0);
        DropCounters { bad_length: get(0), bad_magic: get(1), unknown_sender: get(2), edge_denied: get(3), no_route: get(4) }
    }
}
