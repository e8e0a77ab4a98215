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

    /// The event encoding Mesos picks for a SUBSCRIBE with this `Accept` header value: JSON
    /// whenever it is acceptable (so also when the header is missing), else protobuf, else none
    /// (Mesos then answers 406). See [`accepts`] for how a header value is read.
    pub fn from_accept(accept: Option<&str>) -> Option<Self> {
        [Format::Json, Format::Protobuf]
            .into_iter()
            .find(|format| accepts(accept, format.content_type()))
    }

    /// Encodes `message` in this format.
    pub fn encode<M: Message + Name>(self, message: &M) -> Result<Bytes, CodecError> {
        match self {
            Format::Protobuf => Ok(Bytes::from(message.encode_to_vec())),
            Format::Json => json::to_vec(message).map(Bytes::from),
        }
    }

    /// Decodes a message of type `M` from `data` in this format.
    ///
    /// JSON decoding rejects missing required fields; protobuf decoding does not look for them
    /// (prost fills absent required fields with defaults). Servers validating requests the way
    /// Mesos does should use [`Format::decode_checked`].
    pub fn decode<M: Message + Name + Default>(self, data: &[u8]) -> Result<M, CodecError> {
        match self {
            Format::Protobuf => M::decode(data).map_err(CodecError::Protobuf),
            Format::Json => json::from_slice(data),
        }
    }

    /// Decodes like [`Format::decode`], and also rejects protobuf bodies that lack required fields
    /// ([`CodecError::MissingRequiredFields`]), as Mesos' parser does. Costs a reflective pass over
    /// protobuf bodies; meant for request validation, not for hot event streams.
    pub fn decode_checked<M: Message + Name + Default>(self, data: &[u8]) -> Result<M, CodecError> {
        match self {
            Format::Protobuf => {
                let message = M::decode(data).map_err(CodecError::Protobuf)?;
                let missing = missing_required_fields_in_protobuf::<M>(data)?;
                if missing.is_empty() {
                    Ok(message)
                } else {
                    Err(CodecError::MissingRequiredFields(missing))
                }
            }
            Format::Json => json::from_slice(data),
        }
    }
}

/// Paths of the required fields missing from `message` and from every message nested in it, such
/// as `subscribe.framework_info.user` or `accept.offer_ids[1].value` (map entries appear as
/// `limits[cpus]`).
///
/// The check runs on the protobuf encoding of `message`. **prost always encodes the `required`
/// fields of generated types** (they are plain fields, not `Option`s, filled with defaults when a
/// decoded body lacked them), so for a typed message this reports nothing: presence is lost once
/// bytes are decoded into the prost type. To validate a request body as Mesos does, check the
/// received bytes: [`Format::decode_checked`] or [`missing_required_fields_in_protobuf`] for
/// protobuf, while the JSON decoder always checks required fields before building the typed
/// message. A type with no descriptor in [`crate::v1::FILE_DESCRIPTOR_SET`] yields no paths.
pub fn missing_required_fields<M: Message + Name>(message: &M) -> Vec<String> {
    match json::to_dynamic(message) {
        Ok(dynamic) => json::missing_in_dynamic(&dynamic),
        Err(_) => Vec::new(),
    }
}

/// Paths of the required fields missing from the protobuf-encoded message `data` of type `M`
/// (see [`missing_required_fields`] for the path syntax).
///
/// This is the check Mesos applies when it parses a protobuf request body: run it on the raw bytes,
/// before decoding them into the prost type (which cannot tell an absent required field from an
/// empty one).
pub fn missing_required_fields_in_protobuf<M: Name>(
    data: &[u8],
) -> Result<Vec<String>, CodecError> {
    let descriptor = json::descriptor_of::<M>()?;
    let dynamic = prost_reflect::DynamicMessage::decode(descriptor, data)?;
    Ok(json::missing_in_dynamic(&dynamic))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::scheduler::{Call, call};

    #[test]
    fn missing_required_fields_in_protobuf_finds_absent_required_fields() {
        // Call.subscribe present but its framework_info (required) absent.
        let call = Call {
            r#type: Some(call::Type::Subscribe as i32),
            ..Default::default()
        };
        let mut bytes = call.encode_to_vec();
        bytes.extend_from_slice(&[0x1a, 0x00]); // field 3 (subscribe), length 0
        let missing = missing_required_fields_in_protobuf::<Call>(&bytes).unwrap();
        assert_eq!(missing, ["subscribe.framework_info"]);
        assert!(missing_required_fields_in_protobuf::<Call>(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn decode_checked_rejects_protobuf_bodies_missing_required_fields() {
        let mut bytes = Call {
            r#type: Some(call::Type::Subscribe as i32),
            ..Default::default()
        }
        .encode_to_vec();
        bytes.extend_from_slice(&[0x1a, 0x00]);
        // Plain decode fills the gap with defaults; the checked decode refuses it.
        assert!(Format::Protobuf.decode::<Call>(&bytes).is_ok());
        let err = Format::Protobuf.decode_checked::<Call>(&bytes).unwrap_err();
        assert!(
            matches!(&err, CodecError::MissingRequiredFields(paths) if paths == &["subscribe.framework_info"])
        );
        assert_eq!(
            err.to_string(),
            "missing required fields: subscribe.framework_info"
        );
        let complete = Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe::default()),
            ..Default::default()
        };
        let bytes = Format::Protobuf.encode(&complete).unwrap();
        assert_eq!(
            Format::Protobuf.decode_checked::<Call>(&bytes).unwrap(),
            complete
        );
        let json = br#"{"type":"SUBSCRIBE","subscribe":{}}"#;
        assert!(Format::Json.decode_checked::<Call>(json).is_err());
    }

    #[test]
    fn typed_messages_always_carry_their_required_fields() {
        let call = Call {
            subscribe: Some(call::Subscribe::default()),
            ..Default::default()
        };
        assert!(missing_required_fields(&call).is_empty());
    }

    #[test]
    fn accept_headers_pick_the_event_format_as_mesos_does() {
        let cases: [(Option<&str>, Option<Format>); 13] = [
            (None, Some(Format::Json)),
            (Some("application/json"), Some(Format::Json)),
            (Some("application/x-protobuf"), Some(Format::Protobuf)),
            (Some("*/*"), Some(Format::Json)),
            (Some("application/*"), Some(Format::Json)),
            (Some("text/plain"), None),
            (Some("application/recordio"), None),
            (
                Some("application/json;q=0, application/x-protobuf"),
                Some(Format::Protobuf),
            ),
            (
                Some("application/x-protobuf, application/json"),
                Some(Format::Json),
            ),
            // The most specific range decides: JSON is refused although */* would allow it.
            (Some("application/json;q=0, */*"), Some(Format::Protobuf)),
            (Some("APPLICATION/JSON ; q=0.5"), Some(Format::Json)),
            // More than one q counts as none; a single malformed q refuses.
            (Some("application/json;q=abc;q=0"), Some(Format::Json)),
            (Some("application/json;q=abc"), None),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::from_accept(accept), want, "Accept {accept:?}");
        }
    }

    #[test]
    fn format_round_trips_both_encodings() {
        let call = Call {
            r#type: Some(call::Type::Teardown as i32),
            framework_id: Some(crate::v1::FrameworkId { value: "f".into() }),
            ..Default::default()
        };
        for format in [Format::Protobuf, Format::Json] {
            let bytes = format.encode(&call).unwrap();
            assert_eq!(format.decode::<Call>(&bytes).unwrap(), call);
        }
    }
}

/// Whether an `Accept` header value allows the media type `media`, decided as Mesos'
/// libprocess decides it: the most specific matching range (`type/subtype`, then `type/*`, then
/// `*/*`; the first in header order among equals) settles it, and it accepts unless it carries a
/// single well-formed `q` of 0 or less. A missing header accepts everything. Spaces, tabs and
/// newlines are ignored; ranges compare case-insensitively.
pub fn accepts(accept: Option<&str>, media: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    let Some((kind, _)) = media.split_once('/') else {
        return false;
    };
    let accept: String = accept
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n'))
        .collect();
    let any_subtype = format!("{kind}/*");
    for candidate in [media, any_subtype.as_str(), "*/*"] {
        for range in accept.split(',').filter(|r| !r.is_empty()) {
            let mut parts = range.split(';').filter(|p| !p.is_empty());
            if !parts
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case(candidate))
            {
                continue;
            }
            let q: Vec<&str> = parts
                .filter_map(|param| param.split_once('='))
                .filter(|(key, _)| *key == "q")
                .map(|(_, value)| value)
                .collect();
            return match q.as_slice() {
                [q] => q.parse::<f64>().is_ok_and(|q| q > 0.0),
                _ => true,
            };
        }
    }
    false
}

/// A body that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("invalid protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A protobuf body lacks required fields (paths as in [`missing_required_fields`]); see
    /// [`Format::decode_checked`]. The JSON decoder reports these as [`CodecError::Json`].
    #[error("missing required fields: {}", .0.join(", "))]
    MissingRequiredFields(Vec<String>),
    /// The text is not valid JSON, or does not fit the expected message.
    #[error("invalid JSON message: {0}")]
    Json(String),
}
