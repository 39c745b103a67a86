//! The eBPF audit collector: tracepoints (`system/bpf/audit.bpf.c`) count,
//! per process, every socket data transfer - sends and receives, each
//! classified as a descriptor transfer (on a socket in a sockmap/sockhash:
//! S-SPRIGHT's sk_msg path) or a payload transfer (any other socket) - with
//! switches out and passes up and down the network stack, and record which
//! process started each new process. Snapshots are subtracted to get one
//! phase's counts; processes are then mapped to components.

use std::collections::BTreeMap;
use std::path::Path;

use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap};
use aya::programs::{BtfTracePoint, TracePoint};
use aya::{Btf, Ebpf, EbpfLoader};

static AUDIT_OBJECT: &[u8] = include_bytes!("../../../system/bpf/audit.bpf.o");

/// Event names, indexed as `enum audit_event` in the C source. Every event
/// has a count and a value: the bytes moved, or for `switch_out` the
/// nanoseconds the task ran before switching out (see [`value_name`]).
pub const EVENTS: [&str; 7] =
    ["payload_send", "payload_recv", "descriptor_send", "descriptor_recv", "switch_out", "netif_receive_skb", "net_dev_xmit"];

/// The name of an event's value in the counters: `<event>_bytes`, or
/// `oncpu_ns` for `switch_out` (the scheduler's exact runtime: threads and
/// processes that exited included, hypervisor steal left out, where procfs
/// reports whole 10 ms clock ticks).
pub fn value_name(event: &str) -> String {
    if event == "switch_out" {
        "oncpu_ns".into()
    } else {
        format!("{event}_bytes")
    }
}

/// Classic tracepoints: (program, category, name).
const TRACEPOINTS: [(&str, &str, &str); 4] = [
    ("audit_sock_send", "sock", "sock_send_length"),
    ("audit_sock_recv", "sock", "sock_recv_length"),
    ("audit_netif_receive", "net", "netif_receive_skb"),
    ("audit_dev_xmit", "net", "net_dev_xmit"),
];

/// BTF-typed tracepoints, which read the tasks' fields: switches (with each
/// slice's runtime) and process starts: (program, tracepoint).
const BTF_TRACEPOINTS: [(&str, &str); 2] = [("audit_switch", "sched_switch"), ("audit_fork", "sched_process_fork")];

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
// SAFETY: as above.
unsafe impl aya::Pod for Value {}

/// Counts by (process, event): (events, bytes).
pub type Snapshot = BTreeMap<(u32, &'static str), (u64, u64)>;

/// On-CPU nanoseconds by process, one value per CPU.
pub type OnCpu = BTreeMap<u32, Vec<u64>>;

const TRACEFS: &str = "/sys/kernel/tracing";

pub struct AuditProbe {
    counts: PerCpuHashMap<MapData, Key, Value>,
    /// New process (pid = tgid) -> tgid of the process that started it.
    parents: HashMap<MapData, u32, u32>,
    /// Events not recorded because a map was full (one per-CPU cell).
    lost: PerCpuArray<MapData, u64>,
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
    /// Loads and attaches every tracepoint (root only). The object's CO-RE
    /// relocations (the socket's `sk_user_data`, the forked task's pid and
    /// tgid) are resolved against the running kernel's BTF, which is
    /// therefore required: without it the offsets would silently be the
    /// object's own.
    pub fn start() -> Result<Self, String> {
        let btf = Btf::from_sys_fs().map_err(|e| format!("the audit needs the kernel's BTF (/sys/kernel/btf/vmlinux): {e}"))?;
        let mounted_tracefs = ensure_tracefs()?;
        match Self::attach(&btf) {
            Ok((counts, parents, lost, ebpf)) => Ok(Self { counts, parents, lost, mounted_tracefs, _ebpf: ebpf }),
            Err(e) => {
                if mounted_tracefs {
                    unmount_tracefs();
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn attach(
        btf: &Btf,
    ) -> Result<(PerCpuHashMap<MapData, Key, Value>, HashMap<MapData, u32, u32>, PerCpuArray<MapData, u64>, Ebpf), String> {
        let mut ebpf = EbpfLoader::new().btf(Some(btf)).load(AUDIT_OBJECT).map_err(|e| format!("load the audit object: {e}"))?;
        for (prog, category, name) in TRACEPOINTS {
            let tp: &mut TracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| format!("{prog} missing from the audit object"))?
                .try_into()
                .map_err(|e| format!("{prog}: {e}"))?;
            tp.load().map_err(|e| format!("verify {prog}: {e}"))?;
            tp.attach(category, name).map_err(|e| format!("attach {category}:{name}: {e}"))?;
        }
        for (prog, name) in BTF_TRACEPOINTS {
            let tp: &mut BtfTracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| format!("{prog} missing from the audit object"))?
                .try_into()
                .map_err(|e| format!("{prog}: {e}"))?;
            tp.load(name, btf).map_err(|e| format!("verify {prog}: {e}"))?;
            tp.attach().map_err(|e| format!("attach tp_btf/{name}: {e}"))?;
        }
        let counts = ebpf.take_map("audit_counts").ok_or("audit_counts missing from the audit object")?;
        let counts = PerCpuHashMap::try_from(counts).map_err(|e| format!("audit_counts: {e}"))?;
        let parents = ebpf.take_map("audit_parents").ok_or("audit_parents missing from the audit object")?;
        let parents = HashMap::try_from(parents).map_err(|e| format!("audit_parents: {e}"))?;
        let lost = ebpf.take_map("audit_lost").ok_or("audit_lost missing from the audit object")?;
        let lost = PerCpuArray::try_from(lost).map_err(|e| format!("audit_lost: {e}"))?;
        Ok((counts, parents, lost, ebpf))
    }

    /// Events the probe could not record since it was attached, because a
    /// map was full: 65 536 (process, event) counters, or 65 536 threads
    /// whose runtime it follows. Any makes the counts incomplete.
    pub fn lost(&self) -> Result<u64, String> {
        let cells = self.lost.get(&0, 0).map_err(|e| format!("audit_lost: {e}"))?;
        Ok(cells.iter().sum())
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

    /// On-CPU nanoseconds so far per process and CPU (the `switch_out`
    /// values before they are summed over CPUs): where a process ran.
    pub fn oncpu_per_cpu(&self) -> OnCpu {
        let switch_out = EVENTS.iter().position(|e| *e == "switch_out").unwrap_or(usize::MAX) as u32;
        self.counts
            .iter()
            .flatten()
            .filter(|(k, _)| k.event == switch_out)
            .map(|(k, v)| (k.tgid, v.iter().map(|v| v.bytes).collect()))
            .collect()
    }

    /// Every process started since the probe was attached (new processes
    /// only, not threads): child pid -> the tgid of the process that forked
    /// it, whether or not either still runs. The kernel keeps them in an LRU
    /// map of 65536 entries: only when it is (about) full do the oldest fall
    /// out. A pid the kernel reused maps to its latest parent.
    pub fn parents(&self) -> BTreeMap<u32, u32> {
        self.parents.iter().flatten().collect()
    }
}

impl Drop for AuditProbe {
    fn drop(&mut self) {
        if self.mounted_tracefs {
            // Lazy: the programs' links close with _ebpf after this.
            unmount_tracefs();
        }
    }
}

fn unmount_tracefs() {
    let target = std::ffi::CString::new(TRACEFS).unwrap();
    // SAFETY: a valid NUL-terminated path; MNT_DETACH leaves current users be.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
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
pub(super) mod tests {
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, RawFd};
    use std::sync::{Mutex, MutexGuard};
    use std::time::Duration;

    use spright::bpf::Sproxy;
    use spright::descriptor::{ChainId, Descriptor, Endpoint, FunctionId, DESCRIPTOR_SIZE};

    use super::*;

    /// One probe at a time in this test binary: a probe that mounted
    /// tracefs unmounts it when dropped, under another one attaching.
    static ONE_PROBE: Mutex<()> = Mutex::new(());

    /// Checks for root and serializes the tests that load the probe.
    pub(in crate::collect) fn probe_test() -> MutexGuard<'static, ()> {
        // SAFETY: geteuid has no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "the eBPF collector needs root; run the tests as root");
        ONE_PROBE.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `body` in a forked child and returns the child's pid once it
    /// exited with success (`body` returned true). The child's counters then
    /// hold exactly the transfers `body` made, whatever the other tests of
    /// this process do meanwhile. The child is a copy of this multi-threaded
    /// process with only the calling thread: `body` must keep to
    /// async-signal-safe work - system calls on inherited descriptors and
    /// memory, no allocation, no locks, no panics.
    pub(in crate::collect) fn in_child(body: impl FnOnce() -> bool) -> u32 {
        let pid = fork_child(body);
        reap(pid);
        pid as u32
    }

    /// Forks a child that runs `body` (async-signal-safe, see [`in_child`])
    /// and exits 0 when it returned true; the parent gets its pid.
    fn fork_child(body: impl FnOnce() -> bool) -> i32 {
        // SAFETY: the child runs only `body` (async-signal-safe by contract)
        // and leaves with _exit: no destructor, atexit handler or lock of
        // the parent's other threads is touched.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let ok = body();
            // SAFETY: see above.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        pid
    }

    /// Waits for a child of [`fork_child`]; it must have succeeded.
    fn reap(pid: i32) {
        let mut status = 0;
        // SAFETY: waits for a child we forked, into a local.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child {pid} failed (wait status {status:#x})");
    }

    /// One `send` that must take the whole buffer (async-signal-safe).
    pub(in crate::collect) fn send_once(fd: RawFd, buf: &[u8]) -> bool {
        // SAFETY: a send from a live buffer on a descriptor the caller owns.
        let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) };
        n == buf.len() as isize
    }

    /// One `recv` into `buf` that must fill it exactly (async-signal-safe).
    pub(in crate::collect) fn recv_once(fd: RawFd, buf: &mut [u8]) -> bool {
        // SAFETY: a receive into a live buffer on a descriptor the caller owns.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        n == buf.len() as isize
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        for s in [&a, &b] {
            s.set_nodelay(true).unwrap();
            // A lost message fails the child instead of hanging it.
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        (a, b)
    }

    fn counts(d: &Snapshot, pid: u32) -> BTreeMap<&'static str, (u64, u64)> {
        EVENTS[..4].iter().map(|&e| (e, d.get(&(pid, e)).copied().unwrap_or((0, 0)))).collect()
    }

    const ROUNDS: u64 = 50;

    /// Lockstep exchanges over loopback TCP (a 1000-byte message, a 1-byte
    /// answer): one message in flight at a time, each one `send` of one
    /// segment, so each is exactly one receive. All payload; the fork is
    /// recorded with this process as the parent.
    #[test]
    fn counts_payload_transfers_exactly() {
        let _one = probe_test();
        let probe = AuditProbe::start().expect("load the audit tracepoints");
        let (a, b) = pair();
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let before = probe.snapshot();
        let child = in_child(|| {
            let (msg, mut buf, mut ack) = ([7u8; 1000], [0u8; 1000], [0u8; 1]);
            (0..ROUNDS).all(|_| send_once(fa, &msg) && recv_once(fb, &mut buf) && send_once(fb, &[1]) && recv_once(fa, &mut ack))
        });
        let d = delta(&before, &probe.snapshot());
        let n = 2 * ROUNDS;
        let expected = BTreeMap::from([
            ("payload_send", (n, ROUNDS * 1001)),
            ("payload_recv", (n, ROUNDS * 1001)),
            ("descriptor_send", (0, 0)),
            ("descriptor_recv", (0, 0)),
        ]);
        assert_eq!(counts(&d, child), expected, "transfers of the child {child}");
        // Whoever runs the softirq (the sender, ksoftirqd) is charged with it.
        let passes_up: u64 = d.iter().filter(|((_, e), _)| *e == "netif_receive_skb").map(|(_, (c, _))| c).sum();
        assert!(passes_up >= n, "each of the {n} messages passes netif_receive_skb on loopback: {d:?}");
        assert!(d.get(&(child, "switch_out")).is_some_and(|&(c, _)| c >= 1), "the child switched out at least once (exiting): {d:?}");
        assert_eq!(probe.parents().get(&child), Some(&std::process::id()), "the fork of {child} is recorded");
    }

    /// With its counter map full, a new process's transfers cannot be
    /// counted: the probe says how many it lost instead of dropping them
    /// silently. (The map is filled from here with keys of an event that
    /// does not exist, which snapshots skip.)
    #[test]
    fn a_full_counter_map_counts_lost_events() {
        let _one = probe_test();
        let mut probe = AuditProbe::start().expect("load the audit tracepoints");
        let (a, b) = pair();
        let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
        let cpus = aya::util::nr_cpus().unwrap();
        let zero = || aya::maps::PerCpuValues::try_from(vec![Value::default(); cpus]).unwrap();
        let mut filler = 0u32;
        while probe.counts.insert(Key { tgid: filler, event: 999 }, zero(), 0).is_ok() {
            filler += 1;
        }
        assert!(filler > 0, "the map had room before it was full");
        let lost_before = probe.lost().unwrap();
        let child = in_child(|| {
            let (msg, mut buf) = ([7u8; 100], [0u8; 100]);
            send_once(fa, &msg) && recv_once(fb, &mut buf)
        });
        let lost = probe.lost().unwrap() - lost_before;
        assert!(lost >= 2, "the child's send and receive (new keys in a full map) are lost events: {lost}");
        assert!(!probe.snapshot().contains_key(&(child, "payload_send")), "nothing was counted for the child");
    }

    /// Three children that each spin until they have used 60 ms of CPU,
    /// all at once: more of them than this machine has CPUs, so they are
    /// preempted and move between CPUs. Each one's on-CPU time, the sum of
    /// its slices, is at least what it spun and at most the wall time the
    /// three lived. (A probe that loses a slice - as the per-CPU
    /// switched-in record once did, in about one run in twenty - fails.)
    #[test]
    fn measures_on_cpu_time_exactly() {
        const SPIN_NS: u64 = 60_000_000;
        let _one = probe_test();
        let probe = AuditProbe::start().expect("load the audit tracepoints");
        let before = probe.snapshot();
        let started = std::time::Instant::now();
        let children: Vec<i32> = (0..3).map(|_| fork_child(|| spin_cpu(SPIN_NS))).collect();
        children.iter().for_each(|&pid| reap(pid));
        for child in children.into_iter().map(|pid| pid as u32) {
            // The last slice is counted at the final switch-out, which comes
            // after exit_notify has already woken our waitpid: on another
            // CPU it can land after we reaped the child. Read once settled.
            let (switches, oncpu_ns, per_cpu) = settled_oncpu(&probe, &before, child, SPIN_NS);
            let lived_ns = started.elapsed().as_nanos() as u64;
            assert!(switches >= 1, "child {child} switched out at least once (exiting)");
            assert!(
                (SPIN_NS..=lived_ns).contains(&oncpu_ns),
                "child {child}: on-CPU {oncpu_ns} ns, at least the {SPIN_NS} ns it spun, at most the {lived_ns} ns it lived"
            );
            assert_eq!(per_cpu, oncpu_ns, "child {child}: the per-CPU values add up to its on-CPU time");
        }
        assert_eq!(value_name("switch_out"), "oncpu_ns");
    }

    /// Spins until this process's CPU clock has advanced `ns`
    /// (async-signal-safe: a forked child's body).
    fn spin_cpu(ns: u64) -> bool {
        let cpu_ns = || {
            let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes into the local timespec.
            unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
            t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
        };
        let start = cpu_ns();
        while cpu_ns() - start < ns {
            std::hint::spin_loop();
        }
        true
    }

    /// A reaped child's (switches, on-CPU ns, per-CPU sum) once two reads
    /// in a row agree and it has reached `at_least` (or 5 s have passed).
    fn settled_oncpu(probe: &AuditProbe, before: &Snapshot, child: u32, at_least: u64) -> (u64, u64, u64) {
        let read = || {
            let (switches, oncpu) = delta(before, &probe.snapshot()).get(&(child, "switch_out")).copied().unwrap_or((0, 0));
            let per_cpu: u64 = probe.oncpu_per_cpu().get(&child).map_or(0, |v| v.iter().sum());
            let per_cpu = per_cpu - before.get(&(child, "switch_out")).map_or(0, |&(_, ns)| ns);
            (switches, oncpu, per_cpu)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(10));
            let now = read();
            if (now == last && now.1 >= at_least) || std::time::Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    fn descriptor_bytes(d: &Descriptor) -> [u8; DESCRIPTOR_SIZE] {
        let mut b = [0u8; DESCRIPTOR_SIZE];
        for (at, field) in [
            (0, &d.magic.to_ne_bytes()[..]),
            (2, &d.flags.to_ne_bytes()),
            (4, &d.dst.to_ne_bytes()),
            (8, &d.slot.to_ne_bytes()),
            (12, &d.gen.to_ne_bytes()),
        ] {
            b[at..at + field.len()].copy_from_slice(field);
        }
        b
    }

    /// SPROXY loaded for real: two endpoints' sockets in its sockhash pass
    /// descriptors back and forth (sent with sk_msg, redirected into the
    /// peer's ingress queue, received through tcp_bpf_recvmsg), and the same
    /// process exchanges messages of the same 16 bytes over a plain socket
    /// pair. The sockhash transfers - both directions - are descriptors, the
    /// others payload: the class is the socket's, not the size's.
    #[test]
    fn classifies_sockhash_transfers_as_descriptors() {
        let _one = probe_test();
        let probe = AuditProbe::start().expect("load the audit tracepoints");
        let mut sproxy = Sproxy::load().expect("SPROXY must load (root with BPF)");
        let (ea, eb) = (Endpoint::new(ChainId(9), FunctionId(1)), Endpoint::new(ChainId(9), FunctionId(2)));
        let ((a, _a_peer), (b, _b_peer)) = (pair(), pair());
        sproxy.register(ea, &a).unwrap();
        sproxy.register(eb, &b).unwrap();
        sproxy.allow(ea, eb).unwrap();
        sproxy.allow(eb, ea).unwrap();
        let (to_b, to_a) = (descriptor_bytes(&Descriptor::new(eb, 1, 1)), descriptor_bytes(&Descriptor::new(ea, 1, 1)));
        let (plain_tx, plain_rx) = pair();
        let (fa, fb, ftx, frx) = (a.as_raw_fd(), b.as_raw_fd(), plain_tx.as_raw_fd(), plain_rx.as_raw_fd());
        let before = probe.snapshot();
        let child = in_child(|| {
            let mut buf = [0u8; DESCRIPTOR_SIZE];
            (0..ROUNDS).all(|_| {
                send_once(fa, &to_b)
                    && recv_once(fb, &mut buf)
                    && buf == to_b
                    && send_once(fb, &to_a)
                    && recv_once(fa, &mut buf)
                    && buf == to_a
                    && send_once(ftx, &to_b)
                    && recv_once(frx, &mut buf)
            })
        });
        let d = delta(&before, &probe.snapshot());
        let (n, size) = (2 * ROUNDS, DESCRIPTOR_SIZE as u64);
        let expected = BTreeMap::from([
            ("payload_send", (ROUNDS, ROUNDS * size)),
            ("payload_recv", (ROUNDS, ROUNDS * size)),
            ("descriptor_send", (n, n * size)),
            ("descriptor_recv", (n, n * size)),
        ]);
        assert_eq!(counts(&d, child), expected, "transfers of the child {child}");
        assert_eq!(sproxy.drops().total(), 0, "SPROXY refused none");
        assert_eq!(sproxy.stats(eb).rx_msgs, ROUNDS, "SPROXY redirected every descriptor");
    }
}
