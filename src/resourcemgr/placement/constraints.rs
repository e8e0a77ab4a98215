//! Placement constraints on hostname or any agent attribute, with Marathon's operators (hard:
//! UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER, IS, IN) and the soft preferences
//! (prefer an attribute value, stickiness to the last agent) that delay scheduling relaxes.
//!
//! A constraint counts tasks of one *app* (the request's `app`, Marathon's app id): UNIQUE
//! hostname means no two tasks of the same app on one host. The counts cover the tasks the
//! [`Ledger`](super::Ledger) knows to be running plus those placed earlier in the same round.
//!
//! Semantics where Marathon's documentation is terse, as chosen here:
//! - An agent without the attribute fails UNIQUE, CLUSTER, GROUP_BY, MAX_PER, LIKE, IS and IN
//!   and passes UNLIKE.
//! - LIKE / UNLIKE match the whole value (the regex is anchored).
//! - GROUP_BY field n: a value may take one more task when its count is at most the smallest
//!   count over the values seen (on offered agents and running tasks); while fewer than `n`
//!   values are seen, the unseen ones count as 0, so only values with no task qualify.
//! - CLUSTER field without a value: every task of the app on the value the first one got.

use std::fmt;

use regex::Regex;

/// A constraint field value's counts for one app: value -> tasks.
pub(crate) type Counts = super::FastMap<String, u32>;

/// A hard constraint.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// At most one task of the app per value of the field.
    Unique(String),
    /// Every task of the app on this value of the field (or, without a value, on one value).
    Cluster(String, Option<String>),
    /// Tasks of the app spread evenly over the field's values, expecting this many values.
    GroupBy(String, u32),
    /// The field's value matches the regex (whole value).
    Like(String, Regex),
    /// The field's value does not match the regex (whole value).
    Unlike(String, Regex),
    /// At most this many tasks of the app per value of the field.
    MaxPer(String, u32),
    /// The field's value equals this.
    Is(String, String),
    /// The field's value is one of these.
    In(String, Vec<String>),
}

/// A constraint that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConstraintError {
    /// Unknown operator.
    #[error("unknown constraint operator '{0}'")]
    UnknownOperator(String),
    /// The operator needs a parameter.
    #[error("constraint {0} needs a parameter")]
    MissingParameter(String),
    /// A count that is not a positive integer.
    #[error("constraint {operator}: '{value}' is not a positive count")]
    BadCount {
        /// The operator.
        operator: String,
        /// The parameter.
        value: String,
    },
    /// A regex that does not compile.
    #[error("constraint {operator}: bad regex '{pattern}': {reason}")]
    BadRegex {
        /// The operator.
        operator: String,
        /// The pattern.
        pattern: String,
        /// What the regex crate said.
        reason: String,
    },
}

impl Constraint {
    /// Parses Marathon's triple `[field, OPERATOR, parameter]` (parameter optional for UNIQUE,
    /// CLUSTER and GROUP_BY; IN takes `a,b,c` or `{a,b,c}`).
    pub fn parse(
        field: &str,
        operator: &str,
        param: Option<&str>,
    ) -> Result<Self, ConstraintError> {
        let op = operator.to_ascii_uppercase();
        let field = field.to_string();
        let need = || {
            param
                .map(str::to_string)
                .ok_or_else(|| ConstraintError::MissingParameter(op.clone()))
        };
        let count =
            |value: String| {
                value.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or(
                    ConstraintError::BadCount {
                        operator: op.clone(),
                        value,
                    },
                )
            };
        let regex = |pattern: String| {
            Regex::new(&format!("^(?:{pattern})$")).map_err(|e| ConstraintError::BadRegex {
                operator: op.clone(),
                pattern,
                reason: e.to_string(),
            })
        };
        Ok(match op.as_str() {
            "UNIQUE" => Constraint::Unique(field),
            "CLUSTER" => Constraint::Cluster(field, param.map(str::to_string)),
            "GROUP_BY" => Constraint::GroupBy(field, param.map_or(Ok(1), |p| count(p.into()))?),
            "LIKE" => Constraint::Like(field, regex(need()?)?),
            "UNLIKE" => Constraint::Unlike(field, regex(need()?)?),
            "MAX_PER" => Constraint::MaxPer(field, count(need()?)?),
            "IS" => Constraint::Is(field, need()?),
            "IN" => {
                let p = need()?;
                let inner = p.trim().trim_start_matches('{').trim_end_matches('}');
                Constraint::In(
                    field,
                    inner.split(',').map(|s| s.trim().to_string()).collect(),
                )
            }
            _ => return Err(ConstraintError::UnknownOperator(operator.to_string())),
        })
    }

    /// The field it looks at.
    pub fn field(&self) -> &str {
        match self {
            Constraint::Unique(f)
            | Constraint::Cluster(f, _)
            | Constraint::GroupBy(f, _)
            | Constraint::Like(f, _)
            | Constraint::Unlike(f, _)
            | Constraint::MaxPer(f, _)
            | Constraint::Is(f, _)
            | Constraint::In(f, _) => f,
        }
    }

    /// Whether it depends on the app's task counts (else it looks at the agent only).
    pub fn counts_tasks(&self) -> bool {
        matches!(
            self,
            Constraint::Unique(_)
                | Constraint::Cluster(_, None)
                | Constraint::GroupBy(..)
                | Constraint::MaxPer(..)
        )
    }

    /// Whether an agent whose field has `value` may take one more task of the app, whose
    /// tasks count `counts` per value; `seen` is the number of distinct values known (on the
    /// offered agents and where the app's tasks run).
    pub(crate) fn allows(&self, value: Option<&str>, counts: Option<&Counts>, seen: usize) -> bool {
        let count = |v: &str| counts.and_then(|c| c.get(v)).copied().unwrap_or(0);
        match self {
            Constraint::Unlike(_, re) => value.is_none_or(|v| !re.is_match(v)),
            _ => {
                let Some(v) = value else {
                    return false;
                };
                match self {
                    Constraint::Unique(_) => count(v) == 0,
                    Constraint::Cluster(_, Some(want)) => v == want,
                    Constraint::Cluster(_, None) => counts
                        .map(|c| c.iter().filter(|(_, n)| **n > 0).all(|(k, _)| k == v))
                        .unwrap_or(true),
                    Constraint::GroupBy(_, n) => {
                        // Values with a task are the entries above zero; the others count 0.
                        let min = match counts {
                            Some(c) => {
                                let used = c.values().filter(|n| **n > 0).count();
                                if used >= seen.max(*n as usize) {
                                    c.values().copied().filter(|n| *n > 0).min().unwrap_or(0)
                                } else {
                                    0
                                }
                            }
                            None => 0,
                        };
                        count(v) <= min
                    }
                    Constraint::Like(_, re) => re.is_match(v),
                    Constraint::MaxPer(_, n) => count(v) < *n,
                    Constraint::Is(_, want) => v == want,
                    Constraint::In(_, set) => set.iter().any(|s| s == v),
                    Constraint::Unlike(..) => true,
                }
            }
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pattern = |re: &Regex| {
            let s = re.as_str();
            s.strip_prefix("^(?:")
                .and_then(|s| s.strip_suffix(")$"))
                .unwrap_or(s)
                .to_string()
        };
        match self {
            Constraint::Unique(x) => write!(f, "UNIQUE {x}"),
            Constraint::Cluster(x, Some(v)) => write!(f, "CLUSTER {x}:{v}"),
            Constraint::Cluster(x, None) => write!(f, "CLUSTER {x}"),
            Constraint::GroupBy(x, n) => write!(f, "GROUP_BY {x}:{n}"),
            Constraint::Like(x, re) => write!(f, "LIKE {x}:{}", pattern(re)),
            Constraint::Unlike(x, re) => write!(f, "UNLIKE {x}:{}", pattern(re)),
            Constraint::MaxPer(x, n) => write!(f, "MAX_PER {x}:{n}"),
            Constraint::Is(x, v) => write!(f, "IS {x}:{v}"),
            Constraint::In(x, v) => write!(f, "IN {x}:{{{}}}", v.join(",")),
        }
    }
}

/// A soft preference: an agent whose field has this value is preferred; delay scheduling waits
/// up to the configured locality wait for one before placing elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    /// `hostname` or an attribute name.
    pub field: String,
    /// The preferred value.
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u32)]) -> Counts {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn operators_table() {
        let c = |op: &str, p: Option<&str>| Constraint::parse("rack", op, p).unwrap();
        let some = counts(&[("r1", 1), ("r2", 0)]);
        let both = counts(&[("r1", 1), ("r2", 1)]);
        let two = counts(&[("r1", 2)]);
        type Case<'a> = (Constraint, Option<&'a str>, Option<&'a Counts>, usize, bool);
        let cases: Vec<Case> = vec![
            (c("UNIQUE", None), Some("r1"), Some(&some), 2, false),
            (c("UNIQUE", None), Some("r2"), Some(&some), 2, true),
            (c("UNIQUE", None), None, None, 0, false),
            (c("CLUSTER", Some("r1")), Some("r1"), None, 0, true),
            (c("CLUSTER", Some("r1")), Some("r2"), None, 0, false),
            (c("CLUSTER", None), Some("r1"), Some(&some), 2, true),
            (c("CLUSTER", None), Some("r2"), Some(&some), 2, false),
            (c("CLUSTER", None), Some("r2"), None, 0, true),
            (c("GROUP_BY", Some("2")), Some("r1"), Some(&some), 2, false),
            (c("GROUP_BY", Some("2")), Some("r2"), Some(&some), 2, true),
            (c("GROUP_BY", Some("3")), Some("r1"), Some(&both), 2, false),
            (c("GROUP_BY", Some("2")), Some("r1"), Some(&both), 2, true),
            (c("LIKE", Some("r[0-9]")), Some("r1"), None, 0, true),
            (c("LIKE", Some("r")), Some("r1"), None, 0, false),
            (c("LIKE", Some("r.*")), None, None, 0, false),
            (c("UNLIKE", Some("r1")), Some("r1"), None, 0, false),
            (c("UNLIKE", Some("r1")), Some("r11"), None, 0, true),
            (c("UNLIKE", Some("r1")), None, None, 0, true),
            (c("MAX_PER", Some("2")), Some("r1"), Some(&two), 1, false),
            (c("MAX_PER", Some("2")), Some("r1"), Some(&some), 2, true),
            (c("IS", Some("r1")), Some("r1"), None, 0, true),
            (c("IS", Some("r1")), Some("r2"), None, 0, false),
            (c("IN", Some("{r1, r3}")), Some("r3"), None, 0, true),
            (c("IN", Some("r1,r3")), Some("r2"), None, 0, false),
        ];
        for (constraint, value, counts, seen, want) in cases {
            assert_eq!(
                constraint.allows(value, counts, seen),
                want,
                "{constraint} on {value:?}"
            );
        }
    }

    #[test]
    fn parse_errors_and_display() {
        assert_eq!(
            Constraint::parse("a", "NEAR", None).unwrap_err(),
            ConstraintError::UnknownOperator("NEAR".into())
        );
        assert_eq!(
            Constraint::parse("a", "MAX_PER", None).unwrap_err(),
            ConstraintError::MissingParameter("MAX_PER".into())
        );
        assert!(matches!(
            Constraint::parse("a", "MAX_PER", Some("0")),
            Err(ConstraintError::BadCount { .. })
        ));
        assert!(matches!(
            Constraint::parse("a", "LIKE", Some("(")),
            Err(ConstraintError::BadRegex { .. })
        ));
        let shown: Vec<String> = [
            ("hostname", "unique", None),
            ("rack", "GROUP_BY", Some("3")),
            ("rack", "LIKE", Some("r[12]")),
            ("zone", "IN", Some("a,b")),
        ]
        .iter()
        .map(|(f, o, p)| Constraint::parse(f, o, *p).unwrap().to_string())
        .collect();
        assert_eq!(
            shown,
            vec![
                "UNIQUE hostname",
                "GROUP_BY rack:3",
                "LIKE rack:r[12]",
                "IN zone:{a,b}"
            ]
        );
    }
}
