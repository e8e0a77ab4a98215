//! Launching tasks: the framework and executor entries a RUN_TASK or RUN_TASK_GROUP creates and
//! checkpoints, and the hand-off to the built-in command and default executors or to a custom
//! executor (started if needed, the launch queued until it subscribes).

use super::*;

impl Agent {
    /// Records `info` (new or changed) and checkpoints it for checkpointing frameworks.
    pub(super) fn upsert_framework(&self, state: &mut State, info: &FrameworkInfo) -> String {
        let id = info.id.clone().unwrap_or_default().value;
        let framework = state
            .frameworks
            .entry(id.clone())
            .or_insert_with(|| Framework {
                info: info.clone(),
                executors: HashMap::new(),
                removing: false,
            });
        framework.info = info.clone();
        framework.removing = false;
        if info.checkpoint() {
            let info = info.clone();
            self.checkpoint("framework", move |meta, agent| {
                meta.write_framework(agent, &info)
            });
        }
        id
    }

    pub(super) fn update_framework(&self, info: FrameworkInfo) {
        let mut state = self.lock();
        let id = info.id.clone().unwrap_or_default().value;
        if state.frameworks.contains_key(&id) {
            self.upsert_framework(&mut state, &info);
        }
    }

    /// A new executor entry (not yet inserted) with a fresh run and sandbox.
    pub(super) fn new_executor(
        &self,
        framework: &FrameworkInfo,
        info: ExecutorInfo,
        kind: ExecutorKind,
    ) -> Executor {
        let framework_id = framework.id.clone().unwrap_or_default().value;
        let run_id = uuid::Uuid::new_v4().to_string();
        let sandbox = self.sandbox_dir(&framework_id, &info.executor_id.value, &run_id);
        Executor {
            info,
            kind,
            run_id,
            sandbox,
            checkpoint: framework.checkpoint(),
            pgid: None,
            subscriber: None,
            subscribed_once: false,
            queued: Vec::new(),
            pending_events: Vec::new(),
            tasks: HashMap::new(),
            terminating: false,
            timed_out: false,
            groups: 0,
        }
    }

    pub(super) fn checkpoint_executor(&self, framework_id: &str, executor: &Executor) {
        if !executor.checkpoint {
            return;
        }
        let framework_id = framework_id.to_string();
        let info = executor.info.clone();
        let run_id = executor.run_id.clone();
        let kind = executor.kind.as_str();
        let sandbox = executor.sandbox.clone();
        self.checkpoint("executor", move |meta, agent| {
            meta.write_executor(agent, &framework_id, &info, &run_id, kind, &sandbox)
        });
    }

    pub(super) fn checkpoint_task(&self, framework_id: &str, executor: &Executor, task: &TaskInfo) {
        if !executor.checkpoint {
            return;
        }
        let framework_id = framework_id.to_string();
        let executor_id = executor.info.executor_id.value.clone();
        let run_id = executor.run_id.clone();
        let task = task.clone();
        self.checkpoint("task", move |meta, agent| {
            meta.write_task(agent, &framework_id, &executor_id, &run_id, &task)
        });
    }

    pub(super) fn new_task_entry(task: TaskInfo, group: usize) -> TaskEntry {
        TaskEntry {
            info: task,
            state: TaskState::TaskStaging,
            kill: None,
            pgid: None,
            group,
        }
    }

    pub(super) fn run_task(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        executor: Option<ExecutorInfo>,
        mut task: TaskInfo,
    ) {
        task.agent_id = self.id.clone();
        let executor = executor.or_else(|| task.executor.as_deref().cloned());
        match executor {
            None => self.run_command_task(framework_info, task),
            Some(info)
                if info.r#type() == executor_info::Type::Default || info.command.is_none() =>
            {
                let group = TaskGroupInfo { tasks: vec![task] };
                self.run_task_group(framework_info, info, group);
            }
            Some(info) => self.run_on_custom_executor(
                framework_info,
                info,
                QueuedLaunch::Task(Box::new(task)),
            ),
        }
    }

    pub(super) fn run_task_group(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        executor: ExecutorInfo,
        mut group: TaskGroupInfo,
    ) {
        for task in &mut group.tasks {
            task.agent_id = self.id.clone();
        }
        if executor.r#type() == executor_info::Type::Custom && executor.command.is_some() {
            self.run_on_custom_executor(framework_info, executor, QueuedLaunch::Group(group));
        } else {
            self.run_default_executor_group(framework_info, executor, group);
        }
    }

    /// The built-in command executor: one executor (id = task id) per task.
    pub(super) fn run_command_task(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        task: TaskInfo,
    ) {
        let executor_id = ExecutorId {
            value: task.task_id.value.clone(),
        };
        let info = ExecutorInfo {
            r#type: Some(executor_info::Type::Default as i32),
            executor_id: executor_id.clone(),
            framework_id: framework_info.id.clone(),
            name: Some(format!("Command Executor (Task: {})", task.task_id.value)),
            ..Default::default()
        };
        let (kill_tx, kill_rx) = mpsc::unbounded_channel();
        let launch = {
            let mut state = self.lock();
            if state.stopped {
                return;
            }
            let framework_id = self.upsert_framework(&mut state, &framework_info);
            let duplicate = match state.frameworks.get(&framework_id) {
                Some(framework) => framework.executors.contains_key(&executor_id.value),
                None => return,
            };
            if duplicate {
                // Checked before anything is created or checkpointed, so that the running
                // executor's checkpoint is left as it is.
                drop(state);
                tracing::warn!(task_id = %task.task_id.value, "task id already in use on this agent");
                let status = self.new_status(
                    &task.task_id,
                    TaskState::TaskError,
                    task_status::Source::Agent,
                    Some(task_status::Reason::TaskInvalid),
                    Some("Task has duplicate ID".to_string()),
                    None,
                );
                self.record_update(&framework_id, status, None);
                return;
            }
            let mut executor = self.new_executor(&framework_info, info, ExecutorKind::Command);
            let mut entry = Self::new_task_entry(task.clone(), 0);
            entry.kill = Some(kill_tx);
            executor.tasks.insert(task.task_id.value.clone(), entry);
            self.checkpoint_executor(&framework_id, &executor);
            self.checkpoint_task(&framework_id, &executor, &task);
            let launch = process::TaskRun {
                framework_id: FrameworkId {
                    value: framework_id.clone(),
                },
                framework_info: framework_info.clone(),
                executor_id: executor_id.clone(),
                run_id: executor.run_id.clone(),
                sandbox: executor.sandbox.clone(),
                executor_sandbox: executor.sandbox.clone(),
                task: task.clone(),
                checkpoint: executor.checkpoint,
            };
            if let Some(framework) = state.frameworks.get_mut(&framework_id) {
                framework
                    .executors
                    .insert(executor_id.value.clone(), executor);
            }
            launch
        };
        self.tasks
            .spawn(process::run_task_command(Arc::clone(self), launch, kill_rx));
    }

    /// The built-in default executor: runs each task of the group like the command executor.
    pub(super) fn run_default_executor_group(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        mut info: ExecutorInfo,
        group: TaskGroupInfo,
    ) {
        info.framework_id = framework_info.id.clone();
        let mut launches = Vec::new();
        {
            let mut state = self.lock();
            if state.stopped {
                return;
            }
            let framework_id = self.upsert_framework(&mut state, &framework_info);
            let Some(framework) = state.frameworks.get_mut(&framework_id) else {
                return;
            };
            let executor_id = info.executor_id.value.clone();
            if !framework.executors.contains_key(&executor_id) {
                let executor =
                    self.new_executor(&framework_info, info.clone(), ExecutorKind::Default);
                self.checkpoint_executor(&framework_id, &executor);
                framework.executors.insert(executor_id.clone(), executor);
            }
            let Some(executor) = framework.executors.get_mut(&executor_id) else {
                return;
            };
            let group_index = executor.groups;
            executor.groups += 1;
            for task in group.tasks {
                let (kill_tx, kill_rx) = mpsc::unbounded_channel();
                let mut entry = Self::new_task_entry(task.clone(), group_index);
                entry.kill = Some(kill_tx);
                executor.tasks.insert(task.task_id.value.clone(), entry);
                self.checkpoint_task(&framework_id, executor, &task);
                launches.push((
                    process::TaskRun {
                        framework_id: FrameworkId {
                            value: framework_id.clone(),
                        },
                        framework_info: framework_info.clone(),
                        executor_id: info.executor_id.clone(),
                        run_id: executor.run_id.clone(),
                        sandbox: executor.sandbox.join("tasks").join(&task.task_id.value),
                        executor_sandbox: executor.sandbox.clone(),
                        task,
                        checkpoint: executor.checkpoint,
                    },
                    kill_rx,
                ));
            }
        }
        for (launch, kill_rx) in launches {
            self.tasks
                .spawn(process::run_task_command(Arc::clone(self), launch, kill_rx));
        }
    }

    /// Queues a launch on a custom executor, starting the executor if needed.
    pub(super) fn run_on_custom_executor(
        self: &Arc<Self>,
        framework_info: FrameworkInfo,
        mut info: ExecutorInfo,
        launch: QueuedLaunch,
    ) {
        info.framework_id = framework_info.id.clone();
        let tasks: Vec<TaskInfo> = match &launch {
            QueuedLaunch::Task(task) => vec![(**task).clone()],
            QueuedLaunch::Group(group) => group.tasks.clone(),
        };
        let start = {
            let mut state = self.lock();
            if state.stopped {
                return;
            }
            let framework_id = self.upsert_framework(&mut state, &framework_info);
            let Some(framework) = state.frameworks.get_mut(&framework_id) else {
                return;
            };
            let executor_id = info.executor_id.value.clone();
            let mut start = None;
            let terminating = framework
                .executors
                .get(&executor_id)
                .is_some_and(|e| e.terminating);
            if terminating {
                drop(state);
                for task in tasks {
                    let status = self.new_status(
                        &task.task_id,
                        TaskState::TaskLost,
                        task_status::Source::Agent,
                        Some(task_status::Reason::ExecutorTerminated),
                        Some("Executor is terminating".to_string()),
                        Some(&info.executor_id),
                    );
                    self.record_update(&framework_id, status, None);
                }
                return;
            }
            if !framework.executors.contains_key(&executor_id) {
                let executor =
                    self.new_executor(&framework_info, info.clone(), ExecutorKind::Custom);
                self.checkpoint_executor(&framework_id, &executor);
                start = Some(process::ExecutorLaunch {
                    framework_id: framework_id.clone(),
                    framework_info: framework_info.clone(),
                    info: info.clone(),
                    run_id: executor.run_id.clone(),
                    sandbox: executor.sandbox.clone(),
                    checkpoint: executor.checkpoint,
                    resources: info
                        .resources
                        .iter()
                        .chain(tasks.iter().flat_map(|t| t.resources.iter()))
                        .cloned()
                        .collect(),
                });
                framework.executors.insert(executor_id.clone(), executor);
            }
            let Some(executor) = framework.executors.get_mut(&executor_id) else {
                return;
            };
            for task in &tasks {
                executor.tasks.insert(
                    task.task_id.value.clone(),
                    Self::new_task_entry(task.clone(), 0),
                );
                self.checkpoint_task(&framework_id, executor, task);
            }
            match &executor.subscriber {
                Some(subscriber) => {
                    let event = launch_event(&launch);
                    send_event(subscriber, &event);
                }
                None => executor.queued.push(launch),
            }
            start
        };
        if let Some(start) = start {
            self.tasks
                .spawn(process::launch_custom_executor(Arc::clone(self), start));
        }
    }
}
