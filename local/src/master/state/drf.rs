//! The allocator's policy, after Mesos' hierarchical DRF allocator: role weights
//! (UPDATE_WEIGHTS), quota guarantees and limits (UPDATE_QUOTA), dominant resource shares of
//! roles and frameworks, the order in which (framework, role) pairs are offered an agent, the
//! caps quota limits and other roles' unsatisfied guarantees (headroom) put on an offer, and the
//! framework's own rules: `offer_filters` (minimum allocatable resources) and `offer_constraints`
//! (agent attributes).
//!
//! Shares count the scalar resources `cpus`, `mem`, `disk` and `gpus` of tasks, executors and
//! outstanding offers against the total of the registered agents; roles are flat (no
//! hierarchy). Roles with an unsatisfied guarantee are offered first; among the rest, lower
//! weighted shares (share / weight) go first, then lower framework shares, ties rotating from
//! one allocation run to the next.

use mesos_sdk::v1::quota::QuotaConfig;
use mesos_sdk::v1::scheduler::attribute_constraint::{predicate, selector};
use mesos_sdk::v1::scheduler::{AttributeConstraint, OfferConstraints};
use mesos_sdk::v1::{Attribute, WeightInfo};

use super::*;

/// The scalar resources shares are computed on.
const SHARED: [&str; 4] = ["cpus", "mem", "disk", "gpus"];

/// Scalar quantities by resource name.
pub(super) type Scalars = HashMap<String, f64>;

fn add_scalars(to: &mut Scalars, resources: &[Resource]) {
    for r in resources {
        if let Some(s) = &r.scalar {
            if SHARED.contains(&r.name.as_str()) {
                *to.entry(r.name.clone()).or_default() += s.value;
            }
        }
    }
}

/// Allocations and shares during one allocation run.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    totals: Scalars,
    by_framework: HashMap<String, Scalars>,
    by_role: HashMap<String, Scalars>,
    /// Unallocated resources of reachable agents, cluster-wide.
    unallocated: Scalars,
    weights: HashMap<String, f64>,
    guarantees: HashMap<String, Scalars>,
    limits: HashMap<String, Scalars>,
}

impl Ledger {
    /// The role a framework's task counts for.
    fn task_role(framework: &Framework, task_id: &str) -> String {
        framework
            .task_roles
            .get(task_id)
            .cloned()
            .or_else(|| framework.roles().into_iter().next())
            .unwrap_or_else(|| "*".to_string())
    }

    pub(super) fn new(state: &State) -> Self {
        let mut ledger = Ledger {
            weights: state.weights.clone(),
            ..Default::default()
        };
        for agent in state.agents.values() {
            if agent.disconnected_since.is_some() {
                continue;
            }
            add_scalars(&mut ledger.totals, agent.total.as_slice());
            add_scalars(&mut ledger.unallocated, agent.available().as_slice());
        }
        for framework in state.frameworks.values() {
            let mut mine = Scalars::new();
            for task in framework.tasks.values().filter(|t| !is_terminal(t.state)) {
                add_scalars(&mut mine, &task.resources);
                let role = Self::task_role(framework, &task.task_id.value);
                add_scalars(ledger.by_role.entry(role).or_default(), &task.resources);
            }
            let first_role = framework.roles().into_iter().next().unwrap_or_default();
            for executor in framework.executors.values() {
                add_scalars(&mut mine, &executor.resources);
                add_scalars(
                    ledger.by_role.entry(first_role.clone()).or_default(),
                    &executor.resources,
                );
            }
            for offer_id in &framework.offers {
                if let Some(entry) = state.offers.get(offer_id) {
                    add_scalars(&mut mine, &entry.resources);
                    add_scalars(
                        ledger.by_role.entry(entry.role.clone()).or_default(),
                        &entry.resources,
                    );
                }
            }
            ledger.by_framework.insert(framework.id.clone(), mine);
        }
        for (role, config) in &state.quotas {
            let scalars = |m: &HashMap<String, v1::value::Scalar>| -> Scalars {
                m.iter().map(|(k, v)| (k.clone(), v.value)).collect()
            };
            ledger
                .guarantees
                .insert(role.clone(), scalars(&config.guarantees));
            ledger.limits.insert(role.clone(), scalars(&config.limits));
        }
        ledger
    }

    fn share(&self, allocated: Option<&Scalars>) -> f64 {
        let Some(allocated) = allocated else {
            return 0.0;
        };
        SHARED
            .iter()
            .filter_map(|name| {
                let total = self.totals.get(*name).copied().unwrap_or(0.0);
                (total > 0.0).then(|| allocated.get(*name).copied().unwrap_or(0.0) / total)
            })
            .fold(0.0, f64::max)
    }

    /// The role's share divided by its weight (default 1).
    fn role_share(&self, role: &str) -> f64 {
        let weight = self.weights.get(role).copied().unwrap_or(1.0);
        self.share(self.by_role.get(role)) / weight.max(f64::MIN_POSITIVE)
    }

    /// What `role` still misses of its guarantee, per resource name.
    fn unsatisfied(&self, role: &str) -> Scalars {
        let Some(guarantee) = self.guarantees.get(role) else {
            return Scalars::new();
        };
        let allocated = self.by_role.get(role);
        guarantee
            .iter()
            .filter_map(|(name, wanted)| {
                let have = allocated.and_then(|a| a.get(name)).copied().unwrap_or(0.0);
                (wanted - have > 1e-9).then(|| (name.clone(), wanted - have))
            })
            .collect()
    }

    /// The order in which `pairs` (framework id, role) are offered the next agent.
    pub(super) fn order(&self, pairs: &[(String, String)]) -> Vec<(String, String)> {
        // (no unsatisfied guarantee, weighted role share, framework share, tie index, pair)
        type Keyed = (bool, f64, f64, usize, (String, String));
        let mut keyed: Vec<Keyed> = pairs
            .iter()
            .enumerate()
            .map(|(index, (framework, role))| {
                (
                    self.unsatisfied(role).is_empty(),
                    self.role_share(role),
                    self.share(self.by_framework.get(framework)),
                    index,
                    (framework.clone(), role.clone()),
                )
            })
            .collect();
        keyed.sort_by(|a, b| {
            a.0.cmp(&b.0)
                .then(a.1.total_cmp(&b.1))
                .then(a.2.total_cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        keyed.into_iter().map(|k| k.4).collect()
    }

    /// How much of each scalar `role` may still be offered: its quota limit, and what other
    /// roles' unsatisfied guarantees need of the unallocated resources (headroom).
    fn caps(&self, role: &str) -> Scalars {
        let mut caps = Scalars::new();
        if let Some(limits) = self.limits.get(role) {
            let allocated = self.by_role.get(role);
            for (name, limit) in limits {
                let have = allocated.and_then(|a| a.get(name)).copied().unwrap_or(0.0);
                caps.insert(name.clone(), (limit - have).max(0.0));
            }
        }
        let mut headroom = Scalars::new();
        for other in self.guarantees.keys().filter(|r| r.as_str() != role) {
            for (name, missing) in self.unsatisfied(other) {
                *headroom.entry(name).or_default() += missing;
            }
        }
        for (name, needed) in headroom {
            let free = self.unallocated.get(&name).copied().unwrap_or(0.0);
            let cap = (free - needed).max(0.0);
            let entry = caps.entry(name).or_insert(cap);
            *entry = entry.min(cap);
        }
        caps
    }

    /// `share` cut down to what `role` may be offered (reserved resources are never cut).
    pub(super) fn cap(&self, role: &str, share: &Resources) -> Resources {
        let mut left = self.caps(role);
        if left.is_empty() {
            return share.clone();
        }
        let mut out = Resources::new();
        for resource in share.as_slice() {
            let mut resource = resource.clone();
            if resource.reservations.is_empty() {
                if let (Some(scalar), Some(cap)) =
                    (resource.scalar.as_mut(), left.get_mut(&resource.name))
                {
                    let take = (scalar.value.min(*cap) * 1000.0).floor() / 1000.0;
                    if take <= 0.0 {
                        continue;
                    }
                    scalar.value = take;
                    *cap -= take;
                }
            }
            out.add(&resource);
        }
        out
    }

    /// Counts an offer of `resources` to `framework` for `role`.
    pub(super) fn charge(&mut self, framework: &str, role: &str, resources: &[Resource]) {
        add_scalars(
            self.by_framework.entry(framework.to_string()).or_default(),
            resources,
        );
        add_scalars(self.by_role.entry(role.to_string()).or_default(), resources);
        for r in resources {
            if let (Some(s), Some(free)) = (&r.scalar, self.unallocated.get_mut(&r.name)) {
                *free -= s.value;
            }
        }
    }
}

/// Whether `share` is worth offering to `framework` for `role`: its `offer_filters` minimums
/// when it has them for the role, else Mesos' defaults (0.01 cpus or 32 MB of memory).
pub(super) fn worth_offering(framework: &Framework, role: &str, share: &Resources) -> bool {
    let minimums = framework
        .info
        .offer_filters
        .get(role)
        .and_then(|f| f.min_allocatable_resources.as_ref())
        .map(|m| &m.quantities[..])
        .unwrap_or(&[]);
    if minimums.is_empty() {
        return allocator::allocatable(share);
    }
    minimums.iter().any(|q| {
        q.quantities
            .iter()
            .all(|(name, min)| share.scalar(name) + 1e-9 >= min.value)
    })
}

/// Whether an agent passes the framework's `offer_constraints` for `role` (no constraints for
/// the role: yes; else at least one group whose constraints all hold).
pub(super) fn passes_constraints(
    constraints: Option<&OfferConstraints>,
    role: &str,
    hostname: &str,
    attributes: &[Attribute],
) -> bool {
    let Some(role_constraints) = constraints.and_then(|c| c.role_constraints.get(role)) else {
        return true;
    };
    role_constraints.groups.is_empty()
        || role_constraints.groups.iter().any(|group| {
            group
                .attribute_constraints
                .iter()
                .all(|c| holds(c, hostname, attributes))
        })
}

/// The text of an attribute (text, scalar or ranges/set rendered as Mesos does for scalars and
/// texts; other kinds have none).
fn attribute_text(attribute: &Attribute) -> Option<String> {
    if let Some(text) = &attribute.text {
        return Some(text.value.clone());
    }
    attribute.scalar.as_ref().map(|s| s.value.to_string())
}

fn holds(constraint: &AttributeConstraint, hostname: &str, attributes: &[Attribute]) -> bool {
    let value: Option<String> = match &constraint.selector.selector {
        Some(selector::Selector::AttributeName(name)) => attributes
            .iter()
            .find(|a| a.name == *name)
            .map(|a| attribute_text(a).unwrap_or_default()),
        Some(selector::Selector::PseudoattributeType(kind)) => {
            match selector::PseudoattributeType::try_from(*kind) {
                Ok(selector::PseudoattributeType::Hostname) => Some(hostname.to_string()),
                _ => None,
            }
        }
        None => None,
    };
    match &constraint.predicate.predicate {
        Some(predicate::Predicate::Exists(_)) => value.is_some(),
        Some(predicate::Predicate::NotExists(_)) => value.is_none(),
        Some(predicate::Predicate::TextEquals(p)) => value.as_deref() == Some(p.value.as_str()),
        Some(predicate::Predicate::TextNotEquals(p)) => value.as_deref() != Some(p.value.as_str()),
        Some(predicate::Predicate::TextMatches(p)) => {
            value.is_some_and(|v| full_match(&p.regex, &v))
        }
        Some(predicate::Predicate::TextNotMatches(p)) => {
            !value.is_some_and(|v| full_match(&p.regex, &v))
        }
        None => true,
    }
}

/// Whether `regex` matches the whole of `text` (an invalid regex matches nothing).
fn full_match(regex: &str, text: &str) -> bool {
    regex::Regex::new(&format!("^(?:{regex})$")).is_ok_and(|r| r.is_match(text))
}

impl State {
    /// UPDATE_QUOTA: sets (or, with empty guarantees and limits, removes) the quota of each
    /// role. `Err` carries the 400 text.
    pub fn update_quota(&mut self, configs: Vec<QuotaConfig>) -> Result<(), String> {
        for config in &configs {
            if config.role == "*" {
                return Err("Invalid 'QuotaConfig.role': '*' cannot have quota".into());
            }
            if let Some(problem) = frameworks::validate_role(&config.role) {
                return Err(format!("Invalid 'QuotaConfig.role': {problem}"));
            }
            for (name, value) in config.guarantees.iter().chain(&config.limits) {
                if !value.value.is_finite() || value.value < 0.0 {
                    return Err(format!(
                        "Invalid 'QuotaConfig' for role '{}': '{name}' must be a finite non-negative quantity",
                        config.role
                    ));
                }
            }
            for (name, guarantee) in &config.guarantees {
                if let Some(limit) = config.limits.get(name) {
                    if guarantee.value > limit.value {
                        return Err(format!(
                            "Invalid 'QuotaConfig' for role '{}': guarantee of '{name}' exceeds its limit",
                            config.role
                        ));
                    }
                }
            }
        }
        for config in configs {
            if config.guarantees.is_empty() && config.limits.is_empty() {
                self.quotas.remove(&config.role);
            } else {
                self.quotas.insert(config.role.clone(), config);
            }
        }
        Ok(())
    }

    /// GET_QUOTA's configurations, by role.
    pub fn quota_configs(&self) -> Vec<QuotaConfig> {
        let mut configs: Vec<QuotaConfig> = self.quotas.values().cloned().collect();
        configs.sort_by(|a, b| a.role.cmp(&b.role));
        configs
    }

    /// UPDATE_WEIGHTS. `Err` carries the 400 text.
    pub fn update_weights(&mut self, weights: &[WeightInfo]) -> Result<(), String> {
        for info in weights {
            let role = info.role.as_deref().unwrap_or("");
            if let Some(problem) = frameworks::validate_role(role) {
                return Err(format!("Invalid role '{role}': {problem}"));
            }
            if !info.weight.is_finite() || info.weight <= 0.0 {
                return Err(format!(
                    "Invalid weight '{}' for role '{role}': weights must be positive",
                    info.weight
                ));
            }
        }
        for info in weights {
            let role = info.role.clone().unwrap_or_default();
            if (info.weight - 1.0).abs() < f64::EPSILON {
                self.weights.remove(&role);
            } else {
                self.weights.insert(role, info.weight);
            }
        }
        Ok(())
    }

    /// GET_WEIGHTS: the roles with a weight other than 1.
    pub fn weight_infos(&self) -> Vec<WeightInfo> {
        let mut infos: Vec<WeightInfo> = self
            .weights
            .iter()
            .map(|(role, weight)| WeightInfo {
                weight: *weight,
                role: Some(role.clone()),
            })
            .collect();
        infos.sort_by(|a, b| a.role.cmp(&b.role));
        infos
    }
}
