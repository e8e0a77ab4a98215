//! Consumer lag of a processor: for every partition of its input topic, the high watermark
//! minus the offset its consumer group (`brigade-<name>`) committed, summed. Read with a
//! separate rdkafka client that never joins the group.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// How long one lag query may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A client that reads the lag of one processor.
pub struct LagReader {
    consumer: BaseConsumer,
    topic: String,
}

impl std::fmt::Debug for LagReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LagReader")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl LagReader {
    /// A reader of group `group`'s lag on `topic` at `brokers`.
    pub fn new(brokers: &str, group: &str, topic: &str) -> Result<Self, String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("lag client: {e}"))?;
        Ok(Self {
            consumer,
            topic: topic.to_string(),
        })
    }

    /// The summed lag (blocking: call it from `spawn_blocking`).
    pub fn lag(&self) -> Result<i64, String> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), TIMEOUT)
            .map_err(|e| format!("metadata of {}: {e}", self.topic))?;
        let mut partitions = TopicPartitionList::new();
        for topic in metadata.topics() {
            for p in topic.partitions() {
                partitions.add_partition(&self.topic, p.id());
            }
        }
        let committed = self
            .consumer
            .committed_offsets(partitions, TIMEOUT)
            .map_err(|e| format!("committed offsets of {}: {e}", self.topic))?;
        let mut lag = 0;
        for element in committed.elements() {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, element.partition(), TIMEOUT)
                .map_err(|e| format!("watermarks of {}: {e}", self.topic))?;
            let at = match element.offset() {
                Offset::Offset(offset) => offset,
                _ => low,
            };
            lag += (high - at).max(0);
        }
        Ok(lag)
    }
}
