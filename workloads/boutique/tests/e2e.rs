//! Online Boutique end to end over HTTP, on every SPRIGHT transport.

use std::path::PathBuf;

use boutique::core::ads::get_ads;
use boutique::core::catalog::{get_product, PRODUCTS};
use boutique::core::money::{Currency, CurrencyTable, Money};
use boutique::core::recommendation::recommend;
use boutique::frontend::pages::{self, AdView, ProductPage, ProductView};
use testkit::{Http, HttpResponse, Spright, TRANSPORTS};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_boutique"))
}

fn chain() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("chain.yaml")
}

const CHECKOUT: &str = "email=someone%40example.com&street_address=1600+Amphitheatre+Parkway&zip_code=94043&city=Mountain+View&state=CA&country=United+States&credit_card_expiration_month=1&credit_card_expiration_year=2039&credit_card_cvv=672&credit_card_number=";
const VISA: &str = "4432801561520454";
const AMEX: &str = "378282246310005";

fn form() -> (&'static str, &'static str) {
    ("content-type", "application/x-www-form-urlencoded")
}

struct Client {
    http: Http,
    cookie: String,
}

impl Client {
    fn new(sp: &Spright, user: &str, currency: &str) -> Self {
        Self { http: Http::connect(sp.addr), cookie: format!("shop_session={user}.{currency}") }
    }
    fn get(&mut self, path: &str) -> HttpResponse {
        self.http.request_with("GET", path, &[("cookie", &self.cookie)], b"")
    }
    fn post(&mut self, path: &str, body: &str) -> HttpResponse {
        self.http.request_with("POST", path, &[("cookie", &self.cookie), form()], body.as_bytes())
    }
}

// The test client decoding an answer: not a message of the system's, not counted.
#[allow(clippy::disallowed_methods)]
fn json(r: &HttpResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

fn eur(units: i64, nanos: i32) -> serde_json::Value {
    serde_json::json!({ "currency_code": "EUR", "units": units, "nanos": nanos })
}

/// All six request types in one scripted session, with exact answers.
fn scripted_session(sp: &Spright) {
    let table = CurrencyTable::default();
    let eur_c: Currency = "EUR".parse().unwrap();
    let all_ids: Vec<&str> = PRODUCTS.iter().map(|p| p.id).collect();

    // Home without a session: a new one, by cookie.
    let r = Http::connect(sp.addr).request("GET", "/", b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let cookie = r.header("set-cookie").expect("new session cookie").to_string();
    assert!(cookie.starts_with("shop_session=") && cookie.contains(".USD;"), "{cookie}");
    let home = json(&r);
    assert_eq!(home["products"].as_array().unwrap().len(), 9);
    assert_eq!(home["products"][0]["price"], serde_json::json!({"currency_code":"USD","units":19,"nanos":990000000}));
    assert_eq!(home["cart_size"], 0);
    assert_eq!(home["ads"].as_array().unwrap().len(), 1);

    let mut c = Client::new(sp, "alice", "USD");
    // Set currency.
    let r = c.post("/setCurrency", "currency_code=EUR");
    assert_eq!((r.status, r.text()), (200, r#"{"session_id":"alice","user_currency":"EUR"}"#.to_string()));
    assert_eq!(r.header("set-cookie"), Some("shop_session=alice.EUR; Path=/; Max-Age=172800"));
    c.cookie = "shop_session=alice.EUR".into();

    // Home in EUR: all 9 prices converted.
    let home = json(&c.get("/"));
    for (i, p) in PRODUCTS.iter().enumerate() {
        let want = table.convert(&p.price_usd, eur_c).unwrap();
        assert_eq!(home["products"][i]["price"], eur(want.units, want.nanos), "{}", p.id);
    }
    assert_eq!(home["products"][0]["price"], eur(17, 682_441_398), "19.99 USD / 1.1305");

    // Product page: exact bytes.
    let r = c.get("/product/L9ECAV7KIM");
    let p = get_product("L9ECAV7KIM").unwrap();
    let expected = ProductPage {
        session_id: "alice".into(),
        user_currency: eur_c,
        currencies: table.supported(),
        product: ProductView::new(p, table.convert(&p.price_usd, eur_c).unwrap()),
        cart_size: 0,
        recommendations: recommend("alice", &all_ids, &["L9ECAV7KIM"]),
        ads: get_ads(&["footwear"], "alice")
            .into_iter()
            .map(|a| AdView { redirect_url: a.redirect_url.into(), text: a.text.into() })
            .collect(),
    };
    assert_eq!(r.text(), String::from_utf8(pages::to_json(&expected)).unwrap());

    // Add to cart twice (quantities merge), then another product.
    let r = c.post("/cart", "product_id=L9ECAV7KIM&quantity=2");
    assert_eq!(r.text(), r#"{"session_id":"alice","product_id":"L9ECAV7KIM","quantity":2}"#);
    assert_eq!(c.post("/cart", "product_id=L9ECAV7KIM&quantity=10").status, 200);
    assert_eq!(c.post("/cart", "product_id=6E92ZMYYFZ&quantity=1").status, 200);

    // View cart.
    let cart = json(&c.get("/cart"));
    let unit = |id: &str| table.convert(&get_product(id).unwrap().price_usd, eur_c).unwrap();
    let shipping = table.convert(&Money::new(Currency::USD, 8, 990_000_000), eur_c).unwrap();
    let line1 = unit("L9ECAV7KIM").checked_mul(12).unwrap();
    let line2 = unit("6E92ZMYYFZ");
    let total = shipping.checked_add(&line1).unwrap().checked_add(&line2).unwrap();
    assert_eq!(cart["cart_size"], 13);
    assert_eq!(cart["items"][0]["quantity"], 12);
    assert_eq!(cart["items"][0]["price"], eur(line1.units, line1.nanos));
    assert_eq!(cart["items"][1]["name"], "Mug");
    assert_eq!(cart["shipping_cost"], eur(7, 952_233_525), "8.99 USD / 1.1305");
    assert_eq!(cart["total_cost"], eur(total.units, total.nanos));
    assert_eq!(cart["recommendations"], serde_json::json!(recommend("alice", &all_ids, &["L9ECAV7KIM", "6E92ZMYYFZ"])));

    // A declined card: 402, nothing charged, shipped or emptied.
    let r = c.post("/cart/checkout", &format!("{CHECKOUT}{AMEX}"));
    assert_eq!(r.status, 402, "{}", r.text());
    assert_eq!(
        r.text(),
        r#"{"error":"payment declined: sorry, we cannot process Amex credit cards; only VISA or MasterCard is accepted"}"#
    );
    assert_eq!(json(&c.get("/cart"))["cart_size"], 13, "cart kept after a declined card");

    // Place the order.
    let r = c.post("/cart/checkout", &format!("{CHECKOUT}{VISA}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let order = json(&r);
    assert_eq!(order["order"]["total"], eur(total.units, total.nanos));
    assert_eq!(
        order["order"]["items"][0],
        serde_json::json!({"item":{"product_id":"L9ECAV7KIM","quantity":12},"cost":eur(unit("L9ECAV7KIM").units, unit("L9ECAV7KIM").nanos)})
    );
    assert_eq!(order["order"]["shipping_address"]["zip_code"], 94043);
    assert_eq!(order["order"]["order_id"].as_str().unwrap().len(), 36);
    assert_eq!(order["order"]["shipping_tracking_id"].as_str().unwrap().len(), 17);
    let cart = json(&c.get("/cart"));
    assert_eq!((cart["cart_size"].clone(), cart["total_cost"].clone()), (serde_json::json!(0), eur(0, 0)), "emptied after the order");
}

fn bad_inputs(sp: &Spright) {
    let mut c = Client::new(sp, "mallory", "USD");
    let cases: [(&str, &str, &str, u16, &str); 9] = [
        ("GET", "/product/NOPE", "", 404, "no product with id NOPE"),
        ("POST", "/cart", "product_id=NOPE&quantity=1", 404, "no product with id NOPE"),
        ("POST", "/cart", "product_id=OLJCESPC7Z&quantity=0", 400, "quantity must be 1..=100, got 0"),
        ("POST", "/cart", "product_id=OLJCESPC7Z&quantity=lots", 400, "invalid field: quantity"),
        ("POST", "/setCurrency", "currency_code=XYZ", 400, "unsupported currency XYZ"),
        ("POST", "/cart/checkout", "street_address=x", 400, "missing field: credit_card_expiration_month"),
        ("POST", "/cart/checkout", &CHECKOUT.replace("email=someone%40example.com&", ""), 400, "missing field: email"),
        ("GET", "/nowhere", "", 404, "no page at /nowhere"),
        ("GET", "/setCurrency", "", 405, "GET is not allowed on /setCurrency"),
    ];
    for (method, path, body, status, message) in cases {
        let r = if method == "GET" { c.get(path) } else { c.post(path, body) };
        assert_eq!((r.status, json(&r)["error"].as_str().unwrap_or_default()), (status, message), "{method} {path} {body}");
    }
    let r = c.post("/cart/checkout", &format!("{CHECKOUT}{VISA}"));
    assert_eq!((r.status, json(&r)["error"].clone()), (400, serde_json::json!("cannot place an order: the cart is empty")));
}

/// 32 users at once: add, view, check out; every cart stays its own.
fn concurrent_sessions(sp: &Spright) {
    let addr = sp.addr;
    let users: Vec<_> = (0..32)
        .map(|u| {
            std::thread::spawn(move || {
                let mut c = Client { http: Http::connect(addr), cookie: format!("shop_session=user{u}.USD") };
                let products = [PRODUCTS[u % 9].id, PRODUCTS[(u + 4) % 9].id];
                for (i, p) in products.iter().enumerate() {
                    let r = c.post("/cart", &format!("product_id={p}&quantity={}", u % 5 + 1 + i));
                    assert_eq!(r.status, 200, "{}", r.text());
                }
                let cart = json(&c.get("/cart"));
                assert_eq!(cart["cart_size"], (2 * (u % 5 + 1) + 1) as u64, "user{u}: {cart}");
                assert_eq!(cart["items"][0]["product_id"], products[0]);
                let r = c.post("/cart/checkout", &format!("{CHECKOUT}{VISA}"));
                assert_eq!(r.status, 200, "user{u}: {}", r.text());
                assert_eq!(json(&r)["order"]["items"].as_array().unwrap().len(), 2);
                assert_eq!(json(&c.get("/cart"))["cart_size"], 0);
            })
        })
        .collect();
    for u in users {
        u.join().expect("a session saw another's cart or a failed request");
    }
}

fn full_suite(transport: &str) {
    let sp = Spright::start(&bin(), &chain(), transport);
    scripted_session(&sp);
    bad_inputs(&sp);
    concurrent_sessions(&sp);
    assert!(sp.eventually(std::time::Duration::from_secs(5), |s| s.slots_in_use() == 0.0), "slots leaked");
    assert_eq!(sp.metric("spright_pool_descriptors_rejected_total", &[]), 0.0);
    assert!(sp.stop().success());
}

#[test]
fn boutique_on_skmsg() {
    full_suite("skmsg");
}

#[test]
fn boutique_on_eventring() {
    full_suite("eventring");
}

#[test]
fn boutique_on_ring() {
    full_suite("ring");
}

#[test]
fn every_transport_answers_identically() {
    let mut bodies = Vec::new();
    for t in TRANSPORTS {
        let sp = Spright::start(&bin(), &chain(), t);
        let mut c = Client::new(&sp, "bob", "JPY");
        let mut got = vec![c.get("/").text(), c.get("/product/9SIQT8TOJO").text()];
        c.post("/cart", "product_id=9SIQT8TOJO&quantity=3");
        got.push(c.get("/cart").text());
        got.push(c.post("/cart/checkout", &format!("{CHECKOUT}{VISA}")).text());
        bodies.push(got);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
}
