//! The protobuf codec of `dcr.v1`: prost's, except that a request that does
//! not decode (malformed bytes, or `Struct` nesting past prost's recursion
//! limit) is INVALID_ARGUMENT with a one-line reason. prost's own error is
//! INTERNAL and spells out the whole field path, kilobytes for a deep message.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic_prost::ProstEncoder;

/// Set as the codec of the generated server and client (`build.rs`).
#[derive(Debug, Clone)]
pub struct DcrCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for DcrCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for DcrCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = DcrDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        DcrDecoder(PhantomData)
    }
}

/// Decodes one message; see the module documentation.
#[derive(Debug)]
pub struct DcrDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for DcrDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|e| malformed(&e))
    }
}

/// The decoder's last words only ("recursion limit reached", "invalid wire
/// type"), without the field path before them.
fn malformed(err: &prost::DecodeError) -> Status {
    let text = err.to_string();
    let reason = text.rsplit(": ").next().unwrap_or("malformed");
    Status::invalid_argument(format!(
        "the request is not a valid protobuf message: {reason}"
    ))
}
