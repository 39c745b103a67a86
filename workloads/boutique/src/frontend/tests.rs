use super::*;

fn parse(method: &str, path: &str, query: &str, body: &str) -> Result<FrontendRequest, HttpError> {
    let ct = if body.is_empty() { "" } else { "application/x-www-form-urlencoded" };
    parse_request(method, path, query, ct, body.as_bytes())
}

const CHECKOUT: &str = "email=someone%40example.com&street_address=1600+Amphitheatre+Parkway&zip_code=94043&city=Mountain+View&state=CA&country=United+States&credit_card_number=4432801561520454&credit_card_expiration_month=1&credit_card_expiration_year=2039&credit_card_cvv=672";

#[test]
fn every_request_type_parses() {
    assert_eq!(parse("GET", "/", "", ""), Ok(FrontendRequest::Home));
    assert_eq!(
        parse("POST", "/setCurrency", "", "currency_code=EUR"),
        Ok(FrontendRequest::SetCurrency { currency: "EUR".parse().unwrap() })
    );
    assert_eq!(
        parse("POST", "/setCurrency", "currency_code=JPY", ""),
        Ok(FrontendRequest::SetCurrency { currency: "JPY".parse().unwrap() })
    );
    assert_eq!(parse("GET", "/product/OLJCESPC7Z", "", ""), Ok(FrontendRequest::Product { id: "OLJCESPC7Z".into() }));
    assert_eq!(parse("GET", "/cart", "", ""), Ok(FrontendRequest::ViewCart));
    assert_eq!(
        parse("POST", "/cart", "", "product_id=L9ECAV7KIM&quantity=10"),
        Ok(FrontendRequest::AddToCart { product_id: "L9ECAV7KIM".into(), quantity: 10 })
    );
    match parse("POST", "/cart/checkout", "", CHECKOUT).unwrap() {
        FrontendRequest::PlaceOrder(f) => {
            assert_eq!(f.email, "someone@example.com");
            assert_eq!(f.address.street_address, "1600 Amphitheatre Parkway");
            assert_eq!((f.address.zip_code, f.card.expiration_month, f.card.expiration_year, f.card.cvv), (94043, 1, 2039, 672));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_input_is_a_clear_4xx() {
    let status = |r: Result<FrontendRequest, HttpError>| r.unwrap_err();
    assert_eq!(status(parse("GET", "/nowhere", "", "")).status, 404);
    assert_eq!(status(parse("GET", "/setCurrency", "", "")).status, 405);
    let e = status(parse("POST", "/setCurrency", "", "currency_code=XYZ"));
    assert_eq!((e.status, e.message.as_str()), (400, "unsupported currency XYZ"));
    assert_eq!(status(parse("POST", "/setCurrency", "", "currency_code=usd")).status, 400);
    assert_eq!(status(parse("POST", "/cart", "", "product_id=X&quantity=0")).status, 400);
    assert_eq!(status(parse("POST", "/cart", "", "product_id=X&quantity=abc")).message, "invalid field: quantity");
    assert_eq!(status(parse("POST", "/cart", "", "quantity=1")).message, "missing field: product_id");
    for field in ["email", "street_address", "zip_code", "city", "credit_card_number", "credit_card_cvv"] {
        let body: String = CHECKOUT.split('&').filter(|kv| !kv.starts_with(&format!("{field}="))).collect::<Vec<_>>().join("&");
        assert_eq!(status(parse("POST", "/cart/checkout", "", &body)).message, format!("missing field: {field}"));
    }
    assert_eq!(HttpError::new(400, "a \"b\"").body(), br#"{"error":"a \"b\""}"#.to_vec());
}

#[test]
fn sessions_from_cookies_or_new() {
    let ids = SessionIds::default();
    let s = Session::from_cookie("a=b; shop_session=user-7.EUR; c=d", &ids);
    assert_eq!((s.user_id.as_str(), s.currency.as_str(), s.is_new), ("user-7", "EUR", false));
    let fresh = Session::from_cookie("", &ids);
    assert!(fresh.is_new);
    assert_eq!(fresh.currency.as_str(), "USD");
    assert_ne!(fresh.user_id, Session::from_cookie("", &ids).user_id);
    assert_eq!(Session::from_cookie("", &SessionIds::default()).user_id, fresh.user_id, "deterministic per process");
    assert!(Session::from_cookie("shop_session=bad id!.USD", &ids).is_new);
    let again = Session::from_cookie(&s.set_cookie(), &ids);
    assert_eq!(again.user_id, "user-7");
}

#[test]
fn urlencoding() {
    assert_eq!(
        parse_urlencoded("a=1+2&b=%41%zz&c"),
        vec![("a".into(), "1 2".into()), ("b".into(), "A%zz".into()), ("c".into(), "".into())]
    );
}
