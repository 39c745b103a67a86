//! Who frees a request's slot, whatever happens to the request.
//!
//! The per-slot pending entry is the single point of hand-over. Publishing a
//! request puts a [`Pending`] there; whoever *takes* it - the completion
//! thread, a failure report from the control plane, or the request giving
//! up - decides the slot's fate, under the entry's lock:
//!
//! * completion thread takes it: sends `Completed`; if the request is gone
//!   the send fails and the thread frees the slot;
//! * the request gives up first (timeout, client gone): it marks the slot
//!   abandoned - a function may still be writing into it - and whoever sees
//!   it come back (or its holder die) frees it.

use tokio::sync::oneshot;

use super::GatewayChain;
use crate::pool::SlotRef;

/// How a published request ended.
#[derive(Debug)]
pub enum Outcome {
    /// The chain replied; the response is in the slot.
    Completed,
    /// It cannot complete (status, message).
    Failed(u16, String),
}

pub(super) struct Pending {
    pub gen: u32,
    pub done: oneshot::Sender<Outcome>,
}

enum State {
    /// Allocated, not yet sent: freed on drop.
    Owned,
    /// Published and sent; waiting for the outcome.
    Waiting(oneshot::Receiver<Outcome>),
    /// Outcome received: the slot is ours again, freed on drop.
    Received,
}

/// A request's hold on its slot.
pub(super) struct InFlight<'a> {
    chain: &'a GatewayChain,
    slot: SlotRef,
    state: State,
}

impl<'a> InFlight<'a> {
    pub fn new(chain: &'a GatewayChain, slot: SlotRef) -> Self {
        Self { chain, slot, state: State::Owned }
    }

    /// Registers the request as waiting; call before sending its descriptor.
    pub fn publish(&mut self) {
        let (tx, rx) = oneshot::channel();
        *self.chain.pending(self.slot) = Some(Pending { gen: self.slot.gen, done: tx });
        self.state = State::Waiting(rx);
    }

    /// The descriptor could not be sent: take the request back.
    pub fn unpublish(&mut self) {
        self.chain.pending(self.slot).take();
        self.state = State::Owned;
    }

    pub async fn outcome(&mut self) -> Outcome {
        let State::Waiting(rx) = &mut self.state else {
            return Outcome::Failed(500, "request was not published".into());
        };
        let outcome = rx.await.unwrap_or_else(|_| Outcome::Failed(502, "request lost by the gateway".into()));
        self.state = State::Received;
        outcome
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let pool = &self.chain.pool;
        match std::mem::replace(&mut self.state, State::Received) {
            State::Owned | State::Received => {
                let _ = pool.free(self.slot);
            }
            State::Waiting(mut rx) => {
                let mut entry = self.chain.pending(self.slot);
                if entry.take_if(|p| p.gen == self.slot.gen).is_some() {
                    // Still out with a function: keep it out of circulation.
                    pool.abandon(self.slot);
                    return;
                }
                drop(entry);
                // Someone took the entry: either the outcome was sent before
                // we close (we free) or the send will fail (the sender frees).
                rx.close();
                if rx.try_recv().is_ok() {
                    let _ = pool.free(self.slot);
                }
            }
        }
    }
}
