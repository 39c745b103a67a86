//! The function SDK: write a [`Handler`] over the transaction in the slot,
//! register it under a name, and let [`serve_function`] run it.
//!
//! One generic runtime serves every function and every transport: it
//! registers with the control plane, maps the chain's pool, receives
//! descriptors, runs the handler in place on the slot and sends the
//! descriptor on - straight to the next function (direct function routing)
//! or back to the gateway.
//!
//! ```no_run
//! use spright::sdk::{Action, Registry};
//! let mut registry = Registry::new();
//! registry.register("upper", |txn: &mut spright::txn::Txn<'_>| {
//!     let body = txn.request().body.to_ascii_uppercase();
//!     txn.set_response(200, "text/plain", "", &body).ok();
//!     Action::Reply
//! });
//! ```

mod runtime;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use runtime::{serve_function, FunctionArgs, SdkError};

use crate::descriptor::FunctionId;
use crate::txn::Txn;

/// What happens to the request after a handler ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send the descriptor to this function of the chain (direct routing).
    Call(FunctionId),
    /// Continue the route's static sequence; reply after its last function.
    Next,
    /// The response is in the slot: back to the gateway.
    Reply,
}

/// A function's logic, run on the transaction in place. Called from the
/// function's worker threads concurrently.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, txn: &mut Txn<'_>) -> Action;
}

impl<F> Handler for F
where
    F: Fn(&mut Txn<'_>) -> Action + Send + Sync + 'static,
{
    fn handle(&self, txn: &mut Txn<'_>) -> Action {
        self(txn)
    }
}

/// Handlers by name, as chain files refer to them.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: BTreeMap<String, Arc<dyn Handler>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, name: &str, handler: impl Handler) -> &mut Self {
        self.handlers.insert(name.to_string(), Arc::new(handler));
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Handler>> {
        self.handlers.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Adds every handler of `other`.
    pub fn extend(&mut self, other: &Registry) -> &mut Self {
        for (k, v) in &other.handlers {
            self.handlers.insert(k.clone(), v.clone());
        }
        self
    }
}
