//! The node protocol: one JSON object per line each way, a reply for every
//! request, in order. Times a node reports are seconds since its session
//! began ([`Request::Clock`] lets the driver map them onto its own clock).

use std::io::{BufRead, Write};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::collect::resources::ResourceRow;
use crate::collect::sampler::{CpuRow, CpuStatRow};
pub use crate::deploy::Target;
pub use crate::experiment::chaos::FaultAction;
use crate::results::{ComponentInfo, CounterRow, Phase};

/// The bumped version of an incompatible change; a node refuses another.
pub const VERSION: u32 = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Opens the session: which collectors run and where the node's own
    /// threads (sampler, eBPF reader) may run - off the system's CPUs.
    Hello { version: u32, collectors: Vec<String>, sample_ms: u64, collector_cpus: Vec<usize> },
    /// The node's clock, now: what the driver maps the node's times with.
    Clock,
    /// Brings `workload` up in `mode` and starts sampling it.
    Up(Box<UpRequest>),
    /// Ends the open phase (if any) and begins `label`: a sample of every collector.
    Enter { label: String, offered: Option<f64> },
    /// Ends the open phase.
    Close,
    /// Opens perf counters on every thread of the system under test.
    StartPerf,
    /// Injects a fault into the process named `target` (a component of the
    /// mode that is up, found by name under its current pid).
    Fault { target: String, fault: FaultAction },
    /// Slots in use in each SPRIGHT pool of the mode, read from the pools
    /// themselves (none for the other modes).
    PoolSlots,
    /// Stops sampling, tears the deployment down, returns what was collected.
    Down,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UpRequest {
    pub mode: String,
    pub workload: String,
    /// The front door's address (port 0: any free one).
    pub listen: SocketAddr,
    /// Rows are labelled with the repeat and the mode's name.
    pub repeat: usize,
    pub service_time_scale: f64,
    pub service_time_mode: Option<String>,
    pub scale_to_zero_ms: Option<u64>,
    pub cold_start_ms: Option<u64>,
    /// CPUs every process of the deployment runs on (empty: unpinned).
    pub cpus: Vec<usize>,
    /// Where the mode runs: processes the node starts, or the Kubernetes
    /// cluster's pods (the address's port is then the Service's node port).
    pub target: Target,
    /// A soak: sample every process's memory, descriptors and BPF map
    /// entries, and the runtime's pool slots in use, this often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_ms: Option<u64>,
}

/// The machine a node runs on, as the manifest records it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeFacts {
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpu_accounting: String,
    /// Cores and allowed CPUs as found before the node pins its own threads.
    pub cores: usize,
    pub allowed_cpus: Vec<usize>,
    pub root: bool,
    pub bpf: String,
    /// The node's build: `release` or `debug`.
    pub build_profile: String,
}

/// What a mode left on the node, times in the node's clock.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Collected {
    pub phases: Vec<Phase>,
    pub counters: Vec<CounterRow>,
    pub processes: Vec<CpuRow>,
    pub cpus: Vec<CpuStatRow>,
    /// Every process of the system under test the node saw, cold starts included.
    pub components: Vec<ComponentInfo>,
    /// With [`UpRequest::resources_ms`]: every process at every sample.
    #[serde(default)]
    pub resources: Vec<ResourceRow>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Hello {
        facts: NodeFacts,
        warnings: Vec<String>,
    },
    Clock {
        now_s: f64,
    },
    Up {
        addr: SocketAddr,
        /// The Host header the front door routes by (Knative on the cluster).
        host: Option<String>,
        components: Vec<ComponentInfo>,
    },
    /// The boundary's time.
    Mark {
        t_s: f64,
    },
    Done,
    /// `(pool, slots in use)` per SPRIGHT pool.
    PoolSlots {
        pools: Vec<(String, u64)>,
    },
    Down(Box<Collected>),
    Error {
        message: String,
    },
}

/// Writes one message as a line and flushes it.
// The harness's own protocol, not a message of the system under test: the
// runtimes' counting wrappers (clippy.toml) are not for it.
#[allow(clippy::disallowed_methods)]
pub fn send<T: Serialize>(out: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Reads one message: `Ok(None)` at the end of the input, `Ok(Some(Err))`
/// for a line that is not a message (the link is still good), `Err` when
/// the link failed.
#[allow(clippy::disallowed_methods)]
pub fn receive<T: for<'de> Deserialize<'de>>(input: &mut impl BufRead) -> std::io::Result<Option<Result<T, String>>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    Ok(Some(serde_json::from_str(&line).map_err(|e| format!("not a message of the node protocol ({e}): {:.200}", line.trim_end()))))
}
