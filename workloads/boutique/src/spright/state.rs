//! The Online Boutique transaction as it lives in the slot: one
//! `#[repr(C)]` struct in the chain's app area, read and written in place by
//! all ten functions (no serialization inside the chain).
//!
//! Strings are fixed-size, NUL-padded byte arrays; they are validated before
//! they are stored, so they never contain NUL.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::core::cart::{CartItem, MAX_CART_LINES};
use crate::core::catalog::Product;
use crate::core::money::{Currency, Money};
use crate::core::recommendation::MAX_RECOMMENDATIONS;

/// Writes `s` into `dst`, truncated to fit, NUL-padded.
pub fn put(dst: &mut [u8], s: &str) {
    let n = s.len().min(dst.len());
    dst[..n].copy_from_slice(&s.as_bytes()[..n]);
    dst[n..].fill(0);
}

/// The string in `src` (up to the first NUL; empty if not UTF-8).
pub fn get(src: &[u8]) -> &str {
    let end = src.iter().position(|&b| b == 0).unwrap_or(src.len());
    std::str::from_utf8(&src[..end]).unwrap_or("")
}

#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct MoneyRec {
    pub units: i64,
    pub nanos: i32,
    pub currency: [u8; 4],
}

impl MoneyRec {
    pub fn from_money(m: &Money) -> Self {
        let c = m.currency_code.bytes();
        Self { units: m.units, nanos: m.nanos, currency: [c[0], c[1], c[2], 0] }
    }

    pub fn to_money(self) -> Money {
        let currency = get(&self.currency).parse().unwrap_or(Currency::USD);
        Money { currency_code: currency, units: self.units, nanos: self.nanos }
    }
}

#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct ProductRec {
    pub id: [u8; 16],
    pub name: [u8; 32],
    pub description: [u8; 128],
    pub picture: [u8; 64],
    /// Comma-separated.
    pub categories: [u8; 32],
    pub price: MoneyRec,
}

impl ProductRec {
    pub fn set(&mut self, p: &Product) {
        put(&mut self.id, p.id);
        put(&mut self.name, p.name);
        put(&mut self.description, p.description);
        put(&mut self.picture, p.picture);
        put(&mut self.categories, &p.categories.join(","));
        self.price = MoneyRec::from_money(&p.price_usd);
    }

    pub fn categories(&self) -> Vec<&str> {
        get(&self.categories).split(',').filter(|c| !c.is_empty()).collect()
    }
}

#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct CartLine {
    pub product_id: [u8; 16],
    pub quantity: u32,
    pub _pad: u32,
}

#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct AdRec {
    pub redirect_url: [u8; 32],
    pub text: [u8; 64],
}

/// A call in progress: `caller` asked `callee` to run `method`; when the
/// callee is done it sets `done` and sends the descriptor back, and the
/// caller resumes at `ret_step`.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Frame {
    pub caller: u16,
    pub callee: u16,
    pub method: u16,
    pub ret_step: u16,
    pub done: u16,
    pub _pad: [u16; 3],
}

pub const MAX_DEPTH: usize = 4;
pub const MAX_CURRENCIES: usize = 16;
pub const MAX_ADS: usize = 2;
pub const CATALOG_SIZE: usize = 9;

/// Request kinds (0 = the frontend has not parsed the request yet).
pub mod kind {
    pub const HOME: u16 = 1;
    pub const PRODUCT: u16 = 2;
    pub const VIEW_CART: u16 = 3;
    pub const ADD_TO_CART: u16 = 4;
    pub const CHECKOUT: u16 = 5;
}

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct BoutiqueState {
    // Control.
    pub kind: u16,
    pub depth: u16,
    /// Non-zero: a service failed the request with this HTTP status.
    pub error_status: u16,
    pub session_new: u16,
    /// Loop index of the frontend / of checkout.
    pub i: u32,
    pub co_i: u32,
    pub frames: [Frame; MAX_DEPTH],
    pub error_message: [u8; 128],

    // Session and request.
    pub user_id: [u8; 64],
    pub currency: [u8; 4],
    pub quantity: u32,
    pub product_id: [u8; 16],
    pub email: [u8; 128],
    pub street: [u8; 64],
    pub city: [u8; 32],
    pub region: [u8; 32],
    pub country: [u8; 32],
    pub card_number: [u8; 24],
    pub zip: i32,
    pub card_month: u32,
    pub card_year: i32,
    pub card_cvv: u32,

    // Call registers.
    pub arg_money: MoneyRec,
    pub ret_money: MoneyRec,
    pub arg_currency: [u8; 4],
    pub n_exclude: u32,
    pub arg_product: [u8; 16],
    pub exclude: [[u8; 16]; MAX_CART_LINES],
    pub ad_context: [u8; 32],
    pub ret_product: ProductRec,

    // Page data.
    pub n_currencies: u32,
    pub n_products: u32,
    pub currencies: [[u8; 4]; MAX_CURRENCIES],
    pub products: [ProductRec; CATALOG_SIZE],
    pub n_cart: u32,
    pub n_recommendations: u32,
    pub cart: [CartLine; MAX_CART_LINES],
    pub line_products: [ProductRec; MAX_CART_LINES],
    pub line_prices: [MoneyRec; MAX_CART_LINES],
    pub recommendations: [[u8; 16]; MAX_RECOMMENDATIONS],
    pub n_ads: u32,
    pub _pad0: u32,
    pub ads: [AdRec; MAX_ADS],
    pub shipping_cost: MoneyRec,
    pub total: MoneyRec,
    pub order_id: [u8; 40],
    pub tracking_id: [u8; 24],
    pub transaction_id: [u8; 40],
}

impl BoutiqueState {
    pub fn user_id(&self) -> &str {
        get(&self.user_id)
    }

    pub fn currency(&self) -> Currency {
        get(&self.currency).parse().unwrap_or(Currency::USD)
    }

    pub fn set_currency_field(dst: &mut [u8; 4], c: Currency) {
        let b = c.bytes();
        *dst = [b[0], b[1], b[2], 0];
    }

    pub fn cart_items(&self) -> Vec<CartItem> {
        self.cart[..(self.n_cart as usize).min(MAX_CART_LINES)]
            .iter()
            .map(|l| CartItem { product_id: get(&l.product_id).to_string(), quantity: l.quantity })
            .collect()
    }

    pub fn set_cart(&mut self, items: &[CartItem]) {
        let n = items.len().min(MAX_CART_LINES);
        for (line, item) in self.cart.iter_mut().zip(&items[..n]) {
            put(&mut line.product_id, &item.product_id);
            line.quantity = item.quantity;
        }
        self.n_cart = n as u32;
    }

    pub fn fail(&mut self, status: u16, message: &str) {
        self.error_status = status;
        put(&mut self.error_message, message);
    }

    pub fn top(&self) -> Option<Frame> {
        (self.depth as usize).checked_sub(1).and_then(|i| self.frames.get(i)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_money_round_trip() {
        let mut b = [0u8; 8];
        put(&mut b, "abc");
        assert_eq!(get(&b), "abc");
        put(&mut b, "0123456789");
        assert_eq!(get(&b), "01234567", "truncated to fit");
        let m = Money::new("JPY".parse().unwrap(), 2235, 60_592_658);
        assert_eq!(MoneyRec::from_money(&m).to_money(), m);
    }

    #[test]
    fn fits_a_modest_app_area() {
        assert!(std::mem::size_of::<BoutiqueState>() <= 16 << 10, "{}", std::mem::size_of::<BoutiqueState>());
    }
}
