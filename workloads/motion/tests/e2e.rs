//! Motion detection end to end on every transport.

use std::path::PathBuf;

use testkit::{Http, Spright, TRANSPORTS};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_motion"))
}

fn chain() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain.yaml")
}

#[test]
fn sensor_to_actuator_on_every_transport() {
    for t in TRANSPORTS {
        let sp = Spright::start(&bin(), &chain(), t);
        let mut http = Http::connect(sp.addr);
        let json = ("content-type", "application/json");
        let form = ("content-type", "application/x-www-form-urlencoded");
        let r = http.request_with("POST", "/motion", &[json], br#"{"sensor_id":"s001","timestamp":1000,"value":0.9}"#);
        assert_eq!(r.text(), r#"{"sensor_id":"s001","timestamp":1000,"motion":true,"light":"on","changed":true}"#, "{t}");
        let r = http.request_with("POST", "/motion", &[form], b"sensor_id=s001&timestamp=20000&value=0");
        assert_eq!(r.text(), r#"{"sensor_id":"s001","timestamp":20000,"motion":false,"light":"on","changed":false}"#, "{t}: held");
        let r = http.request_with("POST", "/motion", &[form], b"sensor_id=s001&timestamp=31000&value=0.1");
        assert_eq!(r.text(), r#"{"sensor_id":"s001","timestamp":31000,"motion":false,"light":"off","changed":true}"#, "{t}");
        let r = http.request_with("POST", "/motion", &[form], b"sensor_id=s001&timestamp=1");
        assert_eq!((r.status, r.text()), (400, r#"{"error":"missing field: value"}"#.to_string()), "{t}");
        let r = http.request_with("POST", "/motion", &[json], b"{broken");
        assert_eq!(r.status, 400);
        assert_eq!(sp.metric("spright_function_service_time_milliseconds", &["function=\"sensor\""]), 1.0);
        assert!(sp.eventually(std::time::Duration::from_secs(3), |s| s.slots_in_use() == 0.0));
        assert!(sp.stop().success());
    }
}
