//! PML's `PairMarginMiner`: pairs that violate their margin.

use burn::tensor::Tensor;

use super::{AnyMiner, Mined, MinedPairs, MiningInput};
use crate::error::Result;
use crate::input::check_finite_config;
use crate::{Distance, Pairs, ReferenceSet};

/// Every similar pair farther than `pos_margin` and every dissimilar pair closer
/// than `neg_margin` (for a similarity: less similar than `pos_margin`, more
/// similar than `neg_margin`) — the pairs a contrastive loss with those margins
/// would penalise. Strict inequalities, as PML. Pairs in row-major order.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairMarginMiner {
    /// Similar pairs beyond this are kept (PML default 0.2).
    pub pos_margin: f64,
    /// Dissimilar pairs within this are kept (PML default 0.8).
    pub neg_margin: f64,
    /// The distance mined with.
    pub distance: Distance,
}

impl Default for PairMarginMiner {
    fn default() -> Self {
        PairMarginMiner { pos_margin: 0.2, neg_margin: 0.8, distance: Distance::default() }
    }
}

impl PairMarginMiner {
    /// A pair-margin miner on PML's default distance.
    pub fn new(pos_margin: f64, neg_margin: f64) -> Self {
        PairMarginMiner { pos_margin, neg_margin, distance: Distance::default() }
    }

    /// Checks both margins are finite.
    pub fn validate(&self) -> Result<()> {
        check_finite_config("pos_margin", self.pos_margin)?;
        check_finite_config("neg_margin", self.neg_margin)
    }

    /// Mines a batch (or query against `reference`).
    pub fn mine(&self, embeddings: &Tensor<2>, labels: &[i64], reference: Option<&ReferenceSet<'_>>) -> Result<MinedPairs> {
        self.validate()?;
        Ok(self.mine_input(&MiningInput::new(&self.distance, embeddings, labels, reference)?))
    }

    /// Mines from a prepared host matrix.
    pub fn mine_input(&self, input: &MiningInput) -> MinedPairs {
        let (pos, neg) = (input.to_u(self.pos_margin), input.to_u(self.neg_margin));
        let mut pairs = Pairs::default();
        for a in 0..input.rows() {
            let row = input.u_row(a);
            pairs.similar.extend(input.positives(a).filter(|&p| row[p] > pos).map(|p| (a, p)));
            pairs.dissimilar.extend(input.negatives(a).filter(|&n| row[n] < neg).map(|n| (a, n)));
        }
        input.finish_pairs(pairs)
    }
}

impl AnyMiner for PairMarginMiner {
    fn distance(&self) -> Distance {
        self.distance
    }
    fn set_distance(&mut self, distance: Distance) {
        self.distance = distance;
    }
    fn validate(&self) -> Result<()> {
        PairMarginMiner::validate(self)
    }
    fn mine_any(&self, input: &MiningInput, _rng: &mut dyn rand::RngCore) -> Result<Mined> {
        Ok(Mined::Pairs(self.mine_input(input)))
    }
}
