//! The admin endpoint, `spright stats`, and huge-page pools.

mod common;

use std::time::Duration;

use common::{example_chain, Http, Spright};
use spright::descriptor::ChainId;
use spright::pool::{PageKind, Pool, PoolGeometry};

#[test]
fn healthz_metrics_and_stats_table() {
    let sp = Spright::start(&example_chain(), "eventring");
    assert_eq!(Http::connect(sp.addr).request("POST", "/transform", b"a b").status, 200);
    let (status, body) = spright::control::admin::fetch(sp.admin, "/healthz").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spright")).args(["stats", "--admin", &sp.admin.to_string()]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("http_responses_total") && l.contains("status=200") && l.trim_end().ends_with(" 1")),
        "{table}"
    );
    assert!(table.contains("transport=eventring,mode=e-spright"), "{table}");

    // After a crash /healthz is 503 until the supervisor has it back (the
    // restart can beat our polling, so only the recovery is asserted).
    let pid = sp.function_pid("render");
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let healthy_again = sp.eventually(Duration::from_secs(10), |s| {
        s.function_pid("render") != pid && spright::control::admin::fetch(s.admin, "/healthz").map(|(c, _)| c == 200).unwrap_or(false)
    });
    assert!(healthy_again, "render never came back");
}

#[test]
fn stats_without_a_server_is_one_clear_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_spright")).args(["stats", "--admin", "127.0.0.1:1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach admin endpoint"));
}

/// With huge pages reserved, pools are hugetlb-backed (and say so).
#[test]
fn pools_use_huge_pages_when_reserved() {
    const KNOB: &str = "/proc/sys/vm/nr_hugepages";
    let before: u64 = std::fs::read_to_string(KNOB).unwrap().trim().parse().unwrap();
    std::fs::write(KNOB, (before + 8).to_string()).expect("reserve huge pages (needs root)");
    let result = std::panic::catch_unwind(|| {
        let p = Pool::create(ChainId(1), PoolGeometry { slots: 64, slot_payload: 16 << 10 }).unwrap();
        assert_eq!(p.page_kind(), PageKind::Huge);
        assert_eq!(p.mapped_bytes() % (2 << 20), 0);
        let q = Pool::open(p.fd().try_clone_to_owned().unwrap()).unwrap();
        assert_eq!(q.page_kind(), PageKind::Huge);
        let s = p.alloc(spright::pool::Lease::GATEWAY).unwrap();
        p.free(s).unwrap();
    });
    std::fs::write(KNOB, before.to_string()).unwrap();
    result.unwrap();
    let plain = Pool::create(ChainId(1), PoolGeometry { slots: 4, slot_payload: 1024 }).unwrap();
    if before == 0 {
        assert_eq!(plain.page_kind(), PageKind::Normal);
    }
}
