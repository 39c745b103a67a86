//! Online Boutique's user containers: each service an HTTP server taking
//! and returning JSON ([`boutique::rpc`]), and the frontend serving the
//! public API. Every call to another service goes out through the ingress
//! (caller -> ingress -> callee's queue-proxy -> callee), as in the paper's
//! Knative setup, so each call pays parsing, serialization and copies.

use std::net::SocketAddr;
use std::sync::Arc;

use boutique::api::{ApiError, ApiResult, Backend, BoutiqueApi, PlaceOrderRequest, ProductMsg};
use boutique::core::cart::CartItem;
use boutique::core::money::{Currency, Money};
use boutique::core::order::OrderResult;
use boutique::core::payment::CreditCard;
use boutique::core::shipping::Address;
use boutique::frontend::pages::AdView;
use boutique::rpc::{self, *};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use spright::wire::json;

use baseline_common::frontend;
use baseline_common::http::{self, client, read_body, HttpClient};

/// `BoutiqueApi` over HTTP + JSON through the ingress.
pub struct IngressClient {
    ingress: SocketAddr,
    client: HttpClient,
}

impl IngressClient {
    pub fn new(ingress: SocketAddr) -> Self {
        Self { ingress, client: client() }
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(&self, method: &str, req: &Req) -> ApiResult<Resp> {
        let service = rpc::service_of(method).ok_or_else(|| ApiError::new(500, format!("unknown method {method}")))?;
        let body = json::to_vec(req).expect("serializable");
        let request = Request::post(format!("http://{}/{method}", self.ingress))
            .header(HOST, format!("{service}.default.example.com"))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        let resp = self.client.request(request).await.map_err(|e| ApiError::new(502, format!("{service}: {e}")))?;
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| ApiError::new(502, format!("{service}: {e}")))?.to_bytes();
        if status != 200 {
            return Err(
                json::from_slice::<ApiError>(&bytes).unwrap_or_else(|_| ApiError::new(status, format!("{service} answered {status}")))
            );
        }
        json::from_slice(&bytes).map_err(|e| ApiError::new(502, format!("{service}: bad response: {e}")))
    }
}

impl BoutiqueApi for IngressClient {
    async fn get_supported_currencies(&self) -> ApiResult<Vec<Currency>> {
        Ok(self.call::<_, Currencies>("GetSupportedCurrencies", &Empty {}).await?.currency_codes)
    }
    async fn convert(&self, from: Money, to: Currency) -> ApiResult<Money> {
        self.call("Convert", &ConvertRequest { from, to_code: to }).await
    }
    async fn list_products(&self) -> ApiResult<Vec<ProductMsg>> {
        Ok(self.call::<_, Products>("ListProducts", &Empty {}).await?.products)
    }
    async fn get_product(&self, id: &str) -> ApiResult<ProductMsg> {
        self.call("GetProduct", &ProductId { id: id.into() }).await
    }
    async fn add_item(&self, user_id: &str, item: CartItem) -> ApiResult<()> {
        self.call::<_, Empty>("AddItem", &AddItemRequest { user_id: user_id.into(), item }).await.map(|_| ())
    }
    async fn get_cart(&self, user_id: &str) -> ApiResult<Vec<CartItem>> {
        Ok(self.call::<_, Cart>("GetCart", &UserId { user_id: user_id.into() }).await?.items)
    }
    async fn empty_cart(&self, user_id: &str) -> ApiResult<()> {
        self.call::<_, Empty>("EmptyCart", &UserId { user_id: user_id.into() }).await.map(|_| ())
    }
    async fn list_recommendations(&self, user_id: &str, product_ids: &[String]) -> ApiResult<Vec<String>> {
        let r = RecommendationsRequest { user_id: user_id.into(), product_ids: product_ids.to_vec() };
        Ok(self.call::<_, ProductIds>("ListRecommendations", &r).await?.product_ids)
    }
    async fn get_quote(&self, address: Option<&Address>, items: &[CartItem]) -> ApiResult<Money> {
        Ok(self.call::<_, Quote>("GetQuote", &QuoteRequest { address: address.cloned(), items: items.to_vec() }).await?.cost_usd)
    }
    async fn ship_order(&self, address: &Address, items: &[CartItem], order_id: &str) -> ApiResult<String> {
        let r = ShipOrderRequest { address: address.clone(), items: items.to_vec(), order_id: order_id.into() };
        Ok(self.call::<_, Tracking>("ShipOrder", &r).await?.tracking_id)
    }
    async fn place_order(&self, req: &PlaceOrderRequest) -> ApiResult<OrderResult> {
        Ok(self.call::<_, Order>("PlaceOrder", req).await?.order)
    }
    async fn charge(&self, amount: Money, card: &CreditCard, order_id: &str) -> ApiResult<String> {
        let r = ChargeRequest { amount, credit_card: card.clone(), order_id: order_id.into() };
        Ok(self.call::<_, Transaction>("Charge", &r).await?.transaction_id)
    }
    async fn send_order_confirmation(&self, email: &str, order: &OrderResult) -> ApiResult<()> {
        self.call::<_, Empty>("SendOrderConfirmation", &EmailRequest { email: email.into(), order: order.clone() }).await.map(|_| ())
    }
    async fn get_ads(&self, context_keys: &[String], seed: &str) -> ApiResult<Vec<AdView>> {
        Ok(self.call::<_, Ads>("GetAds", &AdRequest { context_keys: context_keys.to_vec(), seed: seed.into() }).await?.ads)
    }
}

/// A service container: `POST /<Method>` with a JSON body.
pub async fn run_service(service: String, listen: SocketAddr, ingress: SocketAddr) {
    let state = Arc::new((Backend::default(), IngressClient::new(ingress), service));
    http::serve("traffic", listen, move |req: Request<Incoming>| {
        let state = state.clone();
        async move {
            if req.uri().path() == "/healthz" {
                return http::healthz();
            }
            let method = req.uri().path().trim_start_matches('/').to_string();
            let body = match read_body(req.into_body(), http::LIMITS.max_body_bytes).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let (backend, api, service) = &*state;
            match rpc::dispatch(backend, api, service, &method, &body).await {
                Ok(json) => {
                    let mut r = Response::new(Full::new(Bytes::from(json)));
                    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                    r
                }
                Err(e) => {
                    let mut r = Response::new(Full::new(Bytes::from(json::to_vec(&e).expect("json"))));
                    *r.status_mut() = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    r
                }
            }
        }
    })
    .await
}

/// The frontend container: the public HTTP API, calling the services
/// through the ingress.
pub async fn run_frontend(listen: SocketAddr, ingress: SocketAddr) {
    frontend::serve(listen, IngressClient::new(ingress)).await
}

/// Whether `service` is one of the nine backend services.
pub fn rpc_service_exists(service: &str) -> bool {
    rpc::METHODS.iter().any(|(s, _)| *s == service)
}
