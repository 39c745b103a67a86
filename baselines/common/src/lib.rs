//! What the baselines share: HTTP plumbing ([`http`]) and Online
//! Boutique's HTTP frontend over any `BoutiqueApi` ([`frontend`]).

pub mod frontend;
pub mod http;

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
    fn resolves_addresses_and_names() {
        assert_eq!(super::resolve("127.0.0.1:80").unwrap().to_string(), "127.0.0.1:80");
        assert_eq!(super::resolve("localhost:81").unwrap().port(), 81);
        assert!(super::resolve("localhost").unwrap_err().contains("localhost"), "a port is required");
    }
}
