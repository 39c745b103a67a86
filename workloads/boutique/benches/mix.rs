//! Online Boutique's request mix on S-, D- and E-SPRIGHT, side by side.
//!
//! `cargo bench -p boutique` (root for skmsg). For each transport: an
//! open-loop run at a fixed rate (latency measured from each request's
//! intended send time, so a slow server cannot hide its queueing) and a
//! closed-loop run at saturation. Reports throughput, p50/p99 per request
//! type and CPU-seconds per 1 000 requests for each process.
//!
//! The mix is WORKLOADS.md's: home 1, set currency 2, product 10, add to
//! cart 2 (product page, then add), view cart 3, checkout 1 (add, then
//! place order); every simulated user has its own session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use boutique::script::mix_task as task;
use testkit::{Http, Spright};

const RATE: f64 = 150.0;
const PHASE: Duration = Duration::from_secs(6);
const WORKERS: usize = 16;

#[derive(Default)]
struct Results {
    latencies: BTreeMap<&'static str, Vec<Duration>>,
    errors: u64,
    done: u64,
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1))).copied().unwrap_or_default()
}

fn cpu_by_process(sp: &Spright) -> BTreeMap<String, f64> {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                let f: Vec<String> = s.rsplit_once(')')?.1.split_whitespace().map(String::from).collect();
                Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / tick)
            })
            .unwrap_or(0.0)
    };
    let mut m = BTreeMap::new();
    m.insert("gateway+control".to_string(), cpu(sp.pid));
    for f in ["frontend", "currency", "productcatalog", "cart", "recommendation", "shipping", "checkout", "payment", "email", "ad"] {
        m.insert(f.to_string(), cpu(sp.function_pid(f)));
    }
    m
}

/// Runs the mix for `PHASE`: open loop at `rate` requests/s, or closed
/// loop (as fast as possible) when `rate` is `None`.
fn drive(sp: &Spright, rate: Option<f64>) -> (Results, f64) {
    let results = Arc::new(Mutex::new(Results::default()));
    let ticket = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (results, ticket, stop, addr) = (results.clone(), ticket.clone(), stop.clone(), sp.addr);
            std::thread::spawn(move || {
                let mut http = Http::connect(addr);
                let cookie = format!("shop_session=bench{w}.USD");
                while !stop.load(Ordering::Relaxed) {
                    let n = ticket.fetch_add(1, Ordering::Relaxed);
                    let intended = match rate {
                        Some(r) => start + Duration::from_secs_f64(n as f64 / r),
                        None => Instant::now(),
                    };
                    if intended > start + PHASE {
                        break;
                    }
                    if let Some(wait) = intended.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    for (kind, method, path, body) in task(n) {
                        let r = http.request_with(
                            method,
                            &path,
                            &[("cookie", &cookie), ("content-type", "application/x-www-form-urlencoded")],
                            body.as_bytes(),
                        );
                        let latency = intended.elapsed();
                        let mut res = results.lock().unwrap();
                        res.done += 1;
                        if r.status >= 500 {
                            res.errors += 1;
                        }
                        res.latencies.entry(kind).or_default().push(latency);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(PHASE);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    (Arc::try_unwrap(results).ok().unwrap().into_inner().unwrap(), elapsed)
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_boutique"));
    let chain = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain.yaml");
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
            let (mut res, secs) = drive(&sp, rate);
            let cpu1 = cpu_by_process(&sp);
            println!(
                "## {transport} ({}) - {label}: {:.0} req/s achieved, {} errors",
                spright::transport::TransportKind::mode_name(transport.parse().unwrap()),
                res.done as f64 / secs,
                res.errors
            );
            println!("| request type | count | p50 | p99 |\n|---|---:|---:|---:|");
            for (kind, lat) in res.latencies.iter_mut() {
                let n = lat.len();
                println!("| {kind} | {n} | {:.2} ms | {:.2} ms |", pct(lat, 0.5).as_secs_f64() * 1e3, pct(lat, 0.99).as_secs_f64() * 1e3);
            }
            let per_k = |p: &str| (cpu1[p] - cpu0[p]) / res.done.max(1) as f64 * 1000.0;
            let total: f64 = cpu1.keys().map(|p| per_k(p)).sum();
            let top: Vec<String> =
                cpu1.keys().map(|p| (p, per_k(p))).filter(|(_, v)| *v > 0.0).map(|(p, v)| format!("{p} {v:.2}")).collect();
            println!("CPU-seconds per 1000 requests: total {total:.2} ({})\n", top.join(", "));
        }
        assert!(sp.eventually(Duration::from_secs(5), |s| s.slots_in_use() == 0.0), "slots leaked");
        drop(sp);
    }
}
