//! The executor runtime against a scripted agent: SUBSCRIBE bodies, update stamping, the
//! acknowledgement bookkeeping, reconnection rules, SHUTDOWN, ERROR, and authentication.

mod executor_support;

use std::time::Duration;

use bytes::Bytes;
use executor_support::*;
use mesos_sdk::executor::{self, Error, Executor, ExecutorHandle, Outcome, Runtime};
use mesos_sdk::v1::executor::call;
use mesos_sdk::v1::task_status::Source;
use mesos_sdk::v1::{KillPolicy, TaskId, TaskInfo, TaskState};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// What the test executor saw, in order.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Subscribed,
    Launch(String),
    Kill(String, Option<KillPolicy>),
    Acknowledged(String, Uuid),
    Message(Bytes),
    Shutdown,
    Error(String),
    Disconnected,
}

/// Reports RUNNING on launch and, when `kills_tasks`, KILLED on kill.
struct TestExecutor {
    seen: mpsc::UnboundedSender<Seen>,
    kills_tasks: bool,
}

impl Executor for TestExecutor {
    async fn subscribed(
        &mut self,
        _: &ExecutorHandle,
        _: &mesos_sdk::v1::executor::event::Subscribed,
    ) {
        let _ = self.seen.send(Seen::Subscribed);
    }

    async fn launch(&mut self, handle: &ExecutorHandle, task: TaskInfo) {
        let _ = self.seen.send(Seen::Launch(task.task_id.value.clone()));
        handle
            .send_status(task.task_id, TaskState::TaskRunning, "running")
            .unwrap();
    }

    async fn kill(&mut self, handle: &ExecutorHandle, task_id: TaskId, policy: Option<KillPolicy>) {
        let _ = self.seen.send(Seen::Kill(task_id.value.clone(), policy));
        if self.kills_tasks {
            handle
                .send_status(task_id, TaskState::TaskKilled, "killed")
                .unwrap();
        }
    }

    async fn acknowledged(&mut self, _: &ExecutorHandle, task_id: &TaskId, uuid: Uuid) {
        let _ = self
            .seen
            .send(Seen::Acknowledged(task_id.value.clone(), uuid));
    }

    async fn message(&mut self, _: &ExecutorHandle, data: Bytes) {
        let _ = self.seen.send(Seen::Message(data));
    }

    async fn shutdown(&mut self, _: &ExecutorHandle) {
        let _ = self.seen.send(Seen::Shutdown);
    }

    async fn error(&mut self, _: &ExecutorHandle, message: &str) {
        let _ = self.seen.send(Seen::Error(message.to_owned()));
    }

    async fn disconnected(&mut self, _: &ExecutorHandle) {
        let _ = self.seen.send(Seen::Disconnected);
    }
}

struct Running {
    handle: ExecutorHandle,
    seen: mpsc::UnboundedReceiver<Seen>,
    driver: JoinHandle<Result<Outcome, Error>>,
}

impl Running {
    async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(WAIT, self.seen.recv())
            .await
            .expect("the executor saw nothing in time")
            .expect("the driver stopped")
    }

    async fn outcome(&mut self) -> Result<Outcome, Error> {
        tokio::time::timeout(WAIT, &mut self.driver)
            .await
            .expect("the driver did not return in time")
            .expect("the driver panicked")
    }
}

fn start(config: executor::ExecutorConfig, kills_tasks: bool) -> Running {
    let (sender, seen) = mpsc::unbounded_channel();
    let runtime = Runtime::new(config).unwrap();
    let handle = runtime.handle();
    let driver = tokio::spawn(runtime.run(TestExecutor {
        seen: sender,
        kills_tasks,
    }));
    Running {
        handle,
        seen,
        driver,
    }
}

fn task_ids(subscribe: &call::Subscribe) -> Vec<&str> {
    subscribe
        .unacknowledged_tasks
        .iter()
        .map(|t| t.task_id.value.as_str())
        .collect()
}

#[tokio::test]
async fn first_subscribe_names_the_executor_and_carries_no_backlog() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscribe = agent.accept_subscription().await;
    assert_eq!(subscribe.request.path, "/api/v1/executor");
    assert_eq!(
        subscribe.request.header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(
        subscribe.request.header("accept").as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(subscribe.request.header("authorization"), None);
    assert_eq!(subscribe.call.executor_id.value, EXECUTOR);
    assert_eq!(subscribe.call.framework_id.value, FRAMEWORK);
    let body = subscribe.call.subscribe.as_ref().unwrap();
    assert!(body.unacknowledged_tasks.is_empty());
    assert!(body.unacknowledged_updates.is_empty());
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    send(subscribe.stream(), &heartbeat_event());
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn updates_carry_a_fresh_v4_uuid_and_executor_source() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscribe = agent.accept_subscription().await;
    send(subscribe.stream(), &launch_event(task("t1", Some("true"))));
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    assert_eq!(running.next_seen().await, Seen::Launch("t1".into()));

    let update = agent.expect(call::Type::Update).await;
    assert_eq!(update.call.executor_id.value, EXECUTOR);
    assert_eq!(update.call.framework_id.value, FRAMEWORK);
    let status = update.status();
    assert_eq!(status.task_id.value, "t1");
    assert_eq!(status.state(), TaskState::TaskRunning);
    assert_eq!(status.source(), Source::Executor);
    assert_eq!(status.executor_id.as_ref().unwrap().value, EXECUTOR);
    assert_eq!(status.agent_id.as_ref().unwrap().value, AGENT);
    assert!(status.timestamp.unwrap() > 1.0e9);
    let uuid_bytes = status.uuid.as_ref().unwrap();
    assert_eq!(uuid_bytes.len(), 16);
    assert_eq!(Uuid::from_slice(uuid_bytes).unwrap().get_version_num(), 4);

    let second = running
        .handle
        .send_status(
            TaskId { value: "t1".into() },
            TaskState::TaskFinished,
            "done",
        )
        .unwrap();
    let finished = agent.expect(call::Type::Update).await;
    assert_eq!(finished.status().state(), TaskState::TaskFinished);
    assert_eq!(
        finished.status().uuid.as_deref(),
        Some(&second.as_bytes()[..])
    );
    assert_ne!(finished.status().uuid, status.uuid);

    send(subscribe.stream(), &acknowledged_event(status));
    assert_eq!(
        running.next_seen().await,
        Seen::Acknowledged("t1".into(), Uuid::from_slice(uuid_bytes).unwrap())
    );
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn resubscribe_resends_what_was_not_acknowledged() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, true), true);
    let first = agent.accept_subscription().await;
    send(first.stream(), &launch_event(task("t1", Some("true"))));
    send(first.stream(), &launch_event(task("t2", Some("true"))));
    send(first.stream(), &launch_event(task("t3", Some("true"))));
    let mut updates = Vec::new();
    for _ in 0..3 {
        updates.push(agent.expect(call::Type::Update).await.status().clone());
    }
    // The agent checkpoints and acknowledges t1's update only.
    let t1 = updates.iter().find(|s| s.task_id.value == "t1").unwrap();
    send(first.stream(), &acknowledged_event(t1));
    while running.next_seen().await
        != Seen::Acknowledged(
            "t1".into(),
            Uuid::from_slice(t1.uuid.as_deref().unwrap()).unwrap(),
        )
    {}
    first.stream().abort();
    let second = agent.expect(call::Type::Subscribe).await;
    let body = second.call.subscribe.as_ref().unwrap();
    assert_eq!(task_ids(body), ["t2", "t3"]);
    let resent: Vec<(&str, Option<&Bytes>)> = body
        .unacknowledged_updates
        .iter()
        .map(|u| (u.status.task_id.value.as_str(), u.status.uuid.as_ref()))
        .collect();
    let expected: Vec<(&str, Option<&Bytes>)> = updates
        .iter()
        .filter(|s| s.task_id.value != "t1")
        .map(|s| (s.task_id.value.as_str(), s.uuid.as_ref()))
        .collect();
    assert_eq!(resent, expected);
    assert!(
        body.unacknowledged_updates
            .iter()
            .all(|u| u.status.source() == Source::Executor)
    );
    assert_eq!(running.next_seen().await, Seen::Disconnected);

    // After acknowledging everything, a third subscription carries nothing.
    send(second.stream(), &subscribed_event());
    for status in updates.iter().filter(|s| s.task_id.value != "t1") {
        send(second.stream(), &acknowledged_event(status));
    }
    loop {
        if let Seen::Acknowledged(id, _) = running.next_seen().await {
            if id == "t3" {
                break;
            }
        }
    }
    second.stream().abort();
    let third = agent.expect(call::Type::Subscribe).await;
    let body = third.call.subscribe.as_ref().unwrap();
    assert!(body.unacknowledged_tasks.is_empty(), "{body:?}");
    assert!(body.unacknowledged_updates.is_empty(), "{body:?}");
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn updates_made_while_disconnected_travel_in_the_next_subscribe() {
    let mut agent = ScriptedAgent::start().await;
    let mut config = config(&agent, true);
    config.subscription_backoff_max = Duration::from_millis(300);
    let mut running = start(config, true);
    let first = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    agent.reject_next_subscribe(Answer::Status(503, "Agent has not finished recovery"));
    first.stream().abort();
    assert_eq!(running.next_seen().await, Seen::Disconnected);
    let uuid = running
        .handle
        .send_status(
            TaskId {
                value: "late".into(),
            },
            TaskState::TaskFinished,
            "done",
        )
        .unwrap();
    let rejected = agent.expect(call::Type::Subscribe).await;
    assert!(rejected.stream.is_none());
    let accepted = agent.expect(call::Type::Subscribe).await;
    let body = accepted.call.subscribe.as_ref().unwrap();
    assert_eq!(body.unacknowledged_updates.len(), 1);
    let status = &body.unacknowledged_updates[0].status;
    assert_eq!(status.uuid.as_deref(), Some(&uuid.as_bytes()[..]));
    assert_eq!(status.agent_id.as_ref().unwrap().value, AGENT);
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn a_cut_stream_is_resubscribed_within_the_backoff_when_checkpointing() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, true), true);
    let mut subscription = agent.accept_subscription().await;
    for _ in 0..3 {
        assert_eq!(running.next_seen().await, Seen::Subscribed);
        let cut_at = tokio::time::Instant::now();
        subscription.stream().abort();
        subscription = agent.accept_subscription().await;
        // Backoff max is 50 ms; allow generous scheduling slack on a loaded machine.
        assert!(cut_at.elapsed() < Duration::from_secs(3));
        assert_eq!(running.next_seen().await, Seen::Disconnected);
    }
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn a_cleanly_closed_stream_ends_the_driver_when_not_checkpointing() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    drop(subscription);
    assert_eq!(running.next_seen().await, Seen::Disconnected);
    assert_eq!(running.outcome().await.unwrap(), Outcome::Disconnected);
    assert!(agent.no_call_within(Duration::from_millis(200)).await);
}

#[tokio::test]
async fn a_broken_stream_ends_the_driver_when_not_checkpointing() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    subscription.stream().abort();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Disconnected);
}

#[tokio::test]
async fn an_undecodable_event_breaks_the_stream_and_resubscribes() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, true), true);
    let subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    // Well framed, but not an Event: a field whose length runs past the record.
    subscription.stream().raw(&b"2\n\x12\x05"[..]);
    let _second = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Disconnected);
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn recovery_gives_up_after_the_recovery_timeout() {
    let mut agent = ScriptedAgent::start().await;
    let mut config = config(&agent, true);
    config.recovery_timeout = Duration::from_millis(400);
    config.subscription_backoff_max = Duration::from_millis(20);
    let mut running = start(config, true);
    let subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    agent.reject_all_subscribes(Answer::Status(503, "Agent has not finished recovery"));
    let cut_at = tokio::time::Instant::now();
    subscription.stream().abort();
    let result = running.outcome().await;
    let elapsed = cut_at.elapsed();
    match result {
        Err(Error::RecoveryTimedOut {
            timeout,
            last_error,
        }) => {
            assert_eq!(timeout, Duration::from_millis(400));
            assert!(last_error.contains("503"), "{last_error}");
        }
        other => panic!("expected RecoveryTimedOut, got {other:?}"),
    }
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    // Retried several times in between (each wait is at most 20 ms).
    let mut attempts = 0;
    while !agent.no_call_within(Duration::from_millis(50)).await {
        attempts += 1;
    }
    assert!(attempts >= 3, "only {attempts} attempts");
}

#[tokio::test]
async fn the_first_subscription_is_retried_until_the_registration_timeout() {
    let mut agent = ScriptedAgent::start().await;
    agent.reject_next_subscribe(Answer::Status(503, "Agent has not finished recovery"));
    agent.reject_next_subscribe(Answer::Status(503, "Agent has not finished recovery"));
    let mut config = config(&agent, false);
    config.subscription_backoff_max = Duration::from_millis(20);
    let mut running = start(config, true);
    assert!(agent.expect(call::Type::Subscribe).await.stream.is_none());
    assert!(agent.expect(call::Type::Subscribe).await.stream.is_none());
    let _subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);

    let agent = ScriptedAgent::start().await;
    agent.reject_all_subscribes(Answer::Status(503, "Agent has not finished recovery"));
    let mut short = executor_support::config(&agent, false);
    short.registration_timeout = Duration::from_millis(300);
    short.subscription_backoff_max = Duration::from_millis(20);
    let mut running = start(short, true);
    assert!(matches!(
        running.outcome().await,
        Err(Error::RegistrationTimedOut { .. })
    ));
}

#[tokio::test]
async fn shutdown_kills_every_task_and_waits_for_terminal_updates() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscription = agent.accept_subscription().await;
    send(
        subscription.stream(),
        &launch_event(task("a", Some("sleep 100"))),
    );
    send(
        subscription.stream(),
        &launch_event(task("b", Some("sleep 100"))),
    );
    agent.expect(call::Type::Update).await;
    agent.expect(call::Type::Update).await;
    send(subscription.stream(), &shutdown_event());

    let mut killed = Vec::new();
    for _ in 0..2 {
        let update = agent.expect(call::Type::Update).await;
        assert_eq!(update.status().state(), TaskState::TaskKilled);
        killed.push(update.status().task_id.value.clone());
    }
    killed.sort();
    assert_eq!(killed, ["a", "b"]);
    assert_eq!(running.outcome().await.unwrap(), Outcome::Shutdown);

    let mut seen = Vec::new();
    while let Ok(event) = running.seen.try_recv() {
        seen.push(event);
    }
    let shutdown_at = seen.iter().position(|s| *s == Seen::Shutdown).unwrap();
    let kills: Vec<&Seen> = seen[shutdown_at..]
        .iter()
        .filter(|s| matches!(s, Seen::Kill(..)))
        .collect();
    assert_eq!(kills.len(), 2);
    // Half of the 2 s shutdown grace period.
    let Seen::Kill(_, Some(policy)) = kills[0] else {
        panic!("kill without policy: {kills:?}");
    };
    assert_eq!(policy.grace_period.unwrap().nanoseconds, 1_000_000_000);
}

#[tokio::test]
async fn shutdown_reports_task_killed_for_tasks_the_executor_left_running() {
    let mut agent = ScriptedAgent::start().await;
    let mut config = config(&agent, false);
    config.shutdown_grace_period = Duration::from_millis(400);
    let mut running = start(config, false);
    let subscription = agent.accept_subscription().await;
    send(
        subscription.stream(),
        &launch_event(task("stubborn", Some("sleep 100"))),
    );
    agent.expect(call::Type::Update).await;
    let shutdown_at = tokio::time::Instant::now();
    send(subscription.stream(), &shutdown_event());
    let update = agent.expect(call::Type::Update).await;
    assert_eq!(update.status().task_id.value, "stubborn");
    assert_eq!(update.status().state(), TaskState::TaskKilled);
    assert_eq!(update.status().source(), Source::Executor);
    assert_eq!(running.outcome().await.unwrap(), Outcome::Shutdown);
    // Three quarters of the grace period, give or take scheduling.
    let elapsed = shutdown_at.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn shutdown_without_tasks_returns_at_once() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, true), true);
    let subscription = agent.accept_subscription().await;
    send(subscription.stream(), &shutdown_event());
    assert_eq!(running.outcome().await.unwrap(), Outcome::Shutdown);
}

#[tokio::test]
async fn an_error_event_aborts_and_resubscribes() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let first = agent.accept_subscription().await;
    send(first.stream(), &launch_event(task("t1", Some("true"))));
    agent.expect(call::Type::Update).await;
    send(first.stream(), &error_event("Unrecoverable error"));
    let second = agent.expect(call::Type::Subscribe).await;
    let body = second.call.subscribe.as_ref().unwrap();
    assert_eq!(task_ids(body), ["t1"]);
    assert_eq!(body.unacknowledged_updates.len(), 1);
    let mut seen = Vec::new();
    loop {
        let event = running.next_seen().await;
        let done = matches!(event, Seen::Error(_));
        seen.push(event);
        if done {
            break;
        }
    }
    assert_eq!(
        seen.last(),
        Some(&Seen::Error("Unrecoverable error".into()))
    );
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn messages_go_both_ways() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    send(subscription.stream(), &message_event(b"from the scheduler"));
    assert_eq!(
        running.next_seen().await,
        Seen::Message(Bytes::from_static(b"from the scheduler"))
    );
    running
        .handle
        .send_message(Bytes::from_static(b"to the scheduler"))
        .unwrap();
    let message = agent.expect(call::Type::Message).await;
    assert_eq!(
        message.call.message.as_ref().unwrap().data,
        Bytes::from_static(b"to the scheduler")
    );
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn refused_updates_are_sent_again_with_the_same_uuid() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let _subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    agent.reject_next_call(Answer::Status(503, "busy"));
    let uuid = running
        .handle
        .send_status(TaskId { value: "t".into() }, TaskState::TaskRunning, "up")
        .unwrap();
    let refused = agent.expect(call::Type::Update).await;
    let again = agent.expect(call::Type::Update).await;
    assert_eq!(refused.status().uuid.as_deref(), Some(&uuid.as_bytes()[..]));
    assert_eq!(again.status().uuid.as_deref(), Some(&uuid.as_bytes()[..]));
    assert!(agent.no_call_within(Duration::from_millis(400)).await);
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn the_bearer_token_is_sent_on_every_call() {
    let mut agent = ScriptedAgent::start_with_token(Some("good.jwt")).await;
    let mut config = config(&agent, false);
    config.authentication_token = Some("good.jwt".into());
    let mut running = start(config, true);
    let subscription = agent.accept_subscription().await;
    assert_eq!(
        subscription.request.header("authorization").as_deref(),
        Some("Bearer good.jwt")
    );
    send(
        subscription.stream(),
        &launch_event(task("t", Some("true"))),
    );
    let update = agent.expect(call::Type::Update).await;
    assert_eq!(
        update.request.header("authorization").as_deref(),
        Some("Bearer good.jwt")
    );
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn a_bad_token_is_a_typed_unauthorized_error() {
    let agent = ScriptedAgent::start_with_token(Some("good.jwt")).await;
    let mut config = config(&agent, true);
    config.authentication_token = Some("forged.jwt".into());
    let mut running = start(config, true);
    match running.outcome().await {
        Err(Error::Unauthorized(err)) => {
            assert_eq!(err.status().map(|s| s.as_u16()), Some(401));
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn a_rejected_subscription_is_final() {
    let mut agent = ScriptedAgent::start().await;
    agent.reject_next_subscribe(Answer::Status(400, "Executor cannot be found"));
    let mut running = start(config(&agent, true), true);
    agent.expect(call::Type::Subscribe).await;
    match running.outcome().await {
        Err(Error::Rejected(err)) => assert!(err.to_string().contains("Executor cannot be found")),
        other => panic!("expected Rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn launch_group_launches_every_task() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscription = agent.accept_subscription().await;
    send(
        subscription.stream(),
        &launch_group_event(vec![task("g1", Some("true")), task("g2", Some("true"))]),
    );
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    assert_eq!(running.next_seen().await, Seen::Launch("g1".into()));
    assert_eq!(running.next_seen().await, Seen::Launch("g2".into()));
    agent.expect(call::Type::Update).await;
    agent.expect(call::Type::Update).await;
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn kill_passes_the_event_policy_to_the_executor() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let subscription = agent.accept_subscription().await;
    send(
        subscription.stream(),
        &launch_event(task("k", Some("sleep 100"))),
    );
    agent.expect(call::Type::Update).await;
    let policy = KillPolicy {
        grace_period: Some(mesos_sdk::v1::DurationInfo {
            nanoseconds: 7_000_000,
        }),
    };
    send(subscription.stream(), &kill_event("k", Some(policy)));
    let killed = agent.expect(call::Type::Update).await;
    assert_eq!(killed.status().state(), TaskState::TaskKilled);
    let mut saw_kill = false;
    while let Ok(event) = running.seen.try_recv() {
        saw_kill |= event == Seen::Kill("k".into(), Some(policy));
    }
    assert!(saw_kill);
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn the_json_format_works_end_to_end() {
    let mut agent = ScriptedAgent::start().await;
    let mut config = config(&agent, false);
    config.format = mesos_sdk::codec::Format::Json;
    let mut running = start(config, true);
    let subscribe = agent.expect(call::Type::Subscribe).await;
    assert_eq!(
        subscribe.request.header("content-type").as_deref(),
        Some("application/json")
    );
    let text = String::from_utf8(subscribe.request.body.to_vec()).unwrap();
    assert!(text.contains("\"SUBSCRIBE\""), "{text}");
    send_json(subscribe.stream(), &subscribed_event());
    send_json(subscribe.stream(), &launch_event(task("j", Some("true"))));
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    assert_eq!(running.next_seen().await, Seen::Launch("j".into()));
    let update = agent.expect(call::Type::Update).await;
    let text = String::from_utf8(update.request.body.to_vec()).unwrap();
    assert!(text.contains("\"SOURCE_EXECUTOR\""), "{text}");
    assert_eq!(update.status().uuid.as_ref().unwrap().len(), 16);
    send_json(subscribe.stream(), &acknowledged_event(update.status()));
    assert!(matches!(running.next_seen().await, Seen::Acknowledged(..)));
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
}

#[tokio::test]
async fn a_silent_accepted_subscription_is_retried() {
    let mut agent = ScriptedAgent::start().await;
    let mut config = config(&agent, false);
    config.registration_timeout = Duration::from_millis(500);
    config.subscription_backoff_max = Duration::from_millis(20);
    let mut running = start(config, true);
    // The first stream stays silent: no SUBSCRIBED.
    let silent = agent.expect(call::Type::Subscribe).await;
    let second = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    drop(silent);
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
    drop(second);
}

#[tokio::test]
async fn an_unreadable_ca_file_is_a_typed_error() {
    let agent = ScriptedAgent::start().await;
    let mut config = config(&agent, false);
    config.tls = true;
    config.tls_ca_file = Some("/nonexistent/ca.pem".into());
    assert!(matches!(Runtime::new(config), Err(Error::CaFile { .. })));
}

#[tokio::test]
async fn what_was_queued_before_stop_is_still_sent() {
    let mut agent = ScriptedAgent::start().await;
    let mut running = start(config(&agent, false), true);
    let _subscription = agent.accept_subscription().await;
    assert_eq!(running.next_seen().await, Seen::Subscribed);
    let uuid = running
        .handle
        .send_status(
            TaskId { value: "t".into() },
            TaskState::TaskFinished,
            "done",
        )
        .unwrap();
    running
        .handle
        .send_message(Bytes::from_static(b"bye"))
        .unwrap();
    running.handle.stop().unwrap();
    assert_eq!(running.outcome().await.unwrap(), Outcome::Stopped);
    let update = agent.expect(call::Type::Update).await;
    assert_eq!(update.status().uuid.as_deref(), Some(&uuid.as_bytes()[..]));
    let message = agent.expect(call::Type::Message).await;
    assert_eq!(
        message.call.message.as_ref().unwrap().data,
        Bytes::from_static(b"bye")
    );
}
