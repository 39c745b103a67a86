//! Isolation, attacked. Two attackers try every way into chain `a`: an
//! unprivileged process that is no registered function (uid 65534, as a
//! function container's user would be), and a registered function of chain
//! `b`. Every attempt is refused - by the kernel, SPROXY, the receiver's
//! slot check or the control plane - counted where the runtime sees it, the
//! counters show in `spright stats`, and `a` keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::{Http, Spright};
use spright::control::registration::{Hello, Welcome};
use spright::descriptor::{ChainId, Descriptor, Endpoint, FunctionId};
use spright::pool::Pool;
use spright::txn::Txn;
use zerocopy::{FromBytes, IntoBytes};

const CHAINS: &str = r#"
chains:
  - name: a
    functions:
      - { id: 1, name: render, handler: example.render }
    routes:
      - { path: /a, first: 1 }
  - name: b
    functions:
      - { id: 1, name: render, handler: example.render }
      - { id: 2, name: intruder, handler: example.render, spawn: false }
    routes:
      - { path: /b, first: 1 }
      - { path: /intruder, first: 2 }
"#;

const ROLE_ENV: &str = "SPRIGHT_ISOLATION_OUTSIDER";
const NOBODY: u32 = 65534;

/// What the outsider is told about its target.
struct Target {
    control: String,
    /// Processes of chain `a`'s deployment whose fds hold the pool / rings.
    pids: Vec<u32>,
    /// Local and peer ports of chain `a`'s function sockets.
    sockets: Vec<(u16, u16)>,
}

impl Target {
    fn encode(&self) -> String {
        let pids: Vec<String> = self.pids.iter().map(u32::to_string).collect();
        let socks: Vec<String> = self.sockets.iter().map(|(l, p)| format!("{l}-{p}")).collect();
        format!("{};{};{}", self.control, pids.join(","), socks.join(","))
    }

    fn decode(s: &str) -> Self {
        let mut parts = s.split(';');
        let control = parts.next().unwrap().to_string();
        let pids = parts.next().unwrap().split(',').filter(|p| !p.is_empty()).map(|p| p.parse().unwrap()).collect();
        let sockets = parts
            .next()
            .unwrap()
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (l, r) = p.split_once('-').unwrap();
                (l.parse().unwrap(), r.parse().unwrap())
            })
            .collect();
        Self { control, pids, sockets }
    }
}

/// Not a test by itself: the outsider process that
/// `an_outsider_is_refused_everything` starts as uid 65534. Prints one line
/// per attempt: `refused NAME: how` or `ACCEPTED NAME: what it got`.
#[test]
fn role_outsider() {
    let Ok(target) = std::env::var(ROLE_ENV) else { return };
    let t = Target::decode(&target);
    let report = |name: &str, refused: Result<String, String>| match refused {
        Ok(how) => println!("refused {name}: {how}"),
        Err(what) => println!("ACCEPTED {name}: {what}"),
    };
    // The pool and ring memfds, through the processes that hold them.
    let mut opened = Vec::new();
    let mut tried = 0;
    for pid in &t.pids {
        for dir in ["fd", "map_files"] {
            let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/{dir}")) else {
                tried += 1;
                continue;
            };
            for e in entries.flatten() {
                tried += 1;
                if std::fs::OpenOptions::new().read(true).write(true).open(e.path()).is_ok() {
                    opened.push(e.path().display().to_string());
                }
            }
        }
    }
    report("map_pool_or_rings", if opened.is_empty() { Ok(format!("{tried} fds/mappings, none opened")) } else { Err(opened.join(" ")) });
    // Register as chain a's function 1 (abstract sockets have no permissions:
    // the control plane's check is all there is).
    let register = spright::sys::unix_connect(&t.control).map_err(|e| e.to_string()).and_then(|conn| {
        Hello { chain: "a".into(), function: 1, pid: std::process::id() }.send(&conn).map_err(|e| e.to_string())?;
        Ok(Welcome::recv(&conn))
    });
    report(
        "register_as_a_function",
        match register {
            Ok(Ok(w)) => Err(format!("welcomed into chain {:?} with {} fds", w.chain, w.fds.len())),
            Ok(Err(e)) => Ok(format!("refused: {e}")),
            Err(e) => Ok(format!("cannot even talk: {e}")),
        },
    );
    // Send a descriptor to a's functions: their sockets are one end of a
    // connected pair; nothing listens.
    for &(local, peer) in &t.sockets {
        for port in [local, peer] {
            let r = match TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)) {
                Ok(mut s) => {
                    let _ = s.write_all(Descriptor::new(Endpoint::new(ChainId(1), FunctionId(1)), 0, 1).as_bytes());
                    Err(format!("connected to port {port}"))
                }
                Err(e) => Ok(format!("port {port}: {e}")),
            };
            report("send_to_a_function", r);
        }
        // Forge a sender: take a function socket's local port (SO_REUSEADDR)
        // and connect to its peer.
        report("forge_sender_port", forge_from_port(local, peer));
    }
}

/// Binds a new socket to `local` and connects it to `peer`.
fn forge_from_port(local: u16, peer: u16) -> Result<String, String> {
    // SAFETY: plain socket calls on an fd we own, with sockaddr_in values
    // built here.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return Ok("no socket".into());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, (&one as *const libc::c_int).cast(), 4);
        let addr = |port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes([127, 0, 0, 1]) },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let l = addr(local);
        if libc::bind(fd.as_raw_fd(), (&l as *const libc::sockaddr_in).cast(), len) != 0 {
            return Ok(format!("bind to port {local}: {}", std::io::Error::last_os_error()));
        }
        let p = addr(peer);
        if libc::connect(fd.as_raw_fd(), (&p as *const libc::sockaddr_in).cast(), len) != 0 {
            return Ok(format!("connect {local} -> {peer}: {}", std::io::Error::last_os_error()));
        }
        Err(format!("connected from {local} to {peer}"))
    }
}

/// Local and peer ports of every TCP socket `pid` holds.
fn tcp_ports(pid: u32) -> Vec<(u16, u16)> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |hex: &str| u16::from_str_radix(hex.rsplit(':').next().unwrap(), 16).unwrap();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && inodes.iter().any(|i| i == f[9]) && f[3] == "01").then(|| (port(f[1]), port(f[2])))
        })
        .collect()
}

/// A copy of this test binary that uid 65534 can execute.
fn world_executable_self() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("spright-isolation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("isolation");
    std::fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn stats_table(sp: &testkit::Spright) -> String {
    let out = std::process::Command::new(common::bin()).args(["stats", "--admin", &sp.admin.to_string()]).output().unwrap();
    assert!(out.status.success(), "spright stats: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A stats row's value: the last number on the first line naming every part.
fn stat(table: &str, parts: &[&str]) -> f64 {
    table
        .lines()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or_else(|| panic!("no row with {parts:?} in:\n{table}"))
}

#[test]
fn an_outsider_is_refused_everything() {
    for transport in ["skmsg", "eventring"] {
        let sp = Spright::start_yaml(CHAINS, transport);
        let render_a = sp.metric("spright_function_pid", &["chain=\"a\"", "function=\"render\""]) as u32;
        let pids = vec![sp.pid, render_a];
        let sockets = if transport == "skmsg" { tcp_ports(render_a) } else { Vec::new() };
        assert!(transport != "skmsg" || !sockets.is_empty(), "render's socket found");
        let target = Target { control: sp.control.clone(), pids, sockets };
        let bin = world_executable_self();
        let out = std::process::Command::new(&bin)
            .args(["--exact", "role_outsider", "--nocapture", "--test-threads=1"])
            .env(ROLE_ENV, target.encode())
            .uid(NOBODY)
            .gid(NOBODY)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(bin.parent().unwrap());
        let text = String::from_utf8_lossy(&out.stdout);
        // (The first line may follow libtest's "test role_outsider ... ".)
        let attempts: Vec<&str> =
            text.lines().filter_map(|l| l.find("refused ").or_else(|| l.find("ACCEPTED ")).map(|i| &l[i..])).collect();
        eprintln!("{transport}: outsider attempts:\n{}", attempts.join("\n"));
        assert!(attempts.iter().all(|l| l.starts_with("refused ")), "{transport}: {attempts:#?}");
        let mut expected = vec!["map_pool_or_rings", "register_as_a_function"];
        if transport == "skmsg" {
            expected.extend(["send_to_a_function", "forge_sender_port"]);
        }
        for name in expected {
            assert!(attempts.iter().any(|l| l.starts_with(&format!("refused {name}:"))), "{transport}: {name} not attempted: {text}");
        }
        let table = stats_table(&sp);
        assert_eq!(stat(&table, &["registrations_refused_total"]), 1.0, "{transport}: the refused registration is counted");
        assert_eq!(Http::connect(sp.addr).request("POST", "/a", b"still here").status, 200, "{transport}");
    }
}

/// Registers this process as chain b's admitted function `intruder`; the
/// connection is kept open by the caller.
fn register_intruder(sp: &testkit::Spright) -> (std::os::unix::net::UnixStream, Welcome) {
    let conn = spright::sys::unix_connect(&sp.control).expect("control socket");
    Hello { chain: "b".into(), function: 2, pid: std::process::id() }.send(&conn).unwrap();
    let w = Welcome::recv(&conn).expect("admitted");
    (conn, w)
}

#[test]
fn a_function_of_another_chain_is_refused_everything() {
    let sp = Spright::start_yaml(CHAINS, "skmsg");
    let (_conn, mut w) = register_intruder(&sp);
    let sock = TcpStream::from(w.fds.pop().unwrap());
    let pool = Pool::open(w.fds.pop().unwrap()).unwrap();
    assert_eq!(pool.chain(), ChainId(2), "only its own chain's pool is handed over");
    let send_raw = |bytes: &[u8]| (&sock).write_all(bytes).unwrap();
    let send = |d: &Descriptor| send_raw(d.as_bytes());
    let a_render = Endpoint::new(ChainId(1), FunctionId(1));
    let b_render = Endpoint::new(ChainId(2), FunctionId(1));
    let b_gateway = Endpoint::gateway(ChainId(2));

    // Register as one of a's functions: not the process started for it.
    let second = spright::sys::unix_connect(&sp.control).unwrap();
    Hello { chain: "a".into(), function: 1, pid: std::process::id() }.send(&second).unwrap();
    assert!(Welcome::recv(&second).is_err(), "registered as a/render");

    // Into chain a: refused by SPROXY in the kernel.
    send(&Descriptor::new(a_render, 0, 1));
    send(&Descriptor::new(Endpoint::gateway(ChainId(1)), 0, 1));
    // Malformed, short and oversized messages.
    let mut bad = Descriptor::new(b_render, 0, 1);
    bad.magic = 0xbeef;
    send(&bad);
    send_raw(&Descriptor::new(b_render, 0, 1).as_bytes()[..8]);
    std::thread::sleep(Duration::from_millis(50));
    let mut two = Descriptor::new(b_render, 0, 1).as_bytes().to_vec();
    two.extend_from_slice(&[0u8; 8]);
    send_raw(&two);
    std::thread::sleep(Duration::from_millis(50));
    // Stale and out-of-range descriptors inside its own chain.
    send(&Descriptor::new(b_render, 0, 12345));
    send(&Descriptor::new(b_render, 99_999, 1));

    // A replay: serve one request sent to us, then send its descriptor on.
    let addr = sp.addr;
    let client = std::thread::spawn(move || Http::connect(addr).request("POST", "/intruder", b"to the intruder"));
    let mut raw = [0u8; 16];
    (&sock).read_exact(&mut raw).unwrap();
    let d = Descriptor::read_from_bytes(&raw).unwrap();
    let slot = pool.take(&d, w.lease).expect("the request sent to us");
    Txn::open(pool.payload(slot)).unwrap().set_response(200, "text/plain", "", b"intruded politely").unwrap();
    assert!(pool.hand_over(slot, w.lease, FunctionId::GATEWAY));
    send(&Descriptor::new(b_gateway, slot.index, slot.gen));
    let r = client.join().unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"intruded politely"[..]));
    send(&Descriptor::new(b_render, slot.index, slot.gen));
    send(&Descriptor::new(b_gateway, slot.index, slot.gen));

    let counted = sp.eventually(Duration::from_secs(3), |s| {
        let t = stats_table(s);
        let rejected = |reason: &str| stat(&t, &["pool_descriptors_rejected_total", "chain=b,", &format!("reason={reason}")]);
        let drops = |reason: &str| stat(&t, &["sproxy_drops_total", &format!("reason={reason}")]);
        drops("edge_denied") == 2.0
            && drops("bad_magic") == 1.0
            && drops("bad_length") >= 1.0
            && rejected("out_of_range") == 1.0
            && rejected("stale") + rejected("not_addressed") >= 2.0
            && stat(&t, &["registrations_refused_total"]) == 1.0
            && stat(&t, &["gateway_descriptors_total", "kind=rejected"]) >= 1.0
    });
    assert!(counted, "{}", stats_table(&sp));
    let t = stats_table(&sp);
    assert_eq!(stat(&t, &["sproxy_messages_total", "chain=a,function=render,direction=rx"]), 0.0, "nothing reached a");
    let mut http = Http::connect(sp.addr);
    for i in 0..20 {
        assert_eq!(http.request("POST", "/a", format!("a {i}").as_bytes()).status, 200);
        assert_eq!(http.request("POST", "/b", format!("b {i}").as_bytes()).status, 200);
    }
    assert!(sp.eventually(Duration::from_secs(3), |s| s.slots_in_use() == 0.0));
}

#[test]
fn ring_functions_of_another_chain_cannot_address_it() {
    let sp = Spright::start_yaml(CHAINS, "eventring");
    let (_conn, mut w) = register_intruder(&sp);
    assert_eq!(w.fds.len(), 2 + 3, "pool + segment + one doorbell per ring of chain b");
    let _bells = w.fds.split_off(2);
    let seg = spright::transport::ring::RingSegment::open(w.fds.pop().unwrap()).unwrap();
    assert_eq!(seg.chain(), ChainId(2));
    assert!(
        seg.push(FunctionId(2), &Descriptor::new(Endpoint::new(ChainId(1), FunctionId(1)), 0, 1)).is_err(),
        "no way to address chain a"
    );
    assert_eq!(Http::connect(sp.addr).request("POST", "/a", b"x").status, 200);
}
