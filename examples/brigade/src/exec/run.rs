//! Running a processor once: a command through `sh -c` (or, when it has no shell syntax at all,
//! such as `cat` or `jq -c .foo`, executed directly: one exec instead of two per message, the
//! same result), or a Docker image through the docker CLI (`docker run --rm -i --name ...`), in
//! a process group of its own; the message is written to stdin, stdout is captured up to the
//! processor's `max_output` bound, the tail of stderr is kept, and the run ends by exit,
//! timeout, an over-long stdout or a kill (the whole group is killed, and a container with
//! `docker kill`).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::processor::{Processor, Runner, VolumeMode};
use crate::protocol::{FailureCause, InputMessage};

/// Executor-wide settings of processor runs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The docker CLI.
    pub docker: PathBuf,
    /// The shell for command processors.
    pub shell: PathBuf,
    /// How many bytes of stderr end up in a failure's message.
    pub stderr_tail: usize,
    /// How long to wait for a killed process (and its output pipes) before giving up on it.
    pub reap_wait: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            docker: PathBuf::from("docker"),
            shell: PathBuf::from("/bin/sh"),
            stderr_tail: 4096,
            reap_wait: Duration::from_secs(5),
        }
    }
}

impl RunConfig {
    /// Environment: `BRIGADE_DOCKER` (docker CLI path), `BRIGADE_SHELL`,
    /// `BRIGADE_STDERR_TAIL` (bytes); unset or unparsable values keep the defaults.
    pub fn from_env() -> Self {
        let mut config = Self::default();
        if let Ok(v) = std::env::var("BRIGADE_DOCKER") {
            config.docker = PathBuf::from(v);
        }
        if let Ok(v) = std::env::var("BRIGADE_SHELL") {
            config.shell = PathBuf::from(v);
        }
        if let Some(n) = std::env::var("BRIGADE_STDERR_TAIL")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            config.stderr_tail = n;
        }
        config
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Exit status 0: the captured stdout.
    Output(Vec<u8>),
    /// Anything else.
    Failed {
        /// Why, as a [`FailureCause`].
        cause: FailureCause,
        /// A sentence with the tail of stderr.
        message: String,
    },
}

/// The `docker run` (or `sh -c`) argument list for a processor and a message; `name` names the
/// container. The program is the first element.
pub fn command_line(
    config: &RunConfig,
    processor: &Processor,
    msg: &InputMessage,
    name: &str,
) -> Vec<String> {
    argv(config, processor, &env(processor, msg), name)
}

/// The argument list for a processor with environment `vars` (passed with `-e` to a
/// container; a command gets them from the spawner).
pub(super) fn argv(
    config: &RunConfig,
    processor: &Processor,
    vars: &[(String, String)],
    name: &str,
) -> Vec<String> {
    match processor.runner() {
        Runner::Command(command) => match plain_words(command) {
            Some(words) => words.into_iter().map(str::to_string).collect(),
            None => vec![
                config.shell.display().to_string(),
                "-c".into(),
                command.to_string(),
            ],
        },
        Runner::Docker(image) => {
            let mut args: Vec<String> = vec![
                config.docker.display().to_string(),
                "run".into(),
                "--rm".into(),
                "-i".into(),
                "--name".into(),
                name.to_string(),
                "--cpus".into(),
                format!("{}", processor.cpus()),
                "--memory".into(),
                format!("{}m", processor.mem().ceil().max(6.0)),
            ];
            for (k, v) in vars {
                args.push("-e".into());
                args.push(format!("{k}={v}"));
            }
            for v in processor.volumes() {
                let mode = match v.mode {
                    VolumeMode::ReadOnly => "ro",
                    VolumeMode::ReadWrite => "rw",
                };
                args.push("-v".into());
                args.push(format!("{}:{}:{mode}", v.host_path, v.container_path));
            }
            if let Some(o) = processor.docker_options() {
                if let Some(n) = &o.network {
                    args.push("--network".into());
                    args.push(n.clone());
                }
                if let Some(u) = &o.user {
                    args.push("--user".into());
                    args.push(u.clone());
                }
                args.extend(o.args.iter().cloned());
            }
            args.push(image.to_string());
            args
        }
    }
}

/// Shell keywords and builtins with no program of the same name: a command starting with one
/// needs the shell.
const SHELL_ONLY: &[&str] = &[
    "exit", "cd", "export", "set", "unset", "read", "eval", "exec", "return", "shift", "trap",
    "wait", "ulimit", "umask", "alias", "unalias", "source", ".", ":", "if", "then", "else",
    "elif", "fi", "for", "while", "until", "case", "esac", "do", "done", "local", "break",
    "continue", "times", "type", "hash", "getopts", "command", "jobs", "fg", "bg", "readonly",
];

/// The words of a command that has no shell syntax (only letters, digits, `_-./:=,+@%` and
/// spaces or tabs; not starting with an assignment or a shell-only word), which runs the same
/// without a shell; `None` for anything else.
pub fn plain_words(command: &str) -> Option<Vec<&str>> {
    let plain = command
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '\t') || "_-./:=,+@%".contains(c));
    let words: Vec<&str> = command.split_ascii_whitespace().collect();
    let first = *words.first()?;
    (plain && !first.contains('=') && !SHELL_ONLY.contains(&first)).then_some(words)
}

/// A streaming processor's environment (it serves many messages): its `env` entries, then
/// `BRIGADE_PROCESSOR` and `BRIGADE_TOPIC`.
pub fn stream_env(processor: &Processor) -> Vec<(String, String)> {
    base_env(processor, processor.input())
}

/// The processor's environment: its `env` entries, then `BRIGADE_PROCESSOR`, `BRIGADE_TOPIC`,
/// `BRIGADE_PARTITION` and `BRIGADE_OFFSET`.
pub fn env(processor: &Processor, msg: &InputMessage) -> Vec<(String, String)> {
    let mut out = base_env(processor, &msg.topic);
    out.push(("BRIGADE_PARTITION".into(), msg.partition.to_string()));
    out.push(("BRIGADE_OFFSET".into(), msg.offset.to_string()));
    out
}

fn base_env(processor: &Processor, topic: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = processor
        .env_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    out.push(("BRIGADE_PROCESSOR".into(), processor.name().to_string()));
    out.push(("BRIGADE_TOPIC".into(), topic.to_string()));
    out
}

/// The processor's process with environment `vars`, its stdio piped, in a process group of
/// its own, killed when dropped; and the program's name (for errors).
pub(super) fn command(
    config: &RunConfig,
    processor: &Processor,
    vars: Vec<(String, String)>,
    name: &str,
) -> (Command, String) {
    let argv = argv(config, processor, &vars, name);
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if matches!(processor.runner(), Runner::Command(_)) {
        cmd.envs(vars);
    }
    (cmd, argv[0].clone())
}

/// A container name for a task id: Docker allows `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn container_name(task_id: &str) -> String {
    let cleaned: String = task_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("brigade-run-{cleaned}")
}

enum Finish {
    Exited(std::io::Result<ExitStatus>, Vec<u8>),
    Overflow,
    TimedOut,
    Killed,
    ReadError(std::io::Error),
}

/// Runs `processor` on `msg` once. `name` names the container (Docker processors); `cancel`
/// kills the run (the outcome is then a [`FailureCause::Killed`] failure).
pub async fn run(
    config: &RunConfig,
    processor: &Processor,
    msg: &InputMessage,
    name: &str,
    cancel: &CancellationToken,
) -> RunOutcome {
    let (mut cmd, program) = command(config, processor, env(processor, msg), name);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return RunOutcome::Failed {
                cause: FailureCause::Start,
                message: format!("cannot start {program}: {e}"),
            };
        }
    };
    let pid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(mut stdin) = child.stdin.take() {
        let payload = msg.payload.clone();
        tokio::spawn(async move {
            // A processor that does not read its input closes the pipe early: not an error.
            let _ = stdin.write_all(&payload).await;
            let _ = stdin.shutdown().await;
        });
    }
    let tail = Arc::new(Mutex::new(VecDeque::<u8>::new()));
    let stderr_task = child.stderr.take().map(|stderr| {
        let tail = Arc::clone(&tail);
        let limit = config.stderr_tail;
        tokio::spawn(keep_tail(stderr, tail, limit))
    });
    let stdout = child.stdout.take();
    let max = processor.max_output();
    let finish = {
        let work = async {
            let out = match stdout {
                Some(s) => read_bounded(s, max).await,
                None => Ok(Some(Vec::new())),
            };
            match out {
                Ok(Some(bytes)) => Finish::Exited(child.wait().await, bytes),
                Ok(None) => Finish::Overflow,
                Err(e) => Finish::ReadError(e),
            }
        };
        tokio::select! {
            f = work => f,
            () = tokio::time::sleep(processor.timeout()) => Finish::TimedOut,
            () = cancel.cancelled() => Finish::Killed,
        }
    };
    // Also after a normal exit: whatever the processor left running in its group goes too.
    kill_group(pid);
    if !matches!(finish, Finish::Exited(..)) {
        if matches!(processor.runner(), Runner::Docker(_)) {
            docker_kill(config, name).await;
        }
        let _ = tokio::time::timeout(config.reap_wait, child.wait()).await;
    }
    if let Some(task) = stderr_task {
        let _ = tokio::time::timeout(config.reap_wait, task).await;
    }
    let failed = |cause: FailureCause, what: String| RunOutcome::Failed {
        cause,
        message: with_stderr(what, &tail),
    };
    match finish {
        Finish::Exited(Ok(status), bytes) if status.success() => RunOutcome::Output(bytes),
        Finish::Exited(Ok(status), _) => failed(FailureCause::Exit, describe(status)),
        Finish::Exited(Err(e), _) => failed(FailureCause::Exit, format!("cannot wait: {e}")),
        Finish::ReadError(e) => failed(FailureCause::Exit, format!("cannot read stdout: {e}")),
        Finish::Overflow => failed(
            FailureCause::OutputTooLarge,
            format!(
                "stdout exceeded the limit of {max} bytes (max_output); the processor was killed"
            ),
        ),
        Finish::TimedOut => failed(FailureCause::Timeout, timed_out(processor)),
        Finish::Killed => failed(FailureCause::Killed, "killed on request".to_string()),
    }
}

/// A failure's sentence: `what`, then the tail of stderr kept in `tail`.
pub(super) fn with_stderr(what: String, tail: &Mutex<VecDeque<u8>>) -> String {
    let stderr = {
        let guard = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes: Vec<u8> = guard.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    };
    if stderr.is_empty() {
        format!("{what} (stderr empty)")
    } else {
        format!("{what}; stderr: {stderr}")
    }
}

/// What a run past the processor's `timeout` failed with.
pub(super) fn timed_out(processor: &Processor) -> String {
    format!(
        "timed out after {}; the processor was killed",
        mesos_sdk::duration::format_duration(processor.timeout())
    )
}

pub(super) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    }
}

/// Reads `r` to its end; `None` when it has more than `max` bytes.
async fn read_bounded(mut r: impl AsyncRead + Unpin, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(Some(out));
        }
        out.extend_from_slice(&buf[..n]);
        if out.len() as u64 > max {
            return Ok(None);
        }
    }
}

pub(super) async fn keep_tail(
    mut r: impl AsyncRead + Unpin,
    tail: Arc<Mutex<VecDeque<u8>>>,
    limit: usize,
) {
    let mut buf = [0u8; 8 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut t = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.extend(&buf[..n]);
        let excess = t.len().saturating_sub(limit);
        t.drain(..excess);
    }
}

pub(super) fn kill_group(pid: Option<i32>) {
    if let Some(pid) = pid.filter(|p| *p > 0) {
        if let Err(e) = killpg(Pid::from_raw(pid), Signal::SIGKILL) {
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!(pid, error = %e, "cannot kill the processor's process group");
            }
        }
    }
}

pub(super) async fn docker_kill(config: &RunConfig, name: &str) {
    let result = Command::new(&config.docker)
        .args(["kill", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    if let Err(e) = result {
        tracing::warn!(container = name, error = %e, "docker kill failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(extra: &str) -> Processor {
        Processor::from_json(&format!(
            r#"{{"name":"t","input":"in","error":"err","timeout":"2secs"{extra}}}"#
        ))
        .unwrap()
    }

    fn msg(payload: &[u8]) -> InputMessage {
        InputMessage {
            topic: "in".into(),
            partition: 1,
            offset: 9,
            key: None,
            payload: payload.to_vec(),
        }
    }

    async fn go(p: &Processor, payload: &[u8]) -> RunOutcome {
        run(
            &RunConfig::default(),
            p,
            &msg(payload),
            "x",
            &CancellationToken::new(),
        )
        .await
    }

    #[tokio::test]
    async fn command_output_env_failure_overflow_timeout_kill() {
        let up = processor(
            r#","command":"tr a-z A-Z; printf \" $BRIGADE_OFFSET $FOO\"","env":["FOO=bar"]"#,
        );
        assert_eq!(
            go(&up, b"hello").await,
            RunOutcome::Output(b"HELLO 9 bar".to_vec())
        );
        let fail = processor(r#","command":"echo oops >&2; exit 3""#);
        let RunOutcome::Failed { cause, message } = go(&fail, b"").await else {
            panic!("expected a failure")
        };
        assert_eq!(cause, FailureCause::Exit);
        assert_eq!(message, "exited with status 3; stderr: oops");
        let big = processor(r#","command":"yes","max_output":1000"#);
        assert!(matches!(
            go(&big, b"").await,
            RunOutcome::Failed {
                cause: FailureCause::OutputTooLarge,
                ..
            }
        ));
        let hang = processor(r#","command":"sleep 30 & sleep 30","timeout":"200ms""#);
        let started = std::time::Instant::now();
        let RunOutcome::Failed { cause, message } = go(&hang, b"").await else {
            panic!("expected a timeout")
        };
        assert_eq!(cause, FailureCause::Timeout, "{message}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let token = CancellationToken::new();
        let t2 = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            t2.cancel();
        });
        let slow = processor(r#","command":"sleep 30""#);
        let out = run(&RunConfig::default(), &slow, &msg(b""), "x", &token).await;
        assert!(matches!(
            out,
            RunOutcome::Failed {
                cause: FailureCause::Killed,
                ..
            }
        ));
        let config = RunConfig {
            shell: PathBuf::from("/nonexistent/sh"),
            ..RunConfig::default()
        };
        let out = run(&config, &up, &msg(b""), "x", &CancellationToken::new()).await;
        assert!(matches!(
            out,
            RunOutcome::Failed {
                cause: FailureCause::Start,
                ..
            }
        ));
    }

    #[test]
    fn commands_without_shell_syntax_run_without_a_shell() {
        assert_eq!(plain_words("cat"), Some(vec!["cat"]));
        assert_eq!(plain_words("jq  -c .foo"), Some(vec!["jq", "-c", ".foo"]));
        assert_eq!(
            plain_words("dd bs=1 count=2"),
            Some(vec!["dd", "bs=1", "count=2"])
        );
        for shell in [
            "tr a-z A-Z; echo",
            "cat | wc",
            "echo $HOME",
            "FOO=1 env",
            "exit 3",
            "cat > out",
            "echo 'a b'",
            "ls *",
            "cat\nls",
            "",
            "cd /tmp",
        ] {
            assert_eq!(plain_words(shell), None, "{shell:?}");
        }
        let p = processor(r#","command":"cat -u""#);
        let argv = command_line(&RunConfig::default(), &p, &msg(b""), "x");
        assert_eq!(argv, vec!["cat", "-u"]);
    }

    #[tokio::test]
    async fn unread_input_and_long_stderr() {
        // A processor that ignores a large stdin still succeeds (the write side sees EPIPE).
        let ignore = processor(r#","command":"echo hi""#);
        let big = vec![b'a'; 4 << 20];
        assert_eq!(
            go(&ignore, &big).await,
            RunOutcome::Output(b"hi\n".to_vec())
        );
        // Only the tail of stderr is kept.
        let noisy = processor(
            r#","command":"i=0; while [ $i -lt 500 ]; do echo line$i >&2; i=$((i+1)); done; exit 1""#,
        );
        let config = RunConfig {
            stderr_tail: 16,
            ..RunConfig::default()
        };
        let out = run(&config, &noisy, &msg(b""), "x", &CancellationToken::new()).await;
        let RunOutcome::Failed { message, .. } = out else {
            panic!("expected a failure")
        };
        assert_eq!(message, "exited with status 1; stderr: line498\nline499");
    }

    #[test]
    fn docker_command_line() {
        let p = processor(
            r#","docker":"img:1","cpus":"0.5","mem":64,"env":["A=B"],
            "volumes":[{"host-path":"/h","container-path":"/c","mode":"RO"}],
            "docker_options":{"network":"none","user":"1000","args":["--read-only"]}"#,
        );
        let argv = command_line(&RunConfig::default(), &p, &msg(b""), "n1");
        let joined = argv.join(" ");
        assert!(
            joined.starts_with("docker run --rm -i --name n1 --cpus 0.5 --memory 64m -e A=B"),
            "{joined}"
        );
        assert!(joined.contains("-e BRIGADE_OFFSET=9"), "{joined}");
        assert!(
            joined.ends_with("-v /h:/c:ro --network none --user 1000 --read-only img:1"),
            "{joined}"
        );
        assert_eq!(container_name("a/b c"), "brigade-run-a_b_c");
    }
}
