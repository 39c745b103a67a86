//! The gRPC deployment as real processes: the frontend's answers when a
//! service dies and comes back, and bad input at the front door.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use testkit::Http;

struct Proc {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(service: &str, listen: &str, peers: &[String]) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_grpc-baseline"));
    cmd.args(["--service", service, "--listen", listen]).stdout(Stdio::piped());
    for p in peers {
        cmd.args(["--peer", p]);
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split_whitespace().find_map(|w| w.strip_prefix("http://")).unwrap_or_else(|| panic!("{service}: {line:?}"));
    Proc { child, addr: addr.parse().unwrap() }
}

/// Every backend service (recommendation and checkout last: they call the
/// others) and the frontend; returns them with the peer list.
fn deployment() -> (Vec<(String, Proc)>, Proc, Vec<String>) {
    let mut peers = Vec::new();
    let mut services = Vec::new();
    for s in ["currency", "productcatalog", "cart", "shipping", "payment", "email", "ad", "recommendation", "checkout"] {
        let p = start(s, "127.0.0.1:0", &peers);
        peers.push(format!("{s}={}", p.addr));
        services.push((s.to_string(), p));
    }
    let frontend = start("frontend", "127.0.0.1:0", &peers);
    (services, frontend, peers)
}

const PRODUCT: &str = "/product/OLJCESPC7Z";

#[test]
fn a_dead_service_gives_502_naming_it_and_recovers_when_it_returns() {
    let (mut services, frontend, peers) = deployment();
    let mut http = Http::connect(frontend.addr);
    assert_eq!(http.request("GET", PRODUCT, b"").status, 200);

    let i = services.iter().position(|(s, _)| s == "recommendation").unwrap();
    let (_, dead) = services.remove(i);
    let addr = dead.addr;
    drop(dead); // SIGKILL
    let r = http.request("GET", PRODUCT, b"");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("recommendation"), "{}", r.text());
    // Pages that do not need it still work.
    assert_eq!(http.request("GET", "/", b"").status, 200);

    // Restarted at the same address: the frontend's channel reconnects.
    let catalog = peers.iter().filter(|p| p.starts_with("productcatalog=")).cloned().collect::<Vec<_>>();
    let _back = start("recommendation", &addr.to_string(), &catalog);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = http.request("GET", PRODUCT, b"").status;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: last status {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_requests_get_client_errors_at_the_front_door() {
    let (_services, frontend, _) = deployment();
    let mut http = Http::connect(frontend.addr);
    assert_eq!(http.request("GET", "/product/NOSUCHITEM", b"").status, 404);
    assert_eq!(http.request("GET", "/nowhere", b"").status, 404);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    assert_eq!(http.request_with("POST", "/cart", &form, b"product_id=OLJCESPC7Z&quantity=-3").status, 400);
    let mut raw = Http::connect(frontend.addr);
    raw.send_raw(b"GARBAGE\r\n\r\n");
    assert_eq!(raw.read_response().map(|r| r.status), Some(400));
}
