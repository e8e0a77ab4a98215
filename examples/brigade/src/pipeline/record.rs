//! What a process scheduler keeps in the store (`mesos_sdk::storage`), under
//! `brigade/<processor>/`: its framework id, the input offsets it committed, and records saying
//! which message each task carries and how far its result got. A restarted scheduler reads them
//! back to avoid launching a message twice and to count what may have been produced twice.
//!
//! - `tasks/<task id>`: a per-message task, written when it is launched (stage `launched`).
//! - `results/<batch id>`: the records of one produce batch (up to [`RECORDS_PER_BATCH`]),
//!   written once, before the batch is produced (stage `producing`): one store write per batch,
//!   not one per message. Warm mode writes only these.
//! - `produced/<batch id>`: an empty marker written once Kafka acknowledged every record of the
//!   batch; the batch's records are then at stage `produced`. A marker rather than the batch
//!   written again: the batch's JSON (about 200 bytes a record) is written once, not twice.
//! - All are deleted once the input offset is committed past every message they name (a batch
//!   and its marker in the same transaction).
//!
//! Where a task appears under several keys (launched under `tasks/`, producing or produced in a
//! batch), [`Records::load`] keeps its furthest stage.

use std::sync::Arc;

use mesos_sdk::storage::{
    MemoryStore, Op, RangeRequest, Store, StoreExt, Txn, decode_json, encode_json,
};
use serde::{Deserialize, Serialize};

use super::PipelineError;
use crate::kafka::TopicPartition;

/// Records written or deleted per store transaction (etcd's default limit is 128 operations).
pub const RECORDS_PER_TXN: usize = 64;
// A result batch and its "produced" marker are deleted in one transaction (`delete_done`).
const _: () = assert!(RECORDS_PER_TXN % 2 == 0);

/// Records in one result batch at most (a larger produce is split): bounds the size of one
/// stored value (a record is about 200 bytes of JSON; etcd refuses requests over 1.5 MiB).
pub const RECORDS_PER_BATCH: usize = 256;

/// Revisions kept by the in-memory store Brigade runs on without etcd ([`memory_store`]).
pub const MEMORY_STORE_RETENTION: u32 = 1_000;

/// The store Brigade runs on without etcd: in memory, compacted automatically down to the
/// newest [`MEMORY_STORE_RETENTION`] revisions (without it, every write a long run makes would
/// be kept). Brigade's watches on it start from the present, so the compaction never cuts one.
pub fn memory_store() -> MemoryStore {
    MemoryStore::new().auto_compact(MEMORY_STORE_RETENTION)
}

/// How far a task's result got (ordered: a later stage is greater).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Launched (or about to be); no result yet.
    Launched,
    /// Its output or error record is being produced: it may be in Kafka already.
    Producing,
    /// Its record was acknowledged by Kafka; the input offset may not be committed yet.
    Produced,
}

/// One task and the message it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The Mesos task id.
    pub task_id: String,
    /// The agent it was launched on.
    pub agent_id: Option<String>,
    /// The source topic.
    pub topic: String,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
    /// The source key (kept so a result recovered after a restart keeps it).
    pub key: Option<Vec<u8>>,
    /// Which attempt this task is (1 for the first).
    pub attempt: u32,
    /// How far its result got.
    pub stage: Stage,
}

/// Where the messages of a result batch lie: per source topic and partition, the highest
/// offset it holds. The batch is deleted once the committed offset of each passed it.
pub type Span = Vec<(TopicPartition, i64)>;

/// The [`Span`] of `records`.
pub fn span_of<'a>(records: impl IntoIterator<Item = &'a TaskRecord>) -> Span {
    let mut span: Span = Vec::new();
    for r in records {
        match span
            .iter_mut()
            .find(|(tp, _)| tp.partition == r.partition && tp.topic == r.topic)
        {
            Some((_, highest)) => *highest = (*highest).max(r.offset),
            None => span.push((TopicPartition::new(r.topic.clone(), r.partition), r.offset)),
        }
    }
    span
}

/// What [`Records::load`] found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// One record per task, at the furthest stage the store holds for it.
    pub tasks: Vec<TaskRecord>,
    /// The result batches, by id, with the span of their messages.
    pub batches: Vec<(String, Span)>,
}

/// The store keys of one processor.
#[derive(Debug, Clone)]
pub struct Records {
    store: Arc<dyn Store>,
    prefix: String,
}

impl Records {
    /// The records of processor `name` in `store`.
    pub fn new(store: Arc<dyn Store>, name: &str) -> Self {
        Self {
            store,
            prefix: format!("brigade/{name}/"),
        }
    }

    fn task_key(&self, task_id: &str) -> String {
        format!("{}tasks/{task_id}", self.prefix)
    }

    fn batch_key(&self, batch: &str) -> String {
        format!("{}results/{batch}", self.prefix)
    }

    fn produced_key(&self, batch: &str) -> String {
        format!("{}produced/{batch}", self.prefix)
    }

    /// The persisted framework id.
    pub async fn framework_id(&self) -> Result<Option<String>, PipelineError> {
        Ok(self
            .store
            .get_json::<String>(&format!("{}framework-id", self.prefix))
            .await?)
    }

    /// Persists the framework id.
    pub async fn set_framework_id(&self, id: &str) -> Result<(), PipelineError> {
        self.store
            .put_json(&format!("{}framework-id", self.prefix), id, None)
            .await?;
        Ok(())
    }

    /// Forgets the framework id (the framework was removed).
    pub async fn clear_framework_id(&self) -> Result<(), PipelineError> {
        self.store
            .delete(&format!("{}framework-id", self.prefix))
            .await?;
        Ok(())
    }

    /// The input offsets this processor committed, per partition of `topic`.
    pub async fn committed(
        &self,
        topic: &str,
    ) -> Result<std::collections::HashMap<i32, i64>, PipelineError> {
        let prefix = format!("{}committed/{topic}/", self.prefix);
        let page = self.store.range(&prefix, RangeRequest::all()).await?;
        let mut out = std::collections::HashMap::new();
        for kv in &page.kvs {
            let partition = kv
                .key
                .rsplit('/')
                .next()
                .and_then(|p| p.parse::<i32>().ok());
            match (partition, decode_json::<i64>(kv)) {
                (Some(partition), Ok(offset)) => {
                    out.insert(partition, offset);
                }
                _ => tracing::warn!(key = %kv.key, "unreadable committed offset"),
            }
        }
        Ok(out)
    }

    /// Records that `offset` of `topic`/`partition` was committed to Kafka.
    pub async fn set_committed(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), PipelineError> {
        self.store
            .put_json(
                &format!("{}committed/{topic}/{partition}", self.prefix),
                &offset,
                None,
            )
            .await?;
        Ok(())
    }

    /// Writes `records`, [`RECORDS_PER_TXN`] to a transaction (etcd refuses transactions of
    /// more than 128 operations by default). Each record stands alone, so a failure part way
    /// leaves some written and some not; the caller retries or treats all as unwritten.
    pub async fn put_all<'a>(
        &self,
        records: impl IntoIterator<Item = &'a TaskRecord>,
    ) -> Result<(), PipelineError> {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut txn = Txn::new();
            for record in records.by_ref().take(RECORDS_PER_TXN) {
                let key = self.task_key(&record.task_id);
                let value = encode_json(&key, record)?;
                txn = txn.and_then(Op::put(key, value));
            }
            self.store.txn(txn).await?;
        }
        Ok(())
    }

    /// Writes one record.
    pub async fn put(&self, record: &TaskRecord) -> Result<(), PipelineError> {
        self.store
            .put_json(&self.task_key(&record.task_id), record, None)
            .await?;
        Ok(())
    }

    /// Deletes the records of `task_ids`, [`RECORDS_PER_TXN`] to a transaction.
    pub async fn delete_all(&self, task_ids: &[String]) -> Result<(), PipelineError> {
        let keys: Vec<String> = task_ids.iter().map(|id| self.task_key(id)).collect();
        self.delete_keys(keys).await
    }

    /// Writes the records of one produce batch (at most [`RECORDS_PER_BATCH`]; more are
    /// refused) under one key, `results/<batch>`, replacing what it held.
    pub async fn put_batch<'a>(
        &self,
        batch: &str,
        records: impl IntoIterator<Item = &'a TaskRecord>,
    ) -> Result<(), PipelineError> {
        let records: Vec<&TaskRecord> = records.into_iter().collect();
        if records.len() > RECORDS_PER_BATCH {
            return Err(PipelineError::Config(format!(
                "a result batch holds at most {RECORDS_PER_BATCH} records, not {}",
                records.len()
            )));
        }
        let key = self.batch_key(batch);
        let value = encode_json(&key, &records)?;
        self.store.put(&key, value, None).await?;
        Ok(())
    }

    /// Marks result batch `batch` produced: every record of it was acknowledged by Kafka.
    pub async fn mark_produced(&self, batch: &str) -> Result<(), PipelineError> {
        self.store
            .put(&self.produced_key(batch), bytes::Bytes::new(), None)
            .await?;
        Ok(())
    }

    /// Deletes the records of committed messages: the task records of `task_ids` first, then
    /// the result batches `batches` with their markers (so a failure part way leaves a batch
    /// saying "produced", which a restart treats as done, rather than a task record saying
    /// "launched"). A batch and its marker go in one transaction: a batch is never left
    /// without the marker it had.
    pub async fn delete_done(
        &self,
        task_ids: &[String],
        batches: &[String],
    ) -> Result<(), PipelineError> {
        self.delete_all(task_ids).await?;
        let keys: Vec<String> = batches
            .iter()
            .flat_map(|b| [self.batch_key(b), self.produced_key(b)])
            .collect();
        self.delete_keys(keys).await
    }

    /// Deletes `keys`, [`RECORDS_PER_TXN`] to a transaction (an even number: a batch's two keys,
    /// side by side in `keys`, share one).
    async fn delete_keys(&self, keys: Vec<String>) -> Result<(), PipelineError> {
        for chunk in keys.chunks(RECORDS_PER_TXN) {
            let mut txn = Txn::new();
            for key in chunk {
                txn = txn.and_then(Op::delete(key.clone()));
            }
            self.store.txn(txn).await?;
        }
        Ok(())
    }

    /// Every task record and result batch (unreadable ones are skipped with a warning).
    pub async fn load(&self) -> Result<Recovered, PipelineError> {
        let mut tasks: std::collections::HashMap<String, TaskRecord> =
            std::collections::HashMap::new();
        let mut keep = |record: TaskRecord| match tasks.get(&record.task_id) {
            Some(known) if known.stage >= record.stage => {}
            _ => {
                tasks.insert(record.task_id.clone(), record);
            }
        };
        for kv in self.read_all("tasks/").await? {
            match decode_json::<TaskRecord>(&kv) {
                Ok(record) => keep(record),
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "unreadable task record"),
            }
        }
        let produced: std::collections::HashSet<String> = self
            .read_all("produced/")
            .await?
            .iter()
            .filter_map(|kv| kv.key.rsplit('/').next().map(str::to_string))
            .collect();
        let mut batches = Vec::new();
        for kv in self.read_all("results/").await? {
            let Some(id) = kv.key.rsplit('/').next().map(str::to_string) else {
                continue;
            };
            match decode_json::<Vec<TaskRecord>>(&kv) {
                Ok(mut records) => {
                    if produced.contains(&id) {
                        for record in &mut records {
                            record.stage = record.stage.max(Stage::Produced);
                        }
                    }
                    batches.push((id, span_of(&records)));
                    records.into_iter().for_each(&mut keep);
                }
                Err(e) => tracing::warn!(key = %kv.key, error = %e, "unreadable result batch"),
            }
        }
        Ok(Recovered {
            tasks: tasks.into_values().collect(),
            batches,
        })
    }

    /// Every key-value under `prefix` (below this processor's), read in pages.
    async fn read_all(
        &self,
        prefix: &str,
    ) -> Result<Vec<mesos_sdk::storage::KeyValue>, PipelineError> {
        let prefix = format!("{}{prefix}", self.prefix);
        let mut out = Vec::new();
        let mut request = RangeRequest::limit(500);
        loop {
            let page = self.store.range(&prefix, request.clone()).await?;
            out.extend(page.kvs);
            match page.next {
                Some(next) => request.continuation = Some(next),
                None => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, offset: i64, stage: Stage) -> TaskRecord {
        TaskRecord {
            task_id: id.into(),
            agent_id: Some("a1".into()),
            topic: "in".into(),
            partition: 0,
            offset,
            key: Some(b"k".to_vec()),
            attempt: 1,
            stage,
        }
    }

    #[tokio::test]
    async fn records_round_trip_and_stay_per_processor() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let a = Records::new(store.clone(), "a");
        let b = Records::new(store, "b");
        assert_eq!(a.framework_id().await.unwrap(), None);
        a.set_framework_id("fw-1").await.unwrap();
        assert_eq!(a.framework_id().await.unwrap().as_deref(), Some("fw-1"));
        assert_eq!(b.framework_id().await.unwrap(), None);

        let records: Vec<TaskRecord> = (0..700)
            .map(|i| record(&format!("t{i}"), i, Stage::Launched))
            .collect();
        a.put_all(&records).await.unwrap();
        a.put(&record("t3", 3, Stage::Produced)).await.unwrap();
        let loaded = a.load().await.unwrap().tasks;
        assert_eq!(loaded.len(), 700, "paged reads see every record");
        assert!(loaded.contains(&record("t3", 3, Stage::Produced)));
        assert!(b.load().await.unwrap().tasks.is_empty());

        let ids: Vec<String> = (0..650).map(|i| format!("t{i}")).collect();
        a.delete_all(&ids).await.unwrap();
        assert_eq!(a.load().await.unwrap().tasks.len(), 50);

        a.set_committed("in", 0, 42).await.unwrap();
        a.set_committed("in", 3, 7).await.unwrap();
        let committed = a.committed("in").await.unwrap();
        assert_eq!(committed.get(&0), Some(&42));
        assert_eq!(committed.get(&3), Some(&7));
        assert!(a.committed("other").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn result_batches_hold_their_records_and_the_furthest_stage_wins() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let r = Records::new(store, "p");
        // Launched under tasks/, then produced in a batch: the batch's stage wins.
        r.put_all(&[
            record("t1", 1, Stage::Launched),
            record("t2", 2, Stage::Launched),
        ])
        .await
        .unwrap();
        let mut batch = vec![
            record("t1", 1, Stage::Produced),
            record("w5", 5, Stage::Producing),
        ];
        batch[1].partition = 3;
        r.put_batch("b1", &batch).await.unwrap();
        // The same task in a later batch at a lower stage does not go back.
        r.put_batch("b2", &[record("t1", 1, Stage::Producing)])
            .await
            .unwrap();
        // A batch written at "producing" and then marked produced is at "produced".
        r.put_batch("b3", &[record("w6", 6, Stage::Producing)])
            .await
            .unwrap();
        r.mark_produced("b3").await.unwrap();
        // A marker whose batch is gone is ignored.
        r.mark_produced("gone").await.unwrap();
        let found = r.load().await.unwrap();
        let mut tasks = found.tasks.clone();
        tasks.sort_by_key(|t| t.offset);
        let stages: Vec<(&str, Stage)> = tasks
            .iter()
            .map(|t| (t.task_id.as_str(), t.stage))
            .collect();
        assert_eq!(
            stages,
            [
                ("t1", Stage::Produced),
                ("t2", Stage::Launched),
                ("w5", Stage::Producing),
                ("w6", Stage::Produced)
            ]
        );
        let mut batches = found.batches.clone();
        batches.sort();
        assert_eq!(
            batches,
            [
                (
                    "b1".to_string(),
                    vec![
                        (TopicPartition::new("in", 0), 1),
                        (TopicPartition::new("in", 3), 5)
                    ]
                ),
                ("b2".to_string(), vec![(TopicPartition::new("in", 0), 1)]),
                ("b3".to_string(), vec![(TopicPartition::new("in", 0), 6)]),
            ]
        );

        let too_many: Vec<TaskRecord> = (0..=RECORDS_PER_BATCH as i64)
            .map(|i| record(&format!("x{i}"), i, Stage::Producing))
            .collect();
        assert!(r.put_batch("big", &too_many).await.is_err());

        r.delete_done(
            &["t1".into(), "t2".into()],
            &["b1".into(), "b2".into(), "b3".into(), "gone".into()],
        )
        .await
        .unwrap();
        let found = r.load().await.unwrap();
        assert!(
            found.tasks.is_empty() && found.batches.is_empty(),
            "{found:?}"
        );
        let left = r.store.range("brigade/p/", RangeRequest::limit(10)).await;
        assert!(
            left.unwrap().kvs.is_empty(),
            "markers deleted with their batches"
        );
    }

    #[test]
    fn a_span_holds_the_highest_offset_of_each_partition() {
        let mut records = vec![
            record("a", 7, Stage::Produced),
            record("b", 3, Stage::Produced),
            record("c", 9, Stage::Produced),
        ];
        records[2].partition = 1;
        assert_eq!(
            span_of(&records),
            vec![
                (TopicPartition::new("in", 0), 7),
                (TopicPartition::new("in", 1), 9)
            ]
        );
        assert!(span_of(&[]).is_empty());
    }
}
