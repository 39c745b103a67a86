//! spright: a Rust implementation of SPRIGHT (SIGCOMM 2022).
//!
//! Serverless function chains where one gateway does the protocol work once,
//! the payload stays in a per-chain shared-memory [`pool`], and functions
//! pass 16-byte [`descriptor`]s to each other through a [`transport`]: an
//! eBPF `sk_msg` program on a sockmap (S-SPRIGHT), polled rings (D-SPRIGHT)
//! or eventfd-woken rings (E-SPRIGHT).

pub mod bpf;
pub mod cli;
pub mod control;
pub mod descriptor;
pub mod examples;
pub mod form;
pub mod gateway;
pub mod http1;
pub mod pool;
pub mod sdk;
pub mod service_time;
pub mod sys;
pub mod transport;
pub mod txn;
pub mod wire;
