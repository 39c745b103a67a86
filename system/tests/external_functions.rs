//! A chain whose functions the control plane does not start: the shape of
//! a SPRIGHT pod, where the gateway (root, CAP_BPF) and every function (an
//! unprivileged user) are separate containers in one network namespace and
//! functions register on a control socket of a known name.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::{bin, example_chain, Http, TRANSPORTS};

/// The unprivileged user the pod's function containers run as.
const FUNCTION_UID: u32 = 65532;

fn control_name(transport: &str) -> String {
    format!("@spright-pod-test-{}-{transport}", std::process::id())
}

/// `spright function` for one function of the example chain, as `uid`.
fn function(control: &str, id: u16, uid: u32) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new(bin())
        .args(["function", "--chain-file"])
        .arg(example_chain())
        .args(["--chain", "example", "--function", &id.to_string(), "--control", control, "--wait-for-control-s", "10"])
        .uid(uid)
        .gid(uid)
        .spawn()
        .expect("start function")
}

struct Functions(Vec<Child>);

impl Drop for Functions {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn healthz(sp: &testkit::Spright) -> (u16, String) {
    let r = Http::connect(sp.admin).request("GET", "/healthz", b"");
    (r.status, r.text())
}

#[test]
fn functions_started_outside_register_as_another_user_and_serve() {
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test runs the gateway as root and functions as uid {FUNCTION_UID}: run it as root");
    for transport in TRANSPORTS {
        let control = control_name(transport);
        // One function starts before the gateway, as a container may.
        let mut functions = Functions(vec![function(&control, 1, FUNCTION_UID)]);
        std::thread::sleep(Duration::from_millis(300));
        let uid = FUNCTION_UID.to_string();
        let sp = testkit::Spright::start_args(
            &bin(),
            &example_chain(),
            transport,
            &["--external-functions", "--control", &control, "--function-uid", &uid],
        );
        assert!(sp.ready_line.contains(&format!("control={control}")), "{transport}: {}", sp.ready_line);
        // Serving starts at once; /healthz names who is missing.
        assert!(sp.eventually(Duration::from_secs(10), |s| s.function_pid("parse") != 0), "{transport}: parse did not register");
        let (status, text) = healthz(&sp);
        assert_eq!(status, 503, "{transport}: {text}");
        assert_eq!(text.trim(), "not registered: example/transform, example/render, example/delay", "{transport}");

        // A process of any other user is refused.
        let mut stranger = function(&control, 2, FUNCTION_UID + 1);
        let refused = stranger.wait().expect("stranger exits");
        assert!(!refused.success(), "{transport}: uid {} registered", FUNCTION_UID + 1);

        functions.0.extend((2..=4).map(|id| function(&control, id, FUNCTION_UID)));
        assert!(sp.eventually(Duration::from_secs(10), |s| healthz(s).0 == 200), "{transport}: {:?}", healthz(&sp));
        let mut http = Http::connect(sp.addr);
        for i in 0..100 {
            let r = http.request("POST", "/transform", format!("pod request {i}").as_bytes());
            assert_eq!(r.status, 200, "{transport}: {}", r.text());
            assert!(r.text().contains(&format!("\"text\":\"POD REQUEST {i}\"")), "{transport}: {}", r.text());
        }
        // The control plane started none of them: every function's pid is
        // one of ours.
        let ours: Vec<u32> = functions.0.iter().map(Child::id).collect();
        for f in ["parse", "transform", "render", "delay"] {
            assert!(ours.contains(&sp.function_pid(f)), "{transport}: {f} is pid {}", sp.function_pid(f));
        }
        // Gone with the gateway: the registration link is their liveness.
        assert!(sp.stop().success());
        for c in &mut functions.0 {
            let st = c.wait().expect("function exits");
            assert!(st.success(), "{transport}: a function did not exit cleanly: {st}");
        }
        functions.0.clear();
    }
}
