//! The one entry point of every loss: `loss.forward(batch, tuples)`.
//!
//! A [`Batch`] says what the rows are — a labelled batch (optionally against a
//! reference set such as a cross-batch memory), or aligned triplets / pairs — and
//! [`Tuples`] says which tuples the loss is evaluated on: every valid one, a miner's,
//! or given lists. The loss then *plans* the computation: the caller never picks a
//! fast path by name. The fused paths (no tuple listed, O(B²) memory) are taken
//! whenever they give the same value, gradient and statistics as listing the tuples
//! (tested equal in `tests/batch_all.rs`, `tests/weighted.rs`, `tests/xbm.rs`); the
//! gathering paths they are tested against stay reachable as oracles in
//! [`reference::gathered`](crate::reference::gathered).
//!
//! | loss | tuples | path |
//! |---|---|---|
//! | triplet | `All` | fused batch-all (not with `swap` or a `Threshold` reducer: listed, gathered) |
//! | triplet | `Mined(TripletMargin)` on the loss's distance | fused band of negatives per positive pair |
//! | triplet | `Mined(other)` | mined on the loss's own distance matrix, one weight matrix (gathered with `swap`) |
//! | triplet | `Triplets` / `Pairs` | gathered (pairs combined per anchor, PML's `convert_to_triplets`) |
//! | contrastive | `All` | fused all pairs |
//! | contrastive | `Mined(MultiSimilarity)` | fused: the miner's thresholds per anchor, pairs never listed |
//! | contrastive | `Mined(other)` | mined on the loss's own distance matrix, one weight matrix |
//! | contrastive | `Pairs` / `Triplets` | one weight matrix (triplets split, PML's `convert_to_pairs`) |
//!
//! Asking for the mined tuples ([`Mining::returning_tuples`]) lists them, so a fusable
//! miner then takes the listed path; the results are the same either way.
//!
//! # Later losses
//!
//! [`MetricLoss`] is the signature every loss shares. A loss with learnable parameters
//! (ArcFace, Proxy-Anchor) is a Burn `Module` holding its `Param`s and implements the same
//! `forward(&self, batch, tuples)`: it reads a labelled batch, takes `Tuples::All` (proxies
//! replace tuples) and refuses other tuples with [`MarginError::Unsupported`]. Label-free
//! pair batches (anchor / positive rows, the other rows as in-batch negatives, as NT-Xent)
//! become one more `Batch` constructor; [`Tuples`] is `#[non_exhaustive]` for the same reason.

use burn::tensor::Tensor;
use rand::RngCore;

use super::{LossOutput, ReferenceSet, Zero, check_query_and_reference};
use crate::error::{MarginError, Result};
use crate::miner::{MinerConfig, MiningInput};
use crate::{ContrastiveLoss, Distance, PairPolarity, Pairs, TripletMarginLoss, Triplets};

/// The rows a loss is evaluated on. Build with [`Batch::labelled`] (then optionally
/// [`Batch::with_reference`], [`Batch::with_self_index`]), [`Batch::triplets`] or
/// [`Batch::pairs`]; every input is validated by the loss's `forward`.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    rows: Rows<'a>,
    reference: Option<ReferenceSet<'a>>,
    self_index: Option<Vec<Option<usize>>>,
}

#[derive(Debug, Clone)]
enum Rows<'a> {
    Labelled { embeddings: Tensor<2>, labels: &'a [i64] },
    Triplets { anchor: Tensor<2>, positive: Tensor<2>, negative: Tensor<2> },
    Pairs { x: Tensor<2>, y: Tensor<2>, polarity: &'a [PairPolarity] },
    InBatchPairs { anchor: Tensor<2>, positive: Tensor<2> },
}

impl<'a> Batch<'a> {
    /// A labelled batch: tuples are formed from the labels (`a ≠ p`, `y_a = y_p`, `y_n ≠ y_a`).
    ///
    /// # Shapes
    /// - `embeddings`: `[B, d]`, `labels`: `B` values
    pub fn labelled(embeddings: Tensor<2>, labels: &'a [i64]) -> Self {
        Batch { rows: Rows::Labelled { embeddings, labels }, reference: None, self_index: None }
    }

    /// Positives and negatives drawn from `reference` (`[m, d]`, `m` labels) instead of
    /// the batch; anchors stay the batch's rows. No pair is excluded unless a self index
    /// is given ([`Batch::with_self_index`]). A labelled batch only.
    pub fn with_reference(mut self, reference: ReferenceSet<'a>) -> Self {
        self.reference = Some(reference);
        self
    }

    /// The reference set holds detached copies of query rows (a cross-batch memory):
    /// query row `a` is reference row `self_index[a]` (if any), never its own positive
    /// pair. `B` entries, each `< m`. With a reference set only. It shapes the tuples the
    /// loss forms itself (`Tuples::All`, `Tuples::Mined`); given tuples are used as given.
    pub fn with_self_index(mut self, self_index: Vec<Option<usize>>) -> Self {
        self.self_index = Some(self_index);
        self
    }

    /// Aligned triplets: row `i` of each input is one triplet (`Tuples::All` only).
    ///
    /// # Shapes
    /// - `anchor`, `positive`, `negative`: `[n, d]`
    pub fn triplets(anchor: Tensor<2>, positive: Tensor<2>, negative: Tensor<2>) -> Self {
        Batch { rows: Rows::Triplets { anchor, positive, negative }, reference: None, self_index: None }
    }

    /// Aligned pairs: row `i` of `x` and `y` is one pair with polarity `polarity[i]`
    /// (`Tuples::All` only).
    ///
    /// # Shapes
    /// - `x`, `y`: `[n, d]`; `polarity`: `n` values
    pub fn pairs(x: Tensor<2>, y: Tensor<2>, polarity: &'a [PairPolarity]) -> Self {
        Batch { rows: Rows::Pairs { x, y, polarity }, reference: None, self_index: None }
    }

    /// Label-free (anchor, positive) pairs: row `i` of `positive` is anchor `i`'s positive
    /// and every other row of the batch is its negative (InfoNCE / NT-Xent's in-batch
    /// negatives; `Tuples::All` only).
    ///
    /// # Shapes
    /// - `anchor`, `positive`: `[n, d]`
    pub fn in_batch_pairs(anchor: Tensor<2>, positive: Tensor<2>) -> Self {
        Batch { rows: Rows::InBatchPairs { anchor, positive }, reference: None, self_index: None }
    }

    /// The batch in the form the losses plan on, its reference and self index checked.
    pub(crate) fn resolve(self) -> Result<Resolved<'a>> {
        let Batch { rows, reference, self_index } = self;
        let (embeddings, labels) = match rows {
            Rows::Labelled { embeddings, labels } => (embeddings, labels),
            _ if reference.is_some() || self_index.is_some() => {
                return Err(MarginError::Unsupported(
                    "a reference set or self index applies to a labelled batch (Batch::labelled)".into(),
                ));
            }
            Rows::Triplets { anchor, positive, negative } => return Ok(Resolved::Triplets(anchor, positive, negative)),
            Rows::Pairs { x, y, polarity } => return Ok(Resolved::Pairs(x, y, polarity)),
            Rows::InBatchPairs { anchor, positive } => return Ok(Resolved::InBatchPairs(anchor, positive)),
        };
        let self_index = match (&reference, self_index) {
            (None, None) => (0..labels.len()).map(Some).collect(),
            (Some(_), None) => vec![None; labels.len()],
            (None, Some(_)) => {
                return Err(MarginError::Unsupported(
                    "a self index maps query rows to reference rows: give the reference set too (Batch::with_reference)".into(),
                ));
            }
            (Some(r), Some(s)) => {
                if s.len() != labels.len() {
                    return Err(MarginError::LengthMismatch { input: "self_index", got: s.len(), expected_from: "labels", expected: labels.len() });
                }
                if let Some((position, index)) = s.iter().enumerate().find_map(|(i, j)| j.filter(|&j| j >= r.labels.len()).map(|j| (i, j))) {
                    return Err(MarginError::IndexOutOfRange { input: "self_index", position, index, bound: r.labels.len() });
                }
                s
            }
        };
        Ok(Resolved::Labelled(Labelled { embeddings, labels, reference, self_index }))
    }
}

/// A [`Batch`] as the losses plan on it.
pub(crate) enum Resolved<'a> {
    Labelled(Labelled<'a>),
    Triplets(Tensor<2>, Tensor<2>, Tensor<2>),
    Pairs(Tensor<2>, Tensor<2>, &'a [PairPolarity]),
    InBatchPairs(Tensor<2>, Tensor<2>),
}

/// A labelled batch with its self map resolved: identity without a reference set, the
/// given map (or none) with one.
pub(crate) struct Labelled<'a> {
    pub(crate) embeddings: Tensor<2>,
    pub(crate) labels: &'a [i64],
    pub(crate) reference: Option<ReferenceSet<'a>>,
    pub(crate) self_index: Vec<Option<usize>>,
}

impl Labelled<'_> {
    /// The labels of the rows positives and negatives come from.
    pub(crate) fn ref_labels(&self) -> &[i64] {
        self.reference.as_ref().map_or(self.labels, |r| r.labels)
    }

    /// Checks the embeddings, labels and reference set; the source of their attached zero.
    pub(crate) fn check(&self) -> Result<Zero> {
        check_query_and_reference(&self.embeddings, self.labels, self.reference.as_ref())
    }

    /// The detached matrix of `distance` on the host, honouring the self map (for a miner).
    pub(crate) fn mining_input(&self, distance: &Distance) -> Result<MiningInput> {
        MiningInput::with_self_index(distance, &self.embeddings, self.labels, self.reference.as_ref(), self.self_index.clone())
    }

    /// Every valid triplet (`y_a = y_p ≠ y_n`, `p` not anchor `a`'s own row), in
    /// lexicographic `(a, p, n)` order.
    pub(crate) fn all_triplets(&self) -> Triplets {
        let mut t = Triplets::default();
        let ref_labels = self.ref_labels();
        for (a, &ya) in self.labels.iter().enumerate() {
            for (p, &yp) in ref_labels.iter().enumerate() {
                if yp != ya || Some(p) == self.self_index[a] {
                    continue;
                }
                for (n, _) in ref_labels.iter().enumerate().filter(|&(_, &yn)| yn != ya) {
                    t.anchor.push(a);
                    t.positive.push(p);
                    t.negative.push(n);
                }
            }
        }
        t
    }
}

/// Which tuples a loss is evaluated on.
#[derive(Debug)]
#[non_exhaustive]
pub enum Tuples<'a> {
    /// Every valid tuple of the batch; never listed when the loss can fuse.
    All,
    /// A miner's tuples, mined on the same batch (and reference set, and self map).
    Mined(Mining<'a>),
    /// Given triplets (a pair loss splits them into pairs).
    Triplets(&'a Triplets),
    /// Given pairs (a triplet loss combines them per anchor).
    Pairs(&'a Pairs),
}

impl<'a> Tuples<'a> {
    /// `Tuples::Mined(Mining::new(miner, rng))`.
    pub fn mined(miner: &'a MinerConfig, rng: &'a mut dyn RngCore) -> Self {
        Tuples::Mined(Mining::new(miner, rng))
    }
}

/// A miner run inside the loss's forward.
#[non_exhaustive]
pub struct Mining<'a> {
    /// The miner (with its own distance: when it is the loss's, one matrix serves both).
    pub miner: &'a MinerConfig,
    /// Used by the distance-weighted miner's draws only.
    pub rng: &'a mut dyn RngCore,
    /// Return the mined tuples in [`LossOutput::mined`] (lists them; see the module docs).
    pub return_tuples: bool,
}

impl std::fmt::Debug for Mining<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mining").field("miner", self.miner).field("return_tuples", &self.return_tuples).finish_non_exhaustive()
    }
}

impl<'a> Mining<'a> {
    /// `miner` with `rng`, not returning the tuples.
    pub fn new(miner: &'a MinerConfig, rng: &'a mut dyn RngCore) -> Self {
        Mining { miner, rng, return_tuples: false }
    }

    /// Also return the mined tuples (e.g. to save them).
    pub fn returning_tuples(mut self) -> Self {
        self.return_tuples = true;
        self
    }
}

/// What every loss is: `forward(batch, tuples)` → a loss on the graph and its statistics.
pub trait MetricLoss {
    /// The loss of `batch` over `tuples` (see each loss's inherent `forward`).
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> Result<LossOutput>;
}

impl MetricLoss for TripletMarginLoss {
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> Result<LossOutput> {
        TripletMarginLoss::forward(self, batch, tuples)
    }
}

impl MetricLoss for ContrastiveLoss {
    fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> Result<LossOutput> {
        ContrastiveLoss::forward(self, batch, tuples)
    }
}

/// The error for tuples an aligned batch cannot take.
pub(crate) fn aligned_takes_all(what: &str) -> MarginError {
    MarginError::Unsupported(format!("{what} batch is its own tuples: use Tuples::All"))
}
