//! The allocator against agents played over the link: DRF (the framework with the lower
//! dominant share is offered first), role weights, quota limits and guarantees (headroom), and
//! the frameworks' own `offer_filters` and `offer_constraints`, with UPDATE_QUOTA, GET_QUOTA,
//! UPDATE_WEIGHTS and GET_WEIGHTS on the operator API. The allocation interval is long, so
//! allocation runs only when an event triggers one (SUBSCRIBE, a new agent, REVIVE).

mod local_master_support;

use std::net::SocketAddr;
use std::time::Duration;

use local_master_support::*;
use mesos_local::master::MasterHandle;
use serde_json::{Value, json};

async fn master() -> MasterHandle {
    start_master(|c| c.allocation_interval = Duration::from_secs(3600)).await
}

/// A master whose allocation runs (and operation update resends) come every 50 ms.
async fn busy_master() -> MasterHandle {
    start_master(|c| {
        c.allocation_interval = Duration::from_millis(50);
        c.operation_status_retry = Duration::from_millis(200);
    })
    .await
}

async fn operator(addr: SocketAddr, body: Value) -> RawResponse {
    raw(
        addr,
        "POST",
        "/api/v1",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

fn role_info(name: &str, role: &str) -> Value {
    json!({"user": "u", "name": name, "role": role})
}

/// Launches a task using `cpus` and `mem` of `offer`; the rest goes back at once.
async fn launch(
    addr: SocketAddr,
    sid: &str,
    id: &str,
    offer: &Value,
    task: &str,
    cpus: f64,
    mem: f64,
) {
    let r = call(
        addr,
        sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 0},
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                              "name": task, "task_id": {"value": task}, "agent_id": offer["agent_id"],
                              "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                                            {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}],
                              "command": {"value": "sleep 100"}}]}}]}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

fn first_offer(event: &Value) -> Value {
    event["offers"]["offers"][0].clone()
}

#[tokio::test]
async fn the_framework_with_the_lower_dominant_share_is_offered_first() {
    let master = master().await;
    let addr = master.addr();
    let _a1 = LinkAgent::register(&master, "a1", "cpus:1;mem:1024", "");
    let (mut a, a_id) = subscribe(addr, framework_info("a")).await;
    let offer = first_offer(&a.next_of("OFFERS").await);
    launch(addr, &a.stream_id(), &a_id, &offer, "a-task", 1.0, 1024.0).await;
    let (mut b, _) = subscribe(addr, framework_info("b")).await;
    // A new agent: `a` holds half the cluster, `b` nothing, so `b` gets it.
    let _a2 = LinkAgent::register(&master, "a2", "cpus:1;mem:1024", "");
    let offer = first_offer(&b.next_of("OFFERS").await);
    assert_eq!(offer["agent_id"]["value"], "a2");
    a.expect_quiet(Duration::from_millis(200)).await;
    master.shutdown().await;
}

#[tokio::test]
async fn weights_scale_role_shares() {
    let master = master().await;
    let addr = master.addr();
    let _a1 = LinkAgent::register(&master, "a1", "cpus:4;mem:4096", "");
    let (mut a, a_id) = subscribe(addr, role_info("a", "r1")).await;
    let offer = first_offer(&a.next_of("OFFERS").await);
    launch(addr, &a.stream_id(), &a_id, &offer, "a-task", 2.0, 2048.0).await;
    let (mut b, b_id) = subscribe(addr, role_info("b", "r2")).await;
    let offer = first_offer(&b.next_of("OFFERS").await);
    launch(addr, &b.stream_id(), &b_id, &offer, "b-task", 1.0, 1024.0).await;
    // r1 holds half the cluster, r2 a quarter; with weight 4, r1's weighted share is lower.
    let r = operator(
        addr,
        json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"role": "r1", "weight": 4.0}]}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let weights = operator(addr, json!({"type": "GET_WEIGHTS"})).await.json();
    assert_eq!(weights["get_weights"]["weight_infos"][0]["role"], "r1");
    assert_eq!(weights["get_weights"]["weight_infos"][0]["weight"], 4.0);
    let r = call(
        addr,
        &b.stream_id(),
        json!({"type": "REVIVE", "framework_id": {"value": b_id}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let offer = first_offer(&a.next_of("OFFERS").await);
    assert_eq!(scalars(&offer["resources"])["cpus"], 1.0);
    b.expect_quiet(Duration::from_millis(200)).await;
    // Bad weights.
    for bad in [
        json!({"role": "r1", "weight": 0.0}),
        json!({"role": "a b", "weight": 2.0}),
    ] {
        let r = operator(
            addr,
            json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [bad]}}),
        )
        .await;
        assert_eq!(r.status, 400);
    }
    master.shutdown().await;
}

#[tokio::test]
async fn quota_limits_and_guarantees_cut_offers() {
    let master = master().await;
    let addr = master.addr();
    let quota = |configs: Value| {
        operator(
            addr,
            json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": configs}}),
        )
    };
    let r = quota(json!([{"role": "*", "limits": {"cpus": {"value": 1}}}])).await;
    assert_eq!(r.status, 400);
    let r = quota(json!([{"role": "r1", "guarantees": {"cpus": {"value": 2}},
                          "limits": {"cpus": {"value": 1}}}]))
    .await;
    assert_eq!(r.status, 400);
    let r = quota(json!([{"role": "r1", "limits": {"cpus": {"value": 1}}},
                         {"role": "r2", "guarantees": {"cpus": {"value": 2}}}]))
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = operator(addr, json!({"type": "GET_QUOTA"})).await.json();
    let configs = got["get_quota"]["status"]["configs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(configs.len(), 2, "{got}");
    assert_eq!(configs[0]["role"], "r1");
    assert_eq!(configs[0]["limits"]["cpus"]["value"], 1.0);

    let _a1 = LinkAgent::register(&master, "a1", "cpus:4;mem:4096", "");
    // r1 may hold one cpu at most.
    let (mut a, _) = subscribe(addr, role_info("a", "r1")).await;
    let offer = first_offer(&a.next_of("OFFERS").await);
    assert_eq!(scalars(&offer["resources"])["cpus"], 1.0);
    // A role without quota leaves r2's guarantee free: 4 - 1 (r1) - 2 (r2's headroom).
    let (mut c, _) = subscribe(addr, role_info("c", "r3")).await;
    let offer = first_offer(&c.next_of("OFFERS").await);
    assert_eq!(scalars(&offer["resources"])["cpus"], 1.0);
    // r2 gets its guarantee.
    let (mut b, _) = subscribe(addr, role_info("b", "r2")).await;
    let offer = first_offer(&b.next_of("OFFERS").await);
    assert_eq!(scalars(&offer["resources"])["cpus"], 2.0);
    // Removing a quota: empty guarantees and limits.
    let r = quota(json!([{"role": "r1"}, {"role": "r2"}])).await;
    assert_eq!(r.status, 200);
    let got = operator(addr, json!({"type": "GET_QUOTA"})).await.json();
    assert!(
        got["get_quota"]["status"]
            .get("configs")
            .is_none_or(|c| c.as_array().unwrap().is_empty()),
        "{got}"
    );
    master.shutdown().await;
}

#[tokio::test]
async fn offer_filters_hold_back_too_small_offers() {
    let master = master().await;
    let addr = master.addr();
    let _small = LinkAgent::register(&master, "small", "cpus:4;mem:4096", "");
    let info = json!({"user": "u", "name": "big", "offer_filters": {"*": {
        "min_allocatable_resources": {"quantities": [{"quantities": {"cpus": {"value": 8}}}]}}}});
    let (mut stream, _) = subscribe(addr, info).await;
    stream.expect_quiet(Duration::from_millis(200)).await;
    let _big = LinkAgent::register(&master, "big", "cpus:8;mem:4096", "");
    let offer = first_offer(&stream.next_of("OFFERS").await);
    assert_eq!(offer["agent_id"]["value"], "big");
    master.shutdown().await;
}

#[tokio::test]
async fn offer_constraints_select_agents_by_attribute() {
    let master = master().await;
    let addr = master.addr();
    let _r1 = LinkAgent::register(&master, "in-r1", "cpus:1;mem:1024", "rack:r1");
    let _r2 = LinkAgent::register(&master, "in-r2", "cpus:1;mem:1024", "rack:r2");
    let body = json!({"type": "SUBSCRIBE", "subscribe": {
    "framework_info": {"user": "u", "name": "picky"},
    "offer_constraints": {"role_constraints": {"*": {"groups": [{"attribute_constraints": [
        {"selector": {"attribute_name": "rack"}, "predicate": {"text_matches": {"regex": "r[2-9]"}}}
    ]}]}}}}});
    let mut stream = open_stream(
        addr,
        "/api/v1/scheduler",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(stream.status, 200);
    let event = stream.next_of("OFFERS").await;
    let offers = event["offers"]["offers"].as_array().unwrap();
    assert_eq!(offers.len(), 1, "{event}");
    assert_eq!(offers[0]["agent_id"]["value"], "in-r2");
    stream.expect_quiet(Duration::from_millis(200)).await;
    master.shutdown().await;
}

#[tokio::test]
async fn operations_with_an_id_get_feedback() {
    let master = busy_master().await;
    let addr = master.addr();
    let _a1 = LinkAgent::register(&master, "a1", "cpus:2;mem:1024", "");
    let (mut stream, id) = subscribe(addr, role_info("f", "r1")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&stream.next_of("OFFERS").await);
    let reserve = |op: &str, cpus: f64| {
        json!({"type": "RESERVE", "id": {"value": op}, "reserve": {"resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus},
             "reservations": [{"type": "DYNAMIC", "role": "r1"}]}]}})
    };
    let r = call(
        addr,
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [reserve("op1", 1.0), reserve("op2", 100.0)]}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let first = stream.next_of("UPDATE_OPERATION_STATUS").await;
    let status = &first["update_operation_status"]["status"];
    assert_eq!(status["operation_id"]["value"], "op1");
    assert_eq!(status["state"], "OPERATION_FINISHED");
    assert_eq!(status["agent_id"]["value"], "a1");
    assert!(status["uuid"]["value"].is_string(), "{status}");
    assert_eq!(
        status["converted_resources"][0]["reservations"][0]["role"],
        "r1"
    );
    let uuid = status["uuid"]["value"].clone();
    let second = stream.next_of("UPDATE_OPERATION_STATUS").await;
    let failed = &second["update_operation_status"]["status"];
    assert_eq!(failed["operation_id"]["value"], "op2");
    assert_eq!(failed["state"], "OPERATION_ERROR");
    assert!(failed["message"].is_string());

    // Not acknowledged yet: sent again with the same uuid.
    loop {
        let again = stream.next_of("UPDATE_OPERATION_STATUS").await;
        let status = &again["update_operation_status"]["status"];
        if status["operation_id"]["value"] == "op1" {
            assert_eq!(status["uuid"]["value"], uuid);
            break;
        }
    }

    // Reconciliation answers carry no uuid (resends may come between).
    async fn answer(stream: &mut Stream) -> Value {
        loop {
            let event = stream.next_of("UPDATE_OPERATION_STATUS").await;
            let status = event["update_operation_status"]["status"].clone();
            if status["operation_id"]["value"] == "op1" && status.get("uuid").is_none() {
                return status;
            }
        }
    }
    let reconcile = json!({"type": "RECONCILE_OPERATIONS", "framework_id": {"value": id},
        "reconcile_operations": {"operations": [{"operation_id": {"value": "op1"},
                                                 "agent_id": {"value": "a1"}}]}});
    assert_eq!(call(addr, &sid, reconcile.clone()).await.status, 202);
    assert_eq!(answer(&mut stream).await["state"], "OPERATION_FINISHED");

    let ack = json!({"type": "ACKNOWLEDGE_OPERATION_STATUS", "framework_id": {"value": id},
        "acknowledge_operation_status": {"agent_id": {"value": "a1"}, "uuid": uuid,
                                         "operation_id": {"value": "op1"}}});
    let r = call(addr, &sid, ack).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(call(addr, &sid, reconcile).await.status, 202);
    assert_eq!(answer(&mut stream).await["state"], "OPERATION_UNKNOWN");
    master.shutdown().await;
}
