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

    /// Rings `ring`'s doorbell if its consumer announced it sleeps (and
    /// counts the wake-up): the one wake-up rule of every path that makes
    /// something new visible in a ring.
    fn wake_if_sleeping(&self, seg: &RingSegment, ring: u32) -> io::Result<()> {
        if seg.consumer_sleeping(ring) {
            seg.note_wakeup(ring);
            self.ring(ring)?;
        }
        Ok(())
    }
}

/// [`RingSegment::repair_producer`] for an event-driven chain: marks the
/// cells `dead` claimed and never published as skipped, then wakes every
/// consumer that sleeps. One may have gone to sleep at such a cell with
/// published ones behind it; only a push would wake it, and when those
/// waiting requests hold the whole pool no push comes - the chain would
/// stay wedged. A consumer woken for nothing re-checks and sleeps again.
pub fn repair_producer(seg: &RingSegment, bells: &Doorbells, dead: FunctionId) -> usize {
    let skipped = seg.repair_producer(dead);
    if skipped > 0 {
        for ring in 0..seg.rings() {
            let _ = bells.wake_if_sleeping(seg, ring);
        }
    }
    skipped
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
        Ok(self.bells.wake_if_sleeping(&self.seg, ring)?)
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

    /// A producer dies between claiming a cell and publishing it; another
    /// publishes behind it and wakes the consumer, which stops at the
    /// claimed cell and sleeps again. The control plane's repair must wake
    /// it: nothing else will when the waiting requests hold the pool.
    #[test]
    fn a_consumer_asleep_behind_a_dead_producers_claim_is_woken_by_the_repair() {
        use crate::transport::ring::PushStep;
        let seg = Arc::new(RingSegment::create(ChainId(1), 3, 1024).unwrap());
        let bells = Arc::new(Doorbells::create(3).unwrap());
        let (consumer, dead, live) = (FunctionId(1), FunctionId(2), Endpoint::new(ChainId(1), FunctionId(0)));
        let mut rx = link(seg.clone(), bells.clone(), Endpoint::new(ChainId(1), consumer)).unwrap().rx;
        let closer = link(seg.clone(), bells.clone(), Endpoint::new(ChainId(1), consumer)).unwrap().closer;
        let (got_tx, got) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            while rx.recv(&mut out).is_ok() {
                for d in out.drain(..) {
                    let _ = got_tx.send(d.slot);
                }
            }
        });
        let to_consumer = |slot| Descriptor::new(Endpoint::new(ChainId(1), consumer), slot, 1);
        // The dead producer: killed right after its claim.
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            seg.push_stepped(dead, &to_consumer(1), |step| assert!(!matches!(step, PushStep::Claimed), "killed"))
        }));
        assert!(died.is_err());
        let producer = link(seg.clone(), bells.clone(), live).unwrap().tx;
        producer.send(&to_consumer(2)).unwrap();
        // The consumer woke for it, found the claimed cell first, slept again.
        let asleep = std::time::Instant::now();
        while !(seg.consumer_sleeping(1) && seg.wakeups(1) >= 1) {
            assert!(asleep.elapsed() < std::time::Duration::from_secs(5), "the consumer never went back to sleep");
            std::thread::yield_now();
        }
        assert_eq!(repair_producer(&seg, &bells, dead), 1);
        assert_eq!(got.recv_timeout(std::time::Duration::from_secs(5)), Ok(2), "the repair woke the consumer");
        closer.close();
        thread.join().unwrap();
    }

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
