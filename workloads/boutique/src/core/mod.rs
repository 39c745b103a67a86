//! Online Boutique's business logic, transport-free: every mode (SPRIGHT,
//! Knative-style, gRPC) calls exactly this code, so the only difference
//! between modes is the plumbing.

pub mod ads;
pub mod cart;
pub mod catalog;
pub mod email;
pub mod ids;
pub mod money;
pub mod order;
pub mod payment;
pub mod recommendation;
pub mod shipping;
