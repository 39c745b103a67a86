//! Shared-memory descriptor rings (D-SPRIGHT, and the base of E-SPRIGHT).
//!
//! A chain has one [`RingSegment`] (a memfd) holding one multi-producer,
//! single-consumer ring per endpoint, indexed by function id (0 = gateway).
//! Only the chain's processes receive the memfd: isolation by capability.
//! The ring is a bounded sequence-numbered queue after Vyukov's, changed so
//! that a producer killed at any instruction cannot wedge it: a producer
//! claims a cell with one CAS on the *cell's* sequence word, which records
//! the position and the claiming function ([`CellSeq`]), then moves the
//! enqueue position (any producer that finds a claimed cell there moves it
//! too), writes the descriptor and publishes. A cell claimed by a producer
//! that then died stays claimed in its name; the control plane, told of the
//! death, marks it skipped ([`RingSegment::repair_producer`]) and the single
//! consumer passes over it. Capacity is at least the pool's slot count, and
//! a slot has one descriptor in flight at a time, so a ring cannot fill up
//! in correct operation.
//!
//! [`polling_link`] busy-polls, as D-SPRIGHT (DPDK) does. With more pollers
//! than cores it yields between polls so every poller still progresses - at
//! scheduler-tick latency; the control plane says so when it starts them.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use zerocopy::{FromBytes, IntoBytes};

use super::{Closer, DescriptorRx, DescriptorTx, Link, TransportError};
use crate::descriptor::{ChainId, Descriptor, Endpoint, FunctionId};
use crate::sys::{self, SharedMapping};

const SEGMENT_MAGIC: u64 = u64::from_le_bytes(*b"SPRIGHTR");
const SEGMENT_HEADER: usize = 64;
const RING_HEADER: usize = 256;
const CELL: usize = 32;
/// Empty polls before a poller yields its core.
const POLLS_BEFORE_YIELD: u32 = 256;

#[repr(C)]
struct SegmentHeader {
    magic: u64,
    chain: u32,
    rings: u32,
    capacity: u32,
}

#[repr(C)]
struct RingHeader {
    enqueue: AtomicU64,
    _p0: [u8; 56],
    dequeue: AtomicU64,
    _p1: [u8; 56],
    /// Set by an eventring consumer about to sleep on its doorbell.
    pub sleeping: AtomicU32,
    /// Set at shutdown so a consumer stops.
    pub closed: AtomicU32,
    /// Doorbells rung (eventring) - for measurement.
    pub wakeups: AtomicU64,
    /// Cells passed over because their producer died mid-push.
    pub skipped: AtomicU64,
}

#[repr(C)]
struct Cell {
    seq: AtomicU64,
    desc: [u8; 16],
}

const _: () = assert!(std::mem::size_of::<RingHeader>() <= RING_HEADER);

/// A cell's sequence word: `tag:16 | position:48`.
///
/// For the cell of position `p` it goes `free(p)` -> `claimed(p, f)` ->
/// `published(p)` (= `p + 1`) -> `free(p + capacity)`, or, when producer
/// `f` died, `claimed(p, f)` -> `skipped(p)` -> `free(p + capacity)`. The
/// values only grow along that path, so comparing with an exact expected
/// value is free of ABA. 48 bits of position last 650 days at five million
/// descriptors a second on one ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CellSeq(u64);

impl CellSeq {
    const POSITION: u64 = (1 << 48) - 1;
    const SKIPPED: u64 = 0xffff;

    fn free(pos: u64) -> Self {
        Self(pos)
    }

    fn published(pos: u64) -> Self {
        Self(pos + 1)
    }

    /// Tags 1..=4096 name the claiming function (id + 1; ids are < 4096).
    fn claimed(pos: u64, by: FunctionId) -> Self {
        Self((by.0 as u64 + 1) << 48 | pos)
    }

    fn skipped(pos: u64) -> Self {
        Self(Self::SKIPPED << 48 | pos)
    }

    fn tag(self) -> u64 {
        self.0 >> 48
    }

    /// The position this value belongs to (a published cell holds `p + 1`).
    fn position(self) -> u64 {
        self.0 & Self::POSITION
    }

    fn claimant(self) -> Option<FunctionId> {
        matches!(self.tag(), 1..=4096).then(|| FunctionId((self.tag() - 1) as u16))
    }

    /// Claimed, skipped or published at `pos`: a producer got there.
    fn taken_at(self, pos: u64) -> bool {
        (self.tag() != 0 && self.position() == pos) || self == Self::published(pos)
    }
}

/// The steps of a push that change shared state ([`RingSegment::push_stepped`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushStep {
    Claimed,
    Advanced,
    Written,
    Published,
}
const _: () = assert!(std::mem::size_of::<Cell>() <= CELL);

/// All rings of one chain, mapped into this process.
#[derive(Debug)]
pub struct RingSegment {
    map: SharedMapping,
    fd: OwnedFd,
    chain: ChainId,
    rings: u32,
    capacity: u32,
}

impl RingSegment {
    /// Creates `rings` rings (one per function id, 0 = gateway) of at least
    /// `min_capacity` cells each.
    pub fn create(chain: ChainId, rings: u32, min_capacity: u32) -> io::Result<Self> {
        let capacity = min_capacity.max(2).next_power_of_two();
        let len = Self::len_for(rings, capacity);
        let fd = sys::memfd(&format!("spright-{}-rings-chain{}", std::process::id(), chain.0), len, false)?;
        let map = SharedMapping::map(fd.as_raw_fd(), len)?;
        // SAFETY: fresh zeroed mapping large enough for header and rings.
        unsafe {
            map.as_ptr().cast::<SegmentHeader>().write(SegmentHeader { magic: SEGMENT_MAGIC, chain: chain.0 as u32, rings, capacity })
        };
        let seg = Self { map, fd, chain, rings, capacity };
        for r in 0..rings {
            for i in 0..capacity {
                seg.cell(r, i as u64).seq.store(CellSeq::free(i as u64).0, Ordering::Relaxed);
            }
        }
        Ok(seg)
    }

    /// Maps a segment received from the control plane.
    pub fn open(fd: OwnedFd) -> io::Result<Self> {
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        let len = sys::fd_size(fd.as_raw_fd())?;
        if len < SEGMENT_HEADER {
            return Err(bad("ring segment too small"));
        }
        let map = SharedMapping::map(fd.as_raw_fd(), len)?;
        // SAFETY: the mapping is at least SEGMENT_HEADER bytes (checked above) and page-aligned; the header's fields are atomics or read once here.
        let h = unsafe { &*map.as_ptr().cast::<SegmentHeader>() };
        if h.magic != SEGMENT_MAGIC || !h.capacity.is_power_of_two() || Self::len_for(h.rings, h.capacity) > len {
            return Err(bad("not a SPRIGHT ring segment"));
        }
        Ok(Self { chain: ChainId(h.chain as u16), rings: h.rings, capacity: h.capacity, map, fd })
    }

    fn len_for(rings: u32, capacity: u32) -> usize {
        SEGMENT_HEADER + rings as usize * (RING_HEADER + capacity as usize * CELL)
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn chain(&self) -> ChainId {
        self.chain
    }

    pub fn rings(&self) -> u32 {
        self.rings
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    fn ring_base(&self, ring: u32) -> usize {
        SEGMENT_HEADER + ring as usize * (RING_HEADER + self.capacity as usize * CELL)
    }

    fn header(&self, ring: u32) -> &RingHeader {
        // SAFETY: ring < rings (checked by callers), inside the mapping.
        unsafe { &*self.map.as_ptr().add(self.ring_base(ring)).cast::<RingHeader>() }
    }

    fn cell(&self, ring: u32, pos: u64) -> &Cell {
        let i = (pos & (self.capacity as u64 - 1)) as usize;
        // SAFETY: i < capacity (masked) and ring < rings, so the cell lies inside the mapping (its length was checked against len_for at open); Cell is made of atomics and a byte array read volatile, sound to share.
        unsafe { &*self.map.as_ptr().add(self.ring_base(ring) + RING_HEADER + i * CELL).cast::<Cell>() }
    }

    /// Ring index of a destination, if it is in this chain.
    fn ring_of(&self, dst: Endpoint) -> Option<u32> {
        (dst.chain == self.chain && (dst.function.0 as u32) < self.rings).then_some(dst.function.0 as u32)
    }

    /// Enqueues `d` on its destination's ring on behalf of function `from`
    /// (the claim names it, so its death can be repaired).
    pub fn push(&self, from: FunctionId, d: &Descriptor) -> Result<u32, TransportError> {
        self.push_stepped(from, d, |_| {})
    }

    /// [`Self::push`] with a hook called after each step that changes shared
    /// state, so a test can kill the producer at every one of them.
    #[doc(hidden)]
    pub fn push_stepped(&self, from: FunctionId, d: &Descriptor, mut at: impl FnMut(PushStep)) -> Result<u32, TransportError> {
        let ring = self.ring_of(d.destination()).ok_or(TransportError::NoSuchDestination(d.dst))?;
        let h = self.header(ring);
        let mut pos = h.enqueue.load(Ordering::Relaxed);
        loop {
            let cell = self.cell(ring, pos);
            let seq = CellSeq(cell.seq.load(Ordering::Acquire));
            if seq == CellSeq::free(pos) {
                let claim = CellSeq::claimed(pos, from);
                if cell.seq.compare_exchange(seq.0, claim.0, Ordering::Acquire, Ordering::Relaxed).is_err() {
                    continue;
                }
                at(PushStep::Claimed);
                // Another producer may have moved it for us (see below).
                let _ = h.enqueue.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
                at(PushStep::Advanced);
                // SAFETY: the claim gives us this cell's bytes until we publish; the cell lies inside the mapping (see `cell`).
                unsafe { std::ptr::write_volatile(cell.desc.as_ptr() as *mut [u8; 16], d.as_bytes().try_into().unwrap()) };
                at(PushStep::Written);
                cell.seq.store(CellSeq::published(pos).0, Ordering::Release);
                at(PushStep::Published);
                return Ok(ring);
            }
            if seq.taken_at(pos) {
                // Claimed at this position by a producer that has not moved
                // the enqueue position yet (it may be dead): move it for it.
                let _ = h.enqueue.compare_exchange(pos, pos + 1, Ordering::Relaxed, Ordering::Relaxed);
                pos += 1;
            } else if seq.position() < pos {
                // Still holds the previous lap: the consumer is behind.
                return Err(TransportError::Full(d.dst));
            } else {
                pos = h.enqueue.load(Ordering::Relaxed);
            }
        }
    }

    /// Dequeues everything available on `ring` (single consumer only). A
    /// cell whose producer died before publishing is passed over once the
    /// control plane has marked it ([`Self::repair_producer`]).
    pub fn pop_all(&self, ring: u32, out: &mut Vec<Descriptor>) -> usize {
        let h = self.header(ring);
        let mut pos = h.dequeue.load(Ordering::Relaxed);
        let mut n = 0;
        loop {
            let cell = self.cell(ring, pos);
            let seq = CellSeq(cell.seq.load(Ordering::Acquire));
            if seq == CellSeq::published(pos) {
                // SAFETY: the cell's 16 descriptor bytes are inside the mapping; the Acquire load of seq above orders this read after the producer's write, and a volatile copy of plain bytes is defined whatever another process does.
                let bytes: [u8; 16] = unsafe { std::ptr::read_volatile(cell.desc.as_ptr() as *const [u8; 16]) };
                out.push(Descriptor::read_from_bytes(&bytes).expect("16 bytes"));
                n += 1;
            } else if seq == CellSeq::skipped(pos) {
                h.skipped.fetch_add(1, Ordering::Relaxed);
            } else {
                break;
            }
            // Move the position before releasing the cell, so a consumer that
            // dies between the two leaves a state `repair_consumer` can fix.
            h.dequeue.store(pos + 1, Ordering::Relaxed);
            cell.seq.store(CellSeq::free(pos + self.capacity as u64).0, Ordering::Release);
            pos += 1;
        }
        n
    }

    /// Called by the control plane after `ring`'s consumer died: completes a
    /// release the consumer may have been killed in the middle of.
    pub fn repair_consumer(&self, ring: u32) {
        let h = self.header(ring);
        let pos = h.dequeue.load(Ordering::Acquire);
        if pos == 0 {
            return;
        }
        let prev = self.cell(ring, pos - 1);
        let seq = CellSeq(prev.seq.load(Ordering::Acquire));
        if seq == CellSeq::published(pos - 1) || seq == CellSeq::skipped(pos - 1) {
            prev.seq.store(CellSeq::free(pos - 1 + self.capacity as u64).0, Ordering::Release);
        }
    }

    /// Called by the control plane once function `dead` has exited, before
    /// another instance of it is admitted: every cell it claimed and never
    /// published is marked skipped, so its consumer passes over it instead
    /// of waiting forever. Returns how many cells were marked.
    ///
    /// Sound only while no live process pushes as `dead` (a live claimant
    /// could still write the cell after it is skipped and reused).
    pub fn repair_producer(&self, dead: FunctionId) -> usize {
        let mut n = 0;
        for ring in 0..self.rings {
            for i in 0..self.capacity as u64 {
                let cell = self.cell(ring, i);
                let seq = CellSeq(cell.seq.load(Ordering::Acquire));
                if seq.claimant() == Some(dead) {
                    let skip = CellSeq::skipped(seq.position());
                    n += cell.seq.compare_exchange(seq.0, skip.0, Ordering::AcqRel, Ordering::Relaxed).is_ok() as usize;
                }
            }
        }
        n
    }

    /// Cells of `ring` passed over because their producer died mid-push.
    pub fn skipped(&self, ring: u32) -> u64 {
        self.header(ring).skipped.load(Ordering::Relaxed)
    }

    /// Doorbells rung towards `ring` so far.
    pub fn wakeups(&self, ring: u32) -> u64 {
        self.header(ring).wakeups.load(Ordering::Relaxed)
    }

    pub(crate) fn set_sleeping(&self, ring: u32, on: bool) {
        self.header(ring).sleeping.store(on as u32, Ordering::SeqCst);
    }

    /// True when the consumer of `ring` announced it is going to sleep.
    /// Paired with the consumer's re-check after announcing (both SeqCst), so
    /// a push is never missed.
    pub(crate) fn consumer_sleeping(&self, ring: u32) -> bool {
        fence(Ordering::SeqCst);
        self.header(ring).sleeping.load(Ordering::SeqCst) != 0
    }

    pub(crate) fn note_wakeup(&self, ring: u32) {
        self.header(ring).wakeups.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn close(&self, ring: u32) {
        self.header(ring).closed.store(1, Ordering::Release);
    }

    pub(crate) fn is_closed(&self, ring: u32) -> bool {
        self.header(ring).closed.load(Ordering::Acquire) != 0
    }

    /// Clears the closed flag (a restarted consumer reuses its ring).
    pub fn reopen(&self, ring: u32) {
        self.header(ring).closed.store(0, Ordering::Release);
    }
}

struct Tx {
    seg: Arc<RingSegment>,
    me: FunctionId,
}

struct PollRx {
    seg: Arc<RingSegment>,
    ring: u32,
}

struct Close {
    seg: Arc<RingSegment>,
    ring: u32,
}

/// The busy-polling link of endpoint `me` (D-SPRIGHT).
pub fn polling_link(seg: Arc<RingSegment>, me: Endpoint) -> io::Result<Link> {
    let ring = ring_index(&seg, me)?;
    Ok(Link {
        tx: Arc::new(Tx { seg: seg.clone(), me: me.function }),
        rx: Box::new(PollRx { seg: seg.clone(), ring }),
        closer: Arc::new(Close { seg, ring }),
    })
}

impl DescriptorTx for Tx {
    fn send(&self, d: &Descriptor) -> Result<(), TransportError> {
        self.seg.push(self.me, d).map(|_| ())
    }
}

impl DescriptorRx for PollRx {
    fn recv(&mut self, out: &mut Vec<Descriptor>) -> Result<(), TransportError> {
        let mut empty = 0u32;
        loop {
            if self.seg.pop_all(self.ring, out) > 0 {
                return Ok(());
            }
            if self.seg.is_closed(self.ring) {
                return Err(TransportError::Closed);
            }
            empty += 1;
            if empty.is_multiple_of(POLLS_BEFORE_YIELD) {
                // Let other pollers run when cores are oversubscribed.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl Closer for Close {
    fn close(&self) {
        self.seg.close(self.ring);
    }
}

pub(crate) fn ring_index(seg: &RingSegment, me: Endpoint) -> io::Result<u32> {
    seg.ring_of(me).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{me} has no ring")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::FunctionId;

    const GW: FunctionId = FunctionId::GATEWAY;

    fn ep(f: u16) -> Endpoint {
        Endpoint::new(ChainId(1), FunctionId(f))
    }

    #[test]
    fn fifo_per_ring_and_full_detection() {
        let seg = RingSegment::create(ChainId(1), 3, 4).unwrap();
        for i in 0..4 {
            seg.push(GW, &Descriptor::new(ep(2), i, 1)).unwrap();
        }
        assert!(matches!(seg.push(GW, &Descriptor::new(ep(2), 9, 1)), Err(TransportError::Full(_))));
        let mut out = Vec::new();
        assert_eq!(seg.pop_all(1, &mut out), 0, "other rings untouched");
        assert_eq!(seg.pop_all(2, &mut out), 4);
        assert_eq!(out.iter().map(|d| d.slot).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        seg.push(GW, &Descriptor::new(ep(2), 5, 1)).unwrap();
        assert!(matches!(seg.push(GW, &Descriptor::new(ep(7), 0, 1)), Err(TransportError::NoSuchDestination(_))));
        let other_chain = Endpoint::new(ChainId(2), FunctionId(1));
        assert!(seg.push(GW, &Descriptor::new(other_chain, 0, 1)).is_err(), "rings never cross chains");
    }

    #[test]
    fn many_producers_one_consumer_lose_nothing() {
        let seg = Arc::new(RingSegment::create(ChainId(1), 2, 64).unwrap());
        let producers: Vec<_> = (0..4u32)
            .map(|p| {
                let seg = seg.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        let d = Descriptor::new(ep(1), p, i);
                        while seg.push(GW, &d).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u32; 4];
        let mut out = Vec::new();
        let mut total = 0;
        while total < 40_000 {
            out.clear();
            total += seg.pop_all(1, &mut out);
            for d in &out {
                assert_eq!(d.gen, next[d.slot as usize], "per-producer order");
                next[d.slot as usize] += 1;
            }
        }
        producers.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(next, [10_000; 4]);
    }

    #[test]
    fn shared_across_a_reopened_mapping() {
        let a = RingSegment::create(ChainId(3), 2, 8).unwrap();
        let b = RingSegment::open(a.fd().try_clone_to_owned().unwrap()).unwrap();
        a.push(GW, &Descriptor::new(Endpoint::new(ChainId(3), FunctionId(1)), 4, 2)).unwrap();
        let mut out = Vec::new();
        assert_eq!(b.pop_all(1, &mut out), 1);
        assert_eq!((out[0].slot, out[0].gen), (4, 2));
    }

    #[test]
    fn repair_completes_an_interrupted_pop() {
        let seg = RingSegment::create(ChainId(1), 2, 2).unwrap();
        seg.push(GW, &Descriptor::new(ep(1), 0, 1)).unwrap();
        // Simulate a consumer killed after moving its position but before
        // releasing the cell.
        let h = seg.header(1);
        h.dequeue.store(1, Ordering::Relaxed);
        seg.repair_consumer(1);
        for i in 0..2 {
            seg.push(GW, &Descriptor::new(ep(1), i, 1)).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(seg.pop_all(1, &mut out), 2);
    }

    /// A producer process killed after each step of a push: before the
    /// repair its consumer may be stuck behind the dead claim; after it,
    /// everything the live producers pushed arrives, nothing twice, and the
    /// dead cell is counted as skipped.
    #[test]
    fn a_producer_killed_at_every_step_wedges_nothing() {
        const DEAD: FunctionId = FunctionId(3);
        for step in [PushStep::Claimed, PushStep::Advanced, PushStep::Written, PushStep::Published] {
            let seg = RingSegment::create(ChainId(1), 2, 8).unwrap();
            // One descriptor ahead of the dead one, so the consumer has moved.
            seg.push(GW, &Descriptor::new(ep(1), 100, 1)).unwrap();
            // SAFETY: the child only touches the shared mapping (atomics and
            // a volatile write, no allocation) and then kills itself.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let _ = seg.push_stepped(DEAD, &Descriptor::new(ep(1), 101, 1), |s| {
                    if s == step {
                        // SAFETY: raising a signal on ourselves.
                        unsafe { libc::raise(libc::SIGKILL) };
                    }
                });
                // SAFETY: leave without running the parent's destructors.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waiting for our own child.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert!(libc::WIFSIGNALED(status), "{step:?}: the producer was killed");
            for slot in 102..106 {
                seg.push(GW, &Descriptor::new(ep(1), slot, 1)).unwrap();
            }
            let mut out = Vec::new();
            seg.pop_all(1, &mut out);
            let published = step == PushStep::Published;
            let before_repair: Vec<u32> = out.iter().map(|d| d.slot).collect();
            assert_eq!(before_repair, if published { vec![100, 101, 102, 103, 104, 105] } else { vec![100] }, "{step:?}");
            assert_eq!(seg.repair_producer(DEAD), usize::from(!published), "{step:?}");
            seg.pop_all(1, &mut out);
            let slots: Vec<u32> = out.iter().map(|d| d.slot).collect();
            let mut expect = vec![100, 102, 103, 104, 105];
            if published {
                expect.insert(1, 101);
            }
            assert_eq!(slots, expect, "{step:?}");
            assert_eq!(seg.skipped(1), u64::from(!published), "{step:?}");
            // The ring keeps working past the repaired cell, lap after lap.
            for lap in 0..3u32 {
                for i in 0..8 {
                    seg.push(GW, &Descriptor::new(ep(1), lap * 8 + i, 2)).unwrap();
                }
                out.clear();
                assert_eq!(seg.pop_all(1, &mut out), 8, "{step:?}: lap {lap}");
            }
        }
    }

    /// Producers racing a claim whose owner died keep the order of what they
    /// publish and lose nothing, and the repair never touches a live claim.
    #[test]
    fn repair_spares_live_producers() {
        let seg = RingSegment::create(ChainId(1), 2, 4).unwrap();
        // A claim left by dead function 9 at position 0.
        seg.cell(1, 0).seq.store(CellSeq::claimed(0, FunctionId(9)).0, Ordering::Release);
        seg.push(FunctionId(2), &Descriptor::new(ep(1), 7, 1)).unwrap();
        let live = CellSeq::claimed(2, FunctionId(2));
        seg.cell(1, 2).seq.store(live.0, Ordering::Release);
        assert_eq!(seg.repair_producer(FunctionId(9)), 1);
        assert_eq!(CellSeq(seg.cell(1, 2).seq.load(Ordering::Acquire)), live, "a live claim is left alone");
        let mut out = Vec::new();
        assert_eq!(seg.pop_all(1, &mut out), 1);
        assert_eq!(out[0].slot, 7);
    }
}
