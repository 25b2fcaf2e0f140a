//! Distance-weighted sampling (Wu, Manmatha, Smola & Krähenbühl 2017,
//! "Sampling Matters in Deep Embedding Learning").

use burn::tensor::Tensor;
use rand::Rng;

use super::{AnyMiner, Mined, MinedTriplets, MiningInput};
use crate::error::{MarginError, Result};
use crate::input::check_finite_config;
use crate::{Distance, LpDistance, Power, ReferenceSet, Triplets};

/// Negatives drawn with probability proportional to the inverse density of
/// pairwise distances on the unit sphere, so that all distances are sampled
/// about equally often instead of concentrating near `√2`.
///
/// On L2-normalised `d`-dimensional embeddings the distance `x` between random
/// points has density `q(x) ∝ x^{d−2} (1 − x²/4)^{(d−3)/2}`. For each anchor `a`
/// and each of its positives `p` (one triplet per anchor–positive pair), one
/// negative `n` is drawn with weight `1 / q(max(x_an, cutoff))`, and weight 0
/// when `x_an ≥ nonzero_loss_cutoff` (such negatives give no loss). Anchors whose
/// negatives all have weight 0 give no triplet. The randomness comes only from
/// the `rng` passed in, so a seeded generator reproduces the draw.
///
/// Differences from PML's `DistanceWeightedMiner` (same weights): PML draws
/// `|class|` positives per anchor uniformly *with replacement*; this takes every
/// positive exactly once. Only the Euclidean distance on L2-normalised rows
/// (what the density assumes) is accepted.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistanceWeightedMiner {
    /// Distances below this are clamped to it (bounds the weights; Wu et al. use 0.5).
    pub cutoff: f64,
    /// Negatives at or beyond this distance are never drawn (Wu et al. use 1.4).
    pub nonzero_loss_cutoff: f64,
}

impl Default for DistanceWeightedMiner {
    fn default() -> Self {
        DistanceWeightedMiner { cutoff: 0.5, nonzero_loss_cutoff: 1.4 }
    }
}

impl DistanceWeightedMiner {
    /// The distance this miner works on: Euclidean on L2-normalised rows.
    pub fn distance(&self) -> Distance {
        Distance::Lp(LpDistance { power: Power::Euclidean, normalize: true })
    }

    /// Checks both cut-offs are finite and positive.
    pub fn validate(&self) -> Result<()> {
        check_finite_config("cutoff", self.cutoff)?;
        check_finite_config("nonzero_loss_cutoff", self.nonzero_loss_cutoff)?;
        if self.cutoff <= 0.0 {
            return Err(MarginError::InvalidConfig {
                field: "cutoff",
                value: self.cutoff.to_string(),
                reason: "must be > 0 (log of the distance)",
            });
        }
        Ok(())
    }

    /// Mines a batch (or query against `reference`), drawing from `rng`.
    pub fn mine<R: Rng + ?Sized>(
        &self,
        embeddings: &Tensor<2>,
        labels: &[i64],
        reference: Option<&ReferenceSet<'_>>,
        rng: &mut R,
    ) -> Result<MinedTriplets> {
        self.validate()?;
        self.mine_input(&MiningInput::new(&self.distance(), embeddings, labels, reference)?, rng)
    }

    /// The unnormalised log-weight `−log q(x)` of a negative at distance `x`
    /// (`None`: weight 0).
    pub fn log_weight(&self, x: f64, dim: usize) -> Option<f64> {
        if x >= self.nonzero_loss_cutoff {
            return None;
        }
        let x = x.max(self.cutoff);
        let d = dim as f64;
        let lw = (2.0 - d) * x.ln() - ((d - 3.0) / 2.0) * (1.0 - 0.25 * x * x).ln();
        lw.is_finite().then_some(lw)
    }

    /// Mines from a prepared host matrix (it must hold the L2-normalised Euclidean distance).
    pub fn mine_input<R: Rng + ?Sized>(&self, input: &MiningInput, rng: &mut R) -> Result<MinedTriplets> {
        self.validate()?;
        if input.direction() != crate::Direction::SmallerIsCloser {
            return Err(MarginError::Unsupported(
                "DistanceWeightedMiner needs the Euclidean distance on L2-normalised embeddings".into(),
            ));
        }
        let mut t = Triplets::default();
        let mut cumulative = Vec::new();
        for a in 0..input.rows() {
            let positives: Vec<usize> = input.positives(a).collect();
            if positives.is_empty() {
                continue;
            }
            let weighted: Vec<(usize, f64)> = input
                .negatives(a)
                .filter_map(|n| self.log_weight(input.raw(a, n), input.dim()).map(|w| (n, w)))
                .collect();
            let Some(max) = weighted.iter().map(|x| x.1).reduce(f64::max) else { continue };
            cumulative.clear();
            let mut total = 0.0;
            for &(_, lw) in &weighted {
                total += (lw - max).exp();
                cumulative.push(total);
            }
            for p in positives {
                let r = rng.random::<f64>() * total;
                let k = cumulative.partition_point(|&c| c <= r).min(weighted.len() - 1);
                t.anchor.push(a);
                t.positive.push(p);
                t.negative.push(weighted[k].0);
            }
        }
        Ok(input.finish_triplets(t))
    }
}

impl AnyMiner for DistanceWeightedMiner {
    fn distance(&self) -> Distance {
        DistanceWeightedMiner::distance(self)
    }
    /// Ignored: the density it samples by assumes L2-normalised Euclidean distances.
    fn set_distance(&mut self, _distance: Distance) {}
    fn has_own_distance(&self) -> bool {
        false
    }
    fn validate(&self) -> Result<()> {
        DistanceWeightedMiner::validate(self)
    }
    fn mine_any(&self, input: &MiningInput, rng: &mut dyn rand::RngCore) -> Result<Mined> {
        Ok(Mined::Triplets(self.mine_input(input, rng)?))
    }
}
