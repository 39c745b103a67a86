//! Emulated service time: the paper's workloads stand in for real work with
//! a fixed time per request (parking's detection takes 435 ms). Declared per
//! function in the chain file, scaled or re-moded from the CLI, applied by
//! the function runtime before the handler, and reported in the metrics.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// How the time is spent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMode {
    /// Sleep: the paper's choice; costs no CPU.
    #[default]
    Sleep,
    /// Busy-spin: costs a core for the duration.
    Spin,
}

impl ServiceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceMode::Sleep => "sleep",
            ServiceMode::Spin => "spin",
        }
    }
}

impl fmt::Display for ServiceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServiceMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sleep" => Ok(Self::Sleep),
            "spin" => Ok(Self::Spin),
            _ => Err(format!("unknown service-time mode {s:?} (expected sleep or spin)")),
        }
    }
}

/// A function's emulated service time, as the chain file declares it.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTime {
    pub ms: f64,
    #[serde(default)]
    pub mode: ServiceMode,
}

/// The CLI's override: scale every declared time, optionally force a mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceTimeOverride {
    pub scale: f64,
    pub mode: Option<ServiceMode>,
}

impl Default for ServiceTimeOverride {
    fn default() -> Self {
        Self { scale: 1.0, mode: None }
    }
}

impl ServiceTimeOverride {
    /// The time a function actually emulates.
    pub fn apply(&self, declared: Option<ServiceTime>) -> Option<ServiceTime> {
        let d = declared?;
        let ms = d.ms * self.scale;
        (ms > 0.0).then(|| ServiceTime { ms, mode: self.mode.unwrap_or(d.mode) })
    }
}

impl ServiceTime {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.ms / 1000.0)
    }

    /// Spends the time (sleeping or spinning).
    pub fn spend(&self) {
        let d = self.duration();
        match self.mode {
            ServiceMode::Sleep => std::thread::sleep(d),
            ServiceMode::Spin => {
                let start = Instant::now();
                while start.elapsed() < d {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_scales_and_remodes() {
        let declared = Some(ServiceTime { ms: 435.0, mode: ServiceMode::Sleep });
        assert_eq!(ServiceTimeOverride::default().apply(declared), declared);
        let o = ServiceTimeOverride { scale: 0.01, mode: Some(ServiceMode::Spin) };
        let t = o.apply(declared).unwrap();
        assert!((t.ms - 4.35).abs() < 1e-9 && t.mode == ServiceMode::Spin);
        assert_eq!(ServiceTimeOverride { scale: 0.0, mode: None }.apply(declared), None);
        assert_eq!(o.apply(None), None);
    }

    #[test]
    fn spin_and_sleep_take_the_time() {
        for mode in [ServiceMode::Sleep, ServiceMode::Spin] {
            let t = Instant::now();
            ServiceTime { ms: 5.0, mode }.spend();
            assert!(t.elapsed() >= Duration::from_millis(5));
        }
    }
}
