//! The ingress (stands in for Kourier/Istio's Envoy): routes by Host header
//! `<service>.<namespace>.example.com` to the service's queue-proxy, with
//! pooled upstream connections. Requests with any other Host (the public
//! front door) go to the default service.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::Request;

use baseline_common::http::{self, client, forward, json_error, Body, HttpClient};

pub struct Ingress {
    routes: HashMap<String, SocketAddr>,
    default: Option<SocketAddr>,
    client: HttpClient,
}

impl Ingress {
    /// `routes`: service name -> its queue-proxy.
    pub fn new(routes: HashMap<String, SocketAddr>, default_service: Option<&str>) -> Self {
        let default = default_service.and_then(|s| routes.get(s).copied());
        Self { routes, default, client: client() }
    }

    fn upstream(&self, host: &str) -> Option<SocketAddr> {
        let name = host.split(':').next().unwrap_or("");
        match name.strip_suffix(".example.com").and_then(|s| s.split('.').next()) {
            Some(service) => self.routes.get(service).copied(),
            None => self.default,
        }
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> hyper::Response<Body> {
        let host = req.headers().get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
        match self.upstream(&host) {
            Some(up) => forward(&self.client, up, None, req).await,
            None => json_error(404, &format!("no route for host {host:?}")),
        }
    }
}

pub async fn run(listen: SocketAddr, ingress: Ingress) {
    let ingress = Arc::new(ingress);
    http::serve("traffic", listen, move |req| ingress.clone().handle(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_host() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let ing = Ingress::new(HashMap::from([("cart".into(), a), ("frontend".into(), b)]), Some("frontend"));
        assert_eq!(ing.upstream("cart.default.example.com"), Some(a));
        assert_eq!(ing.upstream("cart.default.example.com:8080"), Some(a));
        assert_eq!(ing.upstream("localhost:8080"), Some(b));
        assert_eq!(ing.upstream("nope.default.example.com"), None);
    }
}
