//! Mesos' JSON mapping of protobuf messages (placeholder until the JSON codec lands).

use crate::codec::CodecError;
use prost::{Message, Name};

/// Encodes `message` as Mesos JSON.
pub fn to_vec<M: Message + Name>(_message: &M) -> Result<Vec<u8>, CodecError> {
    Err(CodecError::Json("JSON codec not built yet".into()))
}

/// Decodes Mesos JSON into a message of type `M`.
pub fn from_slice<M: Message + Name + Default>(_data: &[u8]) -> Result<M, CodecError> {
    Err(CodecError::Json("JSON codec not built yet".into()))
}
