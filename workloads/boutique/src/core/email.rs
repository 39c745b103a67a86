//! Order confirmation email: rendered, not sent.

use super::catalog::get_product;
use super::order::OrderResult;

/// The confirmation text for `order`, addressed to `email`.
pub fn render_confirmation(email: &str, order: &OrderResult) -> String {
    let mut s = format!(
        "To: {email}\nSubject: Your Online Boutique order {}\n\nThank you for your order.\nTracking id: {}\nShipping: {}\n\n",
        order.order_id, order.shipping_tracking_id, order.shipping_cost
    );
    for line in &order.items {
        let name = get_product(&line.item.product_id).map(|p| p.name).unwrap_or("(unknown product)");
        s.push_str(&format!("  {} x {} @ {}\n", line.item.quantity, name, line.cost));
    }
    s.push_str(&format!(
        "\nTotal: {}\nShipping to: {}, {}, {} {}, {}\n",
        order.total,
        order.shipping_address.street_address,
        order.shipping_address.city,
        order.shipping_address.state,
        order.shipping_address.zip_code,
        order.shipping_address.country
    ));
    s
}
