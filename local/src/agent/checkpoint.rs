//! Checkpoints of an agent under `<work_dir>/meta`, and their recovery after a restart.
//!
//! Layout (protobuf files hold the encoded message):
//! - `slaves/latest`: the agent id; `slaves/<agent>/slave.info`: its `AgentInfo` (with the port).
//! - `slaves/<agent>/frameworks/<fw>/framework.info`
//! - `.../executors/<ex>/executor.info`, `.../executors/<ex>/runs/latest` (run id)
//! - `.../runs/<run>/kind`, `sandbox`, `forked.pid`, `completed` (marker of a finished run)
//! - `.../runs/<run>/tasks/<task>/task.info`, `task.updates`: RecordIO records, each a tag byte
//!   (`U` + an encoded `TaskStatus`, or `A` + the 16 uuid bytes of an acknowledgement).
//!
//! Agent id and port are checkpointed whenever the agent has an explicit work directory; the
//! rest only for frameworks with `checkpoint` set. Files are written and renamed, not fsynced (see
//! `write_atomic`). While the agent runs, these functions are called by the checkpoint writer
//! (`checkpoint_writer`), never under the agent's state lock.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use prost::Message;
use tokio_util::codec::Decoder;

use super::ExecutorKind;
use mesos_sdk::recordio::{RecordIoCodec, encode_record};
use mesos_sdk::v1::{AgentId, AgentInfo, ExecutorInfo, FrameworkInfo, TaskInfo, TaskStatus};

/// A framework found in the checkpoints.
#[derive(Debug)]
pub(super) struct RecoveredFramework {
    pub(super) info: FrameworkInfo,
    pub(super) executors: Vec<RecoveredExecutor>,
}

/// The latest run of an executor found in the checkpoints.
#[derive(Debug)]
pub(super) struct RecoveredExecutor {
    pub(super) info: ExecutorInfo,
    pub(super) kind: ExecutorKind,
    pub(super) run_id: String,
    pub(super) sandbox: PathBuf,
    pub(super) pid: Option<i32>,
    /// The run had ended; only its unacknowledged updates still matter.
    pub(super) completed: bool,
    pub(super) tasks: Vec<RecoveredTask>,
}

/// A task found in the checkpoints, with its recorded updates.
#[derive(Debug)]
pub(super) struct RecoveredTask {
    pub(super) info: TaskInfo,
    /// Every recorded update, oldest first.
    pub(super) updates: Vec<TaskStatus>,
    /// The recorded updates not acknowledged yet, oldest first.
    pub(super) unacknowledged: Vec<TaskStatus>,
    /// Process (group) of a task run by a built-in executor.
    pub(super) pid: Option<i32>,
}

/// The `meta` directory of one agent.
#[derive(Debug)]
pub(super) struct Meta {
    root: PathBuf,
}

/// One path component made of an id (no separators, no `..`).
fn component(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

/// A checkpoint that could not be written or read back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file or directory of the checkpoint could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A checkpointed protobuf file does not decode.
    #[error("{}: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: prost::DecodeError,
    },
}

fn io_error(path: &Path, source: std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `data` to `path` atomically (temporary file, then rename).
///
/// Checkpoints are not fsynced: write-and-rename survives a crash of the process (what agent
/// recovery is for), and an embedded cluster on one machine has no use for durability across a
/// power loss, which would cost an fsync per status update (a 20x slowdown of short tasks).
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), CheckpointError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    let temp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temp).map_err(|e| io_error(&temp, e))?;
    file.write_all(data).map_err(|e| io_error(&temp, e))?;
    std::fs::rename(&temp, path).map_err(|e| io_error(path, e))
}

fn read_message<M: Message + Default>(path: &Path) -> Result<M, CheckpointError> {
    let data = std::fs::read(path).map_err(|e| io_error(path, e))?;
    M::decode(data.as_slice()).map_err(|source| CheckpointError::Decode {
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn subdirectories(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(path) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn append_record(path: &Path, tag: u8, payload: &[u8]) -> Result<(), CheckpointError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    let mut data = Vec::with_capacity(payload.len() + 1);
    data.push(tag);
    data.extend_from_slice(payload);
    let mut record = BytesMut::new();
    encode_record(&mut record, &data);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    file.write_all(&record).map_err(|e| io_error(path, e))
}

/// Appends a recorded update to a task's update file.
pub(super) fn append_update(path: &Path, status: &TaskStatus) -> Result<(), CheckpointError> {
    append_record(path, b'U', &status.encode_to_vec())
}

/// Appends an acknowledgement to a task's update file.
pub(super) fn append_ack(path: &Path, uuid: &[u8]) -> Result<(), CheckpointError> {
    append_record(path, b'A', uuid)
}

/// Reads a task's update file: all updates, and the unacknowledged ones. A torn last record
/// (a crash in the middle of a write) is ignored.
fn read_updates(path: &Path) -> (Vec<TaskStatus>, Vec<TaskStatus>) {
    let Ok(data) = std::fs::read(path) else {
        return (Vec::new(), Vec::new());
    };
    let mut buffer = BytesMut::from(data.as_slice());
    let mut codec = RecordIoCodec::default();
    let mut updates = Vec::new();
    let mut acked: HashSet<Bytes> = HashSet::new();
    while let Ok(Some(record)) = codec.decode(&mut buffer) {
        match record.first() {
            Some(b'U') => match TaskStatus::decode(&record[1..]) {
                Ok(status) => updates.push(status),
                Err(err) => tracing::warn!(%err, "skipping a corrupt checkpointed update"),
            },
            Some(b'A') => {
                acked.insert(record.slice(1..));
            }
            _ => tracing::warn!("skipping an unknown checkpoint record"),
        }
    }
    let unacknowledged = updates
        .iter()
        .filter(|s| s.uuid.as_ref().is_none_or(|u| !acked.contains(u)))
        .cloned()
        .collect();
    (updates, unacknowledged)
}

impl Meta {
    pub(super) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn agent_dir(&self, agent: &AgentId) -> PathBuf {
        self.root.join("slaves").join(component(&agent.value))
    }

    fn framework_dir(&self, agent: &AgentId, framework: &str) -> PathBuf {
        self.agent_dir(agent)
            .join("frameworks")
            .join(component(framework))
    }

    fn executor_dir(&self, agent: &AgentId, framework: &str, executor: &str) -> PathBuf {
        self.framework_dir(agent, framework)
            .join("executors")
            .join(component(executor))
    }

    fn run_dir(&self, agent: &AgentId, framework: &str, executor: &str, run: &str) -> PathBuf {
        self.executor_dir(agent, framework, executor)
            .join("runs")
            .join(component(run))
    }

    /// The checkpointed agent, if any.
    pub(super) fn latest_agent(&self) -> Result<Option<AgentInfo>, CheckpointError> {
        let Some(id) = read_text(&self.root.join("slaves").join("latest")) else {
            return Ok(None);
        };
        let path = self.agent_dir(&AgentId { value: id }).join("slave.info");
        if !path.exists() {
            return Ok(None);
        }
        read_message(&path).map(Some)
    }

    /// Checkpoints the agent's id and info (including its port).
    pub(super) fn write_agent(&self, info: &AgentInfo) -> Result<(), CheckpointError> {
        let id = info.id.clone().unwrap_or_default();
        write_atomic(
            &self.agent_dir(&id).join("slave.info"),
            &info.encode_to_vec(),
        )?;
        write_atomic(
            &self.root.join("slaves").join("latest"),
            id.value.as_bytes(),
        )
    }

    /// Makes the next start on this work directory a fresh agent (after a clean shutdown that
    /// killed every executor, as Mesos does).
    pub(super) fn forget_latest(&self) {
        let latest = self.root.join("slaves").join("latest");
        if let Err(err) = std::fs::remove_file(&latest) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(%err, "could not forget the checkpointed agent");
            }
        }
    }

    pub(super) fn write_framework(
        &self,
        agent: &AgentId,
        info: &FrameworkInfo,
    ) -> Result<(), CheckpointError> {
        let id = info.id.clone().unwrap_or_default().value;
        write_atomic(
            &self.framework_dir(agent, &id).join("framework.info"),
            &info.encode_to_vec(),
        )
    }

    pub(super) fn remove_framework(
        &self,
        agent: &AgentId,
        framework: &str,
    ) -> Result<(), CheckpointError> {
        let dir = self.framework_dir(agent, framework);
        match std::fs::remove_dir_all(&dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io_error(&dir, err)),
            _ => Ok(()),
        }
    }

    pub(super) fn write_executor(
        &self,
        agent: &AgentId,
        framework: &str,
        info: &ExecutorInfo,
        run: &str,
        kind: &str,
        sandbox: &Path,
    ) -> Result<(), CheckpointError> {
        let executor = &info.executor_id.value;
        let dir = self.executor_dir(agent, framework, executor);
        write_atomic(&dir.join("executor.info"), &info.encode_to_vec())?;
        let run_dir = self.run_dir(agent, framework, executor, run);
        write_atomic(&run_dir.join("kind"), kind.as_bytes())?;
        write_atomic(
            &run_dir.join("sandbox"),
            sandbox.to_string_lossy().as_bytes(),
        )?;
        write_atomic(&dir.join("runs").join("latest"), run.as_bytes())
    }

    pub(super) fn write_pid(
        &self,
        agent: &AgentId,
        framework: &str,
        executor: &str,
        run: &str,
        pid: i32,
    ) -> Result<(), CheckpointError> {
        let path = self
            .run_dir(agent, framework, executor, run)
            .join("forked.pid");
        write_atomic(&path, pid.to_string().as_bytes())
    }

    /// Checkpoints the process (group) of a task run by a built-in executor.
    pub(super) fn write_task_pid(
        &self,
        agent: &AgentId,
        framework: &str,
        executor: &str,
        run: &str,
        task: &str,
        pid: i32,
    ) -> Result<(), CheckpointError> {
        let path = self
            .run_dir(agent, framework, executor, run)
            .join("tasks")
            .join(component(task))
            .join("task.pid");
        write_atomic(&path, pid.to_string().as_bytes())
    }

    pub(super) fn mark_run_completed(
        &self,
        agent: &AgentId,
        framework: &str,
        executor: &str,
        run: &str,
    ) -> Result<(), CheckpointError> {
        let run_dir = self.run_dir(agent, framework, executor, run);
        if run_dir.exists() {
            write_atomic(&run_dir.join("completed"), b"")
        } else {
            Ok(())
        }
    }

    pub(super) fn write_task(
        &self,
        agent: &AgentId,
        framework: &str,
        executor: &str,
        run: &str,
        task: &TaskInfo,
    ) -> Result<(), CheckpointError> {
        let path = self
            .run_dir(agent, framework, executor, run)
            .join("tasks")
            .join(component(&task.task_id.value))
            .join("task.info");
        write_atomic(&path, &task.encode_to_vec())
    }

    pub(super) fn updates_path(
        &self,
        agent: &AgentId,
        framework: &str,
        executor: &str,
        run: &str,
        task: &str,
    ) -> PathBuf {
        self.run_dir(agent, framework, executor, run)
            .join("tasks")
            .join(component(task))
            .join("task.updates")
    }

    /// Everything checkpointed for `agent`: frameworks with the latest run of each of their
    /// executors.
    pub(super) fn recover(
        &self,
        agent: &AgentId,
    ) -> Result<Vec<RecoveredFramework>, CheckpointError> {
        let mut frameworks = Vec::new();
        for framework_dir in subdirectories(&self.agent_dir(agent).join("frameworks")) {
            let info_path = framework_dir.join("framework.info");
            if !info_path.exists() {
                continue;
            }
            let info: FrameworkInfo = read_message(&info_path)?;
            let mut executors = Vec::new();
            for executor_dir in subdirectories(&framework_dir.join("executors")) {
                let Some(run_id) = read_text(&executor_dir.join("runs").join("latest")) else {
                    continue;
                };
                let run_dir = executor_dir.join("runs").join(component(&run_id));
                let completed = run_dir.join("completed").exists();
                let executor_info: ExecutorInfo =
                    read_message(&executor_dir.join("executor.info"))?;
                let kind = read_text(&run_dir.join("kind"))
                    .and_then(|k| ExecutorKind::parse(&k))
                    .unwrap_or(ExecutorKind::Custom);
                let sandbox = read_text(&run_dir.join("sandbox"))
                    .map(PathBuf::from)
                    .unwrap_or_default();
                let pid = read_text(&run_dir.join("forked.pid")).and_then(|p| p.parse().ok());
                let mut tasks = Vec::new();
                for task_dir in subdirectories(&run_dir.join("tasks")) {
                    let task_path = task_dir.join("task.info");
                    if !task_path.exists() {
                        continue;
                    }
                    let task: TaskInfo = read_message(&task_path)?;
                    let (updates, unacknowledged) = read_updates(&task_dir.join("task.updates"));
                    let pid = read_text(&task_dir.join("task.pid")).and_then(|p| p.parse().ok());
                    tasks.push(RecoveredTask {
                        info: task,
                        updates,
                        unacknowledged,
                        pid,
                    });
                }
                executors.push(RecoveredExecutor {
                    info: executor_info,
                    kind,
                    run_id,
                    sandbox,
                    pid,
                    completed,
                    tasks,
                });
            }
            frameworks.push(RecoveredFramework { info, executors });
        }
        Ok(frameworks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(n: u8) -> TaskStatus {
        TaskStatus {
            state: i32::from(n),
            uuid: Some(Bytes::from(vec![n; 16])),
            ..Default::default()
        }
    }

    #[test]
    fn update_files_replay_updates_and_acknowledgements() {
        let dir = std::env::temp_dir().join(format!("agent-ckpt-{}", uuid::Uuid::new_v4()));
        let path = dir.join("task.updates");
        append_update(&path, &status(1)).unwrap();
        append_update(&path, &status(2)).unwrap();
        append_ack(&path, &[1u8; 16]).unwrap();
        append_update(&path, &status(3)).unwrap();
        // A torn record at the end is ignored.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"40\nU\x08").unwrap();
        let (all, unacknowledged) = read_updates(&path);
        assert_eq!(all.len(), 3);
        let states: Vec<i32> = unacknowledged.iter().map(|s| s.state).collect();
        assert_eq!(states, vec![2, 3]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn ids_become_single_path_components() {
        assert_eq!(component("a/b"), "a_b");
        assert_eq!(component(".."), "_..");
        assert_eq!(component(""), "_");
        assert_eq!(component("fw-1"), "fw-1");
    }
}
