//! Reading specs from JSON with every problem reported at once.
//!
//! serde stops at the first error, so the text is first parsed to a `serde_json::Value` and
//! walked against the spec's shape (a table below that mirrors the serde structs): unknown keys,
//! values of the wrong type, words outside their set (`"policy": "sometimes"`), bad durations and
//! bad base64 are all collected with their paths. Unknown keys are then dropped and bad values
//! replaced by neutral ones, so serde reads the rest and the semantic validation of
//! [`validate`](super::validate) runs too; its findings inside a value already reported are left
//! out, so one mistake gives one message.

use serde_json::{Map, Value};

use super::validate::{JsonPath, Problems, SpecErrorKind, SpecErrors, check_tasks};
use super::{TaskSpec, TaskSpecs};

/// The JSON shape of a value.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Str,
    Bool,
    U32,
    Num,
    Duration,
    Base64,
    /// An object of strings.
    StrMap,
    /// One of these strings.
    Words(&'static [&'static str]),
    /// An object with these keys.
    Obj(&'static [Field]),
    /// An object with exactly one of these keys (a serde externally tagged enum).
    OneOf(&'static [Field]),
    /// An array of one shape.
    List(&'static Shape),
}

/// A key of an object.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    shape: Shape,
    /// serde has no default for it.
    required: bool,
}

const fn opt(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
    }
}

const fn req(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

const STRINGS: Shape = Shape::Str;
const COMMAND: &[Field] = &[opt("shell", Shape::Str), opt("argv", Shape::List(&STRINGS))];
const RESOURCES: &[Field] = &[
    opt("cpus", Shape::Num),
    opt("mem", Shape::Num),
    opt("disk", Shape::Num),
    opt("gpus", Shape::U32),
    opt("ports", Shape::U32),
];
const PORT_MAPPING: Shape = Shape::Obj(&[
    opt("container_port", Shape::U32),
    opt("host_port", Shape::U32),
    opt("protocol", Shape::Words(&["tcp", "udp"])),
]);
const PARAMETER: Shape = Shape::Obj(&[opt("key", Shape::Str), opt("value", Shape::Str)]);
const DOCKER: &[Field] = &[
    opt("image", Shape::Str),
    opt("network", Shape::Words(&["host", "bridge", "none", "user"])),
    opt("network_name", Shape::Str),
    opt("port_mappings", Shape::List(&PORT_MAPPING)),
    opt("privileged", Shape::Bool),
    opt("force_pull", Shape::Bool),
    opt("parameters", Shape::List(&PARAMETER)),
];
const EXECUTOR: &[Field] = &[
    opt("artifact", Shape::Str),
    opt("arguments", Shape::List(&STRINGS)),
    opt("resources", Shape::Obj(RESOURCES)),
];
const URI: Shape = Shape::Obj(&[
    opt("value", Shape::Str),
    opt("artifact", Shape::Str),
    opt("executable", Shape::Bool),
    opt("extract", Shape::Bool),
    opt("cache", Shape::Bool),
    opt("output_file", Shape::Str),
]);
const VOLUME: Shape = Shape::Obj(&[
    opt("host_path", Shape::Str),
    opt("container_path", Shape::Str),
    opt("mode", Shape::Words(&["rw", "ro"])),
]);
const HEALTH: &[Field] = &[
    opt("command", Shape::OneOf(COMMAND)),
    opt(
        "http",
        Shape::Obj(&[
            opt("port", Shape::U32),
            opt("port_index", Shape::U32),
            opt("path", Shape::Str),
            opt("scheme", Shape::Words(&["http", "https"])),
        ]),
    ),
    opt(
        "tcp",
        Shape::Obj(&[opt("port", Shape::U32), opt("port_index", Shape::U32)]),
    ),
    opt("delay", Shape::Duration),
    opt("interval", Shape::Duration),
    opt("timeout", Shape::Duration),
    opt("grace_period", Shape::Duration),
    opt("consecutive_failures", Shape::U32),
];
const RESTART: &[Field] = &[
    opt("policy", Shape::Words(&["never", "on_failure", "always"])),
    opt("max_retries", Shape::U32),
    opt("backoff_min", Shape::Duration),
    opt("backoff_max", Shape::Duration),
    opt("sticky", Shape::Bool),
];
const CONSTRAINT: Shape = Shape::Obj(&[
    opt("field", Shape::Str),
    req(
        "operator",
        Shape::Words(&[
            "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS", "IN",
        ]),
    ),
    opt("value", Shape::Str),
]);
const TASK: &[Field] = &[
    opt("name", Shape::Str),
    opt("instances", Shape::U32),
    opt("command", Shape::OneOf(COMMAND)),
    opt("docker", Shape::Obj(DOCKER)),
    opt("executor", Shape::Obj(EXECUTOR)),
    opt("resources", Shape::Obj(RESOURCES)),
    opt("env", Shape::StrMap),
    opt("labels", Shape::StrMap),
    opt("uris", Shape::List(&URI)),
    opt("volumes", Shape::List(&VOLUME)),
    opt("health_check", Shape::Obj(HEALTH)),
    opt(
        "kill_policy",
        Shape::Obj(&[req("grace_period", Shape::Duration)]),
    ),
    opt("restart", Shape::Obj(RESTART)),
    opt("constraints", Shape::List(&CONSTRAINT)),
    opt("data", Shape::Base64),
];
const TASK_SHAPE: Shape = Shape::Obj(TASK);
const DOCUMENT: &[Field] = &[opt("tasks", Shape::List(&TASK_SHAPE))];

/// The structural walk: problems found, and the paths whose semantic findings are redundant.
#[derive(Default)]
struct Walk {
    problems: Problems,
    shadows: Vec<JsonPath>,
}

impl Walk {
    fn wrong(&mut self, value: &mut Value, shape: Shape, path: &JsonPath, message: String) {
        self.problems.push(path, SpecErrorKind::WrongType, message);
        self.shadows.push(path.clone());
        *value = placeholder(shape);
    }

    fn value(&mut self, value: &mut Value, shape: Shape, path: &JsonPath) {
        if value.is_null() {
            let message = format!(
                "null is not allowed here (expected {}); leave the key out",
                expected(shape)
            );
            return self.wrong(value, shape, path, message);
        }
        match shape {
            Shape::Str if !value.is_string() => self.mismatch(value, shape, path),
            Shape::Bool if !value.is_boolean() => self.mismatch(value, shape, path),
            Shape::Num if !value.is_number() => self.mismatch(value, shape, path),
            Shape::U32 => match value.as_u64() {
                Some(n) if n > u64::from(u32::MAX) => {
                    let message = format!("{n} is out of range (at most {})", u32::MAX);
                    self.wrong(value, shape, path, message);
                }
                Some(_) => {}
                None => self.mismatch(value, shape, path),
            },
            Shape::Duration => match value.as_str().map(crate::duration::parse_duration) {
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    let message = format!("not a Mesos duration like \"10secs\": {err}");
                    self.wrong(value, shape, path, message);
                }
                None => self.mismatch(value, shape, path),
            },
            Shape::Base64 => {
                use base64::Engine;
                match value
                    .as_str()
                    .map(|t| base64::engine::general_purpose::STANDARD.decode(t))
                {
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        let message = format!("not valid base64: {err}");
                        self.wrong(value, shape, path, message);
                    }
                    None => self.mismatch(value, shape, path),
                }
            }
            Shape::Words(words) => {
                if !value.as_str().is_some_and(|w| words.contains(&w)) {
                    let message = format!("must be one of {}, not {value}", quoted(words));
                    self.wrong(value, shape, path, message);
                }
            }
            Shape::StrMap => match value.as_object_mut() {
                Some(map) => {
                    for (key, item) in map.iter_mut() {
                        self.value(item, Shape::Str, &path.key(key));
                    }
                }
                None => self.mismatch(value, shape, path),
            },
            Shape::List(item) => match value.as_array_mut() {
                Some(items) => {
                    for (i, element) in items.iter_mut().enumerate() {
                        self.value(element, *item, &path.index(i));
                    }
                }
                None => self.mismatch(value, shape, path),
            },
            Shape::Obj(fields) => match value.as_object_mut() {
                Some(map) => self.object(map, fields, path),
                None => self.mismatch(value, shape, path),
            },
            Shape::OneOf(fields) => {
                let Some(map) = value.as_object_mut() else {
                    return self.mismatch(value, shape, path);
                };
                self.object(map, fields, path);
                if map.len() != 1 {
                    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
                    let message = format!("needs exactly one of {}", quoted(&names));
                    self.problems.push(path, SpecErrorKind::Invalid, message);
                    self.shadows.push(path.clone());
                    *value = placeholder(shape);
                }
            }
            Shape::Str | Shape::Bool | Shape::Num => {}
        }
    }

    fn mismatch(&mut self, value: &mut Value, shape: Shape, path: &JsonPath) {
        let message = format!("expected {}, found {}", expected(shape), kind_of(value));
        self.wrong(value, shape, path, message);
    }

    fn object(&mut self, map: &mut Map<String, Value>, fields: &'static [Field], path: &JsonPath) {
        let unknown: Vec<String> = map
            .keys()
            .filter(|k| !fields.iter().any(|f| f.name == k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            self.problems.push(
                &path.key(&key),
                SpecErrorKind::UnknownKey,
                format!("unknown key {key:?} (known keys: {})", names.join(", ")),
            );
            map.remove(&key);
        }
        for field in fields {
            match map.get_mut(field.name) {
                Some(value) => self.value(value, field.shape, &path.key(field.name)),
                None if field.required => {
                    self.problems.invalid(&path.key(field.name), "is required");
                    self.shadows.push(path.clone());
                    map.insert(field.name.to_string(), placeholder(field.shape));
                }
                None => {}
            }
        }
    }
}

/// A value of `shape` that serde reads (its content is never reported: its path is shadowed).
fn placeholder(shape: Shape) -> Value {
    match shape {
        Shape::Str | Shape::Base64 => Value::from(""),
        Shape::Bool => Value::from(false),
        Shape::U32 | Shape::Num => Value::from(0),
        Shape::Duration => Value::from("1secs"),
        Shape::Words(words) => Value::from(words.first().copied().unwrap_or_default()),
        Shape::StrMap => Value::Object(Map::new()),
        Shape::List(_) => Value::Array(Vec::new()),
        Shape::Obj(fields) => Value::Object(
            fields
                .iter()
                .filter(|f| f.required)
                .map(|f| (f.name.to_string(), placeholder(f.shape)))
                .collect(),
        ),
        Shape::OneOf(fields) => Value::Object(
            fields
                .first()
                .map(|f| (f.name.to_string(), placeholder(f.shape)))
                .into_iter()
                .collect(),
        ),
    }
}

fn expected(shape: Shape) -> String {
    match shape {
        Shape::Str => "a string".into(),
        Shape::Bool => "true or false".into(),
        Shape::U32 => "a whole number from 0 to 4294967295".into(),
        Shape::Num => "a number".into(),
        Shape::Duration => "a Mesos duration string like \"10secs\"".into(),
        Shape::Base64 => "a base64 string".into(),
        Shape::StrMap => "an object of strings".into(),
        Shape::Words(words) => format!("one of {}", quoted(words)),
        Shape::Obj(_) => "an object".into(),
        Shape::OneOf(fields) => {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            format!("an object with one of {}", quoted(&names))
        }
        Shape::List(_) => "an array".into(),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a whole number",
        Value::Number(n) if n.is_i64() => "a negative number",
        Value::Number(_) => "a fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_value(text: &str) -> Result<Value, SpecErrors> {
    serde_json::from_str(text).map_err(|err| {
        SpecErrors::single(
            JsonPath::root(),
            SpecErrorKind::Syntax,
            format!("not valid JSON: {err}"),
        )
    })
}

/// Reads one spec from a cleaned value; serde problems (a table out of step with the structs)
/// are reported at their path.
fn typed(value: Value, path: &JsonPath, problems: &mut Problems) -> Option<TaskSpec> {
    match serde_path_to_error::deserialize::<_, TaskSpec>(value) {
        Ok(spec) => Some(spec),
        Err(err) => {
            let inner = err.path().to_string();
            let mut at = path.clone();
            if inner != "." {
                for part in inner.split('.') {
                    at = at.key(part);
                }
            }
            problems.push(&at, SpecErrorKind::WrongType, err.into_inner().to_string());
            None
        }
    }
}

impl TaskSpecs {
    /// Reads and validates a document `{"tasks": [...]}`, reporting every problem at once.
    pub fn from_json(text: &str) -> Result<Self, SpecErrors> {
        Self::from_value(parse_value(text)?)
    }

    /// Like [`from_json`](Self::from_json), from a parsed value.
    pub fn from_value(mut value: Value) -> Result<Self, SpecErrors> {
        let root = JsonPath::root();
        let mut walk = Walk::default();
        walk.value(&mut value, Shape::Obj(DOCUMENT), &root);
        let tasks_path = root.key("tasks");
        let items = match value.get_mut("tasks").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let mut semantic = Problems::default();
        let mut specs = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            if let Some(spec) = typed(item, &tasks_path.index(i), &mut semantic) {
                specs.push((i, spec));
            }
        }
        check_tasks(
            specs.iter().map(|(i, s)| (*i, s)),
            &tasks_path,
            &mut semantic,
        );
        walk.problems.merge_shadowed(semantic, &walk.shadows);
        walk.problems.into_result()?;
        Ok(TaskSpecs {
            tasks: specs.into_iter().map(|(_, spec)| spec).collect(),
        })
    }
}

impl TaskSpec {
    /// Reads and validates one spec object, reporting every problem at once (paths relative to
    /// the spec: `resources.cpus`).
    pub fn from_json(text: &str) -> Result<Self, SpecErrors> {
        Self::from_value(parse_value(text)?)
    }

    /// Like [`from_json`](Self::from_json), from a parsed value.
    pub fn from_value(mut value: Value) -> Result<Self, SpecErrors> {
        let root = JsonPath::root();
        let mut walk = Walk::default();
        walk.value(&mut value, TASK_SHAPE, &root);
        let mut semantic = Problems::default();
        let spec = typed(value.take(), &root, &mut semantic);
        if let Some(spec) = &spec {
            spec.check(&root, &mut semantic);
        }
        walk.problems.merge_shadowed(semantic, &walk.shadows);
        walk.problems.into_result()?;
        // `typed` reports a problem whenever it gives no spec, so this is not reached.
        spec.ok_or_else(|| {
            SpecErrors::single(root, SpecErrorKind::WrongType, "the spec could not be read")
        })
    }

    /// The spec as pretty JSON (the form [`from_json`](Self::from_json) reads).
    pub fn to_json(&self) -> String {
        // Maps have string keys and floats are finite or written as null: this cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
