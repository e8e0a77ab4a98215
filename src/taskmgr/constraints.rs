//! Checking a spec's placement constraints ([`Constraint`]) against one offer: the value of the
//! constraint's field on the offer's agent (`hostname` or an attribute) and the values under
//! the spec's other live instances.
//!
//! Choices: an agent without the field is refused by every operator; `GROUP_BY` spreads over
//! the values seen so far (an offer is admitted when its value holds no more instances than the
//! least used value seen); text and scalar attributes compare by their text (`rack-1`, `3`).

use std::collections::BTreeMap;

use super::spec::{Constraint, Operator};
use crate::v1::{Offer, value};

/// The value of `field` on the offer's agent: `hostname`, or a text or scalar attribute.
pub fn field_value(offer: &Offer, field: &str) -> Option<String> {
    if field == "hostname" {
        return Some(offer.hostname.clone());
    }
    let attribute = offer.attributes.iter().find(|a| a.name == field)?;
    match value::Type::try_from(attribute.r#type).ok()? {
        value::Type::Text => attribute.text.as_ref().map(|t| t.value.clone()),
        value::Type::Scalar => attribute.scalar.as_ref().map(|s| s.value.to_string()),
        _ => None,
    }
}

/// Whether `constraint` admits an agent whose field value is `candidate`, given the values of
/// the spec's live instances (`placed`, one entry per instance). The error says why not.
pub fn admits(
    constraint: &Constraint,
    candidate: Option<&str>,
    placed: &[String],
) -> Result<(), String> {
    let field = &constraint.field;
    let Some(candidate) = candidate else {
        return Err(format!("the agent has no {field}"));
    };
    let count = |v: &str| placed.iter().filter(|p| p.as_str() == v).count();
    let arg = constraint.value.as_deref();
    let ok = match constraint.operator {
        Operator::Unique => count(candidate) == 0,
        Operator::Cluster => match arg.or(placed.first().map(String::as_str)) {
            Some(target) => candidate == target,
            None => true,
        },
        Operator::GroupBy => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for p in placed {
                *counts.entry(p.as_str()).or_default() += 1;
            }
            counts.entry(candidate).or_default();
            let least = counts.values().copied().min().unwrap_or(0);
            count(candidate) <= least
        }
        Operator::Like | Operator::Unlike => {
            let matched = constraint
                .regex()
                .and_then(Result::ok)
                .is_some_and(|re| re.is_match(candidate));
            matched == (constraint.operator == Operator::Like)
        }
        Operator::MaxPer => {
            let max = arg.and_then(|v| v.parse::<usize>().ok()).unwrap_or(1);
            count(candidate) < max
        }
        Operator::Is => arg == Some(candidate),
        Operator::In => arg.is_some_and(|list| list.split(',').any(|v| v.trim() == candidate)),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "constraint {field} {} {} refuses {field}={candidate}",
            constraint.operator.name(),
            arg.unwrap_or("")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(operator: Operator, value: Option<&str>) -> Constraint {
        Constraint {
            field: "rack".into(),
            operator,
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn operators() {
        let placed = vec!["r1".to_owned(), "r1".to_owned(), "r2".to_owned()];
        assert!(admits(&c(Operator::Unique, None), Some("r3"), &placed).is_ok());
        assert!(admits(&c(Operator::Unique, None), Some("r1"), &placed).is_err());
        assert!(admits(&c(Operator::Cluster, None), Some("r1"), &placed).is_ok());
        assert!(admits(&c(Operator::Cluster, Some("r2")), Some("r1"), &placed).is_err());
        assert!(admits(&c(Operator::GroupBy, None), Some("r2"), &placed).is_ok());
        assert!(admits(&c(Operator::GroupBy, None), Some("r1"), &placed).is_err());
        assert!(admits(&c(Operator::MaxPer, Some("2")), Some("r2"), &placed).is_ok());
        assert!(admits(&c(Operator::MaxPer, Some("2")), Some("r1"), &placed).is_err());
        assert!(admits(&c(Operator::Like, Some("r[0-9]")), Some("r7"), &[]).is_ok());
        assert!(admits(&c(Operator::Like, Some("r")), Some("r7"), &[]).is_err());
        assert!(admits(&c(Operator::Unlike, Some("r[0-9]")), Some("r7"), &[]).is_err());
        assert!(admits(&c(Operator::Is, Some("r7")), Some("r7"), &[]).is_ok());
        assert!(admits(&c(Operator::In, Some("r1, r7")), Some("r7"), &[]).is_ok());
        assert!(admits(&c(Operator::In, Some("r1")), Some("r7"), &[]).is_err());
        let missing = admits(&c(Operator::Is, Some("r7")), None, &[]).unwrap_err();
        assert_eq!(missing, "the agent has no rack");
    }
}
