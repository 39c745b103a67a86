//! The frontend's HTTP API, shared by every mode: sessions, request parsing
//! and the JSON page models (`pages`). Only how the frontend reaches the
//! other services differs between modes.
//!
//! | request | HTTP |
//! |---|---|
//! | home | `GET /` |
//! | set currency | `POST /setCurrency` (`currency_code`) |
//! | product page | `GET /product/{id}` |
//! | view cart | `GET /cart` |
//! | add to cart | `POST /cart` (`product_id`, `quantity`) |
//! | place order | `POST /cart/checkout` (address, email and card fields) |
//!
//! Parameters come as a query string or a urlencoded form body. The form
//! body is a message of its own, decoded (and counted) through
//! `spright::wire::form`; the query string is part of the HTTP request.

pub mod pages;

use std::sync::atomic::{AtomicU64, Ordering};

pub use spright::form::parse_urlencoded;
use spright::form::percent_decode;
use spright::wire::{form, json};

use crate::core::ids::uuid_like;
use crate::core::money::{Currency, CurrencyTable};
use crate::core::payment::CreditCard;
use crate::core::shipping::Address;

/// Name of the session cookie: `shop_session=<user id>.<currency>`.
pub const SESSION_COOKIE: &str = "shop_session";

/// A user's session: who they are and the currency they chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user_id: String,
    pub currency: Currency,
    /// True when the request carried no (valid) session: answer with Set-Cookie.
    pub is_new: bool,
}

impl Session {
    /// The session from a `Cookie` header, or a new one.
    pub fn from_cookie(cookie_header: &str, new_sessions: &SessionIds) -> Self {
        let found = cookie_header.split(';').map(str::trim).find_map(|kv| kv.strip_prefix(SESSION_COOKIE)?.strip_prefix('='));
        if let Some(value) = found {
            let (user, cur) = value.rsplit_once('.').unwrap_or((value, "USD"));
            if valid_user_id(user) {
                if let Ok(currency) = cur.parse() {
                    return Self { user_id: user.to_string(), currency, is_new: false };
                }
            }
        }
        Self { user_id: new_sessions.next(), currency: Currency::USD, is_new: true }
    }

    /// The `Set-Cookie` value for this session.
    pub fn set_cookie(&self) -> String {
        format!("{SESSION_COOKIE}={}.{}; Path=/; Max-Age=172800", self.user_id, self.currency)
    }
}

fn valid_user_id(u: &str) -> bool {
    !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// New session ids: deterministic per frontend process (a counter), so the
/// same request sequence yields the same ids in every mode.
#[derive(Default)]
pub struct SessionIds(AtomicU64);

impl SessionIds {
    pub fn next(&self) -> String {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        uuid_like(&[b"session", &n.to_le_bytes()])
    }
}

/// A request the frontend understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrontendRequest {
    Home,
    SetCurrency { currency: Currency },
    Product { id: String },
    ViewCart,
    AddToCart { product_id: String, quantity: u32 },
    PlaceOrder(Box<CheckoutForm>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutForm {
    pub email: String,
    pub address: Address,
    pub card: CreditCard,
}

/// An answer the frontend gives without calling anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub message: String,
}

impl HttpError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    /// `{"error":"..."}`
    pub fn body(&self) -> Vec<u8> {
        json::to_vec(&json::json!({ "error": self.message })).expect("serializable")
    }
}

/// Quantities the add-to-cart form accepts.
pub const MAX_ADD_QUANTITY: u32 = 100;

/// Parses a request into what the frontend must do.
pub fn parse_request(method: &str, path: &str, query: &str, content_type: &str, body: &[u8]) -> Result<FrontendRequest, HttpError> {
    let mut params = form::decode_query(query);
    if content_type.trim().starts_with("application/x-www-form-urlencoded") || (content_type.is_empty() && !body.is_empty()) {
        let text = std::str::from_utf8(body).map_err(|_| HttpError::new(400, "form body is not UTF-8"))?;
        params.extend(form::decode(text));
    }
    let get = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let require = |name: &str| get(name).filter(|v| !v.is_empty()).ok_or_else(|| HttpError::new(400, format!("missing field: {name}")));
    let number = |name: &str| -> Result<i64, HttpError> {
        require(name)?.trim().parse().map_err(|_| HttpError::new(400, format!("invalid field: {name}")))
    };

    let route = path.trim_end_matches('/');
    let allowed = |m: &str| -> Result<(), HttpError> {
        if method == m || (m == "GET" && method == "HEAD") {
            Ok(())
        } else {
            Err(HttpError::new(405, format!("{method} is not allowed on {path}")))
        }
    };
    match route {
        "" => allowed("GET").map(|_| FrontendRequest::Home),
        "/setCurrency" => {
            allowed("POST")?;
            let code = require("currency_code")?;
            let currency: Currency = code.parse().map_err(|_| HttpError::new(400, format!("invalid currency code {code:?}")))?;
            if !CurrencyTable::default().is_supported(currency) {
                return Err(HttpError::new(400, format!("unsupported currency {currency}")));
            }
            Ok(FrontendRequest::SetCurrency { currency })
        }
        "/cart" if method == "POST" => {
            let product_id = require("product_id")?.to_string();
            let quantity = number("quantity")?;
            if !(1..=MAX_ADD_QUANTITY as i64).contains(&quantity) {
                return Err(HttpError::new(400, format!("quantity must be 1..={MAX_ADD_QUANTITY}, got {quantity}")));
            }
            Ok(FrontendRequest::AddToCart { product_id, quantity: quantity as u32 })
        }
        "/cart" => allowed("GET").map(|_| FrontendRequest::ViewCart),
        "/cart/checkout" => {
            allowed("POST")?;
            let month = number("credit_card_expiration_month")?;
            let year = number("credit_card_expiration_year")?;
            let cvv = number("credit_card_cvv")?;
            let zip = number("zip_code")?;
            let form = CheckoutForm {
                email: require("email")?.to_string(),
                address: Address {
                    street_address: require("street_address")?.to_string(),
                    city: require("city")?.to_string(),
                    state: require("state")?.to_string(),
                    country: require("country")?.to_string(),
                    zip_code: i32::try_from(zip).map_err(|_| HttpError::new(400, "invalid field: zip_code"))?,
                },
                card: CreditCard {
                    number: require("credit_card_number")?.to_string(),
                    cvv: u32::try_from(cvv).map_err(|_| HttpError::new(400, "invalid field: credit_card_cvv"))?,
                    expiration_year: i32::try_from(year).map_err(|_| HttpError::new(400, "invalid field: credit_card_expiration_year"))?,
                    expiration_month: u32::try_from(month)
                        .map_err(|_| HttpError::new(400, "invalid field: credit_card_expiration_month"))?,
                },
            };
            if form.email.len() > 128 || !form.email.contains('@') {
                return Err(HttpError::new(400, "invalid field: email"));
            }
            Ok(FrontendRequest::PlaceOrder(Box::new(form)))
        }
        _ => match route.strip_prefix("/product/") {
            Some(id) if !id.is_empty() && !id.contains('/') => allowed("GET").map(|_| FrontendRequest::Product { id: percent_decode(id) }),
            _ => Err(HttpError::new(404, format!("no page at {path}"))),
        },
    }
}

#[cfg(test)]
mod tests;
