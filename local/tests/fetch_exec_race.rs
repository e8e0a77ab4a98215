//! The fetcher's `ETXTBSY` race, under pressure: many tasks on one agent each download an
//! executable and run it at once, while the others fork their processes. A write descriptor of
//! a freshly fetched executable inherited by another task's forked child made its `exec` fail
//! with "Text file busy" (the task failed with status 126, in about one run of five here
//! before the fix); every task must finish.

mod local_agent_support;

use std::collections::HashMap;

use local_agent_support::*;
use mesos_sdk::v1::command_info::Uri;
use mesos_sdk::v1::{CommandInfo, TaskState};

const TASKS: usize = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executables_fetched_at_once_all_run() {
    // Large enough that a download spans many writes (and other tasks' forks).
    let mut script = b"#!/bin/sh\necho ran\nexit 0\n".to_vec();
    while script.len() < 2 << 20 {
        script.extend_from_slice(b"# padding padding padding padding padding padding padding\n");
    }
    let mut files = HashMap::new();
    files.insert("/tool.sh".to_string(), script);
    let server = FileServer::start(files).await;
    let (agent, mut master) = start(config(None)).await;
    for index in 0..TASKS {
        let command = CommandInfo {
            uris: vec![Uri {
                value: server.url("/tool.sh"),
                executable: Some(true),
                ..Default::default()
            }],
            ..shell("./tool.sh")
        };
        master.run_task(
            framework(false),
            None,
            task(&format!("race-{index}"), Some(command)),
        );
    }
    for index in 0..TASKS {
        let updates = master
            .updates_until_terminal(&format!("race-{index}"))
            .await;
        let last = updates.last().unwrap();
        assert_eq!(
            state_of(last),
            TaskState::TaskFinished,
            "race-{index}: {:?}",
            last.message()
        );
    }
    agent.shutdown().await;
}
