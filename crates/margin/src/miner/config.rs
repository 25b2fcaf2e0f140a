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

/// What [`MinerConfig`] asks of each miner; implemented next to each miner.
pub(crate) trait AnyMiner {
    /// The distance it mines with.
    fn distance(&self) -> Distance;
    /// Replaces that distance (a miner bound to one distance ignores it).
    fn set_distance(&mut self, distance: Distance);
    /// Whether [`AnyMiner::set_distance`] takes effect (false: the miner has a fixed distance).
    fn has_own_distance(&self) -> bool {
        true
    }
    /// Checks the parameters.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    /// Mines from a prepared host matrix (`rng` only for random miners).
    fn mine_any(&self, input: &MiningInput, rng: &mut dyn RngCore) -> Result<Mined>;
}

/// Declares [`MinerConfig`] from one list of `Variant(MinerType) = "kind"` lines: the serde
/// tag, [`MinerConfig::NAMES`], [`MinerConfig::name`], [`MinerConfig::default_for`] and the
/// dispatch to each miner's [`AnyMiner`] impl all come from it. A new miner is its file
/// (the struct, `Default` = PML's defaults, `AnyMiner`) plus one line here.
macro_rules! miners {
    ($($(#[$doc:meta])* $variant:ident($ty:ty) = $name:literal,)+) => {
        /// Any miner, as one value: what a CLI flag or a config file names.
        ///
        /// Serde form: the miner's own fields beside a `kind` tag, e.g.
        /// `{"kind": "multi-similarity", "epsilon": 0.1}` or, in TOML,
        /// `kind = "triplet-margin"`, `margin = 0.2`, `type_of_triplets = "semihard"`.
        /// Every field is optional (PML's default) and an unknown field is refused,
        /// naming it and the miner's fields. The tag of earlier releases, `"miner"`, is read too.
        /// The `kind` values are the CLI's `--miner` values.
        #[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(remote = "Self", tag = "kind")]
        pub enum MinerConfig {
            $($(#[$doc])* #[serde(rename = $name)] $variant($ty),)+
        }

        impl MinerConfig {
            /// Every `kind` (CLI name), in the order of the variants.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The `kind` (CLI name) of this miner (`"batch-hard"`, `"multi-similarity"`, ...).
            pub fn name(&self) -> &'static str {
                match self {
                    $(MinerConfig::$variant(_) => $name,)+
                }
            }

            /// The miner of this `kind` with PML's default parameters.
            pub fn default_for(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(MinerConfig::$variant(<$ty>::default())),)+
                    _ => None,
                }
            }

            fn inner(&self) -> &dyn AnyMiner {
                match self {
                    $(MinerConfig::$variant(m) => m,)+
                }
            }

            fn inner_mut(&mut self) -> &mut dyn AnyMiner {
                match self {
                    $(MinerConfig::$variant(m) => m,)+
                }
            }
        }
    };
}

miners! {
    /// [`BatchHardMiner`].
    BatchHard(BatchHardMiner) = "batch-hard",
    /// [`BatchEasyHardMiner`].
    BatchEasyHard(BatchEasyHardMiner) = "batch-easy-hard",
    /// [`TripletMarginMiner`].
    TripletMargin(TripletMarginMiner) = "triplet-margin",
    /// [`FaceNetSemiHardMiner`].
    SemihardFacenet(FaceNetSemiHardMiner) = "semihard-facenet",
    /// [`PairMarginMiner`].
    PairMargin(PairMarginMiner) = "pair-margin",
    /// [`MultiSimilarityMiner`].
    MultiSimilarity(MultiSimilarityMiner) = "multi-similarity",
    /// [`DistanceWeightedMiner`] (its draw uses the `rng` given to [`MinerConfig::mine`]).
    DistanceWeighted(DistanceWeightedMiner) = "distance-weighted",
}

impl serde::Serialize for MinerConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        MinerConfig::serialize(self, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for MinerConfig {
    /// The derived form, also read with the earlier tag name `"miner"`.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(deserializer)?;
        if let Some(map) = value.as_object_mut()
            && !map.contains_key("kind")
            && let Some(tag) = map.remove("miner")
        {
            map.insert("kind".into(), tag);
        }
        MinerConfig::deserialize(value).map_err(D::Error::custom)
    }
}

impl MinerConfig {
    /// The distance this miner mines with.
    pub fn distance(&self) -> Distance {
        self.inner().distance()
    }

    /// Whether [`MinerConfig::with_distance`] takes effect: false for the distance-weighted
    /// miner, which mines on L2-normalised Euclidean distances only.
    pub fn has_own_distance(&self) -> bool {
        self.inner().has_own_distance()
    }

    /// Replaces the distance (ignored by the distance-weighted miner, which needs its own).
    pub fn with_distance(mut self, distance: Distance) -> Self {
        self.inner_mut().set_distance(distance);
        self
    }

    /// Checks the parameters (and refused strategy combinations).
    pub fn validate(&self) -> Result<()> {
        self.inner().validate()
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
        self.inner().mine_any(input, rng)
    }
}
