//! [`CommandTask`]: a `TaskInfo` builder for a command task (shell string or argv) sized onto an
//! offer, so a framework launches a task without assembling prost messages by hand.

use crate::v1::command_info::Uri;
use crate::v1::environment::Variable;
use crate::v1::{AgentId, CommandInfo, Environment, Label, Labels, Resource, TaskId, TaskInfo};

use super::offer::{OfferResources, Shortfall};
use super::{ParseError, Resources};

/// A command task to launch: built with calls, then placed on an offer with
/// [`launch_on`](Self::launch_on), which takes its resources out of the offer.
///
/// ```
/// use mesos_sdk::resourcemgr::CommandTask;
/// let task = CommandTask::shell("hello", "echo hello")
///     .resources_text("cpus:0.1;mem:32")?
///     .env("GREETING", "hi")
///     .label("team", "docs");
/// # Ok::<(), mesos_sdk::resourcemgr::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CommandTask {
    name: String,
    id: Option<String>,
    command: CommandInfo,
    resources: Resources,
    labels: Vec<Label>,
}

impl CommandTask {
    /// A task that runs `command` with `/bin/sh -c`.
    pub fn shell(name: impl Into<String>, command: impl Into<String>) -> Self {
        Self::with_command(
            name,
            CommandInfo {
                shell: Some(true),
                value: Some(command.into()),
                ..Default::default()
            },
        )
    }

    /// A task that executes `program` directly with `args` (the first of which is `argv[0]`, as
    /// Mesos passes `CommandInfo.arguments`).
    pub fn argv<I, S>(name: impl Into<String>, program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_command(
            name,
            CommandInfo {
                shell: Some(false),
                value: Some(program.into()),
                arguments: args.into_iter().map(Into::into).collect(),
                ..Default::default()
            },
        )
    }

    fn with_command(name: impl Into<String>, command: CommandInfo) -> Self {
        Self {
            name: name.into(),
            id: None,
            command,
            resources: Resources::new(),
            labels: Vec::new(),
        }
    }

    /// Sets the task id. By default it is the name followed by `-` and a random UUID, so ids are
    /// unique and still tell which task they belong to.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds resources the task needs (plain, unreserved: see [`OfferResources::take`]).
    pub fn resources(mut self, resources: impl Into<Resources>) -> Self {
        self.resources.add_all(resources.into().as_slice());
        self
    }

    /// Adds resources from Mesos' text form (`cpus:0.1;mem:32`).
    pub fn resources_text(self, text: &str) -> Result<Self, ParseError> {
        let parsed = Resources::parse(text)?;
        Ok(self.resources(parsed))
    }

    /// Sets an environment variable of the command.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let environment = self
            .command
            .environment
            .get_or_insert_with(Environment::default);
        environment.variables.push(Variable {
            name: name.into(),
            value: Some(value.into()),
            ..Default::default()
        });
        self
    }

    /// Adds a label to the task.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push(Label {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Adds a URI for the Mesos fetcher to download into the sandbox before the command runs.
    pub fn uri(mut self, uri: impl Into<String>) -> Self {
        self.command.uris.push(Uri {
            value: uri.into(),
            ..Default::default()
        });
        self
    }

    /// Adds a fully described fetcher URI (executable, extract, cache, output file).
    pub fn fetch(mut self, uri: Uri) -> Self {
        self.command.uris.push(uri);
        self
    }

    /// Runs the command as `user` on the agent (default: the framework's user).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.command.user = Some(user.into());
        self
    }

    /// The resources the task asks for.
    pub fn requested(&self) -> &Resources {
        &self.resources
    }

    /// Takes the task's resources out of `offer` and returns the `TaskInfo` to launch on it.
    /// On a shortfall the offer is left as it was and the error says what is missing.
    pub fn launch_on(self, offer: &mut OfferResources) -> Result<TaskInfo, Shortfall> {
        let resources = offer.take(self.resources.as_slice())?;
        Ok(self.build(offer.agent_id().clone(), resources))
    }

    /// The `TaskInfo` with exactly these resources on `agent_id` (no offer bookkeeping).
    pub fn build(self, agent_id: AgentId, resources: Vec<Resource>) -> TaskInfo {
        let id = self
            .id
            .unwrap_or_else(|| format!("{}-{}", self.name, uuid::Uuid::new_v4()));
        TaskInfo {
            name: self.name,
            task_id: TaskId { value: id },
            agent_id,
            resources,
            command: Some(self.command),
            labels: (!self.labels.is_empty()).then_some(Labels {
                labels: self.labels,
            }),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resourcemgr::{for_offer, parse_resources};
    use crate::v1::{Offer, OfferId};

    fn offer() -> Offer {
        Offer {
            id: OfferId { value: "o".into() },
            agent_id: AgentId { value: "a".into() },
            hostname: "h".into(),
            resources: parse_resources("cpus:1;mem:64")
                .unwrap()
                .iter()
                .map(|r| for_offer(r, "*", true))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_shell_task_is_sized_on_an_offer() {
        let mut pool = OfferResources::new(&offer());
        let task = CommandTask::shell("hello", "echo hello")
            .resources_text("cpus:0.5;mem:32")
            .unwrap()
            .env("A", "1")
            .label("k", "v")
            .uri("http://example.invalid/x.tgz")
            .launch_on(&mut pool)
            .unwrap();
        assert!(task.task_id.value.starts_with("hello-"));
        assert_eq!(task.agent_id.value, "a");
        assert_eq!(task.resources.len(), 2);
        assert!(task.resources.iter().all(|r| r.allocation_info.is_some()));
        let command = task.command.unwrap();
        assert_eq!(command.shell, Some(true));
        assert_eq!(command.value.as_deref(), Some("echo hello"));
        assert_eq!(command.uris.len(), 1);
        assert_eq!(command.environment.unwrap().variables[0].name, "A");
        assert_eq!(task.labels.unwrap().labels[0].key, "k");
        // A second task of the same size fits; a third does not, and leaves the offer as it was.
        let again = CommandTask::shell("b", "true")
            .resources_text("cpus:0.5;mem:32")
            .unwrap();
        again.clone().launch_on(&mut pool).unwrap();
        assert!(again.launch_on(&mut pool).is_err());
    }

    #[test]
    fn argv_tasks_do_not_use_a_shell() {
        let task = CommandTask::argv("ls", "/bin/ls", ["ls", "-l"])
            .id("fixed")
            .build(AgentId { value: "a".into() }, Vec::new());
        let command = task.command.unwrap();
        assert_eq!(command.shell, Some(false));
        assert_eq!(command.arguments, vec!["ls", "-l"]);
        assert_eq!(task.task_id.value, "fixed");
    }
}
