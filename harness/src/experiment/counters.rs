//! Counters read at the start and end of a mode's measured phase, and the
//! rows their differences become, per component group.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::collect::ebpf::{self, AuditProbe};
use crate::collect::interrupts;
use crate::collect::perf::PerfCounters;
use crate::collect::sampler::adopted_group;
use crate::deploy::Component;
use crate::results::CounterRow;

/// Machine-wide, eBPF, perf and runtime counters at one instant.
pub struct Snapshot {
    pub at: Instant,
    irq: interrupts::Counts,
    soft: interrupts::Counts,
    audit: Option<ebpf::Snapshot>,
    perf: Option<BTreeMap<(u32, &'static str), u64>>,
    /// (serializations, deserializations) per process, as the runtimes count them.
    wire: BTreeMap<u32, (u64, u64)>,
}

impl Snapshot {
    pub fn read(audit: Option<&AuditProbe>, perf: &mut Option<PerfCounters>, wire_dir: Option<&Path>) -> Self {
        Self {
            irq: interrupts::read_interrupts(),
            soft: interrupts::read_softirqs(),
            audit: audit.map(AuditProbe::snapshot),
            perf: perf.as_mut().map(PerfCounters::read),
            wire: wire_dir.map(read_wire_counts).unwrap_or_default(),
            at: Instant::now(),
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

/// What changed between `start` and `end`, as rows of the measured phase.
pub fn rows(mode: &str, start: &Snapshot, end: &Snapshot, components: &[Component]) -> Vec<CounterRow> {
    let row = |source: &str, scope: &str, name: String, value: u64| CounterRow {
        mode: mode.into(),
        phase: "measure".into(),
        source: source.into(),
        scope: scope.into(),
        name,
        value: value as f64,
    };
    // Processes to groups: the deployment's components, the harness (load
    // generator), everything else.
    let group_of = |pid: u32| {
        components.iter().find(|c| c.pid == pid).map(|c| c.role.name()).unwrap_or(if pid == std::process::id() { "load" } else { "other" })
    };
    let mut out = Vec::new();
    for (source, delta) in [("irq", interrupts::delta(&start.irq, &end.irq)), ("softirq", interrupts::delta(&start.soft, &end.soft))] {
        out.extend(delta.into_iter().filter(|(_, v)| *v > 0).map(|(k, v)| row(source, "system", k, v)));
    }
    let mut wire: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (&pid, &(s1, d1)) in &end.wire {
        let (s0, d0) = start.wire.get(&pid).copied().unwrap_or((0, 0));
        // Only the deployment's processes have counter files, so an unknown
        // one was cold-started by the activator.
        let group = match group_of(pid) {
            "other" => adopted_group(pid),
            g => g,
        };
        *wire.entry((group, "serializations")).or_default() += s1.saturating_sub(s0);
        *wire.entry((group, "deserializations")).or_default() += d1.saturating_sub(d0);
    }
    out.extend(wire.into_iter().map(|((group, name), v)| row("runtime", group, name.into(), v)));
    if let (Some(p0), Some(p1)) = (&start.perf, &end.perf) {
        let mut by_group: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        for (&(pid, event), &v1) in p1 {
            *by_group.entry((group_of(pid), event)).or_default() += v1.saturating_sub(p0.get(&(pid, event)).copied().unwrap_or(0));
        }
        out.extend(by_group.into_iter().map(|((group, event), v)| row("perf", group, event.into(), v)));
    }
    if let (Some(a0), Some(a1)) = (&start.audit, &end.audit) {
        let mut by_group: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for ((tgid, event), (count, bytes)) in ebpf::delta(a0, a1) {
            let e = by_group.entry((group_of(tgid), event)).or_default();
            e.0 += count;
            e.1 += bytes;
        }
        for ((group, event), (count, bytes)) in by_group {
            out.push(row("ebpf", group, event.to_string(), count));
            out.push(row("ebpf", group, format!("{event}_bytes"), bytes));
        }
    }
    out
}
