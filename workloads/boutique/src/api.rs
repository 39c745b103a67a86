//! Online Boutique as services calling services - the shape the baselines
//! run it in. [`BoutiqueApi`] has one method per RPC of Google's
//! `demo.proto` (a few requests carry what determinism needs: the order id
//! for payment and shipping, the user id as the ads seed). [`Backend`] is
//! each service's server side over the shared [`crate::core`];
//! [`orchestrate`] is the frontend, [`Backend::place_order`] the checkout
//! and [`Backend::list_recommendations`] the recommendation service, written
//! once against the trait. Transports implement the trait: [`LocalApi`]
//! in-process (tests), JSON over HTTP through an ingress (Knative model),
//! gRPC (tonic). The SPRIGHT chain does the same calls as descriptor hops;
//! the cross-mode tests hold them to identical answers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::core::ads;
use crate::core::cart::{CartError, CartItem, CartStore, MAX_CART_LINES};
use crate::core::catalog::{self, Product};
use crate::core::email::render_confirmation;
use crate::core::money::{Currency, CurrencyTable, Money};
use crate::core::order::{order_id, order_total, OrderItem, OrderResult};
use crate::core::payment::{charge, current_year_month, CreditCard};
use crate::core::recommendation::recommend;
use crate::core::shipping::{get_quote, ship_order, Address};
use crate::frontend::pages::{
    self, AdView, AddedToCart, CartLineView, CartPage, CurrencySet, HomePage, OrderPage, ProductPage, ProductView,
};
use crate::frontend::{parse_request, FrontendRequest, HttpError, Session, SessionIds};

/// A product on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductMsg {
    pub id: String,
    pub name: String,
    pub description: String,
    pub picture: String,
    pub price_usd: Money,
    pub categories: Vec<String>,
}

impl From<&Product> for ProductMsg {
    fn from(p: &Product) -> Self {
        Self {
            id: p.id.into(),
            name: p.name.into(),
            description: p.description.into(),
            picture: p.picture.into(),
            price_usd: p.price_usd,
            categories: p.categories.iter().map(|c| c.to_string()).collect(),
        }
    }
}

impl ProductMsg {
    fn view(&self, price: Money) -> ProductView {
        ProductView {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            picture: self.picture.clone(),
            categories: self.categories.clone(),
            price,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceOrderRequest {
    pub user_id: String,
    pub user_currency: Currency,
    pub address: Address,
    pub email: String,
    pub credit_card: CreditCard,
}

/// A failed call: the HTTP status the frontend answers with, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Every RPC the frontend and the services make, whatever carries them.
pub trait BoutiqueApi: Sync {
    fn get_supported_currencies(&self) -> impl Future<Output = ApiResult<Vec<Currency>>> + Send;
    fn convert(&self, from: Money, to: Currency) -> impl Future<Output = ApiResult<Money>> + Send;
    fn list_products(&self) -> impl Future<Output = ApiResult<Vec<ProductMsg>>> + Send;
    fn get_product(&self, id: &str) -> impl Future<Output = ApiResult<ProductMsg>> + Send;
    fn add_item(&self, user_id: &str, item: CartItem) -> impl Future<Output = ApiResult<()>> + Send;
    fn get_cart(&self, user_id: &str) -> impl Future<Output = ApiResult<Vec<CartItem>>> + Send;
    fn empty_cart(&self, user_id: &str) -> impl Future<Output = ApiResult<()>> + Send;
    fn list_recommendations(&self, user_id: &str, product_ids: &[String]) -> impl Future<Output = ApiResult<Vec<String>>> + Send;
    fn get_quote(&self, address: Option<&Address>, items: &[CartItem]) -> impl Future<Output = ApiResult<Money>> + Send;
    fn ship_order(&self, address: &Address, items: &[CartItem], order_id: &str) -> impl Future<Output = ApiResult<String>> + Send;
    fn place_order(&self, req: &PlaceOrderRequest) -> impl Future<Output = ApiResult<OrderResult>> + Send;
    fn charge(&self, amount: Money, card: &CreditCard, order_id: &str) -> impl Future<Output = ApiResult<String>> + Send;
    fn send_order_confirmation(&self, email: &str, order: &OrderResult) -> impl Future<Output = ApiResult<()>> + Send;
    fn get_ads(&self, context_keys: &[String], seed: &str) -> impl Future<Output = ApiResult<Vec<AdView>>> + Send;
}

/// The server side of every service, with its per-process state (the cart
/// store, checkout's order numbers). A deployment runs one per service
/// process and uses only that service's methods.
#[derive(Default)]
pub struct Backend {
    table: CurrencyTable,
    carts: CartStore,
    orders_per_user: Mutex<HashMap<String, u64>>,
    emails_sent: AtomicU64,
}

impl Backend {
    pub fn get_supported_currencies(&self) -> Vec<Currency> {
        self.table.supported()
    }

    pub fn convert(&self, from: Money, to: Currency) -> ApiResult<Money> {
        self.table.convert(&from, to).map_err(|e| ApiError::new(400, format!("currency conversion failed: {e}")))
    }

    pub fn list_products(&self) -> Vec<ProductMsg> {
        catalog::list_products().iter().map(ProductMsg::from).collect()
    }

    pub fn get_product(&self, id: &str) -> ApiResult<ProductMsg> {
        catalog::get_product(id).map(ProductMsg::from).ok_or_else(|| ApiError::new(404, format!("no product with id {id}")))
    }

    pub fn add_item(&self, user_id: &str, item: &CartItem) -> ApiResult<()> {
        self.carts.add_item(user_id, &item.product_id, item.quantity).map_err(|e| match e {
            CartError::TooManyLines => ApiError::new(400, format!("the cart holds at most {MAX_CART_LINES} different products")),
            CartError::QuantityOutOfRange => ApiError::new(400, "quantity out of range"),
        })
    }

    pub fn get_cart(&self, user_id: &str) -> Vec<CartItem> {
        self.carts.get_cart(user_id)
    }

    pub fn empty_cart(&self, user_id: &str) {
        self.carts.empty_cart(user_id)
    }

    pub fn get_quote(&self, items: &[CartItem]) -> Money {
        get_quote(items.iter().map(|i| i.quantity).sum())
    }

    pub fn ship_order(&self, address: &Address, order_id: &str) -> String {
        ship_order(address, order_id)
    }

    pub fn charge(&self, amount: Money, card: &CreditCard, order_id: &str) -> ApiResult<String> {
        charge(card, &amount, order_id, current_year_month()).map_err(|e| ApiError::new(402, format!("payment declined: {e}")))
    }

    pub fn send_order_confirmation(&self, email: &str, order: &OrderResult) {
        std::hint::black_box(render_confirmation(email, order));
        self.emails_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get_ads(&self, context_keys: &[String], seed: &str) -> Vec<AdView> {
        let ctx: Vec<&str> = context_keys.iter().map(String::as_str).collect();
        ads::get_ads(&ctx, seed).into_iter().take(2).map(|a| AdView { redirect_url: a.redirect_url.into(), text: a.text.into() }).collect()
    }

    /// The recommendation service: it calls the catalog itself.
    pub async fn list_recommendations<A: BoutiqueApi>(&self, api: &A, user_id: &str, exclude: &[String]) -> ApiResult<Vec<String>> {
        let products = api.list_products().await?;
        let all: Vec<&str> = products.iter().map(|p| p.id.as_str()).collect();
        let ex: Vec<&str> = exclude.iter().map(String::as_str).collect();
        Ok(recommend(user_id, &all, &ex))
    }

    /// The checkout service: cart, per line product and conversion, shipping
    /// quote and conversion, charge, ship, empty the cart, email. A declined
    /// card stops before anything is shipped or emptied.
    pub async fn place_order<A: BoutiqueApi>(&self, api: &A, req: &PlaceOrderRequest) -> ApiResult<OrderResult> {
        let cart = api.get_cart(&req.user_id).await?;
        if cart.is_empty() {
            return Err(ApiError::new(400, "cannot place an order: the cart is empty"));
        }
        let mut items = Vec::with_capacity(cart.len());
        for item in &cart {
            let product = api.get_product(&item.product_id).await?;
            let cost = api.convert(product.price_usd, req.user_currency).await?;
            items.push(OrderItem { item: item.clone(), cost });
        }
        let quote = api.get_quote(Some(&req.address), &cart).await?;
        let shipping_cost = api.convert(quote, req.user_currency).await?;
        let total = order_total(&shipping_cost, &items).map_err(|e| ApiError::new(400, format!("order total: {e}")))?;
        let number = {
            let mut m = self.orders_per_user.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(req.user_id.clone()).or_default();
            *n += 1;
            *n
        };
        let id = order_id(&req.user_id, number, &cart);
        api.charge(total, &req.credit_card, &id).await?;
        let tracking = api.ship_order(&req.address, &cart, &id).await?;
        api.empty_cart(&req.user_id).await?;
        let order = OrderResult {
            order_id: id,
            shipping_tracking_id: tracking,
            shipping_cost,
            shipping_address: req.address.clone(),
            items,
            total,
        };
        api.send_order_confirmation(&req.email, &order).await?;
        Ok(order)
    }
}

/// Every service in this process, calling each other directly.
#[derive(Default)]
pub struct LocalApi {
    pub backend: Backend,
}

impl BoutiqueApi for LocalApi {
    async fn get_supported_currencies(&self) -> ApiResult<Vec<Currency>> {
        Ok(self.backend.get_supported_currencies())
    }
    async fn convert(&self, from: Money, to: Currency) -> ApiResult<Money> {
        self.backend.convert(from, to)
    }
    async fn list_products(&self) -> ApiResult<Vec<ProductMsg>> {
        Ok(self.backend.list_products())
    }
    async fn get_product(&self, id: &str) -> ApiResult<ProductMsg> {
        self.backend.get_product(id)
    }
    async fn add_item(&self, user_id: &str, item: CartItem) -> ApiResult<()> {
        self.backend.add_item(user_id, &item)
    }
    async fn get_cart(&self, user_id: &str) -> ApiResult<Vec<CartItem>> {
        Ok(self.backend.get_cart(user_id))
    }
    async fn empty_cart(&self, user_id: &str) -> ApiResult<()> {
        self.backend.empty_cart(user_id);
        Ok(())
    }
    async fn list_recommendations(&self, user_id: &str, product_ids: &[String]) -> ApiResult<Vec<String>> {
        self.backend.list_recommendations(self, user_id, product_ids).await
    }
    async fn get_quote(&self, _address: Option<&Address>, items: &[CartItem]) -> ApiResult<Money> {
        Ok(self.backend.get_quote(items))
    }
    async fn ship_order(&self, address: &Address, _items: &[CartItem], order_id: &str) -> ApiResult<String> {
        Ok(self.backend.ship_order(address, order_id))
    }
    async fn place_order(&self, req: &PlaceOrderRequest) -> ApiResult<OrderResult> {
        self.backend.place_order(self, req).await
    }
    async fn charge(&self, amount: Money, card: &CreditCard, order_id: &str) -> ApiResult<String> {
        self.backend.charge(amount, card, order_id)
    }
    async fn send_order_confirmation(&self, email: &str, order: &OrderResult) -> ApiResult<()> {
        self.backend.send_order_confirmation(email, order);
        Ok(())
    }
    async fn get_ads(&self, context_keys: &[String], seed: &str) -> ApiResult<Vec<AdView>> {
        Ok(self.backend.get_ads(context_keys, seed))
    }
}

/// A rendered answer of the frontend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageResponse {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Set-Cookie` value, empty for none.
    pub set_cookie: String,
}

/// The raw HTTP request the frontend received.
pub struct RawRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub content_type: &'a str,
    pub cookie: &'a str,
    pub body: &'a [u8],
}

/// The frontend: parses the request, makes its request type's calls in the
/// order of Google's call graph, renders the page (or the error).
pub async fn orchestrate<A: BoutiqueApi>(api: &A, sessions: &SessionIds, req: &RawRequest<'_>) -> PageResponse {
    let session = Session::from_cookie(req.cookie, sessions);
    let cookie = if session.is_new { session.set_cookie() } else { String::new() };
    let parsed = match parse_request(req.method, req.path, req.query, req.content_type, req.body) {
        Ok(p) => p,
        Err(e) => return PageResponse { status: e.status, body: e.body(), set_cookie: cookie },
    };
    if let FrontendRequest::SetCurrency { currency } = parsed {
        let s = Session { user_id: session.user_id.clone(), currency, is_new: true };
        let body = pages::to_json(&CurrencySet { session_id: s.user_id.clone(), user_currency: currency });
        return PageResponse { status: 200, body, set_cookie: s.set_cookie() };
    }
    match render(api, &session, parsed).await {
        Ok(body) => PageResponse { status: 200, body, set_cookie: cookie },
        Err(e) => PageResponse { status: e.status, body: HttpError::new(e.status, e.message).body(), set_cookie: cookie },
    }
}

fn cart_size(cart: &[CartItem]) -> u32 {
    cart.iter().map(|i| i.quantity).sum()
}

fn ids(cart: &[CartItem]) -> Vec<String> {
    cart.iter().map(|i| i.product_id.clone()).collect()
}

async fn render<A: BoutiqueApi>(api: &A, s: &Session, req: FrontendRequest) -> ApiResult<Vec<u8>> {
    let user = s.user_id.as_str();
    let cur = s.currency;
    Ok(match req {
        FrontendRequest::Home => {
            let currencies = api.get_supported_currencies().await?;
            let products = api.list_products().await?;
            let cart = api.get_cart(user).await?;
            let mut views = Vec::with_capacity(products.len());
            for p in &products {
                views.push(p.view(api.convert(p.price_usd, cur).await?));
            }
            let ads = api.get_ads(&[], user).await?;
            pages::to_json(&HomePage {
                session_id: user.into(),
                user_currency: cur,
                currencies,
                products: views,
                cart_size: cart_size(&cart),
                ads,
            })
        }
        FrontendRequest::Product { id } => {
            let product = api.get_product(&id).await?;
            let currencies = api.get_supported_currencies().await?;
            let cart = api.get_cart(user).await?;
            let price = api.convert(product.price_usd, cur).await?;
            let recommendations = api.list_recommendations(user, std::slice::from_ref(&product.id)).await?;
            let ads = api.get_ads(&product.categories, user).await?;
            pages::to_json(&ProductPage {
                session_id: user.into(),
                user_currency: cur,
                currencies,
                product: product.view(price),
                cart_size: cart_size(&cart),
                recommendations,
                ads,
            })
        }
        FrontendRequest::ViewCart => {
            let currencies = api.get_supported_currencies().await?;
            let cart = api.get_cart(user).await?;
            let recommendations = api.list_recommendations(user, &ids(&cart)).await?;
            let quote = api.get_quote(None, &cart).await?;
            let shipping_cost = api.convert(quote, cur).await?;
            let mut total = shipping_cost;
            let mut items = Vec::with_capacity(cart.len());
            for item in &cart {
                let product = api.get_product(&item.product_id).await?;
                let unit = api.convert(product.price_usd, cur).await?;
                let price = unit.checked_mul(item.quantity).map_err(|_| ApiError::new(500, "cart total out of range"))?;
                total = total.checked_add(&price).map_err(|_| ApiError::new(500, "cart total out of range"))?;
                items.push(CartLineView {
                    product_id: item.product_id.clone(),
                    name: product.name,
                    picture: product.picture,
                    quantity: item.quantity,
                    price,
                });
            }
            pages::to_json(&CartPage {
                session_id: user.into(),
                user_currency: cur,
                currencies,
                cart_size: cart_size(&cart),
                items,
                shipping_cost,
                total_cost: total,
                recommendations,
            })
        }
        FrontendRequest::AddToCart { product_id, quantity } => {
            api.get_product(&product_id).await?;
            api.add_item(user, CartItem { product_id: product_id.clone(), quantity }).await?;
            pages::to_json(&AddedToCart { session_id: user.into(), product_id, quantity })
        }
        FrontendRequest::PlaceOrder(form) => {
            let order = api
                .place_order(&PlaceOrderRequest {
                    user_id: user.into(),
                    user_currency: cur,
                    address: form.address,
                    email: form.email,
                    credit_card: form.card,
                })
                .await?;
            let bought: Vec<String> = order.items.iter().map(|i| i.item.product_id.clone()).collect();
            let recommendations = api.list_recommendations(user, &bought).await?;
            let currencies = api.get_supported_currencies().await?;
            pages::to_json(&OrderPage { session_id: user.into(), user_currency: cur, currencies, order, recommendations })
        }
        FrontendRequest::SetCurrency { .. } => unreachable!("answered without calls"),
    })
}
