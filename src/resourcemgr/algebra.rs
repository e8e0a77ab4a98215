//! Mesos resource algebra: the `--resources` / `--attributes` text parsers and [`Resources`], a
//! collection with Mesos' arithmetic (add, subtract, contains) over scalars (fixed point, 3
//! decimals), ranges and sets, kept apart per name, reservation, disk info and the other metadata
//! that make two resources distinct.

// `role` (FrameworkInfo, Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use std::fmt;

use crate::v1::resource::{AllocationInfo, ReservationInfo, reservation_info};
use crate::v1::value::{self, Range, Ranges, Scalar, Set, Text};
use crate::v1::{Attribute, Resource};

/// Text that is not a valid `--resources` or `--attributes` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An entry has no `name:value` shape.
    #[error("invalid entry '{0}': expecting 'name:value'")]
    MissingValue(String),
    /// An entry's name is empty.
    #[error("invalid entry '{0}': empty name")]
    EmptyName(String),
    /// A `name(role)` with a bad role part.
    #[error("invalid role in '{0}'")]
    InvalidRole(String),
    /// A scalar that is not a finite, non-negative number.
    #[error("invalid scalar '{0}'")]
    InvalidScalar(String),
    /// A range list that is not `[a-b,c-d]` with `a <= b`.
    #[error("invalid ranges '{0}'")]
    InvalidRanges(String),
    /// A set that is not `{a,b}`.
    #[error("invalid set '{0}'")]
    InvalidSet(String),
}

/// Converts a scalar to Mesos' fixed point (thousandths), rounding to nearest.
pub fn to_fixed(value: f64) -> i64 {
    (value * 1000.0).round() as i64
}

/// Converts thousandths back to a scalar.
pub fn from_fixed(value: i64) -> f64 {
    value as f64 / 1000.0
}

/// Parses a Mesos `--resources` text such as `cpus:4;mem:8192;ports:[31000-32000];gpus:1` or
/// `cpus(role1):2`. Entries of `*` (or without role) are unreserved; any other role makes a
/// static reservation. Entries with the same name and role are added up.
pub fn parse_resources(text: &str) -> Result<Vec<Resource>, ParseError> {
    let mut resources = Resources::new();
    for entry in split_entries(text) {
        let (key, value_text) = entry
            .split_once(':')
            .ok_or_else(|| ParseError::MissingValue(entry.to_string()))?;
        let key = key.trim();
        let (name, role) = match key.split_once('(') {
            Some((name, rest)) => {
                let role = rest
                    .strip_suffix(')')
                    .filter(|r| !r.is_empty() && !r.contains(['(', ')']))
                    .ok_or_else(|| ParseError::InvalidRole(entry.to_string()))?;
                (name.trim(), role.trim())
            }
            None => (key, "*"),
        };
        if name.is_empty() {
            return Err(ParseError::EmptyName(entry.to_string()));
        }
        let mut resource = match parse_value(value_text.trim())? {
            ParsedValue::Scalar(v) => scalar(name, v),
            ParsedValue::Ranges(r) => ranges(name, &r),
            ParsedValue::Set(s) => set(name, &s),
            ParsedValue::Text(t) => return Err(ParseError::InvalidScalar(t)),
        };
        if role != "*" {
            resource.reservations.push(ReservationInfo {
                r#type: Some(reservation_info::Type::Static as i32),
                role: Some(role.to_string()),
                ..Default::default()
            });
        }
        resources.add(&resource);
    }
    Ok(resources.into_vec())
}

/// Parses a Mesos `--attributes` text such as `rack:r1;zone:2;ports:[1-10];set:{a,b}`: a number
/// is a SCALAR, `[..]` RANGES, `{..}` a SET and anything else TEXT.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, ParseError> {
    let mut attributes = Vec::new();
    for entry in split_entries(text) {
        let (name, value_text) = entry
            .split_once(':')
            .ok_or_else(|| ParseError::MissingValue(entry.to_string()))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(ParseError::EmptyName(entry.to_string()));
        }
        let mut attribute = Attribute {
            name: name.to_string(),
            ..Default::default()
        };
        match parse_value(value_text.trim())? {
            ParsedValue::Scalar(v) => {
                attribute.r#type = value::Type::Scalar as i32;
                attribute.scalar = Some(Scalar { value: v });
            }
            ParsedValue::Ranges(r) => {
                attribute.r#type = value::Type::Ranges as i32;
                attribute.ranges = Some(ranges_value(&r));
            }
            ParsedValue::Set(s) => {
                attribute.r#type = value::Type::Set as i32;
                attribute.set = Some(Set { item: s });
            }
            ParsedValue::Text(t) => {
                attribute.r#type = value::Type::Text as i32;
                attribute.text = Some(Text { value: t });
            }
        }
        attributes.push(attribute);
    }
    Ok(attributes)
}

fn split_entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|e| !e.is_empty())
}

enum ParsedValue {
    Scalar(f64),
    Ranges(Vec<(u64, u64)>),
    Set(Vec<String>),
    Text(String),
}

fn parse_value(text: &str) -> Result<ParsedValue, ParseError> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or_else(|| ParseError::InvalidRanges(text.to_string()))?;
        let mut out = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (begin, end) = part
                .split_once('-')
                .ok_or_else(|| ParseError::InvalidRanges(text.to_string()))?;
            let begin: u64 = begin
                .trim()
                .parse()
                .map_err(|_| ParseError::InvalidRanges(text.to_string()))?;
            let end: u64 = end
                .trim()
                .parse()
                .map_err(|_| ParseError::InvalidRanges(text.to_string()))?;
            if begin > end {
                return Err(ParseError::InvalidRanges(text.to_string()));
            }
            out.push((begin, end));
        }
        return Ok(ParsedValue::Ranges(normalize_ranges(out)));
    }
    if let Some(inner) = text.strip_prefix('{') {
        let inner = inner
            .strip_suffix('}')
            .ok_or_else(|| ParseError::InvalidSet(text.to_string()))?;
        let mut items: Vec<String> = Vec::new();
        for item in inner.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if !items.iter().any(|i| i == item) {
                items.push(item.to_string());
            }
        }
        return Ok(ParsedValue::Set(items));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(ParsedValue::Scalar(from_fixed(to_fixed(v)))),
        Ok(_) => Err(ParseError::InvalidScalar(text.to_string())),
        Err(_) => Ok(ParsedValue::Text(text.to_string())),
    }
}

/// An unreserved scalar resource.
pub fn scalar(name: &str, value: f64) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(Scalar { value }),
        ..Default::default()
    }
}

/// An unreserved ranges resource from inclusive `(begin, end)` pairs.
pub fn ranges(name: &str, pairs: &[(u64, u64)]) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(ranges_value(pairs)),
        ..Default::default()
    }
}

/// An unreserved set resource.
pub fn set(name: &str, items: &[String]) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Set as i32,
        set: Some(Set {
            item: items.to_vec(),
        }),
        ..Default::default()
    }
}

pub(super) fn ranges_value(pairs: &[(u64, u64)]) -> Ranges {
    Ranges {
        range: pairs
            .iter()
            .map(|&(begin, end)| Range { begin, end })
            .collect(),
    }
}

pub(super) fn pairs_of(resource: &Resource) -> Vec<(u64, u64)> {
    resource
        .ranges
        .as_ref()
        .map(|r| r.range.iter().map(|r| (r.begin, r.end)).collect())
        .unwrap_or_default()
}

/// Sorts and merges overlapping or adjacent inclusive ranges.
fn normalize_ranges(mut pairs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    pairs.retain(|(b, e)| b <= e);
    pairs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(pairs.len());
    for (b, e) in pairs {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

pub(super) fn subtract_ranges(left: &[(u64, u64)], right: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(mut b, e) in left {
        let mut alive = true;
        for &(rb, re) in right {
            if !alive || re < b || rb > e {
                continue;
            }
            if rb > b {
                out.push((b, rb - 1));
            }
            if re >= e {
                alive = false;
            } else {
                b = re + 1;
            }
        }
        if alive {
            out.push((b, e));
        }
    }
    normalize_ranges(out)
}

fn ranges_contain(outer: &[(u64, u64)], inner: &[(u64, u64)]) -> bool {
    inner
        .iter()
        .all(|&(b, e)| outer.iter().any(|&(ob, oe)| ob <= b && e <= oe))
}

/// Converts the pre-refinement reservation format (`role`, `reservation`) into the `reservations`
/// stack and strips `allocation_info`, so resources from any framework compare with the master's.
pub fn normalize(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    r.allocation_info = None;
    if r.reservations.is_empty() {
        if let Some(role) = r.role.as_deref().filter(|role| *role != "*") {
            let mut info = r.reservation.clone().unwrap_or_default();
            info.r#type = Some(if r.reservation.is_some() {
                reservation_info::Type::Dynamic as i32
            } else {
                reservation_info::Type::Static as i32
            });
            info.role = Some(role.to_string());
            r.reservations.push(info);
        }
    }
    r.role = None;
    r.reservation = None;
    r
}

/// The role a resource is reserved to (the last reservation), or `*`.
pub fn reservation_role(resource: &Resource) -> &str {
    resource
        .reservations
        .last()
        .and_then(|r| r.role.as_deref())
        .unwrap_or("*")
}

/// Whether a resource can be allocated to `role`: unreserved, or reserved to `role`.
pub fn allocatable_to(resource: &Resource, role: &str) -> bool {
    let reserved = reservation_role(resource);
    reserved == "*" || reserved == role
}

/// Puts a normalized resource into what an offer shows: MULTI_ROLE frameworks get
/// `allocation_info.role`; others get the legacy `role` field (`*` when unreserved) and, for a
/// dynamic reservation, the legacy `reservation`.
pub fn for_offer(resource: &Resource, role: &str, multi_role: bool) -> Resource {
    let mut r = resource.clone();
    if multi_role {
        r.allocation_info = Some(AllocationInfo {
            role: Some(role.to_string()),
        });
    } else {
        r.role = Some(reservation_role(resource).to_string());
        if let Some(last) = resource.reservations.last() {
            if last.r#type == Some(reservation_info::Type::Dynamic as i32) {
                r.reservation = Some(ReservationInfo {
                    r#type: None,
                    role: None,
                    principal: last.principal.clone(),
                    labels: last.labels.clone(),
                });
            }
        }
        r.reservations.clear();
    }
    r
}

fn is_volume(resource: &Resource) -> bool {
    resource
        .disk
        .as_ref()
        .is_some_and(|d| d.persistence.is_some())
}

/// Whether `a` and `b` differ only in their value (so they add up into one entry).
fn same_kind(a: &Resource, b: &Resource) -> bool {
    a.name == b.name
        && a.r#type == b.r#type
        && a.reservations == b.reservations
        && a.role == b.role
        && a.reservation == b.reservation
        && a.disk == b.disk
        && a.provider_id == b.provider_id
        && a.revocable == b.revocable
        && a.shared == b.shared
        && a.allocation_info == b.allocation_info
}

fn is_empty_value(r: &Resource) -> bool {
    match value::Type::try_from(r.r#type) {
        Ok(value::Type::Scalar) => r.scalar.as_ref().is_none_or(|s| to_fixed(s.value) <= 0),
        Ok(value::Type::Ranges) => r.ranges.as_ref().is_none_or(|s| s.range.is_empty()),
        Ok(value::Type::Set) => r.set.as_ref().is_none_or(|s| s.item.is_empty()),
        _ => true,
    }
}

/// A multiset of resources with Mesos' arithmetic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    items: Vec<Resource>,
}

impl Resources {
    /// No resources.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds each of `resources`.
    pub fn from_slice(resources: &[Resource]) -> Self {
        let mut out = Self::new();
        for r in resources {
            out.add(r);
        }
        out
    }

    /// The resources, one entry per distinct kind.
    pub fn as_slice(&self) -> &[Resource] {
        &self.items
    }

    /// Takes the entries out.
    pub fn into_vec(self) -> Vec<Resource> {
        self.items
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Sum of the scalar resources called `name`, over every role.
    pub fn scalar(&self, name: &str) -> f64 {
        from_fixed(
            self.items
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.scalar.as_ref())
                .map(|s| to_fixed(s.value))
                .fold(0i64, i64::saturating_add),
        )
    }

    /// Inclusive port-like ranges of the resources called `name`.
    pub fn ranges(&self, name: &str) -> Vec<(u64, u64)> {
        normalize_ranges(
            self.items
                .iter()
                .filter(|r| r.name == name)
                .flat_map(pairs_of)
                .collect(),
        )
    }

    /// The entries for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources {
            items: self.items.iter().filter(|r| keep(r)).cloned().collect(),
        }
    }

    /// Adds one resource (ignored when its value is empty).
    pub fn add(&mut self, resource: &Resource) {
        if is_empty_value(resource) {
            return;
        }
        if is_volume(resource) {
            self.items.push(resource.clone());
            return;
        }
        let Some(existing) = self.items.iter_mut().find(|r| same_kind(r, resource)) else {
            let mut r = resource.clone();
            if let Some(ranges) = r.ranges.as_mut() {
                *ranges = ranges_value(&normalize_ranges(pairs_of(resource)));
            }
            if let Some(scalar) = r.scalar.as_mut() {
                scalar.value = from_fixed(to_fixed(scalar.value));
            }
            self.items.push(r);
            return;
        };
        match value::Type::try_from(resource.r#type) {
            Ok(value::Type::Scalar) => {
                let sum = to_fixed(existing.scalar.as_ref().map_or(0.0, |s| s.value))
                    .saturating_add(to_fixed(resource.scalar.as_ref().map_or(0.0, |s| s.value)));
                existing.scalar = Some(Scalar {
                    value: from_fixed(sum),
                });
            }
            Ok(value::Type::Ranges) => {
                let mut pairs = pairs_of(existing);
                pairs.extend(pairs_of(resource));
                existing.ranges = Some(ranges_value(&normalize_ranges(pairs)));
            }
            Ok(value::Type::Set) => {
                let items = &mut existing.set.get_or_insert_with(Set::default).item;
                for item in resource.set.iter().flat_map(|s| &s.item) {
                    if !items.contains(item) {
                        items.push(item.clone());
                    }
                }
            }
            _ => {}
        }
    }

    /// Adds every entry of `other`.
    pub fn add_all(&mut self, other: &[Resource]) {
        for r in other {
            self.add(r);
        }
    }

    /// Subtracts one resource; what is not there is ignored (scalars stop at zero).
    pub fn subtract(&mut self, resource: &Resource) {
        if is_volume(resource) {
            if let Some(pos) = self.items.iter().position(|r| r == resource) {
                self.items.remove(pos);
            }
            return;
        }
        let Some(pos) = self.items.iter().position(|r| same_kind(r, resource)) else {
            return;
        };
        let existing = &mut self.items[pos];
        match value::Type::try_from(resource.r#type) {
            Ok(value::Type::Scalar) => {
                let left = to_fixed(existing.scalar.as_ref().map_or(0.0, |s| s.value))
                    .saturating_sub(to_fixed(resource.scalar.as_ref().map_or(0.0, |s| s.value)));
                existing.scalar = Some(Scalar {
                    value: from_fixed(left.max(0)),
                });
            }
            Ok(value::Type::Ranges) => {
                let left = subtract_ranges(&pairs_of(existing), &pairs_of(resource));
                existing.ranges = Some(ranges_value(&left));
            }
            Ok(value::Type::Set) => {
                if let (Some(have), Some(take)) = (existing.set.as_mut(), resource.set.as_ref()) {
                    have.item.retain(|i| !take.item.contains(i));
                }
            }
            _ => {}
        }
        if is_empty_value(&self.items[pos]) {
            self.items.remove(pos);
        }
    }

    /// Subtracts every entry of `other`.
    pub fn subtract_all(&mut self, other: &[Resource]) {
        for r in other {
            self.subtract(r);
        }
    }

    /// Whether `resource` is wholly inside this collection.
    pub fn contains_one(&self, resource: &Resource) -> bool {
        if is_empty_value(resource) {
            return true;
        }
        if is_volume(resource) {
            return self.items.iter().any(|r| r == resource);
        }
        let Some(existing) = self.items.iter().find(|r| same_kind(r, resource)) else {
            return false;
        };
        match value::Type::try_from(resource.r#type) {
            Ok(value::Type::Scalar) => {
                to_fixed(existing.scalar.as_ref().map_or(0.0, |s| s.value))
                    >= to_fixed(resource.scalar.as_ref().map_or(0.0, |s| s.value))
            }
            Ok(value::Type::Ranges) => ranges_contain(&pairs_of(existing), &pairs_of(resource)),
            Ok(value::Type::Set) => {
                let have = existing.set.as_ref().map(|s| &s.item[..]).unwrap_or(&[]);
                resource
                    .set
                    .iter()
                    .flat_map(|s| &s.item)
                    .all(|i| have.contains(i))
            }
            _ => false,
        }
    }

    /// Whether every entry of `other` (added up first) is inside this collection.
    pub fn contains(&self, other: &[Resource]) -> bool {
        Resources::from_slice(other)
            .items
            .iter()
            .all(|r| self.contains_one(r))
    }
}

impl fmt::Display for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for r in &self.items {
            if !first {
                f.write_str(";")?;
            }
            first = false;
            f.write_str(&r.name)?;
            let role = reservation_role(r);
            if role != "*" {
                write!(f, "({role})")?;
            }
            f.write_str(":")?;
            match value::Type::try_from(r.r#type) {
                Ok(value::Type::Scalar) => {
                    write!(f, "{}", r.scalar.as_ref().map_or(0.0, |s| s.value))?
                }
                Ok(value::Type::Ranges) => {
                    let parts: Vec<String> = pairs_of(r)
                        .iter()
                        .map(|(b, e)| format!("{b}-{e}"))
                        .collect();
                    write!(f, "[{}]", parts.join(","))?
                }
                Ok(value::Type::Set) => {
                    let items = r.set.as_ref().map(|s| s.item.join(",")).unwrap_or_default();
                    write!(f, "{{{items}}}")?
                }
                _ => f.write_str("?")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(text: &str) -> Vec<Resource> {
        parse_resources(text).unwrap()
    }

    #[test]
    fn parses_resources_table() {
        struct Case {
            text: &'static str,
            shown: &'static str,
        }
        let cases = [
            Case {
                text: "cpus:4;mem:8192;disk:20000",
                shown: "cpus:4;mem:8192;disk:20000",
            },
            Case {
                text: "ports:[31000-32000]",
                shown: "ports:[31000-32000]",
            },
            Case {
                text: "ports:[5-10,1-4, 20-30]",
                shown: "ports:[1-10,20-30]",
            },
            Case {
                text: "custom:3.5;gpus:1",
                shown: "custom:3.5;gpus:1",
            },
            Case {
                text: "cpus:1.5123",
                shown: "cpus:1.512",
            },
            Case {
                text: "cpus(web):2;cpus(*):1;cpus:1",
                shown: "cpus(web):2;cpus:2",
            },
            Case {
                text: "disks:{a,b,a}",
                shown: "disks:{a,b}",
            },
            Case {
                text: " ; cpus : 2 ; ",
                shown: "cpus:2",
            },
        ];
        for case in cases {
            let parsed = Resources::from_slice(&res(case.text));
            assert_eq!(parsed.to_string(), case.shown, "input {:?}", case.text);
        }
    }

    #[test]
    fn static_role_is_a_reservation() {
        let r = res("cpus(web):2");
        assert_eq!(r[0].reservations.len(), 1);
        assert_eq!(r[0].reservations[0].role.as_deref(), Some("web"));
        assert_eq!(
            r[0].reservations[0].r#type,
            Some(reservation_info::Type::Static as i32)
        );
        assert!(r[0].role.is_none());
    }

    #[test]
    fn rejects_bad_resources_table() {
        let cases = [
            ("cpus", ParseError::MissingValue("cpus".into())),
            (":4", ParseError::EmptyName(":4".into())),
            ("cpus:-1", ParseError::InvalidScalar("-1".into())),
            ("cpus:abc", ParseError::InvalidScalar("abc".into())),
            ("ports:[10-5]", ParseError::InvalidRanges("[10-5]".into())),
            ("ports:[1-x]", ParseError::InvalidRanges("[1-x]".into())),
            ("ports:[1-2", ParseError::InvalidRanges("[1-2".into())),
            ("s:{a,b", ParseError::InvalidSet("{a,b".into())),
            ("cpus(:1", ParseError::InvalidRole("cpus(:1".into())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_resources(text), Err(want), "input {text:?}");
        }
    }

    #[test]
    fn parses_attributes_table() {
        let attrs = parse_attributes("rack:r1;zone:2;ports:[1-10];set:{a,b}").unwrap();
        let types: Vec<(String, i32)> = attrs.iter().map(|a| (a.name.clone(), a.r#type)).collect();
        assert_eq!(
            types,
            vec![
                ("rack".to_string(), value::Type::Text as i32),
                ("zone".to_string(), value::Type::Scalar as i32),
                ("ports".to_string(), value::Type::Ranges as i32),
                ("set".to_string(), value::Type::Set as i32),
            ]
        );
        assert_eq!(attrs[0].text.as_ref().unwrap().value, "r1");
        assert_eq!(attrs[1].scalar.as_ref().unwrap().value, 2.0);
        assert_eq!(attrs[2].ranges.as_ref().unwrap().range[0].end, 10);
        assert_eq!(attrs[3].set.as_ref().unwrap().item, vec!["a", "b"]);
        assert!(parse_attributes("").unwrap().is_empty());
        assert_eq!(
            parse_attributes("rack"),
            Err(ParseError::MissingValue("rack".into()))
        );
    }

    #[test]
    fn arithmetic_table() {
        struct Case {
            left: &'static str,
            right: &'static str,
            sum: &'static str,
            difference: &'static str,
            contains: bool,
        }
        let cases = [
            Case {
                left: "cpus:1;mem:512",
                right: "cpus:0.5",
                sum: "cpus:1.5;mem:512",
                difference: "cpus:0.5;mem:512",
                contains: true,
            },
            Case {
                left: "cpus:0.1",
                right: "cpus:0.2",
                sum: "cpus:0.3",
                difference: "",
                contains: false,
            },
            Case {
                left: "ports:[1-10]",
                right: "ports:[3-4,9-12]",
                sum: "ports:[1-12]",
                difference: "ports:[1-2,5-8]",
                contains: false,
            },
            Case {
                left: "ports:[1-10]",
                right: "ports:[3-4]",
                sum: "ports:[1-10]",
                difference: "ports:[1-2,5-10]",
                contains: true,
            },
            Case {
                left: "s:{a,b}",
                right: "s:{b,c}",
                sum: "s:{a,b,c}",
                difference: "s:{a}",
                contains: false,
            },
            Case {
                left: "cpus(web):2",
                right: "cpus:1",
                sum: "cpus(web):2;cpus:1",
                difference: "cpus(web):2",
                contains: false,
            },
        ];
        for case in cases {
            let left = res(case.left);
            let right = res(case.right);
            let mut sum = Resources::from_slice(&left);
            sum.add_all(&right);
            assert_eq!(sum.to_string(), case.sum, "{} + {}", case.left, case.right);
            let mut difference = Resources::from_slice(&left);
            difference.subtract_all(&right);
            assert_eq!(
                difference.to_string(),
                case.difference,
                "{} - {}",
                case.left,
                case.right
            );
            assert_eq!(
                Resources::from_slice(&left).contains(&right),
                case.contains,
                "{} contains {}",
                case.left,
                case.right
            );
        }
    }

    #[test]
    fn fixed_point_sums_are_exact() {
        let mut r = Resources::new();
        for _ in 0..10 {
            r.add(&scalar("cpus", 0.1));
        }
        assert_eq!(r.scalar("cpus"), 1.0);
        for _ in 0..10 {
            r.subtract(&scalar("cpus", 0.1));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn huge_and_odd_scalars_do_not_overflow() {
        let mut r = Resources::new();
        r.add(&scalar("cpus", 1e300));
        r.add(&scalar("cpus", 1e300));
        r.add(&scalar("cpus", f64::INFINITY));
        assert!(r.scalar("cpus") > 1e15);
        r.subtract(&scalar("cpus", f64::NAN));
        r.subtract(&scalar("cpus", -1e300));
        assert!(r.contains_one(&scalar("cpus", 5.0)));
    }

    #[test]
    fn volumes_are_discrete() {
        let mut volume = scalar("disk", 64.0);
        volume.disk = Some(Box::new(crate::v1::resource::DiskInfo {
            persistence: Some(crate::v1::resource::disk_info::Persistence {
                id: "v1".into(),
                principal: None,
            }),
            ..Default::default()
        }));
        let mut r = Resources::from_slice(&res("disk:100"));
        r.add(&volume);
        assert!(r.contains_one(&volume));
        assert_eq!(r.scalar("disk"), 164.0);
        let mut smaller = volume.clone();
        smaller.scalar = Some(Scalar { value: 32.0 });
        assert!(!r.contains_one(&smaller));
        r.subtract(&volume);
        assert_eq!(r.to_string(), "disk:100");
    }

    #[test]
    fn normalize_and_offer_formats_round_trip() {
        let reserved = res("cpus(web):2").remove(0);
        let legacy = for_offer(&reserved, "web", false);
        assert_eq!(legacy.role.as_deref(), Some("web"));
        assert_eq!(normalize(&legacy), reserved);
        let multi = for_offer(&reserved, "web", true);
        assert_eq!(
            multi.allocation_info.as_ref().unwrap().role.as_deref(),
            Some("web")
        );
        assert!(multi.role.is_none());
        assert_eq!(normalize(&multi), reserved);
        let unreserved = res("mem:5").remove(0);
        assert_eq!(
            for_offer(&unreserved, "x", false).role.as_deref(),
            Some("*")
        );
        assert!(allocatable_to(&reserved, "web"));
        assert!(!allocatable_to(&reserved, "db"));
        assert!(allocatable_to(&unreserved, "db"));
    }
}
