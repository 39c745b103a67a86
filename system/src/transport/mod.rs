//! Descriptor delivery between the endpoints of a chain, behind one interface.
//!
//! * [`skmsg`] - S-SPRIGHT: a loopback TCP socket per endpoint in SPROXY's
//!   sockmap; the kernel redirects each descriptor to its destination.
//! * [`ring`] - D-SPRIGHT: a shared-memory ring per endpoint, busy-polled.
//! * [`eventring`] - E-SPRIGHT: the same rings with an eventfd doorbell rung
//!   only when the consumer sleeps.
//!
//! Every endpoint has one [`Link`]: a sender shared by its worker threads, a
//! receiver owned by its single receive loop (a byte stream needs one reader
//! to reassemble frames) and a closer that unblocks that loop at teardown.

pub mod eventring;
pub mod ring;
pub mod skmsg;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::Deserialize;

use crate::descriptor::Descriptor;

/// Which transport a deployment uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// eBPF sk_msg redirection over a sockmap (S-SPRIGHT); needs root.
    Skmsg,
    /// Busy-polled shared-memory rings (D-SPRIGHT).
    Ring,
    /// Shared-memory rings with an eventfd doorbell (E-SPRIGHT).
    Eventring,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Skmsg => "skmsg",
            TransportKind::Ring => "ring",
            TransportKind::Eventring => "eventring",
        }
    }

    /// The comparison mode this transport implements.
    pub fn mode_name(self) -> &'static str {
        match self {
            TransportKind::Skmsg => "s-spright",
            TransportKind::Ring => "d-spright",
            TransportKind::Eventring => "e-spright",
        }
    }

    /// Whether its receivers spin instead of sleeping.
    pub fn polls(self) -> bool {
        self == TransportKind::Ring
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skmsg" | "s-spright" => Ok(Self::Skmsg),
            "ring" | "d-spright" => Ok(Self::Ring),
            "eventring" | "e-spright" => Ok(Self::Eventring),
            _ => Err(format!("unknown transport {s:?} (expected skmsg, ring or eventring)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("transport closed")]
    Closed,
    #[error("destination {0:#x} is outside this chain's rings")]
    NoSuchDestination(u32),
    #[error("ring of destination {0:#x} is full")]
    Full(u32),
    #[error("short send ({0} of 16 bytes)")]
    ShortSend(usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Sends descriptors from one endpoint (to `d.dst`).
pub trait DescriptorTx: Send + Sync {
    fn send(&self, d: &Descriptor) -> Result<(), TransportError>;
}

/// Receives descriptors addressed to one endpoint.
pub trait DescriptorRx: Send {
    /// Blocks (or polls) until at least one descriptor arrives and appends
    /// every one available to `out`; `Err(Closed)` after [`Closer::close`].
    fn recv(&mut self, out: &mut Vec<Descriptor>) -> Result<(), TransportError>;
}

/// Unblocks an endpoint's receiver for shutdown.
pub trait Closer: Send + Sync {
    fn close(&self);
}

/// An endpoint's view of its transport.
pub struct Link {
    pub tx: Arc<dyn DescriptorTx>,
    pub rx: Box<dyn DescriptorRx>,
    pub closer: Arc<dyn Closer>,
}
