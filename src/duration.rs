//! Mesos duration strings (placeholder: filled in by the executor work).
