//! `GET /ready`: whether this instance can do its job (a leader is elected: this instance, or
//! the one a standby proxies the API to; the Mesos master and Kafka answer, the processor
//! source reads, no processor failed), with the reasons when not. A standby that knows the
//! leader is ready: it serves the API and the UI through the leader.
//! Liveness is the SDK server's own `GET /health`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::State as AxState;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::general::{Shared, State};

/// How long a reachability probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// The answer of `/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// Whether every check passed.
    pub ready: bool,
    /// Whether this instance leads (a ready standby proxies the API to the leader).
    pub leader: bool,
    /// Whether the Mesos master answers.
    pub mesos: bool,
    /// Whether a Kafka broker answers.
    pub kafka: bool,
    /// Why not ready (empty when ready).
    pub reasons: Vec<String>,
}

/// `host:port` of a URL or a `host:port` list entry.
fn authority(address: &str) -> String {
    let rest = address.split("://").nth(1).unwrap_or(address);
    rest.split('/').next().unwrap_or(rest).to_string()
}

async fn reachable(address: &str) -> Result<(), String> {
    let target = authority(address);
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{target}: {e}")),
        Err(_) => Err(format!("{target}: no answer within {PROBE_TIMEOUT:?}")),
    }
}

/// Readiness with reasons; 503 when not ready.
#[utoipa::path(
    get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with reasons", body = Readiness),
    )
)]
pub async fn ready(AxState(shared): AxState<Arc<Shared>>) -> (StatusCode, Json<Readiness>) {
    let mut reasons = Vec::new();
    let leader = shared.leader.load(Ordering::Relaxed);
    // A standby serves the API through the leader, so it is ready once a leader is known.
    let leader_known = leader || shared.leader_url.lock().is_ok_and(|url| url.is_some());
    if !leader_known {
        reasons.push("no leader elected".to_string());
    }
    let mesos = match reachable(&shared.master).await {
        Ok(()) => true,
        Err(e) => {
            reasons.push(format!("Mesos master unreachable: {e}"));
            false
        }
    };
    let mut kafka = false;
    let mut kafka_errors = Vec::new();
    for broker in shared
        .brokers
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        match reachable(broker).await {
            Ok(()) => {
                kafka = true;
                break;
            }
            Err(e) => kafka_errors.push(e),
        }
    }
    if !kafka {
        reasons.push(format!(
            "no Kafka broker answers: {}",
            kafka_errors.join("; ")
        ));
    }
    if let Ok(Some(e)) = shared.source_error.lock().map(|e| e.clone()) {
        reasons.push(format!("processor source unreadable: {e}"));
    }
    for (name, known) in shared.known.read().await.iter() {
        if known.state == State::Failed {
            reasons.push(format!("processor {name} failed"));
        }
    }
    let ready = reasons.is_empty();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            leader,
            mesos,
            kafka,
            reasons,
        }),
    )
}
