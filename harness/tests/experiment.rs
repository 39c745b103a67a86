//! Smoke experiments (debug builds, seconds per mode): each kind of run
//! writes a complete, self-describing run directory; repeats interleave and
//! give intervals; the saturation search records every probe; a failed mode
//! makes the run exit non-zero after writing everything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-smoke-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `harness experiment ARGS --profile smoke --allow-unoptimized --out DIR`.
fn experiment(args: &[&str], dir: &Path) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("experiment")
        .args(args)
        .args(["--profile", "smoke", "--allow-unoptimized", "--out"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

/// A CSV table as rows of cells (the run's tables hold no commas in cells).
fn csv(dir: &Path, table: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join(format!("{table}.csv"))).unwrap_or_else(|e| panic!("{table}.csv: {e}"));
    text.lines().map(|l| l.split(',').map(|c| c.trim_matches('"').to_string()).collect()).collect()
}

/// The value of a counter (columns: repeat, mode, phase, source, scope, name, value).
fn counter(rows: &[Vec<String>], key: [&str; 6]) -> f64 {
    rows.iter().find(|r| r[..6] == key).and_then(|r| r[6].parse().ok()).unwrap_or(0.0)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_smoke_run_writes_a_complete_run_directory() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the experiment's s-spright mode needs root (eBPF); run the tests as root");
    let dir = run_dir("boutique");
    let (out, harness_pid) = experiment(&["boutique", "--modes", "s-spright,knative", "--collectors", "procfs,perf,interrupts,ebpf"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    for table in ["requests", "cpu", "cpustat", "counters"] {
        for ext in ["parquet", "csv"] {
            assert!(dir.join(format!("{table}.{ext}")).is_file(), "{table}.{ext} missing; stderr: {}", stderr(&out));
        }
    }
    assert!(dir.join("figures/fig09_throughput.png").is_file());
    assert!(dir.join("figures/fig10_cdf_s-spright.svg").is_file());
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    assert!(manifest.contains("build_profile: debug"), "a debug measurement is labelled as such");
    assert_eq!(manifest.matches("status: ok").count(), 2, "{manifest}");
    for phase in ["label: idle", "label: warmup", "label: measure"] {
        assert_eq!(manifest.matches(phase).count(), 2, "{phase}: {manifest}");
    }
    // The runtimes counted their own (de)serializations; the eBPF audit saw
    // the gateway's HTTP and S-SPRIGHT's descriptors; the counter files are gone.
    let counters = csv(&dir, "counters");
    assert!(counter(&counters, ["0", "s-spright", "measure", "runtime", "gateway", "serializations"]) > 0.0);
    assert!(counter(&counters, ["0", "knative", "measure", "runtime", "sidecar", "deserializations"]) > 0.0);
    assert!(counter(&counters, ["0", "s-spright", "measure", "perf", "function", "context_switches"]) > 0.0);
    assert!(counter(&counters, ["0", "s-spright", "measure", "ebpf", "gateway", "payload_recv"]) > 0.0);
    assert!(counter(&counters, ["0", "s-spright", "measure", "ebpf", "function", "descriptor_recv"]) > 0.0);
    assert_eq!(counter(&counters, ["0", "s-spright", "measure", "ebpf", "function", "payload_send"]), 0.0, "no payload in the chain");
    assert!(counters.iter().any(|r| r[3] == "irq" && r[4].starts_with("cpu")), "interrupts per CPU");
    assert!(!Path::new(&format!("/dev/shm/spright-wire-{harness_pid}")).exists(), "counter files left behind");
    // /proc/stat per CPU, sampled through every phase.
    let cpustat = csv(&dir, "cpustat");
    assert!(cpustat.iter().any(|r| r[2] == "measure") && cpustat.iter().any(|r| r[2] == "idle"));
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("UNOPTIMIZED BUILD"), "{summary}");
    assert!(summary.contains("single run: no confidence interval"), "{summary}");
    // Both modes served requests in their measured phase, with no errors.
    for mode in ["| s-spright | 1 | ok |", "| knative (local model of Knative's data path, pre-warmed) | 1 | ok |"] {
        let row = summary.lines().find(|l| l.starts_with(mode)).unwrap_or_else(|| panic!("{mode} row missing: {summary}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(cells[5].parse::<f64>().unwrap() > 0.0, "{row}");
        assert_eq!(cells[6], "0", "{row}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--sweep --repeat 3`: each repeat runs the modes in a rotated order,
/// every probe of the saturation search is recorded, and the summary gives
/// intervals.
#[test]
fn repeated_sweeps_record_every_probe_and_give_intervals() {
    let dir = run_dir("sweep");
    let (out, _) = experiment(&["boutique", "--sweep", "--modes", "e-spright,grpc", "--repeat", "3"], &dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    assert_eq!(manifest.matches("status: ok").count(), 6, "{manifest}");
    // Rotation: repeat 1 starts with e-spright, repeat 2 with grpc.
    let order: Vec<&str> = manifest.lines().filter_map(|l| l.trim().strip_prefix("mode: ")).collect();
    assert_eq!(order, ["e-spright", "grpc", "grpc", "e-spright", "e-spright", "grpc"], "{manifest}");
    let probes = csv(&dir, "probes");
    for mode in ["e-spright", "grpc"] {
        for repeat in ["0", "1", "2"] {
            let mine: Vec<&Vec<String>> = probes.iter().filter(|r| r[0] == repeat && r[1] == mode).collect();
            assert!(mine.len() >= 2, "{mode} repeat {repeat}: {probes:?}");
            assert_eq!(mine[0][2], "common", "the first probe is at the common rate");
        }
    }
    // Requests are kept for the warm-up and the common-rate probe, not for the search's probes.
    let requests = csv(&dir, "requests");
    assert!(requests.iter().skip(1).all(|r| r[2] == "warmup" || r[2] == "common"), "phases of stored requests");
    assert!(requests.iter().any(|r| r[0] == "2"), "the third repeat's requests");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("3 repeats, modes interleaved"), "{summary}");
    assert!(summary.contains("## Open-loop saturation search"), "{summary}");
    let headline = summary.lines().find(|l| l.starts_with("| e-spright |")).unwrap();
    assert!(headline.contains(" ["), "an interval in the headline: {headline}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Motion (trace replay, the Knative model scaling to zero) and parking
/// (concurrent upload bursts, pre-warmed) draw Fig. 11 / Fig. 12.
#[test]
fn motion_and_parking_smoke_runs_draw_their_figures() {
    for (workload, knative, fig) in [("motion", "knative-stz", "fig11a_latency"), ("parking", "knative", "fig12b_cpu")] {
        let dir = run_dir(workload);
        let (out, _) = experiment(&[workload, "--modes", &format!("e-spright,{knative}")], &dir);
        assert!(out.status.success(), "{workload}: {}", stderr(&out));
        assert!(dir.join(format!("figures/{fig}.png")).is_file(), "{workload}: {fig} missing");
        let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
        assert_eq!(manifest.matches("status: ok").count(), 2, "{manifest}");
        let requests = csv(&dir, "requests");
        assert!(requests.len() > 5, "{workload}: {requests:?}");
        assert!(!requests.iter().skip(1).any(|r| r[6] == "0"), "{workload}: unanswered requests");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A mode that cannot run fails the run - after everything else was
/// measured and written, and marked in the summary.
#[test]
fn a_failed_mode_makes_the_run_exit_non_zero_after_writing_everything() {
    let dir = run_dir("failed");
    let (out, _) = experiment(&["motion", "--modes", "grpc,e-spright"], &dir);
    assert!(!out.status.success(), "grpc does not run motion: the run must fail");
    assert!(stderr(&out).contains("the run is incomplete"), "{}", stderr(&out));
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    assert_eq!(manifest.matches("status: ok").count(), 1, "e-spright still ran: {manifest}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("## Incomplete") && summary.contains("**grpc, repeat 1: failed:"), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}
