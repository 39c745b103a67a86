//! Online Boutique on SPRIGHT: ten functions working on one transaction in
//! the slot ([`state::BoutiqueState`]).
//!
//! A call from one function to another is a descriptor hop: the caller
//! pushes a [`state::Frame`] (caller, callee, method, where to resume),
//! puts the arguments in the state's call registers and sends the descriptor
//! to the callee; the callee runs the method on the slot in place, marks the
//! frame done and sends the descriptor back. Nested calls (recommendation
//! calling the catalog, checkout orchestrating eight services) stack frames.
//! Every function's continuation lives in the slot, none in process memory.

mod frontend;
mod services;
pub mod state;

use spright::descriptor::FunctionId;
use spright::sdk::{Action, Registry};
use spright::txn::Txn;

use state::{BoutiqueState, Frame, MAX_DEPTH};

/// Method numbers, per service.
pub mod method {
    pub const GET_SUPPORTED_CURRENCIES: u16 = 1;
    pub const CONVERT: u16 = 2;
    pub const LIST_PRODUCTS: u16 = 1;
    pub const GET_PRODUCT: u16 = 2;
    pub const ADD_ITEM: u16 = 1;
    pub const GET_CART: u16 = 2;
    pub const EMPTY_CART: u16 = 3;
    pub const LIST_RECOMMENDATIONS: u16 = 1;
    pub const GET_QUOTE: u16 = 1;
    pub const SHIP_ORDER: u16 = 2;
    pub const PLACE_ORDER: u16 = 1;
    pub const CHARGE: u16 = 1;
    pub const SEND_ORDER_CONFIRMATION: u16 = 1;
    pub const GET_ADS: u16 = 1;
}

/// Why a function was handed the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A new request (the frontend only).
    Start,
    /// Run `method` for the caller on top of the stack.
    Serve { method: u16 },
    /// A call this function made returned; continue at `step`.
    Resume { step: u16 },
    /// The stack does not make sense for this function.
    Invalid,
}

pub(crate) fn entry(st: &mut BoutiqueState, me: u16) -> Entry {
    match st.top() {
        None => Entry::Start,
        Some(f) if f.caller == me && f.done != 0 => {
            st.depth -= 1;
            Entry::Resume { step: f.ret_step }
        }
        Some(f) if f.callee == me && f.done == 0 => Entry::Serve { method: f.method },
        Some(_) => Entry::Invalid,
    }
}

/// `me` calls `method` of `callee`, resuming at `ret_step` when it returns.
pub(crate) fn call(st: &mut BoutiqueState, me: u16, callee: u16, method: u16, ret_step: u16) -> Action {
    let d = st.depth as usize;
    if d >= MAX_DEPTH {
        st.fail(500, "call stack too deep");
        return finish(st);
    }
    st.frames[d] = Frame { caller: me, callee, method, ret_step, done: 0, _pad: [0; 3] };
    st.depth += 1;
    Action::Call(FunctionId(callee))
}

/// The current call is done: back to its caller (or, with no caller, the
/// gateway - which only happens when the stack was corrupted).
pub(crate) fn finish(st: &mut BoutiqueState) -> Action {
    match st.depth.checked_sub(1).map(usize::from) {
        Some(i) if i < MAX_DEPTH => {
            st.frames[i].done = 1;
            Action::Call(FunctionId(st.frames[i].caller))
        }
        _ => Action::Reply,
    }
}

/// Runs `f` on the slot's state, or answers 500 when the chain's app area
/// cannot hold it.
pub(crate) fn with_state(txn: &mut Txn<'_>, f: impl FnOnce(&mut BoutiqueState) -> Action) -> Action {
    match txn.state_or_error::<BoutiqueState>("boutique") {
        Some(st) => f(st),
        None => Action::Reply,
    }
}

/// The handlers of the ten functions, by the names chain.yaml uses.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register("boutique.frontend", frontend::Frontend::default())
        .register("boutique.currency", services::CurrencyService::default())
        .register("boutique.catalog", services::CatalogService)
        .register("boutique.cart", services::CartService::default())
        .register("boutique.recommendation", services::RecommendationService)
        .register("boutique.shipping", services::ShippingService)
        .register("boutique.checkout", services::CheckoutService::default())
        .register("boutique.payment", services::PaymentService)
        .register("boutique.email", services::EmailService::default())
        .register("boutique.ad", services::AdService);
    r
}
