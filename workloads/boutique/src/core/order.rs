//! The order a checkout produces, and its totals.

use serde::{Deserialize, Serialize};

use super::cart::CartItem;
use super::ids::uuid_like;
use super::money::{Money, MoneyError};
use super::shipping::Address;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub item: CartItem,
    /// Unit price in the user's currency.
    pub cost: Money,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub order_id: String,
    pub shipping_tracking_id: String,
    pub shipping_cost: Money,
    pub shipping_address: Address,
    pub items: Vec<OrderItem>,
    pub total: Money,
}

/// Shipping plus every line's unit cost times quantity.
pub fn order_total(shipping: &Money, items: &[OrderItem]) -> Result<Money, MoneyError> {
    items.iter().try_fold(*shipping, |acc, line| acc.checked_add(&line.cost.checked_mul(line.item.quantity)?))
}

/// The order id: derived from the user, their order count and the cart.
pub fn order_id(user_id: &str, order_number: u64, items: &[CartItem]) -> String {
    let mut parts: Vec<Vec<u8>> = vec![b"order".to_vec(), user_id.as_bytes().to_vec(), order_number.to_le_bytes().to_vec()];
    for i in items {
        parts.push(i.product_id.as_bytes().to_vec());
        parts.push(i.quantity.to_le_bytes().to_vec());
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    uuid_like(&refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::money::Currency;

    #[test]
    fn totals_and_ids() {
        let line = |id: &str, q, units, nanos| OrderItem {
            item: CartItem { product_id: id.into(), quantity: q },
            cost: Money::new(Currency::USD, units, nanos),
        };
        let items = [line("A", 2, 19, 990_000_000), line("B", 1, 5, 490_000_000)];
        let total = order_total(&Money::new(Currency::USD, 8, 990_000_000), &items).unwrap();
        assert_eq!(total.to_decimal_string(), "54.46");
        let cart: Vec<CartItem> = items.iter().map(|i| i.item.clone()).collect();
        assert_eq!(order_id("u", 1, &cart), order_id("u", 1, &cart));
        assert_ne!(order_id("u", 1, &cart), order_id("u", 2, &cart));
    }
}
