//! Brigade's Kafka side: the consumer of a processor's input topic, the producer of its output
//! and error records, and the [`OffsetTracker`] that decides which input offsets may be
//! committed (only past messages whose record Kafka has acknowledged).

pub mod admin;
pub mod client;
pub mod tracker;

pub use admin::create_topics;
pub use client::{InputConsumer, KafkaConfig, ResultProducer, Source, header_text};
pub use tracker::{OffsetTracker, TopicPartition};

/// Errors of the Kafka clients.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    /// Creating or using a client failed.
    #[error("kafka client: {0}")]
    Client(String),
    /// A record was not acknowledged.
    #[error("kafka produce: {0}")]
    Produce(String),
}
