//! Placeholder: the scheduler work.
