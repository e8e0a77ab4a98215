//! Placement: one call puts a batch of pending [`Request`]s onto the offers of an
//! [`OfferPool`] and answers with ACCEPT calls (one per agent and allocation role, operations in
//! the order RESERVE, CREATE, LAUNCH, LAUNCH_GROUP), the offers to decline, what was placed
//! where, and for every request left unplaced a reason per failure kind.
//!
//! The algorithm, for a batch of `n` requests over `m` bins (an agent's offers for one role):
//! requests bound to an existing reservation go first, then the others in the order given (the
//! caller's priority; [`PlacerConfig::largest_first`] sorts by dominant share instead); each is
//! answered by the fitness policy's search structure (see [`fitness`]): by default the first
//! bin, in a fixed order, where it fits (a max tree over the bins finds it in `O(log m)` plus
//! the bins that fail a check the maxima cannot see). That is `O(n log n)` to sort plus
//! `O(log m + skipped)` per request. A request that fits nowhere is explained by one pass over
//! all bins.
//!
//! Safety by construction: the resources given to tasks (and to RESERVE and CREATE) are cut from
//! the offers' own `Resource` entries, so they carry the offer's `allocation_info` and
//! reservations (the MULTI_ROLE trap, where a task asks for plain `cpus:1` and the master
//! refuses it, cannot happen), and no placement takes more than its offers hold.
//!
//! Choices where Mesos and Marathon leave room:
//! - Ordinary requests use unreserved resources and their role's unlabelled reservations (the
//!   reserved first); root disk only; never revocable or shared resources. A request may opt
//!   in to revocable resources ([`Request::revocable`]: used first), take its disk from a PATH
//!   or a whole MOUNT disk ([`DiskSource`]), and mount shared persistent volumes offered on
//!   the agent ([`Request::shared_volume`]; any number of tasks share one). Such requests are
//!   searched by a scan of the bins rather than the search structures.
//! - A request with a [`ReservationSpec`] reserves its resources dynamically for its role, with
//!   a label (`mesos-sdk/reservation` = id) and, if asked, a persistent volume whose persistence
//!   id is the reservation id; once the [`Ledger`] knows the reservation's agent, the request
//!   lands only there (it waits while that agent's offer is away). [`Placer::reclaim`] destroys
//!   and unreserves what is no longer wanted.
//! - GPU agents are kept for tasks that ask for GPUs ([`PlacerConfig::gpu_agents_only_for_gpu_tasks`]),
//!   as Marathon's `restricted` GPU scheduling; tasks get GPUs only when they ask.
//! - Soft preferences and stickiness use delay scheduling: while a request has waited less than
//!   [`PlacerConfig::locality_wait`] since it was first seen, it takes only a preferred agent;
//!   then any. While some request waits, unused offers stay in the pool (not declined).
//! - Offers without `allocation_info` (a framework without MULTI_ROLE has one role) serve
//!   requests of any role.

mod amounts;
mod answer;
mod bins;
mod build;
mod check;
pub mod constraints;
pub mod explain;
pub mod fitness;
mod ledger;
mod ports;
mod request;
mod search;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amounts::Amounts;
pub use answer::{Placed, Placement};
use bins::{Bin, CPUS, Carver, DISK, Dims, From, GPU, MEM};
use check::{Compiled, Ctx};
use constraints::Counts;
pub use constraints::{Constraint, ConstraintError, Preference};
pub use explain::{FailureKind, Unplaced};
pub use fitness::{BestFit, BinPacking, Fitness, SearchOrder, Spread};
pub use ledger::Ledger;
pub use request::{Demand, DiskSource, PortSpec, Request, ReservationSpec, TaskSpec, VolumeSpec};
use search::MaxTree;

use super::algebra::{Resources, to_fixed};
use super::kinds::{dynamic_reservation, persistent_volume, push_reservation, strip_volume};
use super::pool::{AgentView, OfferPool};
use super::validate::ResourceError;
use crate::scheduler::calls::{self, operations};
use crate::v1::offer::Operation;
use crate::v1::scheduler::Call;
use crate::v1::{ExecutorInfo, OfferId, Resource, TaskGroupInfo, TaskId, TaskInfo};

/// Where the search put a request: (request index, bin index, ports per task (empty when it
/// asks for none), the PATH or MOUNT disk piece it takes).
type Choice = (usize, usize, Vec<Vec<u64>>, Option<usize>);

pub(crate) use super::{FastMap, FastSet};

/// Label key of the reservations the placer makes (value: the reservation id).
pub const RESERVATION_LABEL: &str = "mesos-sdk/reservation";

/// Settings of a [`Placer`].
#[derive(Debug, Clone)]
pub struct PlacerConfig {
    /// Keep agents with GPUs for tasks that ask for GPUs (default true).
    pub gpu_agents_only_for_gpu_tasks: bool,
    /// How long a request with a preference (or stickiness) waits for a preferred agent before
    /// it takes any (default 5 s).
    pub locality_wait: Duration,
    /// Refuse filter of the ACCEPT calls (for the offers' unused resources; default 120 s).
    pub refuse: Duration,
    /// Principal written into reservations and volumes (Mesos wants the framework's).
    pub principal: Option<String>,
    /// Place requests largest dominant share first (first fit decreasing) instead of in the
    /// order given (default false: on mixed cpu-heavy and mem-heavy workloads sorting by size
    /// groups alike requests on the same agents and strands the other resource; see the
    /// README's figures). Requests bound to a reservation always go first.
    pub largest_first: bool,
}

impl Default for PlacerConfig {
    fn default() -> Self {
        Self {
            gpu_agents_only_for_gpu_tasks: true,
            locality_wait: Duration::from_secs(5),
            refuse: Duration::from_secs(120),
            principal: None,
            largest_first: false,
        }
    }
}

/// The placer; see the module doc.
#[derive(Debug)]
pub struct Placer {
    config: PlacerConfig,
    fitness: Box<dyn Fitness>,
    ledger: Ledger,
}

impl Default for Placer {
    fn default() -> Self {
        Self::new(PlacerConfig::default())
    }
}

impl Placer {
    /// A placer with bin-packing fitness.
    pub fn new(config: PlacerConfig) -> Self {
        Self {
            config,
            fitness: Box::new(BinPacking),
            ledger: Ledger::new(),
        }
    }

    /// Replaces the fitness policy.
    pub fn with_fitness(mut self, fitness: impl Fitness + 'static) -> Self {
        self.fitness = Box::new(fitness);
        self
    }

    /// The ledger (what runs where).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The ledger, to record ended tasks.
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        &mut self.ledger
    }

    /// The settings.
    pub fn config(&self) -> &PlacerConfig {
        &self.config
    }

    /// Places `requests` onto the offers of `pool` at time `now`. The offers used in the
    /// ACCEPT calls and those to decline leave the pool.
    ///
    /// The requests are taken by value: a placed request's `TaskInfo`s move into its ACCEPT
    /// (no copy), and the requests left unplaced come back in [`Placement::pending`], in the
    /// order given, to be placed again in a later round.
    pub fn place(
        &mut self,
        pool: &mut OfferPool,
        requests: impl IntoIterator<Item = Request>,
        now: Instant,
    ) -> Placement {
        let owned: Vec<Request> = requests.into_iter().collect();
        let requests = owned.as_slice();
        let dims = Dims::new(
            requests
                .iter()
                .flat_map(|r| {
                    r.tasks
                        .iter()
                        .map(|t| &t.demand)
                        .chain(r.executor.iter().map(|(_, d)| d))
                })
                .flat_map(|d| d.scalars.iter().map(|(n, _)| n.as_str())),
        );
        // Constraint and preference fields.
        let mut fields: Vec<String> = Vec::new();
        let field_of = |f: &str, fields: &mut Vec<String>| match fields.iter().position(|x| x == f)
        {
            Some(i) => i,
            None => {
                fields.push(f.to_string());
                fields.len() - 1
            }
        };
        for r in requests {
            for c in &r.constraints {
                field_of(c.field(), &mut fields);
            }
            for p in &r.preferences {
                field_of(&p.field, &mut fields);
            }
        }
        let mut bins = bins::build(pool, &dims, RESERVATION_LABEL, &fields);
        let mut unplaced: Vec<Unplaced> = Vec::new();
        let mut placed: Vec<Choice> = Vec::with_capacity(requests.len());

        // Largest agent per dimension, for dominant shares.
        let mut max_cap = vec![1i64; dims.len()];
        for b in &bins {
            for (d, c) in b.capacity.iter().enumerate() {
                max_cap[d] = max_cap[d].max(*c);
            }
        }
        let compiled: Vec<Compiled> = requests
            .iter()
            .map(|r| self.compile(r, &dims, &max_cap, &fields))
            .collect();

        // Apps as numbers; task counts per (app, field): value -> count; distinct values per
        // field.
        let mut app_ids: FastMap<&str, u32> = FastMap::default();
        let req_app: Vec<u32> = requests
            .iter()
            .map(|r| {
                let next = app_ids.len() as u32;
                *app_ids.entry(r.app_key()).or_insert(next)
            })
            .collect();
        let mut counts: FastMap<(u32, usize), Counts> = FastMap::default();
        let mut app_fields: FastMap<u32, BTreeSet<usize>> = FastMap::default();
        for ((r, c), app) in requests.iter().zip(&compiled).zip(&req_app) {
            for (f, ci) in &c.constraints {
                if r.constraints[*ci].counts_tasks() {
                    app_fields.entry(*app).or_default().insert(*f);
                    counts.entry((*app, *f)).or_default();
                }
            }
        }
        if !app_fields.is_empty() {
            for (app, view) in self.ledger.running() {
                let Some(id) = app_ids.get(app) else { continue };
                for f in app_fields.get(id).into_iter().flatten() {
                    if let Some(v) = view.field(&fields[*f]) {
                        if let Some(m) = counts.get_mut(&(*id, *f)) {
                            *m.entry(v).or_insert(0) += 1;
                        }
                    }
                }
            }
        }
        let mut seen: Vec<usize> = Vec::with_capacity(fields.len());
        for f in 0..fields.len() {
            let mut values: FastSet<&str> =
                bins.iter().filter_map(|b| b.values[f].as_deref()).collect();
            for ((_, cf), m) in &counts {
                if *cf == f {
                    values.extend(m.keys().map(String::as_str));
                }
            }
            seen.push(values.len());
        }

        // Search structures: for first fit, the bins in a fixed order (smallest first, then
        // agent id) in a max tree; for best fit and spread, ordered sets by free cpus and mem;
        // bins by reservation id for requests bound to one.
        let order = self.fitness.order();
        let mut slots: Vec<u32> = (0..bins.len() as u32).collect();
        slots.sort_by(|a, b| {
            let (x, y) = (&bins[*a as usize], &bins[*b as usize]);
            x.capacity[CPUS]
                .cmp(&y.capacity[CPUS])
                .then(x.capacity[MEM].cmp(&y.capacity[MEM]))
                .then(x.view.agent_id.value.cmp(&y.view.agent_id.value))
        });
        let mut slot_of = vec![0usize; bins.len()];
        for (pos, bi) in slots.iter().enumerate() {
            slot_of[*bi as usize] = pos;
        }
        let mut tree = MaxTree::new(bins.len(), dims.len());
        // Per resource, the least any request of the batch needs.
        let mut smallest = vec![i64::MAX; dims.len()];
        for c in &compiled {
            for (m, v) in smallest.iter_mut().zip(&c.total) {
                *m = (*m).min(*v);
            }
        }
        if compiled.iter().any(|c| c.bound.is_some()) || compiled.is_empty() {
            smallest.iter_mut().for_each(|m| *m = 0);
        }
        let dead = Amounts::filled(dims.len(), -1);
        let mut index: [BTreeSet<(i64, u32)>; 2] = [BTreeSet::new(), BTreeSet::new()];
        for (i, b) in bins.iter().enumerate() {
            if order == SearchOrder::FirstFit {
                tree.set(slot_of[i], &b.free, b.ports.count());
            } else {
                index[0].insert((b.free[CPUS], i as u32));
                index[1].insert((b.free[MEM], i as u32));
            }
        }
        let mut by_reservation: FastMap<String, Vec<usize>> = FastMap::default();
        for (i, b) in bins.iter().enumerate() {
            for id in b.reservations.keys() {
                by_reservation.entry(id.clone()).or_default().push(i);
            }
        }

        let mut sorted: Vec<usize> = (0..requests.len()).collect();
        let largest_first = self.config.largest_first;
        sorted.sort_by(|a, b| {
            let (ca, cb) = (&compiled[*a], &compiled[*b]);
            let by_size = if largest_first {
                cb.share.total_cmp(&ca.share)
            } else {
                std::cmp::Ordering::Equal
            };
            cb.bound
                .is_some()
                .cmp(&ca.bound.is_some())
                .then(by_size)
                .then(a.cmp(b))
        });
        let mut any_waiting = false;
        for ri in sorted {
            let r = &requests[ri];
            let c = &compiled[ri];
            if let Some(why) = &c.invalid {
                let mut u = Unplaced::new(&r.id);
                u.count(FailureKind::Invalid(why.clone()));
                unplaced.push(u);
                continue;
            }
            let app = req_app[ri];
            let ctx = Ctx {
                req: r,
                c,
                counts: &counts,
                seen: &seen,
                app,
                gpu_rule: self.config.gpu_agents_only_for_gpu_tasks,
                dims: &dims,
            };
            let wants_preference = !c.preferences.is_empty() || c.sticky_agent.is_some();
            let mut best: Option<usize> = None;
            let mut fallback: Option<usize> = None;
            let mut visit = |i: usize, bins: &[Bin]| -> bool {
                let b = &bins[i];
                if !ctx.check(b, None) {
                    return false;
                }
                if !wants_preference || ctx.preferred(b) {
                    best = Some(i);
                    return true;
                }
                if fallback.is_none() {
                    fallback = Some(i);
                }
                false
            };
            if let Some(id) = &c.bound {
                for i in by_reservation.get(id).into_iter().flatten() {
                    if visit(*i, &bins) {
                        break;
                    }
                }
            } else if c.special {
                // Revocable resources, PATH/MOUNT disks and shared volumes are invisible to
                // the search structures: scan the bins in the first-fit order.
                for bi in &slots {
                    if visit(*bi as usize, &bins) {
                        break;
                    }
                }
            } else {
                match order {
                    SearchOrder::FirstFit => {
                        let want = if r.reservation.is_some() {
                            &c.reserve_total
                        } else {
                            &c.total
                        };
                        tree.first(want, c.port_count, &mut |pos| {
                            visit(slots[pos] as usize, &bins)
                        });
                    }
                    SearchOrder::TightestFirst | SearchOrder::LoosestFirst => {
                        let d = if c.dominant == MEM { 1 } else { 0 };
                        let key = if c.dominant == MEM { MEM } else { CPUS };
                        let lo = (c.total[key].max(0), 0u32);
                        if order == SearchOrder::TightestFirst {
                            for (_, i) in index[d].range(lo..) {
                                if visit(*i as usize, &bins) {
                                    break;
                                }
                            }
                        } else {
                            for (_, i) in index[d].range(lo..).rev() {
                                if visit(*i as usize, &bins) {
                                    break;
                                }
                            }
                        }
                    }
                    SearchOrder::Scored => {
                        let mut best_score = f64::NEG_INFINITY;
                        let mut fallback_score = f64::NEG_INFINITY;
                        for (i, b) in bins.iter().enumerate() {
                            if !ctx.check(b, None) {
                                continue;
                            }
                            let s = self.fitness.score(&c.total, &b.free, &b.capacity);
                            if !wants_preference || ctx.preferred(b) {
                                if s > best_score {
                                    best_score = s;
                                    best = Some(i);
                                }
                            } else if s > fallback_score {
                                fallback_score = s;
                                fallback = Some(i);
                            }
                        }
                    }
                }
            }
            if best.is_none() {
                if let Some(f) = fallback {
                    let since = self.ledger.first_seen(&r.id, now);
                    if now.saturating_duration_since(since) >= self.config.locality_wait {
                        best = Some(f);
                    } else {
                        let mut u = Unplaced::new(&r.id);
                        u.waiting = true;
                        u.count(FailureKind::Waiting(ctx.preference_text()));
                        any_waiting = true;
                        tracing::debug!(request = %r.id, "waiting for a preferred agent");
                        unplaced.push(u);
                        continue;
                    }
                }
            }
            let Some(bi) = best else {
                let mut u = Unplaced::new(&r.id);
                if bins.is_empty() {
                    u.count(FailureKind::NoOffers);
                }
                for b in &bins {
                    ctx.check(b, Some(&mut |k| u.count(k)));
                }
                tracing::debug!(reason = %u, "request not placed");
                unplaced.push(u);
                continue;
            };
            // Commit the placement into the bin.
            let b = &mut bins[bi];
            if order != SearchOrder::FirstFit {
                index[0].remove(&(b.free[CPUS], bi as u32));
                index[1].remove(&(b.free[MEM], bi as u32));
            }
            // Ports per task (none allocated for a request without ports).
            let task_ports: Vec<Vec<u64>> = if c.port_count == 0 {
                Vec::new()
            } else {
                r.tasks
                    .iter()
                    .map(|t| b.ports.assign(&t.demand.ports))
                    .collect()
            };
            match (&c.bound, &r.reservation) {
                (Some(id), _) => {
                    if let Some(left) = b.reservations.get_mut(id) {
                        for (d, v) in c.total.iter().enumerate() {
                            left[d] -= v;
                        }
                    }
                }
                (None, Some(_)) => b.consume(&c.reserve_total, true),
                (None, None) if c.revocable => b.consume_revocable(&c.total),
                (None, None) => b.consume(&c.total, false),
            }
            let disk_piece = c.disk.and_then(|(mount, amount)| {
                let i = b.disk_for(mount, amount)?;
                b.use_disk(i, amount);
                Some(b.disks[i].0)
            });
            if order == SearchOrder::FirstFit {
                // A bin that cannot hold the smallest request of the batch in some resource
                // leaves the search for good.
                if b.free.iter().zip(&smallest).any(|(f, m)| f < m) {
                    tree.set(slot_of[bi], &dead, 0);
                } else {
                    tree.set(slot_of[bi], &b.free, b.ports.count());
                }
            } else {
                index[0].insert((b.free[CPUS], bi as u32));
                index[1].insert((b.free[MEM], bi as u32));
            }
            for f in app_fields.get(&app).into_iter().flatten() {
                if let (Some(v), Some(m)) = (b.values[*f].as_ref(), counts.get_mut(&(app, *f))) {
                    // The value's name is copied only the first time it is counted.
                    match m.get_mut(v.as_str()) {
                        Some(n) => *n += 1,
                        None => {
                            m.insert(v.clone(), 1);
                        }
                    }
                }
            }
            placed.push((ri, bi, task_ports, disk_piece));
        }

        let apps = app_ids.len();
        let (out, gone) = self.finish(
            owned,
            (&req_app, apps),
            &compiled,
            &dims,
            bins,
            placed,
            unplaced,
            any_waiting,
        );
        if let Err(e) = pool.take(&gone) {
            tracing::warn!(error = %e, "offer pool changed during placement");
        }
        out
    }

    fn compile(&self, r: &Request, dims: &Dims, max_cap: &[i64], fields: &[String]) -> Compiled {
        // Every field is in `fields` (gathered from the batch's requests).
        let field = |f: &str| fields.iter().position(|x| x == f).unwrap_or(0);
        let n = dims.len();
        let add = |v: &mut [i64], d: &Demand| {
            for (name, value) in &d.scalars {
                if let Some(i) = dims.get(name) {
                    v[i] += to_fixed(*value);
                }
            }
        };
        let mut disk = None;
        let mut per_task = Amounts::zeros(r.tasks.len() * n);
        for (t, v) in r.tasks.iter().zip(per_task.chunks_mut(n.max(1))) {
            add(v, &t.demand);
            if t.demand.disk_source != DiskSource::Root {
                // Counted apart: it comes from one PATH or MOUNT disk.
                disk = Some((t.demand.disk_source == DiskSource::Mount, v[DISK]));
                v[DISK] = 0;
            }
        }
        let mut executor = Amounts::zeros(n);
        if let Some((_, d)) = &r.executor {
            add(&mut executor, d);
        }
        let mut total = executor.clone();
        for t in per_task.chunks(n.max(1)) {
            for (d, v) in t.iter().enumerate() {
                total[d] += v;
            }
        }
        let mut reserve_total = total.clone();
        if let Some(v) = r.reservation.as_ref().and_then(|s| s.volume.as_ref()) {
            reserve_total[DISK] += to_fixed(v.size_mb);
        }
        let mut invalid = None;
        let all_demands = r
            .tasks
            .iter()
            .map(|t| &t.demand)
            .chain(r.executor.iter().map(|(_, d)| d));
        for d in all_demands {
            for (name, value) in &d.scalars {
                let bad = !value.is_finite()
                    || *value < 0.0
                    || (name == super::kinds::GPUS && value.fract() != 0.0);
                if bad {
                    if let Err(e) = super::validate::validate(&super::algebra::scalar(name, *value))
                    {
                        invalid = Some(e.to_string());
                    }
                }
            }
        }
        if r.tasks.is_empty() {
            invalid = Some("no tasks".into());
        }
        if r.reservation.is_some() && r.is_group() {
            invalid = Some("a reservation needs a single-task request".into());
        }
        if disk.is_some() && (r.is_group() || r.reservation.is_some()) {
            invalid = Some(
                "a PATH or MOUNT disk needs a single-task request without a reservation".into(),
            );
        }
        let (mut share, mut dominant) = (0.0f64, CPUS);
        for d in [CPUS, MEM] {
            let s = reserve_total[d] as f64 / max_cap[d] as f64;
            if s > share {
                share = s;
                dominant = d;
            }
        }
        for (d, v) in reserve_total.iter().enumerate() {
            share = share.max(*v as f64 / max_cap[d] as f64);
        }
        let mut fixed_ports: Vec<u64> = r
            .tasks
            .iter()
            .flat_map(|t| t.demand.ports.iter().filter_map(|p| p.number))
            .collect();
        fixed_ports.sort_unstable();
        let bound = r
            .reservation
            .as_ref()
            .filter(|s| self.ledger.reservation_agent(&s.id).is_some())
            .map(|s| s.id.clone());
        Compiled {
            total,
            per_task,
            executor,
            port_count: r.tasks.iter().map(|t| t.demand.ports.len() as u64).sum(),
            fixed_ports,
            reserve_total,
            share,
            dominant,
            constraints: r
                .constraints
                .iter()
                .enumerate()
                .map(|(ci, c)| (field(c.field()), ci))
                .collect(),
            preferences: r
                .preferences
                .iter()
                .map(|p| (field(&p.field), p.value.clone()))
                .collect(),
            sticky_agent: r
                .sticky
                .then(|| self.ledger.last_agent(&r.id).map(str::to_string))
                .flatten(),
            bound,
            invalid,
            revocable: r.revocable,
            special: r.revocable || disk.is_some() || !r.shared_volumes.is_empty(),
            disk,
        }
    }
}

#[cfg(test)]
mod tests;
