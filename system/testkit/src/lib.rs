//! Test support: run a real deployment binary (`spright run` or a workload
//! binary embedding its CLI), talk HTTP to it, read its metrics and CPU.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod load;
pub mod proc;

pub use proc::{children_of, process_tree, tree_cpu_seconds};

pub const TRANSPORTS: [&str; 3] = ["skmsg", "eventring", "ring"];

/// A server process that prints `listening LABEL http://ADDR` for each of
/// its listeners (the baselines' processes); killed when dropped.
pub struct Listening {
    pub child: Child,
    addrs: Vec<(String, SocketAddr)>,
}

impl Listening {
    /// Starts `cmd` with its stdout piped here and waits for a line for
    /// every label in `labels`; the rest of its stdout is drained.
    pub fn start(cmd: &mut Command, labels: &[&str]) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start the server");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut addrs = Vec::new();
        while addrs.len() < labels.len() {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "the server exited before listening on {labels:?}");
            let mut words = line.split_whitespace();
            if let (Some("listening"), Some(label), Some(addr)) = (words.next(), words.next(), words.next()) {
                let addr = addr.strip_prefix("http://").and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("{line:?}"));
                if labels.contains(&label) {
                    addrs.push((label.to_string(), addr));
                }
            }
        }
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        Self { child, addrs }
    }

    /// The address of the listener labelled `label`.
    pub fn addr(&self, label: &str) -> SocketAddr {
        self.addrs.iter().find(|(l, _)| l == label).map(|(_, a)| *a).unwrap_or_else(|| panic!("no listener {label:?}"))
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example chain shipped in system/examples.
pub fn example_chain() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/chain.yaml")
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Writes `yaml` to a temporary chain file (removed when dropped).
pub struct TempChain(pub PathBuf);

impl TempChain {
    pub fn new(yaml: &str) -> Self {
        let p = std::env::temp_dir().join(format!("spright-test-{}-{}.yaml", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&p, yaml).unwrap();
        Self(p)
    }
}

impl Drop for TempChain {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A running `spright run`.
pub struct Spright {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub pid: u32,
    /// The control socket (`@name`), for tests that register functions.
    pub control: String,
    pub ready_line: String,
    _chain: Option<TempChain>,
}

impl Spright {
    /// `<bin> run --chain <chain> --transport <transport>` on free ports.
    pub fn start(bin: &std::path::Path, chain: &std::path::Path, transport: &str) -> Self {
        Self::start_with(bin, chain, transport, None)
    }

    /// As [`Self::start`], with the chain file given as text.
    pub fn start_yaml(bin: &std::path::Path, yaml: &str, transport: &str) -> Self {
        let tc = TempChain::new(yaml);
        let path = tc.0.clone();
        Self::start_with(bin, &path, transport, Some(tc))
    }

    /// As [`Self::start`], with extra `run` arguments.
    pub fn start_args(bin: &std::path::Path, chain: &std::path::Path, transport: &str, extra: &[&str]) -> Self {
        Self::launch(bin, chain, transport, None, extra)
    }

    fn start_with(bin: &std::path::Path, chain: &std::path::Path, transport: &str, temp: Option<TempChain>) -> Self {
        Self::launch(bin, chain, transport, temp, &[])
    }

    fn launch(bin: &std::path::Path, chain: &std::path::Path, transport: &str, temp: Option<TempChain>, extra: &[&str]) -> Self {
        let mut child = Command::new(bin)
            .args(["run", "--chain"])
            .arg(chain)
            .args(["--transport", transport, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start spright");
        let pid = child.id();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).expect("read ready line");
        assert!(line.starts_with("ready http://"), "spright did not become ready (transport {transport}): {line:?}");
        // Keep draining stdout so the child never blocks on it.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink);
        });
        let field = |prefix: &str| -> SocketAddr {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {line:?}"))
                .parse()
                .unwrap()
        };
        let addr = field("http://");
        let admin = field("admin=http://");
        let control = line.split_whitespace().find_map(|w| w.strip_prefix("control=")).unwrap_or_default().to_string();
        Self { child: Some(child), addr, admin, pid, control, ready_line: line.trim().to_string(), _chain: temp }
    }

    pub fn metrics_text(&self) -> String {
        let mut s = TcpStream::connect(self.admin).expect("admin reachable");
        write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
    }

    /// Metrics as `name{labels}` -> value.
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        self.metrics_text()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
            .collect()
    }

    /// Sum of the series of `name` whose labels contain every `needle`.
    pub fn metric(&self, name: &str, needles: &[&str]) -> f64 {
        self.metrics()
            .iter()
            .filter(|(k, _)| k.split('{').next() == Some(name) && needles.iter().all(|n| k.contains(n)))
            .map(|(_, v)| v)
            .sum()
    }

    pub fn slots_in_use(&self) -> f64 {
        self.metric("spright_pool_slots_in_use", &[])
    }

    /// Polls until `f` holds or `timeout` passes.
    pub fn eventually(&self, timeout: Duration, mut f: impl FnMut(&Self) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if f(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        f(self)
    }

    pub fn function_pid(&self, function: &str) -> u32 {
        self.metric("spright_function_pid", &[&format!("function=\"{function}\"")]) as u32
    }

    /// SIGTERM and wait (graceful shutdown).
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if start.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("spright did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Spright {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 client on one connection.
pub struct Http {
    stream: BufReader<TcpStream>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).expect("connect to gateway");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.set_nodelay(true).unwrap();
        Self { stream: BufReader::new(s) }
    }

    pub fn raw(&mut self) -> &TcpStream {
        self.stream.get_ref()
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.get_mut().write_all(bytes).unwrap();
    }

    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        self.request_with(method, path, &[], body)
    }

    pub fn request_with(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        let mut req = format!("{method} {path} HTTP/1.1\r\ncontent-length: {}\r\n", body.len());
        // One Host header: the caller's, or a default.
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str("host: test\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.send_raw(&bytes);
        self.read_response().expect("response")
    }

    /// Reads one response; `None` if the connection closed first.
    pub fn read_response(&mut self) -> Option<HttpResponse> {
        let mut status_line = String::new();
        if self.stream.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        let status = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.stream.read_line(&mut l).ok()?;
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':')?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
        let len: usize =
            headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).ok()?;
        Some(HttpResponse { status, headers, body })
    }
}
