//! Bounded top-k selection with deterministic tie-breaking.
//!
//! Candidates are `(score, index)`; a larger score is better and, among equal
//! scores, the smaller index is better. The heap keeps the worst retained
//! candidate at its root so a new candidate is one comparison away from
//! rejection, which is what almost every candidate of a long scan gets.

use crate::scalar::Real;

/// `true` when `(sa, ia)` ranks strictly before `(sb, ib)`.
#[inline]
pub(crate) fn better<T: Real>(sa: T, ia: u32, sb: T, ib: u32) -> bool {
    sa > sb || (sa == sb && ia < ib)
}

/// A min-heap (by rank) of at most `k` candidates.
pub(crate) struct TopK<'a, T: Real> {
    scores: &'a mut [T],
    idx: &'a mut [u32],
    len: usize,
}

impl<'a, T: Real> TopK<'a, T> {
    /// Uses `scores` / `idx` (both of length k) as storage.
    pub fn new(scores: &'a mut [T], idx: &'a mut [u32]) -> Self {
        debug_assert_eq!(scores.len(), idx.len());
        Self { scores, idx, len: 0 }
    }

    /// The score a candidate must beat to enter (−∞ while not full). Because
    /// a scan offers indices in increasing order, a candidate whose score
    /// equals the threshold ranks after the root and is rightly rejected.
    #[inline]
    pub fn threshold(&self) -> T {
        if self.len == self.scores.len() { self.scores[0] } else { T::NEG_INFINITY }
    }

    /// Offers a candidate; keeps it if it ranks before the current worst.
    #[inline]
    pub fn push(&mut self, s: T, i: u32) {
        let k = self.scores.len();
        if k == 0 {
            return;
        }
        if self.len < k {
            let mut pos = self.len;
            self.len += 1;
            while pos > 0 {
                let parent = (pos - 1) / 2;
                if better(self.scores[parent], self.idx[parent], s, i) {
                    self.scores[pos] = self.scores[parent];
                    self.idx[pos] = self.idx[parent];
                    pos = parent;
                } else {
                    break;
                }
            }
            self.scores[pos] = s;
            self.idx[pos] = i;
        } else if better(s, i, self.scores[0], self.idx[0]) {
            let mut pos = 0;
            loop {
                let l = 2 * pos + 1;
                if l >= k {
                    break;
                }
                let r = l + 1;
                // The child that ranks worse moves up.
                let c = if r < k && better(self.scores[l], self.idx[l], self.scores[r], self.idx[r]) {
                    r
                } else {
                    l
                };
                if better(s, i, self.scores[c], self.idx[c]) {
                    self.scores[pos] = self.scores[c];
                    self.idx[pos] = self.idx[c];
                    pos = c;
                } else {
                    break;
                }
            }
            self.scores[pos] = s;
            self.idx[pos] = i;
        }
    }

    /// Sorts the retained candidates best first; returns how many there are.
    pub fn finish(self) -> usize {
        let n = self.len;
        let mut pairs: Vec<(T, u32)> =
            self.scores[..n].iter().copied().zip(self.idx[..n].iter().copied()).collect();
        pairs.sort_unstable_by(|a, b| {
            if better(a.0, a.1, b.0, b.1) {
                std::cmp::Ordering::Less
            } else if better(b.0, b.1, a.0, a.1) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        for (j, (s, i)) in pairs.into_iter().enumerate() {
            self.scores[j] = s;
            self.idx[j] = i;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_best_with_index_ties() {
        let vals = [1.0f64, 5.0, 3.0, 5.0, 2.0, 5.0, 0.0, 4.0];
        let (mut s, mut ix) = (vec![0.0; 4], vec![0u32; 4]);
        let mut h = TopK::new(&mut s, &mut ix);
        for (i, &v) in vals.iter().enumerate() {
            h.push(v, i as u32);
        }
        assert_eq!(h.finish(), 4);
        assert_eq!(ix, vec![1, 3, 5, 7]);
        assert_eq!(s, vec![5.0, 5.0, 5.0, 4.0]);
    }
}
