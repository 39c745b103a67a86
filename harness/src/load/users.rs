//! Closed-loop Online Boutique users driven by goose (docs/workloads.md, "Load"):
//! each user starts with one home request, then repeats a task chosen by
//! weight - home 1, set currency 2, product 10, add to cart 2 (product
//! page, then add), view cart 3, checkout 1 (add, then place order) - with
//! goose's think time between tasks. Every user has its own cookie jar and
//! therefore its own session and cart. Choices come from a per-user RNG
//! seeded from the experiment's seed; think times from goose's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use boutique::core::catalog::PRODUCTS;
use boutique::script::{CHECKOUT_FORM, GOOD_CARD};
use goose::config::GooseConfiguration;
use goose::prelude::*;

use super::{FrontDoor, Recorder, Rng};

pub struct UserLoad {
    pub door: FrontDoor,
    pub users: usize,
    pub increase_rate: f64,
    pub think: (Duration, Duration),
    pub run_time: Duration,
    pub seed: u64,
}

/// The task weights of the paper's locustfile.
const WEIGHTS: [(Task, u64); 6] =
    [(Task::Home, 1), (Task::SetCurrency, 2), (Task::Browse, 10), (Task::AddToCart, 2), (Task::ViewCart, 3), (Task::Checkout, 1)];

#[derive(Clone, Copy, Debug)]
enum Task {
    Home,
    SetCurrency,
    Browse,
    AddToCart,
    ViewCart,
    Checkout,
}

fn pick(rng: &mut Rng) -> Task {
    let total: u64 = WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (task, w) in WEIGHTS {
        if x < w {
            return task;
        }
        x -= w;
    }
    unreachable!()
}

/// The request a task sends, as (request type, method, path, form body).
fn requests(task: Task, rng: &mut Rng) -> Vec<(&'static str, bool, String, String)> {
    let product = PRODUCTS[rng.below(PRODUCTS.len() as u64) as usize].id;
    let quantity = [1, 2, 3, 4, 5, 10][rng.below(6) as usize];
    let add = ("add_to_cart", true, "/cart".to_string(), format!("product_id={product}&quantity={quantity}"));
    match task {
        Task::Home => vec![("home", false, "/".into(), String::new())],
        Task::SetCurrency => {
            let c = ["EUR", "USD", "JPY", "CAD"][rng.below(4) as usize];
            vec![("set_currency", true, "/setCurrency".into(), format!("currency_code={c}"))]
        }
        Task::Browse => vec![("product", false, format!("/product/{product}"), String::new())],
        Task::AddToCart => vec![("product", false, format!("/product/{product}"), String::new()), add],
        Task::ViewCart => vec![("view_cart", false, "/cart".into(), String::new())],
        Task::Checkout => vec![add, ("checkout", true, "/cart/checkout".into(), format!("{CHECKOUT_FORM}{GOOD_CARD}"))],
    }
}

/// Sends one request through the user's client, reads the whole body and
/// records it.
async fn send(
    user: &mut GooseUser,
    rec: &Recorder,
    host: Option<&str>,
    (kind, post, path, body): (&'static str, bool, String, String),
) -> TransactionResult {
    let sent = Instant::now();
    let mut builder = if post {
        user.get_request_builder(&GooseMethod::Post, &path)?.header("content-type", "application/x-www-form-urlencoded").body(body)
    } else {
        user.get_request_builder(&GooseMethod::Get, &path)?
    };
    if let Some(h) = host {
        builder = builder.header("host", h);
    }
    let request = GooseRequest::builder()
        .method(if post { GooseMethod::Post } else { GooseMethod::Get })
        .path(path.as_str())
        .name(kind)
        .set_request_builder(builder)
        .build();
    let response = user.request(request).await?;
    let status = match response.response {
        Ok(r) => {
            let status = r.status().as_u16();
            // The latency includes the body: a page is done when it is read.
            match r.bytes().await {
                Ok(_) => status,
                Err(_) => 0,
            }
        }
        Err(_) => 0,
    };
    rec.record(kind, sent, status);
    Ok(())
}

/// Runs the users against `load.door` until `load.run_time` has passed;
/// every request lands in `rec`.
pub async fn run(load: &UserLoad, rec: &Recorder) -> Result<(), String> {
    let seed = load.seed;
    let (r1, r2) = (rec.clone(), rec.clone());
    let (h1, h2) = (load.door.host.clone(), load.door.host.clone());
    let on_start: TransactionFunction = Arc::new(move |user| {
        let (rec, host) = (r1.clone(), h1.clone());
        Box::pin(async move {
            let rng = Rng((seed ^ (user.weighted_users_index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
            user.set_session_data(Arc::new(std::sync::Mutex::new(rng)));
            send(user, &rec, host.as_deref(), ("home", false, "/".into(), String::new())).await
        })
    });
    let task: TransactionFunction = Arc::new(move |user| {
        let (rec, host) = (r2.clone(), h2.clone());
        Box::pin(async move {
            let reqs = {
                let rng = user.get_session_data_unchecked::<Arc<std::sync::Mutex<Rng>>>().clone();
                let mut rng = rng.lock().unwrap();
                let t = pick(&mut rng);
                requests(t, &mut rng)
            };
            for r in reqs {
                send(user, &rec, host.as_deref(), r).await?;
            }
            Ok(())
        })
    });
    let scenario = scenario!("BoutiqueUser")
        .set_wait_time(load.think.0, load.think.1)
        .map_err(|e| e.to_string())?
        .register_transaction(Transaction::new(on_start).set_name("on_start").set_on_start())
        .register_transaction(Transaction::new(task).set_name("task"));
    // GooseConfiguration has private fields: start from the default and set ours.
    let mut config = GooseConfiguration::default();
    config.host = Some(format!("http://{}", load.door.addr));
    config.users = Some(load.users);
    config.increase_rate = Some(format!("{}", load.increase_rate));
    config.run_time = Some(format!("{}", load.run_time.as_secs().max(1)));
    config.quiet = 1;
    config.no_print_metrics = true;
    config.no_error_summary = true;
    config.no_telnet = true;
    config.no_gzip = true;
    config.timeout = Some("30".into());
    GooseAttack::initialize_with_config(config)
        .map_err(|e| e.to_string())?
        .register_scenario(scenario)
        .execute()
        .await
        .map(|_| ())
        .map_err(|e| format!("goose: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_paper() {
        let mut rng = Rng(7);
        let mut counts = [0u32; 6];
        for _ in 0..19_000 {
            counts[pick(&mut rng) as usize] += 1;
        }
        // Expected 1000 per unit of weight.
        for ((_, w), c) in WEIGHTS.iter().zip(counts) {
            assert!((c as f64 - *w as f64 * 1000.0).abs() < 150.0 * (*w as f64).sqrt() + 100.0, "{counts:?}");
        }
    }
}
