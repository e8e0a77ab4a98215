//! Byte fuzzers on stable: the fuzzing entry points of `fuzz/src/lib.rs` (RecordIO decoding with
//! arbitrary chunking, the Mesos JSON decoder, the JSON round trip, the duration and resource
//! parsers, and requests to a real embedded master and agent over loopback) fed by proptest with
//! random and mutated bytes. The same entry points run under libFuzzer with cargo-fuzz on
//! nightly (`cargo +nightly fuzz run <target>`, see README.md).

#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use proptest::prelude::*;

/// Random bytes, and random bytes spliced into plausible inputs of each kind.
fn bytes_around(seeds: &'static [&'static [u8]]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            proptest::sample::select(seeds),
            proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        )
            .prop_map(|(seed, edits)| {
                let mut data = seed.to_vec();
                for (at, byte) in edits {
                    if data.is_empty() {
                        data.push(byte);
                    } else {
                        let at = at % data.len();
                        data[at] = byte;
                    }
                }
                data
            }),
    ]
}

const JSON_SEEDS: &[&[u8]] = &[
    br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#,
    br#"{"type":"ACCEPT","framework_id":{"value":"f"},"accept":{"offer_ids":[{"value":"o"}],"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"t","task_id":{"value":"t"},"agent_id":{"value":"a"},"limits":{"mem":{"value":0}}}]}}]}}"#,
    br#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"t"},"state":"TASK_RUNNING","uuid":"AAEC"}}}"#,
    br#"{"type":"HEARTBEAT"}"#,
    br#"{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o"},"framework_id":{"value":"f"},"agent_id":{"value":"a"},"hostname":"h","resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":NaN}}]}]}}"#,
];

const RECORDIO_SEEDS: &[&[u8]] = &[
    b"\x03\x03\x01\x02\x0320\n{\"type\":\"HEARTBEAT\"}0\n",
    b"\x02\x00\x00\x0220\n{\"type\":\"HEARTBEAT\"}",
    b"\x01\x05\x00\x01\x02\x03\x0499999999999999999999\nx",
];

const TEXT_SEEDS: &[&[u8]] = &[
    b"1.5secs",
    b"15mins",
    b"184467440737095516150weeks",
    b"cpus:4;mem:8192;disk(role):100;ports:[31000-32000]",
    b"rack:r1;zone:z;n:3.5;s:{a,b}",
];

const HTTP_SEEDS: &[&[u8]] = &[
    b"\x00\x00\x01\x01\x01{\"type\":\"SUBSCRIBE\",\"subscribe\":{\"framework_info\":{\"user\":\"u\",\"name\":\"n\"}}}",
    b"\x01\x00\x01\x01\x00{\"type\":\"GET_STATE\"}",
    b"\x00\x00\x02\x02\x00\x08\x01\x12\x00",
    b"\x03\x01\x00\x01\x00",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn recordio_decoders_agree_on_any_chunking(data in bytes_around(RECORDIO_SEEDS)) {
        fuzz::recordio(&data);
    }

    #[test]
    fn the_json_decoder_accepts_its_own_output(data in bytes_around(JSON_SEEDS)) {
        fuzz::json_decode(&data);
    }

    #[test]
    fn typed_messages_round_trip_through_json(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzz::json_round_trip(&data);
    }

    #[test]
    fn text_parsers_never_panic(data in bytes_around(TEXT_SEEDS)) {
        fuzz::text_parsers(&data);
    }
}

proptest! {
    // Each case is a loopback exchange: fewer of them.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_master_answers_any_request(data in bytes_around(HTTP_SEEDS)) {
        fuzz::master_http(&data);
    }

    #[test]
    fn the_agent_answers_any_request(data in bytes_around(HTTP_SEEDS)) {
        fuzz::agent_http(&data);
    }
}
