//! One serialisable value for every miner: what a CLI flag or a config file names.

use burn::tensor::Tensor;
use rand::RngCore;

use super::{
    BatchEasyHardMiner, BatchHardMiner, DistanceWeightedMiner, FaceNetSemiHardMiner, MinedPairs,
    MinedTriplets, MinerStats, MiningInput, MultiSimilarityMiner, PairMarginMiner, TripletMarginMiner,
    pairs_to_triplets, triplets_to_pairs,
};
use crate::error::Result;
use crate::{Distance, Pairs, ReferenceSet, Triplets};

/// What a miner returned: triplets or pairs, with statistics.
#[derive(Debug, Clone, PartialEq)]
pub enum Mined {
    /// Triplets `(a, p, n)`.
    Triplets(MinedTriplets),
    /// Similar and dissimilar pairs.
    Pairs(MinedPairs),
}

impl Mined {
    /// Number of tuples (triplets, or similar + dissimilar pairs).
    pub fn len(&self) -> usize {
        match self {
            Mined::Triplets(t) => t.triplets.len(),
            Mined::Pairs(p) => p.pairs.len(),
        }
    }

    /// True when nothing was mined.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The miner's statistics.
    pub fn stats(&self) -> &MinerStats {
        match self {
            Mined::Triplets(t) => &t.stats,
            Mined::Pairs(p) => &p.stats,
        }
    }

    /// As triplets for a triplet loss; pairs are combined per anchor (PML's `convert_to_triplets`).
    pub fn into_triplets(self) -> Triplets {
        match self {
            Mined::Triplets(t) => t.triplets,
            Mined::Pairs(p) => pairs_to_triplets(&p.pairs),
        }
    }

    /// As pairs for a pair loss, borrowed when they are pairs already (see [`Mined::into_pairs`]).
    pub fn pairs(&self) -> std::borrow::Cow<'_, Pairs> {
        match self {
            Mined::Triplets(t) => std::borrow::Cow::Owned(triplets_to_pairs(&t.triplets)),
            Mined::Pairs(p) => std::borrow::Cow::Borrowed(&p.pairs),
        }
    }

    /// As pairs for a pair loss; each triplet gives `(a, p)` and `(a, n)` (PML's `convert_to_pairs`).
    pub fn into_pairs(self) -> Pairs {
        match self {
            Mined::Triplets(t) => triplets_to_pairs(&t.triplets),
            Mined::Pairs(p) => p.pairs,
        }
    }

    /// The tuples as rows of 3 (`a, p, n`) or 4 (`a1, p, a2, n` with `-1`
    /// padding the shorter of the two pair lists), e.g. to save as `.npy`.
    pub fn to_rows(&self) -> Vec<Vec<i64>> {
        match self {
            Mined::Triplets(t) => t.triplets.iter().map(|(a, p, n)| vec![a as i64, p as i64, n as i64]).collect(),
            Mined::Pairs(p) => {
                let rows = p.pairs.similar.len().max(p.pairs.dissimilar.len());
                (0..rows)
                    .map(|i| {
                        let s = p.pairs.similar.get(i).map_or((-1, -1), |&(a, b)| (a as i64, b as i64));
                        let d = p.pairs.dissimilar.get(i).map_or((-1, -1), |&(a, b)| (a as i64, b as i64));
                        vec![s.0, s.1, d.0, d.1]
                    })
                    .collect()
            }
        }
    }
}

/// Any miner, as one value (serde: `{"miner": "batch-hard", ...fields}`).
///
/// The variant names are the CLI's `--miner` values. Each variant holds the
/// miner itself, so its fields (margins, strategies, distance) are the flags.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "miner", rename_all = "kebab-case")]
pub enum MinerConfig {
    /// [`BatchHardMiner`].
    BatchHard(BatchHardMiner),
    /// [`BatchEasyHardMiner`].
    BatchEasyHard(BatchEasyHardMiner),
    /// [`TripletMarginMiner`].
    TripletMargin(TripletMarginMiner),
    /// [`FaceNetSemiHardMiner`].
    SemihardFacenet(FaceNetSemiHardMiner),
    /// [`PairMarginMiner`].
    PairMargin(PairMarginMiner),
    /// [`MultiSimilarityMiner`].
    MultiSimilarity(MultiSimilarityMiner),
    /// [`DistanceWeightedMiner`] (its draw uses the `rng` given to [`MinerConfig::mine`]).
    DistanceWeighted(DistanceWeightedMiner),
}

impl MinerConfig {
    /// The CLI name of this miner (`"batch-hard"`, `"multi-similarity"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            MinerConfig::BatchHard(_) => "batch-hard",
            MinerConfig::BatchEasyHard(_) => "batch-easy-hard",
            MinerConfig::TripletMargin(_) => "triplet-margin",
            MinerConfig::SemihardFacenet(_) => "semihard-facenet",
            MinerConfig::PairMargin(_) => "pair-margin",
            MinerConfig::MultiSimilarity(_) => "multi-similarity",
            MinerConfig::DistanceWeighted(_) => "distance-weighted",
        }
    }

    /// Every CLI name, in the order of the variants.
    pub const NAMES: [&'static str; 7] = [
        "batch-hard",
        "batch-easy-hard",
        "triplet-margin",
        "semihard-facenet",
        "pair-margin",
        "multi-similarity",
        "distance-weighted",
    ];

    /// The miner with this CLI name and PML's default parameters.
    pub fn default_for(name: &str) -> Option<Self> {
        Some(match name {
            "batch-hard" => MinerConfig::BatchHard(BatchHardMiner::default()),
            "batch-easy-hard" => MinerConfig::BatchEasyHard(BatchEasyHardMiner::default()),
            "triplet-margin" => MinerConfig::TripletMargin(TripletMarginMiner::default()),
            "semihard-facenet" => MinerConfig::SemihardFacenet(FaceNetSemiHardMiner::default()),
            "pair-margin" => MinerConfig::PairMargin(PairMarginMiner::default()),
            "multi-similarity" => MinerConfig::MultiSimilarity(MultiSimilarityMiner::default()),
            "distance-weighted" => MinerConfig::DistanceWeighted(DistanceWeightedMiner::default()),
            _ => return None,
        })
    }

    /// The distance this miner mines with.
    pub fn distance(&self) -> Distance {
        match self {
            MinerConfig::BatchHard(m) => m.distance,
            MinerConfig::BatchEasyHard(m) => m.distance,
            MinerConfig::TripletMargin(m) => m.distance,
            MinerConfig::SemihardFacenet(m) => m.distance,
            MinerConfig::PairMargin(m) => m.distance,
            MinerConfig::MultiSimilarity(m) => m.distance,
            MinerConfig::DistanceWeighted(m) => m.distance(),
        }
    }

    /// Replaces the distance (ignored by the distance-weighted miner, which needs its own).
    pub fn with_distance(mut self, distance: Distance) -> Self {
        match &mut self {
            MinerConfig::BatchHard(m) => m.distance = distance,
            MinerConfig::BatchEasyHard(m) => m.distance = distance,
            MinerConfig::TripletMargin(m) => m.distance = distance,
            MinerConfig::SemihardFacenet(m) => m.distance = distance,
            MinerConfig::PairMargin(m) => m.distance = distance,
            MinerConfig::MultiSimilarity(m) => m.distance = distance,
            MinerConfig::DistanceWeighted(_) => {}
        }
        self
    }

    /// Checks the parameters (and refused strategy combinations).
    pub fn validate(&self) -> Result<()> {
        match self {
            MinerConfig::BatchHard(_) | MinerConfig::SemihardFacenet(_) => Ok(()),
            MinerConfig::BatchEasyHard(m) => m.validate(),
            MinerConfig::TripletMargin(m) => m.validate(),
            MinerConfig::PairMargin(m) => m.validate(),
            MinerConfig::MultiSimilarity(m) => m.validate(),
            MinerConfig::DistanceWeighted(m) => m.validate(),
        }
    }

    /// Mines `embeddings` (optionally against a separate `reference` set).
    /// `rng` is used only by the distance-weighted miner.
    pub fn mine(
        &self,
        embeddings: &Tensor<2>,
        labels: &[i64],
        reference: Option<&ReferenceSet<'_>>,
        rng: &mut dyn RngCore,
    ) -> Result<Mined> {
        self.validate()?;
        let input = MiningInput::new(&self.distance(), embeddings, labels, reference)?;
        self.mine_input(&input, rng)
    }

    /// Mines from a prepared host matrix (it must hold [`MinerConfig::distance`]).
    pub fn mine_input(&self, input: &MiningInput, rng: &mut dyn RngCore) -> Result<Mined> {
        self.validate()?;
        Ok(match self {
            MinerConfig::BatchHard(m) => Mined::Triplets(m.mine_input(input)),
            MinerConfig::BatchEasyHard(m) => m.mine_input(input)?,
            MinerConfig::TripletMargin(m) => Mined::Triplets(m.mine_input(input)),
            MinerConfig::SemihardFacenet(m) => Mined::Triplets(m.mine_input(input)),
            MinerConfig::PairMargin(m) => Mined::Pairs(m.mine_input(input)),
            MinerConfig::MultiSimilarity(m) => Mined::Pairs(m.mine_input(input)),
            MinerConfig::DistanceWeighted(m) => Mined::Triplets(m.mine_input(input, rng)?),
        })
    }
}
