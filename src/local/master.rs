//! Placeholder: filled in by the master work.
