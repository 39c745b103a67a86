//! The protobuf codec of every generated client and server (wired in by
//! `build.rs`'s `codec_path`): tonic-prost's [`ProstCodec`], counting each
//! message its encoder writes and each message handed to its decoder
//! (`spright::wire`). A unary call is one request and one response, so a
//! call counts 1 serialization + 1 deserialization at the client and the
//! same at the server; an error status carries no message and counts
//! nothing. HTTP/2 framing is not counted: the message is.

// The wrapper counts (clippy refuses `spright::wire::{serialized, deserialized}`
// and prost's raw entry points elsewhere).
#![allow(clippy::disallowed_methods)]

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with counted messages.
#[derive(Debug, Clone)]
pub struct CountingCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for CountingCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::new())
    }
}

impl<T, U> Codec for CountingCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = Counted<ProstEncoder<T>>;
    type Decoder = Counted<ProstDecoder<U>>;

    fn encoder(&mut self) -> Self::Encoder {
        Counted(self.0.encoder())
    }

    fn decoder(&mut self) -> Self::Decoder {
        Counted(self.0.decoder())
    }
}

/// An encoder or decoder that counts the messages passing through it.
#[derive(Debug, Clone)]
pub struct Counted<C>(C);

impl<E: Encoder<Error = Status>> Encoder for Counted<E> {
    type Item = E::Item;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        spright::wire::serialized(1);
        self.0.encode(item, dst)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

impl<D: Decoder<Error = Status>> Decoder for Counted<D> {
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        spright::wire::deserialized(1);
        self.0.decode(src)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
