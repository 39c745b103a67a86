//! The resource sampler of a soak: every interval, for each process of the
//! system under test (the registry's members, adopting new descendants
//! first; not the harness), its resident memory, its open file
//! descriptors and the entries of the BPF maps it holds; and for SPRIGHT's
//! control plane the slots in use of the pools it holds, read from the
//! pools themselves. What leaks shows up here as growth
//! (`experiment::soak` checks it).

use std::collections::BTreeSet;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aya::maps::{MapInfo, MapType};

use super::attribution::Registry;

/// One process at one instant.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResourceRow {
    /// Seconds since the run started.
    pub time_s: f64,
    pub component: String,
    pub group: String,
    pub pid: u32,
    /// Resident set size (`VmRSS`), bytes ...
    pub rss_bytes: u64,
    /// ... of which private anonymous memory (`RssAnon`: heap, stacks),
    /// where a leak grows ...
    pub rss_anon_bytes: u64,
    /// ... and shared memory (`RssShmem`): pages of SPRIGHT's pools, faulted
    /// in as the allocator's round-robin cursor first reaches each slot,
    /// up to the pools' size.
    pub rss_shmem_bytes: u64,
    /// Entries of `/proc/PID/fd`.
    pub open_fds: u64,
    /// Entries of the hash-type and socket-hash BPF maps the process holds
    /// a descriptor of (fixed-size arrays cannot grow and are left out);
    /// None: it holds none.
    pub bpf_map_entries: Option<u64>,
    /// Slots in use, summed over the chain pools, on the rows of SPRIGHT's
    /// control plane (group `gateway`, which creates the pools; the
    /// functions map the same pools); None elsewhere.
    pub pool_slots_in_use: Option<u64>,
}

/// Resident memory of a process, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rss {
    pub total: u64,
    pub anon: u64,
    pub shmem: u64,
}

/// `VmRSS`, `RssAnon` and `RssShmem` of `pid` (`/proc/PID/status`, kB).
pub fn rss(pid: u32) -> Option<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        Some(line.trim_start_matches(':').split_whitespace().next()?.parse::<u64>().ok()? * 1024)
    };
    Some(Rss { total: kb("VmRSS")?, anon: kb("RssAnon")?, shmem: kb("RssShmem")? })
}

/// How many descriptors `pid` has open.
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The ids of the BPF maps `pid` holds a descriptor of (`fdinfo`'s `map_id`).
pub fn bpf_map_ids(pid: u32) -> BTreeSet<u32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return BTreeSet::new() };
    fds.flatten()
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf-map"))
        .filter_map(|fd| {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy())).ok()?;
            info.lines().find_map(|l| l.strip_prefix("map_id:")).and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// Whether a map of this type holds a varying number of entries that key
/// iteration counts (arrays always hold all of theirs; a sockmap is an
/// array of sockets).
fn counted(t: MapType) -> bool {
    matches!(
        t,
        MapType::Hash
            | MapType::PerCpuHash
            | MapType::LruHash
            | MapType::LruPerCpuHash
            | MapType::SockHash
            | MapType::HashOfMaps
            | MapType::DevMapHash
            | MapType::LpmTrie
    )
}

/// `BPF_MAP_GET_NEXT_KEY` (include/uapi/linux/bpf.h).
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;

/// `union bpf_attr` as the element commands read it.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    next_key: u64,
    flags: u64,
}

/// The entries of the map `id` when its type is [`counted`]; None
/// otherwise or when it cannot be read (gone, not root).
pub fn map_entries(id: u32) -> Option<u64> {
    use std::os::fd::{AsFd, AsRawFd};
    let info = MapInfo::from_id(id).ok()?;
    if !counted(info.map_type().ok()?) {
        return None;
    }
    let fd = info.fd().ok()?;
    let size = info.key_size().max(1) as usize;
    let (mut key, mut next) = (vec![0u8; size], vec![0u8; size]);
    let mut n = 0u64;
    // Entries deleted while we walk restart the walk: bounded all the same.
    let limit = 2 * info.max_entries() as u64 + 1;
    while n < limit {
        let attr = ElemAttr {
            map_fd: fd.as_fd().as_raw_fd() as u32,
            _pad: 0,
            // The first call has no key: the map's first key comes back.
            key: if n == 0 { 0 } else { key.as_ptr() as u64 },
            next_key: next.as_mut_ptr() as u64,
            flags: 0,
        };
        // SAFETY: `attr` points at buffers of the map's key size that live
        // across the call; the kernel reads `key` and writes `next_key`.
        let r = unsafe { libc::syscall(libc::SYS_bpf, BPF_MAP_GET_NEXT_KEY, &attr as *const ElemAttr, std::mem::size_of::<ElemAttr>()) };
        if r != 0 {
            break;
        }
        n += 1;
        std::mem::swap(&mut key, &mut next);
    }
    Some(n)
}

/// Entries of the counted maps among `ids`; None when none is counted.
fn entries_of(ids: &BTreeSet<u32>) -> Option<u64> {
    ids.iter().filter_map(|&id| map_entries(id)).reduce(|a, b| a + b)
}

/// Samples the registry's processes every `every` until stopped.
pub struct ResourceSampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<Vec<ResourceRow>>,
}

/// Slots in use in the SPRIGHT pools `pid` holds; None when it holds none.
fn pool_slots_in_use(pid: u32) -> Option<u64> {
    crate::deploy::pools_of(pid).into_iter().map(|(_, n)| n).reduce(|a, b| a + b)
}

/// Every process of the system under test, now.
fn sample(registry: &Registry, epoch: Instant, out: &mut Vec<ResourceRow>) {
    registry.adopt_descendants();
    let time_s = epoch.elapsed().as_secs_f64();
    for (pid, member) in registry.members().into_iter().filter(|(_, m)| m.group != "load") {
        let (Some(rss), Some(open_fds)) = (rss(pid), open_fds(pid)) else { continue };
        out.push(ResourceRow {
            time_s,
            pid,
            rss_bytes: rss.total,
            rss_anon_bytes: rss.anon,
            rss_shmem_bytes: rss.shmem,
            open_fds,
            bpf_map_entries: entries_of(&bpf_map_ids(pid)),
            pool_slots_in_use: if member.group == "gateway" { pool_slots_in_use(pid) } else { None },
            component: member.component,
            group: member.group,
        });
    }
}

impl ResourceSampler {
    /// Starts sampling now and every `every`.
    pub fn start(registry: Registry, every: Duration, epoch: Instant) -> Self {
        let (stop, stopped) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut next = Instant::now();
            loop {
                sample(&registry, epoch, &mut out);
                next += every;
                // Never try to catch up on missed ticks.
                next = next.max(Instant::now());
                match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return out,
                }
            }
        });
        Self { stop, handle }
    }

    /// Stops sampling and returns every row.
    pub fn stop(self) -> Vec<ResourceRow> {
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_descriptors() {
        let me = std::process::id();
        let m = rss(me).unwrap();
        assert!(m.total > 1 << 20 && m.anon > 0 && m.anon + m.shmem <= m.total, "{m:?}");
        let before = open_fds(me).unwrap();
        let files: Vec<std::fs::File> = (0..5).map(|_| std::fs::File::open("/proc/self/status").unwrap()).collect();
        assert!(open_fds(me).unwrap() >= before + 5);
        drop(files);
        assert_eq!(rss(u32::MAX), None);
    }

    /// A hash map of our own: its entries counted by id, as the sampler
    /// counts a runtime's (root only: BPF).
    #[test]
    fn hash_map_entries_are_counted_by_id() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: needs root (BPF)");
            return;
        }
        let mut ebpf = aya::Ebpf::load(include_bytes!("../../../system/bpf/sproxy.bpf.o")).unwrap();
        let mut ports: aya::maps::HashMap<_, u32, u32> = aya::maps::HashMap::try_from(ebpf.map_mut("sender_ports").unwrap()).unwrap();
        for port in 0..7 {
            ports.insert(port, port, 0).unwrap();
        }
        let me = std::process::id();
        let ids = bpf_map_ids(me);
        let counts: Vec<u64> = ids.iter().filter_map(|&id| map_entries(id)).collect();
        assert!(counts.contains(&7), "{ids:?}: {counts:?}");
        let arrays = ids.iter().filter(|&&id| MapInfo::from_id(id).is_ok_and(|i| i.map_type().is_ok_and(|t| !counted(t)))).count();
        assert!(arrays >= 1, "the drop counters, an array, are left out");
        assert!(entries_of(&ids).unwrap() >= 7);
    }
}
