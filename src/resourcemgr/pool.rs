//! The offer pool: the live offers a framework holds, grouped per agent.
//!
//! Offers come in with [`OfferPool::add`] (an OFFERS event) and leave exactly once: by
//! [`OfferPool::rescind`] (RESCIND), by [`OfferPool::take`] when they are used in an ACCEPT or a
//! DECLINE, by [`OfferPool::expire`] when they have been held longer than the configured time to
//! live, or all at once by [`OfferPool::clear`] (the master's offers are void after a
//! disconnection or an `OffersInvalidated`). An offer id added twice is refused and an offer
//! taken is gone, so the pool never hands an offer out twice.
//!
//! A [`Round`] tracks what is left of each offer while tentative placements are made (see
//! [`OfferPool::round`]); the pool itself changes only when the used offers are taken.
//!
//! The pool is plain data over [`Offer`]s and [`OfferId`]s: it depends on no event type.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::algebra::Resources;
use super::validate::ResourceError;
use super::{FastMap, FastSet};
use crate::v1::{AgentId, Attribute, DomainInfo, Offer, OfferId, Resource};

/// What the pool refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// An offer with this id is already in the pool.
    #[error("offer {0} is already in the pool")]
    Duplicate(String),
    /// No offer with this id is in the pool (never added, or already gone).
    #[error("offer {0} is not in the pool")]
    Unknown(String),
}

/// What the pool knows of one agent, from its latest offer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentView {
    /// The agent.
    pub agent_id: AgentId,
    /// Its hostname.
    pub hostname: String,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
    /// Its fault domain, if the master reports one.
    pub domain: Option<DomainInfo>,
}

impl AgentView {
    fn of(offer: &Offer) -> Self {
        Self {
            agent_id: offer.agent_id.clone(),
            hostname: offer.hostname.clone(),
            attributes: offer.attributes.clone(),
            domain: offer.domain.clone(),
        }
    }

    /// The agent's value for a constraint field: `hostname`, or an attribute's value as text
    /// (scalars as Mesos prints them, ranges as `[a-b,...]`, sets as `{a,b}`), or the fault
    /// domain's `@region` / `@zone`.
    pub fn field(&self, field: &str) -> Option<String> {
        match field {
            "hostname" => return Some(self.hostname.clone()),
            "@region" => {
                return self
                    .domain
                    .as_ref()
                    .and_then(|d| d.fault_domain.as_ref())
                    .map(|f| f.region.name.clone());
            }
            "@zone" => {
                return self
                    .domain
                    .as_ref()
                    .and_then(|d| d.fault_domain.as_ref())
                    .map(|f| f.zone.name.clone());
            }
            _ => {}
        }
        let attribute = self.attributes.iter().find(|a| a.name == field)?;
        attribute_text(attribute)
    }
}

/// An attribute's value as text.
pub fn attribute_text(attribute: &Attribute) -> Option<String> {
    if let Some(t) = &attribute.text {
        return Some(t.value.clone());
    }
    if let Some(s) = &attribute.scalar {
        return Some(format!("{}", s.value));
    }
    if let Some(r) = &attribute.ranges {
        let parts: Vec<String> = r
            .range
            .iter()
            .map(|r| format!("{}-{}", r.begin, r.end))
            .collect();
        return Some(format!("[{}]", parts.join(",")));
    }
    attribute
        .set
        .as_ref()
        .map(|s| format!("{{{}}}", s.item.join(",")))
}

#[derive(Debug, Clone)]
struct Held {
    offer: Offer,
    received: Instant,
}

/// The live offers; see the module doc.
#[derive(Debug, Clone, Default)]
pub struct OfferPool {
    offers: FastMap<String, Held>,
    agents: BTreeMap<String, (AgentView, Vec<String>)>,
    ttl: Option<Duration>,
}

impl OfferPool {
    /// An empty pool whose offers never expire.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty pool whose offers expire `ttl` after they were added (see
    /// [`OfferPool::expire`]). Holding offers starves other frameworks; a production framework
    /// gives back what it could not use within a few seconds.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// Adds an offer received at `now`. Refuses an id already in the pool.
    pub fn add(&mut self, offer: Offer, now: Instant) -> Result<(), PoolError> {
        let id = offer.id.value.clone();
        if self.offers.contains_key(&id) {
            return Err(PoolError::Duplicate(id));
        }
        let agent = self
            .agents
            .entry(offer.agent_id.value.clone())
            .or_insert_with(|| (AgentView::default(), Vec::new()));
        agent.0 = AgentView::of(&offer);
        agent.1.push(id.clone());
        self.offers.insert(
            id,
            Held {
                offer,
                received: now,
            },
        );
        Ok(())
    }

    /// Adds every offer of an OFFERS event; duplicates are skipped and returned as errors.
    pub fn add_all(
        &mut self,
        offers: impl IntoIterator<Item = Offer>,
        now: Instant,
    ) -> Vec<PoolError> {
        offers
            .into_iter()
            .filter_map(|o| self.add(o, now).err())
            .collect()
    }

    fn remove(&mut self, id: &str) -> Option<Offer> {
        let held = self.offers.remove(id)?;
        let agent_id = &held.offer.agent_id.value;
        if let Some((_, ids)) = self.agents.get_mut(agent_id) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.agents.remove(agent_id);
            }
        }
        Some(held.offer)
    }

    /// Removes a rescinded offer; `None` when it was not (or no longer) in the pool.
    pub fn rescind(&mut self, offer_id: &OfferId) -> Option<Offer> {
        self.remove(&offer_id.value)
    }

    /// Takes offers out to use them in an ACCEPT or a DECLINE: all of them, or none (and the
    /// first unknown id) when one is not in the pool.
    pub fn take(&mut self, offer_ids: &[OfferId]) -> Result<Vec<Offer>, PoolError> {
        let mut seen = FastSet::default();
        for id in offer_ids {
            if !self.offers.contains_key(&id.value) || !seen.insert(&id.value) {
                return Err(PoolError::Unknown(id.value.clone()));
            }
        }
        Ok(offer_ids
            .iter()
            .filter_map(|id| self.remove(&id.value))
            .collect())
    }

    /// Takes every offer out (to decline them all).
    pub fn take_all(&mut self) -> Vec<Offer> {
        self.agents.clear();
        let mut all: Vec<Held> = self.offers.drain().map(|(_, h)| h).collect();
        all.sort_by(|a, b| a.offer.id.value.cmp(&b.offer.id.value));
        all.into_iter().map(|h| h.offer).collect()
    }

    /// Removes and returns the offers held longer than the time to live at `now` (none when the
    /// pool has no time to live); the caller declines them.
    pub fn expire(&mut self, now: Instant) -> Vec<Offer> {
        let Some(ttl) = self.ttl else {
            return Vec::new();
        };
        let mut old: Vec<String> = self
            .offers
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.received) >= ttl)
            .map(|(id, _)| id.clone())
            .collect();
        old.sort();
        old.iter().filter_map(|id| self.remove(id)).collect()
    }

    /// Forgets every offer (they are void: disconnection, `OffersInvalidated`); returns how many
    /// there were.
    pub fn clear(&mut self) -> usize {
        let n = self.offers.len();
        self.offers.clear();
        self.agents.clear();
        n
    }

    /// Number of offers held.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// Whether no offer is held.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }

    /// The offer with this id.
    pub fn get(&self, offer_id: &OfferId) -> Option<&Offer> {
        self.offers.get(&offer_id.value).map(|h| &h.offer)
    }

    /// The agents with offers, in agent id order, each with its offers in arrival order.
    pub fn agents(&self) -> impl Iterator<Item = (&AgentView, Vec<&Offer>)> {
        self.agents.values().map(|(view, ids)| {
            (
                view,
                ids.iter()
                    .filter_map(|id| self.offers.get(id).map(|h| &h.offer))
                    .collect(),
            )
        })
    }

    /// Number of agents with offers.
    pub fn agent_count(&self) -> usize {
        self.agents.len()
    }

    /// One agent's view and offers.
    pub fn agent(&self, agent_id: &AgentId) -> Option<(&AgentView, Vec<&Offer>)> {
        let (view, ids) = self.agents.get(&agent_id.value)?;
        Some((
            view,
            ids.iter()
                .filter_map(|id| self.offers.get(id).map(|h| &h.offer))
                .collect(),
        ))
    }

    /// Every offer id, sorted.
    pub fn offer_ids(&self) -> Vec<OfferId> {
        let mut ids: Vec<OfferId> = self
            .offers
            .keys()
            .map(|k| OfferId { value: k.clone() })
            .collect();
        ids.sort_by(|a, b| a.value.cmp(&b.value));
        ids
    }

    /// Starts a round of tentative placements over the current offers.
    pub fn round(&self) -> Round {
        Round {
            left: self
                .offers
                .iter()
                .map(|(id, h)| (id.clone(), Resources::from_slice(&h.offer.resources)))
                .collect(),
            used: FastSet::default(),
        }
    }
}

/// What is left of each offer while a round of tentative placements goes on. The pool does not
/// change until the used offers are [taken](OfferPool::take); dropping a round undoes it.
#[derive(Debug, Clone, Default)]
pub struct Round {
    left: FastMap<String, Resources>,
    used: FastSet<String>,
}

impl Round {
    /// Takes `resources` from offer `offer_id` tentatively: all of them, or none when they are
    /// not all left in it.
    pub fn take(&mut self, offer_id: &OfferId, resources: &[Resource]) -> Result<(), RoundError> {
        let left = self
            .left
            .get_mut(&offer_id.value)
            .ok_or_else(|| RoundError::Pool(PoolError::Unknown(offer_id.value.clone())))?;
        left.take(resources).map_err(RoundError::Resources)?;
        self.used.insert(offer_id.value.clone());
        Ok(())
    }

    /// What is left of the offer, if it is in the round.
    pub fn left(&self, offer_id: &OfferId) -> Option<&Resources> {
        self.left.get(&offer_id.value)
    }

    /// The offers something was taken from, sorted.
    pub fn used(&self) -> Vec<OfferId> {
        let mut ids: Vec<OfferId> = self
            .used
            .iter()
            .map(|k| OfferId { value: k.clone() })
            .collect();
        ids.sort_by(|a, b| a.value.cmp(&b.value));
        ids
    }
}

/// Why a tentative take failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RoundError {
    /// The offer is not in the round.
    #[error(transparent)]
    Pool(PoolError),
    /// The resources are not left in the offer.
    #[error(transparent)]
    Resources(ResourceError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resourcemgr::parse_resources;

    fn offer(id: &str, agent: &str, resources: &str) -> Offer {
        Offer {
            id: OfferId { value: id.into() },
            agent_id: AgentId {
                value: agent.into(),
            },
            hostname: format!("{agent}.example"),
            resources: parse_resources(resources).unwrap(),
            attributes: crate::resourcemgr::parse_attributes("rack:r1").unwrap(),
            ..Default::default()
        }
    }

    fn id(v: &str) -> OfferId {
        OfferId { value: v.into() }
    }

    #[test]
    fn every_offer_leaves_once() {
        let now = Instant::now();
        let mut pool = OfferPool::with_ttl(Duration::from_secs(10));
        pool.add(offer("o1", "a1", "cpus:1"), now).unwrap();
        pool.add(offer("o2", "a1", "cpus:2"), now).unwrap();
        pool.add(offer("o3", "a2", "cpus:3"), now + Duration::from_secs(5))
            .unwrap();
        pool.add(offer("o4", "a3", "cpus:3"), now).unwrap();
        assert_eq!(
            pool.add(offer("o1", "a1", "cpus:1"), now),
            Err(PoolError::Duplicate("o1".into()))
        );
        assert_eq!(pool.len(), 4);
        assert_eq!(pool.agent_count(), 3);
        let (view, offers) = pool.agent(&AgentId { value: "a1".into() }).unwrap();
        assert_eq!(view.hostname, "a1.example");
        assert_eq!(view.field("rack").as_deref(), Some("r1"));
        assert_eq!(offers.len(), 2);

        assert!(pool.rescind(&id("o4")).is_some());
        assert!(pool.rescind(&id("o4")).is_none());
        assert_eq!(
            pool.take(&[id("o1"), id("o9")]),
            Err(PoolError::Unknown("o9".into()))
        );
        assert_eq!(
            pool.take(&[id("o1"), id("o1")]),
            Err(PoolError::Unknown("o1".into()))
        );
        assert_eq!(pool.len(), 3, "a failed take removes nothing");
        assert_eq!(pool.take(&[id("o1")]).unwrap().len(), 1);
        assert!(pool.take(&[id("o1")]).is_err(), "never handed out twice");

        let expired = pool.expire(now + Duration::from_secs(12));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id.value, "o2");
        assert_eq!(pool.agent_count(), 1);
        assert_eq!(pool.clear(), 1);
        assert!(pool.is_empty());
        assert_eq!(pool.agent_count(), 0);
    }

    #[test]
    fn round_tracks_what_is_left() {
        let now = Instant::now();
        let mut pool = OfferPool::new();
        pool.add(offer("o1", "a1", "cpus:2;mem:100;ports:[1-10]"), now)
            .unwrap();
        let mut round = pool.round();
        round
            .take(&id("o1"), &parse_resources("cpus:1.5;ports:[3-4]").unwrap())
            .unwrap();
        assert!(
            round
                .take(&id("o1"), &parse_resources("cpus:1").unwrap())
                .is_err()
        );
        assert_eq!(
            round.left(&id("o1")).unwrap().to_string(),
            "cpus:0.5;mem:100;ports:[1-2,5-10]"
        );
        assert!(round.take(&id("nope"), &[]).is_err());
        assert_eq!(round.used(), vec![id("o1")]);
        assert_eq!(pool.len(), 1, "a round does not change the pool");
        assert_eq!(pool.take(&round.used()).unwrap().len(), 1);
    }
}
