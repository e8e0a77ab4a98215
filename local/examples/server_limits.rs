//! Figures behind the HTTP server limits of `mesos_local::server` (no assertions; run with
//! `cargo run --release -p mesos-local --example server_limits`):
//!
//! 1. The size of a large legitimate call: an ACCEPT launching 1,000 command tasks with
//!    resources, labels and environment, in JSON and protobuf, against the default body limit.
//! 2. The master's resident memory (VmRSS) after a flood of idle connections (each sending half
//!    a request head, so that hyper allocates its read buffer), measured in a fresh child process
//!    per configuration: the old settings (no connection cap, hyper's default ~400 KiB read buffer
//!    cap) and the defaults, as a ratio to the old settings measured in the same run.
//! 3. The peak memory of decoding the largest protobuf SUBSCRIBE the default limit lets through,
//!    made of empty `roles` (the 60 MB body peaked at 2.5 GB).

use std::time::Duration;

use mesos_local::master::{Master, MasterConfig};
use mesos_local::server::HttpLimits;
use mesos_sdk::codec::Format;
use mesos_sdk::v1::scheduler::{Call, call};
use mesos_sdk::v1::{
    AgentId, CommandInfo, Environment, FrameworkId, FrameworkInfo, Label, Labels, OfferId,
    Resource, TaskId, TaskInfo, environment, offer, value,
};
use prost::Message;
use tokio::io::AsyncWriteExt;

const IDLE: usize = 8000;

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

fn large_accept() -> Call {
    let tasks: Vec<TaskInfo> = (0..1000)
        .map(|i| TaskInfo {
            name: format!("worker-{i}"),
            task_id: TaskId {
                value: format!("worker-{i}-{}", uuid::Uuid::new_v4()),
            },
            agent_id: AgentId {
                value: format!("{}-S0", uuid::Uuid::new_v4()),
            },
            resources: vec![
                scalar("cpus", 0.1),
                scalar("mem", 32.0),
                scalar("disk", 10.0),
            ],
            command: Some(CommandInfo {
                value: Some("./worker --config config.json --verbose".into()),
                environment: Some(Environment {
                    variables: (0..5)
                        .map(|v| environment::Variable {
                            name: format!("VARIABLE_{v}"),
                            value: Some(format!("value-{v}-{i}")),
                            ..Default::default()
                        })
                        .collect(),
                }),
                ..Default::default()
            }),
            labels: Some(Labels {
                labels: (0..5)
                    .map(|l| Label {
                        key: format!("label-{l}"),
                        value: Some(format!("value-{l}")),
                    })
                    .collect(),
            }),
            ..Default::default()
        })
        .collect();
    Call {
        framework_id: Some(FrameworkId {
            value: uuid::Uuid::new_v4().to_string(),
        }),
        r#type: Some(call::Type::Accept as i32),
        accept: Some(call::Accept {
            offer_ids: vec![OfferId {
                value: uuid::Uuid::new_v4().to_string(),
            }],
            operations: vec![offer::Operation {
                r#type: Some(offer::operation::Type::Launch as i32),
                launch: Some(offer::operation::Launch { task_infos: tasks }),
                ..Default::default()
            }],
            filters: None,
        }),
        ..Default::default()
    }
}

/// `(VmRSS, VmHWM)` of this process in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Child mode: one master with `limits`, a flood of idle connections, RSS after they closed.
async fn flood(limits: HttpLimits) -> f64 {
    let master = Master::start(MasterConfig {
        http: limits,
        ..MasterConfig::default()
    })
    .await
    .expect("master");
    let addr = master.addr();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(mut stream) => {
                let _ = stream
                    .write_all(b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\n")
                    .await;
                idle.push(stream);
            }
            Err(err) => {
                eprintln!("connect: {err}");
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(idle);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, _) = memory();
    master.shutdown().await;
    rss
}

fn run_child(mode: &str) -> f64 {
    let output = std::process::Command::new(std::env::current_exe().expect("example binary"))
        .arg(mode)
        .output()
        .expect("child runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("rss_mib="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    if soft < hard {
        let _ =
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard);
    }
    match std::env::args().nth(1).as_deref() {
        Some("old") => {
            let limits = HttpLimits {
                max_connections: 1_000_000,
                max_buf_size: 400 * 1024,
                ..HttpLimits::default()
            };
            println!("rss_mib={:.1}", flood(limits).await);
            return;
        }
        Some("new") => {
            println!("rss_mib={:.1}", flood(HttpLimits::default()).await);
            return;
        }
        _ => {}
    }
    let limit = HttpLimits::default().max_call_body;
    let accept = large_accept();
    let json = Format::Json.encode(&accept).expect("json").len();
    let protobuf = accept.encoded_len();
    println!(
        "ACCEPT of 1,000 tasks: {:.2} MB JSON, {:.2} MB protobuf; default body limit {:.2} MB ({:.1}x the JSON)",
        json as f64 / 1e6,
        protobuf as f64 / 1e6,
        limit as f64 / 1e6,
        limit as f64 / json as f64
    );

    let old = run_child("old");
    let new = run_child("new");
    println!(
        "RSS after {IDLE} idle connections closed: old settings {old:.1} MiB, defaults {new:.1} MiB (ratio {:.2})",
        new / old
    );

    // The largest protobuf SUBSCRIBE of empty roles under the default limit.
    let roles = limit / 2 - 64;
    let subscribe = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: FrameworkInfo {
                user: "u".into(),
                name: "n".into(),
                roles: vec![String::new(); roles],
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let body = subscribe.encode_to_vec();
    drop(subscribe);
    let (before, _) = memory();
    let decoded = Format::Protobuf.decode_checked::<Call>(&body);
    let (_, peak) = memory();
    println!(
        "protobuf SUBSCRIBE of {roles} empty roles ({:.2} MB): decoded {}, peak {peak:.0} MiB (RSS before {before:.0} MiB)",
        body.len() as f64 / 1e6,
        decoded.is_ok()
    );
}
