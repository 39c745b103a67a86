//! Experiment files (`harness/experiments/<name>.yaml`): which modes, which
//! collectors, and named load profiles (`local`, the default scaled for one
//! small machine, and `paper`, the paper's numbers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::deploy::{Mode, Workload};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentFile {
    pub name: String,
    pub workload: String,
    pub seed: u64,
    pub modes: Vec<String>,
    /// procfs (CPU, context switches), interrupts (hard and soft), ebpf (tracepoints).
    pub collectors: Vec<String>,
    /// How often the CPU sampler reads procfs.
    pub sample_ms: u64,
    pub profiles: BTreeMap<String, Profile>,
}

/// One load profile. Times are in seconds of wall-clock time.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// What this profile is and how it is scaled from the paper's.
    pub note: String,
    /// CPU measured with the deployment up and no load.
    pub idle_s: f64,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// Per-mode cap on `duration_s` (e.g. d-spright when its pollers
    /// outnumber the cores).
    #[serde(default)]
    pub max_duration_s: BTreeMap<String, f64>,
    pub load: Load,
    #[serde(default = "one")]
    pub service_time_scale: f64,
    /// `sleep` (the paper's) or `spin`; empty keeps each function's own.
    #[serde(default)]
    pub service_time_mode: String,
    #[serde(default)]
    pub pin: Pinning,
    /// The Knative model's scale-to-zero variant (mode `knative-stz`).
    #[serde(default)]
    pub knative: KnativeModel,
    /// The open-loop saturation search run by `--sweep`.
    #[serde(default)]
    pub sweep: Option<SweepSpec>,
    /// Faults under load (`harness chaos`), after the sweep.
    #[serde(default)]
    pub chaos: Option<ChaosSpec>,
}

/// Faults injected under open-loop load at a fraction of the saturation the
/// profile's sweep finds first (see `experiment::chaos`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosSpec {
    /// Offered load as a fraction of the mode's saturation.
    pub load_fraction: f64,
    /// Load before the first fault.
    pub lead_s: f64,
    /// How long each fault is watched after it ends (the next one follows).
    pub slot_s: f64,
    /// SIGSTOP of the front function for this long - past the chain's
    /// request timeout - then SIGCONT.
    pub stop_s: f64,
    /// A shorter SIGSTOP (under the timeout) in which requests pile up: at
    /// the chaos rate this exhausts a SPRIGHT chain's pool.
    pub stall_s: f64,
    /// The slowed function: `[running, stopped]` milliseconds in turn ...
    pub slow_duty_ms: [u64; 2],
    /// ... for this long.
    pub slow_s: f64,
    /// After the function faults the load stops for this long - past the
    /// chain's request timeout - and the pools' slots in use are read:
    /// anything still held then has leaked.
    pub quiesce_s: f64,
    /// Kill only the first N functions (all when absent).
    #[serde(default)]
    pub kill_functions: Option<usize>,
    /// A second counts as recovered when every request sent in it was
    /// answered without error within this.
    pub recovered_ms: f64,
}

/// How the Knative model's scale-to-zero variant behaves.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnativeModel {
    /// A function idle this long is stopped (scaled to zero).
    #[serde(default)]
    pub scale_to_zero_ms: Option<u64>,
    /// A cold start takes at least this long (the activator holds the
    /// request until then): what pod scheduling, container start and
    /// readiness cost real Knative, which a process spawn does not.
    #[serde(default)]
    pub cold_start_ms: Option<u64>,
}

/// The open-loop saturation search: Online Boutique mix tasks at one
/// offered rate per probe. The first probe, at `start_rate` and
/// `common_s` long, is the common rate every mode is compared at; then the
/// rate grows by `growth` until a probe fails (or shrinks until one
/// passes), and bisects between the highest pass and the lowest failure
/// until they are within `tolerance` (relative), or `max_search_s` is spent.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Tasks per second of the warm-up and of the common-rate probe.
    pub start_rate: f64,
    pub common_s: f64,
    pub step_s: f64,
    pub growth: f64,
    /// No probe above this rate (the load generator's own limit).
    pub max_rate: f64,
    pub tolerance: f64,
    /// Cap on the probes' total time, per mode.
    pub max_search_s: f64,
    /// `poisson` or `constant` inter-arrival times.
    pub arrivals: String,
    pub sessions: usize,
    /// A probe passes while p99 stays under this and errors under 1%.
    pub p99_bound_ms: f64,
}

fn one() -> f64 {
    1.0
}

/// CPUs for the load generator and for the system under test (empty: unpinned).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinning {
    #[serde(default)]
    pub load: Vec<usize>,
    #[serde(default)]
    pub system: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Load {
    /// Closed-loop goose users with the paper's Online Boutique behaviour.
    Users {
        /// Users per mode (`default` for modes not named).
        users: BTreeMap<String, usize>,
        /// Users started per second.
        increase_rate: f64,
        /// Think time between tasks, uniform in [min, max] milliseconds.
        think_ms: [u64; 2],
    },
    /// Motion events replayed open loop from the seeded synthetic trace
    /// (or `--trace FILE`), trace time divided by `compression`.
    MotionTrace {
        /// Length of the synthetic trace, in trace milliseconds.
        trace_ms: u64,
        sensors: usize,
        compression: f64,
    },
    /// Parking: `bursts` bursts of `size` concurrent uploads, `period_s` apart.
    ParkingBursts { bursts: usize, size: usize, period_s: f64, route2_share: f64 },
}

impl Load {
    pub fn users_for(&self, mode: Mode) -> usize {
        match self {
            Load::Users { users, .. } => users.get(mode.name()).or_else(|| users.get("default")).copied().unwrap_or(1),
            Load::MotionTrace { .. } | Load::ParkingBursts { .. } => 0,
        }
    }
}

impl ExperimentFile {
    pub fn path(name: &str) -> PathBuf {
        crate::workspace_dir().join("harness/experiments").join(format!("{name}.yaml"))
    }

    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: Self = serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        file.workload()?;
        file.modes()?;
        Ok(file)
    }

    pub fn workload(&self) -> Result<Workload, String> {
        self.workload.parse()
    }

    pub fn modes(&self) -> Result<Vec<Mode>, String> {
        self.modes.iter().map(|m| m.parse()).collect()
    }

    pub fn profile(&self, name: &str) -> Result<&Profile, String> {
        self.profiles.get(name).ok_or_else(|| {
            format!("experiment {} has no profile {name:?} (it has {:?})", self.name, self.profiles.keys().collect::<Vec<_>>())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_experiments_parse() {
        for name in ["boutique", "motion", "parking"] {
            let f = ExperimentFile::load(&ExperimentFile::path(name)).unwrap();
            for p in ["local", "paper"] {
                f.profile(p).unwrap();
            }
        }
    }
}
