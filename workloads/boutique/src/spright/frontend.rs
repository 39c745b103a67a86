//! The frontend function: parses the HTTP request once, then orchestrates
//! the calls of its request type (Google's Online Boutique call graph) as a
//! state machine whose every step is stored in the slot, and renders the
//! page.

use spright::sdk::{Action, Handler};
use spright::txn::Txn;

use super::method::*;
use super::services::order_from_state;
use super::state::{get, kind, put, BoutiqueState, ProductRec, MAX_ADS};
use super::{call, entry, Entry};
use crate::core::cart::MAX_CART_LINES;
use crate::core::money::Currency;
use crate::frontend::pages::{
    self, AdView, AddedToCart, CartLineView, CartPage, CurrencySet, HomePage, OrderPage, ProductPage, ProductView,
};
use crate::frontend::{parse_request, FrontendRequest, HttpError, Session, SessionIds};
use crate::ids::*;

const ME: u16 = FRONTEND;

#[derive(Default)]
pub struct Frontend {
    sessions: SessionIds,
}

enum Outcome {
    Act(Action),
    Respond { status: u16, body: Vec<u8>, cookie: String },
}

fn view(rec: &ProductRec) -> ProductView {
    ProductView {
        id: get(&rec.id).into(),
        name: get(&rec.name).into(),
        description: get(&rec.description).into(),
        picture: get(&rec.picture).into(),
        categories: rec.categories().iter().map(|c| c.to_string()).collect(),
        price: rec.price.to_money(),
    }
}

fn session(st: &BoutiqueState) -> Session {
    Session { user_id: st.user_id().into(), currency: st.currency(), is_new: st.session_new != 0 }
}

fn cookie_if_new(st: &BoutiqueState) -> String {
    let s = session(st);
    if s.is_new {
        s.set_cookie()
    } else {
        String::new()
    }
}

fn page<T: serde::Serialize>(st: &BoutiqueState, p: &T) -> Outcome {
    Outcome::Respond { status: 200, body: pages::to_json(p), cookie: cookie_if_new(st) }
}

fn currencies(st: &BoutiqueState) -> Vec<Currency> {
    st.currencies[..st.n_currencies as usize].iter().filter_map(|c| get(c).parse().ok()).collect()
}

fn cart_size(st: &BoutiqueState) -> u32 {
    st.cart_items().iter().map(|i| i.quantity).sum()
}

fn recommendations(st: &BoutiqueState) -> Vec<String> {
    st.recommendations[..st.n_recommendations as usize].iter().map(|r| get(r).to_string()).collect()
}

fn ads(st: &BoutiqueState) -> Vec<AdView> {
    st.ads[..(st.n_ads as usize).min(MAX_ADS)]
        .iter()
        .map(|a| AdView { redirect_url: get(&a.redirect_url).into(), text: get(&a.text).into() })
        .collect()
}

/// Excludes the cart's products from recommendations.
fn exclude_cart(st: &mut BoutiqueState) {
    let n = (st.n_cart as usize).min(MAX_CART_LINES);
    for i in 0..n {
        st.exclude[i] = st.cart[i].product_id;
    }
    st.n_exclude = n as u32;
}

impl Frontend {
    /// Parses a new request into the state; `Err` is the answer itself.
    fn start(&self, txn: &mut Txn<'_>) -> Result<(), Outcome> {
        let r = txn.request();
        let parsed = parse_request(r.method.as_str(), r.path, r.query, r.content_type, r.body);
        let session = Session::from_cookie(r.cookie, &self.sessions);
        let st = txn.state::<BoutiqueState>().expect("checked by the caller");
        put(&mut st.user_id, &session.user_id);
        BoutiqueState::set_currency_field(&mut st.currency, session.currency);
        st.session_new = session.is_new as u16;
        let req = match parsed {
            Ok(req) => req,
            Err(e) => return Err(Outcome::Respond { status: e.status, body: e.body(), cookie: cookie_if_new(st) }),
        };
        st.kind = match req {
            FrontendRequest::Home => kind::HOME,
            FrontendRequest::Product { id } => {
                put(&mut st.product_id, &id);
                kind::PRODUCT
            }
            FrontendRequest::ViewCart => kind::VIEW_CART,
            FrontendRequest::AddToCart { product_id, quantity } => {
                put(&mut st.product_id, &product_id);
                st.quantity = quantity;
                kind::ADD_TO_CART
            }
            FrontendRequest::PlaceOrder(form) => {
                put(&mut st.email, &form.email);
                put(&mut st.street, &form.address.street_address);
                put(&mut st.city, &form.address.city);
                put(&mut st.region, &form.address.state);
                put(&mut st.country, &form.address.country);
                st.zip = form.address.zip_code;
                put(&mut st.card_number, &form.card.number);
                st.card_month = form.card.expiration_month;
                st.card_year = form.card.expiration_year;
                st.card_cvv = form.card.cvv;
                kind::CHECKOUT
            }
            FrontendRequest::SetCurrency { currency } => {
                // No call: the code was validated against the supported list.
                let s = Session { user_id: session.user_id.clone(), currency, is_new: true };
                let body = pages::to_json(&CurrencySet { session_id: s.user_id.clone(), user_currency: currency });
                return Err(Outcome::Respond { status: 200, body, cookie: s.set_cookie() });
            }
        };
        Ok(())
    }

    /// Runs the request's steps from `step` until a call or the answer.
    fn run(&self, st: &mut BoutiqueState, mut step: u16) -> Outcome {
        loop {
            if st.error_status != 0 {
                let e = HttpError::new(st.error_status, get(&st.error_message));
                return Outcome::Respond { status: e.status, body: e.body(), cookie: cookie_if_new(st) };
            }
            let c = |st: &mut BoutiqueState, callee, method, ret| Outcome::Act(call(st, ME, callee, method, ret));
            let i = st.i as usize;
            match (st.kind, step) {
                (kind::HOME, 0) => return c(st, CURRENCY, GET_SUPPORTED_CURRENCIES, 1),
                (kind::HOME, 1) => return c(st, PRODUCT_CATALOG, LIST_PRODUCTS, 2),
                (kind::HOME, 2) => return c(st, CART, GET_CART, 3),
                (kind::HOME, 3) => {
                    st.i = 0;
                    step = 4;
                }
                (kind::HOME, 4) if i < st.n_products as usize => {
                    st.arg_money = st.products[i].price;
                    st.arg_currency = st.currency;
                    return c(st, CURRENCY, CONVERT, 5);
                }
                (kind::HOME, 4) => {
                    put(&mut st.ad_context, "");
                    return c(st, AD, GET_ADS, 6);
                }
                (kind::HOME, 5) => {
                    st.products[i].price = st.ret_money;
                    st.i += 1;
                    step = 4;
                }
                (kind::HOME, 6) => {
                    let n = st.n_products as usize;
                    let p = HomePage {
                        session_id: st.user_id().into(),
                        user_currency: st.currency(),
                        currencies: currencies(st),
                        products: st.products[..n].iter().map(view).collect(),
                        cart_size: cart_size(st),
                        ads: ads(st),
                    };
                    return page(st, &p);
                }

                (kind::PRODUCT, 0) => {
                    st.arg_product = st.product_id;
                    return c(st, PRODUCT_CATALOG, GET_PRODUCT, 1);
                }
                (kind::PRODUCT, 1) => {
                    // Kept apart from `products`, which recommendation refills.
                    st.line_products[0] = st.ret_product;
                    return c(st, CURRENCY, GET_SUPPORTED_CURRENCIES, 2);
                }
                (kind::PRODUCT, 2) => return c(st, CART, GET_CART, 3),
                (kind::PRODUCT, 3) => {
                    st.arg_money = st.line_products[0].price;
                    st.arg_currency = st.currency;
                    return c(st, CURRENCY, CONVERT, 4);
                }
                (kind::PRODUCT, 4) => {
                    st.line_products[0].price = st.ret_money;
                    st.exclude[0] = st.line_products[0].id;
                    st.n_exclude = 1;
                    return c(st, RECOMMENDATION, LIST_RECOMMENDATIONS, 5);
                }
                (kind::PRODUCT, 5) => {
                    st.ad_context = st.line_products[0].categories;
                    return c(st, AD, GET_ADS, 6);
                }
                (kind::PRODUCT, 6) => {
                    let p = ProductPage {
                        session_id: st.user_id().into(),
                        user_currency: st.currency(),
                        currencies: currencies(st),
                        product: view(&st.line_products[0]),
                        cart_size: cart_size(st),
                        recommendations: recommendations(st),
                        ads: ads(st),
                    };
                    return page(st, &p);
                }

                (kind::VIEW_CART, 0) => return c(st, CURRENCY, GET_SUPPORTED_CURRENCIES, 1),
                (kind::VIEW_CART, 1) => return c(st, CART, GET_CART, 2),
                (kind::VIEW_CART, 2) => {
                    exclude_cart(st);
                    return c(st, RECOMMENDATION, LIST_RECOMMENDATIONS, 3);
                }
                (kind::VIEW_CART, 3) => return c(st, SHIPPING, GET_QUOTE, 4),
                (kind::VIEW_CART, 4) => {
                    st.arg_money = st.ret_money;
                    st.arg_currency = st.currency;
                    return c(st, CURRENCY, CONVERT, 5);
                }
                (kind::VIEW_CART, 5) => {
                    st.shipping_cost = st.ret_money;
                    st.i = 0;
                    step = 6;
                }
                (kind::VIEW_CART, 6) if i < st.n_cart as usize => {
                    st.arg_product = st.cart[i].product_id;
                    return c(st, PRODUCT_CATALOG, GET_PRODUCT, 7);
                }
                (kind::VIEW_CART, 6) => return self.cart_page(st),
                (kind::VIEW_CART, 7) => {
                    st.line_products[i] = st.ret_product;
                    st.arg_money = st.ret_product.price;
                    st.arg_currency = st.currency;
                    return c(st, CURRENCY, CONVERT, 8);
                }
                (kind::VIEW_CART, 8) => {
                    st.line_prices[i] = st.ret_money;
                    st.i += 1;
                    step = 6;
                }

                (kind::ADD_TO_CART, 0) => {
                    st.arg_product = st.product_id;
                    return c(st, PRODUCT_CATALOG, GET_PRODUCT, 1);
                }
                (kind::ADD_TO_CART, 1) => return c(st, CART, ADD_ITEM, 2),
                (kind::ADD_TO_CART, 2) => {
                    let p = AddedToCart { session_id: st.user_id().into(), product_id: get(&st.product_id).into(), quantity: st.quantity };
                    return page(st, &p);
                }

                (kind::CHECKOUT, 0) => return c(st, CHECKOUT, PLACE_ORDER, 1),
                (kind::CHECKOUT, 1) => {
                    exclude_cart(st);
                    return c(st, RECOMMENDATION, LIST_RECOMMENDATIONS, 2);
                }
                (kind::CHECKOUT, 2) => return c(st, CURRENCY, GET_SUPPORTED_CURRENCIES, 3),
                (kind::CHECKOUT, 3) => {
                    let p = OrderPage {
                        session_id: st.user_id().into(),
                        user_currency: st.currency(),
                        currencies: currencies(st),
                        order: order_from_state(st),
                        recommendations: recommendations(st),
                    };
                    return page(st, &p);
                }
                _ => {
                    st.fail(500, &format!("frontend: no step {step} for request kind {}", st.kind));
                }
            }
        }
    }

    fn cart_page(&self, st: &BoutiqueState) -> Outcome {
        let shipping = st.shipping_cost.to_money();
        let mut total = shipping;
        let mut items = Vec::new();
        for (i, item) in st.cart_items().into_iter().enumerate() {
            let line = st.line_prices[i].to_money().checked_mul(item.quantity).and_then(|m| {
                total = total.checked_add(&m)?;
                Ok(m)
            });
            let Ok(price) = line else {
                let e = HttpError::new(500, "cart total out of range");
                return Outcome::Respond { status: 500, body: e.body(), cookie: cookie_if_new(st) };
            };
            let rec = &st.line_products[i];
            items.push(CartLineView {
                product_id: item.product_id,
                name: get(&rec.name).into(),
                picture: get(&rec.picture).into(),
                quantity: item.quantity,
                price,
            });
        }
        let p = CartPage {
            session_id: st.user_id().into(),
            user_currency: st.currency(),
            currencies: currencies(st),
            items,
            cart_size: cart_size(st),
            shipping_cost: shipping,
            total_cost: total,
            recommendations: recommendations(st),
        };
        page(st, &p)
    }
}

impl Handler for Frontend {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        let fresh = match txn.state_or_error::<BoutiqueState>("boutique") {
            Some(st) => st.depth == 0 && st.kind == 0,
            None => return Action::Reply,
        };
        let outcome = if fresh {
            match self.start(txn) {
                Ok(()) => self.run(txn.state::<BoutiqueState>().expect("checked"), 0),
                Err(answer) => answer,
            }
        } else {
            let st = txn.state::<BoutiqueState>().expect("checked");
            match entry(st, ME) {
                Entry::Resume { step } => self.run(st, step),
                _ => {
                    st.fail(500, "frontend: unexpected call");
                    self.run(st, 0)
                }
            }
        };
        match outcome {
            Outcome::Act(a) => a,
            Outcome::Respond { status, body, cookie } => {
                if let Err(e) = txn.set_response(status, "application/json", &cookie, &body) {
                    txn.set_error(500, &format!("page does not fit the slot: {e}"));
                }
                Action::Reply
            }
        }
    }
}
