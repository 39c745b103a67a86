//! E-SPRIGHT delivery: the shared-memory rings of [`super::ring`] with an
//! eventfd doorbell per endpoint, rung only when the consumer sleeps.
//!
//! The consumer drains its ring, spins briefly, then announces
//! `sleeping = 1`, re-checks the ring and blocks on its eventfd. A producer
//! pushes, then (after a full fence) rings the doorbell only if the consumer
//! announced sleep. Both sides order "publish, fence, check the other's
//! flag", so a wake-up is never lost; under load the doorbell is seldom rung
//! and transfers cost a few cache misses. No privileges are needed: a
//! function holds only its chain's ring memfd and that chain's eventfds.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use super::ring::{ring_index, RingSegment};
use super::{Closer, DescriptorRx, DescriptorTx, Link, TransportError};
use crate::descriptor::{Descriptor, Endpoint, FunctionId};
use crate::sys;

/// Empty polls before a consumer goes to sleep. Short: spinning is CPU the
/// paper's event-driven design exists to save.
const SPINS_BEFORE_SLEEP: u32 = 64;

/// The chain's doorbells, indexed like its rings (function id).
pub struct Doorbells(Vec<OwnedFd>);

impl Doorbells {
    pub fn create(count: u32) -> io::Result<Self> {
        (0..count).map(|_| sys::eventfd()).collect::<io::Result<Vec<_>>>().map(Self)
    }

    pub fn from_fds(fds: Vec<OwnedFd>) -> Self {
        Self(fds)
    }

    pub fn fds(&self) -> &[OwnedFd] {
        &self.0
    }

    fn ring(&self, ring: u32) -> io::Result<()> {
        sys::eventfd_ring(self.0[ring as usize].as_raw_fd())
    }
}

struct Tx {
    seg: Arc<RingSegment>,
    bells: Arc<Doorbells>,
    me: FunctionId,
}

struct Rx {
    seg: Arc<RingSegment>,
    bells: Arc<Doorbells>,
    ring: u32,
}

struct Close {
    seg: Arc<RingSegment>,
    bells: Arc<Doorbells>,
    ring: u32,
}

/// The event-driven link of endpoint `me`.
pub fn link(seg: Arc<RingSegment>, bells: Arc<Doorbells>, me: Endpoint) -> io::Result<Link> {
    let ring = ring_index(&seg, me)?;
    if bells.0.len() != seg.rings() as usize {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "one doorbell per ring expected"));
    }
    Ok(Link {
        tx: Arc::new(Tx { seg: seg.clone(), bells: bells.clone(), me: me.function }),
        rx: Box::new(Rx { seg: seg.clone(), bells: bells.clone(), ring }),
        closer: Arc::new(Close { seg, bells, ring }),
    })
}

impl DescriptorTx for Tx {
    fn send(&self, d: &Descriptor) -> Result<(), TransportError> {
        let ring = self.seg.push(self.me, d)?;
        if self.seg.consumer_sleeping(ring) {
            self.seg.note_wakeup(ring);
            self.bells.ring(ring)?;
        }
        Ok(())
    }
}

impl DescriptorRx for Rx {
    fn recv(&mut self, out: &mut Vec<Descriptor>) -> Result<(), TransportError> {
        loop {
            for _ in 0..SPINS_BEFORE_SLEEP {
                if self.seg.pop_all(self.ring, out) > 0 {
                    return Ok(());
                }
                if self.seg.is_closed(self.ring) {
                    return Err(TransportError::Closed);
                }
                std::hint::spin_loop();
            }
            self.seg.set_sleeping(self.ring, true);
            // Re-check after announcing: a push that raced the announcement
            // either is visible now or saw the flag and rang the bell.
            if self.seg.pop_all(self.ring, out) > 0 || self.seg.is_closed(self.ring) {
                self.seg.set_sleeping(self.ring, false);
                if out.is_empty() {
                    return Err(TransportError::Closed);
                }
                return Ok(());
            }
            sys::eventfd_wait(self.bells.0[self.ring as usize].as_raw_fd())?;
            self.seg.set_sleeping(self.ring, false);
        }
    }
}

impl Closer for Close {
    fn close(&self) {
        self.seg.close(self.ring);
        let _ = self.bells.ring(self.ring);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::{ChainId, FunctionId};

    #[test]
    fn sleeping_consumer_is_woken_and_close_unblocks() {
        // Sized like a real ring: at least one cell per pool slot.
        let seg = Arc::new(RingSegment::create(ChainId(1), 2, 1024).unwrap());
        let bells = Arc::new(Doorbells::create(2).unwrap());
        let me = Endpoint::new(ChainId(1), FunctionId(1));
        let link = link(seg.clone(), bells.clone(), me).unwrap();
        let mut rx = link.rx;
        let consumer = std::thread::spawn(move || {
            let mut got = 0;
            let mut out = Vec::new();
            loop {
                out.clear();
                match rx.recv(&mut out) {
                    Ok(()) => got += out.len(),
                    Err(TransportError::Closed) => return got,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        for i in 0..1000 {
            link.tx.send(&Descriptor::new(me, i, 1)).unwrap();
            if i % 100 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        link.closer.close();
        assert_eq!(consumer.join().unwrap(), 1000);
        assert!(seg.wakeups(1) >= 1, "the doorbell was used");
    }
}
