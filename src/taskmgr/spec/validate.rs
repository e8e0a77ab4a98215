//! Validation of task specs: every problem at once, each with the JSON path of the value at
//! fault (`tasks[2].resources.cpus: must be > 0`), whether the spec came from JSON or code.

use std::collections::HashMap;
use std::fmt;

use super::{
    Command, DockerNetwork, HealthCheckSpec, ResourceSpec, RestartMode, TaskSpec, TaskSpecs,
};

/// The longest spec name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// A JSON path: `tasks[2].resources.cpus`, `env["A.B"]`; empty for the document itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    /// The document's root.
    pub fn root() -> Self {
        Self::default()
    }

    /// The path of member `key` (written `.key`, or `["key"]` when it is not a plain word).
    pub fn key(&self, key: &str) -> Self {
        let plain = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let mut path = self.0.clone();
        if plain {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        } else {
            path.push('[');
            path.push_str(&serde_json::Value::from(key).to_string());
            path.push(']');
        }
        Self(path)
    }

    /// The path of element `index`.
    pub fn index(&self, index: usize) -> Self {
        Self(format!("{}[{index}]", self.0))
    }

    /// The path as text (`$` for the root).
    pub fn as_str(&self) -> &str {
        if self.0.is_empty() { "$" } else { &self.0 }
    }

    /// Whether `self` is `other` or inside it.
    fn within(&self, other: &JsonPath) -> bool {
        other.0.is_empty()
            || self.0 == other.0
            || self
                .0
                .strip_prefix(&other.0)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of problem a [`SpecError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecErrorKind {
    /// The text is not JSON.
    Syntax,
    /// A key the spec does not have.
    UnknownKey,
    /// A value of the wrong JSON type, or not one of the allowed words.
    WrongType,
    /// A value the spec does not allow (out of range, missing, contradicting another).
    Invalid,
}

/// One problem of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// Where: the JSON path of the value at fault.
    pub path: JsonPath,
    /// What kind of problem.
    pub kind: SpecErrorKind,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a spec or document, in document order; one per line when displayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors {
    /// The problems (never empty).
    pub errors: Vec<SpecError>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl SpecErrors {
    /// A single problem.
    pub fn single(path: JsonPath, kind: SpecErrorKind, message: impl Into<String>) -> Self {
        Self {
            errors: vec![SpecError {
                path,
                kind,
                message: message.into(),
            }],
        }
    }

    /// The problems as `path: message` lines.
    pub fn lines(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }
}

/// A collector of problems.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    errors: Vec<SpecError>,
}

impl Problems {
    pub(crate) fn push(
        &mut self,
        path: &JsonPath,
        kind: SpecErrorKind,
        message: impl Into<String>,
    ) {
        self.errors.push(SpecError {
            path: path.clone(),
            kind,
            message: message.into(),
        });
    }

    pub(crate) fn invalid(&mut self, path: &JsonPath, message: impl Into<String>) {
        self.push(path, SpecErrorKind::Invalid, message);
    }

    /// Adds `later`'s problems, except those inside one of `shadows` (a value that had the
    /// wrong type is not also reported as, say, zero), and sorts all by path.
    pub(crate) fn merge_shadowed(&mut self, later: Problems, shadows: &[JsonPath]) {
        self.errors.extend(
            later
                .errors
                .into_iter()
                .filter(|e| !shadows.iter().any(|p| e.path.within(p))),
        );
        self.errors.sort_by_key(|e| document_order(&e.path));
    }

    pub(crate) fn into_result(self) -> Result<(), SpecErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(SpecErrors {
                errors: self.errors,
            })
        }
    }
}

/// A sort key that puts `tasks[10]` after `tasks[9]`: the path with indices zero-padded.
fn document_order(path: &JsonPath) -> String {
    let mut key = String::with_capacity(path.0.len() + 16);
    let mut digits = String::new();
    for c in path.0.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if !digits.is_empty() {
            key.push_str(&format!("{digits:0>10}"));
            digits.clear();
        }
        key.push(c);
    }
    if !digits.is_empty() {
        key.push_str(&format!("{digits:0>10}"));
    }
    key
}

/// Whether `name` is a valid spec name.
pub fn is_valid_spec_name(name: &str) -> bool {
    name.len() <= MAX_NAME_LEN
        && name
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphanumeric)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `name` can be an artifact name (the artifact server's rule: 1 to 255 of
/// `A-Z a-z 0-9 . _ -`, not `.` or `..`).
pub fn is_valid_artifact_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl TaskSpecs {
    /// Checks every spec and that names are unique.
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut problems = Problems::default();
        self.check(&JsonPath::root(), &mut problems);
        problems.into_result()
    }

    pub(crate) fn check(&self, path: &JsonPath, problems: &mut Problems) {
        check_tasks(self.tasks.iter().enumerate(), &path.key("tasks"), problems);
    }
}

/// Checks specs at their index under `tasks`, and that their names are unique.
pub(crate) fn check_tasks<'a>(
    specs: impl Iterator<Item = (usize, &'a TaskSpec)>,
    tasks: &JsonPath,
    problems: &mut Problems,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, spec) in specs {
        let at = tasks.index(i);
        spec.check(&at, problems);
        if let Some(first) = seen.get(spec.name.as_str()) {
            problems.invalid(
                &at.key("name"),
                format!(
                    "duplicate name {:?} (also {})",
                    spec.name,
                    tasks.index(*first).key("name")
                ),
            );
        } else {
            seen.insert(&spec.name, i);
        }
    }
}

impl TaskSpec {
    /// Checks the spec; paths are relative to the spec itself (`resources.cpus`).
    pub fn validate(&self) -> Result<(), SpecErrors> {
        let mut problems = Problems::default();
        self.check(&JsonPath::root(), &mut problems);
        problems.into_result()
    }

    pub(crate) fn check(&self, path: &JsonPath, problems: &mut Problems) {
        if !is_valid_spec_name(&self.name) {
            problems.invalid(
                &path.key("name"),
                format!(
                    "must be 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 . _ -, starting with a letter or digit"
                ),
            );
        }
        match (&self.command, &self.docker, &self.executor) {
            (None, None, None) => problems.invalid(
                path,
                "needs one of command, docker (with or without a command) or executor",
            ),
            (_, _, Some(_)) if self.command.is_some() || self.docker.is_some() => problems.invalid(
                &path.key("executor"),
                "cannot be combined with command or docker: the executor runs the task",
            ),
            _ => {}
        }
        if let Some(command) = &self.command {
            check_command(command, &path.key("command"), problems);
        }
        check_resources(&self.resources, &path.key("resources"), true, problems);
        if let Some(docker) = &self.docker {
            self.check_docker(docker, &path.key("docker"), problems);
        }
        if let Some(executor) = &self.executor {
            let at = path.key("executor");
            if !is_valid_artifact_name(&executor.artifact) {
                problems.invalid(
                    &at.key("artifact"),
                    "must be a registered artifact name (1 to 255 of A-Z a-z 0-9 . _ -)",
                );
            }
            if let Some(resources) = &executor.resources {
                check_resources(resources, &at.key("resources"), false, problems);
            }
        }
        for name in self.env.keys() {
            if name.is_empty() || name.contains(['=', '\0']) {
                problems.invalid(
                    &path.key("env").key(name),
                    "a variable name must be non-empty, without '=' or NUL",
                );
            }
        }
        for key in self.labels.keys() {
            if key.is_empty() {
                problems.invalid(
                    &path.key("labels").key(key),
                    "a label key must not be empty",
                );
            }
        }
        for (i, uri) in self.uris.iter().enumerate() {
            let at = path.key("uris").index(i);
            match (&uri.value, &uri.artifact) {
                (Some(value), None) if value.is_empty() => {
                    problems.invalid(&at.key("value"), "must not be empty");
                }
                (None, Some(name)) if !is_valid_artifact_name(name) => {
                    problems.invalid(&at.key("artifact"), "not a valid artifact name");
                }
                (Some(_), None) | (None, Some(_)) => {}
                _ => problems.invalid(&at, "needs exactly one of value and artifact"),
            }
            if let Some(output) = &uri.output_file
                && !relative_inside(output)
            {
                problems.invalid(
                    &at.key("output_file"),
                    "must be a relative path inside the sandbox",
                );
            }
            if uri.executable && uri.extract {
                problems.invalid(&at.key("extract"), "an executable file is not extracted");
            }
        }
        for (i, volume) in self.volumes.iter().enumerate() {
            let at = path.key("volumes").index(i);
            if !volume.host_path.starts_with('/') {
                problems.invalid(&at.key("host_path"), "must be an absolute path");
            }
            if volume.container_path.is_empty() {
                problems.invalid(&at.key("container_path"), "must not be empty");
            }
        }
        if let Some(check) = &self.health_check {
            self.check_health(check, &path.key("health_check"), problems);
        }
        let restart = &self.restart;
        let at = path.key("restart");
        if restart.backoff_min.is_zero() {
            problems.invalid(&at.key("backoff_min"), "must be > 0");
        }
        if restart.backoff_max < restart.backoff_min {
            problems.invalid(&at.key("backoff_max"), "must be >= backoff_min");
        }
        if restart.policy == RestartMode::Never && restart.max_retries.is_some() {
            problems.invalid(&at.key("max_retries"), "has no effect with policy never");
        }
        for (i, constraint) in self.constraints.iter().enumerate() {
            constraint.check(&path.key("constraints").index(i), problems);
        }
    }

    fn check_docker(&self, docker: &super::DockerSpec, at: &JsonPath, problems: &mut Problems) {
        if docker.image.trim().is_empty() {
            problems.invalid(&at.key("image"), "must not be empty");
        }
        match (docker.network, &docker.network_name) {
            (DockerNetwork::User, None) => {
                problems.invalid(&at.key("network_name"), "is required with network user");
            }
            (DockerNetwork::User, Some(name)) if name.is_empty() => {
                problems.invalid(&at.key("network_name"), "must not be empty");
            }
            (DockerNetwork::User, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                problems.invalid(&at.key("network_name"), "applies only to network user");
            }
        }
        if !docker.port_mappings.is_empty()
            && matches!(docker.network, DockerNetwork::Host | DockerNetwork::None)
        {
            problems.invalid(
                &at.key("port_mappings"),
                "need network bridge or user (host and none publish no ports)",
            );
        }
        let mut dynamic = 0;
        for (i, mapping) in docker.port_mappings.iter().enumerate() {
            let m = at.key("port_mappings").index(i);
            if !(1..=65535).contains(&mapping.container_port) {
                problems.invalid(&m.key("container_port"), "must be 1 to 65535");
            }
            match mapping.host_port {
                Some(port) if !(1..=65535).contains(&port) => {
                    problems.invalid(&m.key("host_port"), "must be 1 to 65535");
                }
                Some(_) => {}
                None => dynamic += 1,
            }
        }
        if dynamic > self.resources.ports {
            problems.invalid(
                &at.key("port_mappings"),
                format!(
                    "{dynamic} mappings without host_port need resources.ports >= {dynamic} (it is {})",
                    self.resources.ports
                ),
            );
        }
        for (i, parameter) in docker.parameters.iter().enumerate() {
            if parameter.key.trim().is_empty() {
                problems.invalid(
                    &at.key("parameters").index(i).key("key"),
                    "must not be empty",
                );
            }
        }
    }

    fn check_health(&self, check: &HealthCheckSpec, at: &JsonPath, problems: &mut Problems) {
        let kinds = [
            check.command.is_some(),
            check.http.is_some(),
            check.tcp.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            problems.invalid(at, "needs exactly one of command, http and tcp");
        }
        if let Some(command) = &check.command {
            check_command(command, &at.key("command"), problems);
        }
        if let Some(http) = &check.http {
            let h = at.key("http");
            self.check_port(http.port, http.port_index, &h, problems);
            if !http.path.starts_with('/') {
                problems.invalid(&h.key("path"), "must start with /");
            }
        }
        if let Some(tcp) = &check.tcp {
            self.check_port(tcp.port, tcp.port_index, &at.key("tcp"), problems);
        }
        if check.interval.is_zero() {
            problems.invalid(&at.key("interval"), "must be > 0");
        }
        if check.timeout.is_zero() {
            problems.invalid(&at.key("timeout"), "must be > 0");
        }
        if check.consecutive_failures == 0 {
            problems.invalid(&at.key("consecutive_failures"), "must be >= 1");
        }
    }

    fn check_port(
        &self,
        port: Option<u32>,
        index: Option<u32>,
        at: &JsonPath,
        problems: &mut Problems,
    ) {
        match (port, index) {
            (Some(port), None) if !(1..=65535).contains(&port) => {
                problems.invalid(&at.key("port"), "must be 1 to 65535");
            }
            (None, Some(index)) if index >= self.resources.ports => problems.invalid(
                &at.key("port_index"),
                format!(
                    "must be < resources.ports ({}): it indexes the ports taken from the offer",
                    self.resources.ports
                ),
            ),
            (Some(_), None) | (None, Some(_)) => {}
            _ => problems.invalid(at, "needs exactly one of port and port_index"),
        }
    }
}

fn check_command(command: &Command, at: &JsonPath, problems: &mut Problems) {
    match command {
        Command::Shell(line) if line.trim().is_empty() => {
            problems.invalid(&at.key("shell"), "must not be empty");
        }
        Command::Argv(argv) if argv.first().is_none_or(String::is_empty) => {
            problems.invalid(&at.key("argv"), "needs a program name first");
        }
        _ => {}
    }
}

fn check_resources(
    resources: &ResourceSpec,
    at: &JsonPath,
    required: bool,
    problems: &mut Problems,
) {
    for (name, value) in [("cpus", resources.cpus), ("mem", resources.mem)] {
        if !value.is_finite() {
            problems.invalid(&at.key(name), "must be a finite number");
        } else if required && value <= 0.0 {
            problems.invalid(&at.key(name), "must be > 0");
        } else if value < 0.0 {
            problems.invalid(&at.key(name), "must be >= 0");
        }
    }
    if !resources.disk.is_finite() || resources.disk < 0.0 {
        problems.invalid(&at.key("disk"), "must be a finite number >= 0");
    }
    if resources.ports > 65535 {
        problems.invalid(&at.key("ports"), "must be at most 65535");
    }
}

/// Whether `path` is relative and stays inside the directory it is relative to.
fn relative_inside(path: &str) -> bool {
    !path.is_empty() && !path.starts_with('/') && path.split('/').all(|part| part != "..")
}
