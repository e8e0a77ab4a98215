//! Topic administration Brigade needs: creating the input, output and error topics of a
//! processor when they do not exist yet (demo, tests, first runs against a fresh cluster).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaConfig, KafkaError};

/// Creates `topics` with `partitions` partitions each (replication factor 1); topics that
/// already exist are left as they are.
pub async fn create_topics(
    config: &KafkaConfig,
    topics: &[&str],
    partitions: i32,
) -> Result<(), KafkaError> {
    let mut client_config = rdkafka::ClientConfig::new();
    client_config.set("bootstrap.servers", &config.brokers);
    let admin: AdminClient<DefaultClientContext> = client_config
        .create()
        .map_err(|e| KafkaError::Client(format!("admin client: {e}")))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &options)
        .await
        .map_err(|e| KafkaError::Client(format!("creating topics: {e}")))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::Client(format!(
                    "creating topic {topic}: {code}"
                )));
            }
        }
    }
    Ok(())
}
