//! Between the workload's types and the protobuf messages, and between
//! [`ApiError`] and gRPC status. Decoding checks what protobuf cannot
//! (currency codes, signed fields that must not be negative, required
//! sub-messages) and answers `INVALID_ARGUMENT`.

use boutique::api::{ApiError, PlaceOrderRequest, ProductMsg};
use boutique::core::cart::CartItem;
use boutique::core::money::{Currency, Money};
use boutique::core::order::{OrderItem, OrderResult};
use boutique::core::payment::CreditCard;
use boutique::core::shipping::Address;
use boutique::frontend::pages::AdView;
use tonic::{Code, Status};

use crate::pb;

/// Metadata key carrying the HTTP status the frontend answers with, so an
/// error crosses any number of gRPC hops unchanged.
const HTTP_STATUS_KEY: &str = "boutique-http-status";

pub fn to_status(e: ApiError) -> Status {
    let code = match e.status {
        400 => Code::InvalidArgument,
        402 => Code::FailedPrecondition,
        404 => Code::NotFound,
        503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Internal,
    };
    let mut status = Status::new(code, e.message);
    status.metadata_mut().insert(HTTP_STATUS_KEY, e.status.into());
    status
}

/// The error a failed call to `service` becomes. Statuses without our
/// metadata come from the transport or from decoding.
pub fn from_status(service: &str, s: Status) -> ApiError {
    let carried = s.metadata().get(HTTP_STATUS_KEY).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u16>().ok());
    match carried {
        Some(status) => ApiError::new(status, s.message()),
        None => {
            let status = match s.code() {
                Code::InvalidArgument => 400,
                Code::NotFound => 404,
                Code::DeadlineExceeded => 504,
                _ => 502,
            };
            ApiError::new(status, format!("{service}: {}", s.message()))
        }
    }
}

/// A message decoded into the workload's type, or `INVALID_ARGUMENT`.
pub trait FromPb<P>: Sized {
    fn from_pb(p: P) -> Result<Self, Status>;
}

/// Decodes a sub-message that proto3 makes optional but the RPC needs.
pub fn required<T: FromPb<P>, P>(p: Option<P>, what: &str) -> Result<T, Status> {
    T::from_pb(p.ok_or_else(|| Status::invalid_argument(format!("missing {what}")))?)
}

pub fn currency(code: &str) -> Result<Currency, Status> {
    code.parse().map_err(Status::invalid_argument)
}

fn unsigned(v: i32, what: &str) -> Result<u32, Status> {
    u32::try_from(v).map_err(|_| Status::invalid_argument(format!("{what} must not be negative")))
}

fn signed(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

pub fn decode_all<T: FromPb<P>, P>(items: Vec<P>) -> Result<Vec<T>, Status> {
    items.into_iter().map(T::from_pb).collect()
}

impl From<&Money> for pb::Money {
    fn from(m: &Money) -> Self {
        Self { currency_code: m.currency_code.to_string(), units: m.units, nanos: m.nanos }
    }
}

impl FromPb<pb::Money> for Money {
    fn from_pb(m: pb::Money) -> Result<Self, Status> {
        Ok(Money::new(currency(&m.currency_code)?, m.units, m.nanos))
    }
}

impl From<&CartItem> for pb::CartItem {
    fn from(i: &CartItem) -> Self {
        Self { product_id: i.product_id.clone(), quantity: signed(i.quantity) }
    }
}

impl FromPb<pb::CartItem> for CartItem {
    fn from_pb(i: pb::CartItem) -> Result<Self, Status> {
        Ok(CartItem { quantity: unsigned(i.quantity, "quantity")?, product_id: i.product_id })
    }
}

impl From<&Address> for pb::Address {
    fn from(a: &Address) -> Self {
        Self {
            street_address: a.street_address.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            country: a.country.clone(),
            zip_code: a.zip_code,
        }
    }
}

impl FromPb<pb::Address> for Address {
    fn from_pb(a: pb::Address) -> Result<Self, Status> {
        Ok(Address { street_address: a.street_address, city: a.city, state: a.state, country: a.country, zip_code: a.zip_code })
    }
}

impl From<&CreditCard> for pb::CreditCardInfo {
    fn from(c: &CreditCard) -> Self {
        Self {
            credit_card_number: c.number.clone(),
            credit_card_cvv: signed(c.cvv),
            credit_card_expiration_year: c.expiration_year,
            credit_card_expiration_month: signed(c.expiration_month),
        }
    }
}

impl FromPb<pb::CreditCardInfo> for CreditCard {
    fn from_pb(c: pb::CreditCardInfo) -> Result<Self, Status> {
        Ok(CreditCard {
            cvv: unsigned(c.credit_card_cvv, "cvv")?,
            expiration_month: unsigned(c.credit_card_expiration_month, "expiration month")?,
            expiration_year: c.credit_card_expiration_year,
            number: c.credit_card_number,
        })
    }
}

impl From<&ProductMsg> for pb::Product {
    fn from(p: &ProductMsg) -> Self {
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            description: p.description.clone(),
            picture: p.picture.clone(),
            price_usd: Some((&p.price_usd).into()),
            categories: p.categories.clone(),
        }
    }
}

impl FromPb<pb::Product> for ProductMsg {
    fn from_pb(p: pb::Product) -> Result<Self, Status> {
        Ok(ProductMsg {
            price_usd: required(p.price_usd, "price")?,
            id: p.id,
            name: p.name,
            description: p.description,
            picture: p.picture,
            categories: p.categories,
        })
    }
}

impl From<&OrderItem> for pb::OrderItem {
    fn from(i: &OrderItem) -> Self {
        Self { item: Some((&i.item).into()), cost: Some((&i.cost).into()) }
    }
}

impl FromPb<pb::OrderItem> for OrderItem {
    fn from_pb(i: pb::OrderItem) -> Result<Self, Status> {
        Ok(OrderItem { item: required(i.item, "order item")?, cost: required(i.cost, "item cost")? })
    }
}

impl From<&OrderResult> for pb::OrderResult {
    fn from(o: &OrderResult) -> Self {
        Self {
            order_id: o.order_id.clone(),
            shipping_tracking_id: o.shipping_tracking_id.clone(),
            shipping_cost: Some((&o.shipping_cost).into()),
            shipping_address: Some((&o.shipping_address).into()),
            items: o.items.iter().map(Into::into).collect(),
            total: Some((&o.total).into()),
        }
    }
}

impl FromPb<pb::OrderResult> for OrderResult {
    fn from_pb(o: pb::OrderResult) -> Result<Self, Status> {
        Ok(OrderResult {
            shipping_cost: required(o.shipping_cost, "shipping cost")?,
            shipping_address: required(o.shipping_address, "shipping address")?,
            items: decode_all(o.items)?,
            total: required(o.total, "order total")?,
            order_id: o.order_id,
            shipping_tracking_id: o.shipping_tracking_id,
        })
    }
}

impl From<&PlaceOrderRequest> for pb::PlaceOrderRequest {
    fn from(r: &PlaceOrderRequest) -> Self {
        Self {
            user_id: r.user_id.clone(),
            user_currency: r.user_currency.to_string(),
            address: Some((&r.address).into()),
            email: r.email.clone(),
            credit_card: Some((&r.credit_card).into()),
        }
    }
}

impl FromPb<pb::PlaceOrderRequest> for PlaceOrderRequest {
    fn from_pb(r: pb::PlaceOrderRequest) -> Result<Self, Status> {
        Ok(PlaceOrderRequest {
            user_currency: currency(&r.user_currency)?,
            address: required(r.address, "address")?,
            credit_card: required(r.credit_card, "credit card")?,
            user_id: r.user_id,
            email: r.email,
        })
    }
}

impl From<&AdView> for pb::Ad {
    fn from(a: &AdView) -> Self {
        Self { redirect_url: a.redirect_url.clone(), text: a.text.clone() }
    }
}

impl FromPb<pb::Ad> for AdView {
    fn from_pb(a: pb::Ad) -> Result<Self, Status> {
        Ok(AdView { redirect_url: a.redirect_url, text: a.text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_cross_grpc_unchanged() {
        for status in [400, 402, 404, 500, 502, 503, 504] {
            let e = ApiError::new(status, "payment declined: card expired");
            assert_eq!(from_status("payment", to_status(e.clone())), e);
        }
    }

    #[test]
    fn transport_failures_become_bad_gateway() {
        let e = from_status("cart", Status::unavailable("connection refused"));
        assert_eq!(e, ApiError::new(502, "cart: connection refused"));
    }

    #[test]
    fn negative_quantities_and_bad_currencies_are_rejected() {
        let bad = pb::CartItem { product_id: "OLJCESPC7Z".into(), quantity: -1 };
        assert_eq!(CartItem::from_pb(bad).unwrap_err().code(), Code::InvalidArgument);
        let bad = pb::Money { currency_code: "usd".into(), units: 1, nanos: 0 };
        assert_eq!(Money::from_pb(bad).unwrap_err().code(), Code::InvalidArgument);
    }
}
