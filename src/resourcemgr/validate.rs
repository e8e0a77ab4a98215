//! Validation of resources from outside (a user's request, an offer): the rules Mesos applies
//! before it does arithmetic, reported as a typed [`ResourceError`] that names the resource.
//!
//! Checked: a name; a value matching the type; scalars finite and not negative; GPUs whole;
//! ranges with `begin <= end` that do not overlap one another; sets without duplicates; a
//! reservation stack whose roles refine one another; `shared` only on persistent volumes;
//! revocable resources not dynamically reserved; persistent volumes only on reserved disk.

// `role` (Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use super::algebra::{Resources, normalize};
use super::kinds::{GPUS, is_subrole};
use crate::v1::Resource;
use crate::v1::resource::reservation_info;
use crate::v1::value;

/// A resource that Mesos would refuse, or an operation on resources that cannot be done.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// The resource has no name.
    #[error("resource without a name")]
    EmptyName,
    /// The `type` is not SCALAR, RANGES or SET, or the matching value field is missing.
    #[error("resource '{name}': missing or unknown value for its type")]
    BadType {
        /// The resource's name.
        name: String,
    },
    /// A scalar below zero.
    #[error("resource '{name}': negative scalar {value}")]
    NegativeScalar {
        /// The resource's name.
        name: String,
        /// The value.
        value: f64,
    },
    /// A scalar that is NaN or infinite.
    #[error("resource '{name}': scalar is not a finite number")]
    NotFinite {
        /// The resource's name.
        name: String,
    },
    /// A fractional GPU count.
    #[error("resource 'gpus': {value} is not a whole number")]
    FractionalGpus {
        /// The value.
        value: f64,
    },
    /// A range with `begin > end`.
    #[error("resource '{name}': range {begin}-{end} is inverted")]
    InvertedRange {
        /// The resource's name.
        name: String,
        /// Its begin.
        begin: u64,
        /// Its end.
        end: u64,
    },
    /// Two ranges of one resource overlap.
    #[error("resource '{name}': ranges {first:?} and {second:?} overlap")]
    OverlappingRanges {
        /// The resource's name.
        name: String,
        /// One range (begin, end).
        first: (u64, u64),
        /// The other.
        second: (u64, u64),
    },
    /// A set item appears twice.
    #[error("resource '{name}': set item '{item}' appears twice")]
    DuplicateSetItem {
        /// The resource's name.
        name: String,
        /// The item.
        item: String,
    },
    /// A reservation that does not refine the one below it on the stack.
    #[error("resource '{name}': role '{role}' does not refine reservation role '{parent}'")]
    BadRefinement {
        /// The resource's name.
        name: String,
        /// The new role.
        role: String,
        /// The role below it.
        parent: String,
    },
    /// `shared` on something that is not a persistent volume.
    #[error("resource '{name}': only persistent volumes can be shared")]
    SharedNotVolume {
        /// The resource's name.
        name: String,
    },
    /// A revocable resource with a dynamic reservation.
    #[error("resource '{name}': revocable resources cannot be dynamically reserved")]
    RevocableReserved {
        /// The resource's name.
        name: String,
    },
    /// A persistent volume on unreserved disk.
    #[error("persistent volume '{id}' is not on reserved disk")]
    UnreservedVolume {
        /// The persistence id.
        id: String,
    },
    /// Resources to take out of a collection are not all inside it.
    #[error("not available: {resource}")]
    NotContained {
        /// The first missing resource, in `--resources` text.
        resource: String,
    },
}

/// Checks one resource against Mesos' rules (see the module doc).
pub fn validate(resource: &Resource) -> Result<(), ResourceError> {
    let name = &resource.name;
    if name.is_empty() {
        return Err(ResourceError::EmptyName);
    }
    let bad_type = || ResourceError::BadType { name: name.clone() };
    match value::Type::try_from(resource.r#type) {
        Ok(value::Type::Scalar) => {
            let v = resource.scalar.as_ref().ok_or_else(bad_type)?.value;
            if !v.is_finite() {
                return Err(ResourceError::NotFinite { name: name.clone() });
            }
            if v < 0.0 {
                return Err(ResourceError::NegativeScalar {
                    name: name.clone(),
                    value: v,
                });
            }
            if name == GPUS && v.fract() != 0.0 {
                return Err(ResourceError::FractionalGpus { value: v });
            }
        }
        Ok(value::Type::Ranges) => {
            let ranges = resource.ranges.as_ref().ok_or_else(bad_type)?;
            let mut pairs: Vec<(u64, u64)> = Vec::with_capacity(ranges.range.len());
            for r in &ranges.range {
                if r.begin > r.end {
                    return Err(ResourceError::InvertedRange {
                        name: name.clone(),
                        begin: r.begin,
                        end: r.end,
                    });
                }
                pairs.push((r.begin, r.end));
            }
            pairs.sort_unstable();
            for w in pairs.windows(2) {
                if w[1].0 <= w[0].1 {
                    return Err(ResourceError::OverlappingRanges {
                        name: name.clone(),
                        first: w[0],
                        second: w[1],
                    });
                }
            }
        }
        Ok(value::Type::Set) => {
            let set = resource.set.as_ref().ok_or_else(bad_type)?;
            let mut seen = std::collections::HashSet::new();
            for item in &set.item {
                if !seen.insert(item) {
                    return Err(ResourceError::DuplicateSetItem {
                        name: name.clone(),
                        item: item.clone(),
                    });
                }
            }
        }
        _ => return Err(bad_type()),
    }
    let normal = normalize(resource);
    let mut parent = "*".to_string();
    for reservation in &normal.reservations {
        let role = reservation.role.clone().unwrap_or_default();
        if role.is_empty() || role == "*" || !is_subrole(&role, &parent) {
            return Err(ResourceError::BadRefinement {
                name: name.clone(),
                role,
                parent,
            });
        }
        parent = role;
    }
    let volume = normal.disk.as_ref().and_then(|d| d.persistence.as_ref());
    if resource.shared.is_some() && volume.is_none() {
        return Err(ResourceError::SharedNotVolume { name: name.clone() });
    }
    let dynamic = normal
        .reservations
        .iter()
        .any(|r| r.r#type == Some(reservation_info::Type::Dynamic as i32));
    if resource.revocable.is_some() && dynamic {
        return Err(ResourceError::RevocableReserved { name: name.clone() });
    }
    if let Some(p) = volume {
        if normal.reservations.is_empty() {
            return Err(ResourceError::UnreservedVolume { id: p.id.clone() });
        }
    }
    Ok(())
}

/// Checks every resource; the first failure is returned.
pub fn validate_all(resources: &[Resource]) -> Result<(), ResourceError> {
    resources.iter().try_for_each(validate)
}

impl Resources {
    /// Adds up `resources` after checking each with [`validate`].
    pub fn try_from_slice(resources: &[Resource]) -> Result<Resources, ResourceError> {
        validate_all(resources)?;
        Ok(Resources::from_slice(resources))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resourcemgr::{
        dynamic_reservation, gpus, persistent_volume, push_reservation, ranges, revocable, scalar,
        set, shared,
    };
    use crate::v1::value::{Range, Ranges};

    #[test]
    fn validation_table() {
        let mut no_name = scalar("x", 1.0);
        no_name.name.clear();
        let mut no_value = scalar("cpus", 1.0);
        no_value.scalar = None;
        let mut overlapping = ranges("ports", &[]);
        overlapping.ranges = Some(Ranges {
            range: vec![Range { begin: 5, end: 9 }, Range { begin: 1, end: 5 }],
        });
        let mut inverted = ranges("ports", &[]);
        inverted.ranges = Some(Ranges {
            range: vec![Range { begin: 9, end: 5 }],
        });
        let reserved_disk =
            push_reservation(&scalar("disk", 5.0), dynamic_reservation("r", None, &[])).unwrap();
        let dynamic_revocable = revocable(&reserved_disk);
        let mut bad_stack = reserved_disk.clone();
        bad_stack
            .reservations
            .push(dynamic_reservation("other", None, &[]));
        let cases: Vec<(Resource, Option<ResourceError>)> = vec![
            (scalar("cpus", 1.5), None),
            (ranges("ports", &[(1, 4), (6, 9)]), None),
            (set("disks", &["a".into(), "b".into()]), None),
            (gpus(2), None),
            (
                shared(&persistent_volume(&reserved_disk, "v", None, "d")),
                None,
            ),
            (no_name, Some(ResourceError::EmptyName)),
            (
                no_value,
                Some(ResourceError::BadType {
                    name: "cpus".into(),
                }),
            ),
            (
                scalar("cpus", -1.0),
                Some(ResourceError::NegativeScalar {
                    name: "cpus".into(),
                    value: -1.0,
                }),
            ),
            (
                scalar("mem", f64::NAN),
                Some(ResourceError::NotFinite { name: "mem".into() }),
            ),
            (
                scalar("mem", f64::INFINITY),
                Some(ResourceError::NotFinite { name: "mem".into() }),
            ),
            (
                scalar("gpus", 0.5),
                Some(ResourceError::FractionalGpus { value: 0.5 }),
            ),
            (
                overlapping,
                Some(ResourceError::OverlappingRanges {
                    name: "ports".into(),
                    first: (1, 5),
                    second: (5, 9),
                }),
            ),
            (
                inverted,
                Some(ResourceError::InvertedRange {
                    name: "ports".into(),
                    begin: 9,
                    end: 5,
                }),
            ),
            (
                set("s", &["a".into(), "a".into()]),
                Some(ResourceError::DuplicateSetItem {
                    name: "s".into(),
                    item: "a".into(),
                }),
            ),
            (
                bad_stack,
                Some(ResourceError::BadRefinement {
                    name: "disk".into(),
                    role: "other".into(),
                    parent: "r".into(),
                }),
            ),
            (
                shared(&scalar("disk", 1.0)),
                Some(ResourceError::SharedNotVolume {
                    name: "disk".into(),
                }),
            ),
            (
                dynamic_revocable,
                Some(ResourceError::RevocableReserved {
                    name: "disk".into(),
                }),
            ),
            (
                persistent_volume(&scalar("disk", 1.0), "v9", None, "d"),
                Some(ResourceError::UnreservedVolume { id: "v9".into() }),
            ),
        ];
        for (resource, want) in cases {
            assert_eq!(validate(&resource).err(), want, "{resource:?}");
        }
        assert!(Resources::try_from_slice(&[scalar("cpus", -2.0)]).is_err());
        assert!(Resources::try_from_slice(&[scalar("cpus", 2.0)]).is_ok());
    }
}
