//! The placer's answer: the ACCEPT calls, the offers to decline, where each request went
//! ([`Placed`]) and why the others did not ([`Unplaced`]), with accessors into the calls.

use super::*;

/// A request that was placed.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The request.
    pub request_id: String,
    /// The agent.
    pub agent: Arc<AgentView>,
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
    /// The requests not placed, given back in the order they were passed to
    /// [`Placer::place`] (their reasons are in [`unplaced`](Self::unplaced)).
    pub pending: Vec<Request>,
}

impl Placement {
    /// The offers of the ACCEPT that launches a placed request.
    pub fn offer_ids(&self, placed: &Placed) -> &[OfferId] {
        self.accepts
            .get(placed.accept)
            .and_then(|c| c.accept.as_ref())
            .map_or(&[], |a| a.offer_ids.as_slice())
    }

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

    /// For metrics: per failure label (see [`FailureKind::label`]), how many unplaced
    /// requests it held back.
    pub fn failure_totals(&self) -> std::collections::BTreeMap<String, usize> {
        let mut totals = std::collections::BTreeMap::new();
        for u in &self.unplaced {
            let labels: BTreeSet<String> = u.reasons.keys().map(FailureKind::label).collect();
            for l in labels {
                *totals.entry(l).or_insert(0) += 1;
            }
        }
        totals
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
