//! Unit tests of the task manager: the restart backoff, and the write-ahead of intents and
//! statuses over the memory store.

mod backoff {
    use super::super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let min = Duration::from_millis(100);
        let max = Duration::from_millis(500);
        let got: Vec<_> = (1..=5).map(|n| restart_backoff(min, max, n)).collect();
        assert_eq!(
            got,
            [100, 200, 400, 500, 500]
                .map(Duration::from_millis)
                .to_vec()
        );
    }
}

mod store {
    use super::super::*;
    use crate::storage::{MemoryStore, StoreExt};
    use crate::v1::{AgentId, TaskId};

    fn spec() -> TaskSpec {
        TaskSpec::new("web")
            .instances(2)
            .shell("true")
            .cpus(0.1)
            .mem(8.0)
            .restart(
                RestartPolicy::on_failure()
                    .max_retries(1)
                    .backoff(Duration::from_secs(5), Duration::from_secs(5)),
            )
    }

    use crate::taskmgr::spec::RestartPolicy;

    fn status(task_id: &str, state: TaskState) -> TaskStatus {
        TaskStatus {
            task_id: TaskId {
                value: task_id.to_owned(),
            },
            state: state as i32,
            agent_id: Some(AgentId { value: "a1".into() }),
            ..TaskStatus::default()
        }
    }

    #[tokio::test]
    async fn intents_and_statuses_are_stored_before_they_count_and_reload() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let namespace = Namespace::new("fw").unwrap();
        let manager = TaskManager::load(store.clone(), namespace.clone())
            .await
            .unwrap();
        manager.add(spec()).await.unwrap();
        assert_eq!(manager.ready(now_ms()).await.len(), 2);

        let task_id = crate::taskmgr::record::new_task_id("web", 0);
        let intent = LaunchIntent {
            spec: "web".into(),
            index: 0,
            task_id: task_id.clone(),
            agent_id: "a1".into(),
            offer_id: "o1".into(),
            spec_version: 1,
        };
        manager.record_launches(&[intent]).await.unwrap();
        let stored: TaskRecord = store
            .get_json(&namespace.key("tasks/web/000000"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.phase, Phase::Launching);
        assert_eq!(stored.task_id.as_deref(), Some(task_id.as_str()));
        assert_eq!(stored.offer_id.as_deref(), Some("o1"));

        manager
            .record_status(&status(&task_id, TaskState::TaskRunning))
            .await
            .unwrap();
        let reloaded = TaskManager::load(store.clone(), namespace.clone())
            .await
            .unwrap();
        let record = reloaded.get(&task_id).await.unwrap();
        assert_eq!(record.phase, Phase::Active);
        assert_eq!(record.state.as_deref(), Some("TASK_RUNNING"));
        assert_eq!(reloaded.maybe_running().await.len(), 1);

        // a failure: restart in backoff, then given up after the one retry
        reloaded
            .record_status(&status(&task_id, TaskState::TaskFailed))
            .await
            .unwrap();
        let after = reloaded
            .conclude(&task_id, Ending::Failed, Decision::PerPolicy)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(after.phase, Phase::Pending);
        assert_eq!(after.restarts, 1);
        assert!(after.not_before_ms.is_some_and(|t| t > now_ms()));
        // still in backoff: only instance 1 is ready
        assert_eq!(reloaded.ready(now_ms()).await.len(), 1);
        let given_up = reloaded
            .conclude(&task_id, Ending::Failed, Decision::Restart)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            given_up.phase,
            Phase::Pending,
            "a pending instance is not concluded twice"
        );

        // an unknown task id
        assert!(matches!(
            reloaded
                .record_status(&status("stranger", TaskState::TaskRunning))
                .await
                .unwrap(),
            StatusOutcome::Unknown
        ));
    }

    #[tokio::test]
    async fn scale_down_kills_the_highest_instances() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let manager = TaskManager::load(store, Namespace::new("fw").unwrap())
            .await
            .unwrap();
        manager.add(spec().instances(3)).await.unwrap();
        let task_id = crate::taskmgr::record::new_task_id("web", 2);
        manager
            .record_launches(&[LaunchIntent {
                spec: "web".into(),
                index: 2,
                task_id: task_id.clone(),
                agent_id: "a1".into(),
                offer_id: "o1".into(),
                spec_version: 1,
            }])
            .await
            .unwrap();
        manager.scale("web", 1).await.unwrap();
        // the pending instance 1 is gone at once; the launched one is being killed
        assert_eq!(manager.tasks().await.len(), 2);
        assert_eq!(
            manager.take_kills().await,
            vec![(task_id.clone(), Some("a1".into()))]
        );
        manager
            .record_status(&status(&task_id, TaskState::TaskKilled))
            .await
            .unwrap();
        manager
            .conclude(&task_id, Ending::Killed, Decision::PerPolicy)
            .await
            .unwrap();
        assert_eq!(manager.tasks().await.len(), 1);
    }

    #[tokio::test]
    async fn a_pending_instance_adopts_its_own_task_and_refuses_strangers() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let manager = TaskManager::load(store, Namespace::new("fw").unwrap())
            .await
            .unwrap();
        manager.add(spec()).await.unwrap();
        let ours = crate::taskmgr::record::new_task_id("web", 1);
        let adopted = manager
            .adopt(&status(&ours, TaskState::TaskRunning))
            .await
            .unwrap();
        assert!(adopted);
        let record = manager.get(&ours).await.unwrap();
        assert_eq!((record.index, record.phase), (1, Phase::Active));
        assert_eq!(manager.ready(now_ms()).await.len(), 1);
        // an instance with a live attempt, an unknown spec, a foreign id: not adopted
        let again = crate::taskmgr::record::new_task_id("web", 1);
        let other = crate::taskmgr::record::new_task_id("db", 0);
        for id in [again.as_str(), other.as_str(), "foreign"] {
            assert!(
                !manager
                    .adopt(&status(id, TaskState::TaskRunning))
                    .await
                    .unwrap()
            );
        }
    }
}
