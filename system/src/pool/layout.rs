//! In-memory layout of a pool: header, slot headers and the packed state word.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::Lease;
use crate::descriptor::FunctionId;

use crate::descriptor::ChainId;

use super::PageKind;

pub const POOL_MAGIC: u64 = u64::from_le_bytes(*b"SPRIGHTP");
pub const POOL_VERSION: u32 = 2;
pub const SLOT_HEADER_SIZE: usize = 64;

/// Offset of slot 0: the header rounded to a page, so slots start aligned.
pub const fn slots_offset() -> usize {
    4096
}

#[repr(C)]
pub struct PoolHeader {
    pub magic: u64,
    pub version: u32,
    pub chain: u16,
    pub huge_pages: u16,
    pub slot_count: u32,
    pub slot_stride: u32,
    pub total_len: u64,
    _pad0: [u8; 32],
    /// Where the next allocation starts looking (a hint; any value works).
    pub alloc_cursor: AtomicU32,
    _pad1: [u8; 60],
    pub counters: SharedCounters,
}

const _: () = assert!(std::mem::size_of::<PoolHeader>() <= slots_offset());
const _: () = assert!(std::mem::size_of::<SlotHeader>() <= SLOT_HEADER_SIZE);

impl PoolHeader {
    pub fn new(chain: ChainId, slots: u32, stride: u32, pages: PageKind, len: usize) -> Self {
        Self {
            magic: POOL_MAGIC,
            version: POOL_VERSION,
            chain: chain.0,
            huge_pages: (pages == PageKind::Huge) as u16,
            slot_count: slots,
            slot_stride: stride,
            total_len: len as u64,
            _pad0: [0; 32],
            alloc_cursor: AtomicU32::new(0),
            _pad1: [0; 60],
            counters: SharedCounters::default(),
        }
    }
}

/// Counters every process of the chain bumps, read by the control plane.
#[repr(C)]
#[derive(Default)]
pub struct SharedCounters {
    pub rejected_malformed: AtomicU64,
    pub rejected_out_of_range: AtomicU64,
    pub rejected_stale: AtomicU64,
    pub rejected_wrong_chain: AtomicU64,
    pub rejected_not_addressed: AtomicU64,
    pub resent_duplicates: AtomicU64,
    pub exhausted: AtomicU64,
}

/// A snapshot of [`SharedCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCounters {
    pub rejected_malformed: u64,
    pub rejected_out_of_range: u64,
    pub rejected_stale: u64,
    pub rejected_wrong_chain: u64,
    /// Valid slot, but not on its way to the receiver (forged, replayed or
    /// recalled by the control plane).
    pub rejected_not_addressed: u64,
    /// Re-sent descriptors (after a restart) whose first copy had arrived:
    /// not refusals of anything wrong, so not in `rejected_total`.
    pub resent_duplicates: u64,
    pub exhausted: u64,
}

impl PoolCounters {
    pub fn rejected_total(&self) -> u64 {
        self.rejected_malformed + self.rejected_out_of_range + self.rejected_stale + self.rejected_wrong_chain + self.rejected_not_addressed
    }
}

impl SharedCounters {
    pub fn snapshot(&self) -> PoolCounters {
        PoolCounters {
            rejected_malformed: self.rejected_malformed.load(Ordering::Relaxed),
            rejected_out_of_range: self.rejected_out_of_range.load(Ordering::Relaxed),
            rejected_stale: self.rejected_stale.load(Ordering::Relaxed),
            rejected_wrong_chain: self.rejected_wrong_chain.load(Ordering::Relaxed),
            rejected_not_addressed: self.rejected_not_addressed.load(Ordering::Relaxed),
            resent_duplicates: self.resent_duplicates.load(Ordering::Relaxed),
            exhausted: self.exhausted.load(Ordering::Relaxed),
        }
    }
}

#[repr(C)]
pub struct SlotHeader {
    /// [`StateWord`]: generation, holder and state in one atomic word.
    pub state: AtomicU64,
}

/// Lifecycle of a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    Free,
    InUse,
    /// The requester gave up (timeout, client gone); the slot comes back
    /// when its holder returns it or dies.
    Abandoned,
}

/// Who may write a slot now; 24 bits of the state word.
///
/// A sender moves a slot from `Taken` by itself to `Sent` to the receiving
/// function, and the receiver from `Sent` to itself to `Taken` by its own
/// registration, each with one CAS on the state word - as does the control
/// plane when it recalls the slots of a dead process. Whoever's CAS succeeds
/// owns the slot; everybody else must not touch its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    /// On its way to this function of the chain; no process writes it.
    Sent(FunctionId),
    /// Being processed by the process registered under this lease.
    Taken(Lease),
}

impl Holder {
    const TAKEN: u32 = 1 << 23;

    fn bits(self) -> u32 {
        match self {
            Holder::Sent(f) => f.0 as u32,
            Holder::Taken(l) => Self::TAKEN | l.0,
        }
    }

    fn from_bits(b: u32) -> Self {
        if b & Self::TAKEN != 0 {
            Holder::Taken(Lease(b & !Self::TAKEN))
        } else {
            Holder::Sent(FunctionId(b as u16))
        }
    }
}

/// `gen:32 | holder:24 | state:8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateWord(pub u64);

impl StateWord {
    pub fn pack(gen: u32, holder: Holder, state: SlotState) -> Self {
        let s = match state {
            SlotState::Free => 0u64,
            SlotState::InUse => 1,
            SlotState::Abandoned => 2,
        };
        Self((gen as u64) << 32 | ((holder.bits() as u64) & 0xff_ffff) << 8 | s)
    }

    pub fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub fn holder(self) -> Holder {
        Holder::from_bits(((self.0 >> 8) & 0xff_ffff) as u32)
    }

    /// The same slot, generation and state with another holder.
    pub fn with_holder(self, holder: Holder) -> Self {
        Self::pack(self.gen(), holder, self.state())
    }

    pub fn state(self) -> SlotState {
        match self.0 & 0xff {
            0 => SlotState::Free,
            1 => SlotState::InUse,
            _ => SlotState::Abandoned,
        }
    }

    /// The generation the next owner gets; 0 is never handed out.
    pub fn next_gen(self) -> u32 {
        match self.gen().wrapping_add(1) {
            0 => 1,
            g => g,
        }
    }
}
