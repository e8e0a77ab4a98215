//! The REST API in process over a real meta scheduler (directory source, mesos-local, and
//! tansu when installed): every route with its success and error answers, validation errors
//! per field with 400, `/ready` with reasons, and the OpenAPI document: parsed with the `oas3`
//! crate (OpenAPI 3.1, what utoipa 5 emits) plus the structural checks the crate does not make
//! (see `parse_openapi`), and matching the routes (every documented operation is requested,
//! each documented status provoked and answered as documented).

mod support;

use std::sync::Arc;
use std::time::Duration;

use brigade::general::{FileSource, General, GeneralConfig};
use brigade::pipeline::BrigadeConfig;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct Setup {
    general: General,
    cluster: mesos_local::cluster::LocalCluster,
    dir: tempfile::TempDir,
    _work: tempfile::TempDir,
    _broker: Option<support::tansu::Tansu>,
    kafka_up: bool,
}

async fn setup() -> Setup {
    support::init_logs();
    let broker = support::tansu::tansu_or_skip("api_routes (kafka part of /ready)");
    let (brokers, kafka_up) = match &broker {
        Some(b) => (b.brokers(), true),
        None => (format!("127.0.0.1:{}", support::tansu::free_port()), false),
    };
    let work = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;
    let mut config = GeneralConfig::new(
        BrigadeConfig {
            scheduler: support::scheduler_config(&cluster.master_url(), &brokers, None),
            executor_path: Some(support::executor_binary()),
            bind: "127.0.0.1:0".parse().unwrap(),
            advertised_host: None,
        },
        Arc::new(FileSource::new(dir.path())),
    );
    config.watch_path = Some(dir.path().to_path_buf());
    config.poll_interval = Duration::from_millis(200);
    config.drain_timeout = Duration::from_secs(5);
    if kafka_up {
        for name in ["alpha", "doc"] {
            let topics = [
                format!("{name}-in"),
                format!("{name}-out"),
                format!("{name}-err"),
            ];
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            brigade::kafka::create_topics(&brigade::kafka::KafkaConfig::new(&brokers), &topics, 1)
                .await
                .expect("topics");
        }
    }
    let general = General::start(config, |shared| Some(brigade::cli::routes(shared)))
        .await
        .expect("meta scheduler starts");
    Setup {
        general,
        cluster,
        dir,
        _work: work,
        _broker: broker,
        kafka_up,
    }
}

fn processor(name: &str) -> Value {
    json!({
        "name": name, "input": format!("{name}-in"), "output": format!("{name}-out"),
        "error": format!("{name}-err"), "command": "cat", "cpus": 0.1, "mem": 32
    })
}

async fn call(
    http: &Client,
    method: Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("API answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_as_documented() {
    let s = setup().await;
    let base = s.general.url().to_string();
    let http = Client::new();

    // Add: 201; the file appears in the directory (the one source of truth).
    let (status, body) = call(
        &http,
        Method::POST,
        format!("{base}/api/processors"),
        Some(processor("alpha")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "alpha");
    assert!(s.dir.path().join("alpha.json").is_file());
    // Again: 409.
    let (status, body) = call(
        &http,
        Method::POST,
        format!("{base}/api/processors"),
        Some(processor("alpha")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Invalid: 400 with every problem per field.
    let (status, body) = call(
        &http,
        Method::POST,
        format!("{base}/api/processors"),
        Some(json!({"name": "bad", "input": "", "cpus": "many", "flavour": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for field in ["input", "cpus", "flavour", "error"] {
        assert!(fields.contains(&field), "{field} reported: {body}");
    }
    // Validate only: 200 with the verdict, nothing written.
    let (status, body) = call(
        &http,
        Method::POST,
        format!("{base}/api/validate"),
        Some(json!({"name": "v", "cpus": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["valid"], false);
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "cpus"),
        "{body}"
    );
    let (_, body) = call(
        &http,
        Method::POST,
        format!("{base}/api/validate"),
        Some(processor("v")),
    )
    .await;
    assert_eq!(body["valid"], true, "{body}");
    assert!(!s.dir.path().join("v.json").exists());
    // Not JSON: 400.
    let response = http
        .post(format!("{base}/api/processors"))
        .body("{ nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // It runs (the reconcile loop picked the file up); without Kafka it fails, with the reason.
    let want = if s.kafka_up { "running" } else { "failed" };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = call(
            &http,
            Method::GET,
            format!("{base}/api/processors/alpha/status"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        if body["state"] == want {
            assert!(body["counters"]["consumed"].is_u64());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never running: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = call(&http, Method::GET, format!("{base}/api/processors"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");

    // Update: the name comes from the path; a different one is refused.
    let mut changed = processor("alpha");
    changed["command"] = json!("tr a-z A-Z");
    let (status, body) = call(
        &http,
        Method::PUT,
        format!("{base}/api/processors/alpha"),
        Some(changed.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["config"]["command"], "tr a-z A-Z");
    let (status, _) = call(
        &http,
        Method::PUT,
        format!("{base}/api/processors/beta"),
        Some(processor("alpha")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &http,
        Method::PUT,
        format!("{base}/api/processors/beta"),
        Some(processor("beta")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Stop and start: persisted in the file.
    let (status, body) = call(
        &http,
        Method::POST,
        format!("{base}/api/processors/alpha/stop"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stopped"], true);
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(s.dir.path().join("alpha.json")).unwrap())
            .unwrap();
    assert_eq!(file["stopped"], true);
    let (status, body) = call(
        &http,
        Method::POST,
        format!("{base}/api/processors/alpha/start"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stopped"], false);

    // Unknown processors: 404 everywhere.
    for (method, path) in [
        (Method::GET, "/api/processors/nope"),
        (Method::GET, "/api/processors/nope/status"),
        (Method::DELETE, "/api/processors/nope"),
        (Method::POST, "/api/processors/nope/start"),
        (Method::POST, "/api/processors/nope/stop"),
    ] {
        let (status, body) = call(&http, method.clone(), format!("{base}{path}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("nope"));
    }

    // Health and readiness.
    let health = http.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (status, body) = call(&http, Method::GET, format!("{base}/ready"), None).await;
    assert_eq!(body["mesos"], true, "{body}");
    assert_eq!(body["leader"], true, "{body}");
    if s.kafka_up {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["ready"], true);
    } else {
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            body["reasons"][0].as_str().unwrap().contains("Kafka"),
            "{body}"
        );
    }
    // The UI and metrics are on the same server.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
        assert_eq!(metrics.status(), StatusCode::OK);
        let text = metrics.text().await.unwrap();
        let lag = !s.kafka_up || text.contains("brigade_consumer_lag{processor=\"alpha\"}");
        if lag
            && text.contains("brigade_messages_consumed_total{processor=\"alpha\"}")
            && text.contains(&format!(
                "brigade_processor_state{{processor=\"alpha\",state=\"{want}\"}} 1"
            ))
        {
            assert!(
                text.contains("mesos_sdk_artifact_requests"),
                "the SDK's metrics beside"
            );
            for family in [
                "brigade_records_produced_total",
                "brigade_records_failed_total",
                "brigade_duplicates_total",
                "brigade_messages_in_flight",
            ] {
                assert!(text.contains(family), "{family} in {text}");
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics never showed alpha: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Remove: 204, the file is gone.
    let (status, _) = call(
        &http,
        Method::DELETE,
        format!("{base}/api/processors/alpha"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!s.dir.path().join("alpha.json").exists());

    s.general.shutdown().await;
    s.cluster.shutdown().await;
}

/// Parses `doc` with `oas3` (the OpenAPI 3.1 model; utoipa 5 emits 3.1) and checks what the
/// crate's typed parse does not: `oas3` parses and resolves references but does not validate a
/// document against the 3.1 schema, so the structural rules are checked here: a supported
/// version, unique operation ids, every response with a description, every `$ref` (wherever
/// it is) resolved by the crate to an object of its kind, every templated path parameter
/// declared and required. Answers the parsed spec.
fn parse_openapi(doc: &Value) -> oas3::Spec {
    use oas3::spec::{ObjectOrReference, Parameter, Ref, RefType, RequestBody, Schema};
    let spec = oas3::from_json(doc.to_string()).expect("the document parses as OpenAPI 3.1");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!((version.major, version.minor), (3, 1), "version {version}");
    assert!(
        !spec.info.title.is_empty() && !spec.info.version.is_empty(),
        "info"
    );
    // Every $ref, resolved through the crate.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r.clone()),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty(), "the document uses components");
    for r in &all {
        let kind = r
            .parse::<Ref>()
            .unwrap_or_else(|e| panic!("ref {r}: {e}"))
            .kind;
        let resolved = match kind {
            RefType::Schema => ObjectOrReference::<Schema>::Ref {
                ref_path: r.clone(),
                summary: None,
                description: None,
            }
            .resolve(&spec)
            .map(drop),
            RefType::Response => ObjectOrReference::<oas3::spec::Response>::Ref {
                ref_path: r.clone(),
                summary: None,
                description: None,
            }
            .resolve(&spec)
            .map(drop),
            RefType::Parameter => ObjectOrReference::<Parameter>::Ref {
                ref_path: r.clone(),
                summary: None,
                description: None,
            }
            .resolve(&spec)
            .map(drop),
            RefType::RequestBody => ObjectOrReference::<RequestBody>::Ref {
                ref_path: r.clone(),
                summary: None,
                description: None,
            }
            .resolve(&spec)
            .map(drop),
            other => panic!("ref {r} of a kind this API does not use: {other}"),
        };
        resolved.unwrap_or_else(|e| panic!("unresolved {r}: {e}"));
    }
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, op) in spec.operations() {
        assert!(path.starts_with('/'), "path {path}");
        let id = op
            .operation_id
            .clone()
            .unwrap_or_else(|| panic!("{method} {path}: operationId"));
        assert!(ids.insert(id.clone()), "operationId {id} twice");
        let declared = op.responses.as_ref().map_or(0, |r| r.len());
        let responses = op.responses(&spec);
        assert!(
            declared > 0 && responses.len() == declared,
            "{method} {path}: every response resolves"
        );
        for (code, response) in &responses {
            assert!(
                code == "default" || code.parse::<u16>().is_ok_and(|c| (100..600).contains(&c)),
                "{method} {path}: status {code}"
            );
            assert!(
                response
                    .description
                    .as_deref()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {code}: description"
            );
        }
        if op.request_body.is_some() {
            op.request_body(&spec)
                .unwrap_or_else(|e| panic!("{method} {path}: request body: {e}"));
        }
        let parameters = op.parameters(&spec).unwrap();
        assert_eq!(
            parameters.len(),
            op.parameters.len(),
            "{method} {path}: parameters resolve"
        );
        for name in path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            assert!(
                parameters.iter().any(|p| p.name == name
                    && p.location == oas3::spec::ParameterIn::Path
                    && p.required == Some(true)),
                "{method} {path}: path parameter {name} declared and required"
            );
        }
    }
    spec
}

/// One request of the OpenAPI test: method, documented path, the `{name}` it fills in, body,
/// and the status it must answer.
type Case = (&'static str, &'static str, &'static str, Option<Value>, u16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_matches_the_routes() {
    let s = setup().await;
    let base = s.general.url().to_string();
    let http = Client::new();
    let (status, doc) = call(&http, Method::GET, format!("{base}/openapi.json"), None).await;
    assert_eq!(status, StatusCode::OK);
    let spec = parse_openapi(&doc);
    // A processor whose document is invalid (start and stop answer 409 for it).
    std::fs::write(
        s.dir.path().join("broken.json"),
        json!({"name": "broken", "input": "in", "error": "err", "command": "cat", "cpus": "lots"})
            .to_string(),
    )
    .unwrap();
    let invalid = json!({"name": "doc", "input": "", "error": "doc-err", "command": "cat"});
    let ready = if s.kafka_up { 200 } else { 503 };
    let cases: Vec<Case> = vec![
        ("POST", "/api/processors", "", Some(processor("doc")), 201),
        ("POST", "/api/processors", "", Some(processor("doc")), 409),
        ("POST", "/api/processors", "", Some(invalid.clone()), 400),
        ("GET", "/api/processors", "", None, 200),
        ("GET", "/api/processors/{name}", "doc", None, 200),
        ("GET", "/api/processors/{name}", "nope", None, 404),
        ("GET", "/api/processors/{name}/status", "doc", None, 200),
        ("GET", "/api/processors/{name}/status", "nope", None, 404),
        (
            "PUT",
            "/api/processors/{name}",
            "doc",
            Some(processor("doc")),
            200,
        ),
        ("PUT", "/api/processors/{name}", "doc", Some(invalid), 400),
        (
            "PUT",
            "/api/processors/{name}",
            "nope",
            Some(processor("nope")),
            404,
        ),
        ("POST", "/api/validate", "", Some(processor("v")), 200),
        ("POST", "/api/processors/{name}/stop", "doc", None, 200),
        ("POST", "/api/processors/{name}/stop", "nope", None, 404),
        ("POST", "/api/processors/{name}/stop", "broken", None, 409),
        ("POST", "/api/processors/{name}/start", "doc", None, 200),
        ("POST", "/api/processors/{name}/start", "nope", None, 404),
        ("POST", "/api/processors/{name}/start", "broken", None, 409),
        ("GET", "/ready", "", None, ready),
        ("DELETE", "/api/processors/{name}", "doc", None, 204),
        ("DELETE", "/api/processors/{name}", "nope", None, 404),
    ];
    // Documented answers no request here provokes: a failing source (500), and the other
    // verdict of /ready.
    let unprovoked: Vec<(&str, &str, String)> = vec![
        ("GET", "/api/processors", "500".into()),
        (
            "GET",
            "/ready",
            (if s.kafka_up { 503 } else { 200 }).to_string(),
        ),
    ];
    let mut answered = std::collections::BTreeSet::new();
    for (method, path, name, body, want) in cases {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let op = spec
            .operation(&m, path)
            .unwrap_or_else(|| panic!("{method} {path} is documented"));
        let url = format!("{base}{}", path.replace("{name}", name));
        let (status, body) = call(&http, m, url, body).await;
        assert_eq!(status.as_u16(), want, "{method} {path} ({name}): {body}");
        assert!(
            op.responses(&spec).contains_key(status.as_str()),
            "{method} {path} answered undocumented {status}: {body}"
        );
        answered.insert((
            method.to_string(),
            path.to_string(),
            status.as_str().to_string(),
        ));
    }
    // Every documented operation and status was requested (or is listed as unprovoked).
    let mut operations = 0;
    for (path, method, op) in spec.operations() {
        operations += 1;
        for code in op.responses(&spec).keys() {
            let key = (method.to_string(), path.clone(), code.clone());
            let skipped = unprovoked
                .iter()
                .any(|(m, p, c)| *m == key.0 && *p == key.1 && *c == key.2);
            assert!(
                answered.contains(&key) || skipped,
                "documented {} {} {} never requested",
                key.0,
                key.1,
                key.2
            );
        }
    }
    assert_eq!(operations, 10, "the documented operations");
    s.general.shutdown().await;
    s.cluster.shutdown().await;
}
