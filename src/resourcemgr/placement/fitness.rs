//! Fitness: which of the agents that can take a request gets it.
//!
//! The built-in policies work on the dominant resource of the request (the one it needs the
//! largest share of, relative to the largest agent): [`BinPacking`] (the default) picks the
//! agent with the least of that resource left that still fits (best fit), which keeps large
//! agents free and uses few agents; [`Spread`] picks the agent with the most left. Both are
//! answered from an ordered index in `O(log n)` plus the agents skipped for not fitting.
//!
//! A custom [`Fitness`] scores every agent that fits (`O(n)` per request) and the highest score
//! wins; ties go to the agent met first (agent id order).

/// How the placer looks for an agent for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOrder {
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

/// Best fit on the dominant resource (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct BinPacking;

impl Fitness for BinPacking {
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
