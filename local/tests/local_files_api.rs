//! The agent's sandbox file API (`/files/browse`, `/files/read`, `/files/download`), as Mesos'
//! web UI and `mesos tail` use it, and its confinement: no path outside a sandbox is ever
//! listed, read or downloaded (`..`, symbolic links pointing out or in, percent-encoded slashes
//! and dots, absolute paths elsewhere, the work directory above the sandboxes).

mod local_agent_support;
mod local_master_support;

use std::path::PathBuf;
use std::time::Duration;

use local_agent_support::{config, framework, framework_id, shell, start, state_of, task};
use local_master_support::{RawResponse, raw};
use mesos_sdk::v1::{ExecutorId, TaskState};
use serde_json::json;

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// Percent-encodes a query value (everything but unreserved characters and `/`).
fn encode(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn get(addr: std::net::SocketAddr, path: &str) -> RawResponse {
    raw(addr, "GET", path, &[], b"").await
}

/// An agent that ran a task writing `hello files` to stdout; returns it and its sandbox.
async fn agent_with_output() -> (
    mesos_local::agent::AgentHandle,
    local_agent_support::TestMaster,
    PathBuf,
) {
    let (agent, mut master) = start(config(None)).await;
    master.run_task(
        framework(false),
        None,
        task(
            "t-files",
            Some(shell(
                "printf 'hello files\\n'; mkdir -p sub; echo deep > sub/inner.txt",
            )),
        ),
    );
    let statuses = master.updates_until_terminal("t-files").await;
    assert_eq!(state_of(statuses.last().unwrap()), TaskState::TaskFinished);
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-files".into(),
            },
        )
        .unwrap();
    // The command executor's stdout is written by the agent; wait until it has arrived.
    for _ in 0..100 {
        if std::fs::read_to_string(sandbox.join("stdout"))
            .unwrap_or_default()
            .contains("hello files")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (agent, master, sandbox)
}

#[tokio::test]
async fn browse_read_and_download_a_sandbox() {
    let (agent, _master, sandbox) = agent_with_output().await;
    let addr = agent.endpoint();
    let dir = sandbox.to_string_lossy().into_owned();

    let r = get(addr, &format!("/files/browse?path={}", encode(&dir))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(JSON));
    let listing = r.json();
    let entries = listing.as_array().unwrap();
    let stdout = entries
        .iter()
        .find(|e| e["path"] == format!("{dir}/stdout"))
        .expect("stdout listed");
    assert!(stdout["mode"].as_str().unwrap().starts_with("-rw"));
    assert!(stdout["size"].as_u64().unwrap() >= 12);
    for key in ["nlink", "mtime", "uid", "gid"] {
        assert!(stdout.get(key).is_some(), "{key}");
    }
    let sub = entries
        .iter()
        .find(|e| e["path"] == format!("{dir}/sub"))
        .unwrap();
    assert!(sub["mode"].as_str().unwrap().starts_with('d'));

    // The finished executor's sandbox is listed on the agent's `/state`.
    let state = get(addr, "/state").await.json();
    let listed = serde_json::to_string(&state).unwrap();
    assert!(
        listed.contains(&format!("\"directory\":\"{dir}\"")),
        "{listed}"
    );

    let file = format!("{dir}/stdout");
    let content = std::fs::read(&file).unwrap();
    let r = get(
        addr,
        &format!("/files/read?path={}&offset=0", encode(&file)),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(JSON));
    assert_eq!(
        r.json(),
        json!({"data": String::from_utf8_lossy(&content), "offset": 0})
    );

    let r = get(
        addr,
        &format!("/files/read?path={}&offset=-1", encode(&file)),
    )
    .await;
    assert_eq!(r.json(), json!({"data": "", "offset": content.len()}));

    let r = get(
        addr,
        &format!("/files/read?path={}&offset=6&length=5", encode(&file)),
    )
    .await;
    assert_eq!(
        r.json()["data"],
        String::from_utf8_lossy(&content[6..11]).as_ref()
    );
    assert_eq!(r.json()["offset"], 6);

    let r = get(
        addr,
        &format!("/files/read?path={}&offset=100000", encode(&file)),
    )
    .await;
    assert_eq!(r.json(), json!({"data": "", "offset": content.len()}));

    let inner = format!("{dir}/sub/inner.txt");
    let r = get(addr, &format!("/files/download?path={}", encode(&inner))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"inner.txt\"")
    );
    assert_eq!(&r.body[..], b"deep\n");

    let r = get(addr, &format!("/files/read?path={}", encode(&dir))).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some(TEXT));
    assert_eq!(r.text(), "Cannot read a directory.\n");
    let r = get(addr, &format!("/files/download?path={}", encode(&dir))).await;
    assert_eq!(r.status, 400);
    let r = get(addr, "/files/read?offset=0").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), "Expecting 'path=value' in query.\n");
    let r = get(
        addr,
        &format!("/files/read?path={}&offset=abc", encode(&file)),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = raw(
        addr,
        "POST",
        &format!("/files/read?path={}", encode(&file)),
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 405);
    agent.shutdown().await;
}

#[tokio::test]
async fn the_latest_run_is_reachable_under_its_virtual_path() {
    let (agent, mut master) = start(config(None)).await;
    let addr = agent.endpoint();
    master.run_task(
        framework(false),
        None,
        task("t-live", Some(shell("echo live; sleep 30"))),
    );
    loop {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskRunning {
            break;
        }
    }
    let virtual_dir = format!(
        "/frameworks/{}/executors/t-live/runs/latest",
        framework_id().value
    );
    let mut data = String::new();
    for _ in 0..100 {
        let r = get(
            addr,
            &format!(
                "/files/read?path={}&offset=0",
                encode(&format!("{virtual_dir}/stdout"))
            ),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        data = r.json()["data"].as_str().unwrap().to_string();
        if data.contains("live") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(data.contains("live"), "{data}");
    let r = get(
        addr,
        &format!("/files/browse?path={}", encode(&virtual_dir)),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == format!("{virtual_dir}/stdout"))
    );
    master.kill("t-live", None);
    master.updates_until_terminal("t-live").await;
    agent.shutdown().await;
}

#[tokio::test]
async fn nothing_outside_a_sandbox_is_ever_served() {
    let (agent, _master, sandbox) = agent_with_output().await;
    let addr = agent.endpoint();
    let dir = sandbox.to_string_lossy().into_owned();
    // A secret next to the sandboxes, in the agent's work directory.
    let work_dir = agent.work_dir().to_path_buf();
    std::fs::write(work_dir.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink("/etc", sandbox.join("etc-link")).unwrap();
    std::os::unix::fs::symlink(work_dir.join("secret.txt"), sandbox.join("secret-link")).unwrap();
    std::os::unix::fs::symlink("stdout", sandbox.join("inner-link")).unwrap();

    let secret = work_dir.join("secret.txt").to_string_lossy().into_owned();
    let attacks: Vec<String> = vec![
        "/etc/passwd".into(),
        "/etc".into(),
        "/".into(),
        secret.clone(),
        work_dir.to_string_lossy().into_owned(),
        format!("{dir}/../../../../../../secret.txt"),
        format!("{dir}/.."),
        format!("{dir}/sub/../../stdout"),
        format!("{dir}/etc-link/passwd"),
        format!("{dir}/etc-link"),
        format!("{dir}/secret-link"),
        format!("{dir}/inner-link"),
        format!("{dir}x/stdout"),
        format!(
            "/frameworks/{}/executors/t-files/runs/latest/../../../../secret.txt",
            framework_id().value
        ),
        format!(
            "/frameworks/{}/executors/t-files/runs/latest/etc-link/passwd",
            framework_id().value
        ),
        "../../../../etc/passwd".into(),
        "".into(),
    ];
    for attack in &attacks {
        for endpoint in ["browse", "read", "download"] {
            let path = format!("/files/{endpoint}?path={}&offset=0", encode(attack));
            let r = get(addr, &path).await;
            assert!(
                r.status == 404 || (r.status == 400 && attack.is_empty()),
                "{path}: {} {}",
                r.status,
                r.text()
            );
            assert!(
                !r.text().contains("secret") && !r.text().contains("root:"),
                "{path}"
            );
        }
    }
    // Hand-encoded slashes and dots, and a raw `..` in the request target.
    let encoded = dir.replace('/', "%2F");
    for target in [
        format!("/files/read?path={encoded}%2F..%2F..%2F..%2F..%2F..%2F..%2Fsecret.txt&offset=0"),
        format!("/files/read?path={encoded}%2F%2E%2E%2Fstdout&offset=0"),
        format!("/files/read?path={dir}/../stdout&offset=0"),
        format!("/files/download?path={encoded}%2Fetc-link%2Fpasswd"),
    ] {
        let r = get(addr, &target).await;
        assert_eq!(r.status, 404, "{target}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(TEXT));
        assert_eq!(r.text(), "404 Not Found.");
    }
    // The same sandbox stays readable.
    let r = get(
        addr,
        &format!("/files/read?path={encoded}%2Fstdout&offset=0"),
    )
    .await;
    assert_eq!(r.status, 200);
    agent.shutdown().await;
}

#[tokio::test]
async fn a_task_cannot_swap_its_sandbox_for_a_link() {
    let (agent, mut master) = start(config(None)).await;
    let addr = agent.endpoint();
    // The task replaces its own run directory with a link to /etc, then keeps running.
    master.run_task(
        framework(false),
        None,
        task(
            "t-swap",
            Some(shell("run=$(basename \"$PWD\"); cd .. && mv \"$run\" \"$run.old\" && ln -s /etc \"$run\" && touch \"$run.old/swapped\"; sleep 30")),
        ),
    );
    loop {
        let status = master.next_update().await;
        master.ack(&status);
        if state_of(&status) == TaskState::TaskRunning {
            break;
        }
    }
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-swap".into(),
            },
        )
        .unwrap();
    let old = PathBuf::from(format!("{}.old", sandbox.display()));
    for _ in 0..200 {
        if old.join("swapped").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(old.join("swapped").exists(), "the task swapped its sandbox");
    let dir = sandbox.to_string_lossy().into_owned();
    for target in [
        format!("/files/browse?path={}", encode(&dir)),
        format!(
            "/files/read?path={}&offset=0",
            encode(&format!("{dir}/passwd"))
        ),
        format!("/files/download?path={}", encode(&format!("{dir}/passwd"))),
        format!(
            "/files/read?path={}&offset=0",
            encode(&format!(
                "/frameworks/{}/executors/t-swap/runs/latest/passwd",
                framework_id().value
            ))
        ),
    ] {
        let r = get(addr, &target).await;
        assert_eq!(r.status, 404, "{target}: {}", r.text());
        assert!(!r.text().contains("root:"));
    }
    master.kill("t-swap", None);
    master.updates_until_terminal("t-swap").await;
    agent.shutdown().await;
}
