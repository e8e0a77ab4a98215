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
        .compile_fds(descriptors)?;
    Ok(())
}
