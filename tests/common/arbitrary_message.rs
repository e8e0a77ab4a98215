//! Random valid `mesos.v1` messages built from the embedded descriptors, for property tests of
//! the codecs: every required field set, maps, oneofs (one member at most), repeated fields, zero
//! values, declared defaults and extreme numbers, with message nesting bounded by a depth.
//!
//! Used by the JSON round-trip property test and by the byte fuzzers; the fuzz crate has its own
//! copy-free path (it feeds protobuf bytes), so this file only serves `tests/`.

#![allow(dead_code)]

use std::collections::HashMap;

use bytes::Bytes;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The `mesos.v1` descriptor pool.
pub fn pool() -> DescriptorPool {
    DescriptorPool::decode(mesos_sdk::v1::FILE_DESCRIPTOR_SET).expect("embedded descriptors")
}

/// A random message of `descriptor` seeded by `seed`, nested at most `depth` levels.
pub fn random_message(descriptor: &MessageDescriptor, seed: u64, depth: usize) -> DynamicMessage {
    let mut rng = StdRng::seed_from_u64(seed);
    message(&mut rng, descriptor, depth)
}

/// Whether `field` declares a `[default = …]` (such fields are always set, because the JSON
/// encoder writes the default of an unset one and the decoded message then holds it).
fn declares_default(field: &FieldDescriptor) -> bool {
    field.field_descriptor_proto().default_value.is_some()
}

fn message(rng: &mut StdRng, descriptor: &MessageDescriptor, depth: usize) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    // One member (or none) of each oneof.
    let mut chosen_oneof_members = Vec::new();
    for oneof in descriptor.oneofs() {
        let members: Vec<FieldDescriptor> = oneof.fields().collect();
        if !members.is_empty() && rng.random_bool(0.6) {
            chosen_oneof_members.push(members[rng.random_range(0..members.len())].number());
        }
    }
    for field in descriptor.fields() {
        let in_oneof = field.containing_oneof().is_some();
        if in_oneof && !chosen_oneof_members.contains(&field.number()) {
            continue;
        }
        let must = field.is_required() || declares_default(&field) || in_oneof;
        if !must && !rng.random_bool(0.5) {
            continue;
        }
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                continue;
            };
            let mut map = HashMap::new();
            for _ in 0..rng.random_range(0..3) {
                let key = map_key(rng, &entry.map_entry_key_field().kind());
                if let Some(value) = value(rng, &entry.map_entry_value_field(), depth) {
                    map.insert(key, value);
                }
            }
            message.set_field(&field, Value::Map(map));
        } else if field.is_list() {
            let items: Vec<Value> = (0..rng.random_range(0..3))
                .filter_map(|_| value(rng, &field, depth))
                .collect();
            message.set_field(&field, Value::List(items));
        } else if let Some(value) = value(rng, &field, depth) {
            message.set_field(&field, value);
        }
    }
    message
}

fn map_key(rng: &mut StdRng, kind: &Kind) -> MapKey {
    match kind {
        Kind::Bool => MapKey::Bool(rng.random()),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(small_or_any(rng)),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(small_or_any(rng)),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(small_or_any(rng)),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(small_or_any(rng)),
        _ => MapKey::String(string(rng)),
    }
}

/// Zero, a small number or any value of the type.
fn small_or_any<T>(rng: &mut StdRng) -> T
where
    T: From<u8>,
    rand::distr::StandardUniform: rand::distr::Distribution<T>,
{
    match rng.random_range(0..3) {
        0 => T::from(0),
        1 => T::from(rng.random_range(1..100u8)),
        _ => rng.random(),
    }
}

fn string(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "", "a", "mem", "cpus", " ", "\"", "\\", "/", "\n", "é", "☃", "𝄞", "\u{0}", "NaN", "{}",
    ];
    (0..rng.random_range(0..4))
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

fn double(rng: &mut StdRng) -> f64 {
    match rng.random_range(0..8) {
        0 => 0.0,
        1 => -0.0,
        2 => f64::INFINITY,
        3 => f64::NEG_INFINITY,
        4 => f64::MAX,
        5 => f64::MIN_POSITIVE,
        6 => f64::from(rng.random_range(-1000..1000i32)) / 8.0,
        _ => {
            // Any finite double (NaN never equals itself, so it is kept out of equality tests).
            let value = f64::from_bits(rng.random());
            if value.is_finite() { value } else { 1.5 }
        }
    }
}

fn float(rng: &mut StdRng) -> f32 {
    match rng.random_range(0..5) {
        0 => 0.0,
        1 => f32::INFINITY,
        2 => 0.1,
        _ => {
            let value = f32::from_bits(rng.random());
            if value.is_finite() { value } else { 2.5 }
        }
    }
}

/// A value for one element of `field` (`None` for a message beyond the depth when the field is
/// optional; a required message field always gets one, empty below the depth).
fn value(rng: &mut StdRng, field: &FieldDescriptor, depth: usize) -> Option<Value> {
    let kind = if field.is_map() {
        return None;
    } else {
        field.kind()
    };
    if declares_default(field) && rng.random_bool(0.5) {
        return Some(field.default_value());
    }
    Some(match kind {
        Kind::Double => Value::F64(double(rng)),
        Kind::Float => Value::F32(float(rng)),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(small_or_any(rng)),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(small_or_any(rng)),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(small_or_any(rng)),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(small_or_any(rng)),
        Kind::Bool => Value::Bool(rng.random()),
        Kind::String => Value::String(string(rng)),
        Kind::Bytes => {
            let len = rng.random_range(0..6);
            Value::Bytes(Bytes::from(
                (0..len).map(|_| rng.random()).collect::<Vec<u8>>(),
            ))
        }
        Kind::Enum(descriptor) => {
            let values: Vec<i32> = descriptor.values().map(|v| v.number()).collect();
            Value::EnumNumber(*values.get(rng.random_range(0..values.len().max(1)))?)
        }
        Kind::Message(descriptor) => {
            if depth == 0 {
                if !field.is_required() {
                    return None;
                }
                // Below the depth a required message is as small as it can be: its required
                // fields only (recursion through required fields is finite in mesos.v1).
                Value::Message(required_only(rng, &descriptor))
            } else {
                Value::Message(message(rng, &descriptor, depth - 1))
            }
        }
    })
}

/// A message with only its required fields (and those declaring a default) set.
fn required_only(rng: &mut StdRng, descriptor: &MessageDescriptor) -> DynamicMessage {
    let mut message = DynamicMessage::new(descriptor.clone());
    for field in descriptor.fields() {
        if field.is_list() || field.is_map() || field.containing_oneof().is_some() {
            continue;
        }
        if field.is_required() || declares_default(&field) {
            if let Some(value) = value(rng, &field, 0) {
                message.set_field(&field, value);
            }
        }
    }
    message
}
