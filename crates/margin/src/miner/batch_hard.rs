//! Batch-hard mining (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss").

use burn::tensor::Tensor;

use super::{MinedTriplets, MiningInput, argmax, argmin};
use crate::error::Result;
use crate::{Distance, ReferenceSet, Triplets};

/// Per anchor, its hardest positive and its hardest negative: one triplet per anchor.
///
/// For each anchor `a` (in increasing order) with at least one positive `p ≠ a`
/// and one negative: `p* = argmax_p d(a, p)` (the farthest positive) and
/// `n* = argmin_n d(a, n)` (the closest negative); for a similarity, the least
/// and most similar. Anchors without a positive (singletons) or without a
/// negative are skipped. Ties go to the lowest index. Same as PML's `BatchHardMiner`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BatchHardMiner {
    /// The distance mined with (PML default: L2-normalised Euclidean).
    #[serde(default)]
    pub distance: Distance,
}

impl Default for BatchHardMiner {
    fn default() -> Self {
        BatchHardMiner { distance: Distance::default() }
    }
}

impl BatchHardMiner {
    /// A batch-hard miner with `distance`.
    pub fn new(distance: Distance) -> Self {
        BatchHardMiner { distance }
    }

    /// Mines a batch (or query against `reference`).
    ///
    /// # Shapes
    /// - `embeddings`: `[n, d]`, `labels`: `n` values → at most `n` triplets
    pub fn mine(&self, embeddings: &Tensor<2>, labels: &[i64], reference: Option<&ReferenceSet<'_>>) -> Result<MinedTriplets> {
        Ok(self.mine_input(&MiningInput::new(&self.distance, embeddings, labels, reference)?))
    }

    /// Mines from a prepared host matrix.
    pub fn mine_input(&self, input: &MiningInput) -> MinedTriplets {
        let mut t = Triplets::default();
        for a in 0..input.rows() {
            let hardest_pos = argmax(input, a, input.positives(a));
            let hardest_neg = argmin(input, a, input.negatives(a));
            if let (Some((p, _)), Some((n, _))) = (hardest_pos, hardest_neg) {
                t.anchor.push(a);
                t.positive.push(p);
                t.negative.push(n);
            }
        }
        input.finish_triplets(t)
    }
}
