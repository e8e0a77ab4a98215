//! The web UI in headless Chromium (Debian's `chromium`), driven over the DevTools protocol
//! with `chromiumoxide`, against a real meta scheduler (mesos-local, tansu, the real
//! executor): the page loads with the connection state, a processor added through the form
//! appears and its counters and task latency (p50/p99) move as messages flow, one larger than
//! the agent shows the placer's reason as a warning, a bad one shows its validation error next
//! to the field, and no console error or exception happens. On a standby of two instances on
//! etcd, the page shows the leader's processors and an add through its form reaches the
//! leader (the standby proxies the API). Screenshots (laptop and phone
//! widths) are saved under `target/ui-screenshots/`. Skips with a reason without Chromium or
//! tansu.

mod support;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade::general::store_source::DEFAULT_PREFIX;
use brigade::general::{
    FileSource, General, GeneralConfig, ProcessorSource, StoreSource, TermStore,
};
use brigade::kafka::{KafkaConfig, create_topics};
use brigade::pipeline::BrigadeConfig;
use brigade::processor::Processor;
use chromiumoxide::cdp::browser_protocol::emulation::SetDeviceMetricsOverrideParams;
use chromiumoxide::cdp::browser_protocol::log::EventEntryAdded;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;

const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(60);
const LEADER_KEY: &str = "/brigade-ui/leader";

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn eval<T: serde::de::DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("{js}: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("{js}: {e}"))
}

async fn wait_until(page: &Page, js: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if eval::<bool>(page, js).await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(page: &Page, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        let js = format!(
            "(() => {{ const e = document.querySelector('#form [name={name}]'); e.value = {}; return true; }})()",
            serde_json::to_string(value).unwrap()
        );
        assert!(eval::<bool>(page, &js).await);
    }
}

/// Headless Chromium with one page, recording console errors, exceptions and failed loads.
struct Ui {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    listener: tokio::task::JoinHandle<()>,
    page: Page,
    problems: Arc<Mutex<Vec<String>>>,
    _profile: tempfile::TempDir,
}

impl Ui {
    async fn open() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let (browser, mut handler) = Browser::launch(
            BrowserConfig::builder()
                .chrome_executable(CHROMIUM)
                .no_sandbox()
                .user_data_dir(profile.path())
                .window_size(1280, 900)
                .arg("--disable-gpu")
                .arg("--disable-dev-shm-usage")
                .launch_timeout(Duration::from_secs(60))
                .build()
                .expect("browser config"),
        )
        .await
        .expect("chromium launches");
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.expect("page");
        page.enable_log().await.expect("log domain");
        page.enable_runtime().await.expect("runtime domain");
        let problems = Arc::new(Mutex::new(Vec::<String>::new()));
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .unwrap();
        let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
        let sink = problems.clone();
        let listener = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(e) = console.next() => {
                        if matches!(e.r#type, ConsoleApiCalledType::Error | ConsoleApiCalledType::Warning) {
                            sink.lock().unwrap().push(format!("console {:?}: {:?}", e.r#type, e.args));
                        }
                    }
                    Some(e) = exceptions.next() => {
                        sink.lock().unwrap().push(format!("exception: {:?}", e.exception_details));
                    }
                    Some(e) = log.next() => {
                        let level = format!("{:?}", e.entry.level).to_lowercase();
                        if level.contains("error") {
                            sink.lock().unwrap().push(format!("log: {} {:?}", e.entry.text, e.entry.url));
                        }
                    }
                    else => break,
                }
            }
        });
        Ui {
            browser,
            handler,
            listener,
            page,
            problems,
            _profile: profile,
        }
    }

    /// Asserts that nothing went wrong in the page, and closes the browser.
    async fn close(mut self) {
        let problems = self.problems.lock().unwrap().clone();
        assert!(problems.is_empty(), "console problems: {problems:?}");
        self.listener.abort();
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_adds_a_processor_shows_counters_and_validation_errors() {
    support::init_logs();
    if !std::path::Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED the_ui: no {CHROMIUM} (apt-get install chromium)");
        return;
    }
    let Some(broker) = support::tansu::tansu_or_skip("the_ui") else {
        return;
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["ui-in", "ui-out", "ui-err", "huge-in", "huge-err"],
        1,
    )
    .await
    .expect("topics");
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
    config.poll_interval = Duration::from_millis(500);
    let general = General::start(config, |shared| Some(brigade::cli::routes(shared)))
        .await
        .expect("meta scheduler starts");
    let base = general.url().to_string();

    let ui = Ui::open().await;
    let page = &ui.page;

    // Load: the connection and health pills fill in, no processors yet.
    page.goto(format!("{base}/")).await.expect("page loads");
    wait_until(
        page,
        "document.getElementById('conn').dataset.ok === 'true'",
        "connected",
    )
    .await;
    wait_until(
        page,
        "!document.getElementById('empty').hidden",
        "empty list",
    )
    .await;
    assert_eq!(
        eval::<String>(page, "document.getElementById('mesos').textContent").await,
        "Mesos up"
    );

    // Add a processor through the form.
    page.find_element("#new")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(
        page,
        &[
            ("name", "ui"),
            ("input", "ui-in"),
            ("output", "ui-out"),
            ("error", "ui-err"),
            ("runner", "tr a-z A-Z"),
            ("cpus", "0.1"),
            ("mem", "32"),
        ],
    )
    .await;
    page.find_element("#save")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        page,
        "document.getElementById('editor').hidden",
        "the form closes",
    )
    .await;
    wait_until(
        page,
        "(document.querySelector('[data-name=ui] [data-state]') || {}).textContent === 'running'",
        "the processor running",
    )
    .await;

    // Counters move as messages flow, without reloading the page.
    let payloads: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("ui message {i}").into_bytes())
        .collect();
    support::kafka::produce(&brokers, "ui-in", &payloads).await;
    wait_until(
        page,
        "Number((document.querySelector('[data-name=ui] [data-counter=produced]') || {}).textContent) >= 5",
        "produced counter at 5",
    )
    .await;
    // Task latency shows once tasks finished.
    wait_until(
        page,
        "/\\d/.test((document.querySelector('[data-name=ui] [data-counter=\"latency p50\"]') || {}).textContent || '')",
        "latency p50 of the finished tasks",
    )
    .await;
    let p99: String = eval(
        page,
        "document.querySelector('[data-name=ui] [data-counter=\"latency p99\"]').textContent",
    )
    .await;
    assert!(p99.ends_with(" ms") || p99.ends_with(" s"), "p99 {p99}");

    // A processor larger than the agent: its message waits, and the card says why.
    let added = reqwest::Client::new()
        .post(format!("{base}/api/processors"))
        .json(
            &serde_json::json!({"name": "huge", "input": "huge-in", "error": "huge-err",
                                  "command": "cat", "cpus": 100, "mem": 32}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), reqwest::StatusCode::CREATED);
    support::kafka::produce(&brokers, "huge-in", &[b"too big".to_vec()]).await;
    wait_until(
        page,
        "/cpus/.test((document.querySelector('[data-name=huge] [data-unplaced]') || {}).textContent || '')",
        "the unplaced reason on the huge processor",
    )
    .await;
    let reason: String = eval(
        page,
        "document.querySelector('[data-name=huge] [data-unplaced]').textContent",
    )
    .await;
    println!("unplaced warning: {reason}");
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        artifacts().join("ui-laptop.png"),
    )
    .await
    .expect("screenshot");

    // A bad processor: the error shows next to its field, the form stays open.
    page.find_element("#new")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(
        page,
        &[
            ("name", "bad"),
            ("input", "in"),
            ("error", "err"),
            ("runner", "cat"),
            ("cpus", "lots"),
        ],
    )
    .await;
    page.find_element("#save")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        page,
        "document.querySelector('#form .err[data-for=cpus]').textContent.length > 0",
        "the cpus error next to its field",
    )
    .await;
    assert!(!eval::<bool>(page, "document.getElementById('editor').hidden").await);
    assert_eq!(
        eval::<String>(
            page,
            "document.querySelector('#form [name=cpus]').getAttribute('aria-invalid')"
        )
        .await,
        "true"
    );
    assert!(
        !dir.path().join("bad.json").exists(),
        "nothing written for a bad processor"
    );

    // Phone width: the cards fit the viewport.
    page.execute(SetDeviceMetricsOverrideParams::new(390, 844, 2.0, true))
        .await
        .expect("phone viewport");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let overflow: bool = eval(
        page,
        "document.documentElement.scrollWidth > window.innerWidth + 1",
    )
    .await;
    assert!(!overflow, "no horizontal scrolling at phone width");
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        artifacts().join("ui-phone.png"),
    )
    .await
    .expect("screenshot");

    ui.close().await;
    println!("screenshots in {}", artifacts().display());

    general.shutdown().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_on_a_standby_shows_and_changes_the_leaders_processors() {
    support::init_logs();
    if !std::path::Path::new(CHROMIUM).exists() {
        eprintln!("SKIPPED the_ui_on_a_standby: no {CHROMIUM} (apt-get install chromium)");
        return;
    }
    let Some(broker) = support::tansu::tansu_or_skip("the_ui_on_a_standby") else {
        return;
    };
    let etcd = match support::etcd::Etcd::start().await {
        Ok(etcd) => etcd,
        Err(reason) => {
            eprintln!("SKIPPED the_ui_on_a_standby: {reason}");
            return;
        }
    };
    let brokers = broker.brokers();
    create_topics(
        &KafkaConfig::new(&brokers),
        &["sb-in", "sb-out", "sb-err"],
        1,
    )
    .await
    .expect("topics");
    let raw = StoreSource::new(Arc::new(etcd.store().await), DEFAULT_PREFIX);
    let first = serde_json::json!({"name": "first", "input": "sb-in", "output": "sb-out",
                                   "error": "sb-err", "command": "cat", "cpus": 0.1, "mem": 32});
    raw.put(
        &Processor::from_json(&first.to_string()).unwrap(),
        false,
        true,
    )
    .await
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let cluster = support::local_cluster(work.path()).await;

    // Two instances on etcd, as `brigade scheduler --ha --etcd` runs them.
    let mut instances = Vec::new();
    for _ in 0..2 {
        let store: Arc<dyn mesos_sdk::storage::Store> = Arc::new(etcd.store().await);
        let writes = TermStore::new(store, LEADER_KEY);
        let fenced: Arc<dyn mesos_sdk::storage::Store> = Arc::new(writes.clone());
        let source = StoreSource::new(fenced.clone(), DEFAULT_PREFIX);
        let mut config = GeneralConfig::new(
            BrigadeConfig {
                scheduler: support::scheduler_config(&cluster.master_url(), &brokers, Some(fenced)),
                executor_path: Some(support::executor_binary()),
                bind: "127.0.0.1:0".parse().unwrap(),
                advertised_host: None,
            },
            Arc::new(source.clone()),
        );
        config.watch_store = Some(source);
        config.poll_interval = Duration::from_millis(500);
        config.standby = true;
        let general = General::start(config, |shared| Some(brigade::cli::routes(shared)))
            .await
            .expect("meta scheduler starts");
        let election = brigade::general::ha::run_election(
            writes,
            general.shared().clone(),
            LEADER_KEY,
            general.url(),
            Duration::from_secs(2),
        )
        .expect("election");
        instances.push((general, election));
    }
    let deadline = Instant::now() + WAIT;
    let leader = loop {
        let leading: Vec<usize> = (0..2)
            .filter(|&i| instances[i].0.shared().leader.load(Ordering::SeqCst))
            .collect();
        if leading.len() == 1 {
            break leading[0];
        }
        assert!(Instant::now() < deadline, "no single leader: {leading:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let leader_url = instances[leader].0.url().to_string();
    let standby = &instances[1 - leader].0;
    let standby_url = standby.url().to_string();
    let deadline = Instant::now() + WAIT;
    while standby.shared().leader_url.lock().unwrap().as_deref() != Some(leader_url.as_str()) {
        assert!(
            Instant::now() < deadline,
            "the standby never learned the leader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let ui = Ui::open().await;
    let page = &ui.page;
    page.goto(format!("{standby_url}/"))
        .await
        .expect("page loads");
    // The leader's processors (running there; the standby itself runs nothing).
    wait_until(
        page,
        "(document.querySelector('[data-name=first] [data-state]') || {}).textContent === 'running'",
        "the leader's processor, running",
    )
    .await;
    wait_until(
        page,
        "document.getElementById('leader').textContent.startsWith('standby via leader')",
        "the standby naming its leader",
    )
    .await;
    assert_eq!(
        eval::<String>(page, "document.getElementById('conn').dataset.ok").await,
        "true"
    );

    // Add through the standby's form: the leader writes it and runs it.
    page.find_element("#new")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    fill(
        page,
        &[
            ("name", "second"),
            ("input", "sb-in"),
            ("error", "sb-err"),
            ("runner", "cat"),
            ("cpus", "0.1"),
            ("mem", "32"),
        ],
    )
    .await;
    page.find_element("#save")
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        page,
        "document.getElementById('editor').hidden",
        "the form closes",
    )
    .await;
    wait_until(
        page,
        "(document.querySelector('[data-name=second] [data-state]') || {}).textContent === 'running'",
        "the added processor, running on the leader",
    )
    .await;
    assert!(raw.list().await.unwrap().contains_key("second"), "in etcd");
    let known = instances[leader].0.shared().known.read().await;
    assert!(known.contains_key("second"), "the leader knows it");
    drop(known);
    page.save_screenshot(
        ScreenshotParams::builder().full_page(true).build(),
        artifacts().join("ui-standby.png"),
    )
    .await
    .expect("screenshot");
    ui.close().await;

    for (general, election) in instances {
        for task in election {
            task.abort();
        }
        general.shutdown().await;
    }
    cluster.shutdown().await;
}
