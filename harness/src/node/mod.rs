//! A node is where the system under test runs, with its collectors. The
//! experiment driver reaches it through one protocol only - line-delimited
//! JSON requests and replies ([`protocol`]) - whether the node is this
//! machine (a thread of the harness over a socket pair) or another one
//! (`harness node --stdio` at the end of an SSH session): one way to drive
//! a node, not two.
//!
//! The node side ([`server`]) brings a mode of a workload up and down with
//! [`crate::deploy`], samples CPU, and reads every counter at each phase
//! boundary; when its input ends, for whatever reason, it stops everything
//! it started. The driver side ([`client`]) sends requests and maps the
//! node's clock onto its own.

pub mod client;
pub mod protocol;
pub mod server;
pub mod ssh;
