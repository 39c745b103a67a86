//! The nine services behind the frontend, each a SPRIGHT function.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use spright::sdk::{Action, Handler};
use spright::txn::Txn;

use super::method::*;
use super::state::{get, put, BoutiqueState, MoneyRec, MAX_ADS, MAX_CURRENCIES};
use super::{call, entry, finish, with_state, Entry};
use crate::core::cart::{CartError, CartStore};
use crate::core::catalog::{get_product, list_products};
use crate::core::email::render_confirmation;
use crate::core::money::CurrencyTable;
use crate::core::order::{order_id, order_total, OrderItem, OrderResult};
use crate::core::payment::{charge, current_year_month, CreditCard};
use crate::core::recommendation::recommend;
use crate::core::shipping::{get_quote, ship_order, Address};
use crate::core::{ads, cart::MAX_CART_LINES};
use crate::ids;

fn invalid(st: &mut BoutiqueState, who: &str) -> Action {
    st.fail(500, &format!("{who}: unexpected call"));
    finish(st)
}

#[derive(Default)]
pub struct CurrencyService {
    table: CurrencyTable,
}

impl Handler for CurrencyService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::CURRENCY) {
            Entry::Serve { method: GET_SUPPORTED_CURRENCIES } => {
                let all = self.table.supported();
                let n = all.len().min(MAX_CURRENCIES);
                for (dst, c) in st.currencies.iter_mut().zip(&all[..n]) {
                    BoutiqueState::set_currency_field(dst, *c);
                }
                st.n_currencies = n as u32;
                finish(st)
            }
            Entry::Serve { method: CONVERT } => {
                let to = get(&st.arg_currency).parse();
                match to.map_err(|e: String| e).and_then(|to| self.table.convert(&st.arg_money.to_money(), to).map_err(|e| e.to_string())) {
                    Ok(m) => st.ret_money = MoneyRec::from_money(&m),
                    Err(e) => st.fail(400, &format!("currency conversion failed: {e}")),
                }
                finish(st)
            }
            _ => invalid(st, "currency"),
        })
    }
}

pub struct CatalogService;

impl Handler for CatalogService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::PRODUCT_CATALOG) {
            Entry::Serve { method: LIST_PRODUCTS } => {
                let all = list_products();
                for (rec, p) in st.products.iter_mut().zip(all) {
                    rec.set(p);
                }
                st.n_products = all.len().min(st.products.len()) as u32;
                finish(st)
            }
            Entry::Serve { method: GET_PRODUCT } => {
                let id = get(&st.arg_product).to_string();
                match get_product(&id) {
                    Some(p) => st.ret_product.set(p),
                    None => st.fail(404, &format!("no product with id {id}")),
                }
                finish(st)
            }
            _ => invalid(st, "catalog"),
        })
    }
}

#[derive(Default)]
pub struct CartService {
    store: CartStore,
}

impl Handler for CartService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| {
            let user = st.user_id().to_string();
            match entry(st, ids::CART) {
                Entry::Serve { method: ADD_ITEM } => {
                    let product = get(&st.arg_product).to_string();
                    match self.store.add_item(&user, &product, st.quantity) {
                        Ok(()) => {}
                        Err(CartError::TooManyLines) => {
                            st.fail(400, &format!("the cart holds at most {MAX_CART_LINES} different products"))
                        }
                        Err(CartError::QuantityOutOfRange) => st.fail(400, "quantity out of range"),
                    }
                    finish(st)
                }
                Entry::Serve { method: GET_CART } => {
                    st.set_cart(&self.store.get_cart(&user));
                    finish(st)
                }
                Entry::Serve { method: EMPTY_CART } => {
                    self.store.empty_cart(&user);
                    finish(st)
                }
                _ => invalid(st, "cart"),
            }
        })
    }
}

/// ListRecommendations calls the catalog's ListProducts itself (a function
/// calling a function).
pub struct RecommendationService;

impl Handler for RecommendationService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::RECOMMENDATION) {
            Entry::Serve { method: LIST_RECOMMENDATIONS } => call(st, ids::RECOMMENDATION, ids::PRODUCT_CATALOG, LIST_PRODUCTS, 1),
            Entry::Resume { step: 1 } => {
                if st.error_status == 0 {
                    let all: Vec<String> = st.products[..st.n_products as usize].iter().map(|p| get(&p.id).to_string()).collect();
                    let exclude: Vec<String> =
                        st.exclude[..(st.n_exclude as usize).min(MAX_CART_LINES)].iter().map(|e| get(e).to_string()).collect();
                    let all_refs: Vec<&str> = all.iter().map(String::as_str).collect();
                    let ex_refs: Vec<&str> = exclude.iter().map(String::as_str).collect();
                    let recs = recommend(st.user_id(), &all_refs, &ex_refs);
                    for (dst, r) in st.recommendations.iter_mut().zip(&recs) {
                        put(dst, r);
                    }
                    st.n_recommendations = recs.len() as u32;
                }
                finish(st)
            }
            _ => invalid(st, "recommendation"),
        })
    }
}

fn address(st: &BoutiqueState) -> Address {
    Address {
        street_address: get(&st.street).into(),
        city: get(&st.city).into(),
        state: get(&st.region).into(),
        country: get(&st.country).into(),
        zip_code: st.zip,
    }
}

pub struct ShippingService;

impl Handler for ShippingService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::SHIPPING) {
            Entry::Serve { method: GET_QUOTE } => {
                let count: u32 = st.cart_items().iter().map(|i| i.quantity).sum();
                st.ret_money = MoneyRec::from_money(&get_quote(count));
                finish(st)
            }
            Entry::Serve { method: SHIP_ORDER } => {
                let tracking = ship_order(&address(st), get(&st.order_id));
                put(&mut st.tracking_id, &tracking);
                finish(st)
            }
            _ => invalid(st, "shipping"),
        })
    }
}

pub struct PaymentService;

impl Handler for PaymentService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::PAYMENT) {
            Entry::Serve { method: CHARGE } => {
                let card = CreditCard {
                    number: get(&st.card_number).into(),
                    cvv: st.card_cvv,
                    expiration_year: st.card_year,
                    expiration_month: st.card_month,
                };
                match charge(&card, &st.arg_money.to_money(), get(&st.order_id), current_year_month()) {
                    Ok(tx) => put(&mut st.transaction_id, &tx),
                    Err(e) => st.fail(402, &format!("payment declined: {e}")),
                }
                finish(st)
            }
            _ => invalid(st, "payment"),
        })
    }
}

/// The order as the state holds it (for the confirmation and the page).
pub fn order_from_state(st: &BoutiqueState) -> OrderResult {
    let items =
        st.cart_items().into_iter().zip(st.line_prices.iter()).map(|(item, price)| OrderItem { item, cost: price.to_money() }).collect();
    OrderResult {
        order_id: get(&st.order_id).into(),
        shipping_tracking_id: get(&st.tracking_id).into(),
        shipping_cost: st.shipping_cost.to_money(),
        shipping_address: address(st),
        items,
        total: st.total.to_money(),
    }
}

#[derive(Default)]
pub struct EmailService {
    sent: AtomicU64,
}

impl Handler for EmailService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::EMAIL) {
            Entry::Serve { method: SEND_ORDER_CONFIRMATION } => {
                let text = render_confirmation(get(&st.email), &order_from_state(st));
                // Rendered, not sent: keep the work observable.
                std::hint::black_box(text);
                self.sent.fetch_add(1, Ordering::Relaxed);
                finish(st)
            }
            _ => invalid(st, "email"),
        })
    }
}

pub struct AdService;

impl Handler for AdService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::AD) {
            Entry::Serve { method: GET_ADS } => {
                let context: Vec<String> = get(&st.ad_context).split(',').filter(|c| !c.is_empty()).map(str::to_string).collect();
                let ctx: Vec<&str> = context.iter().map(String::as_str).collect();
                let found = ads::get_ads(&ctx, st.user_id());
                let n = found.len().min(MAX_ADS);
                for (rec, ad) in st.ads.iter_mut().zip(&found[..n]) {
                    put(&mut rec.redirect_url, ad.redirect_url);
                    put(&mut rec.text, ad.text);
                }
                st.n_ads = n as u32;
                finish(st)
            }
            _ => invalid(st, "ad"),
        })
    }
}

/// PlaceOrder: cart -> per line product and conversion -> shipping quote and
/// conversion -> charge -> ship -> empty cart -> confirmation email. A
/// declined card stops before anything is shipped or emptied.
#[derive(Default)]
pub struct CheckoutService {
    orders_per_user: Mutex<HashMap<String, u64>>,
}

mod co {
    pub const GOT_CART: u16 = 1;
    pub const GOT_PRODUCT: u16 = 2;
    pub const CONVERTED_LINE: u16 = 3;
    pub const GOT_QUOTE: u16 = 4;
    pub const CONVERTED_SHIPPING: u16 = 5;
    pub const CHARGED: u16 = 6;
    pub const SHIPPED: u16 = 7;
    pub const EMPTIED: u16 = 8;
    pub const EMAILED: u16 = 9;
}

impl CheckoutService {
    fn next_order_number(&self, user: &str) -> u64 {
        let mut m = self.orders_per_user.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(user.to_string()).or_default();
        *n += 1;
        *n
    }

    /// Requests the next line's product, or moves on to shipping.
    fn next_line(&self, st: &mut BoutiqueState) -> Action {
        let i = st.co_i as usize;
        if i < st.n_cart as usize {
            st.arg_product = st.cart[i].product_id;
            call(st, ids::CHECKOUT, ids::PRODUCT_CATALOG, GET_PRODUCT, co::GOT_PRODUCT)
        } else {
            call(st, ids::CHECKOUT, ids::SHIPPING, GET_QUOTE, co::GOT_QUOTE)
        }
    }

    fn step(&self, st: &mut BoutiqueState, step: u16) -> Action {
        if st.error_status != 0 {
            return finish(st);
        }
        let me = ids::CHECKOUT;
        match step {
            co::GOT_CART => {
                if st.n_cart == 0 {
                    st.fail(400, "cannot place an order: the cart is empty");
                    return finish(st);
                }
                st.co_i = 0;
                self.next_line(st)
            }
            co::GOT_PRODUCT => {
                let i = st.co_i as usize;
                st.line_products[i] = st.ret_product;
                st.arg_money = st.ret_product.price;
                st.arg_currency = st.currency;
                call(st, me, ids::CURRENCY, CONVERT, co::CONVERTED_LINE)
            }
            co::CONVERTED_LINE => {
                st.line_prices[st.co_i as usize] = st.ret_money;
                st.co_i += 1;
                self.next_line(st)
            }
            co::GOT_QUOTE => {
                st.arg_money = st.ret_money;
                st.arg_currency = st.currency;
                call(st, me, ids::CURRENCY, CONVERT, co::CONVERTED_SHIPPING)
            }
            co::CONVERTED_SHIPPING => {
                st.shipping_cost = st.ret_money;
                let items: Vec<OrderItem> = st
                    .cart_items()
                    .into_iter()
                    .zip(st.line_prices.iter())
                    .map(|(item, p)| OrderItem { item, cost: p.to_money() })
                    .collect();
                let total = match order_total(&st.shipping_cost.to_money(), &items) {
                    Ok(t) => t,
                    Err(e) => {
                        st.fail(400, &format!("order total: {e}"));
                        return finish(st);
                    }
                };
                st.total = MoneyRec::from_money(&total);
                let user = st.user_id().to_string();
                let id = order_id(&user, self.next_order_number(&user), &st.cart_items());
                put(&mut st.order_id, &id);
                st.arg_money = st.total;
                call(st, me, ids::PAYMENT, CHARGE, co::CHARGED)
            }
            co::CHARGED => call(st, me, ids::SHIPPING, SHIP_ORDER, co::SHIPPED),
            co::SHIPPED => call(st, me, ids::CART, EMPTY_CART, co::EMPTIED),
            co::EMPTIED => call(st, me, ids::EMAIL, SEND_ORDER_CONFIRMATION, co::EMAILED),
            co::EMAILED => finish(st),
            _ => invalid(st, "checkout"),
        }
    }
}

impl Handler for CheckoutService {
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        with_state(txn, |st| match entry(st, ids::CHECKOUT) {
            Entry::Serve { method: PLACE_ORDER } => call(st, ids::CHECKOUT, ids::CART, GET_CART, co::GOT_CART),
            Entry::Resume { step } => self.step(st, step),
            _ => invalid(st, "checkout"),
        })
    }
}
