//! The agent's checkpoint writer: every checkpoint file operation (write, append, remove) runs
//! here, off the agent's state lock and off the async workers, in the order it was submitted.
//!
//! Operations are submitted while the state lock is held (a channel send, no I/O), so their order
//! on disk is the order of the state changes they record. One worker task takes them in batches
//! and runs each batch on tokio's blocking pool. Follow-up work that must only happen once the
//! earlier operations are on disk (forwarding a status update after its record is written, as
//! Mesos' status update manager does) is submitted with [`CheckpointWriter::then`]: it runs on
//! the worker task, in order, after the operations submitted before it. [`CheckpointWriter::flush`]
//! waits until everything submitted so far is written (used when the agent stops, so that a
//! successor on the same work directory reads complete checkpoints).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::checkpoint::{CheckpointError, Meta};

/// Largest number of operations run in one trip to the blocking pool.
const BATCH: usize = 256;

type Operation = Box<dyn FnOnce(&Meta) -> Result<(), CheckpointError> + Send>;
type FollowUp = Box<dyn FnOnce() + Send>;

enum Job {
    /// A file operation; `what` names it in the warning when it fails.
    Write(&'static str, Operation),
    /// Runs on the worker task after every earlier operation.
    Then(FollowUp),
    /// Answered after every earlier operation.
    Flush(oneshot::Sender<()>),
}

/// Submits checkpoint operations to the agent's writer task (see the module docs).
#[derive(Debug, Clone)]
pub(super) struct CheckpointWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Write(what, _) => write!(f, "Write({what})"),
            Job::Then(_) => f.write_str("Then"),
            Job::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl CheckpointWriter {
    /// Starts the writer task for `meta`. Must be called inside a tokio runtime. The task ends
    /// once every `CheckpointWriter` clone is dropped and the queue is drained.
    pub(super) fn start(meta: Arc<Meta>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(meta, queue));
        Self { jobs }
    }

    /// Queues a file operation. A failure is logged (`could not checkpoint <what>`), as Mesos'
    /// agent logs a failed checkpoint of anything but its own info.
    pub(super) fn submit(
        &self,
        what: &'static str,
        operation: impl FnOnce(&Meta) -> Result<(), CheckpointError> + Send + 'static,
    ) {
        if self
            .jobs
            .send(Job::Write(what, Box::new(operation)))
            .is_err()
        {
            tracing::warn!(what, "checkpoint writer is gone; not checkpointed");
        }
    }

    /// Queues work that runs once every operation submitted before it is done.
    pub(super) fn then(&self, work: impl FnOnce() + Send + 'static) {
        if let Err(mpsc::error::SendError(Job::Then(work))) =
            self.jobs.send(Job::Then(Box::new(work)))
        {
            // No writer (the runtime is going away): nothing is pending either.
            work();
        }
    }

    /// Waits until every operation submitted so far is done.
    pub(super) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// The writer task: runs queued jobs in order, file operations in batches on the blocking pool.
async fn run(meta: Arc<Meta>, mut queue: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // File operations up to the first follow-up go to the blocking pool together; follow-ups
        // and flushes are answered here once the operations before them are done.
        let mut jobs = batch.into_iter().peekable();
        while jobs.peek().is_some() {
            let mut writes = Vec::new();
            while let Some(Job::Write(..)) = jobs.peek() {
                if let Some(Job::Write(what, operation)) = jobs.next() {
                    writes.push((what, operation));
                }
            }
            if !writes.is_empty() {
                let meta = Arc::clone(&meta);
                let written = tokio::task::spawn_blocking(move || {
                    for (what, operation) in writes {
                        if let Err(err) = operation(&meta) {
                            tracing::warn!(%err, "could not checkpoint {what}");
                        }
                    }
                })
                .await;
                if let Err(err) = written {
                    tracing::warn!(%err, "checkpoint writes did not complete");
                }
            }
            match jobs.next() {
                Some(Job::Then(work)) => work(),
                Some(Job::Flush(done)) => {
                    let _ = done.send(());
                }
                Some(Job::Write(..)) | None => {}
            }
        }
    }
}
