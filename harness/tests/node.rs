//! `harness node --stdio`, spoken to as the experiment driver does over
//! SSH: line-delimited JSON requests and replies. The node brings a mode
//! up, marks phases with every collector, returns what it measured, and
//! stops everything it started when its session ends, however it ends.

// The test speaks the harness's own protocol, not a message of the system
// under test: the runtimes' counting wrappers (clippy.toml) are not for it.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::Http;

struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Session {
    fn start() -> Self {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["node", "--stdio"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let (stdin, stdout) = (child.stdin.take(), BufReader::new(child.stdout.take().unwrap()));
        Self { child, stdin, stdout }
    }

    fn send_line(&mut self, line: &str) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
        let mut reply = String::new();
        assert!(self.stdout.read_line(&mut reply).unwrap() > 0, "the node closed its output after {line}");
        serde_json::from_str(&reply).unwrap_or_else(|e| panic!("not JSON ({e}): {reply}"))
    }

    fn call(&mut self, request: Value) -> Value {
        self.send_line(&request.to_string())
    }

    fn hello(&mut self) {
        let reply =
            self.call(json!({"op": "hello", "version": 3, "collectors": ["procfs", "interrupts"], "sample_ms": 100, "collector_cpus": []}));
        assert_eq!(reply["reply"], "hello", "{reply}");
        assert!(reply["facts"]["cores"].as_u64().unwrap() >= 1, "{reply}");
        assert!(!reply["facts"]["kernel"].as_str().unwrap().is_empty(), "{reply}");
    }

    /// Brings motion up in E-SPRIGHT; its address and component pids.
    fn up(&mut self) -> (SocketAddr, Vec<u32>) {
        let reply = self.call(json!({"op": "up", "mode": "e-spright", "workload": "motion", "listen": "127.0.0.1:0", "repeat": 0,
            "service_time_scale": 0.01, "service_time_mode": null, "scale_to_zero_ms": null, "cold_start_ms": null, "cpus": [], "target": "processes"}));
        assert_eq!(reply["reply"], "up", "{reply}");
        let addr = reply["addr"].as_str().unwrap().parse().unwrap();
        let pids: Vec<u32> = reply["components"].as_array().unwrap().iter().map(|c| c["pid"].as_u64().unwrap() as u32).collect();
        assert!(pids.len() >= 3, "the gateway and the functions: {reply}");
        (addr, pids)
    }
}

fn all_gone(pids: &[u32], within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if pids.iter().all(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_session_brings_a_mode_up_marks_its_phases_and_returns_what_it_measured() {
    let mut s = Session::start();
    s.hello();
    let clock = s.call(json!({"op": "clock"}));
    assert!(clock["now_s"].as_f64().unwrap() >= 0.0, "{clock}");
    let (addr, pids) = s.up();
    let t0 = s.call(json!({"op": "enter", "label": "measure", "offered": null}))["t_s"].as_f64().unwrap();
    let mut http = Http::connect(addr);
    for _ in 0..5 {
        let r = http.request("POST", "/motion", br#"{"sensor_id":"s1","timestamp":0,"value":0.9}"#);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let t1 = s.call(json!({"op": "close"}))["t_s"].as_f64().unwrap();
    assert!(t1 > t0, "{t0} then {t1}");
    let down = s.call(json!({"op": "down"}));
    assert_eq!(down["reply"], "down", "{down}");
    let phases = down["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 1, "{down}");
    assert_eq!((phases[0]["from_s"].as_f64(), phases[0]["to_s"].as_f64()), (Some(t0), Some(t1)));
    // The sampler saw the system's processes, and interrupts were counted per CPU.
    let groups: Vec<&str> = down["processes"].as_array().unwrap().iter().filter_map(|r| r["group"].as_str()).collect();
    assert!(groups.contains(&"gateway") && groups.contains(&"function"), "{groups:?}");
    assert!(!down["cpus"].as_array().unwrap().is_empty());
    let counters = down["counters"].as_array().unwrap();
    assert!(counters.iter().any(|c| c["source"] == "irq" || c["source"] == "softirq"), "{counters:?}");
    assert!(all_gone(&pids, Duration::from_secs(10)), "down leaves nothing running");
    // A second mode may come up in the same session.
    let (_, again) = s.up();
    assert_eq!(s.call(json!({"op": "down"}))["reply"], "down");
    assert!(all_gone(&again, Duration::from_secs(10)));
    drop(s.stdin.take());
    assert!(s.child.wait().unwrap().success());
}

#[test]
fn ending_the_session_stops_everything_the_node_started() {
    let mut s = Session::start();
    s.hello();
    let (_, pids) = s.up();
    // The driver goes away in the middle of the mode (no `down`).
    drop(s.stdin.take());
    let status = s.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(all_gone(&pids, Duration::from_secs(10)), "the node's processes outlived its session: {pids:?}");
    let shm: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().flatten().map(|e| e.file_name()).collect();
    let wire = format!("spright-wire-{}", s.child.id());
    assert!(!shm.iter().any(|n| n.to_string_lossy() == wire), "{wire} left behind");
}

#[test]
fn bad_requests_get_an_error_and_the_session_goes_on() {
    let mut s = Session::start();
    let early = s.call(json!({"op": "up", "mode": "e-spright", "workload": "motion", "listen": "127.0.0.1:0", "repeat": 0,
        "service_time_scale": 1.0, "service_time_mode": null, "scale_to_zero_ms": null, "cold_start_ms": null, "cpus": [], "target": "processes"}));
    assert_eq!(early["reply"], "error", "up before hello: {early}");
    let garbage = s.send_line("GET / HTTP/1.1");
    assert_eq!(garbage["reply"], "error", "{garbage}");
    assert!(garbage["message"].as_str().unwrap().contains("not a message of the node protocol"), "{garbage}");
    let old = s.call(json!({"op": "hello", "version": 0, "collectors": [], "sample_ms": 100, "collector_cpus": []}));
    assert!(old["message"].as_str().unwrap().contains("protocol version"), "{old}");
    s.hello();
    let unknown = s.call(json!({"op": "up", "mode": "x-spright", "workload": "motion", "listen": "127.0.0.1:0", "repeat": 0,
        "service_time_scale": 1.0, "service_time_mode": null, "scale_to_zero_ms": null, "cold_start_ms": null, "cpus": [], "target": "processes"}));
    assert!(unknown["message"].as_str().unwrap().contains("unknown mode"), "{unknown}");
    // The cluster target on a node without the cluster's staged manifests.
    let cluster = s.call(json!({"op": "up", "mode": "s-spright", "workload": "boutique", "listen": "127.0.0.1:0", "repeat": 0,
        "service_time_scale": 1.0, "service_time_mode": null, "scale_to_zero_ms": null, "cold_start_ms": null, "cpus": [], "target": "k8s"}));
    assert!(cluster["message"].as_str().unwrap().contains("cluster/workloads/boutique/deploy/spright.yaml"), "{cluster}");
    let scaled = s.call(json!({"op": "up", "mode": "s-spright", "workload": "boutique", "listen": "127.0.0.1:0", "repeat": 0,
        "service_time_scale": 0.5, "service_time_mode": null, "scale_to_zero_ms": null, "cold_start_ms": null, "cpus": [], "target": "k8s"}));
    assert!(scaled["message"].as_str().unwrap().contains("service times"), "{scaled}");
    assert_eq!(s.call(json!({"op": "close"}))["reply"], "error", "no mode is up");
    let (_, pids) = s.up();
    assert_eq!(s.call(json!({"op": "down"}))["reply"], "down");
    assert!(all_gone(&pids, Duration::from_secs(10)));
    drop(s.stdin.take());
    assert!(s.child.wait().unwrap().success());
}

#[test]
fn a_silent_driver_ends_the_session_like_a_closed_one() {
    // A half-open link (the driver's machine gone, a cable pulled) closes
    // nothing: the node notices the silence instead.
    let mut s = Session::start_with(&["--idle-limit-s", "1"]);
    s.hello();
    let (_, pids) = s.up();
    let started = Instant::now();
    let status = s.child.wait().unwrap();
    assert!(!status.success(), "a lost driver is an error: {status}");
    assert!(started.elapsed() < Duration::from_secs(20), "the idle limit ended it");
    assert!(all_gone(&pids, Duration::from_secs(10)), "the node's processes outlived its session: {pids:?}");
}
