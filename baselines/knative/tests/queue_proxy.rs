//! The queue-proxy's behaviour against a real (slow) user container.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{Http, Listening};

/// A keep-alive HTTP/1.1 container: `/healthz` answers at once, anything
/// else after `delay`; it records the most requests it ever had at once.
struct Container {
    addr: SocketAddr,
    current: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Container {
    fn start(delay: Duration) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (current, peak, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (c, p, s) = (current.clone(), peak.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let (c, p, s) = (c.clone(), p.clone(), s.clone());
                std::thread::spawn(move || serve(conn, delay, &c, &p, &s));
            }
        });
        Self { addr, current, peak, stop }
    }

    /// Stops answering: closes the listener and every connection.
    fn crash(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, delay: Duration, current: &AtomicUsize, peak: &AtomicUsize, stop: &AtomicBool) {
    conn.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    loop {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(_) if stop.load(Ordering::Relaxed) => return,
            Err(_) => continue,
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        let _ = r.read_exact(&mut body);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if !line.contains("/healthz") {
            let now = current.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(delay);
            current.fetch_sub(1, Ordering::SeqCst);
        }
        if w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
            return;
        }
    }
}

struct QueueProxy {
    server: Listening,
    addr: SocketAddr,
    metrics: Option<SocketAddr>,
}

impl QueueProxy {
    fn start(upstream: SocketAddr, concurrency: usize) -> Self {
        Self::launch(upstream, concurrency, false)
    }

    fn launch(upstream: SocketAddr, concurrency: usize, with_metrics: bool) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_knative-model"));
        cmd.args([
            "queue-proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.to_string(),
            "--concurrency",
            &concurrency.to_string(),
        ]);
        if with_metrics {
            cmd.args(["--metrics", "127.0.0.1:0"]);
        }
        let server = Listening::start(&mut cmd, if with_metrics { &["traffic", "metrics"] } else { &["traffic"] });
        Self { addr: server.addr("traffic"), metrics: with_metrics.then(|| server.addr("metrics")), server }
    }

    /// A gauge from its /metrics.
    fn gauge(&self, name: &str) -> i64 {
        let text = Http::connect(self.metrics.expect("started with metrics")).request("GET", "/metrics", b"").text();
        text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))).and_then(|v| v.trim().parse().ok()).expect(name)
    }
}

#[test]
fn the_breaker_queues_beyond_container_concurrency() {
    let c = Container::start(Duration::from_millis(300));
    let qp = QueueProxy::start(c.addr, 2);
    let start = Instant::now();
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let addr = qp.addr;
            std::thread::spawn(move || Http::connect(addr).request("GET", "/work", b"").status)
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), 200, "queued requests are served, not refused");
    }
    assert_eq!(c.peak.load(Ordering::SeqCst), 2, "never more than containerConcurrency at the container");
    assert!(start.elapsed() >= Duration::from_millis(850), "6 requests, 2 at a time, 300 ms each: {:?}", start.elapsed());
    assert_eq!(c.current.load(Ordering::SeqCst), 0);
}

#[test]
fn sigterm_drains_accepted_requests() {
    let c = Container::start(Duration::from_millis(500));
    let mut qp = QueueProxy::start(c.addr, 4);
    let addr = qp.addr;
    let inflight = std::thread::spawn(move || Http::connect(addr).request("GET", "/work", b"").status);
    std::thread::sleep(Duration::from_millis(150));
    unsafe { libc::kill(qp.server.child.id() as i32, libc::SIGTERM) };
    assert_eq!(inflight.join().unwrap(), 200, "the accepted request completes");
    assert!(qp.server.child.wait().unwrap().success());
}

#[test]
fn a_crashed_container_gives_502() {
    let c = Container::start(Duration::from_millis(10));
    let qp = QueueProxy::start(c.addr, 4);
    let mut http = Http::connect(qp.addr);
    assert_eq!(http.request("GET", "/work", b"").status, 200);
    c.crash();
    std::thread::sleep(Duration::from_millis(300));
    let r = Http::connect(qp.addr).request("GET", "/work", b"");
    assert_eq!(r.status, 502, "{}", r.text());
}

/// Clients that give up (their connection closed while their request waits
/// for the breaker or for the container) must not stay counted: a
/// queue-proxy whose counters only grow ends up answering 503 forever.
#[test]
fn requests_whose_clients_leave_are_not_counted_any_more() {
    let c = Container::start(Duration::from_millis(1500));
    let qp = QueueProxy::launch(c.addr, 1, true);
    let send = || {
        let mut s = TcpStream::connect(qp.addr).unwrap();
        s.write_all(b"GET /work HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
        s
    };
    // One in flight at the container, two waiting for the breaker.
    let clients = [send(), send(), send()];
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!((qp.gauge("queue_proxy_in_flight"), qp.gauge("queue_proxy_queued")), (1, 2));
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && (qp.gauge("queue_proxy_in_flight"), qp.gauge("queue_proxy_queued")) != (0, 0) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((qp.gauge("queue_proxy_in_flight"), qp.gauge("queue_proxy_queued")), (0, 0), "gone clients still counted");
    // And it still serves.
    assert_eq!(Http::connect(qp.addr).request("GET", "/work", b"").status, 200);
}
