//! `summary.md`: the run's tables and the paper's headline ratios next to
//! ours, from the stored files only.

use std::fmt::Write;

use super::stats::{ModeStats, SweepPoint, GROUPS};
use crate::results::RunData;

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn find<'a>(stats: &'a [ModeStats], mode: &str) -> Option<&'a ModeStats> {
    stats.iter().find(|s| s.mode == mode && s.run.ok() && s.requests > 0)
}

/// The modes table (also printed on stdout at the end of a run).
pub fn modes_table(stats: &[ModeStats]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| mode | status | users | req/s | errors | p50 ms | p99 ms | CPU cores | CPU-s / 1000 req (gateway / sidecar / function / orchestrator) | idle cores | load gen cores |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    for s in stats {
        let groups: Vec<String> = GROUPS[..4]
            .iter()
            .map(|g| if s.cpu_s.contains_key(*g) { format!("{:.2}", s.cpu_per_1000(Some(g))) } else { "-".into() })
            .collect();
        let load = s.cpu_s.get("load").copied().unwrap_or(0.0) / s.run.measure_s().max(1e-9);
        let flags = if s.run.flags.is_empty() { String::new() } else { format!(" ({})", s.run.flags.join("; ")) };
        let _ = writeln!(
            t,
            "| {} | {}{} | {} | {:.1} | {} | {} | {} | {:.2} | {:.2} ({}) | {:.3} | {:.2} |",
            s.run.label,
            s.run.status,
            flags,
            if s.run.users > 0 { s.run.users.to_string() } else { "-".into() },
            s.throughput,
            s.errors,
            ms(s.latency_all.p50_ms),
            ms(s.latency_all.p99_ms),
            s.cores(),
            s.cpu_per_1000(None),
            groups.join(" / "),
            s.idle_total(),
            load,
        );
    }
    t
}

fn latency_table(stats: &[ModeStats]) -> String {
    let mut types: Vec<&String> = stats.iter().flat_map(|s| s.latency.keys()).collect();
    types.sort_by_key(|t| super::stats::chain_label(t));
    types.dedup();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| request type | {} |",
        stats.iter().map(|s| format!("{} p50 / p90 / p99 ms (n)", s.mode)).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(t, "|---|{}", "---:|".repeat(stats.len()));
    for ty in types {
        let cells: Vec<String> = stats
            .iter()
            .map(|s| match s.latency.get(ty) {
                Some(l) => format!("{} / {} / {} ({})", ms(l.p50_ms), ms(l.p90_ms), ms(l.p99_ms), l.count),
                None => "-".into(),
            })
            .collect();
        let _ = writeln!(t, "| {} | {} |", super::stats::chain_label(ty), cells.join(" | "));
    }
    t
}

fn counters_table(stats: &[ModeStats]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| mode | context switches / req (gateway / sidecar / function / orchestrator) | perf: switches / migrations per req (system under test) | hard IRQs / req | NET_RX / req | NET_TX / req | softirqs / req (all) |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|");
    for s in stats.iter().filter(|s| s.requests > 0) {
        let sw: Vec<String> = GROUPS[..4]
            .iter()
            .map(|g| s.switches.get(*g).map(|v| format!("{:.1}", s.per_request(*v as f64))).unwrap_or("-".into()))
            .collect();
        let sut = |event: &str| s.per_request_where(|src, g, n| src == "perf" && g != "load" && n == event);
        let perf = if s.has_source("perf") { format!("{:.1} / {:.2}", sut("context_switches"), sut("cpu_migrations")) } else { "-".into() };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            s.mode,
            sw.join(" / "),
            perf,
            s.counter_per_request("irq", |_| true),
            s.counter_per_request("softirq", |n| n == "NET_RX"),
            s.counter_per_request("softirq", |n| n == "NET_TX"),
            s.counter_per_request("softirq", |_| true),
        );
    }
    t
}

/// The legs of the overhead audit: the front door (SPRIGHT gateway,
/// Knative ingress) and the chain behind it.
pub const EXTERNAL: &[&str] = &["gateway"];
pub const CHAIN: &[&str] = &["sidecar", "function", "orchestrator"];

/// Copies: socket sends (user to kernel) plus kernel-to-user copies.
pub const COPIES: &[&str] = &["sock_send", "skb_copy_to_user"];
pub const SWITCHES: &[&str] = &["switch_out"];
pub const STACK: &[&str] = &["netif_receive_skb", "net_dev_xmit"];

fn audit_table(stats: &[ModeStats]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| mode | leg | copies | bytes copied | context switches | hard IRQs | soft IRQs | protocol stack passes | serializations | deserializations |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in stats.iter().filter(|s| s.requests > 0 && s.has_source("ebpf")) {
        for (leg, groups) in [("external", EXTERNAL), ("chain", CHAIN)] {
            let irqs = if leg == "external" {
                (format!("{:.2}", s.counter_per_request("irq", |_| true)), format!("{:.2}", s.counter_per_request("softirq", |_| true)))
            } else {
                ("(machine-wide)".into(), "(machine-wide)".into())
            };
            let wire = |name: &str| {
                if s.has_source("runtime") {
                    format!("{:.2}", s.source_per_request("runtime", groups, &[name]))
                } else {
                    "n/i".to_string()
                }
            };
            let _ = writeln!(
                t,
                "| {} | {leg} | {:.2} | {:.0} | {:.2} | {} | {} | {:.2} | {} | {} |",
                s.mode,
                s.ebpf_per_request(groups, COPIES),
                s.ebpf_per_request(groups, &["sock_send_bytes", "skb_copy_to_user_bytes"]),
                s.ebpf_per_request(groups, SWITCHES),
                irqs.0,
                irqs.1,
                s.ebpf_per_request(groups, STACK),
                wire("serializations"),
                wire("deserializations"),
            );
        }
    }
    let _ = writeln!(t, "| paper: Knative | whole chain | 15 | | 15 | 25 (hard + soft) | | 12 | 8 | 7 |");
    let _ = writeln!(t, "| paper: SPRIGHT | whole chain (0 copies, 0 stack passes, 0 (de)serializations inside) | 3 | | 7 | 11 (hard + soft) | | 3 | 2 | 1 |");
    t
}

/// (claim, paper's ratio, our ratio or why there is none, note)
fn ratios(stats: &[ModeStats]) -> Vec<(String, String, String, String)> {
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}x", a / b),
        _ => "not measured in this run".into(),
    };
    let s = find(stats, "s-spright");
    let d = find(stats, "d-spright");
    let k = find(stats, "knative");
    let g = find(stats, "grpc");
    let tput = |m: Option<&ModeStats>| m.map(|m| m.throughput);
    let p99 = |m: Option<&ModeStats>| m.map(|m| m.latency_all.p99_ms);
    let cpu = |m: Option<&ModeStats>| m.map(|m| m.cpu_per_1000(None));
    let closed = "closed loop: throughput follows the users each mode was given (the paper's 5:1), not capacity";
    vec![
        ("throughput S-SPRIGHT / Knative".into(), "6x".into(), ratio(tput(s), tput(k)), closed.into()),
        ("throughput S-SPRIGHT / gRPC".into(), "5x".into(), ratio(tput(s), tput(g)), closed.into()),
        (
            "tail latency (p99) Knative / S-SPRIGHT".into(),
            "up to 70x (Knative overloaded)".into(),
            ratio(p99(k), p99(s)),
            "our Knative is a local model at 1/100 of the paper's users; it is overloaded only if the profile pushes it there".into(),
        ),
        (
            "CPU Knative / S-SPRIGHT (per request)".into(),
            "~8.7x (26 vs 3 cores at 6x less load: ~50x per request)".into(),
            ratio(cpu(k), cpu(s)),
            "per request, so different loads compare; one 2-core machine, the model's ingress is not Envoy".into(),
        ),
        ("CPU gRPC / S-SPRIGHT (per request)".into(), "~12x (36 vs 3 cores)".into(), ratio(cpu(g), cpu(s)), "per request".into()),
        (
            "CPU D-SPRIGHT / S-SPRIGHT (per request)".into(),
            "~3.7x (11 vs 3 cores)".into(),
            ratio(cpu(d), cpu(s)),
            "11 pollers on the cores given to the system: every poller spins, so this grows as load falls".into(),
        ),
    ]
}

fn sweep_section(data: &RunData, points: &[SweepPoint]) -> String {
    let mut t = String::new();
    let Some(spec) = &data.manifest.profile.sweep else { return t };
    let _ = writeln!(
        t,
        "## Open-loop rate sweep\n\nOnline Boutique mix tasks (1-2 requests each) at each offered rate for {} s, {} arrivals, {} sessions; \
         latency from each task's intended send time (no coordinated omission); achieved = requests answered (not 5xx) within the step.\n",
        spec.step_s, spec.arrivals, spec.sessions
    );
    let _ = writeln!(t, "| mode | offered tasks/s | achieved req/s | p50 ms | p99 ms | errors % | requests |");
    let _ = writeln!(t, "|---|---:|---:|---:|---:|---:|---:|");
    for p in points {
        let _ = writeln!(
            t,
            "| {} | {} | {:.1} | {} | {} | {:.2} | {} |",
            p.mode,
            p.offered,
            p.achieved_rps,
            ms(p.p50_ms),
            ms(p.p99_ms),
            p.error_pct,
            p.requests
        );
    }
    let sat = super::stats::saturation(points, spec.p99_bound_ms);
    let _ = writeln!(t, "\n### Saturation points (p99 <= {} ms, errors < 1%)\n", spec.p99_bound_ms);
    let _ = writeln!(t, "| mode | highest sustained offered tasks/s | achieved req/s there |");
    let _ = writeln!(t, "|---|---:|---:|");
    let top = spec.rates.iter().copied().fold(0.0, f64::max);
    let unsaturated = |m: &str| sat.get(m).copied().flatten().is_some_and(|(o, _)| o >= top);
    for (mode, s) in &sat {
        match s {
            Some((o, a)) if *o >= top => {
                let _ = writeln!(t, "| {mode} | >= {o} (never saturated: raise the rates) | {a:.1} |");
            }
            Some((o, a)) => {
                let _ = writeln!(t, "| {mode} | {o} | {a:.1} |");
            }
            None => {
                let _ = writeln!(t, "| {mode} | none of the offered rates | - |");
            }
        }
    }
    let rps = |m: &str| sat.get(m).copied().flatten().map(|(_, a)| a);
    // A mode that never saturated only bounds the ratio.
    let ratio = |a: &str, b: &str| match (rps(a), rps(b)) {
        (Some(_), Some(_)) if unsaturated(b) => "inconclusive (the second mode never saturated)".to_string(),
        (Some(x), Some(y)) if y > 0.0 && unsaturated(a) => format!(">= {:.1}x", x / y),
        (Some(x), Some(y)) if y > 0.0 => format!("{:.1}x", x / y),
        _ => "not measured".into(),
    };
    let _ = writeln!(t, "\n| saturation throughput | paper | measured here |\n|---|---|---|");
    let _ = writeln!(t, "| S-SPRIGHT / Knative | 6x | {} |", ratio("s-spright", "knative"));
    let _ = writeln!(t, "| S-SPRIGHT / gRPC | 5x | {} |", ratio("s-spright", "grpc"));
    let _ = writeln!(t, "| E-SPRIGHT / Knative | - | {} |", ratio("e-spright", "knative"));
    t
}

pub fn render(data: &RunData, stats: &[ModeStats], sweep: &[SweepPoint]) -> String {
    let m = &data.manifest;
    let mut out = String::new();
    let _ = writeln!(out, "# {} - run of {}\n", m.experiment, m.started_at);
    if m.build_profile != "release" {
        let _ = writeln!(out, "**WARNING: UNOPTIMIZED BUILD ({}). These numbers are not valid measurements.**\n", m.build_profile);
    }
    let _ = writeln!(out, "Profile `{}`: {}\n", m.profile_name, m.profile.note.trim());
    let _ = writeln!(
        out,
        "Machine: {} ({} cores, allowed {:?}), kernel {}, git {}, build {}. Root: {}; BPF: {}. Pinning: load generator {:?}, system under test {:?}. Seed {}.\n",
        m.cpu_model,
        m.cores,
        m.allowed_cpus,
        m.kernel,
        m.git_revision,
        m.build_profile,
        m.root,
        m.bpf,
        m.profile.pin.load,
        m.profile.pin.system,
        m.seed
    );
    let _ =
        writeln!(out, "\"knative\" is a local model of Knative Serving's data path (ingress, queue-proxies, containers), not Knative.\n");
    for w in &m.warnings {
        let _ = writeln!(out, "* warning: {w}");
    }
    if !m.warnings.is_empty() {
        out.push('\n');
    }
    if data.manifest.load_kind == "sweep" {
        out.push_str(&sweep_section(data, sweep));
        let _ = writeln!(out, "\n## CPU and counters over the whole sweep\n");
    }
    let _ = writeln!(out, "## Throughput, latency and CPU (measured phase)\n");
    out.push_str(&modes_table(stats));
    let _ = writeln!(
        out,
        "\nCPU is utime + stime from procfs of every component process, summed per group over the measured phase; \
         idle cores are measured with the deployment up and no load. The load generator (goose, in the harness process, with the collectors) is shown apart.\n"
    );
    let _ = writeln!(out, "## Latency per request type\n");
    out.push_str(&latency_table(stats));
    let _ = writeln!(out, "\n## Context switches and interrupts per request\n");
    out.push_str(&counters_table(stats));
    let _ = writeln!(
        out,
        "\nContext switches: procfs (voluntary + involuntary, every thread) per component group, and software perf counters (`PERF_COUNT_SW_CONTEXT_SWITCHES`, `CPU_MIGRATIONS`, kernel included) over every thread of the system under test. Interrupts: machine-wide deltas of `/proc/interrupts` and `/proc/softirqs` over the measured phase divided by its requests (the load generator's share included: one machine).\n"
    );
    let _ = writeln!(out, "## Overhead audit, per request\n");
    if stats.iter().any(|s| s.has_source("ebpf")) {
        out.push_str(&audit_table(stats));
        let _ = writeln!(
            out,
            "\nMeasured with eBPF tracepoints per process (`system/bpf/audit.bpf.c`): copies = `sock:sock_send_length` (user to kernel) + \
             `skb:skb_copy_datagram_iovec` (kernel to user); context switches = `sched:sched_switch` of the leg's processes; protocol stack passes = \
             `net:netif_receive_skb` + `net:net_dev_xmit` in the leg's process context. External leg = the front door's processes (SPRIGHT \
             gateway, Knative ingress; gRPC has none: its frontend is a function). IRQs are machine-wide (procfs) and shown on the external row. \
             SPRIGHT's descriptor sends count as sends (16 bytes each): the payload itself is never copied. (De)serializations are \
             counted by the runtimes themselves (`spright::wire`): one per message encoded or decoded at each layer in each process - \
             an HTTP request or response parsed or written, a JSON RPC body, a protobuf message (n/i: not collected). The paper's rows are from the talk's slides (counted by hand, per chain).\n"
        );
    } else {
        let _ =
            writeln!(out, "Not collected in this run (the eBPF collector needs root and the `ebpf` collector in the experiment file).\n");
    }
    let _ = writeln!(out, "## The paper's headline ratios and ours\n");
    let _ = writeln!(out, "| claim | paper | measured here | note |");
    let _ = writeln!(out, "|---|---|---|---|");
    for (claim, paper, ours, note) in ratios(stats) {
        let _ = writeln!(out, "| {claim} | {paper} | {ours} | {note} |");
    }
    out
}
