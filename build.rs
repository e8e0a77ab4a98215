//! Generates the prost types for the `mesos.v1` schema under `proto/`.
//!
//! The `.proto` files are parsed by `protox` (a pure-Rust protobuf compiler), so building the crate
//! needs no `protoc` on the machine. The encoded `FileDescriptorSet` is written next to the generated
//! code: the Mesos JSON codec reads field names, enum names and declared defaults from it.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/mesos/v1/mesos.proto",
    "proto/mesos/v1/scheduler/scheduler.proto",
    "proto/mesos/v1/executor/executor.proto",
    "proto/mesos/v1/master/master.proto",
    "proto/mesos/v1/agent/agent.proto",
    "proto/mesos/v1/maintenance/maintenance.proto",
    "proto/mesos/v1/quota/quota.proto",
    "proto/mesos/v1/allocator/allocator.proto",
    "proto/mesos/v1/resource_provider/resource_provider.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let encoded = prost::Message::encode_to_vec(&descriptors);
    std::fs::write(out_dir.join("mesos_v1_descriptor_set.bin"), encoded)?;
    prost_build::Config::new()
        .enable_type_names()
        .type_name_domain(["."], "type.mesos.apache.org")
        .bytes(["."])
        // Events are decoded into boxes and handed on as such. SUBSCRIBED comes once per
        // connection but its 272 bytes sat in every event, heartbeats included; boxed, a
        // scheduler `Event` is 800 bytes instead of 1064, under the size glibc's malloc serves
        // from its per-thread cache (1032 bytes), so each event's box costs a few instructions
        // instead of a trip through the shared heap (see benches/decode.rs).
        .boxed(".mesos.v1.scheduler.Event.subscribed")
        // Large sub-messages that are rarely set, or set once per task, are boxed too, so the
        // structs a framework holds by the thousand stay small: a `TaskInfo` is 400 bytes
        // instead of 2,712, a `Resource` 280 instead of 1,248, an `Offer::Operation` 216
        // instead of 7,552. A placement round of 10,000 tasks faulted in, cleared and copied
        // ~64 MB of them before, ~12 MB after (examples/placement_bench.rs: 93 ms to 42 ms).
        .boxed(".mesos.v1.Resource.disk")
        .boxed(".mesos.v1.TaskInfo.executor")
        .boxed(".mesos.v1.TaskInfo.container")
        .boxed(".mesos.v1.TaskInfo.health_check")
        .boxed(".mesos.v1.TaskInfo.check")
        .boxed(".mesos.v1.TaskInfo.discovery")
        .boxed(".mesos.v1.ExecutorInfo.container")
        .boxed(".mesos.v1.ExecutorInfo.discovery")
        .boxed(".mesos.v1.Offer.Operation.launch_group")
        .boxed(".mesos.v1.Offer.Operation.grow_volume")
        .boxed(".mesos.v1.Offer.Operation.shrink_volume")
        .boxed(".mesos.v1.Offer.Operation.create_disk")
        .boxed(".mesos.v1.Offer.Operation.destroy_disk")
        .compile_fds(descriptors)?;
    Ok(())
}
