//! Scenario tests of the resource manager against a real mesos-local cluster over HTTP on
//! loopback: the placer's ACCEPT calls are what the master runs, constraints hold on real
//! agents with attributes, a reservation and persistent volume come back to the same agent for
//! the task's restart, and SUPPRESS / REVIVE from the etiquette stop and restart offers.
//!
//! The framework is driven with raw [`Client`] calls; the only place that looks at scheduler
//! events is [`Framework::next`] (kept small so a change of the event types is easy to follow).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use mesos_local::agent::{self, AgentConfig, AgentHandle};
use mesos_local::cluster::LocalCluster;
use mesos_sdk::client::{CallRequest, Client};
use mesos_sdk::codec::Format;
use mesos_sdk::resourcemgr::etiquette::{Etiquette, EtiquetteConfig};
use mesos_sdk::resourcemgr::placement::{
    Constraint, Demand, Placement, Placer, PlacerConfig, Request, ReservationSpec, VolumeSpec,
};
use mesos_sdk::resourcemgr::pool::OfferPool;
use mesos_sdk::resourcemgr::{parse_attributes, parse_resources, volume_id};
use mesos_sdk::scheduler::FrameworkInfoBuilder;
use mesos_sdk::scheduler::calls;
use mesos_sdk::v1::scheduler::{Call, Event, event};
use mesos_sdk::v1::{CommandInfo, FrameworkId, Offer, TaskId, TaskInfo, TaskState, TaskStatus};

const ROLE: &str = "web";
const WAIT: Duration = Duration::from_secs(20);

/// What the tests need of a scheduler event.
enum Ev {
    Offers(Vec<Offer>),
    Update(Box<TaskStatus>),
    Other,
}

struct Framework {
    client: Client,
    events: BoxStream<'static, Result<Box<Event>, mesos_sdk::client::Error>>,
    stream_id: Option<String>,
    id: FrameworkId,
    /// Offers that arrived while waiting for task updates (they stay outstanding at the master).
    stashed: Vec<Offer>,
}

impl Framework {
    async fn subscribe(url: &str) -> Framework {
        let client = Client::builder()
            .endpoint(url)
            .format(Format::Protobuf)
            .build()
            .unwrap();
        let info = FrameworkInfoBuilder::new("", "resourcemgr-test")
            .roles([ROLE])
            .principal("test")
            .build();
        let body = Format::Protobuf
            .encode(&calls::subscribe(info, Vec::new(), None))
            .unwrap();
        let sub = client
            .subscribe(CallRequest {
                path: "/api/v1/scheduler".into(),
                body,
                stream_id: None,
            })
            .await
            .unwrap();
        let stream_id = sub.stream_id.clone();
        let mut events = sub.into_events::<Event>();
        let mut id = None;
        while id.is_none() {
            let e = tokio::time::timeout(WAIT, events.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Some(s) = e.subscribed {
                id = Some(s.framework_id);
            }
        }
        Framework {
            client,
            events,
            stream_id,
            id: id.unwrap(),
            stashed: Vec::new(),
        }
    }

    /// The one helper that looks inside scheduler events.
    async fn next(&mut self, within: Duration) -> Option<Ev> {
        let e = tokio::time::timeout(within, self.events.next())
            .await
            .ok()??
            .ok()?;
        Some(match e.r#type() {
            event::Type::Offers => Ev::Offers(e.offers.map(|o| o.offers).unwrap_or_default()),
            event::Type::Update => match e.update {
                Some(u) => Ev::Update(Box::new(u.status)),
                None => Ev::Other,
            },
            _ => Ev::Other,
        })
    }

    async fn send(&self, mut call: Call) {
        call.framework_id = Some(self.id.clone());
        let body = Format::Protobuf.encode(&call).unwrap();
        self.client
            .call(CallRequest {
                path: "/api/v1/scheduler".into(),
                body,
                stream_id: self.stream_id.clone(),
            })
            .await
            .unwrap();
    }

    /// Offers until the pool covers `agents` agents.
    async fn offers_from(&mut self, pool: &mut OfferPool, agents: usize) {
        let deadline = Instant::now() + WAIT;
        while pool.agent_count() < agents {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "offers from {agents} agents did not come");
            if let Some(Ev::Offers(offers)) = self.next(left).await {
                pool.add_all(offers, Instant::now());
            }
        }
    }

    /// Sends the placement's calls (ACCEPTs, and one DECLINE through the etiquette).
    async fn apply(&self, placement: &Placement, etiquette: &Etiquette) {
        for call in &placement.accepts {
            self.send(call.clone()).await;
        }
        if let Some(call) = etiquette.decline(placement.decline.clone()) {
            self.send(call).await;
        }
    }

    /// Waits for each task to reach one of `states`; returns task id -> (state, agent id).
    async fn wait_tasks(
        &mut self,
        tasks: &[String],
        states: &[TaskState],
    ) -> HashMap<String, (TaskState, String)> {
        let mut seen = HashMap::new();
        let deadline = Instant::now() + WAIT;
        while tasks.iter().any(|t| !seen.contains_key(t)) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "tasks did not reach {states:?}: {seen:?}");
            let status = match self.next(left).await {
                Some(Ev::Update(status)) => status,
                Some(Ev::Offers(offers)) => {
                    self.stashed.extend(offers);
                    continue;
                }
                _ => continue,
            };
            {
                let state = status.state();
                assert!(
                    !matches!(
                        state,
                        TaskState::TaskError | TaskState::TaskLost | TaskState::TaskDropped
                    ),
                    "master refused a task: {status:?}"
                );
                if let Some(call) = calls::acknowledge(&status) {
                    self.send(call).await;
                }
                if states.contains(&state) {
                    seen.insert(
                        status.task_id.value.clone(),
                        (state, status.agent_id.map(|a| a.value).unwrap_or_default()),
                    );
                }
            }
        }
        seen
    }
}

fn task(id: &str, shell: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        command: Some(CommandInfo {
            value: Some(shell.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn request(id: &str, shell: &str) -> Request {
    Request::task(
        id,
        ROLE,
        task(id, shell),
        Demand::parse("cpus:0.5;mem:32").unwrap(),
    )
}

fn fast_cluster() -> mesos_local::cluster::LocalClusterBuilder {
    LocalCluster::builder()
        .allocation_interval(Duration::from_millis(50))
        .heartbeat_interval(Duration::from_secs(5))
}

/// Starts agents with their own attributes on a cluster started with none.
async fn agents_with(cluster: &LocalCluster, attributes: &[&str]) -> Vec<AgentHandle> {
    let mut out = Vec::new();
    for (i, attrs) in attributes.iter().enumerate() {
        let config = AgentConfig {
            hostname: format!("agent-{i}"),
            ip: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            resources: parse_resources("cpus:2;mem:512;disk:1000;ports:[31000-31010]").unwrap(),
            attributes: parse_attributes(attrs).unwrap(),
            ..Default::default()
        };
        out.push(agent::start(config, cluster.master().link()).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_hostname_spreads() {
    let cluster = fast_cluster()
        .agents(3)
        .resources("cpus:4;mem:1024;disk:1000;ports:[31000-31010]")
        .start()
        .await
        .unwrap();
    let mut fw = Framework::subscribe(&cluster.master_url()).await;
    let mut pool = OfferPool::new();
    fw.offers_from(&mut pool, 3).await;
    let unique = Constraint::parse("hostname", "UNIQUE", None).unwrap();
    let requests: Vec<Request> = (0..4)
        .map(|i| {
            request(&format!("u{i}"), "sleep 30")
                .app("spread")
                .constraint(unique.clone())
        })
        .collect();
    let mut placer = Placer::default();
    let out = placer.place(&mut pool, requests.clone(), Instant::now());
    assert_eq!(out.placed.len(), 3);
    assert_eq!(out.unplaced.len(), 1);
    assert!(
        out.unplaced[0]
            .to_string()
            .ends_with("UNIQUE hostname excluded 3"),
        "{}",
        out.unplaced[0]
    );
    fw.apply(
        &out,
        &Etiquette::new(EtiquetteConfig::default(), [ROLE.to_string()]),
    )
    .await;
    let ids: Vec<String> = out.placed.iter().map(|p| p.request_id.clone()).collect();
    let running = fw.wait_tasks(&ids, &[TaskState::TaskRunning]).await;
    let agents: HashSet<&String> = running.values().map(|(_, a)| a).collect();
    assert_eq!(agents.len(), 3, "one task per host");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_rack_balances_and_max_per_caps() {
    let cluster = fast_cluster().agents(0).start().await.unwrap();
    let agents = agents_with(&cluster, &["rack:r1", "rack:r1", "rack:r1", "rack:r2"]).await;
    let mut fw = Framework::subscribe(&cluster.master_url()).await;
    let mut pool = OfferPool::new();
    fw.offers_from(&mut pool, 4).await;
    let group_by = Constraint::parse("rack", "GROUP_BY", Some("2")).unwrap();
    let max_per = Constraint::parse("rack", "MAX_PER", Some("1")).unwrap();
    let mut requests: Vec<Request> = (0..4)
        .map(|i| {
            request(&format!("g{i}"), "sleep 30")
                .app("balanced")
                .constraint(group_by.clone())
        })
        .collect();
    requests.extend((0..3).map(|i| {
        request(&format!("m{i}"), "sleep 30")
            .app("capped")
            .constraint(max_per.clone())
    }));
    let mut placer = Placer::default();
    let out = placer.place(&mut pool, requests.clone(), Instant::now());
    fw.apply(
        &out,
        &Etiquette::new(EtiquetteConfig::default(), [ROLE.to_string()]),
    )
    .await;
    let ids: Vec<String> = out.placed.iter().map(|p| p.request_id.clone()).collect();
    let running = fw.wait_tasks(&ids, &[TaskState::TaskRunning]).await;
    let rack_of: HashMap<String, String> = out
        .placed
        .iter()
        .map(|p| {
            (
                p.agent.agent_id.value.clone(),
                p.agent.field("rack").unwrap(),
            )
        })
        .collect();
    let mut per_rack: HashMap<(char, String), usize> = HashMap::new();
    for (id, (_, agent)) in &running {
        let first = id.chars().next().unwrap();
        *per_rack.entry((first, rack_of[agent].clone())).or_insert(0) += 1;
    }
    assert_eq!(per_rack[&('g', "r1".to_string())], 2, "{per_rack:?}");
    assert_eq!(per_rack[&('g', "r2".to_string())], 2, "{per_rack:?}");
    assert_eq!(per_rack[&('m', "r1".to_string())], 1, "{per_rack:?}");
    assert_eq!(per_rack[&('m', "r2".to_string())], 1, "{per_rack:?}");
    let capped: Vec<String> = out.unplaced.iter().map(ToString::to_string).collect();
    assert_eq!(capped.len(), 1, "{capped:?}");
    assert!(
        capped[0].contains("MAX_PER rack:1 excluded 4"),
        "{capped:?}"
    );
    for a in agents {
        a.shutdown().await;
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservation_and_volume_survive_a_task_restart() {
    let cluster = fast_cluster()
        .agents(2)
        .resources("cpus:2;mem:512;disk:1000")
        .start()
        .await
        .unwrap();
    let mut fw = Framework::subscribe(&cluster.master_url()).await;
    let etiquette = Etiquette::new(
        EtiquetteConfig {
            refuse: Duration::from_millis(100),
            ..Default::default()
        },
        [ROLE.to_string()],
    );
    let mut placer = Placer::new(PlacerConfig {
        principal: Some("test".into()),
        refuse: Duration::from_millis(100),
        ..Default::default()
    });
    // The first run writes into its persistent volume; the restart fails unless it reads the
    // data back (mesos-local links the volume into each sandbox at `data`).
    let reservation = ReservationSpec {
        id: "db-0".into(),
        volume: Some(VolumeSpec {
            size_mb: 100.0,
            container_path: "data".into(),
        }),
    };
    let db = request("db-0", "echo written-by-run-1 > data/state").reserve(reservation.clone());
    let db_again =
        request("db-0", "test \"$(cat data/state)\" = written-by-run-1").reserve(reservation);
    let mut pool = OfferPool::new();
    fw.offers_from(&mut pool, 2).await;
    let first = placer.place(&mut pool, [db], Instant::now());
    assert_eq!(first.placed.len(), 1, "{:?}", first.unplaced);
    let home = first.placed[0].agent.agent_id.value.clone();
    fw.apply(&first, &etiquette).await;
    let done = fw
        .wait_tasks(
            &["db-0".into()],
            &[TaskState::TaskFinished, TaskState::TaskFailed],
        )
        .await;
    assert_eq!(
        done["db-0"].0,
        TaskState::TaskFinished,
        "the first run wrote"
    );
    placer.ledger_mut().ended("db-0");

    // The restart: offers come back, the one from `home` with the reservation and volume
    // (offers that came while the task ran count too).
    let mut pool = OfferPool::new();
    pool.add_all(std::mem::take(&mut fw.stashed), Instant::now());
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < deadline,
            "the volume was not offered again"
        );
        if let Some(Ev::Offers(offers)) = fw.next(WAIT).await {
            pool.add_all(offers, Instant::now());
        }
        let has_volume = pool.agents().any(|(_, offers)| {
            offers
                .iter()
                .flat_map(|o| &o.resources)
                .any(|r| volume_id(r) == Some("db-0"))
        });
        // Only the volume's agent matters (offers of the other one that came while the first
        // run was waited for were left outstanding).
        if has_volume {
            break;
        }
    }
    let second = placer.place(&mut pool, [db_again], Instant::now());
    assert_eq!(second.placed.len(), 1, "{:?}", second.unplaced);
    assert_eq!(second.placed[0].agent.agent_id.value, home, "same agent");
    assert_eq!(
        second.placed[0].reservation,
        Some(("db-0".to_string(), false))
    );
    assert!(
        second.tasks(&second.placed[0])[0]
            .resources
            .iter()
            .any(|r| volume_id(r) == Some("db-0"))
    );
    fw.apply(&second, &etiquette).await;
    let done = fw
        .wait_tasks(
            &["db-0".into()],
            &[TaskState::TaskFinished, TaskState::TaskFailed],
        )
        .await;
    assert_eq!(
        done["db-0"].0,
        TaskState::TaskFinished,
        "the restarted task read its volume's data"
    );
    assert_eq!(done["db-0"].1, home);
    // The data lives in the agent's work dir, where Mesos keeps persistent volumes.
    let agent = cluster
        .agents()
        .iter()
        .find(|a| a.id().value == home)
        .expect("home agent");
    let kept = agent
        .work_dir()
        .join("volumes/roles")
        .join(ROLE)
        .join("db-0/state");
    assert_eq!(
        std::fs::read_to_string(&kept).ok().as_deref(),
        Some("written-by-run-1\n"),
        "{}",
        kept.display()
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppress_stops_offers_and_revive_brings_them_back() {
    let cluster = fast_cluster().agents(1).start().await.unwrap();
    let mut fw = Framework::subscribe(&cluster.master_url()).await;
    let mut etiquette = Etiquette::new(EtiquetteConfig::default(), [ROLE.to_string()]);
    let mut pool = OfferPool::new();
    fw.offers_from(&mut pool, 1).await;
    // Nothing pending: SUPPRESS, and the offers go back with the long filter.
    for call in etiquette.set_pending(ROLE, 0, Instant::now()) {
        fw.send(call).await;
    }
    let ids = pool.offer_ids();
    pool.take(&ids).unwrap();
    if let Some(call) = etiquette.decline(ids) {
        fw.send(call).await;
    }
    // Twenty allocation intervals without an offer.
    let quiet_until = Instant::now() + Duration::from_millis(1000);
    while let Some(ev) = fw
        .next(quiet_until.saturating_duration_since(Instant::now()))
        .await
    {
        assert!(!matches!(ev, Ev::Offers(_)), "offers while suppressed");
    }
    // Work arrives: REVIVE (which also clears the 120 s filter) brings offers back.
    let calls = etiquette.set_pending(ROLE, 1, Instant::now());
    assert_eq!(calls.len(), 1);
    for call in calls {
        fw.send(call).await;
    }
    fw.offers_from(&mut pool, 1).await;
    assert!(!etiquette.is_suppressed(ROLE));
    cluster.shutdown().await;
}
