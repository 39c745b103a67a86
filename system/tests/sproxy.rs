//! SPROXY loaded for real: redirection, edge enforcement, counters, and the
//! kernel behaviours that bite sk_msg users: a redirect to a socket that
//! is gone must not wedge the sender, and a receiver blocked in a sockmap
//! socket must wake at shutdown. Needs root; without BPF these
//! tests fail (they never skip).

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use spright::bpf::Sproxy;
use spright::descriptor::{ChainId, Descriptor, Endpoint, FunctionId, DESCRIPTOR_SIZE};
use zerocopy::{FromBytes, IntoBytes};

fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

fn ep(chain: u16, f: u16) -> Endpoint {
    Endpoint::new(ChainId(chain), FunctionId(f))
}

struct Node {
    sock: TcpStream,
    _peer: TcpStream,
}

fn node(sp: &mut Sproxy, e: Endpoint) -> Node {
    let (sock, peer) = pair();
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sp.register(e, &sock).unwrap();
    Node { sock, _peer: peer }
}

fn send(n: &Node, d: &Descriptor) {
    use std::io::Write;
    (&n.sock).write_all(d.as_bytes()).unwrap();
}

fn recv_n(n: &Node, count: usize) -> Vec<Descriptor> {
    let mut buf = vec![0u8; count * DESCRIPTOR_SIZE];
    (&n.sock).read_exact(&mut buf).unwrap();
    buf.chunks(DESCRIPTOR_SIZE).map(|c| Descriptor::read_from_bytes(c).unwrap()).collect()
}

fn nothing_arrives(n: &Node) {
    n.sock.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
    let mut b = [0u8; 16];
    let r = (&n.sock).read(&mut b);
    assert!(r.is_err(), "unexpected delivery: {r:?}");
    n.sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
}

#[test]
fn redirects_counts_and_enforces_edges() {
    let mut sp = Sproxy::load().expect("SPROXY must load (run as root with BPF)");
    let (a, b, x) = (ep(1, 1), ep(1, 2), ep(2, 1));
    let (sink, _sink_peer) = pair();
    sink.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    sp.register_sink(&sink).unwrap();
    let na = node(&mut sp, a);
    let nb = node(&mut sp, b);
    let nx = node(&mut sp, x);
    sp.allow(a, b).unwrap();
    sp.allow(b, a).unwrap();

    // Delivery, with coalescing on the receiving stream.
    for i in 0..3 {
        send(&na, &Descriptor::new(b, i, 7));
    }
    let got = recv_n(&nb, 3);
    assert_eq!(got.iter().map(|d| d.slot).collect::<Vec<_>>(), vec![0, 1, 2]);
    let st = sp.stats(a);
    assert_eq!((st.tx_msgs, st.tx_bytes), (3, 48));
    assert_eq!(sp.stats(b).rx_msgs, 3);

    // Chain 2 cannot reach chain 1: refused by the kernel, counted, sunk.
    send(&nx, &Descriptor::new(b, 9, 9));
    nothing_arrives(&nb);
    assert_eq!(sp.drops().edge_denied, 1);
    let mut sunk = [0u8; 16];
    (&sink).read_exact(&mut sunk).unwrap();
    // ... and the refused sender is not poisoned.
    send(&nx, &Descriptor::new(b, 10, 9));
    assert_eq!(sp.drops().edge_denied, 2);

    // Two descriptors in one sendmsg would get one verdict: refused.
    let two = [Descriptor::new(b, 1, 1), Descriptor::new(b, 2, 1)];
    use std::io::Write;
    (&na.sock).write_all(two.as_bytes()).unwrap();
    nothing_arrives(&nb);
    assert_eq!(sp.drops().bad_length, 1);

    // Bad magic.
    let mut forged = Descriptor::new(b, 1, 1);
    forged.magic = 0x1234;
    send(&na, &forged);
    nothing_arrives(&nb);
    assert_eq!(sp.drops().bad_magic, 1);

    // Still delivering after all of the above.
    send(&na, &Descriptor::new(b, 42, 1));
    assert_eq!(recv_n(&nb, 1)[0].slot, 42);
    send(&nb, &Descriptor::new(a, 43, 1));
    assert_eq!(recv_n(&na, 1)[0].slot, 43);
}

#[test]
fn dead_destination_goes_to_sink_without_poisoning_the_sender() {
    let mut sp = Sproxy::load().expect("SPROXY must load (run as root with BPF)");
    let (a, b, c) = (ep(3, 1), ep(3, 2), ep(3, 3));
    let (sink, _sp) = pair();
    sp.register_sink(&sink).unwrap();
    let na = node(&mut sp, a);
    let nb = node(&mut sp, b);
    let nc = node(&mut sp, c);
    for dst in [b, c] {
        sp.allow(a, dst).unwrap();
    }
    assert!(sp.is_registered(b), "a registered socket is in the map");
    // kill -9 of b: its socket closes and leaves the map by itself.
    drop(nb);
    let closed = std::time::Instant::now();
    while sp.is_registered(b) {
        assert!(closed.elapsed() < Duration::from_secs(2), "a closed socket stays in the map");
        std::thread::sleep(Duration::from_millis(1));
    }
    send(&na, &Descriptor::new(b, 1, 1));
    assert_eq!(sp.drops().no_route, 1);
    send(&na, &Descriptor::new(c, 2, 1));
    assert_eq!(recv_n(&nc, 1)[0].slot, 2, "sender still works after a miss");

    // A restarted b re-registers and is reachable again.
    let nb2 = node(&mut sp, b);
    send(&na, &Descriptor::new(b, 3, 1));
    assert_eq!(recv_n(&nb2, 1)[0].slot, 3);
}

#[test]
fn shutdown_wakes_a_receiver_blocked_in_the_sockmap() {
    let mut sp = Sproxy::load().expect("SPROXY must load (run as root with BPF)");
    let e = ep(4, 1);
    let n = node(&mut sp, e);
    n.sock.set_read_timeout(None).unwrap();
    let s2 = n.sock.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        let mut b = [0u8; 16];
        (&s2).read(&mut b)
    });
    std::thread::sleep(Duration::from_millis(100));
    n.sock.shutdown(std::net::Shutdown::Both).unwrap();
    let started = std::time::Instant::now();
    while !t.is_finished() && started.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(t.is_finished(), "recv stayed blocked after shutdown");
    // tcp_bpf answers EAGAIN rather than EOF once shut down; either wakes us.
    let r = t.join().unwrap();
    assert!(matches!(&r, Ok(0)) || matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "{r:?}");
}
