//! The master's metrics under Mesos' names (those mesos-local can know): `/metrics/snapshot`
//! (also `/master/metrics/snapshot`) and the operator call GET_METRICS. Counts of tasks by state,
//! frameworks and agents, outstanding offers, total and used resources, uptime and election.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::response::Response;
use http::Method;
use serde_json::{Map, Value, json};

use super::endpoints::{json_response, read_only};
use super::state::{Shared, State, is_terminal, now_secs};
use super::state_json::state_name;
use mesos_sdk::resourcemgr::Resources;
use mesos_sdk::v1::{self, TaskState};

/// `/metrics/snapshot`: the master's metrics under Mesos' names (those mesos-local can know).
pub(super) fn metrics(state: &State) -> Map<String, Value> {
    let mut out = match state.metrics() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut put = |name: &str, value: f64| {
        out.insert(format!("master/{name}"), json!(value));
    };
    let live: Vec<&v1::Task> = state
        .frameworks
        .values()
        .flat_map(|f| f.tasks.values())
        .collect();
    let mut completed: BTreeMap<&'static str, u64> = BTreeMap::new();
    for f in state.frameworks.values() {
        for t in f.completed_tasks.iter() {
            *completed.entry(state_name(t.state)).or_default() += 1;
        }
    }
    for f in &state.completed_frameworks {
        for t in f.completed_tasks.iter() {
            *completed.entry(state_name(t.state)).or_default() += 1;
        }
    }
    for t in live.iter().filter(|t| is_terminal(t.state)) {
        *completed.entry(state_name(t.state)).or_default() += 1;
    }
    for (name, s) in [
        ("staging", TaskState::TaskStaging),
        ("starting", TaskState::TaskStarting),
        ("running", TaskState::TaskRunning),
        ("killing", TaskState::TaskKilling),
        ("unreachable", TaskState::TaskUnreachable),
    ] {
        let n = live.iter().filter(|t| t.state == s as i32).count();
        put(&format!("tasks_{name}"), n as f64);
    }
    for (name, s) in [
        ("finished", TaskState::TaskFinished),
        ("failed", TaskState::TaskFailed),
        ("killed", TaskState::TaskKilled),
        ("lost", TaskState::TaskLost),
        ("error", TaskState::TaskError),
        ("dropped", TaskState::TaskDropped),
        ("gone", TaskState::TaskGone),
        ("gone_by_operator", TaskState::TaskGoneByOperator),
    ] {
        let n = completed.get(s.as_str_name()).copied().unwrap_or(0);
        put(&format!("tasks_{name}"), n as f64);
    }
    let agents = state.agents.len() as f64;
    put("slaves_connected", agents);
    put("slaves_disconnected", 0.0);
    put("slaves_inactive", 0.0);
    put("slaves_unreachable", 0.0);
    let offers: usize = state.frameworks.values().map(|f| f.offers.len()).sum();
    put("outstanding_offers", offers as f64);
    let mut total = Resources::new();
    let mut used = Resources::new();
    for agent in state.agents.values() {
        total.add_all(agent.total.as_slice());
        used.add_all(agent.used.as_slice());
    }
    for name in ["cpus", "gpus", "mem", "disk"] {
        let (t, u) = (total.scalar(name), used.scalar(name));
        put(&format!("{name}_total"), t);
        put(&format!("{name}_used"), u);
        put(
            &format!("{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
    }
    out.insert(
        "master/uptime_secs".into(),
        json!((now_secs() - state.start_time).max(0.0)),
    );
    out
}

pub(super) async fn metrics_snapshot(
    AxumState(shared): AxumState<Arc<Shared>>,
    method: Method,
) -> Response {
    read_only(&method).unwrap_or_else(|| json_response(&Value::Object(metrics(&shared.lock()))))
}

/// GET_METRICS: the numbers of `/metrics/snapshot`.
pub(super) fn get_metrics(state: &State) -> v1::master::response::GetMetrics {
    v1::master::response::GetMetrics {
        metrics: metrics(state)
            .into_iter()
            .map(|(name, value)| v1::Metric {
                name,
                value: value.as_f64(),
            })
            .collect(),
    }
}
