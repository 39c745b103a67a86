//! The activator counts a request in flight only while someone waits for
//! it: a client that leaves must not keep its revision from scaling to zero.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::Listening;

struct Activator {
    /// Held: the process is killed when the test's activator goes.
    _server: Listening,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Activator {
    /// Scales to zero after 500 ms idle; the sensor takes 5 s per request.
    fn start() -> Self {
        let mut server = Listening::start(
            Command::new(env!("CARGO_BIN_EXE_knative-model"))
                .args(["activator", "--listen", "127.0.0.1:0", "--idle-ms", "500"])
                .args(["--service", "sensor|4|motion --function sensor --service-ms 5000 --service-mode sleep"])
                .stderr(Stdio::piped()),
            &["traffic"],
        );
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (err, lines) = (server.child.stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        });
        Self { addr: server.addr("traffic"), _server: server, stderr }
    }

    fn said(&self, what: &str) -> bool {
        self.stderr.lock().unwrap().iter().any(|l| l.contains(what))
    }

    fn wait_for(&self, what: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.said(what) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.said(what)
    }
}

#[test]
fn a_revision_whose_client_left_still_scales_to_zero() {
    let a = Activator::start();
    let body = r#"{"sensor_id":"s1","timestamp":1,"value":1.0}"#;
    let mut client = TcpStream::connect(a.addr).unwrap();
    write!(
        client,
        "POST /invoke HTTP/1.1\r\nhost: sensor.default.example.com\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    assert!(a.wait_for("cold start of sensor", Duration::from_secs(10)), "{:?}", a.stderr.lock().unwrap());
    // The request now waits at the container (5 s); its client leaves.
    std::thread::sleep(Duration::from_millis(300));
    drop(client);
    assert!(
        a.wait_for("scaling sensor to zero", Duration::from_secs(3)),
        "the gone request is still counted in flight: {:?}",
        a.stderr.lock().unwrap()
    );
}
