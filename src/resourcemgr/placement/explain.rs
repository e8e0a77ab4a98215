//! Why a request stayed unplaced: per failure kind, how many agents it excluded, as data
//! ([`Unplaced::reasons`]) and as text (`mem short on 12 agents; UNIQUE hostname excluded 3`).

use std::collections::BTreeMap;
use std::fmt;

/// One kind of reason an agent could not take a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FailureKind {
    /// The request is malformed (the text says how); no agent was tried.
    Invalid(String),
    /// No offers at all.
    NoOffers,
    /// The agent's offers are allocated to another role.
    Role,
    /// The request must land on its reservation, which is on another agent (or not offered).
    Reservation,
    /// The agent has GPUs and the request asks for none (GPU agents are kept for GPU tasks).
    GpuAgent,
    /// A hard constraint excluded the agent (its text, e.g. `UNIQUE hostname`).
    Constraint(String),
    /// Not enough of this resource left.
    Short(String),
    /// Not enough free ports, or a fixed port taken.
    Ports,
    /// The shared persistent volume with this persistence id is not offered by the agent.
    SharedVolume(String),
    /// Delay scheduling: waiting for an agent that satisfies a preference.
    Waiting(String),
}

impl FailureKind {
    /// A short label for metrics, without the numbers or values that would make series
    /// unbounded: `mem short`, `constraint UNIQUE`, `ports short`, `waiting`, ...
    pub fn label(&self) -> String {
        match self {
            FailureKind::Invalid(_) => "invalid".into(),
            FailureKind::NoOffers => "no offers".into(),
            FailureKind::Role => "role".into(),
            FailureKind::Reservation => "reservation".into(),
            FailureKind::GpuAgent => "gpu agent".into(),
            FailureKind::Constraint(c) => format!(
                "constraint {}",
                c.split_whitespace().next().unwrap_or_default()
            ),
            FailureKind::Short(r) => format!("{r} short"),
            FailureKind::Ports => "ports short".into(),
            FailureKind::SharedVolume(_) => "shared volume".into(),
            FailureKind::Waiting(_) => "waiting".into(),
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Invalid(why) => write!(f, "invalid request: {why}"),
            FailureKind::NoOffers => f.write_str("no offers"),
            FailureKind::Role => f.write_str("offers for another role"),
            FailureKind::Reservation => f.write_str("not its reservation"),
            FailureKind::GpuAgent => f.write_str("GPU agent kept for GPU tasks"),
            FailureKind::Constraint(c) => f.write_str(c),
            FailureKind::Short(r) => write!(f, "{r} short"),
            FailureKind::Ports => f.write_str("ports short"),
            FailureKind::SharedVolume(id) => write!(f, "no shared volume {id}"),
            FailureKind::Waiting(p) => write!(f, "waiting for a preferred agent ({p})"),
        }
    }
}

/// A request that was not placed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced {
    /// The request's id.
    pub request_id: String,
    /// Failure kind -> number of agents it excluded (an agent can fail several ways and is
    /// then counted under each).
    pub reasons: BTreeMap<FailureKind, usize>,
    /// Whether the request is deferred by delay scheduling (it will likely be placed in a
    /// later round without new resources), as opposed to not fitting.
    pub waiting: bool,
}

impl Unplaced {
    pub(crate) fn new(request_id: &str) -> Self {
        Self {
            request_id: request_id.to_string(),
            reasons: BTreeMap::new(),
            waiting: false,
        }
    }

    pub(crate) fn count(&mut self, kind: FailureKind) {
        *self.reasons.entry(kind).or_insert(0) += 1;
    }

    /// Agents excluded by `kind`.
    pub fn excluded_by(&self, kind: &FailureKind) -> usize {
        self.reasons.get(kind).copied().unwrap_or(0)
    }
}

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.request_id)?;
        let mut reasons: Vec<(&FailureKind, &usize)> = self.reasons.iter().collect();
        // The most common reason first.
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut first = true;
        for (kind, n) in reasons {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            let plural = if *n == 1 { "" } else { "s" };
            match kind {
                FailureKind::Invalid(_) | FailureKind::NoOffers | FailureKind::Waiting(_) => {
                    write!(f, "{kind}")?
                }
                FailureKind::Constraint(_) | FailureKind::Role | FailureKind::Reservation => {
                    write!(f, "{kind} excluded {n}")?
                }
                _ => write!(f, "{kind} on {n} agent{plural}")?,
            }
        }
        if first {
            f.write_str("no reason recorded")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_sentence() {
        let mut u = Unplaced::new("web-1");
        for _ in 0..12 {
            u.count(FailureKind::Short("mem".into()));
        }
        for _ in 0..3 {
            u.count(FailureKind::Constraint("UNIQUE hostname".into()));
        }
        u.count(FailureKind::Ports);
        assert_eq!(
            u.to_string(),
            "web-1: mem short on 12 agents; UNIQUE hostname excluded 3; ports short on 1 agent"
        );
        assert_eq!(u.excluded_by(&FailureKind::Short("mem".into())), 12);
        assert_eq!(
            FailureKind::Constraint("MAX_PER rack:2".into()).label(),
            "constraint MAX_PER"
        );
    }
}
