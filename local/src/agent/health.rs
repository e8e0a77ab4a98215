//! Health checks of tasks run by the built-in executors (`TaskInfo.health_check`).
//!
//! COMMAND checks run a command in the task's sandbox with the task's environment (healthy on
//! exit 0); HTTP checks GET `http://127.0.0.1:<port><path>` (healthy on 2xx and 3xx, or on one of
//! `statuses`); TCP checks connect to `127.0.0.1:<port>`. The first check runs after
//! `delay_seconds`, then one every `interval_seconds`, each bounded by `timeout_seconds`.
//! Failures within `grace_period_seconds` of the start are ignored until the first success.
//! A change of health is reported; `consecutive_failures` failures in a row ask for the task to
//! be killed.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::command::{CommandError, build_command_for_check};
use mesos_sdk::v1::{HealthCheck, health_check};

/// Why one health check failed (logged at debug level; only healthy or not is reported).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum ProbeError {
    /// The check lacks the part its type needs (`command`, `http`, `tcp`).
    #[error("no {0} in the health check")]
    Missing(&'static str),
    /// A check of unknown type.
    #[error("health check of unknown type")]
    UnknownType,
    /// The port is not a valid TCP port.
    #[error("invalid port {0}")]
    InvalidPort(u32),
    /// The check command could not be built.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The check command could not be run.
    #[error("cannot run the check: {0}")]
    Run(#[source] std::io::Error),
    /// The check command failed.
    #[error("check command exited with {0}")]
    Exit(std::process::ExitStatus),
    /// The TCP connection failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The HTTP exchange failed.
    #[error("HTTP check failed: {0}")]
    Http(#[source] hyper::Error),
    /// The request path is not a valid URI path.
    #[error("invalid HTTP check path: {0}")]
    Path(#[source] http::Error),
    /// The HTTP answer's status is not a healthy one.
    #[error("HTTP {0}")]
    Status(u16),
}

/// What the checker tells the task loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HealthEvent {
    /// The task's health now.
    pub(crate) healthy: bool,
    /// Too many consecutive failures: kill the task.
    pub(crate) kill: bool,
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::ZERO)
}

/// Runs the checks until the receiver goes away (or the task is aborted).
pub(crate) async fn run(
    check: HealthCheck,
    sandbox: PathBuf,
    env: Vec<(String, String)>,
    events: mpsc::UnboundedSender<HealthEvent>,
) {
    let started = tokio::time::Instant::now();
    let interval = seconds(check.interval_seconds()).max(Duration::from_millis(1));
    let timeout = seconds(check.timeout_seconds());
    let grace = seconds(check.grace_period_seconds());
    let max_failures = check.consecutive_failures().max(1);
    tokio::time::sleep(seconds(check.delay_seconds())).await;
    let mut reported: Option<bool> = None;
    let mut succeeded_once = false;
    let mut failures = 0u32;
    loop {
        let healthy = match tokio::time::timeout(timeout, probe(&check, &sandbox, &env)).await {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::debug!(%err, "health check failed");
                false
            }
            Err(_) => {
                tracing::debug!("health check timed out");
                false
            }
        };
        if healthy {
            succeeded_once = true;
            failures = 0;
            if reported != Some(true) {
                reported = Some(true);
                if events
                    .send(HealthEvent {
                        healthy: true,
                        kill: false,
                    })
                    .is_err()
                {
                    return;
                }
            }
        } else if succeeded_once || started.elapsed() >= grace {
            failures += 1;
            let kill = failures >= max_failures;
            if kill || reported != Some(false) {
                reported = Some(false);
                if events
                    .send(HealthEvent {
                        healthy: false,
                        kill,
                    })
                    .is_err()
                {
                    return;
                }
            }
            if kill {
                return;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

async fn probe(
    check: &HealthCheck,
    sandbox: &std::path::Path,
    env: &[(String, String)],
) -> Result<(), ProbeError> {
    let kind = match check.r#type() {
        // Checks written before `type` existed name only their command.
        health_check::Type::Unknown if check.command.is_some() => health_check::Type::Command,
        kind => kind,
    };
    match kind {
        health_check::Type::Command => {
            let command = check
                .command
                .as_ref()
                .ok_or(ProbeError::Missing("command"))?;
            let mut process = build_command_for_check(command, sandbox, env)?;
            let status = process
                .kill_on_drop(true)
                .status()
                .await
                .map_err(ProbeError::Run)?;
            if status.success() {
                Ok(())
            } else {
                Err(ProbeError::Exit(status))
            }
        }
        health_check::Type::Http => {
            let http = check.http.as_ref().ok_or(ProbeError::Missing("http"))?;
            let port = u16::try_from(http.port).map_err(|_| ProbeError::InvalidPort(http.port))?;
            let path = http.path.clone().unwrap_or_else(|| "/".to_string());
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(ProbeError::Connect)?;
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(ProbeError::Http)?;
            tokio::spawn(connection);
            let request = http::Request::get(if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            })
            .header(http::header::HOST, format!("127.0.0.1:{port}"))
            .body(Empty::<Bytes>::new())
            .map_err(ProbeError::Path)?;
            let response = sender
                .send_request(request)
                .await
                .map_err(ProbeError::Http)?;
            let code = response.status().as_u16();
            let accepted = if http.statuses.is_empty() {
                (200..400).contains(&code)
            } else {
                http.statuses.contains(&u32::from(code))
            };
            if accepted {
                Ok(())
            } else {
                Err(ProbeError::Status(code))
            }
        }
        health_check::Type::Tcp => {
            let tcp = check.tcp.as_ref().ok_or(ProbeError::Missing("tcp"))?;
            let port = u16::try_from(tcp.port).map_err(|_| ProbeError::InvalidPort(tcp.port))?;
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map(|_| ())
                .map_err(ProbeError::Connect)
        }
        health_check::Type::Unknown => Err(ProbeError::UnknownType),
    }
}
