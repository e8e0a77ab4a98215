//! The framework's state as JSON (`GET /state`): the framework supplies the content through a
//! [`StateProvider`], a closure returning a `serde_json::Value` or a [`WatchState`] channel the
//! framework updates when its state changes.

use tokio::sync::watch;

/// A source of the JSON served at `/state`. Called once per request, so it should be cheap
/// (a snapshot of counters and lists, not a scan of a store).
pub trait StateProvider: Send + Sync + 'static {
    /// The framework's current state.
    fn state(&self) -> serde_json::Value;
}

impl<F> StateProvider for F
where
    F: Fn() -> serde_json::Value + Send + Sync + 'static,
{
    fn state(&self) -> serde_json::Value {
        self()
    }
}

/// A [`StateProvider`] reading the latest value of a `tokio::sync::watch` channel.
#[derive(Debug, Clone)]
pub struct WatchState(pub watch::Receiver<serde_json::Value>);

impl StateProvider for WatchState {
    fn state(&self) -> serde_json::Value {
        self.0.borrow().clone()
    }
}
