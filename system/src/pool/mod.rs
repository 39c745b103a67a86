//! The shared-memory pool of one chain (its security domain).
//!
//! A memfd (hugetlbfs-backed when huge pages are reserved) mapped by the
//! gateway and the chain's functions only. It holds a header with magic,
//! version and geometry, then `slot_count` fixed-size slots. Each slot begins
//! with a [`SlotHeader`] whose single 64-bit state word packs
//! `generation | holder | state`. Allocation, every hand-over between
//! processes and every recall by the control plane is one compare-and-swap
//! on that word, so a process that dies at any instruction leaves every slot
//! free, on its way to a function, or taken by a registration the control
//! plane recalls once that process has exited - and a live process that
//! lost a race for a slot learns it from its failed CAS before it writes.
//! Nothing inside a pool is a pointer: every process maps it at its own
//! address.

mod layout;
mod mem;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

pub use layout::{Holder, PoolCounters, SlotState, POOL_MAGIC, POOL_VERSION, SLOT_HEADER_SIZE};
use layout::{PoolHeader, SlotHeader, StateWord};
pub use mem::SlotMem;

use crate::descriptor::{ChainId, Descriptor, FunctionId};
use crate::sys::{self, SharedMapping};

const HUGE_PAGE: usize = 2 << 20;

/// One registration of a process with the control plane (a new one per
/// restart): the name a slot's holder has while that process works on it,
/// so the slots of a dead process can be found and recalled. 23 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease(pub u32);

impl Lease {
    /// The gateway's lease (it lives as long as the pool).
    pub const GATEWAY: Lease = Lease(1);
    pub const MAX: u32 = (1 << 23) - 1;
}

/// A slot named by index and generation, as a descriptor names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotRef {
    pub index: u32,
    pub gen: u32,
}

/// Geometry of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    pub slots: u32,
    /// Usable bytes per slot (after the slot header).
    pub slot_payload: u32,
}

/// Whether the pool is backed by huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    Normal,
    Huge,
}

impl PageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Normal => "4k",
            PageKind::Huge => "hugetlb-2m",
        }
    }
}

/// Why a descriptor was refused (never dereferenced).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed descriptor (bad magic)")]
    Malformed,
    #[error("slot index out of range")]
    OutOfRange,
    #[error("stale descriptor (slot free or generation mismatch)")]
    Stale,
    #[error("descriptor addressed to another chain")]
    WrongChain,
    #[error("slot is not on its way to this function (forged, replayed or recalled)")]
    NotAddressed,
    #[error("a re-sent descriptor whose first copy already arrived")]
    ResentDuplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("cannot create pool memory: {0}")]
    Create(#[source] std::io::Error),
    #[error("cannot map pool: {0}")]
    Map(#[source] std::io::Error),
    #[error("not a SPRIGHT pool (bad magic or version {0})")]
    BadHeader(u32),
    #[error("pool geometry does not fit its file ({0} bytes)")]
    BadGeometry(usize),
    #[error("invalid pool configuration: {0}")]
    Config(String),
    #[error("slot {0:?} is not allocated with that generation (double free?)")]
    NotAllocated(SlotRef),
}

/// One chain's pool, mapped into this process.
#[derive(Debug)]
pub struct Pool {
    map: SharedMapping,
    fd: OwnedFd,
    slots: u32,
    slot_stride: usize,
    chain: ChainId,
    pages: PageKind,
}

impl Pool {
    /// Creates and initialises a pool for `chain`. Uses huge pages when the
    /// system has some reserved and the mapping succeeds, else normal pages.
    pub fn create(chain: ChainId, geometry: PoolGeometry) -> Result<Self, PoolError> {
        if geometry.slots == 0 || geometry.slots > 1 << 20 {
            return Err(PoolError::Config(format!("slots must be 1..=1048576, got {}", geometry.slots)));
        }
        if geometry.slot_payload < 256 {
            return Err(PoolError::Config(format!("slot payload must be at least 256 bytes, got {}", geometry.slot_payload)));
        }
        let stride = (SLOT_HEADER_SIZE + geometry.slot_payload as usize).next_multiple_of(64);
        let len = layout::slots_offset() + stride * geometry.slots as usize;
        // The pid makes leftovers attributable to their deployment.
        let name = format!("spright-{}-pool-chain{}", std::process::id(), chain.0);
        let (fd, map, pages) = match Self::try_huge(&name, len) {
            Some(ok) => ok,
            None => {
                let fd = sys::memfd(&name, len, false).map_err(PoolError::Create)?;
                let map = SharedMapping::map(fd.as_raw_fd(), len).map_err(PoolError::Map)?;
                (fd, map, PageKind::Normal)
            }
        };
        let pool = Self { map, fd, slots: geometry.slots, slot_stride: stride, chain, pages };
        // SAFETY: fresh zeroed mapping of at least header size.
        unsafe {
            pool.map.as_ptr().cast::<PoolHeader>().write(PoolHeader::new(chain, geometry.slots, stride as u32, pages, len));
        }
        Ok(pool)
    }

    fn try_huge(name: &str, len: usize) -> Option<(OwnedFd, SharedMapping, PageKind)> {
        if sys::reserved_huge_pages() == 0 {
            return None;
        }
        let len = len.next_multiple_of(HUGE_PAGE);
        let fd = sys::memfd(name, len, true).ok()?;
        let map = SharedMapping::map(fd.as_raw_fd(), len).ok()?;
        // Touch every page now: a hugetlb mapping SIGBUSes on first touch
        // when the reservation runs out, and we want that failure here.
        for off in (0..len).step_by(HUGE_PAGE) {
            // SAFETY: off < len and the mapping is len bytes, writable and shared.
            unsafe { map.as_ptr().add(off).write_volatile(0) };
        }
        Some((fd, map, PageKind::Huge))
    }

    /// Maps a pool created by another process (received over SCM_RIGHTS).
    pub fn open(fd: OwnedFd) -> Result<Self, PoolError> {
        let len = sys::fd_size(fd.as_raw_fd()).map_err(PoolError::Map)?;
        if len < layout::slots_offset() {
            return Err(PoolError::BadGeometry(len));
        }
        let map = SharedMapping::map(fd.as_raw_fd(), len).map_err(PoolError::Map)?;
        // SAFETY: mapping is at least header-sized (checked above).
        let h = unsafe { &*map.as_ptr().cast::<PoolHeader>() };
        if h.magic != POOL_MAGIC || h.version != POOL_VERSION {
            return Err(PoolError::BadHeader(h.version));
        }
        let stride = h.slot_stride as usize;
        let need = layout::slots_offset() + stride * h.slot_count as usize;
        if stride < SLOT_HEADER_SIZE + 256 || !stride.is_multiple_of(64) || need > len {
            return Err(PoolError::BadGeometry(len));
        }
        let pages = if h.huge_pages != 0 { PageKind::Huge } else { PageKind::Normal };
        Ok(Self { slots: h.slot_count, slot_stride: stride, chain: ChainId(h.chain), pages, map, fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn chain(&self) -> ChainId {
        self.chain
    }

    pub fn slot_count(&self) -> u32 {
        self.slots
    }

    pub fn slot_payload_size(&self) -> usize {
        self.slot_stride - SLOT_HEADER_SIZE
    }

    pub fn page_kind(&self) -> PageKind {
        self.pages
    }

    /// Bytes mapped (including header and padding).
    pub fn mapped_bytes(&self) -> usize {
        self.map.len()
    }

    fn header(&self) -> &PoolHeader {
        // SAFETY: validated at create/open; lives as long as the mapping.
        unsafe { &*self.map.as_ptr().cast::<PoolHeader>() }
    }

    fn slot_header(&self, index: u32) -> &SlotHeader {
        debug_assert!(index < self.slots);
        // SAFETY: index < slots, so the header lies inside the mapping.
        unsafe { &*self.map.as_ptr().add(layout::slots_offset() + index as usize * self.slot_stride).cast::<SlotHeader>() }
    }

    /// Allocates a free slot, taken by `lease`; `None` when the pool is
    /// exhausted.
    ///
    /// Lock-free and safe across processes: the slot's state word goes from
    /// free to taken in one CAS that also bumps the generation.
    pub fn alloc(&self, lease: Lease) -> Option<SlotRef> {
        debug_assert!(lease.0 != 0 && lease.0 <= Lease::MAX);
        let n = self.slots;
        let start = self.header().alloc_cursor.load(Ordering::Relaxed) % n;
        for i in 0..n {
            let index = (start + i) % n;
            let word = &self.slot_header(index).state;
            let cur = StateWord(word.load(Ordering::Relaxed));
            if cur.state() != SlotState::Free {
                continue;
            }
            let next = StateWord::pack(cur.next_gen(), Holder::Taken(lease), SlotState::InUse);
            if word.compare_exchange(cur.0, next.0, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                self.header().alloc_cursor.store(index + 1, Ordering::Relaxed);
                return Some(SlotRef { index, gen: next.gen() });
            }
        }
        self.header().counters.exhausted.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Frees an allocated (or abandoned) slot. A second free of the same
    /// generation fails: the slot is someone else's by then.
    pub fn free(&self, slot: SlotRef) -> Result<(), PoolError> {
        if slot.index >= self.slots {
            return Err(PoolError::NotAllocated(slot));
        }
        let word = &self.slot_header(slot.index).state;
        let mut cur = StateWord(word.load(Ordering::Acquire));
        loop {
            if cur.gen() != slot.gen || cur.state() == SlotState::Free {
                return Err(PoolError::NotAllocated(slot));
            }
            let next = StateWord::pack(cur.gen(), Holder::Sent(FunctionId::GATEWAY), SlotState::Free);
            match word.compare_exchange(cur.0, next.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(actual) => cur = StateWord(actual),
            }
        }
    }

    /// Marks an in-use slot as abandoned by its requester (the gateway gave
    /// up waiting): it stays out of circulation until it comes back or its
    /// holder dies, because a slow function may still be writing into it.
    pub fn abandon(&self, slot: SlotRef) -> bool {
        self.update(slot, |w| (w.state() == SlotState::InUse).then(|| StateWord::pack(w.gen(), w.holder(), SlotState::Abandoned))).is_some()
    }

    /// One CAS loop on `slot`'s state word: `next` decides from the current
    /// word (of the right generation, not free) what to write, or refuses.
    /// Returns the word that was replaced.
    fn update(&self, slot: SlotRef, mut next: impl FnMut(StateWord) -> Option<StateWord>) -> Option<StateWord> {
        if slot.index >= self.slots {
            return None;
        }
        let word = &self.slot_header(slot.index).state;
        let mut cur = StateWord(word.load(Ordering::Acquire));
        loop {
            if cur.gen() != slot.gen || cur.state() == SlotState::Free {
                return None;
            }
            let new = next(cur)?;
            match word.compare_exchange(cur.0, new.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(cur),
                Err(actual) => cur = StateWord(actual),
            }
        }
    }

    /// Moves `slot` from `from` to `to`; false when `from` did not hold it
    /// (then the caller lost it - to a recall - and must not touch it).
    fn move_holder(&self, slot: SlotRef, from: Holder, to: Holder) -> bool {
        self.update(slot, |w| (w.holder() == from).then(|| w.with_holder(to))).is_some()
    }

    /// Hands a slot taken by `by` over to function `to`, before its
    /// descriptor leaves. After this the sender must not touch the slot.
    pub fn hand_over(&self, slot: SlotRef, by: Lease, to: FunctionId) -> bool {
        self.move_holder(slot, Holder::Taken(by), Holder::Sent(to))
    }

    /// Takes back a slot handed to `to` whose descriptor could not be sent;
    /// false when the control plane recalled it in the meantime.
    pub fn take_back(&self, slot: SlotRef, to: FunctionId, by: Lease) -> bool {
        self.move_holder(slot, Holder::Sent(to), Holder::Taken(by))
    }

    /// Checks a received descriptor and takes its slot for `by`: the slot
    /// must be of this chain, in use with the descriptor's generation and on
    /// its way to the descriptor's destination. One CAS; the payload is not
    /// touched. Every refusal is counted in the pool header.
    pub fn take(&self, d: &Descriptor, by: Lease) -> Result<SlotRef, Rejection> {
        let result = self.check(d).and_then(|slot| {
            let sent = Holder::Sent(d.destination().function);
            let not_taken = if d.flags & Descriptor::RESENT != 0 { Rejection::ResentDuplicate } else { Rejection::NotAddressed };
            self.move_holder(slot, sent, Holder::Taken(by)).then_some(slot).ok_or(not_taken)
        });
        if let Err(r) = result {
            let c = &self.header().counters;
            match r {
                Rejection::Malformed => &c.rejected_malformed,
                Rejection::OutOfRange => &c.rejected_out_of_range,
                Rejection::Stale => &c.rejected_stale,
                Rejection::WrongChain => &c.rejected_wrong_chain,
                Rejection::NotAddressed => &c.rejected_not_addressed,
                Rejection::ResentDuplicate => &c.resent_duplicates,
            }
            .fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn check(&self, d: &Descriptor) -> Result<SlotRef, Rejection> {
        if !d.is_well_formed() {
            return Err(Rejection::Malformed);
        }
        if d.destination().chain != self.chain {
            return Err(Rejection::WrongChain);
        }
        if d.slot >= self.slots {
            return Err(Rejection::OutOfRange);
        }
        let (state, gen) = self.state(d.slot);
        if state == SlotState::Free || gen != d.gen {
            return Err(Rejection::Stale);
        }
        Ok(SlotRef { index: d.slot, gen: d.gen })
    }

    /// State of a slot as it is now.
    pub fn state(&self, index: u32) -> (SlotState, u32) {
        let w = StateWord(self.slot_header(index).state.load(Ordering::Acquire));
        (w.state(), w.gen())
    }

    /// Who holds a slot now (meaningless for a free one).
    pub fn holder(&self, index: u32) -> Holder {
        StateWord(self.slot_header(index).state.load(Ordering::Acquire)).holder()
    }

    /// Recalls every slot `holder` has to the gateway (whose process is
    /// gone, or whose descriptor is lost): one CAS each, so a live sender
    /// racing the recall either keeps the slot or learns it lost it.
    /// Returns the slots recalled and their state.
    pub fn recall(&self, holder: Holder) -> Vec<(SlotRef, SlotState)> {
        (0..self.slots)
            .filter_map(|index| {
                let (_, gen) = self.state(index);
                self.recall_one(SlotRef { index, gen }, holder).map(|state| (SlotRef { index, gen }, state))
            })
            .collect()
    }

    /// Whether `slot` (this generation) is on its way to `f` now: one read
    /// of its state word.
    pub fn is_sent_to(&self, slot: SlotRef, f: FunctionId) -> bool {
        slot.index < self.slots && {
            let w = StateWord(self.slot_header(slot.index).state.load(Ordering::Acquire));
            w.gen() == slot.gen && w.state() != SlotState::Free && w.holder() == Holder::Sent(f)
        }
    }

    /// Slots on their way to `f` now.
    pub fn sent_to(&self, f: FunctionId) -> Vec<SlotRef> {
        (0..self.slots).map(|index| SlotRef { index, gen: self.state(index).1 }).filter(|&slot| self.is_sent_to(slot, f)).collect()
    }

    /// [`Self::recall`] for one slot; its state if it was recalled.
    pub fn recall_one(&self, slot: SlotRef, holder: Holder) -> Option<SlotState> {
        self.update(slot, |w| (w.holder() == holder).then(|| w.with_holder(Holder::Taken(Lease::GATEWAY)))).map(|w| w.state())
    }

    /// Slots not free right now.
    pub fn occupancy(&self) -> u32 {
        (0..self.slots).filter(|&i| self.state(i).0 != SlotState::Free).count() as u32
    }

    /// Rejection and exhaustion counters (shared by every process of the chain).
    pub fn counters(&self) -> PoolCounters {
        self.header().counters.snapshot()
    }

    /// A slot's payload. Safe to call for any slot: the view only copies
    /// bytes in and out atomically ([`SlotMem`]), so a process that writes
    /// a slot it does not hold corrupts data, never this process. Whether
    /// the bytes are worth anything is the protocol's business: hold the
    /// slot (allocate or [`Self::take`] it) before using them.
    pub fn payload(&self, slot: SlotRef) -> SlotMem<'_> {
        assert!(slot.index < self.slots, "slot {} of {}", slot.index, self.slots);
        let base = layout::slots_offset() + slot.index as usize * self.slot_stride + SLOT_HEADER_SIZE;
        // SAFETY: base + payload size <= the mapping's length (index < slots,
        // geometry checked at create/open), and the mapping lives as long as
        // &self.
        unsafe { SlotMem::shared(self.map.as_ptr().add(base), self.slot_payload_size()) }
    }
}

#[cfg(test)]
mod tests;
