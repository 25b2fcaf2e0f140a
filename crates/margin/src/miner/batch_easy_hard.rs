//! Easy/semi-hard/hard positive and negative mining (Xuan, Stylianou, Liu & Pless
//! 2020, "Improved Embeddings with Easy Positive Triplet Mining"; PML's `BatchEasyHardMiner`).

use burn::tensor::Tensor;

use super::{AnyMiner, Mined, MiningInput, argmax, argmin};
use crate::error::{MarginError, Result};
use crate::input::check_finite_config;
use crate::{Distance, Pairs, ReferenceSet, Triplets};

/// How one side (positives or negatives) of each anchor is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MiningStrategy {
    /// The closest positive / the farthest negative.
    Easy,
    /// Like [`MiningStrategy::Hard`], restricted by the other side's choice: the
    /// farthest positive closer than the chosen negative, or the closest negative
    /// farther than the chosen positive.
    Semihard,
    /// The farthest positive / the closest negative.
    Hard,
    /// Every positive (or negative) pair: the output is then pairs, not triplets.
    All,
}

/// An inclusive range `[low, high]` of values (in the distance's units) a
/// candidate must lie in to be chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueRange {
    /// Smallest allowed value.
    pub low: f64,
    /// Largest allowed value.
    pub high: f64,
}

impl ValueRange {
    fn contains(&self, v: f64) -> bool {
        !(v > self.high || v < self.low)
    }
}

/// For each anchor, one positive and one negative chosen by a [`MiningStrategy`]
/// each (PML's `BatchEasyHardMiner`; defaults: easy positive, semi-hard negative,
/// Xuan et al. 2020's recommendation).
///
/// - Neither strategy [`MiningStrategy::All`]: one triplet `(a, p*, n*)` per anchor
///   that has both ([`Mined::Triplets`]).
/// - One side `All`: every pair of that side plus the chosen pair of the other
///   side per anchor ([`Mined::Pairs`]); [`Mined::into_triplets`] combines them
///   per anchor as PML's triplet losses do.
/// - Semi-hard on one side is relative to the other side's choice (so the other
///   side is chosen first); comparisons are strict.
/// - Candidates outside an allowed range are ignored (ranges are inclusive).
///
/// Refused, as in PML, with [`MarginError::Unsupported`]: semi-hard on both
/// sides, and semi-hard combined with `All`.
///
/// One deliberate difference: PML picks maxima over `value × mask`, which can
/// return a masked-out entry when every candidate similarity is negative; here
/// the extremum is always over the candidates.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchEasyHardMiner {
    /// How the positive is chosen.
    pub pos_strategy: MiningStrategy,
    /// How the negative is chosen.
    pub neg_strategy: MiningStrategy,
    /// Positives outside this range are never chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pos_range: Option<ValueRange>,
    /// Negatives outside this range are never chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_neg_range: Option<ValueRange>,
    /// The distance mined with.
    #[serde(default)]
    pub distance: Distance,
}

impl Default for BatchEasyHardMiner {
    fn default() -> Self {
        BatchEasyHardMiner {
            pos_strategy: MiningStrategy::Easy,
            neg_strategy: MiningStrategy::Semihard,
            allowed_pos_range: None,
            allowed_neg_range: None,
            distance: Distance::default(),
        }
    }
}

impl BatchEasyHardMiner {
    /// A miner with these strategies on PML's default distance, without ranges.
    pub fn new(pos_strategy: MiningStrategy, neg_strategy: MiningStrategy) -> Self {
        BatchEasyHardMiner { pos_strategy, neg_strategy, ..Default::default() }
    }

    /// Refuses the combinations PML refuses, and non-finite ranges.
    pub fn validate(&self) -> Result<()> {
        use MiningStrategy::*;
        match (self.pos_strategy, self.neg_strategy) {
            (Semihard, Semihard) => {
                return Err(MarginError::Unsupported(
                    "BatchEasyHardMiner: pos_strategy and neg_strategy cannot both be semihard".into(),
                ));
            }
            (All, Semihard) | (Semihard, All) => {
                return Err(MarginError::Unsupported(
                    "BatchEasyHardMiner: semihard cannot be combined with all".into(),
                ));
            }
            _ => {}
        }
        for (field, r) in [("allowed_pos_range", self.allowed_pos_range), ("allowed_neg_range", self.allowed_neg_range)] {
            if let Some(r) = r {
                check_finite_config(field, r.low)?;
                check_finite_config(field, r.high)?;
            }
        }
        Ok(())
    }

    /// Mines a batch (or query against `reference`).
    pub fn mine(&self, embeddings: &Tensor<2>, labels: &[i64], reference: Option<&ReferenceSet<'_>>) -> Result<Mined> {
        self.validate()?;
        self.mine_input(&MiningInput::new(&self.distance, embeddings, labels, reference)?)
    }

    /// The chosen positive of anchor `a`, optionally only among those closer than `below` (u units).
    fn pick_positive(&self, input: &MiningInput, a: usize, below: Option<f64>) -> Option<(usize, f64)> {
        let row = input.u_row(a);
        let range = self.allowed_pos_range;
        let cands = input
            .positives(a)
            .filter(move |&p| below.is_none_or(|t| row[p] < t))
            .filter(move |&p| range.is_none_or(|r| r.contains(input.raw(a, p))));
        match self.pos_strategy {
            MiningStrategy::Easy => argmin(input, a, cands),
            _ => argmax(input, a, cands),
        }
    }

    /// The chosen negative of anchor `a`, optionally only among those farther than `above`.
    fn pick_negative(&self, input: &MiningInput, a: usize, above: Option<f64>) -> Option<(usize, f64)> {
        let row = input.u_row(a);
        let range = self.allowed_neg_range;
        let cands = input
            .negatives(a)
            .filter(move |&n| above.is_none_or(|t| row[n] > t))
            .filter(move |&n| range.is_none_or(|r| r.contains(input.raw(a, n))));
        match self.neg_strategy {
            MiningStrategy::Easy => argmax(input, a, cands),
            _ => argmin(input, a, cands),
        }
    }

    /// Mines from a prepared host matrix (refused combinations give an error).
    pub fn mine_input(&self, input: &MiningInput) -> Result<Mined> {
        use MiningStrategy::*;
        self.validate()?;
        let (ps, ns) = (self.pos_strategy, self.neg_strategy);
        let mut chosen_pos: Vec<Option<(usize, f64)>> = vec![None; input.rows()];
        let mut chosen_neg: Vec<Option<(usize, f64)>> = vec![None; input.rows()];
        for a in 0..input.rows() {
            if ps == Semihard {
                chosen_neg[a] = self.pick_negative(input, a, None);
                chosen_pos[a] = chosen_neg[a].and_then(|(_, t)| self.pick_positive(input, a, Some(t)));
            } else if ns == Semihard {
                chosen_pos[a] = self.pick_positive(input, a, None);
                chosen_neg[a] = chosen_pos[a].and_then(|(_, t)| self.pick_negative(input, a, Some(t)));
            } else {
                if ps != All {
                    chosen_pos[a] = self.pick_positive(input, a, None);
                }
                if ns != All {
                    chosen_neg[a] = self.pick_negative(input, a, None);
                }
            }
        }
        if ps != All && ns != All {
            let mut t = Triplets::default();
            for a in 0..input.rows() {
                if let (Some((p, _)), Some((n, _))) = (chosen_pos[a], chosen_neg[a]) {
                    t.anchor.push(a);
                    t.positive.push(p);
                    t.negative.push(n);
                }
            }
            return Ok(Mined::Triplets(input.finish_triplets(t)));
        }
        let mut pairs = Pairs::default();
        for a in 0..input.rows() {
            match ps {
                All => pairs.similar.extend(input.positives(a).map(|p| (a, p))),
                _ => pairs.similar.extend(chosen_pos[a].map(|(p, _)| (a, p))),
            }
            match ns {
                All => pairs.dissimilar.extend(input.negatives(a).map(|n| (a, n))),
                _ => pairs.dissimilar.extend(chosen_neg[a].map(|(n, _)| (a, n))),
            }
        }
        Ok(Mined::Pairs(input.finish_pairs(pairs)))
    }
}

impl AnyMiner for BatchEasyHardMiner {
    fn distance(&self) -> Distance {
        self.distance
    }
    fn set_distance(&mut self, distance: Distance) {
        self.distance = distance;
    }
    fn validate(&self) -> Result<()> {
        BatchEasyHardMiner::validate(self)
    }
    fn mine_any(&self, input: &MiningInput, _rng: &mut dyn rand::RngCore) -> Result<Mined> {
        self.mine_input(input)
    }
}
