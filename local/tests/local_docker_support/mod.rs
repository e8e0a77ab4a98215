//! Helpers of the Docker tests: the locally built test image, the engine check that makes the
//! tests skip with a printed reason, DOCKER tasks and volumes, and the check that an agent left
//! no container behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use crate::local_agent_support::*;
use mesos_sdk::v1::container_info::docker_info::Network;
use mesos_sdk::v1::container_info::{self, DockerInfo};
use mesos_sdk::v1::{CommandInfo, ContainerInfo, TaskInfo, TaskState, TaskStatus, Volume, volume};

/// The test image's tag.
pub const IMAGE: &str = "mesos-local-test-busybox:1";

/// Runs `docker <args>` to its end.
pub fn docker(args: &[&str]) -> std::process::Output {
    std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker command line runs")
}

/// Whether an engine answers; prints the reason when not.
pub fn engine() -> bool {
    match std::process::Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "SKIPPED: no Docker Engine answers: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            false
        }
        Err(err) => {
            eprintln!("SKIPPED: no docker command line: {err}");
            false
        }
    }
}

/// Serializes the image build of tests running at once (one build, no dangling image).
static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The engine answers and the test image exists (built here when missing).
pub fn ready() -> bool {
    if !engine() {
        return false;
    }
    let _build = BUILD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if docker(&["image", "inspect", IMAGE]).status.success() {
        return true;
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(busybox) = busybox else {
        eprintln!("SKIPPED: no static busybox (apt-get install busybox-static)");
        return false;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&busybox, dir.path().join("busybox")).unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n\
         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nENV PATH=/bin\n",
    )
    .unwrap();
    let built = docker(&["build", "-q", "-t", IMAGE, dir.path().to_str().unwrap()]);
    assert!(
        built.status.success(),
        "building the test image: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    true
}

/// Containers of `agent_id` still on the engine.
pub fn leftovers(agent_id: &str) -> String {
    let out = docker(&[
        "ps",
        "-a",
        "-q",
        "--filter",
        &format!("label=mesos-local.agent={agent_id}"),
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn container(network: Network) -> ContainerInfo {
    ContainerInfo {
        r#type: container_info::Type::Docker as i32,
        docker: Some(DockerInfo {
            image: IMAGE.into(),
            network: Some(network as i32),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn docker_task(id: &str, command: CommandInfo, container: ContainerInfo) -> TaskInfo {
    TaskInfo {
        container: Some(Box::new(container)),
        resources: mesos_sdk::resourcemgr::parse_resources("cpus:0.5;mem:64").unwrap(),
        ..task(id, Some(command))
    }
}

pub fn volume(host: &Path, container_path: &str, mode: volume::Mode) -> Volume {
    Volume {
        mode: mode as i32,
        container_path: container_path.into(),
        host_path: Some(host.display().to_string()),
        ..Default::default()
    }
}

/// Acknowledges updates of `task_id` until RUNNING; returns it.
pub async fn until_running(master: &mut TestMaster, task_id: &str) -> TaskStatus {
    loop {
        let status = master.next_update().await;
        master.ack(&status);
        let state = state_of(&status);
        assert!(
            !state.is_terminal(),
            "{task_id} ended before running: {status:?}"
        );
        if status.task_id.value == task_id && state == TaskState::TaskRunning {
            return status;
        }
    }
}

/// The Docker name of the container a RUNNING update reports.
pub fn name_of(running: &TaskStatus) -> String {
    let id = running
        .container_status
        .as_ref()
        .and_then(|c| c.container_id.as_ref())
        .expect("a container id in the update");
    format!("mes-{}", id.value)
}
