//! One process scheduler: the event loop that ties the input consumer, the Mesos scheduler
//! runtime (explicit acknowledgements), the offers, the store records and the result producer
//! together for one processor.
//!
//! A message's life: consumed → pending → launched on an offer (task record written first) →
//! terminal update → its output (or, after the retries, its error) record produced and
//! acknowledged by Kafka, its produce batch recorded as producing, then produced (one store
//! write per batch and stage, see [`super::record`]) → status update acknowledged → input
//! offset committed once everything before it is done → task record and batch deleted.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use mesos_sdk::client::Client;
use mesos_sdk::resourcemgr::etiquette::TokenBucket;
use mesos_sdk::resourcemgr::placement::{Placer, PlacerConfig};
use mesos_sdk::scheduler::{
    AckMode, AckToken, FrameworkInfoBuilder, Scheduler, SchedulerEvent, SchedulerEvents, calls,
};
use mesos_sdk::v1::{self, AgentId, Offer, TaskId};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

mod executors;
mod offers;
mod reachability;
mod results;
mod warm;

pub use executors::{EXECUTOR_IDLE_ENV, self_stop_after};

use super::counters::{Counters, CountersSnapshot};
use super::latency::LatencySnapshot;
use super::record::{Records, Recovered, Span, Stage, TaskRecord};
use super::{PipelineError, SchedulerConfig};
use crate::kafka::{InputConsumer, OffsetTracker, ResultProducer};
use crate::processor::Processor;
use crate::protocol::InputMessage;

/// How long consumption is held back at `max_in_flight` before the input partitions are
/// paused (see [`Runner::back_pressure`]).
const PAUSE_AFTER: Duration = Duration::from_secs(5);

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
        let producer = ResultProducer::new(&config.kafka)?;
        // The producer connects while the consumer starts (see `ResultProducer::connect`).
        let connecting = {
            let producer = producer.clone();
            let topics: Vec<String> = processor
                .output()
                .into_iter()
                .chain([processor.error()])
                .map(str::to_string)
                .collect();
            tokio::task::spawn_blocking(move || producer.connect(&topics, Duration::from_secs(15)))
        };
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
        match connecting.await {
            Ok(Ok(missing)) if missing.is_empty() => {}
            Ok(Ok(missing)) => tracing::warn!(
                processor = %name,
                topics = ?missing,
                "the cluster does not know these topics yet; their records wait until they exist"
            ),
            Ok(Err(e)) => tracing::warn!(processor = %name, error = %e, "result producer"),
            Err(e) => tracing::warn!(processor = %name, error = %e, "result producer start"),
        }
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

    /// The task latency log now.
    pub fn latency(&self) -> LatencySnapshot {
        self.counters.latency()
    }

    /// The placer's reason for a message left unplaced, while none was placed since.
    pub fn unplaced(&self) -> Option<String> {
        self.counters.unplaced()
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
    /// Whether the master reports it unreachable, and since when.
    reachability: reachability::Reachability,
}

/// A produce that finished (its record is acknowledged by Kafka and marked produced).
struct Produced {
    record: TaskRecord,
    /// Whether it has a task and a `tasks/` record of its own (per-message tasks, records
    /// recovered from an earlier incarnation): its resent status updates are recognized and
    /// its record is deleted once its offset is committed. A fresh warm item has neither,
    /// only its batch.
    task_key: bool,
    /// When its task was launched (by this incarnation), for the latency.
    started: Option<Instant>,
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
    /// DECLINE, SUPPRESS and REVIVE, sent one after the other (see [`Runner::send_in_order`]).
    offer_calls: mpsc::UnboundedSender<v1::scheduler::Call>,
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
    /// Produced tasks waiting for their offset to be committed, then their `tasks/` records
    /// are deleted.
    done: Vec<(Key, String)>,
    /// Result batches in the store, deleted once the committed offsets (the tracker's) pass
    /// their span.
    batches: HashMap<String, Span>,
    /// Tasks whose record was "producing" when this incarnation started (maybe in Kafka).
    maybe_produced: HashSet<String>,
    producing: JoinSet<Vec<Produced>>,
    paused: bool,
    /// Since when consumption has been held back by `max_in_flight` (see
    /// [`Runner::back_pressure`]).
    held_since: Option<Instant>,
    suppressed: bool,
    filtered: bool,
    revive_bucket: TokenBucket,
    /// Offers kept while every slot is taken and messages wait: launched on as soon as a task
    /// ends, instead of declining them and waiting for a REVIVE.
    held: Vec<Offer>,
    stopping: bool,
    /// The resource manager's placer (constraints, preferences; its ledger knows what runs
    /// where).
    placer: Placer,
    /// The shared executor of each agent (per-message tasks reuse it).
    executors: executors::Executors,
    /// Warm mode's workers and queue (`None` in per-message mode); see `warm`.
    warm: Option<warm::Warm>,
    /// When the last reconciliation was asked for (see
    /// [`SchedulerConfig::reconcile_interval`]).
    reconciled_at: Instant,
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
        recovered: Recovered,
    ) -> Self {
        let revive_bucket = TokenBucket::new(3, config.revive_interval);
        let offer_calls = spawn_ordered_sender(scheduler.clone());
        let mut runner = Self {
            processor: Arc::new(processor),
            config,
            scheduler,
            offer_calls,
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
            batches: recovered.batches.into_iter().collect(),
            maybe_produced: HashSet::new(),
            producing: JoinSet::new(),
            paused: false,
            held_since: None,
            suppressed: false,
            filtered: false,
            revive_bucket,
            stopping: false,
            held: Vec::new(),
            placer: Placer::new(PlacerConfig::default()),
            executors: executors::Executors::default(),
            warm: None,
            reconciled_at: Instant::now(),
        };
        for record in recovered.tasks {
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
                            reachability: Default::default(),
                        },
                    );
                }
            }
        }
        if runner.processor.mode() == crate::processor::Mode::Warm {
            runner.init_warm();
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

    /// Whether to take more messages: below `max_in_flight`; once held back there, not again
    /// before a quarter of it has completed, so that messages are taken (and launched, or sent
    /// to the warm workers) in batches rather than one per completion.
    fn room(&self) -> bool {
        let max = self.max_in_flight();
        let open = self.open();
        if self.held_since.is_some() {
            open <= max - max.div_ceil(4)
        } else {
            open < max
        }
    }

    /// Messages consumed and not completed.
    fn open(&self) -> usize {
        self.tracker.open()
    }

    fn tasks(&self) -> usize {
        self.pending.len() + self.running.len() + self.warm.as_ref().map_or(0, warm::Warm::tasks)
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
            let want = !self.stopping && !draining && self.room();
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
                        Ok(done) => {
                            for one in done {
                                self.on_produced(one);
                            }
                        }
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
                        Ok(msg) => {
                            self.on_message(msg);
                            if self.warm.is_some() {
                                // Every message ready now goes out in one batch per worker.
                                while self.open() < self.max_in_flight() {
                                    match consumer.recv().now_or_never() {
                                        Some(Ok(msg)) => self.on_message(msg),
                                        Some(Err(e)) => {
                                            tracing::warn!(processor = %self.name(), error = %e, "consumer");
                                            break;
                                        }
                                        None => break,
                                    }
                                }
                                self.warm_dispatch();
                            }
                        }
                        Err(e) => tracing::warn!(processor = %self.name(), error = %e, "consumer"),
                    }
                }
                _ = tick.tick() => {
                    self.on_tick().await;
                    self.warm_tick();
                }
            }
            self.counters
                .set_in_flight(self.open() as u64, self.tasks() as u64);
        };
        self.stopping = true;
        self.commit().await;
        self.warm_stop().await;
        self.scheduler.stop();
        tracing::info!(processor = %self.name(), "process scheduler stopped");
        result
    }

    /// Holds consumption back while `max_in_flight` messages are open: the event loop stops
    /// taking messages at once, and pauses the input partitions only once held back for
    /// [`PAUSE_AFTER`]. Pausing drops librdkafka's prefetched messages and resuming fetches
    /// them again: done at every completion, it cost a streaming warm pipeline five sixths of
    /// its throughput (2.7k instead of 15.5k messages/s in the throughput example). Until the
    /// pause, librdkafka's own bounded prefetch (`queued.max.messages.kbytes`) is the only
    /// buffer.
    fn back_pressure(&mut self, want: bool) {
        if want {
            self.held_since = None;
        } else if self.held_since.is_none() {
            self.held_since = Some(Instant::now());
        }
        let pause = !want
            && self
                .held_since
                .is_some_and(|since| since.elapsed() >= PAUSE_AFTER);
        if pause == self.paused {
            return;
        }
        let result = if pause {
            self.consumer.pause()
        } else {
            self.consumer.resume()
        };
        match result {
            Ok(()) => self.paused = pause,
            Err(e) => tracing::debug!(processor = %self.name(), error = %e, "pause/resume"),
        }
    }

    fn on_message(&mut self, msg: InputMessage) {
        self.counters.consumed();
        if !self
            .tracker
            .consumed_at(&msg.topic, msg.partition, msg.offset)
        {
            tracing::debug!(offset = msg.offset, "message delivered again; already seen");
            return;
        }
        if !self.finished.is_empty()
            && self
                .finished
                .remove(&key_of(&msg.topic, msg.partition, msg.offset))
        {
            self.tracker
                .completed_at(&msg.topic, msg.partition, msg.offset);
            return;
        }
        let msg = Arc::new(msg);
        if self.warm.is_some() {
            self.warm_message(msg);
            return;
        }
        let key = key_of(&msg.topic, msg.partition, msg.offset);
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
                    self.send_in_order(calls::suppress(vec![self.config.role.clone()]));
                }
                self.etiquette();
            }
            SchedulerEvent::Offers(offers) if self.warm.is_some() => {
                self.warm_offers(offers).await?;
            }
            SchedulerEvent::Offers(offers) => self.on_offers(offers).await?,
            SchedulerEvent::Update { status, ack } => {
                // A warm worker's update is handled by warm mode; others come back.
                if let Some(ack) = self.warm_update(&status, ack) {
                    self.on_update(*status, ack).await;
                    self.launch_held().await?;
                }
            }
            SchedulerEvent::Message {
                executor_id, data, ..
            } if self.warm.is_some() => self.warm_executor_message(&executor_id, &data),
            SchedulerEvent::Rescind(offer_id) => self.held.retain(|o| o.id != offer_id),
            SchedulerEvent::OffersInvalidated { .. } => self.held.clear(),
            SchedulerEvent::Failure {
                agent_id,
                executor_id,
                status,
            } => {
                tracing::debug!(?agent_id, ?executor_id, ?status, "failure");
                match (executor_id, agent_id) {
                    (Some(executor_id), _) => self.executors.forget_executor(&executor_id),
                    (None, Some(agent_id)) => {
                        self.executors.forget_agent(&agent_id.value);
                    }
                    (None, None) => {}
                }
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
        self.reconciled_at = Instant::now();
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
        if self.warm.is_some() {
            self.warm_etiquette();
            return;
        }
        let now = Instant::now();
        let ready = self.pending.iter().any(|a| a.not_before <= now);
        let role = vec![self.config.role.clone()];
        if !ready && self.pending.is_empty() && self.running.is_empty() && !self.suppressed {
            self.suppressed = true;
            self.send_in_order(calls::suppress(role));
        } else if ready && (self.suppressed || self.filtered) && self.revive_bucket.try_take(now) {
            self.suppressed = false;
            self.filtered = false;
            self.send_in_order(calls::revive(role));
        }
    }

    /// Sends an offer-etiquette call (DECLINE, SUPPRESS, REVIVE) without waiting for the
    /// answer, after those sent before it. Calls sent by [`Runner::send`] each go on their own
    /// and can reach the master in any order: a SUPPRESS overtaken by the REVIVE that followed
    /// it would leave the framework suppressed while it believes it revived, and a DECLINE
    /// filter overtaking a REVIVE would hold back the offers the REVIVE asked for.
    fn send_in_order(&self, call: v1::scheduler::Call) {
        if self.offer_calls.send(call).is_err() {
            tracing::debug!(processor = %self.name(), "offer-call sender gone");
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
}

/// The task that sends a runner's offer-etiquette calls one at a time, in the order given; it
/// ends when the runner (the sender) is dropped.
fn spawn_ordered_sender(scheduler: Scheduler) -> mpsc::UnboundedSender<v1::scheduler::Call> {
    let (tx, mut rx) = mpsc::unbounded_channel::<v1::scheduler::Call>();
    tokio::spawn(async move {
        while let Some(call) = rx.recv().await {
            if let Err(e) = scheduler.call(call).await {
                tracing::debug!(error = %e, "offer call failed");
            }
        }
    });
    tx
}
