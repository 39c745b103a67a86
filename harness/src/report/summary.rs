//! `summary.md`: the run's tables, its ratios with their intervals, and the
//! paper's numbers next to ours, from the stored files only.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::estimate::{method, Estimate};
use super::stats::{self, by_mode, CpuSet, ModeRepeats, ModeStats, GROUPS};
use crate::experiment::search::Verdict;
use crate::results::RunData;

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn show(e: Option<Estimate>, digits: usize) -> String {
    e.map_or_else(|| "-".into(), |e| e.show(digits))
}

fn show_ratio(e: Option<Estimate>) -> String {
    e.map_or_else(|| "not measured in this run".into(), |e| e.show_ratio())
}

fn find<'a, 'b>(modes: &'a [ModeRepeats<'b>], name: &str) -> Option<&'a ModeRepeats<'b>> {
    modes.iter().find(|m| m.mode == name && m.ok().next().is_some())
}

/// What the headline CPU column measures.
const CPU_HEADLINE: &str = "CPU-s / 1000 req (kernel included)";
const CPU_HEADLINE_SHORT: &str = "headline CPU-s (kernel included)";

/// The headline table: per mode, over the repeats (also printed on stdout at the end of a run).
pub fn headline_table(data: &RunData, stats: &[ModeStats]) -> String {
    let modes = by_mode(data, stats);
    let mut t = String::new();
    if data.manifest.has_sweep() {
        let rate = data.manifest.profile.sweep.as_ref().map_or(0.0, |s| s.start_rate);
        let _ = writeln!(
            t,
            "| mode | saturation: offered tasks/s | achieved req/s there | p50 ms at {rate} tasks/s | p99 ms at {rate} tasks/s | {CPU_HEADLINE} at {rate} tasks/s |"
        );
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
        for m in &modes {
            let sats: Vec<stats::Saturation> = m.ok().map(|s| stats::saturation(&data.probes, &s.run)).collect();
            let bound = if sats.iter().any(|s| s.lower_bound) { ">= " } else { "" };
            let offered = Estimate::of(&sats.iter().filter_map(|s| s.offered).collect::<Vec<_>>());
            let achieved = Estimate::of(&sats.iter().filter_map(|s| s.achieved_rps).collect::<Vec<_>>());
            let _ = writeln!(
                t,
                "| {} | {bound}{} | {bound}{} | {} | {} | {} |",
                m.label,
                show(offered, 0),
                show(achieved, 1),
                show(m.estimate(|s| s.latency_all.p50_ms), 2),
                show(m.estimate(|s| s.latency_all.p99_ms), 2),
                show(m.estimate(ModeStats::cpu_per_1000), 2),
            );
        }
    } else {
        let _ =
            writeln!(t, "| mode | req/s (follows the load: not capacity) | p50 ms | p99 ms | {CPU_HEADLINE} | cores (kernel included) |");
        let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|");
        for m in &modes {
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} |",
                m.label,
                show(m.estimate(|s| s.throughput), 1),
                show(m.estimate(|s| s.latency_all.p50_ms), 2),
                show(m.estimate(|s| s.latency_all.p99_ms), 2),
                show(m.estimate(ModeStats::cpu_per_1000), 2),
                show(m.estimate(ModeStats::cores), 3),
            );
        }
    }
    t
}

/// Every (repeat, mode): throughput, latency and CPU.
/// What the CPUs of the profile's load pinning are on the node measured:
/// the load generator's on one node; on the system-under-test node of a
/// two-node run, only the collectors run there (the load is on node-1).
fn load_cpus_label(two_nodes: bool) -> &'static str {
    if two_nodes {
        "node-0's other CPUs"
    } else {
        "load CPUs"
    }
}

fn runs_table(stats: &[ModeStats], two_nodes: bool) -> String {
    let mut t = String::new();
    let load = if two_nodes { "node-0's other CPUs (collectors)" } else { "load generator CPUs" };
    let _ = writeln!(
        t,
        "| mode | repeat | status | users | req/s | errors | p50 ms | p99 ms | cores (kernel included) | {CPU_HEADLINE} | CPU-s / 1000 req by process (gateway / sidecar / function / orchestrator) | cores with no load (kernel included) | {load} busy cores (`/proc/stat`) |"
    );
    let _ = writeln!(t, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    for s in stats {
        let groups: Vec<String> = GROUPS[..4].iter().map(|g| s.group_cpu_per_1000(g).map_or("-".into(), |v| format!("{v:.2}"))).collect();
        let flags = if s.run.flags.is_empty() { String::new() } else { format!(" ({})", s.run.flags.join("; ")) };
        let _ = writeln!(
            t,
            "| {} | {} | {}{} | {} | {:.1} | {} | {} | {} | {:.3} | {:.2} | {} | {:.3} | {:.2} |",
            s.run.label,
            s.run.repeat + 1,
            s.run.status,
            flags,
            if s.run.users > 0 { s.run.users.to_string() } else { "-".into() },
            s.throughput,
            s.errors,
            ms(s.latency_all.p50_ms),
            ms(s.latency_all.p99_ms),
            s.cores(),
            s.cpu_per_1000(),
            groups.join(" / "),
            s.idle_system_cores,
            s.load_cores(),
        );
    }
    t
}

/// The headline CPU and how it is made, next to `/proc/stat`'s view of the
/// system's CPUs, flagged where the two differ by more than 10%.
fn cpu_table(stats: &[ModeStats]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| mode | repeat | by process: gateway / sidecar / function / orchestrator (CPU-s) | + ksoftirqd on the system's CPUs | = {CPU_HEADLINE_SHORT} | procfs utime + stime of the same processes | `/proc/stat`, system's CPUs: user / nice / system / irq / softirq | less background | = `/proc/stat` measure | steal | `/proc/stat` vs headline |"
    );
    let _ = writeln!(t, "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|");
    for s in stats.iter().filter(|s| s.requests > 0) {
        let groups: Vec<String> = GROUPS[..4].iter().map(|g| s.group_cpu(g).map_or("-".into(), |v| format!("{v:.2}"))).collect();
        let procfs = s.cpu_s.iter().filter(|(g, _)| *g != "load").fold(0.0, |a, (_, v)| a + v);
        let set = if s.pinned_apart { CpuSet::System } else { CpuSet::Machine };
        let exact = |v: f64| if s.exact_cpu() { format!("{v:.2}") } else { "n/c".into() };
        let c = if s.pinned_apart { &s.cpus_system } else { &s.cpus_machine };
        let gap = s.cpu_gap();
        let flag = if gap.abs() > 0.10 { " **> 10%**" } else { "" };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {:.2} | {procfs:.2} | {:.2} / {:.2} / {:.2} / {:.2} / {:.2} | {} | {:.2} | {:.2} | {:+.0}%{flag} |",
            s.mode,
            s.run.repeat + 1,
            groups.join(" / "),
            exact(s.ksoftirqd_cpu(set)),
            s.cpu_with_kernel(),
            c.user,
            c.nice,
            c.system,
            c.irq,
            c.softirq,
            exact(s.background_cpu(set)),
            s.cpu_by_proc_stat(),
            c.steal,
            gap * 100.0,
        );
    }
    t
}

fn latency_table(modes: &[ModeRepeats]) -> String {
    let mut types: Vec<&String> = modes.iter().flat_map(|m| m.ok().flat_map(|s| s.latency.keys())).collect();
    types.sort_by_key(|t| stats::chain_label(t));
    types.dedup();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| request type | {} |",
        modes.iter().map(|m| format!("{} p50 / p99 ms (requests)", m.mode)).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(t, "|---|{}", "---:|".repeat(modes.len()));
    for ty in types {
        let cells: Vec<String> = modes
            .iter()
            .map(|m| {
                let has = |s: &ModeStats| s.latency.contains_key(ty);
                if !m.ok().any(has) {
                    return "-".into();
                }
                let get = |f: fn(&stats::Latency) -> f64| m.estimate(|s| s.latency.get(ty).map_or(f64::NAN, f));
                let n: usize = m.ok().filter_map(|s| s.latency.get(ty)).map(|l| l.count).sum();
                format!("{} / {} ({n})", show(get(|l| l.p50_ms), 2), show(get(|l| l.p99_ms), 2))
            })
            .collect();
        let _ = writeln!(t, "| {} | {} |", stats::chain_label(ty), cells.join(" | "));
    }
    t
}

fn interrupts_table(modes: &[ModeRepeats], pinned: bool, two_nodes: bool) -> String {
    let mut t = String::new();
    let l = load_cpus_label(two_nodes);
    let machine = if two_nodes { "node-0" } else { "machine" };
    let _ = writeln!(
        t,
        "| mode | context switches / req by process (gateway / sidecar / function / orchestrator) | perf: switches / migrations per req | hard IRQs / req: system CPUs / {l} ({machine}) | hard IRQs / s: system CPUs / {l} | softirqs / req: system CPUs / {l} ({machine}) | NET_RX softirqs / req: system CPUs / {l} |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|");
    for m in modes {
        if m.ok().next().is_none() {
            continue;
        }
        let e = |f: &dyn Fn(&ModeStats) -> f64, d: usize| show(m.estimate(f), d);
        let sw: Vec<String> = GROUPS[..4]
            .iter()
            .map(|g| {
                if m.ok().any(|s| s.switches.contains_key(*g)) {
                    e(&|s| s.per_request(*s.switches.get(*g).unwrap_or(&0) as f64), 1)
                } else {
                    "-".into()
                }
            })
            .collect();
        let perf = if m.ok().any(|s| s.has_source("perf")) {
            let sut = |event: &'static str| {
                move |s: &ModeStats| s.per_request(s.sum_where(|src, g, n| src == "perf" && g != "load" && n == event))
            };
            format!("{} / {}", e(&sut("context_switches"), 1), e(&sut("cpu_migrations"), 2))
        } else {
            "-".into()
        };
        let per_req = |source: &'static str, name: Option<&'static str>| {
            let f = |set: CpuSet| move |s: &ModeStats| s.per_request(s.interrupts(source, set, name));
            if pinned {
                format!("{} / {} ({})", e(&f(CpuSet::System), 2), e(&f(CpuSet::Load), 2), e(&f(CpuSet::Machine), 2))
            } else {
                format!("unpinned ({})", e(&f(CpuSet::Machine), 2))
            }
        };
        let per_sec = {
            let f = |set: CpuSet| move |s: &ModeStats| s.per_second(s.interrupts("irq", set, None));
            if pinned {
                format!("{} / {}", e(&f(CpuSet::System), 0), e(&f(CpuSet::Load), 0))
            } else {
                format!("unpinned ({})", e(&f(CpuSet::Machine), 0))
            }
        };
        let net_rx = {
            let f = |set: CpuSet| move |s: &ModeStats| s.per_request(s.interrupts("softirq", set, Some("NET_RX")));
            if pinned {
                format!("{} / {}", e(&f(CpuSet::System), 2), e(&f(CpuSet::Load), 2))
            } else {
                format!("unpinned ({})", e(&f(CpuSet::Machine), 2))
            }
        };
        let _ = writeln!(
            t,
            "| {} | {} | {perf} | {} | {per_sec} | {} | {net_rx} |",
            m.mode,
            sw.join(" / "),
            per_req("irq", None),
            per_req("softirq", None)
        );
    }
    t
}

/// The legs of the overhead audit: the front door (SPRIGHT gateway,
/// Knative ingress and activator) and the chain behind it.
pub const EXTERNAL: &[&str] = &["gateway"];
pub const CHAIN: &[&str] = &["sidecar", "function", "orchestrator"];

/// Socket transfers between user space and the kernel, by what they carry.
pub const PAYLOAD: &[&str] = &["payload_send", "payload_recv"];
pub const DESCRIPTORS: &[&str] = &["descriptor_send", "descriptor_recv"];
pub const SWITCHES: &[&str] = &["switch_out"];
pub const STACK: &[&str] = &["netif_receive_skb", "net_dev_xmit"];

fn bytes_of(events: &[&str]) -> Vec<String> {
    events.iter().map(|e| format!("{e}_bytes")).collect()
}

fn audit_table(modes: &[ModeRepeats]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| mode | leg | payload transfers | payload bytes | descriptor / control transfers | descriptor bytes | context switches | protocol stack passes | serializations (runtimes' count) | deserializations (runtimes' count) |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let (payload_bytes, descriptor_bytes) = (bytes_of(PAYLOAD), bytes_of(DESCRIPTORS));
    for m in modes.iter().filter(|m| m.ok().any(|s| s.has_source("ebpf"))) {
        for (leg, groups) in [("external", EXTERNAL), ("chain", CHAIN)] {
            let e =
                |source: &'static str, names: Vec<&str>, d: usize| show(m.estimate(|s| s.source_per_request(source, groups, &names)), d);
            let wire =
                |name: &'static str| if m.ok().any(|s| s.has_source("runtime")) { e("runtime", vec![name], 2) } else { "n/i".into() };
            let _ = writeln!(
                t,
                "| {} | {leg} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.mode,
                e("ebpf", PAYLOAD.to_vec(), 2),
                e("ebpf", payload_bytes.iter().map(String::as_str).collect(), 0),
                e("ebpf", DESCRIPTORS.to_vec(), 2),
                e("ebpf", descriptor_bytes.iter().map(String::as_str).collect(), 0),
                e("ebpf", SWITCHES.to_vec(), 2),
                e("ebpf", STACK.to_vec(), 2),
                wire("serializations"),
                wire("deserializations"),
            );
        }
    }
    let _ = writeln!(t, "| paper: Knative | whole chain | 15 copies | | | | 15 | 12 | 8 | 7 |");
    let _ = writeln!(
        t,
        "| paper: SPRIGHT | whole chain (0 copies, 0 stack passes, 0 (de)serializations inside) | 3 copies | | | | 7 | 3 | 2 | 1 |"
    );
    t
}

/// The paper's Online Boutique numbers: requests/s and cores per mode
/// (~5 500 req/s for S- and D-SPRIGHT; Knative and gRPC derived from "6x"
/// and "5x"). A table entry each, not code.
const PAPER_BOUTIQUE: [(&str, f64, f64); 4] =
    [("s-spright", 5500.0, 3.0), ("d-spright", 5500.0, 11.0), ("knative", 5500.0 / 6.0, 26.0), ("grpc", 5500.0 / 5.0, 36.0)];

/// Cores at a stated load, and CPU per request, each against the paper's.
fn paper_table(modes: &[ModeRepeats]) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "| mode | paper: cores at req/s | paper: CPU-ms per request (derived) | here: cores (kernel included) at req/s | here: CPU-ms per request (kernel included) |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|");
    for (mode, rps, cores) in PAPER_BOUTIQUE {
        let Some(m) = find(modes, mode) else { continue };
        let _ = writeln!(
            t,
            "| {mode} | {cores:.0} at ~{rps:.0} | {:.2} | {} at {} | {} |",
            cores / rps * 1e3,
            show(m.estimate(ModeStats::cores), 3),
            show(m.estimate(|s| s.throughput), 1),
            show(m.estimate(|s| s.cpu_per_1000()), 3),
        );
    }
    t
}

/// (claim, paper, measured here, note) for the headline ratios of this run.
fn ratio_rows(data: &RunData, modes: &[ModeRepeats]) -> Vec<[String; 4]> {
    let get = |name| find(modes, name);
    let (s, d, e, k, g) = (get("s-spright"), get("d-spright"), get("e-spright"), get("knative"), get("grpc"));
    let r = |a: Option<&ModeRepeats>, b: Option<&ModeRepeats>, f: fn(&ModeStats) -> f64| match (a, b) {
        (Some(a), Some(b)) => show_ratio(stats::ratio(a, b, f)),
        _ => "not measured in this run".into(),
    };
    let cpu: fn(&ModeStats) -> f64 = ModeStats::cpu_per_1000;
    let p99: fn(&ModeStats) -> f64 = |s| s.latency_all.p99_ms;
    let sweep = data.manifest.has_sweep();
    let at = if sweep { "at the common offered rate (same load for every mode)" } else { "at each mode's own load in this run" };
    let mut rows = Vec::new();
    if sweep {
        let sat = |a: Option<&ModeRepeats>, b: Option<&ModeRepeats>| -> String {
            let (Some(a), Some(b)) = (a, b) else { return "not measured in this run".into() };
            let per_repeat = |m: &ModeRepeats| -> Vec<(Option<f64>, bool)> {
                m.by_repeat
                    .iter()
                    .map(|s| {
                        s.map_or((None, false), |s| {
                            let sat = stats::saturation(&data.probes, &s.run);
                            (sat.achieved_rps, sat.lower_bound)
                        })
                    })
                    .collect()
            };
            let (pa, pb) = (per_repeat(a), per_repeat(b));
            if pb.iter().any(|(_, lb)| *lb) {
                return "inconclusive (the second mode never saturated)".into();
            }
            let pairs: Vec<(Option<f64>, Option<f64>)> = pa.iter().zip(&pb).map(|(x, y)| (x.0, y.0)).collect();
            let lower = if pa.iter().any(|(_, lb)| *lb) { ">= " } else { "" };
            format!("{lower}{}", show_ratio(super::estimate::paired_ratio(&pairs)))
        };
        rows.push([
            "saturation throughput S-SPRIGHT / Knative".into(),
            "6x".into(),
            sat(s, k),
            "achieved req/s at each mode's saturation point".into(),
        ]);
        rows.push([
            "saturation throughput S-SPRIGHT / gRPC".into(),
            "5x".into(),
            sat(s, g),
            "achieved req/s at each mode's saturation point".into(),
        ]);
        rows.push(["saturation throughput E-SPRIGHT / Knative".into(), "-".into(), sat(e, k), "E-SPRIGHT is ours".into()]);
    } else if data.manifest.workload == "boutique" {
        rows.push([
            "throughput".into(),
            "6x (S-SPRIGHT / Knative), 5x (/ gRPC)".into(),
            "not measured by this run".into(),
            "a closed-loop run's throughput follows the users given to each mode; capacity comes from `--sweep`".into(),
        ]);
    }
    let boutique = data.manifest.workload == "boutique";
    let paper = |claim: &str| if boutique { claim.to_string() } else { "-".to_string() };
    let stz = get("knative-stz");
    let versus = [
        ("Knative / S-SPRIGHT", k, s),
        ("Knative scale-to-zero / S-SPRIGHT", stz, s),
        ("gRPC / S-SPRIGHT", g, s),
        ("D-SPRIGHT / S-SPRIGHT", d, s),
        ("E-SPRIGHT / S-SPRIGHT", e, s),
    ];
    for (claim, a, b) in versus.iter().take(3).filter(|(_, a, _)| a.is_some()) {
        let paper = if a.is_some_and(|a| a.mode == "knative") { paper("up to 70x (Knative overloaded)") } else { "-".into() };
        rows.push([format!("p99 latency {claim}"), paper, r(*a, *b, p99), at.into()]);
    }
    for (claim, a, b) in versus.into_iter().filter(|(_, a, _)| a.is_some()) {
        let paper = PAPER_BOUTIQUE
            .iter()
            .find(|(m, ..)| boutique && a.is_some_and(|a| a.mode == *m))
            .map_or("-".into(), |(_, rps, cores)| format!("{:.1}x (derived: cores / req/s)", (cores / rps) / (3.0 / 5500.0)));
        rows.push([format!("CPU per request {claim} (kernel included)"), paper, r(a, b, cpu), at.into()]);
    }
    rows
}

fn sweep_section(data: &RunData, modes: &[ModeRepeats]) -> String {
    let mut t = String::new();
    let Some(spec) = &data.manifest.profile.sweep else { return t };
    let _ = writeln!(
        t,
        "## Open-loop saturation search\n\nOnline Boutique mix tasks (1-2 requests each), {} arrivals, {} sessions. Per mode: a {} s warm-up and a {} s probe at the common rate ({} tasks/s), then {} s probes: the rate grows {}x until a probe fails (or shrinks until one passes), then bisects between the highest pass and the lowest failure until they are within {:.0}%; at most {} s of probes. A probe passes with p99 <= {} ms and < 1% errors; one whose generator did not keep up with its schedule (median lag > {} ms) ends the search with a lower bound. Latency counts from each task's intended send time (no coordinated omission); achieved = requests answered (not 5xx) within the probe.\n",
        spec.arrivals,
        spec.sessions,
        data.manifest.profile.warmup_s,
        spec.common_s,
        spec.start_rate,
        spec.step_s,
        spec.growth,
        spec.tolerance * 100.0,
        spec.max_search_s,
        spec.p99_bound_ms,
        spec.p99_bound_ms / 10.0
    );
    let _ = writeln!(
        t,
        "| mode | repeat | probe | offered tasks/s | achieved req/s | p50 ms | p99 ms | errors % | generator lag p50 / p99 ms | verdict |"
    );
    let _ = writeln!(t, "|---|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for m in modes {
        let mut probes: Vec<&crate::results::ProbeRow> = data.probes.iter().filter(|p| p.mode == m.mode).collect();
        probes.sort_by_key(|p| p.repeat);
        for p in probes {
            let verdict = match p.stats.verdict(spec.p99_bound_ms) {
                Verdict::Pass => "pass",
                Verdict::Fail => "fail",
                Verdict::GeneratorBehind => "generator behind",
            };
            let _ = writeln!(
                t,
                "| {} | {} | {} | {} | {:.1} | {} | {} | {:.2} | {:.2} / {:.2} | {verdict} |",
                p.mode,
                p.repeat + 1,
                p.phase,
                p.offered,
                p.achieved_rps(),
                ms(p.stats.p50_ms),
                ms(p.stats.p99_ms),
                p.error_pct(),
                p.stats.send_lag_p50_ms,
                p.stats.send_lag_p99_ms
            );
        }
    }
    t
}

/// Where the Knative model is cheaper or dearer than Knative itself.
const KNATIVE_NOTE: &str = "\"knative\" is a local model of Knative Serving's data path (ingress, queue-proxies, containers as processes), not Knative. \
Cheaper than Knative: no Kubernetes, no kube-proxy/iptables, no container runtime or cgroup/namespace switches, an ingress that is a small Rust proxy rather than Envoy, \
and (knative-stz) a cold start that is a process spawn padded to the profile's `cold_start_ms` rather than pod scheduling and an image start. \
Dearer than Knative: its proxies buffer whole request and response bodies (Envoy and the queue-proxy stream them), \
and all of its 20+ processes share the system's core(s) here, where a cluster spreads them over many cores.";

/// One warning per mode and repeat in which the eBPF collector could not
/// record every event (a map was full).
fn lost_event_warnings(data: &RunData) -> Vec<String> {
    let mut lost: BTreeMap<(&str, usize), f64> = BTreeMap::new();
    for r in data.counters.iter().filter(|r| r.source == "ebpf" && r.name == crate::experiment::counters::LOST_EVENTS) {
        *lost.entry((r.mode.as_str(), r.repeat)).or_default() += r.value;
    }
    lost.into_iter()
        .map(|((mode, repeat), n)| {
            format!(
                "the eBPF collector lost {n} events in {mode}, repeat {} (one of its maps was full): that run's eBPF counts are incomplete",
                repeat + 1
            )
        })
        .collect()
}

pub fn render(data: &RunData, stats: &[ModeStats]) -> String {
    let m = &data.manifest;
    let modes = by_mode(data, stats);
    let mut out = String::new();
    let _ = writeln!(out, "# {} - run of {}\n", m.experiment, m.started_at);
    if m.build_profile != "release" {
        let _ = writeln!(out, "**WARNING: UNOPTIMIZED BUILD ({}). These numbers are not valid measurements.**\n", m.build_profile);
    }
    if m.reference {
        let dirty = if m.git_revision.ends_with("-dirty") { " **with uncommitted changes (--allow-dirty)**" } else { "" };
        let _ = writeln!(out, "Reference run, from commit {}{dirty}.\n", m.git_revision.trim_end_matches("-dirty"));
    }
    let _ = writeln!(out, "Profile `{}`: {}\n", m.profile_name, m.profile.note.trim());
    let _ = writeln!(
        out,
        "Machine: {} ({} cores, allowed {:?}), kernel {} (CPU time {}), git {}, build {}. Root: {}; BPF: {}. Pinning: load generator {:?}, system under test {:?}. Seed {}.\n",
        m.cpu_model,
        m.cores,
        m.allowed_cpus,
        m.kernel,
        if m.cpu_accounting.is_empty() { "accounting not recorded" } else { &m.cpu_accounting },
        m.git_revision,
        m.build_profile,
        m.root,
        m.bpf,
        m.profile.pin.load,
        m.profile.pin.system,
        m.seed
    );
    if let Some(two) = &m.two_nodes {
        let _ = writeln!(
            out,
            "Two nodes: the system under test and its collectors on {} (the machine above), driven over SSH ({}){}; the load generator on {} ({}, {} cores, allowed {:?}, kernel {}), targeting {} via `{}`.\n",
            two.sut_hostname,
            two.sut,
            match two.deployed_as {
                crate::deploy::Target::Processes => "",
                crate::deploy::Target::K8s => ", every mode deployed on Kubernetes from the project's manifests",
            },
            two.load.hostname,
            two.load.cpu_model,
            two.load.cores,
            two.load.allowed_cpus,
            two.load.kernel,
            two.target,
            two.path
        );
    }
    let _ = writeln!(out, "Repeats: {}.\n", method(m.repeats));
    if m.two_nodes.as_ref().is_none_or(|t| t.deployed_as == crate::deploy::Target::Processes) {
        let _ = writeln!(out, "{KNATIVE_NOTE}\n");
    }
    let incomplete: Vec<String> =
        m.modes.iter().filter(|r| !r.ok()).map(|r| format!("* **{}, repeat {}: {}**", r.mode, r.repeat + 1, r.status)).collect();
    if !incomplete.is_empty() {
        let _ = writeln!(out, "## Incomplete: modes that failed, were skipped or cut short\n\n{}\n", incomplete.join("\n"));
    }
    for w in m.warnings.iter().filter(|w| !m.modes.iter().any(|r| !r.ok() && w.contains(&r.status))) {
        let _ = writeln!(out, "* warning: {w}");
    }
    for w in lost_event_warnings(data) {
        let _ = writeln!(out, "* **warning: {w}**");
    }
    let _ = writeln!(out, "\n## Headline\n");
    out.push_str(&headline_table(data, stats));
    let cpu_note = if stats.iter().any(ModeStats::exact_cpu) {
        "the exact CPU time (eBPF: the scheduler's runtime of each slice, at `sched_switch`; hypervisor steal left out) of the system's processes - which includes the interrupt and softirq work, the kernel's network stack, done while they were on a CPU - plus that of ksoftirqd on the system's CPUs (network work deferred from interrupts); `/proc/stat`'s view is beside it in the CPU section as a cross-check"
    } else if m.pinned_apart() {
        "the busy time (user + nice + system + irq + softirq, `/proc/stat`) of the CPUs the system under test was pinned to, kernel network work included (no eBPF collector: nothing else that ran there is taken out)"
    } else {
        "**unpinned run, no eBPF collector**: every CPU's busy time (`/proc/stat`) less the harness process's own CPU time, so the load generator's kernel work is included"
    };
    let headline_phase = if m.has_sweep() { "the probe at the common offered rate" } else { "the measured phase" };
    let _ = writeln!(out, "\nOver {headline_phase}. CPU-s / 1000 requests is {cpu_note}. On one machine over loopback each side's kernel also processes the receive of what it sends, so the system's CPUs carry the receive work of its responses and the generator's CPU that of its requests.\n");
    out.push_str(&super::soak::section(data));
    let _ = writeln!(out, "## Ratios\n\n| claim | paper | measured here | note |\n|---|---|---|---|");
    for [claim, paper, ours, note] in ratio_rows(data, &modes) {
        let _ = writeln!(out, "| {claim} | {paper} | {ours} | {note} |");
    }
    if m.workload == "boutique" {
        let _ = writeln!(out, "\n## Next to the paper: cores at a stated load, and CPU per request\n");
        out.push_str(&paper_table(&modes));
        let _ = writeln!(out, "\nThe paper's cores are at its loads (~5 500 req/s for SPRIGHT, about a sixth of that for Knative): compare cores only with the load beside them; CPU per request compares across loads, though a system's cost per request also changes with load.\n");
    }
    if m.has_sweep() {
        out.push('\n');
        out.push_str(&sweep_section(data, &modes));
    }
    if let Some(chaos) = super::chaos::section(data) {
        out.push('\n');
        out.push_str(&chaos);
    }
    let _ = writeln!(out, "\n## Every run: throughput, latency and CPU\n");
    out.push_str(&runs_table(stats, m.two_nodes.is_some()));
    let _ = writeln!(out, "\n## CPU: by process and by the system's CPUs\n");
    out.push_str(&cpu_table(stats));
    let _ = writeln!(
        out,
        "\nBy process: the exact on-CPU time of every process of the system under test, per component group, from the eBPF collector (at each `sched_switch`, the growth of the task's scheduler runtime; the sum of each task's slices, threads and processes that exited included, hypervisor steal left out); without it, utime + stime from procfs, sampled every {} ms and at every phase boundary - whole 10 ms clock ticks per process, so a process that used less than 10 ms reads 0 (the procfs column shows that sum beside the exact one). ksoftirqd: its exact on-CPU time on the system's CPUs. The `/proc/stat` measure: the busy time of the system's CPUs over the same window less the background there - the exact on-CPU time of every process outside the run other than ksoftirqd: the machine's own agents and kernel threads such as its memory monitor (n/c: not collected). It also holds interrupt work done while a CPU was otherwise idle, which the headline leaves out; but where the kernel samples CPU time at each tick (see the machine line), it misses or over-counts short bursts, which at low utilization dominates: **> 10%** marks where the two part.\n",
        m.sample_ms
    );
    let _ = writeln!(out, "## Latency per request type\n");
    out.push_str(&latency_table(&modes));
    let _ = writeln!(out, "\n## Context switches and interrupts\n");
    out.push_str(&interrupts_table(&modes, m.pinned_apart(), m.two_nodes.is_some()));
    let _ = writeln!(
        out,
        "\nContext switches: procfs (voluntary + involuntary, every thread) per component group; perf (opt-in): software counters over every thread of the system under test. Interrupts: `/proc/interrupts` and `/proc/softirqs` per CPU, split into the CPUs the system under test was pinned to and the load generator's; the machine-wide figure in parentheses is the cross-check.{}\n",
        if m.two_nodes.is_some() {
            " Two nodes: every interrupt and CPU column is node-0's (its other CPUs run the collectors, not the load); the load node's are not collected."
        } else {
            ""
        }
    );
    let _ = writeln!(out, "## Overhead audit, per request\n");
    if stats.iter().any(|s| s.has_source("ebpf")) {
        out.push_str(&audit_table(&modes));
        let _ = writeln!(
            out,
            "\nMeasured per process with eBPF tracepoints (`system/bpf/audit.bpf.c`), then grouped: a transfer is one send or receive between user space and the kernel on a socket, whatever the path (`sock:sock_send_length`, `sock:sock_recv_length`, receives of sk_msg-redirected messages included), split by the socket: **descriptor / control** when the socket is in a sockmap (SPRIGHT's 16-byte descriptors), **payload** otherwise (HTTP, gRPC, JSON bodies). Context switches = `sched_switch` of the leg's processes; protocol stack passes = `net:netif_receive_skb` + `net:net_dev_xmit` in the leg's process context. External leg = the front door's processes (SPRIGHT gateway, Knative ingress and activator - which in this model also carry every call between functions; gRPC has none: its frontend is a function). (De)serializations are counted by the runtimes, not by the kernel: one per message encoded or decoded at each layer in each process (n/i: not collected). Hard and soft IRQs are in the table above (per CPU set). The paper's rows are from the talk's slides (counted by hand, per chain).\n"
        );
    } else {
        let _ =
            writeln!(out, "Not collected in this run (the eBPF collector needs root and the `ebpf` collector in the experiment file).\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::fixture;

    /// The fixture run three times, the machine 10% faster and 10% slower
    /// in the second and third repeats (CPU time scaled for both modes).
    fn three_repeats() -> RunData {
        let base = fixture::run();
        let mut d = base.clone();
        d.manifest.repeats = 3;
        (d.manifest.modes, d.requests, d.cpu, d.cpustat, d.counters) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (repeat, f) in [(0, 1.0), (1, 1.1), (2, 0.9)] {
            d.manifest.modes.extend(base.manifest.modes.iter().map(|m| crate::results::ModeRun { repeat, ..m.clone() }));
            d.requests.extend(base.requests.iter().map(|r| crate::results::RequestRow { repeat, ..r.clone() }));
            d.cpu.extend(base.cpu.iter().map(|c| crate::results::CpuSample { repeat, ..c.clone() }));
            d.counters.extend(base.counters.iter().map(|c| crate::results::CounterRow { repeat, ..c.clone() }));
            d.cpustat.extend(base.cpustat.iter().map(|c| {
                let mut c = crate::results::CpuStatSample { repeat, ..c.clone() };
                let t = &mut c.s.t;
                (t.user, t.system, t.softirq) = (t.user * f, t.system * f, t.softirq * f);
                c
            }));
        }
        d
    }

    /// With the eBPF collector the headline is the processes' exact on-CPU
    /// time plus ksoftirqd on the system's CPU; `/proc/stat` less the
    /// background is the cross-check.
    #[test]
    fn the_exact_cpu_headline_and_its_proc_stat_cross_check() {
        let mut data = fixture::run();
        let ebpf = |scope: &str, name: &str, ns: f64| crate::results::CounterRow {
            repeat: 0,
            mode: "s-spright".into(),
            phase: "measure".into(),
            source: "ebpf".into(),
            scope: scope.into(),
            name: name.into(),
            value: ns,
        };
        // s-spright: gateway 0.8 s and function 0.6 s on-CPU, ksoftirqd 0.1 s and
        // background 0.4 s on CPU 0 (busy 2.0 s there), 0.3 s background on CPU 1.
        data.counters.extend([
            ebpf("gateway", "oncpu_ns", 0.8e9),
            ebpf("function", "oncpu_ns", 0.6e9),
            ebpf("cpu0", "ksoftirqd_oncpu_ns", 0.1e9),
            ebpf("cpu0", "background_oncpu_ns", 0.4e9),
            ebpf("cpu1", "background_oncpu_ns", 0.3e9),
        ]);
        let stats = stats::compute(&data);
        let s = &stats[0];
        assert!(s.exact_cpu());
        assert!((s.cpu_with_kernel() - 1.5).abs() < 1e-9, "0.8 + 0.6 + 0.1");
        assert!((s.cpu_by_proc_stat() - 1.6).abs() < 1e-9, "2.0 - 0.4: CPU 1 is not the system's");
        let summary = render(&data, &stats);
        assert!(summary.contains("| s-spright | 1 | 0.80 / - / 0.60 / - | 0.10 | 1.50 | 1.50 | 1.00 / 0.00 / 0.40 / 0.00 / 0.60 | 0.40 | 1.60 | 0.00 | +7% |"), "{summary}");
        assert!(
            summary.contains("| s-spright | 10.0 | 0.50 | 0.99 | 15.00 | 0.150 |"),
            "the headline: 1.5 CPU-s per 100 requests: {summary}"
        );
    }

    /// A phase in which the eBPF collector lost events is flagged: its
    /// counts are incomplete. Without such a row there is no warning.
    #[test]
    fn events_the_ebpf_collector_lost_are_flagged() {
        let mut data = fixture::run();
        let quiet = render(&data, &stats::compute(&data));
        assert!(!quiet.contains("eBPF collector lost"), "{quiet}");
        data.counters.push(crate::results::CounterRow {
            repeat: 0,
            mode: "s-spright".into(),
            phase: "measure".into(),
            source: "ebpf".into(),
            scope: "probe".into(),
            name: crate::experiment::counters::LOST_EVENTS.into(),
            value: 5.0,
        });
        let summary = render(&data, &stats::compute(&data));
        assert!(summary.contains("* **warning: the eBPF collector lost 5 events in s-spright, repeat 1"), "{summary}");
    }

    #[test]
    fn three_repeats_give_intervals_and_paired_ratios() {
        let data = three_repeats();
        let stats = stats::compute(&data);
        let summary = render(&data, &stats);
        let has = |s: &str| assert!(summary.contains(s), "summary lacks {s:?}:\n{summary}");
        has("3 repeats, modes interleaved");
        // CPU-s per 1000 requests 20, 22, 18: mean 20, sd 2, t(2) = 4.303.
        has("| s-spright | 10.0 [10.0, 10.0] | 0.50 [0.50, 0.50] | 0.99 [0.99, 0.99] | 20.00 [15.03, 24.97] |");
        // Drift scales both modes alike: the ratio, paired per repeat, does not move.
        has("| CPU per request Knative / S-SPRIGHT (kernel included) | 52.0x (derived: cores / req/s) | 4.5x [4.5, 4.5] |");
        assert_eq!(summary.matches("| s-spright | 1 | ok |").count() + summary.matches("| s-spright | 3 | ok |").count(), 2);
    }
}
