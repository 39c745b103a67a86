//! The shared-memory pool of one chain (its security domain).
//!
//! A memfd (hugetlbfs-backed when huge pages are reserved) mapped by the
//! gateway and the chain's functions only. It holds a header with magic,
//! version and geometry, then `slot_count` fixed-size slots. Each slot begins
//! with a [`SlotHeader`] whose single 64-bit state word packs
//! `generation | lease | state`; allocation is one compare-and-swap on that
//! word, so a process that dies at any instruction leaves every slot either
//! free or owned by a lease the control plane can reclaim. Nothing inside a
//! pool is a pointer: every process maps it at its own address.

mod layout;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;

pub use layout::{PoolCounters, SlotState, POOL_MAGIC, POOL_VERSION, SLOT_HEADER_SIZE};
use layout::{PoolHeader, SlotHeader, StateWord};

use crate::descriptor::{ChainId, Descriptor, Endpoint};
use crate::sys::{self, SharedMapping};

const HUGE_PAGE: usize = 2 << 20;

/// Who allocated a slot: the control plane hands one out per registration,
/// so the slots of a dead process can be found and reclaimed. 24 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Lease(pub u32);

impl Lease {
    /// The gateway's lease (it lives as long as the pool).
    pub const GATEWAY: Lease = Lease(1);
    pub const MAX: u32 = (1 << 24) - 1;
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

    /// Allocates a free slot for `lease`; `None` when the pool is exhausted.
    ///
    /// Lock-free and safe across processes: the slot's state word goes from
    /// free to owned in one CAS that also bumps the generation.
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
            let next = StateWord::pack(cur.next_gen(), lease.0, SlotState::InUse);
            if word.compare_exchange(cur.0, next.0, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                self.header().alloc_cursor.store(index + 1, Ordering::Relaxed);
                self.slot_header(index).holder.store(0, Ordering::Relaxed);
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
            let next = StateWord::pack(cur.gen(), 0, SlotState::Free);
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
        let word = &self.slot_header(slot.index).state;
        let cur = StateWord(word.load(Ordering::Acquire));
        if cur.gen() != slot.gen || cur.state() != SlotState::InUse {
            return false;
        }
        let next = StateWord::pack(cur.gen(), cur.lease(), SlotState::Abandoned);
        word.compare_exchange(cur.0, next.0, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// State of a slot as it is now.
    pub fn state(&self, index: u32) -> (SlotState, u32) {
        let w = StateWord(self.slot_header(index).state.load(Ordering::Acquire));
        (w.state(), w.gen())
    }

    /// Checks a received descriptor against the pool without touching the
    /// slot's payload. Every refusal is counted in the pool header.
    pub fn validate(&self, d: &Descriptor) -> Result<SlotRef, Rejection> {
        let result = self.check(d);
        if let Err(r) = result {
            let c = &self.header().counters;
            match r {
                Rejection::Malformed => &c.rejected_malformed,
                Rejection::OutOfRange => &c.rejected_out_of_range,
                Rejection::Stale => &c.rejected_stale,
                Rejection::WrongChain => &c.rejected_wrong_chain,
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

    /// Records which endpoint is processing the slot now (set by the sender
    /// before a descriptor leaves), so the control plane knows whose death
    /// affects which request.
    pub fn set_holder(&self, slot: SlotRef, holder: Endpoint) {
        self.slot_header(slot.index).holder.store(holder.key(), Ordering::Release);
    }

    pub fn holder(&self, index: u32) -> Endpoint {
        Endpoint::from_key(self.slot_header(index).holder.load(Ordering::Acquire))
    }

    /// Allocated or abandoned slots whose holder is `endpoint`.
    pub fn held_by(&self, endpoint: Endpoint) -> Vec<(SlotRef, SlotState)> {
        (0..self.slots)
            .filter_map(|i| {
                let (state, gen) = self.state(i);
                (state != SlotState::Free && self.holder(i) == endpoint).then_some((SlotRef { index: i, gen }, state))
            })
            .collect()
    }

    /// Frees every slot allocated under `lease` (its process died).
    pub fn reclaim_lease(&self, lease: Lease) -> usize {
        let mut n = 0;
        for i in 0..self.slots {
            let w = StateWord(self.slot_header(i).state.load(Ordering::Acquire));
            if w.state() != SlotState::Free && w.lease() == lease.0 && self.free(SlotRef { index: i, gen: w.gen() }).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Slots not free right now.
    pub fn occupancy(&self) -> u32 {
        (0..self.slots).filter(|&i| self.state(i).0 != SlotState::Free).count() as u32
    }

    /// Rejection and exhaustion counters (shared by every process of the chain).
    pub fn counters(&self) -> PoolCounters {
        self.header().counters.snapshot()
    }

    /// Raw access to a slot's payload.
    ///
    /// # Safety
    /// The caller must hold the slot by protocol (it allocated it, or it
    /// received a validated descriptor for it and has not passed it on), so
    /// no other process writes the same bytes concurrently.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn payload(&self, slot: SlotRef) -> &mut [u8] {
        let base = layout::slots_offset() + slot.index as usize * self.slot_stride + SLOT_HEADER_SIZE;
        std::slice::from_raw_parts_mut(self.map.as_ptr().add(base), self.slot_payload_size())
    }
}

#[cfg(test)]
mod tests;
