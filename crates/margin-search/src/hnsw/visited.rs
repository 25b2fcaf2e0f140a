//! The per-thread working memory of a graph walk, reused from query to query: a visited set
//! (an epoch-stamped array, cleared in O(1) by bumping the epoch; fully reset only when the
//! 16-bit epoch wraps), the two heaps and the prepared query. A search takes one [`Scratch`]
//! per rayon task from the index's pool and gives it back, so answering a query allocates
//! nothing once the pool is warm.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::store::Query;

/// A candidate: its key (smaller is closer; finite, as every stored row and query is
/// validated) and slot. Ordered by key, then slot, so every heap is deterministic.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Cand {
    pub key: f32,
    pub slot: u32,
}

impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key.total_cmp(&o.key).then(self.slot.cmp(&o.slot))
    }
}

/// Visited slots of the current walk.
#[derive(Debug, Default)]
pub(crate) struct Visited {
    marks: Vec<u16>,
    epoch: u16,
}

impl Visited {
    /// Starts a new walk over `n` slots.
    pub fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.epoch = 1;
        }
    }

    /// Marks `slot`; `true` when it was not yet visited in this walk.
    #[inline]
    pub fn insert(&mut self, slot: u32) -> bool {
        let m = &mut self.marks[slot as usize];
        let fresh = *m != self.epoch;
        *m = self.epoch;
        fresh
    }
}

/// Everything one walk needs.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub visited: Visited,
    /// Min-heap of candidates to expand (as `Reverse`).
    pub frontier: BinaryHeap<std::cmp::Reverse<Cand>>,
    /// Max-heap of the best results so far.
    pub results: BinaryHeap<Cand>,
    pub query: Query,
    /// A second prepared row (the neighbour-selection heuristic's item-to-item keys).
    pub other: Query,
    pub sorted: Vec<Cand>,
    pub picked: Vec<Cand>,
    pub links: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visited_survives_epoch_wrap() {
        let mut v = Visited::default();
        for walk in 0..70_000u32 {
            v.reset(4);
            assert!(v.insert(walk % 4), "walk {walk}");
            assert!(!v.insert(walk % 4));
        }
    }
}
