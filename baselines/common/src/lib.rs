//! What the baselines share: HTTP plumbing ([`http`]) and Online
//! Boutique's HTTP frontend over any `BoutiqueApi` ([`frontend`]).

pub mod frontend;
pub mod http;

/// One unit of a gauge, held while this lives: counted up when made,
/// down when dropped - also when the future holding it is dropped (its
/// client left, a timeout above it gave up), which a count-down after an
/// `.await` would miss.
pub struct Held<'a>(&'a std::sync::atomic::AtomicI64);

impl<'a> Held<'a> {
    pub fn new(gauge: &'a std::sync::atomic::AtomicI64) -> Self {
        gauge.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(gauge)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// An address given as `IP:PORT` or `HOST:PORT`; a host name (a Kubernetes
/// Service's, on a cluster) is resolved once, now, to its first address.
pub fn resolve(addr: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = addr.parse() {
        return Ok(a);
    }
    addr.to_socket_addrs().map_err(|e| format!("{addr}: {e}"))?.next().ok_or_else(|| format!("{addr}: the name has no address"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_held_unit_is_returned_when_its_future_is_dropped() {
        let gauge = std::sync::atomic::AtomicI64::new(0);
        let waiting = async {
            let _held = super::Held::new(&gauge);
            std::future::pending::<()>().await
        };
        use std::future::Future;
        let mut waiting = Box::pin(waiting);
        let waker = std::task::Waker::noop();
        assert!(waiting.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_pending());
        assert_eq!(gauge.load(std::sync::atomic::Ordering::SeqCst), 1);
        drop(waiting);
        assert_eq!(gauge.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn resolves_addresses_and_names() {
        assert_eq!(super::resolve("127.0.0.1:80").unwrap().to_string(), "127.0.0.1:80");
        assert_eq!(super::resolve("localhost:81").unwrap().port(), 81);
        assert!(super::resolve("localhost").unwrap_err().contains("localhost"), "a port is required");
    }
}
