//! What a process scheduler keeps in the store (`mesos_sdk::storage`), under
//! `brigade/<processor>/`: its framework id, and one record per launched task saying which
//! message it carries and how far its result got. A restarted scheduler reads them back to avoid
//! launching a message twice and to count what may have been produced twice.

use std::sync::Arc;

use mesos_sdk::storage::{Op, RangeRequest, Store, StoreExt, Txn, decode_json, encode_json};
use serde::{Deserialize, Serialize};

use super::PipelineError;

/// Records written or deleted per store transaction (etcd's default limit is 128 operations).
pub const RECORDS_PER_TXN: usize = 64;

/// How far a task's result got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

    /// Deletes the records of `task_ids` in one transaction.
    pub async fn delete_all(&self, task_ids: &[String]) -> Result<(), PipelineError> {
        for chunk in task_ids.chunks(RECORDS_PER_TXN) {
            let mut txn = Txn::new();
            for id in chunk {
                txn = txn.and_then(Op::delete(self.task_key(id)));
            }
            self.store.txn(txn).await?;
        }
        Ok(())
    }

    /// Every task record (unreadable ones are skipped with a warning).
    pub async fn load(&self) -> Result<Vec<TaskRecord>, PipelineError> {
        let prefix = format!("{}tasks/", self.prefix);
        let mut out = Vec::new();
        let mut request = RangeRequest::limit(500);
        loop {
            let page = self.store.range(&prefix, request.clone()).await?;
            for kv in &page.kvs {
                match decode_json::<TaskRecord>(kv) {
                    Ok(record) => out.push(record),
                    Err(e) => tracing::warn!(key = %kv.key, error = %e, "unreadable task record"),
                }
            }
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
    use mesos_sdk::storage::MemoryStore;

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
        let loaded = a.load().await.unwrap();
        assert_eq!(loaded.len(), 700, "paged reads see every record");
        assert!(loaded.contains(&record("t3", 3, Stage::Produced)));
        assert!(b.load().await.unwrap().is_empty());

        let ids: Vec<String> = (0..650).map(|i| format!("t{i}")).collect();
        a.delete_all(&ids).await.unwrap();
        assert_eq!(a.load().await.unwrap().len(), 50);

        a.set_committed("in", 0, 42).await.unwrap();
        a.set_committed("in", 3, 7).await.unwrap();
        let committed = a.committed("in").await.unwrap();
        assert_eq!(committed.get(&0), Some(&42));
        assert_eq!(committed.get(&3), Some(&7));
        assert!(a.committed("other").await.unwrap().is_empty());
    }
}
