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
    // 100 requests in 10 s, latencies 10..1000 us; 1.5 CPU-s (1.0 gateway, 0.5 function).
    assert!(summary.contains("| s-spright | ok | 10 | 10.0 | 0 | 0.50 | 0.99 | 0.15 | 15.00 (10.00 / - / 5.00 / -) |"), "{summary}");
    // 50 requests in 10 s, 100..5000 us; 4 CPU-s (1 gateway, 2 sidecar, 1 function).
    assert!(summary.contains("| 5.0 | 0 | 2.50 | 5.00 | 0.40 | 80.00 (20.00 / 40.00 / 20.00 / -) | 0.000 |"), "{summary}");
    // 20 samples of 4 switches per group over 100 requests; interrupts 200 / 100 and 100 / 100.
    assert!(summary.contains("| s-spright | 0.8 / - / 0.8 / - | - | 2.00 | 1.00 | 0.00 | 1.00 |"), "{summary}");
    // Ratios: CPU per request 80 / 15, p99 5.00 / 0.99, throughput 10 / 5.
    assert!(summary.contains("| CPU Knative / S-SPRIGHT (per request) | ~8.7x"), "{summary}");
    assert!(summary.contains("| 5.3x |"), "{summary}");
    assert!(summary.contains("| 5.1x |"), "{summary}");
    assert!(summary.contains("| 2.0x |"), "{summary}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("| s-spright | ok |"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
