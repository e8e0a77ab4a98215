//! Store throughput and watch latency: `MemoryStore`, `EtcdStore`, and the same operations
//! issued directly with `etcd-client` on the same etcd in the same run, so the SDK layer's
//! overhead shows as a ratio (target: at most 1.10).
//!
//! `cargo bench --bench store --features etcd` starts its own etcd (Debian's `etcd-server`) on
//! a free loopback port with a temporary data directory. Operations are sequential (one in
//! flight); for each operation, rounds of SDK and direct calls alternate so that drift (fsync
//! times, other load) hits both alike, and the median of the per-pair ratios is reported.

#[path = "../tests/common/etcd.rs"]
mod etcd_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use etcd_client as ec;
use futures::StreamExt;
use mesos_sdk::storage::{MemoryStore, Op, Store, Txn};

const OPS: usize = 200;
const ROUNDS: usize = 11;

/// Operations per second of `OPS` sequential calls of `op`.
async fn rate<F, Fut>(mut op: F) -> f64
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    for i in 0..OPS {
        op(i).await;
    }
    OPS as f64 / start.elapsed().as_secs_f64()
}

fn txn3(i: usize) -> Txn {
    Txn::new()
        .and_then(Op::put(format!("/bench/t/a{i}"), "a"))
        .and_then(Op::put(format!("/bench/t/b{i}"), "b"))
        .and_then(Op::put(format!("/bench/t/c{i}"), "c"))
}

/// Best-of-rounds ops/s of the SDK store for get, put, txn.
async fn sdk_rates(store: &dyn Store) -> [f64; 3] {
    store
        .put("/bench/get", Bytes::from("v"), None)
        .await
        .unwrap();
    let get = rate(|_| async {
        store.get("/bench/get").await.unwrap();
    })
    .await;
    let put = rate(|i| async move {
        store
            .put(&format!("/bench/p/{i}"), Bytes::from("v"), None)
            .await
            .unwrap();
    })
    .await;
    let txn = rate(|i| async move {
        store.txn(txn3(i)).await.unwrap();
    })
    .await;
    [get, put, txn]
}

async fn raw_rates(client: &ec::Client) -> [f64; 3] {
    let kv = client.kv_client();
    let get = rate(|_| {
        let mut kv = kv.clone();
        async move {
            kv.get("/bench/get", None).await.unwrap();
        }
    })
    .await;
    let put = rate(|i| {
        let mut kv = kv.clone();
        async move {
            kv.put(format!("/bench/p/{i}"), "v", None).await.unwrap();
        }
    })
    .await;
    let txn = rate(|i| {
        let mut kv = kv.clone();
        async move {
            let txn = ec::Txn::new().and_then([
                ec::TxnOp::put(format!("/bench/t/a{i}"), "a", None),
                ec::TxnOp::put(format!("/bench/t/b{i}"), "b", None),
                ec::TxnOp::put(format!("/bench/t/c{i}"), "c", None),
            ]);
            kv.txn(txn).await.unwrap();
        }
    })
    .await;
    [get, put, txn]
}

/// Median put-to-event latency of the SDK watch.
async fn sdk_watch_latency(store: &dyn Store) -> Duration {
    let from = store.current_revision().await.unwrap() + 1;
    let mut watch = store.watch("/bench/w/", from).await.unwrap();
    let mut samples = Vec::with_capacity(OPS);
    for i in 0..OPS / 4 {
        let start = Instant::now();
        store
            .put(&format!("/bench/w/{i}"), Bytes::from("v"), None)
            .await
            .unwrap();
        watch.next().await.unwrap().unwrap();
        samples.push(start.elapsed());
    }
    median(samples)
}

async fn raw_watch_latency(client: &ec::Client) -> Duration {
    let mut watch = client
        .watch_client()
        .watch("/bench/w/", Some(ec::WatchOptions::new().with_prefix()))
        .await
        .unwrap();
    watch.message().await.unwrap(); // created
    let mut kv = client.kv_client();
    let mut samples = Vec::with_capacity(OPS);
    for i in 0..OPS / 4 {
        let start = Instant::now();
        kv.put(format!("/bench/w/{i}"), "v", None).await.unwrap();
        loop {
            let response = watch.message().await.unwrap().unwrap();
            if !response.events().is_empty() {
                break;
            }
        }
        samples.push(start.elapsed());
    }
    median(samples)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (memory, _clock) = MemoryStore::with_manual_clock();
    let mut memory_rounds = Vec::new();
    for _ in 0..ROUNDS {
        memory_rounds.push(sdk_rates(&memory).await);
    }
    let memory_watch = sdk_watch_latency(&memory).await;

    let etcd = etcd_support::EtcdCluster::single().await;
    let store = etcd.store().await;
    let raw = ec::Client::connect([etcd.endpoint()], None).await.unwrap();
    // Warm-up.
    sdk_rates(&store).await;
    raw_rates(&raw).await;
    let (mut sdk, mut direct) = (Vec::new(), Vec::new());
    let (mut sdk_watch, mut direct_watch) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        sdk.push(sdk_rates(&store).await);
        direct.push(raw_rates(&raw).await);
        sdk_watch.push(sdk_watch_latency(&store).await);
        direct_watch.push(raw_watch_latency(&raw).await);
    }

    println!(
        "store operations: {OPS} sequential calls per round, {ROUNDS} alternating rounds, medians"
    );
    println!(
        "{:<22} {:>12} {:>14} {:>16} {:>10}",
        "operation", "memory op/s", "EtcdStore op/s", "etcd-client op/s", "overhead"
    );
    for (i, name) in ["get", "put", "txn (3 puts)"].iter().enumerate() {
        let ratios: Vec<f64> = sdk.iter().zip(&direct).map(|(s, d)| d[i] / s[i]).collect();
        println!(
            "{name:<22} {:>12.0} {:>14.0} {:>16.0} {:>9.3}x",
            median_f(memory_rounds.iter().map(|r| r[i]).collect()),
            median_f(sdk.iter().map(|r| r[i]).collect()),
            median_f(direct.iter().map(|r| r[i]).collect()),
            median_f(ratios)
        );
    }
    let ratios: Vec<f64> = sdk_watch
        .iter()
        .zip(&direct_watch)
        .map(|(s, d)| s.as_secs_f64() / d.as_secs_f64())
        .collect();
    println!(
        "{:<22} {:>12?} {:>14?} {:>16?} {:>9.3}x",
        "watch latency (p50)",
        memory_watch,
        median(sdk_watch),
        median(direct_watch),
        median_f(ratios)
    );
    println!(
        "overhead = time per operation through EtcdStore / time with etcd-client directly \
         (median of the per-round ratios; target <= 1.10)"
    );
}

fn median_f(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
