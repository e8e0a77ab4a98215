//! Offer etiquette: how a framework that shares a cluster behaves with offers, as a small state
//! machine whose output is scheduler [`Call`]s for the runtime to send.
//!
//! - Unused offers go back in one DECLINE per round with a long refuse filter
//!   ([`EtiquetteConfig::refuse`], default 120 s), so the master offers them to others instead
//!   of to us every allocation interval.
//! - A role with nothing pending is SUPPRESSed: the master stops offering it anything.
//! - When work arrives for a role (its pending count grows) the role is REVIVEd, which also
//!   clears the refuse filters; REVIVEs go through a token bucket
//!   ([`EtiquetteConfig::revive_burst`] tokens, one more every
//!   [`EtiquetteConfig::revive_interval`]) so a flapping workload cannot flood the master; a
//!   REVIVE held back by the bucket comes out of a later [`Etiquette::tick`].
//! - The suppressed roles are tracked per role; after a resubscription
//!   [`Etiquette::suppressed_roles`] goes into SUBSCRIBE's `suppressed_roles` and
//!   [`Etiquette::resubscribed`] repeats the SUPPRESS for masters that ignore that field.
//! - Inverse offers (maintenance windows) get a default answer: accept when none of our tasks
//!   runs on the agent, otherwise decline and say so ([`InverseOfferDecision`]).
//!
//! Time is passed in (`now`), so tests drive it without waiting.
//!
//! Send the calls in the order they come out, each after the previous one's answer (one task
//! with a queue is enough). Calls sent concurrently can reach the master in any order. A
//! SUPPRESS overtaken by the REVIVE that followed it leaves the role suppressed at the master
//! while this state machine believes it revived, and no offer comes again. A DECLINE whose
//! refuse filter lands after a REVIVE holds back the offers that REVIVE asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::scheduler::calls;
use crate::v1::scheduler::Call;
use crate::v1::{InverseOffer, OfferId};

/// Settings of [`Etiquette`].
#[derive(Debug, Clone)]
pub struct EtiquetteConfig {
    /// Refuse filter of DECLINE (default 120 s).
    pub refuse: Duration,
    /// REVIVEs that may go out at once (default 3).
    pub revive_burst: u32,
    /// One more REVIVE token per this interval (default 10 s).
    pub revive_interval: Duration,
    /// Refuse filter of inverse-offer answers (default: Mesos' 5 s).
    pub inverse_refuse: Option<Duration>,
}

impl Default for EtiquetteConfig {
    fn default() -> Self {
        Self {
            refuse: Duration::from_secs(120),
            revive_burst: 3,
            revive_interval: Duration::from_secs(10),
            inverse_refuse: None,
        }
    }
}

/// A token bucket: `burst` tokens, refilled one per `interval`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    interval: Duration,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(burst: u32, interval: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            burst,
            interval,
            tokens: burst,
            last: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            let per = self.interval.as_secs_f64();
            let added = if per > 0.0 { elapsed / per } else { self.burst };
            self.tokens = (self.tokens + added).min(self.burst);
        }
        self.last = Some(now);
    }

    /// Takes a token if there is one at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The answer to one inverse offer.
#[derive(Debug, Clone)]
pub struct InverseOfferDecision {
    /// ACCEPT_INVERSE_OFFERS or DECLINE_INVERSE_OFFERS.
    pub call: Call,
    /// Whether it accepts.
    pub accepted: bool,
    /// Why, for the user.
    pub reason: String,
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct Etiquette {
    config: EtiquetteConfig,
    pending: BTreeMap<String, usize>,
    suppressed: BTreeSet<String>,
    revive_wanted: BTreeSet<String>,
    bucket: TokenBucket,
}

impl Etiquette {
    /// For a framework with `roles`, none suppressed, nothing pending.
    pub fn new(config: EtiquetteConfig, roles: impl IntoIterator<Item = String>) -> Self {
        let bucket = TokenBucket::new(config.revive_burst, config.revive_interval);
        Self {
            config,
            pending: roles.into_iter().map(|r| (r, 0)).collect(),
            suppressed: BTreeSet::new(),
            revive_wanted: BTreeSet::new(),
            bucket,
        }
    }

    /// The one DECLINE of a round for `offer_ids`, with the long refuse filter (`None` when
    /// there is nothing to decline).
    pub fn decline(&self, offer_ids: Vec<OfferId>) -> Option<Call> {
        (!offer_ids.is_empty()).then(|| calls::decline(offer_ids, Some(self.config.refuse)))
    }

    /// Sets how many requests of `role` are pending at `now` and answers with the calls that
    /// follow: SUPPRESS when it drops to zero, REVIVE (rate-limited) when it grows.
    pub fn set_pending(&mut self, role: &str, count: usize, now: Instant) -> Vec<Call> {
        let before = self.pending.insert(role.to_string(), count).unwrap_or(0);
        let mut out = Vec::new();
        if count == 0 {
            self.revive_wanted.remove(role);
            if self.suppressed.insert(role.to_string()) {
                tracing::debug!(role, "nothing pending: suppressing offers");
                out.push(calls::suppress(vec![role.to_string()]));
            }
        } else if count > before {
            self.revive_wanted.insert(role.to_string());
        }
        out.extend(self.tick(now));
        out
    }

    /// Sends a REVIVE held back by the bucket once a token is there.
    pub fn tick(&mut self, now: Instant) -> Vec<Call> {
        if self.revive_wanted.is_empty() || !self.bucket.try_take(now) {
            return Vec::new();
        }
        let roles: Vec<String> = std::mem::take(&mut self.revive_wanted)
            .into_iter()
            .collect();
        for r in &roles {
            self.suppressed.remove(r);
        }
        tracing::debug!(?roles, "work arrived: reviving offers");
        vec![calls::revive(roles)]
    }

    /// Whether a REVIVE is waiting for a token.
    pub fn revive_pending(&self) -> bool {
        !self.revive_wanted.is_empty()
    }

    /// The suppressed roles, for SUBSCRIBE's `suppressed_roles` on resubscription.
    pub fn suppressed_roles(&self) -> Vec<String> {
        self.suppressed.iter().cloned().collect()
    }

    /// Whether `role` is suppressed.
    pub fn is_suppressed(&self, role: &str) -> bool {
        self.suppressed.contains(role)
    }

    /// After a (re)subscription: repeats SUPPRESS for the suppressed roles (the master may not
    /// have kept them) and revives roles with pending work, rate limits aside (the master's
    /// filters are fresh; one REVIVE is cheap).
    pub fn resubscribed(&mut self) -> Vec<Call> {
        let mut out = Vec::new();
        if !self.suppressed.is_empty() {
            out.push(calls::suppress(self.suppressed_roles()));
        }
        let waiting: Vec<String> = self
            .pending
            .iter()
            .filter(|(r, n)| **n > 0 && !self.suppressed.contains(*r))
            .map(|(r, _)| r.clone())
            .collect();
        if !waiting.is_empty() {
            self.revive_wanted.clear();
            out.push(calls::revive(waiting));
        }
        out
    }

    /// The default answer to an inverse offer: accept when `our_tasks_on_agent` is 0,
    /// otherwise decline and report.
    pub fn inverse_offer(
        &self,
        offer: &InverseOffer,
        our_tasks_on_agent: usize,
    ) -> InverseOfferDecision {
        let agent = offer
            .agent_id
            .as_ref()
            .map_or("(no agent)", |a| a.value.as_str());
        let ids = vec![offer.id.clone()];
        if our_tasks_on_agent == 0 {
            InverseOfferDecision {
                call: calls::accept_inverse_offers(ids, self.config.inverse_refuse),
                accepted: true,
                reason: format!("no task of ours runs on agent {agent}"),
            }
        } else {
            tracing::warn!(
                agent,
                tasks = our_tasks_on_agent,
                "declining maintenance inverse offer: our tasks run there"
            );
            InverseOfferDecision {
                call: calls::decline_inverse_offers(ids, self.config.inverse_refuse),
                accepted: false,
                reason: format!("{our_tasks_on_agent} task(s) of ours run on agent {agent}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::scheduler::call::Type;

    fn kinds(calls: &[Call]) -> Vec<(Type, Vec<String>)> {
        calls
            .iter()
            .map(|c| {
                let roles = c
                    .suppress
                    .as_ref()
                    .map(|s| s.roles.clone())
                    .or_else(|| c.revive.as_ref().map(|r| r.roles.clone()))
                    .unwrap_or_default();
                (c.r#type(), roles)
            })
            .collect()
    }

    #[test]
    fn suppress_revive_with_token_bucket() {
        let t0 = Instant::now();
        let config = EtiquetteConfig {
            revive_burst: 1,
            revive_interval: Duration::from_secs(10),
            ..Default::default()
        };
        let mut e = Etiquette::new(config, ["web".to_string(), "db".to_string()]);
        assert_eq!(
            kinds(&e.set_pending("web", 0, t0)),
            vec![(Type::Suppress, vec!["web".to_string()])]
        );
        assert!(e.set_pending("web", 0, t0).is_empty(), "suppressed once");
        assert!(e.is_suppressed("web"));
        assert_eq!(
            kinds(&e.set_pending("web", 2, t0)),
            vec![(Type::Revive, vec!["web".to_string()])]
        );
        assert!(!e.is_suppressed("web"));
        // Flapping: no token left, the REVIVE waits.
        e.set_pending("web", 0, t0);
        assert!(
            e.set_pending("web", 1, t0 + Duration::from_secs(1))
                .is_empty()
        );
        assert!(e.revive_pending());
        assert!(e.tick(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(
            kinds(&e.tick(t0 + Duration::from_secs(11))),
            vec![(Type::Revive, vec!["web".to_string()])]
        );
        assert!(!e.revive_pending());
    }

    #[test]
    fn resubscription_restores_suppression() {
        let t0 = Instant::now();
        let mut e = Etiquette::new(
            EtiquetteConfig::default(),
            ["a".to_string(), "b".to_string()],
        );
        e.set_pending("a", 0, t0);
        e.set_pending("b", 3, t0);
        assert_eq!(e.suppressed_roles(), vec!["a".to_string()]);
        assert_eq!(
            kinds(&e.resubscribed()),
            vec![
                (Type::Suppress, vec!["a".to_string()]),
                (Type::Revive, vec!["b".to_string()])
            ]
        );
    }

    #[test]
    fn decline_and_inverse_offers() {
        let e = Etiquette::new(EtiquetteConfig::default(), []);
        assert!(e.decline(vec![]).is_none());
        let d = e
            .decline(vec![
                OfferId { value: "o1".into() },
                OfferId { value: "o2".into() },
            ])
            .unwrap();
        let decline = d.decline.unwrap();
        assert_eq!(decline.offer_ids.len(), 2);
        assert_eq!(decline.filters.unwrap().refuse_seconds, Some(120.0));
        let inverse = InverseOffer {
            id: OfferId { value: "i1".into() },
            agent_id: Some(crate::v1::AgentId { value: "a1".into() }),
            ..Default::default()
        };
        let yes = e.inverse_offer(&inverse, 0);
        assert!(yes.accepted);
        assert_eq!(yes.call.r#type(), Type::AcceptInverseOffers);
        let no = e.inverse_offer(&inverse, 2);
        assert!(!no.accepted);
        assert_eq!(no.call.r#type(), Type::DeclineInverseOffers);
        assert!(no.reason.contains("2 task(s)"), "{}", no.reason);
    }
}
