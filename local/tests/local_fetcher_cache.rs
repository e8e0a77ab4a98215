//! The agent's fetcher cache (`CommandInfo.URI.cache`): many tasks fetching one cached
//! executable download it once, and every sandbox gets it as a hard link of the cache entry
//! (same inode); a cached data file is copied instead, so that a task changing its copy does not
//! change what the next task gets.

mod local_agent_support;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use local_agent_support::*;
use mesos_local::agent::FetcherCacheConfig;
use mesos_sdk::v1::command_info::Uri;
use mesos_sdk::v1::{CommandInfo, ExecutorId, TaskState};

const TASKS: usize = 50;
const SIZE: usize = 20 << 20;

/// A shell script of about `SIZE` bytes: it prints `ran` and exits before the padding.
fn big_script() -> Vec<u8> {
    let mut script = b"#!/bin/sh\necho ran\nexit 0\n".to_vec();
    script.resize(SIZE, b'#');
    script
}

fn sandbox_of(agent: &mesos_local::agent::AgentHandle, task_id: &str) -> std::path::PathBuf {
    agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: task_id.into(),
            },
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_share_one_download_of_a_cached_executable() {
    let mut files = HashMap::new();
    files.insert("/tool.sh".to_string(), big_script());
    let server = FileServer::start(files).await;
    let cache_dir = tempfile::tempdir().unwrap();
    let mut agent_config = config(None);
    agent_config.fetcher_cache = FetcherCacheConfig {
        dir: Some(cache_dir.path().to_path_buf()),
        ..FetcherCacheConfig::default()
    };
    let (agent, mut master) = start(agent_config).await;
    let command = CommandInfo {
        value: Some("./tool.sh".into()),
        uris: vec![Uri {
            value: server.url("/tool.sh"),
            executable: Some(true),
            cache: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ids: Vec<String> = (0..TASKS).map(|i| format!("t-{i}")).collect();
    for id in &ids {
        master.run_task(framework(false), None, task(id, Some(command.clone())));
    }
    for id in &ids {
        let updates = master.updates_until_terminal(id).await;
        assert_eq!(
            state_of(updates.last().unwrap()),
            TaskState::TaskFinished,
            "{id}: {updates:?}"
        );
    }
    assert_eq!(server.hits("/tool.sh"), 1, "one download for {TASKS} tasks");

    let entries: Vec<_> = std::fs::read_dir(cache_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one cache entry: {entries:?}");
    let cached = std::fs::metadata(&entries[0]).unwrap();
    assert_eq!(cached.len(), SIZE as u64);
    for id in &ids {
        let sandbox = sandbox_of(&agent, id);
        let tool = std::fs::metadata(sandbox.join("tool.sh")).unwrap();
        assert_eq!(
            tool.ino(),
            cached.ino(),
            "{id}: a hard link of the cache entry"
        );
        assert_eq!(tool.dev(), cached.dev());
        assert_eq!(tool.mode() & 0o111, 0o111, "{id}: executable");
        assert_eq!(
            std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
            "ran\n",
            "{id}"
        );
    }
    assert!(cached.nlink() > TASKS as u64, "links: {}", cached.nlink());
    agent.shutdown().await;
}

#[tokio::test]
async fn a_cached_data_file_is_copied_and_a_task_changing_it_leaves_the_cache_alone() {
    let mut files = HashMap::new();
    files.insert("/data.txt".to_string(), b"original".to_vec());
    let server = FileServer::start(files).await;
    let (agent, mut master) = start(config(None)).await;
    let command = CommandInfo {
        value: Some("cat data.txt; echo changed > data.txt".into()),
        uris: vec![Uri {
            value: server.url("/data.txt"),
            cache: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    };
    for id in ["t-a", "t-b"] {
        master.run_task(framework(false), None, task(id, Some(command.clone())));
        let updates = master.updates_until_terminal(id).await;
        assert_eq!(
            state_of(updates.last().unwrap()),
            TaskState::TaskFinished,
            "{id}: {updates:?}"
        );
        let sandbox = sandbox_of(&agent, id);
        assert_eq!(
            std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
            "original",
            "{id}"
        );
        assert_eq!(
            std::fs::read_to_string(sandbox.join("data.txt")).unwrap(),
            "changed\n"
        );
    }
    assert_eq!(server.hits("/data.txt"), 1);
    agent.shutdown().await;
}

/// A cache on another file system than the sandboxes (tmpfs `/dev/shm` here): the executable
/// cannot be hard-linked and is copied instead; it still runs, and is downloaded once.
#[tokio::test]
async fn a_cache_on_another_file_system_copies_executables() {
    let shm = std::path::Path::new("/dev/shm");
    let Ok(shm_dev) = std::fs::metadata(shm).map(|m| m.dev()) else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    let work_dir = tempfile::tempdir().unwrap();
    if std::fs::metadata(work_dir.path()).unwrap().dev() == shm_dev {
        eprintln!("skipped: /dev/shm and the temporary directory share a file system");
        return;
    }
    let cache_dir = tempfile::tempdir_in(shm).unwrap();
    let mut files = HashMap::new();
    files.insert(
        "/tool.sh".to_string(),
        b"#!/bin/sh\necho copied-ran\n".to_vec(),
    );
    let server = FileServer::start(files).await;
    let mut agent_config = config(Some(work_dir.path().to_path_buf()));
    agent_config.fetcher_cache = FetcherCacheConfig {
        dir: Some(cache_dir.path().to_path_buf()),
        ..FetcherCacheConfig::default()
    };
    let (agent, mut master) = start(agent_config).await;
    let command = CommandInfo {
        value: Some("./tool.sh".into()),
        uris: vec![Uri {
            value: server.url("/tool.sh"),
            executable: Some(true),
            cache: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    };
    for id in ["t-1", "t-2"] {
        master.run_task(framework(false), None, task(id, Some(command.clone())));
        let updates = master.updates_until_terminal(id).await;
        assert_eq!(
            state_of(updates.last().unwrap()),
            TaskState::TaskFinished,
            "{id}: {updates:?}"
        );
        let sandbox = sandbox_of(&agent, id);
        let tool = std::fs::metadata(sandbox.join("tool.sh")).unwrap();
        assert_eq!(tool.nlink(), 1, "{id}: a copy");
        assert_eq!(tool.mode() & 0o777, 0o755);
        assert_eq!(
            std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
            "copied-ran\n"
        );
    }
    assert_eq!(server.hits("/tool.sh"), 1);
    agent.shutdown().await;
}
