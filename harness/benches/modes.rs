//! Every mode side by side at one fixed, moderate rate of the Online
//! Boutique mix: p50/p99 per request type and CPU-seconds per 1 000
//! requests per component group. `cargo bench -p harness` (root for
//! s-spright). The load is open loop (latency from each request's intended
//! send time); everything is unpinned on this machine and says so.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use boutique::script::mix_task;
use testkit::load::drive;
use testkit::proc::cpu_seconds_or_zero as cpu_seconds;

const RATE: f64 = 60.0;
const PHASE: Duration = Duration::from_secs(8);
const WORKERS: usize = 12;

fn group_cpu(components: &[(String, u32)]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for (role, pid) in components {
        *m.entry(role.clone()).or_insert(0.0) += cpu_seconds(*pid);
    }
    m
}

fn main() {
    let root = unsafe { libc::geteuid() } == 0;
    println!("# Online Boutique, every mode at {RATE} tasks/s (open loop, {PHASE:?}, {WORKERS} keep-alive connections)");
    println!(
        "# CPUs {:?}, load generator and deployments unpinned; {} build",
        spright::sys::allowed_cpus(),
        if cfg!(debug_assertions) { "UNOPTIMIZED" } else { "optimized" }
    );
    println!("# knative = a local model of Knative Serving's data path (ingress, queue-proxies, containers), not Knative\n");
    for mode in ["s-spright", "d-spright", "e-spright", "knative", "grpc"] {
        if mode == "s-spright" && !root {
            println!("## {mode}: skipped (needs root)\n");
            continue;
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["up", "--mode", mode, "--workload", "boutique", "--listen", "127.0.0.1:0", "--list-components"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut components) = (None::<SocketAddr>, Vec::new());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && line.trim() != "components end" {
            if let Some(a) = line.strip_prefix("ready http://") {
                addr = a.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if line.starts_with("component ") {
                let role = line.split_whitespace().find_map(|w| w.strip_prefix("role=")).unwrap().to_string();
                let pid = line.split_whitespace().find_map(|w| w.strip_prefix("pid=")).unwrap().parse().unwrap();
                components.push((role, pid));
            }
            line.clear();
        }
        let addr = addr.expect("ready line");
        let cpu0 = group_cpu(&components);
        let mut res = drive(addr, Some(RATE), PHASE, WORKERS, mix_task, |w| format!("shop_session=bench{w}.USD"));
        let cpu1 = group_cpu(&components);
        let n = res.requests;
        println!("## {mode}: {n} requests, {} errors, {} processes", res.errors_5xx, components.len());
        println!("| request type | p50 | p99 |\n|---|---:|---:|");
        let kinds: Vec<&str> = res.latencies.keys().copied().collect();
        for kind in kinds {
            println!("| {kind} | {:.2} ms | {:.2} ms |", res.quantile_ms(kind, 0.5), res.quantile_ms(kind, 0.99));
        }
        let per_k: Vec<String> = cpu1.keys().map(|g| format!("{g} {:.2}", (cpu1[g] - cpu0[g]) / n.max(1) as f64 * 1000.0)).collect();
        let total: f64 = cpu1.keys().map(|g| cpu1[g] - cpu0[g]).sum::<f64>() / n.max(1) as f64 * 1000.0;
        println!("CPU-seconds per 1000 requests: total {total:.2} ({})\n", per_k.join(", "));
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
    }
}
