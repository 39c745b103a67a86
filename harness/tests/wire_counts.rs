//! The (de)serializations the runtimes count (`spright::wire`), per mode
//! and per request type, against the number the call graph gives.
//!
//! * Online Boutique's call graph per request type is derived from the
//!   code: the generic orchestration (`boutique::api::orchestrate`) runs
//!   in-process over a [`Recorder`], a `LocalApi`-style `BoutiqueApi` that
//!   records every RPC and who made it (recommendation and checkout make
//!   nested calls). Motion's and parking's call graphs are their routes in
//!   the workload's chain file.
//! * A per-mode cost table ([`Cost`], data) turns a call graph into the
//!   expected (serializations, deserializations) per process.
//! * Each mode is brought up with the real binaries (`harness up`, with
//!   `SPRIGHT_WIRE_COUNTS` pointing at a fresh directory under /dev/shm,
//!   inherited by every process); after a warm-up, every process's counter
//!   file is read, exactly one request of one type is sent and answered,
//!   the files are read again, and the deltas are compared per process and
//!   summed over the deployment.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use boutique::api::{orchestrate, ApiResult, Backend, BoutiqueApi, PlaceOrderRequest, ProductMsg, RawRequest};
use boutique::core::cart::CartItem;
use boutique::core::money::{Currency, Money};
use boutique::core::order::OrderResult;
use boutique::core::payment::CreditCard;
use boutique::core::shipping::Address;
use boutique::frontend::pages::AdView;
use boutique::frontend::SessionIds;
use boutique::rpc::service_of;
use boutique::script::{CHECKOUT_FORM, GOOD_CARD};
use spright::control::chain::ChainFile;
use testkit::Http;

// --- the call graph, derived from the code -----------------------------

/// One call between two processes: who calls, whom, which RPC (boutique)
/// or which step of the route (motion, parking).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Call {
    caller: String,
    callee: String,
    /// The RPC (boutique); empty for a route's step.
    method: &'static str,
    /// The route's last step (its answer is the client's answer).
    last: bool,
}

/// Every service in this process, as `LocalApi`, recording each RPC with
/// its caller: the frontend, or the service whose RPC is running (the
/// recommendation service calls the catalog, checkout calls eight more).
#[derive(Default)]
struct Recorder {
    backend: Backend,
    calls: Mutex<Vec<Call>>,
    /// The services whose RPCs are running, innermost last.
    running: Mutex<Vec<&'static str>>,
}

impl Recorder {
    fn record(&self, method: &'static str) {
        let caller = self.running.lock().unwrap().last().copied().unwrap_or("frontend");
        let callee = service_of(method).unwrap_or_else(|| panic!("{method} belongs to no service"));
        self.calls.lock().unwrap().push(Call { caller: caller.into(), callee: callee.into(), method, last: false });
    }

    /// An RPC whose server makes calls of its own.
    async fn nested<T>(&self, method: &'static str, serve: impl Future<Output = T>) -> T {
        self.record(method);
        self.running.lock().unwrap().push(service_of(method).unwrap());
        let r = serve.await;
        self.running.lock().unwrap().pop();
        r
    }

    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl BoutiqueApi for Recorder {
    async fn get_supported_currencies(&self) -> ApiResult<Vec<Currency>> {
        self.record("GetSupportedCurrencies");
        Ok(self.backend.get_supported_currencies())
    }
    async fn convert(&self, from: Money, to: Currency) -> ApiResult<Money> {
        self.record("Convert");
        self.backend.convert(from, to)
    }
    async fn list_products(&self) -> ApiResult<Vec<ProductMsg>> {
        self.record("ListProducts");
        Ok(self.backend.list_products())
    }
    async fn get_product(&self, id: &str) -> ApiResult<ProductMsg> {
        self.record("GetProduct");
        self.backend.get_product(id)
    }
    async fn add_item(&self, user_id: &str, item: CartItem) -> ApiResult<()> {
        self.record("AddItem");
        self.backend.add_item(user_id, &item)
    }
    async fn get_cart(&self, user_id: &str) -> ApiResult<Vec<CartItem>> {
        self.record("GetCart");
        Ok(self.backend.get_cart(user_id))
    }
    async fn empty_cart(&self, user_id: &str) -> ApiResult<()> {
        self.record("EmptyCart");
        self.backend.empty_cart(user_id);
        Ok(())
    }
    async fn list_recommendations(&self, user_id: &str, product_ids: &[String]) -> ApiResult<Vec<String>> {
        self.nested("ListRecommendations", self.backend.list_recommendations(self, user_id, product_ids)).await
    }
    async fn get_quote(&self, _address: Option<&Address>, items: &[CartItem]) -> ApiResult<Money> {
        self.record("GetQuote");
        Ok(self.backend.get_quote(items))
    }
    async fn ship_order(&self, address: &Address, _items: &[CartItem], order_id: &str) -> ApiResult<String> {
        self.record("ShipOrder");
        Ok(self.backend.ship_order(address, order_id))
    }
    async fn place_order(&self, req: &PlaceOrderRequest) -> ApiResult<OrderResult> {
        self.nested("PlaceOrder", self.backend.place_order(self, req)).await
    }
    async fn charge(&self, amount: Money, card: &CreditCard, order_id: &str) -> ApiResult<String> {
        self.record("Charge");
        self.backend.charge(amount, card, order_id)
    }
    async fn send_order_confirmation(&self, email: &str, order: &OrderResult) -> ApiResult<()> {
        self.record("SendOrderConfirmation");
        self.backend.send_order_confirmation(email, order);
        Ok(())
    }
    async fn get_ads(&self, context_keys: &[String], seed: &str) -> ApiResult<Vec<AdView>> {
        self.record("GetAds");
        Ok(self.backend.get_ads(context_keys, seed))
    }
}

/// Runs an in-process future: nothing in it ever waits.
fn block_on<F: Future>(f: F) -> F::Output {
    match pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-process call waited"),
    }
}

/// One of the workload's requests.
#[derive(Clone, Debug)]
struct Req {
    ty: &'static str,
    method: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

const FORM: &str = "application/x-www-form-urlencoded";
const MULTIPART: &str = "multipart/form-data; boundary=bb";
const PRODUCT: &str = "OLJCESPC7Z";

/// Online Boutique's six request types.
fn boutique_requests() -> Vec<Req> {
    let req = |ty, method, path, body: String| {
        let content_type = if body.is_empty() { "" } else { FORM };
        Req { ty, method, path, content_type, body: body.into_bytes() }
    };
    vec![
        req("home", "GET", "/", String::new()),
        req("set_currency", "POST", "/setCurrency", "currency_code=EUR".into()),
        req("product", "GET", "/product/OLJCESPC7Z", String::new()),
        req("view_cart", "GET", "/cart", String::new()),
        req("add_to_cart", "POST", "/cart", format!("product_id={PRODUCT}&quantity=2")),
        req("checkout", "POST", "/cart/checkout", format!("{CHECKOUT_FORM}{GOOD_CARD}")),
    ]
}

/// The session a request type is measured in (its own user), and the
/// requests that warm it: view_cart and checkout find one item in the cart.
fn session(ty: &str) -> (String, Vec<Req>) {
    let cookie = format!("shop_session=wire-{ty}.USD");
    let add = boutique_requests().into_iter().find(|r| r.ty == "add_to_cart").unwrap();
    (cookie, if matches!(ty, "view_cart" | "checkout") { vec![add] } else { Vec::new() })
}

/// The warm-up: every request type once, in a session of its own.
fn boutique_warm_up() -> Vec<(String, Req)> {
    let cookie = "shop_session=wire-warm-up.USD".to_string();
    let all = boutique_requests();
    let order = ["home", "set_currency", "product", "add_to_cart", "view_cart", "checkout"];
    order.iter().map(|ty| (cookie.clone(), all.iter().find(|r| r.ty == *ty).unwrap().clone())).collect()
}

/// Each request type's RPCs, from `orchestrate` over a [`Recorder`], in the
/// same sequence the deployments get (warm-up, then per type its session's
/// preparation and the request itself).
fn boutique_call_graphs() -> BTreeMap<&'static str, Vec<Call>> {
    let api = Recorder::default();
    let sessions = SessionIds::default();
    let run = |cookie: &str, r: &Req| {
        let raw = RawRequest { method: r.method, path: r.path, query: "", content_type: r.content_type, cookie, body: &r.body };
        let page = block_on(orchestrate(&api, &sessions, &raw));
        assert_eq!(page.status, 200, "{}: {}", r.ty, String::from_utf8_lossy(&page.body));
    };
    for (cookie, r) in boutique_warm_up() {
        run(&cookie, &r);
    }
    let mut graphs = BTreeMap::new();
    for r in boutique_requests() {
        let (cookie, prep) = session(r.ty);
        for p in &prep {
            run(&cookie, p);
        }
        api.take();
        run(&cookie, &r);
        graphs.insert(r.ty, api.take());
    }
    graphs
}

fn chain(workload: &str) -> ChainFile {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../workloads/{workload}/chain.yaml"));
    ChainFile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A route's steps as calls the (Knative model's) orchestrator makes.
fn route_calls(workload: &str, path: &str) -> Vec<Call> {
    let file = chain(workload);
    let spec = &file.chains[0];
    let route = spec.routes.iter().find(|r| r.path == path).unwrap_or_else(|| panic!("{workload} has no route {path}"));
    let ids = route.sequence.clone().unwrap_or_else(|| panic!("{workload} {path}: a static sequence"));
    let n = ids.len();
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let f = spec.functions.iter().find(|f| f.id == *id).unwrap();
            Call { caller: "orchestrator".into(), callee: f.name.clone(), method: "", last: i + 1 == n }
        })
        .collect()
}

fn motion_requests() -> Vec<Req> {
    vec![
        Req {
            ty: "event_form",
            method: "POST",
            path: "/motion",
            content_type: FORM,
            body: b"sensor_id=s1&timestamp=1000&value=0.9".to_vec(),
        },
        Req {
            ty: "event_json",
            method: "POST",
            path: "/motion",
            content_type: "application/json",
            body: br#"{"sensor_id":"s2","timestamp":2000,"value":0.1}"#.to_vec(),
        },
    ]
}

fn parking_requests() -> Vec<Req> {
    use parking::core::{with_comment, SAMPLE_JPEG};
    let car = |n: u32| with_comment(SAMPLE_JPEG, &format!("wire car {n}"));
    let mut multipart = b"--bb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.jpg\"\r\n\r\n".to_vec();
    multipart.extend_from_slice(&car(2));
    multipart.extend_from_slice(b"\r\n--bb--\r\n");
    vec![
        Req { ty: "new", method: "POST", path: "/parking/new", content_type: "image/jpeg", body: car(1) },
        Req { ty: "known", method: "POST", path: "/parking/known", content_type: "image/jpeg", body: car(1) },
        Req { ty: "new_multipart", method: "POST", path: "/parking/new", content_type: MULTIPART, body: multipart },
    ]
}

// --- the per-mode cost tables --------------------------------------------

/// What a count is attached to: the client's request (once), or one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Per {
    Request,
    Call,
}

/// Where a count happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    /// The SPRIGHT gateway.
    Gateway,
    /// The Knative model's ingress.
    Ingress,
    /// The process that parses the client's request and answers it:
    /// boutique's frontend (function, container or gRPC service); on the
    /// Knative model, motion's and parking's orchestrator.
    Frontend,
    /// The frontend's queue-proxy.
    FrontendSidecar,
    /// The process making the call.
    Caller,
    /// The callee's queue-proxy.
    CalleeSidecar,
    /// The process serving the call.
    Callee,
}

/// When a cost applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    Always,
    /// The client's request has a (urlencoded) form body.
    FormBody,
    /// The callee decodes the call's JSON request (see [`JSON_REQUEST_NOT_DECODED`]).
    RequestDecoded,
    /// Not the route's last step.
    NotLast,
    /// The callee is this function.
    Callee(&'static str),
    /// The callee is this function and the upload a multipart form.
    MultipartAt(&'static str),
}

/// One row of a mode's cost table.
#[derive(Clone, Copy, Debug)]
struct Cost {
    per: Per,
    at: At,
    ser: u64,
    de: u64,
    when: When,
    what: &'static str,
}

const fn cost(per: Per, at: At, ser: u64, de: u64, when: When, what: &'static str) -> Cost {
    Cost { per, at, ser, de, when, what }
}

use At::*;
use Per::{Call as PerCall, Request as PerRequest};
use When::{Always, FormBody, NotLast, RequestDecoded};

const HTTP_SERVER: &str = "HTTP: request parsed, response written";
const HTTP_PROXY: &str = "HTTP: request parsed and written upstream, response parsed and written back";

/// SPRIGHT: the gateway does the only HTTP; a call is a descriptor hop.
const SPRIGHT_BOUTIQUE: &[Cost] = &[
    cost(PerRequest, Gateway, 1, 1, Always, HTTP_SERVER),
    cost(PerRequest, Frontend, 0, 1, FormBody, "urlencoded form decoded"),
    cost(PerRequest, Frontend, 1, 0, Always, "JSON page rendered"),
];

/// The Knative model: the client's request and every RPC go through the
/// ingress and the callee's queue-proxy, over HTTP + JSON.
const KNATIVE_BOUTIQUE: &[Cost] = &[
    cost(PerRequest, Ingress, 2, 2, Always, HTTP_PROXY),
    cost(PerRequest, FrontendSidecar, 2, 2, Always, HTTP_PROXY),
    cost(PerRequest, Frontend, 1, 1, Always, HTTP_SERVER),
    cost(PerRequest, Frontend, 0, 1, FormBody, "urlencoded form decoded"),
    cost(PerRequest, Frontend, 1, 0, Always, "JSON page rendered"),
    cost(PerCall, Caller, 2, 2, Always, "JSON request encoded, HTTP request written; HTTP response parsed, JSON response decoded"),
    cost(PerCall, Ingress, 2, 2, Always, HTTP_PROXY),
    cost(PerCall, CalleeSidecar, 2, 2, Always, HTTP_PROXY),
    cost(PerCall, Callee, 1, 1, Always, HTTP_SERVER),
    cost(PerCall, Callee, 0, 1, RequestDecoded, "JSON request decoded"),
    cost(PerCall, Callee, 1, 0, Always, "JSON response encoded"),
];

/// The Knative model's services answer these without reading their (empty)
/// JSON request (`boutique::rpc::dispatch`).
const JSON_REQUEST_NOT_DECODED: &[&str] = &["GetSupportedCurrencies", "ListProducts"];

/// gRPC: the frontend's HTTP, and protobuf at both ends of every RPC.
const GRPC_BOUTIQUE: &[Cost] = &[
    cost(PerRequest, Frontend, 1, 1, Always, HTTP_SERVER),
    cost(PerRequest, Frontend, 0, 1, FormBody, "urlencoded form decoded"),
    cost(PerRequest, Frontend, 1, 0, Always, "JSON page rendered"),
    cost(PerCall, Caller, 1, 1, Always, "protobuf request encoded, response decoded"),
    cost(PerCall, Callee, 1, 1, Always, "protobuf request decoded, response encoded"),
];

const SPRIGHT_MOTION: &[Cost] = &[
    cost(PerRequest, Gateway, 1, 1, Always, HTTP_SERVER),
    cost(PerCall, Callee, 0, 1, When::Callee("sensor"), "event decoded (form or JSON)"),
    cost(PerCall, Callee, 1, 0, When::Callee("actuator"), "decision JSON encoded"),
];

/// The client talks to the orchestrator directly; it calls each function
/// through the ingress and the function's queue-proxy, forwarding bodies
/// as they are.
const KNATIVE_MOTION: &[Cost] = &[
    cost(PerRequest, Frontend, 1, 1, Always, HTTP_SERVER),
    cost(PerCall, Caller, 1, 1, Always, "HTTP request written, response parsed"),
    cost(PerCall, Ingress, 2, 2, Always, HTTP_PROXY),
    cost(PerCall, CalleeSidecar, 2, 2, Always, HTTP_PROXY),
    cost(PerCall, Callee, 1, 1, Always, HTTP_SERVER),
    cost(PerCall, Callee, 1, 1, When::Callee("sensor"), "event decoded, classification JSON encoded"),
    cost(PerCall, Callee, 1, 1, When::Callee("actuator"), "classification JSON decoded, decision JSON encoded"),
];

/// A raw image/jpeg upload is not decoded; a multipart one is split once, by detection.
const SPRIGHT_PARKING: &[Cost] = &[
    cost(PerRequest, Gateway, 1, 1, Always, HTTP_SERVER),
    cost(PerCall, Callee, 0, 1, When::MultipartAt("detection"), "multipart upload split"),
    cost(PerCall, Callee, 1, 0, When::Callee("charging"), "receipt JSON encoded"),
];

/// The orchestrator sends the image and the state (JSON in a header) to
/// every function and reads the state back from each but the last.
const KNATIVE_PARKING: &[Cost] = &[
    cost(PerRequest, Frontend, 1, 1, Always, HTTP_SERVER),
    cost(PerCall, Caller, 2, 1, Always, "state JSON encoded, HTTP request written; HTTP response parsed"),
    cost(PerCall, Caller, 0, 1, NotLast, "state JSON decoded"),
    cost(PerCall, Ingress, 2, 2, Always, HTTP_PROXY),
    cost(PerCall, CalleeSidecar, 2, 2, Always, HTTP_PROXY),
    cost(PerCall, Callee, 1, 1, Always, HTTP_SERVER),
    cost(PerCall, Callee, 1, 1, Always, "state JSON decoded; state (charging: the receipt) JSON encoded"),
    cost(PerCall, Callee, 0, 1, When::MultipartAt("detection"), "multipart upload split (the others get the bare image)"),
];

fn table(mode: &str, workload: &str) -> &'static [Cost] {
    match (mode, workload) {
        ("knative", "boutique") => KNATIVE_BOUTIQUE,
        ("knative", "motion") => KNATIVE_MOTION,
        ("knative", "parking") => KNATIVE_PARKING,
        ("grpc", "boutique") => GRPC_BOUTIQUE,
        (_, "boutique") => SPRIGHT_BOUTIQUE,
        (_, "motion") => SPRIGHT_MOTION,
        (_, "parking") => SPRIGHT_PARKING,
        _ => unreachable!(),
    }
}

fn is_spright(mode: &str) -> bool {
    mode.ends_with("-spright")
}

/// The process name `harness up --list-components` gives a place.
fn component(mode: &str, workload: &str, at: At, call: Option<&Call>, spright_ids: &BTreeMap<String, u16>) -> String {
    let spright_fn = |name: &str| format!("fn{}", spright_ids[name]);
    let call = || call.expect("a per-call cost");
    match at {
        Gateway => "gateway".into(),
        Ingress => "ingress".into(),
        Frontend if is_spright(mode) => spright_fn("frontend"),
        Frontend if workload == "boutique" => "frontend".into(),
        Frontend => "orchestrator".into(),
        FrontendSidecar => "frontend-queue-proxy".into(),
        Caller if is_spright(mode) => spright_fn(&call().caller),
        Caller => call().caller.clone(),
        CalleeSidecar => format!("{}-queue-proxy", call().callee),
        Callee if is_spright(mode) => spright_fn(&call().callee),
        Callee => call().callee.clone(),
    }
}

type Counts = BTreeMap<String, (u64, u64)>;

/// The expected counts per process for one request and its calls.
fn expected(mode: &str, workload: &str, req: &Req, calls: &[Call], spright_ids: &BTreeMap<String, u16>) -> Counts {
    let mut out = Counts::new();
    let applies = |c: &Cost, call: Option<&Call>| match c.when {
        Always => true,
        FormBody => req.content_type == FORM && !req.body.is_empty(),
        RequestDecoded => !JSON_REQUEST_NOT_DECODED.contains(&call.unwrap().method),
        NotLast => !call.unwrap().last,
        When::Callee(f) => call.unwrap().callee == f,
        When::MultipartAt(f) => call.unwrap().callee == f && req.content_type == MULTIPART,
    };
    for c in table(mode, workload) {
        let targets: Vec<Option<&Call>> = match c.per {
            Per::Request => vec![None],
            Per::Call => calls.iter().map(Some).collect(),
        };
        for call in targets.into_iter().filter(|call| applies(c, *call)) {
            let e = out.entry(component(mode, workload, c.at, call, spright_ids)).or_default();
            e.0 += c.ser;
            e.1 += c.de;
        }
    }
    out.retain(|_, v| *v != (0, 0));
    out
}

// --- measuring a deployment ----------------------------------------------

/// A `harness up` deployment counting into its own directory; dropping it
/// tears the deployment down and removes the directory.
struct Deployment {
    child: Child,
    addr: SocketAddr,
    /// pid -> component name.
    components: BTreeMap<u32, String>,
    dir: PathBuf,
}

impl Deployment {
    fn up(mode: &str, workload: &str) -> Self {
        let dir = PathBuf::from(format!("/dev/shm/spright-wire-counts-test-{}-{mode}-{workload}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["up", "--mode", mode, "--workload", workload, "--listen", "127.0.0.1:0", "--list-components"])
            .args(["--service-time-scale", "0.01"])
            .env(spright::wire::ENV, &dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // From here on a failed assertion still tears down and cleans up.
        let mut d = Self { child, addr: "0.0.0.0:0".parse().unwrap(), components: BTreeMap::new(), dir };
        let mut out = BufReader::new(d.child.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && line.trim() != "components end" {
            if let Some(a) = line.strip_prefix("ready http://") {
                d.addr = a.split_whitespace().next().unwrap().parse().unwrap();
            }
            if let Some(rest) = line.strip_prefix("component ") {
                let name = rest.split_whitespace().next().unwrap().to_string();
                let pid = rest.split_whitespace().find_map(|w| w.strip_prefix("pid=")).unwrap().parse().unwrap();
                d.components.insert(pid, name);
            }
            line.clear();
        }
        assert!(d.addr.port() != 0 && d.components.len() >= 3, "{mode} {workload} did not come up: {:?}", d.components);
        d
    }

    /// Every process's counters, by component name (`pid N` for a process
    /// that is not one of the deployment's components).
    fn counts(&self) -> Counts {
        let mut out = Counts::new();
        for e in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let c = spright::wire::read_counter_file(&e.path()).unwrap();
            out.insert(self.components.get(&pid).cloned().unwrap_or_else(|| format!("pid {pid}")), c);
        }
        out
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child, not yet reaped.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn delta(before: &Counts, after: &Counts) -> Counts {
    let mut out: Counts = after
        .iter()
        .map(|(k, &(s, d))| {
            let (s0, d0) = before.get(k).copied().unwrap_or((0, 0));
            (k.clone(), (s - s0, d - d0))
        })
        .collect();
    out.retain(|_, v| *v != (0, 0));
    out
}

fn send(http: &mut Http, cookie: &str, r: &Req) -> (u16, String) {
    let mut headers = Vec::new();
    if !r.content_type.is_empty() {
        headers.push(("content-type", r.content_type));
    }
    if !cookie.is_empty() {
        headers.push(("cookie", cookie));
    }
    let resp = http.request_with(r.method, r.path, &headers, &r.body);
    (resp.status, resp.text())
}

fn sum(c: &Counts) -> (u64, u64) {
    c.values().fold((0, 0), |(s, d), &(s1, d1)| (s + s1, d + d1))
}

/// Compares and renders one measurement; returns whether it matched.
fn compare(report: &mut String, mode: &str, workload: &str, ty: &str, want: &Counts, got: &Counts) -> bool {
    use std::fmt::Write;
    let ok = want == got;
    let (ws, wd) = sum(want);
    let (gs, gd) = sum(got);
    let _ = writeln!(
        report,
        "{} {mode} {workload} {ty}: expected {ws} ser / {wd} deser, measured {gs} ser / {gd} deser",
        if ok { "ok  " } else { "FAIL" }
    );
    let mut names: Vec<&String> = want.keys().chain(got.keys()).collect();
    names.sort();
    names.dedup();
    for n in names {
        let (w, g) = (want.get(n).copied().unwrap_or_default(), got.get(n).copied().unwrap_or_default());
        let mark = if w == g { "" } else { "   <- differs" };
        let _ = writeln!(report, "       {n:<28} expected {:>3} / {:<3} measured {:>3} / {:<3}{mark}", w.0, w.1, g.0, g.1);
    }
    ok
}

/// Brings `mode` up, warms it, and measures each request type; appends to
/// `report`, returns the number of mismatches.
fn measure(
    mode: &str,
    workload: &str,
    warm_up: &[(String, Req)],
    requests: &[(String, Vec<Req>, Req, Vec<Call>)],
    report: &mut String,
) -> usize {
    let file = chain(workload);
    let ids: BTreeMap<String, u16> = file.chains[0].functions.iter().map(|f| (f.name.clone(), f.id)).collect();
    let d = Deployment::up(mode, workload);
    let mut http = Http::connect(d.addr);
    for (cookie, r) in warm_up {
        let (status, body) = send(&mut http, cookie, r);
        assert_eq!(status, 200, "{mode} {workload} warm-up {}: {body}", r.ty);
    }
    let mut failures = 0;
    let mut table_shown = false;
    for (cookie, prep, r, calls) in requests {
        for p in prep {
            let (status, body) = send(&mut http, cookie, p);
            assert_eq!(status, 200, "{mode} {workload} {} preparation: {body}", r.ty);
        }
        let before = d.counts();
        let (status, body) = send(&mut http, cookie, r);
        assert_eq!(status, 200, "{mode} {workload} {}: {body}", r.ty);
        let got = delta(&before, &d.counts());
        let want = expected(mode, workload, r, calls, &ids);
        if !compare(report, mode, workload, r.ty, &want, &got) {
            failures += 1;
            if !table_shown {
                table_shown = true;
                report.push_str(&format!("       the {mode} {workload} cost table:\n"));
                for c in table(mode, workload) {
                    report.push_str(&format!("         {:?} {:?} {} / {} {:?}: {}\n", c.per, c.at, c.ser, c.de, c.when, c.what));
                }
            }
        }
    }
    drop(d);
    failures
}

fn check(results: Vec<(String, usize)>) {
    let mut all = String::new();
    let mut failures = 0;
    for (report, n) in results {
        all.push_str(&report);
        failures += n;
    }
    eprintln!("{all}");
    assert_eq!(failures, 0, "measurements whose counted (de)serializations differ from the call graph's (see the table above)");
}

// --- the tests -------------------------------------------------------------

#[test]
fn call_graphs_come_from_the_orchestration() {
    let g = boutique_call_graphs();
    assert_eq!(g.keys().copied().collect::<Vec<_>>(), ["add_to_cart", "checkout", "home", "product", "set_currency", "view_cart"]);
    assert!(g["set_currency"].is_empty(), "answered without calls");
    let by = |ty: &str, caller: &str| g[ty].iter().filter(|c| c.caller == caller).map(|c| c.method).collect::<Vec<_>>();
    assert_eq!(by("add_to_cart", "frontend"), ["GetProduct", "AddItem"]);
    // Nested calls are the callee's: recommendation asks the catalog,
    // checkout orchestrates the order.
    assert_eq!(by("product", "recommendation"), ["ListProducts"]);
    assert_eq!(
        by("checkout", "checkout"),
        ["GetCart", "GetProduct", "Convert", "GetQuote", "Convert", "Charge", "ShipOrder", "EmptyCart", "SendOrderConfirmation"]
    );
    assert_eq!(by("checkout", "frontend"), ["PlaceOrder", "ListRecommendations", "GetSupportedCurrencies"]);
    // One item in the cart: one product line to price.
    assert_eq!(g["view_cart"].iter().filter(|c| c.method == "GetProduct").count(), 1);
    assert_eq!(
        route_calls("parking", "/parking/known").iter().map(|c| c.callee.as_str()).collect::<Vec<_>>(),
        ["detection", "search", "charging"]
    );
}

#[test]
fn boutique_counts_match_the_call_graph_in_every_mode() {
    let graphs = boutique_call_graphs();
    let requests: Vec<_> = boutique_requests()
        .into_iter()
        .map(|r| {
            let (cookie, prep) = session(r.ty);
            let calls = graphs[r.ty].clone();
            (cookie, prep, r, calls)
        })
        .collect();
    let warm_up = boutique_warm_up();
    let results = ["s-spright", "d-spright", "e-spright", "knative", "grpc"]
        .into_iter()
        .map(|mode| {
            let mut report = String::new();
            let n = measure(mode, "boutique", &warm_up, &requests, &mut report);
            (report, n)
        })
        .collect();
    check(results);
}

#[test]
fn motion_and_parking_counts_match_their_routes() {
    let mut results = Vec::new();
    for (workload, reqs) in [("motion", motion_requests()), ("parking", parking_requests())] {
        let requests: Vec<_> = reqs.iter().map(|r| (String::new(), Vec::new(), r.clone(), route_calls(workload, r.path))).collect();
        let warm_up: Vec<_> = reqs.iter().map(|r| (String::new(), r.clone())).collect();
        for mode in ["s-spright", "d-spright", "e-spright", "knative"] {
            let mut report = String::new();
            let n = measure(mode, workload, &warm_up, &requests, &mut report);
            results.push((report, n));
        }
    }
    check(results);
}
