//! Unit tests of the scheduler↔executor protocol: encode/decode round trips (label and data
//! carriage, proptest), task ids, outcomes and warm-mode messages.

use proptest::prelude::*;

use super::warm::{WorkItem, WorkResult};
use super::*;

fn processor() -> Processor {
    Processor::from_json(
        r#"{"name":"up-per","input":"in","output":"out","error":"err",
            "command":"tr a-z A-Z","cpus":"0.1","mem":32}"#,
    )
    .unwrap()
}

fn task(id: &str) -> v1::TaskInfo {
    v1::TaskInfo {
        name: "t".into(),
        task_id: v1::TaskId { value: id.into() },
        ..Default::default()
    }
}

fn status(state: v1::TaskState) -> v1::TaskStatus {
    v1::TaskStatus {
        task_id: v1::TaskId { value: "x".into() },
        state: state as i32,
        ..Default::default()
    }
}

#[test]
fn small_text_travels_in_labels() {
    let p = processor();
    let msg = InputMessage {
        topic: "in".into(),
        partition: 3,
        offset: 42,
        key: Some(b"k\0\xff".to_vec()),
        payload: b"hello".to_vec(),
    };
    let mut t = task("a");
    t.labels = Some(v1::Labels {
        labels: vec![
            v1::Label {
                key: "mine".into(),
                value: Some("kept".into()),
            },
            v1::Label {
                key: LABEL_MESSAGE.into(),
                value: Some("stale".into()),
            },
        ],
    });
    encode_task(&mut t, &p, &msg).unwrap();
    assert!(t.data.is_none());
    let labels = t.labels.as_ref();
    assert_eq!(label(labels, LABEL_MESSAGE), Some("hello"));
    assert_eq!(label(labels, "mine"), Some("kept"));
    assert_eq!(label(labels, LABEL_OFFSET), Some("42"));
    let count = t
        .labels
        .as_ref()
        .unwrap()
        .labels
        .iter()
        .filter(|l| l.key == LABEL_MESSAGE);
    assert_eq!(count.count(), 1);
    let (p2, m2) = decode_task(&t).unwrap();
    assert_eq!(p2, p);
    assert_eq!(m2, msg);
    assert_eq!(task_source(&t).unwrap(), ("in".into(), 3, 42));
}

#[test]
fn binary_and_large_messages_travel_in_data() {
    let p = processor();
    for payload in [vec![0xff, 0xfe, 0], vec![b'a'; LABEL_MESSAGE_LIMIT + 1]] {
        let msg = InputMessage {
            topic: "in".into(),
            payload: payload.clone(),
            ..Default::default()
        };
        let mut t = task("a");
        encode_task(&mut t, &p, &msg).unwrap();
        assert_eq!(
            label(t.labels.as_ref(), LABEL_MESSAGE_LOCATION),
            Some("data")
        );
        assert_eq!(label(t.labels.as_ref(), LABEL_MESSAGE), None);
        assert_eq!(t.data.as_deref(), Some(&payload[..]));
        assert_eq!(decode_task(&t).unwrap().1, msg);
    }
}

#[test]
fn too_large_and_broken_tasks_are_refused() {
    let p = processor();
    let msg = InputMessage {
        payload: vec![0; MAX_MESSAGE + 1],
        ..Default::default()
    };
    assert!(matches!(
        encode_task(&mut task("a"), &p, &msg),
        Err(ProtocolError::TooLarge { .. })
    ));
    assert_eq!(
        decode_task(&task("a")).unwrap_err(),
        ProtocolError::MissingLabel(LABEL_PROCESSOR)
    );
    let mut t = task("a");
    encode_task(&mut t, &p, &InputMessage::default()).unwrap();
    for l in &mut t.labels.as_mut().unwrap().labels {
        if l.key == LABEL_PROCESSOR {
            l.value = Some(r#"{"name":"x"}"#.into());
        }
    }
    assert!(matches!(
        decode_task(&t),
        Err(ProtocolError::InvalidProcessor(_))
    ));
    let mut t = task("a");
    encode_task(
        &mut t,
        &p,
        &InputMessage {
            payload: vec![0xff],
            ..Default::default()
        },
    )
    .unwrap();
    t.data = None;
    assert_eq!(decode_task(&t).unwrap_err(), ProtocolError::MissingData);
}

#[test]
fn task_ids_name_their_message() {
    let id = task_id("my-proc.v2", 7, 123_456);
    assert!(id.starts_with("brigade-my-proc.v2-7-123456-"));
    let r = message_ref(&id).unwrap();
    assert_eq!(
        r,
        TaskRef {
            processor: "my-proc.v2".into(),
            partition: 7,
            offset: 123_456
        }
    );
    assert_ne!(task_id("p", 0, 0), task_id("p", 0, 0));
    for bad in [
        "x",
        "brigade-",
        "brigade-p-1-2",
        "brigade--1-2-abc",
        "brigade-p-x-2-abc",
        "brigade-p-1--2-abc",
        "other-p-1-2-abc",
    ] {
        assert!(message_ref(bad).is_err(), "{bad}");
    }
}

#[test]
fn outcomes() {
    use v1::TaskState as S;
    assert_eq!(outcome(&status(S::TaskRunning)), None);
    assert_eq!(outcome(&status(S::TaskUnreachable)), None);
    let mut done = status(S::TaskFinished);
    done.data = Some(Bytes::from_static(b"OUT"));
    assert_eq!(outcome(&done), Some(Outcome::Output(b"OUT".to_vec())));
    assert_eq!(failure_cause(&done), None);
    let mut failed = status(S::TaskFailed);
    failed.message = Some("exit status 1; stderr: boom".into());
    failed.labels = Some(v1::Labels {
        labels: vec![v1::Label {
            key: LABEL_FAILURE.into(),
            value: Some("exit".into()),
        }],
    });
    assert_eq!(
        outcome(&failed),
        Some(Outcome::Failed {
            reason: "exit status 1; stderr: boom".into()
        })
    );
    assert_eq!(failure_cause(&failed), Some(FailureCause::Exit));
    let mut lost = status(S::TaskLost);
    lost.reason = Some(v1::task_status::Reason::AgentRemoved as i32);
    assert_eq!(
        outcome(&lost),
        Some(Outcome::Failed {
            reason: "TASK_LOST: REASON_AGENT_REMOVED".into()
        })
    );
    assert_eq!(failure_cause(&lost), Some(FailureCause::Infrastructure));
    assert_eq!(
        failure_cause(&status(S::TaskKilled)),
        Some(FailureCause::Killed)
    );
    for s in [
        S::TaskError,
        S::TaskDropped,
        S::TaskGone,
        S::TaskGoneByOperator,
    ] {
        assert!(matches!(outcome(&status(s)), Some(Outcome::Failed { .. })));
    }
}

#[test]
fn unreachable_tasks_are_not_terminal_and_a_given_up_one_is_an_infrastructure_loss() {
    use v1::TaskState as S;
    for s in [S::TaskUnreachable, S::TaskUnknown] {
        assert!(unreachable(s), "{s:?}");
        assert_eq!(outcome(&status(s)), None);
    }
    for s in [S::TaskRunning, S::TaskLost, S::TaskGone, S::TaskFinished] {
        assert!(!unreachable(s), "{s:?}");
    }
    let lost = lost_status(
        v1::TaskId { value: "t".into() },
        Some(v1::AgentId { value: "a".into() }),
        "agent unreachable".into(),
    );
    assert_eq!(
        outcome(&lost),
        Some(Outcome::Failed {
            reason: "agent unreachable".into()
        })
    );
    assert_eq!(failure_cause(&lost), Some(FailureCause::Infrastructure));
    assert!(lost.uuid.is_none(), "nothing to acknowledge");
}

#[test]
fn executor_info_fetches_the_binary() {
    let uri = v1::command_info::Uri {
        value: "http://127.0.0.1:1/artifacts/brigade-executor".into(),
        ..Default::default()
    };
    let fw = v1::FrameworkId { value: "fw".into() };
    let e = executor_info(&fw, "brigade-p-0-1-abcd", uri, &processor());
    assert_eq!(e.executor_id.value, "brigade-p-0-1-abcd");
    assert_eq!(e.r#type, Some(v1::executor_info::Type::Custom as i32));
    let cmd = e.command.unwrap();
    assert_eq!(cmd.uris[0].executable, Some(true));
    assert_eq!(cmd.uris[0].output_file.as_deref(), Some(EXECUTOR_FILE));
    assert!(cmd.value.unwrap().contains("./brigade-executor;"));
}

#[test]
fn failure_causes_round_trip() {
    for c in [
        FailureCause::Exit,
        FailureCause::Timeout,
        FailureCause::OutputTooLarge,
        FailureCause::Start,
        FailureCause::BadTask,
        FailureCause::Killed,
        FailureCause::Infrastructure,
    ] {
        assert_eq!(FailureCause::parse(c.as_str()), Some(c));
    }
    assert_eq!(FailureCause::parse("nope"), None);
}

#[test]
fn warm_messages_round_trip_and_refuse_garbage() {
    let item = WorkItem(InputMessage {
        topic: "in".into(),
        partition: 1,
        offset: 2,
        key: None,
        payload: vec![0, 1, 255],
    });
    assert_eq!(WorkItem::decode(&item.encode()).unwrap(), item);
    let ok = WorkResult {
        partition: 1,
        offset: 2,
        outcome: Outcome::Output(b"x".to_vec()),
        cause: None,
    };
    assert_eq!(WorkResult::decode(&ok.encode()).unwrap(), ok);
    let failed = WorkResult {
        partition: 1,
        offset: 3,
        outcome: Outcome::Failed {
            reason: "timed out".into(),
        },
        cause: Some(FailureCause::Timeout),
    };
    assert_eq!(WorkResult::decode(&failed.encode()).unwrap(), failed);
    assert!(WorkItem::decode(&ok.encode()).is_err());
    assert!(WorkResult::decode(&item.encode()).is_err());
    assert!(WorkItem::decode(b"not json").is_err());
}

#[test]
fn warm_strings_that_need_unescaping_are_read_whole() {
    // Borrowed where possible, copied where JSON escapes them: both read back the same.
    let item = WorkItem(InputMessage {
        topic: "in \"quoted\"\n\u{e9}".into(),
        partition: 1,
        offset: 2,
        key: None,
        payload: b"p".to_vec(),
    });
    assert_eq!(WorkItem::decode_all(&item.encode()).unwrap(), vec![item]);
    let failed = WorkResult {
        partition: 1,
        offset: 2,
        outcome: Outcome::Failed {
            reason: "exit 1; stderr: \"boom\"\tline\\two\n".into(),
        },
        cause: Some(FailureCause::Exit),
    };
    let data = WorkResult::encode_batch(&[failed.clone(), failed.clone()]);
    assert_eq!(
        WorkResult::decode_all(&data).unwrap(),
        vec![failed.clone(), failed]
    );
}

#[test]
fn warm_batches_round_trip_and_single_forms_stay_readable() {
    let items: Vec<WorkItem> = (0..3)
        .map(|i| {
            WorkItem(InputMessage {
                topic: "in".into(),
                partition: 0,
                offset: i,
                key: Some(vec![i as u8]),
                payload: format!("p{i}").into_bytes(),
            })
        })
        .collect();
    let batch = WorkItem::encode_batch(&items);
    assert!(String::from_utf8_lossy(&batch).contains("\"kind\":\"batch\""));
    assert_eq!(WorkItem::decode_all(&batch).unwrap(), items);
    assert!(WorkItem::decode(&batch).is_err());
    // One item travels as `work`, which both readers take.
    let single = WorkItem::encode_batch(&items[..1]);
    assert_eq!(WorkItem::decode(&single).unwrap(), items[0]);
    assert_eq!(WorkItem::decode_all(&single).unwrap(), items[..1].to_vec());
    let results = vec![
        WorkResult {
            partition: 0,
            offset: 1,
            outcome: Outcome::Output(b"x".to_vec()),
            cause: None,
        },
        WorkResult {
            partition: 0,
            offset: 2,
            outcome: Outcome::Failed {
                reason: "exit 1".into(),
            },
            cause: Some(FailureCause::Exit),
        },
    ];
    let data = WorkResult::encode_batch(&results);
    assert_eq!(WorkResult::decode_all(&data).unwrap(), results);
    assert_eq!(
        WorkResult::decode_all(&results[0].encode()).unwrap(),
        results[..1].to_vec()
    );
    assert!(WorkResult::decode_all(&batch).is_err());
    assert!(WorkItem::decode_all(&data).is_err());
}

#[test]
fn warm_messages_with_missing_parts_are_refused_by_name() {
    let refused = |data: &str, expected: &str| {
        let items = WorkItem::decode_all(data.as_bytes()).map(|_| ());
        let results = WorkResult::decode_all(data.as_bytes()).map(|_| ());
        let reason = format!("{:?} {:?}", items.err(), results.err());
        assert!(reason.contains(expected), "{data}: {reason}");
    };
    refused(r#"{"kind":"batch"}"#, "a batch without items");
    refused(r#"{"kind":"results"}"#, "results without a list");
    refused(
        r#"{"kind":"work","topic":"t","partition":0,"offset":1}"#,
        "without payload",
    );
    refused(
        r#"{"kind":"result","offset":1,"output":"eA=="}"#,
        "without partition",
    );
    refused(r#"{"kind":"other"}"#, "expected work items, not");
    refused(r#"{"partition":0}"#, "missing field `kind`");
    refused(
        r#"{"kind":"batch","items":[{"topic":"t"}]}"#,
        "missing field",
    );
    // Borrowed and owned encodings agree.
    let messages: Vec<InputMessage> = (0..3)
        .map(|i| InputMessage {
            topic: "in".into(),
            partition: 1,
            offset: i,
            key: (i == 1).then(|| b"k".to_vec()),
            payload: vec![0, 255, b'\n'],
        })
        .collect();
    let items: Vec<WorkItem> = messages.iter().cloned().map(WorkItem).collect();
    assert_eq!(
        WorkItem::encode_messages(&messages),
        WorkItem::encode_batch(&items)
    );
    assert_eq!(
        WorkItem::decode_all(&WorkItem::encode_messages(&messages)).unwrap(),
        items
    );
}

#[test]
fn warm_workers_carry_their_processor() {
    let mut t = task("w");
    super::warm::encode_worker(&mut t, &processor());
    assert!(super::warm::is_worker(&t));
    assert!(!super::warm::is_worker(&task("x")));
    assert_eq!(super::warm::decode_worker(&t).unwrap(), processor());
    assert!(super::warm::decode_worker(&task("x")).is_err());
}

proptest! {
    #[test]
    fn round_trip(
        topic in "[a-z]{1,10}",
        partition in 0i32..1000,
        offset in 0i64..i64::MAX,
        key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
        payload in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            ".{0,100}".prop_map(String::into_bytes),
        ],
    ) {
        let msg = InputMessage { topic, partition, offset, key, payload };
        let mut t = task("a");
        encode_task(&mut t, &processor(), &msg).unwrap();
        let (_, back) = decode_task(&t).unwrap();
        prop_assert_eq!(back, msg.clone());
        let item = WorkItem(msg);
        prop_assert_eq!(WorkItem::decode(&item.encode()).unwrap(), item);
    }

    #[test]
    fn task_id_round_trip(name in "[a-zA-Z0-9._-]{1,30}", partition in 0i32..i32::MAX, offset in 0i64..i64::MAX) {
        let r = message_ref(&task_id(&name, partition, offset)).unwrap();
        prop_assert_eq!(r, TaskRef { processor: name, partition, offset });
    }
}
