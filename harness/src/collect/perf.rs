//! Software perf counters (context switches, CPU migrations) per process:
//! one counter per thread (kernel included, `exclude_kernel(false)`), with
//! `inherit` so threads started later count too, summed per process.

use std::collections::BTreeMap;

use perf_event::events::Software;
use perf_event::{Builder, Counter};

pub const EVENTS: [(&str, Software); 2] = [("context_switches", Software::CONTEXT_SWITCHES), ("cpu_migrations", Software::CPU_MIGRATIONS)];

pub struct PerfCounters {
    counters: Vec<(u32, &'static str, Counter)>,
}

impl PerfCounters {
    /// Opens and enables the counters for every thread of `pids`. A
    /// process that exits meanwhile is skipped; failing to open any
    /// counter at all (no perf events here) is an error.
    pub fn start(pids: &[u32]) -> Result<Self, String> {
        let mut counters = Vec::new();
        let mut last_error = None;
        for &pid in pids {
            for tid in testkit::proc::threads(pid) {
                for (name, event) in EVENTS {
                    let counter = Builder::new(event)
                        .observe_pid(tid as i32)
                        .any_cpu()
                        .exclude_kernel(false)
                        .exclude_hv(false)
                        .inherit(true)
                        .enabled(true)
                        .build();
                    match counter {
                        Ok(c) => counters.push((pid, name, c)),
                        Err(e) => last_error = Some(e),
                    }
                }
            }
        }
        match (counters.is_empty(), last_error) {
            (true, Some(e)) => Err(format!("perf_event_open: {e}")),
            _ => Ok(Self { counters }),
        }
    }

    /// Counts so far by (process, event).
    pub fn read(&mut self) -> BTreeMap<(u32, &'static str), u64> {
        let mut out = BTreeMap::new();
        for (pid, name, c) in &mut self.counters {
            *out.entry((*pid, *name)).or_default() += c.read().unwrap_or(0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_this_process_sleeping() {
        let mut p = PerfCounters::start(&[std::process::id()]).expect("software perf events");
        for _ in 0..20 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let counts = p.read();
        assert!(counts[&(std::process::id(), "context_switches")] >= 20, "{counts:?}");
    }
}
