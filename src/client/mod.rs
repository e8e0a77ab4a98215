//! Placeholder: the client work.
