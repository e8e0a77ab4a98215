//! The offset tracker: which input offsets may be committed. An offset is committable only when
//! every message consumed before it (on the same partition) has its output or error record
//! acknowledged by Kafka, so a crash never skips a message that has no record yet.

use std::collections::{BTreeMap, BTreeSet};

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`/`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct PartitionState {
    /// Consumed offsets without an acknowledged record yet.
    open: BTreeSet<i64>,
    /// One past the highest offset consumed.
    next: Option<i64>,
    /// The last offset committed (Kafka's "next offset to read").
    committed: Option<i64>,
}

impl PartitionState {
    /// See [`OffsetTracker::consumed`].
    fn consume(&mut self, offset: i64) -> bool {
        if self.next.is_some_and(|next| offset < next) {
            return false;
        }
        self.next = Some(offset + 1);
        self.open.insert(offset)
    }

    fn committable(&self) -> Option<i64> {
        let next = self.next?;
        let candidate = self.open.first().copied().unwrap_or(next);
        match self.committed {
            Some(done) if done >= candidate => None,
            _ => Some(candidate),
        }
    }
}

/// Tracks consumed and completed offsets per partition; see the module documentation.
///
/// Offsets are Kafka's: the committed value is the next offset to read, so after completing
/// offsets 0..=9 of a partition the committable offset is 10.
#[derive(Debug, Default, Clone)]
pub struct OffsetTracker {
    /// By topic, then partition: looked up by a borrowed topic name (no copy per message).
    partitions: BTreeMap<String, BTreeMap<i32, PartitionState>>,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.partitions.get(topic)?.get(&partition)
    }

    fn state_mut(&mut self, topic: &str, partition: i32) -> Option<&mut PartitionState> {
        self.partitions.get_mut(topic)?.get_mut(&partition)
    }

    /// Records that `offset` of `tp` was consumed and now waits for its record. Answers false,
    /// changing nothing, when the offset was seen before (still open, or already completed: a
    /// partition delivers in order, so an offset below the highest seen is a redelivery).
    pub fn consumed(&mut self, tp: &TopicPartition, offset: i64) -> bool {
        self.consumed_at(&tp.topic, tp.partition, offset)
    }

    /// [`consumed`](Self::consumed) of `topic`/`partition`.
    pub fn consumed_at(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        // Looked up before inserting: the entry API would copy the topic name every message.
        if let Some(state) = self.state_mut(topic, partition) {
            return state.consume(offset);
        }
        let mut state = PartitionState::default();
        let fresh = state.consume(offset);
        self.partitions
            .entry(topic.to_string())
            .or_default()
            .insert(partition, state);
        fresh
    }

    /// Records that the output or error record of `offset` was acknowledged. Answers false when
    /// the offset was not open.
    pub fn completed(&mut self, tp: &TopicPartition, offset: i64) -> bool {
        self.completed_at(&tp.topic, tp.partition, offset)
    }

    /// [`completed`](Self::completed) of `topic`/`partition`.
    pub fn completed_at(&mut self, topic: &str, partition: i32, offset: i64) -> bool {
        self.state_mut(topic, partition)
            .is_some_and(|state| state.open.remove(&offset))
    }

    /// Whether `offset` of `tp` is consumed and still waits for its record.
    pub fn is_open(&self, tp: &TopicPartition, offset: i64) -> bool {
        self.state(&tp.topic, tp.partition)
            .is_some_and(|state| state.open.contains(&offset))
    }

    /// The offsets to commit now: per partition, the lowest open offset (or one past the highest
    /// consumed when none is open), when it is past the last committed one.
    pub fn committable(&self) -> Vec<(TopicPartition, i64)> {
        self.partitions
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions.iter().filter_map(move |(partition, state)| {
                    state
                        .committable()
                        .map(|o| (TopicPartition::new(topic.as_str(), *partition), o))
                })
            })
            .collect()
    }

    /// Records that `offset` was committed for `tp`.
    pub fn mark_committed(&mut self, tp: &TopicPartition, offset: i64) {
        let state = self
            .partitions
            .entry(tp.topic.clone())
            .or_default()
            .entry(tp.partition)
            .or_default();
        state.committed = Some(state.committed.map_or(offset, |c| c.max(offset)));
    }

    /// The last committed offset of `tp`, if any.
    pub fn committed(&self, tp: &TopicPartition) -> Option<i64> {
        self.state(&tp.topic, tp.partition)
            .and_then(|state| state.committed)
    }

    /// Consumed messages still waiting for their record, over all partitions.
    pub fn open(&self) -> usize {
        self.partitions
            .values()
            .flat_map(BTreeMap::values)
            .map(|s| s.open.len())
            .sum()
    }

    /// Forgets `tp` (its partition was revoked in a rebalance; the next owner resumes from the
    /// committed offset).
    pub fn forget(&mut self, tp: &TopicPartition) {
        if let Some(partitions) = self.partitions.get_mut(&tp.topic) {
            partitions.remove(&tp.partition);
            if partitions.is_empty() {
                self.partitions.remove(&tp.topic);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("in", 0)
    }

    #[test]
    fn commits_the_lowest_open_offset() {
        let mut t = OffsetTracker::new();
        for o in 0..5 {
            t.consumed(&tp(), o);
        }
        assert_eq!(t.committable(), vec![(tp(), 0)]);
        t.completed(&tp(), 1);
        t.completed(&tp(), 2);
        assert_eq!(t.committable(), vec![(tp(), 0)]);
        t.mark_committed(&tp(), 0);
        assert!(t.committable().is_empty());
        t.completed(&tp(), 0);
        assert_eq!(t.committable(), vec![(tp(), 3)]);
        t.completed(&tp(), 3);
        t.completed(&tp(), 4);
        assert_eq!(t.committable(), vec![(tp(), 5)]);
        assert_eq!(t.open(), 0);
        assert!(!t.consumed(&tp(), 3), "a redelivery is refused");
        assert_eq!(t.open(), 0);
    }

    #[test]
    fn partitions_of_several_topics_are_kept_apart_and_listed_in_order() {
        let mut t = OffsetTracker::new();
        let (a0, a1, b0) = (
            TopicPartition::new("a", 0),
            TopicPartition::new("a", 1),
            TopicPartition::new("b", 0),
        );
        assert!(t.consumed_at("b", 0, 7));
        assert!(t.consumed_at("a", 1, 3));
        assert!(t.consumed(&a0, 5));
        assert!(!t.consumed_at("a", 0, 5), "a redelivery is refused");
        assert!(t.completed_at("a", 1, 3));
        assert!(!t.completed_at("a", 1, 3), "not open any more");
        assert!(!t.completed_at("c", 0, 1), "an unknown topic");
        assert!(t.is_open(&b0, 7));
        assert_eq!(
            t.committable(),
            vec![(a0.clone(), 5), (a1.clone(), 4), (b0.clone(), 7)]
        );
        t.mark_committed(&a1, 4);
        assert_eq!(t.committed(&a1), Some(4));
        t.forget(&b0);
        assert_eq!(t.committable(), vec![(a0, 5)]);
        assert_eq!(t.open(), 1);
    }

    proptest! {
        /// Whatever the completion order, a committable offset never passes an open one, and
        /// once everything completed the committable offset is one past the highest.
        #[test]
        fn never_commits_past_an_open_offset(
            start in 0i64..1000,
            gaps in proptest::collection::vec(1i64..4, 1..60),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 1..60),
        ) {
            let mut t = OffsetTracker::new();
            let mut offsets = Vec::new();
            let mut o = start;
            for g in &gaps {
                offsets.push(o);
                t.consumed(&tp(), o);
                o += g;
            }
            let mut open: Vec<i64> = offsets.clone();
            for idx in order {
                if open.is_empty() { break; }
                let at = idx.index(open.len());
                let done = open.remove(at);
                prop_assert!(t.completed(&tp(), done));
                for (part, commit) in t.committable() {
                    prop_assert_eq!(part, tp());
                    prop_assert!(open.iter().all(|&x| x >= commit));
                    t.mark_committed(&tp(), commit);
                }
            }
            for rest in open.drain(..) {
                t.completed(&tp(), rest);
            }
            let last = *offsets.last().unwrap();
            let final_commit = t.committable().first().map(|(_, c)| *c).or(t.committed(&tp()));
            prop_assert_eq!(final_commit, Some(last + 1));
        }
    }
}
