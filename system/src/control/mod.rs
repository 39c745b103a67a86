//! The control plane: reads the chain file, creates pools and transports,
//! loads SPROXY/EPROXY, starts the gateway and the functions, admits their
//! registrations, supervises them and tears everything down.

pub mod admin;
pub mod chain;
mod deployment;
mod fabric;
pub mod registration;
pub mod supervisor;

pub use deployment::{DeployError, Deployment, Registration, RunOptions};
pub use fabric::FabricError;
