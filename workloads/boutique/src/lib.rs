//! Online Boutique: 10 functions (frontend, currency, product catalog, cart,
//! recommendation, shipping, checkout, payment, email, ad).
//!
//! [`core`] is the business logic, written once and shared by every mode.

pub mod api;
pub mod core;
pub mod frontend;
pub mod rpc;
pub mod script;
pub mod spright;

/// Function ids, as in docs/workloads.md (the gateway is 0).
pub mod ids {
    pub const FRONTEND: u16 = 1;
    pub const CURRENCY: u16 = 2;
    pub const PRODUCT_CATALOG: u16 = 3;
    pub const CART: u16 = 4;
    pub const RECOMMENDATION: u16 = 5;
    pub const SHIPPING: u16 = 6;
    pub const CHECKOUT: u16 = 7;
    pub const PAYMENT: u16 = 8;
    pub const EMAIL: u16 = 9;
    pub const AD: u16 = 10;
}
