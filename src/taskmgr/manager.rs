//! The task manager: the specs and every instance's [`TaskRecord`], kept in memory and written
//! ahead to a [`Store`] (JSON under the framework's namespace: `specs/<name>`,
//! `tasks/<spec>/<index>`), reloaded on start. It decides restarts (policy, capped exponential
//! backoff, retry budget), takes kills and scale changes from the user, answers queries and
//! publishes every change as a [`Stream`].
//!
//! It sends no calls itself: kills wait in an outbox ([`TaskManager::take_kills`]) and new work
//! wakes [`TaskManager::work_arrived`]; the framework's event loop sends them. Every write goes
//! through the store it was given, so a fenced store (HA) fences the manager too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify, broadcast};

use super::record::{Ending, Phase, TaskRecord, Transition, parse_task_id};
use super::spec::{RestartMode, SpecErrors, TaskSpec};

use crate::storage::{self, Namespace, Op, RangeRequest, Store, decode_json, encode_json};
use crate::v1::{TaskState, TaskStatus};

mod queries;
mod writes;

/// Errors of the task manager.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The store failed (or refused a fenced write).
    #[error("task store: {0}")]
    Store(#[from] storage::Error),
    /// The spec does not validate.
    #[error("invalid task spec:\n{0}")]
    Invalid(#[from] SpecErrors),
    /// No spec of this name.
    #[error("no task spec named {0:?}")]
    UnknownSpec(String),
    /// No instance runs under this task id.
    #[error("no task with id {0:?}")]
    UnknownTask(String),
}

/// A stored spec with its version (bumped by every [`TaskManager::add`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSpec {
    /// The version.
    pub version: u64,
    /// The spec.
    pub spec: TaskSpec,
}

/// What the user (or the controller's callbacks) decides when an instance ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Follow the spec's restart policy (never / on failure / always).
    PerPolicy,
    /// Restart whatever the policy's mode says (the retry budget and backoff still apply).
    Restart,
    /// Do not restart.
    Stop,
}

/// A launch about to be sent: written ahead before ACCEPT.
#[derive(Debug, Clone)]
pub struct LaunchIntent {
    /// The spec.
    pub spec: String,
    /// The instance.
    pub index: u32,
    /// The new task id.
    pub task_id: String,
    /// The agent of the offer.
    pub agent_id: String,
    /// The offer.
    pub offer_id: String,
    /// The spec version launched.
    pub spec_version: u64,
}

/// What recording a status update found.
#[derive(Debug, Clone)]
pub enum StatusOutcome {
    /// The update moved one of our instances (the record after the update).
    Known {
        /// The record after the update.
        record: Box<TaskRecord>,
        /// What the update did.
        transition: Transition,
    },
    /// The store knows no instance with this task id.
    Unknown,
}

/// Counts of instances per phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Pending.
    pub pending: usize,
    /// Launching.
    pub launching: usize,
    /// Active.
    pub active: usize,
    /// Killing.
    pub killing: usize,
    /// Done.
    pub done: usize,
    /// Given up.
    pub given_up: usize,
}

#[derive(Debug, Default)]
struct State {
    specs: BTreeMap<String, StoredSpec>,
    records: BTreeMap<(String, u32), TaskRecord>,
    /// Current task id → instance.
    by_task: HashMap<String, (String, u32)>,
    /// Kills to send: task id, agent id.
    kills: Vec<(String, Option<String>)>,
    /// Pending reasons from placement (memory only).
    reasons: HashMap<(String, u32), String>,
    /// Record writes held back for one transaction (see [`TaskManager::begin_batch`]).
    batch: Option<Vec<Op>>,
}

#[derive(Debug)]
struct Shared {
    store: Arc<dyn Store>,
    namespace: Namespace,
    state: Mutex<State>,
    changes: broadcast::Sender<TaskRecord>,
    work: Notify,
}

/// The task manager; cheap to clone (all clones share one state).
#[derive(Debug, Clone)]
pub struct TaskManager {
    shared: Arc<Shared>,
}

/// Most operations in one store transaction.
const MAX_TXN_OPS: usize = 64;

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The restart delay before restart number `restart` (1-based): `min * 2^(restart-1)`, capped.
pub fn restart_backoff(min: Duration, max: Duration, restart: u32) -> Duration {
    let factor = 1u32
        .checked_shl(restart.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max)
}

impl TaskManager {
    /// Loads the specs and records stored under `namespace` (none on a fresh store).
    pub async fn load(store: Arc<dyn Store>, namespace: Namespace) -> Result<Self, TaskError> {
        let mut state = State::default();
        for kv in range_all(&*store, &namespace.key("specs/")).await? {
            let stored: StoredSpec = decode_json(&kv)?;
            state.specs.insert(stored.spec.name.clone(), stored);
        }
        for kv in range_all(&*store, &namespace.key("tasks/")).await? {
            let record: TaskRecord = decode_json(&kv)?;
            if let Some(id) = &record.task_id {
                state
                    .by_task
                    .insert(id.clone(), (record.spec.clone(), record.index));
            }
            state
                .records
                .insert((record.spec.clone(), record.index), record);
        }
        tracing::info!(
            specs = state.specs.len(),
            tasks = state.records.len(),
            "task manager loaded"
        );
        let (changes, _) = broadcast::channel(4096);
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                namespace,
                state: Mutex::new(state),
                changes,
                work: Notify::new(),
            }),
        })
    }

    /// Adds a spec, or updates it: a changed spec gets a new version, which new instances get
    /// at once and running ones one at a time ([`TaskManager::rollout_step`]); then creates or
    /// removes instances to match `instances`. Adding an unchanged spec keeps its version.
    pub async fn add(&self, spec: TaskSpec) -> Result<(), TaskError> {
        spec.validate()?;
        let mut state = self.shared.state.lock().await;
        let version = match state.specs.get(&spec.name) {
            None => 1,
            // the same spec again (a restarted framework adding its specs), or only the count
            // changed: same version
            Some(stored) if same_but_instances(&stored.spec, &spec) => stored.version,
            Some(stored) => stored.version + 1,
        };
        let stored = StoredSpec {
            version,
            spec: spec.clone(),
        };
        let key = self.shared.namespace.key(&format!("specs/{}", spec.name));
        self.write(vec![put(&key, &stored)?]).await?;
        state.specs.insert(spec.name.clone(), stored);
        self.scale_locked(&mut state, &spec.name, spec.instances)
            .await
    }

    /// Sets the number of instances of spec `name`: new ones start pending; the highest
    /// indices are killed and removed.
    pub async fn scale(&self, name: &str, instances: u32) -> Result<(), TaskError> {
        let mut state = self.shared.state.lock().await;
        let stored = state
            .specs
            .get_mut(name)
            .ok_or_else(|| TaskError::UnknownSpec(name.to_owned()))?;
        stored.spec.instances = instances;
        let stored = stored.clone();
        let key = self.shared.namespace.key(&format!("specs/{name}"));
        self.write(vec![put(&key, &stored)?]).await?;
        self.scale_locked(&mut state, name, instances).await
    }

    async fn scale_locked(
        &self,
        state: &mut State,
        name: &str,
        instances: u32,
    ) -> Result<(), TaskError> {
        let version = state.specs.get(name).map_or(1, |s| s.version);
        let mut ops = Vec::new();
        let mut changed = Vec::new();
        let mut deleted = Vec::new();
        for index in 0..instances {
            let slot = (name.to_owned(), index);
            match state.records.get(&slot) {
                None => changed.push(TaskRecord::pending(name, index, version)),
                Some(record) if record.removing => {
                    let mut record = record.clone();
                    record.removing = false;
                    changed.push(record);
                }
                Some(_) => {}
            }
        }
        let beyond: Vec<TaskRecord> = state
            .records
            .range((name.to_owned(), instances)..(name.to_owned(), u32::MAX))
            .map(|(_, r)| r.clone())
            .collect();
        for mut record in beyond {
            if record.removing {
                continue;
            }
            if record.phase.may_run() {
                record.removing = true;
                record.phase = Phase::Killing;
                if let Some(id) = &record.task_id {
                    state.kills.push((id.clone(), record.agent_id.clone()));
                }
                changed.push(record);
            } else {
                deleted.push(record);
            }
        }
        for record in &changed {
            ops.push(put(&self.shared.namespace.key(&record.key()), record)?);
        }
        for record in &deleted {
            ops.push(Op::Delete {
                key: self.shared.namespace.key(&record.key()),
            });
        }
        self.write(ops).await?;
        for record in deleted {
            if let Some(id) = &record.task_id {
                state.by_task.remove(id);
            }
            state.records.remove(&(record.spec.clone(), record.index));
        }
        for record in changed {
            self.commit(state, record);
        }
        self.shared.work.notify_one();
        Ok(())
    }

    /// Kills the instance running as `task_id`; it is not restarted.
    pub async fn kill(&self, task_id: &str) -> Result<(), TaskError> {
        let mut state = self.shared.state.lock().await;
        let slot = state
            .by_task
            .get(task_id)
            .cloned()
            .ok_or_else(|| TaskError::UnknownTask(task_id.to_owned()))?;
        let Some(mut record) = state.records.get(&slot).cloned() else {
            return Err(TaskError::UnknownTask(task_id.to_owned()));
        };
        if record.phase.is_final() {
            return Ok(());
        }
        if record.phase == Phase::Pending {
            record.phase = Phase::Done;
            record.reason = Some("killed by the user before launch".into());
        } else {
            record.phase = Phase::Killing;
            state
                .kills
                .push((task_id.to_owned(), record.agent_id.clone()));
        }
        self.persist(&mut state, record).await?;
        self.shared.work.notify_one();
        Ok(())
    }

    /// Resolves when new work arrived (new instances, restarts, kills) since the last call.
    pub async fn work_arrived(&self) {
        self.shared.work.notified().await;
    }

    /// Kills waiting to be sent (task id, agent id).
    pub async fn take_kills(&self) -> Vec<(String, Option<String>)> {
        std::mem::take(&mut self.shared.state.lock().await.kills)
    }

    /// Asks for a kill of `task_id` (a duplicate or a stranger) without touching any record.
    pub async fn queue_kill(&self, task_id: String, agent_id: Option<String>) {
        self.shared
            .state
            .lock()
            .await
            .kills
            .push((task_id, agent_id));
        self.shared.work.notify_one();
    }

    /// Queues the kill of every instance in [`Phase::Killing`] again (after a resubscription:
    /// a KILL sent while disconnected was lost).
    pub async fn requeue_kills(&self) {
        let mut state = self.shared.state.lock().await;
        let again: Vec<(String, Option<String>)> = state
            .records
            .values()
            .filter(|r| r.phase == Phase::Killing || r.replacing)
            .filter_map(|r| Some((r.task_id.clone()?, r.agent_id.clone())))
            .collect();
        if !again.is_empty() {
            state.kills.extend(again);
            self.shared.work.notify_one();
        }
    }

    /// Pending instances ready to launch at `now_ms` (backoff over), with their specs.
    pub async fn ready(&self, now_ms: u64) -> Vec<(TaskRecord, StoredSpec)> {
        let state = self.shared.state.lock().await;
        state
            .records
            .values()
            .filter(|r| r.phase == Phase::Pending && r.not_before_ms.is_none_or(|t| t <= now_ms))
            .filter_map(|r| Some((r.clone(), state.specs.get(&r.spec)?.clone())))
            .collect()
    }

    /// How many instances [`ready`](Self::ready) would answer at `now_ms` (without cloning
    /// them).
    pub async fn ready_count(&self, now_ms: u64) -> usize {
        let state = self.shared.state.lock().await;
        state
            .records
            .values()
            .filter(|r| r.phase == Phase::Pending && r.not_before_ms.is_none_or(|t| t <= now_ms))
            .filter(|r| state.specs.contains_key(&r.spec))
            .count()
    }

    /// The earliest end of a restart backoff, if any instance waits in one.
    pub async fn next_backoff_end(&self) -> Option<u64> {
        let state = self.shared.state.lock().await;
        state
            .records
            .values()
            .filter(|r| r.phase == Phase::Pending)
            .filter_map(|r| r.not_before_ms)
            .min()
    }

    /// Notes why a pending instance was not placed (memory only; shown in its record's reason).
    pub async fn set_pending_reason(&self, spec: &str, index: u32, reason: String) {
        let mut state = self.shared.state.lock().await;
        let slot = (spec.to_owned(), index);
        if let Some(record) = state.records.get_mut(&slot)
            && record.phase == Phase::Pending
        {
            record.reason = Some(reason.clone());
        }
        state.reasons.insert(slot, reason);
    }

    /// Writes the launch intents ahead (one transaction per 64): each instance becomes
    /// launching with its new task id, agent and offer. Only then may ACCEPT be sent.
    pub async fn record_launches(&self, intents: &[LaunchIntent]) -> Result<(), TaskError> {
        let mut state = self.shared.state.lock().await;
        let now = now_ms();
        let mut updated = Vec::new();
        for intent in intents {
            let slot = (intent.spec.clone(), intent.index);
            let Some(mut record) = state.records.get(&slot).cloned() else {
                continue;
            };
            record.task_id = Some(intent.task_id.clone());
            record.phase = Phase::Launching;
            record.state = None;
            record.reason = None;
            record.agent_id = Some(intent.agent_id.clone());
            record.offer_id = Some(intent.offer_id.clone());
            record.spec_version = intent.spec_version;
            record.launched_ms = Some(now);
            record.not_before_ms = None;
            record.healthy = None;
            updated.push(record);
        }
        for chunk in updated.chunks(64) {
            let ops = chunk
                .iter()
                .map(|r| put(&self.shared.namespace.key(&r.key()), r))
                .collect::<Result<Vec<_>, _>>()?;
            self.write(ops).await?;
        }
        for record in updated {
            if let Some(old) = state
                .records
                .get(&(record.spec.clone(), record.index))
                .and_then(|r| r.task_id.clone())
            {
                state.by_task.remove(&old);
            }
            state.reasons.remove(&(record.spec.clone(), record.index));
            self.commit(&mut state, record);
        }
        Ok(())
    }

    /// Records a status update (stored before this returns, so the caller may acknowledge it).
    pub async fn record_status(&self, status: &TaskStatus) -> Result<StatusOutcome, TaskError> {
        let task_id = status.task_id.value.as_str();
        let mut state = self.shared.state.lock().await;
        let slot = match state.by_task.get(task_id) {
            Some(slot) => Some(slot.clone()),
            // an older attempt of one of our instances
            None => parse_task_id(task_id)
                .map(|(spec, index)| (spec.to_owned(), index))
                .filter(|slot| state.records.contains_key(slot)),
        };
        let Some(slot) = slot else {
            return Ok(StatusOutcome::Unknown);
        };
        let Some(mut record) = state.records.get(&slot).cloned() else {
            return Ok(StatusOutcome::Unknown);
        };
        let reason = describe(status);
        let transition = record.apply(task_id, status.state(), reason, status.healthy);
        if !matches!(transition, Transition::Duplicate | Transition::Ignored) {
            if let Some(agent) = &status.agent_id {
                record.agent_id = Some(agent.value.clone());
            }
            self.persist(&mut state, record.clone()).await?;
        }
        Ok(StatusOutcome::Known {
            record: Box::new(record),
            transition,
        })
    }

    /// Concludes an ended attempt of `task_id`: restart per `decision` and the spec's policy
    /// (capped exponential backoff, retry budget), or done. Returns the record after.
    pub async fn conclude(
        &self,
        task_id: &str,
        ending: Ending,
        decision: Decision,
    ) -> Result<Option<TaskRecord>, TaskError> {
        let mut state = self.shared.state.lock().await;
        let Some(slot) = state.by_task.get(task_id).cloned() else {
            return Ok(None);
        };
        let Some(mut record) = state.records.get(&slot).cloned() else {
            return Ok(None);
        };
        if record.phase.is_final() || record.phase == Phase::Pending {
            return Ok(Some(record));
        }
        if record.removing {
            let key = self.shared.namespace.key(&record.key());
            self.write_or_defer(&mut state, vec![Op::Delete { key }])
                .await?;
            state.by_task.remove(task_id);
            state.records.remove(&slot);
            record.phase = Phase::Done;
            let _ = self.shared.changes.send(record.clone());
            return Ok(None);
        }
        if record.replacing {
            record.replacing = false;
            record.phase = Phase::Pending;
            record.not_before_ms = None;
            record.reason = Some("replacing with the new spec version".into());
            self.persist(&mut state, record.clone()).await?;
            self.shared.work.notify_one();
            return Ok(Some(record));
        }
        let policy = state
            .specs
            .get(&record.spec)
            .map(|s| s.spec.restart.clone())
            .unwrap_or_default();
        let restart = record.phase != Phase::Killing
            && match decision {
                Decision::Stop => false,
                Decision::Restart => true,
                Decision::PerPolicy => match policy.policy {
                    RestartMode::Never => false,
                    RestartMode::OnFailure => ending != Ending::Finished,
                    RestartMode::Always => true,
                },
            };
        if !restart {
            record.phase = Phase::Done;
        } else if policy.max_retries.is_some_and(|max| record.restarts >= max) {
            record.phase = Phase::GivenUp;
            record.reason = Some(format!(
                "given up after {} restarts; last: {}",
                record.restarts,
                record.reason.as_deref().unwrap_or("no reason")
            ));
        } else {
            record.restarts += 1;
            let delay = restart_backoff(policy.backoff_min, policy.backoff_max, record.restarts);
            record.phase = Phase::Pending;
            record.not_before_ms =
                Some(now_ms() + u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
            record.reason = Some(format!(
                "restart {} in {delay:?} after {}",
                record.restarts,
                record.state.as_deref().unwrap_or("an end")
            ));
        }
        self.persist(&mut state, record.clone()).await?;
        self.shared.work.notify_one();
        Ok(Some(record))
    }

    /// A launch that never reached the master: pending again at once, no retry counted.
    pub async fn relaunch_unlaunched(&self, task_id: &str) -> Result<(), TaskError> {
        let mut state = self.shared.state.lock().await;
        let Some(slot) = state.by_task.get(task_id).cloned() else {
            return Ok(());
        };
        let Some(mut record) = state.records.get(&slot).cloned() else {
            return Ok(());
        };
        record.phase = if record.removing || record.phase == Phase::Killing {
            Phase::Done
        } else {
            Phase::Pending
        };
        record.reason = Some("the launch never reached the master".into());
        self.persist(&mut state, record).await?;
        self.shared.work.notify_one();
        Ok(())
    }

    /// Adopts a task of ours that the store lost track of (`<spec>.<index>.<uuid>` of a known
    /// instance that has no live attempt). Answers whether it was adopted.
    pub async fn adopt(&self, status: &TaskStatus) -> Result<bool, TaskError> {
        let task_id = status.task_id.value.as_str();
        let Some((spec, index)) = parse_task_id(task_id) else {
            return Ok(false);
        };
        let mut state = self.shared.state.lock().await;
        let slot = (spec.to_owned(), index);
        let Some(mut record) = state.records.get(&slot).cloned() else {
            return Ok(false);
        };
        if record.phase != Phase::Pending {
            return Ok(false);
        }
        if let Some(old) = &record.task_id {
            state.by_task.remove(old);
        }
        record.task_id = Some(task_id.to_owned());
        record.phase = Phase::Active;
        record.state = Some(status.state().as_str_name().to_owned());
        record.agent_id = status.agent_id.as_ref().map(|a| a.value.clone());
        record.not_before_ms = None;
        record.reason = Some("adopted".into());
        self.persist(&mut state, record).await?;
        Ok(true)
    }

    /// One step of the rolling updates: for every spec whose instances run an older version,
    /// when no replacement is under way and every instance of the current version runs (and is
    /// healthy, if the spec has a health check), the lowest old instance is killed for
    /// replacement. Answers whether a step was taken.
    pub async fn rollout_step(&self) -> Result<bool, TaskError> {
        let mut state = self.shared.state.lock().await;
        let mut victims = Vec::new();
        for (name, stored) in &state.specs {
            let records: Vec<&TaskRecord> = state
                .records
                .range((name.clone(), 0)..=(name.clone(), u32::MAX))
                .map(|(_, r)| r)
                .filter(|r| !r.removing && !r.phase.is_final())
                .collect();
            let busy = records.iter().any(|r| {
                r.replacing || matches!(r.phase, Phase::Pending | Phase::Launching | Phase::Killing)
            });
            let checked = stored.spec.health_check.is_some();
            let current_ready = records
                .iter()
                .filter(|r| r.spec_version == stored.version)
                .all(|r| {
                    r.state.as_deref() == Some("TASK_RUNNING")
                        && (!checked || r.healthy == Some(true))
                });
            if busy || !current_ready {
                continue;
            }
            if let Some(old) = records
                .iter()
                .find(|r| r.spec_version < stored.version && r.phase == Phase::Active)
            {
                victims.push((*old).clone());
            }
        }
        let stepped = !victims.is_empty();
        for mut record in victims {
            record.replacing = true;
            tracing::info!(
                spec = %record.spec,
                index = record.index,
                "rolling update: replacing an instance"
            );
            if let Some(id) = &record.task_id {
                state.kills.push((id.clone(), record.agent_id.clone()));
            }
            self.persist(&mut state, record).await?;
        }
        if stepped {
            self.shared.work.notify_one();
        }
        Ok(stepped)
    }

    /// Every instance that may be alive: `(task id, agent id)` for reconciliation.
    pub async fn maybe_running(&self) -> Vec<(String, Option<String>)> {
        let state = self.shared.state.lock().await;
        state
            .records
            .values()
            .filter(|r| r.phase.may_run())
            .filter_map(|r| Some((r.task_id.clone()?, r.agent_id.clone())))
            .collect()
    }

    /// Launches without any status for longer than `timeout` at `now_ms`.
    pub async fn overdue_launches(&self, now_ms: u64, timeout: Duration) -> Vec<String> {
        let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let state = self.shared.state.lock().await;
        state
            .records
            .values()
            .filter(|r| r.phase == Phase::Launching)
            .filter(|r| {
                r.launched_ms
                    .is_some_and(|t| t.saturating_add(timeout) <= now_ms)
            })
            .filter_map(|r| r.task_id.clone())
            .collect()
    }
}

/// Whether two specs differ at most in their instance count.
fn same_but_instances(a: &TaskSpec, b: &TaskSpec) -> bool {
    let mut b = b.clone();
    b.instances = a.instances;
    *a == b
}

fn put<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Op, TaskError> {
    Ok(Op::Put {
        key: key.to_owned(),
        value: encode_json(key, value)?,
        lease: None,
    })
}

async fn range_all(store: &dyn Store, prefix: &str) -> Result<Vec<storage::KeyValue>, TaskError> {
    let mut out = Vec::new();
    let mut request = RangeRequest::limit(1000);
    loop {
        let page = store.range(prefix, request).await?;
        out.extend(page.kvs);
        match page.next {
            Some(next) => {
                request = RangeRequest {
                    limit: Some(1000),
                    continuation: Some(next),
                }
            }
            None => return Ok(out),
        }
    }
}

/// The reason and message of a status, as one line.
fn describe(status: &TaskStatus) -> Option<String> {
    let reason = status
        .reason
        .and_then(|r| crate::v1::task_status::Reason::try_from(r).ok())
        .map(|r| r.as_str_name().to_owned());
    match (reason, status.message.as_deref()) {
        (Some(r), Some(m)) if !m.is_empty() => Some(format!("{r}: {m}")),
        (Some(r), _) => Some(r),
        (None, Some(m)) if !m.is_empty() => Some(m.to_owned()),
        _ => None,
    }
}

/// Whether `state` is one the manager treats as the end of an attempt.
pub fn ends_attempt(state: TaskState) -> bool {
    super::record::ending(state).is_some()
}

#[cfg(test)]
mod tests;
