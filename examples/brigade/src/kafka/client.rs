//! The Kafka clients of a process scheduler: the consumer in the processor's consumer group on
//! its input topic (manual offset commits) and the producer of output and error records
//! (acks=all, idempotence on), with the headers that trace a record to its source message.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::KafkaError;
use super::tracker::TopicPartition;
use crate::protocol::InputMessage;

/// Header with the processor's name.
pub const HEADER_PROCESSOR: &str = "brigade-processor";
/// Header with the source message's topic.
pub const HEADER_TOPIC: &str = "brigade-source-topic";
/// Header with the source message's partition (decimal text).
pub const HEADER_PARTITION: &str = "brigade-source-partition";
/// Header with the source message's offset (decimal text).
pub const HEADER_OFFSET: &str = "brigade-source-offset";
/// Header of error records with the failure's reason.
pub const HEADER_REASON: &str = "brigade-error-reason";
/// Header with the number of attempts the message took.
pub const HEADER_ATTEMPTS: &str = "brigade-attempts";

/// How to reach the Kafka cluster, and client settings passed to librdkafka as they are.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Idempotent producer (`enable.idempotence`); on by default.
    pub idempotence: bool,
    /// Extra librdkafka properties for both clients.
    pub extra: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// Defaults for `brokers`.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            idempotence: true,
            extra: BTreeMap::new(),
        }
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.extra {
            config.set(k, v);
        }
        config
    }
}

/// A received input message with what is needed to commit past it.
pub type Received = InputMessage;

/// The consumer of one processor's input topic in its consumer group.
pub struct InputConsumer {
    consumer: StreamConsumer,
    topic: String,
}

impl std::fmt::Debug for InputConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputConsumer")
            .field("topic", &self.topic)
            .finish()
    }
}

impl InputConsumer {
    /// A consumer of every partition of `topic`, reading from group `group`'s committed
    /// offsets (the earliest where none is committed). Offsets are committed only by
    /// [`commit`](Self::commit) / [`commit_sync`](Self::commit_sync).
    ///
    /// The partitions are assigned by the consumer itself rather than by group rebalancing: one
    /// process scheduler per processor is active at a time (its Mesos framework has a single
    /// subscriber), and a restarted scheduler must not wait until the killed instance's group
    /// session expires. Blocking (it reads the topic's metadata): call it from
    /// `spawn_blocking` in async code.
    ///
    /// `start` overrides the starting offset of partitions (the offsets the scheduler itself
    /// recorded as committed, which win over the group's when they are ahead).
    pub fn new(
        config: &KafkaConfig,
        group: &str,
        topic: &str,
        start: &std::collections::HashMap<i32, i64>,
    ) -> Result<Self, KafkaError> {
        let consumer: StreamConsumer = config
            .base()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .create()
            .map_err(|e| KafkaError::Client(format!("consumer for {topic}: {e}")))?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(15))
            .map_err(|e| KafkaError::Client(format!("metadata of {topic}: {e}")))?;
        let mut assignment = TopicPartitionList::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            for partition in t.partitions() {
                let offset = start
                    .get(&partition.id())
                    .map_or(Offset::Stored, |o| Offset::Offset(*o));
                assignment
                    .add_partition_offset(topic, partition.id(), offset)
                    .map_err(|e| KafkaError::Client(format!("assignment: {e}")))?;
            }
        }
        if assignment.count() == 0 {
            return Err(KafkaError::Client(format!(
                "topic {topic} has no partitions"
            )));
        }
        consumer
            .assign(&assignment)
            .map_err(|e| KafkaError::Client(format!("assigning {topic}: {e}")))?;
        Ok(Self {
            consumer,
            topic: topic.to_string(),
        })
    }

    /// The input topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The next message (waits for one).
    pub async fn recv(&self) -> Result<InputMessage, KafkaError> {
        let message = self
            .consumer
            .recv()
            .await
            .map_err(|e| KafkaError::Client(format!("receiving from {}: {e}", self.topic)))?;
        Ok(InputMessage {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        })
    }

    /// Commits `offsets` (next offsets to read) asynchronously.
    pub fn commit(&self, offsets: &[(TopicPartition, i64)]) -> Result<(), KafkaError> {
        self.commit_in(offsets, CommitMode::Async)
    }

    /// Commits `offsets` and waits for the group coordinator's answer (blocking: call it from
    /// `spawn_blocking`).
    pub fn commit_sync(&self, offsets: &[(TopicPartition, i64)]) -> Result<(), KafkaError> {
        self.commit_in(offsets, CommitMode::Sync)
    }

    fn commit_in(
        &self,
        offsets: &[(TopicPartition, i64)],
        mode: CommitMode,
    ) -> Result<(), KafkaError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (tp, offset) in offsets {
            list.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*offset))
                .map_err(|e| KafkaError::Client(format!("commit list: {e}")))?;
        }
        self.consumer
            .commit(&list, mode)
            .map_err(|e| KafkaError::Client(format!("committing offsets: {e}")))
    }

    /// Stops fetching from the assigned partitions (back-pressure).
    pub fn pause(&self) -> Result<(), KafkaError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| KafkaError::Client(format!("assignment: {e}")))?;
        self.consumer
            .pause(&assignment)
            .map_err(|e| KafkaError::Client(format!("pause: {e}")))
    }

    /// Fetches again from the assigned partitions.
    pub fn resume(&self) -> Result<(), KafkaError> {
        let assignment = self
            .consumer
            .assignment()
            .map_err(|e| KafkaError::Client(format!("assignment: {e}")))?;
        self.consumer
            .resume(&assignment)
            .map_err(|e| KafkaError::Client(format!("resume: {e}")))
    }
}

/// Where a record comes from: the processor and the source message's coordinates (borrowed:
/// a result is produced from its task record without rebuilding the message).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The processor's name.
    pub processor: &'a str,
    /// The source topic.
    pub topic: &'a str,
    /// The source partition.
    pub partition: i32,
    /// The source offset.
    pub offset: i64,
    /// The source key (kept on the result).
    pub key: Option<&'a [u8]>,
    /// Attempts the message took.
    pub attempts: u32,
}

impl<'a> Source<'a> {
    /// The source of a result of `message` after `attempts` attempts of `processor`.
    pub fn of(processor: &'a str, message: &'a InputMessage, attempts: u32) -> Self {
        Source {
            processor,
            topic: &message.topic,
            partition: message.partition,
            offset: message.offset,
            key: message.key.as_deref(),
            attempts,
        }
    }
}

/// The producer of output and error records.
#[derive(Clone)]
pub struct ResultProducer {
    producer: FutureProducer,
    timeout: Duration,
}

impl std::fmt::Debug for ResultProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultProducer").finish()
    }
}

impl ResultProducer {
    /// A producer with acks=all (and idempotence unless switched off in `config`).
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let producer: FutureProducer = config
            .base()
            .set("acks", "all")
            .set(
                "enable.idempotence",
                if config.idempotence { "true" } else { "false" },
            )
            .set("linger.ms", "2")
            .create()
            .map_err(|e| KafkaError::Client(format!("producer: {e}")))?;
        Ok(Self {
            producer,
            timeout: Duration::from_secs(30),
        })
    }

    /// Connects to the cluster and reads the metadata of `topics`; answers those the cluster
    /// does not know (their records wait until they exist). Blocking: call it from
    /// `spawn_blocking` in async code.
    ///
    /// Call it right after [`new`](Self::new): librdkafka opens broker connections only when
    /// something needs them, and an idempotent producer that finds no broker up asks for its
    /// producer id again only on a half-second timer, so without this the first records of a
    /// process scheduler waited about a second for their acknowledgement (measured on tansu);
    /// with it the id comes within tens of milliseconds.
    pub fn connect<S: AsRef<str>>(
        &self,
        topics: &[S],
        timeout: Duration,
    ) -> Result<Vec<String>, KafkaError> {
        let mut missing = Vec::new();
        for topic in topics.iter().map(AsRef::as_ref) {
            let metadata = self
                .producer
                .client()
                .fetch_metadata(Some(topic), timeout)
                .map_err(|e| KafkaError::Client(format!("metadata of {topic}: {e}")))?;
            let known = metadata
                .topics()
                .iter()
                .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
            if !known {
                missing.push(topic.to_string());
            }
        }
        Ok(missing)
    }

    /// The tracing headers of a result (five, plus the reason on an error record). Sized up
    /// front and the numbers formatted on the stack: these were the largest share of the
    /// allocations of a warm pipeline's scheduler (measured with a malloc uprobe).
    fn headers(source: &Source<'_>) -> OwnedHeaders {
        let mut partition = itoa::Buffer::new();
        let mut offset = itoa::Buffer::new();
        let mut attempts = itoa::Buffer::new();
        OwnedHeaders::new_with_capacity(6)
            .insert(Header {
                key: HEADER_PROCESSOR,
                value: Some(source.processor),
            })
            .insert(Header {
                key: HEADER_TOPIC,
                value: Some(source.topic),
            })
            .insert(Header {
                key: HEADER_PARTITION,
                value: Some(partition.format(source.partition)),
            })
            .insert(Header {
                key: HEADER_OFFSET,
                value: Some(offset.format(source.offset)),
            })
            .insert(Header {
                key: HEADER_ATTEMPTS,
                value: Some(attempts.format(source.attempts)),
            })
    }

    async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> Result<(i32, i64), KafkaError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .payload(payload)
            .headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        let delivery = self
            .producer
            .send(record, self.timeout)
            .await
            .map_err(|(e, _)| KafkaError::Produce(format!("to {topic}: {e}")))?;
        Ok((delivery.partition, delivery.offset))
    }

    /// Produces a result to `topic` with the source's key and tracing headers; answers once
    /// Kafka acknowledged it, with the record's partition and offset.
    pub async fn produce_output(
        &self,
        topic: &str,
        source: &Source<'_>,
        output: &[u8],
    ) -> Result<(i32, i64), KafkaError> {
        self.send(topic, source.key, output, Self::headers(source))
            .await
    }

    /// Produces a failure record to the error `topic`: the payload is a JSON document with the
    /// reason and the source's coordinates; the key and headers are those of an output record,
    /// plus the reason in a header.
    pub async fn produce_error(
        &self,
        topic: &str,
        source: &Source<'_>,
        reason: &str,
    ) -> Result<(i32, i64), KafkaError> {
        let payload = serde_json::json!({
            "processor": source.processor,
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "attempts": source.attempts,
            "reason": reason,
        })
        .to_string();
        let headers = Self::headers(source).insert(Header {
            key: HEADER_REASON,
            value: Some(reason),
        });
        self.send(topic, source.key, payload.as_bytes(), headers)
            .await
    }
}

/// Reads a text header of a received record.
pub fn header_text<M: Message>(message: &M, name: &str) -> Option<String> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
