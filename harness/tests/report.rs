//! `harness figures RUN_DIR` on the committed fixture run: every figure is
//! drawn and the summary's numbers are the fixture's.

use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_fixture() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/run-small");
    let dst = std::env::temp_dir().join(format!("harness-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    dst
}

#[test]
fn figures_and_summary_come_from_the_stored_files_alone() {
    let dir = copy_fixture();
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).arg("figures").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for fig in ["fig09_throughput", "fig10_cdf_s-spright", "fig10_cdf_knative", "fig10_latency_knative", "fig10_cpu_s-spright"] {
        for ext in ["png", "svg"] {
            let f = dir.join("figures").join(format!("{fig}.{ext}"));
            assert!(f.metadata().map(|m| m.len() > 1000).unwrap_or(false), "{} missing or empty", f.display());
        }
    }
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    let has = |line: &str| assert!(summary.contains(line), "summary lacks {line:?}:\n{summary}");
    // s-spright: 100 requests in 10 s, latencies 10..1000 us; CPU 0 busy 2.0 s
    // (the headline, kernel included), its processes 1.5 CPU-s (1.0 gateway, 0.5 function).
    has("| s-spright | 10.0 | 0.50 | 0.99 | 20.00 | 0.200 |");
    // knative: 50 requests, 100..5000 us; CPU 0 busy 4.5 s; processes 4 CPU-s.
    has("| 5.0 | 2.50 | 5.00 | 90.00 | 0.450 |");
    has("| s-spright | 1 | ok | 10 | 10.0 | 0 | 0.50 | 0.99 | 0.200 | 20.00 | 10.00 / - / 5.00 / - | 0.000 | 0.50 |");
    // No eBPF collector: the headline is the system CPU's busy time; the
    // processes' 1.5 of 2.0 (-25%) and 4 of 4.5 (-11%) are both flagged.
    has("| s-spright | 1 | 1.00 / - / 0.50 / - | n/c | 2.00 | 1.50 | 1.00 / 0.00 / 0.40 / 0.00 / 0.60 | n/c | 2.00 | 0.00 | -25% **> 10%** |");
    has("| knative | 1 | 1.00 / 2.00 / 1.00 / - | n/c | 4.50 | 4.00 |");
    has("| 4.50 | 0.00 | -11% **> 10%** |");
    // Interrupts per CPU set: 150 on the system's CPU, 50 on the generator's, per 100 requests and per 10 s.
    has("| s-spright | 0.8 / - / 0.8 / - | - | 1.50 / 0.50 (2.00) | 15 / 5 | 1.00 / 0.00 (1.00) | 1.00 / 0.00 |");
    // Ratios: p99 5.00 / 0.99; CPU per request 90 / 20; no throughput ratio from a closed loop.
    has("| p99 latency Knative / S-SPRIGHT | up to 70x (Knative overloaded) | 5.1x |");
    has("| CPU per request Knative / S-SPRIGHT (kernel included) | 52.0x (derived: cores / req/s) | 4.5x |");
    has("| throughput | 6x (S-SPRIGHT / Knative), 5x (/ gRPC) | not measured by this run |");
    has("single run: no confidence interval");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| s-spright | 10.0 | 0.50 | 0.99 | 20.00 | 0.200 |"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
