//! The admin endpoint: `/metrics` (Prometheus text) and `/healthz`, and the
//! table `spright stats` prints from the same text.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::deployment::Shared;
use crate::descriptor::Endpoint;

/// Reads a deployment's counters.
#[derive(Clone)]
pub struct MetricsSource {
    shared: Arc<Shared>,
}

impl MetricsSource {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Functions that should be registered but are not.
    pub fn missing_functions(&self) -> Vec<String> {
        let live = self.shared.reachable_endpoints();
        self.shared
            .file
            .chains()
            .flat_map(|(id, c)| {
                c.functions.iter().map(move |f| (Endpoint::new(id, f.function_id()), format!("{}/{}", c.name, f.name), f.spawn))
            })
            .filter(|(e, _, spawn)| *spawn && !live.contains(e))
            .map(|(_, n, _)| n)
            .collect()
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let sh = &self.shared;
        let mut out = String::new();
        let gw = &sh.gateway.metrics;
        family(
            &mut out,
            "spright_info",
            "gauge",
            "Deployment facts (value 1).",
            vec![(
                format!(
                    "transport=\"{}\",mode=\"{}\",oversubscribed=\"{}\"",
                    sh.kind,
                    sh.kind.mode_name(),
                    sh.oversubscribed.map(|(p, c)| format!("{p} pollers on {c} cores")).unwrap_or_else(|| "no".into())
                ),
                1,
            )],
        );
        family(
            &mut out,
            "spright_http_responses_total",
            "counter",
            "Gateway responses by status code.",
            gw.responses().into_iter().map(|(s, n)| (format!("status=\"{s}\""), n)).collect(),
        );
        family(
            &mut out,
            "spright_http_latency_microseconds_sum",
            "counter",
            "Sum of gateway response latencies.",
            vec![(String::new(), gw.latency_us_sum.get())],
        );
        family(
            &mut out,
            "spright_http_connections_total",
            "counter",
            "Accepted client connections.",
            vec![(String::new(), gw.connections.get())],
        );
        family(
            &mut out,
            "spright_gateway_descriptors_total",
            "counter",
            "Descriptors at the gateway that completed nothing.",
            vec![
                ("kind=\"rejected\"".into(), gw.rejected_descriptors.get()),
                ("kind=\"stray\"".into(), gw.stray_descriptors.get()),
                ("kind=\"late\"".into(), gw.late_completions.get()),
            ],
        );
        let chain_name = |id| sh.file.chains().find(|(c, _)| *c == id).map(|(_, c)| c.name.clone()).unwrap_or_default();
        let mut slots = Vec::new();
        let mut in_use = Vec::new();
        let mut rejected = Vec::new();
        let mut exhausted = Vec::new();
        for (id, pool) in &sh.pools {
            let l = format!("chain=\"{}\"", chain_name(*id));
            slots.push((format!("{l},pages=\"{}\"", pool.page_kind().as_str()), pool.slot_count() as u64));
            in_use.push((l.clone(), pool.occupancy() as u64));
            let c = pool.counters();
            for (reason, v) in [
                ("malformed", c.rejected_malformed),
                ("out_of_range", c.rejected_out_of_range),
                ("stale", c.rejected_stale),
                ("wrong_chain", c.rejected_wrong_chain),
                ("not_addressed", c.rejected_not_addressed),
                ("resent_duplicate", c.resent_duplicates),
            ] {
                rejected.push((format!("{l},reason=\"{reason}\""), v));
            }
            exhausted.push((l, c.exhausted));
        }
        family(&mut out, "spright_pool_slots", "gauge", "Slots per chain pool.", slots);
        family(&mut out, "spright_pool_slots_in_use", "gauge", "Slots allocated or abandoned now.", in_use);
        family(&mut out, "spright_pool_descriptors_rejected_total", "counter", "Descriptors refused on receipt, by reason.", rejected);
        family(&mut out, "spright_pool_exhausted_total", "counter", "Allocations that found the pool full.", exhausted);

        let live = sh.reachable_endpoints();
        let mut endpoints = Vec::new();
        let mut up = Vec::new();
        let mut starts = Vec::new();
        let mut pids = Vec::new();
        let mut service = Vec::new();
        for (id, c) in sh.file.chains() {
            endpoints.push((Endpoint::gateway(id), format!("chain=\"{}\",function=\"gateway\"", c.name)));
            for f in &c.functions {
                let e = Endpoint::new(id, f.function_id());
                let l = format!("chain=\"{}\",function=\"{}\"", c.name, f.name);
                up.push((l.clone(), live.contains(&e) as u64));
                starts.push((l.clone(), sh.supervisor.child(e).map(|c| c.starts).unwrap_or(0)));
                if let Some(st) = sh.effective_service_time(e) {
                    service.push((format!("{l},mode=\"{}\"", st.mode), st.ms));
                }
                if let Some(r) = sh.registration(e) {
                    pids.push((l.clone(), r.pid as u64));
                }
                endpoints.push((e, l));
            }
        }
        family(&mut out, "spright_function_up", "gauge", "1 when the function is registered.", up);
        family(
            &mut out,
            "spright_registrations_refused_total",
            "counter",
            "Registrations refused (unknown function, foreign uid, not the started process, already registered).",
            vec![(String::new(), sh.registrations.refused_total.load(std::sync::atomic::Ordering::Relaxed) as u64)],
        );
        family(
            &mut out,
            "spright_function_service_time_milliseconds",
            "gauge",
            "Emulated service time per request (after --service-time-scale).",
            service,
        );
        family(&mut out, "spright_function_pid", "gauge", "Pid of the registered function process.", pids);
        family(&mut out, "spright_function_starts_total", "counter", "Process starts by the supervisor (restarts = starts - 1).", starts);
        let label_of = |e: &Endpoint| endpoints.iter().find(|(x, _)| x == e).map(|(_, l)| l.clone()).unwrap_or_default();
        let eps: Vec<Endpoint> = endpoints.iter().map(|(e, _)| *e).collect();
        if let Some((stats, drops)) = sh.fabric.sproxy_stats(&eps) {
            let mut msgs = Vec::new();
            let mut bytes = Vec::new();
            for (e, s) in stats {
                let l = label_of(&e);
                msgs.push((format!("{l},direction=\"tx\""), s.tx_msgs));
                msgs.push((format!("{l},direction=\"rx\""), s.rx_msgs));
                bytes.push((format!("{l},direction=\"tx\""), s.tx_bytes));
                bytes.push((format!("{l},direction=\"rx\""), s.rx_bytes));
            }
            family(&mut out, "spright_sproxy_messages_total", "counter", "Descriptors SPROXY delivered, per endpoint.", msgs);
            family(&mut out, "spright_sproxy_bytes_total", "counter", "Bytes SPROXY delivered, per endpoint.", bytes);
            family(
                &mut out,
                "spright_sproxy_drops_total",
                "counter",
                "Descriptors SPROXY refused (sent to the sink), by reason.",
                drops.by_reason().iter().map(|(r, v)| (format!("reason=\"{r}\""), *v)).collect(),
            );
        }
        let wake: Vec<(String, u64)> = eps.iter().filter_map(|e| sh.fabric.wakeups(*e).map(|w| (label_of(e), w))).collect();
        if !wake.is_empty() {
            family(&mut out, "spright_eventring_wakeups_total", "counter", "Doorbells rung (consumer was asleep).", wake);
        }
        let skipped: Vec<(String, u64)> = eps.iter().filter_map(|e| sh.fabric.ring_cells_skipped(*e).map(|n| (label_of(e), n))).collect();
        if !skipped.is_empty() {
            family(
                &mut out,
                "spright_ring_cells_skipped_total",
                "counter",
                "Ring cells passed over because their producer died mid-push, per receiving endpoint.",
                skipped,
            );
        }
        if let Some(ep) = &sh.eproxy {
            let c = ep.counters();
            let i = ep.interface();
            family(
                &mut out,
                "spright_eproxy_packets_total",
                "counter",
                "Packets of the gateway port at its interface (EPROXY).",
                vec![
                    (format!("interface=\"{i}\",direction=\"rx\""), c.rx_packets),
                    (format!("interface=\"{i}\",direction=\"tx\""), c.tx_packets),
                ],
            );
            family(
                &mut out,
                "spright_eproxy_bytes_total",
                "counter",
                "Bytes of the gateway port at its interface (EPROXY).",
                vec![
                    (format!("interface=\"{i}\",direction=\"rx\""), c.rx_bytes),
                    (format!("interface=\"{i}\",direction=\"tx\""), c.tx_bytes),
                ],
            );
        }
        out
    }
}

/// Appends one metric family in Prometheus text format.
fn family<V: std::fmt::Display>(out: &mut String, name: &str, kind: &str, help: &str, rows: Vec<(String, V)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in rows {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// Serves `/metrics` and `/healthz` until `shutdown`.
pub async fn serve_admin(source: MetricsSource, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        let stream = tokio::select! {
            a = listener.accept() => match a { Ok((s, _)) => s, Err(_) => continue },
            _ = shutdown.wait_for(|&s| s) => return,
        };
        let source = source.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let source = source.clone();
                async move {
                    let (status, ctype, body) = match req.uri().path() {
                        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4", source.render()),
                        "/healthz" => match source.missing_functions() {
                            m if m.is_empty() => (StatusCode::OK, "text/plain", "ok\n".to_string()),
                            m => (StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("not registered: {}\n", m.join(", "))),
                        },
                        _ => (StatusCode::NOT_FOUND, "text/plain", "try /metrics or /healthz\n".to_string()),
                    };
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    *r.status_mut() = status;
                    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(ctype));
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Fetches `path` from an admin endpoint with a plain HTTP/1.0 request.
pub fn fetch(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Renders Prometheus text as an aligned table (metric, labels, value).
pub fn render_table(metrics: &str) -> String {
    let rows: Vec<(String, String, String)> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (lhs, value) = l.rsplit_once(' ')?;
            let (name, labels) = match lhs.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}').replace('"', "")),
                None => (lhs, String::new()),
            };
            Some((name.trim_start_matches("spright_").to_string(), labels, value.to_string()))
        })
        .collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(6).max(6);
    let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(6).max(6);
    let mut out = format!("{:w0$}  {:w1$}  {}\n", "metric", "labels", "value");
    for (n, l, v) in rows {
        let _ = writeln!(out, "{n:w0$}  {l:w1$}  {v:>}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_from_prometheus_text() {
        let t = super::render_table("# HELP x y\n# TYPE x counter\nspright_x{a=\"1\",b=\"2\"} 5\nspright_y 7\n");
        assert!(t.contains("x       a=1,b=2  5"), "{t}");
        assert!(t.lines().any(|l| l.starts_with("y ") && l.ends_with('7')), "{t}");
    }
}
