//! Placeholder: the executor work.
