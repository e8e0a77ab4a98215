//! (placeholder: filled in by the Brigade work)
