//! Shipping: a flat quote and a tracking id derived from the address.

use serde::{Deserialize, Serialize};

use super::ids::fnv1a;
use super::money::{Currency, Money};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub street_address: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub zip_code: i32,
}

/// 8.99 USD when the cart holds at least one item, else 0.
pub fn get_quote(item_count: u32) -> Money {
    if item_count > 0 {
        Money::new(Currency::USD, 8, 990_000_000)
    } else {
        Money::zero(Currency::USD)
    }
}

/// A tracking id like `AB-12345-67890123`, derived from the address and the
/// order it ships (so two orders to one address differ).
pub fn ship_order(address: &Address, order_id: &str) -> String {
    let h = fnv1a(&[
        address.street_address.as_bytes(),
        address.city.as_bytes(),
        address.state.as_bytes(),
        address.country.as_bytes(),
        &address.zip_code.to_le_bytes(),
        order_id.as_bytes(),
    ]);
    let l1 = (b'A' + (h % 26) as u8) as char;
    let l2 = (b'A' + ((h >> 8) % 26) as u8) as char;
    format!("{l1}{l2}-{:05}-{:08}", (h >> 16) % 100_000, (h >> 33) % 100_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> Address {
        Address {
            street_address: "1600 Amphitheatre Parkway".into(),
            city: "Mountain View".into(),
            state: "CA".into(),
            country: "United States".into(),
            zip_code: 94043,
        }
    }

    #[test]
    fn quote_and_tracking() {
        assert_eq!(get_quote(0), Money::zero(Currency::USD));
        assert_eq!(get_quote(3).to_decimal_string(), "8.99");
        let t = ship_order(&addr(), "order-1");
        assert_eq!(t.len(), 17, "{t}");
        assert_eq!(t, ship_order(&addr(), "order-1"));
        assert_ne!(t, ship_order(&addr(), "order-2"));
    }
}
