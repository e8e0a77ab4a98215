//! Parsing and validating a processor's JSON: one pass over the object that collects every
//! problem with its field (`volumes[1].mode`, `env[0]`), unknown keys included, instead of
//! stopping at the first.
//!
//! Rules: `name` letters, digits, `.`, `_`, `-` (it goes into framework names and task ids);
//! topics Kafka's topic rules; exactly one of `docker` and `command`; `cpus` and `mem` numbers or
//! numeric strings (as the original's sample writes them), finite and above zero; `env` entries
//! `NAME=value`; volume paths absolute, `mode` `RO` or `RW` (default `RO`); durations as seconds
//! (a number) or Mesos duration text (`30secs`, `1.5mins`); `constraints` Marathon triples (or
//! `PREFER` for a soft one); `docker_options` and `volumes` only with `docker`; `workers` and
//! `stream` (`"lines"`) only with `mode` `warm`. The structured fields' checks are in the `sections` submodule.

use std::fmt;
use std::time::Duration;

use mesos_sdk::duration::parse_duration;
use serde_json::{Map, Value};

use super::{
    DEFAULT_BACKOFF, DEFAULT_CPUS, DEFAULT_MAX_BACKOFF, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_OUTPUT,
    DEFAULT_MEM, DEFAULT_TIMEOUT, Mode, Processor, Stream,
};

mod sections;

pub(crate) use sections::constraint_from_parts;
use sections::{constraints, docker_options, env, volumes, workers};

/// The keys a processor may have.
pub const KEYS: &[&str] = &[
    "name",
    "input",
    "output",
    "error",
    "docker",
    "command",
    "cpus",
    "mem",
    "volumes",
    "env",
    "timeout",
    "max_in_flight",
    "retries",
    "backoff",
    "max_backoff",
    "constraints",
    "docker_options",
    "mode",
    "workers",
    "stream",
    "max_output",
];

/// One problem: the field (a path such as `volumes[0].mode`; empty for the whole document)
/// and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's path.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem of a processor's JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    /// The problems, in document order.
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// The problems of one field.
    pub fn for_field<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a FieldError> + 'a {
        self.errors.iter().filter(move |e| e.field == field)
    }

    /// Whether some problem concerns `field`.
    pub fn has(&self, field: &str) -> bool {
        self.for_field(field).next().is_some()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid processor: ")?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            if e.field.is_empty() {
                write!(f, "{}", e.message)?;
            } else {
                write!(f, "{}: {}", e.field, e.message)?;
            }
        }
        Ok(())
    }
}

/// Collects problems.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    pub(super) fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Parses JSON text into a validated processor.
pub fn from_json(text: &str) -> Result<Processor, ValidationErrors> {
    let value: Value = serde_json::from_str(text).map_err(|e| ValidationErrors {
        errors: vec![FieldError {
            field: String::new(),
            message: format!("not valid JSON: {e}"),
        }],
    })?;
    from_value(value)
}

/// Validates a JSON value into a processor.
pub fn from_value(value: Value) -> Result<Processor, ValidationErrors> {
    let mut p = Problems::default();
    let Value::Object(obj) = value else {
        p.add("", "a processor must be a JSON object");
        return Err(ValidationErrors { errors: p.0 });
    };
    for key in obj.keys() {
        if !KEYS.contains(&key.as_str()) {
            p.add(key.clone(), format!("unknown key {key:?}"));
        }
    }
    let name = required_string(&obj, "name", &mut p);
    if let Some(name) = &name {
        check_name(name, &mut p);
    }
    let input = required_string(&obj, "input", &mut p);
    if let Some(t) = &input {
        check_topic("input", t, &mut p);
    }
    let output = optional_string(&obj, "output", &mut p);
    if let Some(t) = &output {
        check_topic("output", t, &mut p);
    }
    let error = required_string(&obj, "error", &mut p);
    if let Some(t) = &error {
        check_topic("error", t, &mut p);
    }
    let docker = optional_string(&obj, "docker", &mut p);
    let command = optional_string(&obj, "command", &mut p);
    match (&docker, &command) {
        (Some(_), Some(_)) => p.add("docker", "give either docker or command, not both"),
        (None, None) if !obj.contains_key("docker") && !obj.contains_key("command") => {
            p.add("command", "missing: give docker (an image) or command")
        }
        _ => {}
    }
    for (key, v) in [("docker", &docker), ("command", &command)] {
        if v.as_deref().is_some_and(|s| s.trim().is_empty()) {
            p.add(key, "must not be empty");
        }
    }
    let cpus = positive_number(&obj, "cpus", DEFAULT_CPUS, &mut p);
    let mem = positive_number(&obj, "mem", DEFAULT_MEM, &mut p);
    let volumes = volumes(&obj, &mut p);
    if !volumes.is_empty() && docker.is_none() && command.is_some() {
        p.add("volumes", "volumes apply to docker processors only");
    }
    let env = env(&obj, &mut p);
    let timeout = duration(&obj, "timeout", DEFAULT_TIMEOUT, &mut p);
    if timeout.is_zero() {
        p.add("timeout", "must be above zero");
    }
    let max_in_flight = whole(&obj, "max_in_flight", DEFAULT_MAX_IN_FLIGHT.into(), &mut p);
    if max_in_flight == 0 {
        p.add("max_in_flight", "must be at least 1");
    }
    let retries = whole(&obj, "retries", 0, &mut p);
    let backoff = duration(&obj, "backoff", DEFAULT_BACKOFF, &mut p);
    let max_backoff = duration(
        &obj,
        "max_backoff",
        DEFAULT_MAX_BACKOFF.max(backoff),
        &mut p,
    );
    if max_backoff < backoff {
        p.add("max_backoff", "must not be below backoff");
    }
    let constraints = constraints(&obj, &mut p);
    let docker_options = docker_options(&obj, &mut p);
    if docker_options.is_some() && docker.is_none() && command.is_some() {
        p.add(
            "docker_options",
            "docker_options apply to docker processors only",
        );
    }
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => Mode::PerMessage,
        Some(Value::String(s)) if s == "per-message" => Mode::PerMessage,
        Some(Value::String(s)) if s == "warm" => Mode::Warm,
        Some(other) => {
            p.add(
                "mode",
                format!("must be \"per-message\" or \"warm\", not {other}"),
            );
            Mode::PerMessage
        }
    };
    let workers = workers(&obj, &mut p);
    if workers.is_some() && mode != Mode::Warm {
        p.add("workers", "workers apply to mode \"warm\" only");
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "lines" => Some(Stream::Lines),
        Some(other) => {
            p.add("stream", format!("must be \"lines\", not {other}"));
            None
        }
    };
    if stream.is_some() && mode != Mode::Warm {
        p.add("stream", "stream applies to mode \"warm\" only");
    }
    let max_output = whole(&obj, "max_output", DEFAULT_MAX_OUTPUT, &mut p);
    if max_output == 0 {
        p.add("max_output", "must be at least 1");
    }
    if !p.0.is_empty() {
        return Err(ValidationErrors { errors: p.0 });
    }
    Ok(Processor {
        name: name.unwrap_or_default(),
        input: input.unwrap_or_default(),
        output,
        error: error.unwrap_or_default(),
        docker,
        command,
        cpus,
        mem,
        volumes,
        env,
        timeout,
        max_in_flight: u32::try_from(max_in_flight).unwrap_or(u32::MAX),
        retries: u32::try_from(retries).unwrap_or(u32::MAX),
        backoff,
        max_backoff,
        constraints,
        docker_options,
        mode,
        workers,
        stream,
        max_output,
    })
}

fn optional_string(obj: &Map<String, Value>, key: &str, p: &mut Problems) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            p.add(key, format!("must be a string, not {}", kind(other)));
            None
        }
    }
}

fn required_string(obj: &Map<String, Value>, key: &str, p: &mut Problems) -> Option<String> {
    if matches!(obj.get(key), None | Some(Value::Null)) {
        p.add(key, "missing");
        return None;
    }
    optional_string(obj, key, p)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_name(name: &str, p: &mut Problems) {
    if name.is_empty() {
        p.add("name", "must not be empty");
    } else if name.len() > 100 {
        p.add("name", "at most 100 characters");
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        p.add(
            "name",
            format!("{name:?}: only letters, digits, '.', '_' and '-' are allowed"),
        );
    }
}

fn check_topic(key: &str, topic: &str, p: &mut Problems) {
    if topic.is_empty() {
        p.add(key, "must not be empty");
    } else if topic == "." || topic == ".." {
        p.add(key, format!("{topic:?} is not a valid topic name"));
    } else if topic.len() > 249 {
        p.add(key, "a topic name has at most 249 characters");
    } else if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        p.add(
            key,
            format!("{topic:?}: a topic name has only letters, digits, '.', '_' and '-'"),
        );
    }
}

/// A number or a numeric string, finite and above zero.
fn positive_number(obj: &Map<String, Value>, key: &str, default: f64, p: &mut Problems) -> f64 {
    let parsed = match obj.get(key) {
        None | Some(Value::Null) => return default,
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(v) if v.is_finite() && v > 0.0 => v,
        Some(_) => {
            p.add(key, "must be a number above zero");
            default
        }
        None => {
            let shown = obj.get(key).map(ToString::to_string).unwrap_or_default();
            p.add(
                key,
                format!("must be a number or a numeric string, not {shown}"),
            );
            default
        }
    }
}

fn whole(obj: &Map<String, Value>, key: &str, default: u64, p: &mut Problems) -> u64 {
    match obj.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= u64::from(u32::MAX) || key == "max_output" => v,
            _ => {
                p.add(key, format!("must be a whole number >= 0, not {n}"));
                default
            }
        },
        Some(other) => {
            p.add(key, format!("must be a whole number, not {}", kind(other)));
            default
        }
    }
}

/// A duration: a number of seconds, or Mesos duration text.
pub(crate) fn duration_from(value: &Value) -> Result<Duration, String> {
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(s) if s.is_finite() && s >= 0.0 => {
                Duration::try_from_secs_f64(s).map_err(|e| e.to_string())
            }
            _ => Err(format!("{n} is not a number of seconds >= 0")),
        },
        Value::String(s) => parse_duration(s).map_err(|e| e.to_string()),
        other => Err(format!(
            "must be seconds (a number) or a duration such as \"30secs\", not {}",
            kind(other)
        )),
    }
}

fn duration(obj: &Map<String, Value>, key: &str, default: Duration, p: &mut Problems) -> Duration {
    match obj.get(key) {
        None | Some(Value::Null) => default,
        Some(v) => duration_from(v).unwrap_or_else(|e| {
            p.add(key, e);
            default
        }),
    }
}

fn array<'a>(obj: &'a Map<String, Value>, key: &str, p: &mut Problems) -> &'a [Value] {
    match obj.get(key) {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(other) => {
            p.add(key, format!("must be an array, not {}", kind(other)));
            &[]
        }
    }
}
