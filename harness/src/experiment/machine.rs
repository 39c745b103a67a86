//! What the manifest records about the machine and the build.

use std::process::Command;

/// The commit the binaries were built from, `-dirty` when the tree has
/// changes (untracked files included) outside `results/`; for an installed
/// harness, what the build recorded next to its files (`REVISION`).
pub fn git_revision() -> String {
    let dir = crate::workspace_dir();
    if let Ok(recorded) = std::fs::read_to_string(dir.join("REVISION")) {
        return recorded.trim().to_string();
    }
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

/// How this kernel accounts CPU time, from its build configuration
/// (`/proc/config.gz` or `/boot/config-RELEASE`): with tick sampling both
/// a process's utime/stime and `/proc/stat` are samples taken at every tick,
/// and without IRQ_TIME_ACCOUNTING the time of an interrupt is charged to
/// the task it interrupted as well.
pub fn cpu_accounting() -> String {
    let config = std::process::Command::new("zcat")
        .arg("/proc/config.gz")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .or_else(|| std::fs::read_to_string(format!("/boot/config-{}", kernel())).ok());
    match config {
        Some(c) => accounting_from_config(&c),
        None => "unknown (no /proc/config.gz or /boot/config-RELEASE)".into(),
    }
}

fn accounting_from_config(config: &str) -> String {
    let set = |opt: &str| config.lines().any(|l| l == format!("CONFIG_{opt}=y"));
    let hz = config.lines().find_map(|l| l.strip_prefix("CONFIG_HZ=")).unwrap_or("?");
    let mode = if set("VIRT_CPU_ACCOUNTING_GEN") {
        "precise at context switches (VIRT_CPU_ACCOUNTING_GEN)"
    } else if set("TICK_CPU_ACCOUNTING") {
        "sampled at each tick"
    } else {
        "unknown"
    };
    let irq =
        if set("IRQ_TIME_ACCOUNTING") { "interrupt time accounted apart" } else { "interrupt time charged to the interrupted task too" };
    format!("{mode}, HZ={hz}, {irq}")
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

/// This machine, as a node reports it.
pub fn facts() -> crate::node::protocol::NodeFacts {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    crate::node::protocol::NodeFacts {
        hostname: std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
        kernel: kernel(),
        cpu_model: cpu_model(),
        cpu_accounting: cpu_accounting(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        allowed_cpus: spright::sys::allowed_cpus(),
        root,
        bpf: bpf_status(root),
        build_profile: if crate::deploy::RELEASE { "release" } else { "debug" }.into(),
    }
}

/// This machine's route to `ip` (`ip route get`), as one line.
pub fn route_to(ip: std::net::IpAddr) -> String {
    std::process::Command::new("ip")
        .args(["route", "get", &ip.to_string()])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown (ip route get failed)".into())
}

#[cfg(test)]
mod tests {
    use super::accounting_from_config;

    #[test]
    fn cpu_accounting_from_the_kernel_config() {
        let tick = "CONFIG_TICK_CPU_ACCOUNTING=y\n# CONFIG_VIRT_CPU_ACCOUNTING_GEN is not set\n# CONFIG_IRQ_TIME_ACCOUNTING is not set\nCONFIG_HZ=250\n";
        assert_eq!(accounting_from_config(tick), "sampled at each tick, HZ=250, interrupt time charged to the interrupted task too");
        let precise = "CONFIG_VIRT_CPU_ACCOUNTING_GEN=y\nCONFIG_IRQ_TIME_ACCOUNTING=y\nCONFIG_HZ=1000\n";
        assert_eq!(
            accounting_from_config(precise),
            "precise at context switches (VIRT_CPU_ACCOUNTING_GEN), HZ=1000, interrupt time accounted apart"
        );
    }
}
