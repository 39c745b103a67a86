//! In-memory layout of a pool: header, slot headers and the packed state word.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::descriptor::ChainId;

use super::PageKind;

pub const POOL_MAGIC: u64 = u64::from_le_bytes(*b"SPRIGHTP");
pub const POOL_VERSION: u32 = 1;
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
    pub exhausted: AtomicU64,
}

/// A snapshot of [`SharedCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCounters {
    pub rejected_malformed: u64,
    pub rejected_out_of_range: u64,
    pub rejected_stale: u64,
    pub rejected_wrong_chain: u64,
    pub exhausted: u64,
}

impl PoolCounters {
    pub fn rejected_total(&self) -> u64 {
        self.rejected_malformed + self.rejected_out_of_range + self.rejected_stale + self.rejected_wrong_chain
    }
}

impl SharedCounters {
    pub fn snapshot(&self) -> PoolCounters {
        PoolCounters {
            rejected_malformed: self.rejected_malformed.load(Ordering::Relaxed),
            rejected_out_of_range: self.rejected_out_of_range.load(Ordering::Relaxed),
            rejected_stale: self.rejected_stale.load(Ordering::Relaxed),
            rejected_wrong_chain: self.rejected_wrong_chain.load(Ordering::Relaxed),
            exhausted: self.exhausted.load(Ordering::Relaxed),
        }
    }
}

#[repr(C)]
pub struct SlotHeader {
    /// [`StateWord`]: generation, lease and state in one atomic word.
    pub state: AtomicU64,
    /// Endpoint key of whoever processes the slot now.
    pub holder: AtomicU32,
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

/// `gen:32 | lease:24 | state:8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateWord(pub u64);

impl StateWord {
    pub fn pack(gen: u32, lease: u32, state: SlotState) -> Self {
        let s = match state {
            SlotState::Free => 0u64,
            SlotState::InUse => 1,
            SlotState::Abandoned => 2,
        };
        Self((gen as u64) << 32 | ((lease as u64) & 0xff_ffff) << 8 | s)
    }

    pub fn gen(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub fn lease(self) -> u32 {
        ((self.0 >> 8) & 0xff_ffff) as u32
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
