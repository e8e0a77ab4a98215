//! Property: every scheduler and executor Call and Event the SDK encodes to Mesos JSON decodes
//! back to an equal message (maps, oneofs, declared defaults, zero values, extreme numbers),
//! plus the regression of issue 9: a required double equal to 0 inside a map value.

#[path = "common/arbitrary_message.rs"]
mod arbitrary_message;

use mesos_sdk::codec::json;
use mesos_sdk::v1::{self, executor, scheduler};
use proptest::prelude::*;
use prost::{Message, Name};

/// Builds a random `M` from `seed`, then checks JSON encode → decode gives it back.
fn round_trips<M>(seed: u64, depth: usize) -> Result<(), TestCaseError>
where
    M: Message + Name + Default + PartialEq + std::fmt::Debug,
{
    let pool = arbitrary_message::pool();
    let descriptor = pool
        .get_message_by_name(&M::full_name())
        .expect("descriptor of the message type");
    let dynamic = arbitrary_message::random_message(&descriptor, seed, depth);
    let message = M::decode(dynamic.encode_to_vec().as_slice()).expect("valid protobuf");
    let text = json::to_vec(&message).expect("encodes");
    let back: M = json::from_slice(&text).map_err(|err| {
        TestCaseError::fail(format!(
            "{}: own output refused: {err}\n{}",
            M::full_name(),
            String::from_utf8_lossy(&text)
        ))
    })?;
    prop_assert_eq!(
        &back,
        &message,
        "{}: {}",
        M::full_name(),
        String::from_utf8_lossy(&text)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn scheduler_calls_round_trip(seed in any::<u64>(), depth in 1usize..5) {
        round_trips::<scheduler::Call>(seed, depth)?;
    }

    #[test]
    fn scheduler_events_round_trip(seed in any::<u64>(), depth in 1usize..5) {
        round_trips::<scheduler::Event>(seed, depth)?;
    }

    #[test]
    fn executor_calls_round_trip(seed in any::<u64>(), depth in 1usize..5) {
        round_trips::<executor::Call>(seed, depth)?;
    }

    #[test]
    fn executor_events_round_trip(seed in any::<u64>(), depth in 1usize..5) {
        round_trips::<executor::Event>(seed, depth)?;
    }
}

#[test]
fn a_zero_double_inside_a_map_value_is_written() {
    let input = br#"{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},
                     "limits":{"mem":{"value":0},"cpus":{"value":1}}}"#;
    let task: v1::TaskInfo = json::from_slice(input).unwrap();
    assert_eq!(task.limits["mem"].value, 0.0);
    let value = json::to_value(&task).unwrap();
    assert_eq!(value["limits"]["mem"]["value"], 0.0, "{value}");
    let back: v1::TaskInfo = json::from_slice(&json::to_vec(&task).unwrap()).unwrap();
    assert_eq!(back, task);

    // The same inside the quota maps and ResourceQuantities.
    let quantities = v1::offer_filters::ResourceQuantities {
        quantities: [("disk".to_string(), v1::value::Scalar { value: 0.0 })].into(),
    };
    let value = json::to_value(&quantities).unwrap();
    assert_eq!(value["quantities"]["disk"]["value"], 0.0, "{value}");
    assert_eq!(
        json::from_slice::<v1::offer_filters::ResourceQuantities>(
            &json::to_vec(&quantities).unwrap()
        )
        .unwrap(),
        quantities
    );
}
