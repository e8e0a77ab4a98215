//! Mesos' own JSON mapping of protobuf messages (`application/json` on the V1 endpoints).
//!
//! Mesos does not follow the proto3 JSON mapping. This module implements the mapping of stout's
//! `protobuf::parse` (input) and `jsonify` (output) by walking the message descriptors compiled
//! from `proto/` ([`crate::v1::FILE_DESCRIPTOR_SET`]):
//!
//! - keys are proto field names (`framework_info`); camelCase JSON names are not recognised, and
//!   unknown keys are ignored;
//! - enums are written and read as value names; a JSON number for an enum is an error; an unknown
//!   name leaves an optional enum unset, is dropped from a repeated enum and is an error on a
//!   required enum;
//! - `bytes` are written as standard padded base64 and read leniently (padding optional, whitespace
//!   ignored, decoding stops at the first `=`);
//! - integers are written as JSON numbers (int64 included) and read from numbers or numeric strings;
//! - doubles and floats are read from numbers or from strings (`"Infinity"`, `"-Infinity"`, `"NaN"`,
//!   numeric strings). Mesos itself writes non-finite doubles as the bare tokens `Infinity`,
//!   `-Infinity` and `NaN`, which are not JSON; [`from_slice`] accepts them outside strings.
//!   **On output, non-finite doubles are written as the strings `"Infinity"`, `"-Infinity"` and
//!   `"NaN"`**: that keeps the output valid JSON, and Mesos' parser accepts those strings;
//! - bools are read from `true`/`false` or the strings `"true"`/`"false"`;
//! - `null` leaves a field unset; nothing is ever written as `null`;
//! - maps are JSON objects keyed by the map key;
//! - unset optional fields that declare a (non-deprecated) `[default = …]` are written with that
//!   default, as Mesos does; unset fields without a declared default and empty repeated fields are
//!   omitted; oneof members are ordinary fields;
//! - a JSON scalar given for a repeated field is appended as one element, as stout does;
//! - after decoding, missing required fields are reported (recursively, with paths such as
//!   `subscribe.framework_info.user`), as Mesos' `Missing required fields` check does.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use prost::{Message, Name};
use prost_reflect::{
    DescriptorPool, DynamicMessage, EnumDescriptor, FieldDescriptor, Kind, MapKey,
    MessageDescriptor, ReflectMessage, Value,
};
use serde_json::{Map, Number, Value as Json};

use crate::codec::CodecError;

/// The descriptor pool of every `mesos.v1` message, decoded once on first use.
static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(crate::v1::FILE_DESCRIPTOR_SET).map_err(|err| err.to_string())
});

/// Standard alphabet, padding optional, trailing bits tolerated: stout's lenient base64 decoder.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn json_error(message: impl Into<String>) -> CodecError {
    CodecError::Json(message.into())
}

/// Looks up the descriptor of `M` in the `mesos.v1` descriptor pool.
pub(crate) fn descriptor_of<M: Name>() -> Result<MessageDescriptor, CodecError> {
    let pool = POOL
        .as_ref()
        .map_err(|err| json_error(format!("embedded descriptor set is unusable: {err}")))?;
    let name = M::full_name();
    pool.get_message_by_name(&name)
        .ok_or_else(|| json_error(format!("no descriptor for message type {name}")))
}

/// Converts a prost message into its reflective form.
pub(crate) fn to_dynamic<M: Message + Name>(message: &M) -> Result<DynamicMessage, CodecError> {
    let descriptor = descriptor_of::<M>()?;
    DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|err| json_error(format!("message does not match its descriptor: {err}")))
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// Encodes `message` as Mesos JSON bytes.
pub fn to_vec<M: Message + Name>(message: &M) -> Result<Vec<u8>, CodecError> {
    let value = to_value(message)?;
    serde_json::to_vec(&value).map_err(|err| json_error(format!("cannot serialize JSON: {err}")))
}

/// Encodes `message` as a Mesos JSON value (see the module docs for the mapping).
pub fn to_value<M: Message + Name>(message: &M) -> Result<Json, CodecError> {
    let dynamic = to_dynamic(message)?;
    Ok(Json::Object(message_to_json(&dynamic, false)))
}

fn is_deprecated(field: &FieldDescriptor) -> bool {
    field
        .field_descriptor_proto()
        .options
        .as_ref()
        .and_then(|options| options.deprecated)
        .unwrap_or(false)
}

fn declares_default(field: &FieldDescriptor) -> bool {
    field.field_descriptor_proto().default_value.is_some() && !is_deprecated(field)
}

/// Renders `message` as a JSON object.
///
/// `fill_required` writes unset required fields with their zero value: it is set inside map
/// values, where the protobuf encoding omits a value equal to its type's default (prost does),
/// so a required `double` equal to 0 (`limits: {mem: {value: 0}}`) reaches this point unset
/// although the typed message holds it. Outside maps the typed messages always encode their
/// required fields, so nothing needs filling there.
fn message_to_json(message: &DynamicMessage, fill_required: bool) -> Map<String, Json> {
    let mut object = Map::new();
    for field in message.descriptor().fields() {
        let kind = field.kind();
        if field.is_map() {
            let value = message.get_field(&field);
            let Some(entries) = value.as_map() else {
                continue;
            };
            if entries.is_empty() {
                continue;
            }
            let value_kind = match &kind {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                _ => continue,
            };
            let mut keyed: Vec<(String, Json)> = entries
                .iter()
                .filter_map(|(key, value)| {
                    let json = match value {
                        Value::Message(nested) => Json::Object(message_to_json(nested, true)),
                        other => scalar_to_json(&value_kind, other)?,
                    };
                    Some((map_key_to_string(key), json))
                })
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            object.insert(
                field.name().to_owned(),
                Json::Object(keyed.into_iter().collect()),
            );
        } else if field.is_list() {
            let value = message.get_field(&field);
            let Some(items) = value.as_list() else {
                continue;
            };
            let items: Vec<Json> = items
                .iter()
                .filter_map(|item| scalar_to_json(&kind, item))
                .collect();
            if !items.is_empty() {
                object.insert(field.name().to_owned(), Json::Array(items));
            }
        } else if message.has_field(&field) {
            let json = match message.get_field(&field).as_ref() {
                Value::Message(nested) => {
                    Some(Json::Object(message_to_json(nested, fill_required)))
                }
                other => scalar_to_json(&kind, other),
            };
            if let Some(json) = json {
                object.insert(field.name().to_owned(), json);
            }
        } else if fill_required && field.is_required() {
            let json = match field.default_value() {
                Value::Message(nested) => Some(Json::Object(message_to_json(&nested, true))),
                other => scalar_to_json(&kind, &other),
            };
            if let Some(json) = json {
                object.insert(field.name().to_owned(), json);
            }
        } else if declares_default(&field) {
            if let Some(json) = scalar_to_json(&kind, &field.default_value()) {
                object.insert(field.name().to_owned(), json);
            }
        }
    }
    object
}

fn map_key_to_string(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn double_to_json(value: f64) -> Json {
    match Number::from_f64(value) {
        Some(number) => Json::Number(number),
        None if value.is_nan() => Json::String("NaN".into()),
        None if value > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// One value (not a list or map) as JSON; `None` for an enum number the schema does not know.
fn scalar_to_json(kind: &Kind, value: &Value) -> Option<Json> {
    Some(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        // Go through the shortest decimal form so that 0.1f32 is written as 0.1.
        Value::F32(n) => double_to_json(n.to_string().parse::<f64>().unwrap_or(f64::from(*n))),
        Value::F64(n) => double_to_json(*n),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::EnumNumber(number) => match kind {
            Kind::Enum(enum_descriptor) => {
                Json::String(enum_descriptor.get_value(*number)?.name().to_owned())
            }
            _ => Json::from(*number),
        },
        Value::Message(message) => Json::Object(message_to_json(message, false)),
        Value::List(_) | Value::Map(_) => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

/// Decodes Mesos JSON into a message of type `M`.
///
/// Accepts the bare `Infinity`, `-Infinity` and `NaN` tokens Mesos writes for non-finite doubles.
/// Missing required fields are an error listing their paths.
pub fn from_slice<M: Message + Name + Default>(data: &[u8]) -> Result<M, CodecError> {
    let text = quote_bare_non_finite(data);
    let value: Json = serde_json::from_slice(&text)
        .map_err(|err| json_error(format!("malformed JSON: {err}")))?;
    from_value(value)
}

/// Decodes a Mesos JSON value into a message of type `M`.
///
/// Missing required fields are an error listing their paths.
pub fn from_value<M: Message + Name + Default>(value: Json) -> Result<M, CodecError> {
    let descriptor = descriptor_of::<M>()?;
    let Json::Object(object) = value else {
        return Err(json_error(format!(
            "expected a JSON object for {}, got {}",
            descriptor.full_name(),
            json_type_name(&value)
        )));
    };
    let dynamic = message_from_json(&descriptor, &object, &Path::Root)?;
    let missing = missing_in_dynamic(&dynamic);
    if !missing.is_empty() {
        return Err(json_error(format!(
            "missing required fields: {}",
            missing.join(", ")
        )));
    }
    M::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|err| json_error(format!("cannot build {}: {err}", descriptor.full_name())))
}

fn json_type_name(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Where a value sits in a message, e.g. `accept.offer_ids[1].value`; only formatted when an
/// error or a missing field is reported, so walking a message allocates nothing for it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => f.write_str(name),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
            Path::Key(parent, key) => write!(f, "{parent}[{key}]"),
        }
    }
}

fn message_from_json(
    descriptor: &MessageDescriptor,
    object: &Map<String, Json>,
    prefix: &Path<'_>,
) -> Result<DynamicMessage, CodecError> {
    let mut message = DynamicMessage::new(descriptor.clone());
    for (key, json) in object {
        // Proto field names only; unknown keys (camelCase included) are ignored, as Mesos does.
        let Some(field) = descriptor.get_field_by_name(key) else {
            continue;
        };
        let path = Path::Field(prefix, key);
        if json.is_null() {
            continue;
        }
        if field.is_map() {
            let entries = map_from_json(&field, json, &path)?;
            message.set_field(&field, Value::Map(entries));
        } else if field.is_list() {
            let kind = field.kind();
            let mut items = Vec::new();
            match json {
                Json::Array(elements) => {
                    for (index, element) in elements.iter().enumerate() {
                        if element.is_null() {
                            continue;
                        }
                        let element_path = Path::Index(&path, index);
                        if let Some(item) = value_from_json(&kind, element, &element_path)? {
                            items.push(item);
                        }
                    }
                }
                // stout appends a lone value given for a repeated field.
                single => {
                    if let Some(item) = value_from_json(&kind, single, &path)? {
                        items.push(item);
                    }
                }
            }
            if !items.is_empty() {
                message.set_field(&field, Value::List(items));
            }
        } else {
            if json.is_array() {
                return Err(json_error(format!(
                    "{path}: not expecting a JSON array for a non-repeated field"
                )));
            }
            match value_from_json(&field.kind(), json, &path)? {
                Some(value) => message.set_field(&field, value),
                None if field.is_required() => {
                    let name = json.as_str().unwrap_or_default();
                    return Err(json_error(format!(
                        "{path}: unknown enum value name '{name}' for a required field"
                    )));
                }
                None => {}
            }
        }
    }
    Ok(message)
}

fn map_from_json(
    field: &FieldDescriptor,
    json: &Json,
    path: &Path<'_>,
) -> Result<HashMap<MapKey, Value>, CodecError> {
    let Json::Object(object) = json else {
        return Err(json_error(format!(
            "{path}: expected a JSON object for a map field, got {}",
            json_type_name(json)
        )));
    };
    let Kind::Message(entry) = field.kind() else {
        return Err(json_error(format!(
            "{path}: map field without an entry type"
        )));
    };
    let key_kind = entry.map_entry_key_field().kind();
    let value_kind = entry.map_entry_value_field().kind();
    let mut entries = HashMap::with_capacity(object.len());
    for (key, json) in object {
        let entry_path = Path::Key(path, key);
        if json.is_null() {
            continue;
        }
        let key = map_key_from_str(&key_kind, key, &entry_path)?;
        if let Some(value) = value_from_json(&value_kind, json, &entry_path)? {
            entries.insert(key, value);
        }
    }
    Ok(entries)
}

fn map_key_from_str(kind: &Kind, key: &str, path: &Path<'_>) -> Result<MapKey, CodecError> {
    let bad = || json_error(format!("{path}: invalid map key '{key}'"));
    Ok(match kind {
        Kind::String => MapKey::String(key.to_owned()),
        Kind::Bool => MapKey::Bool(parse_bool_str(key).ok_or_else(bad)?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().map_err(|_| bad())?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().map_err(|_| bad())?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().map_err(|_| bad())?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

fn parse_bool_str(text: &str) -> Option<bool> {
    match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Converts one JSON value (an element, not an array) for a field of `kind`.
///
/// `Ok(None)` means "leave unset / drop": an unknown enum name.
fn value_from_json(kind: &Kind, json: &Json, path: &Path<'_>) -> Result<Option<Value>, CodecError> {
    let mismatch = |expected: &str| {
        json_error(format!(
            "{path}: expected {expected}, got {}",
            json_type_name(json)
        ))
    };
    let value = match kind {
        Kind::Message(descriptor) => match json {
            Json::Object(object) => Value::Message(message_from_json(descriptor, object, path)?),
            _ => return Err(mismatch("a JSON object")),
        },
        Kind::Enum(descriptor) => return enum_from_json(descriptor, json, path),
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            _ => return Err(mismatch("a string")),
        },
        Kind::Bytes => match json {
            Json::String(s) => Value::Bytes(decode_base64_lenient(s).map_err(|err| {
                json_error(format!("{path}: invalid base64 in bytes field: {err}"))
            })?),
            _ => return Err(mismatch("a base64 string")),
        },
        Kind::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            Json::String(s) => Value::Bool(
                parse_bool_str(s)
                    .ok_or_else(|| json_error(format!("{path}: invalid bool string '{s}'")))?,
            ),
            _ => return Err(mismatch("a bool")),
        },
        Kind::Double => Value::F64(double_from_json(json, path)?),
        Kind::Float => Value::F32(double_from_json(json, path)? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(integer_from_json::<i32>(json, path)?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(integer_from_json::<i64>(json, path)?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(integer_from_json::<u32>(json, path)?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(integer_from_json::<u64>(json, path)?),
    };
    Ok(Some(value))
}

fn enum_from_json(
    descriptor: &EnumDescriptor,
    json: &Json,
    path: &Path<'_>,
) -> Result<Option<Value>, CodecError> {
    match json {
        Json::String(name) => Ok(descriptor
            .get_value_by_name(name)
            .map(|value| Value::EnumNumber(value.number()))),
        Json::Number(_) => Err(json_error(format!(
            "{path}: not expecting a JSON number for enum {}; use the value name",
            descriptor.full_name()
        ))),
        other => Err(json_error(format!(
            "{path}: expected an enum value name, got {}",
            json_type_name(other)
        ))),
    }
}

fn double_from_json(json: &Json, path: &Path<'_>) -> Result<f64, CodecError> {
    match json {
        Json::Number(number) => number
            .as_f64()
            .ok_or_else(|| json_error(format!("{path}: number {number} is not representable"))),
        // Rust's parser takes "Infinity", "-Infinity", "NaN", "inf" and decimal strings.
        Json::String(s) => s
            .parse::<f64>()
            .map_err(|_| json_error(format!("{path}: invalid number string '{s}'"))),
        other => Err(json_error(format!(
            "{path}: expected a number, got {}",
            json_type_name(other)
        ))),
    }
}

fn integer_from_json<T>(json: &Json, path: &Path<'_>) -> Result<T, CodecError>
where
    T: TryFrom<i64> + TryFrom<u64> + std::str::FromStr,
{
    let out_of_range = || json_error(format!("{path}: integer {json} out of range"));
    match json {
        Json::Number(number) => {
            if let Some(n) = number.as_u64() {
                T::try_from(n).map_err(|_| out_of_range())
            } else if let Some(n) = number.as_i64() {
                T::try_from(n).map_err(|_| out_of_range())
            } else {
                // A float: accept it only when it is an exact integer (e.g. `5.0`).
                let f = number.as_f64().unwrap_or(f64::NAN);
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
                    T::try_from(f as i64).map_err(|_| out_of_range())
                } else {
                    Err(json_error(format!(
                        "{path}: expected an integer, got {number}"
                    )))
                }
            }
        }
        Json::String(s) => s
            .parse::<T>()
            .map_err(|_| json_error(format!("{path}: invalid integer string '{s}'"))),
        other => Err(json_error(format!(
            "{path}: expected an integer, got {}",
            json_type_name(other)
        ))),
    }
}

/// Decodes base64 the way stout does: whitespace ignored, decoding stops at the first `=`,
/// padding optional.
pub(crate) fn decode_base64_lenient(text: &str) -> Result<Bytes, base64::DecodeError> {
    let significant: Vec<u8> = text
        .bytes()
        .take_while(|b| *b != b'=')
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    LENIENT_BASE64.decode(significant).map(Bytes::from)
}

/// Rewrites the bare tokens `Infinity`, `-Infinity` and `NaN` that Mesos writes for non-finite
/// doubles into strings, leaving string contents alone. Borrows the input when there are none.
fn quote_bare_non_finite(input: &[u8]) -> Cow<'_, [u8]> {
    const TOKENS: [&[u8]; 3] = [b"-Infinity", b"Infinity", b"NaN"];
    let mut output: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut escaped = false;
    let mut copied_up_to = 0;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if matches!(byte, b'-' | b'I' | b'N') {
            if let Some(token) = TOKENS.iter().find(|t| input[i..].starts_with(t)) {
                let out = output.get_or_insert_with(|| Vec::with_capacity(input.len() + 16));
                out.extend_from_slice(&input[copied_up_to..i]);
                out.push(b'"');
                out.extend_from_slice(token);
                out.push(b'"');
                i += token.len();
                copied_up_to = i;
                continue;
            }
        }
        i += 1;
    }
    match output {
        None => Cow::Borrowed(input),
        Some(mut out) => {
            out.extend_from_slice(&input[copied_up_to..]);
            Cow::Owned(out)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Required fields
// ---------------------------------------------------------------------------------------------

/// Paths of the required fields missing from `message` and from every message nested in it.
pub(crate) fn missing_in_dynamic(message: &DynamicMessage) -> Vec<String> {
    let mut missing = Vec::new();
    collect_missing(message, &Path::Root, &mut missing);
    missing
}

fn collect_missing(message: &DynamicMessage, prefix: &Path<'_>, missing: &mut Vec<String>) {
    for field in message.descriptor().fields() {
        let path = Path::Field(prefix, field.name());
        if field.is_required() && !message.has_field(&field) {
            missing.push(path.to_string());
            continue;
        }
        if !matches!(field.kind(), Kind::Message(_)) || !message.has_field(&field) {
            continue;
        }
        let value = message.get_field(&field);
        match value.as_ref() {
            Value::Message(nested) => collect_missing(nested, &path, missing),
            Value::List(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Message(nested) = item {
                        collect_missing(nested, &Path::Index(&path, index), missing);
                    }
                }
            }
            Value::Map(entries) => {
                let mut keyed: Vec<(String, &Value)> = entries
                    .iter()
                    .map(|(key, value)| (map_key_to_string(key), value))
                    .collect();
                keyed.sort_by(|a, b| a.0.cmp(&b.0));
                for (key, value) in keyed {
                    if let Value::Message(nested) = value {
                        collect_missing(nested, &Path::Key(&path, &key), missing);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;
    use crate::v1::scheduler::{Call, Event, call, event};

    fn call_from(json: &str) -> Result<Call, CodecError> {
        from_slice(json.as_bytes())
    }

    const SUBSCRIBE_OK: &str =
        r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#;

    #[test]
    fn proto_field_names_are_used_and_camel_case_is_ignored() {
        let call = call_from(SUBSCRIBE_OK).unwrap();
        assert_eq!(call.r#type(), call::Type::Subscribe);
        let info = &call.subscribe.as_ref().unwrap().framework_info;
        assert_eq!(info.user, "u");
        // camelCase key is an unknown key: ignored, so the required field is reported missing.
        let err = call_from(
            r#"{"type":"SUBSCRIBE","subscribe":{"frameworkInfo":{"user":"u","name":"n"}}}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("subscribe.framework_info"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let call =
            call_from(r#"{"type":"HEARTBEAT_X_UNKNOWN","bogus":1,"framework_id":{"value":"f"}}"#)
                .unwrap();
        assert_eq!(call.framework_id.unwrap().value, "f");
        assert!(call.r#type.is_none());
    }

    #[test]
    fn enums_are_names_and_numbers_are_rejected() {
        let call = call_from(r#"{"type":"TEARDOWN"}"#).unwrap();
        assert_eq!(call.r#type(), call::Type::Teardown);
        let err = call_from(r#"{"type":3}"#).unwrap_err();
        assert!(err.to_string().contains("type"), "{err}");
        assert!(err.to_string().contains("number"), "{err}");
        let json = String::from_utf8(to_vec(&call).unwrap()).unwrap();
        assert!(json.contains(r#""type":"TEARDOWN""#), "{json}");
    }

    #[test]
    fn unknown_enum_name_on_optional_field_leaves_it_unset() {
        let call = call_from(r#"{"type":"BOGUS"}"#).unwrap();
        assert!(call.r#type.is_none());
    }

    #[test]
    fn unknown_enum_name_on_required_field_is_an_error() {
        // Resource.type is optional, Value.type is required.
        let err = from_slice::<v1::Value>(br#"{"type":"BOGUS"}"#).unwrap_err();
        assert!(err.to_string().contains("type"), "{err}");
        let ok = from_slice::<v1::Value>(br#"{"type":"SCALAR","scalar":{"value":1}}"#).unwrap();
        assert_eq!(ok.r#type(), v1::value::Type::Scalar);
    }

    #[test]
    fn unknown_names_in_repeated_enums_are_dropped() {
        let info: v1::FrameworkInfo = from_slice(
            br#"{"user":"u","name":"n","capabilities":[{"type":"MULTI_ROLE"},{"type":"NOPE"}]}"#,
        )
        .unwrap();
        assert_eq!(info.capabilities.len(), 2);
        assert!(info.capabilities[1].r#type.is_none());
        // A repeated enum: unknown names are dropped, known ones kept in order.
        let caps: v1::CapabilityInfo =
            from_slice(br#"{"capabilities":["CHOWN","NOT_A_CAP","KILL"]}"#).unwrap();
        assert_eq!(
            caps.capabilities().collect::<Vec<_>>(),
            [
                v1::capability_info::Capability::Chown,
                v1::capability_info::Capability::Kill
            ]
        );
        assert!(from_slice::<v1::CapabilityInfo>(br#"{"capabilities":[1000]}"#).is_err());
    }

    #[test]
    fn bytes_are_padded_base64_out_and_lenient_in() {
        let message = call::Message {
            agent_id: v1::AgentId { value: "a".into() },
            executor_id: v1::ExecutorId { value: "e".into() },
            data: Bytes::from_static(b"hi"),
        };
        let json = to_value(&message).unwrap();
        assert_eq!(json["data"], "aGk=");
        let back: call::Message = from_value(json).unwrap();
        assert_eq!(back, message);
        for text in ["aGk", "aGk=", " a G\\nk = ", "aGk===", "aGk=garbage"] {
            let body = format!(
                r#"{{"agent_id":{{"value":"a"}},"executor_id":{{"value":"e"}},"data":"{text}"}}"#
            );
            let decoded: call::Message = from_slice(body.as_bytes()).unwrap();
            assert_eq!(decoded.data.as_ref(), b"hi", "{text}");
        }
        let bad = r#"{"agent_id":{"value":"a"},"executor_id":{"value":"e"},"data":"a*b!"}"#;
        let err = from_slice::<call::Message>(bad.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("data"), "{err}");
    }

    #[test]
    fn integers_are_numbers_out_and_numbers_or_strings_in() {
        let time: v1::TimeInfo = from_slice(br#"{"nanoseconds":"9007199254740993"}"#).unwrap();
        assert_eq!(time.nanoseconds, 9_007_199_254_740_993);
        let time: v1::TimeInfo = from_slice(br#"{"nanoseconds":-5}"#).unwrap();
        assert_eq!(time.nanoseconds, -5);
        let time: v1::TimeInfo = from_slice(br#"{"nanoseconds":7.0}"#).unwrap();
        assert_eq!(time.nanoseconds, 7);
        assert!(from_slice::<v1::TimeInfo>(br#"{"nanoseconds":7.5}"#).is_err());
        assert!(from_slice::<v1::TimeInfo>(br#"{"nanoseconds":"x"}"#).is_err());
        let big = v1::TimeInfo {
            nanoseconds: i64::MAX,
        };
        assert_eq!(
            String::from_utf8(to_vec(&big).unwrap()).unwrap(),
            r#"{"nanoseconds":9223372036854775807}"#
        );
        // Value.Range is uint64: negative values are out of range.
        let err = from_slice::<v1::value::Range>(br#"{"begin":1,"end":-1}"#).unwrap_err();
        assert!(err.to_string().contains("end"), "{err}");
        let range: v1::value::Range =
            from_slice(br#"{"begin":"18446744073709551615","end":18446744073709551615}"#).unwrap();
        assert_eq!(range.begin, u64::MAX);
        assert_eq!(range.end, u64::MAX);
        assert!(from_slice::<v1::value::Range>(br#"{"begin":1,"end":1e30}"#).is_err());
    }

    #[test]
    fn doubles_accept_strings_and_bare_non_finite_tokens() {
        let scalar: v1::value::Scalar = from_slice(br#"{"value":"Infinity"}"#).unwrap();
        assert_eq!(scalar.value, f64::INFINITY);
        let scalar: v1::value::Scalar = from_slice(br#"{"value":"-Infinity"}"#).unwrap();
        assert_eq!(scalar.value, f64::NEG_INFINITY);
        let scalar: v1::value::Scalar = from_slice(br#"{"value":"2.5"}"#).unwrap();
        assert_eq!(scalar.value, 2.5);
        let scalar: v1::value::Scalar = from_slice(br#"{"value": Infinity}"#).unwrap();
        assert_eq!(scalar.value, f64::INFINITY);
        let scalar: v1::value::Scalar = from_slice(br#"{"value":-Infinity}"#).unwrap();
        assert_eq!(scalar.value, f64::NEG_INFINITY);
        let scalar: v1::value::Scalar = from_slice(br#"{"value":NaN}"#).unwrap();
        assert!(scalar.value.is_nan());
        // Inside strings the tokens are left alone.
        let text: v1::value::Text = from_slice(br#"{"value":"NaN Infinity \"-Infinity"}"#).unwrap();
        assert_eq!(text.value, r#"NaN Infinity "-Infinity"#);
        assert!(from_slice::<v1::value::Scalar>(br#"{"value":"abc"}"#).is_err());
    }

    #[test]
    fn non_finite_doubles_are_written_as_strings() {
        let scalar = v1::value::Scalar {
            value: f64::INFINITY,
        };
        assert_eq!(to_value(&scalar).unwrap()["value"], "Infinity");
        let scalar = v1::value::Scalar {
            value: f64::NEG_INFINITY,
        };
        assert_eq!(to_value(&scalar).unwrap()["value"], "-Infinity");
        let scalar = v1::value::Scalar { value: f64::NAN };
        let json = to_vec(&scalar).unwrap();
        assert_eq!(json, br#"{"value":"NaN"}"#);
        assert!(
            from_slice::<v1::value::Scalar>(&json)
                .unwrap()
                .value
                .is_nan()
        );
    }

    #[test]
    fn bools_accept_strings() {
        let info: v1::FrameworkInfo =
            from_slice(br#"{"user":"u","name":"n","checkpoint":"true"}"#).unwrap();
        assert_eq!(info.checkpoint, Some(true));
        let info: v1::FrameworkInfo =
            from_slice(br#"{"user":"u","name":"n","checkpoint":false}"#).unwrap();
        assert_eq!(info.checkpoint, Some(false));
        assert!(
            from_slice::<v1::FrameworkInfo>(br#"{"user":"u","name":"n","checkpoint":1}"#).is_err()
        );
        assert!(
            from_slice::<v1::FrameworkInfo>(br#"{"user":"u","name":"n","checkpoint":"yes"}"#)
                .is_err()
        );
    }

    #[test]
    fn null_leaves_fields_unset() {
        let info: v1::FrameworkInfo =
            from_slice(br#"{"user":"u","name":"n","hostname":null,"roles":null,"id":null}"#)
                .unwrap();
        assert!(info.hostname.is_none());
        assert!(info.roles.is_empty());
        assert!(info.id.is_none());
        let json = String::from_utf8(to_vec(&info).unwrap()).unwrap();
        assert!(!json.contains("null"), "{json}");
    }

    #[test]
    fn maps_are_objects_keyed_by_key() {
        let task: v1::TaskInfo = from_slice(
            br#"{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},
                 "limits":{"cpus":{"value":"Infinity"},"mem":{"value":512}}}"#,
        )
        .unwrap();
        assert_eq!(task.limits["cpus"].value, f64::INFINITY);
        assert_eq!(task.limits["mem"].value, 512.0);
        let json = to_value(&task).unwrap();
        assert_eq!(json["limits"]["mem"]["value"], 512.0);
        assert_eq!(json["limits"]["cpus"]["value"], "Infinity");
        // Erratum 2: a bare value where a Value.Scalar is expected is an error.
        let err = from_slice::<v1::TaskInfo>(
            br#"{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},"limits":{"mem":512}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("limits[mem]"), "{err}");
    }

    #[test]
    fn declared_defaults_are_written_and_other_unset_fields_omitted() {
        let info = v1::FrameworkInfo {
            user: "u".into(),
            name: "n".into(),
            ..Default::default()
        };
        let json = to_value(&info).unwrap();
        assert_eq!(json["failover_timeout"], 0.0);
        assert_eq!(json["checkpoint"], false);
        // `role` declares a default but is deprecated: not written.
        assert!(json.get("role").is_none(), "{json}");
        assert!(json.get("hostname").is_none());
        assert!(json.get("roles").is_none());
        assert!(json.get("capabilities").is_none());
        let command = v1::CommandInfo::default();
        assert_eq!(to_value(&command).unwrap()["shell"], true);
        let filters = v1::Filters::default();
        assert_eq!(to_value(&filters).unwrap()["refuse_seconds"], 5.0);
    }

    #[test]
    fn oneof_members_are_ordinary_fields() {
        let predicate: crate::v1::scheduler::attribute_constraint::Predicate =
            from_slice(br#"{"exists":{}}"#).unwrap();
        assert!(predicate.predicate.is_some());
        let json = to_value(&predicate).unwrap();
        assert_eq!(json, serde_json::json!({"exists": {}}));
    }

    #[test]
    fn missing_required_fields_are_reported_with_paths() {
        let err = call_from(r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"n"}}}"#)
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("subscribe.framework_info.user"), "{text}");
        assert!(!text.contains("framework_info.name"), "{text}");
        let err = call_from(r#"{"type":"ACCEPT","accept":{"offer_ids":[{"value":"o"},{}]}}"#)
            .unwrap_err();
        assert!(
            err.to_string().contains("accept.offer_ids[1].value"),
            "{err}"
        );
    }

    #[test]
    fn type_mismatches_name_the_field() {
        let err = call_from(r#"{"framework_id":{"value":5}}"#).unwrap_err();
        assert!(err.to_string().contains("framework_id.value"), "{err}");
        let err = call_from(r#"{"framework_id":"f"}"#).unwrap_err();
        assert!(err.to_string().contains("framework_id"), "{err}");
        let err = call_from(r#"{"framework_id":[{"value":"f"}]}"#).unwrap_err();
        assert!(err.to_string().contains("array"), "{err}");
        assert!(call_from("[]").is_err());
        assert!(call_from("{").is_err());
        assert!(call_from("").is_err());
    }

    #[test]
    fn scalar_for_repeated_field_is_appended() {
        let suppress: call::Suppress = from_slice(br#"{"roles":"a"}"#).unwrap();
        assert_eq!(suppress.roles, ["a"]);
    }

    #[test]
    fn events_round_trip() {
        let event = Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        };
        let json = to_vec(&event).unwrap();
        assert_eq!(json, br#"{"type":"HEARTBEAT"}"#);
        assert_eq!(from_slice::<Event>(&json).unwrap(), event);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(call_from(&deep).is_err());
        let deep = format!(
            r#"{{"subscribe":{}{}}}"#,
            r#"{"framework_info":"#.repeat(5000),
            "}".repeat(5000)
        );
        assert!(call_from(&deep).is_err());
    }

    /// A message of `descriptor` with every field set (message fields up to `depth` levels).
    fn filled(descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
        fn sample(kind: &Kind, depth: usize) -> Option<Value> {
            Some(match kind {
                Kind::Double => Value::F64(-1.5),
                Kind::Float => Value::F32(0.25),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(-7),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(i64::MIN),
                Kind::Uint32 | Kind::Fixed32 => Value::U32(u32::MAX),
                Kind::Uint64 | Kind::Fixed64 => Value::U64(u64::MAX),
                Kind::Bool => Value::Bool(true),
                Kind::String => Value::String("s \"q\" NaN".into()),
                Kind::Bytes => Value::Bytes(Bytes::from_static(&[0, 1, 254, 255])),
                Kind::Enum(e) => Value::EnumNumber(e.values().last()?.number()),
                Kind::Message(m) if depth > 0 => Value::Message(filled(m, depth - 1)),
                Kind::Message(_) => return None,
            })
        }
        let mut message = DynamicMessage::new(descriptor.clone());
        for field in descriptor.fields() {
            if field.is_map() {
                let Kind::Message(entry) = field.kind() else {
                    continue;
                };
                let key = match entry.map_entry_key_field().kind() {
                    Kind::String => MapKey::String("k".into()),
                    Kind::Bool => MapKey::Bool(true),
                    Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(-3),
                    Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(-3),
                    Kind::Uint32 | Kind::Fixed32 => MapKey::U32(3),
                    _ => MapKey::U64(3),
                };
                if let Some(value) = sample(&entry.map_entry_value_field().kind(), depth) {
                    message.set_field(&field, Value::Map(HashMap::from([(key, value)])));
                }
            } else if let Some(value) = sample(&field.kind(), depth) {
                if field.is_list() {
                    message.set_field(&field, Value::List(vec![value.clone(), value]));
                } else {
                    message.set_field(&field, value);
                }
            }
        }
        message
    }

    #[test]
    fn every_message_type_round_trips_with_every_field_set() {
        let pool = POOL.as_ref().unwrap();
        let mut checked = 0;
        for descriptor in pool.all_messages() {
            if descriptor.is_map_entry() {
                continue;
            }
            let message = filled(&descriptor, 2);
            let json = Json::Object(message_to_json(&message, false));
            // Through text, as on the wire.
            let text = serde_json::to_vec(&json).unwrap();
            let parsed: Json = serde_json::from_slice(&quote_bare_non_finite(&text)).unwrap();
            let Json::Object(object) = parsed else {
                panic!("{}: not an object", descriptor.full_name())
            };
            let back = message_from_json(&descriptor, &object, &Path::Root)
                .unwrap_or_else(|err| panic!("{}: {err}", descriptor.full_name()));
            assert_eq!(back, message, "{}: {json}", descriptor.full_name());
            checked += 1;
        }
        assert!(checked > 300, "only {checked} message types");
    }

    #[test]
    fn missing_required_in_dynamic_lists_nested_paths() {
        let descriptor = descriptor_of::<Call>().unwrap();
        let json: Json = serde_json::from_str(
            r#"{"reconcile":{"tasks":[{"task_id":{"value":"t"}},{"agent_id":{"value":"a"}}]}}"#,
        )
        .unwrap();
        let Json::Object(object) = json else { panic!() };
        let dynamic = message_from_json(&descriptor, &object, &Path::Root).unwrap();
        assert_eq!(missing_in_dynamic(&dynamic), ["reconcile.tasks[1].task_id"]);
    }
}
