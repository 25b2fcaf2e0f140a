//! Miners: choose the informative tuples of a batch, without gradient.
//!
//! Every miner reads the detached distance matrix between the query batch and
//! the reference set (the batch itself unless one is given) back to the host
//! once, decides on plain `f64` values, and returns index tuples — [`Triplets`]
//! or [`Pairs`] — together with its [`MinerStats`] as a value. Losses then
//! recompute the distances *with* gradient on exactly those tuples (the
//! pytorch-metric-learning (PML) contract), so a miner may use a different
//! [`Distance`] from its loss.
//!
//! Semantics follow PML 2.9 wherever PML has the miner, so configurations port
//! unchanged; each miner's documentation states its definition and paper.
//! Every miner works for both [`Direction`]s: internally values are mapped to
//! "distance convention" `u` (`u = d` for distances, `u = −s` for similarities,
//! which reproduces PML's `is_inverted` branches bit for bit) and margins keep
//! the user's units.
//!
//! | miner | output | paper |
//! |---|---|---|
//! | [`BatchHardMiner`] | triplets | Hermans et al. 2017 |
//! | [`BatchEasyHardMiner`] | triplets or pairs | Xuan et al. 2020 |
//! | [`TripletMarginMiner`] | triplets | Schroff et al. 2015 (PML's variant) |
//! | [`FaceNetSemiHardMiner`] | triplets | Schroff et al. 2015 (TensorFlow's semi-hard) |
//! | [`PairMarginMiner`] | pairs | (PML) |
//! | [`MultiSimilarityMiner`] | pairs | Wang et al. 2019 |
//! | [`DistanceWeightedMiner`] | triplets | Wu et al. 2017 |
//!
//! [`MinerConfig`] wraps all of them behind one serialisable value (what a CLI
//! or a config file needs: `kind = "multi-similarity"`, `epsilon = 0.1`) whose
//! [`MinerConfig::mine`] returns [`Mined`]. Adding a miner is its file (the
//! struct with PML's parameters and defaults, `mine_input`, an `AnyMiner` impl)
//! and one line in `config.rs`'s `miners!` list.

use burn::tensor::Tensor;

use crate::error::{MarginError, Result};
use crate::input::{check_embeddings, check_labels, check_same_dim};
use crate::{Direction, Distance, Pairs, ReferenceSet, Triplets};

mod batch_easy_hard;
mod batch_hard;
mod config;
mod distance_weighted;
mod multi_similarity;
mod pair_margin;
mod semihard_facenet;
mod triplet_margin;

pub use batch_easy_hard::{BatchEasyHardMiner, MiningStrategy, ValueRange};
pub use batch_hard::BatchHardMiner;
pub(crate) use config::AnyMiner;
pub use config::{Mined, MinerConfig};
pub use distance_weighted::DistanceWeightedMiner;
pub use multi_similarity::MultiSimilarityMiner;
pub(crate) use multi_similarity::anchor_bounds as multi_similarity_bounds;
pub use pair_margin::PairMarginMiner;
pub use semihard_facenet::{FaceNetSemiHardMiner, SemiHardFallback};
pub use triplet_margin::{TripletMarginMiner, TripletType};

/// What a miner saw and kept (all distances in the miner's own distance and units).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct MinerStats {
    /// Number of triplets returned (0 for a pair miner).
    pub num_triplets: usize,
    /// Number of similar pairs returned (0 for a triplet miner).
    pub num_pos_pairs: usize,
    /// Number of dissimilar pairs returned (0 for a triplet miner).
    pub num_neg_pairs: usize,
    /// Number of distinct anchors that appear in the output.
    pub num_anchors: usize,
    /// Mean anchor–positive distance over the returned tuples; `None` without any.
    pub mean_pos_dist: Option<f64>,
    /// Mean anchor–negative distance over the returned tuples; `None` without any.
    pub mean_neg_dist: Option<f64>,
}

/// Triplets chosen by a miner, with its statistics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MinedTriplets {
    /// The triplets (anchors index the query batch, positives/negatives the reference set).
    pub triplets: Triplets,
    /// Statistics of this mining step.
    pub stats: MinerStats,
}

/// Pairs chosen by a miner, with its statistics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MinedPairs {
    /// The pairs (first index into the query batch, second into the reference set).
    pub pairs: Pairs,
    /// Statistics of this mining step.
    pub stats: MinerStats,
}

/// The detached distance matrix between a query batch and its reference set, on
/// the host, with the labels: everything a miner decides on.
///
/// Build it with [`MiningInput::new`] (query batch, optional reference set) or
/// [`MiningInput::with_self_index`] when the reference set contains detached
/// copies of query rows (a cross-batch memory): then `(a, self_index[a])` is
/// never used as a positive pair.
#[derive(Debug, Clone)]
pub struct MiningInput {
    /// `n × m` values in distance convention (`u = d`, or `u = −s` for similarities).
    u: Vec<f64>,
    n: usize,
    m: usize,
    direction: Direction,
    labels: Vec<i64>,
    ref_labels: Vec<i64>,
    self_index: Vec<Option<usize>>,
    dim: usize,
}

impl MiningInput {
    /// Computes `distance` between `embeddings` (detached) and the reference set
    /// (the batch itself when `None`, then `a = p` is excluded) and reads it to the host.
    ///
    /// # Shapes
    /// - `embeddings`: `[n, d]`, `labels`: `n` values; `reference.embeddings`: `[m, d]`
    pub fn new(
        distance: &Distance,
        embeddings: &Tensor<2>,
        labels: &[i64],
        reference: Option<&ReferenceSet<'_>>,
    ) -> Result<Self> {
        let self_index = match reference {
            None => (0..labels.len()).map(Some).collect(),
            Some(_) => vec![None; labels.len()],
        };
        Self::with_self_index(distance, embeddings, labels, reference, self_index)
    }

    /// [`MiningInput::new`] with an explicit map from each query row to the
    /// reference row that is the same sample (if any); that pair is never mined.
    pub fn with_self_index(
        distance: &Distance,
        embeddings: &Tensor<2>,
        labels: &[i64],
        reference: Option<&ReferenceSet<'_>>,
        self_index: Vec<Option<usize>>,
    ) -> Result<Self> {
        check_embeddings("embeddings", embeddings)?;
        check_labels("embeddings", embeddings, "labels", labels)?;
        if self_index.len() != labels.len() {
            return Err(MarginError::LengthMismatch {
                input: "self_index",
                got: self_index.len(),
                expected_from: "labels",
                expected: labels.len(),
            });
        }
        let ref_labels = match reference {
            None => labels.to_vec(),
            Some(r) => {
                check_embeddings("reference embeddings", &r.embeddings)?;
                check_same_dim("reference embeddings", &r.embeddings, "embeddings", embeddings)?;
                check_labels("reference embeddings", &r.embeddings, "reference labels", r.labels)?;
                r.labels.to_vec()
            }
        };
        let (n, m) = (labels.len(), ref_labels.len());
        if let Some((i, &j)) = self_index.iter().enumerate().find_map(|(i, s)| s.as_ref().map(|j| (i, j))).filter(|(_, j)| **j >= m) {
            return Err(MarginError::IndexOutOfRange { input: "self_index", position: i, index: j, bound: m });
        }
        let host = distance.host_matrix(embeddings, reference.map(|r| &r.embeddings));
        Ok(Self::from_host(host, n, m, distance.direction(), labels.to_vec(), ref_labels, self_index, embeddings.dims()[1]))
    }

    /// From a host matrix of raw values (`n × m`, row-major) in `direction`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_host(
        mut values: Vec<f64>,
        n: usize,
        m: usize,
        direction: Direction,
        labels: Vec<i64>,
        ref_labels: Vec<i64>,
        self_index: Vec<Option<usize>>,
        dim: usize,
    ) -> Self {
        if direction == Direction::LargerIsCloser {
            values.iter_mut().for_each(|v| *v = -*v);
        }
        MiningInput { u: values, n, m, direction, labels, ref_labels, self_index, dim }
    }

    /// Number of query rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Number of reference rows.
    pub fn cols(&self) -> usize {
        self.m
    }

    /// The direction of the distance the matrix was computed with.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The embedding dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Value in distance convention (`−s` for similarities): smaller is closer.
    #[inline]
    pub(crate) fn u(&self, a: usize, j: usize) -> f64 {
        self.u[a * self.m + j]
    }

    /// Row `a` in distance convention.
    #[inline]
    pub(crate) fn u_row(&self, a: usize) -> &[f64] {
        &self.u[a * self.m..(a + 1) * self.m]
    }

    /// The value in the distance's own units.
    #[inline]
    pub fn raw(&self, a: usize, j: usize) -> f64 {
        self.to_raw(self.u(a, j))
    }

    #[inline]
    pub(crate) fn to_raw(&self, u: f64) -> f64 {
        match self.direction {
            Direction::SmallerIsCloser => u,
            Direction::LargerIsCloser => -u,
        }
    }

    /// A threshold in user units turned into distance convention.
    #[inline]
    pub(crate) fn to_u(&self, raw: f64) -> f64 {
        self.to_raw(raw)
    }

    /// Reference rows `j` that are positives of anchor `a` (same label, not itself).
    pub(crate) fn positives(&self, a: usize) -> impl Iterator<Item = usize> + '_ {
        let ya = self.labels[a];
        let skip = self.self_index[a];
        (0..self.m).filter(move |&j| self.ref_labels[j] == ya && Some(j) != skip)
    }

    /// Reference rows `j` that are negatives of anchor `a` (different label).
    pub(crate) fn negatives(&self, a: usize) -> impl Iterator<Item = usize> + '_ {
        let ya = self.labels[a];
        (0..self.m).filter(move |&j| self.ref_labels[j] != ya)
    }

    /// Query labels.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// Reference labels.
    pub fn ref_labels(&self) -> &[i64] {
        &self.ref_labels
    }

    /// The reference row that is the same sample as query row `a`, if any.
    pub fn self_index(&self, a: usize) -> Option<usize> {
        self.self_index[a]
    }

    /// Statistics of a triplet set mined from this input.
    pub(crate) fn triplet_stats(&self, t: &Triplets) -> MinerStats {
        let ap: Vec<f64> = t.iter().map(|(a, p, _)| self.raw(a, p)).collect();
        let an: Vec<f64> = t.iter().map(|(a, _, n)| self.raw(a, n)).collect();
        MinerStats {
            num_triplets: t.len(),
            num_anchors: self.distinct_anchors(t.anchor.iter().copied()),
            mean_pos_dist: mean(&ap),
            mean_neg_dist: mean(&an),
            ..MinerStats::default()
        }
    }

    /// Statistics of a pair set mined from this input.
    pub(crate) fn pair_stats(&self, p: &Pairs) -> MinerStats {
        let mean_of = |list: &[(usize, usize)]| {
            use rayon::prelude::*;
            (!list.is_empty()).then(|| list.par_chunks(4096).map(|c| c.iter().map(|&(a, j)| self.raw(a, j)).sum::<f64>()).collect::<Vec<f64>>().into_iter().sum::<f64>() / list.len() as f64)
        };
        MinerStats {
            num_pos_pairs: p.similar.len(),
            num_neg_pairs: p.dissimilar.len(),
            num_anchors: self.distinct_anchors(p.similar.iter().chain(&p.dissimilar).map(|x| x.0)),
            mean_pos_dist: mean_of(&p.similar),
            mean_neg_dist: mean_of(&p.dissimilar),
            ..MinerStats::default()
        }
    }

    /// How many distinct query rows appear among `anchors` (all `< rows()`).
    fn distinct_anchors(&self, anchors: impl Iterator<Item = usize>) -> usize {
        let mut seen = vec![false; self.n];
        anchors.filter(|&a| !std::mem::replace(&mut seen[a], true)).count()
    }

    pub(crate) fn finish_triplets(&self, triplets: Triplets) -> MinedTriplets {
        MinedTriplets { stats: self.triplet_stats(&triplets), triplets }
    }

    pub(crate) fn finish_pairs(&self, pairs: Pairs) -> MinedPairs {
        MinedPairs { stats: self.pair_stats(&pairs), pairs }
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Index of the smallest `u` among `candidates` (first one on ties), and its value.
pub(crate) fn argmin(input: &MiningInput, a: usize, candidates: impl Iterator<Item = usize>) -> Option<(usize, f64)> {
    let row = input.u_row(a);
    let mut best: Option<(usize, f64)> = None;
    for j in candidates {
        if best.is_none_or(|(_, v)| row[j] < v) {
            best = Some((j, row[j]));
        }
    }
    best
}

/// Index of the largest `u` among `candidates` (first one on ties), and its value.
pub(crate) fn argmax(input: &MiningInput, a: usize, candidates: impl Iterator<Item = usize>) -> Option<(usize, f64)> {
    let row = input.u_row(a);
    let mut best: Option<(usize, f64)> = None;
    for j in candidates {
        if best.is_none_or(|(_, v)| row[j] > v) {
            best = Some((j, row[j]));
        }
    }
    best
}

/// PML's `convert_to_triplets`: every similar pair `(a, p)` combined with every
/// dissimilar pair `(a, n)` of the same anchor, in the order of the similar pairs.
pub fn pairs_to_triplets(pairs: &Pairs) -> Triplets {
    let mut by_anchor: std::collections::HashMap<usize, Vec<usize>> = std::collections::HashMap::new();
    for &(a, n) in &pairs.dissimilar {
        by_anchor.entry(a).or_default().push(n);
    }
    let mut t = Triplets::default();
    for &(a, p) in &pairs.similar {
        if let Some(negs) = by_anchor.get(&a) {
            for &n in negs {
                t.anchor.push(a);
                t.positive.push(p);
                t.negative.push(n);
            }
        }
    }
    t
}

/// PML's `convert_to_pairs`: triplet `(a, p, n)` gives the similar pair `(a, p)`
/// and the dissimilar pair `(a, n)` (duplicates kept, as in PML).
pub fn triplets_to_pairs(triplets: &Triplets) -> Pairs {
    Pairs {
        similar: triplets.iter().map(|(a, p, _)| (a, p)).collect(),
        dissimilar: triplets.iter().map(|(a, _, n)| (a, n)).collect(),
    }
}

pub(crate) fn check_nonnegative(field: &'static str, v: f64) -> Result<()> {
    crate::input::check_finite_config(field, v)?;
    if v < 0.0 {
        return Err(MarginError::InvalidConfig { field, value: v.to_string(), reason: "must be ≥ 0" });
    }
    Ok(())
}
