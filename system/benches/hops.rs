//! Per-hop cost of every descriptor transport, measured side by side.
//!
//! `cargo bench -p spright` (needs root for the sk_msg rows). For chains of
//! 1, 3 and 5 function processes, the bench process plays the gateway: it
//! sends a descriptor to function 1, each function does the SDK's per-hop
//! work (take the slot, open the transaction in the slot, bump a counter in
//! the typed state - copied in and out of shared memory -, hand the slot
//! over, forward) and the last one
//! returns it. Latency: one descriptor in flight, round trips timed, divided
//! by the number of transfers (hops + 1). Throughput: 32 in flight.
//! Every number is reported as a ratio to an in-process call doing the same
//! work and to two sk_msg reference points, so S-SPRIGHT's per-hop cost
//! breaks down into the kernel redirect, SPROXY's checks and the runtime:
//!
//! * (a) the limit, "vs limit": a minimal sk_msg redirect between two
//!   processes - `system/bpf/bare_redirect.bpf.c`, loaded by this bench, one
//!   SOCKMAP redirect keyed by the message's first four bytes and nothing
//!   else (no sender check, no edge check, no counters, no sink).
//! * (b) "SPROXY redirect, no runtime", "vs SPROXY redirect": the same
//!   two-process ping-pong through the real SPROXY (`sproxy.bpf.c`: sender
//!   identified by local port, length and magic checked, edge looked up,
//!   per-function counters), with no pool and no SDK work. (b) - (a) is
//!   what SPROXY's checks (and its SOCKHASH, against (a)'s SOCKMAP index)
//!   cost per transfer.
//! * (c) the full S-SPRIGHT hop: the `skmsg (S-SPRIGHT)` rows - SPROXY plus
//!   the pool, the transaction and the SDK's per-hop work in every function.
//!
//! (a) and (b) are measured in alternating rounds ([`REFERENCE_ROUNDS`]),
//! their round trips pooled, so a burst of load from elsewhere on the machine
//! does not fall on one of them only. Both count 2 transfers per round trip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aya::maps::{MapData, SockMap};
use aya::programs::SkMsg;
use aya::Ebpf;
use spright::bpf::Sproxy;
use spright::descriptor::{ChainId, Descriptor, Endpoint, FrameDecoder, FunctionId};
use spright::pool::{Lease, Pool, PoolGeometry};
use spright::transport::eventring::{self, Doorbells};
use spright::transport::ring::{self, RingSegment};
use spright::transport::{skmsg, DescriptorRx, DescriptorTx, Link};
use spright::txn::{Method, Request, Txn};
use zerocopy::IntoBytes;

const CHAIN: ChainId = ChainId(1);
const SAMPLES: usize = 20_000;
const MAX_PHASE: Duration = Duration::from_secs(2);
const IN_FLIGHT: usize = 32;
/// Alternating rounds of each sk_msg reference point.
const REFERENCE_ROUNDS: usize = 3;

/// The minimal redirect program (reference point (a)); built and committed
/// like the runtime's objects, checked by the `bpf_objects` test.
const BARE_REDIRECT_OBJECT: &[u8] = include_bytes!("../bpf/bare_redirect.bpf.o");

fn ep(f: u16) -> Endpoint {
    Endpoint::new(CHAIN, FunctionId(f))
}

/// The SDK's per-hop work on a received descriptor, by function `me`.
fn hop(pool: &Pool, me: u16, d: &Descriptor, next: Endpoint) -> Descriptor {
    let lease = Lease(10 + me as u32);
    let slot = pool.take(d, lease).expect("valid descriptor");
    let mut txn = Txn::open(pool.payload(slot)).expect("transaction");
    *txn.state::<u64>().expect("state") += 1;
    drop(txn);
    assert!(pool.hand_over(slot, lease, next.function));
    Descriptor::new(next, slot.index, slot.gen)
}

/// The gateway takes a returned slot and sends it round again.
fn resend(pool: &Pool, d: &Descriptor) -> Descriptor {
    let s = pool.take(d, Lease::GATEWAY).expect("returned descriptor");
    assert!(pool.hand_over(s, Lease::GATEWAY, FunctionId(1)));
    Descriptor::new(ep(1), s.index, s.gen)
}

fn next_of(f: u16, hops: u16) -> Endpoint {
    if f == hops {
        Endpoint::gateway(CHAIN)
    } else {
        ep(f + 1)
    }
}

struct Stats {
    p50_rtt: Duration,
    p99_rtt: Duration,
    transfers_per_rtt: u32,
    throughput: f64,
}

impl Stats {
    fn per_hop_p50(&self) -> f64 {
        self.p50_rtt.as_nanos() as f64 / self.transfers_per_rtt as f64
    }
    fn per_hop_p99(&self) -> f64 {
        self.p99_rtt.as_nanos() as f64 / self.transfers_per_rtt as f64
    }
}

/// Sends/receives descriptors as the gateway.
trait Gw {
    fn send(&mut self, d: &Descriptor);
    fn recv(&mut self, out: &mut Vec<Descriptor>);
}

struct LinkGw(Arc<dyn DescriptorTx>, Box<dyn DescriptorRx>);

impl Gw for LinkGw {
    fn send(&mut self, d: &Descriptor) {
        self.0.send(d).expect("send");
    }
    fn recv(&mut self, out: &mut Vec<Descriptor>) {
        self.1.recv(out).expect("recv");
    }
}

fn prepare_slots(pool: &Pool, n: usize) -> Vec<Descriptor> {
    (0..n)
        .map(|_| {
            let s = pool.alloc(Lease::GATEWAY).unwrap();
            let req = Request { method: Method::Post, path: "/bench", query: "", cookie: "", content_type: "", body: b"payload" };
            Txn::create(pool.payload(s), 64, 0, &[FunctionId(1)], &req).unwrap();
            assert!(pool.hand_over(s, Lease::GATEWAY, FunctionId(1)));
            Descriptor::new(ep(1), s.index, s.gen)
        })
        .collect()
}

fn measure(gw: &mut dyn Gw, pool: &Pool, transfers: u32) -> Stats {
    let slots = prepare_slots(pool, IN_FLIGHT);
    let mut out = Vec::new();
    // Latency: one in flight.
    let mut rtts = Vec::with_capacity(SAMPLES);
    let start = Instant::now();
    while rtts.len() < SAMPLES && start.elapsed() < MAX_PHASE {
        let t = Instant::now();
        gw.send(&slots[0]);
        out.clear();
        while out.is_empty() {
            gw.recv(&mut out);
        }
        rtts.push(t.elapsed());
        resend(pool, &out[0]);
    }
    rtts.sort();
    // Throughput: IN_FLIGHT outstanding.
    for d in &slots {
        gw.send(d);
    }
    let mut done = 0u64;
    let start = Instant::now();
    while start.elapsed() < MAX_PHASE {
        out.clear();
        gw.recv(&mut out);
        for d in &out {
            gw.send(&resend(pool, d));
            done += 1;
        }
    }
    let throughput = done as f64 / start.elapsed().as_secs_f64();
    // Drain what is still in flight.
    let mut outstanding = IN_FLIGHT;
    while outstanding > 0 {
        out.clear();
        gw.recv(&mut out);
        outstanding -= out.len();
    }
    for d in &slots {
        pool.free(spright::pool::SlotRef { index: d.slot, gen: d.gen }).unwrap();
    }
    let pct = |p: f64| rtts[((rtts.len() as f64 * p) as usize).min(rtts.len() - 1)];
    Stats { p50_rtt: pct(0.5), p99_rtt: pct(0.99), transfers_per_rtt: transfers, throughput }
}

/// Forks a child running `body`; returns its pid.
fn fork_child(body: impl FnOnce()) -> i32 {
    // SAFETY: the bench is single-threaded, so the child inherits no lock
    // held by another thread; it runs `body` and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        // SAFETY: plain prctl on the calling process, no pointers.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        body();
        // SAFETY: ends the child without running the parent's atexit
        // handlers or destructors a second time.
        unsafe { libc::_exit(0) };
    }
    pid
}

fn reap(pids: &[i32]) {
    for &p in pids {
        // SAFETY: `p` is a child forked by this process and not yet
        // reaped; a null status pointer is allowed by waitpid.
        unsafe {
            libc::kill(p, libc::SIGKILL);
            libc::waitpid(p, std::ptr::null_mut(), 0);
        }
    }
}

/// A function process: receive, hop, forward - forever.
fn function_loop(pool: &Pool, link: Link, f: u16, hops: u16) {
    let Link { tx, mut rx, .. } = link;
    let mut batch = Vec::new();
    loop {
        batch.clear();
        if rx.recv(&mut batch).is_err() {
            return;
        }
        for d in &batch {
            tx.send(&hop(pool, f, d, next_of(f, hops))).unwrap();
        }
    }
}

fn new_pool() -> Pool {
    Pool::create(CHAIN, PoolGeometry { slots: 256, slot_payload: 4096 }).unwrap()
}

fn loopback_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

fn bench_skmsg(hops: u16) -> Stats {
    let pool = new_pool();
    let mut sp = Sproxy::load().expect("sk_msg rows need root");
    let ends: Vec<Endpoint> = (0..=hops).map(ep).collect();
    for &a in &ends {
        for &b in &ends {
            if a != b {
                sp.allow(a, b).unwrap();
            }
        }
    }
    let socks: Vec<(TcpStream, TcpStream)> = ends
        .iter()
        .map(|&e| {
            let (mine, peer) = loopback_pair();
            sp.register(e, &mine).unwrap();
            (mine, peer)
        })
        .collect();
    let mut pids = Vec::new();
    for f in 1..=hops {
        let s: OwnedFd = socks[f as usize].0.try_clone().unwrap().into();
        let pool = &pool;
        pids.push(fork_child(move || function_loop(pool, skmsg::link(s).unwrap(), f, hops)));
    }
    let Link { tx, rx, .. } = skmsg::link(socks[0].0.try_clone().unwrap().into()).unwrap();
    let stats = measure(&mut LinkGw(tx, rx), &pool, hops as u32 + 1);
    reap(&pids);
    stats
}

fn bench_rings(hops: u16, event: bool) -> Stats {
    let pool = new_pool();
    let seg = Arc::new(RingSegment::create(CHAIN, hops as u32 + 1, 256).unwrap());
    let bells = Arc::new(Doorbells::create(hops as u32 + 1).unwrap());
    let link = |f: u16| {
        if event {
            eventring::link(seg.clone(), bells.clone(), ep(f)).unwrap()
        } else {
            ring::polling_link(seg.clone(), ep(f)).unwrap()
        }
    };
    let mut pids = Vec::new();
    for f in 1..=hops {
        let l = link(f);
        let pool = &pool;
        pids.push(fork_child(move || function_loop(pool, l, f, hops)));
    }
    let Link { tx, rx, .. } = link(0);
    let stats = measure(&mut LinkGw(tx, rx), &pool, hops as u32 + 1);
    reap(&pids);
    stats
}

/// Descriptors handed over unix stream sockets along the chain.
struct UnixGw {
    out: UnixStream,
    inp: UnixStream,
    dec: FrameDecoder,
}

impl Gw for UnixGw {
    fn send(&mut self, d: &Descriptor) {
        self.out.write_all(d.as_bytes()).unwrap();
    }
    fn recv(&mut self, out: &mut Vec<Descriptor>) {
        let mut buf = [0u8; 1024];
        let n = self.inp.read(&mut buf).unwrap();
        self.dec.feed(&buf[..n], out);
    }
}

fn bench_unix(hops: u16) -> Stats {
    let pool = new_pool();
    // links[i] carries transfers into endpoint i (0 = gateway).
    let links: Vec<(UnixStream, UnixStream)> = (0..=hops).map(|_| UnixStream::pair().unwrap()).collect();
    let mut pids = Vec::new();
    for f in 1..=hops {
        let inp = links[f as usize].1.try_clone().unwrap();
        let mut out = links[(f as usize + 1) % (hops as usize + 1)].0.try_clone().unwrap();
        let pool = &pool;
        pids.push(fork_child(move || {
            let mut dec = FrameDecoder::default();
            let mut batch = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                let n = (&inp).read(&mut buf).unwrap();
                if n == 0 {
                    return;
                }
                batch.clear();
                dec.feed(&buf[..n], &mut batch);
                for d in &batch {
                    out.write_all(hop(pool, f, d, next_of(f, hops)).as_bytes()).unwrap();
                }
            }
        }));
    }
    let mut gw = UnixGw { out: links[1].0.try_clone().unwrap(), inp: links[0].1.try_clone().unwrap(), dec: FrameDecoder::default() };
    let stats = measure(&mut gw, &pool, hops as u32 + 1);
    reap(&pids);
    stats
}

/// The same hop work as plain function calls in one thread.
fn bench_in_process(hops: u16) -> Stats {
    let pool = new_pool();
    let d0 = prepare_slots(&pool, 1)[0];
    let mut rtts = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        let mut d = d0;
        for f in 1..=hops {
            d = std::hint::black_box(hop(&pool, f, &d, next_of(f, hops)));
        }
        resend(&pool, &d);
        rtts.push(t.elapsed());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        let mut d = d0;
        for f in 1..=hops {
            d = std::hint::black_box(hop(&pool, f, &d, next_of(f, hops)));
        }
        resend(&pool, &d);
        n += 1;
    }
    rtts.sort();
    Stats {
        p50_rtt: rtts[rtts.len() / 2],
        p99_rtt: rtts[rtts.len() * 99 / 100],
        transfers_per_rtt: hops as u32,
        throughput: n as f64 / start.elapsed().as_secs_f64(),
    }
}

/// One round of a reference point: its round trips and the time they took.
type Round = (Vec<Duration>, Duration);

/// Bounces one 16-byte message between two processes whose sockets `a`
/// and `b` are already in a socket map with a redirect program attached: the
/// bench process sends `to_b` on `a`, a forked child answers every message
/// it reads on `b` with `to_a`. `peers` are the sockets' real TCP peers,
/// which a redirect bypasses. Returns the round trips; panics unless every
/// message was redirected.
fn ping_pong(a: &TcpStream, b: TcpStream, peers: &[TcpStream; 2], to_b: [u8; 16], to_a: [u8; 16]) -> Round {
    // A message that is not redirected never comes back: fail, don't hang.
    a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // `b` is in the map before the child starts receiving on it.
    let child = fork_child(move || {
        let mut buf = [0u8; 16];
        loop {
            if (&b).read_exact(&mut buf).is_err() {
                return;
            }
            (&b).write_all(&to_a).unwrap();
        }
    });
    let mut a = a;
    let mut buf = [0u8; 16];
    let mut rtts = Vec::with_capacity(SAMPLES);
    let start = Instant::now();
    while rtts.len() < SAMPLES && start.elapsed() < MAX_PHASE {
        let t = Instant::now();
        a.write_all(&to_b).unwrap();
        a.read_exact(&mut buf).expect("no answer within 5 s: a message was not redirected");
        rtts.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    assert_eq!(buf, to_a, "the answer is not the child's message");
    // Checked before the child exits: its exit closes `b`, and `b`'s peer
    // then reads end-of-file.
    for p in peers {
        p.set_nonblocking(true).unwrap();
        let peeked = p.peek(&mut buf);
        let idle = matches!(&peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        assert!(idle, "a message reached a socket's TCP peer instead of being redirected: {peeked:?}");
    }
    reap(&[child]);
    (rtts, elapsed)
}

/// Reference point (a), the limit: two processes bouncing 16-byte messages
/// through `bare_redirect.bpf.c` - one SOCKMAP redirect, no checks, no pool,
/// no transaction. Sockets at index 0 (bench) and 1 (child); each message
/// names its destination index in its first four bytes.
fn minimal_redirect_round() -> Round {
    let mut ebpf = Ebpf::load(BARE_REDIRECT_OBJECT).expect("sk_msg rows need root");
    let mut peers: SockMap<MapData> = ebpf.take_map("peers").expect("peers map").try_into().expect("peers is a SOCKMAP");
    {
        let prog: &mut SkMsg = ebpf.program_mut("bare_redirect").expect("bare_redirect program").try_into().expect("sk_msg program");
        prog.load().expect("verify bare_redirect");
        // Attach before any socket enters the map.
        prog.attach(peers.fd()).expect("attach bare_redirect");
    }
    let (sa, pa) = loopback_pair();
    let (sb, pb) = loopback_pair();
    peers.set(0, &sa, 0).unwrap();
    peers.set(1, &sb, 0).unwrap();
    let keyed = |index: u32, fill: u8| {
        let mut m = [fill; 16];
        m[..4].copy_from_slice(&index.to_ne_bytes());
        m
    };
    ping_pong(&sa, sb, &[pa, pb], keyed(1, b'b'), keyed(0, b'a'))
}

/// Reference point (b): the same ping-pong through the real SPROXY (sender
/// by port, length and magic, edge check, counters), still with no pool and
/// no SDK work - the cost of SPROXY's redirect without the runtime.
fn sproxy_redirect_round() -> Round {
    let mut sp = Sproxy::load().expect("sk_msg rows need root");
    let (a, b) = (ep(0), ep(1));
    sp.allow(a, b).unwrap();
    sp.allow(b, a).unwrap();
    let (sa, pa) = loopback_pair();
    let (sb, pb) = loopback_pair();
    sp.register(a, &sa).unwrap();
    sp.register(b, &sb).unwrap();
    let desc = |to: Endpoint| -> [u8; 16] { Descriptor::new(to, 0, 1).as_bytes().try_into().unwrap() };
    let round = ping_pong(&sa, sb, &[pa, pb], desc(b), desc(a));
    assert_eq!(sp.drops().total(), 0, "SPROXY refused a descriptor");
    round
}

/// Runs the two reference points in alternating rounds and pools each one's
/// round trips (2 transfers each): (minimal redirect, SPROXY redirect).
fn bench_reference_points() -> (Stats, Stats) {
    let mut acc = [(Vec::new(), Duration::ZERO), (Vec::new(), Duration::ZERO)];
    for _ in 0..REFERENCE_ROUNDS {
        for (i, round) in [minimal_redirect_round as fn() -> Round, sproxy_redirect_round].iter().enumerate() {
            let (rtts, elapsed) = round();
            acc[i].0.extend(rtts);
            acc[i].1 += elapsed;
        }
    }
    let [minimal, sproxy] = acc.map(|(mut rtts, elapsed)| {
        rtts.sort();
        let n = rtts.len();
        Stats { p50_rtt: rtts[n / 2], p99_rtt: rtts[n * 99 / 100], transfers_per_rtt: 2, throughput: n as f64 / elapsed.as_secs_f64() }
    });
    (minimal, sproxy)
}

/// A benchmark row: its label and how to run it for a chain length.
type Row = (&'static str, Box<dyn Fn(u16) -> Stats>);

fn main() {
    // `cargo bench` passes --bench; a filter argument selects rows.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let cpus = spright::sys::allowed_cpus();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    println!("# spright per-hop benchmark");
    println!(
        "# CPUs allowed: {cpus:?}; processes unpinned (the scheduler places them); {} build",
        if cfg!(debug_assertions) { "UNOPTIMIZED debug" } else { "optimized" }
    );
    println!("# latency: 1 descriptor in flight, round trip / (hops + 1); throughput: {IN_FLIGHT} in flight, chain traversals/s");

    let in_proc: Vec<(u16, Stats)> = [1u16, 3, 5].iter().map(|&h| (h, bench_in_process(h))).collect();
    let refs = if root && want("skmsg") { Some(bench_reference_points()) } else { None };
    if let Some((limit, sproxy)) = &refs {
        println!("# reference points: two processes ping-ponging one 16-byte message, round trip / 2 per transfer");
        println!(
            "# (a) limit, minimal sk_msg redirect (bare_redirect.bpf.c, no checks): p50 {:.2} us, p99 {:.2} us per transfer",
            limit.per_hop_p50() / 1e3,
            limit.per_hop_p99() / 1e3
        );
        println!(
            "# (b) SPROXY redirect, no runtime (sproxy.bpf.c, no pool, no SDK): p50 {:.2} us, p99 {:.2} us per transfer; {:.2}x limit (p50 {:+.0} ns)",
            sproxy.per_hop_p50() / 1e3,
            sproxy.per_hop_p99() / 1e3,
            sproxy.per_hop_p50() / limit.per_hop_p50(),
            sproxy.per_hop_p50() - limit.per_hop_p50()
        );
        println!("# (c) S-SPRIGHT hop: the skmsg rows; vs limit = p50 / hop over (a), vs SPROXY redirect = p50 / hop over (b)");
    }
    println!();
    println!("| transport | hops | p50 / hop | p99 / hop | vs in-process | vs limit | vs SPROXY redirect | chain traversals/s |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows: Vec<Row> = vec![("in-process call", Box::new(bench_in_process))];
    if root {
        rows.push(("skmsg (S-SPRIGHT)", Box::new(bench_skmsg)));
    } else {
        println!("(skmsg rows skipped: not root)");
    }
    rows.push(("eventring (E-SPRIGHT)", Box::new(|h| bench_rings(h, true))));
    rows.push(("ring (D-SPRIGHT, polled)", Box::new(|h| bench_rings(h, false))));
    rows.push(("unix socket hand-off", Box::new(bench_unix)));
    for (name, f) in rows {
        if !want(name) {
            continue;
        }
        for &hops in &[1u16, 3, 5] {
            let s = f(hops);
            let base = &in_proc.iter().find(|(h, _)| *h == hops).unwrap().1;
            let vs = |r: &Stats| format!("{:.2}x", s.per_hop_p50() / r.per_hop_p50());
            let (vs_limit, vs_sproxy) = refs.as_ref().map(|(l, p)| (vs(l), vs(p))).unwrap_or_else(|| ("-".into(), "-".into()));
            let oversub = if name.starts_with("ring") && hops as usize + 1 > cpus.len() { " (oversubscribed)" } else { "" };
            println!(
                "| {name}{oversub} | {hops} | {:.2} us | {:.2} us | {:.0}x | {vs_limit} | {vs_sproxy} | {:.0} |",
                s.per_hop_p50() / 1e3,
                s.per_hop_p99() / 1e3,
                s.per_hop_p50() / base.per_hop_p50(),
                s.throughput
            );
        }
    }
}
