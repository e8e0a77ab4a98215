//! The task manager's write path: every record write goes to the store before it counts in
//! memory, either at once or held back in a batch (status updates arriving together) that
//! is flushed in as few transactions as etcd allows.

use super::{MAX_TXN_OPS, State, TaskError, TaskManager, put};
use crate::storage::{Op, Txn};
use crate::taskmgr::record::TaskRecord;

impl TaskManager {
    pub(super) async fn persist(
        &self,
        state: &mut State,
        record: TaskRecord,
    ) -> Result<(), TaskError> {
        let key = self.shared.namespace.key(&record.key());
        self.write_or_defer(state, vec![put(&key, &record)?])
            .await?;
        self.commit(state, record);
        Ok(())
    }

    /// Holds back the record writes of status updates (and the restart decisions they lead to)
    /// until [`flush_batch`](Self::flush_batch), which stores them in as few transactions as
    /// possible (one per 64 keys, the last write of a key winning). The caller must not
    /// acknowledge any update of the batch before the flush succeeded. Answers whether a batch
    /// was not already open.
    pub async fn begin_batch(&self) -> bool {
        let mut state = self.shared.state.lock().await;
        if state.batch.is_some() {
            return false;
        }
        state.batch = Some(Vec::new());
        true
    }

    /// Stores the writes held back since [`begin_batch`](Self::begin_batch) and ends the batch;
    /// answers how many keys were written. On an error the records in memory are ahead of
    /// the store: the updates must not be acknowledged (the master sends them again).
    pub async fn flush_batch(&self) -> Result<usize, TaskError> {
        // The lock is held through the writes, as every other write does, so no newer write
        // of the same key can reach the store before these.
        let mut state = self.shared.state.lock().await;
        let ops = state.batch.take().unwrap_or_default();
        // Last write of a key wins (etcd refuses a transaction that names a key twice).
        let mut seen = std::collections::HashSet::new();
        let mut unique: Vec<Op> = ops
            .into_iter()
            .rev()
            .filter(|op| match op {
                Op::Put { key, .. } | Op::Delete { key } => seen.insert(key.clone()),
                _ => true,
            })
            .collect();
        unique.reverse();
        let written = unique.len();
        self.write(unique).await?;
        drop(state);
        Ok(written)
    }

    pub(super) async fn write_or_defer(
        &self,
        state: &mut State,
        ops: Vec<Op>,
    ) -> Result<(), TaskError> {
        match &mut state.batch {
            Some(batch) => {
                batch.extend(ops);
                Ok(())
            }
            None => self.write(ops).await,
        }
    }

    pub(super) fn commit(&self, state: &mut State, record: TaskRecord) {
        if let Some(id) = &record.task_id {
            state
                .by_task
                .insert(id.clone(), (record.spec.clone(), record.index));
        }
        let _ = self.shared.changes.send(record.clone());
        state
            .records
            .insert((record.spec.clone(), record.index), record);
    }

    /// Writes `ops` in transactions of at most [`MAX_TXN_OPS`] operations (etcd refuses more
    /// than 128 per transaction by default; the records are independent of each other).
    pub(super) async fn write(&self, ops: Vec<Op>) -> Result<(), TaskError> {
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let mut txn = Txn::new();
            for op in ops.by_ref().take(MAX_TXN_OPS) {
                txn = txn.and_then(op);
            }
            self.shared.store.txn(txn).await?;
        }
        Ok(())
    }
}
