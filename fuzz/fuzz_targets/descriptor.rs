//! The descriptor decoders and the check every received descriptor gets.
//!
//! Input: a byte stream as a receive loop reads it. Invariants:
//! * [`FrameDecoder`] yields exactly the stream's whole 16-byte frames,
//!   and [`ScanningDecoder`] only well-formed descriptors, each a copy of
//!   16 bytes of the stream starting at a magic, non-overlapping, with
//!   every other byte counted as skipped and fewer than 16 left pending;
//! * neither depends on how the stream is cut into reads: every chunking
//!   yields the same descriptors (and skip count) as the whole stream;
//! * [`Pool::take`] refuses every decoded descriptor but an exact one
//!   for a slot on its way to its destination (in use or abandoned by the
//!   gateway: the function it went to cannot know), and never panics.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use spright::descriptor::{ChainId, Descriptor, Endpoint, FrameDecoder, FunctionId, ScanningDecoder, DESCRIPTOR_MAGIC, DESCRIPTOR_SIZE};
use spright::pool::{Holder, Lease, Pool, PoolGeometry, SlotRef, SlotState};
use zerocopy::IntoBytes;

/// Read sizes tried on every stream (0: the whole stream in one read).
const CUTS: [usize; 9] = [0, 1, 2, 3, 7, 15, 16, 17, 31];

/// The chain and function of [`SLOTS`]' in-flight slot.
const CHAIN: ChainId = ChainId(1);
const TO: FunctionId = FunctionId(1);

/// A pool of four slots: 0 free, 1 on its way to function 1, 2 taken by
/// the gateway, 3 on its way to function 1 and abandoned by the gateway.
struct Slots {
    pool: Pool,
    sent: [SlotRef; 2],
}

static SLOTS: LazyLock<Slots> = LazyLock::new(|| {
    let pool = Pool::create(CHAIN, PoolGeometry { slots: 4, slot_payload: 256 }).expect("a pool");
    let s: Vec<SlotRef> = (0..4).map(|_| pool.alloc(Lease::GATEWAY).expect("a slot")).collect();
    pool.free(s[0]).unwrap();
    assert!(pool.hand_over(s[1], Lease::GATEWAY, TO));
    assert!(pool.hand_over(s[3], Lease::GATEWAY, TO) && pool.abandon(s[3]));
    Slots { pool, sent: [s[1], s[3]] }
});

fn scan(stream: &[u8], cut: usize) -> (Vec<Descriptor>, u64) {
    let (mut dec, mut out) = (ScanningDecoder::default(), Vec::new());
    for piece in stream.chunks(if cut == 0 { stream.len().max(1) } else { cut }) {
        dec.feed(piece, &mut out);
    }
    (out, dec.skipped)
}

fn frames(stream: &[u8], cut: usize) -> Vec<Descriptor> {
    let (mut dec, mut out) = (FrameDecoder::default(), Vec::new());
    for piece in stream.chunks(if cut == 0 { stream.len().max(1) } else { cut }) {
        dec.feed(piece, &mut out);
    }
    out
}

fuzz_target!(|stream: &[u8]| {
    // Frames: every whole 16 bytes, in order, whatever the reads.
    let whole: Vec<&[u8]> = stream.chunks_exact(DESCRIPTOR_SIZE).collect();
    for cut in CUTS {
        let got = frames(stream, cut);
        assert_eq!(got.len(), whole.len(), "reads of {cut}");
        assert!(got.iter().zip(&whole).all(|(d, w)| d.as_bytes() == *w), "reads of {cut}");
    }

    // Scanning: well-formed, copies of the stream at increasing offsets,
    // everything else skipped, the same for every chunking.
    let (found, skipped) = scan(stream, 0);
    let magic = DESCRIPTOR_MAGIC.to_ne_bytes();
    let mut at = 0;
    for d in &found {
        assert!(d.is_well_formed() && d.magic == DESCRIPTOR_MAGIC, "{d:?}");
        let off = (at..stream.len()).find(|&o| stream[o..].starts_with(&magic)).expect("a magic in the stream");
        assert_eq!(&stream[off..off + DESCRIPTOR_SIZE], d.as_bytes(), "a copy of the first 16 bytes at a magic");
        at = off + DESCRIPTOR_SIZE;
        assert_eq!(Endpoint::from_key(d.dst).key(), d.dst);
        let _ = format!("{d:?} {}", d.destination());
    }
    let consumed = skipped as usize + found.len() * DESCRIPTOR_SIZE;
    assert!(consumed <= stream.len() && stream.len() - consumed < DESCRIPTOR_SIZE, "{consumed} of {} bytes", stream.len());
    for cut in &CUTS[1..] {
        assert_eq!(scan(stream, *cut), (found.clone(), skipped), "reads of {cut}");
    }

    // The receiving side's check: only the exact descriptor of a slot on
    // its way to function 1 is taken, and put back on its way after.
    let s = &*SLOTS;
    for d in &found {
        let exact = d.destination() == Endpoint::new(CHAIN, TO) && s.sent.contains(&SlotRef { index: d.slot, gen: d.gen });
        match s.pool.take(d, Lease(2)) {
            Ok(slot) => {
                assert!(exact, "{d:?} taken");
                assert_eq!(slot, SlotRef { index: d.slot, gen: d.gen });
                assert!(s.pool.hand_over(slot, Lease(2), TO));
            }
            Err(_) => assert!(!exact, "{d:?} refused"),
        }
    }
    assert_eq!(s.pool.occupancy(), 3);
    assert!(s.sent.iter().all(|slot| s.pool.holder(slot.index) == Holder::Sent(TO)));
    assert_eq!(s.pool.state(s.sent[1].index).0, SlotState::Abandoned);
});
