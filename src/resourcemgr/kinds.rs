//! The kinds of resources beyond plain unreserved scalars, ranges and sets: reservation
//! refinement stacks (push, pop, labels), `allocation_info`, revocable and shared resources,
//! GPUs, disk sources (root, path, mount) and persistent volumes, and the flatten / unflatten /
//! by-role views of a [`Resources`].
//!
//! Every function here is pure: it takes resources and returns new ones. Functions that can be
//! asked for something Mesos would reject (a refinement to an unrelated role) return a
//! [`ResourceError`].

// `role` (Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use std::collections::BTreeMap;

use super::algebra::{Resources, normalize, reservation_role, scalar};
use super::validate::ResourceError;
use crate::v1::resource::disk_info::{Persistence, Source, source};
use crate::v1::resource::{
    AllocationInfo, DiskInfo, ReservationInfo, RevocableInfo, SharedInfo, reservation_info,
};
use crate::v1::{Label, Labels, Resource, Volume, volume};

/// Name of the GPU resource.
pub const GPUS: &str = "gpus";

/// `n` whole GPUs, unreserved. Mesos counts GPUs as a scalar that must be a whole number.
pub fn gpus(n: u32) -> Resource {
    scalar(GPUS, f64::from(n))
}

/// Whether `role_child` is `role_parent` or nested inside it (`a/b` inside `a`); every role is
/// inside `*`.
pub fn is_subrole(role_child: &str, role_parent: &str) -> bool {
    role_parent == "*"
        || role_child == role_parent
        || role_child
            .strip_prefix(role_parent)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A dynamic reservation for `role`, by `principal`, with `labels` (key, value) pairs.
pub fn dynamic_reservation(
    role: &str,
    principal: Option<&str>,
    labels: &[(&str, &str)],
) -> ReservationInfo {
    ReservationInfo {
        r#type: Some(reservation_info::Type::Dynamic as i32),
        role: Some(role.to_string()),
        principal: principal.map(str::to_string),
        labels: (!labels.is_empty()).then(|| Labels {
            labels: labels
                .iter()
                .map(|(k, v)| Label {
                    key: (*k).to_string(),
                    value: Some((*v).to_string()),
                })
                .collect(),
        }),
    }
}

/// Refines the reservation of `resource` (normalized first) by pushing `reservation` on its
/// stack: the new role must be the current role or nested in it (Mesos' hierarchical
/// refinement); an unreserved resource takes any role. `allocation_info` is kept, so a resource
/// taken from an offer stays valid in that offer's RESERVE operation.
pub fn push_reservation(
    resource: &Resource,
    reservation: ReservationInfo,
) -> Result<Resource, ResourceError> {
    let allocation = resource.allocation_info.clone();
    let mut r = normalize(resource);
    let parent = reservation_role(&r).to_string();
    let child = reservation.role.clone().unwrap_or_default();
    if child.is_empty() || child == "*" || !is_subrole(&child, &parent) {
        return Err(ResourceError::BadRefinement {
            name: r.name.clone(),
            role: child,
            parent,
        });
    }
    r.reservations.push(reservation);
    r.allocation_info = allocation;
    Ok(r)
}

/// Undoes the last reservation of `resource` (normalized first); an unreserved resource comes
/// back unchanged. `allocation_info` is kept.
pub fn pop_reservation(resource: &Resource) -> Resource {
    let allocation = resource.allocation_info.clone();
    let mut r = normalize(resource);
    r.reservations.pop();
    r.allocation_info = allocation;
    r
}

/// The value of label `key` on the last reservation of `resource` (either reservation format).
pub fn reservation_label<'a>(resource: &'a Resource, key: &str) -> Option<&'a str> {
    let last = resource
        .reservations
        .last()
        .or(resource.reservation.as_ref())?;
    last.labels
        .as_ref()?
        .labels
        .iter()
        .find(|l| l.key == key)
        .and_then(|l| l.value.as_deref())
}

/// Whether the last reservation of `resource` carries labels (a framework-made reservation
/// meant for one purpose, which other tasks should leave alone).
pub fn has_reservation_labels(resource: &Resource) -> bool {
    resource
        .reservations
        .last()
        .or(resource.reservation.as_ref())
        .and_then(|r| r.labels.as_ref())
        .is_some_and(|l| !l.labels.is_empty())
}

/// `resource` marked as allocated to `role` (what a MULTI_ROLE offer carries).
pub fn with_allocation(resource: &Resource, role: &str) -> Resource {
    let mut r = resource.clone();
    r.allocation_info = Some(AllocationInfo {
        role: Some(role.to_string()),
    });
    r
}

/// The role `resource` is allocated to, if it carries `allocation_info`.
pub fn allocation_role(resource: &Resource) -> Option<&str> {
    resource.allocation_info.as_ref()?.role.as_deref()
}

/// `resource` marked revocable (it may be taken back at any time: oversubscription).
pub fn revocable(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    r.revocable = Some(RevocableInfo {});
    r
}

/// Whether `resource` is revocable.
pub fn is_revocable(resource: &Resource) -> bool {
    resource.revocable.is_some()
}

/// `resource` marked shared (several tasks may use it at once; Mesos allows this only for
/// persistent volumes, see [`super::validate()`]).
pub fn shared(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    r.shared = Some(SharedInfo {});
    r
}

/// Whether `resource` is shared.
pub fn is_shared(resource: &Resource) -> bool {
    resource.shared.is_some()
}

/// Where a disk resource lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskKind {
    /// Not a disk resource.
    NotDisk,
    /// The agent's root (work directory) disk; splittable.
    Root,
    /// A PATH disk under this root; splittable.
    Path(String),
    /// A MOUNT disk under this root: used whole, never split.
    Mount(String),
    /// A BLOCK or RAW disk (CSI profiles); used whole.
    Other,
}

/// The [`DiskKind`] of `resource`.
pub fn disk_kind(resource: &Resource) -> DiskKind {
    if resource.name != "disk" {
        return DiskKind::NotDisk;
    }
    let Some(src) = resource.disk.as_ref().and_then(|d| d.source.as_ref()) else {
        return DiskKind::Root;
    };
    match source::Type::try_from(src.r#type) {
        Ok(source::Type::Path) => DiskKind::Path(
            src.path
                .as_ref()
                .and_then(|p| p.root.clone())
                .unwrap_or_default(),
        ),
        Ok(source::Type::Mount) => DiskKind::Mount(
            src.mount
                .as_ref()
                .and_then(|m| m.root.clone())
                .unwrap_or_default(),
        ),
        _ => DiskKind::Other,
    }
}

/// `megabytes` of disk on a PATH or MOUNT source at `root` (`mount` picks MOUNT).
pub fn disk_with_source(megabytes: f64, root: &str, mount: bool) -> Resource {
    let mut r = scalar("disk", megabytes);
    let mut src = Source {
        r#type: if mount {
            source::Type::Mount as i32
        } else {
            source::Type::Path as i32
        },
        ..Default::default()
    };
    if mount {
        src.mount = Some(source::Mount {
            root: Some(root.to_string()),
        });
    } else {
        src.path = Some(source::Path {
            root: Some(root.to_string()),
        });
    }
    r.disk = Some(Box::new(DiskInfo {
        source: Some(src),
        ..Default::default()
    }));
    r
}

/// Turns a (reserved) disk resource into a persistent volume: `disk.persistence.id = id`,
/// mounted read-write at `container_path` in the task's sandbox. The resource keeps its
/// reservations, disk source and `allocation_info`, as a CREATE operation wants.
pub fn persistent_volume(
    disk: &Resource,
    id: &str,
    principal: Option<&str>,
    container_path: &str,
) -> Resource {
    let mut r = disk.clone();
    let info = r.disk.get_or_insert_with(Box::default);
    info.persistence = Some(Persistence {
        id: id.to_string(),
        principal: principal.map(str::to_string),
    });
    info.volume = Some(Volume {
        mode: volume::Mode::Rw as i32,
        container_path: container_path.to_string(),
        ..Default::default()
    });
    r
}

/// The persistence id of `resource`, if it is a persistent volume.
pub fn volume_id(resource: &Resource) -> Option<&str> {
    resource
        .disk
        .as_ref()?
        .persistence
        .as_ref()
        .map(|p| p.id.as_str())
}

/// The disk a persistent volume was made from (DESTROY's result): the volume with persistence
/// and container volume removed, the source kept.
pub fn strip_volume(resource: &Resource) -> Resource {
    let mut r = resource.clone();
    if let Some(disk) = r.disk.as_mut() {
        disk.persistence = None;
        disk.volume = None;
        if disk.source.is_none() {
            r.disk = None;
        }
    }
    r
}

impl Resources {
    /// The resources with every reservation and `allocation_info` removed (what they would be
    /// if nobody had reserved them); volumes lose their persistence too.
    pub fn flatten(&self) -> Resources {
        let mut out = Resources::new();
        for r in self.as_slice() {
            let mut plain = normalize(r);
            plain.reservations.clear();
            out.add(&strip_volume(&plain));
        }
        out
    }

    /// `flat` (unreserved) statically reserved to `role` in one go: the inverse of
    /// [`Resources::flatten`] for resources reserved to one role. `*` gives `flat` back.
    pub fn unflatten(flat: &Resources, role: &str) -> Resources {
        let mut out = Resources::new();
        for r in flat.as_slice() {
            let mut reserved = normalize(r);
            if role != "*" {
                reserved.reservations = vec![ReservationInfo {
                    r#type: Some(reservation_info::Type::Static as i32),
                    role: Some(role.to_string()),
                    ..Default::default()
                }];
            }
            out.add(&reserved);
        }
        out
    }

    /// The resources grouped by the role they are reserved to (`*` for unreserved), each
    /// entry unchanged. Adding the groups back gives the same resources.
    pub fn by_role(&self) -> BTreeMap<String, Resources> {
        let mut out: BTreeMap<String, Resources> = BTreeMap::new();
        for r in self.as_slice() {
            let role = reservation_role(&normalize(r)).to_string();
            out.entry(role).or_default().add(r);
        }
        out
    }

    /// Whether both collections hold the same amounts (each contains the other), whatever the
    /// order of their entries.
    pub fn same_as(&self, other: &Resources) -> bool {
        self.contains(other.as_slice()) && other.contains(self.as_slice())
    }

    /// Subtracts `resources` if all of them are inside this collection; otherwise leaves it
    /// unchanged and says which one is missing.
    pub fn take(&mut self, resources: &[Resource]) -> Result<(), ResourceError> {
        let wanted = Resources::from_slice(resources);
        for r in wanted.as_slice() {
            if !self.contains_one(r) {
                return Err(ResourceError::NotContained {
                    resource: Resources::from_slice(std::slice::from_ref(r)).to_string(),
                });
            }
        }
        self.subtract_all(wanted.as_slice());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resourcemgr::parse_resources;

    #[test]
    fn refinement_stack_table() {
        let cpus = scalar("cpus", 2.0);
        let a = push_reservation(&cpus, dynamic_reservation("a", None, &[])).unwrap();
        let ab =
            push_reservation(&a, dynamic_reservation("a/b", Some("p"), &[("k", "v")])).unwrap();
        assert_eq!(ab.reservations.len(), 2);
        assert_eq!(reservation_role(&ab), "a/b");
        assert_eq!(reservation_label(&ab, "k"), Some("v"));
        assert!(has_reservation_labels(&ab));
        assert!(!has_reservation_labels(&a));
        assert_eq!(pop_reservation(&ab), a);
        assert_eq!(pop_reservation(&a), cpus);
        let cases = [("a", "c"), ("a", "ab"), ("a/b", "a"), ("a", "*")];
        for (first, second) in cases {
            let r = push_reservation(&cpus, dynamic_reservation(first, None, &[])).unwrap();
            let err = push_reservation(&r, dynamic_reservation(second, None, &[])).unwrap_err();
            assert!(
                matches!(err, ResourceError::BadRefinement { .. }),
                "{first} -> {second}"
            );
        }
    }

    #[test]
    fn refinement_keeps_allocation_info() {
        let offered = with_allocation(&scalar("mem", 64.0), "web");
        let reserved = push_reservation(&offered, dynamic_reservation("web", None, &[])).unwrap();
        assert_eq!(allocation_role(&reserved), Some("web"));
        assert_eq!(allocation_role(&pop_reservation(&reserved)), Some("web"));
    }

    #[test]
    fn disk_kinds_and_volumes() {
        assert_eq!(disk_kind(&scalar("disk", 1.0)), DiskKind::Root);
        assert_eq!(disk_kind(&scalar("mem", 1.0)), DiskKind::NotDisk);
        assert_eq!(
            disk_kind(&disk_with_source(10.0, "/mnt/a", true)),
            DiskKind::Mount("/mnt/a".into())
        );
        assert_eq!(
            disk_kind(&disk_with_source(10.0, "/p", false)),
            DiskKind::Path("/p".into())
        );
        let reserved =
            push_reservation(&scalar("disk", 64.0), dynamic_reservation("db", None, &[])).unwrap();
        let volume = persistent_volume(&reserved, "v1", None, "data");
        assert_eq!(volume_id(&volume), Some("v1"));
        assert_eq!(strip_volume(&volume), reserved);
        let mounted = disk_with_source(10.0, "/mnt/a", true);
        assert_eq!(
            strip_volume(&persistent_volume(&mounted, "v", None, "d")),
            mounted
        );
        // Different sources never merge.
        let mut both = Resources::new();
        both.add(&disk_with_source(10.0, "/mnt/a", true));
        both.add(&disk_with_source(10.0, "/mnt/b", true));
        both.add(&scalar("disk", 5.0));
        assert_eq!(both.as_slice().len(), 3);
    }

    #[test]
    fn revocable_shared_and_gpus_are_distinct_kinds() {
        let mut r = Resources::new();
        r.add(&scalar("cpus", 1.0));
        r.add(&revocable(&scalar("cpus", 1.0)));
        r.add(&gpus(2));
        assert_eq!(r.as_slice().len(), 3);
        assert!(r.as_slice().iter().any(is_revocable));
        assert_eq!(r.scalar(GPUS), 2.0);
        assert!(!r.contains(&[scalar("cpus", 2.0)]));
        assert!(is_shared(&shared(&scalar("disk", 1.0))));
    }

    #[test]
    fn flatten_unflatten_by_role() {
        let r = Resources::from_slice(&parse_resources("cpus(a):2;cpus:1;mem(b):5").unwrap());
        let flat = r.flatten();
        assert_eq!(flat.to_string(), "cpus:3;mem:5");
        let groups = r.by_role();
        assert_eq!(
            groups.keys().cloned().collect::<Vec<_>>(),
            vec!["*", "a", "b"]
        );
        let mut back = Resources::new();
        for g in groups.values() {
            back.add_all(g.as_slice());
        }
        assert!(back.same_as(&r));
        let reserved = Resources::unflatten(&flat, "c");
        assert_eq!(reserved.to_string(), "cpus(c):3;mem(c):5");
        assert!(reserved.flatten().same_as(&flat));
    }

    #[test]
    fn take_is_all_or_nothing() {
        let mut r = Resources::from_slice(&parse_resources("cpus:2;mem:10").unwrap());
        let err = r
            .take(&parse_resources("cpus:1;mem:11").unwrap())
            .unwrap_err();
        assert_eq!(
            err,
            ResourceError::NotContained {
                resource: "mem:11".into()
            }
        );
        assert_eq!(r.to_string(), "cpus:2;mem:10");
        r.take(&parse_resources("cpus:1;mem:10").unwrap()).unwrap();
        assert_eq!(r.to_string(), "cpus:1");
    }
}
