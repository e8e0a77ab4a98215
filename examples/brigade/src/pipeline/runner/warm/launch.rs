//! Warm mode's launching: offers become worker tasks while the backlog wants more workers.
//! Each worker is placed by the SDK's resource manager (the processor's constraints and
//! preferences hold) and charged its concurrency times the processor's `cpus` and `mem`; its
//! own executor's share is carved out of the offer first. Offers not used are declined with
//! the long filter.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mesos_sdk::resourcemgr::OfferResources;
use mesos_sdk::resourcemgr::placement::{Demand, Request};
use mesos_sdk::resourcemgr::pool::OfferPool;
use mesos_sdk::scheduler::calls;
use mesos_sdk::v1::{self, Offer, TaskInfo};

use super::super::super::PipelineError;
use super::super::Runner;
use super::pool::{Worker, WorkerState};
use crate::protocol::warm;

impl Runner {
    /// Offers in warm mode: launch the workers the backlog wants, decline the rest.
    pub(in crate::pipeline::runner) async fn warm_offers(
        &mut self,
        offers: Vec<Offer>,
    ) -> Result<(), PipelineError> {
        let now = Instant::now();
        let wanted = self.warm.as_ref().map_or(0, |w| w.wanted());
        let framework_id = self.scheduler.framework_id();
        let (Some(framework_id), true) = (framework_id, wanted > 0) else {
            self.decline_all(offers);
            return Ok(());
        };
        let concurrency = self.warm.as_ref().map_or(1, |w| w.concurrency) as f64;
        let executor_request = self.executor_request();
        let demand = Demand {
            scalars: vec![
                ("cpus".to_string(), self.processor.cpus() * concurrency),
                ("mem".to_string(), self.processor.mem() * concurrency),
            ],
            ..Demand::default()
        };
        let mut by_id: HashMap<String, Offer> = offers
            .iter()
            .map(|o| (o.id.value.clone(), o.clone()))
            .collect();
        // Up to `wanted` executor shares per agent, carved before placement.
        let mut carved: HashMap<String, Vec<Vec<v1::Resource>>> = HashMap::new();
        let mut pool = OfferPool::new();
        for mut offer in offers {
            let agent = offer.agent_id.value.clone();
            let mut room = OfferResources::new(&offer);
            let shares = carved.entry(agent).or_default();
            while shares.len() < wanted {
                match room.take(&executor_request) {
                    Ok(resources) => shares.push(resources),
                    Err(_) => break,
                }
            }
            offer.resources = room.remaining().to_vec();
            if let Err(error) = pool.add(offer, now) {
                tracing::warn!(%error, "offer not pooled");
            }
        }
        let mut requests = Vec::new();
        for _ in 0..wanted {
            let id = format!(
                "brigade-{}-worker-{}",
                self.processor.name(),
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let mut task = TaskInfo {
                name: id.clone(),
                task_id: v1::TaskId { value: id.clone() },
                ..Default::default()
            };
            warm::encode_worker(&mut task, &self.processor);
            if let Some(labels) = task.labels.as_mut() {
                labels.labels.push(v1::Label {
                    key: warm::LABEL_WARM_CONCURRENCY.to_string(),
                    value: Some((concurrency as usize).to_string()),
                });
            }
            let mut request = Request::task(&id, &self.config.role, task, demand.clone())
                .app(self.processor.name());
            request.constraints = self.processor.hard_constraints();
            request.preferences = self.processor.preferences();
            requests.push(request);
        }
        let placement = self.placer.place(&mut pool, requests, now);
        for unplaced in &placement.unplaced {
            let reason = unplaced.to_string();
            if self.counters.unplaced().as_deref() != Some(reason.as_str()) {
                tracing::warn!(processor = %self.processor.name(), %reason, "warm worker not placed");
            }
            self.counters.set_unplaced(Some(reason));
        }
        for request in &placement.pending {
            self.placer.ledger_mut().forget(&request.id);
        }
        if !placement.placed.is_empty() {
            self.counters.set_unplaced(None);
        }
        let mut launched = Vec::new();
        for call in placement.accepts {
            let Some(accept) = call.accept else { continue };
            let mut tasks = Vec::new();
            for operation in accept.operations {
                let Some(launch) = operation.launch else {
                    continue;
                };
                for mut task in launch.task_infos {
                    let agent = task.agent_id.value.clone();
                    let Some(resources) = carved.get_mut(&agent).and_then(Vec::pop) else {
                        // Not expected: the placer used an agent with no executor share.
                        self.placer.ledger_mut().forget(&task.task_id.value);
                        continue;
                    };
                    task.executor = Some(Box::new(self.worker_executor(
                        &framework_id,
                        &task,
                        resources,
                    )));
                    tasks.push(task);
                }
            }
            if !tasks.is_empty() {
                for id in &accept.offer_ids {
                    by_id.remove(&id.value);
                }
                launched.push((accept.offer_ids, tasks));
            }
        }
        for (offer_ids, tasks) in launched {
            if let Some(warm) = self.warm.as_mut() {
                for task in &tasks {
                    tracing::info!(processor = %self.processor.name(), worker = %task.task_id.value, agent = %task.agent_id.value, "launching a warm worker");
                    warm.pool.workers.insert(
                        task.task_id.value.clone(),
                        Worker {
                            task_id: task.task_id.clone(),
                            executor_id: v1::ExecutorId {
                                value: task.task_id.value.clone(),
                            },
                            agent_id: task.agent_id.clone(),
                            state: WorkerState::Launching,
                            in_flight: HashMap::new(),
                            idle_since: now,
                            reachability: Default::default(),
                        },
                    );
                    self.counters.launched();
                }
            }
            self.send(calls::accept(
                offer_ids,
                vec![calls::operations::launch(tasks)],
                Some(Duration::ZERO),
            ));
        }
        self.decline_all(by_id.into_values().collect());
        Ok(())
    }

    fn decline_all(&mut self, offers: Vec<Offer>) {
        if !offers.is_empty() {
            self.filtered = true;
            let ids = offers.into_iter().map(|o| o.id).collect();
            self.send_in_order(calls::decline(ids, Some(self.config.decline_refuse)));
        }
        self.etiquette();
    }

    /// A worker's own executor (its id is the worker's task id), with `resources`.
    fn worker_executor(
        &self,
        framework_id: &v1::FrameworkId,
        task: &TaskInfo,
        resources: Vec<v1::Resource>,
    ) -> v1::ExecutorInfo {
        let mut info = self.executor_info(framework_id, &task.task_id.value, resources);
        info.name = Some(format!(
            "brigade-executor warm worker of {}",
            self.processor.name()
        ));
        info
    }
}
