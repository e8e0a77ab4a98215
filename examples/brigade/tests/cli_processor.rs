//! The real `brigade` binary: `brigade scheduler` runs against mesos-local (and tansu when
//! installed) with a processor directory, and every `brigade processor ...` command talks to
//! it: tables by default, `--json` for scripts, and the documented exit codes for an unknown
//! processor (4), invalid JSON or an invalid processor (5), a conflict (6) and an unreachable
//! API (3).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_brigade");

struct Scheduler {
    child: Child,
    url: String,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_scheduler(dir: &std::path::Path, master: &str, brokers: &str) -> Scheduler {
    let mut child = Command::new(BIN)
        .args(["scheduler", "--processors"])
        .arg(dir)
        .args([
            "--master",
            master,
            "--brokers",
            brokers,
            "--bind",
            "127.0.0.1:0",
        ])
        .args([
            "--heartbeat-ms",
            "500",
            "--poll-ms",
            "200",
            "--drain-timeout-secs",
            "5",
        ])
        .arg("--executor")
        .arg(support::executor_binary())
        .env_remove("BRIGADE_API")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("brigade scheduler starts");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    Scheduler { child, url }
}

fn brigade(api: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(["processor", "--api", api])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("brigade runs");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_processor_command_against_a_running_scheduler() {
    support::init_logs();
    let broker = support::tansu::tansu_or_skip("cli (kafka); the commands run without it");
    let brokers = broker
        .as_ref()
        .map(|b| b.brokers())
        .unwrap_or_else(|| format!("127.0.0.1:{}", support::tansu::free_port()));
    if broker.is_some() {
        brigade::kafka::create_topics(
            &brigade::kafka::KafkaConfig::new(&brokers),
            &["u-in", "u-out", "u-err", "o-in", "o-err"],
            1,
        )
        .await
        .expect("topics");
    }
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let master = cluster.master_url();
    let files = tempfile::tempdir().unwrap();
    let scheduler = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        let brokers = brokers.clone();
        move || start_scheduler(&dir, &master, &brokers)
    })
    .await
    .unwrap();
    let api = scheduler.url.clone();
    let run = |args: Vec<String>, stdin: Option<String>| {
        let api = api.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            brigade(&api, &args, stdin.as_deref())
        })
    };
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // Empty list.
    let o = run(s(&["list"]), None).await.unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "no processors\n");

    // Add from a file: a status table.
    let file = files.path().join("upper.json");
    let upper = json!({"name": "upper", "input": "u-in", "output": "u-out", "error": "u-err",
                       "command": "tr a-z A-Z", "cpus": 0.1, "mem": 32});
    std::fs::write(&file, upper.to_string()).unwrap();
    let o = run(s(&["add", file.to_str().unwrap()]), None)
        .await
        .unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).contains("name          upper"), "{}", out(&o));
    assert!(
        dir.path().join("upper.json").is_file(),
        "written to the scheduler's directory"
    );
    // Added twice: conflict, exit 6.
    let o = run(s(&["add", file.to_str().unwrap()]), None)
        .await
        .unwrap();
    assert_eq!(code(&o), 6, "{}", err(&o));
    // From standard input, with --json.
    let other = json!({"name": "other", "input": "o-in", "error": "o-err", "command": "cat"});
    let o = run(s(&["add", "-", "--json"]), Some(other.to_string()))
        .await
        .unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    let v: Value = serde_json::from_str(&out(&o)).expect("JSON output");
    assert_eq!(v["name"], "other");

    // List: a table with both, and JSON.
    let o = run(s(&["list"]), None).await.unwrap();
    assert_eq!(code(&o), 0);
    let table = out(&o);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(
        table.contains("upper") && table.contains("other"),
        "{table}"
    );
    let o = run(s(&["list", "--json"]), None).await.unwrap();
    let v: Value = serde_json::from_str(&out(&o)).expect("JSON list");
    assert_eq!(v.as_array().unwrap().len(), 2);

    // Status reaches running (failed, with the reason, without Kafka).
    let want = if broker.is_some() {
        "running"
    } else {
        "failed"
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = run(s(&["status", "upper", "--json"]), None).await.unwrap();
        assert_eq!(code(&o), 0, "{}", err(&o));
        let v: Value = serde_json::from_str(&out(&o)).unwrap();
        if v["state"] == want {
            break;
        }
        assert!(Instant::now() < deadline, "never {want}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Update, stop, start.
    let mut changed = upper.clone();
    changed["command"] = json!("rev");
    std::fs::write(&file, changed.to_string()).unwrap();
    let o = run(s(&["update", file.to_str().unwrap()]), None)
        .await
        .unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).contains("command: rev"), "{}", out(&o));
    let o = run(s(&["stop", "upper", "--json"]), None).await.unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(
        serde_json::from_str::<Value>(&out(&o)).unwrap()["stopped"],
        true
    );
    let o = run(s(&["start", "upper"]), None).await.unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));

    // Errors: unknown processor (4), invalid JSON and invalid processor (5).
    for args in [
        s(&["status", "ghost"]),
        s(&["stop", "ghost"]),
        s(&["start", "ghost"]),
        s(&["remove", "ghost"]),
    ] {
        let o = run(args.clone(), None).await.unwrap();
        assert_eq!(code(&o), 4, "{args:?}: {}", err(&o));
        assert!(err(&o).contains("ghost"), "{}", err(&o));
    }
    let o = run(s(&["add", "-"]), Some("{ this is not json".into()))
        .await
        .unwrap();
    assert_eq!(code(&o), 5, "{}", err(&o));
    assert!(err(&o).contains("not JSON"), "{}", err(&o));
    let bad = json!({"name": "bad", "input": "i", "error": "e", "command": "cat", "cpus": -1, "extra": true});
    let o = run(s(&["add", "-", "--json"]), Some(bad.to_string()))
        .await
        .unwrap();
    assert_eq!(code(&o), 5, "{}", err(&o));
    assert!(
        err(&o).contains("cpus") && err(&o).contains("extra"),
        "{}",
        err(&o)
    );
    let v: Value = serde_json::from_str(&out(&o)).expect("the API's error as JSON");
    assert_eq!(v["status"], 400);
    // A file that does not exist: local error (1).
    let o = run(s(&["add", "/nonexistent/processor.json"]), None)
        .await
        .unwrap();
    assert_eq!(code(&o), 1, "{}", err(&o));
    // Bad usage: clap's 2.
    let o = run(s(&["frobnicate"]), None).await.unwrap();
    assert_eq!(code(&o), 2, "{}", err(&o));

    // Remove.
    let o = run(s(&["remove", "other"]), None).await.unwrap();
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert_eq!(out(&o), "removed other\n");

    // The API unreachable: 3.
    let dead = format!("http://127.0.0.1:{}", support::tansu::free_port());
    let o = tokio::task::spawn_blocking(move || brigade(&dead, &["list"], None))
        .await
        .unwrap();
    assert_eq!(code(&o), 3, "{}", err(&o));
    assert!(err(&o).contains("unreachable"), "{}", err(&o));

    // Help for a command.
    let o = Command::new(BIN)
        .args(["help", "processor"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0);
    assert!(
        out(&o).contains("add") && out(&o).contains("status"),
        "{}",
        out(&o)
    );

    drop(scheduler);
    cluster.shutdown().await;
}
