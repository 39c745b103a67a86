//! Per-process counts of messages serialized and deserialized, reported by
//! the runtimes themselves for the harness's overhead audit.
//!
//! # What one count is
//!
//! One message encoded to bytes (a serialization) or decoded from bytes (a
//! deserialization) by one process, at one layer. Every count is made by
//! the one wrapper of its format - never by hand at a call site - so a
//! site cannot be missed: the workspace's `clippy.toml` forbids the raw
//! encoders and decoders (and [`serialized`] / [`deserialized`]) outside
//! the wrappers.
//!
//! | format | a serialization | a deserialization | the wrapper |
//! |---|---|---|---|
//! | HTTP/1.1 | a request or response written | a request or response read (its head parsed) | the server of each HTTP stack (the SPRIGHT gateway's `gateway::http`, the baselines' `baseline_common::http::serve`) and the baselines' client (`baseline_common::http::HttpClient`) |
//! | JSON | a document encoded | a document handed to the decoder (decoded or not: the work is done) | [`json`] |
//! | protobuf | a message encoded by the gRPC codec | a message handed to the codec's decoder | the gRPC baseline's codec (`grpc_baseline::codec`) |
//! | urlencoded form | - | a non-empty form body decoded | [`form`] |
//! | multipart form | - | a multipart body split into its parts | [`form::multipart`] |
//!
//! A JSON message is a whole document that crosses a process boundary in
//! a body or a header: an RPC request or response, a function's state in a
//! header (Knative-model parking), a page or an error answer the client
//! gets, an event a client posts. Pages and request forms are counted in
//! every mode, where the frontend renders or parses them.
//!
//! Not counted: bytes carried without being decoded (an image, a body a
//! proxy forwards untouched, a SPRIGHT descriptor, the typed state in a
//! slot); a query string (part of the HTTP request, counted with it);
//! gRPC's HTTP/2 framing (the protobuf message is the count).
//!
//! The error body a SPRIGHT function sets with `Txn::set_error` is one
//! JSON message encoded, through [`json::error`], as the gateway's are.
//!
//! A proxy that parses a request and writes it upstream counts one
//! deserialization and one serialization, and the same for the response
//! on its way back - at every hop (ingress, queue-proxy, activator).
//!
//! # Where the counts live
//!
//! When `SPRIGHT_WIRE_COUNTS` names a directory, the counters live in a
//! shared file `<dir>/<pid>` (two native-endian u64: serializations,
//! deserializations) that the harness reads while the process runs - no
//! signal, no endpoint. Otherwise they are private statics.

pub mod form;
pub mod json;

use std::cell::Cell;
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

thread_local! {
    /// This thread's share of the counts, for in-process tests.
    static THREAD: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Counts `messages` serialized. For the format wrappers only (see the
/// module doc); anywhere else clippy refuses it.
pub fn serialized(messages: u64) {
    counters()[0].fetch_add(messages, Ordering::Relaxed);
    THREAD.with(|t| t.set((t.get().0 + messages, t.get().1)));
}

/// Counts `messages` deserialized. For the format wrappers only.
pub fn deserialized(messages: u64) {
    counters()[1].fetch_add(messages, Ordering::Relaxed);
    THREAD.with(|t| t.set((t.get().0, t.get().1 + messages)));
}

/// (serializations, deserializations) of this process so far.
pub fn totals() -> (u64, u64) {
    let c = counters();
    (c[0].load(Ordering::Relaxed), c[1].load(Ordering::Relaxed))
}

/// (serializations, deserializations) counted on the calling thread so
/// far: what a single-threaded test caused, whatever else runs.
pub fn thread_totals() -> (u64, u64) {
    THREAD.with(Cell::get)
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
