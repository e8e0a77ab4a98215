//! The standard handling of OFFERS through the resource manager: offers go into an
//! [`OfferPool`]; every ready instance becomes a placement [`Request`] (its spec's resources,
//! ports, executor resources, constraints, stickiness); the [`Placer`] answers with ACCEPT
//! calls, offers to decline and a readable reason for every instance left unplaced (shown as
//! the pending record's reason, in queries and `/state`). The placed tasks' `TaskInfo`s are
//! then built from their specs over exactly the resources the placer cut for them (so ports
//! reach `PORT0`..., Docker port mappings and health checks), the launch intents are stored,
//! and only then are the ACCEPTs sent.
//!
//! Choices:
//! - Request id = `<spec>/<index>`, app = the spec's name (constraints count the instances of
//!   a spec), role = the framework's first role.
//! - Sticky instances (restart policy `sticky`, restarted at least once) prefer their last
//!   agent for the builder's `sticky_wait` (the placer's delay scheduling); while one waits,
//!   unused offers stay in the pool (they expire after the refuse interval and are declined).
//! - After a restart of the scheduler, the placer's ledger is seeded from the records (where
//!   live instances run, where sticky ones last ran) as agents are seen in offers.

use std::collections::HashMap;
use std::time::Instant;

use super::controller::ControllerError;
use super::runtime::Context;
use super::telemetry::OfferOutcome;
use crate::resourcemgr::offer::OfferResources;
use crate::resourcemgr::placement::{Constraint, Demand, PortSpec, Request};
use crate::resourcemgr::pool::AgentView;
use crate::taskmgr::manager::now_ms;
use crate::taskmgr::spec::{Operator, ResourceSpec, TaskSpec};
use crate::taskmgr::{LaunchIntent, TaskRecord, record};
use crate::v1::{Offer, OfferId, TaskId, TaskInfo};

/// The placement request id of an instance.
pub(super) fn request_id(spec: &str, index: u32) -> String {
    format!("{spec}/{index}")
}

impl Context {
    /// The standard handling of OFFERS: the offers join the pool, the ready instances are
    /// placed by the resource manager's placer (constraints, ports, reservations, stickiness),
    /// their intents stored, then the ACCEPTs sent; unused offers are declined with the long
    /// refuse filter (unless a sticky instance waits for its agent). Instances left pending
    /// get the placement's reason.
    pub async fn launch_on(&self, offers: Vec<Offer>) -> Result<(), ControllerError> {
        let now = Instant::now();
        self.telemetry.offers(OfferOutcome::Received, offers.len());
        let mut pool = self.pool.lock().await;
        {
            let mut agents = self.agents.lock().await;
            for offer in offers {
                agents.insert(offer.agent_id.value.clone(), agent_view(&offer));
                if let Err(error) = pool.add(offer, now) {
                    tracing::warn!(%error, "offer not pooled");
                }
            }
        }
        let mut decline: Vec<OfferId> = pool.expire(now).into_iter().map(|o| o.id).collect();
        let ready = self.tasks.ready(now_ms()).await;
        if ready.is_empty() || pool.is_empty() {
            decline.extend(pool.take_all().into_iter().map(|o| o.id));
            drop(pool);
            self.decline(decline).await;
            self.update_pending().await;
            return Ok(());
        }
        let mut placer = self.placer.lock().await;
        self.seed_ledger(&mut placer).await;
        let role = self.roles.first().map_or("*", String::as_str);
        let mut requests = Vec::with_capacity(ready.len());
        let mut instances: HashMap<String, (&TaskRecord, &TaskSpec, u64)> = HashMap::new();
        for (record, stored) in &ready {
            let id = request_id(&record.spec, record.index);
            let task_id = record::new_task_id(&record.spec, record.index);
            let sticky = stored.spec.restart.sticky && record.restarts > 0;
            match request_for(&stored.spec, &id, task_id, role, sticky) {
                Ok(request) => {
                    instances.insert(id, (record, &stored.spec, stored.version));
                    requests.push(request);
                }
                Err(reason) => {
                    self.tasks
                        .set_pending_reason(&record.spec, record.index, reason)
                        .await;
                }
            }
        }
        let mut placement = placer.place(&mut pool, requests, now);
        drop(pool);

        // The TaskInfos from the specs over the resources the placer cut.
        let mut intents = Vec::with_capacity(placement.placed.len());
        let mut failed: Vec<(String, String)> = Vec::new();
        for placed in &placement.placed {
            let Some((record, spec, version)) = instances.get(&placed.request_id) else {
                continue;
            };
            let offer_id = placement
                .offer_ids(placed)
                .first()
                .map(|o| o.value.clone())
                .unwrap_or_default();
            let Some(call) = placement.accepts.get_mut(placed.accept) else {
                continue;
            };
            let Some(accept) = call.accept.as_mut() else {
                continue;
            };
            for operation in &mut accept.operations {
                let Some(launch) = operation.launch.as_mut() else {
                    continue;
                };
                let Some(slot) = launch
                    .task_infos
                    .iter()
                    .position(|t| placed.task_ids.contains(&t.task_id))
                else {
                    continue;
                };
                let cut = &launch.task_infos[slot];
                let task_id = cut.task_id.value.clone();
                match self.build(spec, cut) {
                    Ok(info) => {
                        launch.task_infos[slot] = info;
                        intents.push(LaunchIntent {
                            spec: record.spec.clone(),
                            index: record.index,
                            task_id,
                            agent_id: placed.agent.agent_id.value.clone(),
                            offer_id: offer_id.clone(),
                            spec_version: *version,
                        });
                    }
                    Err(reason) => {
                        launch.task_infos.remove(slot);
                        failed.push((placed.request_id.clone(), reason));
                    }
                }
            }
        }
        for (id, reason) in failed {
            placer.ledger_mut().ended(&id);
            if let Some((record, _, _)) = instances.get(&id) {
                self.tasks
                    .set_pending_reason(&record.spec, record.index, reason)
                    .await;
            }
        }
        for unplaced in &placement.unplaced {
            if let Some((record, _, _)) = instances.get(&unplaced.request_id) {
                self.tasks
                    .set_pending_reason(&record.spec, record.index, unplaced.to_string())
                    .await;
            }
        }
        drop(placer);
        for (label, n) in placement.failure_totals() {
            for _ in 0..n {
                self.telemetry.placement_failure(&label);
            }
        }

        self.tasks.record_launches(&intents).await?;
        self.telemetry.launches(intents.len());
        let mut used = 0;
        for mut call in placement.accepts {
            if let Some(accept) = call.accept.as_mut() {
                accept.operations.retain(|op| {
                    op.launch
                        .as_ref()
                        .is_none_or(|launch| !launch.task_infos.is_empty())
                });
                if accept.operations.is_empty() {
                    decline.append(&mut accept.offer_ids);
                    continue;
                }
                used += accept.offer_ids.len();
            }
            let result = self.scheduler.call(call).await;
            self.telemetry.call("accept", result.is_ok());
            if let Err(error) = result {
                // The intents are stored: reconciliation after the launch timeout settles them.
                tracing::warn!(%error, "ACCEPT failed");
            }
        }
        decline.append(&mut placement.decline);
        self.telemetry.offers(OfferOutcome::Used, used);
        self.decline(decline).await;
        self.update_pending().await;
        Ok(())
    }

    /// The instance's `TaskInfo` from its spec, its resources taken from exactly what the
    /// placer cut for it (`cut`).
    fn build(&self, spec: &TaskSpec, cut: &TaskInfo) -> Result<TaskInfo, String> {
        let offer = Offer {
            agent_id: cut.agent_id.clone(),
            resources: cut.resources.clone(),
            ..Offer::default()
        };
        let mut resources = OfferResources::new(&offer);
        spec.task_info(cut.task_id.value.clone(), &mut resources, &*self.artifacts)
            .map_err(|error| error.to_string())
    }

    /// One DECLINE with the long refuse filter.
    async fn decline(&self, offer_ids: Vec<OfferId>) {
        self.telemetry
            .offers(OfferOutcome::Declined, offer_ids.len());
        let decline = self.etiquette.lock().await.decline(offer_ids);
        self.send_calls(decline.into_iter().collect()).await;
    }

    /// Offers void (rescinded): they leave the pool.
    pub(super) async fn rescind(&self, offer_id: &OfferId) {
        self.pool.lock().await.rescind(offer_id);
    }

    /// Every pooled offer is void (disconnection, `OFFERS_INVALIDATED`).
    pub(super) async fn clear_offers(&self) {
        self.pool.lock().await.clear();
    }

    /// Gives back pooled offers past their time (while a sticky instance waits, offers stay
    /// in the pool), and places again when instances are ready and offers are pooled.
    pub(super) async fn offers_tick(&self) -> Result<(), ControllerError> {
        let pooled = !self.pool.lock().await.is_empty();
        if pooled {
            self.launch_on(Vec::new()).await?;
        }
        Ok(())
    }

    /// Tells the placer's ledger what the records know and it does not (after a restart of
    /// the scheduler): where live instances run, where restarted sticky ones last ran; for
    /// agents seen in offers.
    async fn seed_ledger(&self, placer: &mut crate::resourcemgr::placement::Placer) {
        let agents = self.agents.lock().await;
        let records = self.tasks.tasks().await;
        let ledger = placer.ledger_mut();
        for record in records {
            let Some(agent) = record.agent_id.as_ref().and_then(|a| agents.get(a)) else {
                continue;
            };
            let id = request_id(&record.spec, record.index);
            if ledger.last_agent(&id).is_some() {
                continue;
            }
            ledger.record(&id, &record.spec, agent);
            if !record.phase.may_run() {
                ledger.ended(&id);
            }
        }
    }

    /// The placer's ledger learns that an instance's attempt ended.
    pub(super) async fn ended(&self, spec: &str, index: u32) {
        self.placer
            .lock()
            .await
            .ledger_mut()
            .ended(&request_id(spec, index));
    }
}

/// What the pool and ledger keep of an offer's agent.
fn agent_view(offer: &Offer) -> AgentView {
    AgentView {
        agent_id: offer.agent_id.clone(),
        hostname: offer.hostname.clone(),
        attributes: offer.attributes.clone(),
        domain: offer.domain.clone(),
    }
}

/// The placement request of one instance of `spec`.
fn request_for(
    spec: &TaskSpec,
    id: &str,
    task_id: String,
    role: &str,
    sticky: bool,
) -> Result<Request, String> {
    let mut demand = Demand::default();
    add_scalars(&mut demand, &spec.resources);
    let executor = spec.executor.as_ref().and_then(|e| e.resources.as_ref());
    if let Some(resources) = executor {
        add_scalars(&mut demand, resources);
    }
    for mapping in spec.docker.iter().flat_map(|d| &d.port_mappings) {
        if let Some(port) = mapping.host_port {
            demand = demand.with_port(u64::from(port));
        }
    }
    let dynamic = spec.resources.ports + executor.map_or(0, |r| r.ports);
    demand
        .ports
        .extend((0..dynamic).map(|_| PortSpec::default()));
    let template = TaskInfo {
        name: spec.name.clone(),
        task_id: TaskId { value: task_id },
        ..TaskInfo::default()
    };
    let mut request = Request::task(id, role, template, demand).app(&spec.name);
    for constraint in &spec.constraints {
        let parsed = Constraint::parse(
            &constraint.field,
            operator_name(constraint.operator),
            constraint.value.as_deref(),
        )
        .map_err(|error| format!("constraint: {error}"))?;
        request = request.constraint(parsed);
    }
    if sticky {
        request = request.sticky();
    }
    Ok(request)
}

fn add_scalars(demand: &mut Demand, resources: &ResourceSpec) {
    for (name, value) in [
        ("cpus", resources.cpus),
        ("mem", resources.mem),
        ("disk", resources.disk),
        ("gpus", f64::from(resources.gpus)),
    ] {
        if value > 0.0 {
            match demand.scalars.iter_mut().find(|(n, _)| n == name) {
                Some((_, sum)) => *sum += value,
                None => demand.scalars.push((name.to_owned(), value)),
            }
        }
    }
}

/// Marathon's name of an operator (as the placer parses it).
fn operator_name(operator: Operator) -> &'static str {
    match operator {
        Operator::Unique => "UNIQUE",
        Operator::Cluster => "CLUSTER",
        Operator::GroupBy => "GROUP_BY",
        Operator::Like => "LIKE",
        Operator::Unlike => "UNLIKE",
        Operator::MaxPer => "MAX_PER",
        Operator::Is => "IS",
        Operator::In => "IN",
    }
}
