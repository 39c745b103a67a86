//! Online Boutique's RPCs as JSON messages: what a service receives and
//! answers when the transport is HTTP + JSON (the Knative-style baseline).
//! Transport-free: [`dispatch`] runs one RPC on a service's [`Backend`];
//! [`service_of`] names the service that owns a method.

use serde::{Deserialize, Serialize};
use spright::wire::json;

use crate::api::{ApiError, ApiResult, Backend, BoutiqueApi, PlaceOrderRequest, ProductMsg};
use crate::core::cart::CartItem;
use crate::core::money::{Currency, Money};
use crate::core::order::OrderResult;
use crate::core::payment::CreditCard;
use crate::core::shipping::Address;
use crate::frontend::pages::AdView;

#[derive(Serialize, Deserialize)]
pub struct Empty {}

#[derive(Serialize, Deserialize)]
pub struct Currencies {
    pub currency_codes: Vec<Currency>,
}

#[derive(Serialize, Deserialize)]
pub struct ConvertRequest {
    pub from: Money,
    pub to_code: Currency,
}

#[derive(Serialize, Deserialize)]
pub struct Products {
    pub products: Vec<ProductMsg>,
}

#[derive(Serialize, Deserialize)]
pub struct ProductId {
    pub id: String,
}

#[derive(Serialize, Deserialize)]
pub struct AddItemRequest {
    pub user_id: String,
    pub item: CartItem,
}

#[derive(Serialize, Deserialize)]
pub struct UserId {
    pub user_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub user_id: String,
    pub items: Vec<CartItem>,
}

#[derive(Serialize, Deserialize)]
pub struct RecommendationsRequest {
    pub user_id: String,
    pub product_ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct ProductIds {
    pub product_ids: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct QuoteRequest {
    pub address: Option<Address>,
    pub items: Vec<CartItem>,
}

#[derive(Serialize, Deserialize)]
pub struct Quote {
    pub cost_usd: Money,
}

#[derive(Serialize, Deserialize)]
pub struct ShipOrderRequest {
    pub address: Address,
    pub items: Vec<CartItem>,
    pub order_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Tracking {
    pub tracking_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Order {
    pub order: OrderResult,
}

#[derive(Serialize, Deserialize)]
pub struct ChargeRequest {
    pub amount: Money,
    pub credit_card: CreditCard,
    pub order_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_id: String,
}

#[derive(Serialize, Deserialize)]
pub struct EmailRequest {
    pub email: String,
    pub order: OrderResult,
}

#[derive(Serialize, Deserialize)]
pub struct AdRequest {
    pub context_keys: Vec<String>,
    pub seed: String,
}

#[derive(Serialize, Deserialize)]
pub struct Ads {
    pub ads: Vec<AdView>,
}

/// Services and their methods (Google's names).
pub const METHODS: &[(&str, &str)] = &[
    ("currency", "GetSupportedCurrencies"),
    ("currency", "Convert"),
    ("productcatalog", "ListProducts"),
    ("productcatalog", "GetProduct"),
    ("cart", "AddItem"),
    ("cart", "GetCart"),
    ("cart", "EmptyCart"),
    ("recommendation", "ListRecommendations"),
    ("shipping", "GetQuote"),
    ("shipping", "ShipOrder"),
    ("checkout", "PlaceOrder"),
    ("payment", "Charge"),
    ("email", "SendOrderConfirmation"),
    ("ad", "GetAds"),
];

/// The service that serves `method`.
pub fn service_of(method: &str) -> Option<&'static str> {
    METHODS.iter().find(|(_, m)| *m == method).map(|(s, _)| *s)
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> ApiResult<T> {
    json::from_slice(body).map_err(|e| ApiError::new(400, format!("malformed request: {e}")))
}

fn encode<T: Serialize>(v: &T) -> ApiResult<Vec<u8>> {
    Ok(json::to_vec(v).expect("serializable"))
}

/// Runs `method` of `service` on `backend`; calls it makes to other
/// services go through `api`.
pub async fn dispatch<A: BoutiqueApi>(backend: &Backend, api: &A, service: &str, method: &str, body: &[u8]) -> ApiResult<Vec<u8>> {
    if service_of(method) != Some(service) {
        return Err(ApiError::new(404, format!("service {service} has no method {method}")));
    }
    match method {
        "GetSupportedCurrencies" => encode(&Currencies { currency_codes: backend.get_supported_currencies() }),
        "Convert" => {
            let r: ConvertRequest = decode(body)?;
            encode(&backend.convert(r.from, r.to_code)?)
        }
        "ListProducts" => encode(&Products { products: backend.list_products() }),
        "GetProduct" => encode(&backend.get_product(&decode::<ProductId>(body)?.id)?),
        "AddItem" => {
            let r: AddItemRequest = decode(body)?;
            backend.add_item(&r.user_id, &r.item)?;
            encode(&Empty {})
        }
        "GetCart" => {
            let r: UserId = decode(body)?;
            encode(&Cart { items: backend.get_cart(&r.user_id), user_id: r.user_id })
        }
        "EmptyCart" => {
            backend.empty_cart(&decode::<UserId>(body)?.user_id);
            encode(&Empty {})
        }
        "ListRecommendations" => {
            let r: RecommendationsRequest = decode(body)?;
            encode(&ProductIds { product_ids: backend.list_recommendations(api, &r.user_id, &r.product_ids).await? })
        }
        "GetQuote" => encode(&Quote { cost_usd: backend.get_quote(&decode::<QuoteRequest>(body)?.items) }),
        "ShipOrder" => {
            let r: ShipOrderRequest = decode(body)?;
            encode(&Tracking { tracking_id: backend.ship_order(&r.address, &r.order_id) })
        }
        "PlaceOrder" => encode(&Order { order: backend.place_order(api, &decode::<PlaceOrderRequest>(body)?).await? }),
        "Charge" => {
            let r: ChargeRequest = decode(body)?;
            encode(&Transaction { transaction_id: backend.charge(r.amount, &r.credit_card, &r.order_id)? })
        }
        "SendOrderConfirmation" => {
            let r: EmailRequest = decode(body)?;
            backend.send_order_confirmation(&r.email, &r.order);
            encode(&Empty {})
        }
        "GetAds" => {
            let r: AdRequest = decode(body)?;
            encode(&Ads { ads: backend.get_ads(&r.context_keys, &r.seed) })
        }
        _ => Err(ApiError::new(404, format!("unknown method {method}"))),
    }
}
