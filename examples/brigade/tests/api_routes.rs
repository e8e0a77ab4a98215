//! The REST API in process over a real meta scheduler (directory source, mesos-local, and
//! tansu when installed): every route with its success and error answers, validation errors
//! per field with 400, `/ready` with reasons, and the OpenAPI document: valid OpenAPI 3
//! (checked structurally: version, info, operations, responses, parameters, every `$ref`
//! resolves) and matching the routes (every documented operation is requested and answers
//! one of its documented statuses).

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

/// Checks the structure OpenAPI 3 requires of `doc`; panics naming the first problem.
fn check_openapi3(doc: &Value) {
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "version {version}");
    assert!(
        doc["info"]["title"].is_string() && doc["info"]["version"].is_string(),
        "info"
    );
    let paths = doc["paths"].as_object().expect("paths");
    assert!(!paths.is_empty());
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        out.push(v.as_str().unwrap_or_default().to_string());
                    } else {
                        refs(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    for r in &all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("ref {r}"));
        assert!(schemas.contains_key(name), "unresolved {r}");
    }
    for (path, item) in paths {
        assert!(path.starts_with('/'), "path {path}");
        let templated: Vec<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            assert!(
                [
                    "get", "put", "post", "delete", "patch", "head", "options", "trace"
                ]
                .contains(&method.as_str()),
                "{path}: method {method}"
            );
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path}: responses"));
            assert!(!responses.is_empty());
            for (code, response) in responses {
                assert!(
                    code == "default" || code.parse::<u16>().is_ok_and(|c| (100..600).contains(&c)),
                    "{code}"
                );
                assert!(
                    response["description"].is_string(),
                    "{method} {path} {code}: description"
                );
            }
            for name in &templated {
                let declared = op["parameters"].as_array().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| p["name"] == *name && p["in"] == "path" && p["required"] == true)
                });
                assert!(
                    declared,
                    "{method} {path}: path parameter {name} declared and required"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid_and_matches_the_routes() {
    let s = setup().await;
    let base = s.general.url().to_string();
    let http = Client::new();
    let (status, doc) = call(&http, Method::GET, format!("{base}/openapi.json"), None).await;
    assert_eq!(status, StatusCode::OK);
    check_openapi3(&doc);
    let (status, _) = call(
        &http,
        Method::POST,
        format!("{base}/api/processors"),
        Some(processor("doc")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut requested = 0;
    // Reads first, then writes, removal last.
    let order = ["get", "put", "post", "delete"];
    let paths = doc["paths"].as_object().unwrap();
    for method in order {
        for (path, item) in paths {
            let Some(op) = item.get(method) else { continue };
            let url = format!("{base}{}", path.replace("{name}", "doc"));
            let body = match method {
                "put" => Some(processor("doc")),
                "post" if path == "/api/processors" => Some(processor("doc2")),
                _ => None,
            };
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = call(&http, m, url, body).await;
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.iter().any(|c| c.as_str() == status.as_str()),
                "{method} {path} answered {status} (documented {documented:?}): {body}"
            );
            requested += 1;
        }
    }
    assert_eq!(requested, 10, "every documented operation requested");
    s.general.shutdown().await;
    s.cluster.shutdown().await;
}
