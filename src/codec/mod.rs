//! Wire formats of the Mesos V1 HTTP APIs.
//!
//! [`Format`] picks one of the two media types Mesos accepts: protobuf (`application/x-protobuf`,
//! the SDK's default) and Mesos' own JSON mapping (`application/json`, see [`json`]). Both
//! encode any prost message generated under [`crate::v1`].

pub mod json;

use bytes::Bytes;
use prost::{Message, Name};

/// Media type of protobuf bodies.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/x-protobuf";
/// Media type of JSON bodies.
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// One of the two body encodings Mesos speaks on its V1 endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `application/x-protobuf`: compact and fast; the SDK's default.
    #[default]
    Protobuf,
    /// `application/json` in Mesos' mapping (proto field names, enum names, padded base64 bytes).
    Json,
}

impl Format {
    /// The exact `Content-Type` / `Accept` value for this format.
    pub const fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => PROTOBUF_CONTENT_TYPE,
            Format::Json => JSON_CONTENT_TYPE,
        }
    }

    /// Maps a `Content-Type` header value to a format by exact string equality, as Mesos does:
    /// `application/json; charset=utf-8` is not recognised.
    pub fn from_content_type(value: &str) -> Option<Self> {
        match value {
            PROTOBUF_CONTENT_TYPE => Some(Format::Protobuf),
            JSON_CONTENT_TYPE => Some(Format::Json),
            _ => None,
        }
    }

    /// Encodes `message` in this format.
    pub fn encode<M: Message + Name>(self, message: &M) -> Result<Bytes, CodecError> {
        match self {
            Format::Protobuf => Ok(Bytes::from(message.encode_to_vec())),
            Format::Json => json::to_vec(message).map(Bytes::from),
        }
    }

    /// Decodes a message of type `M` from `data` in this format.
    pub fn decode<M: Message + Name + Default>(self, data: &[u8]) -> Result<M, CodecError> {
        match self {
            Format::Protobuf => M::decode(data).map_err(CodecError::Protobuf),
            Format::Json => json::from_slice(data),
        }
    }
}

/// A body that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("invalid protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The text is not valid JSON, or does not fit the expected message.
    #[error("invalid JSON message: {0}")]
    Json(String),
}
