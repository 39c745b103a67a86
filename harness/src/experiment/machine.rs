//! What the manifest records about the machine and the build.

use std::process::Command;

pub fn git_revision() -> String {
    let dir = crate::workspace_dir();
    let git = |args: &[&str]| Command::new("git").arg("-C").arg(&dir).args(args).output().ok().filter(|o| o.status.success());
    match git(&["rev-parse", "HEAD"]) {
        Some(o) => {
            let rev = String::from_utf8_lossy(&o.stdout).trim().to_string();
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|o| !o.stdout.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => "unknown (not a git checkout)".into(),
    }
}

pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_else(|_| "unknown".into())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown".into())
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
