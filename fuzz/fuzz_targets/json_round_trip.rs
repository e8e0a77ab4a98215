//! cargo-fuzz target: [`mesos_sdk_fuzz::json_round_trip`] over arbitrary bytes.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mesos_sdk_fuzz::json_round_trip(data);
});
