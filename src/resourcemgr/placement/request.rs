//! What the placer is asked to place: a [`Request`] (one task, or a task group with its
//! executor), each task's [`Demand`] (scalars, ports, where its disk comes from), whether it
//! may use revocable resources, the shared persistent volumes it mounts, and an optional
//! reservation with a persistent volume.

use super::*;

/// One port a task needs: any free one, or a fixed number; optionally named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSpec {
    /// A name for the port (reported back in [`Placed::ports`]).
    pub name: Option<String>,
    /// A fixed port number; any free one when `None`.
    pub number: Option<u64>,
}

/// Where a task's `disk` comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DiskSource {
    /// The agent's root disk (the default), split as needed.
    #[default]
    Root,
    /// A PATH disk (an extra disk the agent offers in pieces): the amount is cut from one PATH
    /// disk.
    Path,
    /// A MOUNT disk: a whole disk of at least the amount, used exclusively (Mesos never splits
    /// a MOUNT disk, so the task gets all of it). The smallest such disk that fits is taken.
    Mount,
}

/// What one task (or an executor) needs: scalars by name (`cpus`, `mem`, `disk`, `gpus`,
/// custom ones), ports, and where the disk comes from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    /// Scalar resources by name.
    pub scalars: Vec<(String, f64)>,
    /// Ports.
    pub ports: Vec<PortSpec>,
    /// Where the `disk` scalar comes from (PATH and MOUNT: single-task requests only).
    pub disk_source: DiskSource,
}

impl Demand {
    /// Scalars from `--resources`-style text (`cpus:0.5;mem:128;gpus:1`), checked: finite, not
    /// negative, whole GPUs. Ranges and sets are refused (ask for ports with the port methods).
    pub fn parse(text: &str) -> Result<Self, ResourceError> {
        let parsed = crate::resourcemgr::algebra::parse_resources(text)?;
        let mut demand = Demand::default();
        for r in parsed {
            crate::resourcemgr::validate::validate(&r)?;
            let Some(s) = r.scalar.as_ref() else {
                return Err(ResourceError::BadType { name: r.name });
            };
            demand.scalars.push((r.name.clone(), s.value));
        }
        Ok(demand)
    }

    /// Takes the disk from a PATH or MOUNT disk (see [`DiskSource`]).
    pub fn with_disk_source(mut self, source: DiskSource) -> Self {
        self.disk_source = source;
        self
    }

    /// Adds `n` ports, any numbers.
    pub fn with_ports(mut self, n: usize) -> Self {
        self.ports
            .extend(std::iter::repeat_n(PortSpec::default(), n));
        self
    }

    /// Adds one named port, any number.
    pub fn with_named_port(mut self, name: &str) -> Self {
        self.ports.push(PortSpec {
            name: Some(name.to_string()),
            number: None,
        });
        self
    }

    /// Adds one fixed port number.
    pub fn with_port(mut self, number: u64) -> Self {
        self.ports.push(PortSpec {
            name: None,
            number: Some(number),
        });
        self
    }

    /// The amount of scalar `name`.
    pub fn scalar(&self, name: &str) -> f64 {
        self.scalars
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .sum()
    }
}

/// One task of a request: a `TaskInfo` template (id, name, command or container, labels, ...;
/// its `agent_id` and `resources` are filled in by the placer) and what it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The template.
    pub task: TaskInfo,
    /// What it needs.
    pub demand: Demand,
}

/// A dynamic reservation (and persistent volume) a request wants for itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationSpec {
    /// Reservation id: the reservation's label value and the volume's persistence id. Keep it
    /// stable across restarts of the task (e.g. the task's name).
    pub id: String,
    /// A persistent volume to create on reserved root disk.
    pub volume: Option<VolumeSpec>,
}

/// A persistent volume.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeSpec {
    /// Size in MB.
    pub size_mb: f64,
    /// Where it is mounted, relative to the sandbox.
    pub container_path: String,
}

/// A request: one task (LAUNCH) or a group of tasks on one agent (LAUNCH_GROUP).
#[derive(Debug, Clone)]
pub struct Request {
    /// Request id (unique among pending requests; the ledger keys on it).
    pub id: String,
    /// The app it belongs to: constraints count tasks of the same app. Empty: the id.
    pub app: String,
    /// The role whose offers it may use.
    pub role: String,
    /// The tasks; more than one, or an executor, makes a task group.
    pub tasks: Vec<TaskSpec>,
    /// The executor of a task group, with its own demand.
    pub executor: Option<(ExecutorInfo, Demand)>,
    /// Hard constraints.
    pub constraints: Vec<Constraint>,
    /// Soft preferences.
    pub preferences: Vec<Preference>,
    /// Prefer the agent where this request last ran.
    pub sticky: bool,
    /// A reservation (and volume) of its own; single-task requests only.
    pub reservation: Option<ReservationSpec>,
    /// May use revocable resources (Mesos may take them back at any time, killing the task):
    /// they are used first, before ordinary ones. Off (the default): revocable resources are
    /// never used.
    pub revocable: bool,
    /// Shared persistent volumes (persistence ids) its tasks mount: the agent must offer each
    /// (a persistent volume with `shared`); several requests, in one round too, may use one.
    pub shared_volumes: Vec<String>,
}

impl Request {
    /// A single-task request.
    pub fn task(id: &str, role: &str, task: TaskInfo, demand: Demand) -> Self {
        Self {
            id: id.to_string(),
            app: String::new(),
            role: role.to_string(),
            tasks: vec![TaskSpec { task, demand }],
            executor: None,
            constraints: Vec::new(),
            preferences: Vec::new(),
            sticky: false,
            reservation: None,
            revocable: false,
            shared_volumes: Vec::new(),
        }
    }

    /// Sets the app.
    pub fn app(mut self, app: &str) -> Self {
        self.app = app.to_string();
        self
    }

    /// Adds a hard constraint.
    pub fn constraint(mut self, constraint: Constraint) -> Self {
        self.constraints.push(constraint);
        self
    }

    /// Adds a soft preference.
    pub fn prefer(mut self, field: &str, value: &str) -> Self {
        self.preferences.push(Preference {
            field: field.to_string(),
            value: value.to_string(),
        });
        self
    }

    /// Prefers the last agent.
    pub fn sticky(mut self) -> Self {
        self.sticky = true;
        self
    }

    /// Asks for a reservation (and volume).
    pub fn reserve(mut self, reservation: ReservationSpec) -> Self {
        self.reservation = Some(reservation);
        self
    }

    /// Lets it use revocable resources.
    pub fn revocable(mut self) -> Self {
        self.revocable = true;
        self
    }

    /// Mounts the shared persistent volume with this persistence id.
    pub fn shared_volume(mut self, persistence_id: &str) -> Self {
        self.shared_volumes.push(persistence_id.to_string());
        self
    }

    pub(super) fn app_key(&self) -> &str {
        if self.app.is_empty() {
            &self.id
        } else {
            &self.app
        }
    }

    pub(super) fn is_group(&self) -> bool {
        self.tasks.len() > 1 || self.executor.is_some()
    }
}
