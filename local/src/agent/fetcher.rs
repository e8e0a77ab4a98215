//! The fetcher: puts a command's `CommandInfo.uris` into a sandbox before launch.
//!
//! Sources are `http://` and `https://` URLs (redirects followed, certificates checked against
//! the webpki roots and any extra CA of `AgentConfig::fetcher_ca_pem`), `file://` URLs and plain
//! local paths. Each file lands in the sandbox under its `output_file` name (or the last path
//! segment of the URI). Then it is made executable (`executable`), or unpacked into the sandbox
//! when `extract` (true by default) is set and the name ends in `.tar`, `.tar.gz`, `.tgz`, `.zip`
//! or `.gz`.
//!
//! With `cache` set, the file is served from the agent's fetcher cache (see
//! [`super::fetch_cache`]): downloaded into it once per user, URI and mode, then put into each
//! sandbox. A cached executable is hard-linked into the sandbox (a copy where the cache is on
//! another file system): no copy, no extra disk space, and safe because nothing writes an
//! executable in place once it is complete (the fetcher writes every file through a fresh
//! inode: `Beneath::create_file` unlinks a file that has other links before writing, and cache
//! entries are read-only, mode 0555). Other cached files are copied, as Mesos does, since a task
//! may well modify its data files.
//!
//! An executable (and every archive entry) is written by a thread with a private descriptor
//! table, so that no process forked meanwhile holds it open for writing when it is executed
//! (`ETXTBSY`; see [`super::fetch_private_fds`]).
//!
//! Hostile URIs and archives are contained:
//! - every write into the sandbox goes through [`Beneath`], which never follows a symbolic link
//!   and never leaves the sandbox, so a link planted by an archive cannot redirect a later
//!   download, decompression or `output_file` (see also [`super::fetch_extract`] for what archive
//!   links may point at);
//! - the fetch of one launch is bounded by [`FetcherLimits`]: a connect timeout, a stall
//!   timeout, an overall deadline, a maximum download size and a maximum archive expansion; a
//!   file cut short by a failure is removed;
//! - the fetch stops as soon as the `stop` future given to [`Fetcher::fetch_all`] completes (a
//!   KILL or TEARDOWN of the task): downloads and their connections are dropped and a running
//!   extraction stops at its next chunk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::fetch_cache::{self, FetcherCache};
use super::fetch_extract::{self, ArchiveKind, ExtractError};
use super::fetch_http::{self, DownloadError};
use super::fetch_limits::FetcherLimits;
use super::fetch_private_fds::{self, InstallError, PrivateFdsError};
use super::sandbox_fs::{Beneath, SandboxPathError};
use mesos_sdk::v1::command_info::Uri;

/// Why the fetch of one URI failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchFailure {
    /// No file name could be derived, or `output_file` is not a relative path.
    #[error("{0}")]
    Name(String),
    /// The scheme is not `http`, `https` or `file`.
    #[error("unsupported URI scheme '{0}'")]
    UnsupportedScheme(String),
    /// A path inside the sandbox could not be used (e.g. it passes through a symbolic link).
    #[error("{0}")]
    Sandbox(#[from] SandboxPathError),
    /// The HTTP(S) download failed.
    #[error("{0}")]
    Download(#[from] DownloadError),
    /// A local file could not be copied.
    #[error("cannot copy '{path}': {source}")]
    Copy {
        /// The local path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A local file is larger than the download limit.
    #[error("'{path}' exceeds the limit of {limit} bytes (max_download_bytes)")]
    CopyTooLarge {
        /// The local path.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// The agent's cache directory could not be used.
    #[error("fetcher cache: {0}")]
    Cache(#[from] std::io::Error),
    /// Unpacking failed.
    #[error("{0}")]
    Extract(#[from] ExtractError),
    /// A fetched executable could not be put in place.
    #[error("{0}")]
    Install(#[from] InstallError),
    /// The extraction thread failed.
    #[error("{0}")]
    Thread(#[from] PrivateFdsError),
}

/// A fetch that did not complete; the text is the message of the TASK_FAILED update.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// One URI could not be fetched.
    #[error("Failed to fetch '{uri}': {failure}")]
    Uri {
        /// The URI's value.
        uri: String,
        /// Why.
        #[source]
        failure: FetchFailure,
    },
    /// The sandbox itself could not be opened.
    #[error("Failed to fetch: {0}")]
    Sandbox(#[source] SandboxPathError),
    /// The fetch of all URIs took longer than the deadline.
    #[error(
        "Failed to fetch all URIs within {} (the agent's fetcher deadline)",
        mesos_sdk::duration::format_duration(*after)
    )]
    Deadline {
        /// The deadline.
        after: Duration,
    },
    /// The fetch was stopped (the task was killed).
    #[error("the fetch was cancelled")]
    Cancelled,
}

fn failed(uri: &Uri, failure: impl Into<FetchFailure>) -> FetchError {
    FetchError::Uri {
        uri: uri.value.clone(),
        failure: failure.into(),
    }
}

/// An agent's fetcher: its download cache, the TLS configuration of its `https` downloads
/// (built once, when the agent starts) and its limits.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    cache: Arc<FetcherCache>,
    tls: Arc<rustls::ClientConfig>,
    limits: FetcherLimits,
}

impl Fetcher {
    /// A fetcher caching in `cache`, trusting `tls`'s roots for `https`, within `limits`.
    pub(crate) fn new(
        cache: FetcherCache,
        tls: Arc<rustls::ClientConfig>,
        limits: FetcherLimits,
    ) -> Self {
        Self {
            cache: Arc::new(cache),
            tls,
            limits,
        }
    }

    /// [`Fetcher::fetch_all_as`] for the agent's own user.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) async fn fetch_all(
        &self,
        uris: &[Uri],
        sandbox: &Path,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), FetchError> {
        self.fetch_all_as(None, uris, sandbox, stop).await
    }

    /// Fetches every URI into `sandbox` for `user` (`CommandInfo.user`, part of the cache key),
    /// in order, within the deadline; gives up with [`FetchError::Cancelled`] as soon as `stop`
    /// completes.
    pub(crate) async fn fetch_all_as(
        &self,
        user: Option<&str>,
        uris: &[Uri],
        sandbox: &Path,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), FetchError> {
        if uris.is_empty() {
            return Ok(());
        }
        let beneath = Arc::new(Beneath::open(sandbox).map_err(FetchError::Sandbox)?);
        // Cancelled when this future completes or is dropped: stops a blocking extraction.
        let cancel = CancellationToken::new();
        let _stop_extraction = cancel.clone().drop_guard();
        let work = async {
            for uri in uris {
                self.fetch_one(user, uri, &beneath, &cancel).await?;
            }
            Ok(())
        };
        tokio::select! {
            result = tokio::time::timeout(self.limits.deadline, work) => {
                result.unwrap_or(Err(FetchError::Deadline { after: self.limits.deadline }))
            }
            () = stop => Err(FetchError::Cancelled),
        }
    }

    async fn fetch_one(
        &self,
        user: Option<&str>,
        uri: &Uri,
        beneath: &Arc<Beneath>,
        cancel: &CancellationToken,
    ) -> Result<(), FetchError> {
        let name = target_name(uri).map_err(|e| failed(uri, FetchFailure::Name(e)))?;
        if uri.cache() {
            self.place_cached(user, uri, &name, beneath)
                .await
                .map_err(|e| failed(uri, e))?;
            return self.extract(uri, &name, beneath, cancel).await;
        }
        let mode = if uri.executable() { 0o755 } else { 0o644 };
        // An executable is downloaded into a staging file and then copied into place by a
        // writer whose descriptors no forked child can inherit (see `fetch_private_fds`).
        let staged = uri
            .executable()
            .then(|| PathBuf::from(format!(".fetch-{}.partial", uuid::Uuid::new_v4())));
        let (target, written_mode) = match &staged {
            Some(staged) => (staged.clone(), 0o600),
            None => (name.clone(), mode),
        };
        let mut file = tokio::fs::File::from_std(
            beneath
                .create_file(&target, written_mode)
                .map_err(|e| failed(uri, e))?,
        );
        let written = self.download(uri.value.as_str(), &mut file).await;
        // Set again: `create_file` does not reset the mode of an existing file it truncates.
        let result = match written {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(written_mode))
                    .await
                    .map_err(|source| FetchFailure::Copy {
                        path: name.display().to_string(),
                        source,
                    })
            }
            Err(err) => Err(err),
        };
        drop(file);
        if let Err(failure) = result {
            beneath.remove_file(&target);
            return Err(failed(uri, failure));
        }
        if let Some(staged) = staged {
            return fetch_private_fds::install(beneath, staged, name, mode)
                .await
                .map_err(|e| failed(uri, e));
        }
        self.extract(uri, &name, beneath, cancel).await
    }

    /// Unpacks the fetched file `name` when it is an archive and `uri` asks for it.
    async fn extract(
        &self,
        uri: &Uri,
        name: &Path,
        beneath: &Arc<Beneath>,
        cancel: &CancellationToken,
    ) -> Result<(), FetchError> {
        if !uri.extract() {
            return Ok(());
        }
        let Some(kind) = ArchiveKind::of(name) else {
            return Ok(());
        };
        let (beneath, limits, cancel) = (Arc::clone(beneath), self.limits.clone(), cancel.clone());
        let archive = name.to_path_buf();
        // Archive entries may be executables: written like an installed executable.
        fetch_private_fds::run(move || {
            fetch_extract::extract(&beneath, &archive, kind, &limits, &cancel)
        })
        .await
        .map_err(|e| failed(uri, e))?
        .map_err(|e| failed(uri, e))
    }

    /// Puts the cached file of `uri` into the sandbox as `name`, downloading it into the cache
    /// first when it is not there: an executable as a hard link (a copy when the link fails,
    /// e.g. across file systems), anything else as a copy.
    async fn place_cached(
        &self,
        user: Option<&str>,
        uri: &Uri,
        name: &Path,
        beneath: &Arc<Beneath>,
    ) -> Result<(), FetchFailure> {
        let executable = uri.executable();
        let key = fetch_cache::cache_key(user, &uri.value, executable, name);
        let lease = self
            .cache
            .get(&key, |path| self.fill_cache(&uri.value, path, executable))
            .await?;
        let cached = lease.path().to_path_buf();
        if executable {
            match beneath.link_from_outside(&cached, name)? {
                Ok(()) => return Ok(()),
                Err(err) => {
                    tracing::debug!(%err, "cannot hard-link from the fetcher cache; copying");
                }
            }
        }
        let mode = if executable { 0o755 } else { 0o644 };
        let (beneath, target) = (Arc::clone(beneath), name.to_path_buf());
        // An executable copy is written like every executable (see `fetch_private_fds`).
        fetch_private_fds::run(move || copy_into(&cached, &beneath, &target, mode)).await??;
        drop(lease);
        Ok(())
    }

    /// Downloads `uri` to the cache file `path`: into a partial file first, then (for an
    /// executable, through a private-descriptor writer, since the entry will be executed) into
    /// the entry, read-only, renamed into place.
    async fn fill_cache(
        &self,
        uri: &str,
        path: PathBuf,
        executable: bool,
    ) -> Result<(), FetchFailure> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.cache.dir().to_path_buf();
        let partial = dir.join(format!(".partial-{}", uuid::Uuid::new_v4()));
        // Also when the fetch is cancelled (this future dropped) mid-download.
        let _remove_partial = RemoveOnDrop(partial.clone());
        let entry = dir.join(format!(".entry-{}", uuid::Uuid::new_v4()));
        let _remove_entry = RemoveOnDrop(entry.clone());
        async {
            let mut file = tokio::fs::File::create(&partial)
                .await
                .map_err(FetchFailure::Cache)?;
            self.download(uri, &mut file).await?;
            drop(file);
            let entry = if executable {
                let (from, to) = (partial.clone(), entry.clone());
                fetch_private_fds::run(move || -> std::io::Result<()> {
                    let mut source = std::fs::File::open(&from)?;
                    let mut target = std::fs::File::create(&to)?;
                    std::io::copy(&mut source, &mut target)?;
                    target.set_permissions(std::fs::Permissions::from_mode(0o555))
                })
                .await?
                .map_err(FetchFailure::Cache)?;
                entry.clone()
            } else {
                tokio::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o444))
                    .await
                    .map_err(FetchFailure::Cache)?;
                partial.clone()
            };
            tokio::fs::rename(&entry, &path)
                .await
                .map_err(FetchFailure::Cache)
        }
        .await
    }

    /// Copies or downloads `uri` into `file`.
    async fn download(&self, uri: &str, file: &mut tokio::fs::File) -> Result<(), FetchFailure> {
        if uri.starts_with("http://") || uri.starts_with("https://") {
            fetch_http::download(uri, file, &self.tls, &self.limits).await?;
            return Ok(());
        }
        let path = match uri.strip_prefix("file://") {
            Some(path) => path,
            None if uri.contains("://") => {
                return Err(FetchFailure::UnsupportedScheme(
                    uri.split("://").next().unwrap_or_default().to_string(),
                ));
            }
            None => uri,
        };
        copy_local(path, file, self.limits.max_download_bytes).await
    }
}

/// Copies the local file `path` into `file`, at most `limit` bytes (a FIFO or a device such as
/// `/dev/zero` is bounded like a download).
async fn copy_local(
    path: &str,
    file: &mut tokio::fs::File,
    limit: u64,
) -> Result<(), FetchFailure> {
    let copy_error = |source| FetchFailure::Copy {
        path: path.to_string(),
        source,
    };
    let source = tokio::fs::File::open(path).await.map_err(copy_error)?;
    let mut limited = source.take(limit.saturating_add(1));
    let copied = tokio::io::copy(&mut limited, file)
        .await
        .map_err(copy_error)?;
    if copied > limit {
        return Err(FetchFailure::CopyTooLarge {
            path: path.to_string(),
            limit,
        });
    }
    file.flush().await.map_err(copy_error)
}

/// The file name a URI is stored under: `output_file`, else its last path segment.
fn target_name(uri: &Uri) -> Result<PathBuf, String> {
    if let Some(name) = uri.output_file.as_deref().filter(|n| !n.is_empty()) {
        let path = PathBuf::from(name);
        if path.is_absolute()
            || path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!(
                "output_file '{name}' must be a relative path inside the sandbox"
            ));
        }
        return Ok(path);
    }
    let without_query = uri.value.split(['?', '#']).next().unwrap_or_default();
    // The path of a URL (what follows its authority), or the whole local path.
    let path = match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => without_query,
    };
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    if name.is_empty() || name == ".." || name == "." {
        return Err("cannot derive a file name from the URI".to_string());
    }
    Ok(PathBuf::from(name))
}

/// Removes a file when dropped, if it still exists (a partial download of the cache).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Copies the cache file `cached` into the sandbox file `target` (mode `mode`).
fn copy_into(
    cached: &Path,
    beneath: &Beneath,
    target: &Path,
    mode: u32,
) -> Result<(), FetchFailure> {
    use std::os::unix::fs::PermissionsExt;
    let mut source = std::fs::File::open(cached).map_err(FetchFailure::Cache)?;
    let mut file = beneath.create_file(target, mode)?;
    let copied = std::io::copy(&mut source, &mut file)
        .and_then(|_| file.set_permissions(std::fs::Permissions::from_mode(mode)));
    if let Err(source) = copied {
        drop(file);
        beneath.remove_file(target);
        return Err(FetchFailure::Copy {
            path: target.display().to_string(),
            source,
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "fetcher_route_tests.rs"]
mod route_tests;

/// A URI for tests.
#[cfg(test)]
fn uri(value: &str, output_file: Option<&str>) -> Uri {
    Uri {
        value: value.into(),
        output_file: output_file.map(str::to_string),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_come_from_output_file_or_the_last_segment() {
        assert_eq!(
            target_name(&uri("http://h/a/b/tool.tgz?x=1#f", None)).unwrap(),
            PathBuf::from("tool.tgz")
        );
        assert_eq!(
            target_name(&uri("/srv/file.txt", Some("sub/out.txt"))).unwrap(),
            PathBuf::from("sub/out.txt")
        );
        assert!(target_name(&uri("/x", Some("../escape"))).is_err());
        assert!(target_name(&uri("/x", Some("/abs"))).is_err());
        assert!(target_name(&uri("http://h/", None)).is_err());
    }

    #[test]
    fn unknown_schemes_are_refused() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tls = Arc::new(mesos_sdk::client::tls_client_config(&[]).unwrap());
        let sandbox = tempfile::tempdir().unwrap();
        let fetcher = Fetcher::new(
            FetcherCache::new(sandbox.path().join("cache"), 1 << 30),
            tls,
            FetcherLimits::default(),
        );
        let err = runtime
            .block_on(fetcher.fetch_all(
                &[uri("ftp://h/file", None)],
                sandbox.path(),
                std::future::pending(),
            ))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Failed to fetch 'ftp://h/file': unsupported URI scheme 'ftp'"
        );
        assert!(
            !sandbox.path().join("file").exists(),
            "partial file removed"
        );
    }
}
