//! The JSON page models every mode renders (byte-identical across modes).

use serde::{Deserialize, Serialize};

use crate::core::catalog::Product;
use crate::core::money::{Currency, Money};
use crate::core::order::OrderResult;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProductView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub picture: String,
    pub categories: Vec<String>,
    /// In the user's currency.
    pub price: Money,
}

impl ProductView {
    pub fn new(p: &Product, price: Money) -> Self {
        Self {
            id: p.id.into(),
            name: p.name.into(),
            description: p.description.into(),
            picture: p.picture.into(),
            categories: p.categories.iter().map(|c| c.to_string()).collect(),
            price,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdView {
    pub redirect_url: String,
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct HomePage {
    pub session_id: String,
    pub user_currency: Currency,
    pub currencies: Vec<Currency>,
    pub products: Vec<ProductView>,
    pub cart_size: u32,
    pub ads: Vec<AdView>,
}

#[derive(Debug, Serialize)]
pub struct ProductPage {
    pub session_id: String,
    pub user_currency: Currency,
    pub currencies: Vec<Currency>,
    pub product: ProductView,
    pub cart_size: u32,
    pub recommendations: Vec<String>,
    pub ads: Vec<AdView>,
}

#[derive(Debug, Serialize)]
pub struct CartLineView {
    pub product_id: String,
    pub name: String,
    pub picture: String,
    pub quantity: u32,
    /// Unit price times quantity, in the user's currency.
    pub price: Money,
}

#[derive(Debug, Serialize)]
pub struct CartPage {
    pub session_id: String,
    pub user_currency: Currency,
    pub currencies: Vec<Currency>,
    pub items: Vec<CartLineView>,
    pub cart_size: u32,
    pub shipping_cost: Money,
    pub total_cost: Money,
    pub recommendations: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AddedToCart {
    pub session_id: String,
    pub product_id: String,
    pub quantity: u32,
}

#[derive(Debug, Serialize)]
pub struct CurrencySet {
    pub session_id: String,
    pub user_currency: Currency,
}

#[derive(Debug, Serialize)]
pub struct OrderPage {
    pub session_id: String,
    pub user_currency: Currency,
    pub currencies: Vec<Currency>,
    pub order: OrderResult,
    pub recommendations: Vec<String>,
}

/// The response body for a page: one JSON message (`spright::wire::json`).
pub fn to_json<T: Serialize>(page: &T) -> Vec<u8> {
    spright::wire::json::to_vec(page).expect("page models always serialize")
}
