//! Unpacking of fetched archives (`.tar`, `.tar.gz`, `.tgz`, `.zip`) and `.gz` files into the
//! sandbox, bounded and symlink-safe.
//!
//! - Every file, directory and link is created through [`Beneath`]: no write follows a symbolic
//!   link, whatever an earlier entry or URI planted.
//! - Entry names are made relative (a leading `/` is dropped) and entries whose name climbs with
//!   `..` are skipped, as tar and unzip do.
//! - A symbolic link entry is refused (the fetch fails) unless its target is relative, has `..`
//!   components only at its start, and does not climb above the sandbox from the link's
//!   directory. Such links stay inside the sandbox whatever other links exist there (every
//!   directory the fetcher creates is a real one, and a target never climbs after descending),
//!   so a link to `/etc` or one built to escape through another link cannot exist.
//! - A hard link entry must name a regular file inside the sandbox.
//! - Permission bits are kept without setuid, setgid and sticky bits; ownership is not restored.
//!   Device, FIFO and other special entries are skipped.
//! - The total size written and the number of entries are bounded
//!   ([`FetcherLimits::max_extracted_bytes`], [`FetcherLimits::max_archive_entries`]); a file cut
//!   short by a limit is removed.
//! - Extraction checks a [`CancellationToken`] between chunks and stops when it is cancelled.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::fetch_limits::FetcherLimits;
use super::sandbox_fs::{Beneath, SandboxPathError};

/// Why an archive could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExtractError {
    /// The archive (or the file being written) could not be opened or created.
    #[error("{0}")]
    Path(#[from] SandboxPathError),
    /// The archive is corrupt or unreadable.
    #[error("cannot read {kind} archive: {source}")]
    Read {
        /// `tar`, `tar.gz` or `gzip`.
        kind: &'static str,
        /// The read error.
        source: std::io::Error,
    },
    /// The zip archive is corrupt or unreadable.
    #[error("cannot read zip archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Writing an extracted file failed.
    #[error("cannot write '{path}': {source}")]
    Write {
        /// The file, relative to the sandbox.
        path: PathBuf,
        /// The write error.
        source: std::io::Error,
    },
    /// The archive expands to more than the limit.
    #[error("the archive expands to more than {limit} bytes (max_extracted_bytes)")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The archive has more entries than the limit.
    #[error("the archive has more than {limit} entries (max_archive_entries)")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// A symbolic link entry points outside the sandbox.
    #[error("archive entry '{entry}' is a symbolic link to '{target}', outside the sandbox")]
    SymlinkOutside {
        /// The entry's name.
        entry: PathBuf,
        /// Its target.
        target: PathBuf,
    },
    /// A hard link entry names a file outside the sandbox.
    #[error("archive entry '{entry}' is a hard link to '{target}', outside the sandbox")]
    HardlinkOutside {
        /// The entry's name.
        entry: PathBuf,
        /// Its target.
        target: PathBuf,
    },
    /// The fetch was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// What kind of file a fetched name is, by its (case-insensitive) suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    /// `.tar.gz` or `.tgz`.
    TarGz,
    /// `.tar`.
    Tar,
    /// `.zip`.
    Zip,
    /// `.gz` (one compressed file).
    Gzip,
}

impl ArchiveKind {
    /// The kind of `name`, `None` when it is not an archive.
    pub(crate) fn of(name: &Path) -> Option<Self> {
        let name = name.file_name()?.to_string_lossy().to_lowercase();
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Self::TarGz)
        } else if name.ends_with(".tar") {
            Some(Self::Tar)
        } else if name.ends_with(".zip") {
            Some(Self::Zip)
        } else if name.ends_with(".gz") {
            Some(Self::Gzip)
        } else {
            None
        }
    }
}

/// Bytes and entries written so far, against the limits.
struct Budget<'a> {
    limits: &'a FetcherLimits,
    bytes: u64,
    entries: u64,
    cancel: &'a CancellationToken,
}

impl Budget<'_> {
    fn entry(&mut self) -> Result<(), ExtractError> {
        if self.cancel.is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        self.entries += 1;
        if self.entries > self.limits.max_archive_entries {
            return Err(ExtractError::TooManyEntries {
                limit: self.limits.max_archive_entries,
            });
        }
        Ok(())
    }

    /// Copies `reader` into the new file `relative` (mode `mode`), within the byte budget;
    /// removes the file when the copy does not complete.
    fn write_file(
        &mut self,
        beneath: &Beneath,
        relative: &Path,
        mode: u32,
        reader: &mut dyn Read,
    ) -> Result<(), ExtractError> {
        let mut file = beneath.create_file(relative, mode)?;
        let result = self.copy(relative, reader, &mut file).and_then(|()| {
            file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
                .map_err(|source| ExtractError::Write {
                    path: relative.to_path_buf(),
                    source,
                })
        });
        if result.is_err() {
            drop(file);
            beneath.remove_file(relative);
        }
        result
    }

    fn copy(
        &mut self,
        relative: &Path,
        reader: &mut dyn Read,
        file: &mut std::fs::File,
    ) -> Result<(), ExtractError> {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            if self.cancel.is_cancelled() {
                return Err(ExtractError::Cancelled);
            }
            let read = match reader.read(&mut buffer) {
                Ok(0) => return Ok(()),
                Ok(read) => read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(ExtractError::Read {
                        kind: "compressed",
                        source,
                    });
                }
            };
            self.bytes = self.bytes.saturating_add(read as u64);
            if self.bytes > self.limits.max_extracted_bytes {
                return Err(ExtractError::TooLarge {
                    limit: self.limits.max_extracted_bytes,
                });
            }
            file.write_all(&buffer[..read])
                .map_err(|source| ExtractError::Write {
                    path: relative.to_path_buf(),
                    source,
                })?;
        }
    }
}

/// Unpacks the fetched file `archive` (relative to the sandbox) of kind `kind` into the sandbox.
pub(crate) fn extract(
    beneath: &Beneath,
    archive: &Path,
    kind: ArchiveKind,
    limits: &FetcherLimits,
    cancel: &CancellationToken,
) -> Result<(), ExtractError> {
    let file = std::io::BufReader::new(beneath.open_file(archive)?);
    let mut budget = Budget {
        limits,
        bytes: 0,
        entries: 0,
        cancel,
    };
    match kind {
        ArchiveKind::TarGz => untar(
            beneath,
            flate2::read::GzDecoder::new(file),
            "tar.gz",
            &mut budget,
        ),
        ArchiveKind::Tar => untar(beneath, file, "tar", &mut budget),
        ArchiveKind::Zip => unzip(beneath, file, &mut budget),
        ArchiveKind::Gzip => {
            let name = archive
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stem = &name[..name.len().saturating_sub(3)];
            budget.entry()?;
            let mut decoder = flate2::read::GzDecoder::new(file);
            budget
                .write_file(beneath, Path::new(stem), 0o644, &mut decoder)
                .map_err(|err| match err {
                    ExtractError::Read { source, .. } => ExtractError::Read {
                        kind: "gzip",
                        source,
                    },
                    other => other,
                })
        }
    }
}

/// An entry name made relative to the sandbox: root dropped, `.` dropped; `None` when it climbs
/// with `..` or is empty.
fn inside_name(name: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    for component in name.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
        }
    }
    (!relative.as_os_str().is_empty()).then_some(relative)
}

/// Whether a symbolic link at `entry` (relative to the sandbox) pointing at `target` is allowed:
/// `target` relative, its `..` components all leading and no more of them than `entry` has
/// directories above it.
fn symlink_allowed(entry: &Path, target: &Path) -> bool {
    let depth = entry.components().count().saturating_sub(1);
    let mut climbing = true;
    let mut ups = 0;
    for component in target.components() {
        match component {
            Component::ParentDir if climbing => ups += 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
            Component::CurDir => {}
            Component::Normal(_) => climbing = false,
        }
    }
    ups <= depth && !target.as_os_str().is_empty()
}

fn symlink(beneath: &Beneath, entry: &Path, target: &Path) -> Result<(), ExtractError> {
    if !symlink_allowed(entry, target) {
        return Err(ExtractError::SymlinkOutside {
            entry: entry.to_path_buf(),
            target: target.to_path_buf(),
        });
    }
    beneath.remove_file(entry);
    beneath.symlink(entry, target)?;
    Ok(())
}

fn untar(
    beneath: &Beneath,
    reader: impl Read,
    kind: &'static str,
    budget: &mut Budget<'_>,
) -> Result<(), ExtractError> {
    let read_error = |source| ExtractError::Read { kind, source };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(read_error)? {
        budget.entry()?;
        let mut entry = entry.map_err(read_error)?;
        let name = entry.path().map_err(read_error)?.into_owned();
        let Some(relative) = inside_name(&name) else {
            tracing::debug!(entry = %name.display(), "archive entry outside the sandbox skipped");
            continue;
        };
        let header_type = entry.header().entry_type();
        match header_type {
            tar::EntryType::Directory => beneath.create_dir_all(&relative)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mode = entry.header().mode().unwrap_or(0o644);
                budget
                    .write_file(beneath, &relative, mode, &mut entry)
                    .map_err(|err| match err {
                        ExtractError::Read { source, .. } => ExtractError::Read { kind, source },
                        other => other,
                    })?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                symlink(beneath, &relative, &target)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let Some(existing) = inside_name(&target) else {
                    return Err(ExtractError::HardlinkOutside {
                        entry: relative,
                        target,
                    });
                };
                beneath.remove_file(&relative);
                beneath.hard_link(&existing, &relative)?;
            }
            other => {
                tracing::debug!(entry = %name.display(), kind = ?other, "special archive entry skipped");
            }
        }
    }
    Ok(())
}

fn unzip(
    beneath: &Beneath,
    reader: impl Read + std::io::Seek,
    budget: &mut Budget<'_>,
) -> Result<(), ExtractError> {
    let mut archive = zip::ZipArchive::new(reader)?;
    if archive.len() as u64 > budget.limits.max_archive_entries {
        return Err(ExtractError::TooManyEntries {
            limit: budget.limits.max_archive_entries,
        });
    }
    for index in 0..archive.len() {
        budget.entry()?;
        let mut entry = archive.by_index(index)?;
        let name = PathBuf::from(entry.name());
        let Some(relative) = inside_name(&name) else {
            tracing::debug!(entry = %name.display(), "archive entry outside the sandbox skipped");
            continue;
        };
        if entry.is_dir() {
            beneath.create_dir_all(&relative)?;
        } else if entry.is_symlink() {
            let mut target = String::new();
            // A link's target is tiny; more than a path's worth is not a link.
            entry
                .by_ref()
                .take(4096)
                .read_to_string(&mut target)
                .map_err(|source| ExtractError::Read {
                    kind: "zip",
                    source,
                })?;
            symlink(beneath, &relative, Path::new(&target))?;
        } else {
            let mode = entry.unix_mode().unwrap_or(0o644);
            budget
                .write_file(beneath, &relative, mode, &mut entry)
                .map_err(|err| match err {
                    ExtractError::Read { source, .. } => ExtractError::Read {
                        kind: "zip",
                        source,
                    },
                    other => other,
                })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_relative_and_climbing_ones_skipped() {
        assert_eq!(
            inside_name(Path::new("/etc/passwd")),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(
            inside_name(Path::new("./a/./b")),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(inside_name(Path::new("a/../../x")), None);
        assert_eq!(inside_name(Path::new("/")), None);
    }

    #[test]
    fn only_links_that_stay_inside_are_allowed() {
        let allowed = [
            ("lib.so", "lib.so.1"),
            ("lib/x.so", "../lib64/x.so.1"),
            ("a/b/c", "../../d/e"),
            ("a/l", "./x"),
        ];
        for (entry, target) in allowed {
            assert!(
                symlink_allowed(Path::new(entry), Path::new(target)),
                "{entry} -> {target}"
            );
        }
        let refused = [
            ("link", "/etc"),
            ("link", ".."),
            ("a/link", "../.."),
            ("x", "a/b/.."),
            ("x", "a/../../y"),
            ("x", ""),
        ];
        for (entry, target) in refused {
            assert!(
                !symlink_allowed(Path::new(entry), Path::new(target)),
                "{entry} -> {target}"
            );
        }
    }
}
