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
//!   reserved first); root disk only; never revocable or shared resources.
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

mod bins;
pub mod constraints;
pub mod explain;
pub mod fitness;
mod ledger;
mod ports;
mod search;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bins::{Bin, CPUS, Carver, DISK, Dims, From, GPU, MEM};
pub use constraints::{Constraint, ConstraintError, Preference};
pub use explain::{FailureKind, Unplaced};
pub use fitness::{BestFit, BinPacking, Fitness, SearchOrder, Spread};
pub use ledger::Ledger;
use search::MaxTree;

use super::algebra::{Resources, to_fixed};
use super::kinds::{dynamic_reservation, persistent_volume, push_reservation, strip_volume};
use super::pool::{AgentView, OfferPool};
use super::validate::ResourceError;
use crate::scheduler::calls::{self, operations};
use crate::v1::offer::Operation;
use crate::v1::scheduler::Call;
use crate::v1::{ExecutorInfo, OfferId, Resource, TaskGroupInfo, TaskId, TaskInfo};

/// Label key of the reservations the placer makes (value: the reservation id).
pub const RESERVATION_LABEL: &str = "mesos-sdk/reservation";

/// One port a task needs: any free one, or a fixed number; optionally named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSpec {
    /// A name for the port (reported back in [`Placed::ports`]).
    pub name: Option<String>,
    /// A fixed port number; any free one when `None`.
    pub number: Option<u64>,
}

/// What one task (or an executor) needs: scalars by name (`cpus`, `mem`, `disk`, `gpus`,
/// custom ones) and ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    /// Scalar resources by name.
    pub scalars: Vec<(String, f64)>,
    /// Ports.
    pub ports: Vec<PortSpec>,
}

impl Demand {
    /// Scalars from `--resources`-style text (`cpus:0.5;mem:128;gpus:1`), checked: finite, not
    /// negative, whole GPUs. Ranges and sets are refused (ask for ports with the port methods).
    pub fn parse(text: &str) -> Result<Self, ResourceError> {
        let parsed = super::algebra::parse_resources(text).map_err(|e| ResourceError::BadType {
            name: e.to_string(),
        })?;
        let mut demand = Demand::default();
        for r in parsed {
            super::validate::validate(&r)?;
            let Some(s) = r.scalar.as_ref() else {
                return Err(ResourceError::BadType { name: r.name });
            };
            demand.scalars.push((r.name.clone(), s.value));
        }
        Ok(demand)
    }

    /// Adds `n` ports, any numbers.
    pub fn with_ports(mut self, n: usize) -> Self {
        self.ports
            .extend(std::iter::repeat_n(PortSpec::default(), n));
        self
    }

    /// Adds one named port, any number.
    pub fn with_named_port(mut self, name: &str) -> Self {
        self.ports.push(PortSpec {
            name: Some(name.to_string()),
            number: None,
        });
        self
    }

    /// Adds one fixed port number.
    pub fn with_port(mut self, number: u64) -> Self {
        self.ports.push(PortSpec {
            name: None,
            number: Some(number),
        });
        self
    }

    /// The amount of scalar `name`.
    pub fn scalar(&self, name: &str) -> f64 {
        self.scalars
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .sum()
    }
}

/// One task of a request: a `TaskInfo` template (id, name, command or container, labels, ...;
/// its `agent_id` and `resources` are filled in by the placer) and what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The template.
    pub task: TaskInfo,
    /// What it needs.
    pub demand: Demand,
}

/// A dynamic reservation (and persistent volume) a request wants for itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationSpec {
    /// Reservation id: the reservation's label value and the volume's persistence id. Keep it
    /// stable across restarts of the task (e.g. the task's name).
    pub id: String,
    /// A persistent volume to create on reserved root disk.
    pub volume: Option<VolumeSpec>,
}

/// A persistent volume.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSpec {
    /// Size in MB.
    pub size_mb: f64,
    /// Where it is mounted, relative to the sandbox.
    pub container_path: String,
}

/// A request: one task (LAUNCH) or a group of tasks on one agent (LAUNCH_GROUP).
#[derive(Debug, Clone)]
pub struct Request {
    /// Request id (unique among pending requests; the ledger keys on it).
    pub id: String,
    /// The app it belongs to: constraints count tasks of the same app. Empty: the id.
    pub app: String,
    /// The role whose offers it may use.
    pub role: String,
    /// The tasks; more than one, or an executor, makes a task group.
    pub tasks: Vec<TaskSpec>,
    /// The executor of a task group, with its own demand.
    pub executor: Option<(ExecutorInfo, Demand)>,
    /// Hard constraints.
    pub constraints: Vec<Constraint>,
    /// Soft preferences.
    pub preferences: Vec<Preference>,
    /// Prefer the agent where this request last ran.
    pub sticky: bool,
    /// A reservation (and volume) of its own; single-task requests only.
    pub reservation: Option<ReservationSpec>,
}

impl Request {
    /// A single-task request.
    pub fn task(id: &str, role: &str, task: TaskInfo, demand: Demand) -> Self {
        Self {
            id: id.to_string(),
            app: String::new(),
            role: role.to_string(),
            tasks: vec![TaskSpec { task, demand }],
            executor: None,
            constraints: Vec::new(),
            preferences: Vec::new(),
            sticky: false,
            reservation: None,
        }
    }

    /// Sets the app.
    pub fn app(mut self, app: &str) -> Self {
        self.app = app.to_string();
        self
    }

    /// Adds a hard constraint.
    pub fn constraint(mut self, constraint: Constraint) -> Self {
        self.constraints.push(constraint);
        self
    }

    /// Adds a soft preference.
    pub fn prefer(mut self, field: &str, value: &str) -> Self {
        self.preferences.push(Preference {
            field: field.to_string(),
            value: value.to_string(),
        });
        self
    }

    /// Prefers the last agent.
    pub fn sticky(mut self) -> Self {
        self.sticky = true;
        self
    }

    /// Asks for a reservation (and volume).
    pub fn reserve(mut self, reservation: ReservationSpec) -> Self {
        self.reservation = Some(reservation);
        self
    }

    fn app_key(&self) -> &str {
        if self.app.is_empty() {
            &self.id
        } else {
            &self.app
        }
    }

    fn is_group(&self) -> bool {
        self.tasks.len() > 1 || self.executor.is_some()
    }
}

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

/// A request that was placed.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The request.
    pub request_id: String,
    /// The agent.
    pub agent: Arc<AgentView>,
    /// The offers of the ACCEPT it is in.
    pub offer_ids: Vec<OfferId>,
    /// Index in [`Placement::accepts`] of the ACCEPT that launches it; the launched
    /// `TaskInfo`s (agent id and resources filled in) are there, see [`Placement::tasks`].
    pub accept: usize,
    /// Its tasks' ids.
    pub task_ids: Vec<TaskId>,
    /// Ports given, per task, in the order of its [`Demand::ports`] (name, number).
    pub ports: Vec<Vec<(Option<String>, u64)>>,
    /// The reservation it uses, and whether this round creates it.
    pub reservation: Option<(String, bool)>,
}

/// The answer of [`Placer::place`].
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// ACCEPT calls, one per agent and role.
    pub accepts: Vec<Call>,
    /// Offers to decline (see [`crate::resourcemgr::etiquette`]); empty while a request waits
    /// for a preferred agent (the unused offers then stay in the pool).
    pub decline: Vec<OfferId>,
    /// What was placed.
    pub placed: Vec<Placed>,
    /// What was not, with reasons.
    pub unplaced: Vec<Unplaced>,
}

impl Placement {
    /// The `TaskInfo`s of a placed request as its ACCEPT launches them.
    pub fn tasks(&self, placed: &Placed) -> Vec<&TaskInfo> {
        self.launched(placed)
            .flat_map(|(_, tasks)| tasks)
            .filter(|t| placed.task_ids.contains(&t.task_id))
            .collect()
    }

    /// The executor of a placed task group, resources filled in.
    pub fn executor(&self, placed: &Placed) -> Option<&ExecutorInfo> {
        self.launched(placed)
            .find(|(_, tasks)| tasks.iter().any(|t| placed.task_ids.contains(&t.task_id)))
            .and_then(|(e, _)| e)
    }

    fn launched(
        &self,
        placed: &Placed,
    ) -> impl Iterator<Item = (Option<&ExecutorInfo>, &[TaskInfo])> {
        self.accepts
            .get(placed.accept)
            .and_then(|c| c.accept.as_ref())
            .into_iter()
            .flat_map(|a| &a.operations)
            .filter_map(|op| {
                if let Some(l) = &op.launch {
                    Some((None, l.task_infos.as_slice()))
                } else {
                    op.launch_group
                        .as_ref()
                        .map(|g| (Some(&g.executor), g.task_group.tasks.as_slice()))
                }
            })
    }

    /// Agents that got at least one request.
    pub fn agents_used(&self) -> usize {
        self.placed
            .iter()
            .map(|p| &p.agent.agent_id.value)
            .collect::<HashSet<_>>()
            .len()
    }
}

/// Compiled request: fixed-point demand and the indexes it needs.
struct Compiled {
    total: Vec<i64>,
    per_task: Vec<Vec<i64>>,
    executor: Vec<i64>,
    ports: Vec<PortSpec>,
    reserve_total: Vec<i64>,
    share: f64,
    dominant: usize,
    constraints: Vec<(usize, usize)>,
    preferences: Vec<(usize, String)>,
    sticky_agent: Option<String>,
    bound: Option<String>,
    invalid: Option<String>,
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
    pub fn place(&mut self, pool: &mut OfferPool, requests: &[Request], now: Instant) -> Placement {
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
        let mut field_idx: Vec<(Vec<usize>, Vec<usize>)> = Vec::with_capacity(requests.len());
        for r in requests {
            let c = r
                .constraints
                .iter()
                .map(|c| field_of(c.field(), &mut fields))
                .collect();
            let p = r
                .preferences
                .iter()
                .map(|p| field_of(&p.field, &mut fields))
                .collect();
            field_idx.push((c, p));
        }
        let mut bins = bins::build(pool, &dims, RESERVATION_LABEL, &fields);
        let mut unplaced: Vec<Unplaced> = Vec::new();
        let mut placed: Vec<(usize, usize, Vec<Vec<u64>>)> = Vec::new();

        // Largest agent per dimension, for dominant shares.
        let mut max_cap = vec![1i64; dims.len()];
        for b in &bins {
            for (d, c) in b.capacity.iter().enumerate() {
                max_cap[d] = max_cap[d].max(*c);
            }
        }
        let compiled: Vec<Compiled> = requests
            .iter()
            .zip(&field_idx)
            .map(|(r, (c, p))| self.compile(r, &dims, &max_cap, c, p))
            .collect();

        // Apps as numbers; task counts per (app, field): value -> count; distinct values per
        // field.
        let mut app_ids: HashMap<&str, u32> = HashMap::new();
        let req_app: Vec<u32> = requests
            .iter()
            .map(|r| {
                let next = app_ids.len() as u32;
                *app_ids.entry(r.app_key()).or_insert(next)
            })
            .collect();
        let mut counts: HashMap<(u32, usize), HashMap<String, u32>> = HashMap::new();
        let mut app_fields: HashMap<u32, BTreeSet<usize>> = HashMap::new();
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
            let mut values: HashSet<&str> =
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
        let mut index: [BTreeSet<(i64, u32)>; 2] = [BTreeSet::new(), BTreeSet::new()];
        for (i, b) in bins.iter().enumerate() {
            if order == SearchOrder::FirstFit {
                tree.set(slot_of[i], &b.free, b.ports.count());
            } else {
                index[0].insert((b.free[CPUS], i as u32));
                index[1].insert((b.free[MEM], i as u32));
            }
        }
        let mut by_reservation: HashMap<String, Vec<usize>> = HashMap::new();
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
            } else {
                match order {
                    SearchOrder::FirstFit => {
                        let want = if r.reservation.is_some() {
                            &c.reserve_total
                        } else {
                            &c.total
                        };
                        tree.first(want, c.ports.len() as u64, &mut |pos| {
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
            let mut task_ports = Vec::new();
            for t in &r.tasks {
                task_ports.push(b.ports.assign(&t.demand.ports));
            }
            match (&c.bound, &r.reservation) {
                (Some(id), _) => {
                    if let Some(left) = b.reservations.get_mut(id) {
                        for (d, v) in c.total.iter().enumerate() {
                            left[d] -= v;
                        }
                    }
                }
                (None, Some(_)) => b.consume(&c.reserve_total, true),
                (None, None) => b.consume(&c.total, false),
            }
            if order == SearchOrder::FirstFit {
                tree.set(slot_of[bi], &b.free, b.ports.count());
            } else {
                index[0].insert((b.free[CPUS], bi as u32));
                index[1].insert((b.free[MEM], bi as u32));
            }
            for f in app_fields.get(&app).into_iter().flatten() {
                if let (Some(v), Some(m)) = (b.values[*f].as_ref(), counts.get_mut(&(app, *f))) {
                    *m.entry(v.clone()).or_insert(0) += 1;
                }
            }
            placed.push((ri, bi, task_ports));
        }

        self.finish(
            pool,
            requests,
            &compiled,
            &dims,
            bins,
            placed,
            unplaced,
            any_waiting,
        )
    }

    fn compile(
        &self,
        r: &Request,
        dims: &Dims,
        max_cap: &[i64],
        constraint_fields: &[usize],
        preference_fields: &[usize],
    ) -> Compiled {
        let vector = |d: &Demand| {
            let mut v = vec![0i64; dims.len()];
            for (name, value) in &d.scalars {
                if let Some(i) = dims.get(name) {
                    v[i] += to_fixed(*value);
                }
            }
            v
        };
        let per_task: Vec<Vec<i64>> = r.tasks.iter().map(|t| vector(&t.demand)).collect();
        let executor = r
            .executor
            .as_ref()
            .map_or_else(|| vec![0; dims.len()], |(_, d)| vector(d));
        let mut total = executor.clone();
        for t in &per_task {
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
        let bound = r
            .reservation
            .as_ref()
            .filter(|s| self.ledger.reservation_agent(&s.id).is_some())
            .map(|s| s.id.clone());
        Compiled {
            total,
            per_task,
            executor,
            ports: r
                .tasks
                .iter()
                .flat_map(|t| t.demand.ports.clone())
                .collect(),
            reserve_total,
            share,
            dominant,
            constraints: constraint_fields.iter().copied().zip(0..).collect(),
            preferences: preference_fields
                .iter()
                .copied()
                .zip(r.preferences.iter().map(|p| p.value.clone()))
                .collect(),
            sticky_agent: r
                .sticky
                .then(|| self.ledger.last_agent(&r.id).map(str::to_string))
                .flatten(),
            bound,
            invalid,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        pool: &mut OfferPool,
        requests: &[Request],
        compiled: &[Compiled],
        dims: &Dims,
        mut bins: Vec<Bin>,
        placed: Vec<(usize, usize, Vec<Vec<u64>>)>,
        unplaced: Vec<Unplaced>,
        any_waiting: bool,
    ) -> Placement {
        let mut per_bin: Vec<Vec<(usize, Vec<Vec<u64>>)>> = vec![Vec::new(); bins.len()];
        for (ri, bi, ports) in placed {
            per_bin[bi].push((ri, ports));
        }
        let mut out = Placement {
            unplaced,
            ..Placement::default()
        };
        let principal = self.config.principal.clone();
        let mut gone: Vec<OfferId> = Vec::new();
        for (bi, items) in per_bin.into_iter().enumerate() {
            let bin = &mut bins[bi];
            if items.is_empty() {
                if !any_waiting {
                    out.decline.extend(bin.offer_ids.iter().cloned());
                }
                continue;
            }
            gone.extend(bin.offer_ids.iter().cloned());
            let mut reserves: Vec<Operation> = Vec::new();
            let mut creates: Vec<Operation> = Vec::new();
            let mut launches: Vec<TaskInfo> = Vec::with_capacity(items.len());
            let mut groups: Vec<Operation> = Vec::new();
            let volumes = bin.volumes.clone();
            let mut carver = Carver {
                pieces: &mut bin.pieces,
                dims,
            };
            for (ri, ports) in items {
                let r = &requests[ri];
                let c = &compiled[ri];
                let mut tasks = Vec::new();
                let mut reservation = None;
                for (ti, t) in r.tasks.iter().enumerate() {
                    let task_ports = ports.get(ti).cloned().unwrap_or_default();
                    let mut resources = match (&c.bound, &r.reservation) {
                        (Some(id), _) => {
                            reservation = Some((id.clone(), false));
                            let mut rs = carver.take(&c.per_task[ti], &[], From::Reservation(id));
                            rs.extend(carver.take(&[], &task_ports, From::Ordinary));
                            if let Some(v) = volumes.get(id) {
                                rs.push(v.clone());
                            }
                            rs
                        }
                        (None, Some(spec)) => {
                            reservation = Some((spec.id.clone(), true));
                            let taken = carver.take(&c.per_task[ti], &[], From::Unreserved);
                            let info = dynamic_reservation(
                                &r.role,
                                principal.as_deref(),
                                &[(RESERVATION_LABEL, spec.id.as_str())],
                            );
                            let reserved: Vec<Resource> = taken
                                .iter()
                                .filter_map(|x| push_reservation(x, info.clone()).ok())
                                .collect();
                            let mut rs = reserved.clone();
                            let mut to_reserve = reserved;
                            if let Some(v) = &spec.volume {
                                let mut disk = vec![0; dims.len()];
                                disk[DISK] = to_fixed(v.size_mb);
                                let raw = carver.take(&disk, &[], From::Unreserved);
                                for piece in raw {
                                    if let Ok(reserved_disk) =
                                        push_reservation(&piece, info.clone())
                                    {
                                        let volume = persistent_volume(
                                            &reserved_disk,
                                            &spec.id,
                                            principal.as_deref(),
                                            &v.container_path,
                                        );
                                        to_reserve.push(reserved_disk);
                                        creates.push(operations::create(vec![volume.clone()]));
                                        rs.push(volume);
                                    }
                                }
                            }
                            reserves.push(operations::reserve(to_reserve));
                            rs.extend(carver.take(&[], &task_ports, From::Ordinary));
                            rs
                        }
                        (None, None) => carver.take(&c.per_task[ti], &task_ports, From::Ordinary),
                    };
                    // Pieces of one kind from two offers of the agent add up into one entry.
                    if has_duplicate_kinds(&resources) {
                        resources = Resources::from_slice(&resources).into_vec();
                    }
                    let mut task = t.task.clone();
                    task.agent_id = bin.view.agent_id.clone();
                    task.resources = resources;
                    tasks.push(task);
                }
                let executor = r.executor.as_ref().map(|(e, _)| {
                    let mut e = e.clone();
                    e.resources =
                        Resources::from_slice(&carver.take(&c.executor, &[], From::Ordinary))
                            .into_vec();
                    e
                });
                let task_ids = tasks.iter().map(|t| t.task_id.clone()).collect();
                if r.is_group() {
                    groups.push(operations::launch_group(
                        executor.unwrap_or_default(),
                        TaskGroupInfo { tasks },
                    ));
                } else {
                    launches.extend(tasks);
                }
                if let Some((id, true)) = &reservation {
                    self.ledger.reserved(id, &bin.view.agent_id.value);
                }
                self.ledger.record_shared(&r.id, r.app_key(), &bin.view);
                let named = r
                    .tasks
                    .iter()
                    .zip(&ports)
                    .map(|(t, ps)| {
                        t.demand
                            .ports
                            .iter()
                            .map(|s| s.name.clone())
                            .zip(ps.iter().copied())
                            .collect()
                    })
                    .collect();
                out.placed.push(Placed {
                    request_id: r.id.clone(),
                    agent: Arc::clone(&bin.view),
                    offer_ids: bin.offer_ids.clone(),
                    accept: out.accepts.len(),
                    task_ids,
                    ports: named,
                    reservation,
                });
            }
            let mut ops = reserves;
            ops.extend(creates);
            if !launches.is_empty() {
                ops.push(operations::launch(launches));
            }
            ops.extend(groups);
            out.accepts.push(calls::accept(
                bin.offer_ids.clone(),
                ops,
                Some(self.config.refuse),
            ));
        }
        gone.extend(out.decline.iter().cloned());
        gone.sort_by(|a, b| a.value.cmp(&b.value));
        gone.dedup();
        if let Err(e) = pool.take(&gone) {
            tracing::warn!(error = %e, "offer pool changed during placement");
        }
        out
    }

    /// Gives back what is no longer wanted: for each offer carrying a reservation (or volume)
    /// of the placer whose id `obsolete` says is obsolete, one ACCEPT per agent and role with
    /// DESTROY of the volumes then UNRESERVE of everything reserved under that id. Those offers
    /// leave the pool; the ledger forgets the reservations.
    pub fn reclaim(&mut self, pool: &mut OfferPool, obsolete: impl Fn(&str) -> bool) -> Vec<Call> {
        let dims = Dims::new(std::iter::empty());
        let bins = bins::build(pool, &dims, RESERVATION_LABEL, &[]);
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for b in bins {
            let mut destroy = Vec::new();
            let mut unreserve = Vec::new();
            for p in &b.pieces {
                match &p.class {
                    bins::Class::Volume(id) if obsolete(id) => {
                        destroy.push(p.resource.clone());
                        unreserve.push(strip_volume(&p.resource));
                        self.ledger.forget_reservation(id);
                    }
                    bins::Class::Labelled(id) if obsolete(id) => {
                        unreserve.push(p.resource.clone());
                        self.ledger.forget_reservation(id);
                    }
                    _ => {}
                }
            }
            if unreserve.is_empty() {
                continue;
            }
            let mut ops = Vec::new();
            if !destroy.is_empty() {
                ops.push(operations::destroy(destroy));
            }
            ops.push(operations::unreserve(unreserve));
            out.push(calls::accept(
                b.offer_ids.clone(),
                ops,
                Some(self.config.refuse),
            ));
            gone.extend(b.offer_ids);
        }
        if let Err(e) = pool.take(&gone) {
            tracing::warn!(error = %e, "offer pool changed during reclaim");
        }
        out
    }
}

/// Whether two entries share a name (and so may need adding up).
fn has_duplicate_kinds(resources: &[Resource]) -> bool {
    resources
        .iter()
        .enumerate()
        .any(|(i, r)| resources[..i].iter().any(|x| x.name == r.name))
}

/// The checks of one request against one bin.
struct Ctx<'a> {
    req: &'a Request,
    c: &'a Compiled,
    counts: &'a HashMap<(u32, usize), HashMap<String, u32>>,
    seen: &'a [usize],
    app: u32,
    gpu_rule: bool,
    dims: &'a Dims,
}

impl Ctx<'_> {
    /// Whether `b` can take the request. Searching (`fail` is `None`) stops at the first
    /// failed check; explaining reports every failure to `fail`.
    fn check(&self, b: &Bin, mut fail: Option<&mut dyn FnMut(FailureKind)>) -> bool {
        let searching = fail.is_none();
        let mut report = |k: FailureKind| {
            if let Some(f) = fail.as_mut() {
                f(k);
                true
            } else {
                false
            }
        };
        let c = self.c;
        if searching && c.bound.is_none() {
            // Searching: the cheapest and most selective check first.
            let (have, want) = if self.req.reservation.is_some() {
                (&b.unreserved, &c.reserve_total)
            } else {
                (&b.free, &c.total)
            };
            if want.iter().zip(have).any(|(w, h)| w > h) {
                return false;
            }
        }
        if let Some(role) = &b.role {
            if *role != self.req.role {
                report(FailureKind::Role);
                return false;
            }
        }
        let mut ok = true;
        if let Some(id) = &c.bound {
            if !b.reservations.contains_key(id) {
                report(FailureKind::Reservation);
                return false;
            }
        }
        if self.gpu_rule && b.gpu && c.total[GPU] == 0 {
            if !report(FailureKind::GpuAgent) {
                return false;
            }
            ok = false;
        }
        for (f, ci) in &c.constraints {
            let constraint = &self.req.constraints[*ci];
            let counts = self.counts.get(&(self.app, *f));
            if !constraint.allows(b.values[*f].as_deref(), counts, self.seen[*f]) {
                if !report(FailureKind::Constraint(constraint.to_string())) {
                    return false;
                }
                ok = false;
            }
        }
        let have: &[i64] = match &c.bound {
            Some(id) => b.reservations.get(id).map_or(&b.free, Vec::as_slice),
            None if self.req.reservation.is_some() => &b.unreserved,
            None => &b.free,
        };
        let want = if c.bound.is_none() && self.req.reservation.is_some() {
            &c.reserve_total
        } else {
            &c.total
        };
        for (d, w) in want.iter().enumerate() {
            if *w > have[d] {
                if !report(FailureKind::Short(self.dims.names[d].clone())) {
                    return false;
                }
                ok = false;
            }
        }
        if !c.ports.is_empty() && !b.ports.fits(&c.ports) {
            report(FailureKind::Ports);
            ok = false;
        }
        ok
    }

    fn preferred(&self, b: &Bin) -> bool {
        if let Some(a) = &self.c.sticky_agent {
            if *a == b.view.agent_id.value {
                return true;
            }
        }
        self.c
            .preferences
            .iter()
            .any(|(f, v)| b.values[*f].as_deref() == Some(v.as_str()))
    }

    fn preference_text(&self) -> String {
        let mut parts: Vec<String> = self
            .req
            .preferences
            .iter()
            .map(|p| format!("{}:{}", p.field, p.value))
            .collect();
        if let Some(a) = &self.c.sticky_agent {
            parts.push(format!("last agent {a}"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests;
