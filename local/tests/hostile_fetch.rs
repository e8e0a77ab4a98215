//! Issue 9, sections 1 (symlinks) and 2 (bounded fetches): the fetcher attacked through real
//! tasks on a real agent, with files served over loopback by well-behaved and misbehaving
//! servers. Archives that plant symbolic links out of the sandbox are refused before any later
//! URI, `.gz` decompression or `output_file` can write through them; `..`, absolute and hard
//! link entries and setuid bits stay harmless; stalled servers, endless bodies and archive bombs
//! fail the task with a message naming the limit; KILL and TEARDOWN cancel a fetch and close its
//! connection. Every timeout and limit is set small in the agent's configuration.

mod local_agent_support;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use local_agent_support::*;
use mesos_local::agent::FetcherLimits;
use mesos_local::link::ToAgent;
use mesos_sdk::v1::command_info::Uri;
use mesos_sdk::v1::{CommandInfo, ExecutorId, TaskState, TaskStatus, task_status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

fn uri(value: &str) -> Uri {
    Uri {
        value: value.into(),
        ..Default::default()
    }
}

/// Limits small enough for tests; `stall` is the stall timeout.
fn limits(stall: Duration) -> FetcherLimits {
    FetcherLimits {
        connect_timeout: Duration::from_secs(5),
        stall_timeout: stall,
        deadline: Duration::from_secs(30),
        max_download_bytes: 64 * 1024,
        max_extracted_bytes: 256 * 1024,
        max_archive_entries: 20,
    }
}

async fn agent_with(limits: FetcherLimits) -> (mesos_local::agent::AgentHandle, TestMaster) {
    let mut config = config(None);
    config.fetcher_limits = limits;
    start(config).await
}

/// Runs a `true` task fetching `uris`; returns its updates up to the terminal one.
async fn run_fetch(master: &mut TestMaster, task_id: &str, uris: Vec<Uri>) -> Vec<TaskStatus> {
    let command = CommandInfo {
        value: Some("true".into()),
        uris,
        ..Default::default()
    };
    master.run_task(framework(false), None, task(task_id, Some(command)));
    master.updates_until_terminal(task_id).await
}

fn assert_fetch_failed(updates: &[TaskStatus], needle: &str) {
    let last = updates.last().expect("an update");
    assert_eq!(states(updates), vec![TaskState::TaskFailed], "{updates:?}");
    assert_eq!(last.reason(), task_status::Reason::ContainerLaunchFailed);
    assert_eq!(last.source(), task_status::Source::Agent);
    assert!(
        last.message().contains(needle),
        "{needle:?} not in {:?}",
        last.message()
    );
}

/// A tar entry written with raw header fields, so that names and link targets the `tar`
/// crate's builder refuses (`..`, absolute) can be put in the archive.
struct Entry<'a> {
    name: &'a str,
    kind: tar::EntryType,
    link: &'a str,
    mode: u32,
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        name,
        kind: tar::EntryType::Regular,
        link: "",
        mode: 0o644,
        data,
    }
}

fn link<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
    Entry {
        name,
        kind: tar::EntryType::Symlink,
        link: target,
        mode: 0o777,
        data: b"",
    }
}

fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut builder = tar::Builder::new(encoder);
    for entry in entries {
        let mut header = tar::Header::new_old();
        {
            let raw = header.as_old_mut();
            raw.name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
            raw.linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        }
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(entry.mode);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn zip_with_symlink(name: &str, target: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .add_symlink(name, target, zip::write::SimpleFileOptions::default())
        .unwrap();
    writer.finish().unwrap().into_inner()
}

/// Everything below `dir` (relative names), to show nothing was written there.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn archive_symlinks_out_of_the_sandbox_are_refused_before_any_later_write() {
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().display().to_string();
    let mut files = HashMap::new();
    // Route 1: a later URI download named like the link.
    files.insert(
        "/plant-file.tar.gz".to_string(),
        tar_gz(&[link("payload.txt", &format!("{out}/payload.txt"))]),
    );
    files.insert("/payload.txt".to_string(), b"written through".to_vec());
    // Route 2: a later `.gz` decompressed onto the link's name.
    files.insert(
        "/plant-gz.tar.gz".to_string(),
        tar_gz(&[link("data", &format!("{out}/data"))]),
    );
    files.insert("/data.gz".to_string(), gz(b"decompressed through"));
    // Route 3: an `output_file` below a link to a directory, with a link that climbs out
    // relatively instead of absolutely.
    let climbs = format!("../../../../../../../../../../../../..{out}");
    files.insert(
        "/plant-dir.tar.gz".to_string(),
        tar_gz(&[link("dir", &climbs)]),
    );
    files.insert("/x".to_string(), b"output through".to_vec());
    // The same through a zip archive's symlink.
    files.insert("/plant.zip".to_string(), zip_with_symlink("zdir", &out));
    let server = FileServer::start(files).await;
    let (agent, mut master) = agent_with(limits(Duration::from_secs(5))).await;

    let updates = run_fetch(
        &mut master,
        "t-route-download",
        vec![
            uri(&server.url("/plant-file.tar.gz")),
            uri(&server.url("/payload.txt")),
        ],
    )
    .await;
    assert_fetch_failed(
        &updates,
        &format!(
            "archive entry 'payload.txt' is a symbolic link to '{out}/payload.txt', outside the sandbox"
        ),
    );
    let updates = run_fetch(
        &mut master,
        "t-route-gz",
        vec![
            uri(&server.url("/plant-gz.tar.gz")),
            uri(&server.url("/data.gz")),
        ],
    )
    .await;
    assert_fetch_failed(&updates, "'data' is a symbolic link");
    let updates = run_fetch(
        &mut master,
        "t-route-output",
        vec![
            uri(&server.url("/plant-dir.tar.gz")),
            Uri {
                output_file: Some("dir/x".into()),
                ..uri(&server.url("/x"))
            },
        ],
    )
    .await;
    assert_fetch_failed(&updates, "'dir' is a symbolic link");
    let updates = run_fetch(
        &mut master,
        "t-route-zip",
        vec![
            uri(&server.url("/plant.zip")),
            Uri {
                output_file: Some("zdir/x".into()),
                ..uri(&server.url("/x"))
            },
        ],
    )
    .await;
    assert_fetch_failed(&updates, "'zdir' is a symbolic link");

    assert!(
        listing(outside.path()).is_empty(),
        "{:?}",
        listing(outside.path())
    );
    // The later URIs were never fetched.
    assert_eq!(server.hits("/payload.txt"), 0);
    assert_eq!(server.hits("/data.gz"), 0);
    assert_eq!(server.hits("/x"), 0);
    agent.shutdown().await;
}

#[tokio::test]
async fn links_inside_the_sandbox_are_kept_but_never_followed_by_later_writes() {
    let mut files = HashMap::new();
    files.insert(
        "/bundle.tar.gz".to_string(),
        tar_gz(&[
            Entry {
                name: "real/",
                kind: tar::EntryType::Directory,
                link: "",
                mode: 0o755,
                data: b"",
            },
            file("real/lib.so.1", b"library"),
            link("real/lib.so", "lib.so.1"),
            link("real/up", "../real/lib.so.1"),
            link("alias", "real"),
        ]),
    );
    files.insert("/x".to_string(), b"later".to_vec());
    let server = FileServer::start(files).await;
    let (agent, mut master) = agent_with(limits(Duration::from_secs(5))).await;

    let command = CommandInfo {
        value: Some("cat real/lib.so real/up alias/lib.so.1".into()),
        uris: vec![uri(&server.url("/bundle.tar.gz"))],
        ..Default::default()
    };
    master.run_task(framework(false), None, task("t-inside", Some(command)));
    let updates = master.updates_until_terminal("t-inside").await;
    assert_eq!(
        state_of(updates.last().unwrap()),
        TaskState::TaskFinished,
        "{updates:?}"
    );
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-inside".into(),
            },
        )
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
        "librarylibrarylibrary"
    );

    // A later write through even an inside link is refused: no write ever follows a link.
    let updates = run_fetch(
        &mut master,
        "t-through-inside",
        vec![
            uri(&server.url("/bundle.tar.gz")),
            Uri {
                output_file: Some("alias/new".into()),
                ..uri(&server.url("/x"))
            },
        ],
    )
    .await;
    assert_fetch_failed(&updates, "'alias/new' passes through a symbolic link");
    agent.shutdown().await;
}

#[tokio::test]
async fn climbing_absolute_hardlink_and_setuid_entries_stay_harmless() {
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let mut files = HashMap::new();
    files.insert(
        "/odd.tar.gz".to_string(),
        tar_gz(&[
            file("../../../../../../../../escaped.txt", b"no"),
            file("/abs.txt", b"absolute made relative"),
            Entry {
                mode: 0o4755,
                ..file("suid.sh", b"#!/bin/sh\n")
            },
        ]),
    );
    files.insert(
        "/hardlink.tar.gz".to_string(),
        tar_gz(&[Entry {
            name: "hl",
            kind: tar::EntryType::Link,
            link: "../../../../../../../../../../etc/passwd",
            mode: 0o644,
            data: b"",
        }]),
    );
    let server = FileServer::start(files).await;
    let (agent, mut master) = agent_with(limits(Duration::from_secs(5))).await;

    let updates = run_fetch(&mut master, "t-odd", vec![uri(&server.url("/odd.tar.gz"))]).await;
    assert_eq!(
        state_of(updates.last().unwrap()),
        TaskState::TaskFinished,
        "{updates:?}"
    );
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-odd".into(),
            },
        )
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(sandbox.join("abs.txt")).unwrap(),
        "absolute made relative"
    );
    let mode = std::fs::metadata(sandbox.join("suid.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755, "setuid bit dropped: {mode:o}");
    assert!(!sandbox.join("escaped.txt").exists());
    let work_dir = agent.work_dir().to_path_buf();
    assert!(!work_dir.join("escaped.txt").exists());

    let updates = run_fetch(
        &mut master,
        "t-hardlink",
        vec![uri(&server.url("/hardlink.tar.gz"))],
    )
    .await;
    assert_fetch_failed(&updates, "is a hard link to");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    agent.shutdown().await;
}

#[tokio::test]
async fn downloads_and_archive_expansion_are_bounded_and_partial_files_removed() {
    let mut files = HashMap::new();
    files.insert("/big.bin".to_string(), vec![7u8; 100 * 1024]);
    files.insert(
        "/bomb.tar.gz".to_string(),
        tar_gz(&[file("zeros", &vec![0u8; 1024 * 1024])]),
    );
    files.insert("/bomb.gz".to_string(), gz(&vec![0u8; 1024 * 1024]));
    let many: Vec<(String, Vec<u8>)> = (0..30).map(|i| (format!("f{i}"), vec![1u8])).collect();
    files.insert(
        "/many.tar.gz".to_string(),
        tar_gz(
            &many
                .iter()
                .map(|(name, data)| file(name, data))
                .collect::<Vec<_>>(),
        ),
    );
    let server = FileServer::start(files).await;
    let endless = MisbehavingServer::start(Behaviour::EndlessBody).await;
    let (agent, mut master) = agent_with(limits(Duration::from_secs(5))).await;

    // A Content-Length above the limit is refused before the body is read.
    let updates = run_fetch(&mut master, "t-big", vec![uri(&server.url("/big.bin"))]).await;
    assert_fetch_failed(
        &updates,
        "the download exceeds the limit of 65536 bytes (max_download_bytes)",
    );
    // An endless chunked body is cut at the limit and the partial file removed.
    let updates = run_fetch(
        &mut master,
        "t-endless",
        vec![uri(&endless.url("/endless"))],
    )
    .await;
    assert_fetch_failed(&updates, "max_download_bytes");
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-endless".into(),
            },
        )
        .unwrap();
    assert!(!sandbox.join("endless").exists(), "{:?}", listing(&sandbox));
    assert!(endless.closed().await, "the connection is closed");

    // Archive and gzip bombs stop at the expansion limit; the cut file is removed.
    let updates = run_fetch(
        &mut master,
        "t-bomb",
        vec![uri(&server.url("/bomb.tar.gz"))],
    )
    .await;
    assert_fetch_failed(
        &updates,
        "the archive expands to more than 262144 bytes (max_extracted_bytes)",
    );
    let sandbox = agent
        .executor_sandbox(
            &framework_id(),
            &ExecutorId {
                value: "t-bomb".into(),
            },
        )
        .unwrap();
    assert!(!sandbox.join("zeros").exists());
    let updates = run_fetch(&mut master, "t-gzbomb", vec![uri(&server.url("/bomb.gz"))]).await;
    assert_fetch_failed(&updates, "max_extracted_bytes");
    let updates = run_fetch(
        &mut master,
        "t-many",
        vec![uri(&server.url("/many.tar.gz"))],
    )
    .await;
    assert_fetch_failed(
        &updates,
        "the archive has more than 20 entries (max_archive_entries)",
    );
    agent.shutdown().await;
}

#[tokio::test]
async fn stalled_servers_fail_the_task_on_the_stall_timeout_and_slow_ones_on_the_deadline() {
    let silent = MisbehavingServer::start(Behaviour::Silent).await;
    let headers_only = MisbehavingServer::start(Behaviour::HeadersThenStall).await;
    let trickle = MisbehavingServer::start(Behaviour::Trickle).await;
    let (agent, mut master) = agent_with(FetcherLimits {
        deadline: Duration::from_secs(3),
        ..limits(Duration::from_secs(1))
    })
    .await;

    let updates = run_fetch(&mut master, "t-silent", vec![uri(&silent.url("/f"))]).await;
    assert_fetch_failed(
        &updates,
        "the server sent nothing for 1secs (stall timeout)",
    );
    assert!(silent.closed().await);
    let updates = run_fetch(&mut master, "t-headers", vec![uri(&headers_only.url("/f"))]).await;
    assert_fetch_failed(&updates, "(stall timeout)");
    assert!(headers_only.closed().await);
    // One byte every 50 ms never stalls but never ends either.
    let updates = run_fetch(&mut master, "t-trickle", vec![uri(&trickle.url("/f"))]).await;
    assert_fetch_failed(&updates, "Failed to fetch all URIs within 3secs");
    assert!(trickle.closed().await);
    agent.shutdown().await;
}

#[tokio::test]
async fn kill_and_teardown_cancel_a_fetch_and_close_its_connection() {
    let silent = MisbehavingServer::start(Behaviour::Silent).await;
    let (agent, mut master) = agent_with(limits(Duration::from_secs(600))).await;

    let command = CommandInfo {
        value: Some("true".into()),
        uris: vec![uri(&silent.url("/f"))],
        ..Default::default()
    };
    master.run_task(
        framework(false),
        None,
        task("t-kill", Some(command.clone())),
    );
    silent.accepted().await;
    master.kill("t-kill", None);
    let updates = master.updates_until_terminal("t-kill").await;
    assert_eq!(states(&updates), vec![TaskState::TaskKilled], "{updates:?}");
    assert!(silent.closed().await, "the connection is closed");

    master.run_task(framework(false), None, task("t-teardown", Some(command)));
    silent.accepted().await;
    master.send(ToAgent::ShutdownFramework {
        framework_id: framework_id(),
    });
    let updates = master.updates_until_terminal("t-teardown").await;
    assert_eq!(states(&updates), vec![TaskState::TaskKilled], "{updates:?}");
    assert!(silent.closed().await, "the connection is closed");
    agent.shutdown().await;
}

/// How a [`MisbehavingServer`] treats each connection.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Accepts and reads, never answers.
    Silent,
    /// Sends a 200 head with a Content-Length, then nothing.
    HeadersThenStall,
    /// A chunked 200 whose body never ends.
    EndlessBody,
    /// A chunked 200 sending one byte every 50 ms forever.
    Trickle,
}

/// A loopback server that misbehaves on purpose and reports when a connection is accepted
/// and when the client closes it.
struct MisbehavingServer {
    addr: SocketAddr,
    accepted: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
    closed: tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl MisbehavingServer {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted_tx, accepted) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = accepted_tx.send(());
                let closed_tx = closed_tx.clone();
                tokio::spawn(async move {
                    serve(tcp, behaviour).await;
                    let _ = closed_tx.send(());
                });
            }
        });
        Self {
            addr,
            accepted: tokio::sync::Mutex::new(accepted),
            closed: tokio::sync::Mutex::new(closed),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits until a connection is accepted.
    async fn accepted(&self) {
        tokio::time::timeout(WAIT, self.accepted.lock().await.recv())
            .await
            .expect("a connection in time");
    }

    /// Whether a connection was closed by the client within [`WAIT`].
    async fn closed(&self) -> bool {
        matches!(
            tokio::time::timeout(WAIT, self.closed.lock().await.recv()).await,
            Ok(Some(()))
        )
    }
}

impl Drop for MisbehavingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Plays `behaviour` on one connection until the client closes it.
async fn serve(mut tcp: tokio::net::TcpStream, behaviour: Behaviour) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
    }
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    match behaviour {
        Behaviour::Silent => {}
        Behaviour::HeadersThenStall => {
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc")
                .await;
        }
        Behaviour::EndlessBody => {
            if tcp.write_all(chunked.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("4000\r\n{}\r\n", "z".repeat(0x4000));
            while tcp.write_all(chunk.as_bytes()).await.is_ok() {}
            return;
        }
        Behaviour::Trickle => {
            if tcp.write_all(chunked.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if tcp.write_all(b"1\r\nz\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
    // Wait for the client to close the connection (read returns 0 or fails).
    loop {
        match tcp.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn teardown_during_a_custom_executor_fetch_cancels_it() {
    let silent = MisbehavingServer::start(Behaviour::Silent).await;
    let (agent, mut master) = agent_with(limits(Duration::from_secs(600))).await;
    let executor = custom_executor(
        "ex-fetching",
        CommandInfo {
            value: Some("sleep 1000".into()),
            uris: vec![uri(&silent.url("/executor.tgz"))],
            ..Default::default()
        },
    );
    master.run_task(framework(false), Some(executor), task("t-on-ex", None));
    silent.accepted().await;
    master.send(ToAgent::ShutdownFramework {
        framework_id: framework_id(),
    });
    let updates = master.updates_until_terminal("t-on-ex").await;
    assert_eq!(states(&updates), vec![TaskState::TaskKilled], "{updates:?}");
    assert!(silent.closed().await, "the connection is closed");
    agent.shutdown().await;
}

#[tokio::test]
async fn a_server_that_never_accepts_fails_the_task_on_the_connect_timeout() {
    // A listener whose accept queue is full and never drained: further SYNs go unanswered.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let listener = socket.listen(0).unwrap();
    let mut fillers = Vec::new();
    let mut hanging = false;
    for _ in 0..16 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(err)) => panic!("filler connection: {err}"),
            Err(_) => {
                hanging = true;
                break;
            }
        }
    }
    if !hanging {
        // This kernel answers SYNs beyond the backlog: nothing to test here.
        eprintln!("the accept queue never filled up; connect timeout not exercised");
        return;
    }
    let (agent, mut master) = agent_with(FetcherLimits {
        connect_timeout: Duration::from_millis(300),
        ..limits(Duration::from_secs(600))
    })
    .await;
    let updates = run_fetch(
        &mut master,
        "t-connect",
        vec![uri(&format!("http://{addr}/f"))],
    )
    .await;
    assert_fetch_failed(
        &updates,
        &format!(
            "no connection to 127.0.0.1:{} within 300ms (connect timeout)",
            addr.port()
        ),
    );
    drop((listener, fillers));
    agent.shutdown().await;
}
