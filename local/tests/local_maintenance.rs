//! Maintenance on a whole local cluster through the operator API and the scheduler API: schedule
//! validation, inverse offers to the frameworks with tasks on a DRAINING machine, their answers
//! in GET_MAINTENANCE_STATUS, unavailability on offers, machines going DOWN (their agents'
//! tasks end, the agent is refused) and UP again, and DRAIN_AGENT / REACTIVATE_AGENT. Raw HTTP
//! with hand-written JSON.

mod local_faults_support;
mod local_master_support;

use local_faults_support::*;
use serde_json::{Value, json};

const START_NS: i64 = 2_000_000_000_000_000_000;

fn machine(ip: &str) -> Value {
    json!({"hostname": ip, "ip": ip})
}

fn schedule(machines: Vec<Value>) -> Value {
    json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule": {
        "windows": [{"machine_ids": machines,
                     "unavailability": {"start": {"nanoseconds": START_NS},
                                        "duration": {"nanoseconds": 3_600_000_000_000i64}}}]}}})
}

#[tokio::test]
async fn schedules_are_validated() {
    let cluster = builder(1).start().await.unwrap();
    let addr = cluster.master().addr();
    let r = operator(addr, schedule(vec![])).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "List of machines in the maintenance window is empty"
    );
    let r = operator(addr, schedule(vec![json!({})])).await;
    assert_eq!(r.status, 400);
    let r = operator(
        addr,
        schedule(vec![machine("10.0.0.1"), machine("10.0.0.1")]),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("more than once"), "{}", r.text());
    let r = operator(addr, json!({"type": "UPDATE_MAINTENANCE_SCHEDULE"})).await;
    assert_eq!(r.status, 400);
    // Machines must be scheduled before they go down, and down before they come up.
    let start = json!({"type": "START_MAINTENANCE",
                       "start_maintenance": {"machines": [machine("10.0.0.1")]}});
    assert_eq!(operator(addr, start).await.status, 400);
    let stop = json!({"type": "STOP_MAINTENANCE",
                      "stop_maintenance": {"machines": [machine("10.0.0.1")]}});
    assert_eq!(operator(addr, stop).await.status, 400);
    // An empty schedule and status.
    let r = operator(addr, json!({"type": "GET_MAINTENANCE_SCHEDULE"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "GET_MAINTENANCE_SCHEDULE");
    let r = operator(addr, json!({"type": "GET_MAINTENANCE_STATUS"})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "GET_MAINTENANCE_STATUS");
    cluster.shutdown().await;
}

#[tokio::test]
async fn draining_machine_gets_inverse_offers_and_goes_down() {
    let cluster = builder(1).start().await.unwrap();
    let addr = cluster.master().addr();
    let ip = cluster.agents()[0].endpoint().ip().to_string();
    let mut accepting = Fw::subscribe(addr, info("accepting", true)).await;
    let agent_id = accepting.launch("a1", "sleep 20").await;
    accepting.wait_state("a1", "TASK_RUNNING").await;
    let mut declining = Fw::subscribe(addr, info("declining", false)).await;
    declining.launch("d1", "sleep 20").await;
    declining.wait_state("d1", "TASK_RUNNING").await;

    let r = operator(addr, schedule(vec![machine(&ip)])).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = operator(addr, json!({"type": "GET_MAINTENANCE_SCHEDULE"}))
        .await
        .json();
    let window = &got["get_maintenance_schedule"]["schedule"]["windows"][0];
    assert_eq!(window["machine_ids"][0]["ip"], ip.as_str());

    let mut inverse_ids = Vec::new();
    for fw in [&mut accepting, &mut declining] {
        let event = fw.stream.next_of("INVERSE_OFFERS").await;
        let offer = &event["inverse_offers"]["inverse_offers"][0];
        assert_eq!(offer["agent_id"]["value"], agent_id.as_str());
        assert_eq!(offer["framework_id"]["value"], fw.id.as_str());
        assert_eq!(
            offer["unavailability"]["start"]["nanoseconds"].as_i64(),
            Some(START_NS)
        );
        inverse_ids.push(offer["id"].clone());
    }
    accepting
        .call(
            json!({"type": "ACCEPT_INVERSE_OFFERS", "framework_id": {"value": accepting.id},
                     "accept_inverse_offers": {"inverse_offer_ids": [inverse_ids[0]]}}),
        )
        .await;
    declining
        .call(
            json!({"type": "DECLINE_INVERSE_OFFERS", "framework_id": {"value": declining.id},
                     "decline_inverse_offers": {"inverse_offer_ids": [inverse_ids[1]]}}),
        )
        .await;
    let status = operator(addr, json!({"type": "GET_MAINTENANCE_STATUS"}))
        .await
        .json();
    let draining = &status["get_maintenance_status"]["status"]["draining_machines"][0];
    assert_eq!(draining["id"]["ip"], ip.as_str());
    let statuses = draining["statuses"].as_array().expect("answers recorded");
    assert_eq!(statuses.len(), 2, "{status}");
    for answer in statuses {
        let expected = if answer["framework_id"]["value"] == accepting.id.as_str() {
            "ACCEPT"
        } else {
            "DECLINE"
        };
        assert_eq!(answer["status"], expected, "{answer}");
        assert!(answer["timestamp"]["nanoseconds"].is_i64());
    }

    // Offers of a draining agent carry the unavailability.
    accepting
        .call(json!({"type": "REVIVE", "framework_id": {"value": accepting.id}}))
        .await;
    let offers = accepting.stream.next_of("OFFERS").await;
    let offer = &offers["offers"]["offers"][0];
    assert_eq!(
        offer["unavailability"]["start"]["nanoseconds"].as_i64(),
        Some(START_NS)
    );

    // DOWN: the agent's tasks end and it is gone.
    let down = json!({"type": "START_MAINTENANCE",
                      "start_maintenance": {"machines": [machine(&ip)]}});
    let r = operator(addr, down.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let status = accepting.wait_state("a1", "TASK_GONE_BY_OPERATOR").await;
    assert_eq!(status["reason"], "REASON_AGENT_REMOVED_BY_OPERATOR");
    declining.wait_state("d1", "TASK_LOST").await;
    assert_eq!(cluster.master().registered_agents(), 0);
    assert_eq!(operator(addr, down).await.status, 400, "already down");
    let status = operator(addr, json!({"type": "GET_MAINTENANCE_STATUS"}))
        .await
        .json();
    assert_eq!(
        status["get_maintenance_status"]["status"]["down_machines"][0]["ip"],
        ip.as_str()
    );

    // UP: the machine leaves the schedule.
    let up = json!({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [machine(&ip)]}});
    let r = operator(addr, up).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = operator(addr, json!({"type": "GET_MAINTENANCE_SCHEDULE"}))
        .await
        .json();
    assert!(
        got["get_maintenance_schedule"]["schedule"]
            .get("windows")
            .is_none_or(|w| w.as_array().unwrap().is_empty()),
        "{got}"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn draining_an_agent_kills_its_tasks_and_can_mark_it_gone() {
    let cluster = builder(2).start().await.unwrap();
    let addr = cluster.master().addr();
    let mut fw = Fw::subscribe(addr, info("fw", true)).await;
    let agent_id = fw.launch("t1", "sleep 20").await;
    fw.wait_state("t1", "TASK_RUNNING").await;
    let unknown = json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "nope"}}});
    assert_eq!(operator(addr, unknown).await.status, 400);

    let drain = json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": agent_id}}});
    let r = operator(addr, drain).await;
    assert_eq!(r.status, 200, "{}", r.text());
    fw.wait_state("t1", "TASK_KILLED").await;
    let agent_of = |agents: &Value| {
        agents["get_agents"]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["agent_info"]["id"]["value"] == agent_id.as_str())
            .cloned()
            .unwrap()
    };
    let agents = operator(addr, json!({"type": "GET_AGENTS"})).await.json();
    let drained = agent_of(&agents);
    assert_eq!(drained["deactivated"], true, "{drained}");
    assert_eq!(drained["drain_info"]["state"], "DRAINED", "{drained}");

    let reactivate =
        json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": agent_id}}});
    assert_eq!(operator(addr, reactivate).await.status, 200);
    let agents = operator(addr, json!({"type": "GET_AGENTS"})).await.json();
    let active = agent_of(&agents);
    assert_eq!(active["deactivated"], false, "{active}");
    assert!(active.get("drain_info").is_none(), "{active}");

    // Drained with `mark_gone`: no task runs there, so it is gone at once.
    let drain = json!({"type": "DRAIN_AGENT",
                       "drain_agent": {"agent_id": {"value": agent_id}, "mark_gone": true}});
    assert_eq!(operator(addr, drain).await.status, 200);
    assert_eq!(cluster.master().registered_agents(), 1);
    cluster.shutdown().await;
}
