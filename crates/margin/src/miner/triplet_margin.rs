//! PML's `TripletMarginMiner`: triplets selected by how much they violate a margin.

use burn::tensor::Tensor;

use super::{AnyMiner, Mined, MinedTriplets, MiningInput};
use crate::error::Result;
use crate::input::check_finite_config;
use crate::{Distance, ReferenceSet, Triplets};

/// Which triplets a [`TripletMarginMiner`] keeps, with `t = d_an − d_ap`
/// (`s_ap − s_an` for a similarity) and the miner's margin `m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TripletType {
    /// `t ≤ m`: every triplet that violates the margin.
    #[default]
    All,
    /// `t ≤ m` and `t ≤ 0`: the negative is at least as close as the positive
    /// (*all* hard triplets, not batch-hard).
    Hard,
    /// `0 < t ≤ m`: the negative is farther than the positive, but within the margin.
    Semihard,
    /// `t > m`: triplets that already satisfy the margin.
    Easy,
}

impl TripletType {
    /// Whether a triplet with `t` is kept under margin `m`. The expression is
    /// monotone in `t`'s inputs, which the fused batch-all path relies on.
    #[inline]
    pub fn keeps(self, t: f64, m: f64) -> bool {
        match self {
            TripletType::All => t <= m,
            TripletType::Hard => t <= m && t <= 0.0,
            TripletType::Semihard => t > 0.0 && t <= m,
            TripletType::Easy => t > m,
        }
    }
}

/// Every valid triplet `(a, p, n)` whose `t = d_an − d_ap` falls in the band of
/// its [`TripletType`] (Schroff et al. 2015's semi-hard selection, generalised;
/// PML's `TripletMarginMiner`). Returned in lexicographic `(a, p, n)` order.
///
/// The miner's margin is independent of the loss's margin.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TripletMarginMiner {
    /// The miner's margin `m` (PML default 0.2), in the distance's units.
    pub margin: f64,
    /// Which band of `t` is kept (PML's `type_of_triplets`; `type` is read too).
    #[serde(rename = "type_of_triplets", alias = "type")]
    pub kind: TripletType,
    /// The distance mined with.
    pub distance: Distance,
}

impl Default for TripletMarginMiner {
    fn default() -> Self {
        TripletMarginMiner { margin: 0.2, kind: TripletType::All, distance: Distance::default() }
    }
}

impl TripletMarginMiner {
    /// A miner with margin `margin` keeping triplets of type `kind`, on PML's default distance.
    pub fn new(margin: f64, kind: TripletType) -> Self {
        TripletMarginMiner { margin, kind, distance: Distance::default() }
    }

    /// The same miner on another distance.
    pub fn with_distance(mut self, distance: Distance) -> Self {
        self.distance = distance;
        self
    }

    /// Checks the margin is finite.
    pub fn validate(&self) -> Result<()> {
        check_finite_config("margin", self.margin)
    }

    /// Mines a batch (or query against `reference`).
    pub fn mine(&self, embeddings: &Tensor<2>, labels: &[i64], reference: Option<&ReferenceSet<'_>>) -> Result<MinedTriplets> {
        self.validate()?;
        Ok(self.mine_input(&MiningInput::new(&self.distance, embeddings, labels, reference)?))
    }

    /// Mines from a prepared host matrix.
    pub fn mine_input(&self, input: &MiningInput) -> MinedTriplets {
        let mut t = Triplets::default();
        for a in 0..input.rows() {
            let row = input.u_row(a);
            let negatives: Vec<usize> = input.negatives(a).collect();
            for p in input.positives(a) {
                for &n in &negatives {
                    // PML: an − ap for distances, ap − an for similarities; in u both are u_an − u_ap.
                    if self.kind.keeps(row[n] - row[p], self.margin) {
                        t.anchor.push(a);
                        t.positive.push(p);
                        t.negative.push(n);
                    }
                }
            }
        }
        input.finish_triplets(t)
    }
}

impl AnyMiner for TripletMarginMiner {
    fn distance(&self) -> Distance {
        self.distance
    }
    fn set_distance(&mut self, distance: Distance) {
        self.distance = distance;
    }
    fn validate(&self) -> Result<()> {
        TripletMarginMiner::validate(self)
    }
    fn mine_any(&self, input: &MiningInput, _rng: &mut dyn rand::RngCore) -> Result<Mined> {
        Ok(Mined::Triplets(self.mine_input(input)))
    }
}
