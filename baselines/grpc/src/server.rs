//! The server side: every service's RPCs on one [`Backend`] (a process
//! serves only the service it is started as). Recommendation and checkout
//! call other services through [`GrpcClient`]. Messages are counted by the
//! generated servers' codec ([`crate::codec`]).

use std::net::SocketAddr;
use std::sync::Arc;

use boutique::api::{ApiResult, Backend, PlaceOrderRequest};
use boutique::core::cart::CartItem;
use boutique::core::money::Money;
use boutique::core::order::OrderResult;
use boutique::core::payment::CreditCard;
use boutique::core::shipping::Address;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Request, Response, Status};

use crate::client::GrpcClient;
use crate::convert::{currency, decode_all, required, to_status, FromPb};
use crate::pb;
use crate::pb::ad_service_server::{AdService, AdServiceServer};
use crate::pb::cart_service_server::{CartService, CartServiceServer};
use crate::pb::checkout_service_server::{CheckoutService, CheckoutServiceServer};
use crate::pb::currency_service_server::{CurrencyService, CurrencyServiceServer};
use crate::pb::email_service_server::{EmailService, EmailServiceServer};
use crate::pb::payment_service_server::{PaymentService, PaymentServiceServer};
use crate::pb::product_catalog_service_server::{ProductCatalogService, ProductCatalogServiceServer};
use crate::pb::recommendation_service_server::{RecommendationService, RecommendationServiceServer};
use crate::pb::shipping_service_server::{ShippingService, ShippingServiceServer};

type RpcResult<T> = Result<Response<T>, Status>;

fn reply<T>(r: ApiResult<T>) -> RpcResult<T> {
    r.map(Response::new).map_err(to_status)
}

/// One service's state and its client for the services it calls.
pub struct Services {
    backend: Backend,
    peers: GrpcClient,
}

/// The nine backend services (the names `harness up` and `--peer` use).
pub const SERVICES: &[&str] = &["currency", "productcatalog", "cart", "recommendation", "shipping", "checkout", "payment", "email", "ad"];

/// Serves `service` on `listen` until SIGTERM/SIGINT; prints
/// `listening traffic http://ADDR` once bound.
pub async fn run(service: &str, listen: SocketAddr, peers: GrpcClient) -> Result<(), String> {
    let state = Arc::new(Services { backend: Backend::default(), peers });
    let listener = TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = Server::builder();
    let stop = baseline_common::http::termination();
    println!("listening traffic http://{local}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let served = match service {
        "currency" => server.serve_with_incoming_shutdown(CurrencyServiceServer::from_arc(state), incoming, stop).await,
        "productcatalog" => server.serve_with_incoming_shutdown(ProductCatalogServiceServer::from_arc(state), incoming, stop).await,
        "cart" => server.serve_with_incoming_shutdown(CartServiceServer::from_arc(state), incoming, stop).await,
        "recommendation" => server.serve_with_incoming_shutdown(RecommendationServiceServer::from_arc(state), incoming, stop).await,
        "shipping" => server.serve_with_incoming_shutdown(ShippingServiceServer::from_arc(state), incoming, stop).await,
        "checkout" => server.serve_with_incoming_shutdown(CheckoutServiceServer::from_arc(state), incoming, stop).await,
        "payment" => server.serve_with_incoming_shutdown(PaymentServiceServer::from_arc(state), incoming, stop).await,
        "email" => server.serve_with_incoming_shutdown(EmailServiceServer::from_arc(state), incoming, stop).await,
        "ad" => server.serve_with_incoming_shutdown(AdServiceServer::from_arc(state), incoming, stop).await,
        other => return Err(format!("unknown service {other:?} (one of {})", SERVICES.join(", "))),
    };
    served.map_err(|e| format!("{service}: {e}"))
}

#[tonic::async_trait]
impl CurrencyService for Services {
    async fn get_supported_currencies(&self, _: Request<pb::Empty>) -> RpcResult<pb::GetSupportedCurrenciesResponse> {
        let currency_codes = self.backend.get_supported_currencies().iter().map(ToString::to_string).collect();
        Ok(Response::new(pb::GetSupportedCurrenciesResponse { currency_codes }))
    }
    async fn convert(&self, req: Request<pb::CurrencyConversionRequest>) -> RpcResult<pb::Money> {
        let req = req.into_inner();
        let (from, to): (Money, _) = (required(req.from, "amount")?, currency(&req.to_code)?);
        reply(self.backend.convert(from, to).map(|m| (&m).into()))
    }
}

#[tonic::async_trait]
impl ProductCatalogService for Services {
    async fn list_products(&self, _: Request<pb::Empty>) -> RpcResult<pb::ListProductsResponse> {
        Ok(Response::new(pb::ListProductsResponse { products: self.backend.list_products().iter().map(Into::into).collect() }))
    }
    async fn get_product(&self, req: Request<pb::GetProductRequest>) -> RpcResult<pb::Product> {
        reply(self.backend.get_product(&req.into_inner().id).map(|p| (&p).into()))
    }
    /// Case-insensitive match on name or description, as Google's catalog does.
    async fn search_products(&self, req: Request<pb::SearchProductsRequest>) -> RpcResult<pb::SearchProductsResponse> {
        let query = req.into_inner().query.to_lowercase();
        let results = self
            .backend
            .list_products()
            .iter()
            .filter(|p| p.name.to_lowercase().contains(&query) || p.description.to_lowercase().contains(&query))
            .map(Into::into)
            .collect();
        Ok(Response::new(pb::SearchProductsResponse { results }))
    }
}

#[tonic::async_trait]
impl CartService for Services {
    async fn add_item(&self, req: Request<pb::AddItemRequest>) -> RpcResult<pb::Empty> {
        let req = req.into_inner();
        let item: CartItem = required(req.item, "item")?;
        reply(self.backend.add_item(&req.user_id, &item).map(|_| pb::Empty {}))
    }
    async fn get_cart(&self, req: Request<pb::GetCartRequest>) -> RpcResult<pb::Cart> {
        let user_id = req.into_inner().user_id;
        let items = self.backend.get_cart(&user_id).iter().map(Into::into).collect();
        Ok(Response::new(pb::Cart { user_id, items }))
    }
    async fn empty_cart(&self, req: Request<pb::EmptyCartRequest>) -> RpcResult<pb::Empty> {
        self.backend.empty_cart(&req.into_inner().user_id);
        Ok(Response::new(pb::Empty {}))
    }
}

#[tonic::async_trait]
impl RecommendationService for Services {
    async fn list_recommendations(&self, req: Request<pb::ListRecommendationsRequest>) -> RpcResult<pb::ListRecommendationsResponse> {
        let req = req.into_inner();
        let ids = self.backend.list_recommendations(&self.peers, &req.user_id, &req.product_ids).await;
        reply(ids.map(|product_ids| pb::ListRecommendationsResponse { product_ids }))
    }
}

#[tonic::async_trait]
impl ShippingService for Services {
    async fn get_quote(&self, req: Request<pb::GetQuoteRequest>) -> RpcResult<pb::GetQuoteResponse> {
        let items: Vec<CartItem> = decode_all(req.into_inner().items)?;
        Ok(Response::new(pb::GetQuoteResponse { cost_usd: Some((&self.backend.get_quote(&items)).into()) }))
    }
    async fn ship_order(&self, req: Request<pb::ShipOrderRequest>) -> RpcResult<pb::ShipOrderResponse> {
        let req = req.into_inner();
        let address: Address = required(req.address, "address")?;
        Ok(Response::new(pb::ShipOrderResponse { tracking_id: self.backend.ship_order(&address, &req.order_id) }))
    }
}

#[tonic::async_trait]
impl CheckoutService for Services {
    async fn place_order(&self, req: Request<pb::PlaceOrderRequest>) -> RpcResult<pb::PlaceOrderResponse> {
        let req = PlaceOrderRequest::from_pb(req.into_inner())?;
        let order = self.backend.place_order(&self.peers, &req).await;
        reply(order.map(|o| pb::PlaceOrderResponse { order: Some((&o).into()) }))
    }
}

#[tonic::async_trait]
impl PaymentService for Services {
    async fn charge(&self, req: Request<pb::ChargeRequest>) -> RpcResult<pb::ChargeResponse> {
        let req = req.into_inner();
        let (amount, card): (Money, CreditCard) = (required(req.amount, "amount")?, required(req.credit_card, "credit card")?);
        reply(self.backend.charge(amount, &card, &req.order_id).map(|transaction_id| pb::ChargeResponse { transaction_id }))
    }
}

#[tonic::async_trait]
impl EmailService for Services {
    async fn send_order_confirmation(&self, req: Request<pb::SendOrderConfirmationRequest>) -> RpcResult<pb::Empty> {
        let req = req.into_inner();
        let order: OrderResult = required(req.order, "order")?;
        self.backend.send_order_confirmation(&req.email, &order);
        Ok(Response::new(pb::Empty {}))
    }
}

#[tonic::async_trait]
impl AdService for Services {
    async fn get_ads(&self, req: Request<pb::AdRequest>) -> RpcResult<pb::AdResponse> {
        let req = req.into_inner();
        let ads = self.backend.get_ads(&req.context_keys, &req.seed).iter().map(Into::into).collect();
        Ok(Response::new(pb::AdResponse { ads }))
    }
}
