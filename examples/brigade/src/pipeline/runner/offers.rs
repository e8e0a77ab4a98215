//! Launching: placing pending messages onto offers as tasks through the SDK's resource manager
//! (the processor's hard constraints hold, its soft preferences apply; records written first),
//! holding offers while every slot is taken, declining the rest. A message the placer cannot
//! place stays pending, and the placer's reason is logged and kept for the status.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesos_sdk::resourcemgr::placement::{Demand, Request};
use mesos_sdk::resourcemgr::pool::OfferPool;
use mesos_sdk::resourcemgr::{OfferResources, Resources};
use mesos_sdk::scheduler::calls;
use mesos_sdk::v1::{self, AgentId, Offer, TaskInfo};

use super::super::PipelineError;
use super::super::record::{Stage, TaskRecord};
use super::{Attempt, ResultKind, Runner, Running, executors, key_of};
use crate::protocol::{self, InputMessage};

/// The placement request id of a message: stable across its attempts, so the placer's delay
/// scheduling (soft preferences) counts from the first attempt.
pub(super) fn request_id(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

impl Runner {
    pub(super) async fn on_offers(&mut self, offers: Vec<Offer>) -> Result<(), PipelineError> {
        let now = Instant::now();
        let framework_id = self.scheduler.framework_id();
        let mut records = Vec::new();
        let mut accepts: Vec<(Vec<v1::OfferId>, Vec<TaskInfo>)> = Vec::new();
        let executor_request = self.executor_request();
        // One request per ready message while slots are free: the task's own resources. The
        // executor's share is carved out of the offers of agents that have no executor of ours
        // yet (see `executors`), before placement.
        let demand = Demand {
            scalars: vec![
                ("cpus".to_string(), self.processor.cpus()),
                ("mem".to_string(), self.processor.mem()),
            ],
            ..Demand::default()
        };
        let slots = self
            .max_in_flight()
            .saturating_sub(self.running.len())
            .min(self.config.max_tasks_per_offer.max(1) * offers.len());
        let constraints = self.processor.hard_constraints();
        let preferences = self.processor.preferences();
        let mut waiting: HashMap<String, Attempt> = HashMap::new();
        let mut new_executors: Vec<String> = Vec::new();
        let mut requests = Vec::new();
        if let Some(framework_id) = framework_id.clone() {
            while requests.len() < slots {
                let Some(position) = self.pending.iter().position(|a| a.not_before <= now) else {
                    break;
                };
                let Some(attempt) = self.pending.remove(position) else {
                    break;
                };
                let msg = attempt.msg.clone();
                let task = match protocol::message_task(
                    &framework_id,
                    self.config.executor_uri.clone(),
                    &self.processor,
                    &msg,
                ) {
                    Ok(task) => task,
                    Err(e) => {
                        // The message cannot travel in a task: it goes to the error topic.
                        let id =
                            protocol::task_id(self.processor.name(), msg.partition, msg.offset);
                        let record = self.record_for(&id, None, &msg, attempt.attempt);
                        self.start_produce(record, ResultKind::Error(format!("{e}")), None, None);
                        continue;
                    }
                };
                let id = request_id(&msg.topic, msg.partition, msg.offset);
                let mut request = Request::task(&id, &self.config.role, task, demand.clone())
                    .app(self.processor.name());
                request.constraints = constraints.clone();
                request.preferences = preferences.clone();
                waiting.insert(id, attempt);
                requests.push(request);
            }
        }
        let mut decline = Vec::new();
        let unused = if requests.is_empty() {
            offers
        } else {
            // The offers the placer leaves unused go through the same hold-or-decline below.
            let mut by_id: HashMap<String, Offer> = offers
                .iter()
                .map(|o| (o.id.value.clone(), o.clone()))
                .collect();
            let mut pool = OfferPool::new();
            // Agents without an executor of ours: the executor's resources come out of their
            // first offer that holds them (an offer too small for them is left unused).
            let mut carved: HashMap<String, Vec<v1::Resource>> = HashMap::new();
            for mut offer in offers {
                let agent = offer.agent_id.value.clone();
                if self.executors.on_agent(&agent).is_none() && !carved.contains_key(&agent) {
                    let mut room = OfferResources::new(&offer);
                    match room.take(&executor_request) {
                        Ok(resources) => {
                            carved.insert(agent, resources);
                            offer.resources = room.remaining().to_vec();
                        }
                        Err(_) => continue,
                    }
                }
                if let Err(error) = pool.add(offer, now) {
                    tracing::warn!(%error, "offer not pooled");
                }
            }
            let placement = self.placer.place(&mut pool, requests, now);
            for unplaced in &placement.unplaced {
                let reason = unplaced.to_string();
                if self.counters.unplaced().as_deref() != Some(reason.as_str()) {
                    tracing::warn!(processor = %self.processor.name(), %reason, "message not placed");
                }
                self.counters.set_unplaced(Some(reason));
            }
            if !placement.placed.is_empty() {
                self.counters.set_unplaced(None);
            }
            // The unplaced messages wait again, in their order.
            for request in placement.pending.iter().rev() {
                if let Some(attempt) = waiting.remove(&request.id) {
                    self.pending.push_front(attempt);
                }
            }
            let placed: HashMap<String, String> = placement
                .placed
                .iter()
                .flat_map(|p| {
                    p.task_ids
                        .iter()
                        .map(|t| (t.value.clone(), p.request_id.clone()))
                })
                .collect();
            for call in placement.accepts {
                let Some(accept) = call.accept else {
                    continue;
                };
                let mut tasks = Vec::new();
                for operation in accept.operations {
                    let Some(launch) = operation.launch else {
                        continue;
                    };
                    for mut task in launch.task_infos {
                        let task_id = task.task_id.value.clone();
                        let Some(id) = placed.get(&task_id) else {
                            continue;
                        };
                        let Some(attempt) = waiting.remove(id) else {
                            continue;
                        };
                        let agent = task.agent_id.value.clone();
                        let executor = match self.executors.on_agent(&agent) {
                            Some(info) => info.clone(),
                            None => {
                                let (Some(resources), Some(framework_id)) =
                                    (carved.remove(&agent), framework_id.as_ref())
                                else {
                                    // Not expected: the placer used an offer not carved.
                                    self.placer.ledger_mut().forget(id);
                                    self.pending.push_front(attempt);
                                    continue;
                                };
                                let info = self.new_executor(framework_id, resources);
                                self.executors.started(&agent, info.clone());
                                new_executors.push(agent.clone());
                                info
                            }
                        };
                        task.executor = Some(Box::new(executor));
                        let msg = attempt.msg.clone();
                        let record =
                            self.record_for(&task_id, Some(&task.agent_id), &msg, attempt.attempt);
                        records.push(record.clone());
                        self.by_offset.insert(
                            key_of(&msg.topic, msg.partition, msg.offset),
                            task_id.clone(),
                        );
                        self.running.insert(
                            task_id,
                            Running {
                                record,
                                msg: Some(msg),
                                launched_at: now,
                                kill_sent: false,
                                reachability: Default::default(),
                            },
                        );
                        tasks.push(task);
                    }
                }
                if !tasks.is_empty() {
                    for id in &accept.offer_ids {
                        by_id.remove(&id.value);
                    }
                    accepts.push((accept.offer_ids, tasks));
                }
            }
            // Every offer not accepted, as offered (the executor's share not carved out).
            by_id.into_values().collect()
        };
        // Anything left in `waiting` (not expected) waits again.
        for (_, attempt) in waiting {
            self.pending.push_front(attempt);
        }
        // The records first: a task is never launched without its record.
        if let Err(e) = self.records.put_all(&records).await {
            tracing::warn!(error = %e, "cannot write task records; not launching");
            for record in records {
                self.placer.ledger_mut().forget(&request_id(
                    &record.topic,
                    record.partition,
                    record.offset,
                ));
                if let Some(running) = self.running.remove(&record.task_id) {
                    self.by_offset
                        .remove(&key_of(&record.topic, record.partition, record.offset));
                    if let Some(msg) = running.msg {
                        self.pending.push_front(Attempt {
                            msg,
                            attempt: record.attempt,
                            not_before: now,
                        });
                    }
                }
            }
            for agent in &new_executors {
                self.executors.forget_agent(agent);
            }
            for (ids, _) in accepts {
                decline.extend(ids);
            }
            accepts = Vec::new();
        }
        for (offer_ids, tasks) in accepts {
            let count = tasks.len();
            let call = calls::accept(
                offer_ids,
                vec![calls::operations::launch(tasks)],
                Some(Duration::ZERO),
            );
            tracing::debug!(processor = %self.processor.name(), tasks = count, "launching");
            for _ in 0..count {
                self.counters.launched();
            }
            self.send(call);
        }
        if !decline.is_empty() {
            self.send_in_order(calls::decline(decline, None));
        }
        let backlog = self.pending.iter().any(|a| a.not_before <= now);
        if backlog && self.running.len() >= self.max_in_flight() {
            self.held.extend(unused);
        } else if !unused.is_empty() {
            self.filtered = true;
            let ids = unused.into_iter().map(|o| o.id).collect();
            self.send_in_order(calls::decline(ids, Some(self.config.decline_refuse)));
        }
        self.etiquette();
        Ok(())
    }

    /// Launches waiting messages on the held offers once slots are free; declines the held
    /// offers when nothing waits any more.
    pub(super) async fn launch_held(&mut self) -> Result<(), PipelineError> {
        if self.held.is_empty() || self.running.len() >= self.max_in_flight() {
            return Ok(());
        }
        let now = Instant::now();
        if self.pending.iter().any(|a| a.not_before <= now) {
            let held = std::mem::take(&mut self.held);
            self.on_offers(held).await
        } else {
            let ids: Vec<v1::OfferId> = self.held.drain(..).map(|o| o.id).collect();
            self.filtered = true;
            self.send_in_order(calls::decline(ids, Some(self.config.decline_refuse)));
            Ok(())
        }
    }

    /// A new shared executor (fresh id) with `resources`: fetched from the artifact server, or
    /// run from `executor_on_agent`; told how long to wait idle for its SHUTDOWN.
    fn new_executor(
        &self,
        framework_id: &v1::FrameworkId,
        resources: Vec<v1::Resource>,
    ) -> v1::ExecutorInfo {
        let id = format!(
            "brigade-{}-{}",
            self.processor.name(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let mut info = self.executor_info(framework_id, &id, resources);
        if let Some(command) = info.command.as_mut() {
            let stop_after = executors::self_stop_after(self.config.executor_idle);
            command
                .environment
                .get_or_insert_with(v1::Environment::default)
                .variables
                .push(v1::environment::Variable {
                    name: executors::EXECUTOR_IDLE_ENV.to_string(),
                    value: Some(stop_after.as_millis().to_string()),
                    ..Default::default()
                });
        }
        info
    }

    /// The `ExecutorInfo` of an executor `id` of this processor with `resources`: fetched from
    /// the artifact server, or run from `executor_on_agent` when set (shared per-message
    /// executors and warm workers alike).
    pub(super) fn executor_info(
        &self,
        framework_id: &v1::FrameworkId,
        id: &str,
        resources: Vec<v1::Resource>,
    ) -> v1::ExecutorInfo {
        let mut info = protocol::executor_info(
            framework_id,
            id,
            self.config.executor_uri.clone(),
            &self.processor,
        );
        info.resources = resources;
        if let (Some(command), Some(path)) = (info.command.as_mut(), &self.config.executor_on_agent)
        {
            command.uris.clear();
            command.value = Some(format!("exec '{}'", path.display()));
        }
        info
    }

    /// The resources of one executor (beside its tasks').
    pub(super) fn executor_request(&self) -> Vec<v1::Resource> {
        Resources::builder()
            .cpus(self.config.executor_cpus)
            .mem(self.config.executor_mem)
            .build()
            .into_vec()
    }

    pub(super) fn record_for(
        &self,
        task_id: &str,
        agent_id: Option<&AgentId>,
        msg: &InputMessage,
        attempt: u32,
    ) -> TaskRecord {
        TaskRecord {
            task_id: task_id.to_string(),
            agent_id: agent_id.map(|a| a.value.clone()),
            topic: msg.topic.clone(),
            partition: msg.partition,
            offset: msg.offset,
            key: msg.key.clone(),
            attempt,
            stage: Stage::Launched,
        }
    }
}
