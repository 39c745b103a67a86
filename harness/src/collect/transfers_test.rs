//! One request through a known chain in each mode, and the socket transfers
//! of every process checked against the chain's hops.
//!
//! Each scenario brings a deployment up with the audit probe attached, warms
//! it up on one keep-alive connection (the deployment's own connections get
//! pooled), waits until no process of the deployment transfers anything,
//! snapshots, sends exactly one request with a single write on that
//! connection, waits for the whole answer and for quiescence again, and
//! snapshots. The request is sent and answered in a forked child of this
//! test process, so the client's counters are its own and not those of
//! whatever else this test binary runs meanwhile.
//!
//! Why the counts are exact on a TCP byte stream: every message of these
//! chains is written with one `send`/`writev` (hyper writes an HTTP/1
//! message's head and body with one `writev`, or with one `send` of a
//! flattened buffer on a stream without vectored writes, as the SPRIGHT
//! gateway's; SPRIGHT sends one 16-byte descriptor per `send`, which SPROXY
//! redirects as one message), is smaller than one loopback segment
//! (64 KiB), and is the only message in flight on its connection (one
//! request at a time). A segment is queued whole, and the reader's buffer
//! (hyper's 8 KiB or more; the SPRIGHT receive loop's 1 KiB) holds it: one
//! message is one receive. Reads that find nothing (EAGAIN) or the end of
//! the stream move no data and are not transfers. Bytes: descriptors are 16
//! bytes each; payload bytes are conserved (everything sent by the
//! processes of the table is received by one of them), and the client's are
//! exactly its request and the response it read.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use spright::descriptor::DESCRIPTOR_SIZE;

use super::ebpf::tests::{in_child, probe_test, send_once};
use super::ebpf::{delta, AuditProbe, Snapshot};
use crate::deploy::{Binaries, Deployment, Mode, Options, Workload};

/// Transfer bounds (at least, at most) of one process.
type Bound = (u64, u64);

/// What one process transfers for the one request: payload (send, receive)
/// and descriptor (send, receive) counts.
#[derive(Debug)]
struct Row {
    process: &'static str,
    payload: [Bound; 2],
    descriptor: [Bound; 2],
}

/// A process whose counts are exact: `payload` and `descriptor` are
/// [sends, receives].
const fn exact(process: &'static str, payload: [u64; 2], descriptor: [u64; 2]) -> Row {
    Row {
        process,
        payload: [(payload[0], payload[0]), (payload[1], payload[1])],
        descriptor: [(descriptor[0], descriptor[0]), (descriptor[1], descriptor[1])],
    }
}

/// A process whose payload counts are bounded, not exact (HTTP/2).
const fn bounded(process: &'static str, payload: [Bound; 2]) -> Row {
    Row { process, payload, descriptor: [(0, 0), (0, 0)] }
}

/// The test's own client (the forked child), in every table.
const CLIENT: &str = "client";

// The tables. Component names are the deployment's: the SPRIGHT functions
// are `fn<id>` (ids of workloads/<workload>/chain.yaml).

/// S-SPRIGHT, motion (`POST /motion`: sensor fn1 -> actuator fn2). The
/// gateway sends the descriptor that starts hop 1 and receives the one that
/// ends the last hop; each function on the route receives one descriptor and
/// sends one; the HTTP request and response are the only payload transfers.
#[rustfmt::skip]
const S_SPRIGHT_MOTION: &[Row] = &[
    //     process     payload [send, recv]  descriptor [send, recv]
    exact(CLIENT,      [1, 1],               [0, 0]),
    exact("gateway",   [1, 1],               [1, 1]),
    exact("fn1",       [0, 0],               [1, 1]), // sensor
    exact("fn2",       [0, 0],               [1, 1]), // actuator
];

/// S-SPRIGHT, parking route 2 (`POST /parking/known`: detection fn1 ->
/// search fn2 -> charging fn4); index (fn3) and persist (fn5) are off the
/// route. The 3.8 KB image crosses no socket inside the chain.
#[rustfmt::skip]
const S_SPRIGHT_PARKING: &[Row] = &[
    exact(CLIENT,      [1, 1],               [0, 0]),
    exact("gateway",   [1, 1],               [1, 1]),
    exact("fn1",       [0, 0],               [1, 1]), // detection
    exact("fn2",       [0, 0],               [1, 1]), // search
    exact("fn3",       [0, 0],               [0, 0]), // index
    exact("fn4",       [0, 0],               [1, 1]), // charging
    exact("fn5",       [0, 0],               [0, 0]), // persist
];

/// D- and E-SPRIGHT, motion: descriptors travel through shared-memory rings
/// (E-SPRIGHT's doorbells are eventfds): no socket transfer inside the
/// chain at all; the gateway's HTTP request and response remain.
#[rustfmt::skip]
const RING_MOTION: &[Row] = &[
    exact(CLIENT,      [1, 1],               [0, 0]),
    exact("gateway",   [1, 1],               [0, 0]),
    exact("fn1",       [0, 0],               [0, 0]),
    exact("fn2",       [0, 0],               [0, 0]),
];

/// D- and E-SPRIGHT, parking route 2.
#[rustfmt::skip]
const RING_PARKING: &[Row] = &[
    exact(CLIENT,      [1, 1],               [0, 0]),
    exact("gateway",   [1, 1],               [0, 0]),
    exact("fn1",       [0, 0],               [0, 0]),
    exact("fn2",       [0, 0],               [0, 0]),
    exact("fn3",       [0, 0],               [0, 0]),
    exact("fn4",       [0, 0],               [0, 0]),
    exact("fn5",       [0, 0],               [0, 0]),
];

/// Knative model, motion: the orchestrator answers the client and invokes
/// each function through the ingress; every invocation is a request and a
/// response on each of the hops orchestrator -> ingress -> queue-proxy ->
/// container. Per invocation: the orchestrator sends and receives 1, the
/// ingress and the queue-proxy 2 each (in, forward; answer, answer back),
/// the container 1 each.
#[rustfmt::skip]
const KNATIVE_MOTION: &[Row] = &[
    exact(CLIENT,                 [1, 1],    [0, 0]),
    exact("orchestrator",         [3, 3],    [0, 0]), // client + 2 invocations
    exact("ingress",              [4, 4],    [0, 0]), // 2 invocations
    exact("sensor-queue-proxy",   [2, 2],    [0, 0]),
    exact("sensor",               [1, 1],    [0, 0]),
    exact("actuator-queue-proxy", [2, 2],    [0, 0]),
    exact("actuator",             [1, 1],    [0, 0]),
];

/// Knative model, parking route 2: three invocations, each carrying the
/// image (or its bare JPEG) again.
#[rustfmt::skip]
const KNATIVE_PARKING: &[Row] = &[
    exact(CLIENT,                  [1, 1],   [0, 0]),
    exact("orchestrator",          [4, 4],   [0, 0]), // client + 3 invocations
    exact("ingress",               [6, 6],   [0, 0]), // 3 invocations
    exact("detection-queue-proxy", [2, 2],   [0, 0]),
    exact("detection",             [1, 1],   [0, 0]),
    exact("search-queue-proxy",    [2, 2],   [0, 0]),
    exact("search",                [1, 1],   [0, 0]),
    exact("index-queue-proxy",     [0, 0],   [0, 0]),
    exact("index",                 [0, 0],   [0, 0]),
    exact("charging-queue-proxy",  [2, 2],   [0, 0]),
    exact("charging",              [1, 1],   [0, 0]),
    exact("persist-queue-proxy",   [0, 0],   [0, 0]),
    exact("persist",               [0, 0],   [0, 0]),
];

/// gRPC, Online Boutique add-to-cart (`POST /cart`: the frontend calls
/// productcatalog.GetProduct, then cart.AddItem; workloads/boutique/src/
/// api.rs `render`). The client's HTTP/1 exchange with the frontend is
/// exact; the two calls are not. A unary call over HTTP/2 is three frames
/// each way - request HEADERS, DATA, and an empty DATA with END_STREAM
/// (tonic's request body is known to end only when polled again); response
/// HEADERS, DATA and trailers HEADERS - which h2 queues from two tasks (the
/// connection's and the body pipe's) and writes at each flush of the
/// connection: how many writes a call's frames take depends on task
/// scheduling, 1 to 3 each way (seen: HEADERS, then DATA with the empty DATA;
/// the response in one). A read takes all that is queued, so a call's frames
/// are 1 to as many receives as there were writes (seen: 1 or 2). Nothing
/// else is framed after the warm-up: no pings are configured, and the
/// flow-control windows (MiBs) are far from needing a WINDOW_UPDATE. The
/// bytes vary too (HPACK adds a new `date` value once a second): they are
/// checked exactly through conservation.
#[rustfmt::skip]
const GRPC_ADD_TO_CART: &[Row] = &[
    exact(CLIENT,             [1, 1],            [0, 0]),
    // HTTP/1 response + 2 calls x 1..=3 writes; HTTP/1 request + 2 responses x 1..=3 receives.
    bounded("frontend",       [(3, 7), (3, 7)]),
    // A response in 1..=3 writes; a request in 1..=3 receives.
    bounded("productcatalog", [(1, 3), (1, 3)]),
    bounded("cart",           [(1, 3), (1, 3)]),
    exact("currency",         [0, 0],            [0, 0]),
    exact("recommendation",   [0, 0],            [0, 0]),
    exact("shipping",         [0, 0],            [0, 0]),
    exact("checkout",         [0, 0],            [0, 0]),
    exact("payment",          [0, 0],            [0, 0]),
    exact("email",            [0, 0],            [0, 0]),
    exact("ad",               [0, 0],            [0, 0]),
];

/// The request a scenario sends (and warms up with).
struct Request {
    path: &'static str,
    content_type: &'static str,
    body: Body,
}

enum Body {
    Text(&'static str),
    /// A file of the workspace.
    File(&'static str),
}

const MOTION: Request = Request {
    path: "/motion",
    content_type: "application/x-www-form-urlencoded",
    body: Body::Text("sensor_id=s001&timestamp=1000&value=1"),
};
const PARKING_KNOWN: Request =
    Request { path: "/parking/known", content_type: "image/jpeg", body: Body::File("workloads/parking/data/car.jpg") };
const ADD_TO_CART: Request =
    Request { path: "/cart", content_type: "application/x-www-form-urlencoded", body: Body::Text("product_id=OLJCESPC7Z&quantity=1") };

const WARM_UP_REQUESTS: usize = 3;
/// The event names of socket transfers.
const TRANSFERS: [&str; 4] = ["payload_send", "payload_recv", "descriptor_send", "descriptor_recv"];
/// Consecutive unchanged snapshots that make the deployment quiet.
const QUIET_SNAPSHOTS: usize = 3;
const QUIET_POLL: Duration = Duration::from_millis(100);
/// Only a bound against hanging: a deployment that never gets quiet fails.
const QUIET_GIVE_UP: usize = 300;
const RESPONSE_MAX: usize = 1 << 20;

fn http_request(addr: SocketAddr, r: &Request) -> Vec<u8> {
    let body = match r.body {
        Body::Text(t) => t.as_bytes().to_vec(),
        Body::File(f) => std::fs::read(crate::workspace_dir().join(f)).unwrap_or_else(|e| panic!("read {f}: {e}")),
    };
    let mut req =
        format!("POST {} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n", r.path, r.content_type, body.len())
            .into_bytes();
    req.extend_from_slice(&body);
    req
}

/// The length of the complete HTTP/1 response at the start of `buf`, once
/// it is all there (it must carry a content-length). Allocates nothing and
/// cannot panic: the forked client calls it.
fn response_len(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut body: Option<usize> = None;
    for line in buf[..head].split(|&b| b == b'\n') {
        let name = b"content-length:";
        if line.len() > name.len() && line[..name.len()].eq_ignore_ascii_case(name) {
            let mut n: usize = 0;
            for &b in line[name.len()..].iter().filter(|b| b.is_ascii_digit()) {
                n = n.checked_mul(10)?.checked_add((b - b'0') as usize)?;
            }
            body = Some(n);
        }
    }
    let total = head.checked_add(body?)?;
    (buf.len() >= total).then_some(total)
}

fn status(response: &[u8]) -> &str {
    std::str::from_utf8(response.split(|&b| b == b'\r').next().unwrap_or_default()).unwrap_or("?")
}

/// One request on the keep-alive connection, from this process (warm-up).
fn exchange(conn: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    conn.write_all(request).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(n) = response_len(&buf) {
            assert_eq!(n, buf.len(), "one response per request");
            return buf;
        }
        let n = conn.read(&mut chunk).expect("warm-up response");
        assert!(n > 0, "the connection closed before the warm-up response was complete");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A page shared with the forked client, where it leaves the response.
struct SharedPage {
    ptr: *mut u8,
    len: usize,
}

impl SharedPage {
    fn new(len: usize) -> Self {
        // SAFETY: a fresh anonymous shared mapping; checked below.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
        };
        assert_ne!(ptr, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        Self { ptr: ptr.cast(), len }
    }

    /// The mapping as a slice. Only one of the parent and its child uses it
    /// at a time (the parent reads after waiting for the child).
    #[allow(clippy::mut_from_ref)]
    fn bytes(&self) -> &mut [u8] {
        // SAFETY: `len` bytes mapped read-write for as long as self lives;
        // used by one process at a time (see above).
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmaps what `new` mapped; no slice of it outlives self.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Sends `request` with one write on `conn` from a forked child and reads
/// the whole response into `page` (its length first, 8 bytes). Returns the
/// child's pid.
fn request_from_child(conn: &TcpStream, request: &[u8], page: &SharedPage) -> u32 {
    let fd = conn.as_raw_fd();
    let buf = page.bytes();
    in_child(|| {
        // Async-signal-safe only: one send, receives into the shared page.
        if !send_once(fd, request) {
            return false;
        }
        let (len, data) = buf.split_at_mut(8);
        let mut got = 0;
        loop {
            if let Some(n) = response_len(&data[..got]) {
                len.copy_from_slice(&(n as u64).to_ne_bytes());
                return n == got;
            }
            let Some(free) = data.get_mut(got..).filter(|f| !f.is_empty()) else { return false };
            // SAFETY: receives into the free part of the shared page.
            let n = unsafe { libc::recv(fd, free.as_mut_ptr().cast(), free.len(), 0) };
            if n <= 0 {
                return false;
            }
            got += n as usize;
        }
    })
}

/// The transfer counters of `pids` once they stopped changing.
fn quiet(probe: &AuditProbe, pids: &BTreeSet<u32>) -> Snapshot {
    let transfers = |s: &Snapshot| -> Snapshot {
        s.iter().filter(|((pid, e), _)| pids.contains(pid) && TRANSFERS.contains(e)).map(|(k, v)| (*k, *v)).collect()
    };
    let mut last = probe.snapshot();
    let mut unchanged = 0;
    for _ in 0..QUIET_GIVE_UP {
        std::thread::sleep(QUIET_POLL);
        let now = probe.snapshot();
        unchanged = if transfers(&now) == transfers(&last) { unchanged + 1 } else { 0 };
        last = now;
        if unchanged == QUIET_SNAPSHOTS {
            return last;
        }
    }
    panic!("the deployment never stopped transferring: {:?}", transfers(&last));
}

/// What one process transferred: payload [send, recv] and descriptor
/// [send, recv], each (count, bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Observed {
    payload: [(u64, u64); 2],
    descriptor: [(u64, u64); 2],
}

fn observed(d: &Snapshot, pid: u32) -> Observed {
    let get = |e: &'static str| d.get(&(pid, e)).copied().unwrap_or((0, 0));
    Observed { payload: [get("payload_send"), get("payload_recv")], descriptor: [get("descriptor_send"), get("descriptor_recv")] }
}

fn within(n: u64, (lo, hi): Bound) -> bool {
    (lo..=hi).contains(&n)
}

/// Runs one scenario: `table` must list every process of the deployment.
fn check(mode: Mode, workload: Workload, request: &Request, table: &[Row]) {
    // One deployment at a time too: they would only compete for the CPUs.
    let _one = probe_test();
    // Attached first, so that the deployment's process starts are recorded.
    let probe = AuditProbe::start().expect("load the audit tracepoints");
    let deployment =
        Deployment::up_with(mode, workload, "127.0.0.1:0".parse().unwrap(), &Binaries::beside_current_exe(), &Options::default())
            .unwrap_or_else(|e| panic!("bring {} {} up: {e}", mode.name(), workload.name()));
    let components = deployment.components();
    let me = std::process::id();

    // The probe saw the deployment start: the harness started its named
    // processes; SPRIGHT's functions are its gateway's (control plane's).
    let parents = probe.parents();
    let gateway = components.iter().find(|c| c.name == "gateway").map(|c| c.pid);
    for c in &components {
        let expected = if c.name.starts_with("fn") { gateway.unwrap() } else { me };
        assert_eq!(parents.get(&c.pid), Some(&expected), "recorded parent of {} ({})", c.name, c.pid);
    }

    let request = http_request(deployment.addr, request);
    let mut conn = TcpStream::connect(deployment.addr).expect("connect to the deployment");
    conn.set_nodelay(true).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    for _ in 0..WARM_UP_REQUESTS {
        let r = exchange(&mut conn, &request);
        assert!(status(&r).ends_with("200 OK"), "warm-up answered {:?}", String::from_utf8_lossy(&r));
    }
    let mut pids: BTreeSet<u32> = components.iter().map(|c| c.pid).collect();
    let before = quiet(&probe, &pids);

    let page = SharedPage::new(RESPONSE_MAX);
    let client = request_from_child(&conn, &request, &page);
    pids.insert(client);
    let after = quiet(&probe, &pids);
    drop(conn);
    let (len, data) = page.bytes().split_at(8);
    let response = &data[..u64::from_ne_bytes(len.try_into().unwrap()) as usize];
    assert!(status(response).ends_with("200 OK"), "the request answered {:?}", String::from_utf8_lossy(response));

    let d = delta(&before, &after);
    let names: BTreeMap<&str, u32> = components.iter().map(|c| (c.name.as_str(), c.pid)).chain([(CLIENT, client)]).collect();
    let seen: BTreeMap<&str, Observed> = names.iter().map(|(&n, &pid)| (n, observed(&d, pid))).collect();
    let context = format!("{} {}: observed {seen:#?}", mode.name(), workload.name());

    // Every process of the deployment has a row, and every row a process.
    let listed: BTreeSet<&str> = table.iter().map(|r| r.process).collect();
    assert_eq!(listed, names.keys().copied().collect(), "the table's processes against the deployment's; {context}");
    // Nothing the deployment started since (a restart, a cold start) moved data.
    let descendants: Vec<u32> = probe.parents().iter().filter(|(c, p)| pids.contains(p) && !pids.contains(c)).map(|(c, _)| *c).collect();
    for pid in descendants {
        assert_eq!(observed(&d, pid), Observed::default(), "process {pid}, started by the deployment; {context}");
    }

    for row in table {
        let o = seen[row.process];
        for (dir, i) in [("send", 0), ("recv", 1)] {
            assert!(
                within(o.payload[i].0, row.payload[i]),
                "{}: payload {dir} count, expected {:?}; {context}",
                row.process,
                row.payload[i]
            );
            let (n, bytes) = o.descriptor[i];
            assert!(within(n, row.descriptor[i]), "{}: descriptor {dir} count, expected {:?}; {context}", row.process, row.descriptor[i]);
            assert_eq!(bytes, DESCRIPTOR_SIZE as u64 * n, "{}: descriptors are {DESCRIPTOR_SIZE} bytes; {context}", row.process);
        }
    }
    // Bytes: the client's are its request and the response; every payload
    // byte sent is received by a process of the table.
    let c = seen[CLIENT];
    assert_eq!((c.payload[0].1, c.payload[1].1), (request.len() as u64, response.len() as u64), "client bytes; {context}");
    let total = |i: usize, of: fn((u64, u64)) -> u64| seen.values().map(|o| of(o.payload[i])).sum::<u64>();
    assert_eq!(total(0, |(_, b)| b), total(1, |(_, b)| b), "payload bytes sent and received; {context}");
    // A write is queued whole and a read takes all that is queued (up to a
    // buffer larger than any of these messages): never more reads than writes.
    assert!(total(1, |(n, _)| n) <= total(0, |(n, _)| n), "more payload receives than sends; {context}");
}

#[test]
fn s_spright_motion_hops() {
    check(Mode::SSpright, Workload::Motion, &MOTION, S_SPRIGHT_MOTION);
}

#[test]
fn s_spright_parking_hops() {
    check(Mode::SSpright, Workload::Parking, &PARKING_KNOWN, S_SPRIGHT_PARKING);
}

#[test]
fn d_spright_motion_hops() {
    check(Mode::DSpright, Workload::Motion, &MOTION, RING_MOTION);
}

#[test]
fn d_spright_parking_hops() {
    check(Mode::DSpright, Workload::Parking, &PARKING_KNOWN, RING_PARKING);
}

#[test]
fn e_spright_motion_hops() {
    check(Mode::ESpright, Workload::Motion, &MOTION, RING_MOTION);
}

#[test]
fn e_spright_parking_hops() {
    check(Mode::ESpright, Workload::Parking, &PARKING_KNOWN, RING_PARKING);
}

#[test]
fn knative_motion_hops() {
    check(Mode::Knative, Workload::Motion, &MOTION, KNATIVE_MOTION);
}

#[test]
fn knative_parking_hops() {
    check(Mode::Knative, Workload::Parking, &PARKING_KNOWN, KNATIVE_PARKING);
}

#[test]
fn grpc_boutique_add_to_cart_hops() {
    check(Mode::Grpc, Workload::Boutique, &ADD_TO_CART, GRPC_ADD_TO_CART);
}
