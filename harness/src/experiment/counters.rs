//! Counters read at every phase boundary, and the rows their differences
//! become: interrupts and softirqs per CPU, eBPF events, perf counters and
//! the runtimes' (de)serializations per component group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::collect::attribution::Registry;
use crate::collect::ebpf::{self, AuditProbe};
use crate::collect::interrupts;
use crate::collect::perf::PerfCounters;
use crate::results::CounterRow;

/// What the counters are read from; shared by every phase of a mode.
pub struct Collectors {
    pub audit: Option<std::sync::Arc<AuditProbe>>,
    pub perf: Option<PerfCounters>,
    /// Shared-memory directory of the runtimes' (de)serialization counters.
    pub wire_dir: Option<PathBuf>,
    pub registry: Registry,
}

/// Every counter at one instant.
pub struct Snapshot {
    irq: interrupts::Counts,
    soft: interrupts::Counts,
    audit: Option<ebpf::Snapshot>,
    oncpu: Option<ebpf::OnCpu>,
    /// Events the eBPF collector could not record so far (a map was full).
    /// An unreadable counter reads as lost: never as "nothing lost".
    audit_lost: Option<u64>,
    perf: Option<BTreeMap<(u32, &'static str), u64>>,
    /// (serializations, deserializations) per process, as the runtimes count them.
    wire: BTreeMap<u32, (u64, u64)>,
}

impl Snapshot {
    pub fn read(c: &mut Collectors) -> Self {
        Self {
            irq: interrupts::read_interrupts(),
            soft: interrupts::read_softirqs(),
            audit: c.audit.as_deref().map(AuditProbe::snapshot),
            oncpu: c.audit.as_deref().map(AuditProbe::oncpu_per_cpu),
            audit_lost: c.audit.as_deref().map(|a| a.lost().unwrap_or(u64::MAX)),
            perf: c.perf.as_mut().map(PerfCounters::read),
            wire: c.wire_dir.as_deref().map(read_wire_counts).unwrap_or_default(),
        }
    }
}

/// Every process's counter file in a wire-count directory (`spright::wire`).
fn read_wire_counts(dir: &Path) -> BTreeMap<u32, (u64, u64)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, spright::wire::read_counter_file(&e.path())?)))
        .collect()
}

/// The counter row of events the eBPF collector lost in a phase (source
/// `ebpf`, scope `probe`); absent when none were.
pub const LOST_EVENTS: &str = "lost_events";

/// Where a row belongs.
pub struct RowKey<'a> {
    pub repeat: usize,
    pub mode: &'a str,
    pub phase: &'a str,
}

/// The kernel threads that run softirq work deferred from interrupt
/// context - on loopback, the system's own network processing.
fn ksoftirqd(pid: u32) -> bool {
    testkit::proc::comm(pid).is_some_and(|c| c.starts_with("ksoftirqd/"))
}

/// What changed between `start` and `end`, as rows of one phase. Processes
/// are grouped by the registry; `forks` (child -> parent, from the eBPF
/// collector) attributes those that exited before any sample saw them.
///
/// With the eBPF collector, per CPU: `ksoftirqd_oncpu_ns`, the on-CPU time
/// of ksoftirqd (network work deferred from interrupts: the system's), and
/// `background_oncpu_ns`, that of every other process outside the run -
/// the machine's own agents and kernel threads (memory monitors, RCU,
/// workqueues): what the CPUs' busy time holds that is not the system's.
pub fn rows(key: &RowKey, start: &Snapshot, end: &Snapshot, registry: &Registry, forks: &BTreeMap<u32, u32>) -> Vec<CounterRow> {
    let row = |source: &str, scope: &str, name: &str, value: u64| CounterRow {
        repeat: key.repeat,
        mode: key.mode.into(),
        phase: key.phase.into(),
        source: source.into(),
        scope: scope.into(),
        name: name.into(),
        value: value as f64,
    };
    let mut groups: BTreeMap<u32, String> = BTreeMap::new();
    let mut group_of = |pid: u32| groups.entry(pid).or_insert_with(|| registry.group_of(pid, forks)).clone();
    let mut out = Vec::new();
    for (source, delta) in [("irq", interrupts::delta(&start.irq, &end.irq)), ("softirq", interrupts::delta(&start.soft, &end.soft))] {
        for (name, per_cpu) in delta {
            out.extend(per_cpu.iter().enumerate().filter(|(_, v)| **v > 0).map(|(cpu, &v)| row(source, &format!("cpu{cpu}"), &name, v)));
        }
    }
    let mut wire: BTreeMap<(String, &str), u64> = BTreeMap::new();
    for (&pid, &(s1, d1)) in &end.wire {
        let (s0, d0) = start.wire.get(&pid).copied().unwrap_or((0, 0));
        let g = group_of(pid);
        *wire.entry((g.clone(), "serializations")).or_default() += s1.saturating_sub(s0);
        *wire.entry((g, "deserializations")).or_default() += d1.saturating_sub(d0);
    }
    out.extend(wire.into_iter().map(|((group, name), v)| row("runtime", &group, name, v)));
    if let (Some(p0), Some(p1)) = (&start.perf, &end.perf) {
        let mut by_group: BTreeMap<(String, &str), u64> = BTreeMap::new();
        for (&(pid, event), &v1) in p1 {
            *by_group.entry((group_of(pid), event)).or_default() += v1.saturating_sub(p0.get(&(pid, event)).copied().unwrap_or(0));
        }
        out.extend(by_group.into_iter().map(|((group, event), v)| row("perf", &group, event, v)));
    }
    if let (Some(c0), Some(c1)) = (&start.oncpu, &end.oncpu) {
        // Per CPU: the on-CPU time of processes outside the run (0: idle).
        let mut outside: BTreeMap<(usize, &str), u64> = BTreeMap::new();
        for (&pid, ns) in c1.iter().filter(|(&pid, _)| pid != 0) {
            let name = if group_of(pid) != "other" {
                continue;
            } else if ksoftirqd(pid) {
                "ksoftirqd_oncpu_ns"
            } else {
                "background_oncpu_ns"
            };
            let before = c0.get(&pid);
            for (cpu, &v) in ns.iter().enumerate() {
                let d = v.saturating_sub(before.and_then(|b| b.get(cpu)).copied().unwrap_or(0));
                if d > 0 {
                    *outside.entry((cpu, name)).or_default() += d;
                }
            }
        }
        out.extend(outside.into_iter().map(|((cpu, name), v)| row("ebpf", &format!("cpu{cpu}"), name, v)));
    }
    if let (Some(l0), Some(l1)) = (start.audit_lost, end.audit_lost) {
        if l1 != l0 || l1 == u64::MAX {
            out.push(row("ebpf", "probe", LOST_EVENTS, l1.saturating_sub(l0).max(1)));
        }
    }
    if let (Some(a0), Some(a1)) = (&start.audit, &end.audit) {
        let mut by_group: BTreeMap<(String, &str), (u64, u64)> = BTreeMap::new();
        for ((tgid, event), (count, bytes)) in ebpf::delta(a0, a1) {
            let e = by_group.entry((group_of(tgid), event)).or_default();
            e.0 += count;
            e.1 += bytes;
        }
        for ((group, event), (count, bytes)) in by_group {
            out.push(row("ebpf", &group, event, count));
            out.push(row("ebpf", &group, &ebpf::value_name(event), bytes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_outside_the_run_are_background_on_their_cpus_but_ksoftirqd() {
        let ksoftirqd = (3..100_000).find(|&p| super::ksoftirqd(p)).expect("a ksoftirqd thread");
        let registry = Registry::new([(10, "gateway".to_string(), "gateway".to_string())], 99);
        let with = |oncpu: ebpf::OnCpu| Snapshot { oncpu: Some(oncpu), ..snap(0, &[]) };
        // pid 1 (init: not ours), 2 (kthreadd), ksoftirqd, 10 (ours), 0 (idle).
        let a = with([(1, vec![100, 0]), (2, vec![7, 0]), (ksoftirqd, vec![1, 1]), (10, vec![5, 0])].into());
        let b = with([(1, vec![300, 40]), (2, vec![70, 0]), (ksoftirqd, vec![11, 1]), (10, vec![50, 0]), (0, vec![9_000, 9_000])].into());
        let rows = rows(&RowKey { repeat: 0, mode: "m", phase: "measure" }, &a, &b, &registry, &BTreeMap::new());
        let of =
            |name: &str| -> Vec<(String, f64)> { rows.iter().filter(|r| r.name == name).map(|r| (r.scope.clone(), r.value)).collect() };
        assert_eq!(of("background_oncpu_ns"), vec![("cpu0".to_string(), 263.0), ("cpu1".to_string(), 40.0)]);
        assert_eq!(of("ksoftirqd_oncpu_ns"), vec![("cpu0".to_string(), 10.0)]);
    }

    fn snap(irq_cpu0: u64, wire: &[(u32, (u64, u64))]) -> Snapshot {
        Snapshot {
            irq: [("LOC Local timer interrupts".to_string(), vec![irq_cpu0, 7])].into(),
            soft: BTreeMap::new(),
            audit: None,
            oncpu: None,
            audit_lost: None,
            perf: None,
            wire: wire.iter().copied().collect(),
        }
    }

    #[test]
    fn interrupts_per_cpu_and_wire_counts_per_group() {
        let registry = Registry::new([(10, "gateway".to_string(), "gateway".to_string()), (11, "fn1".into(), "function".into())], 1);
        let a = snap(100, &[(10, (5, 5)), (11, (1, 1))]);
        // 12: a function started (and gone) during the phase, forked by the gateway.
        let b = snap(130, &[(10, (7, 8)), (11, (2, 2)), (12, (4, 4))]);
        let forks = [(12, 10)].into();
        let rows = rows(&RowKey { repeat: 1, mode: "s-spright", phase: "measure" }, &a, &b, &registry, &forks);
        let get = |source: &str, scope: &str, name: &str| {
            rows.iter().find(|r| r.source == source && r.scope == scope && r.name == name).map(|r| r.value)
        };
        assert_eq!(get("irq", "cpu0", "LOC Local timer interrupts"), Some(30.0));
        assert_eq!(get("irq", "cpu1", "LOC Local timer interrupts"), None, "no change on CPU 1");
        assert_eq!(get("runtime", "gateway", "serializations"), Some(2.0));
        assert_eq!(get("runtime", "gateway", "deserializations"), Some(3.0));
        assert_eq!(get("runtime", "function", "serializations"), Some(5.0));
        assert!(rows.iter().all(|r| r.repeat == 1 && r.phase == "measure"));
    }
}
