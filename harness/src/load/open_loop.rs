//! Open-loop load: tasks of the Online Boutique mix arrive on a seeded
//! schedule (constant or Poisson) whatever the server does, and latency
//! counts from each task's intended send time - a server that falls
//! behind cannot slow the load down (no coordinated omission).

use std::time::{Duration, Instant};

use boutique::script::mix_task;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, COOKIE, HOST};
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;

use super::{FrontDoor, Recorder, Rng};

pub struct Step {
    pub door: FrontDoor,
    /// Tasks per second.
    pub rate: f64,
    pub duration: Duration,
    pub poisson: bool,
    pub seed: u64,
    /// Distinct session cookies the tasks cycle through.
    pub sessions: usize,
}

/// Requests without an answer after this count as errors.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> HttpClient {
    let mut c = HttpConnector::new();
    c.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(c)
}

/// The next inter-arrival gap in seconds.
fn gap(rate: f64, poisson: bool, rng: &mut Rng) -> f64 {
    if poisson {
        -(1.0 - rng.unit()).ln() / rate
    } else {
        1.0 / rate
    }
}

/// What one request carries.
pub struct Outgoing<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub content_type: &'a str,
    pub cookie: Option<&'a str>,
    pub body: Bytes,
}

/// Sends one request and reads the whole answer; its status, or 0 when
/// none came in time.
pub async fn send(client: &HttpClient, door: &FrontDoor, out: Outgoing<'_>) -> u16 {
    let mut req =
        Request::builder().method(out.method).uri(format!("http://{}{}", door.addr, out.path)).header(CONTENT_TYPE, out.content_type);
    if let Some(h) = &door.host {
        req = req.header(HOST, h);
    }
    if let Some(c) = out.cookie {
        req = req.header(COOKIE, c);
    }
    let Ok(req) = req.body(Full::new(out.body)) else { return 0 };
    let exchange = async {
        let resp = client.request(req).await.ok()?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await.ok()?;
        Some(status)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.ok().flatten().unwrap_or(0)
}

/// Runs one step; every request is recorded with its intended time. The
/// first request of a task counts from the task's intended time, later
/// ones (add-then-checkout) from when they could be sent. Returns when the
/// schedule began and how late each task was started (seconds): a
/// generator that cannot keep up with its schedule shows up here, not as
/// the system's latency alone.
pub async fn run(step: &Step, rec: &Recorder) -> (Instant, Vec<f64>) {
    let client = client();
    let start = Instant::now();
    let mut rng = Rng(step.seed | 1);
    let mut t = 0.0;
    let mut tasks = JoinSet::new();
    let mut lags = Vec::new();
    let mut n: u64 = step.seed.wrapping_mul(7919);
    loop {
        t += gap(step.rate, step.poisson, &mut rng);
        if t >= step.duration.as_secs_f64() {
            break;
        }
        let intended = start + Duration::from_secs_f64(t);
        if !super::sleep_until(intended).await {
            break;
        }
        lags.push(intended.elapsed().as_secs_f64());
        n += 1;
        let (client, rec, door) = (client.clone(), rec.clone(), step.door.clone());
        let cookie = format!("shop_session=open{}.USD", n % step.sessions.max(1) as u64);
        // Finished tasks go now: a long step (a soak) would otherwise hold
        // every one of them until its end.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            let mut from = intended;
            for (kind, method, path, body) in mix_task(n) {
                let out = Outgoing {
                    method,
                    path: &path,
                    content_type: "application/x-www-form-urlencoded",
                    cookie: Some(&cookie),
                    body: Bytes::from(body),
                };
                let status = send(&client, &door, out).await;
                rec.record(kind, from, status);
                from = Instant::now();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (start, lags)
}

#[cfg(test)]
mod tests {
    use super::{gap, Rng};

    #[test]
    fn poisson_gaps_average_the_rate() {
        let mut s = Rng(42);
        let n = 20_000;
        let mean: f64 = (0..n).map(|_| gap(500.0, true, &mut s)).sum::<f64>() / n as f64;
        assert!((mean - 0.002).abs() < 0.0001, "{mean}");
        assert_eq!(gap(500.0, false, &mut s), 0.002);
    }
}
