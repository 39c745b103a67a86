//! Idle cost: event-driven transports sleep (zero CPU), D-SPRIGHT spins.

mod common;

use std::time::Duration;

use common::{example_chain, tree_cpu_seconds, Http, Spright};

const WINDOW: Duration = Duration::from_secs(3);

/// CPU (in cores) the deployment's process tree uses while idle.
fn idle_cores(transport: &str) -> f64 {
    let sp = Spright::start(&example_chain(), transport);
    let mut http = Http::connect(sp.addr);
    for _ in 0..20 {
        assert_eq!(http.request("POST", "/transform", b"warm up").status, 200);
    }
    drop(http);
    std::thread::sleep(Duration::from_millis(500));
    let before = tree_cpu_seconds(sp.pid);
    std::thread::sleep(WINDOW);
    let after = tree_cpu_seconds(sp.pid);
    (after - before) / WINDOW.as_secs_f64()
}

#[test]
fn skmsg_uses_no_cpu_when_idle() {
    let cores = idle_cores("skmsg");
    assert!(cores < 0.02, "skmsg chain used {:.1}% of a core while idle", cores * 100.0);
}

#[test]
fn eventring_uses_no_cpu_when_idle() {
    let cores = idle_cores("eventring");
    assert!(cores < 0.02, "eventring chain used {:.1}% of a core while idle", cores * 100.0);
}

#[test]
fn ring_busy_polls_when_idle() {
    let cores = idle_cores("ring");
    assert!(cores > 0.5, "ring chain used only {:.1}% of a core while idle: not polling?", cores * 100.0);
}
