//! Carts per user: adding merges quantities, emptying clears. Thread-safe.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartItem {
    pub product_id: String,
    pub quantity: u32,
}

/// Longest cart a user can have (distinct products); bounded so fixed
/// layouts (the SPRIGHT slot) can hold any cart.
pub const MAX_CART_LINES: usize = 16;
/// Largest quantity of one line.
pub const MAX_QUANTITY: u32 = 1_000;

#[derive(Debug, PartialEq, Eq)]
pub enum CartError {
    TooManyLines,
    QuantityOutOfRange,
}

#[derive(Default)]
pub struct CartStore {
    carts: Mutex<HashMap<String, Vec<CartItem>>>,
}

impl CartStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `quantity` of a product to the user's cart, merging with an
    /// existing line (lines keep their first-added order).
    pub fn add_item(&self, user_id: &str, product_id: &str, quantity: u32) -> Result<(), CartError> {
        if quantity == 0 || quantity > MAX_QUANTITY {
            return Err(CartError::QuantityOutOfRange);
        }
        let mut carts = self.carts.lock().unwrap_or_else(|p| p.into_inner());
        let cart = carts.entry(user_id.to_string()).or_default();
        if let Some(line) = cart.iter_mut().find(|l| l.product_id == product_id) {
            if line.quantity + quantity > MAX_QUANTITY {
                return Err(CartError::QuantityOutOfRange);
            }
            line.quantity += quantity;
            return Ok(());
        }
        if cart.len() >= MAX_CART_LINES {
            return Err(CartError::TooManyLines);
        }
        cart.push(CartItem { product_id: product_id.to_string(), quantity });
        Ok(())
    }

    pub fn get_cart(&self, user_id: &str) -> Vec<CartItem> {
        self.carts.lock().unwrap_or_else(|p| p.into_inner()).get(user_id).cloned().unwrap_or_default()
    }

    pub fn empty_cart(&self, user_id: &str) {
        self.carts.lock().unwrap_or_else(|p| p.into_inner()).remove(user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn merges_and_empties() {
        let s = CartStore::new();
        s.add_item("u", "A", 1).unwrap();
        s.add_item("u", "B", 2).unwrap();
        s.add_item("u", "A", 3).unwrap();
        assert_eq!(
            s.get_cart("u"),
            vec![CartItem { product_id: "A".into(), quantity: 4 }, CartItem { product_id: "B".into(), quantity: 2 }]
        );
        assert!(s.get_cart("other").is_empty());
        s.empty_cart("u");
        assert!(s.get_cart("u").is_empty());
        assert_eq!(s.add_item("u", "A", 0), Err(CartError::QuantityOutOfRange));
        assert_eq!(s.add_item("u", "A", MAX_QUANTITY + 1), Err(CartError::QuantityOutOfRange));
    }

    #[test]
    fn concurrent_adds_are_not_lost() {
        let s = Arc::new(CartStore::new());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..100 {
                        s.add_item("shared", ["A", "B", "C"][i % 3], 1).unwrap();
                        s.add_item(&format!("own{t}"), "A", 1).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let total: u32 = s.get_cart("shared").iter().map(|l| l.quantity).sum();
        assert_eq!(total, 800);
        assert_eq!(s.get_cart("own3")[0].quantity, 100);
    }

    #[test]
    fn lines_are_bounded() {
        let s = CartStore::new();
        for i in 0..MAX_CART_LINES {
            s.add_item("u", &format!("P{i}"), 1).unwrap();
        }
        assert_eq!(s.add_item("u", "ONE-MORE", 1), Err(CartError::TooManyLines));
        s.add_item("u", "P0", 1).unwrap();
    }
}
