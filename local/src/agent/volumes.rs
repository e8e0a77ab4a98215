//! Persistent volumes on launch: a task whose resources carry a `disk` with
//! `disk.persistence` and `disk.volume` gets the volume's directory in its sandbox.
//!
//! As on a Mesos agent, the volume's data lives under the agent's work directory, at
//! `<work_dir>/volumes/roles/<role>/<persistence id>` (the role of the disk's reservation), so
//! it outlives the task and its sandbox: the next task launched with the same volume finds the
//! data. Where Mesos bind-mounts that directory at the volume's `container_path` inside the
//! sandbox, this agent makes a **symlink** there (no mount namespace, no privileges needed):
//! a task sees the same files, but `realpath` shows the volume directory, and a task that
//! replaces the link itself (rather than writing through it) loses it. `container_path` must be
//! relative to the sandbox (Mesos requires that too for tasks without a container image), with
//! no `..` component.

use std::io;
use std::path::{Component, Path, PathBuf};

use mesos_sdk::resourcemgr::reservation_role;
use mesos_sdk::v1::Resource;

/// The directory of a persistent volume: `<work_dir>/volumes/roles/<role>/<persistence id>`.
pub(crate) fn volume_dir(work_dir: &Path, role: &str, persistence_id: &str) -> PathBuf {
    work_dir
        .join("volumes")
        .join("roles")
        .join(role)
        .join(persistence_id)
}

/// Creates (if new) each persistent volume among `resources` under `work_dir` and links it
/// into `sandbox` at its `container_path`. A bad persistence id, role or container path is an
/// `InvalidInput` error naming it; nothing is created outside `work_dir` and `sandbox`.
pub(crate) fn link_persistent_volumes(
    work_dir: &Path,
    sandbox: &Path,
    resources: &[Resource],
) -> io::Result<()> {
    for resource in resources {
        let Some(disk) = resource.disk.as_ref() else {
            continue;
        };
        let (Some(persistence), Some(volume)) = (disk.persistence.as_ref(), disk.volume.as_ref())
        else {
            continue;
        };
        let role = reservation_role(resource);
        let id = persistence.id.as_str();
        for (what, name) in [("persistence id", id), ("role", role)] {
            if !is_plain_name(name) {
                return Err(invalid(format!(
                    "persistent volume {what} {name:?} is not a plain directory name"
                )));
            }
        }
        let relative = Path::new(&volume.container_path);
        let plain = !volume.container_path.is_empty()
            && relative
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !plain {
            return Err(invalid(format!(
                "persistent volume {id}: container path {:?} must be relative to the sandbox, \
                 without `..`",
                volume.container_path
            )));
        }
        let source = volume_dir(work_dir, role, id);
        std::fs::create_dir_all(&source)?;
        let target = sandbox.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::os::unix::fs::symlink(&source, &target).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "linking persistent volume {id} at {}: {e}",
                    target.display()
                ),
            )
        })?;
        tracing::debug!(volume = %id, %role, path = %target.display(), "persistent volume linked");
    }
    Ok(())
}

/// One path component, not `.` or `..`, no separator.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_sdk::v1::resource::{DiskInfo, ReservationInfo, disk_info};
    use mesos_sdk::v1::{Volume, volume};

    fn volume_resource(id: &str, container_path: &str) -> Resource {
        Resource {
            name: "disk".into(),
            reservations: vec![ReservationInfo {
                role: Some("db".into()),
                ..Default::default()
            }],
            disk: Some(Box::new(DiskInfo {
                persistence: Some(disk_info::Persistence {
                    id: id.into(),
                    principal: None,
                }),
                volume: Some(Volume {
                    container_path: container_path.into(),
                    mode: volume::Mode::Rw as i32,
                    ..Default::default()
                }),
                source: None,
            })),
            ..Default::default()
        }
    }

    #[test]
    fn a_volume_is_linked_and_outlives_the_sandbox() {
        let work = tempfile::tempdir().unwrap();
        let first = work.path().join("run1");
        link_persistent_volumes(work.path(), &first, &[volume_resource("v1", "data")]).unwrap();
        std::fs::write(first.join("data").join("file"), "kept").unwrap();
        std::fs::remove_dir_all(&first).unwrap();
        let second = work.path().join("run2");
        link_persistent_volumes(work.path(), &second, &[volume_resource("v1", "data")]).unwrap();
        let kept = std::fs::read_to_string(second.join("data").join("file")).unwrap();
        assert_eq!(kept, "kept");
        assert!(volume_dir(work.path(), "db", "v1").join("file").exists());
    }

    #[test]
    fn bad_paths_and_ids_are_refused() {
        let work = tempfile::tempdir().unwrap();
        let sandbox = work.path().join("s");
        for (id, path) in [
            ("v", "/abs"),
            ("v", "../up"),
            ("v", ""),
            ("..", "d"),
            ("a/b", "d"),
        ] {
            let err = link_persistent_volumes(work.path(), &sandbox, &[volume_resource(id, path)])
                .unwrap_err();
            assert_eq!(
                err.kind(),
                io::ErrorKind::InvalidInput,
                "{id} {path}: {err}"
            );
        }
    }
}
