//! Processors kept in a [`Store`] (etcd in production) under a key prefix, one key per
//! processor (`<prefix><name>`, the source document of [`super::source`] as JSON); changes are
//! seen through the store's watch.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use mesos_sdk::storage::{Compare, CompareOp, Op, RangeRequest, Store, Txn};
use tokio::sync::Notify;

use super::source::{Entry, ProcessorSource, SourceError, document, parse_document};
use crate::processor::Processor;

/// The default key prefix of processors in the store.
pub const DEFAULT_PREFIX: &str = "/brigade/processors/";

/// Processors under a key prefix of a store.
#[derive(Debug, Clone)]
pub struct StoreSource {
    store: Arc<dyn Store>,
    prefix: String,
}

impl StoreSource {
    /// A source under `prefix` (ends with `/`) of `store`.
    pub fn new(store: Arc<dyn Store>, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        Self { store, prefix }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Wakes `notify` on every change under the prefix until the store's watch ends (a
    /// compaction or a store error; the meta scheduler's polling still sees changes then).
    pub fn watch(&self, notify: Arc<Notify>) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let prefix = self.prefix.clone();
        tokio::spawn(async move {
            loop {
                let from = match store.current_revision().await {
                    Ok(revision) => revision + 1,
                    Err(e) => {
                        tracing::warn!(error = %e, "processor watch: store revision");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                let mut stream = match store.watch(&prefix, from).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "processor watch");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // A change may have fallen between the last list and this watch.
                notify.notify_one();
                while let Some(event) = stream.next().await {
                    match event {
                        Ok(_) => notify.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "processor watch ended; watching again");
                            break;
                        }
                    }
                }
            }
        })
    }
}

#[async_trait::async_trait]
impl ProcessorSource for StoreSource {
    async fn list(&self) -> Result<BTreeMap<String, Entry>, SourceError> {
        let mut entries = BTreeMap::new();
        let page = self.store.range(&self.prefix, RangeRequest::all()).await?;
        for kv in page.kvs {
            let name = kv
                .key
                .strip_prefix(&self.prefix)
                .unwrap_or(&kv.key)
                .to_string();
            let text = String::from_utf8_lossy(&kv.value);
            let (processor, stopped, _) = parse_document(&text);
            // The key names the processor; a document naming another is invalid.
            let processor = match processor {
                Ok(p) if p.name() != name => Err(crate::processor::ValidationErrors {
                    errors: vec![crate::processor::FieldError {
                        field: "name".into(),
                        message: format!("{} differs from its key's name {name}", p.name()),
                    }],
                }),
                other => other,
            };
            entries.insert(
                name.clone(),
                Entry {
                    name,
                    origin: kv.key.clone(),
                    processor,
                    stopped,
                },
            );
        }
        Ok(entries)
    }

    async fn put(
        &self,
        processor: &Processor,
        stopped: bool,
        create: bool,
    ) -> Result<(), SourceError> {
        let name = processor.name();
        let key = self.key(name);
        let value = Bytes::from(document(processor, stopped).to_string());
        let compare = if create {
            Compare::absent(key.clone())
        } else {
            Compare::version(key.clone(), CompareOp::Greater, 0)
        };
        let response = self
            .store
            .txn(Txn::new().when(compare).and_then(Op::put(key, value)))
            .await?;
        if response.succeeded {
            Ok(())
        } else if create {
            Err(SourceError::Exists(name.to_string()))
        } else {
            Err(SourceError::Unknown(name.to_string()))
        }
    }

    async fn remove(&self, name: &str) -> Result<(), SourceError> {
        if self.store.delete(&self.key(name)).await? {
            Ok(())
        } else {
            Err(SourceError::Unknown(name.to_string()))
        }
    }

    fn describe(&self) -> String {
        format!("store prefix {}", self.prefix)
    }
}
