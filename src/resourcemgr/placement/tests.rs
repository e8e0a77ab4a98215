//! Tests of the placer: table-style scenarios over hand-made offers, and property tests that
//! every result respects the offers, the hard constraints, port uniqueness and groups, and that
//! every unplaced request has a reason.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::resourcemgr::{
    DiskKind, disk_kind, disk_with_source, parse_attributes, parse_resources, reservation_label,
    volume_id,
};
use crate::v1::offer::operation::Type as OpType;
use crate::v1::resource::AllocationInfo;
use crate::v1::{AgentId, ExecutorId, Offer, TaskId};

fn offer(id: &str, agent: &str, resources: &str, attributes: &str, role: &str) -> Offer {
    let allocation = AllocationInfo {
        role: Some(role.to_string()),
    };
    Offer {
        id: OfferId { value: id.into() },
        agent_id: AgentId {
            value: agent.into(),
        },
        hostname: format!("{agent}.host"),
        resources: parse_resources(resources)
            .unwrap()
            .into_iter()
            .map(|mut r| {
                r.allocation_info = Some(allocation.clone());
                r
            })
            .collect(),
        attributes: parse_attributes(attributes).unwrap(),
        allocation_info: Some(allocation),
        ..Default::default()
    }
}

fn task(id: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        ..Default::default()
    }
}

fn req(id: &str, demand: &str) -> Request {
    Request::task(id, "web", task(id), Demand::parse(demand).unwrap())
}

fn pool_of(offers: Vec<Offer>) -> OfferPool {
    let mut pool = OfferPool::new();
    for o in offers {
        pool.add(o, Instant::now()).unwrap();
    }
    pool
}

fn ops(call: &Call) -> Vec<OpType> {
    call.accept
        .as_ref()
        .unwrap()
        .operations
        .iter()
        .map(|o| o.r#type())
        .collect()
}

#[test]
fn packs_onto_few_agents_and_keeps_allocation_info() {
    let mut pool = pool_of(
        (0..4)
            .map(|i| {
                offer(
                    &format!("o{i}"),
                    &format!("a{i}"),
                    "cpus:4;mem:4096;ports:[31000-31009]",
                    "",
                    "web",
                )
            })
            .collect(),
    );
    let requests: Vec<Request> = (0..6)
        .map(|i| req(&format!("t{i}"), "cpus:1;mem:512"))
        .collect();
    let mut placer = Placer::default();
    let out = placer.place(&mut pool, requests.clone(), Instant::now());
    assert_eq!(out.placed.len(), 6);
    assert_eq!(
        out.agents_used(),
        2,
        "best fit fills an agent before the next"
    );
    assert_eq!(out.accepts.len(), 2);
    assert_eq!(out.decline.len(), 2);
    assert!(pool.is_empty(), "used and declined offers leave the pool");
    for p in &out.placed {
        for t in out.tasks(p) {
            assert_eq!(t.agent_id, p.agent.agent_id);
            assert!(!t.resources.is_empty());
            for r in &t.resources {
                assert_eq!(
                    r.allocation_info.as_ref().and_then(|a| a.role.as_deref()),
                    Some("web"),
                    "task resources carry the offer's allocation_info"
                );
            }
        }
    }
    assert_eq!(ops(&out.accepts[0]), vec![OpType::Launch]);
    let filters = out.accepts[0].accept.as_ref().unwrap().filters;
    assert_eq!(filters.unwrap().refuse_seconds, Some(120.0));
}

#[test]
fn unique_hostname_and_reasons() {
    let mut pool = pool_of(
        (0..3)
            .map(|i| {
                offer(
                    &format!("o{i}"),
                    &format!("a{i}"),
                    "cpus:8;mem:8192",
                    "",
                    "web",
                )
            })
            .collect(),
    );
    let unique = Constraint::parse("hostname", "UNIQUE", None).unwrap();
    let mut requests: Vec<Request> = (0..5)
        .map(|i| {
            req(&format!("t{i}"), "cpus:1;mem:64")
                .app("app")
                .constraint(unique.clone())
        })
        .collect();
    requests.push(req("big", "cpus:1;mem:100000"));
    let mut placer = Placer::default();
    let out = placer.place(&mut pool, requests.clone(), Instant::now());
    assert_eq!(out.placed.len(), 3);
    assert_eq!(out.agents_used(), 3);
    assert_eq!(out.unplaced.len(), 3);
    let texts: Vec<String> = out.unplaced.iter().map(ToString::to_string).collect();
    assert!(
        texts.contains(&"big: mem short on 3 agents".to_string()),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.ends_with(": UNIQUE hostname excluded 3")),
        "{texts:?}"
    );
    // The next round counts the running ones.
    let mut pool = pool_of(vec![offer("o9", "a0", "cpus:8;mem:8192", "", "web")]);
    let out = placer.place(&mut pool, requests[3..5].to_vec(), Instant::now());
    assert!(out.placed.is_empty());
    placer.ledger_mut().ended("t0");
    let mut pool = pool_of(vec![offer("o10", "a0", "cpus:8;mem:8192", "", "web")]);
    let out = placer.place(&mut pool, requests[3..4].to_vec(), Instant::now());
    assert_eq!(out.placed.len(), 1);
}

#[test]
fn role_and_gpu_rules() {
    let mut pool = pool_of(vec![
        offer("o1", "gpu", "cpus:8;mem:8192;gpus:2", "", "web"),
        offer("o2", "db", "cpus:8;mem:8192", "", "db"),
    ]);
    let out = Placer::default().place(
        &mut pool,
        [
            req("plain", "cpus:1;mem:1"),
            req("ml", "cpus:1;mem:1;gpus:1"),
        ],
        Instant::now(),
    );
    assert_eq!(out.placed.len(), 1);
    assert_eq!(out.placed[0].request_id, "ml");
    assert_eq!(out.unplaced[0].request_id, "plain");
    assert_eq!(out.unplaced[0].excluded_by(&FailureKind::GpuAgent), 1);
    assert_eq!(out.unplaced[0].excluded_by(&FailureKind::Role), 1);
    let gpus: f64 = out.tasks(&out.placed[0])[0]
        .resources
        .iter()
        .filter(|r| r.name == "gpus")
        .map(|r| r.scalar.as_ref().unwrap().value)
        .sum();
    assert_eq!(gpus, 1.0);
}

#[test]
fn reservation_volume_lifecycle() {
    let mut placer = Placer::new(PlacerConfig {
        principal: Some("me".into()),
        ..Default::default()
    });
    let spec = ReservationSpec {
        id: "db-0".into(),
        volume: Some(VolumeSpec {
            size_mb: 100.0,
            container_path: "data".into(),
        }),
    };
    let request = req("db-0", "cpus:1;mem:128").reserve(spec);
    let mut pool = pool_of(vec![offer(
        "o1",
        "a1",
        "cpus:4;mem:1024;disk:1000",
        "",
        "web",
    )]);
    let out = placer.place(&mut pool, [request.clone()], Instant::now());
    assert_eq!(out.placed.len(), 1, "{:?}", out.unplaced);
    assert_eq!(
        ops(&out.accepts[0]),
        vec![OpType::Reserve, OpType::Create, OpType::Launch]
    );
    let accept = out.accepts[0].accept.as_ref().unwrap();
    let reserved = &accept.operations[0].reserve.as_ref().unwrap().resources;
    assert!(
        reserved
            .iter()
            .all(|r| reservation_label(r, RESERVATION_LABEL) == Some("db-0")
                && r.allocation_info.is_some())
    );
    let volume = &accept.operations[1].create.as_ref().unwrap().volumes[0];
    assert_eq!(volume_id(volume), Some("db-0"));
    let task_resources = &out.tasks(&out.placed[0])[0].resources;
    assert!(task_resources.iter().any(|r| volume_id(r) == Some("db-0")));
    assert_eq!(placer.ledger().reservation_agent("db-0"), Some("a1"));

    // The task ended; the agent offers the reservation and volume back (as the master would).
    placer.ledger_mut().ended("db-0");
    let mut back = offer("o2", "a1", "cpus:3;mem:896;disk:900", "", "web");
    back.resources
        .extend(reserved.iter().filter(|r| r.name != "disk").cloned());
    back.resources.push(volume.clone());
    let mut other = offer("o3", "a2", "cpus:4;mem:1024;disk:1000", "", "web");
    other.hostname = "a2.host".into();
    let mut pool = pool_of(vec![other, back]);
    let out = placer.place(&mut pool, [request.clone()], Instant::now());
    assert_eq!(out.placed.len(), 1);
    assert_eq!(
        out.placed[0].agent.agent_id.value, "a1",
        "lands on its reservation"
    );
    assert_eq!(ops(&out.accepts[0]), vec![OpType::Launch]);
    let rs = &out.tasks(&out.placed[0])[0].resources;
    assert!(rs.iter().any(|r| volume_id(r) == Some("db-0")));
    assert!(
        rs.iter()
            .filter(|r| r.name == "cpus")
            .all(|r| reservation_label(r, RESERVATION_LABEL) == Some("db-0"))
    );

    // Removed for good: DESTROY then UNRESERVE.
    let mut back = offer("o4", "a1", "cpus:3", "", "web");
    back.resources.extend(reserved.iter().cloned());
    back.resources.push(volume.clone());
    let mut pool = pool_of(vec![back]);
    let calls = placer.reclaim(&mut pool, |id| id == "db-0");
    assert_eq!(calls.len(), 1);
    assert_eq!(ops(&calls[0]), vec![OpType::Destroy, OpType::Unreserve]);
    assert!(pool.is_empty());
    assert_eq!(placer.ledger().reservation_agent("db-0"), None);
}

#[test]
fn waits_for_a_bound_reservation() {
    let mut placer = Placer::default();
    placer.ledger_mut().reserved("db-1", "a1");
    let request = req("db-1", "cpus:1").reserve(ReservationSpec {
        id: "db-1".into(),
        volume: None,
    });
    let mut pool = pool_of(vec![offer("o1", "a2", "cpus:4", "", "web")]);
    let out = placer.place(&mut pool, [request], Instant::now());
    assert!(out.placed.is_empty());
    assert_eq!(out.unplaced[0].excluded_by(&FailureKind::Reservation), 1);
}

#[test]
fn delay_scheduling_then_relax() {
    let mut placer = Placer::new(PlacerConfig {
        locality_wait: Duration::from_secs(5),
        ..Default::default()
    });
    let t0 = Instant::now();
    let request = req("t", "cpus:1").prefer("rack", "r2");
    let mut pool = pool_of(vec![offer("o1", "a1", "cpus:4", "rack:r1", "web")]);
    let out = placer.place(&mut pool, [request.clone()], t0);
    assert!(out.placed.is_empty());
    assert!(out.unplaced[0].waiting);
    assert!(
        out.decline.is_empty(),
        "offers are held while a request waits"
    );
    assert_eq!(pool.len(), 1);
    let out = placer.place(&mut pool, [request.clone()], t0 + Duration::from_secs(6));
    assert_eq!(out.placed.len(), 1, "relaxed after the wait");

    // Preferred agent present: taken at once even if it packs worse.
    let mut pool = pool_of(vec![
        offer("o2", "a1", "cpus:1", "rack:r1", "web"),
        offer("o3", "a2", "cpus:8", "rack:r2", "web"),
    ]);
    let out = placer.place(&mut pool, [req("u", "cpus:1").prefer("rack", "r2")], t0);
    assert_eq!(out.placed[0].agent.agent_id.value, "a2");

    // Stickiness: back to the last agent.
    let mut pool = pool_of(vec![
        offer("o4", "a1", "cpus:1", "", "web"),
        offer("o5", "a2", "cpus:8", "", "web"),
    ]);
    placer.ledger_mut().ended("u");
    let out = placer.place(&mut pool, [req("u", "cpus:1").sticky()], t0);
    assert_eq!(out.placed[0].agent.agent_id.value, "a2");
}

#[test]
fn task_group_lands_on_one_agent_with_launch_group() {
    let mut pool = pool_of(vec![
        offer("o1", "a1", "cpus:1;mem:100;ports:[1-2]", "", "web"),
        offer("o2", "a2", "cpus:4;mem:400;ports:[10-20]", "", "web"),
    ]);
    let mut request = req("pod", "cpus:1;mem:100");
    request.tasks[0].demand = request.tasks[0].demand.clone().with_named_port("http");
    request.tasks.push(TaskSpec {
        task: task("pod-b"),
        demand: Demand::parse("cpus:1;mem:100").unwrap().with_ports(2),
    });
    request.executor = Some((
        ExecutorInfo {
            executor_id: ExecutorId { value: "e".into() },
            ..Default::default()
        },
        Demand::parse("cpus:0.1;mem:32").unwrap(),
    ));
    let out = Placer::default().place(&mut pool, [request], Instant::now());
    assert_eq!(out.placed.len(), 1, "{:?}", out.unplaced);
    let p = &out.placed[0];
    assert_eq!(p.agent.agent_id.value, "a2");
    assert_eq!(ops(&out.accepts[0]), vec![OpType::LaunchGroup]);
    assert_eq!(p.ports[0], vec![(Some("http".to_string()), 10)]);
    assert_eq!(p.ports[1], vec![(None, 11), (None, 12)]);
    assert!(!out.executor(p).unwrap().resources.is_empty());
    assert_eq!(out.tasks(p).len(), 2);
}

#[test]
fn invalid_requests_and_empty_pool() {
    let mut bad = req("bad", "cpus:1");
    bad.tasks[0].demand.scalars.push(("mem".into(), f64::NAN));
    let mut pool = OfferPool::new();
    let out = Placer::default().place(&mut pool, [bad, req("ok", "cpus:1")], Instant::now());
    let texts: Vec<String> = out.unplaced.iter().map(ToString::to_string).collect();
    assert_eq!(
        texts,
        vec![
            "bad: invalid request: resource 'mem': scalar is not a finite number".to_string(),
            "ok: no offers".to_string()
        ]
    );
}

#[test]
fn spread_and_scored_fitness() {
    #[derive(Debug)]
    struct MostMem;
    impl Fitness for MostMem {
        fn score(&self, _: &[i64], free: &[i64], _: &[i64]) -> f64 {
            free[1] as f64
        }
    }
    let offers = || {
        pool_of(vec![
            offer("o1", "a1", "cpus:4;mem:100", "", "web"),
            offer("o2", "a2", "cpus:8;mem:50", "", "web"),
        ])
    };
    let requests = [req("x", "cpus:1"), req("y", "cpus:1")];
    let out = Placer::default().with_fitness(Spread).place(
        &mut offers(),
        requests.clone(),
        Instant::now(),
    );
    assert_eq!(out.agents_used(), 1, "both go to the agent with most cpus");
    assert_eq!(out.placed[0].agent.agent_id.value, "a2");
    let out = Placer::default().with_fitness(MostMem).place(
        &mut offers(),
        requests.clone(),
        Instant::now(),
    );
    assert_eq!(out.placed[0].agent.agent_id.value, "a1");
}

// ------------------------------------------------------------------ properties

fn agents() -> impl Strategy<Value = Vec<(u32, u32, u32, u32)>> {
    // (cpus, mem/100, rack, ports)
    proptest::collection::vec((1u32..9, 1u32..40, 0u32..3, 0u32..6), 1..12)
}

fn requests() -> impl Strategy<Value = Vec<(u32, u32, u32, u32, bool)>> {
    // (cpus tenths, mem/10, ports, constraint kind, group of two)
    proptest::collection::vec(
        (1u32..40, 1u32..200, 0u32..3, 0u32..5, any::<bool>()),
        0..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn placements_respect_offers_constraints_ports_and_groups(
        agents in agents(),
        reqs in requests(),
    ) {
        let mut offers = Vec::new();
        for (i, (cpus, mem, rack, ports)) in agents.iter().enumerate() {
            offers.push(offer(
                &format!("o{i}"),
                &format!("a{i}"),
                &format!("cpus:{cpus};mem:{};ports:[100-{}]", mem * 100, 100 + ports),
                &format!("rack:r{rack}"),
                "web",
            ));
        }
        let mut pool = pool_of(offers.clone());
        let mut requests = Vec::new();
        for (i, (cpus, mem, ports, kind, group)) in reqs.iter().enumerate() {
            let demand = Demand::parse(&format!("cpus:{};mem:{}", *cpus as f64 / 10.0, mem * 10))
                .unwrap()
                .with_ports(*ports as usize);
            let mut r = Request::task(&format!("r{i}"), "web", task(&format!("r{i}")), demand.clone());
            r = r.app(&format!("app{}", i % 3));
            r = match kind {
                0 => r.constraint(Constraint::parse("hostname", "UNIQUE", None).unwrap()),
                1 => r.constraint(Constraint::parse("rack", "MAX_PER", Some("2")).unwrap()),
                2 => r.constraint(Constraint::parse("rack", "LIKE", Some("r[01]")).unwrap()),
                3 => r.constraint(Constraint::parse("rack", "GROUP_BY", Some("3")).unwrap()),
                _ => r,
            };
            if *group {
                r.tasks.push(TaskSpec { task: task(&format!("r{i}-b")), demand });
            }
            requests.push(r);
        }
        let out = Placer::default().place(&mut pool, requests.clone(), Instant::now());
        prop_assert_eq!(out.placed.len() + out.unplaced.len(), requests.len());
        for u in &out.unplaced {
            prop_assert!(!u.reasons.is_empty(), "{} unplaced without a reason", u.request_id);
        }
        // No placement exceeds its offers.
        let by_id: HashMap<String, &Offer> = offers.iter().map(|o| (o.id.value.clone(), o)).collect();
        for call in &out.accepts {
            let accept = call.accept.as_ref().unwrap();
            let mut offered = Resources::new();
            for id in &accept.offer_ids {
                offered.add_all(&by_id[&id.value].resources);
            }
            let mut used = Resources::new();
            for op in &accept.operations {
                for t in op.launch.iter().flat_map(|l| &l.task_infos)
                    .chain(op.launch_group.iter().flat_map(|g| &g.task_group.tasks))
                {
                    used.add_all(&t.resources);
                }
            }
            prop_assert!(offered.contains(used.as_slice()), "{} not in {}", used, offered);
        }
        // Ports unique per agent; group members on one agent (one TaskInfo agent id).
        let mut ports: HashMap<String, HashSet<u64>> = HashMap::new();
        for p in &out.placed {
            let tasks = out.tasks(p);
            prop_assert_eq!(tasks.len(), p.task_ids.len());
            for t in tasks {
                prop_assert_eq!(&t.agent_id, &p.agent.agent_id);
            }
            for n in p.ports.iter().flatten().map(|(_, n)| *n) {
                prop_assert!(ports.entry(p.agent.agent_id.value.clone()).or_default().insert(n));
            }
        }
        // Hard constraints over the result.
        let mut host_count: HashMap<(String, String), u32> = HashMap::new();
        let mut rack_count: HashMap<(String, String), u32> = HashMap::new();
        for p in &out.placed {
            let r = requests.iter().find(|r| r.id == p.request_id).unwrap();
            let rack = p.agent.field("rack").unwrap();
            for c in &r.constraints {
                match c {
                    Constraint::Unique(_) => {
                        let n = host_count.entry((r.app.clone(), p.agent.hostname.clone())).or_default();
                        *n += 1;
                        prop_assert!(*n <= 1, "UNIQUE broken");
                    }
                    Constraint::MaxPer(..) => {
                        let n = rack_count.entry((r.app.clone(), rack.clone())).or_default();
                        *n += 1;
                        prop_assert!(*n <= 2, "MAX_PER broken");
                    }
                    Constraint::Like(..) => prop_assert!(rack == "r0" || rack == "r1"),
                    _ => {}
                }
            }
        }
    }
}

#[test]
#[allow(deprecated)]
fn legacy_offers_and_demand_errors() {
    // A framework without MULTI_ROLE: no allocation_info, the legacy `role` field.
    let mut legacy = offer("o1", "a1", "cpus:2;mem:64", "", "web");
    legacy.allocation_info = None;
    for r in &mut legacy.resources {
        r.allocation_info = None;
        r.role = Some("*".into());
    }
    let mut pool = pool_of(vec![legacy]);
    let out = Placer::default().place(&mut pool, [req("t", "cpus:1;mem:32")], Instant::now());
    assert_eq!(out.placed.len(), 1, "{:?}", out.unplaced);
    let rs = &out.tasks(&out.placed[0])[0].resources;
    assert!(
        rs.iter()
            .all(|r| r.role.as_deref() == Some("*") && r.allocation_info.is_none())
    );
    assert_eq!(
        out.offer_ids(&out.placed[0]),
        &[OfferId { value: "o1".into() }]
    );

    assert!(matches!(
        Demand::parse("cpus"),
        Err(ResourceError::Parse(_))
    ));
    assert!(matches!(
        Demand::parse("gpus:0.5"),
        Err(ResourceError::FractionalGpus { .. })
    ));
    assert!(matches!(
        Demand::parse("ports:[1-2]"),
        Err(ResourceError::BadType { .. })
    ));
}

// ------------------------------------- revocable, PATH / MOUNT disks, shared volumes

/// `offer(...)` plus extra resources (revocable, disks with a source, volumes), all with the
/// offer's allocation role.
fn offer_plus(id: &str, agent: &str, resources: &str, extra: Vec<Resource>) -> Offer {
    let mut o = offer(id, agent, resources, "", "web");
    for mut r in extra {
        r.allocation_info = o.allocation_info.clone();
        o.resources.push(r);
    }
    o
}

fn shared_volume(id: &str, mb: f64) -> Resource {
    let disk = push_reservation(
        &crate::resourcemgr::scalar("disk", mb),
        dynamic_reservation("web", None, &[]),
    )
    .unwrap();
    crate::resourcemgr::shared(&persistent_volume(&disk, id, None, "shared"))
}

fn revocable_cpus(n: f64) -> Resource {
    crate::resourcemgr::revocable(&crate::resourcemgr::scalar("cpus", n))
}

#[test]
fn revocable_resources_only_for_requests_that_opt_in() {
    let cases: &[(&str, bool, bool, f64)] = &[
        // (demand, opts in, placed, revocable cpus in the task)
        ("cpus:1;mem:32", false, true, 0.0),
        ("cpus:3;mem:32", false, false, 0.0),
        ("cpus:3;mem:32", true, true, 3.0),
        ("cpus:5;mem:32", true, true, 4.0),
        ("cpus:7;mem:32", true, false, 0.0),
    ];
    for (demand, opt_in, placed, revocable) in cases {
        let mut pool = pool_of(vec![offer_plus(
            "o1",
            "a1",
            "cpus:2;mem:1024",
            vec![revocable_cpus(4.0)],
        )]);
        let mut r = req("t", demand);
        if *opt_in {
            r = r.revocable();
        }
        let out = Placer::default().place(&mut pool, [r], Instant::now());
        assert_eq!(
            out.placed.len() == 1,
            *placed,
            "{demand} {opt_in}: {:?}",
            out.unplaced
        );
        if !*placed {
            assert_eq!(out.pending.len(), 1, "given back");
            assert!(
                out.unplaced[0].to_string().contains("cpus short"),
                "{}",
                out.unplaced[0]
            );
            continue;
        }
        let rs = &out.tasks(&out.placed[0])[0].resources;
        let got: f64 = rs
            .iter()
            .filter(|r| r.name == "cpus" && r.revocable.is_some())
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum();
        assert_eq!(got, *revocable, "{demand}: {rs:?}");
        let all: f64 = rs
            .iter()
            .filter(|r| r.name == "cpus")
            .filter_map(|r| r.scalar.as_ref().map(|s| s.value))
            .sum();
        assert_eq!(all, Demand::parse(demand).unwrap().scalar("cpus"));
    }
}

#[test]
fn mount_disks_are_taken_whole_and_path_disks_are_cut() {
    let mut pool = pool_of(vec![offer_plus(
        "o1",
        "a1",
        "cpus:8;mem:4096;disk:100",
        vec![
            disk_with_source(1000.0, "/mnt/big", true),
            disk_with_source(500.0, "/mnt/small", true),
            disk_with_source(1000.0, "/data", false),
        ],
    )]);
    let disk = |id: &str, mb: u32, source: DiskSource| {
        Request::task(
            id,
            "web",
            task(id),
            Demand::parse(&format!("cpus:1;mem:32;disk:{mb}"))
                .unwrap()
                .with_disk_source(source),
        )
    };
    let requests = vec![
        disk("m400", 400, DiskSource::Mount),
        disk("m600", 600, DiskSource::Mount),
        disk("m100", 100, DiskSource::Mount),
        disk("p300", 300, DiskSource::Path),
        disk("p600", 600, DiskSource::Path),
        disk("p200", 200, DiskSource::Path),
        disk("root", 100, DiskSource::Root),
    ];
    let out = Placer::default().place(&mut pool, requests, Instant::now());
    let disk_of = |id: &str| -> Vec<(DiskKind, f64)> {
        let p = out.placed.iter().find(|p| p.request_id == id).unwrap();
        out.tasks(p)[0]
            .resources
            .iter()
            .filter(|r| r.name == "disk")
            .map(|r| (disk_kind(r), r.scalar.as_ref().unwrap().value))
            .collect()
    };
    // The smallest MOUNT disk that holds it, whole; the next takes the big one.
    assert_eq!(
        disk_of("m400"),
        vec![(DiskKind::Mount("/mnt/small".into()), 500.0)]
    );
    assert_eq!(
        disk_of("m600"),
        vec![(DiskKind::Mount("/mnt/big".into()), 1000.0)]
    );
    // PATH disk: cut, 300 + 600 out of 1000; 200 more does not fit.
    assert_eq!(
        disk_of("p300"),
        vec![(DiskKind::Path("/data".into()), 300.0)]
    );
    assert_eq!(
        disk_of("p600"),
        vec![(DiskKind::Path("/data".into()), 600.0)]
    );
    assert_eq!(disk_of("root"), vec![(DiskKind::Root, 100.0)]);
    let reasons: Vec<String> = out.unplaced.iter().map(ToString::to_string).collect();
    assert_eq!(
        reasons,
        vec![
            "m100: MOUNT disk short on 1 agent".to_string(),
            "p200: PATH disk short on 1 agent".to_string()
        ]
    );
    // A request for a MOUNT disk in a group is refused as invalid.
    let mut group = disk("g", 10, DiskSource::Mount);
    group.tasks.push(group.tasks[0].clone());
    let out = Placer::default().place(&mut pool_of(vec![]), [group], Instant::now());
    assert!(
        out.unplaced[0].to_string().contains("invalid request"),
        "{}",
        out.unplaced[0]
    );
}

#[test]
fn a_shared_volume_serves_several_tasks() {
    let mut pool = pool_of(vec![
        offer_plus("o1", "a1", "cpus:8;mem:4096", vec![]),
        offer_plus(
            "o2",
            "a2",
            "cpus:8;mem:4096",
            vec![shared_volume("media", 100.0)],
        ),
    ]);
    let requests: Vec<Request> = (0..3)
        .map(|i| req(&format!("r{i}"), "cpus:1;mem:32").shared_volume("media"))
        .chain([req("other", "cpus:1;mem:32").shared_volume("nope")])
        .collect();
    let out = Placer::default().place(&mut pool, requests, Instant::now());
    assert_eq!(out.placed.len(), 3, "{:?}", out.unplaced);
    for p in &out.placed {
        assert_eq!(p.agent.agent_id.value, "a2");
        let rs = &out.tasks(p)[0].resources;
        assert!(
            rs.iter()
                .any(|r| volume_id(r) == Some("media") && r.shared.is_some()),
            "{rs:?}"
        );
    }
    assert_eq!(
        out.unplaced[0].to_string(),
        "other: no shared volume nope on 2 agents"
    );
    assert_eq!(out.pending.len(), 1);
    assert_eq!(out.pending[0].id, "other");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Revocable resources go only to requests that opt in; MOUNT disks go whole to one task;
    /// no placement takes more than its offers (shared volumes aside).
    #[test]
    fn revocable_and_disk_sources_are_respected(
        agents in proptest::collection::vec((1u32..6, 0u32..6, 0u32..3), 1..6),
        reqs in proptest::collection::vec((1u32..30, any::<bool>(), 0u32..3, 1u32..8), 0..24),
    ) {
        let offers: Vec<Offer> = agents
            .iter()
            .enumerate()
            .map(|(i, (cpus, revocable, mounts))| {
                let mut extra = Vec::new();
                if *revocable > 0 {
                    extra.push(revocable_cpus(f64::from(*revocable)));
                }
                for m in 0..*mounts {
                    extra.push(disk_with_source(f64::from(100 * (m + 1)), &format!("/m{m}"), true));
                }
                extra.push(disk_with_source(500.0, "/p", false));
                offer_plus(&format!("o{i}"), &format!("a{i}"), &format!("cpus:{cpus};mem:4096"), extra)
            })
            .collect();
        let mut pool = pool_of(offers.clone());
        let requests: Vec<Request> = reqs
            .iter()
            .enumerate()
            .map(|(i, (cpus, opt_in, source, disk))| {
                let source = [DiskSource::Root, DiskSource::Path, DiskSource::Mount][*source as usize];
                let disk = if source == DiskSource::Root { 0 } else { disk * 50 };
                let demand = Demand::parse(&format!("cpus:{};mem:16;disk:{disk}", f64::from(*cpus) / 10.0))
                    .unwrap()
                    .with_disk_source(source);
                let r = Request::task(&format!("r{i}"), "web", task(&format!("r{i}")), demand);
                if *opt_in { r.revocable() } else { r }
            })
            .collect();
        let out = Placer::default().place(&mut pool, requests.clone(), Instant::now());
        prop_assert_eq!(out.placed.len() + out.unplaced.len(), requests.len());
        prop_assert_eq!(out.pending.len(), out.unplaced.len());
        let by_id: HashMap<String, &Offer> = offers.iter().map(|o| (o.id.value.clone(), o)).collect();
        let mut mounts_used: HashSet<(String, String)> = HashSet::new();
        for p in &out.placed {
            let r = requests.iter().find(|r| r.id == p.request_id).unwrap();
            for t in out.tasks(p) {
                for res in &t.resources {
                    prop_assert!(r.revocable || res.revocable.is_none(), "{} got revocable", r.id);
                    if let DiskKind::Mount(root) = disk_kind(res) {
                        prop_assert!(mounts_used.insert((p.agent.agent_id.value.clone(), root.clone())), "MOUNT disk shared");
                        let whole = f64::from(100 * (root[2..].parse::<u32>().unwrap() + 1));
                        prop_assert_eq!(res.scalar.as_ref().unwrap().value, whole);
                    }
                }
            }
        }
        for call in &out.accepts {
            let accept = call.accept.as_ref().unwrap();
            let mut offered = Resources::new();
            for id in &accept.offer_ids {
                offered.add_all(&by_id[&id.value].resources);
            }
            let mut used = Resources::new();
            for op in &accept.operations {
                for t in op.launch.iter().flat_map(|l| &l.task_infos) {
                    used.add_all(&t.resources);
                }
            }
            prop_assert!(offered.contains(used.as_slice()), "{} not in {}", used, offered);
        }
    }
}
