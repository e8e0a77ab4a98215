//! Watching a processor file or directory with the `notify` crate: every change wakes the
//! reconcile loop. Where no watcher can be set up, the loop's polling alone sees changes.

use std::path::Path;
use std::sync::Arc;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

/// Watches `path` (a directory, or a file: then its directory, since editors replace files)
/// and wakes `wake` on every event. `None` (logged) when the platform watcher fails.
pub fn watch_path(path: &Path, wake: Arc<Notify>) -> Option<RecommendedWatcher> {
    let target = if path.is_file() {
        path.parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let handler = move |event: notify::Result<notify::Event>| {
        if let Err(e) = &event {
            tracing::debug!(error = %e, "processor watcher");
        }
        wake.notify_one();
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(e) => {
            tracing::warn!(error = %e, "no file watcher; polling only");
            return None;
        }
    };
    if let Err(e) = watcher.watch(&target, RecursiveMode::NonRecursive) {
        tracing::warn!(path = %target.display(), error = %e, "cannot watch; polling only");
        return None;
    }
    Some(watcher)
}
