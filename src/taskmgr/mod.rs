//! The task manager's building blocks. For now: [`spec`], task specs defined in code (builders)
//! or in JSON, validated with every problem reported at once, and turned into `TaskInfo`s on
//! offers.

pub mod spec;
