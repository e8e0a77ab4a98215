//! The `brigade demo` smoke run: the real binary, everything in-process (mesos-local, the
//! librdkafka mock cluster, the memory store), three messages, exit when done.

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_prints_every_result_with_its_offset_and_exits() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["demo", "--messages", "3", "--exit-when-done"])
        .args(["--executor", env!("CARGO_BIN_EXE_brigade-executor")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("brigade demo starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "demo did not finish:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{stderr}");
    for i in 0..3 {
        let line = format!("HELLO BRIGADE, MESSAGE NUMBER {i}");
        assert!(
            stdout.contains(&line),
            "missing {line:?} in:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("offset 0:"), "{stdout}");
}

#[test]
fn demo_stops_cleanly_on_ctrl_c() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["demo", "--messages", "2"])
        .args(["--executor", env!("CARGO_BIN_EXE_brigade-executor")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("brigade demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut results = 0;
    let mut seen = Vec::new();
    while results < 2 {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => {
                if line.contains("HELLO BRIGADE") {
                    results += 1;
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no results from the demo: {seen:?}");
            }
        }
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "demo exit after Ctrl-C: {exit}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("interrupted")),
        "the demo says it stops: {rest:?}"
    );
}
