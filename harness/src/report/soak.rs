//! The soak section of `summary.md`: per mode how its rate came about and
//! its verdict - growth per metric against its tolerance - and per process
//! the numbers behind it, all from the stored rows
//! ([`crate::experiment::soak::verdicts`]).

use std::fmt::Write;

use crate::experiment::soak::{verdicts, Growth, ModeVerdict, ProcessCheck, MIB};
use crate::results::RunData;

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "**FAIL**"
    }
}

/// `+1.2 MiB fn3` for the process whose growth is the largest share of
/// what it may grow; `n.a.` when no process has the metric.
fn worst(v: &ModeVerdict, metric: impl Fn(&ProcessCheck) -> Option<&Growth>, scale: f64, unit: &str) -> String {
    let share = |g: &Growth| match g.allowed {
        Some(a) if a > 0.0 => g.growth() / a,
        Some(_) if g.growth() > 0.0 => f64::INFINITY,
        _ => g.growth().min(0.0),
    };
    let with: Vec<(&ProcessCheck, &Growth)> = v.processes.iter().filter_map(|p| Some((p, metric(p)?))).collect();
    // The first of equals: processes come gateway first.
    let Some((p, g)) = with.iter().rev().max_by(|a, b| share(a.1).total_cmp(&share(b.1))) else { return "n.a.".into() };
    let allowed = g.allowed.map_or(String::new(), |a| format!(" (allowed {})", fmt(a * scale, unit)));
    format!("{}{unit} {}{allowed}", signed(g.growth() * scale, unit), p.component)
}

/// MiB with one decimal, counts whole.
fn digits(unit: &str) -> usize {
    usize::from(!unit.is_empty())
}

fn fmt(v: f64, unit: &str) -> String {
    format!("{v:.0$}{unit}", digits(unit))
}

fn signed(v: f64, unit: &str) -> String {
    format!("{v:+.0$}", digits(unit))
}

/// `start / end / max` of a metric, scaled (`unit`: how it is shown).
fn three(g: Option<&Growth>, scale: f64, unit: &str) -> String {
    let n = digits(unit);
    g.map_or("n.a.".into(), |g| format!("{:.n$} / {:.n$} / {:.n$}", g.start * scale, g.end * scale, g.max * scale))
}

fn growth(g: Option<&Growth>, scale: f64, unit: &str) -> String {
    g.map_or("n.a.".into(), |g| {
        let allowed = g.allowed.map_or(String::new(), |a| format!(" ({})", fmt(a * scale, unit)));
        format!("{}{unit}{allowed}", signed(g.growth() * scale, unit))
    })
}

/// The section; empty for runs that are not soaks.
pub fn section(data: &RunData) -> String {
    let Some(soak) = &data.manifest.soak else { return String::new() };
    let mut t = String::new();
    let all = verdicts(data);
    let _ = writeln!(t, "## Soak: growth over {} s per mode\n", soak.duration_s);
    let _ = writeln!(t, "Made by `{}`.\n", soak.command);
    let rate = match (soak.load_fraction, soak.search_s) {
        (Some(f), Some(s)) => format!(
            "Each mode's rate is {:.0}% of the highest rate its saturation search passed - the profile's search (p99 and error bound as in the sweep) with at most {s} s of probes, its common-rate probe included, on a deployment of its own; the soak then ran on a fresh deployment",
            f * 100.0
        ),
        _ => "Every mode got the rate given by `--rate`".to_string(),
    };
    let _ = writeln!(
        t,
        "{rate}: open-loop Online Boutique tasks, the profile's warm-up, the soak (the phase the headline covers), then {} s without load. Every process of the mode was sampled every {} ms: resident memory (`/proc/PID/status`: `VmRSS`, of which `RssAnon` private and `RssShmem` shared), open descriptors (`/proc/PID/fd`), entries of the hash-type and socket-hash BPF maps it holds (found through `/proc/PID/fdinfo`, counted by key iteration; arrays are fixed-size and left out; n.a.: it holds none) and, for SPRIGHT's control plane, the slots in use in its pools (read from the pools). Tolerances: {}. Shared memory is reported, not checked: it is the pools' pages, faulted in as the round-robin allocator first reaches each slot, up to the pools' size. A process that exits or starts during the soak fails it.\n",
        soak.after_load_s,
        soak.sample_ms,
        soak.tolerances.describe(soak.after_load_s)
    );
    let _ = writeln!(
        t,
        "| mode | saturation: highest rate passed (tasks/s) | soak rate (tasks/s) | soak: requests, errors %, p99 ms | private memory growth over the soak, worst process | open descriptors growth at rest, worst process | BPF map entries growth at rest | pool slots in use after the load (allowed) | verdict |"
    );
    let _ = writeln!(t, "|---|---:|---:|---:|---|---|---|---:|---|");
    for v in &all {
        let record = soak.modes.iter().find(|m| m.mode == v.mode);
        let saturation = record.and_then(|r| r.saturation_tasks_s).map_or("- (--rate)".to_string(), |s| s.to_string());
        let rate = record.and_then(|r| r.rate_tasks_s).map_or("-".to_string(), |r| r.to_string());
        let slots: Vec<String> = v
            .processes
            .iter()
            .filter_map(|p| p.slots.as_ref())
            .map(|s| format!("{} ({})", s.after_load.map_or("not sampled".to_string(), |n| n.to_string()), s.allowed))
            .collect();
        let mut status = verdict(v.pass()).to_string();
        if let Some(p) = &v.problem {
            status.push_str(&format!(": {p}"));
        }
        if let Some(n) = v.overload_note().filter(|_| !v.pass()) {
            status.push_str(&format!(" - {n}"));
        }
        let load = format!(
            "{}, {:.2}%, {:.2}{}",
            v.requests,
            100.0 * v.errors as f64 / v.requests.max(1) as f64,
            v.p99_ms,
            if v.overloaded() { " **(overloaded)**" } else { "" }
        );
        let _ = writeln!(
            t,
            "| {} | {saturation} | {rate} | {load} | {} | {} | {} | {} | {status} |",
            v.mode,
            worst(v, |p| p.private_memory.as_ref(), 1.0 / MIB, " MiB"),
            worst(v, |p| p.fds.as_ref(), 1.0, ""),
            worst(v, |p| p.map_entries.as_ref(), 1.0, ""),
            if slots.is_empty() { "n.a.".into() } else { slots.join(", ") },
        );
    }
    for record in soak.modes.iter().filter(|r| !r.search.is_empty()) {
        let _ = writeln!(t, "\n* {}: search: {}", record.mode, record.search);
    }
    let _ = writeln!(t, "\nPer process (memory: medians over the start and end windows, max over the soak; descriptors and map entries: the last sample before the load, the last after it, and the highest of the run):\n");
    let _ = writeln!(
        t,
        "| mode | process | private memory MiB: start / end / max | growth (allowed) | resident memory MiB: start / end / max | shared memory (pool pages) MiB: start / end / max | open descriptors: before the load / after / max | growth (allowed) | BPF map entries: before the load / after / max | pool slots in use: soak max / after the load | verdict |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for v in &all {
        for p in &v.processes {
            let failures = p.failures();
            let why = if failures.is_empty() { String::new() } else { format!(": {}", failures.join("; ")) };
            let _ = writeln!(
                t,
                "| {} | {} (pid {}) | {} | {} | {} | {} | {} | {} | {} | {} | {}{why} |",
                v.mode,
                p.component,
                p.pid,
                three(p.private_memory.as_ref(), 1.0 / MIB, " MiB"),
                growth(p.private_memory.as_ref(), 1.0 / MIB, " MiB"),
                three(p.rss.as_ref(), 1.0 / MIB, " MiB"),
                three(p.shared_memory.as_ref(), 1.0 / MIB, " MiB"),
                three(p.fds.as_ref(), 1.0, ""),
                growth(p.fds.as_ref(), 1.0, ""),
                three(p.map_entries.as_ref(), 1.0, ""),
                p.slots.as_ref().map_or("n.a.".into(), |s| format!(
                    "{} / {}",
                    s.soak_max,
                    s.after_load.map_or("not sampled".to_string(), |n| n.to_string())
                )),
                verdict(p.pass()),
            );
        }
    }
    let _ = writeln!(t, "\nThe samples are in `resources.parquet` (and `.csv`); the figures `soak_MODE` draw them over time.\n");
    t
}
