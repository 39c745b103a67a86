//! The activator's cold-started containers against time: they must live as
//! long as the activator, not as long as the thread that started them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use testkit::Http;

struct Activator {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Activator {
    fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_knative-model"))
            .args(["activator", "--listen", "127.0.0.1:0", "--idle-ms", "600000"])
            .args(["--service", "sensor|4|motion --function sensor --service-ms 0 --service-mode sleep"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.split_whitespace().find_map(|w| w.strip_prefix("http://")).expect(&line).parse().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (err, lines) = (child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
        Self { child, addr, stderr }
    }

    fn invoke(&self) -> u16 {
        let body = br#"{"sensor_id":"s1","timestamp":1,"value":1.0}"#;
        let r = Http::connect(self.addr).request_with(
            "POST",
            "/invoke",
            &[("host", "sensor.default.example.com"), ("content-type", "application/json")],
            body,
        );
        eprintln!("activator answered {}: {}", r.status, r.text());
        r.status
    }

    fn cold_starts(&self) -> usize {
        self.stderr.lock().unwrap().iter().filter(|l| l.contains("cold start of sensor")).count()
    }
}

impl Drop for Activator {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// PR_SET_PDEATHSIG fires when the thread that forked a child exits; tokio
/// retires an idle blocking-pool thread after 10 s. A container started
/// from such a thread died 10 s later, under load or not (502s).
#[test]
fn a_cold_started_container_outlives_the_thread_that_started_it() {
    let a = Activator::start();
    assert_eq!(a.invoke(), 200, "the cold start serves");
    assert_eq!(a.cold_starts(), 1);
    std::thread::sleep(Duration::from_secs(12));
    assert_eq!(a.invoke(), 200, "the container is still up 12 s later");
    assert_eq!(a.cold_starts(), 1, "served warm, not started again: {:?}", a.stderr.lock().unwrap());
}
