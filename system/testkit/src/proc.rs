//! The project's one reader of `/proc`, through the `procfs` crate: CPU
//! time and context switches of a process, the process tree, command
//! lines, and the per-CPU time split of `/proc/stat`.
//!
//! `procfs` does not cover `/proc/interrupts` and `/proc/softirqs`; the
//! harness parses those two itself (`harness/src/collect/interrupts.rs`).

use procfs::process::Process;
use procfs::{CurrentSI, KernelStats};

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

fn ticks_per_second() -> f64 {
    procfs::ticks_per_second() as f64
}

/// User + system CPU seconds of a process (all its threads, living and
/// exited); None when it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = process(pid)?.stat().ok()?;
    Some((s.utime + s.stime) as f64 / ticks_per_second())
}

/// CPU seconds of a process, 0 when it is gone (for tests and benches that
/// subtract two readings of a process known to be alive).
pub fn cpu_seconds_or_zero(pid: u32) -> f64 {
    cpu_seconds(pid).unwrap_or(0.0)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ContextSwitches {
    pub voluntary: u64,
    pub involuntary: u64,
}

/// Context switches of every living thread of a process (the kernel keeps
/// them per thread: `/proc/PID/task/*/status`).
pub fn context_switches(pid: u32) -> Option<ContextSwitches> {
    let mut total = ContextSwitches::default();
    for task in process(pid)?.tasks().ok()?.flatten() {
        if let Ok(s) = task.status() {
            total.voluntary += s.voluntary_ctxt_switches.unwrap_or(0);
            total.involuntary += s.nonvoluntary_ctxt_switches.unwrap_or(0);
        }
    }
    Some(total)
}

/// Every process with its parent, from one scan of /proc.
pub fn parents() -> Vec<(u32, u32)> {
    let Ok(all) = procfs::process::all_processes() else { return Vec::new() };
    all.flatten().filter_map(|p| Some((u32::try_from(p.pid).ok()?, u32::try_from(p.stat().ok()?.ppid).ok()?))).collect()
}

/// The command name of `pid` (`comm`: for a kernel thread, its name; None when it is gone).
pub fn comm(pid: u32) -> Option<String> {
    Some(process(pid)?.stat().ok()?.comm)
}

/// The parent of `pid` (None when it is gone).
pub fn parent(pid: u32) -> Option<u32> {
    u32::try_from(process(pid)?.stat().ok()?.ppid).ok()
}

/// The direct children of `pid`, in pid order.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out: Vec<u32> = parents().into_iter().filter(|&(_, pp)| pp == pid).map(|(p, _)| p).collect();
    out.sort_unstable();
    out
}

/// `root` and its descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let parents = parents();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|&&(_, pp)| pp == p).map(|&(c, _)| c));
        i += 1;
    }
    tree
}

/// CPU seconds of a process and all its descendants.
pub fn tree_cpu_seconds(root: u32) -> f64 {
    process_tree(root).into_iter().map(cpu_seconds_or_zero).sum()
}

/// The thread ids of a process (empty when it is gone).
pub fn threads(pid: u32) -> Vec<u32> {
    let Some(p) = process(pid) else { return Vec::new() };
    p.tasks().map(|t| t.flatten().filter_map(|t| u32::try_from(t.tid).ok()).collect()).unwrap_or_default()
}

/// The model name of CPU 0 (`/proc/cpuinfo`).
pub fn cpu_model() -> Option<String> {
    use procfs::Current;
    procfs::CpuInfo::current().ok()?.model_name(0).map(str::to_string)
}

/// A process's command line (empty when it is gone).
pub fn cmdline(pid: u32) -> Vec<String> {
    process(pid).and_then(|p| p.cmdline().ok()).unwrap_or_default()
}

/// What one CPU has done since boot, in seconds (`/proc/stat`'s `cpuN` line).
/// `user` includes guest time, as the kernel reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CpuTimes {
    pub user: f64,
    pub nice: f64,
    pub system: f64,
    pub idle: f64,
    pub iowait: f64,
    pub irq: f64,
    pub softirq: f64,
    pub steal: f64,
}

impl CpuTimes {
    /// Time the CPU spent working for someone on this machine: user, nice,
    /// system, hard and soft interrupts. Idle, iowait and steal (time the
    /// hypervisor gave to someone else) are not.
    pub fn busy(&self) -> f64 {
        self.user + self.nice + self.system + self.irq + self.softirq
    }

    /// Componentwise `self - earlier`, clamped at 0 (iowait may decrease).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        let d = |a: f64, b: f64| (a - b).max(0.0);
        CpuTimes {
            user: d(self.user, earlier.user),
            nice: d(self.nice, earlier.nice),
            system: d(self.system, earlier.system),
            idle: d(self.idle, earlier.idle),
            iowait: d(self.iowait, earlier.iowait),
            irq: d(self.irq, earlier.irq),
            softirq: d(self.softirq, earlier.softirq),
            steal: d(self.steal, earlier.steal),
        }
    }
}

impl From<&procfs::CpuTime> for CpuTimes {
    fn from(c: &procfs::CpuTime) -> Self {
        let tps = ticks_per_second();
        let s = |ticks: u64| ticks as f64 / tps;
        let o = |ticks: Option<u64>| s(ticks.unwrap_or(0));
        CpuTimes {
            user: s(c.user),
            nice: s(c.nice),
            system: s(c.system),
            idle: s(c.idle),
            iowait: o(c.iowait),
            irq: o(c.irq),
            softirq: o(c.softirq),
            steal: o(c.steal),
        }
    }
}

/// Per-CPU times from `/proc/stat`, indexed by CPU number (empty when unreadable).
pub fn cpu_times() -> Vec<CpuTimes> {
    KernelStats::current().map(|k| k.cpu_time.iter().map(CpuTimes::from).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_readable() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(context_switches(me).is_some_and(|c| c.voluntary + c.involuntary > 0));
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() } as u32;
        assert!(children_of(parent).contains(&me));
        assert_eq!(super::parent(me), Some(parent));
        assert_eq!(comm(2).as_deref(), Some("kthreadd"));
        assert!(process_tree(parent).contains(&me));
        assert!(!cmdline(me).is_empty());
        assert!(threads(me).contains(&me), "the main thread's id is the pid");
        assert!(cpu_model().is_some());
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn cpu_times_cover_every_cpu_and_grow() {
        let before = cpu_times();
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        assert!(before.len() >= n, "{} CPUs in /proc/stat, {n} available", before.len());
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = cpu_times();
        let busy: f64 = after.iter().zip(&before).map(|(a, b)| a.since(b).busy()).sum();
        // Behaviour, not timing: a spinning thread shows up as busy time somewhere.
        assert!(busy > 0.0, "busy {busy}");
    }

    #[test]
    fn busy_excludes_idle_iowait_and_steal() {
        let t = CpuTimes { user: 1.0, nice: 2.0, system: 3.0, idle: 100.0, iowait: 5.0, irq: 0.5, softirq: 0.25, steal: 7.0 };
        assert_eq!(t.busy(), 6.75);
        let later = CpuTimes { iowait: 4.0, ..t };
        assert_eq!(later.since(&t).iowait, 0.0);
    }
}
