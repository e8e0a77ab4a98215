//! The placer's compact view of the offers: one *bin* per agent and allocation role (the
//! offers one ACCEPT may use together), with fixed-point amounts per resource dimension, free
//! ports, and the framework's labelled reservations; and the [`Carver`] that turns a bin's
//! placements back into real `Resource`s cut from the offers, each keeping its offer's
//! `allocation_info` and reservations.
//!
//! What a bin counts as usable by ordinary requests: unreserved resources and resources
//! reserved to the bin's role without labels (static or unlabelled dynamic reservations), root
//! disk only. Besides, kept apart for the requests that ask: PATH and MOUNT disks (by piece:
//! a PATH disk is cut, a MOUNT disk taken whole), revocable scalars (for requests that opt in),
//! and shared persistent volumes (by persistence id; any number of tasks may use one).
//! Resources reserved with the placer's label belong to that reservation's request only; other
//! labelled reservations, shared resources that are not volumes, and resources of resource
//! providers are left alone.

// `role` (Resource) is deprecated in the schema but Mesos still reads and writes it.
#![allow(deprecated)]

use std::borrow::Cow;

use super::FastMap;
use super::amounts::Amounts;
use super::ports::FreePorts;
use crate::resourcemgr::algebra::{from_fixed, normalize, reservation_role, to_fixed};
use crate::resourcemgr::kinds::{
    DiskKind, GPUS, allocation_role, disk_kind, has_reservation_labels, reservation_label,
    volume_id,
};
use crate::resourcemgr::pool::{AgentView, OfferPool};
use crate::v1::value::{self, Range, Ranges, Scalar};
use crate::v1::{OfferId, Resource};

/// Names of the scalar dimensions: `cpus`, `mem`, `disk`, `gpus`, then custom ones.
#[derive(Debug, Clone)]
pub(crate) struct Dims {
    pub(crate) names: Vec<String>,
    index: FastMap<String, usize>,
}

pub(crate) const CPUS: usize = 0;
pub(crate) const MEM: usize = 1;
pub(crate) const DISK: usize = 2;
pub(crate) const GPU: usize = 3;

impl Dims {
    pub(crate) fn new<'a>(extra: impl Iterator<Item = &'a str>) -> Self {
        let mut dims = Dims {
            names: Vec::new(),
            index: FastMap::default(),
        };
        for n in ["cpus", "mem", "disk", GPUS].into_iter().chain(extra) {
            if dims.names.len() >= 4 && Self::fixed(n).is_some() {
                continue;
            }
            if !dims.index.contains_key(n) {
                dims.index.insert(n.to_string(), dims.names.len());
                dims.names.push(n.to_string());
            }
        }
        dims
    }

    fn fixed(name: &str) -> Option<usize> {
        match name {
            "cpus" => Some(CPUS),
            "mem" => Some(MEM),
            "disk" => Some(DISK),
            GPUS => Some(GPU),
            _ => None,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<usize> {
        Self::fixed(name).or_else(|| self.index.get(name).copied())
    }

    pub(crate) fn len(&self) -> usize {
        self.names.len()
    }
}

/// How a bin may use one offered resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    Reserved,
    Unreserved,
    Labelled(String),
    Volume(String),
    /// A revocable scalar (cpus, mem, root disk, ...), unlabelled.
    Revocable,
    /// A PATH disk, unlabelled and without a volume.
    PathDisk,
    /// A MOUNT disk, unlabelled and without a volume.
    MountDisk,
    /// A shared persistent volume with this persistence id.
    Shared(String),
    Ignored,
}

/// One offered resource of a bin, with what is left of it (scalars, thousandths).
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub(crate) resource: Resource,
    pub(crate) class: Class,
    pub(crate) left: i64,
    /// Its dimension, for a scalar one of [`Dims`].
    pub(crate) dim: Option<usize>,
}

/// One agent's offers for one allocation role.
#[derive(Debug, Clone)]
pub(crate) struct Bin<'p> {
    /// The agent, as the pool holds it (copied into an `Arc` only for the answer, when the
    /// bin is used).
    pub(crate) view: &'p AgentView,
    pub(crate) role: Option<String>,
    pub(crate) offer_ids: Vec<OfferId>,
    pub(crate) capacity: Amounts,
    pub(crate) free: Amounts,
    pub(crate) unreserved: Amounts,
    pub(crate) ports: FreePorts,
    pub(crate) reservations: FastMap<String, Vec<i64>>,
    pub(crate) volumes: FastMap<String, Resource>,
    /// Revocable amounts per dimension (for requests that opt in).
    pub(crate) revocable: Amounts,
    /// PATH and MOUNT disks: (index in `pieces`, what is left of it, whether MOUNT), as the
    /// search sees them (the pieces themselves are cut when the calls are built).
    pub(crate) disks: Vec<(usize, i64, bool)>,
    /// Shared persistent volumes by persistence id.
    pub(crate) shared: FastMap<String, Resource>,
    pub(crate) gpu: bool,
    pub(crate) pieces: Vec<Piece>,
    pub(crate) values: Vec<Option<String>>,
}

impl Bin<'_> {
    /// Takes `demand` from the bin's revocable resources first, the rest from the ordinary
    /// ones (as [`Carver`] with [`From::Revocable`] cuts them).
    pub(crate) fn consume_revocable(&mut self, demand: &[i64]) {
        let mut rest = Amounts::zeros(demand.len());
        for ((d, want), left) in demand.iter().enumerate().zip(rest.iter_mut()) {
            let from_revocable = self.revocable[d].min(*want).max(0);
            self.revocable[d] -= from_revocable;
            *left = want - from_revocable;
        }
        self.consume(&rest, false);
    }

    /// The PATH or MOUNT disk (index into [`disks`](Self::disks)) the search gives `amount`
    /// to: the one with the least left that holds it (MOUNT: unused ones only, taken whole).
    pub(crate) fn disk_for(&self, mount: bool, amount: i64) -> Option<usize> {
        self.disks
            .iter()
            .enumerate()
            .filter(|(_, (piece, left, m))| {
                *m == mount && *left >= amount && (!mount || *left == self.pieces[*piece].left)
            })
            .min_by_key(|(_, (_, left, _))| *left)
            .map(|(i, _)| i)
    }

    /// Takes the whole of disk `i` (MOUNT) or `amount` of it (PATH), as the search sees it.
    pub(crate) fn use_disk(&mut self, i: usize, amount: i64) {
        let (_, left, mount) = &mut self.disks[i];
        *left = if *mount { 0 } else { *left - amount };
    }

    /// Takes `demand` from the bin's ordinary resources: reserved first, then unreserved
    /// (`unreserved_only` for a request that reserves them).
    pub(crate) fn consume(&mut self, demand: &[i64], unreserved_only: bool) {
        for (d, want) in demand.iter().enumerate() {
            if *want == 0 {
                continue;
            }
            let reserved = self.free[d] - self.unreserved[d];
            let from_reserved = if unreserved_only {
                0
            } else {
                reserved.min(*want)
            };
            self.free[d] -= want;
            self.unreserved[d] -= want - from_reserved;
        }
    }
}

/// Builds the bins of the pool's offers. `label` is the reservation label key of the placer;
/// `fields` the constraint fields whose values each bin caches.
pub(crate) fn build<'p>(
    pool: &'p OfferPool,
    dims: &Dims,
    label: &str,
    fields: &[String],
) -> Vec<Bin<'p>> {
    let mut bins: Vec<Bin> = Vec::with_capacity(pool.agent_count());
    for (view, offers) in pool.agents() {
        // This agent's bins, one per role, are `bins[first..]`.
        let first = bins.len();
        for offer in &offers {
            let role = offer
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.clone())
                .or_else(|| {
                    offer
                        .resources
                        .iter()
                        .find_map(|r| allocation_role(r).map(str::to_string))
                });
            let pos = match bins[first..].iter().position(|b| b.role == role) {
                Some(p) => first + p,
                None => {
                    bins.push(Bin {
                        view,
                        role: role.clone(),
                        offer_ids: Vec::with_capacity(offers.len()),
                        capacity: Amounts::zeros(dims.len()),
                        free: Amounts::zeros(dims.len()),
                        unreserved: Amounts::zeros(dims.len()),
                        ports: FreePorts::default(),
                        reservations: FastMap::default(),
                        volumes: FastMap::default(),
                        revocable: Amounts::zeros(dims.len()),
                        disks: Vec::new(),
                        shared: FastMap::default(),
                        gpu: false,
                        pieces: Vec::new(),
                        values: fields.iter().map(|f| view.field(f)).collect(),
                    });
                    bins.len() - 1
                }
            };
            let bin = &mut bins[pos];
            bin.offer_ids.push(offer.id.clone());
            bin.pieces.reserve(offer.resources.len());
            for r in &offer.resources {
                add_piece(bin, r, dims, label);
            }
        }
        for bin in &mut bins[first..] {
            let mut port_ranges: Vec<(u64, u64)> = bin
                .pieces
                .iter()
                .filter(|p| {
                    p.resource.name == "ports"
                        && matches!(p.class, Class::Reserved | Class::Unreserved)
                })
                .flat_map(|p| {
                    p.resource
                        .ranges
                        .iter()
                        .flat_map(|r| r.range.iter().map(|r| (r.begin, r.end)))
                })
                .collect();
            port_ranges.sort_unstable();
            bin.ports = FreePorts::new(merge(port_ranges));
            bin.capacity = bin.free.clone();
        }
    }
    bins
}

fn merge(pairs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (b, e) in pairs {
        match out.last_mut() {
            Some(last) if b <= last.1.saturating_add(1) => last.1 = last.1.max(e),
            _ => out.push((b, e)),
        }
    }
    out
}

fn add_piece(bin: &mut Bin, r: &Resource, dims: &Dims, label: &str) {
    // The checks below read the reservations the way `normalize` writes them; a resource
    // that already has them so (or has none, legacy or not) is read as it is, uncopied.
    let as_is = !r.reservations.is_empty()
        || (r.reservation.is_none() && r.role.as_deref().is_none_or(|role| role == "*"));
    let normal = if as_is {
        Cow::Borrowed(r)
    } else {
        Cow::Owned(normalize(r))
    };
    let is_scalar = r.r#type == value::Type::Scalar as i32;
    let amount = if is_scalar {
        r.scalar.as_ref().map_or(0, |s| to_fixed(s.value)).max(0)
    } else {
        0
    };
    let dim = dims.get(&r.name).filter(|_| is_scalar);
    if r.name == GPUS && amount > 0 {
        bin.gpu = true;
    }
    let kind = disk_kind(r);
    let class = if r.provider_id.is_some() {
        Class::Ignored
    } else if r.shared.is_some() {
        match volume_id(&normal) {
            Some(id) if r.revocable.is_none() => Class::Shared(id.to_string()),
            _ => Class::Ignored,
        }
    } else if r.revocable.is_some() {
        let plain = volume_id(&normal).is_none()
            && !has_reservation_labels(&normal)
            && matches!(kind, DiskKind::NotDisk | DiskKind::Root)
            && dim.is_some();
        if plain {
            Class::Revocable
        } else {
            Class::Ignored
        }
    } else if let Some(id) = volume_id(&normal) {
        match reservation_label(&normal, label) {
            Some(owner) if owner == id => Class::Volume(id.to_string()),
            _ => Class::Ignored,
        }
    } else if has_reservation_labels(&normal) {
        match reservation_label(&normal, label) {
            Some(id) => Class::Labelled(id.to_string()),
            None => Class::Ignored,
        }
    } else if let DiskKind::Path(_) = kind {
        Class::PathDisk
    } else if let DiskKind::Mount(_) = kind {
        Class::MountDisk
    } else if r.name == "disk" && kind != DiskKind::Root {
        Class::Ignored
    } else if reservation_role(&normal) == "*" {
        Class::Unreserved
    } else {
        Class::Reserved
    };
    match (&class, dim) {
        (Class::Unreserved, Some(d)) => {
            bin.free[d] += amount;
            bin.unreserved[d] += amount;
        }
        (Class::Reserved, Some(d)) => bin.free[d] += amount,
        (Class::Labelled(id), Some(d)) => {
            let len = dims.len();
            bin.reservations
                .entry(id.clone())
                .or_insert_with(|| vec![0; len])[d] += amount;
        }
        (Class::Revocable, Some(d)) => bin.revocable[d] += amount,
        (Class::PathDisk | Class::MountDisk, _) => {
            let mount = class == Class::MountDisk;
            bin.disks.push((bin.pieces.len(), amount, mount));
        }
        (Class::Shared(id), _) => {
            bin.shared.insert(id.clone(), r.clone());
        }
        (Class::Volume(id), _) => {
            bin.volumes.insert(id.clone(), r.clone());
            let len = dims.len();
            bin.reservations
                .entry(id.clone())
                .or_insert_with(|| vec![0; len]);
        }
        _ => {}
    }
    bin.pieces.push(Piece {
        resource: r.clone(),
        class,
        left: amount,
        dim,
    });
}

/// Cuts real resources out of a bin's offered pieces.
pub(crate) struct Carver<'a> {
    pub(crate) pieces: &'a mut [Piece],
}

/// Where a request's resources come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum From<'s> {
    /// Reserved to the role first, then unreserved.
    Ordinary,
    /// Unreserved only (they are about to be reserved).
    Unreserved,
    /// The placer's reservation with this id.
    Reservation(&'s str),
    /// Revocable first, then as [`From::Ordinary`].
    Revocable,
}

impl Carver<'_> {
    /// Cuts `amount` from piece `index` (a PATH disk), or all of it (a MOUNT disk).
    pub(crate) fn take_piece(&mut self, index: usize, amount: i64) -> Option<Resource> {
        let piece = self.pieces.get_mut(index)?;
        let mut cut = piece.resource.clone();
        if piece.class == Class::MountDisk {
            piece.left = 0;
            return Some(cut);
        }
        let n = piece.left.min(amount);
        piece.left -= n;
        cut.scalar = Some(Scalar {
            value: from_fixed(n),
        });
        Some(cut)
    }

    /// Takes `demand` (per dimension, thousandths) and `ports` (numbers) as resources.
    pub(crate) fn take(&mut self, demand: &[i64], ports: &[u64], from: From<'_>) -> Vec<Resource> {
        let mut out = Vec::with_capacity(demand.len() + 1);
        for (d, want) in demand.iter().enumerate() {
            let mut want = *want;
            if want <= 0 {
                continue;
            }
            let passes: &[fn(&Class, &str) -> bool] = match from {
                From::Ordinary => &[|c, _| *c == Class::Reserved, |c, _| *c == Class::Unreserved],
                From::Unreserved => &[|c, _| *c == Class::Unreserved],
                From::Reservation(_) => &[|c, id| matches!(c, Class::Labelled(x) if x == id)],
                From::Revocable => &[
                    |c, _| *c == Class::Revocable,
                    |c, _| *c == Class::Reserved,
                    |c, _| *c == Class::Unreserved,
                ],
            };
            let id = match from {
                From::Reservation(id) => id,
                _ => "",
            };
            for pass in passes {
                for piece in self.pieces.iter_mut() {
                    if want == 0 {
                        break;
                    }
                    if piece.dim != Some(d) || piece.left <= 0 || !pass(&piece.class, id) {
                        continue;
                    }
                    let n = piece.left.min(want);
                    piece.left -= n;
                    want -= n;
                    let mut cut = piece.resource.clone();
                    cut.scalar = Some(Scalar {
                        value: from_fixed(n),
                    });
                    out.push(cut);
                }
            }
        }
        if !ports.is_empty() {
            for piece in self.pieces.iter_mut() {
                if piece.resource.name != "ports"
                    || !matches!(piece.class, Class::Reserved | Class::Unreserved)
                {
                    continue;
                }
                let held = |p: &u64| {
                    piece
                        .resource
                        .ranges
                        .iter()
                        .flat_map(|r| &r.range)
                        .any(|r| r.begin <= *p && *p <= r.end)
                };
                let mut held_ports: Vec<u64> = ports.iter().copied().filter(held).collect();
                if held_ports.is_empty() {
                    continue;
                }
                held_ports.sort_unstable();
                // Consecutive numbers make one range.
                let mut range: Vec<Range> = Vec::with_capacity(held_ports.len());
                for p in held_ports {
                    match range.last_mut() {
                        Some(last) if p <= last.end.saturating_add(1) => last.end = last.end.max(p),
                        _ => range.push(Range { begin: p, end: p }),
                    }
                }
                // The cut is the piece without its ranges (not copied only to be replaced),
                // then the ports taken.
                let offered = piece.resource.ranges.take();
                let mut cut = piece.resource.clone();
                piece.resource.ranges = offered;
                cut.ranges = Some(Ranges { range });
                out.push(cut);
            }
        }
        out
    }
}
