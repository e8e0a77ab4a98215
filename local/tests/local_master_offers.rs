//! The embedded master's offers and tasks: offer shapes, refuse filters, SUPPRESS / REVIVE,
//! offer timeout, ACCEPT with LAUNCH / LAUNCH_GROUP / RESERVE / CREATE, task errors, status
//! update relay and acknowledgement, KILL, RECONCILE, MESSAGE and FAILURE. The agent side is
//! played by the test over the real in-process link.

mod local_master_support;

use std::time::{Duration, Instant};

use local_master_support::*;
use mesos_local::link::{AgentMessage, FromAgent, ToAgent};
use mesos_sdk::v1::{AgentId, ExecutorId, FrameworkId, TaskState};
use serde_json::{Value, json};

fn cpus_mem(cpus: f64, mem: f64) -> Value {
    json!([
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}
    ])
}

fn launch(id: &str, offer: &Value, tasks: Vec<Value>, refuse: f64) -> Value {
    json!({
        "type": "ACCEPT",
        "framework_id": {"value": id},
        "accept": {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
            "filters": {"refuse_seconds": refuse}
        }
    })
}

fn command_task(task_id: &str, offer: &Value, cpus: f64, mem: f64) -> Value {
    json!({
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": cpus_mem(cpus, mem),
        "command": {"value": "true"}
    })
}

async fn first_offer(stream: &mut Stream) -> Value {
    let offers = stream.next_of("OFFERS").await;
    offers["offers"]["offers"][0].clone()
}

#[tokio::test]
async fn offers_without_multi_role_carry_role_star() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(
        &master,
        "a1",
        "cpus:2;mem:1024;ports:[31000-31009]",
        "rack:r1",
    );
    let (mut stream, id) = subscribe(master.addr(), framework_info("plain")).await;
    let offer = first_offer(&mut stream).await;
    assert_eq!(offer["framework_id"]["value"], id.as_str());
    assert_eq!(offer["agent_id"]["value"], "a1");
    assert_eq!(offer["hostname"], "a1.local");
    assert!(offer.get("allocation_info").is_none(), "{offer}");
    for resource in offer["resources"].as_array().unwrap() {
        assert_eq!(resource["role"], "*", "{resource}");
        assert!(resource.get("allocation_info").is_none());
    }
    let scalars = scalars(&offer["resources"]);
    assert_eq!(scalars["cpus"], 2.0);
    assert_eq!(scalars["mem"], 1024.0);
    let ports = offer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ports")
        .unwrap();
    assert_eq!(
        ports["ranges"]["range"],
        json!([{"begin": 31000, "end": 31009}])
    );
    assert_eq!(offer["attributes"][0]["name"], "rack");
    assert_eq!(offer["attributes"][0]["text"]["value"], "r1");
    master.shutdown().await;
}

#[tokio::test]
async fn offers_with_multi_role_carry_allocation_info() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:2;mem:1024;cpus(web):1", "");
    let info = json!({"user": "u", "name": "mr", "roles": ["web"],
                      "capabilities": [{"type": "MULTI_ROLE"}]});
    let (mut stream, _) = subscribe(master.addr(), info).await;
    let offer = first_offer(&mut stream).await;
    assert_eq!(offer["allocation_info"]["role"], "web");
    for resource in offer["resources"].as_array().unwrap() {
        assert_eq!(resource["allocation_info"]["role"], "web", "{resource}");
        assert!(resource.get("role").is_none(), "{resource}");
    }
    // The role's reservation is offered along with the unreserved resources.
    let reserved: Vec<&Value> = offer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("reservations").is_some())
        .collect();
    assert_eq!(reserved.len(), 1);
    assert_eq!(reserved[0]["reservations"][0]["role"], "web");
    assert_eq!(scalars(&offer["resources"])["mem"], 1024.0);
    master.shutdown().await;
}

#[tokio::test]
async fn decline_filters_until_revive() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("decline")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    let r = call(
        master.addr(),
        &sid,
        json!({"type": "DECLINE", "framework_id": {"value": id},
               "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 60}}}),
    )
    .await;
    assert_eq!(r.status, 202);
    stream.expect_quiet(Duration::from_millis(300)).await;
    let r = call(
        master.addr(),
        &sid,
        json!({"type": "REVIVE", "framework_id": {"value": id}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let again = first_offer(&mut stream).await;
    assert_ne!(again["id"], offer["id"]);

    // A short filter expires by itself.
    call(
        master.addr(),
        &sid,
        json!({"type": "DECLINE", "framework_id": {"value": id},
               "decline": {"offer_ids": [again["id"]], "filters": {"refuse_seconds": 0.2}}}),
    )
    .await;
    let started = Instant::now();
    let third = first_offer(&mut stream).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_ne!(third["id"], again["id"]);
    master.shutdown().await;
}

#[tokio::test]
async fn suppress_stops_offers_and_revive_resumes() {
    let master = start_master(|_| {}).await;
    let (mut stream, id) = subscribe(master.addr(), framework_info("suppress")).await;
    let sid = stream.stream_id();
    let r = call(
        master.addr(),
        &sid,
        json!({"type": "SUPPRESS", "framework_id": {"value": id}, "suppress": {}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    stream.expect_quiet(Duration::from_millis(300)).await;
    call(
        master.addr(),
        &sid,
        json!({"type": "REVIVE", "framework_id": {"value": id}, "revive": {"roles": ["*"]}}),
    )
    .await;
    let offer = first_offer(&mut stream).await;
    assert_eq!(offer["agent_id"]["value"], "a1");
    master.shutdown().await;
}

#[tokio::test]
async fn offer_timeout_rescinds() {
    let master = start_master(|c| c.offer_timeout = Some(Duration::from_millis(100))).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, _) = subscribe(master.addr(), framework_info("timeout")).await;
    let offer = first_offer(&mut stream).await;
    let rescind = stream.next_of("RESCIND").await;
    assert_eq!(rescind["rescind"]["offer_id"], offer["id"]);
    let again = first_offer(&mut stream).await;
    assert_ne!(again["id"], offer["id"]);
    master.shutdown().await;
}

#[tokio::test]
async fn launch_relay_updates_and_acknowledge() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("launch")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    let r = call(
        master.addr(),
        &sid,
        launch(
            &id,
            &offer,
            vec![command_task("t1", &offer, 0.5, 128.0)],
            0.0,
        ),
    )
    .await;
    assert_eq!(r.status, 202);
    match agent.next().await {
        ToAgent::RunTask {
            framework_info,
            executor,
            task,
        } => {
            assert_eq!(framework_info.id.unwrap().value, id);
            assert!(executor.is_none());
            assert_eq!(task.task_id.value, "t1");
            assert_eq!(task.agent_id.value, "a1");
            assert_eq!(task.command.unwrap().value.as_deref(), Some("true"));
        }
        other => panic!("unexpected {other:?}"),
    }
    let uuid = agent.update(&id, "t1", TaskState::TaskRunning);
    let update = stream.next_of("UPDATE").await;
    let status = &update["update"]["status"];
    assert_eq!(status["state"], "TASK_RUNNING");
    assert_eq!(status["task_id"]["value"], "t1");
    assert_eq!(status["uuid"], b64(&uuid));

    // The rest of the agent is offered again.
    let offer = first_offer(&mut stream).await;
    assert_eq!(scalars(&offer["resources"])["cpus"], 0.5);

    let r = call(
        master.addr(),
        &sid,
        json!({"type": "ACKNOWLEDGE", "framework_id": {"value": id},
               "acknowledge": {"agent_id": {"value": "a1"}, "task_id": {"value": "t1"},
                               "uuid": b64(&uuid)}}),
    )
    .await;
    assert_eq!(r.status, 202);
    match agent.next().await {
        ToAgent::Acknowledge {
            framework_id,
            task_id,
            uuid: acked,
        } => {
            assert_eq!(framework_id.value, id);
            assert_eq!(task_id.value, "t1");
            assert_eq!(acked, uuid);
        }
        other => panic!("unexpected {other:?}"),
    }

    let state = raw(master.addr(), "GET", "/state", &[], b"").await.json();
    let task = &state["frameworks"][0]["tasks"][0];
    assert_eq!(task["id"], "t1");
    assert_eq!(task["state"], "TASK_RUNNING");
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 0.5);

    // A terminal update frees the resources.
    agent.update(&id, "t1", TaskState::TaskFinished);
    let update = stream.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["state"], "TASK_FINISHED");
    let deadline = Instant::now() + WAIT;
    loop {
        let state = raw(master.addr(), "GET", "/state", &[], b"").await.json();
        if state["slaves"][0]["used_resources"]["cpus"] == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    master.shutdown().await;
}

#[tokio::test]
async fn invalid_tasks_get_task_error_without_uuid() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("errors")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    let tasks = vec![
        command_task("dup", &offer, 0.1, 32.0),
        command_task("dup", &offer, 0.1, 32.0),
        command_task("big", &offer, 4.0, 32.0),
    ];
    call(master.addr(), &sid, launch(&id, &offer, tasks, 0.0)).await;
    assert!(matches!(agent.next().await, ToAgent::RunTask { .. }));

    let first = stream.next_of("UPDATE").await;
    let status = &first["update"]["status"];
    assert_eq!(status["state"], "TASK_ERROR");
    assert_eq!(status["reason"], "REASON_TASK_INVALID");
    assert_eq!(status["source"], "SOURCE_MASTER");
    assert_eq!(status["message"], "Task has duplicate ID: dup");
    assert!(status.get("uuid").is_none());

    let second = stream.next_of("UPDATE").await;
    let status = &second["update"]["status"];
    assert_eq!(status["task_id"]["value"], "big");
    assert_eq!(status["state"], "TASK_ERROR");
    assert_eq!(status["reason"], "REASON_TASK_INVALID");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("Total resources cpus(allocated: *):"),
        "{status}"
    );
    master.shutdown().await;
}

#[tokio::test]
async fn invalid_offers_give_task_lost_or_dropped() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    for (capabilities, expected) in [
        (json!([]), "TASK_LOST"),
        (json!([{"type": "PARTITION_AWARE"}]), "TASK_DROPPED"),
    ] {
        let info = json!({"user": "u", "name": "n", "capabilities": capabilities});
        let (mut stream, id) = subscribe(master.addr(), info).await;
        let sid = stream.stream_id();
        let bogus = json!({"id": {"value": "no-such-offer"}, "agent_id": {"value": "a1"}});
        call(
            master.addr(),
            &sid,
            launch(&id, &bogus, vec![command_task("t", &bogus, 0.1, 32.0)], 0.0),
        )
        .await;
        let update = stream.next_of("UPDATE").await;
        let status = &update["update"]["status"];
        assert_eq!(status["state"], expected);
        assert_eq!(status["reason"], "REASON_INVALID_OFFERS");
        assert_eq!(status["source"], "SOURCE_MASTER");
        assert!(status.get("uuid").is_none());
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .starts_with("Task launched with invalid offers: "),
            "{status}"
        );
        call(
            master.addr(),
            &sid,
            json!({"type": "TEARDOWN", "framework_id": {"value": id}}),
        )
        .await;
    }
    master.shutdown().await;
}

#[tokio::test]
async fn an_offer_is_usable_once() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("once")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    call(
        master.addr(),
        &sid,
        launch(
            &id,
            &offer,
            vec![command_task("a", &offer, 0.1, 32.0)],
            60.0,
        ),
    )
    .await;
    assert!(matches!(agent.next().await, ToAgent::RunTask { .. }));
    // The unused rest of the offer counts as declined for 60 s.
    stream.expect_quiet(Duration::from_millis(300)).await;
    call(
        master.addr(),
        &sid,
        launch(
            &id,
            &offer,
            vec![command_task("b", &offer, 0.1, 32.0)],
            60.0,
        ),
    )
    .await;
    let update = stream.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["task_id"]["value"], "b");
    assert_eq!(update["update"]["status"]["state"], "TASK_LOST");
    master.shutdown().await;
}

#[tokio::test]
async fn reconcile_explicit_and_implicit() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("rec")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    call(
        master.addr(),
        &sid,
        launch(
            &id,
            &offer,
            vec![command_task("known", &offer, 0.1, 32.0)],
            0.0,
        ),
    )
    .await;
    assert!(matches!(agent.next().await, ToAgent::RunTask { .. }));
    agent.update(&id, "known", TaskState::TaskRunning);
    stream.next_of("UPDATE").await;

    call(
        master.addr(),
        &sid,
        json!({"type": "RECONCILE", "framework_id": {"value": id},
        "reconcile": {"tasks": [
            {"task_id": {"value": "known"}, "agent_id": {"value": "a1"}},
            {"task_id": {"value": "ghost"}, "agent_id": {"value": "a1"}},
            {"task_id": {"value": "nowhere"}}
        ]}}),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let update = stream.next_of("UPDATE").await;
        let status = update["update"]["status"].clone();
        assert_eq!(status["reason"], "REASON_RECONCILIATION");
        assert_eq!(status["source"], "SOURCE_MASTER");
        assert!(status.get("uuid").is_none());
        seen.push((
            status["task_id"]["value"].as_str().unwrap().to_string(),
            status["state"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(
        seen,
        vec![
            ("known".to_string(), "TASK_RUNNING".to_string()),
            ("ghost".to_string(), "TASK_LOST".to_string()),
            ("nowhere".to_string(), "TASK_LOST".to_string()),
        ]
    );

    call(
        master.addr(),
        &sid,
        json!({"type": "RECONCILE", "framework_id": {"value": id}, "reconcile": {}}),
    )
    .await;
    let update = stream.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["task_id"]["value"], "known");
    assert_eq!(update["update"]["status"]["state"], "TASK_RUNNING");

    // KILL of an unknown task answers like a reconciliation.
    call(
        master.addr(),
        &sid,
        json!({"type": "KILL", "framework_id": {"value": id},
               "kill": {"task_id": {"value": "ghost"}}}),
    )
    .await;
    let update = stream.next_of("UPDATE").await;
    assert_eq!(update["update"]["status"]["state"], "TASK_LOST");
    // KILL of a known task goes to the agent.
    call(
        master.addr(),
        &sid,
        json!({"type": "KILL", "framework_id": {"value": id},
               "kill": {"task_id": {"value": "known"}, "agent_id": {"value": "a1"}}}),
    )
    .await;
    match agent.next().await {
        ToAgent::KillTask { task_id, .. } => assert_eq!(task_id.value, "known"),
        other => panic!("unexpected {other:?}"),
    }

    call(
        master.addr(),
        &sid,
        json!({"type": "RECONCILE_OPERATIONS", "framework_id": {"value": id},
               "reconcile_operations": {"operations": [{"operation_id": {"value": "op1"}}]}}),
    )
    .await;
    let update = stream.next_of("UPDATE_OPERATION_STATUS").await;
    let status = &update["update_operation_status"]["status"];
    assert_eq!(status["state"], "OPERATION_UNKNOWN");
    assert_eq!(status["operation_id"]["value"], "op1");
    master.shutdown().await;
}

#[tokio::test]
async fn partition_aware_reconciliation() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let info = json!({"user": "u", "name": "pa", "capabilities": [{"type": "PARTITION_AWARE"}]});
    let (mut stream, id) = subscribe(master.addr(), info).await;
    call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "RECONCILE", "framework_id": {"value": id},
        "reconcile": {"tasks": [
            {"task_id": {"value": "x"}, "agent_id": {"value": "a1"}},
            {"task_id": {"value": "y"}, "agent_id": {"value": "unknown-agent"}}
        ]}}),
    )
    .await;
    let first = stream.next_of("UPDATE").await;
    assert_eq!(first["update"]["status"]["state"], "TASK_GONE");
    let second = stream.next_of("UPDATE").await;
    assert_eq!(second["update"]["status"]["state"], "TASK_UNKNOWN");
    master.shutdown().await;
}

#[tokio::test]
async fn reserve_and_create_volume_show_in_later_offers() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:2;mem:512;disk:1000", "");
    let info = json!({"user": "u", "name": "res", "roles": ["db"],
                      "capabilities": [{"type": "MULTI_ROLE"}]});
    let (mut stream, id) = subscribe(master.addr(), info).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    let alloc = json!({"role": "db"});
    let reserved_disk = json!({"name": "disk", "type": "SCALAR", "scalar": {"value": 100},
                               "allocation_info": alloc,
                               "reservations": [{"type": "DYNAMIC", "role": "db", "principal": "p"}]});
    let mut volume = reserved_disk.clone();
    volume["disk"] = json!({"persistence": {"id": "vol1", "principal": "p"},
                            "volume": {"mode": "RW", "container_path": "data"}});
    let r = call(
        master.addr(),
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [
                              {"type": "RESERVE", "reserve": {"resources": [reserved_disk]}},
                              {"type": "CREATE", "create": {"volumes": [volume]}}
                          ],
                          "filters": {"refuse_seconds": 0}}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let offer = first_offer(&mut stream).await;
    let disks: Vec<&Value> = offer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "disk")
        .collect();
    let with_volume = disks
        .iter()
        .find(|d| d.get("disk").is_some())
        .expect("the volume is offered");
    assert_eq!(with_volume["disk"]["persistence"]["id"], "vol1");
    assert_eq!(with_volume["reservations"][0]["role"], "db");
    assert_eq!(with_volume["scalar"]["value"], 100.0);
    let plain = disks.iter().find(|d| d.get("disk").is_none()).unwrap();
    assert_eq!(plain["scalar"]["value"], 900.0);
    let state = raw(master.addr(), "GET", "/state", &[], b"").await.json();
    assert_eq!(
        state["slaves"][0]["reserved_resources"]["db"]["disk"],
        100.0
    );
    // DESTROY the volume and UNRESERVE the disk: the plain disk is whole again.
    let mut reserved_disk = (*with_volume).clone();
    reserved_disk.as_object_mut().unwrap().remove("disk");
    let r = call(
        master.addr(),
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [
                              {"type": "DESTROY", "destroy": {"volumes": [with_volume]}},
                              {"type": "UNRESERVE", "unreserve": {"resources": [reserved_disk]}}
                          ],
                          "filters": {"refuse_seconds": 0}}}),
    )
    .await;
    assert_eq!(r.status, 202);
    let offer = first_offer(&mut stream).await;
    let disks: Vec<&Value> = offer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == "disk")
        .collect();
    assert_eq!(disks.len(), 1, "{offer}");
    assert_eq!(disks[0]["scalar"]["value"], 1000.0);
    assert!(disks[0].get("reservations").is_none());
    master.shutdown().await;
}

#[tokio::test]
async fn offers_from_different_agents_are_invalid_together() {
    let master = start_master(|_| {}).await;
    let _a1 = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let _a2 = LinkAgent::register(&master, "a2", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("two")).await;
    let sid = stream.stream_id();
    let mut offers = Vec::new();
    while offers.len() < 2 {
        let event = stream.next_of("OFFERS").await;
        offers.extend(
            event["offers"]["offers"]
                .as_array()
                .unwrap()
                .iter()
                .cloned(),
        );
    }
    let task = command_task("t", &offers[0], 0.1, 32.0);
    call(
        master.addr(),
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offers[0]["id"], offers[1]["id"]],
                          "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}]}}),
    )
    .await;
    let update = stream.next_of("UPDATE").await;
    let status = &update["update"]["status"];
    assert_eq!(status["state"], "TASK_LOST");
    assert_eq!(status["reason"], "REASON_INVALID_OFFERS");
    assert_eq!(
        status["message"],
        "Task launched with invalid offers: Aggregated offers must belong to one single agent"
    );
    master.shutdown().await;
}

#[tokio::test]
async fn launch_group_and_executor_events() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:2;mem:512", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("group")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    let executor = json!({"type": "DEFAULT", "executor_id": {"value": "ex1"},
                          "resources": cpus_mem(0.1, 32.0)});
    let task = |name: &str| {
        json!({"name": name, "task_id": {"value": name}, "agent_id": offer["agent_id"],
               "resources": cpus_mem(0.2, 32.0), "command": {"value": "sleep 1"}})
    };
    let r = call(
        master.addr(),
        &sid,
        json!({"type": "ACCEPT", "framework_id": {"value": id},
               "accept": {"offer_ids": [offer["id"]],
                          "operations": [{"type": "LAUNCH_GROUP", "launch_group": {
                              "executor": executor, "task_group": {"tasks": [task("g1"), task("g2")]}}}],
                          "filters": {"refuse_seconds": 0}}}),
    )
    .await;
    assert_eq!(r.status, 202);
    match agent.next().await {
        ToAgent::RunTaskGroup {
            executor,
            task_group,
            ..
        } => {
            assert_eq!(executor.executor_id.value, "ex1");
            assert_eq!(task_group.tasks.len(), 2);
        }
        other => panic!("unexpected {other:?}"),
    }
    let offer = first_offer(&mut stream).await;
    assert!((scalars(&offer["resources"])["cpus"] - 1.5).abs() < 1e-9);
    assert_eq!(offer["executor_ids"][0]["value"], "ex1");

    // The operator API sees the executor and the framework's allocation.
    let operator = |body: Value| {
        let addr = master.addr();
        async move {
            raw(
                addr,
                "POST",
                "/api/v1",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await
            .json()
        }
    };
    let executors = operator(json!({"type": "GET_EXECUTORS"})).await;
    assert_eq!(
        executors["get_executors"]["executors"][0]["executor_info"]["executor_id"]["value"],
        "ex1"
    );
    let frameworks = operator(json!({"type": "GET_FRAMEWORKS"})).await;
    let allocated = &frameworks["get_frameworks"]["frameworks"][0]["allocated_resources"];
    assert!(
        (scalars(allocated)["cpus"] - 0.5).abs() < 1e-9,
        "{allocated}"
    );

    // MESSAGE both ways.
    call(
        master.addr(),
        &sid,
        json!({"type": "MESSAGE", "framework_id": {"value": id},
               "message": {"agent_id": {"value": "a1"}, "executor_id": {"value": "ex1"},
                           "data": b64(b"ping")}}),
    )
    .await;
    match agent.next().await {
        ToAgent::FrameworkMessage { data, .. } => assert_eq!(&data[..], b"ping"),
        other => panic!("unexpected {other:?}"),
    }
    agent
        .master
        .send(AgentMessage {
            agent_id: AgentId { value: "a1".into() },
            message: FromAgent::ExecutorMessage {
                framework_id: FrameworkId { value: id.clone() },
                executor_id: ExecutorId {
                    value: "ex1".into(),
                },
                data: bytes::Bytes::from_static(b"pong"),
            },
        })
        .unwrap();
    let message = stream.next_of("MESSAGE").await;
    assert_eq!(message["message"]["data"], b64(b"pong"));
    assert_eq!(message["message"]["executor_id"]["value"], "ex1");

    // SHUTDOWN goes to the agent; the exit comes back as FAILURE.
    call(
        master.addr(),
        &sid,
        json!({"type": "SHUTDOWN", "framework_id": {"value": id},
               "shutdown": {"agent_id": {"value": "a1"}, "executor_id": {"value": "ex1"}}}),
    )
    .await;
    assert!(matches!(
        agent.next().await,
        ToAgent::ShutdownExecutor { .. }
    ));
    agent
        .master
        .send(AgentMessage {
            agent_id: AgentId { value: "a1".into() },
            message: FromAgent::ExecutorExited {
                framework_id: FrameworkId { value: id.clone() },
                executor_id: ExecutorId {
                    value: "ex1".into(),
                },
                status: 9,
                resources: mesos_sdk::resourcemgr::parse_resources("cpus:0.1;mem:32").unwrap(),
            },
        })
        .unwrap();
    let failure = stream.next_of("FAILURE").await;
    assert_eq!(failure["failure"]["executor_id"]["value"], "ex1");
    assert_eq!(failure["failure"]["agent_id"]["value"], "a1");
    assert_eq!(failure["failure"]["status"], 9);
    master.shutdown().await;
}

#[tokio::test]
async fn teardown_shuts_the_framework_down_on_its_agents() {
    let master = start_master(|_| {}).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("td")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    call(
        master.addr(),
        &sid,
        launch(&id, &offer, vec![command_task("t", &offer, 0.5, 64.0)], 0.0),
    )
    .await;
    assert!(matches!(agent.next().await, ToAgent::RunTask { .. }));
    call(
        master.addr(),
        &sid,
        json!({"type": "TEARDOWN", "framework_id": {"value": id}}),
    )
    .await;
    match agent.next().await {
        ToAgent::ShutdownFramework { framework_id } => assert_eq!(framework_id.value, id),
        other => panic!("unexpected {other:?}"),
    }
    let state = raw(master.addr(), "GET", "/state", &[], b"").await.json();
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"], 0.0);
    assert_eq!(
        state["completed_frameworks"][0]["completed_tasks"][0]["state"],
        "TASK_KILLED"
    );
    master.shutdown().await;
}

#[tokio::test]
async fn throughput_of_launches_and_updates() {
    // Many small tasks through ACCEPT, agent updates and acknowledgements; every outstanding
    // offer is used in each ACCEPT, as a batching framework would.
    let master = start_master(|c| c.allocation_interval = Duration::from_millis(10)).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:64;mem:65536", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("perf")).await;
    let sid = stream.stream_id();
    let total = 1000;
    let started = Instant::now();
    let mut launched = 0;
    let mut finished = 0;
    while finished < total {
        let event = stream.next_json().await;
        match event["type"].as_str().unwrap() {
            "OFFERS" if launched < total => {
                let offers = event["offers"]["offers"].as_array().unwrap().clone();
                let cpus: f64 = offers
                    .iter()
                    .map(|o| scalars(&o["resources"])["cpus"])
                    .sum();
                let fit = ((cpus + 1e-9) / 0.1).floor() as usize;
                let count = fit.min(total - launched).min(200);
                let tasks: Vec<Value> = (launched..launched + count)
                    .map(|i| command_task(&format!("t{i}"), &offers[0], 0.1, 32.0))
                    .collect();
                let body = json!({
                    "type": "ACCEPT",
                    "framework_id": {"value": id},
                    "accept": {
                        "offer_ids": offers.iter().map(|o| o["id"].clone()).collect::<Vec<_>>(),
                        "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                        "filters": {"refuse_seconds": 0}
                    }
                });
                let r = call(master.addr(), &sid, body).await;
                assert_eq!(r.status, 202);
                for _ in 0..count {
                    match agent.next().await {
                        ToAgent::RunTask { task, .. } => {
                            agent.update(&id, &task.task_id.value, TaskState::TaskFinished);
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                launched += count;
            }
            "UPDATE" => {
                assert_eq!(
                    event["update"]["status"]["state"], "TASK_FINISHED",
                    "{event}"
                );
                finished += 1;
            }
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    let rate = total as f64 / elapsed.as_secs_f64();
    println!("{total} tasks in {elapsed:?}: {rate:.0} tasks/s");
    assert!(elapsed < Duration::from_secs(30));
    master.shutdown().await;
}

#[tokio::test]
async fn gpus_are_offered_only_to_gpu_frameworks() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256;gpus:1", "");
    let (mut plain, plain_id) = subscribe(master.addr(), framework_info("cpu-only")).await;
    let offer = first_offer(&mut plain).await;
    assert!(
        !scalars(&offer["resources"]).contains_key("gpus"),
        "{offer}"
    );
    call(
        master.addr(),
        &plain.stream_id(),
        json!({"type": "TEARDOWN", "framework_id": {"value": plain_id}}),
    )
    .await;
    let info = json!({"user": "u", "name": "gpu", "capabilities": [{"type": "GPU_RESOURCES"}]});
    let (mut gpu, _) = subscribe(master.addr(), info).await;
    let offer = first_offer(&mut gpu).await;
    assert_eq!(scalars(&offer["resources"])["gpus"], 1.0);
    master.shutdown().await;
}

#[tokio::test]
async fn completed_task_history_is_capped() {
    let master = start_master(|c| c.max_completed_tasks_per_framework = 2).await;
    let mut agent = LinkAgent::register(&master, "a1", "cpus:1;mem:1024", "");
    let (mut stream, id) = subscribe(master.addr(), framework_info("cap")).await;
    let sid = stream.stream_id();
    let offer = first_offer(&mut stream).await;
    let tasks = (0..5)
        .map(|i| command_task(&format!("t{i}"), &offer, 0.1, 32.0))
        .collect();
    call(master.addr(), &sid, launch(&id, &offer, tasks, 0.0)).await;
    for _ in 0..5 {
        let ToAgent::RunTask { task, .. } = agent.next().await else {
            panic!("expected RunTask");
        };
        let uuid = agent.update(&id, &task.task_id.value, TaskState::TaskFinished);
        let update = stream.next_of("UPDATE").await;
        assert_eq!(
            update["update"]["status"]["task_id"]["value"],
            task.task_id.value
        );
        call(
            master.addr(),
            &sid,
            json!({"type": "ACKNOWLEDGE", "framework_id": {"value": id},
                   "acknowledge": {"agent_id": {"value": "a1"}, "task_id": {"value": task.task_id.value},
                                   "uuid": b64(&uuid)}}),
        )
        .await;
    }
    let state = raw(master.addr(), "GET", "/state", &[], b"").await.json();
    let framework = &state["frameworks"][0];
    assert!(framework["tasks"].as_array().unwrap().is_empty());
    let completed: Vec<&str> = framework["completed_tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(completed, ["t3", "t4"]);
    master.shutdown().await;
}

#[tokio::test]
async fn roles_suppressed_at_subscription_get_no_offers() {
    let master = start_master(|_| {}).await;
    let _agent = LinkAgent::register(&master, "a1", "cpus:1;mem:256;cpus(web):1;mem(web):64", "");
    let body = json!({"type": "SUBSCRIBE", "subscribe": {
        "framework_info": {"user": "u", "name": "n", "roles": ["web", "db"],
                           "capabilities": [{"type": "MULTI_ROLE"}]},
        "suppressed_roles": ["db"]}});
    let mut stream = open_stream(
        master.addr(),
        "/api/v1/scheduler",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .await;
    let subscribed = stream.next_json().await;
    let id = subscribed["subscribed"]["framework_id"]["value"]
        .as_str()
        .unwrap()
        .to_string();
    let offer = first_offer(&mut stream).await;
    assert_eq!(offer["allocation_info"]["role"], "web");
    // Everything went to "web"; decline it for long and nothing comes for "db".
    call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "DECLINE", "framework_id": {"value": id},
               "decline": {"offer_ids": [offer["id"]], "filters": {"refuse_seconds": 60}}}),
    )
    .await;
    stream.expect_quiet(Duration::from_millis(300)).await;
    // Reviving "db" lets the unreserved resources go to it.
    call(
        master.addr(),
        &stream.stream_id(),
        json!({"type": "REVIVE", "framework_id": {"value": id}, "revive": {"roles": ["db"]}}),
    )
    .await;
    let mut roles = std::collections::HashSet::new();
    while !roles.contains("db") {
        let offer = first_offer(&mut stream).await;
        roles.insert(
            offer["allocation_info"]["role"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    master.shutdown().await;
}

#[tokio::test]
async fn each_role_of_a_multi_role_framework_gets_a_turn() {
    let master = start_master(|_| {}).await;
    let _a1 = LinkAgent::register(&master, "a1", "cpus:1;mem:256", "");
    let info = json!({"user": "u", "name": "roles", "roles": ["a", "b"],
                      "capabilities": [{"type": "MULTI_ROLE"}]});
    let (mut stream, _) = subscribe(master.addr(), info).await;
    let first = first_offer(&mut stream).await;
    let first_role = first["allocation_info"]["role"]
        .as_str()
        .unwrap()
        .to_string();
    let _a2 = LinkAgent::register(&master, "a2", "cpus:1;mem:256", "");
    let second = first_offer(&mut stream).await;
    assert_eq!(second["agent_id"]["value"], "a2");
    assert_ne!(
        second["allocation_info"]["role"].as_str().unwrap(),
        first_role,
        "the role without an outstanding offer goes first"
    );
    master.shutdown().await;
}
