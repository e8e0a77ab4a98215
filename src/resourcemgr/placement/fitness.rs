//! Fitness: which of the agents that can take a request gets it.
//!
//! Requests are taken largest first (by dominant share: the resource they need the largest
//! share of, relative to the largest agent). [`BinPacking`] (the default) then puts each on the
//! first agent where it fits in a fixed order (first fit decreasing), answered by a max tree in
//! `O(log n)` plus the agents that fail a check; [`BestFit`] picks the agent with the least of
//! the dominant resource left; [`Spread`] the one with the most. Those two are answered from
//! ordered indexes.
//!
//! A custom [`Fitness`] scores every agent that fits (`O(n)` per request) and the highest score
//! wins; ties go to the agent met first (agent id order).

/// How the placer looks for an agent for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOrder {
    /// The first agent where the request fits, in a fixed order (smallest agents first, then
    /// agent id): with requests taken largest first, this is first fit decreasing.
    FirstFit,
    /// The agent with the least of the dominant resource left that fits (best fit).
    TightestFirst,
    /// The agent with the most of the dominant resource left.
    LoosestFirst,
    /// Every agent that fits, scored by [`Fitness::score`].
    Scored,
}

/// A placement policy.
pub trait Fitness: Send + Sync + std::fmt::Debug {
    /// How to search; the built-in policies answer from an index.
    fn order(&self) -> SearchOrder {
        SearchOrder::Scored
    }

    /// The score of placing a request needing `demand` on an agent with `free` left out of
    /// `capacity` (one entry per resource dimension, in thousandths); higher is better. Used
    /// only when [`Fitness::order`] is [`SearchOrder::Scored`].
    fn score(&self, demand: &[i64], free: &[i64], capacity: &[i64]) -> f64 {
        let _ = (demand, free, capacity);
        0.0
    }
}

/// Bin packing, the default: first fit decreasing. Requests go largest dominant share first,
/// each to the first agent (smallest agents first, then agent id) where it fits, so agents fill
/// up one after the other and the rest stay whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct BinPacking;

impl Fitness for BinPacking {
    fn order(&self) -> SearchOrder {
        SearchOrder::FirstFit
    }
}

/// Best fit on the dominant resource: the agent with the least of it left that still fits.
/// Tight on one resource, it can strand the other (see the README's figures); offered for
/// workloads dominated by one resource.
#[derive(Debug, Clone, Copy, Default)]
pub struct BestFit;

impl Fitness for BestFit {
    fn order(&self) -> SearchOrder {
        SearchOrder::TightestFirst
    }
}

/// The agent with the most of the dominant resource left.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread;

impl Fitness for Spread {
    fn order(&self) -> SearchOrder {
        SearchOrder::LoosestFirst
    }
}
