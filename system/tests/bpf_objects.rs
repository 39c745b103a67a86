//! The committed eBPF objects must match their C sources.
//!
//! Machines without clang load the committed `system/bpf/*.bpf.o`; this test
//! rebuilds them with `system/bpf/build.sh` into a temporary directory and
//! compares bytes. Where clang is missing it can only check locally-absent
//! tooling: in CI (`CI` set) that is a failure, never a silent skip.

use std::path::PathBuf;
use std::process::Command;

fn has_clang() -> bool {
    Command::new("clang").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn committed_objects_match_their_sources() {
    if !has_clang() {
        assert!(std::env::var_os("CI").is_none(), "clang is not installed: CI must install clang and libbpf-dev (see .ci/run)");
        eprintln!("note: clang not installed; committed eBPF objects not checked against their sources");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bpf");
    let out = std::env::temp_dir().join(format!("spright-bpf-check-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let status = Command::new("bash").arg(dir.join("build.sh")).arg(&out).status().expect("run build.sh");
    assert!(status.success(), "system/bpf/build.sh failed");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".bpf.c") {
            let obj = format!("{stem}.bpf.o");
            let fresh = std::fs::read(out.join(&obj)).unwrap();
            let committed = std::fs::read(dir.join(&obj)).unwrap_or_else(|_| panic!("{obj} is not committed"));
            assert!(fresh == committed, "system/bpf/{obj} is stale: run system/bpf/build.sh and commit the result");
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(checked >= 4, "expected the sproxy, eproxy, audit and bare_redirect sources, checked {checked}");
}
