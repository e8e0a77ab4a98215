//! The web UI in headless Chromium (Debian's `chromium`), driven over the DevTools protocol
//! with `chromiumoxide`, against a real meta scheduler (mesos-local, tansu, the real
//! executor): the page loads with the connection state, a processor added through the form
//! appears and its counters move as messages flow, a bad one shows its validation error next
//! to the field, and no console error or exception happens. Screenshots (laptop and phone
//! widths) are saved under `target/ui-screenshots/`. Skips with a reason without Chromium or
//! tansu.

mod support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade::general::{FileSource, General, GeneralConfig};
use brigade::kafka::{KafkaConfig, create_topics};
use brigade::pipeline::BrigadeConfig;
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
        &["ui-in", "ui-out", "ui-err"],
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

    let profile = tempfile::tempdir().unwrap();
    let (mut browser, mut handler) = Browser::launch(
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

    // Load: the connection and health pills fill in, no processors yet.
    page.goto(format!("{base}/")).await.expect("page loads");
    wait_until(
        &page,
        "document.getElementById('conn').dataset.ok === 'true'",
        "connected",
    )
    .await;
    wait_until(
        &page,
        "!document.getElementById('empty').hidden",
        "empty list",
    )
    .await;
    assert_eq!(
        eval::<String>(&page, "document.getElementById('mesos').textContent").await,
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
        &page,
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
        &page,
        "document.getElementById('editor').hidden",
        "the form closes",
    )
    .await;
    wait_until(
        &page,
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
        &page,
        "Number((document.querySelector('[data-name=ui] [data-counter=produced]') || {}).textContent) >= 5",
        "produced counter at 5",
    )
    .await;
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
        &page,
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
        &page,
        "document.querySelector('#form .err[data-for=cpus]').textContent.length > 0",
        "the cpus error next to its field",
    )
    .await;
    assert!(!eval::<bool>(&page, "document.getElementById('editor').hidden").await);
    assert_eq!(
        eval::<String>(
            &page,
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
        &page,
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

    let problems = problems.lock().unwrap().clone();
    assert!(problems.is_empty(), "console problems: {problems:?}");
    println!("screenshots in {}", artifacts().display());

    listener.abort();
    let _ = browser.close().await;
    let _ = browser.wait().await;
    handler.abort();
    general.shutdown().await;
    cluster.shutdown().await;
}
