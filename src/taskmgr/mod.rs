//! The task manager: [`spec`]s (task specs defined in code or JSON, validated, turned into
//! `TaskInfo`s on offers), instance [`record`]s with their state machine, the [`manager`] that
//! stores them ahead of every call and decides restarts and rolling updates, placement
//! [`constraints`] checked on offers, and the [`reconcile`] state machine.
//! The event loop that drives them against a master is [`crate::framework`].

pub mod constraints;
pub mod manager;
pub mod reconcile;
pub mod record;
pub mod spec;

pub use manager::{
    Decision, LaunchIntent, StatusOutcome, StoredSpec, Summary, TaskError, TaskManager,
};
pub use reconcile::{ReconcileAsk, ReconcileConfig, Reconciler};
pub use record::{Ending, Phase, TaskRecord, Transition};
