//! Streaming processors in a warm worker (`"stream": "lines"`): the processor starts once per
//! worker slot and stays up; each message is written to its stdin as one line, and each line it
//! writes to stdout is the result of the oldest message still waiting in that slot.
//!
//! - Slots: a worker runs `concurrency` processes; a new message goes to the slot with the
//!   fewest messages waiting. Within a slot, messages are pipelined (written without waiting for
//!   earlier results), so the per-message cost is a line in and a line out, not a process start.
//! - Failure: when the process exits, a result line exceeds `max_output`, or the oldest message
//!   waits longer than the processor's `timeout`, the process (its whole group, or its
//!   container) is killed; the oldest message fails with that cause (and the tail of stderr),
//!   the others it held fail as [`FailureCause::Infrastructure`] (re-run without using up the
//!   processor's retries), and the slot starts a new process, at most once a second.
//! - A message that contains a newline cannot be framed as a line: it fails with
//!   [`FailureCause::BadTask`] without reaching the processor.
//! - Environment: the processor's `env`, `BRIGADE_PROCESSOR` and `BRIGADE_TOPIC` (no per-message
//!   `BRIGADE_OFFSET`: one process serves many messages).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Child;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::run::{
    RunConfig, command, describe, docker_kill, keep_tail, kill_group, stream_env, timed_out,
    with_stderr,
};
use crate::processor::{Processor, Runner};
use crate::protocol::warm::WorkResult;
use crate::protocol::{FailureCause, InputMessage, Outcome};

/// The shortest time between two starts of one slot's process.
const RESTART_GAP: Duration = Duration::from_secs(1);

/// A warm worker's streaming processes.
pub struct Streams {
    slots: Vec<Slot>,
}

struct Slot {
    queue: mpsc::UnboundedSender<InputMessage>,
    waiting: Arc<AtomicUsize>,
}

/// What one slot shares with its task.
struct SlotContext {
    config: Arc<RunConfig>,
    processor: Arc<Processor>,
    /// Container name prefix (Docker processors).
    name: String,
    results: mpsc::UnboundedSender<WorkResult>,
    cancel: CancellationToken,
    waiting: Arc<AtomicUsize>,
}

impl Streams {
    /// Starts `slots` slots (at least one) on `tasks`; results go to `results`. `cancel` kills
    /// every process and ends the slots' tasks (messages in flight then get no result).
    pub fn start(
        config: &Arc<RunConfig>,
        processor: &Arc<Processor>,
        name: &str,
        slots: usize,
        results: &mpsc::UnboundedSender<WorkResult>,
        cancel: &CancellationToken,
        tasks: &mut JoinSet<()>,
    ) -> Self {
        let slots = (0..slots.max(1))
            .map(|index| {
                let (queue, rx) = mpsc::unbounded_channel();
                let waiting = Arc::new(AtomicUsize::new(0));
                let context = SlotContext {
                    config: Arc::clone(config),
                    processor: Arc::clone(processor),
                    name: format!("{name}-s{index}"),
                    results: results.clone(),
                    cancel: cancel.clone(),
                    waiting: Arc::clone(&waiting),
                };
                tasks.spawn(run_slot(context, rx));
                Slot { queue, waiting }
            })
            .collect();
        Self { slots }
    }

    /// Hands a message to the slot with the fewest waiting. `false` when every slot has ended.
    pub fn submit(&self, msg: InputMessage) -> bool {
        let Some(slot) = self
            .slots
            .iter()
            .filter(|s| !s.queue.is_closed())
            .min_by_key(|s| s.waiting.load(Ordering::Relaxed))
        else {
            return false;
        };
        slot.waiting.fetch_add(1, Ordering::Relaxed);
        slot.queue.send(msg).is_ok()
    }
}

impl SlotContext {
    fn answer(&self, msg: &InputMessage, outcome: Outcome, cause: Option<FailureCause>) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _ = self.results.send(WorkResult {
            partition: msg.partition,
            offset: msg.offset,
            outcome,
            cause,
        });
    }

    fn fail(&self, msg: &InputMessage, cause: FailureCause, reason: String) {
        self.answer(msg, Outcome::Failed { reason }, Some(cause));
    }

    /// The oldest message fails with `cause`; the rest are given back for a re-run.
    fn fail_all(&self, pending: &mut VecDeque<Waiting>, cause: FailureCause, reason: &str) {
        if let Some((first, _)) = pending.pop_front() {
            self.fail(&first, cause, reason.to_string());
        }
        for (msg, _) in pending.drain(..) {
            self.fail(
                &msg,
                FailureCause::Infrastructure,
                format!("the streaming processor failed on an earlier message: {reason}"),
            );
        }
    }
}

/// A message written to the process, with the time its result is due by.
type Waiting = (InputMessage, Instant);

/// Why [`serve`] returned.
enum End {
    /// The process failed; start another.
    Restart,
    /// Killed, or the worker has gone: the slot ends.
    Stop,
}

async fn run_slot(context: SlotContext, mut queue: mpsc::UnboundedReceiver<InputMessage>) {
    let mut generation = 0u64;
    loop {
        generation += 1;
        let started = Instant::now();
        let name = format!("{}-{generation}", context.name);
        let end = match Process::spawn(&context, &name) {
            Ok(process) => serve(&context, process, &mut queue).await,
            Err(reason) => {
                // Nothing can run here: what waits now fails, later messages try again.
                tracing::warn!(%reason, "cannot start the streaming processor");
                let mut failed = false;
                while let Ok(msg) = queue.try_recv() {
                    context.fail(&msg, FailureCause::Start, reason.clone());
                    failed = true;
                }
                if !failed {
                    tokio::select! {
                        msg = queue.recv() => match msg {
                            Some(msg) => context.fail(&msg, FailureCause::Start, reason.clone()),
                            None => return,
                        },
                        () = context.cancel.cancelled() => return,
                    }
                }
                End::Restart
            }
        };
        match end {
            End::Stop => return,
            End::Restart => {
                let gap = RESTART_GAP.saturating_sub(started.elapsed());
                tokio::select! {
                    () = tokio::time::sleep(gap) => {}
                    () = context.cancel.cancelled() => return,
                }
            }
        }
    }
}

/// A running processor: its stdin feeder, stdout lines and stderr tail.
struct Process {
    child: Child,
    pid: Option<i32>,
    name: String,
    stdin: mpsc::UnboundedSender<Vec<u8>>,
    lines: mpsc::Receiver<Line>,
    tail: Arc<Mutex<VecDeque<u8>>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
}

/// What the stdout reader saw.
enum Line {
    Text(Vec<u8>),
    TooLong,
    End,
}

impl Process {
    fn spawn(context: &SlotContext, name: &str) -> Result<Self, String> {
        let vars = stream_env(&context.processor);
        let (mut cmd, program) = command(&context.config, &context.processor, vars, name);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let pid = child.id().and_then(|id| i32::try_from(id).ok());
        let (stdin, mut feed) = mpsc::unbounded_channel::<Vec<u8>>();
        if let Some(mut pipe) = child.stdin.take() {
            tokio::spawn(async move {
                while let Some(mut lines) = feed.recv().await {
                    // Lines queued meanwhile go in the same write.
                    while let Ok(more) = feed.try_recv() {
                        lines.extend_from_slice(&more);
                    }
                    if pipe.write_all(&lines).await.is_err() {
                        // The process has gone; the stdout reader reports it.
                        break;
                    }
                }
            });
        }
        let tail = Arc::new(Mutex::new(VecDeque::<u8>::new()));
        let stderr_task = child.stderr.take().map(|stderr| {
            tokio::spawn(keep_tail(
                stderr,
                Arc::clone(&tail),
                context.config.stderr_tail,
            ))
        });
        let (line_tx, lines) = mpsc::channel(256);
        if let Some(stdout) = child.stdout.take() {
            let max = usize::try_from(context.processor.max_output()).unwrap_or(usize::MAX);
            tokio::spawn(read_lines(stdout, max, line_tx));
        }
        Ok(Self {
            child,
            pid,
            name: name.to_string(),
            stdin,
            lines,
            tail,
            stderr_task,
        })
    }

    /// Kills the process (group and container) and reaps it.
    async fn kill(&mut self, context: &SlotContext) {
        kill_group(self.pid);
        if matches!(context.processor.runner(), Runner::Docker(_)) {
            docker_kill(&context.config, &self.name).await;
        }
        let _ = tokio::time::timeout(context.config.reap_wait, self.child.wait()).await;
    }

    /// A sentence with the tail of stderr. Called once the process has gone: it first lets the
    /// stderr reader drain what the process wrote last (bounded by `reap_wait`), which can
    /// otherwise still be in the pipe when stdout reports the end.
    async fn reason(&mut self, context: &SlotContext, what: String) -> String {
        if let Some(task) = self.stderr_task.take() {
            let _ = tokio::time::timeout(context.config.reap_wait, task).await;
        }
        with_stderr(what, &self.tail)
    }
}

/// Reads `r` line by line into `out`; a line longer than `max` bytes ends the reading.
async fn read_lines(r: impl AsyncRead + Unpin, max: usize, out: mpsc::Sender<Line>) {
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut line = Vec::new();
    while let Ok(available) = reader.fill_buf().await {
        if available.is_empty() {
            // A last line without its newline still counts.
            if !line.is_empty() {
                let _ = out.send(Line::Text(std::mem::take(&mut line))).await;
            }
            break;
        }
        let (used, done) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => {
                line.extend_from_slice(&available[..at]);
                (at + 1, true)
            }
            None => {
                line.extend_from_slice(available);
                (available.len(), false)
            }
        };
        reader.consume(used);
        if line.len() > max {
            let _ = out.send(Line::TooLong).await;
            return;
        }
        if done
            && out
                .send(Line::Text(std::mem::take(&mut line)))
                .await
                .is_err()
        {
            return;
        }
    }
    let _ = out.send(Line::End).await;
}

/// Serves messages on `process` until it fails (or the worker stops).
async fn serve(
    context: &SlotContext,
    mut process: Process,
    queue: &mut mpsc::UnboundedReceiver<InputMessage>,
) -> End {
    let timeout = context.processor.timeout();
    let mut pending: VecDeque<Waiting> = VecDeque::new();
    loop {
        let deadline = pending.front().map(|(_, deadline)| *deadline);
        tokio::select! {
            biased;
            () = context.cancel.cancelled() => {
                process.kill(context).await;
                return End::Stop;
            }
            line = process.lines.recv() => match line {
                Some(Line::Text(text)) => {
                    match pending.pop_front() {
                        Some((msg, _)) => context.answer(&msg, Outcome::Output(text), None),
                        None => tracing::warn!(
                            processor = %context.processor.name(),
                            "a streaming processor wrote a line no message asked for; ignored"
                        ),
                    }
                }
                Some(Line::TooLong) => {
                    let max = context.processor.max_output();
                    process.kill(context).await;
                    let reason = process.reason(context, format!(
                        "a result line exceeded the limit of {max} bytes (max_output); the processor was killed"
                    )).await;
                    context.fail_all(&mut pending, FailureCause::OutputTooLarge, &reason);
                    return End::Restart;
                }
                Some(Line::End) | None => {
                    let status = tokio::time::timeout(context.config.reap_wait, process.child.wait()).await;
                    kill_group(process.pid);
                    let what = match status {
                        Ok(Ok(status)) => format!("the streaming processor {}", describe(status)),
                        Ok(Err(e)) => format!("cannot wait for the streaming processor: {e}"),
                        Err(_) => "the streaming processor closed its stdout".to_string(),
                    };
                    let reason = process.reason(context, what).await;
                    if pending.is_empty() {
                        tracing::warn!(processor = %context.processor.name(), %reason, "streaming processor ended; restarting it");
                    }
                    context.fail_all(&mut pending, FailureCause::Exit, &reason);
                    return End::Restart;
                }
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                process.kill(context).await;
                let reason = process.reason(context, timed_out(&context.processor)).await;
                context.fail_all(&mut pending, FailureCause::Timeout, &reason);
                return End::Restart;
            }
            msg = queue.recv() => match msg {
                None => {
                    process.kill(context).await;
                    return End::Stop;
                }
                Some(msg) => {
                    if msg.payload.contains(&b'\n') {
                        context.fail(
                            &msg,
                            FailureCause::BadTask,
                            "the message contains a newline, which a line-streaming processor (\"stream\": \"lines\") cannot take".into(),
                        );
                        continue;
                    }
                    let mut line = Vec::with_capacity(msg.payload.len() + 1);
                    line.extend_from_slice(&msg.payload);
                    line.push(b'\n');
                    // A closed stdin means the process is gone: the reader reports it.
                    let _ = process.stdin.send(line);
                    pending.push_back((msg, Instant::now() + timeout));
                }
            },
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(extra: &str) -> Arc<Processor> {
        Arc::new(
            Processor::from_json(&format!(
                r#"{{"name":"t","input":"in","error":"err","timeout":"1secs","mode":"warm","stream":"lines"{extra}}}"#
            ))
            .unwrap(),
        )
    }

    fn msg(offset: i64, payload: &str) -> InputMessage {
        InputMessage {
            topic: "in".into(),
            partition: 0,
            offset,
            key: None,
            payload: payload.as_bytes().to_vec(),
        }
    }

    struct Harness {
        streams: Streams,
        results: mpsc::UnboundedReceiver<WorkResult>,
        cancel: CancellationToken,
        tasks: JoinSet<()>,
    }

    fn start(p: &Arc<Processor>, slots: usize) -> Harness {
        let (tx, results) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let streams = Streams::start(
            &Arc::new(RunConfig::default()),
            p,
            "test",
            slots,
            &tx,
            &cancel,
            &mut tasks,
        );
        Harness {
            streams,
            results,
            cancel,
            tasks,
        }
    }

    impl Harness {
        async fn next(&mut self) -> WorkResult {
            tokio::time::timeout(Duration::from_secs(10), self.results.recv())
                .await
                .expect("a result in time")
                .expect("results open")
        }

        async fn stop(mut self) {
            self.cancel.cancel();
            while self.tasks.join_next().await.is_some() {}
        }
    }

    #[tokio::test]
    async fn lines_in_lines_out_on_one_process_per_slot() {
        // Each line is answered with the process id: every message of a slot sees the same one.
        let p =
            processor(r#","command":"while read -r l; do echo \"$l $$ $BRIGADE_TOPIC\"; done""#);
        let mut h = start(&p, 2);
        for i in 0..20 {
            assert!(h.streams.submit(msg(i, &format!("m{i}"))));
        }
        let mut pids = std::collections::HashSet::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let r = h.next().await;
            let Outcome::Output(out) = r.outcome else {
                panic!("expected output, got {:?}", r.outcome)
            };
            let text = String::from_utf8(out).unwrap();
            let parts: Vec<&str> = text.split(' ').collect();
            assert_eq!(parts[0], format!("m{}", r.offset));
            assert_eq!(parts[2], "in");
            pids.insert(parts[1].to_string());
            seen.insert(r.offset);
        }
        assert_eq!(seen.len(), 20);
        assert_eq!(pids.len(), 2, "one process per slot: {pids:?}");
        h.stop().await;
    }

    #[tokio::test]
    async fn a_crash_fails_the_oldest_and_gives_back_the_rest_then_restarts() {
        // Exits on "die" with a message on stderr; everything after it is re-run elsewhere.
        let p = processor(
            r#","command":"while read -r l; do if [ \"$l\" = die ]; then echo boom >&2; exit 4; fi; echo \"$l\"; done""#,
        );
        let mut h = start(&p, 1);
        h.streams.submit(msg(0, "a"));
        assert_eq!(h.next().await.outcome, Outcome::Output(b"a".to_vec()));
        h.streams.submit(msg(1, "die"));
        h.streams.submit(msg(2, "b"));
        let first = h.next().await;
        assert_eq!(first.offset, 1);
        assert_eq!(first.cause, Some(FailureCause::Exit));
        let Outcome::Failed { reason } = &first.outcome else {
            panic!("expected a failure")
        };
        assert!(
            reason.contains("status 4") && reason.contains("boom"),
            "{reason}"
        );
        // Written before the crash: given back; or, if the crash was seen first, run by the
        // next process.
        let second = h.next().await;
        assert_eq!(second.offset, 2);
        assert!(
            second.cause == Some(FailureCause::Infrastructure)
                || second.outcome == Outcome::Output(b"b".to_vec()),
            "{second:?}"
        );
        // A new process serves the next message.
        h.streams.submit(msg(3, "c"));
        assert_eq!(h.next().await.outcome, Outcome::Output(b"c".to_vec()));
        h.stop().await;
    }

    #[tokio::test]
    async fn timeout_newline_and_overlong_lines_fail_with_their_cause() {
        let p = processor(
            r#","command":"while read -r l; do if [ \"$l\" = hang ]; then sleep 30; fi; if [ \"$l\" = big ]; then echo 0123456789; else echo \"$l\"; fi; done","max_output":5"#,
        );
        let mut h = start(&p, 1);
        h.streams.submit(msg(0, "two\nlines"));
        let r = h.next().await;
        assert_eq!(r.cause, Some(FailureCause::BadTask));
        h.streams.submit(msg(1, "hang"));
        let r = h.next().await;
        assert_eq!((r.offset, r.cause), (1, Some(FailureCause::Timeout)));
        h.streams.submit(msg(2, "big"));
        let r = h.next().await;
        assert_eq!((r.offset, r.cause), (2, Some(FailureCause::OutputTooLarge)));
        h.streams.submit(msg(3, "ok"));
        assert_eq!(h.next().await.outcome, Outcome::Output(b"ok".to_vec()));
        h.stop().await;
    }

    #[tokio::test]
    async fn a_processor_that_cannot_start_fails_with_start() {
        // Shell syntax, so it needs the (missing) shell.
        let p = processor(r#","command":"true; true""#);
        let (tx, mut results) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let config = RunConfig {
            shell: "/nonexistent/sh".into(),
            ..RunConfig::default()
        };
        let streams = Streams::start(&Arc::new(config), &p, "x", 1, &tx, &cancel, &mut tasks);
        streams.submit(msg(0, "a"));
        let r = tokio::time::timeout(Duration::from_secs(5), results.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.cause, Some(FailureCause::Start));
        cancel.cancel();
        while tasks.join_next().await.is_some() {}
    }
}
