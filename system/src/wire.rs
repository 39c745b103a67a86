//! Per-process counts of messages serialized and deserialized - HTTP
//! messages, JSON RPC bodies, protobuf messages - reported by the runtimes
//! themselves for the harness's overhead audit. A count is one message
//! encoded to (or decoded from) bytes at one layer in one process.
//!
//! When `SPRIGHT_WIRE_COUNTS` names a directory, the counters live in a
//! shared file `<dir>/<pid>` (two native-endian u64: serializations,
//! deserializations) that the harness reads while the process runs - no
//! signal, no endpoint. Otherwise they are private statics.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub const ENV: &str = "SPRIGHT_WIRE_COUNTS";

static PRIVATE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static COUNTERS: OnceLock<&'static [AtomicU64; 2]> = OnceLock::new();

/// Creates `<dir>/<pid>` and maps it shared; the mapping lives as long as
/// the process.
pub fn open_counter_file(dir: &Path, pid: u32) -> Option<&'static [AtomicU64; 2]> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new().create(true).read(true).write(true).truncate(true).open(dir.join(pid.to_string())).ok()?;
    file.set_len(16).ok()?;
    // SAFETY: a fresh 16-byte shared mapping of a file we own; it is never
    // unmapped, so the 'static reference stays valid. AtomicU64 has the
    // layout of u64 and the mapping is page-aligned.
    unsafe {
        let p = libc::mmap(std::ptr::null_mut(), 16, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, file.as_raw_fd(), 0);
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(&*(p as *const [AtomicU64; 2]))
    }
}

fn counters() -> &'static [AtomicU64; 2] {
    COUNTERS
        .get_or_init(|| std::env::var_os(ENV).and_then(|dir| open_counter_file(Path::new(&dir), std::process::id())).unwrap_or(&PRIVATE))
}

pub fn serialized(messages: u64) {
    counters()[0].fetch_add(messages, Ordering::Relaxed);
}

pub fn deserialized(messages: u64) {
    counters()[1].fetch_add(messages, Ordering::Relaxed);
}

/// (serializations, deserializations) of this process so far.
pub fn totals() -> (u64, u64) {
    let c = counters();
    (c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed))
}

/// Reads a process's counter file: (serializations, deserializations).
pub fn read_counter_file(path: &Path) -> Option<(u64, u64)> {
    let b = std::fs::read(path).ok()?;
    let word = |i: usize| Some(u64::from_ne_bytes(b.get(i * 8..i * 8 + 8)?.try_into().ok()?));
    Some((word(0)?, word(1)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_land_in_the_shared_file() {
        let dir = std::env::temp_dir().join(format!("spright-wire-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = open_counter_file(&dir, 4242).unwrap();
        c[0].fetch_add(3, Ordering::Relaxed);
        c[1].fetch_add(5, Ordering::Relaxed);
        assert_eq!(read_counter_file(&dir.join("4242")), Some((3, 5)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
