//! Loading and driving the kernel side: SPROXY (descriptor routing) and
//! EPROXY (gateway interface counters).
//!
//! Objects are compiled from `system/bpf/*.bpf.c` and committed (see
//! `system/bpf/build.sh`); they are embedded here so the binary is
//! self-contained. Nothing is pinned: the maps, programs and links live as
//! long as their owner, so a control plane that exits - cleanly or not -
//! leaves no BPF state behind. Loading needs CAP_BPF and CAP_NET_ADMIN
//! (root); without them [`BpfError::Permission`] says so in one line.

mod eproxy;
mod sproxy;

pub use eproxy::{Eproxy, EproxyCounters};
pub use sproxy::{DropCounters, FnStats, Sproxy, SINK_KEY};

/// The committed SPROXY object.
pub const SPROXY_OBJECT: &[u8] = include_bytes!("../../bpf/sproxy.bpf.o");
/// The committed EPROXY object.
pub const EPROXY_OBJECT: &[u8] = include_bytes!("../../bpf/eproxy.bpf.o");

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("loading eBPF needs root (CAP_BPF and CAP_NET_ADMIN): {0}; the ring and eventring transports need no privileges")]
    Permission(String),
    #[error("eBPF {what}: {detail}")]
    Kernel { what: &'static str, detail: String },
}

impl BpfError {
    fn from_display(what: &'static str, e: impl std::fmt::Display) -> Self {
        let detail = format!("{e}");
        let mut cause: Option<String> = None;
        // aya errors carry the errno deep inside; EPERM is what matters.
        if detail.contains("Operation not permitted") || detail.contains("EPERM") || !is_root() {
            cause = Some(format!("{what} failed: {detail}"));
        }
        match cause {
            Some(c) => BpfError::Permission(c),
            None => BpfError::Kernel { what, detail },
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// Sums the per-CPU values of a BPF map entry.
fn sum<T: Copy, U: std::ops::AddAssign + Default>(vals: impl IntoIterator<Item = T>, f: impl Fn(T) -> U) -> U {
    let mut acc = U::default();
    for v in vals {
        acc += f(v);
    }
    acc
}
