//! A smoke experiment: two modes for a few seconds each produce a complete,
//! self-describing run directory.

use std::process::{Command, Stdio};

#[test]
fn a_smoke_run_writes_a_complete_run_directory() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "the experiment's s-spright mode needs root (eBPF); run the tests as root");
    let dir = std::env::temp_dir().join(format!("harness-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["experiment", "boutique", "--modes", "s-spright,knative", "--profile", "smoke", "--allow-unoptimized"])
        .args(["--collectors", "procfs,perf,interrupts,ebpf", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let harness_pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for f in
        ["manifest.yaml", "summary.md", "requests.parquet", "requests.csv", "cpu.parquet", "cpu.csv", "counters.parquet", "counters.csv"]
    {
        assert!(dir.join(f).is_file(), "{f} missing; stderr: {stderr}");
    }
    assert!(dir.join("figures/fig09_throughput.png").is_file());
    assert!(dir.join("figures/fig10_cdf_s-spright.svg").is_file());
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    assert!(manifest.contains("build_profile: debug"), "a debug measurement is labelled as such");
    assert_eq!(manifest.matches("status: ok").count(), 2, "{manifest}");
    // The runtimes counted their own (de)serializations: S-SPRIGHT's gateway
    // one HTTP request and one response per request, the Knative model's
    // queue-proxies their share; the shared counter files are gone.
    let counters = std::fs::read_to_string(dir.join("counters.csv")).unwrap();
    let value = |prefix: &str| -> f64 {
        counters.lines().find(|l| l.starts_with(prefix)).and_then(|l| l.rsplit(',').next()?.parse().ok()).unwrap_or(0.0)
    };
    assert!(value("s-spright,measure,runtime,gateway,serializations,") > 0.0, "{counters}");
    assert!(value("knative,measure,runtime,sidecar,deserializations,") > 0.0, "{counters}");
    assert!(value("s-spright,measure,perf,function,context_switches,") > 0.0, "{counters}");
    assert!(!std::path::Path::new(&format!("/dev/shm/spright-wire-{harness_pid}")).exists(), "counter files left behind");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("UNOPTIMIZED BUILD"), "{summary}");
    // Both modes served requests in their measured phase, with no errors.
    let stdout = String::from_utf8_lossy(&out.stdout);
    for mode in ["| s-spright | ok |", "| knative (local model of Knative's data path) | ok |"] {
        let row = stdout.lines().find(|l| l.starts_with(mode)).unwrap_or_else(|| panic!("{mode} row missing: {stdout}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells[4].parse::<f64>().unwrap() > 0.0, "{row}");
        assert_eq!(cells[5], "0", "{row}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Motion (trace replay, Knative scale-to-zero) and parking (concurrent
/// upload bursts) produce their run directories and Fig. 11 / Fig. 12.
#[test]
fn motion_and_parking_smoke_runs_draw_their_figures() {
    for (workload, fig) in [("motion", "fig11a_latency"), ("parking", "fig12b_cpu")] {
        let dir = std::env::temp_dir().join(format!("harness-smoke-{workload}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["experiment", workload, "--modes", "e-spright,knative", "--profile", "smoke", "--allow-unoptimized", "--out"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{workload}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(dir.join(format!("figures/{fig}.png")).is_file(), "{workload}: {fig} missing");
        let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
        assert_eq!(manifest.matches("status: ok").count(), 2, "{manifest}");
        let requests = std::fs::read_to_string(dir.join("requests.csv")).unwrap();
        assert!(requests.lines().count() > 5, "{workload}: {requests}");
        assert!(!requests.lines().skip(1).any(|l| l.split(',').nth(5) == Some("0")), "{workload}: unanswered requests");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
