//! One process scheduler: the event loop that ties the input consumer, the Mesos scheduler
//! runtime (explicit acknowledgements), the offers, the store records and the result producer
//! together for one processor.
//!
//! A message's life: consumed → pending → launched on an offer (task record written first) →
//! terminal update → its output (or, after the retries, its error) record produced and
//! acknowledged by Kafka → task record marked produced → status update acknowledged → input
//! offset committed once everything before it is done → task record deleted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mesos_sdk::client::Client;
use mesos_sdk::resourcemgr::etiquette::TokenBucket;
use mesos_sdk::resourcemgr::{OfferResources, Resources};
use mesos_sdk::scheduler::{
    AckMode, AckToken, FrameworkInfoBuilder, Scheduler, SchedulerEvent, SchedulerEvents, calls,
};
use mesos_sdk::v1::{self, AgentId, Offer, TaskId, TaskInfo, TaskState, TaskStatus};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::counters::{Counters, CountersSnapshot};
use super::record::{Records, Stage, TaskRecord};
use super::{PipelineError, SchedulerConfig};
use crate::kafka::{InputConsumer, OffsetTracker, ResultProducer, Source, TopicPartition};
use crate::processor::Processor;
use crate::protocol::{self, InputMessage, Outcome};

/// What happened to one input message, announced once its record is acknowledged by Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResultKind {
    /// The processor's output (produced to the output topic, if the processor has one).
    Output(Vec<u8>),
    /// The failure's reason (produced to the error topic).
    Error(String),
}

/// One completed input message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultEvent {
    /// The processor.
    pub processor: String,
    /// The source topic.
    pub topic: String,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
    /// Attempts it took.
    pub attempts: u32,
    /// The result.
    pub kind: ResultKind,
}

/// A running process scheduler; see the module documentation.
#[derive(Debug)]
pub struct ProcessScheduler {
    name: String,
    stop: watch::Sender<bool>,
    drain: watch::Sender<bool>,
    join: JoinHandle<Result<(), PipelineError>>,
    counters: Arc<Counters>,
}

impl ProcessScheduler {
    /// Starts the process scheduler of `processor`: reads its records, subscribes its
    /// framework (`brigade-<name>`, resuming a persisted framework id) and starts consuming.
    pub async fn start(
        processor: Processor,
        config: SchedulerConfig,
    ) -> Result<Self, PipelineError> {
        let name = processor.name().to_string();
        let records = Records::new(config.store.clone(), &name);
        let framework_id = records.framework_id().await?;
        let recovered = records.load().await?;
        let group = format!("brigade-{name}");
        let start = records.committed(processor.input()).await?;
        let consumer = {
            let (kafka, group, topic) = (
                config.kafka.clone(),
                group.clone(),
                processor.input().to_string(),
            );
            tokio::task::spawn_blocking(move || InputConsumer::new(&kafka, &group, &topic, &start))
                .await
                .map_err(|e| PipelineError::Config(format!("consumer start: {e}")))??
        };
        let consumer = Arc::new(consumer);
        let producer = ResultProducer::new(&config.kafka)?;
        let client = Client::builder().endpoint(config.master.as_str()).build()?;
        let mut framework = FrameworkInfoBuilder::new(config.user.clone(), group.clone())
            .roles([config.role.clone()])
            .failover_timeout(config.failover_timeout)
            .checkpoint(true);
        if let Some(id) = &framework_id {
            framework = framework.id(id.clone());
        }
        let mut builder = Scheduler::builder(client, framework.build()).ack_mode(AckMode::Explicit);
        if let Some(interval) = config.heartbeat_interval {
            builder = builder.heartbeat_interval(interval);
        }
        let (scheduler, events) = builder.start();
        let counters = Arc::new(Counters::default());
        let (stop, stop_rx) = watch::channel(false);
        let (drain, drain_rx) = watch::channel(false);
        let runner = Runner::new(
            processor,
            config,
            scheduler,
            consumer,
            producer,
            records,
            counters.clone(),
            recovered,
        );
        tracing::info!(processor = %name, framework_id = ?framework_id, "process scheduler starting");
        let join = tokio::spawn(runner.run(events, stop_rx, drain_rx));
        Ok(Self {
            name,
            stop,
            drain,
            join,
            counters,
        })
    }

    /// The processor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The counters now.
    pub fn counters(&self) -> CountersSnapshot {
        self.counters.snapshot()
    }

    /// Whether the event loop has ended (stopped, or failed for good).
    pub fn is_finished(&self) -> bool {
        self.join.is_finished()
    }

    /// Stops consuming and disconnects the framework; tasks keep running, and their results are
    /// recovered by the next start (the framework id and task records stay in the store).
    pub async fn stop(self) -> Result<(), PipelineError> {
        let _ = self.stop.send(true);
        match self.join.await {
            Ok(result) => result,
            Err(e) => Err(PipelineError::Config(format!("event loop panicked: {e}"))),
        }
    }

    /// Drains, then stops: consumes no new message, lets every message already consumed get
    /// its output or error record (and its offset committed), then stops as [`stop`](Self::stop)
    /// does. After `timeout` it stops anyway (what is still in flight is recovered by the next
    /// start, as after [`stop`](Self::stop)).
    /// Returns the final counters beside the outcome.
    pub async fn drain_and_stop(
        mut self,
        timeout: Duration,
    ) -> (CountersSnapshot, Result<(), PipelineError>) {
        let counters = self.counters.clone();
        let _ = self.drain.send(true);
        let result = match tokio::time::timeout(timeout, &mut self.join).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(PipelineError::Config(format!("event loop panicked: {e}"))),
            Err(_) => {
                tracing::warn!(processor = %self.name, ?timeout, "drain timed out; stopping");
                self.stop().await
            }
        };
        (counters.snapshot(), result)
    }
}

/// A message waiting for an offer.
#[derive(Debug)]
struct Attempt {
    msg: Arc<InputMessage>,
    attempt: u32,
    not_before: Instant,
}

/// A launched task.
#[derive(Debug)]
struct Running {
    record: TaskRecord,
    /// The message; `None` for a task recovered from the store whose message has not been
    /// consumed again yet.
    msg: Option<Arc<InputMessage>>,
    launched_at: Instant,
    kill_sent: bool,
}

/// A produce that finished (its record is acknowledged by Kafka and marked produced).
struct Produced {
    record: TaskRecord,
    kind: ResultKind,
    token: Option<AckToken>,
}

type Key = (String, i32, i64);

fn key_of(topic: &str, partition: i32, offset: i64) -> Key {
    (topic.to_string(), partition, offset)
}

struct Runner {
    processor: Arc<Processor>,
    config: SchedulerConfig,
    scheduler: Scheduler,
    consumer: Arc<InputConsumer>,
    producer: ResultProducer,
    records: Records,
    counters: Arc<Counters>,
    tracker: OffsetTracker,
    pending: VecDeque<Attempt>,
    running: HashMap<String, Running>,
    by_offset: HashMap<Key, String>,
    /// Messages whose record is produced but which were not consumed (again) yet.
    finished: HashSet<Key>,
    /// Tasks whose record is produced (their updates are only acknowledged).
    produced_tasks: HashSet<String>,
    /// Tasks whose record is being produced (resent updates wait: the agent resends them).
    producing_tasks: HashSet<String>,
    /// Produced tasks waiting for their offset to be committed, then deleted from the store.
    done: Vec<(Key, String)>,
    /// Tasks whose record was "producing" when this incarnation started (maybe in Kafka).
    maybe_produced: HashSet<String>,
    producing: JoinSet<Produced>,
    paused: bool,
    suppressed: bool,
    filtered: bool,
    revive_bucket: TokenBucket,
    /// Offers kept while every slot is taken and messages wait: launched on as soon as a task
    /// ends, instead of declining them and waiting for a REVIVE.
    held: Vec<Offer>,
    stopping: bool,
}

impl Runner {
    #[allow(clippy::too_many_arguments)]
    fn new(
        processor: Processor,
        config: SchedulerConfig,
        scheduler: Scheduler,
        consumer: Arc<InputConsumer>,
        producer: ResultProducer,
        records: Records,
        counters: Arc<Counters>,
        recovered: Vec<TaskRecord>,
    ) -> Self {
        let revive_bucket = TokenBucket::new(3, config.revive_interval);
        let mut runner = Self {
            processor: Arc::new(processor),
            config,
            scheduler,
            consumer,
            producer,
            records,
            counters,
            tracker: OffsetTracker::new(),
            pending: VecDeque::new(),
            running: HashMap::new(),
            by_offset: HashMap::new(),
            finished: HashSet::new(),
            produced_tasks: HashSet::new(),
            producing_tasks: HashSet::new(),
            done: Vec::new(),
            maybe_produced: HashSet::new(),
            producing: JoinSet::new(),
            paused: false,
            suppressed: false,
            filtered: false,
            revive_bucket,
            stopping: false,
            held: Vec::new(),
        };
        for record in recovered {
            let key = key_of(&record.topic, record.partition, record.offset);
            match record.stage {
                Stage::Produced => {
                    runner.finished.insert(key.clone());
                    runner.produced_tasks.insert(record.task_id.clone());
                    runner.done.push((key, record.task_id.clone()));
                }
                Stage::Launched | Stage::Producing => {
                    if record.stage == Stage::Producing {
                        runner.maybe_produced.insert(record.task_id.clone());
                    }
                    runner.by_offset.insert(key, record.task_id.clone());
                    runner.running.insert(
                        record.task_id.clone(),
                        Running {
                            record,
                            msg: None,
                            launched_at: Instant::now(),
                            kill_sent: false,
                        },
                    );
                }
            }
        }
        if !runner.running.is_empty() || !runner.done.is_empty() {
            tracing::info!(
                processor = %runner.processor.name(),
                running = runner.running.len(),
                produced = runner.done.len(),
                "recovered task records"
            );
        }
        runner
    }

    fn name(&self) -> &str {
        self.processor.name()
    }

    fn max_in_flight(&self) -> usize {
        (self.processor.max_in_flight() as usize).max(1)
    }

    /// Messages consumed and not completed.
    fn open(&self) -> usize {
        self.tracker.open()
    }

    fn tasks(&self) -> usize {
        self.pending.len() + self.running.len()
    }

    async fn run(
        mut self,
        mut events: SchedulerEvents,
        mut stop: watch::Receiver<bool>,
        mut drain: watch::Receiver<bool>,
    ) -> Result<(), PipelineError> {
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let consumer = self.consumer.clone();
        let result = loop {
            let draining = *drain.borrow();
            if draining && self.open() == 0 && self.producing.is_empty() {
                break Ok(());
            }
            let want = !self.stopping && !draining && self.open() < self.max_in_flight();
            self.back_pressure(want);
            tokio::select! {
                biased;
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break Ok(());
                    }
                }
                changed = drain.changed(), if !draining => {
                    if changed.is_err() {
                        break Ok(());
                    }
                }
                Some(done) = self.producing.join_next(), if !self.producing.is_empty() => {
                    match done {
                        Ok(done) => self.on_produced(done),
                        Err(e) => break Err(PipelineError::Config(format!("produce task: {e}"))),
                    }
                }
                event = events.next() => {
                    match event {
                        Some(event) => {
                            if let Err(e) = self.on_event(event).await {
                                break Err(e);
                            }
                        }
                        None => break Ok(()),
                    }
                }
                msg = consumer.recv(), if want => {
                    match msg {
                        Ok(msg) => self.on_message(msg),
                        Err(e) => tracing::warn!(processor = %self.name(), error = %e, "consumer"),
                    }
                }
                _ = tick.tick() => self.on_tick().await,
            }
            self.counters
                .set_in_flight(self.open() as u64, self.tasks() as u64);
        };
        self.stopping = true;
        self.commit().await;
        self.scheduler.stop();
        tracing::info!(processor = %self.name(), "process scheduler stopped");
        result
    }

    fn back_pressure(&mut self, want: bool) {
        if want != self.paused {
            return;
        }
        let result = if want {
            self.consumer.resume()
        } else {
            self.consumer.pause()
        };
        match result {
            Ok(()) => self.paused = !want,
            Err(e) => tracing::debug!(processor = %self.name(), error = %e, "pause/resume"),
        }
    }

    fn on_message(&mut self, msg: InputMessage) {
        self.counters.consumed();
        let tp = TopicPartition::new(msg.topic.clone(), msg.partition);
        if !self.tracker.consumed(&tp, msg.offset) {
            tracing::debug!(offset = msg.offset, "message delivered again; already seen");
            return;
        }
        let key = key_of(&msg.topic, msg.partition, msg.offset);
        if self.finished.remove(&key) {
            self.tracker.completed(&tp, msg.offset);
            return;
        }
        let msg = Arc::new(msg);
        if let Some(task_id) = self.by_offset.get(&key) {
            if let Some(running) = self.running.get_mut(task_id) {
                running.msg = Some(msg);
                return;
            }
        }
        self.pending.push_back(Attempt {
            msg,
            attempt: 1,
            not_before: Instant::now(),
        });
        self.etiquette();
    }

    async fn on_event(&mut self, event: SchedulerEvent) -> Result<(), PipelineError> {
        match event {
            SchedulerEvent::Connected { framework_id, .. } => {
                tracing::info!(processor = %self.name(), framework_id = %framework_id.value, "subscribed");
                self.records.set_framework_id(&framework_id.value).await?;
                self.reconcile().await;
                if self.suppressed {
                    let _ = self
                        .scheduler
                        .call(calls::suppress(vec![self.config.role.clone()]))
                        .await;
                }
                self.etiquette();
            }
            SchedulerEvent::Offers(offers) => self.on_offers(offers).await?,
            SchedulerEvent::Update { status, ack } => {
                self.on_update(*status, ack).await;
                self.launch_held().await?;
            }
            SchedulerEvent::Rescind(offer_id) => self.held.retain(|o| o.id != offer_id),
            SchedulerEvent::OffersInvalidated { .. } => self.held.clear(),
            SchedulerEvent::Failure {
                agent_id,
                executor_id,
                status,
            } => {
                tracing::debug!(?agent_id, ?executor_id, ?status, "failure");
            }
            SchedulerEvent::Error(message) => {
                tracing::warn!(processor = %self.name(), %message, "master error");
            }
            SchedulerEvent::Disconnected { reason } => {
                tracing::warn!(processor = %self.name(), %reason, "disconnected; resubscribing");
            }
            SchedulerEvent::Terminated(why) => {
                if matches!(
                    why,
                    mesos_sdk::scheduler::Termination::FrameworkRemoved { .. }
                ) {
                    self.records.clear_framework_id().await?;
                }
                return Err(PipelineError::Scheduler(
                    mesos_sdk::scheduler::SchedulerError::Terminated(why),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    async fn reconcile(&mut self) {
        let tasks: Vec<(TaskId, Option<AgentId>)> = self
            .running
            .values()
            .map(|r| {
                (
                    TaskId {
                        value: r.record.task_id.clone(),
                    },
                    r.record.agent_id.clone().map(|value| AgentId { value }),
                )
            })
            .collect();
        if !tasks.is_empty() {
            if let Err(e) = self.scheduler.reconcile(tasks).await {
                tracing::warn!(error = %e, "explicit reconciliation");
            }
        }
        if let Err(e) = self.scheduler.reconcile_all().await {
            tracing::warn!(error = %e, "implicit reconciliation");
        }
    }

    /// SUPPRESS when idle, REVIVE (rate-limited) when messages wait and offers are suppressed or
    /// filtered.
    fn etiquette(&mut self) {
        let now = Instant::now();
        let ready = self.pending.iter().any(|a| a.not_before <= now);
        let role = vec![self.config.role.clone()];
        if !ready && self.pending.is_empty() && self.running.is_empty() && !self.suppressed {
            self.suppressed = true;
            self.send(calls::suppress(role));
        } else if ready && (self.suppressed || self.filtered) && self.revive_bucket.try_take(now) {
            self.suppressed = false;
            self.filtered = false;
            self.send(calls::revive(role));
        }
    }

    /// Sends a call without waiting for the answer.
    fn send(&self, call: v1::scheduler::Call) {
        let scheduler = self.scheduler.clone();
        tokio::spawn(async move {
            if let Err(e) = scheduler.call(call).await {
                tracing::debug!(error = %e, "call failed");
            }
        });
    }

    async fn on_offers(&mut self, offers: Vec<Offer>) -> Result<(), PipelineError> {
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
    async fn launch_held(&mut self) -> Result<(), PipelineError> {
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

    fn record_for(
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

    fn acknowledge(&self, token: Option<AckToken>) {
        if let Some(token) = token {
            let scheduler = self.scheduler.clone();
            tokio::spawn(async move {
                if let Err(e) = scheduler.acknowledge(token).await {
                    tracing::debug!(error = %e, "acknowledgement failed; the agent resends");
                }
            });
        }
    }

    async fn on_update(&mut self, status: TaskStatus, ack: Option<AckToken>) {
        let task_id = status.task_id.value.clone();
        let state = status.state();
        let Some(outcome) = protocol::outcome(&status) else {
            // Not terminal.
            if let Some(running) = self.running.get_mut(&task_id) {
                if running.record.agent_id.is_none() {
                    running.record.agent_id = status.agent_id.as_ref().map(|a| a.value.clone());
                }
            } else if !self.produced_tasks.contains(&task_id) && !self.stopping {
                // A live task this scheduler does not know (its record is gone): kill it.
                tracing::info!(task = %task_id, ?state, "killing an unknown task");
                self.send(calls::kill(
                    status.task_id.clone(),
                    status.agent_id.clone(),
                    None,
                ));
            }
            self.acknowledge(ack);
            return;
        };
        if self.produced_tasks.contains(&task_id) {
            self.acknowledge(ack);
            return;
        }
        if self.producing_tasks.contains(&task_id) {
            // A resend while its record is being produced: not acknowledged before the record.
            return;
        }
        let from_reconciliation =
            ack.is_none() && status.reason() == v1::task_status::Reason::Reconciliation;
        if from_reconciliation && state == TaskState::TaskFinished {
            // The master's answer carries no output; the agent resends the real update.
            return;
        }
        let Some(running) = self.running.remove(&task_id) else {
            self.acknowledge(ack);
            return;
        };
        let record = running.record;
        let key = key_of(&record.topic, record.partition, record.offset);
        self.by_offset.remove(&key);
        match outcome {
            Outcome::Output(output) => {
                self.start_produce(record, ResultKind::Output(output), ack);
            }
            Outcome::Failed { reason } => {
                // Failures of the infrastructure (executor lost, agent gone, ...) are not the
                // processor's: they get extra attempts beyond the processor's own retries.
                let infrastructure = protocol::failure_cause(&status)
                    == Some(protocol::FailureCause::Infrastructure);
                let retries = self.processor.retries()
                    + if infrastructure {
                        self.config.infrastructure_retries
                    } else {
                        0
                    };
                if record.attempt <= retries {
                    self.counters.retries();
                    let backoff = self.processor.backoff_for(record.attempt);
                    tracing::info!(task = %task_id, attempt = record.attempt, ?backoff, %reason, "task failed; retrying");
                    let records = self.records.clone();
                    let id = record.task_id.clone();
                    match running.msg {
                        Some(msg) => {
                            self.pending.push_back(Attempt {
                                msg,
                                attempt: record.attempt + 1,
                                not_before: Instant::now() + backoff,
                            });
                        }
                        None => {
                            // Not consumed again yet: it launches when it is.
                        }
                    }
                    let token = ack;
                    let scheduler = self.scheduler.clone();
                    tokio::spawn(async move {
                        let _ = records.delete_all(&[id]).await;
                        if let Some(token) = token {
                            let _ = scheduler.acknowledge(token).await;
                        }
                    });
                    self.etiquette();
                } else {
                    self.start_produce(record, ResultKind::Error(reason), ack);
                }
            }
        }
    }

    /// Produces the record of a finished message in the background: marks it producing,
    /// produces, marks it produced (retrying each step until it succeeds or the scheduler stops).
    fn start_produce(&mut self, record: TaskRecord, kind: ResultKind, token: Option<AckToken>) {
        if self.maybe_produced.remove(&record.task_id) {
            self.counters.duplicates();
            tracing::warn!(
                processor = %self.name(),
                offset = record.offset,
                partition = record.partition,
                "a record that may already be in Kafka is produced again (duplicate)"
            );
        }
        self.producing_tasks.insert(record.task_id.clone());
        let processor = self.processor.clone();
        let producer = self.producer.clone();
        let records = self.records.clone();
        self.producing.spawn(async move {
            let mut record = record;
            record.stage = Stage::Producing;
            retry_forever("marking producing", || records.put(&record)).await;
            let msg = InputMessage {
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                key: record.key.clone(),
                payload: Vec::new(),
            };
            let source = Source {
                processor: processor.name(),
                message: &msg,
                attempts: record.attempt,
            };
            match &kind {
                ResultKind::Output(output) => {
                    if let Some(topic) = processor.output() {
                        retry_forever("producing output", || {
                            producer.produce_output(topic, &source, output)
                        })
                        .await;
                    }
                }
                ResultKind::Error(reason) => {
                    retry_forever("producing error", || {
                        producer.produce_error(processor.error(), &source, reason)
                    })
                    .await;
                }
            }
            record.stage = Stage::Produced;
            retry_forever("marking produced", || records.put(&record)).await;
            Produced {
                record,
                kind,
                token,
            }
        });
    }

    fn on_produced(&mut self, done: Produced) {
        let Produced {
            record,
            kind,
            token,
        } = done;
        self.acknowledge(token);
        match &kind {
            ResultKind::Output(_) => self.counters.outputs(),
            ResultKind::Error(_) => self.counters.errors(),
        }
        let tp = TopicPartition::new(record.topic.clone(), record.partition);
        let key = key_of(&record.topic, record.partition, record.offset);
        if !self.tracker.completed(&tp, record.offset) {
            // Recovered from an earlier incarnation; not consumed again yet.
            self.counters.recovered();
            self.finished.insert(key.clone());
        }
        self.producing_tasks.remove(&record.task_id);
        self.produced_tasks.insert(record.task_id.clone());
        self.done.push((key, record.task_id.clone()));
        if let Some(results) = &self.config.results {
            let _ = results.send(ResultEvent {
                processor: self.processor.name().to_string(),
                topic: record.topic.clone(),
                partition: record.partition,
                offset: record.offset,
                attempts: record.attempt,
                kind,
            });
        }
        self.etiquette();
    }

    async fn on_tick(&mut self) {
        self.commit().await;
        if let Err(e) = self.launch_held().await {
            tracing::warn!(error = %e, "launching on held offers");
        }
        self.etiquette();
        // Tasks far past their timeout are killed (the executor should have ended them).
        let limit = self.processor.timeout() + self.config.kill_grace;
        let now = Instant::now();
        let overdue: Vec<(TaskId, Option<AgentId>)> = self
            .running
            .values_mut()
            .filter(|r| !r.kill_sent && now.duration_since(r.launched_at) > limit)
            .map(|r| {
                r.kill_sent = true;
                (
                    TaskId {
                        value: r.record.task_id.clone(),
                    },
                    r.record.agent_id.clone().map(|value| AgentId { value }),
                )
            })
            .collect();
        for (task_id, agent_id) in overdue {
            tracing::warn!(task = %task_id.value, "task overdue; killing it");
            self.send(calls::kill(task_id, agent_id, None));
        }
    }

    /// Commits what the tracker allows, then deletes the records of committed messages.
    async fn commit(&mut self) {
        let offsets = self.tracker.committable();
        if offsets.is_empty() {
            return;
        }
        let consumer = self.consumer.clone();
        let list = offsets.clone();
        let committed = tokio::task::spawn_blocking(move || consumer.commit_sync(&list)).await;
        match committed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "commit failed; retrying later");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "commit task failed");
                return;
            }
        }
        for (tp, offset) in &offsets {
            // The store's copy of the position: a restart starts there even if the group's
            // committed offset were older, so records deleted below never come back.
            if let Err(e) = self
                .records
                .set_committed(&tp.topic, tp.partition, *offset)
                .await
            {
                tracing::warn!(error = %e, "recording the committed offset failed; retrying later");
                return;
            }
            self.tracker.mark_committed(tp, *offset);
        }
        let mut delete = Vec::new();
        self.done.retain(|((topic, partition, offset), task_id)| {
            let committed = offsets
                .iter()
                .any(|(tp, c)| &tp.topic == topic && tp.partition == *partition && offset < c);
            if committed {
                delete.push(task_id.clone());
            }
            !committed
        });
        if !delete.is_empty() {
            for id in &delete {
                self.produced_tasks.remove(id);
            }
            let records = self.records.clone();
            tokio::spawn(async move {
                if let Err(e) = records.delete_all(&delete).await {
                    tracing::debug!(error = %e, "deleting committed task records");
                }
            });
        }
    }
}

/// Runs `step` until it succeeds, waiting a little longer after each failure (at most 5 s).
async fn retry_forever<T, E, F, Fut>(what: &str, mut step: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut wait = Duration::from_millis(100);
    loop {
        match step().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, "{what} failed; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}
