//! Processor JSON: the original's sample parses (numeric strings included), every problem is
//! reported with its field, unknown keys are named, and JSON written back parses to an equal
//! processor.

use std::time::Duration;

use brigade::processor::{Mode, Processor, Runner, VolumeMode};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "name": "upper", "input": "in", "output": "out", "error": "err",
        "command": "tr a-z A-Z"
    })
}

fn with(changes: Value) -> String {
    let mut v = base();
    for (k, x) in changes.as_object().unwrap() {
        if x.is_null() {
            v.as_object_mut().unwrap().remove(k);
        } else {
            v[k] = x.clone();
        }
    }
    v.to_string()
}

#[test]
fn the_originals_sample_parses() {
    let p = Processor::from_json(
        r#"{
        "name"  : "sample",
        "input" : "input-topic",
        "output": "output-topic",
        "error" : "error-topic",
        "docker": "busybox:latest",
        "mem"   : "128",
        "cpus"  : "0.5",
        "volumes": [ { "host-path" : "/tmp", "container-path" : "/data", "mode" : "RO" } ],
        "env" : ["FOO=BAR", "A=B=C"]
    }"#,
    )
    .unwrap();
    assert_eq!(p.cpus(), 0.5);
    assert_eq!(p.mem(), 128.0);
    assert_eq!(p.runner(), Runner::Docker("busybox:latest"));
    assert_eq!(p.volumes()[0].mode, VolumeMode::ReadOnly);
    assert_eq!(p.env_pairs(), vec![("FOO", "BAR"), ("A", "B=C")]);
    assert_eq!(p.mode(), Mode::PerMessage);
    assert_eq!(p.framework_name(), "brigade-sample");
    assert_eq!(Processor::from_json(&p.to_json()).unwrap(), p);
}

#[test]
fn operator_fields_parse_and_round_trip() {
    let p = Processor::from_json(&with(json!({
        "timeout": "1.5mins", "max_in_flight": 4, "retries": 3, "backoff": 0.5,
        "max_backoff": "3secs", "mode": "warm", "workers": {"min": 2, "max": 5},
        "max_output": 1000, "stream": "lines",
        "constraints": [["hostname", "UNIQUE"], ["rack", "LIKE", "r[0-9]"], ["zone", "PREFER", "a"]],
    })))
    .unwrap();
    assert_eq!(p.timeout(), Duration::from_secs(90));
    assert_eq!(p.max_in_flight(), 4);
    assert_eq!(p.retries(), 3);
    assert_eq!(p.backoff_for(1), Duration::from_millis(500));
    assert_eq!(p.backoff_for(2), Duration::from_secs(1));
    assert_eq!(p.backoff_for(4), Duration::from_secs(3));
    assert_eq!(p.backoff_for(100), Duration::from_secs(3));
    assert_eq!(p.mode(), Mode::Warm);
    assert_eq!(p.workers().max, 5);
    assert_eq!(p.max_output(), 1000);
    assert_eq!(p.stream(), Some(brigade::processor::Stream::Lines));
    assert_eq!(p.hard_constraints().len(), 2);
    assert_eq!(p.preferences()[0].value, "a");
    assert_eq!(Processor::from_json(&p.to_json()).unwrap(), p);

    let d = Processor::from_json(&with(json!({
        "command": null, "docker": "img:1",
        "docker_options": {"network": "none", "user": "1000", "args": ["--read-only"]},
        "volumes": [{"host-path": "/a", "container-path": "/b", "mode": "RW"}]
    })))
    .unwrap();
    assert_eq!(d.docker_options().unwrap().args, vec!["--read-only"]);
    assert_eq!(Processor::from_json(&d.to_json()).unwrap(), d);
    // serde runs the same validation.
    let via_serde: Processor = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(via_serde, d);
    assert!(serde_json::from_str::<Processor>(r#"{"name":"x"}"#).is_err());
}

#[test]
fn defaults() {
    let p = Processor::from_json(&base().to_string()).unwrap();
    assert_eq!(p.cpus(), brigade::processor::DEFAULT_CPUS);
    assert_eq!(p.timeout(), brigade::processor::DEFAULT_TIMEOUT);
    assert_eq!(p.retries(), 0);
    assert!(p.constraint_specs().is_empty());
    let no_output = Processor::from_json(&with(json!({"output": null}))).unwrap();
    assert_eq!(no_output.output(), None);
}

/// Each case: changes to the base document, and the fields that must be reported.
#[test]
fn every_problem_is_reported_with_its_field() {
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"name": null}), vec!["name"]),
        (json!({"name": "a b"}), vec!["name"]),
        (json!({"input": ""}), vec!["input"]),
        (json!({"error": 5}), vec!["error"]),
        (json!({"output": "bad topic!"}), vec!["output"]),
        (json!({"docker": "img"}), vec!["docker"]),
        (json!({"command": null}), vec!["command"]),
        (json!({"command": " "}), vec!["command"]),
        (json!({"cpus": "lots"}), vec!["cpus"]),
        (json!({"cpus": 0}), vec!["cpus"]),
        (json!({"mem": -1}), vec!["mem"]),
        (json!({"mem": [1]}), vec!["mem"]),
        (
            json!({"env": ["NOEQUALS", "1X=2", "OK=1", 7]}),
            vec!["env[0]", "env[1]", "env[3]"],
        ),
        (json!({"env": "A=B"}), vec!["env"]),
        (json!({"timeout": "5"}), vec!["timeout"]),
        (json!({"timeout": 0}), vec!["timeout"]),
        (json!({"timeout": true}), vec!["timeout"]),
        (json!({"max_in_flight": 0}), vec!["max_in_flight"]),
        (json!({"max_in_flight": -3}), vec!["max_in_flight"]),
        (json!({"retries": 1.5}), vec!["retries"]),
        (
            json!({"backoff": "10secs", "max_backoff": "1secs"}),
            vec!["max_backoff"],
        ),
        (json!({"mode": "lukewarm"}), vec!["mode"]),
        (json!({"workers": {"min": 1}}), vec!["workers"]),
        (
            json!({"mode": "warm", "workers": {"min": 3, "max": 2, "x": 1}}),
            vec!["workers.x", "workers.max"],
        ),
        (json!({"max_output": 0}), vec!["max_output"]),
        (json!({"stream": "lines"}), vec!["stream"]),
        (json!({"mode": "warm", "stream": "bytes"}), vec!["stream"]),
        (
            json!({"constraints": [["hostname", "NEAR"]]}),
            vec!["constraints[0]"],
        ),
        (
            json!({"constraints": [["rack", "LIKE", "("]]}),
            vec!["constraints[0]"],
        ),
        (
            json!({"constraints": [["rack", "MAX_PER"]]}),
            vec!["constraints[0]"],
        ),
        (
            json!({"constraints": [["rack", "PREFER"]]}),
            vec!["constraints[0]"],
        ),
        (
            json!({"constraints": [{"field": "x"}]}),
            vec!["constraints[0]"],
        ),
        (
            json!({"volumes": [{"host-path": "/a", "container-path": "/b"}]}),
            vec!["volumes"],
        ),
        (
            json!({"docker_options": {"network": "none"}}),
            vec!["docker_options"],
        ),
        (
            json!({"command": null, "docker": "i", "volumes": [
                {"host-path": "rel", "container-path": "/b", "mode": "XX", "extra": 1},
                "nope"
            ]}),
            vec![
                "volumes[0].host-path",
                "volumes[0].mode",
                "volumes[0].extra",
                "volumes[1]",
            ],
        ),
        (
            json!({"command": null, "docker": "i", "docker_options": {"network": "", "args": [1], "cap": 1}}),
            vec![
                "docker_options.network",
                "docker_options.args[0]",
                "docker_options.cap",
            ],
        ),
        (
            json!({"colour": "red", "sizes": 3}),
            vec!["colour", "sizes"],
        ),
    ];
    for (changes, fields) in cases {
        let doc = with(changes.clone());
        let err = Processor::from_json(&doc).expect_err(&doc);
        for f in &fields {
            assert!(
                err.has(f),
                "{changes}: expected a problem with {f}, got {err}"
            );
        }
        let reported: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(reported.len(), fields.len(), "{changes}: {err}");
    }
}

#[test]
fn many_problems_at_once_and_unknown_keys_named() {
    let err = Processor::from_json(
        r#"{"name": "", "cpus": "x", "mem": "y", "env": ["Z"], "frobnicate": 1}"#,
    )
    .unwrap_err();
    for f in [
        "name",
        "input",
        "error",
        "command",
        "cpus",
        "mem",
        "env[0]",
        "frobnicate",
    ] {
        assert!(err.has(f), "missing {f} in {err}");
    }
    let text = err.to_string();
    assert!(text.contains("unknown key \"frobnicate\""), "{text}");
    assert!(
        text.contains("cpus: must be a number or a numeric string"),
        "{text}"
    );
}

#[test]
fn not_json_or_not_an_object() {
    assert!(
        Processor::from_json("{").unwrap_err().errors[0]
            .message
            .starts_with("not valid JSON")
    );
    assert!(Processor::from_json("[1]").is_err());
}

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    fn processor_json() -> impl Strategy<Value = Value> {
        (
            "[a-zA-Z0-9._-]{1,20}",
            "[a-z]{1,10}",
            proptest::option::of("[a-z]{1,10}"),
            prop_oneof![
                "[a-z]{1,10}(:[0-9])?".prop_map(|i| json!({ "docker": i })),
                "[ -~]{1,40}".prop_map(|c| json!({ "command": c })),
            ],
            (1u32..6400, 1u32..100_000),
            proptest::collection::vec("[A-Z_][A-Z0-9_]{0,8}=[ -~]{0,10}", 0..4),
            (1u64..100_000, 1u32..100, 0u32..10, 1u64..5_000),
            prop_oneof![Just("per-message"), Just("warm")],
            proptest::collection::vec(
                prop_oneof![
                    Just(json!(["hostname", "UNIQUE"])),
                    "[a-z]{1,5}".prop_map(|v| json!(["rack", "IS", v])),
                    (1u32..5).prop_map(|n| json!(["rack", "MAX_PER", n.to_string()])),
                    "[a-z]{1,5}".prop_map(|v| json!(["zone", "PREFER", v])),
                ],
                0..3,
            ),
        )
            .prop_map(
                |(
                    name,
                    input,
                    output,
                    runner,
                    (cpus, mem),
                    env,
                    (t, mif, retries, b),
                    mode,
                    cs,
                )| {
                    let mut v = json!({
                        "name": name, "input": input, "error": "errors",
                        "cpus": f64::from(cpus) / 100.0, "mem": mem.to_string(),
                        "env": env, "timeout": t as f64 / 1000.0, "max_in_flight": mif,
                        "retries": retries, "backoff": format!("{b}ms"), "mode": mode,
                        "constraints": cs,
                    });
                    if let Some(o) = output {
                        v["output"] = json!(o);
                    }
                    for (k, x) in runner.as_object().unwrap() {
                        v[k] = x.clone();
                    }
                    v
                },
            )
    }

    proptest! {
        #[test]
        fn valid_processors_survive_a_json_round_trip(doc in processor_json()) {
            let p = Processor::from_json(&doc.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let again = Processor::from_json(&p.to_json()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, p);
        }
    }
}
