//! The baselines' front doors (the shared server of `baseline_common::http`,
//! here the Knative model's ingress) answer bad input with the gateway's
//! limits and answers (the one server loop, `spright::http1`): oversized
//! heads 431, oversized bodies 413, a head that never completes 408.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use spright::control::chain::GatewayLimits;
use testkit::{Http, Listening};

/// The Knative model's ingress, routing to a port nobody serves: what is
/// refused must be refused before any forwarding.
fn ingress() -> Listening {
    Listening::start(
        Command::new(env!("CARGO_BIN_EXE_knative-model")).args([
            "ingress",
            "--listen",
            "127.0.0.1:0",
            "--default-service",
            "x",
            "--route",
            "x=127.0.0.1:9",
        ]),
        &["traffic"],
    )
}

#[test]
fn oversized_heads_and_bodies_get_the_gateways_answers() {
    let limits = GatewayLimits::default();
    let ing = ingress();
    let addr = ing.addr("traffic");
    let mut h = Http::connect(addr);
    let big = "b".repeat(limits.max_header_bytes + 1024);
    h.send_raw(format!("GET / HTTP/1.1\r\nhost: t\r\nx-big: {big}\r\n\r\n").as_bytes());
    assert_eq!(h.read_response().expect("an answer").status, 431, "head larger than the gateway's limit");

    // The body from another thread: the server may answer (and close)
    // before it has all been sent.
    let s = TcpStream::connect(addr).unwrap();
    let mut w = s.try_clone().unwrap();
    let n = limits.max_body_bytes + 1;
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(format!("POST / HTTP/1.1\r\nhost: t\r\ncontent-length: {n}\r\n\r\n").as_bytes());
        let _ = w.write_all(&vec![b'x'; n]);
    });
    let mut status = String::new();
    BufReader::new(s).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 413"), "body larger than the gateway's limit: {status:?}");
    writer.join().unwrap();
}

#[test]
fn a_head_that_never_completes_gets_408_and_is_closed() {
    let limits = GatewayLimits::default();
    let ing = ingress();
    let addr = ing.addr("traffic");
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: t\r\n").unwrap();
    s.set_read_timeout(Some(limits.client_timeout() * 2)).unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    let closed = s.read_to_end(&mut rest).is_ok();
    assert!(closed, "still open after {:?}", t.elapsed());
    let answer = String::from_utf8_lossy(&rest);
    assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "the gateway's answer, then close: {answer:?}");
    assert!(t.elapsed() >= limits.client_timeout() - Duration::from_millis(500), "closed early: {:?}", t.elapsed());
}
