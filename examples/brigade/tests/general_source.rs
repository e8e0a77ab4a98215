//! Processor sources without a cluster: the directory and single-file sources and the store
//! source (on the memory store) list, add, replace, stop and remove processors, keep the
//! stopped flag in the document, and report invalid or duplicate documents per field.

use std::sync::Arc;

use brigade::general::{FileSource, ProcessorSource, SourceError, StoreSource};
use brigade::processor::Processor;
use mesos_sdk::storage::MemoryStore;
use serde_json::json;

fn processor(name: &str, command: &str) -> Processor {
    Processor::from_json(
        &json!({"name": name, "input": "in", "error": "err", "command": command}).to_string(),
    )
    .unwrap()
}

async fn contract(source: &dyn ProcessorSource) {
    assert!(source.list().await.unwrap().is_empty());
    source
        .put(&processor("a", "cat"), false, true)
        .await
        .unwrap();
    assert!(matches!(
        source.put(&processor("a", "cat"), false, true).await,
        Err(SourceError::Exists(_))
    ));
    assert!(matches!(
        source.put(&processor("b", "cat"), false, false).await,
        Err(SourceError::Unknown(_))
    ));
    source
        .put(&processor("a", "rev"), true, false)
        .await
        .unwrap();
    let entries = source.list().await.unwrap();
    let a = &entries["a"];
    assert!(a.stopped);
    assert_eq!(a.processor.as_ref().unwrap().command(), Some("rev"));
    source
        .put(&processor("b", "cat"), false, true)
        .await
        .unwrap();
    assert_eq!(source.list().await.unwrap().len(), 2);
    source.remove("a").await.unwrap();
    assert!(matches!(
        source.remove("a").await,
        Err(SourceError::Unknown(_))
    ));
    let names: Vec<String> = source.list().await.unwrap().into_keys().collect();
    assert_eq!(names, ["b"]);
}

#[tokio::test]
async fn a_directory_source_keeps_one_file_per_processor() {
    let dir = tempfile::tempdir().unwrap();
    let source = FileSource::new(dir.path().join("processors"));
    contract(&source).await;
    assert!(dir.path().join("processors/b.json").is_file());
}

#[tokio::test]
async fn a_single_file_source_keeps_an_array() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("processors.json");
    std::fs::write(&file, "[]").unwrap();
    let source = FileSource::new(&file);
    contract(&source).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_source_keeps_one_key_per_processor() {
    let store = Arc::new(MemoryStore::new());
    let source = StoreSource::new(store, "/test/processors");
    contract(&source).await;
}

#[tokio::test]
async fn invalid_and_duplicate_documents_are_reported_per_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("one.json"),
        json!({"name": "same", "input": "i", "error": "e", "command": "cat"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("two.json"),
        json!({"name": "same", "input": "i", "error": "e", "command": "rev"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        json!({"name": "bad", "input": "i", "error": "e", "command": "cat", "stopped": "yes", "mem": "lots"}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("ignored.txt"), "not a processor").unwrap();
    let entries = FileSource::new(dir.path()).list().await.unwrap();
    assert!(entries["same"].processor.is_ok());
    let duplicate = entries
        .values()
        .find(|e| e.origin.ends_with("two.json"))
        .expect("the duplicate is listed by its file");
    assert!(duplicate.processor.as_ref().unwrap_err().has("name"));
    let bad = entries["bad"].processor.as_ref().unwrap_err();
    assert!(bad.has("stopped") && bad.has("mem"), "{bad}");
    assert_eq!(entries.len(), 3);
}
