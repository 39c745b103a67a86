//! The generic orchestrator (what the baselines run) answers exactly like
//! the SPRIGHT chain's state machine, request for request.

use std::path::PathBuf;

use boutique::api::{orchestrate, LocalApi, RawRequest};
use boutique::frontend::SessionIds;
use boutique::script::sequence;
use testkit::{Http, Spright};

#[test]
fn local_orchestrator_matches_the_spright_chain() {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_boutique"));
    let chain = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain.yaml");
    let sp = Spright::start(&bin, &chain, "eventring");
    let mut http = Http::connect(sp.addr);
    let api = LocalApi::default();
    let sessions = SessionIds::default();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for (i, req) in sequence(42, 240).iter().enumerate() {
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if !req.cookie.is_empty() {
            headers.push(("cookie", req.cookie.as_str()));
        }
        let r = http.request_with(req.method, &req.path, &headers, req.body.as_bytes());
        let local = rt.block_on(orchestrate(
            &api,
            &sessions,
            &RawRequest {
                method: req.method,
                path: &req.path,
                query: "",
                content_type: "application/x-www-form-urlencoded",
                cookie: &req.cookie,
                body: req.body.as_bytes(),
            },
        ));
        assert_eq!(r.status, local.status, "request {i}: {req:?}\nspright: {}\nlocal: {}", r.text(), String::from_utf8_lossy(&local.body));
        assert_eq!(r.text(), String::from_utf8_lossy(&local.body), "request {i}: {req:?}");
        assert_eq!(r.header("set-cookie").unwrap_or(""), local.set_cookie, "request {i}");
    }
}
