//! Subscribes a framework to a Mesos master, prints every event, declines every offer and
//! acknowledges status updates.
//!
//! ```text
//! cargo run --example subscribe -- --master http://127.0.0.1:5050 [--master http://other:5050]
//!     [--json] [--principal P --secret S] [--name NAME] [--user USER] [--role ROLE]
//! ```
//!
//! Ctrl-C stops the scheduler without tearing the framework down.

use std::time::Duration;

use futures::StreamExt;
use mesos_sdk::client::Client;
use mesos_sdk::codec::Format;
use mesos_sdk::resourcemgr::OfferResources;
use mesos_sdk::scheduler::{AckMode, FrameworkInfoBuilder, Scheduler, SchedulerEvent};

#[derive(Debug, Default)]
struct Options {
    masters: Vec<String>,
    json: bool,
    principal: Option<String>,
    secret: Option<String>,
    name: Option<String>,
    user: Option<String>,
    roles: Vec<String>,
}

const USAGE: &str = "usage: subscribe --master http://host:5050 [--master ...] [--json] \
                     [--principal P --secret S] [--name NAME] [--user USER] [--role ROLE]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--master" => options.masters.push(value("--master")?),
            "--json" => options.json = true,
            "--principal" => options.principal = Some(value("--principal")?),
            "--secret" => options.secret = Some(value("--secret")?),
            "--name" => options.name = Some(value("--name")?),
            "--user" => options.user = Some(value("--user")?),
            "--role" => options.roles.push(value("--role")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    if options.masters.is_empty() {
        return Err(format!("--master is required\n{USAGE}"));
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };

    let mut client = Client::builder().format(if options.json {
        Format::Json
    } else {
        Format::Protobuf
    });
    for master in &options.masters {
        client = client.endpoint(master);
    }
    if let Some(principal) = &options.principal {
        client = client.basic_auth(principal, options.secret.clone().unwrap_or_default());
    }
    let client = client.build()?;

    let user = options
        .user
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let mut framework = FrameworkInfoBuilder::new(
        user,
        options
            .name
            .clone()
            .unwrap_or_else(|| "mesos-sdk subscribe example".into()),
    )
    // An example should not leave tasks behind for a week.
    .failover_timeout(Duration::from_secs(60));
    if !options.roles.is_empty() {
        framework = framework.roles(options.roles.clone());
    }
    if let Some(principal) = &options.principal {
        framework = framework.principal(principal);
    }

    let (scheduler, mut events) = Scheduler::builder(client, framework.build())
        .ack_mode(AckMode::Explicit)
        .start();

    loop {
        let event = tokio::select! {
            event = events.next() => event,
            _ = tokio::signal::ctrl_c() => {
                println!("stopping");
                scheduler.stop();
                continue;
            }
        };
        let Some(event) = event else { break };
        match event {
            SchedulerEvent::Connected {
                framework_id,
                heartbeat_interval,
                endpoint,
                ..
            } => {
                println!(
                    "CONNECTED to {endpoint} as {} (heartbeat every {heartbeat_interval:?})",
                    framework_id.value
                );
                if let Err(err) = scheduler.reconcile_all().await {
                    eprintln!("reconcile failed: {err}");
                }
            }
            SchedulerEvent::Offers(offers) => {
                for offer in &offers {
                    let room = OfferResources::new(offer);
                    println!(
                        "OFFER {} from {} for role {}: {}",
                        offer.id.value,
                        offer.hostname,
                        room.role(),
                        room.summary()
                    );
                }
                let ids = offers.into_iter().map(|offer| offer.id).collect();
                if let Err(err) = scheduler.decline(ids, Some(Duration::from_secs(30))).await {
                    eprintln!("decline failed: {err}");
                }
            }
            SchedulerEvent::Update { status, ack } => {
                println!(
                    "UPDATE task {} is {:?}{}",
                    status.task_id.value,
                    status.state(),
                    status
                        .message
                        .as_deref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                );
                if let Some(token) = ack
                    && let Err(err) = scheduler.acknowledge(token).await
                {
                    eprintln!("acknowledge failed: {err}");
                }
            }
            SchedulerEvent::Heartbeat => println!("HEARTBEAT"),
            SchedulerEvent::OffersInvalidated { offer_ids } => {
                println!("{} outstanding offers invalidated", offer_ids.len());
            }
            SchedulerEvent::Disconnected { reason } => println!("DISCONNECTED: {reason}"),
            SchedulerEvent::Terminated(why) => println!("TERMINATED: {why}"),
            other => println!("{other:?}"),
        }
    }
    Ok(())
}
