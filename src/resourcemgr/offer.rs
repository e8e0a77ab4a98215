//! Sizing tasks on one offer: [`OfferResources`] holds what is left of an offer and hands out
//! the part a task asks for, carried over with the offer's `allocation_info` and reservations, so
//! a task sized from a plain request (`cpus:0.1;mem:32`) is launchable as it is.
//!
//! Three questions, three functions, each comparing something different:
//! - [`Resources::contains`] compares resources field by field (role, reservations,
//!   `allocation_info`, disk, ...): "are these exact resources inside that collection?". A plain
//!   request never "is contained" in a MULTI_ROLE offer, whose resources all carry
//!   `allocation_info`.
//! - [`OfferResources::fits`] answers what a framework author means: "does this offer have room
//!   for this request, for the offer's role?". A request with no reservation may use the offer's
//!   unreserved resources and those reserved to the offer's role; a request that names a
//!   reservation uses only resources with that reservation.
//! - [`offered_for_role`] sums what an offer holds for a role, without `allocation_info`, for
//!   display and for comparing offers with one another.

use std::fmt;

use crate::v1::value::{self, Scalar, Set};
use crate::v1::{AgentId, Offer, OfferId, Resource};

use super::algebra::{
    allocatable_to, from_fixed, normalize, pairs_of, ranges_value, reservation_role,
    subtract_ranges, to_fixed,
};
use super::{ParseError, Resources, parse_resources};

/// The role an offer is allocated to: the `allocation_info.role` of its resources (MULTI_ROLE
/// frameworks), else the legacy `role` of a reserved resource, else `*`.
pub fn offer_role(offer: &Offer) -> String {
    if let Some(role) = offer
        .resources
        .iter()
        .find_map(|r| r.allocation_info.as_ref().and_then(|a| a.role.clone()))
    {
        return role;
    }
    #[allow(deprecated)]
    offer
        .resources
        .iter()
        .find_map(|r| r.role.clone().filter(|role| role != "*"))
        .unwrap_or_else(|| "*".to_string())
}

/// The sum of the offer's resources usable by `role` (unreserved or reserved to `role`, and
/// allocated to `role` where the offer says so), without `allocation_info`.
pub fn offered_for_role(offer: &Offer, role: &str) -> Resources {
    let mut sum = Resources::new();
    for resource in &offer.resources {
        let allocated = resource
            .allocation_info
            .as_ref()
            .and_then(|a| a.role.as_deref())
            .is_none_or(|allocated| allocated == role);
        let plain = normalize(resource);
        if allocated && allocatable_to(&plain, role) {
            sum.add(&plain);
        }
    }
    sum
}

impl std::str::FromStr for Resources {
    type Err = ParseError;

    /// Parses Mesos' `--resources` text (`cpus:0.5;mem:128;ports:[31000-31009]`) into unreserved
    /// resources; see [`parse_resources`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Resources::from_slice(&parse_resources(text)?))
    }
}

impl Resources {
    /// Parses Mesos' `--resources` text, e.g. `cpus:0.5;mem:128;disk:1024;ports:[31000-31009]`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        text.parse()
    }

    /// Starts a resource set from builder calls: `Resources::builder().cpus(0.5).mem(128.0)`.
    pub fn builder() -> ResourcesBuilder {
        ResourcesBuilder::default()
    }
}

/// Builds a set of unreserved resources from calls; see [`Resources::builder`].
#[derive(Debug, Clone, Default)]
pub struct ResourcesBuilder {
    resources: Resources,
}

impl ResourcesBuilder {
    /// Adds `cpus`.
    pub fn cpus(self, cpus: f64) -> Self {
        self.scalar("cpus", cpus)
    }

    /// Adds `mem` in MB.
    pub fn mem(self, megabytes: f64) -> Self {
        self.scalar("mem", megabytes)
    }

    /// Adds `disk` in MB.
    pub fn disk(self, megabytes: f64) -> Self {
        self.scalar("disk", megabytes)
    }

    /// Adds `gpus`.
    pub fn gpus(self, gpus: u32) -> Self {
        self.scalar("gpus", f64::from(gpus))
    }

    /// Adds specific `ports` as inclusive `(begin, end)` ranges. To take any free ports of an
    /// offer, use [`OfferResources::take_ports`].
    pub fn ports(self, ranges: &[(u64, u64)]) -> Self {
        self.ranges("ports", ranges)
    }

    /// Adds any scalar resource; values are kept to three decimals as Mesos does.
    pub fn scalar(mut self, name: &str, value: f64) -> Self {
        self.resources
            .add(&super::scalar(name, from_fixed(to_fixed(value))));
        self
    }

    /// Adds any ranges resource.
    pub fn ranges(mut self, name: &str, ranges: &[(u64, u64)]) -> Self {
        self.resources.add(&super::ranges(name, ranges));
        self
    }

    /// Adds any set resource.
    pub fn set(mut self, name: &str, items: &[&str]) -> Self {
        let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        self.resources.add(&super::set(name, &items));
        self
    }

    /// The resources built.
    pub fn build(self) -> Resources {
        self.resources
    }
}

impl From<ResourcesBuilder> for Resources {
    fn from(builder: ResourcesBuilder) -> Self {
        builder.build()
    }
}

/// What an offer lacks for a request, per resource name; its `Display` reads like
/// `mem: wants 64, offer has 32 for role 'analytics'`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct Shortfall {
    /// The offer's role.
    pub role: String,
    /// One entry per resource the offer cannot cover.
    pub missing: Vec<Missing>,
}

/// One resource an offer cannot cover; see [`Shortfall`].
#[derive(Debug, Clone, PartialEq)]
pub struct Missing {
    /// The resource's name (`mem`, `ports`, ...).
    pub name: String,
    /// What was asked for, in Mesos' text form (`64`, `[31000-31001]`, `{gpu0}`).
    pub wanted: String,
    /// What the offer has of it for the role, in the same form.
    pub available: String,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, missing) in self.missing.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(
                f,
                "{}: wants {}, offer has {} for role '{}'",
                missing.name, missing.wanted, missing.available, self.role
            )?;
        }
        Ok(())
    }
}

/// What is left of one offer while tasks are sized onto it.
///
/// [`take`](Self::take) removes what a task asks for and returns it in the form the master
/// expects in the task's `resources`: cut from the offer's own entries, so each keeps the offer's
/// `allocation_info`, reservations, disk and revocable markers. Reserved resources are used
/// before unreserved ones. Several tasks can be taken from one offer; launch them all in one
/// ACCEPT of that offer.
#[derive(Debug, Clone)]
pub struct OfferResources {
    offer_id: OfferId,
    agent_id: AgentId,
    hostname: String,
    role: String,
    remaining: Vec<Resource>,
}

impl OfferResources {
    /// Everything of `offer`, for the role it is allocated to ([`offer_role`]).
    pub fn new(offer: &Offer) -> Self {
        Self {
            offer_id: offer.id.clone(),
            agent_id: offer.agent_id.clone(),
            hostname: offer.hostname.clone(),
            role: offer_role(offer),
            remaining: offer.resources.clone(),
        }
    }

    /// The offer's id.
    pub fn offer_id(&self) -> &OfferId {
        &self.offer_id
    }

    /// The agent the offer is on.
    pub fn agent_id(&self) -> &AgentId {
        &self.agent_id
    }

    /// The agent's hostname.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The role the offer is allocated to.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// What is left, as the offer shows it (with `allocation_info`).
    pub fn remaining(&self) -> &[Resource] {
        &self.remaining
    }

    /// What is left for the offer's role, summed and without `allocation_info`.
    pub fn summary(&self) -> Resources {
        let mut sum = Resources::new();
        for resource in &self.remaining {
            let plain = normalize(resource);
            if allocatable_to(&plain, &self.role) {
                sum.add(&plain);
            }
        }
        sum
    }

    /// Whether what is left has room for `request` (see the module's opening lines).
    pub fn fits(&self, request: &[Resource]) -> bool {
        self.check(request).is_ok()
    }

    /// Like [`fits`](Self::fits), but says what is missing.
    pub fn check(&self, request: &[Resource]) -> Result<(), Shortfall> {
        self.clone().take(request).map(|_| ())
    }

    /// Removes `request` from what is left and returns it as the task's resources (with the
    /// offer's `allocation_info` and reservations). On a shortfall nothing is removed.
    pub fn take(&mut self, request: &[Resource]) -> Result<Vec<Resource>, Shortfall> {
        let mut remaining = self.remaining.clone();
        let mut taken = Vec::new();
        let mut missing = Vec::new();
        for wanted in Resources::from_slice(request).as_slice() {
            let wanted = normalize(wanted);
            let before = taken.len();
            if !take_one(&mut remaining, &wanted, &self.role, &mut taken) {
                taken.truncate(before);
                missing.push(Missing {
                    name: wanted.name.clone(),
                    wanted: value_text(&wanted),
                    available: self.available_text(&wanted),
                });
            }
        }
        if !missing.is_empty() {
            return Err(Shortfall {
                role: self.role.clone(),
                missing,
            });
        }
        self.remaining = remaining;
        Ok(taken)
    }

    /// Takes the `count` lowest free ports (the `ports` ranges usable by the offer's role) and
    /// returns the port numbers with the resources to put in the task.
    pub fn take_ports(&mut self, count: usize) -> Result<(Vec<u64>, Vec<Resource>), Shortfall> {
        let mut ports = Vec::with_capacity(count);
        'outer: for resource in &self.remaining {
            if resource.name != "ports" || !self.usable_for_plain(resource) {
                continue;
            }
            for range in resource.ranges.iter().flat_map(|r| &r.range) {
                let mut port = range.begin;
                while port <= range.end {
                    if ports.len() == count {
                        break 'outer;
                    }
                    ports.push(port);
                    port += 1;
                }
            }
        }
        if ports.len() < count {
            return Err(Shortfall {
                role: self.role.clone(),
                missing: vec![Missing {
                    name: "ports".into(),
                    wanted: format!("{count} ports"),
                    available: format!("{} ports", ports.len()),
                }],
            });
        }
        let pairs: Vec<(u64, u64)> = ports.iter().map(|&p| (p, p)).collect();
        let taken = self.take(&[super::ranges("ports", &pairs)])?;
        Ok((ports, taken))
    }

    fn usable_for_plain(&self, offered: &Resource) -> bool {
        let plain = normalize(offered);
        plain.disk.is_none()
            && plain.revocable.is_none()
            && plain.shared.is_none()
            && plain.provider_id.is_none()
            && allocatable_to(&plain, &self.role)
    }

    fn available_text(&self, wanted: &Resource) -> String {
        let mut sum = Resources::new();
        for offered in &self.remaining {
            if matches(offered, wanted, &self.role) {
                let mut plain = normalize(offered);
                plain.reservations.clear();
                sum.add(&plain);
            }
        }
        sum.as_slice()
            .first()
            .map(value_text)
            .unwrap_or_else(|| "none".into())
    }
}

/// Whether an offered resource can serve (part of) a wanted one for `role`.
fn matches(offered: &Resource, wanted: &Resource, role: &str) -> bool {
    let plain = normalize(offered);
    if plain.name != wanted.name
        || plain.r#type != wanted.r#type
        || plain.disk != wanted.disk
        || plain.revocable.is_some() != wanted.revocable.is_some()
        || plain.shared.is_some() != wanted.shared.is_some()
        || plain.provider_id != wanted.provider_id
    {
        return false;
    }
    if wanted.reservations.is_empty() {
        allocatable_to(&plain, role)
    } else {
        plain.reservations == wanted.reservations
    }
}

/// Cuts `wanted` out of `remaining` (reserved entries first) into `taken`; false when the
/// matching entries do not cover it (then `remaining` may be partly cut: the caller discards it).
fn take_one(
    remaining: &mut Vec<Resource>,
    wanted: &Resource,
    role: &str,
    taken: &mut Vec<Resource>,
) -> bool {
    let mut order: Vec<usize> = (0..remaining.len())
        .filter(|&i| matches(&remaining[i], wanted, role))
        .collect();
    // Resources already reserved to the role first: unreserved ones stay free for others.
    order.sort_by_key(|&i| reservation_role(&normalize(&remaining[i])) == "*");
    let done = match value::Type::try_from(wanted.r#type) {
        Ok(value::Type::Scalar) => {
            let mut need = to_fixed(wanted.scalar.as_ref().map_or(0.0, |s| s.value));
            for &i in &order {
                if need <= 0 {
                    break;
                }
                let have = to_fixed(remaining[i].scalar.as_ref().map_or(0.0, |s| s.value));
                let amount = have.min(need);
                if amount <= 0 {
                    continue;
                }
                let mut part = remaining[i].clone();
                part.scalar = Some(Scalar {
                    value: from_fixed(amount),
                });
                taken.push(part);
                remaining[i].scalar = Some(Scalar {
                    value: from_fixed(have - amount),
                });
                need -= amount;
            }
            need <= 0
        }
        Ok(value::Type::Ranges) => {
            let mut need = pairs_of(wanted);
            for &i in &order {
                let have = pairs_of(&remaining[i]);
                let common = intersect(&have, &need);
                if common.is_empty() {
                    continue;
                }
                let mut part = remaining[i].clone();
                part.ranges = Some(ranges_value(&common));
                taken.push(part);
                remaining[i].ranges = Some(ranges_value(&subtract_ranges(&have, &common)));
                need = subtract_ranges(&need, &common);
            }
            need.is_empty()
        }
        Ok(value::Type::Set) => {
            let mut need: Vec<String> = wanted.set.iter().flat_map(|s| s.item.clone()).collect();
            for &i in &order {
                let have: Vec<String> = remaining[i]
                    .set
                    .iter()
                    .flat_map(|s| s.item.clone())
                    .collect();
                let common: Vec<String> =
                    need.iter().filter(|n| have.contains(n)).cloned().collect();
                if common.is_empty() {
                    continue;
                }
                let mut part = remaining[i].clone();
                part.set = Some(Set {
                    item: common.clone(),
                });
                taken.push(part);
                remaining[i].set = Some(Set {
                    item: have.into_iter().filter(|h| !common.contains(h)).collect(),
                });
                need.retain(|n| !common.contains(n));
            }
            need.is_empty()
        }
        _ => false,
    };
    remaining.retain(|r| !is_empty(r));
    done
}

fn is_empty(resource: &Resource) -> bool {
    match value::Type::try_from(resource.r#type) {
        Ok(value::Type::Scalar) => resource
            .scalar
            .as_ref()
            .is_none_or(|s| to_fixed(s.value) <= 0),
        Ok(value::Type::Ranges) => resource.ranges.as_ref().is_none_or(|r| r.range.is_empty()),
        Ok(value::Type::Set) => resource.set.as_ref().is_none_or(|s| s.item.is_empty()),
        _ => false,
    }
}

/// The parts of `a` that are also in `b` (inclusive ranges).
fn intersect(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(ab, ae) in a {
        for &(bb, be) in b {
            let (begin, end) = (ab.max(bb), ae.min(be));
            if begin <= end {
                out.push((begin, end));
            }
        }
    }
    out.sort_unstable();
    out
}

fn value_text(resource: &Resource) -> String {
    match value::Type::try_from(resource.r#type) {
        Ok(value::Type::Scalar) => {
            format!("{}", resource.scalar.as_ref().map_or(0.0, |s| s.value))
        }
        Ok(value::Type::Ranges) => {
            let parts: Vec<String> = resource
                .ranges
                .iter()
                .flat_map(|r| &r.range)
                .map(|r| format!("{}-{}", r.begin, r.end))
                .collect();
            format!("[{}]", parts.join(","))
        }
        Ok(value::Type::Set) => {
            let items = resource
                .set
                .as_ref()
                .map(|s| s.item.join(","))
                .unwrap_or_default();
            format!("{{{items}}}")
        }
        _ => "?".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resourcemgr::{for_offer, parse_resources};
    use crate::v1::resource::ReservationInfo;
    use crate::v1::resource::reservation_info::Type as ReservationType;

    fn offer(text: &str, role: &str, multi_role: bool) -> Offer {
        let resources = parse_resources(text)
            .unwrap()
            .iter()
            .map(|r| for_offer(r, role, multi_role))
            .collect();
        Offer {
            id: OfferId { value: "o1".into() },
            agent_id: AgentId { value: "a1".into() },
            hostname: "host1".into(),
            resources,
            ..Default::default()
        }
    }

    fn reserved(mut resource: Resource, role: &str) -> Resource {
        resource.reservations.push(ReservationInfo {
            r#type: Some(ReservationType::Dynamic as i32),
            role: Some(role.into()),
            ..Default::default()
        });
        resource
    }

    #[test]
    fn a_plain_request_fits_a_multi_role_offer_and_keeps_its_allocation_info() {
        let offer = offer("cpus:1;mem:128;ports:[31000-31005]", "web", true);
        let request = parse_resources("cpus:0.1;mem:32").unwrap();
        // The field-by-field comparison says no: the offer's resources carry allocation_info.
        assert!(!Resources::from_slice(&offer.resources).contains(&request));
        let mut pool = OfferResources::new(&offer);
        assert_eq!(pool.role(), "web");
        assert!(pool.fits(&request));
        let taken = pool.take(&request).unwrap();
        assert_eq!(taken.len(), 2);
        for resource in &taken {
            assert_eq!(
                resource
                    .allocation_info
                    .as_ref()
                    .and_then(|a| a.role.as_deref()),
                Some("web")
            );
        }
        assert_eq!(pool.summary().scalar("cpus"), 0.9);
        assert_eq!(pool.summary().scalar("mem"), 96.0);
    }

    #[test]
    fn shortfalls_name_each_missing_resource_and_change_nothing() {
        let mut pool = OfferResources::new(&offer("cpus:1;mem:32", "*", false));
        let err = pool
            .take(&parse_resources("cpus:0.5;mem:64;gpus:1").unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "mem: wants 64, offer has 32 for role '*'; gpus: wants 1, offer has none for role '*'"
        );
        assert_eq!(pool.summary().scalar("cpus"), 1.0);
    }

    #[test]
    fn table_of_requests() {
        struct Case {
            offer: &'static str,
            request: &'static str,
            fits: bool,
        }
        let cases = [
            Case {
                offer: "cpus:1;mem:64",
                request: "cpus:1;mem:64",
                fits: true,
            },
            Case {
                offer: "cpus:1;mem:64",
                request: "cpus:1.001",
                fits: false,
            },
            Case {
                offer: "cpus:0.3",
                request: "cpus:0.1;cpus:0.2",
                fits: true,
            },
            Case {
                offer: "ports:[31000-31010]",
                request: "ports:[31002-31003,31010-31010]",
                fits: true,
            },
            Case {
                offer: "ports:[31000-31010]",
                request: "ports:[31010-31011]",
                fits: false,
            },
            Case {
                offer: "gpus:{a,b}",
                request: "gpus:{b}",
                fits: true,
            },
            Case {
                offer: "gpus:{a,b}",
                request: "gpus:{c}",
                fits: false,
            },
            Case {
                offer: "",
                request: "",
                fits: true,
            },
        ];
        for case in cases {
            let pool = OfferResources::new(&offer(case.offer, "r", true));
            let request = parse_resources(case.request).unwrap();
            assert_eq!(
                pool.fits(&request),
                case.fits,
                "{} in {}",
                case.request,
                case.offer
            );
        }
    }

    #[test]
    fn reserved_resources_are_used_first_and_other_roles_reservations_never() {
        let mut offer = offer("cpus:1", "web", true);
        let mut ours = reserved(crate::resourcemgr::scalar("cpus", 0.5), "web");
        ours.allocation_info = offer.resources[0].allocation_info.clone();
        let mut theirs = reserved(crate::resourcemgr::scalar("cpus", 4.0), "batch");
        theirs.allocation_info = offer.resources[0].allocation_info.clone();
        offer.resources.push(ours);
        offer.resources.push(theirs);
        let mut pool = OfferResources::new(&offer);
        let taken = pool.take(&parse_resources("cpus:0.7").unwrap()).unwrap();
        assert_eq!(taken.len(), 2);
        assert_eq!(reservation_role(&taken[0]), "web");
        assert_eq!(taken[0].scalar.as_ref().map(|s| s.value), Some(0.5));
        assert_eq!(reservation_role(&taken[1]), "*");
        assert!((taken[1].scalar.as_ref().map_or(0.0, |s| s.value) - 0.2).abs() < 1e-9);
        assert!(pool.fits(&parse_resources("cpus:0.8").unwrap()));
        assert!(!pool.fits(&parse_resources("cpus:0.9").unwrap()));
        // A request naming the reservation uses only reserved resources.
        let named = reserved(crate::resourcemgr::scalar("cpus", 0.1), "web");
        assert!(!pool.fits(&[named]));
    }

    #[test]
    fn ports_are_taken_lowest_first_and_never_twice() {
        let mut pool = OfferResources::new(&offer("ports:[31000-31001,32000-32005]", "*", false));
        let (first, _) = pool.take_ports(3).unwrap();
        assert_eq!(first, vec![31000, 31001, 32000]);
        let (second, resources) = pool.take_ports(2).unwrap();
        assert_eq!(second, vec![32001, 32002]);
        assert_eq!(resources.len(), 1);
        assert!(pool.take_ports(4).is_err());
        assert_eq!(pool.take_ports(3).unwrap().0, vec![32003, 32004, 32005]);
    }

    #[test]
    fn offered_for_role_sums_what_the_role_may_use() {
        let offer = offer("cpus:2;mem:100", "web", true);
        let sum = offered_for_role(&offer, "web");
        assert_eq!(sum.to_string(), "cpus:2;mem:100");
        assert!(offered_for_role(&offer, "other").is_empty());
    }

    #[test]
    fn builder_and_parser_agree() {
        let built = Resources::builder()
            .cpus(0.5)
            .mem(128.0)
            .ports(&[(31000, 31009)])
            .set("gpus", &["a"])
            .build();
        let parsed = Resources::parse("cpus:0.5;mem:128;ports:[31000-31009];gpus:{a}").unwrap();
        assert_eq!(built, parsed);
        assert!(Resources::parse("cpus:-1").is_err());
    }
}
