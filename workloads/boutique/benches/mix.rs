//! Online Boutique's request mix on S-, D- and E-SPRIGHT, side by side.
//!
//! `cargo bench -p boutique` (root for skmsg). For each transport: an
//! open-loop run at a fixed rate (latency measured from each request's
//! intended send time, so a slow server cannot hide its queueing) and a
//! closed-loop run at saturation. Reports throughput, p50/p99 per request
//! type and CPU-seconds per 1 000 requests for each process.
//!
//! The mix is the load generator's (docs/workloads.md): home 1, set currency 2, product 10, add to
//! cart 2 (product page, then add), view cart 3, checkout 1 (add, then
//! place order); every simulated user has its own session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use boutique::script::mix_task as task;
use testkit::load::drive;
use testkit::Spright;

const RATE: f64 = 150.0;
const PHASE: Duration = Duration::from_secs(6);
const WORKERS: usize = 16;

fn cpu_by_process(sp: &Spright) -> BTreeMap<String, f64> {
    let cpu = testkit::proc::cpu_seconds_or_zero;
    let mut m = BTreeMap::new();
    m.insert("gateway+control".to_string(), cpu(sp.pid));
    for f in ["frontend", "currency", "productcatalog", "cart", "recommendation", "shipping", "checkout", "payment", "email", "ad"] {
        m.insert(f.to_string(), cpu(sp.function_pid(f)));
    }
    m
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_boutique"));
    let chain = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain.yaml");
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    println!("# Online Boutique request mix on SPRIGHT transports");
    println!(
        "# CPUs: {:?}, load generator and deployment unpinned, {} build",
        spright::sys::allowed_cpus(),
        if cfg!(debug_assertions) { "UNOPTIMIZED" } else { "optimized" }
    );
    println!("# fixed rate: {RATE} tasks/s open loop for {PHASE:?} (a task is 1-2 requests: ~1.16 requests per task); saturation: {WORKERS} closed-loop connections for {PHASE:?}\n");
    for transport in ["skmsg", "eventring", "ring"] {
        if filter.as_deref().is_some_and(|f| !transport.contains(f)) || (transport == "skmsg" && !root) {
            continue;
        }
        let sp = Spright::start(&bin, &chain, transport);
        for (label, rate) in [("fixed rate", Some(RATE)), ("saturation", None)] {
            let cpu0 = cpu_by_process(&sp);
            let mut res = drive(sp.addr, rate, PHASE, WORKERS, task, |w| format!("shop_session=bench{w}.USD"));
            let secs = res.elapsed.as_secs_f64();
            let cpu1 = cpu_by_process(&sp);
            println!(
                "## {transport} ({}) - {label}: {:.0} req/s achieved, {} errors",
                spright::transport::TransportKind::mode_name(transport.parse().unwrap()),
                res.requests as f64 / secs,
                res.errors_5xx
            );
            println!("| request type | count | p50 | p99 |\n|---|---:|---:|---:|");
            let kinds: Vec<&str> = res.latencies.keys().copied().collect();
            for kind in kinds {
                let n = res.latencies[kind].len();
                println!("| {kind} | {n} | {:.2} ms | {:.2} ms |", res.quantile_ms(kind, 0.5), res.quantile_ms(kind, 0.99));
            }
            let per_k = |p: &str| (cpu1[p] - cpu0[p]) / res.requests.max(1) as f64 * 1000.0;
            let total: f64 = cpu1.keys().map(|p| per_k(p)).sum();
            let top: Vec<String> =
                cpu1.keys().map(|p| (p, per_k(p))).filter(|(_, v)| *v > 0.0).map(|(p, v)| format!("{p} {v:.2}")).collect();
            println!("CPU-seconds per 1000 requests: total {total:.2} ({})\n", top.join(", "));
        }
        assert!(sp.eventually(Duration::from_secs(5), |s| s.slots_in_use() == 0.0), "slots leaked");
        drop(sp);
    }
}
