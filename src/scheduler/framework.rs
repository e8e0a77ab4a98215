//! [`FrameworkInfoBuilder`]: a `FrameworkInfo` with the defaults a production framework wants.

use std::time::Duration;

use crate::v1::framework_info::Capability;
use crate::v1::framework_info::capability::Type as CapabilityType;
use crate::v1::{FrameworkId, FrameworkInfo, Label, Labels};

/// The default `failover_timeout`: one week. Mesos' own default (0) kills every task the moment
/// the scheduler disconnects.
pub const DEFAULT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The capabilities a [`FrameworkInfoBuilder`] declares unless told otherwise:
/// - `MULTI_ROLE`: subscribe with `roles` (offers carry `allocation_info`);
/// - `PARTITION_AWARE`: TASK_UNREACHABLE / TASK_GONE / TASK_UNKNOWN instead of TASK_LOST;
/// - `TASK_KILLING_STATE`: executors may report TASK_KILLING;
/// - `RESERVATION_REFINEMENT`: reservations may be refined (stacked roles);
/// - `REGION_AWARE`: offers from agents in remote regions too.
pub const DEFAULT_CAPABILITIES: [CapabilityType; 5] = [
    CapabilityType::MultiRole,
    CapabilityType::PartitionAware,
    CapabilityType::TaskKillingState,
    CapabilityType::ReservationRefinement,
    CapabilityType::RegionAware,
];

/// Builds a `FrameworkInfo`: `checkpoint` on, `failover_timeout` one week
/// ([`DEFAULT_FAILOVER_TIMEOUT`]), the capabilities of [`DEFAULT_CAPABILITIES`], role `*`.
/// Every default can be overridden.
///
/// ```
/// use std::time::Duration;
/// use mesos_sdk::scheduler::FrameworkInfoBuilder;
///
/// let info = FrameworkInfoBuilder::new("nobody", "my-framework")
///     .roles(["analytics"])
///     .principal("my-principal")
///     .failover_timeout(Duration::from_secs(4 * 7 * 24 * 3600))
///     .build();
/// assert_eq!(info.checkpoint, Some(true));
/// assert_eq!(info.roles, vec!["analytics".to_string()]);
/// ```
#[derive(Debug, Clone)]
pub struct FrameworkInfoBuilder {
    info: FrameworkInfo,
    capabilities: Vec<CapabilityType>,
}

impl FrameworkInfoBuilder {
    /// A framework run as `user` (tasks' default user; empty lets the master pick) named `name`.
    pub fn new(user: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            info: FrameworkInfo {
                user: user.into(),
                name: name.into(),
                checkpoint: Some(true),
                failover_timeout: Some(DEFAULT_FAILOVER_TIMEOUT.as_secs_f64()),
                roles: vec!["*".to_owned()],
                ..FrameworkInfo::default()
            },
            capabilities: DEFAULT_CAPABILITIES.to_vec(),
        }
    }

    /// Resumes an existing framework (a stored id): the SUBSCRIBE then resumes it.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.info.id = Some(FrameworkId { value: id.into() });
        self
    }

    /// Replaces the roles (default `["*"]`).
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.info.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// The principal (must match the authenticated one when the master authenticates).
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.info.principal = Some(principal.into());
        self
    }

    /// How long the master keeps the framework's tasks after the scheduler disconnects.
    pub fn failover_timeout(mut self, timeout: Duration) -> Self {
        self.info.failover_timeout = Some(timeout.as_secs_f64());
        self
    }

    /// Whether agents checkpoint the framework's tasks (default true).
    pub fn checkpoint(mut self, checkpoint: bool) -> Self {
        self.info.checkpoint = Some(checkpoint);
        self
    }

    /// The scheduler's host name, shown in the web UI.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.info.hostname = Some(hostname.into());
        self
    }

    /// The framework's web UI.
    pub fn webui_url(mut self, url: impl Into<String>) -> Self {
        self.info.webui_url = Some(url.into());
        self
    }

    /// Adds a capability.
    pub fn capability(mut self, capability: CapabilityType) -> Self {
        if !self.capabilities.contains(&capability) {
            self.capabilities.push(capability);
        }
        self
    }

    /// Replaces the capabilities (default [`DEFAULT_CAPABILITIES`]).
    pub fn capabilities(mut self, capabilities: impl IntoIterator<Item = CapabilityType>) -> Self {
        self.capabilities = capabilities.into_iter().collect();
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.info
            .labels
            .get_or_insert_with(Labels::default)
            .labels
            .push(Label {
                key: key.into(),
                value: Some(value.into()),
            });
        self
    }

    /// The `FrameworkInfo`.
    pub fn build(self) -> FrameworkInfo {
        let mut info = self.info;
        info.capabilities = self
            .capabilities
            .into_iter()
            .map(|kind| {
                let mut capability = Capability::default();
                capability.set_type(kind);
                capability
            })
            .collect();
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_production_ready() {
        let info = FrameworkInfoBuilder::new("u", "n").build();
        assert_eq!(info.checkpoint, Some(true));
        assert_eq!(info.failover_timeout, Some(604_800.0));
        assert_eq!(info.roles, vec!["*".to_string()]);
        let kinds: Vec<_> = info.capabilities.iter().map(|c| c.r#type()).collect();
        assert_eq!(kinds, DEFAULT_CAPABILITIES.to_vec());
        assert!(info.id.is_none());
    }

    #[test]
    fn everything_is_overridable() {
        let info = FrameworkInfoBuilder::new("u", "n")
            .id("fw-1")
            .checkpoint(false)
            .failover_timeout(Duration::from_secs(60))
            .capabilities([CapabilityType::GpuResources])
            .capability(CapabilityType::MultiRole)
            .roles(["a", "b"])
            .principal("p")
            .hostname("h")
            .webui_url("http://h")
            .label("k", "v")
            .build();
        assert_eq!(info.id.unwrap().value, "fw-1");
        assert_eq!(info.checkpoint, Some(false));
        assert_eq!(info.failover_timeout, Some(60.0));
        assert_eq!(info.capabilities.len(), 2);
        assert_eq!(info.roles.len(), 2);
        assert_eq!(info.principal.as_deref(), Some("p"));
        assert_eq!(info.labels.unwrap().labels[0].key, "k");
    }
}
