//! The descriptor: the only thing that moves between the functions of a chain.
//!
//! 16 bytes, fixed layout, no pointers (every process maps the pool at its own
//! address). It names a slot by index and generation; the generation catches
//! stale and double use. The layout is shared with `bpf/spright_common.h`.

use std::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Marks a well-formed descriptor ("SP").
pub const DESCRIPTOR_MAGIC: u16 = 0x5350;
/// Size of a descriptor on the wire.
pub const DESCRIPTOR_SIZE: usize = std::mem::size_of::<Descriptor>();

/// A function's id inside its chain; 0 is the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionId(pub u16);

impl FunctionId {
    pub const GATEWAY: FunctionId = FunctionId(0);
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A chain's number in a deployment, starting at 1 (its security domain).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(pub u16);

/// A delivery address: a function of a chain. Encoded as `chain << 16 | fn`,
/// the key of SPROXY's socket map and edge map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub chain: ChainId,
    pub function: FunctionId,
}

impl Endpoint {
    pub const fn new(chain: ChainId, function: FunctionId) -> Self {
        Self { chain, function }
    }

    pub const fn gateway(chain: ChainId) -> Self {
        Self { chain, function: FunctionId::GATEWAY }
    }

    pub const fn key(self) -> u32 {
        (self.chain.0 as u32) << 16 | self.function.0 as u32
    }

    pub const fn from_key(key: u32) -> Self {
        Self { chain: ChainId((key >> 16) as u16), function: FunctionId(key as u16) }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "chain{}/fn{}", self.chain.0, self.function.0)
    }
}

/// The wire format. Constructed with [`Descriptor::new`]; fields are public
/// for tests that forge descriptors on purpose.
#[derive(Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Descriptor {
    pub magic: u16,
    pub flags: u16,
    pub dst: u32,
    pub slot: u32,
    pub gen: u32,
}

impl Descriptor {
    /// Set on a descriptor the control plane sent again because the first
    /// one may have been lost with its destination's process: a receiver
    /// that finds its slot already taken counts it as a duplicate, not as a
    /// forgery.
    pub const RESENT: u16 = 1;

    pub fn new(dst: Endpoint, slot: u32, gen: u32) -> Self {
        Self { magic: DESCRIPTOR_MAGIC, flags: 0, dst: dst.key(), slot, gen }
    }

    /// The same descriptor marked [`Self::RESENT`].
    pub fn resent(mut self) -> Self {
        self.flags |= Self::RESENT;
        self
    }

    pub fn destination(&self) -> Endpoint {
        Endpoint::from_key(self.dst)
    }

    pub fn is_well_formed(&self) -> bool {
        self.magic == DESCRIPTOR_MAGIC
    }
}

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Descriptor(-> {}, slot {} gen {}, flags {:#x})", self.destination(), self.slot, self.gen, self.flags)
    }
}

/// Reassembles descriptors from a byte stream: sends coalesce and split, so a
/// read can end mid-descriptor.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    partial: [u8; DESCRIPTOR_SIZE],
    have: usize,
}

impl FrameDecoder {
    /// Feeds bytes read from the stream; complete descriptors go to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Descriptor>) {
        if self.have > 0 {
            let take = (DESCRIPTOR_SIZE - self.have).min(bytes.len());
            self.partial[self.have..self.have + take].copy_from_slice(&bytes[..take]);
            self.have += take;
            bytes = &bytes[take..];
            if self.have < DESCRIPTOR_SIZE {
                return;
            }
            out.push(Descriptor::read_from_bytes(&self.partial).expect("exact size"));
            self.have = 0;
        }
        let mut chunks = bytes.chunks_exact(DESCRIPTOR_SIZE);
        for c in &mut chunks {
            out.push(Descriptor::read_from_bytes(c).expect("exact size"));
        }
        let rest = chunks.remainder();
        self.partial[..rest.len()].copy_from_slice(rest);
        self.have = rest.len();
    }
}

/// Decodes a stream in which descriptors may be mixed with messages of any
/// length (the sink where SPROXY puts everything it refused): frames are
/// only taken where the magic is, and bytes before it are skipped one by
/// one, so a refused message of odd length cannot shift the frames of the
/// descriptors after it. (A [`FrameDecoder`] trusts every 16 bytes.)
#[derive(Default)]
pub struct ScanningDecoder {
    pending: Vec<u8>,
    /// Bytes skipped so far because they did not start a descriptor.
    pub skipped: u64,
}

impl ScanningDecoder {
    /// Feeds bytes; the well-formed descriptors found go to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<Descriptor>) {
        self.pending.extend_from_slice(bytes);
        let magic = DESCRIPTOR_MAGIC.to_ne_bytes();
        let mut at = 0;
        while self.pending.len() - at >= DESCRIPTOR_SIZE {
            if self.pending[at..at + 2] == magic {
                out.push(Descriptor::read_from_bytes(&self.pending[at..at + DESCRIPTOR_SIZE]).expect("exact size"));
                at += DESCRIPTOR_SIZE;
            } else {
                at += 1;
                self.skipped += 1;
            }
        }
        self.pending.drain(..at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refused messages of any length between descriptors: every
    /// descriptor is still found, whatever the reads' boundaries.
    #[test]
    fn the_sink_decoder_finds_descriptors_after_messages_of_any_length() {
        let ds: Vec<Descriptor> = (1..=3).map(|i| Descriptor::new(Endpoint::new(ChainId(1), FunctionId(i)), u32::from(i), 7)).collect();
        let mut stream = b"odd".to_vec();
        stream.extend_from_slice(ds[0].as_bytes());
        stream.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        stream.extend_from_slice(ds[1].as_bytes());
        stream.extend_from_slice(ds[2].as_bytes());
        for chunk in [1, 5, 16, 17, stream.len()] {
            let (mut dec, mut out) = (ScanningDecoder::default(), Vec::new());
            for piece in stream.chunks(chunk) {
                dec.feed(piece, &mut out);
            }
            assert_eq!(
                out.iter().map(|d| d.destination()).collect::<Vec<_>>(),
                ds.iter().map(|d| d.destination()).collect::<Vec<_>>(),
                "reads of {chunk}"
            );
            assert_eq!(dec.skipped as usize, 3 + 18, "reads of {chunk}");
        }
        // What the frame decoder made of the same stream: misaligned.
        let (mut frames, mut out) = (FrameDecoder::default(), Vec::new());
        frames.feed(&stream, &mut out);
        assert!(out.iter().filter(|d| d.is_well_formed()).count() < 3);
    }

    #[test]
    fn layout_matches_the_bpf_header() {
        assert_eq!(DESCRIPTOR_SIZE, 16);
        let d = Descriptor::new(Endpoint::new(ChainId(2), FunctionId(7)), 9, 3);
        let b = d.as_bytes();
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), DESCRIPTOR_MAGIC);
        assert_eq!(u32::from_ne_bytes(b[4..8].try_into().unwrap()), 2 << 16 | 7);
    }

    #[test]
    fn decoder_handles_coalesced_and_split_frames() {
        let ds: Vec<_> = (0..5).map(|i| Descriptor::new(Endpoint::new(ChainId(1), FunctionId(i)), i as u32, 1)).collect();
        let stream: Vec<u8> = ds.iter().flat_map(|d| d.as_bytes().to_vec()).collect();
        for cut in [1usize, 7, 15, 16, 17, 33, 48, 79] {
            let mut dec = FrameDecoder::default();
            let mut out = Vec::new();
            for piece in stream.chunks(cut) {
                dec.feed(piece, &mut out);
            }
            assert_eq!(out, ds, "cut {cut}");
        }
    }

    #[test]
    fn endpoint_key_round_trips() {
        let e = Endpoint::new(ChainId(513), FunctionId(65535));
        assert_eq!(Endpoint::from_key(e.key()), e);
    }
}
