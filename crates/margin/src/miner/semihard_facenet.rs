//! The FaceNet / TensorFlow semi-hard negative miner (Schroff, Kalenichenko & Philbin
//! 2015; `tfa.losses.TripletSemiHardLoss`).

use burn::tensor::Tensor;

use super::{AnyMiner, Mined, MinedTriplets, MiningInput, argmax, argmin};
use crate::error::Result;
use crate::{Distance, ReferenceSet, Triplets};

/// What [`FaceNetSemiHardMiner`] uses for a positive pair with no semi-hard negative
/// (every negative is at least as close as the positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SemiHardFallback {
    /// The farthest negative (`negatives_inside = masked_maximum(pdist, adjacency_not)`
    /// in TensorFlow Addons): of the negatives closer than the positive, the least hard.
    #[default]
    Tensorflow,
    /// The closest negative (the hardest one).
    Hardest,
}

/// Per anchor–positive pair `(a, p)`, `a ≠ p`, one triplet `(a, p, n*)` whose
/// negative is the *closest negative farther than the positive*:
/// `n* = argmin { d_an : n negative, d_an > d_ap }` (for a similarity: the most
/// similar negative less similar than the positive). When no negative is farther
/// than the positive, `n*` is chosen by [`SemiHardFallback`] (TensorFlow's rule by
/// default). Anchors without a negative give no triplet; ties go to the lowest index.
///
/// Followed by a hinge triplet loss with `Reducer::Mean` this is TensorFlow
/// Addons' `triplet_semihard_loss`, the loss of FaceNet's online semi-hard mining.
/// Unlike PML's `TripletMarginMiner` with `Semihard`, which keeps *every* triplet
/// with `0 < d_an − d_ap ≤ m`, this keeps exactly one negative per positive pair
/// and has no upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaceNetSemiHardMiner {
    /// Rule when no semi-hard negative exists.
    pub fallback: SemiHardFallback,
    /// The distance mined with.
    pub distance: Distance,
}

impl FaceNetSemiHardMiner {
    /// A FaceNet semi-hard miner on `distance` with TensorFlow's fallback.
    pub fn new(distance: Distance) -> Self {
        FaceNetSemiHardMiner { fallback: SemiHardFallback::Tensorflow, distance }
    }

    /// Mines a batch (or query against `reference`).
    pub fn mine(&self, embeddings: &Tensor<2>, labels: &[i64], reference: Option<&ReferenceSet<'_>>) -> Result<MinedTriplets> {
        Ok(self.mine_input(&MiningInput::new(&self.distance, embeddings, labels, reference)?))
    }

    /// Mines from a prepared host matrix.
    pub fn mine_input(&self, input: &MiningInput) -> MinedTriplets {
        let mut t = Triplets::default();
        for a in 0..input.rows() {
            let negatives: Vec<usize> = input.negatives(a).collect();
            if negatives.is_empty() {
                continue;
            }
            let row = input.u_row(a);
            let fallback = match self.fallback {
                SemiHardFallback::Tensorflow => argmax(input, a, negatives.iter().copied()),
                SemiHardFallback::Hardest => argmin(input, a, negatives.iter().copied()),
            };
            for p in input.positives(a) {
                let farther = negatives.iter().copied().filter(|&n| row[n] > row[p]);
                let chosen = argmin(input, a, farther).or(fallback);
                if let Some((n, _)) = chosen {
                    t.anchor.push(a);
                    t.positive.push(p);
                    t.negative.push(n);
                }
            }
        }
        input.finish_triplets(t)
    }
}

impl AnyMiner for FaceNetSemiHardMiner {
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
