//! The master out of file descriptors (issue 9, section 3): with its process limited to a few
//! descriptors and many more idle connections opened against it, `/health` still answers,
//! because the server closes idle connections to make room when `accept` fails with EMFILE
//! (and backs off instead of spinning).
//!
//! The limit applies to the whole process, so the idle connections and the `/health` probe come
//! from a child process (this test binary run again as `flood_child`, which raises its own
//! limit back first). This file holds only these two tests, as the limit would affect others.

mod local_master_support;

use std::time::Duration;

use local_master_support::{WAIT, raw, start_master};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const TARGET: &str = "MESOS_LOCAL_FLOOD_TARGET";
/// Idle connections the child opens: several times the master's descriptor limit.
const IDLE: usize = 400;
/// The master process's descriptor limit during the test.
const LIMIT: u64 = 128;

#[tokio::test]
async fn health_answers_when_the_master_runs_out_of_descriptors() {
    let master = start_master(|config| {
        // Idle connections are held for the whole test; the default cap (1024) is above the
        // descriptor limit, so only the EMFILE handling can make room.
        config.http.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, LIMIT.min(soft), hard).expect("setrlimit");
    let child = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "flood_child", "--nocapture"])
        .env(TARGET, master.addr().to_string())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(WAIT * 6, child).await;
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("setrlimit");
    let output = output.expect("the child finishes").expect("the child runs");
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("health answered under the flood"));
    master.shutdown().await;
}

/// The child: opens [`IDLE`] idle connections to the master and keeps them while it asks for
/// `/health`. Does nothing unless run by the test above.
#[tokio::test]
async fn flood_child() {
    let Ok(target) = std::env::var(TARGET) else {
        return;
    };
    let addr = target.parse().expect("target address");
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raise the limit again");
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream.write_all(b"GET /health HTTP/1.1\r\n").await;
        idle.push(stream);
    }
    for _ in 0..3 {
        assert_eq!(raw(addr, "GET", "/health", &[], b"").await.status, 200);
    }
    println!("health answered under the flood");
    drop(idle);
}
