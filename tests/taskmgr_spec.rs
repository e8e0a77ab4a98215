//! Task specs: JSON round trips (spec -> JSON -> spec), code and JSON giving the same spec,
//! validation tables (every problem at once, with its path), and conversion to `TaskInfo` on
//! an offer.

use std::time::Duration;

use mesos_sdk::resourcemgr::{OfferResources, for_offer, parse_resources};
use mesos_sdk::taskmgr::spec::{
    CheckPort, Command, ConvertError, DockerNetwork, DockerSpec, ExecutorSpec, HealthCheckSpec,
    NoArtifacts, Operator, Protocol, ResourceSpec, RestartPolicy, SpecErrorKind, TaskSpec,
    TaskSpecs, UriSpec, VolumeMode,
};
use mesos_sdk::v1::{AgentId, Offer, OfferId, TaskInfo, container_info, health_check};

/// Specs that between them set every field and every variant.
fn full_specs() -> TaskSpecs {
    TaskSpecs {
        tasks: vec![
            TaskSpec::new("web")
                .instances(3)
                .shell("python3 -m http.server $PORT0")
                .cpus(0.5)
                .mem(128.0)
                .disk(10.0)
                .gpus(1)
                .ports(2)
                .env("MODE", "prod")
                .env("weird.name", "x")
                .label("team", "web")
                .uri(UriSpec::url("https://example.com/site.tgz").cache())
                .uri(
                    UriSpec::artifact("tool")
                        .executable()
                        .output_file("bin/tool"),
                )
                .volume("/srv/data", "data", VolumeMode::Ro)
                .volume("/tmp", "/scratch", VolumeMode::Rw)
                .health_check(
                    HealthCheckSpec::http(CheckPort::PortIndex(0), "/health")
                        .interval(Duration::from_secs(5))
                        .delay(Duration::from_millis(1500))
                        .timeout(Duration::from_secs(2))
                        .grace_period(Duration::from_secs(30))
                        .consecutive_failures(5),
                )
                .kill_grace_period(Duration::from_secs(20))
                .restart(
                    RestartPolicy::always()
                        .max_retries(10)
                        .backoff(Duration::from_millis(500), Duration::from_secs(60))
                        .sticky(),
                )
                .constraint("hostname", Operator::Unique, None)
                .constraint("rack", Operator::GroupBy, Some("3"))
                .constraint("zone", Operator::Like, Some("us-east-[0-9]+"))
                .constraint("zone", Operator::Unlike, Some("test.*"))
                .constraint("rack", Operator::MaxPer, Some("2"))
                .constraint("ssd", Operator::Is, Some("true"))
                .constraint("rack", Operator::In, Some("r1,r2"))
                .constraint("dc", Operator::Cluster, Some("dc1"))
                .data(vec![0u8, 1, 2, 255]),
            TaskSpec::new("nginx")
                .argv(["nginx", "-g", "daemon off;"])
                .cpus(1.0)
                .mem(256.0)
                .ports(1)
                .docker(
                    DockerSpec::image("nginx:1.27")
                        .network(DockerNetwork::Bridge)
                        .port(80, None, Protocol::Tcp)
                        .port(53, Some(5353), Protocol::Udp)
                        .privileged()
                        .force_pull()
                        .parameter("label", "a=b")
                        .parameter("label", "c=d"),
                )
                .health_check(HealthCheckSpec::tcp(CheckPort::Port(80)))
                .restart(RestartPolicy::never()),
            TaskSpec::new("overlay")
                .cpus(0.1)
                .mem(32.0)
                .docker(DockerSpec::image("busybox").user_network("overlay-1"))
                .health_check(HealthCheckSpec::command(Command::Shell("true".into()))),
            TaskSpec::new("custom")
                .cpus(0.1)
                .mem(32.0)
                .executor(
                    ExecutorSpec::artifact("my-executor")
                        .arg("--verbose")
                        .resources(ResourceSpec {
                            cpus: 0.1,
                            mem: 32.0,
                            ..Default::default()
                        }),
                )
                .data(b"work item 7".to_vec()),
        ],
    }
}

#[test]
fn specs_round_trip_through_json() {
    let specs = full_specs();
    specs.validate().unwrap();
    let text = serde_json::to_string_pretty(&specs).unwrap();
    let back = TaskSpecs::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(back, specs);
    for spec in &specs.tasks {
        let one = TaskSpec::from_json(&spec.to_json()).unwrap();
        assert_eq!(&one, spec);
    }
    // Plain serde reads the same text (it rejects unknown keys too, one at a time).
    let plain: TaskSpecs = serde_json::from_str(&text).unwrap();
    assert_eq!(plain, specs);
}

#[test]
fn json_uses_mesos_durations_base64_and_snake_case() {
    let specs = full_specs();
    let json = serde_json::to_value(&specs).unwrap();
    let web = &json["tasks"][0];
    assert_eq!(
        web["command"],
        serde_json::json!({"shell": "python3 -m http.server $PORT0"})
    );
    assert_eq!(web["restart"]["backoff_min"], "500ms");
    assert_eq!(web["restart"]["policy"], "always");
    assert_eq!(web["health_check"]["delay"], "1500ms");
    assert_eq!(web["health_check"]["http"]["port_index"], 0);
    assert_eq!(web["kill_policy"]["grace_period"], "20secs");
    assert_eq!(web["data"], "AAEC/w==");
    assert_eq!(
        web["constraints"][1],
        serde_json::json!({"field": "rack", "operator": "GROUP_BY", "value": "3"})
    );
    assert_eq!(web["volumes"][0]["mode"], "ro");
    let nginx = &json["tasks"][1];
    assert_eq!(nginx["command"]["argv"][0], "nginx");
    assert_eq!(nginx["docker"]["network"], "bridge");
    assert_eq!(nginx["docker"]["port_mappings"][1]["protocol"], "udp");
    // Defaults are left out or written as they are.
    assert!(json["tasks"][2].get("data").is_none());
    assert_eq!(json["tasks"][2]["instances"], 1);
}

#[test]
fn code_and_json_give_the_same_spec_with_defaults() {
    let from_json = TaskSpec::from_json(
        r#"{"name": "hello", "command": {"shell": "echo hi"}, "resources": {"cpus": 0.1, "mem": 32}}"#,
    )
    .unwrap();
    let in_code = TaskSpec::new("hello").shell("echo hi").cpus(0.1).mem(32.0);
    assert_eq!(from_json, in_code);
    assert_eq!(from_json.instances, 1);
    assert_eq!(from_json.restart, RestartPolicy::on_failure());
    assert_eq!(from_json.restart.backoff_min, Duration::from_secs(1));
    assert_eq!(from_json.restart.backoff_max, Duration::from_secs(300));
    let check = TaskSpec::from_json(
        r#"{"name": "h", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1},
            "health_check": {"tcp": {"port": 80}}, "uris": [{"value": "http://x/a.tgz"}]}"#,
    )
    .unwrap();
    let hc = check.health_check.unwrap();
    assert_eq!(hc.delay, Duration::from_secs(15));
    assert_eq!(hc.interval, Duration::from_secs(10));
    assert_eq!(hc.timeout, Duration::from_secs(20));
    assert_eq!(hc.grace_period, Duration::from_secs(10));
    assert_eq!(hc.consecutive_failures, 3);
    assert!(check.uris[0].extract);
    assert!(!check.uris[0].executable);
}

/// (document, expected `path: message` lines, in order).
const VALIDATION_TABLE: &[(&str, &[&str])] = &[
    (
        r#"{"tasks": [
            {"name": "a", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1}},
            {"name": "b", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1}},
            {"name": "c", "command": {"shell": "x"}, "resources": {"cpus": 0, "mem": -1}}
        ]}"#,
        &[
            "tasks[2].resources.cpus: must be > 0",
            "tasks[2].resources.mem: must be > 0",
        ],
    ),
    (
        r#"{"tasks": [{"name": "a", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1},
            "colour": "red", "restart": {"policy": "sometimes", "retries": 3}}],
            "version": 2}"#,
        &[
            "tasks[0].colour: unknown key \"colour\" (known keys: name, instances, command, docker, executor, resources, env, labels, uris, volumes, health_check, kill_policy, restart, constraints, data)",
            "tasks[0].restart.policy: must be one of \"never\", \"on_failure\", \"always\", not \"sometimes\"",
            "tasks[0].restart.retries: unknown key \"retries\" (known keys: policy, max_retries, backoff_min, backoff_max, sticky)",
            "version: unknown key \"version\" (known keys: tasks)",
        ],
    ),
    (
        r#"{"tasks": [{"name": "", "resources": {"cpus": "lots", "mem": 64}, "instances": -1}]}"#,
        &[
            "tasks[0]: needs one of command, docker (with or without a command) or executor",
            "tasks[0].instances: expected a whole number from 0 to 4294967295, found a negative number",
            "tasks[0].name: must be 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
            "tasks[0].resources.cpus: expected a number, found a string",
        ],
    ),
    (
        r#"{"tasks": [
            {"name": "dup", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1}},
            {"name": "dup", "command": {"shell": "x", "argv": ["y"]}, "resources": {"cpus": 1, "mem": 1}}
        ]}"#,
        &[
            "tasks[1].command: needs exactly one of \"shell\", \"argv\"",
            "tasks[1].name: duplicate name \"dup\" (also tasks[0].name)",
        ],
    ),
    (
        r#"{"tasks": [{"name": "c", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1},
            "constraints": [
                {"field": "hostname", "operator": "UNIQUE", "value": "x"},
                {"field": "rack", "operator": "MAX_PER", "value": "zero"},
                {"field": "rack", "operator": "LIKE", "value": "(unclosed"},
                {"field": "rack", "operator": "NEAR"},
                {"field": "", "operator": "IS"},
                {"field": "rack", "operator": "IN", "value": "a,,b"},
                {"field": "rack", "value": "x"},
                {"field": "rack", "operator": "GROUP_BY", "value": "2"}
            ]}]}"#,
        &[
            "tasks[0].constraints[0].value: UNIQUE takes no value",
            "tasks[0].constraints[1].value: MAX_PER takes a whole number >= 1, not \"zero\"",
            "tasks[0].constraints[2].value: not a valid regular expression: error: unclosed group",
            "tasks[0].constraints[3].operator: must be one of \"UNIQUE\", \"CLUSTER\", \"GROUP_BY\", \"LIKE\", \"UNLIKE\", \"MAX_PER\", \"IS\", \"IN\", not \"NEAR\"",
            "tasks[0].constraints[4].field: must not be empty",
            "tasks[0].constraints[4].value: IS requires a value",
            "tasks[0].constraints[5].value: IN takes a comma-separated list of non-empty values",
            "tasks[0].constraints[6].operator: is required",
        ],
    ),
    (
        r#"{"tasks": [{"name": "d", "resources": {"cpus": 1, "mem": 1, "ports": 1},
            "docker": {"image": " ", "network": "host", "network_name": "n",
                       "port_mappings": [{"container_port": 0}, {"container_port": 80}],
                       "parameters": [{"key": "", "value": "v"}]},
            "volumes": [{"host_path": "rel", "container_path": ""}],
            "uris": [{}, {"value": "x", "artifact": "y"}, {"artifact": "../x"},
                     {"value": "x", "output_file": "../out"}, {"value": "x", "executable": true}],
            "env": {"A=B": "x"}, "data": "not base64!",
            "health_check": {"http": {"port_index": 3, "path": "health"}, "tcp": {"port": 70000},
                             "interval": "0secs", "timeout": "soon", "consecutive_failures": 0},
            "kill_policy": {},
            "restart": {"policy": "never", "max_retries": 1, "backoff_min": "10secs", "backoff_max": "1secs"}
        }]}"#,
        &[
            "tasks[0].data: not valid base64: Invalid symbol 32, offset 3.",
            "tasks[0].docker.image: must not be empty",
            "tasks[0].docker.network_name: applies only to network user",
            "tasks[0].docker.parameters[0].key: must not be empty",
            "tasks[0].docker.port_mappings: need network bridge or user (host and none publish no ports)",
            "tasks[0].docker.port_mappings: 2 mappings without host_port need resources.ports >= 2 (it is 1)",
            "tasks[0].docker.port_mappings[0].container_port: must be 1 to 65535",
            "tasks[0].env[\"A=B\"]: a variable name must be non-empty, without '=' or NUL",
            "tasks[0].health_check: needs exactly one of command, http and tcp",
            "tasks[0].health_check.consecutive_failures: must be >= 1",
            "tasks[0].health_check.http.path: must start with /",
            "tasks[0].health_check.http.port_index: must be < resources.ports (1): it indexes the ports taken from the offer",
            "tasks[0].health_check.interval: must be > 0",
            "tasks[0].health_check.tcp.port: must be 1 to 65535",
            "tasks[0].health_check.timeout: not a Mesos duration like \"10secs\": duration 'soon' does not start with a decimal number",
            "tasks[0].kill_policy.grace_period: is required",
            "tasks[0].restart.backoff_max: must be >= backoff_min",
            "tasks[0].restart.max_retries: has no effect with policy never",
            "tasks[0].uris[0]: needs exactly one of value and artifact",
            "tasks[0].uris[1]: needs exactly one of value and artifact",
            "tasks[0].uris[2].artifact: not a valid artifact name",
            "tasks[0].uris[3].output_file: must be a relative path inside the sandbox",
            "tasks[0].uris[4].extract: an executable file is not extracted",
            "tasks[0].volumes[0].container_path: must not be empty",
            "tasks[0].volumes[0].host_path: must be an absolute path",
        ],
    ),
    (
        r#"{"tasks": [{"name": "e", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1},
            "executor": {"artifact": "", "resources": {"cpus": -1}}},
            {"name": "u", "resources": {"cpus": 1, "mem": 1}, "docker": {"image": "i", "network": "user"}}]}"#,
        &[
            "tasks[0].executor: cannot be combined with command or docker: the executor runs the task",
            "tasks[0].executor.artifact: must be a registered artifact name (1 to 255 of A-Z a-z 0-9 . _ -)",
            "tasks[0].executor.resources.cpus: must be >= 0",
            "tasks[1].docker.network_name: is required with network user",
        ],
    ),
    (
        r#"{"tasks": [{"name": "n", "command": {"shell": "x"}, "instances": 5000000000,
            "resources": {"cpus": 1, "mem": 1, "gpus": 1.5}}]}"#,
        &[
            "tasks[0].instances: 5000000000 is out of range (at most 4294967295)",
            "tasks[0].resources.gpus: expected a whole number from 0 to 4294967295, found a fractional number",
        ],
    ),
    (
        r#"{"tasks": {"name": "x"}}"#,
        &["tasks: expected an array, found an object"],
    ),
    (r#"[1, 2]"#, &["$: expected an object, found an array"]),
    (
        r#"{"tasks": [null, 7, {"name": "ok", "command": {"shell": "x"}, "resources": {"cpus": 1, "mem": 1}, "labels": {"k": 1}, "env": null}]}"#,
        &[
            "tasks[0]: null is not allowed here (expected an object); leave the key out",
            "tasks[1]: expected an object, found a whole number",
            "tasks[2].env: null is not allowed here (expected an object of strings); leave the key out",
            "tasks[2].labels.k: expected a string, found a whole number",
        ],
    ),
];

#[test]
fn validation_reports_every_problem_with_its_path() {
    for (document, expected) in VALIDATION_TABLE {
        let errors = TaskSpecs::from_json(document)
            .err()
            .unwrap_or_else(|| panic!("accepted:\n{document}"));
        assert_eq!(errors.lines(), *expected, "\n{document}");
    }
}

#[test]
fn error_kinds_tell_unknown_keys_from_bad_values() {
    let errors = TaskSpecs::from_json(r#"{"tasks": [{"name": "a", "cmd": "x"}]}"#).unwrap_err();
    let kinds: Vec<SpecErrorKind> = errors.errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            SpecErrorKind::Invalid,
            SpecErrorKind::UnknownKey,
            SpecErrorKind::Invalid,
            SpecErrorKind::Invalid
        ]
    );
    let syntax = TaskSpecs::from_json("{\"tasks\": [").unwrap_err();
    assert_eq!(syntax.errors[0].kind, SpecErrorKind::Syntax);
    assert!(
        syntax.to_string().starts_with("$: not valid JSON"),
        "{syntax}"
    );
}

#[test]
fn specs_built_in_code_are_validated_the_same_way() {
    let spec = TaskSpec::new("bad name").shell("").cpus(f64::NAN).mem(32.0);
    let errors = spec.validate().unwrap_err();
    assert_eq!(
        errors.lines(),
        vec![
            "name: must be 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit",
            "command.shell: must not be empty",
            "resources.cpus: must be a finite number",
        ]
    );
}

fn offer(resources: &str) -> OfferResources {
    OfferResources::new(&Offer {
        id: OfferId { value: "o1".into() },
        agent_id: AgentId {
            value: "agent-1".into(),
        },
        hostname: "host-1".into(),
        resources: parse_resources(resources)
            .unwrap()
            .iter()
            .map(|r| for_offer(r, "*", true))
            .collect(),
        ..Default::default()
    })
}

fn scalar(task: &[mesos_sdk::v1::Resource], name: &str) -> f64 {
    task.iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.as_ref())
        .map(|s| s.value)
        .sum()
}

fn env(task: &TaskInfo) -> Vec<(String, String)> {
    let command = task
        .command
        .as_ref()
        .or_else(|| task.executor.as_ref().and_then(|e| e.command.as_ref()))
        .unwrap();
    command
        .environment
        .iter()
        .flat_map(|e| &e.variables)
        .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
        .collect()
}

#[test]
fn a_command_spec_becomes_a_task_info_on_an_offer() {
    let specs = full_specs();
    let web = &specs.tasks[0];
    let mut pool = offer("cpus:2;mem:1024;disk:100;gpus:1;ports:[31000-31010]");
    let artifacts =
        |name: &str| (name == "tool").then(|| "http://s:1/artifacts/tool?v=1".to_string());
    let task = web.task_info("web.0.abc", &mut pool, &artifacts).unwrap();
    assert_eq!(task.task_id.value, "web.0.abc");
    assert_eq!(task.name, "web");
    assert_eq!(task.agent_id.value, "agent-1");
    assert_eq!(scalar(&task.resources, "cpus"), 0.5);
    assert_eq!(scalar(&task.resources, "mem"), 128.0);
    assert_eq!(scalar(&task.resources, "disk"), 10.0);
    assert_eq!(scalar(&task.resources, "gpus"), 1.0);
    assert!(task.resources.iter().all(|r| r.allocation_info.is_some()));
    let command = task.command.as_ref().unwrap();
    assert_eq!(command.shell, Some(true));
    assert_eq!(
        command.value.as_deref(),
        Some("python3 -m http.server $PORT0")
    );
    assert_eq!(
        env(&task),
        vec![
            ("MODE".to_string(), "prod".to_string()),
            ("weird.name".into(), "x".into()),
            ("PORT0".into(), "31000".into()),
            ("PORT1".into(), "31001".into()),
            ("PORTS".into(), "31000,31001".into()),
        ]
    );
    assert_eq!(command.uris.len(), 2);
    assert_eq!(command.uris[0].cache, Some(true));
    assert_eq!(command.uris[1].value, "http://s:1/artifacts/tool?v=1");
    assert_eq!(command.uris[1].executable, Some(true));
    assert_eq!(command.uris[1].extract, Some(false));
    assert_eq!(command.uris[1].output_file.as_deref(), Some("bin/tool"));
    let container = task.container.as_ref().unwrap();
    assert_eq!(container.r#type, container_info::Type::Mesos as i32);
    assert_eq!(container.volumes.len(), 2);
    assert_eq!(container.volumes[0].host_path.as_deref(), Some("/srv/data"));
    let check = task.health_check.as_ref().unwrap();
    assert_eq!(check.r#type, Some(health_check::Type::Http as i32));
    assert_eq!(check.http.as_ref().unwrap().port, 31000);
    assert_eq!(check.interval_seconds, Some(5.0));
    assert_eq!(check.delay_seconds, Some(1.5));
    assert_eq!(check.consecutive_failures, Some(5));
    assert_eq!(
        task.kill_policy
            .as_ref()
            .unwrap()
            .grace_period
            .as_ref()
            .unwrap()
            .nanoseconds,
        20_000_000_000
    );
    assert_eq!(task.labels.as_ref().unwrap().labels[0].key, "team");
    assert_eq!(task.data.as_deref(), Some(&[0u8, 1, 2, 255][..]));
    // What was taken is gone from the offer.
    let left = pool.summary();
    assert_eq!(left.scalar("cpus"), 1.5);
    assert_eq!(left.ranges("ports"), vec![(31002, 31010)]);
}

#[test]
fn docker_and_executor_specs_become_task_infos() {
    let specs = full_specs();
    let mut pool = offer("cpus:4;mem:1024;ports:[5353-5353,31000-31001]");
    let nginx = specs.tasks[1]
        .task_info("nginx.0", &mut pool, &NoArtifacts)
        .unwrap();
    let container = nginx.container.as_ref().unwrap();
    assert_eq!(container.r#type, container_info::Type::Docker as i32);
    let docker = container.docker.as_ref().unwrap();
    assert_eq!(docker.image, "nginx:1.27");
    assert_eq!(docker.privileged, Some(true));
    assert_eq!(docker.force_pull_image, Some(true));
    assert_eq!(docker.parameters.len(), 2);
    let mappings: Vec<(u32, u32, &str)> = docker
        .port_mappings
        .iter()
        .map(|m| {
            (
                m.host_port,
                m.container_port,
                m.protocol.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(mappings, vec![(31000, 80, "tcp"), (5353, 53, "udp")]);
    let command = nginx.command.as_ref().unwrap();
    assert_eq!(command.shell, Some(false));
    assert_eq!(command.value.as_deref(), Some("nginx"));
    assert_eq!(command.arguments, vec!["nginx", "-g", "daemon off;"]);
    assert_eq!(
        nginx
            .health_check
            .as_ref()
            .unwrap()
            .tcp
            .as_ref()
            .unwrap()
            .port,
        80
    );

    let overlay = specs.tasks[2]
        .task_info("overlay.0", &mut pool, &NoArtifacts)
        .unwrap();
    let container = overlay.container.as_ref().unwrap();
    assert_eq!(
        container.network_infos[0].name.as_deref(),
        Some("overlay-1")
    );
    assert_eq!(overlay.command.as_ref().unwrap().value, None);

    // The executor's artifact must be known.
    let custom = &specs.tasks[3];
    let before = pool.summary();
    assert!(matches!(
        custom.task_info("custom.0", &mut pool, &NoArtifacts),
        Err(ConvertError::UnknownArtifact { name }) if name == "my-executor"
    ));
    assert_eq!(pool.summary(), before);
    let artifacts = |name: &str| Some(format!("http://s:1/artifacts/{name}?v=2"));
    let task = custom.task_info("custom.0", &mut pool, &artifacts).unwrap();
    assert!(task.command.is_none());
    let executor = task.executor.as_ref().unwrap();
    assert_eq!(executor.executor_id.value, "custom.0.executor");
    let command = executor.command.as_ref().unwrap();
    assert_eq!(command.value.as_deref(), Some("./my-executor"));
    assert_eq!(command.arguments, vec!["./my-executor", "--verbose"]);
    assert_eq!(
        command.uris[0].value,
        "http://s:1/artifacts/my-executor?v=2"
    );
    assert_eq!(command.uris[0].executable, Some(true));
    assert_eq!(command.uris[0].output_file.as_deref(), Some("my-executor"));
    assert_eq!(scalar(&executor.resources, "cpus"), 0.1);
    assert_eq!(scalar(&task.resources, "cpus"), 0.1);
    assert_eq!(task.data.as_deref(), Some(&b"work item 7"[..]));
}

#[test]
fn a_short_offer_is_left_as_it_was() {
    let spec = TaskSpec::new("big").shell("x").cpus(1.0).mem(64.0).ports(3);
    let mut pool = offer("cpus:2;mem:128;ports:[31000-31001]");
    let before = pool.summary();
    let err = spec
        .task_info("big.0", &mut pool, &NoArtifacts)
        .unwrap_err();
    assert!(matches!(err, ConvertError::Shortfall(_)), "{err}");
    assert_eq!(pool.summary(), before);
    let invalid = TaskSpec::new("x").cpus(1.0).mem(1.0);
    assert!(matches!(
        invalid.task_info("x.0", &mut pool, &NoArtifacts),
        Err(ConvertError::Invalid(_))
    ));
}
