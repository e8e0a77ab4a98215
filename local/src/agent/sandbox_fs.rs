//! Symlink-safe file operations below a sandbox directory, for the fetcher (writes) and the
//! sandbox file API (reads: [`Beneath::open_existing`], [`list_dir`]).
//!
//! Every path is relative to the sandbox and is walked one component at a time from a handle on
//! the sandbox directory (`openat` with `O_NOFOLLOW`): a component that is a symbolic link is
//! never followed, `..` and absolute paths are refused, so nothing written through a [`Beneath`]
//! can land outside the sandbox whatever links an archive planted there before. Files are opened
//! with `O_NONBLOCK` and checked to be regular files, so a planted FIFO or device cannot block
//! or receive the write either.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Why a path below the sandbox could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SandboxPathError {
    /// The path is absolute, empty, or climbs with `..`.
    #[error("'{0}' is not a relative path inside the sandbox")]
    NotInside(PathBuf),
    /// A component of the path is a symbolic link (which is not followed).
    #[error("'{0}' passes through a symbolic link")]
    Symlink(PathBuf),
    /// The path names something that is not a regular file.
    #[error("'{0}' is not a regular file")]
    NotAFile(PathBuf),
    /// The operating system refused the operation.
    #[error("'{path}': {source}")]
    Io {
        /// The path, relative to the sandbox.
        path: PathBuf,
        /// The system error.
        source: std::io::Error,
    },
}

/// A handle on a sandbox directory through which paths are resolved without following links.
#[derive(Debug)]
pub(crate) struct Beneath {
    root: OwnedFd,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn dir_mode() -> Mode {
    Mode::from_raw_mode(0o755)
}

impl Beneath {
    /// Opens the sandbox directory itself (its own path is the agent's and trusted).
    pub(crate) fn open(root: &Path) -> Result<Self, SandboxPathError> {
        let root = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_error(root, e))?;
        Ok(Self { root })
    }

    /// The normal components of `relative`, refusing absolute paths and `..`.
    fn components(relative: &Path) -> Result<Vec<&OsStr>, SandboxPathError> {
        let mut parts = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) => parts.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(SandboxPathError::NotInside(relative.to_path_buf()));
                }
            }
        }
        if parts.is_empty() {
            return Err(SandboxPathError::NotInside(relative.to_path_buf()));
        }
        Ok(parts)
    }

    /// Opens the directory `parts` (below the root), creating missing ones when `create`.
    fn open_dir(
        &self,
        relative: &Path,
        parts: &[&OsStr],
        create: bool,
    ) -> Result<OwnedFd, SandboxPathError> {
        let mut current = rustix::io::dup(&self.root).map_err(|e| io_error(relative, e))?;
        for part in parts {
            let next = match rustix::fs::openat(&current, *part, DIR_FLAGS, Mode::empty()) {
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&current, *part, dir_mode()) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_error(relative, e)),
                    }
                    rustix::fs::openat(&current, *part, DIR_FLAGS, Mode::empty())
                }
                other => other,
            };
            current = next.map_err(|e| match e {
                // `O_DIRECTORY | O_NOFOLLOW` on a link answers ENOTDIR on Linux.
                Errno::NOTDIR if is_symlink(&current, part) => {
                    SandboxPathError::Symlink(relative.to_path_buf())
                }
                other => classify(relative, other),
            })?;
        }
        Ok(current)
    }

    /// The directory holding `relative`'s last component (created when `create`), and that
    /// component.
    fn parent<'a>(
        &self,
        relative: &'a Path,
        create: bool,
    ) -> Result<(OwnedFd, &'a OsStr), SandboxPathError> {
        let parts = Self::components(relative)?;
        let (last, dirs) = parts
            .split_last()
            .ok_or_else(|| SandboxPathError::NotInside(relative.to_path_buf()))?;
        Ok((self.open_dir(relative, dirs, create)?, last))
    }

    /// Creates the directory `relative` and its missing parents.
    pub(crate) fn create_dir_all(&self, relative: &Path) -> Result<(), SandboxPathError> {
        let parts = Self::components(relative)?;
        self.open_dir(relative, &parts, true).map(drop)
    }

    /// Creates (or truncates) the regular file `relative` with permission bits `mode`, creating
    /// its missing parent directories. An existing symbolic link at `relative` is refused.
    ///
    /// A regular file at `relative` with other hard links (a fetcher cache entry linked into
    /// the sandbox) is unlinked first, so that its other names keep their contents.
    pub(crate) fn create_file(&self, relative: &Path, mode: u32) -> Result<File, SandboxPathError> {
        let (dir, name) = self.parent(relative, true)?;
        if let Ok(stat) = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            && FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile
            && stat.st_nlink > 1
        {
            let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
        }
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::TRUNC
                | OFlags::NOFOLLOW
                | OFlags::NONBLOCK
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode & 0o777),
        )
        .map_err(|e| classify(relative, e))?;
        regular_file(relative, fd)
    }

    /// Opens the existing regular file `relative` for reading.
    pub(crate) fn open_file(&self, relative: &Path) -> Result<File, SandboxPathError> {
        let (dir, name) = self.parent(relative, false)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| classify(relative, e))?;
        regular_file(relative, fd)
    }

    /// Creates the symbolic link `relative` pointing at `target` (the target is not checked
    /// here; see the archive extraction for which targets are allowed).
    pub(crate) fn symlink(&self, relative: &Path, target: &Path) -> Result<(), SandboxPathError> {
        let (dir, name) = self.parent(relative, true)?;
        rustix::fs::symlinkat(target, &dir, name).map_err(|e| classify(relative, e))
    }

    /// Creates `relative` as a hard link to the existing regular file `existing`, both below
    /// the sandbox; a symbolic link is never followed for either.
    pub(crate) fn hard_link(
        &self,
        existing: &Path,
        relative: &Path,
    ) -> Result<(), SandboxPathError> {
        let (from_dir, from_name) = self.parent(existing, false)?;
        let stat = rustix::fs::statat(&from_dir, from_name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| classify(existing, e))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(SandboxPathError::NotAFile(existing.to_path_buf()));
        }
        let (to_dir, to_name) = self.parent(relative, true)?;
        rustix::fs::linkat(&from_dir, from_name, &to_dir, to_name, AtFlags::empty())
            .map_err(|e| classify(relative, e))
    }

    /// Creates `relative` (replacing a file or symbolic link of that name, never following
    /// one) as a hard link to `existing`, a file outside the sandbox given by an absolute path
    /// (the agent's fetcher cache). The raw error is returned for a failed link (`EXDEV` when
    /// the two are on different file systems).
    pub(crate) fn link_from_outside(
        &self,
        existing: &Path,
        relative: &Path,
    ) -> Result<Result<(), std::io::Error>, SandboxPathError> {
        let (dir, name) = self.parent(relative, true)?;
        if rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) != FileType::Directory)
        {
            let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
        }
        Ok(
            rustix::fs::linkat(rustix::fs::CWD, existing, &dir, name, AtFlags::empty())
                .map_err(std::io::Error::from),
        )
    }

    /// Removes the file (or link) `relative` if it exists; errors are ignored (cleanup).
    pub(crate) fn remove_file(&self, relative: &Path) {
        if let Ok((dir, name)) = self.parent(relative, false) {
            let _ = rustix::fs::unlinkat(&dir, name, AtFlags::empty());
        }
    }
}

/// Something that exists below a sandbox, opened without following links.
#[derive(Debug)]
pub(crate) enum Opened {
    /// A directory (list it with [`list_dir`]).
    Dir(OwnedFd),
    /// A regular file, opened for reading.
    File(File),
}

/// One entry of a directory, with what `lstat` says about it.
#[derive(Debug)]
pub(crate) struct DirEntry {
    /// The entry's name.
    pub name: String,
    /// Its metadata (of a link itself, never of its target).
    pub stat: rustix::fs::Stat,
}

impl Beneath {
    /// Opens the directory or regular file `relative` (empty: the sandbox itself) for reading.
    /// No symbolic link is followed, in the path or at its end, and `..` or an absolute path is
    /// refused.
    pub(crate) fn open_existing(&self, relative: &Path) -> Result<Opened, SandboxPathError> {
        let parts = match Self::components(relative) {
            Ok(parts) => parts,
            Err(_) if relative.as_os_str().is_empty() => Vec::new(),
            Err(error) => return Err(error),
        };
        let Some((last, dirs)) = parts.split_last() else {
            let dir = rustix::io::dup(&self.root).map_err(|e| io_error(relative, e))?;
            return Ok(Opened::Dir(dir));
        };
        let dir = self.open_dir(relative, dirs, false)?;
        let fd = rustix::fs::openat(
            &dir,
            *last,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| classify(relative, e))?;
        let stat = rustix::fs::fstat(fd.as_fd()).map_err(|e| io_error(relative, e))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => Ok(Opened::Dir(fd)),
            FileType::RegularFile => regular_file(relative, fd).map(Opened::File),
            _ => Err(SandboxPathError::NotAFile(relative.to_path_buf())),
        }
    }
}

/// The entries of an opened directory (without `.` and `..`), sorted by name.
pub(crate) fn list_dir(dir: &OwnedFd) -> std::io::Result<Vec<DirEntry>> {
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if let Ok(stat) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            out.push(DirEntry {
                name: String::from_utf8_lossy(bytes).into_owned(),
                stat,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `fd` as a [`File`] when it is a regular file.
fn regular_file(relative: &Path, fd: OwnedFd) -> Result<File, SandboxPathError> {
    let stat = rustix::fs::fstat(fd.as_fd()).map_err(|e| io_error(relative, e))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(SandboxPathError::NotAFile(relative.to_path_buf()));
    }
    // Back to blocking mode for ordinary reads and writes.
    let flags = rustix::fs::fcntl_getfl(&fd).map_err(|e| io_error(relative, e))?;
    rustix::fs::fcntl_setfl(&fd, flags - OFlags::NONBLOCK).map_err(|e| io_error(relative, e))?;
    Ok(File::from(fd))
}

/// Whether `name` in `dir` is a symbolic link (not followed).
fn is_symlink(dir: &OwnedFd, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|stat| FileType::from_raw_mode(stat.st_mode) == FileType::Symlink)
}

fn io_error(path: &Path, errno: Errno) -> SandboxPathError {
    SandboxPathError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

/// `ELOOP` (and `ENOTDIR` on a link met where a directory is expected) mean a symbolic link
/// was not followed.
fn classify(path: &Path, errno: Errno) -> SandboxPathError {
    match errno {
        Errno::LOOP | Errno::MLINK => SandboxPathError::Symlink(path.to_path_buf()),
        other => io_error(path, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn writes_never_follow_links_out_and_never_climb() {
        let outside = tempfile::tempdir().unwrap();
        let sandbox = tempfile::tempdir().unwrap();
        let beneath = Beneath::open(sandbox.path()).unwrap();
        std::os::unix::fs::symlink(outside.path(), sandbox.path().join("dir-link")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("target"),
            sandbox.path().join("file-link"),
        )
        .unwrap();
        for path in ["dir-link/x", "file-link", "a/../dir-link/x"] {
            let err = beneath.create_file(Path::new(path), 0o644).unwrap_err();
            assert!(
                matches!(
                    err,
                    SandboxPathError::Symlink(_) | SandboxPathError::NotInside(_)
                ),
                "{path}: {err}"
            );
        }
        for path in ["../x", "/etc/x", "", "."] {
            assert!(matches!(
                beneath.create_file(Path::new(path), 0o644),
                Err(SandboxPathError::NotInside(_))
            ));
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);

        let mut file = beneath.create_file(Path::new("a/b/c.txt"), 0o644).unwrap();
        file.write_all(b"inside").unwrap();
        let mut text = String::new();
        beneath
            .open_file(Path::new("a/b/c.txt"))
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "inside");
        beneath
            .hard_link(Path::new("a/b/c.txt"), Path::new("linked.txt"))
            .unwrap();
        assert!(matches!(
            beneath.hard_link(Path::new("file-link"), Path::new("l2")),
            Err(SandboxPathError::NotAFile(_))
        ));
    }

    #[test]
    fn fifos_are_not_written() {
        let sandbox = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(sandbox.path().join("fifo"))
            .status()
            .unwrap();
        assert!(made.success());
        let beneath = Beneath::open(sandbox.path()).unwrap();
        assert!(beneath.create_file(Path::new("fifo"), 0o644).is_err());
    }
}
