//! Writing files that may be executed, without ever exposing their write descriptors to
//! another process: the fix of the fetcher's `ETXTBSY` race.
//!
//! The race: `execve` of a file fails with `ETXTBSY` ("Text file busy") while any process holds
//! it open for writing. `O_CLOEXEC` (which every file of the fetcher has) closes a descriptor at
//! `exec`, but a `fork` copies the whole descriptor table first, so a child forked by *another*
//! thread (any spawn in the process: another executor's launch, a health check, a docker CLI
//! call, another agent or test in the same process) holds the write descriptor of an executable
//! the fetcher is writing until that child's own `exec`. Under load that window is long, and
//! the freshly fetched executor's `exec` (by its `sh -c`) then fails and the executor
//! "terminates" at once. A lock around our own spawns would not cover forks made elsewhere in
//! the process.
//!
//! The fix: the final bytes of an executable file (a URI with `executable`, or the entries of
//! an archive) are written on a dedicated thread that first gives itself a private descriptor
//! table (`unshare(CLONE_FILES)`). Descriptors it opens exist only in that table, so no fork
//! by another thread can copy them; when the thread ends they are closed and the files are
//! complete. Downloads themselves still go into a non-executable staging file from the shared
//! table, which is copied into place this way (that file is never executed, so a leaked
//! descriptor of it is harmless).

use std::sync::Arc;

use super::sandbox_fs::Beneath;

/// A job for a private-descriptor thread did not run to its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PrivateFdsError {
    /// The thread could not be created.
    #[error("cannot start the file-writing thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The thread panicked.
    #[error("the file-writing thread died")]
    Died,
}

/// Runs `job` on a new thread with a private descriptor table and returns its result.
///
/// Where `unshare` is refused (e.g. by a seccomp profile) the job runs anyway, with only the
/// protection `O_CLOEXEC` gives, and a warning is logged.
pub(crate) async fn run<T: Send + 'static>(
    job: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PrivateFdsError> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("fetch-writer".to_string())
        .spawn(move || {
            if let Err(err) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_FILES) {
                tracing::warn!(%err, "cannot give the fetcher's writer a private descriptor table");
            }
            let _ = done.send(job());
        })
        .map_err(PrivateFdsError::Thread)?;
    result.await.map_err(|_| PrivateFdsError::Died)
}

/// Copies the sandbox file `from` into the new file `to` (mode `mode`) on a private-descriptor
/// thread, then removes `from`. `to` is removed again if the copy fails.
pub(crate) async fn install(
    beneath: &Arc<Beneath>,
    from: std::path::PathBuf,
    to: std::path::PathBuf,
    mode: u32,
) -> Result<(), InstallError> {
    let beneath = Arc::clone(beneath);
    run(move || {
        let result = copy(&beneath, &from, &to, mode);
        if result.is_err() {
            beneath.remove_file(&to);
        }
        beneath.remove_file(&from);
        result
    })
    .await?
}

/// Why a staged file could not be put in place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum InstallError {
    /// A sandbox path could not be used.
    #[error("{0}")]
    Sandbox(#[from] super::sandbox_fs::SandboxPathError),
    /// Reading or writing failed.
    #[error("cannot write '{path}': {source}")]
    Io {
        /// The target.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The writing thread failed.
    #[error("{0}")]
    Thread(#[from] PrivateFdsError),
}

fn copy(
    beneath: &Beneath,
    from: &std::path::Path,
    to: &std::path::Path,
    mode: u32,
) -> Result<(), InstallError> {
    use std::os::unix::fs::PermissionsExt;
    let io = |source| InstallError::Io {
        path: to.display().to_string(),
        source,
    };
    let mut source = beneath.open_file(from)?;
    let mut target = beneath.create_file(to, mode)?;
    std::io::copy(&mut source, &mut target).map_err(io)?;
    // Set again: `create_file` does not reset the mode of an existing file it truncates.
    target
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor opened by a job is not in the process's shared table, so a fork by
    /// another thread cannot copy it.
    #[tokio::test]
    async fn descriptors_of_a_job_are_private_to_it() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("executable");
        let (opened, seen) = std::sync::mpsc::channel::<i32>();
        let (checked, release) = std::sync::mpsc::channel::<()>();
        let job_path = path.clone();
        let job = run(move || {
            let file = std::fs::File::create(&job_path).unwrap();
            opened.send(file.as_raw_fd()).unwrap();
            // Kept open until the other thread has looked.
            release.recv().unwrap();
            drop(file);
        });
        let waiter = tokio::spawn(job);
        let fd = tokio::task::spawn_blocking(move || seen.recv().unwrap())
            .await
            .unwrap();
        let shared = std::fs::read_link(format!("/proc/thread-self/fd/{fd}")).ok();
        checked.send(()).unwrap();
        waiter.await.unwrap().unwrap();
        assert_ne!(
            shared.as_deref(),
            Some(path.as_path()),
            "the write descriptor leaked"
        );
        assert!(path.exists());
    }

    #[tokio::test]
    async fn install_copies_with_the_mode_and_removes_the_staged_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".staged"), b"#!/bin/sh\necho hi\n").unwrap();
        let beneath = Arc::new(Beneath::open(dir.path()).unwrap());
        install(&beneath, ".staged".into(), "bin/tool".into(), 0o755)
            .await
            .unwrap();
        let tool = dir.path().join("bin/tool");
        assert_eq!(std::fs::read(&tool).unwrap(), b"#!/bin/sh\necho hi\n");
        assert_eq!(
            std::fs::metadata(&tool).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(!dir.path().join(".staged").exists());
    }
}
