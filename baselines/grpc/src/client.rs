//! [`BoutiqueApi`] over gRPC: one HTTP/2 channel per peer service, calls
//! multiplexed on it (as grpc-go's frontend does), no proxy in between.

use std::collections::HashMap;
use std::net::SocketAddr;

use boutique::api::{ApiError, ApiResult, BoutiqueApi, PlaceOrderRequest, ProductMsg};
use boutique::core::cart::CartItem;
use boutique::core::money::{Currency, Money};
use boutique::core::order::OrderResult;
use boutique::core::payment::CreditCard;
use boutique::core::shipping::Address;
use boutique::frontend::pages::AdView;
use tonic::transport::{Channel, Endpoint};

use crate::convert::{currency, decode_all, from_status, required, FromPb};
use crate::pb;
use crate::pb::ad_service_client::AdServiceClient;
use crate::pb::cart_service_client::CartServiceClient;
use crate::pb::checkout_service_client::CheckoutServiceClient;
use crate::pb::currency_service_client::CurrencyServiceClient;
use crate::pb::email_service_client::EmailServiceClient;
use crate::pb::payment_service_client::PaymentServiceClient;
use crate::pb::product_catalog_service_client::ProductCatalogServiceClient;
use crate::pb::recommendation_service_client::RecommendationServiceClient;
use crate::pb::shipping_service_client::ShippingServiceClient;

/// Channels to the services this process calls, by service name
/// (`currency`, `productcatalog`, ...). Channels connect lazily and
/// reconnect on their own, so peers may start in any order.
#[derive(Clone, Default)]
pub struct GrpcClient {
    channels: HashMap<String, Channel>,
}

impl GrpcClient {
    pub fn new(peers: &[(String, SocketAddr)]) -> Result<Self, tonic::transport::Error> {
        let mut channels = HashMap::new();
        for (service, addr) in peers {
            let endpoint = Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true);
            channels.insert(service.clone(), endpoint.connect_lazy());
        }
        Ok(Self { channels })
    }

    fn channel(&self, service: &str) -> ApiResult<Channel> {
        self.channels.get(service).cloned().ok_or_else(|| ApiError::new(500, format!("no address configured for service {service}")))
    }
}

/// Calls `client.method(request)` on `service`'s channel and maps a failed
/// status back to the [`ApiError`] it stands for.
macro_rules! call {
    ($self:ident, $service:literal, $client:ident . $method:ident ($req:expr)) => {{
        let mut client = $client::new($self.channel($service)?);
        // The request and the response are counted by the codec.
        client.$method($req).await.map(tonic::Response::into_inner).map_err(|s| from_status($service, s))
    }};
}

fn bad_response(service: &str) -> impl FnOnce(tonic::Status) -> ApiError + '_ {
    move |s| ApiError::new(502, format!("{service}: bad response: {}", s.message()))
}

impl BoutiqueApi for GrpcClient {
    async fn get_supported_currencies(&self) -> ApiResult<Vec<Currency>> {
        let r = call!(self, "currency", CurrencyServiceClient.get_supported_currencies(pb::Empty {}))?;
        r.currency_codes.iter().map(|c| currency(c)).collect::<Result<_, _>>().map_err(bad_response("currency"))
    }
    async fn convert(&self, from: Money, to: Currency) -> ApiResult<Money> {
        let req = pb::CurrencyConversionRequest { from: Some((&from).into()), to_code: to.to_string() };
        Money::from_pb(call!(self, "currency", CurrencyServiceClient.convert(req))?).map_err(bad_response("currency"))
    }
    async fn list_products(&self) -> ApiResult<Vec<ProductMsg>> {
        let r = call!(self, "productcatalog", ProductCatalogServiceClient.list_products(pb::Empty {}))?;
        decode_all(r.products).map_err(bad_response("productcatalog"))
    }
    async fn get_product(&self, id: &str) -> ApiResult<ProductMsg> {
        let r = call!(self, "productcatalog", ProductCatalogServiceClient.get_product(pb::GetProductRequest { id: id.into() }))?;
        ProductMsg::from_pb(r).map_err(bad_response("productcatalog"))
    }
    async fn add_item(&self, user_id: &str, item: CartItem) -> ApiResult<()> {
        let req = pb::AddItemRequest { user_id: user_id.into(), item: Some((&item).into()) };
        call!(self, "cart", CartServiceClient.add_item(req)).map(|_| ())
    }
    async fn get_cart(&self, user_id: &str) -> ApiResult<Vec<CartItem>> {
        let r = call!(self, "cart", CartServiceClient.get_cart(pb::GetCartRequest { user_id: user_id.into() }))?;
        decode_all(r.items).map_err(bad_response("cart"))
    }
    async fn empty_cart(&self, user_id: &str) -> ApiResult<()> {
        call!(self, "cart", CartServiceClient.empty_cart(pb::EmptyCartRequest { user_id: user_id.into() })).map(|_| ())
    }
    async fn list_recommendations(&self, user_id: &str, product_ids: &[String]) -> ApiResult<Vec<String>> {
        let req = pb::ListRecommendationsRequest { user_id: user_id.into(), product_ids: product_ids.to_vec() };
        Ok(call!(self, "recommendation", RecommendationServiceClient.list_recommendations(req))?.product_ids)
    }
    async fn get_quote(&self, address: Option<&Address>, items: &[CartItem]) -> ApiResult<Money> {
        let req = pb::GetQuoteRequest { address: address.map(Into::into), items: items.iter().map(Into::into).collect() };
        let r = call!(self, "shipping", ShippingServiceClient.get_quote(req))?;
        required(r.cost_usd, "cost").map_err(bad_response("shipping"))
    }
    async fn ship_order(&self, address: &Address, items: &[CartItem], order_id: &str) -> ApiResult<String> {
        let req = pb::ShipOrderRequest {
            address: Some(address.into()),
            items: items.iter().map(Into::into).collect(),
            order_id: order_id.into(),
        };
        Ok(call!(self, "shipping", ShippingServiceClient.ship_order(req))?.tracking_id)
    }
    async fn place_order(&self, req: &PlaceOrderRequest) -> ApiResult<OrderResult> {
        let r = call!(self, "checkout", CheckoutServiceClient.place_order(pb::PlaceOrderRequest::from(req)))?;
        required(r.order, "order").map_err(bad_response("checkout"))
    }
    async fn charge(&self, amount: Money, card: &CreditCard, order_id: &str) -> ApiResult<String> {
        let req = pb::ChargeRequest { amount: Some((&amount).into()), credit_card: Some(card.into()), order_id: order_id.into() };
        Ok(call!(self, "payment", PaymentServiceClient.charge(req))?.transaction_id)
    }
    async fn send_order_confirmation(&self, email: &str, order: &OrderResult) -> ApiResult<()> {
        let req = pb::SendOrderConfirmationRequest { email: email.into(), order: Some(order.into()) };
        call!(self, "email", EmailServiceClient.send_order_confirmation(req)).map(|_| ())
    }
    async fn get_ads(&self, context_keys: &[String], seed: &str) -> ApiResult<Vec<AdView>> {
        let r = call!(self, "ad", AdServiceClient.get_ads(pb::AdRequest { context_keys: context_keys.to_vec(), seed: seed.into() }))?;
        decode_all(r.ads).map_err(bad_response("ad"))
    }
}
