//! The queue-proxy sidecar: reverse proxy to its user container on
//! localhost with a `containerConcurrency` breaker and a bounded wait queue,
//! a request timeout, Prometheus metrics on its own port, readiness probing
//! of the container, and graceful drain on SIGTERM (via the shared server).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tokio::sync::Semaphore;

use baseline_common::http::{self, client, forward, json_error, Body, HttpClient};
use baseline_common::Held;

#[derive(Clone, Debug)]
pub struct QueueProxyConfig {
    pub upstream: SocketAddr,
    /// Knative's containerConcurrency (0 = unlimited).
    pub concurrency: usize,
    /// Requests allowed to wait for a slot before 503.
    pub queue_depth: usize,
    pub timeout: Duration,
}

#[derive(Default)]
struct Metrics {
    requests: AtomicU64,
    errors_5xx: AtomicU64,
    overloaded: AtomicU64,
    timeouts: AtomicU64,
    latency_us_sum: AtomicU64,
    in_flight: AtomicI64,
    queued: AtomicI64,
}

pub struct QueueProxy {
    cfg: QueueProxyConfig,
    breaker: Semaphore,
    client: HttpClient,
    metrics: Metrics,
}

impl QueueProxy {
    pub fn new(cfg: QueueProxyConfig) -> Self {
        let permits = if cfg.concurrency == 0 { Semaphore::MAX_PERMITS } else { cfg.concurrency };
        Self { breaker: Semaphore::new(permits), client: client(), metrics: Metrics::default(), cfg }
    }

    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let start = Instant::now();
        let m = &self.metrics;
        if m.queued.load(Ordering::Relaxed) >= self.cfg.queue_depth as i64 {
            m.overloaded.fetch_add(1, Ordering::Relaxed);
            return json_error(503, "queue-proxy: overloaded (wait queue full)");
        }
        let queued = Held::new(&m.queued);
        let permit = self.breaker.acquire().await;
        drop(queued);
        let Ok(_permit) = permit else { return json_error(503, "queue-proxy: shutting down") };
        let in_flight = Held::new(&m.in_flight);
        let resp = match tokio::time::timeout(self.cfg.timeout, forward(&self.client, self.cfg.upstream, None, req)).await {
            Ok(r) => r,
            Err(_) => {
                m.timeouts.fetch_add(1, Ordering::Relaxed);
                json_error(504, "queue-proxy: user container timed out")
            }
        };
        drop(in_flight);
        m.requests.fetch_add(1, Ordering::Relaxed);
        if resp.status().is_server_error() {
            m.errors_5xx.fetch_add(1, Ordering::Relaxed);
        }
        m.latency_us_sum.fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
        resp
    }

    pub fn render_metrics(&self) -> String {
        let m = &self.metrics;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "# TYPE queue_proxy_requests_total counter\nqueue_proxy_requests_total {}\n\
             # TYPE queue_proxy_5xx_total counter\nqueue_proxy_5xx_total {}\n\
             # TYPE queue_proxy_overloaded_total counter\nqueue_proxy_overloaded_total {}\n\
             # TYPE queue_proxy_timeouts_total counter\nqueue_proxy_timeouts_total {}\n\
             # TYPE queue_proxy_latency_microseconds_sum counter\nqueue_proxy_latency_microseconds_sum {}\n\
             # TYPE queue_proxy_in_flight gauge\nqueue_proxy_in_flight {}\n\
             # TYPE queue_proxy_queued gauge\nqueue_proxy_queued {}\n\
             # TYPE queue_proxy_container_concurrency gauge\nqueue_proxy_container_concurrency {}\n",
            get(&m.requests),
            get(&m.errors_5xx),
            get(&m.overloaded),
            get(&m.timeouts),
            get(&m.latency_us_sum),
            m.in_flight.load(Ordering::Relaxed),
            m.queued.load(Ordering::Relaxed),
            self.cfg.concurrency
        )
    }

    /// Waits until the user container answers its health check.
    pub async fn wait_ready(&self, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            let req = Request::get(format!("http://{}/healthz", self.cfg.upstream)).body(Full::new(Bytes::new())).expect("request");
            if let Ok(r) = self.client.request(req).await {
                if r.status().is_success() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// Probes the container, then serves traffic on `listen` and metrics on
/// `metrics` (which also answers `/healthz` once ready).
pub async fn run(listen: SocketAddr, metrics: Option<SocketAddr>, cfg: QueueProxyConfig) {
    let qp = Arc::new(QueueProxy::new(cfg));
    if !qp.wait_ready(Duration::from_secs(30)).await {
        eprintln!("queue-proxy: user container at {} never became ready", qp.cfg.upstream);
        std::process::exit(1);
    }
    if let Some(m) = metrics {
        let qp = qp.clone();
        tokio::spawn(http::serve("metrics", m, move |req: Request<Incoming>| {
            let qp = qp.clone();
            async move {
                match req.uri().path() {
                    "/metrics" => Response::new(Full::new(Bytes::from(qp.render_metrics()))),
                    "/healthz" => http::healthz(),
                    _ => json_error(404, "try /metrics"),
                }
            }
        }));
    }
    http::serve("traffic", listen, move |req| qp.clone().handle(req)).await
}
