//! `harness chaos` with the smoke profile (debug build, seconds): every
//! fault of the plan is injected under load into S-SPRIGHT and the Knative
//! model, each lands in its own phase, the summary's chaos table and the
//! figures come out, and S-SPRIGHT leaked no slot and came back from its
//! function kill by itself.

use std::process::{Command, Stdio};

#[test]
fn a_smoke_chaos_run_injects_every_fault_and_reports_it() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "s-spright needs root (eBPF); run the tests as root");
    let dir = std::env::temp_dir().join(format!("harness-smoke-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["chaos", "--modes", "s-spright,knative", "--profile", "smoke", "--allow-unoptimized", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    assert!(manifest.contains("load_kind: chaos"), "{manifest}");
    for fault in ["fault 1: stop ", "fault 2: stall ", "fault 3: slow ", "fault 4: kill ", "fault 5: kill front door "] {
        assert_eq!(manifest.matches(fault).count(), 2, "{fault} once per mode: {manifest}");
    }
    assert!(!manifest.contains("not injected"), "{manifest}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("## Faults under load"), "{summary}");
    let table: Vec<&str> = summary
        .lines()
        .skip_while(|l| !l.starts_with("## Faults under load"))
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| "))
        .collect();
    // Header + 5 faults per mode.
    assert_eq!(table.len(), 1 + 2 * 5, "{summary}");
    let spright: Vec<&str> = table.iter().copied().skip(1).take(5).collect();
    assert!(spright[0].contains("0 chain"), "S-SPRIGHT leaked no slot: {}", spright[0]);
    // The function kill: the control plane restarted the function.
    assert!(!spright[3].contains("**no**"), "S-SPRIGHT came back from the kill: {}", spright[3]);
    // The front door: nothing restarts it here.
    assert!(spright[4].contains("**no**"), "{}", spright[4]);
    for mode in ["s-spright", "knative"] {
        assert!(dir.join(format!("figures/chaos_{mode}.png")).is_file(), "chaos figure of {mode}");
    }
    eprintln!("{}", table.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
