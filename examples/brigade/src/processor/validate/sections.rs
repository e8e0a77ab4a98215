//! Validation of a processor's structured fields: `volumes`, `env`, `constraints`,
//! `docker_options` and `workers`, each reporting its problems with the item's path
//! (`volumes[1].mode`).

use mesos_sdk::resourcemgr::placement::Constraint;
use serde_json::{Map, Value};

use super::{Problems, array, kind};
use crate::processor::{ConstraintSpec, DockerOptions, Volume, VolumeMode, Workers};

pub(super) fn volumes(obj: &Map<String, Value>, p: &mut Problems) -> Vec<Volume> {
    let mut out = Vec::new();
    for (i, item) in array(obj, "volumes", p).iter().enumerate() {
        let at = format!("volumes[{i}]");
        let Value::Object(v) = item else {
            p.add(at, format!("must be an object, not {}", kind(item)));
            continue;
        };
        for key in v.keys() {
            if !matches!(key.as_str(), "host-path" | "container-path" | "mode") {
                p.add(format!("{at}.{key}"), format!("unknown key {key:?}"));
            }
        }
        let mut path = |key: &str| -> Option<String> {
            let field = format!("{at}.{key}");
            match v.get(key) {
                Some(Value::String(s)) if s.starts_with('/') && !s.contains(':') => Some(s.clone()),
                Some(Value::String(s)) => {
                    p.add(
                        field,
                        format!("{s:?}: must be an absolute path without ':'"),
                    );
                    None
                }
                None | Some(Value::Null) => {
                    p.add(field, "missing");
                    None
                }
                Some(other) => {
                    p.add(field, format!("must be a string, not {}", kind(other)));
                    None
                }
            }
        };
        let host = path("host-path");
        let container = path("container-path");
        let mode = match v.get("mode") {
            None | Some(Value::Null) => Some(VolumeMode::ReadOnly),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("RO") => Some(VolumeMode::ReadOnly),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("RW") => Some(VolumeMode::ReadWrite),
            Some(other) => {
                p.add(
                    format!("{at}.mode"),
                    format!("must be \"RO\" or \"RW\", not {other}"),
                );
                None
            }
        };
        if let (Some(host_path), Some(container_path), Some(mode)) = (host, container, mode) {
            out.push(Volume {
                host_path,
                container_path,
                mode,
            });
        }
    }
    out
}

pub(super) fn env(obj: &Map<String, Value>, p: &mut Problems) -> Vec<String> {
    let mut out = Vec::new();
    for (i, item) in array(obj, "env", p).iter().enumerate() {
        let at = format!("env[{i}]");
        let Value::String(s) = item else {
            p.add(
                at,
                format!("must be a \"NAME=value\" string, not {}", kind(item)),
            );
            continue;
        };
        match s.split_once('=') {
            Some((name, _))
                if !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                out.push(s.clone())
            }
            Some((name, _)) => p.add(
                at,
                format!("{name:?} is not a variable name (letters, digits, '_')"),
            ),
            None => p.add(at, format!("{s:?} is not NAME=value")),
        }
    }
    out
}

/// A constraint from its triple's parts, checked with the resource manager's parser.
pub(crate) fn constraint_from_parts(parts: &[String]) -> Result<ConstraintSpec, String> {
    let (field, operator, value) = match parts {
        [f, o] => (f, o, None),
        [f, o, v] => (f, o, Some(v.clone())),
        _ => {
            return Err(format!(
                "must be [field, OPERATOR] or [field, OPERATOR, value], not {} items",
                parts.len()
            ));
        }
    };
    if field.trim().is_empty() {
        return Err("the field must not be empty".into());
    }
    let operator = operator.to_ascii_uppercase();
    if operator == ConstraintSpec::PREFER {
        if value.as_deref().is_none_or(str::is_empty) {
            return Err("PREFER needs a value".into());
        }
    } else {
        Constraint::parse(field, &operator, value.as_deref()).map_err(|e| e.to_string())?;
    }
    Ok(ConstraintSpec {
        field: field.clone(),
        operator,
        value,
    })
}

pub(super) fn constraints(obj: &Map<String, Value>, p: &mut Problems) -> Vec<ConstraintSpec> {
    let mut out = Vec::new();
    for (i, item) in array(obj, "constraints", p).iter().enumerate() {
        let at = format!("constraints[{i}]");
        let parts: Option<Vec<String>> = match item {
            Value::Array(xs) => xs
                .iter()
                .map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect(),
            _ => None,
        };
        let Some(parts) = parts else {
            p.add(at, "must be an array of strings [field, OPERATOR, value]");
            continue;
        };
        match constraint_from_parts(&parts) {
            Ok(c) => out.push(c),
            Err(e) => p.add(at, e),
        }
    }
    out
}

pub(super) fn docker_options(obj: &Map<String, Value>, p: &mut Problems) -> Option<DockerOptions> {
    let v = match obj.get("docker_options") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(v)) => v,
        Some(other) => {
            p.add(
                "docker_options",
                format!("must be an object, not {}", kind(other)),
            );
            return None;
        }
    };
    for key in v.keys() {
        if !matches!(key.as_str(), "network" | "user" | "args") {
            p.add(
                format!("docker_options.{key}"),
                format!("unknown key {key:?}"),
            );
        }
    }
    let mut text = |key: &str| match v.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(other) => {
            p.add(
                format!("docker_options.{key}"),
                format!("must be a non-empty string, not {other}"),
            );
            None
        }
    };
    let network = text("network");
    let user = text("user");
    let mut args = Vec::new();
    match v.get("args") {
        None | Some(Value::Null) => {}
        Some(Value::Array(xs)) => {
            for (i, x) in xs.iter().enumerate() {
                match x {
                    Value::String(s) => args.push(s.clone()),
                    other => p.add(
                        format!("docker_options.args[{i}]"),
                        format!("must be a string, not {}", kind(other)),
                    ),
                }
            }
        }
        Some(other) => p.add(
            "docker_options.args",
            format!("must be an array of strings, not {}", kind(other)),
        ),
    }
    Some(DockerOptions {
        network,
        user,
        args,
    })
}

pub(super) fn workers(obj: &Map<String, Value>, p: &mut Problems) -> Option<Workers> {
    let v = match obj.get("workers") {
        None | Some(Value::Null) => return None,
        Some(Value::Object(v)) => v,
        Some(other) => {
            p.add("workers", format!("must be an object, not {}", kind(other)));
            return None;
        }
    };
    for key in v.keys() {
        if !matches!(key.as_str(), "min" | "max") {
            p.add(format!("workers.{key}"), format!("unknown key {key:?}"));
        }
    }
    let mut count = |key: &str, default: u32| match v.get(key) {
        None | Some(Value::Null) => Some(default),
        Some(Value::Number(n)) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                p.add(format!("workers.{key}"), "must be a whole number");
                None
            }
        },
        Some(other) => {
            p.add(
                format!("workers.{key}"),
                format!("must be a whole number, not {}", kind(other)),
            );
            None
        }
    };
    let min = count("min", 1)?;
    let max = count("max", min.max(1))?;
    if max == 0 {
        p.add("workers.max", "must be at least 1");
    } else if max < min {
        p.add("workers.max", "must not be below workers.min");
    }
    Some(Workers { min, max })
}
