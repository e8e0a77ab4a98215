//! The fetcher cache of one agent (Mesos' `--fetcher_cache_dir` and `--fetcher_cache_size`):
//! URIs fetched with `CommandInfo.URI.cache` set are downloaded once into the cache directory,
//! keyed by the user, the URI and whether the file is executable, and later fetches are served
//! from there.
//!
//! This file holds the bookkeeping ([`FetcherCache`]): one entry per key, a single download per
//! key however many launches want it at once (the others wait for it), reference counts of the
//! launches using an entry, and least-recently-used eviction of entries not in use once the
//! cached files together exceed the size limit. How a file gets into the cache and from there
//! into a sandbox is the fetcher's (see `fetcher`).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Where an agent's fetcher cache lives and how large it may grow (part of
/// [`super::AgentConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetcherCacheConfig {
    /// The cache directory (Mesos `--fetcher_cache_dir`); `None`: `<work_dir>/fetcher-cache`.
    /// Its contents are removed when the agent starts (as Mesos does): no two agents may share
    /// one (a [`crate::cluster::LocalCluster`] gives agent `n` the subdirectory `n`). Cached
    /// executables are hard-linked into sandboxes, so a cache on the same file system as the
    /// work directory saves both the copy and the disk space.
    pub dir: Option<PathBuf>,
    /// Largest total size of the cached files, in bytes (Mesos `--fetcher_cache_size`, default
    /// 2 GiB). Beyond it the least recently used entries that no launch is using are evicted.
    /// A single file larger than the limit is still cached (and evicted when no longer used).
    pub max_bytes: u64,
}

impl Default for FetcherCacheConfig {
    /// `<work_dir>/fetcher-cache`, 2 GiB.
    fn default() -> Self {
        Self {
            dir: None,
            max_bytes: 2 << 30,
        }
    }
}

/// The state of one cache entry.
#[derive(Debug)]
struct Entry {
    /// Held while the entry's file is being downloaded; `Some(size)` once it is in the cache.
    slot: Arc<tokio::sync::Mutex<Option<u64>>>,
    /// Launches holding a [`Lease`] on the entry.
    users: usize,
    /// The entry's size once cached (a copy of the slot's value, readable without waiting).
    size: Option<u64>,
    /// Logical time of the last use (for LRU eviction).
    last_used: u64,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Total size of the cached files.
    total: u64,
    clock: u64,
}

/// The cache bookkeeping of one agent.
#[derive(Debug)]
pub(crate) struct FetcherCache {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
}

/// A launch's use of a cache entry: the entry is not evicted while a lease on it exists.
#[derive(Debug)]
pub(crate) struct Lease<'a> {
    cache: &'a FetcherCache,
    key: String,
    path: PathBuf,
}

impl Lease<'_> {
    /// The cached file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut state = self.cache.lock();
        let forget = match state.entries.get_mut(&self.key) {
            Some(entry) => {
                entry.users = entry.users.saturating_sub(1);
                entry.users == 0 && entry.size.is_none()
            }
            None => false,
        };
        if forget {
            // A download that failed (or was cancelled) and that nobody waits for.
            state.entries.remove(&self.key);
        }
        self.cache.evict(&mut state);
    }
}

/// Removes the files this cache writes (entries and partial downloads) from `dir`, leaving
/// anything else there alone. Blocking.
pub(crate) fn clear(dir: &Path) {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in listing.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(".partial-")
            || name.starts_with(".entry-")
            || name.split_once('-').is_some_and(|(hash, _)| {
                hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit())
            });
        if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The cache key (and file name) of a URI fetched for `user`.
pub(crate) fn cache_key(user: Option<&str>, uri: &str, executable: bool, name: &Path) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (user.unwrap_or_default(), uri, executable).hash(&mut hasher);
    let base: String = name
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect();
    format!("{:016x}-{base}", hasher.finish())
}

impl FetcherCache {
    /// A cache in `dir` of at most `max_bytes`. The directory is created on first use.
    pub(crate) fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Self {
            dir,
            max_bytes,
            state: Mutex::new(State::default()),
        }
    }

    /// The cache directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry `key`, filled by `fill` (given the path the file must end up at, written
    /// atomically) unless it is cached already. Concurrent calls for one key download once:
    /// the others wait and then share the file. A failed fill fails only its own caller; the
    /// next caller tries again.
    pub(crate) async fn get<F, Fut, E>(&self, key: &str, fill: F) -> Result<Lease<'_>, E>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = Result<(), E>>,
        E: From<std::io::Error>,
    {
        let slot = {
            let mut state = self.lock();
            let entry = state
                .entries
                .entry(key.to_string())
                .or_insert_with(|| Entry {
                    slot: Arc::new(tokio::sync::Mutex::new(None)),
                    users: 0,
                    size: None,
                    last_used: 0,
                });
            entry.users += 1;
            Arc::clone(&entry.slot)
        };
        let path = self.dir.join(key);
        let lease = Lease {
            cache: self,
            key: key.to_string(),
            path: path.clone(),
        };
        let mut cached = slot.lock().await;
        let present = cached.is_some() && tokio::fs::try_exists(&path).await.unwrap_or(false);
        if present {
            tracing::debug!(key, "fetcher cache hit");
        } else {
            if let Some(stale) = cached.take() {
                // The file vanished from under the cache.
                let mut state = self.lock();
                state.total = state.total.saturating_sub(stale);
                if let Some(entry) = state.entries.get_mut(key) {
                    entry.size = None;
                }
            }
            tokio::fs::create_dir_all(&self.dir).await?;
            fill(path.clone()).await?;
            let size = tokio::fs::metadata(&path).await?.len();
            *cached = Some(size);
            let mut state = self.lock();
            state.total += size;
            if let Some(entry) = state.entries.get_mut(key) {
                entry.size = Some(size);
            }
            tracing::debug!(key, size, "fetcher cache filled");
        }
        drop(cached);
        let mut state = self.lock();
        state.clock += 1;
        let now = state.clock;
        if let Some(entry) = state.entries.get_mut(key) {
            entry.last_used = now;
        }
        self.evict(&mut state);
        drop(state);
        Ok(lease)
    }

    /// Removes least recently used entries that are not in use until the cache fits its limit.
    fn evict(&self, state: &mut State) {
        while state.total > self.max_bytes {
            let victim = state
                .entries
                .iter()
                .filter(|(_, e)| e.users == 0 && e.size.is_some())
                .min_by_key(|(_, e)| e.last_used)
                .map(|(key, _)| key.clone());
            let Some(key) = victim else { return };
            if let Some(entry) = state.entries.remove(&key) {
                state.total = state.total.saturating_sub(entry.size.unwrap_or(0));
                // Sandboxes keep their hard links; only the cache's name goes.
                if let Err(err) = std::fs::remove_file(self.dir.join(&key)) {
                    tracing::warn!(%err, key, "cannot remove an evicted fetcher cache entry");
                }
                tracing::debug!(key, "fetcher cache entry evicted");
            }
        }
    }

    /// The keys of the cached entries (for tests).
    #[cfg(test)]
    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .entries
            .iter()
            .filter(|(_, e)| e.size.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn put(cache: &FetcherCache, key: &str, bytes: usize, fills: &AtomicUsize) {
        let lease = cache
            .get::<_, _, std::io::Error>(key, |path| async move {
                fills.fetch_add(1, Ordering::SeqCst);
                tokio::fs::write(path, vec![b'x'; bytes]).await
            })
            .await
            .unwrap();
        assert!(lease.path().exists());
    }

    #[tokio::test]
    async fn one_fill_per_key_and_lru_eviction_of_unused_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FetcherCache::new(dir.path().join("cache"), 250);
        let fills = AtomicUsize::new(0);
        put(&cache, "a", 100, &fills).await;
        put(&cache, "a", 100, &fills).await;
        assert_eq!(fills.load(Ordering::SeqCst), 1);
        put(&cache, "b", 100, &fills).await;
        put(&cache, "a", 100, &fills).await; // a is now more recent than b
        put(&cache, "c", 100, &fills).await; // 300 > 250: b goes
        assert_eq!(cache.keys(), ["a", "c"]);
        assert!(!dir.path().join("cache/b").exists());

        // An entry in use is not evicted.
        let held = cache
            .get::<_, _, std::io::Error>("a", |_| async { Err(std::io::Error::other("refilled")) })
            .await
            .unwrap();
        put(&cache, "d", 100, &fills).await;
        assert_eq!(cache.keys(), ["a", "d"]);
        drop(held);
        assert_eq!(fills.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn concurrent_gets_fill_once_and_a_failed_fill_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FetcherCache::new(dir.path().join("cache"), 1 << 20);
        let fills = AtomicUsize::new(0);
        let failed = cache
            .get::<_, _, std::io::Error>("k", |_| async { Err(std::io::Error::other("boom")) })
            .await;
        assert!(failed.is_err());
        let gets = (0..10).map(|_| put(&cache, "k", 10, &fills));
        futures::future::join_all(gets).await;
        assert_eq!(fills.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn keys_depend_on_user_uri_and_mode() {
        let name = Path::new("tool");
        let key = cache_key(Some("u"), "http://h/tool", true, name);
        assert!(key.ends_with("-tool"));
        assert_ne!(key, cache_key(Some("v"), "http://h/tool", true, name));
        assert_ne!(key, cache_key(Some("u"), "http://h/tool2", true, name));
        assert_ne!(key, cache_key(Some("u"), "http://h/tool", false, name));
        assert!(!cache_key(None, "u", false, Path::new("../../x y")).contains('/'));
    }
}
