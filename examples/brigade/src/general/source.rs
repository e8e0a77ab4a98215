//! Where the meta scheduler's processors live: the [`ProcessorSource`] contract, the document
//! format every source shares, and the file/directory source ([`FileSource`]).
//!
//! A source document is a processor's JSON (see [`crate::processor`]) with one optional
//! operator key beside it, `"stopped": true`, which keeps the processor configured but not
//! running. The REST API writes through the same source the meta scheduler reads, so the
//! files (or the etcd keys, see [`super::store_source`]) are the one source of truth.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::processor::{FieldError, Processor, ValidationErrors};

/// The operator key of a source document that keeps a processor stopped.
pub const STOPPED_KEY: &str = "stopped";

/// Errors of a processor source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] mesos_sdk::storage::Error),
    /// A write named a processor the source does not hold.
    #[error("no processor {0}")]
    Unknown(String),
    /// A write would create a processor that exists already.
    #[error("processor {0} exists already")]
    Exists(String),
    /// The source cannot be written this way.
    #[error("{0}")]
    Unsupported(String),
}

/// One entry of a source: a valid processor, or the problems of an invalid document.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The processor's name (for an invalid document without a usable name: where it is).
    pub name: String,
    /// Where the document is (a file path or a store key).
    pub origin: String,
    /// The processor, or every problem of its document.
    pub processor: Result<Processor, ValidationErrors>,
    /// Whether the operator stopped it.
    pub stopped: bool,
}

/// A place processors are read from and written to.
#[async_trait::async_trait]
pub trait ProcessorSource: Send + Sync + std::fmt::Debug {
    /// Every entry, valid or not, by name.
    async fn list(&self) -> Result<BTreeMap<String, Entry>, SourceError>;

    /// Writes `processor` (creating it when `create`, replacing it otherwise) with its stopped
    /// flag.
    async fn put(
        &self,
        processor: &Processor,
        stopped: bool,
        create: bool,
    ) -> Result<(), SourceError>;

    /// Removes the processor `name`.
    async fn remove(&self, name: &str) -> Result<(), SourceError>;

    /// A human description of the source, for logs and `/ready`.
    fn describe(&self) -> String;
}

/// Parses one source document: the processor and its stopped flag.
pub fn parse_document(text: &str) -> (Result<Processor, ValidationErrors>, bool, Option<String>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            return (
                Err(ValidationErrors {
                    errors: vec![FieldError {
                        field: String::new(),
                        message: format!("not JSON: {e}"),
                    }],
                }),
                false,
                None,
            );
        }
    };
    parse_value(value)
}

/// As [`parse_document`], from a parsed JSON value.
pub fn parse_value(
    mut value: Value,
) -> (Result<Processor, ValidationErrors>, bool, Option<String>) {
    let mut stopped = false;
    let mut stopped_error = None;
    if let Some(object) = value.as_object_mut() {
        match object.remove(STOPPED_KEY) {
            None => {}
            Some(Value::Bool(flag)) => stopped = flag,
            Some(_) => {
                stopped_error = Some(FieldError {
                    field: STOPPED_KEY.into(),
                    message: "must be true or false".into(),
                })
            }
        }
    }
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let processor = match (Processor::from_value(value), stopped_error) {
        (Ok(p), None) => Ok(p),
        (Ok(_), Some(e)) => Err(ValidationErrors { errors: vec![e] }),
        (Err(mut errors), Some(e)) => {
            errors.errors.push(e);
            Err(errors)
        }
        (Err(errors), None) => Err(errors),
    };
    (processor, stopped, name)
}

/// The document of `processor` with its stopped flag.
pub fn document(processor: &Processor, stopped: bool) -> Value {
    let mut value: Value = serde_json::from_str(&processor.to_json()).unwrap_or(Value::Null);
    if stopped {
        if let Some(object) = value.as_object_mut() {
            object.insert(STOPPED_KEY.into(), Value::Bool(true));
        }
    }
    value
}

/// One document read from a file: where it is, and its JSON (or why it is not JSON).
type Document = (String, Result<Value, String>);

/// Processors in a directory (`*.json`, one processor each, written as `<name>.json`) or in
/// one file (one processor, or a JSON array of processors).
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// A source at `path` (a directory or a file; a missing path is taken as an empty
    /// directory, created on the first write).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file or directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn is_file(&self) -> bool {
        self.path.is_file()
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SourceError + '_ {
        move |source| SourceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn add_entry(
        entries: &mut BTreeMap<String, Entry>,
        origin: String,
        value: Result<Value, String>,
    ) {
        let (processor, stopped, name) = match value {
            Ok(value) => parse_value(value),
            Err(message) => (
                Err(ValidationErrors {
                    errors: vec![FieldError {
                        field: String::new(),
                        message,
                    }],
                }),
                false,
                None,
            ),
        };
        let mut name = name.unwrap_or_else(|| origin.clone());
        let mut processor = processor;
        if let Some(existing) = entries.get(&name) {
            processor = Err(ValidationErrors {
                errors: vec![FieldError {
                    field: "name".into(),
                    message: format!("{name} is defined twice (also in {})", existing.origin),
                }],
            });
            name = origin.clone();
        }
        entries.insert(
            name.clone(),
            Entry {
                name,
                origin,
                processor,
                stopped,
            },
        );
    }

    fn read_file(path: &Path) -> Result<Vec<Document>, SourceError> {
        let text = std::fs::read_to_string(path).map_err(Self::io(path))?;
        let origin = path.display().to_string();
        Ok(match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("{origin}[{i}]"), Ok(v)))
                .collect(),
            Ok(value) => vec![(origin, Ok(value))],
            Err(e) => vec![(origin, Err(format!("not JSON: {e}")))],
        })
    }

    fn file_for(&self, name: &str) -> PathBuf {
        self.path.join(format!("{name}.json"))
    }

    /// Writes atomically: a temporary file beside it, then a rename.
    fn write(path: &Path, value: &Value) -> Result<(), SourceError> {
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Self::io(path))
    }

    fn write_single_file(
        &self,
        update: impl FnOnce(&mut Vec<Value>) -> Result<(), SourceError>,
    ) -> Result<(), SourceError> {
        let text = std::fs::read_to_string(&self.path).map_err(Self::io(&self.path))?;
        let mut items = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => items,
            Ok(value) => vec![value],
            Err(e) => {
                return Err(SourceError::Unsupported(format!(
                    "{} is not JSON ({e}); fix it before writing through the API",
                    self.path.display()
                )));
            }
        };
        update(&mut items)?;
        Self::write(&self.path, &Value::Array(items))
    }

    fn name_of(value: &Value) -> Option<&str> {
        value.get("name").and_then(Value::as_str)
    }
}

#[async_trait::async_trait]
impl ProcessorSource for FileSource {
    async fn list(&self) -> Result<BTreeMap<String, Entry>, SourceError> {
        let mut entries = BTreeMap::new();
        if self.is_file() {
            for (origin, value) in Self::read_file(&self.path)? {
                Self::add_entry(&mut entries, origin, value);
            }
            return Ok(entries);
        }
        let dir = match std::fs::read_dir(&self.path) {
            Ok(dir) => dir,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(entries),
            Err(e) => return Err(Self::io(&self.path)(e)),
        };
        let mut files: Vec<PathBuf> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        files.sort();
        for file in files {
            match Self::read_file(&file) {
                Ok(values) => {
                    for (origin, value) in values {
                        Self::add_entry(&mut entries, origin, value);
                    }
                }
                // A file removed between the listing and the read is simply gone.
                Err(SourceError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(entries)
    }

    async fn put(
        &self,
        processor: &Processor,
        stopped: bool,
        create: bool,
    ) -> Result<(), SourceError> {
        let name = processor.name().to_string();
        let doc = document(processor, stopped);
        if self.is_file() {
            return self.write_single_file(|items| {
                let at = items
                    .iter()
                    .position(|v| Self::name_of(v) == Some(name.as_str()));
                match (at, create) {
                    (Some(_), true) => Err(SourceError::Exists(name.clone())),
                    (None, false) => Err(SourceError::Unknown(name.clone())),
                    (Some(i), false) => {
                        items[i] = doc;
                        Ok(())
                    }
                    (None, true) => {
                        items.push(doc);
                        Ok(())
                    }
                }
            });
        }
        let existing = self.list().await?.remove(&name);
        match (&existing, create) {
            (Some(_), true) => return Err(SourceError::Exists(name)),
            (None, false) => return Err(SourceError::Unknown(name)),
            _ => {}
        }
        std::fs::create_dir_all(&self.path).map_err(Self::io(&self.path))?;
        // An existing processor is rewritten where it is (its file may have another name).
        let target = existing
            .map(|e| PathBuf::from(e.origin))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .unwrap_or_else(|| self.file_for(&name));
        Self::write(&target, &doc)
    }

    async fn remove(&self, name: &str) -> Result<(), SourceError> {
        if self.is_file() {
            return self.write_single_file(|items| {
                let before = items.len();
                items.retain(|v| Self::name_of(v) != Some(name));
                if items.len() == before {
                    Err(SourceError::Unknown(name.to_string()))
                } else {
                    Ok(())
                }
            });
        }
        let entry = self
            .list()
            .await?
            .remove(name)
            .ok_or_else(|| SourceError::Unknown(name.to_string()))?;
        let path = PathBuf::from(&entry.origin);
        if path.extension().is_none_or(|x| x != "json") {
            return Err(SourceError::Unsupported(format!(
                "{name} is one of several processors in {}; edit that file",
                entry.origin
            )));
        }
        std::fs::remove_file(&path).map_err(Self::io(&path))
    }

    fn describe(&self) -> String {
        format!("files at {}", self.path.display())
    }
}
