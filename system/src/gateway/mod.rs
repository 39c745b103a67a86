//! The gateway: the only place that speaks HTTP.
//!
//! It parses a request once, writes it into a slot of the chain's pool (the
//! one copy in), sends a descriptor to the route's first function, and when
//! the descriptor comes back turns the slot into the HTTP response (the one
//! copy out) and frees the slot. [`http`] is the hyper side, [`inflight`]
//! the per-request slot ownership, [`metrics`] the counters.

mod http;
mod inflight;
pub mod metrics;

use std::sync::{Arc, Mutex};

pub use http::serve;
pub use inflight::Outcome;
use inflight::Pending;
use metrics::GatewayMetrics;

use crate::control::chain::GatewayLimits;
use crate::descriptor::{ChainId, Descriptor, Endpoint, FunctionId};
use crate::pool::{Holder, Lease, Pool, SlotRef, SlotState};
use crate::transport::{DescriptorRx, DescriptorTx, TransportError};

/// A chain as the gateway sees it.
pub struct GatewayChain {
    pub id: ChainId,
    pub name: String,
    pub pool: Arc<Pool>,
    tx: Arc<dyn DescriptorTx>,
    /// Waiting requests, indexed by slot.
    pending: Box<[Mutex<Option<Pending>>]>,
    app_bytes: usize,
}

impl GatewayChain {
    pub fn new(id: ChainId, name: &str, pool: Arc<Pool>, tx: Arc<dyn DescriptorTx>, app_bytes: usize) -> Self {
        let pending = (0..pool.slot_count()).map(|_| Mutex::new(None)).collect();
        Self { id, name: name.to_string(), pool, tx, pending, app_bytes }
    }

    fn pending(&self, slot: SlotRef) -> std::sync::MutexGuard<'_, Option<Pending>> {
        self.pending[slot.index as usize].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A route: path prefix to a chain and its first functions.
#[derive(Clone, Debug)]
pub struct GatewayRoute {
    pub prefix: String,
    pub chain: usize,
    pub route: u16,
    pub sequence: Vec<FunctionId>,
}

impl GatewayRoute {
    fn matches(&self, path: &str) -> bool {
        let p = self.prefix.trim_end_matches('/');
        p.is_empty() || path == p || (path.starts_with(p) && path.as_bytes().get(p.len()) == Some(&b'/'))
    }
}

pub struct Gateway {
    chains: Vec<GatewayChain>,
    routes: Vec<GatewayRoute>,
    limits: GatewayLimits,
    pub metrics: GatewayMetrics,
}

impl Gateway {
    pub fn new(limits: GatewayLimits, chains: Vec<GatewayChain>, mut routes: Vec<GatewayRoute>) -> Self {
        // Longest prefix first.
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.trim_end_matches('/').len()));
        Self { chains, routes, limits, metrics: GatewayMetrics::default() }
    }

    pub fn chains(&self) -> &[GatewayChain] {
        &self.chains
    }

    pub fn limits(&self) -> &GatewayLimits {
        &self.limits
    }

    fn route(&self, path: &str) -> Option<&GatewayRoute> {
        self.routes.iter().find(|r| r.matches(path))
    }

    fn chain(&self, id: ChainId) -> Option<&GatewayChain> {
        self.chains.iter().find(|c| c.id == id)
    }

    /// Receives the descriptors coming back to the gateway for one chain and
    /// completes their requests. Runs on its own thread until the link closes.
    pub fn run_completions(&self, chain: ChainId, mut rx: Box<dyn DescriptorRx>) {
        let Some(c) = self.chain(chain) else { return };
        let mut batch = Vec::with_capacity(64);
        loop {
            batch.clear();
            match rx.recv(&mut batch) {
                Ok(()) => {}
                Err(TransportError::Closed) => return,
                Err(e) => {
                    eprintln!("spright gateway: chain {}: receive failed: {e}", c.name);
                    return;
                }
            }
            for d in &batch {
                self.complete(c, d);
            }
        }
    }

    fn complete(&self, c: &GatewayChain, d: &Descriptor) {
        let Ok(slot) = c.pool.take(d, Lease::GATEWAY) else {
            self.metrics.rejected_descriptors.inc();
            return;
        };
        let mut entry = c.pending(slot);
        match entry.take_if(|p| p.gen == slot.gen) {
            Some(p) => {
                if p.done.send(Outcome::Completed).is_err() {
                    // The request went away after publishing: ours to free.
                    let _ = c.pool.free(slot);
                }
            }
            None if c.pool.state(slot.index) == (SlotState::Abandoned, slot.gen) => {
                // A late return of a request that timed out: reclaim it.
                let _ = c.pool.free(slot);
                self.metrics.late_completions.inc();
            }
            None => self.metrics.stray_descriptors.inc(),
        }
    }

    /// Recalls every slot `holder` has in `chain` - its process is gone,
    /// or (for `Sent`) its descriptors are lost - and fails their requests
    /// with 502 (`why`), freeing abandoned ones. Returns how many.
    pub fn recall(&self, chain: ChainId, holder: Holder, why: &str) -> usize {
        let Some(c) = self.chain(chain) else { return 0 };
        c.pool.recall(holder).into_iter().map(|(slot, state)| self.fail_recalled(c, slot, state, why)).sum()
    }

    /// Sends again, from the gateway, a descriptor for every slot on its way
    /// to `to`: called once a restarted function's socket is reachable,
    /// because those sent to its previous instance died with its socket
    /// queue (or were sunk while it was gone). Returns how many.
    pub fn resend_sent_to(&self, to: Endpoint) -> usize {
        let Some(c) = self.chain(to.chain) else { return 0 };
        c.pool.sent_to(to.function).into_iter().filter(|s| c.tx.send(&Descriptor::new(to, s.index, s.gen).resent()).is_ok()).count()
    }

    /// Sends `d` again if its slot is still on its way to its destination
    /// (a descriptor sunk while the destination was being restarted).
    pub fn resend_if_sent(&self, d: &Descriptor) -> bool {
        let dst = d.destination();
        let Some(c) = self.chain(dst.chain) else { return false };
        c.pool.is_sent_to(SlotRef { index: d.slot, gen: d.gen }, dst.function)
            && c.tx.send(&Descriptor::new(dst, d.slot, d.gen).resent()).is_ok()
    }

    /// A recalled slot is the gateway's: answer its request or free it.
    fn fail_recalled(&self, c: &GatewayChain, slot: SlotRef, state: SlotState, why: &str) -> usize {
        let mut entry = c.pending(slot);
        match (state, entry.take_if(|p| p.gen == slot.gen)) {
            (_, Some(p)) => {
                if p.done.send(Outcome::Failed(502, format!("chain {}: {why}", c.name))).is_err() {
                    let _ = c.pool.free(slot);
                }
                1
            }
            (SlotState::Abandoned, None) => {
                let _ = c.pool.free(slot);
                1
            }
            // Its request is still being set up or answered: that path
            // frees it.
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> GatewayRoute {
        GatewayRoute { prefix: prefix.into(), chain: 0, route: 0, sequence: vec![FunctionId(1)] }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(route("/product").matches("/product"));
        assert!(route("/product").matches("/product/42"));
        assert!(!route("/product").matches("/products"));
        assert!(route("/").matches("/anything"));
        assert!(route("/cart/").matches("/cart"));
    }
}
