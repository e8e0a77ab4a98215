//! The result producer against a real Kafka-protocol broker (tansu): `connect` reads the
//! metadata of the topics a process scheduler writes to and names those the cluster does not
//! know; a producer that cannot reach any broker answers a typed error instead of hanging.

mod support;

use std::time::Duration;

use brigade::kafka::{KafkaConfig, KafkaError, ResultProducer, Source, create_topics};
use brigade::protocol::InputMessage;

/// `producer.connect(topics)` on a blocking thread, as the process scheduler calls it.
async fn connect(
    producer: &ResultProducer,
    topics: &[&str],
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    let producer = producer.clone();
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    tokio::task::spawn_blocking(move || producer.connect(&topics, timeout))
        .await
        .expect("connect task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_names_the_topics_the_cluster_does_not_know_and_records_then_flow() {
    support::init_logs();
    let Some(broker) = support::tansu::tansu_or_skip("connect_names_unknown_topics") else {
        return;
    };
    let brokers = broker.brokers();
    let mut config = KafkaConfig::new(&brokers);
    // Metadata requests must not create the topics they ask for, so an unknown topic stays so.
    config
        .extra
        .insert("allow.auto.create.topics".into(), "false".into());
    create_topics(&config, &["conn-out", "conn-err"], 1)
        .await
        .expect("topics created");
    let producer = ResultProducer::new(&config).expect("producer");
    let known = connect(
        &producer,
        &["conn-out", "conn-err"],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(known.expect("metadata read"), Vec::<String>::new());

    // A record to a known topic is acknowledged with its coordinates.
    let message = InputMessage {
        topic: "conn-in".into(),
        partition: 0,
        offset: 7,
        key: Some(b"k".to_vec()),
        payload: Vec::new(),
    };
    let source = Source::of("conn", &message, 1);
    let (partition, offset) = producer
        .produce_output("conn-out", &source, b"out")
        .await
        .expect("output acknowledged");
    assert_eq!((partition, offset), (0, 0));

    let unknown = connect(
        &producer,
        &["conn-out", "conn-nowhere"],
        Duration::from_secs(10),
    )
    .await
    .expect("metadata read");
    assert_eq!(unknown, vec!["conn-nowhere".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_a_reachable_broker_is_a_client_error() {
    support::init_logs();
    // A port nobody listens on.
    let port = support::tansu::free_port();
    let producer =
        ResultProducer::new(&KafkaConfig::new(format!("127.0.0.1:{port}"))).expect("producer");
    match connect(&producer, &["anything"], Duration::from_millis(500)).await {
        Err(KafkaError::Client(reason)) => assert!(reason.contains("anything"), "{reason}"),
        other => panic!("expected a client error, got {other:?}"),
    }
}
