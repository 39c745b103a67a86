//! What the manifest records about the machine and the build.

use std::process::Command;

/// The commit the binaries were built from, `-dirty` when the tree has
/// changes (untracked files included) outside `results/`.
pub fn git_revision() -> String {
    let dir = crate::workspace_dir();
    let git = |args: &[&str]| Command::new("git").arg("-C").arg(&dir).args(args).output().ok().filter(|o| o.status.success());
    match git(&["rev-parse", "HEAD"]) {
        Some(o) => {
            let rev = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let dirty = git(&["status", "--porcelain", "--", ".", ":!results"]).is_some_and(|o| !o.stdout.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => "unknown (not a git checkout)".into(),
    }
}

/// The kernel release, whole (procfs's `Version` keeps only the numbers,
/// not the suffix that tells builds apart).
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

pub fn cpu_model() -> String {
    testkit::proc::cpu_model().unwrap_or_else(|| "unknown".into())
}

pub fn bpf_status(root: bool) -> String {
    let btf = std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    match (root, btf) {
        (true, true) => "available (root, BTF)".into(),
        (false, _) => "unavailable: not root".into(),
        (true, false) => "unavailable: no BTF".into(),
    }
}

/// Versions of the crates that shape the measurements, from Cargo.lock.
pub fn crate_versions() -> Vec<String> {
    let lock = include_str!("../../../Cargo.lock");
    let wanted = ["goose", "polars", "plotters", "tonic", "prost", "hyper", "tokio", "aya", "reqwest"];
    let mut out = vec![format!("harness {}", env!("CARGO_PKG_VERSION")), format!("rustc-built-for {}", std::env::consts::ARCH)];
    let mut name = "";
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"');
        } else if let Some(v) = line.strip_prefix("version = ") {
            if wanted.contains(&name) {
                out.push(format!("{name} {}", v.trim_matches('"')));
            }
        }
    }
    out
}
