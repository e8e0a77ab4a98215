//! The artifact registry: named blobs (executor binaries, archives) the server hands to the Mesos
//! fetcher, the cheap-to-clone [`Artifacts`] handle that registers and unregisters them at run
//! time, and [`FetchUri`], which turns a registered artifact into a `CommandInfo.URI`.
//!
//! Choices:
//! - An artifact's content is read once, when it is registered, and kept in memory. Its strong
//!   ETag is the SHA-256 of that content, so what the fetcher downloads never changes under one
//!   ETag, even if the file it came from is rewritten later (register it again to publish the
//!   new content).
//! - Names are single path segments of `A-Z a-z 0-9 . _ -`, at most 255 bytes, and neither `.`
//!   nor `..`: a name is the file name the fetcher stores the download under, and a request path
//!   never reaches the file system.
//! - The URI of an artifact carries the first 16 hex digits of its SHA-256 as a query
//!   (`?v=…`), so an agent's fetcher cache (keyed by URI) never serves an old content after a
//!   re-registration, and sets `output_file` to the name so the sandbox file name does not
//!   depend on how a fetcher treats query strings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::v1::command_info::Uri;

/// The path prefix artifacts are served under: `/artifacts/<name>`.
pub const ARTIFACT_PREFIX: &str = "/artifacts/";

/// The longest artifact name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// Why an artifact could not be registered or referenced.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The name is not a plain file name (see the module documentation for the rules).
    #[error("invalid artifact name {name:?}: use 1 to 255 of A-Z a-z 0-9 . _ - (and not . or ..)")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The file chosen by the program could not be read.
    #[error("cannot read artifact file {path}: {source}")]
    Read {
        /// The file's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No artifact is registered under this name.
    #[error("no artifact named {name:?} is registered")]
    Unknown {
        /// The name asked for.
        name: String,
    },
}

/// Whether `name` is a valid artifact name.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// One registered artifact: its content, content type and strong ETag.
#[derive(Clone)]
pub struct Artifact {
    name: String,
    content: Bytes,
    content_type: String,
    sha256: String,
}

impl std::fmt::Debug for Artifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifact")
            .field("name", &self.name)
            .field("bytes", &self.content.len())
            .field("content_type", &self.content_type)
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Artifact {
    /// An artifact with `content` (served as `application/octet-stream`).
    pub fn from_bytes(
        name: impl Into<String>,
        content: impl Into<Bytes>,
    ) -> Result<Self, ArtifactError> {
        let name = name.into();
        if !is_valid_name(&name) {
            return Err(ArtifactError::InvalidName { name });
        }
        let content = content.into();
        let sha256 = hex(&Sha256::digest(&content));
        Ok(Self {
            name,
            content,
            content_type: "application/octet-stream".into(),
            sha256,
        })
    }

    /// An artifact with the content of `path`, a file chosen by the program (read now, once).
    pub async fn from_file(
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, ArtifactError> {
        let path = path.as_ref();
        let content = tokio::fs::read(path)
            .await
            .map_err(|source| ArtifactError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_bytes(name, content)
    }

    /// Sets the `Content-Type` the artifact is served with.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// The artifact's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The artifact's content.
    pub fn content(&self) -> &Bytes {
        &self.content
    }

    /// Its `Content-Type`.
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The SHA-256 of the content, in lowercase hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The strong ETag it is served with: the quoted SHA-256.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.sha256)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[derive(Debug)]
struct Inner {
    base_url: String,
    artifacts: RwLock<HashMap<String, Arc<Artifact>>>,
}

/// A cheap-to-clone handle on the server's artifacts: register, unregister, look up, and build
/// fetcher URIs with the server's reachable address.
#[derive(Debug, Clone)]
pub struct Artifacts {
    inner: Arc<Inner>,
}

impl Artifacts {
    /// An empty registry whose URIs start with `base_url` (`http://host:port`, no trailing slash).
    pub(crate) fn new(base_url: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                base_url,
                artifacts: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The base URL of the server as the agents reach it (`http://host:port`).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Registers `artifact`, replacing any artifact of the same name; returns the replaced one.
    pub fn register(&self, artifact: Artifact) -> Option<Arc<Artifact>> {
        self.insert(Arc::new(artifact))
    }

    fn insert(&self, artifact: Arc<Artifact>) -> Option<Arc<Artifact>> {
        tracing::info!(
            name = artifact.name(),
            bytes = artifact.content().len(),
            sha256 = artifact.sha256(),
            "artifact registered"
        );
        self.write().insert(artifact.name.clone(), artifact)
    }

    /// Registers `content` under `name`.
    pub fn register_bytes(
        &self,
        name: impl Into<String>,
        content: impl Into<Bytes>,
    ) -> Result<Arc<Artifact>, ArtifactError> {
        let artifact = Arc::new(Artifact::from_bytes(name, content)?);
        self.insert(artifact.clone());
        Ok(artifact)
    }

    /// Registers the content of the file at `path` (chosen by the program) under `name`.
    pub async fn register_file(
        &self,
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Arc<Artifact>, ArtifactError> {
        let artifact = Arc::new(Artifact::from_file(name, path).await?);
        self.insert(artifact.clone());
        Ok(artifact)
    }

    /// Unregisters `name`; returns the artifact that was registered, if any.
    pub fn unregister(&self, name: &str) -> Option<Arc<Artifact>> {
        let removed = self.write().remove(name);
        if removed.is_some() {
            tracing::info!(name, "artifact unregistered");
        }
        removed
    }

    /// The artifact registered under `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Artifact>> {
        self.read().get(name).cloned()
    }

    /// The names registered, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// The URL of a registered artifact (with its content version as the `v` query).
    pub fn url(&self, name: &str) -> Result<String, ArtifactError> {
        let artifact = self.get(name).ok_or_else(|| ArtifactError::Unknown {
            name: name.to_string(),
        })?;
        Ok(format!(
            "{}{ARTIFACT_PREFIX}{}?v={}",
            self.inner.base_url,
            artifact.name,
            &artifact.sha256[..16]
        ))
    }

    /// A fetcher URI for the registered artifact `name`, to adjust and turn into a
    /// [`Uri`] with [`FetchUri::build`].
    pub fn uri(&self, name: &str) -> Result<FetchUri, ArtifactError> {
        Ok(FetchUri {
            uri: Uri {
                value: self.url(name)?,
                output_file: Some(name.to_string()),
                ..Default::default()
            },
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Artifact>>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts
        // and removes), so a poisoned lock is still usable.
        self.inner
            .artifacts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Artifact>>> {
        self.inner
            .artifacts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Resolves the artifacts a task spec names (`executor.artifact`, `uris[].artifact`).
impl crate::taskmgr::spec::ArtifactUrls for Artifacts {
    fn artifact_url(&self, name: &str) -> Option<String> {
        self.url(name).ok()
    }
}

/// A `CommandInfo.URI` for a registered artifact, being adjusted: Mesos' defaults are not
/// executable, extracted when the name is an archive's, not cached.
///
/// ```no_run
/// # async fn demo(server: &mesos_sdk::server::Server) -> Result<(), Box<dyn std::error::Error>> {
/// let artifacts = server.artifacts();
/// artifacts.register_file("my-executor", "/usr/local/bin/my-executor").await?;
/// let uri = artifacts.uri("my-executor")?.executable(true).cache(true).build();
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FetchUri {
    uri: Uri,
}

impl FetchUri {
    /// Makes the fetched file executable (and not extracted).
    pub fn executable(mut self, executable: bool) -> Self {
        self.uri.executable = Some(executable);
        self
    }

    /// Extracts the fetched archive into the sandbox (Mesos' default is true).
    pub fn extract(mut self, extract: bool) -> Self {
        self.uri.extract = Some(extract);
        self
    }

    /// Keeps the download in the agent's fetcher cache.
    pub fn cache(mut self, cache: bool) -> Self {
        self.uri.cache = Some(cache);
        self
    }

    /// The file name in the sandbox (default: the artifact's name).
    pub fn output_file(mut self, output_file: impl Into<String>) -> Self {
        self.uri.output_file = Some(output_file.into());
        self
    }

    /// The `CommandInfo.URI`.
    pub fn build(self) -> Uri {
        self.uri
    }
}

impl From<FetchUri> for Uri {
    fn from(uri: FetchUri) -> Self {
        uri.uri
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_file_names() {
        for good in ["executor", "a.tar.gz", "x_1-2", "..a", "a..b"] {
            assert!(is_valid_name(good), "{good}");
        }
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/a",
            "a%2Fb",
            "a b",
            "a\\b",
            "é",
            long.as_str(),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn uris_carry_the_version_and_the_name() {
        let artifacts = Artifacts::new("http://10.0.0.1:8080".into());
        let artifact = artifacts
            .register_bytes("exec", &b"#!/bin/sh\n"[..])
            .unwrap();
        assert_eq!(artifact.sha256().len(), 64);
        let uri = artifacts
            .uri("exec")
            .unwrap()
            .executable(true)
            .cache(true)
            .build();
        assert_eq!(
            uri.value,
            format!(
                "http://10.0.0.1:8080/artifacts/exec?v={}",
                &artifact.sha256()[..16]
            )
        );
        assert_eq!(uri.output_file.as_deref(), Some("exec"));
        assert_eq!(uri.executable, Some(true));
        assert_eq!(uri.cache, Some(true));
        assert!(matches!(
            artifacts.uri("nope"),
            Err(ArtifactError::Unknown { .. })
        ));
        assert!(artifacts.unregister("exec").is_some());
        assert!(artifacts.get("exec").is_none());
        assert!(matches!(
            artifacts.register_bytes("../x", Bytes::new()),
            Err(ArtifactError::InvalidName { .. })
        ));
    }
}
