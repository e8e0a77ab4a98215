//! Generated prost types for the Mesos v1 schema (`proto/mesos/v1`).
//!
//! `mesos_sdk::v1` holds the common types of `mesos.v1` (ids, resources, tasks, statuses); each API
//! has its own submodule. proto2 defaults are honoured by the generated getters: read optional
//! fields through them (`command.shell()` is `true` when unset, `filters.refuse_seconds()` is `5.0`).

#![allow(missing_docs, clippy::all, clippy::pedantic, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

/// Scheduler API: `Call`s a framework sends to the master and the `Event`s it receives.
///
/// One field differs from the plain prost mapping: `Event::subscribed` is an
/// `Option<Box<event::Subscribed>>`. SUBSCRIBED arrives once per connection, and boxing it keeps
/// every other event (heartbeats, offers, updates) at 800 bytes instead of 1064, small enough
/// for the per-event `Box` the SDK decodes into to come from the allocator's fast path.
pub mod scheduler {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
}

/// Executor API: `Call`s an executor sends to its agent and the `Event`s it receives.
pub mod executor {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
}

/// Master operator API (`/api/v1` on a master).
pub mod master {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.master.rs"));
}

/// Agent operator API (`/api/v1` on an agent).
pub mod agent {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.rs"));
}

/// Maintenance schedules and machine status.
pub mod maintenance {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.maintenance.rs"));
}

/// Quota requests and configurations.
pub mod quota {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.quota.rs"));
}

/// Allocator-facing types (inverse offer status).
pub mod allocator {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.allocator.rs"));
}

/// Resource provider API.
pub mod resource_provider {
    include!(concat!(env!("OUT_DIR"), "/mesos.v1.resource_provider.rs"));
}

/// The encoded `FileDescriptorSet` of every file under `proto/`, as compiled by `build.rs`.
///
/// The JSON codec reads field and enum names and declared defaults from it.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/mesos_v1_descriptor_set.bin"));

impl TaskState {
    /// Whether this state ends the task (Mesos' `isTerminalState`): FINISHED, FAILED, KILLED,
    /// ERROR, LOST, DROPPED, GONE and GONE_BY_OPERATOR. A terminal state frees the task's
    /// resources; TASK_LOST can still be followed by a later update when a partitioned agent
    /// comes back.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskDropped
                | TaskState::TaskGone
                | TaskState::TaskGoneByOperator
        )
    }
}

#[cfg(test)]
mod tests {
    /// The scheduler's events are decoded into boxes, one per event. glibc's malloc serves
    /// blocks of up to 1032 bytes from a per-thread cache; above that, each event's box goes
    /// through the shared heap and costs several times more (benches/decode.rs). Boxing a
    /// field in build.rs is how to get back under the line if the schema grows.
    #[test]
    fn scheduler_events_fit_the_allocators_thread_cache() {
        let size = std::mem::size_of::<super::scheduler::Event>();
        assert!(size <= 1032, "scheduler::Event is {size} bytes");
    }
}
