//! A seeded request sequence for cross-mode equivalence: several sessions,
//! all six request types, a declined card and bad input. Replayed in order
//! against any mode, it must produce identical statuses and bodies.

use crate::core::catalog::PRODUCTS;

#[derive(Clone, Debug)]
pub struct ScriptedRequest {
    pub method: &'static str,
    pub path: String,
    /// urlencoded form body (empty for none).
    pub body: String,
    /// `Cookie` header (empty: a new session).
    pub cookie: String,
}

pub const CHECKOUT_FORM: &str = "email=someone%40example.com&street_address=1600+Amphitheatre+Parkway&zip_code=94043&city=Mountain+View&state=CA&country=United+States&credit_card_expiration_month=1&credit_card_expiration_year=2039&credit_card_cvv=672&credit_card_number=";
pub const GOOD_CARD: &str = "4432801561520454";
pub const DECLINED_CARD: &str = "378282246310005";

/// `n` requests (at least 200 give every branch several times).
pub fn sequence(seed: u64, n: usize) -> Vec<ScriptedRequest> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let currencies = ["EUR", "USD", "JPY", "CAD"];
    let mut user_currency = ["USD"; 6];
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let r = next();
        let u = (r % 6) as usize;
        let cookie = if i % 37 == 5 { String::new() } else { format!("shop_session=user{u}.{}", user_currency[u]) };
        let product = PRODUCTS[((r >> 8) % 9) as usize].id;
        let (method, path, body) = match (r >> 16) % 22 {
            0 => ("GET", "/".to_string(), String::new()),
            1 | 2 => {
                let c = currencies[((r >> 24) % 4) as usize];
                user_currency[u] = c;
                ("POST", "/setCurrency".into(), format!("currency_code={c}"))
            }
            3..=9 => ("GET", format!("/product/{product}"), String::new()),
            10..=13 => ("POST", "/cart".into(), format!("product_id={product}&quantity={}", [1, 2, 3, 4, 5, 10][((r >> 24) % 6) as usize])),
            14..=16 => ("GET", "/cart".into(), String::new()),
            17 | 18 => ("POST", "/cart/checkout".into(), format!("{CHECKOUT_FORM}{GOOD_CARD}")),
            19 => ("POST", "/cart/checkout".into(), format!("{CHECKOUT_FORM}{DECLINED_CARD}")),
            20 => ("GET", "/product/NO-SUCH-ID".into(), String::new()),
            _ => [
                "POST /cart product_id=OLJCESPC7Z&quantity=0",
                "POST /setCurrency currency_code=XYZ",
                "POST /cart/checkout email=x%40y",
                "GET /nowhere ",
            ][((r >> 24) % 4) as usize]
                .split_once(' ')
                .map(|(m, rest)| {
                    let (p, b) = rest.split_once(' ').unwrap_or((rest, ""));
                    (if m == "GET" { "GET" } else { "POST" }, p.to_string(), b.to_string())
                })
                .unwrap(),
        };
        out.push(ScriptedRequest { method, path, body, cookie });
    }
    out
}

/// One task of the load mix (docs/workloads.md) (weights home 1, set currency 2,
/// product 10, add to cart 2 = product page then add, view cart 3,
/// checkout 1 = add then place order): its requests as
/// (request type, method, path, form body).
pub fn mix_task(n: u64) -> Vec<(&'static str, &'static str, String, String)> {
    let product = PRODUCTS[(n.wrapping_mul(2_654_435_761) % 9) as usize].id;
    let add =
        ("add_to_cart", "POST", "/cart".to_string(), format!("product_id={product}&quantity={}", [1, 2, 3, 4, 5, 10][(n % 6) as usize]));
    match n % 19 {
        0 => vec![("home", "GET", "/".into(), String::new())],
        1 | 2 => vec![(
            "set_currency",
            "POST",
            "/setCurrency".into(),
            format!("currency_code={}", ["EUR", "USD", "JPY", "CAD"][(n % 4) as usize]),
        )],
        3..=12 => vec![("product", "GET", format!("/product/{product}"), String::new())],
        13 | 14 => vec![("product", "GET", format!("/product/{product}"), String::new()), add],
        15..=17 => vec![("view_cart", "GET", "/cart".into(), String::new())],
        _ => vec![add, ("checkout", "POST", "/cart/checkout".into(), format!("{CHECKOUT_FORM}{GOOD_CARD}"))],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn covers_every_request_type() {
        let s = super::sequence(1, 220);
        for needle in ["/setCurrency", "/product/", "/cart/checkout", "NO-SUCH-ID", "/nowhere"] {
            assert!(s.iter().any(|r| r.path.contains(needle)), "{needle}");
        }
        assert!(s.iter().any(|r| r.body.ends_with(super::DECLINED_CARD)));
        assert!(s.iter().any(|r| r.cookie.is_empty()));
        assert!(s.iter().any(|r| r.path == "/"));
    }
}
