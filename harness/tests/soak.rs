//! A short soak (debug builds, seconds): S-SPRIGHT at a fixed low rate,
//! every process sampled each second; the run directory holds the samples,
//! the manifest the soak's parameters, the summary the verdict; nothing is
//! left behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn run_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-soak-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A CSV table as its header and rows of cells.
fn csv(dir: &Path, table: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join(format!("{table}.csv"))).unwrap_or_else(|e| panic!("{table}.csv: {e}"));
    let mut lines = text.lines().map(|l| l.split(',').map(|c| c.trim_matches('"').to_string()).collect::<Vec<_>>());
    (lines.next().unwrap_or_default(), lines.collect())
}

/// Shared memory named after these processes (the harness's counter
/// files, a control plane's rings), and BPF pins of SPRIGHT's.
fn leftovers(pids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("spright") && pids.iter().any(|p| n.contains(&format!("-{p}"))))
        .collect();
    out.extend(
        std::fs::read_dir("/sys/fs/bpf")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("spright")),
    );
    out
}

#[test]
fn a_short_soak_samples_every_process_and_passes() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "s-spright needs root (eBPF); run the tests as root");
    let dir = run_dir("s-spright");
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["soak", "--modes", "s-spright", "--profile", "smoke", "--duration", "12s", "--rate", "20", "--allow-unoptimized", "--out"])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let harness_pid = child.id();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("soak s-spright: PASS"), "{stdout}");

    // The manifest: a soak of 12 s at 20 tasks/s, with its command and tolerances.
    let manifest = std::fs::read_to_string(dir.join("manifest.yaml")).unwrap();
    for want in [
        "load_kind: soak",
        "status: ok",
        "duration_s: 12.0",
        "rate_tasks_s: 20.0",
        "private_memory_bytes: 4194304",
        "command: harness soak --modes s-spright",
    ] {
        assert!(manifest.contains(want), "{want:?} missing:\n{manifest}");
    }
    for phase in ["label: warmup", "label: measure", "label: after load"] {
        assert!(manifest.contains(phase), "{phase}: {manifest}");
    }

    // Every process, every second: the control plane with its pools and
    // SPRIGHT's sockhash, each of the ten functions.
    let (header, rows) = csv(&dir, "resources");
    assert!(dir.join("resources.parquet").is_file());
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("{name} not in {header:?}"));
    let (component, phase, rss, anon, fds, maps, slots) = (
        col("component"),
        col("phase"),
        col("rss_bytes"),
        col("rss_anon_bytes"),
        col("open_fds"),
        col("bpf_map_entries"),
        col("pool_slots_in_use"),
    );
    let soaked: Vec<&Vec<String>> = rows.iter().filter(|r| r[phase] == "measure").collect();
    let gateway: Vec<&&Vec<String>> = soaked.iter().filter(|r| r[component] == "gateway").collect();
    assert!(gateway.len() >= 10, "about one sample a second over 12 s: {}", gateway.len());
    for r in &gateway {
        assert!(r[maps].parse::<u64>().unwrap() > 0, "the sockhash's entries: {r:?}");
        assert!(!r[slots].is_empty(), "the control plane's pools: {r:?}");
        let (all, private) = (r[rss].parse::<u64>().unwrap(), r[anon].parse::<u64>().unwrap());
        assert!(private > 0 && private < all, "{r:?}");
        assert!(r[fds].parse::<u64>().unwrap() > 10, "{r:?}");
    }
    let mut functions: Vec<&str> = soaked.iter().filter(|r| r[component].starts_with("fn")).map(|r| r[component].as_str()).collect();
    functions.sort();
    functions.dedup();
    assert_eq!(functions.len(), 10, "{functions:?}");
    assert!(soaked.iter().filter(|r| r[component].starts_with("fn")).all(|r| r[slots].is_empty()), "slots: the control plane's rows only");
    // After the load every slot is back.
    let after: Vec<&Vec<String>> = rows.iter().filter(|r| r[phase] == "after load" && r[component] == "gateway").collect();
    assert!(!after.is_empty() && after.last().unwrap()[slots] == "0", "{after:?}");

    // The summary's soak section: the verdict row and one row per process.
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("## Soak: growth over 12 s per mode"), "{summary}");
    let verdict = summary.lines().find(|l| l.starts_with("| s-spright | - (--rate) | 20 |")).unwrap_or_else(|| panic!("{summary}"));
    assert!(verdict.ends_with("| PASS |"), "{verdict}");
    assert_eq!(summary.lines().filter(|l| l.starts_with("| s-spright | fn")).count(), 10, "{summary}");
    assert!(summary.contains("may grow by max(10%, 4 MiB)"), "the tolerances are stated: {summary}");
    assert!(dir.join("figures/soak_s-spright.png").is_file());

    let gateway_pid = gateway[0][col("pid")].clone();
    assert_eq!(leftovers(&[harness_pid.to_string(), gateway_pid]), Vec::<String>::new(), "shared memory or BPF pins left behind");
    std::fs::remove_dir_all(&dir).unwrap();
}
