//! Index tuples: the currency between miners and losses.
//!
//! A triplet `(anchor, positive, negative)` indexes rows: the anchor into the
//! query batch, positive and negative into the reference set (the batch itself
//! unless a separate reference set is given). Pairs carry their polarity by
//! which list they are in, never by a 0/1 whose meaning must be guessed.

use crate::error::{MarginError, Result};

/// Whether an explicit pair is of the same class or not.
///
/// Conventions differ between libraries (some use `1 = similar`, others
/// `1 = dissimilar`); margin makes the polarity a type so it cannot be inverted silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairPolarity {
    /// Same class: the loss pulls the pair together.
    Similar,
    /// Different classes: the loss pushes the pair apart past the margin.
    Dissimilar,
}

/// A set of triplets as three parallel index arrays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triplets {
    /// Anchor rows (into the query batch).
    pub anchor: Vec<usize>,
    /// Positive rows (into the reference set), same label as the anchor.
    pub positive: Vec<usize>,
    /// Negative rows (into the reference set), different label from the anchor.
    pub negative: Vec<usize>,
}

/// Positive and negative pairs (PML's `(a1, p, a2, n)` tuple).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs {
    /// Similar pairs `(anchor, positive)`.
    pub similar: Vec<(usize, usize)>,
    /// Dissimilar pairs `(anchor, negative)`.
    pub dissimilar: Vec<(usize, usize)>,
}

fn check_index(input: &'static str, values: &[usize], bound: usize) -> Result<()> {
    match values.iter().position(|&i| i >= bound) {
        Some(position) => {
            Err(MarginError::IndexOutOfRange { input, position, index: values[position], bound })
        }
        None => Ok(()),
    }
}

impl Triplets {
    /// Builds triplets from three arrays of equal length.
    pub fn new(anchor: Vec<usize>, positive: Vec<usize>, negative: Vec<usize>) -> Result<Self> {
        for (name, len) in [("triplets.positive", positive.len()), ("triplets.negative", negative.len())] {
            if len != anchor.len() {
                return Err(MarginError::LengthMismatch {
                    input: name,
                    got: len,
                    expected_from: "triplets.anchor",
                    expected: anchor.len(),
                });
            }
        }
        Ok(Self { anchor, positive, negative })
    }

    /// Every valid triplet within one labelled batch: `a ≠ p`, `y_a = y_p`, `y_n ≠ y_a`,
    /// in lexicographic `(a, p, n)` order. There are `Σ_a (|class(a)| − 1)·(B − |class(a)|)`.
    pub fn all(labels: &[i64]) -> Self {
        Self::all_between(labels, labels, true)
    }

    /// Every valid triplet with anchors from `query_labels` and positives/negatives from
    /// `reference_labels`; `exclude_self` drops `p = a` (use it when both are the same set).
    pub fn all_between(query_labels: &[i64], reference_labels: &[i64], exclude_self: bool) -> Self {
        let mut t = Triplets::default();
        for (a, &ya) in query_labels.iter().enumerate() {
            for (p, &yp) in reference_labels.iter().enumerate() {
                if yp != ya || (exclude_self && p == a) {
                    continue;
                }
                for (n, &yn) in reference_labels.iter().enumerate() {
                    if yn != ya {
                        t.anchor.push(a);
                        t.positive.push(p);
                        t.negative.push(n);
                    }
                }
            }
        }
        t
    }

    /// Number of triplets.
    pub fn len(&self) -> usize {
        self.anchor.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.anchor.is_empty()
    }

    /// Iterates `(anchor, positive, negative)`.
    pub fn iter(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.len()).map(|i| (self.anchor[i], self.positive[i], self.negative[i]))
    }

    /// Checks lengths and that every index is inside its set.
    pub fn check(&self, query_rows: usize, reference_rows: usize) -> Result<()> {
        Triplets::new(self.anchor.clone(), self.positive.clone(), self.negative.clone())?;
        check_index("triplets.anchor", &self.anchor, query_rows)?;
        check_index("triplets.positive", &self.positive, reference_rows)?;
        check_index("triplets.negative", &self.negative, reference_rows)
    }
}

impl Pairs {
    /// Every ordered pair within one labelled batch (diagonal excluded): similar when
    /// the labels agree, dissimilar otherwise. Each unordered pair appears twice, as in PML.
    pub fn all(labels: &[i64]) -> Self {
        Self::all_between(labels, labels, true)
    }

    /// Every pair between query and reference rows; `exclude_self` drops `i = j`.
    pub fn all_between(query_labels: &[i64], reference_labels: &[i64], exclude_self: bool) -> Self {
        let mut pairs = Pairs::default();
        for (i, &yi) in query_labels.iter().enumerate() {
            for (j, &yj) in reference_labels.iter().enumerate() {
                if exclude_self && i == j {
                    continue;
                }
                if yi == yj {
                    pairs.similar.push((i, j));
                } else {
                    pairs.dissimilar.push((i, j));
                }
            }
        }
        pairs
    }

    /// Pairs `(i, i)` of two aligned sets, each with its polarity.
    pub fn aligned(polarity: &[PairPolarity]) -> Self {
        let mut pairs = Pairs::default();
        for (i, p) in polarity.iter().enumerate() {
            match p {
                PairPolarity::Similar => pairs.similar.push((i, i)),
                PairPolarity::Dissimilar => pairs.dissimilar.push((i, i)),
            }
        }
        pairs
    }

    /// Total number of pairs.
    pub fn len(&self) -> usize {
        self.similar.len() + self.dissimilar.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks that every index is inside its set.
    pub fn check(&self, query_rows: usize, reference_rows: usize) -> Result<()> {
        let firsts = |v: &[(usize, usize)]| v.iter().map(|p| p.0).collect::<Vec<_>>();
        let seconds = |v: &[(usize, usize)]| v.iter().map(|p| p.1).collect::<Vec<_>>();
        check_index("similar (first column)", &firsts(&self.similar), query_rows)?;
        check_index("similar (second column)", &seconds(&self.similar), reference_rows)?;
        check_index("dissimilar (first column)", &firsts(&self.dissimilar), query_rows)?;
        check_index("dissimilar (second column)", &seconds(&self.dissimilar), reference_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_triplets_count_matches_formula() {
        let labels = [3, 3, 7, 7, 7, 9];
        let t = Triplets::all(&labels);
        // class sizes 2, 3, 1: Σ_a (|c|-1)(B-|c|) = 2·1·4 + 3·2·3 + 0
        assert_eq!(t.len(), 8 + 18);
        for (a, p, n) in t.iter() {
            assert!(a != p && labels[a] == labels[p] && labels[n] != labels[a]);
        }
    }

    #[test]
    fn all_pairs_exclude_the_diagonal_and_split_by_polarity() {
        let p = Pairs::all(&[1, 1, 2]);
        assert_eq!(p.similar, vec![(0, 1), (1, 0)]);
        assert_eq!(p.dissimilar.len(), 4);
    }

    #[test]
    fn out_of_range_index_is_named() {
        let t = Triplets::new(vec![0], vec![1], vec![5]).unwrap();
        let err = t.check(3, 3).unwrap_err();
        assert_eq!(
            err,
            MarginError::IndexOutOfRange { input: "triplets.negative", position: 0, index: 5, bound: 3 }
        );
    }

    #[test]
    fn unequal_lengths_are_refused() {
        assert!(matches!(
            Triplets::new(vec![0, 1], vec![1], vec![2, 2]),
            Err(MarginError::LengthMismatch { input: "triplets.positive", .. })
        ));
    }
}
