//! Failover time of the HA framework: three `examples/ha` processes against mesos-local (in
//! this process) and a real etcd (Debian's `etcd-server`, started here); the leader is
//! SIGKILLed ROUNDS times (default 20), a fresh instance replacing each, and the time from the
//! SIGKILL to the next leader's SUBSCRIBED is printed as p50 / p99 / max beside the lease's
//! TTL (the ratio is what carries over to other machines).
//!
//! ```sh
//! cargo build --release --examples --features etcd
//! target/release/examples/ha_failover_time [ROUNDS]
//! ```

#[path = "../tests/common/etcd.rs"]
mod etcd_support;
#[path = "../tests/common/ha_instances.rs"]
mod ha_instances;

use std::time::Instant;

use ha_instances::{Setup, TTL_MS};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    if !ha_instances::example_binary().exists() {
        eprintln!(
            "build the ha example beside this one first: cargo build --release --examples --features etcd"
        );
        std::process::exit(2);
    }
    let mut setup = Setup::start("ha-failover", 1).await;
    let (mut leader, _) = setup.wait_steady(1).await;
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let killed_at = Instant::now();
        setup.instance(&leader).kill();
        let (next, _) = setup.wait_line(|w| w != leader, "SUBSCRIBED ").await;
        samples.push(killed_at.elapsed());
        setup.spawn(&format!("r{round}"));
        leader = next;
    }
    samples.sort();
    let Some(max) = samples.last().copied() else {
        println!("no rounds");
        return;
    };
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let ttl = std::time::Duration::from_millis(TTL_MS);
    println!(
        "failover over {} SIGKILLs: p50 {:?} ({:.2} x TTL), p99 {:?} ({:.2} x TTL), max {:?} \
         (TTL {TTL_MS} ms, keep-alive 300 ms, margin 500 ms, master heartbeat 300 ms)",
        samples.len(),
        p(0.5),
        p(0.5).as_secs_f64() / ttl.as_secs_f64(),
        p(0.99),
        p(0.99).as_secs_f64() / ttl.as_secs_f64(),
        max,
    );
    setup.cluster.shutdown().await;
}
