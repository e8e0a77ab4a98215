//! Placement constraints of a spec: Marathon's `{field, operator, value}` triples, kept as data
//! for the resource manager's placement engine, and their validation (operator names, whether a
//! value is required, numbers and regular expressions).
//!
//! `field` is `hostname` or an agent attribute name (Marathon's `@region` and `@zone` are kept
//! as written). Values by operator:
//! - `UNIQUE`: none. Each instance on a different value of the field.
//! - `CLUSTER`: optional. All instances on agents with this value (or, without one, on the
//!   value of the first placement).
//! - `GROUP_BY`: optional, a whole number >= 1: spread evenly over that many values (or over
//!   the values seen).
//! - `MAX_PER`: required, a whole number >= 1: at most that many instances per value.
//! - `LIKE` / `UNLIKE`: required, a regular expression (Rust `regex` syntax) that must (not)
//!   match the whole value.
//! - `IS`: required, the exact value.
//! - `IN`: required, a comma-separated list of values (`rack-1,rack-2`), none empty.

use serde::{Deserialize, Serialize};

use super::validate::{JsonPath, Problems};

/// A placement constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// `hostname` or an agent attribute name.
    #[serde(default)]
    pub field: String,
    /// The operator.
    pub operator: Operator,
    /// The operator's argument (see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Marathon's constraint operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operator {
    /// One instance per value.
    Unique,
    /// All instances on one value.
    Cluster,
    /// Spread evenly over values.
    GroupBy,
    /// The value matches a regular expression.
    Like,
    /// The value does not match a regular expression.
    Unlike,
    /// At most N instances per value.
    MaxPer,
    /// The value equals.
    Is,
    /// The value is one of a list.
    In,
}

impl Operator {
    /// Every operator, in Marathon's order.
    pub const ALL: [Operator; 8] = [
        Operator::Unique,
        Operator::Cluster,
        Operator::GroupBy,
        Operator::Like,
        Operator::Unlike,
        Operator::MaxPer,
        Operator::Is,
        Operator::In,
    ];

    /// The operator's name in JSON (`GROUP_BY`).
    pub fn name(self) -> &'static str {
        match self {
            Operator::Unique => "UNIQUE",
            Operator::Cluster => "CLUSTER",
            Operator::GroupBy => "GROUP_BY",
            Operator::Like => "LIKE",
            Operator::Unlike => "UNLIKE",
            Operator::MaxPer => "MAX_PER",
            Operator::Is => "IS",
            Operator::In => "IN",
        }
    }
}

impl Constraint {
    /// The regular expression of a `LIKE` or `UNLIKE` constraint, anchored to the whole value.
    pub fn regex(&self) -> Option<Result<regex::Regex, regex::Error>> {
        match self.operator {
            Operator::Like | Operator::Unlike => self
                .value
                .as_deref()
                .map(|v| regex::Regex::new(&format!("^(?:{v})$"))),
            _ => None,
        }
    }

    pub(crate) fn check(&self, path: &JsonPath, problems: &mut Problems) {
        if self.field.trim().is_empty() {
            problems.invalid(&path.key("field"), "must not be empty");
        } else if self.field.chars().any(char::is_whitespace) {
            problems.invalid(&path.key("field"), "must not contain whitespace");
        }
        let value_path = path.key("value");
        let name = self.operator.name();
        let value = self.value.as_deref();
        match (self.operator, value) {
            (Operator::Unique, Some(_)) => {
                problems.invalid(&value_path, "UNIQUE takes no value");
            }
            (Operator::Unique | Operator::Cluster | Operator::GroupBy, None) => {}
            (Operator::Cluster, Some("")) => {
                problems.invalid(&value_path, "must not be empty (leave it out instead)");
            }
            (Operator::Cluster, Some(_)) => {}
            (Operator::GroupBy | Operator::MaxPer, Some(v)) => {
                if !v.parse::<u32>().is_ok_and(|n| n >= 1) {
                    problems.invalid(
                        &value_path,
                        format!("{name} takes a whole number >= 1, not {v:?}"),
                    );
                }
            }
            (_, None) => problems.invalid(&value_path, format!("{name} requires a value")),
            (Operator::Like | Operator::Unlike, Some(_)) => {
                if let Some(Err(err)) = self.regex() {
                    let first = err.to_string();
                    let first = first.lines().last().unwrap_or_default().trim().to_string();
                    problems.invalid(
                        &value_path,
                        format!("not a valid regular expression: {first}"),
                    );
                }
            }
            (Operator::Is, Some(_)) => {}
            (Operator::In, Some(v)) => {
                if v.split(',').any(|item| item.trim().is_empty()) {
                    problems.invalid(
                        &value_path,
                        "IN takes a comma-separated list of non-empty values",
                    );
                }
            }
        }
    }
}
