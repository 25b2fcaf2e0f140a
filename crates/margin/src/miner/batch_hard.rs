//! Batch-hard mining (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss").

use burn::tensor::Tensor;

use super::{AnyMiner, Mined, MinedTriplets, MiningInput};
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
#[serde(default, deny_unknown_fields)]
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
        use rayon::prelude::*;
        // One scan per anchor, anchors in parallel (the order of the result is the anchors').
        let (labels, ref_labels) = (input.labels(), input.ref_labels());
        let picked: Vec<Option<(usize, usize)>> = (0..input.rows())
            .into_par_iter()
            .with_min_len(16)
            .map(|a| {
                let (ya, skip) = (labels[a], input.self_index(a));
                let (mut pos, mut neg): (Option<(usize, f64)>, Option<(usize, f64)>) = (None, None);
                for (j, (&u, &yj)) in input.u_row(a).iter().zip(ref_labels).enumerate() {
                    if yj != ya {
                        if neg.is_none_or(|(_, v)| u < v) {
                            neg = Some((j, u));
                        }
                    } else if Some(j) != skip && pos.is_none_or(|(_, v)| u > v) {
                        pos = Some((j, u));
                    }
                }
                Some((pos?.0, neg?.0))
            })
            .collect();
        let mut t = Triplets::default();
        for (a, pn) in picked.into_iter().enumerate() {
            if let Some((p, n)) = pn {
                t.anchor.push(a);
                t.positive.push(p);
                t.negative.push(n);
            }
        }
        input.finish_triplets(t)
    }
}

impl AnyMiner for BatchHardMiner {
    fn distance(&self) -> Distance {
        self.distance
    }
    fn set_distance(&mut self, distance: Distance) {
        self.distance = distance;
    }
    fn mine_any(&self, input: &MiningInput, _rng: &mut dyn rand::RngCore) -> Result<Mined> {
        Ok(Mined::Triplets(self.mine_input(input)))
    }
}
