//! Test support: producing input messages and reading back every record of a topic, with the
//! source coordinates Brigade puts in its headers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use brigade::kafka::client::{HEADER_OFFSET, HEADER_PARTITION, HEADER_REASON};
use brigade::kafka::header_text;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// One record read back.
#[derive(Debug, Clone)]
pub struct Record {
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The payload.
    pub payload: Vec<u8>,
    /// Source partition (header).
    pub source_partition: Option<i32>,
    /// Source offset (header).
    pub source_offset: Option<i64>,
    /// The error reason (header), for error records.
    pub reason: Option<String>,
}

/// Produces `payloads` to `topic` (keys `key-<i>`), in order (idempotent: a retry cannot
/// reorder them, so payload `i` of a fresh single-partition topic lands at offset `i`), up to a
/// thousand in flight at once; answers their offsets.
///
/// One record per batch: tansu (0.6) answers a fetch that starts inside a record batch with
/// nothing, so a restarted scheduler, which resumes at its committed offset, would wait forever
/// on input written in batches of several records (Kafka returns the whole batch and the
/// client skips what comes before the offset).
pub async fn produce(brokers: &str, topic: &str, payloads: &[Vec<u8>]) -> Vec<i64> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut offsets = Vec::with_capacity(payloads.len());
    for (chunk_index, chunk) in payloads.chunks(1000).enumerate() {
        let sends = chunk.iter().enumerate().map(|(j, payload)| {
            let key = format!("key-{}", chunk_index * 1000 + j);
            let producer = &producer;
            async move {
                producer
                    .send(
                        FutureRecord::to(topic).key(&key).payload(payload),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|d| d.offset)
                    .expect("input produced")
            }
        });
        offsets.extend(futures::future::join_all(sends).await);
    }
    offsets
}

/// Creates the topics of processor `name`, `<name>-in`, `<name>-out` and `<name>-err` (one
/// partition each), and answers their names in that order.
pub async fn processor_topics(brokers: &str, name: &str) -> (String, String, String) {
    let (input, output, error) = (
        format!("{name}-in"),
        format!("{name}-out"),
        format!("{name}-err"),
    );
    brigade::kafka::create_topics(
        &brigade::kafka::KafkaConfig::new(brokers),
        &[input.as_str(), output.as_str(), error.as_str()],
        1,
    )
    .await
    .expect("topics created");
    (input, output, error)
}

/// Reads `topic` from the start until `count` records arrived or `timeout` passed.
pub async fn read(brokers: &str, topic: &str, count: usize, timeout: Duration) -> Vec<Record> {
    let group = format!("reader-{}", uuid::Uuid::new_v4().simple());
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(message)) => out.push(Record {
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                source_partition: header_text(&message, HEADER_PARTITION)
                    .and_then(|v| v.parse().ok()),
                source_offset: header_text(&message, HEADER_OFFSET).and_then(|v| v.parse().ok()),
                reason: header_text(&message, HEADER_REASON),
            }),
            Ok(Err(e)) => panic!("reading {topic}: {e}"),
            Err(_) => break,
        }
    }
    out
}

/// Records by source offset; every offset's records (more than one is a duplicate).
pub fn by_offset(records: &[Record]) -> BTreeMap<i64, Vec<Record>> {
    let mut map: BTreeMap<i64, Vec<Record>> = BTreeMap::new();
    for record in records {
        let offset = record
            .source_offset
            .expect("record carries its source offset");
        map.entry(offset).or_default().push(record.clone());
    }
    map
}
