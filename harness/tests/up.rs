//! `harness up` in every mode: serves, answers identically, tears down.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use boutique::script::{sequence, ScriptedRequest as Request};
use testkit::{children_of, Http};

fn script() -> Vec<Request> {
    sequence(7, 220)
}

struct Up {
    child: Child,
    addr: SocketAddr,
    pids: Vec<u32>,
}

fn up(mode: &str, workload: &str) -> Up {
    up_scaled(mode, workload, 1.0)
}

fn up_scaled(mode: &str, workload: &str, service_time_scale: f64) -> Up {
    let scale = service_time_scale.to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "up",
            "--mode",
            mode,
            "--workload",
            workload,
            "--listen",
            "127.0.0.1:0",
            "--list-components",
            "--service-time-scale",
            &scale,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // From here on a failed assertion still tears the deployment down.
    let mut d = Up { child, addr: "0.0.0.0:0".parse().unwrap(), pids: Vec::new() };
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("ready http://"), "{mode}: {line:?}");
    d.addr = line.split_whitespace().find_map(|w| w.strip_prefix("http://")).unwrap().parse().unwrap();
    let mut pids = Vec::new();
    let mut l = String::new();
    while out.read_line(&mut l).unwrap() > 0 && l.trim() != "components end" {
        if let Some(pid) = l.split_whitespace().find_map(|w| w.strip_prefix("pid=")) {
            pids.push(pid.parse().unwrap());
        }
        l.clear();
    }
    assert!(pids.len() >= 3, "{mode}: components {pids:?}");
    d.pids = pids;
    d
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
    }
}

impl Up {
    fn down(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        assert!(self.child.wait().unwrap().success());
        std::thread::sleep(Duration::from_millis(100));
        for pid in &self.pids {
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "component pid {pid} outlived teardown");
        }
        assert!(TcpStream::connect(self.addr).is_err(), "front door still listening");
    }
}

/// Replays the seeded script; returns (status, body, set-cookie) per request.
fn replay(addr: SocketAddr, script: &[Request]) -> Vec<(u16, String, String)> {
    let mut http = Http::connect(addr);
    script
        .iter()
        .map(|r| {
            let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
            if !r.cookie.is_empty() {
                headers.push(("cookie", r.cookie.as_str()));
            }
            let resp = http.request_with(r.method, &r.path, &headers, r.body.as_bytes());
            (resp.status, resp.text(), resp.header("set-cookie").unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn every_mode_answers_the_seeded_script_identically() {
    let script = script();
    assert!(script.len() >= 200);
    type Answers = Vec<(u16, String, String)>;
    let mut reference: Option<(String, Answers)> = None;
    for mode in ["s-spright", "d-spright", "e-spright", "knative", "grpc"] {
        let d = up(mode, "boutique");
        let got = replay(d.addr, &script);
        d.down();
        match &reference {
            None => reference = Some((mode.to_string(), got)),
            Some((ref_mode, want)) => {
                for (i, (a, b)) in want.iter().zip(&got).enumerate() {
                    assert_eq!(a, b, "request {i} ({} {}) differs between {ref_mode} and {mode}", script[i].method, script[i].path);
                }
            }
        }
    }
    let (_, answers) = reference.unwrap();
    for status in [200, 400, 402, 404] {
        assert!(answers.iter().any(|(s, _, _)| *s == status), "the script exercises status {status}");
    }
}

/// (method, path, content-type, body)
type Raw = (&'static str, &'static str, String, Vec<u8>);

fn motion_script() -> Vec<Raw> {
    let form = "application/x-www-form-urlencoded".to_string();
    let json = "application/json".to_string();
    vec![
        ("POST", "/motion", json.clone(), br#"{"sensor_id":"s001","timestamp":1000,"value":0.9}"#.to_vec()),
        ("POST", "/motion", form.clone(), b"sensor_id=s002&timestamp=1500&value=0.2".to_vec()),
        ("POST", "/motion", form.clone(), b"sensor_id=s001&timestamp=20000&value=0".to_vec()),
        ("POST", "/motion", form.clone(), b"sensor_id=s001&timestamp=31000&value=0".to_vec()),
        ("POST", "/motion", form.clone(), b"sensor_id=s001&timestamp=1".to_vec()),
        ("POST", "/motion", json, b"{broken".to_vec()),
        ("POST", "/nowhere", form, b"x=1".to_vec()),
    ]
}

fn parking_script() -> Vec<Raw> {
    use parking::core::{with_comment, SAMPLE_JPEG};
    let jpeg = "image/jpeg".to_string();
    let car = |n: u32| with_comment(SAMPLE_JPEG, &format!("car {n}"));
    let mut multipart = b"--bb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.jpg\"\r\n\r\n".to_vec();
    multipart.extend_from_slice(&car(3));
    multipart.extend_from_slice(b"\r\n--bb--\r\n");
    vec![
        ("POST", "/parking/new", jpeg.clone(), car(1)),
        ("POST", "/parking/known", jpeg.clone(), car(1)),
        ("POST", "/parking/known", jpeg.clone(), car(2)),
        ("POST", "/parking/new", "multipart/form-data; boundary=bb".into(), multipart),
        ("POST", "/parking/known", jpeg, b"GIF89a not a jpeg".to_vec()),
        ("POST", "/parking/new", "text/plain".into(), b"hello".to_vec()),
    ]
}

fn replay_raw(addr: SocketAddr, script: &[Raw]) -> Vec<(u16, String)> {
    let mut http = Http::connect(addr);
    script
        .iter()
        .map(|(m, p, ct, body)| {
            let r = http.request_with(m, p, &[("content-type", ct.as_str())], body);
            (r.status, r.text())
        })
        .collect()
}

#[test]
fn motion_and_parking_answer_identically_in_every_mode() {
    for (workload, script) in [("motion", motion_script()), ("parking", parking_script())] {
        let mut reference: Option<(&str, Vec<(u16, String)>)> = None;
        for mode in ["s-spright", "d-spright", "e-spright", "knative"] {
            let d = up_scaled(mode, workload, 0.01);
            let got = replay_raw(d.addr, &script);
            d.down();
            match &reference {
                None => reference = Some((mode, got)),
                Some((m0, want)) => assert_eq!(want, &got, "{workload}: {m0} and {mode} differ"),
            }
        }
        let (_, answers) = reference.unwrap();
        assert!(answers.iter().any(|(s, _)| *s == 200) && answers.iter().any(|(s, _)| *s >= 400), "{workload}: {answers:?}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).args(["up", "--mode", "grpc", "--workload", "motion"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not run workload motion"));
}

/// Brings up motion in knative-stz with the given idle window and cold
/// start; returns the deployment and the activator's pid.
fn knative_stz(idle_ms: &str, cold_start_ms: &str) -> (Up, u32) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["up", "--mode", "knative-stz", "--workload", "motion", "--listen", "127.0.0.1:0", "--list-components"])
        .args(["--scale-to-zero-ms", idle_ms, "--cold-start-ms", cold_start_ms])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut d = Up { child, addr: "0.0.0.0:0".parse().unwrap(), pids: Vec::new() };
    let mut activator = 0;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && line.trim() != "components end" {
        if let Some(a) = line.strip_prefix("ready http://") {
            d.addr = a.split_whitespace().next().unwrap().parse().unwrap();
        }
        if line.starts_with("component activator") {
            activator = line.split_whitespace().find_map(|w| w.strip_prefix("pid=")).unwrap().parse().unwrap();
        }
        line.clear();
    }
    assert!(activator > 0);
    (d, activator)
}

const FORM: [(&str, &str); 1] = [("content-type", "application/x-www-form-urlencoded")];

/// Knative scale-to-zero: functions start on the first request (a real
/// cold start through the activator, held for the configured cold-start
/// time), stop after the idle window, and start again on the next request.
#[test]
fn knative_functions_scale_to_zero_and_cold_start() {
    let (d, activator) = knative_stz("600", "300");
    assert!(children_of(activator).is_empty(), "nothing runs before the first request");
    let t = std::time::Instant::now();
    let r = Http::connect(d.addr).request_with("POST", "/motion", &FORM, b"sensor_id=s1&timestamp=1&value=1");
    assert_eq!((r.status, r.text()), (200, r#"{"sensor_id":"s1","timestamp":1,"motion":true,"light":"on","changed":true}"#.to_string()));
    // Two functions cold-started one after the other, each held at least 300 ms.
    assert!(t.elapsed() >= Duration::from_millis(600), "cold starts held the request for {:?}", t.elapsed());
    assert_eq!(children_of(activator).len(), 4, "sensor and actuator, each with its queue-proxy");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(children_of(activator).is_empty(), "scaled to zero after the idle window");
    let r = Http::connect(d.addr).request_with("POST", "/motion", &FORM, b"sensor_id=s1&timestamp=2&value=1");
    assert_eq!(r.status, 200, "cold start again: {}", r.text());
    d.down();
}

/// Cold-started containers live as long as their revision: they must not
/// die with the thread that started them (PR_SET_PDEATHSIG follows the
/// forking thread, and tokio retires idle blocking threads after 10 s).
#[test]
fn cold_started_containers_outlive_the_thread_that_started_them() {
    let (d, activator) = knative_stz("60000", "0");
    let r = Http::connect(d.addr).request_with("POST", "/motion", &FORM, b"sensor_id=s1&timestamp=1&value=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let started = children_of(activator);
    assert_eq!(started.len(), 4);
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(children_of(activator), started, "the containers and queue-proxies are still the same processes");
    let r = Http::connect(d.addr).request_with("POST", "/motion", &FORM, b"sensor_id=s1&timestamp=2&value=1");
    assert_eq!(r.status, 200, "{}", r.text());
    d.down();
}
