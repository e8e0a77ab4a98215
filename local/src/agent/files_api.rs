//! The agent's sandbox file API, as Mesos' web UI and `mesos tail` use it:
//! - `GET /files/browse?path=P`: a JSON array of the entries of directory `P` (`path`, `size`,
//!   `mtime`, `mode` as `ls -l` writes it, `nlink`, `uid`, `gid`);
//! - `GET /files/read?path=P&offset=N&length=M`: `{"data": "...", "offset": N}`, at most `M`
//!   bytes (at most 16 pages when `length` is absent, at most 1 MiB in any case); `offset=-1` answers the file's size as
//!   `offset` with empty `data`;
//! - `GET /files/download?path=P`: the file's bytes as `application/octet-stream` with a
//!   `Content-Disposition: attachment` name.
//!
//! Only sandboxes are reachable, as Mesos attaches only them: each executor run's directory
//! under its real path, and the current run's also under the virtual path
//! `/frameworks/<framework>/executors/<executor>/runs/latest`. The path is walked from the
//! agent's work directory one component at a time without following symbolic links
//! (`super::sandbox_fs`), the sandbox's own path included (a task that replaces its sandbox or a
//! directory above it with a link gains nothing): `..`, links (wherever they point), paths
//! outside every sandbox and devices or FIFOs all answer 404, so
//! nothing outside a sandbox is ever listed or read. Other errors: 400 `Expecting 'path=value'
//! in query.` without a path, 400 for a bad `offset` / `length`, 400 `Cannot read a directory.`
//! / `Cannot download a directory.`.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Weak;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::any;
use http::{HeaderValue, Method, StatusCode, header};
use rustix::fs::FileType;
use serde_json::{Value, json};

use super::Agent;
use super::sandbox_fs::{Beneath, Opened, list_dir};
use crate::server::v1::{method_not_allowed, text};
use mesos_sdk::codec::JSON_CONTENT_TYPE;

/// What `/files/read` returns at most when no `length` is given (16 pages of 4 KiB, as Mesos).
pub(crate) const DEFAULT_READ_LENGTH: u64 = 16 * 4096;

/// What one `/files/read` returns at most, whatever `length` asks (bounds the answer's memory;
/// readers page with `offset`).
pub(crate) const MAX_READ_LENGTH: u64 = 1024 * 1024;

/// The file API's routes (also under `/files/` only: Mesos serves them from its `files` process).
pub(super) fn routes(router: Router<Weak<Agent>>) -> Router<Weak<Agent>> {
    router
        .route("/files/browse", any(browse))
        .route("/files/browse.json", any(browse))
        .route("/files/read", any(read))
        .route("/files/read.json", any(read))
        .route("/files/download", any(download))
        .route("/files/download.json", any(download))
}

/// Why a request's path does not resolve.
enum Refusal {
    /// No path parameter.
    NoPath,
    /// Outside every sandbox, missing, a link, or not a file or directory: 404.
    NotFound,
}

impl Agent {
    /// The directories the file API serves: `(path as requested, real directory)`.
    fn attached(&self) -> Vec<(String, PathBuf)> {
        let state = self.lock();
        let mut roots = Vec::new();
        for (framework_id, framework) in &state.frameworks {
            for (executor_id, executor) in &framework.executors {
                roots.push((
                    executor.sandbox.to_string_lossy().into_owned(),
                    executor.sandbox.clone(),
                ));
                roots.push((
                    format!("/frameworks/{framework_id}/executors/{executor_id}/runs/latest"),
                    executor.sandbox.clone(),
                ));
            }
        }
        for sandbox in state.finished_sandboxes.values() {
            roots.push((sandbox.to_string_lossy().into_owned(), sandbox.clone()));
        }
        roots
    }

    /// Opens `requested` if it lies in a sandbox.
    fn open_sandbox_path(&self, requested: Option<&String>) -> Result<Opened, Refusal> {
        let requested = requested.ok_or(Refusal::NoPath)?;
        let trimmed = requested.trim_end_matches('/');
        for (root, dir) in self.attached() {
            let relative = if trimmed == root {
                ""
            } else if let Some(rest) = trimmed.strip_prefix(&format!("{root}/")) {
                rest
            } else {
                continue;
            };
            // Walk from the work directory (the agent's own): a task that swapped its sandbox,
            // or a directory above it, for a link cannot redirect the walk.
            let below_work_dir = dir
                .strip_prefix(&self.work_dir)
                .map_err(|_| Refusal::NotFound)?
                .join(relative);
            let beneath = Beneath::open(&self.work_dir).map_err(|_| Refusal::NotFound)?;
            return beneath.open_existing(&below_work_dir).map_err(|error| {
                tracing::debug!(path = %requested, %error, "file API refused a path");
                Refusal::NotFound
            });
        }
        Err(Refusal::NotFound)
    }
}

fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::NoPath => text(
            StatusCode::BAD_REQUEST,
            "Expecting 'path=value' in query.\n",
        ),
        Refusal::NotFound => text(StatusCode::NOT_FOUND, "404 Not Found."),
    }
}

fn json_response(value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    response
}

/// Upgrades the agent and checks the method (GET, as Mesos' file endpoints take).
fn prelude(agent: &Weak<Agent>, method: &Method) -> Result<std::sync::Arc<Agent>, Box<Response>> {
    if method != Method::GET {
        return Err(Box::new(method_not_allowed(&["GET"], method)));
    }
    agent.upgrade().ok_or_else(|| {
        Box::new(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Agent is shutting down",
        ))
    })
}

/// `ls -l`'s mode string of `mode`.
fn mode_string(mode: u32) -> String {
    let kind = match FileType::from_raw_mode(mode) {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharacterDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
        _ => '-',
    };
    let mut out = String::with_capacity(10);
    out.push(kind);
    for shift in [6u32, 3, 0] {
        let bits = (mode >> shift) & 0o7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    out
}

async fn browse(
    State(agent): State<Weak<Agent>>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let agent = match prelude(&agent, &method) {
        Ok(agent) => agent,
        Err(response) => return *response,
    };
    let requested = query.get("path");
    let dir = match agent.open_sandbox_path(requested) {
        Ok(Opened::Dir(dir)) => dir,
        // Mesos answers a file's own entry when browsing a file; a sandbox browse is of dirs.
        Ok(Opened::File(_)) => return json_response(&json!([])),
        Err(refusal) => return refused(refusal),
    };
    let base = requested
        .map(|p| p.trim_end_matches('/'))
        .unwrap_or_default();
    // A large directory takes a while to list: off the async workers.
    let listing = tokio::task::spawn_blocking(move || list_dir(&dir))
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
    let entries = match listing {
        Ok(entries) => entries,
        Err(error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to list the directory: {error}"),
            );
        }
    };
    let listed: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let stat = &entry.stat;
            json!({
                "path": format!("{base}/{}", entry.name),
                "nlink": stat.st_nlink,
                "size": stat.st_size,
                "mtime": stat.st_mtime,
                "mode": mode_string(stat.st_mode),
                "uid": stat.st_uid.to_string(),
                "gid": stat.st_gid.to_string(),
            })
        })
        .collect();
    json_response(&Value::Array(listed))
}

/// A non-negative number query parameter, or Mesos-style 400.
fn parse_number(query: &HashMap<String, String>, name: &str) -> Result<Option<i64>, Box<Response>> {
    match query.get(name) {
        None => Ok(None),
        Some(value) => value.trim().parse::<i64>().map(Some).map_err(|error| {
            Box::new(text(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse {name}: {error}\n"),
            ))
        }),
    }
}

async fn read(
    State(agent): State<Weak<Agent>>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let agent = match prelude(&agent, &method) {
        Ok(agent) => agent,
        Err(response) => return *response,
    };
    let offset = match parse_number(&query, "offset") {
        Ok(offset) => offset.unwrap_or(0),
        Err(response) => return *response,
    };
    let length = match parse_number(&query, "length") {
        Ok(Some(length)) if length < 0 => {
            return text(
                StatusCode::BAD_REQUEST,
                "Negative length provided: ".to_string() + &length.to_string() + ".\n",
            );
        }
        Ok(length) => length.map_or(DEFAULT_READ_LENGTH, |l| l.unsigned_abs()),
        Err(response) => return *response,
    };
    if offset < -1 {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Negative offset provided: {offset}.\n"),
        );
    }
    let mut file = match agent.open_sandbox_path(query.get("path")) {
        Ok(Opened::File(file)) => file,
        Ok(Opened::Dir(_)) => return text(StatusCode::BAD_REQUEST, "Cannot read a directory.\n"),
        Err(refusal) => return refused(refusal),
    };
    let size = match file.metadata() {
        Ok(metadata) => metadata.len(),
        Err(error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to stat the file: {error}"),
            );
        }
    };
    if offset == -1 {
        return json_response(&json!({"data": "", "offset": size}));
    }
    let start = offset.unsigned_abs().min(size);
    let want = length.min(size - start).min(MAX_READ_LENGTH);
    // Up to a mebibyte from disk: off the async workers.
    let outcome = tokio::task::spawn_blocking(move || {
        let mut data = Vec::new();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| (&mut file).take(want).read_to_end(&mut data))
            .map(|_| data)
    })
    .await
    .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
    let data = match outcome {
        Ok(data) => data,
        Err(error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to read the file: {error}"),
            );
        }
    };
    json_response(&json!({
        "data": String::from_utf8_lossy(&data),
        "offset": start,
    }))
}

async fn download(
    State(agent): State<Weak<Agent>>,
    method: Method,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let agent = match prelude(&agent, &method) {
        Ok(agent) => agent,
        Err(response) => return *response,
    };
    let requested = query.get("path").cloned();
    let file = match agent.open_sandbox_path(requested.as_ref()) {
        Ok(Opened::File(file)) => file,
        Ok(Opened::Dir(_)) => {
            return text(StatusCode::BAD_REQUEST, "Cannot download a directory.\n");
        }
        Err(refusal) => return refused(refusal),
    };
    let name = requested
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .unwrap_or("file")
        .replace('"', "");
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
