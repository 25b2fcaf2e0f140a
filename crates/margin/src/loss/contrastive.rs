//! Contrastive loss (Chopra, Hadsell & LeCun 2005; Hadsell, Chopra & LeCun 2006),
//! in pytorch-metric-learning's linear form or Hadsell's squared form.

use burn::config::Config;
use burn::tensor::{Tensor, activation::relu};

use super::batch::aligned_takes_all;
use super::{Batch, Labelled, LossOutput, LossStats, Mining, ReferenceSet, Resolved, Tuples, check_query_and_reference, gather_entries};
use crate::error::{MarginError, Result as MarginResult};
use crate::input::{attached_zero, check_embeddings, check_finite_config, check_labels, check_same_shape, to_host};
use crate::miner::{MinerConfig, triplets_to_pairs};
use crate::{
    Distance, ElementKind, KindPooling, LossTerms, LpDistance, PairPolarity, Pairs, PerElementLoss,
    Power, Reducer,
};

/// The shape of the contrastive penalty. With `h⁺ = max(0, violation(d, pos_margin))`
/// and `h⁻ = max(0, violation(neg_margin, d))` (for a distance: `d − pos_margin` and
/// `neg_margin − d`):
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum ContrastiveForm {
    /// `h⁺` for similar pairs, `h⁻` for dissimilar ones (pytorch-metric-learning).
    #[default]
    Linear,
    /// `(h⁺)²` and `(h⁻)²`; with `pos_margin = 0` on a Euclidean distance this is
    /// Hadsell 2006 / the seed: `d²` for similar, `max(0, m − d)²` for dissimilar.
    Squared,
}

/// Configuration of [`ContrastiveLoss`]. Defaults follow pytorch-metric-learning.
#[derive(Config, Debug)]
pub struct ContrastiveLossConfig {
    /// Linear (PML) or squared (Hadsell) penalty.
    #[config(default = "ContrastiveForm::Linear")]
    pub form: ContrastiveForm,
    /// Similar pairs are penalised beyond this distance (below this similarity).
    #[config(default = 0.0)]
    pub pos_margin: f64,
    /// Dissimilar pairs are penalised within this distance (above this similarity).
    #[config(default = 1.0)]
    pub neg_margin: f64,
    /// The distance compared against the margins.
    #[config(default = "Distance::euclidean_normalized()")]
    pub distance: Distance,
    /// Reducer applied to the pair terms.
    #[config(default = "Reducer::AvgNonZero")]
    pub reducer: Reducer,
    /// Reduce positive and negative pairs separately then sum (PML), or together (Hadsell).
    #[config(default = "KindPooling::Separate")]
    pub pooling: KindPooling,
}

impl ContrastiveLossConfig {
    /// Hadsell et al. 2006 exactly as the seed writes it: unnormalised Euclidean distance,
    /// `d²` for similar pairs, `max(0, margin − d)²` for dissimilar ones, one mean over all pairs.
    pub fn hadsell(margin: f64) -> Self {
        ContrastiveLossConfig::new()
            .with_form(ContrastiveForm::Squared)
            .with_pos_margin(0.0)
            .with_neg_margin(margin)
            .with_distance(Distance::Lp(LpDistance { power: Power::Euclidean, normalize: false }))
            .with_reducer(Reducer::Mean)
            .with_pooling(KindPooling::Pooled)
    }

    /// Validates the configuration and builds the loss.
    pub fn init(&self) -> MarginResult<ContrastiveLoss> {
        check_finite_config("pos_margin", self.pos_margin)?;
        check_finite_config("neg_margin", self.neg_margin)?;
        self.reducer.validate()?;
        Ok(ContrastiveLoss {
            form: self.form,
            pos_margin: self.pos_margin,
            neg_margin: self.neg_margin,
            distance: self.distance,
            reducer: self.reducer,
            pooling: self.pooling,
        })
    }
}

/// The contrastive loss. Stateless: statistics come back with each forward.
#[derive(Debug, Clone)]
pub struct ContrastiveLoss {
    /// Penalty shape.
    pub form: ContrastiveForm,
    /// Margin for similar pairs.
    pub pos_margin: f64,
    /// Margin for dissimilar pairs.
    pub neg_margin: f64,
    /// Distance.
    pub distance: Distance,
    /// Reducer.
    pub reducer: Reducer,
    /// Pooling of positive and negative terms.
    pub pooling: KindPooling,
}

impl ContrastiveLoss {
    fn shape(&self, hinge: Tensor<1>) -> Tensor<1> {
        match self.form {
            ContrastiveForm::Linear => hinge,
            ContrastiveForm::Squared => hinge.square(),
        }
    }

    /// Turns similar / dissimilar pair distances (either may be absent) into the loss.
    fn finish(&self, pos: Option<Tensor<1>>, neg: Option<Tensor<1>>, zero: Tensor<1>) -> LossOutput {
        let dir = self.distance.direction();
        let mut terms = Vec::new();
        let (mut ap, mut an, mut active) = (Vec::new(), Vec::new(), 0);
        if let Some(d) = pos {
            ap = to_host(&d);
            let values = self.shape(relu(dir.violation_over(d, self.pos_margin)));
            terms.push(LossTerms { kind: ElementKind::PositivePair, values });
        }
        if let Some(d) = neg {
            an = to_host(&d);
            let values = self.shape(relu(dir.violation_under(self.neg_margin, d)));
            terms.push(LossTerms { kind: ElementKind::NegativePair, values });
        }
        let host: Vec<Vec<f64>> = terms.iter().map(|t| to_host(&t.values)).collect();
        active += host.iter().flatten().filter(|&&v| v > 0.0).count();
        let per = PerElementLoss { terms, zero };
        let loss = self.reducer.reduce(&per, &host, self.pooling);
        let stats = LossStats::new(to_host(&loss)[0], &ap, &an, ap.len() + an.len(), active);
        LossOutput::new(loss, stats)
    }

    /// The loss of `batch` over `tuples`, planned (see the `batch` module docs): every pair
    /// and a [`MultiSimilarityMiner`](crate::MultiSimilarityMiner)'s pairs fused (never
    /// listed), other miners' and given tuples through one weight matrix on the distance matrix.
    ///
    /// Linear form: `[d − pos_margin]₊` for similar pairs, `[neg_margin − d]₊` for
    /// dissimilar ones (signs flipped for similarities); squared form: those squared;
    /// `L = reduce⁺(similar terms) + reduce⁻(dissimilar terms)` (`Separate` pooling) or one
    /// reduction over both (`Pooled`). The pairs are the aligned rows of [`Batch::pairs`],
    /// or those of a labelled batch: every ordered `(i, j)` but a row with itself
    /// (similar when `y_i = y_j`; `j` from the reference set when given, never `i`'s own
    /// row under a self index), all of them or the miner's / given ones. Triplets (given
    /// or mined) are split into pairs, as PML does.
    ///
    /// # Shapes
    /// - labelled: `embeddings` `[B, d]`, `labels` `B`; reference `[m, d]`, `m` labels
    /// - aligned: `x`, `y` `[n, d]`, `polarity` `n`
    /// - output loss: `[1]`
    pub fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        let b = match batch.resolve()? {
            Resolved::Labelled(b) => b,
            Resolved::Pairs(x, y, polarity) => {
                return match tuples {
                    Tuples::All => self.forward_pairs(x, y, polarity),
                    _ => Err(aligned_takes_all("an aligned-pair")),
                };
            }
            Resolved::Triplets(..) | Resolved::InBatchPairs(..) => {
                return Err(MarginError::Unsupported("a contrastive loss takes Batch::labelled or Batch::pairs, not aligned triplets or in-batch pairs".into()));
            }
        };
        match tuples {
            Tuples::All => self.forward_fused(b, None),
            Tuples::Pairs(p) => self.forward_fused(b, Some(p)),
            Tuples::Triplets(t) => {
                t.check(b.labels.len(), b.ref_labels().len())?;
                self.forward_fused(b, Some(&triplets_to_pairs(t)))
            }
            Tuples::Mined(m) => self.forward_with_mining(b, m),
        }
    }

    /// A miner, then this loss: fused for a [`MultiSimilarityMiner`](crate::MultiSimilarityMiner)
    /// when its pairs are not wanted, else the pairs listed on the loss's own matrix.
    fn forward_with_mining(&self, b: Labelled<'_>, m: Mining<'_>) -> MarginResult<LossOutput> {
        m.miner.validate()?;
        match m.miner {
            MinerConfig::MultiSimilarity(miner) if !m.return_tuples => self.forward_with_multi_similarity(b, miner),
            _ => {
                let mut out = self.forward_mined(b, m.miner, m.rng)?;
                if !m.return_tuples {
                    out.mined = None;
                }
                Ok(out)
            }
        }
    }

    /// Loss on explicit, aligned pairs: row `i` of `x` and `y` is one pair with polarity `polarity[i]`.
    fn forward_pairs(&self, x: Tensor<2>, y: Tensor<2>, polarity: &[PairPolarity]) -> MarginResult<LossOutput> {
        check_embeddings("x", &x)?;
        check_same_shape("y", &y, "x", &x)?;
        check_embeddings("y", &y)?;
        check_labels("x", &x, "polarity", polarity_as_labels(polarity).as_slice())?;
        let zero = attached_zero(&x) + attached_zero(&y);
        let d = self.distance.paired(x, y);
        let pairs = Pairs::aligned(polarity);
        let part = |p: &[(usize, usize)]| {
            (!p.is_empty()).then(|| {
                let idx: Vec<usize> = p.iter().map(|q| q.0).collect();
                super::gather_rows(&d.clone().unsqueeze_dim::<2>(1), &idx).squeeze_dim::<1>(1)
            })
        };
        Ok(self.finish(part(&pairs.similar), part(&pairs.dissimilar), zero))
    }

    /// The gathering path: each pair's distance gathered from the `[n, m]` matrix with
    /// autodiff, every pair (no self map) when `pairs` is `None` (the oracle the weighted
    /// paths are tested against: [`reference::gathered`](crate::reference::gathered)).
    pub(crate) fn forward_impl(
        &self,
        query: Tensor<2>,
        query_labels: &[i64],
        reference: Option<ReferenceSet<'_>>,
        pairs: Option<&Pairs>,
    ) -> MarginResult<LossOutput> {
        let zero = check_query_and_reference(&query, query_labels, reference.as_ref())?;
        let n_ref = reference.as_ref().map_or(query_labels.len(), |r| r.labels.len());
        let all;
        let pairs = match pairs {
            Some(p) => {
                p.check(query_labels.len(), n_ref)?;
                p
            }
            None => {
                all = match &reference {
                    None => Pairs::all(query_labels),
                    Some(r) => Pairs::all_between(query_labels, r.labels, false),
                };
                &all
            }
        };
        if pairs.is_empty() {
            return Ok(LossOutput::new(zero.get(), LossStats::new(0.0, &[], &[], 0, 0)));
        }
        let mat = match reference {
            None => self.distance.self_matrix(query),
            Some(r) => self.distance.matrix(query, r.embeddings),
        };
        let part = |p: &[(usize, usize)]| {
            (!p.is_empty()).then(|| {
                let (rows, cols): (Vec<usize>, Vec<usize>) = p.iter().copied().unzip();
                gather_entries(&mat, &rows, &cols)
            })
        };
        Ok(self.finish(part(&pairs.similar), part(&pairs.dissimilar), zero.get()))
    }
}

/// Polarity as a label-like slice, only to reuse the count check's message.
fn polarity_as_labels(p: &[PairPolarity]) -> Vec<i64> {
    p.iter().map(|&q| (q == PairPolarity::Similar) as i64).collect()
}
