//! Emulated service time: declared in the chain file, scaled and re-moded
//! from the CLI, spent by the function, reported in the metrics.

mod common;

use std::time::{Duration, Instant};

use common::{bin, tree_cpu_seconds, Http, TempChain};

const CHAIN: &str = r#"
chains:
  - name: timed
    functions:
      - { id: 1, name: slow, handler: example.render, service_time: { ms: 200 } }
    routes:
      - { path: /, first: 1 }
"#;

#[test]
fn scaled_sleep_is_spent_and_reported() {
    let tc = TempChain::new(CHAIN);
    let sp = testkit::Spright::start_args(&bin(), &tc.0, "eventring", &["--service-time-scale", "0.25"]);
    assert_eq!(sp.metric("spright_function_service_time_milliseconds", &["function=\"slow\"", "mode=\"sleep\""]), 50.0);
    let mut http = Http::connect(sp.addr);
    let t = Instant::now();
    assert_eq!(http.request("POST", "/", b"x").status, 200);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(200), "{took:?}");
}

#[test]
fn spin_mode_burns_cpu_for_the_duration() {
    let tc = TempChain::new(CHAIN);
    let sp = testkit::Spright::start_args(&bin(), &tc.0, "eventring", &["--service-time-scale", "0.5", "--service-time-mode", "spin"]);
    assert_eq!(sp.metric("spright_function_service_time_milliseconds", &["mode=\"spin\""]), 100.0);
    let before = tree_cpu_seconds(sp.pid);
    let mut http = Http::connect(sp.addr);
    for _ in 0..5 {
        assert_eq!(http.request("POST", "/", b"x").status, 200);
    }
    let cpu = tree_cpu_seconds(sp.pid) - before;
    assert!(cpu >= 0.4, "5 x 100 ms of spinning used only {cpu:.3} s of CPU");
}

#[test]
fn invalid_service_times_are_refused() {
    let tc = TempChain::new(&CHAIN.replace("ms: 200", "ms: -1"));
    let out = std::process::Command::new(bin()).args(["check", "--chain"]).arg(&tc.0).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("service_time.ms must be 0..=600000"));
    let out = std::process::Command::new(bin()).args(["run", "--service-time-mode", "nap", "--chain"]).arg(&tc.0).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown service-time mode"));
}
