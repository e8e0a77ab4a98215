//! Launching: sizing pending messages onto offers as tasks (records written first), holding
//! offers while every slot is taken, declining the rest.

use std::time::{Duration, Instant};

use mesos_sdk::resourcemgr::{OfferResources, Resources};
use mesos_sdk::scheduler::calls;
use mesos_sdk::v1::{self, AgentId, Offer, TaskInfo};

use super::super::PipelineError;
use super::super::record::{Stage, TaskRecord};
use super::{Attempt, ResultKind, Runner, Running, key_of};
use crate::protocol::{self, InputMessage};

impl Runner {
    pub(super) async fn on_offers(&mut self, offers: Vec<Offer>) -> Result<(), PipelineError> {
        let now = Instant::now();
        let framework_id = self.scheduler.framework_id();
        let mut unused = Vec::new();
        let mut records = Vec::new();
        let mut accepts: Vec<(v1::OfferId, Vec<TaskInfo>)> = Vec::new();
        let task_request = Resources::builder()
            .cpus(self.processor.cpus())
            .mem(self.processor.mem())
            .build()
            .into_vec();
        let executor_request = Resources::builder()
            .cpus(self.config.executor_cpus)
            .mem(self.config.executor_mem)
            .build()
            .into_vec();
        for offer in offers {
            let mut room = OfferResources::new(&offer);
            let mut tasks = Vec::new();
            while self.running.len() < self.max_in_flight()
                && tasks.len() < self.config.max_tasks_per_offer.max(1)
            {
                let Some(position) = self.pending.iter().position(|a| a.not_before <= now) else {
                    break;
                };
                let Some(framework_id) = framework_id.clone() else {
                    break;
                };
                let mut trial = room.clone();
                let Ok(executor_resources) = trial.take(&executor_request) else {
                    break;
                };
                let Ok(task_resources) = trial.take(&task_request) else {
                    break;
                };
                let Some(attempt) = self.pending.remove(position) else {
                    break;
                };
                let msg = attempt.msg.clone();
                let mut task = match protocol::message_task(
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
                        self.start_produce(record, ResultKind::Error(format!("{e}")), None);
                        continue;
                    }
                };
                room = trial;
                task.agent_id = offer.agent_id.clone();
                task.resources = task_resources;
                if let Some(executor) = task.executor.as_mut() {
                    executor.resources = executor_resources;
                    if let (Some(path), Some(command)) =
                        (&self.config.executor_on_agent, executor.command.as_mut())
                    {
                        command.uris.clear();
                        command.value = Some(format!("exec '{}'", path.display()));
                    }
                }
                let task_id = task.task_id.value.clone();
                let record =
                    self.record_for(&task_id, Some(&offer.agent_id), &msg, attempt.attempt);
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
                    },
                );
                tasks.push(task);
            }
            if tasks.is_empty() {
                unused.push(offer);
            } else {
                accepts.push((offer.id.clone(), tasks));
            }
        }
        // The records first: a task is never launched without its record.
        if let Err(e) = self.records.put_all(&records).await {
            tracing::warn!(error = %e, "cannot write task records; not launching");
            for record in records {
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
            let ids: Vec<v1::OfferId> = accepts.into_iter().map(|(offer, _)| offer).collect();
            self.send(calls::decline(ids, None));
            accepts = Vec::new();
        }
        for (offer_id, tasks) in accepts {
            let count = tasks.len();
            let call = calls::accept(
                vec![offer_id],
                vec![calls::operations::launch(tasks)],
                Some(Duration::ZERO),
            );
            tracing::debug!(processor = %self.processor.name(), tasks = count, "launching");
            for _ in 0..count {
                self.counters.launched();
            }
            self.send(call);
        }
        let backlog = self.pending.iter().any(|a| a.not_before <= now);
        if backlog && self.running.len() >= self.max_in_flight() {
            self.held.extend(unused);
        } else if !unused.is_empty() {
            self.filtered = true;
            let ids = unused.into_iter().map(|o| o.id).collect();
            self.send(calls::decline(ids, Some(self.config.decline_refuse)));
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
            self.send(calls::decline(ids, Some(self.config.decline_refuse)));
            Ok(())
        }
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
