//! Multi-similarity pair mining (Wang et al. 2019, "Multi-Similarity Loss with
//! General Pair Weighting for Deep Metric Learning").

use burn::tensor::Tensor;

use super::{AnyMiner, Mined, MinedPairs, MiningInput, check_nonnegative};
use crate::error::Result;
use crate::{CosineSimilarity, Distance, Pairs, ReferenceSet};

/// Keeps the pairs that are informative relative to the anchor's hardest pair
/// of the other kind (PML's `MultiSimilarityMiner`). For each anchor `a` with at
/// least one positive and one negative, with similarity `s`:
///
/// - positive `p` is kept if `s_ap − ε < max_n s_an`;
/// - negative `n` is kept if `s_an + ε > min_p s_ap`.
///
/// For a distance the comparisons flip (`d_ap + ε > min_n d_an`,
/// `d_an − ε < max_p d_ap`). The default distance is cosine similarity (PML's),
/// usually different from the loss's distance. Pairs are returned by anchor,
/// in increasing index order (PML orders them by similarity within an anchor).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiSimilarityMiner {
    /// The slack `ε ≥ 0` (PML default 0.1).
    pub epsilon: f64,
    /// The distance mined with (default: cosine similarity).
    pub distance: Distance,
}

fn cosine() -> Distance {
    Distance::Cosine(CosineSimilarity)
}

impl Default for MultiSimilarityMiner {
    fn default() -> Self {
        MultiSimilarityMiner { epsilon: 0.1, distance: cosine() }
    }
}

impl MultiSimilarityMiner {
    /// A multi-similarity miner with slack `epsilon` on cosine similarity.
    pub fn new(epsilon: f64) -> Self {
        MultiSimilarityMiner { epsilon, distance: cosine() }
    }

    /// Checks `ε` is finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        check_nonnegative("epsilon", self.epsilon)
    }

    /// Mines a batch (or query against `reference`).
    pub fn mine(&self, embeddings: &Tensor<2>, labels: &[i64], reference: Option<&ReferenceSet<'_>>) -> Result<MinedPairs> {
        self.validate()?;
        Ok(self.mine_input(&MiningInput::new(&self.distance, embeddings, labels, reference)?))
    }

    /// Mines from a prepared host matrix.
    pub fn mine_input(&self, input: &MiningInput) -> MinedPairs {
        use rayon::prelude::*;
        let eps = self.epsilon;
        let (labels, ref_labels) = (input.labels(), input.ref_labels());
        // Per anchor (in parallel, results in anchor order): its kept positives and negatives.
        let per_anchor: Vec<(Vec<usize>, Vec<usize>)> = (0..input.rows())
            .into_par_iter()
            .with_min_len(16)
            .map(|a| {
                let (ya, skip) = (labels[a], input.self_index(a));
                let row = input.u_row(a);
                let is_pos = |j: usize| ref_labels[j] == ya && Some(j) != skip;
                let Some((closest_neg, farthest_pos)) = anchor_bounds(input, a) else {
                    return (Vec::new(), Vec::new());
                };
                // In distance convention u (u = −s): keep p if u_ap + ε > min_n u_an,
                // keep n if u_an − ε < max_p u_ap (bit-identical to PML's similarity branch).
                let pos = (0..row.len()).filter(|&j| is_pos(j) && row[j] + eps > closest_neg).collect();
                let neg = (0..row.len()).filter(|&j| ref_labels[j] != ya && row[j] - eps < farthest_pos).collect();
                (pos, neg)
            })
            .collect();
        let mut pairs = Pairs::default();
        for (a, (pos, neg)) in per_anchor.into_iter().enumerate() {
            pairs.similar.extend(pos.into_iter().map(|p| (a, p)));
            pairs.dissimilar.extend(neg.into_iter().map(|n| (a, n)));
        }
        input.finish_pairs(pairs)
    }
}

impl AnyMiner for MultiSimilarityMiner {
    fn distance(&self) -> Distance {
        self.distance
    }
    fn set_distance(&mut self, distance: Distance) {
        self.distance = distance;
    }
    fn validate(&self) -> Result<()> {
        MultiSimilarityMiner::validate(self)
    }
    fn mine_any(&self, input: &MiningInput, _rng: &mut dyn rand::RngCore) -> Result<Mined> {
        Ok(Mined::Pairs(self.mine_input(input)))
    }
}

/// Anchor `a`'s `(min_n u_an, max_p u_ap)` in distance convention, or `None` when it
/// has no positive or no negative (then the miner keeps nothing for it).
pub(crate) fn anchor_bounds(input: &MiningInput, a: usize) -> Option<(f64, f64)> {
    let (ya, skip) = (input.labels()[a], input.self_index(a));
    let (mut closest_neg, mut farthest_pos) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut any_pos, mut any_neg) = (false, false);
    for (j, (&u, &yj)) in input.u_row(a).iter().zip(input.ref_labels()).enumerate() {
        if yj != ya {
            any_neg = true;
            closest_neg = closest_neg.min(u);
        } else if Some(j) != skip {
            any_pos = true;
            farthest_pos = farthest_pos.max(u);
        }
    }
    (any_pos && any_neg).then_some((closest_neg, farthest_pos))
}
