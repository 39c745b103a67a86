//! The eBPF audit collector: tracepoints (`system/bpf/audit.bpf.c`) count,
//! per process, socket sends and receives, kernel-to-user copies, switches
//! out, and passes up and down the network stack. Snapshots are subtracted
//! to get one phase's counts; processes are then mapped to components.

use std::collections::BTreeMap;
use std::path::Path;

use aya::maps::{MapData, PerCpuHashMap};
use aya::programs::TracePoint;
use aya::Ebpf;

static AUDIT_OBJECT: &[u8] = include_bytes!("../../../system/bpf/audit.bpf.o");

/// Event names, indexed as `enum audit_event` in the C source.
pub const EVENTS: [&str; 6] = ["sock_send", "sock_recv", "skb_copy_to_user", "switch_out", "netif_receive_skb", "net_dev_xmit"];

const TRACEPOINTS: [(&str, &str, &str); 6] = [
    ("audit_sock_send", "sock", "sock_send_length"),
    ("audit_sock_recv", "sock", "sock_recv_length"),
    ("audit_skb_copy", "skb", "skb_copy_datagram_iovec"),
    ("audit_switch", "sched", "sched_switch"),
    ("audit_netif_receive", "net", "netif_receive_skb"),
    ("audit_dev_xmit", "net", "net_dev_xmit"),
];

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    tgid: u32,
    event: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct Value {
    count: u64,
    bytes: u64,
}

// SAFETY: plain C structs without padding holes the kernel could leave uninitialised.
unsafe impl aya::Pod for Key {}
unsafe impl aya::Pod for Value {}

/// Counts by (process, event): (events, bytes).
pub type Snapshot = BTreeMap<(u32, &'static str), (u64, u64)>;

const TRACEFS: &str = "/sys/kernel/tracing";

pub struct AuditProbe {
    counts: PerCpuHashMap<MapData, Key, Value>,
    /// We mounted tracefs and unmount it when done.
    mounted_tracefs: bool,
    // Owns the programs and their attachments; declared last.
    _ebpf: Ebpf,
}

/// Mounts tracefs where the tracepoints' ids are read, if nothing is there.
fn ensure_tracefs() -> Result<bool, String> {
    if Path::new(TRACEFS).join("events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists() {
        return Ok(false);
    }
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    let (src, target, fs) = (c("nodev"), c(TRACEFS), c("tracefs"));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if r != 0 {
        return Err(format!("cannot mount tracefs on {TRACEFS}: {}", std::io::Error::last_os_error()));
    }
    Ok(true)
}

impl AuditProbe {
    /// Loads and attaches every tracepoint (root only).
    pub fn start() -> Result<Self, String> {
        let mounted_tracefs = ensure_tracefs()?;
        let mut ebpf = Ebpf::load(AUDIT_OBJECT).map_err(|e| format!("load the audit object: {e}"))?;
        for (prog, category, name) in TRACEPOINTS {
            let tp: &mut TracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| format!("{prog} missing from the audit object"))?
                .try_into()
                .map_err(|e| format!("{prog}: {e}"))?;
            tp.load().map_err(|e| format!("verify {prog}: {e}"))?;
            tp.attach(category, name).map_err(|e| format!("attach {category}:{name}: {e}"))?;
        }
        let counts = ebpf.take_map("audit_counts").ok_or("audit_counts missing from the audit object")?;
        let counts = PerCpuHashMap::try_from(counts).map_err(|e| format!("audit_counts: {e}"))?;
        Ok(Self { counts, mounted_tracefs, _ebpf: ebpf })
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::new();
        for (key, values) in self.counts.iter().flatten() {
            let Some(&event) = EVENTS.get(key.event as usize) else { continue };
            let (count, bytes) = values.iter().fold((0, 0), |(c, b), v| (c + v.count, b + v.bytes));
            out.insert((key.tgid, event), (count, bytes));
        }
        out
    }
}

impl Drop for AuditProbe {
    fn drop(&mut self) {
        if self.mounted_tracefs {
            let target = std::ffi::CString::new(TRACEFS).unwrap();
            // SAFETY: valid path. Lazy: the programs' links close with _ebpf after this.
            unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// What happened between two snapshots.
pub fn delta(before: &Snapshot, after: &Snapshot) -> Snapshot {
    after
        .iter()
        .map(|(k, &(c, b))| {
            let (c0, b0) = before.get(k).copied().unwrap_or((0, 0));
            (*k, (c.saturating_sub(c0), b.saturating_sub(b0)))
        })
        .filter(|(_, (c, _))| *c > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// 200 sends of 1000 bytes over loopback TCP from this process: the
    /// probe sees at least those sends, receives, copies and bytes.
    #[test]
    fn counts_the_socket_io_of_a_known_process() {
        assert_eq!(unsafe { libc::geteuid() }, 0, "the eBPF collector needs root; run the tests as root");
        let probe = AuditProbe::start().expect("load the audit tracepoints");
        let me = std::process::id();
        let before = probe.snapshot();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut tx = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut rx, _) = listener.accept().unwrap();
        tx.set_nodelay(true).unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 200_000];
            rx.read_exact(&mut buf).unwrap();
        });
        let msg = [7u8; 1000];
        for _ in 0..200 {
            tx.write_all(&msg).unwrap();
        }
        reader.join().unwrap();
        let d = delta(&before, &probe.snapshot());
        let get = |e: &'static str| d.get(&(me, e)).copied().unwrap_or((0, 0));
        let (sends, sent) = get("sock_send");
        assert!(sends >= 200 && sent >= 200_000, "sends {sends}, bytes {sent}");
        let (_, received) = get("sock_recv");
        assert!(received >= 200_000, "received {received}");
        let (copies, copied) = get("skb_copy_to_user");
        assert!(copies >= 1 && copied >= 200_000, "copies {copies}, bytes {copied}");
        assert!(d.keys().any(|(_, e)| *e == "netif_receive_skb"), "loopback traffic passes netif_receive_skb: {d:?}");
        assert!(get("switch_out").0 >= 1);
    }
}
