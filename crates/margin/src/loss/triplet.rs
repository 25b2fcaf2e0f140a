//! Triplet margin loss (Schroff et al. 2015, FaceNet; soft margin: Hermans et al. 2017;
//! distance swap: Balntas et al. 2016).

use burn::config::Config;
use burn::tensor::{Tensor, activation::relu};

use super::batch::aligned_takes_all;
use super::batch_all::{self, Band};
use super::weighted_grad::DistanceOperands;
use super::{Batch, Labelled, LossOutput, LossStats, Mining, ReferenceSet, Resolved, Tuples, Zero, gather_entries, gather_rows};
use crate::error::{MarginError, Result as MarginResult};
use crate::input::{attached_zero, check_embeddings, check_finite_config, check_same_shape, to_host};
use crate::miner::{MinerConfig, MiningInput};
use crate::{Distance, ElementKind, KindPooling, LossTerms, PerElementLoss, Reducer, Triplets};

/// Configuration of [`TripletMarginLoss`]. Defaults follow pytorch-metric-learning.
#[derive(Config, Debug)]
pub struct TripletMarginLossConfig {
    /// The margin `m`, in the distance's own units (squared units for a squared distance).
    #[config(default = 0.05)]
    pub margin: f64,
    /// The distance the loss compares.
    #[config(default = "Distance::euclidean_normalized()")]
    pub distance: Distance,
    /// Distance swap (Balntas 2016): use `min(d_an, d_pn)` as the negative distance.
    #[config(default = false)]
    pub swap: bool,
    /// Soft margin (Hermans 2017): `softplus(v)` instead of `max(0, v)`.
    #[config(default = false)]
    pub smooth: bool,
    /// How per-triplet losses become one value.
    #[config(default = "Reducer::AvgNonZero")]
    pub reducer: Reducer,
}

impl TripletMarginLossConfig {
    /// Validates the configuration and builds the loss.
    pub fn init(&self) -> MarginResult<TripletMarginLoss> {
        check_finite_config("margin", self.margin)?;
        self.reducer.validate()?;
        Ok(TripletMarginLoss {
            margin: self.margin,
            distance: self.distance,
            swap: self.swap,
            smooth: self.smooth,
            reducer: self.reducer,
        })
    }
}

/// The triplet margin loss. Stateless: statistics come back with each forward.
#[derive(Debug, Clone)]
pub struct TripletMarginLoss {
    /// Margin `m`.
    pub margin: f64,
    /// Distance compared against the margin.
    pub distance: Distance,
    /// Distance swap.
    pub swap: bool,
    /// Soft margin.
    pub smooth: bool,
    /// Reducer.
    pub reducer: Reducer,
}

/// Numerically stable `softplus(v) = log(1 + e^v) = max(v, 0) + log(1 + e^{−|v|})`.
fn softplus(v: Tensor<1>) -> Tensor<1> {
    relu(v.clone()) + v.abs().neg().exp().log1p()
}

impl TripletMarginLoss {
    /// Hinge argument `v = violation(d_ap, d_an) + m` per triplet.
    fn hinge_argument(&self, ap: Tensor<1>, an: Tensor<1>) -> Tensor<1> {
        self.distance.direction().violation_tensor(ap, an).add_scalar(self.margin)
    }

    /// Turns per-triplet distances into the loss, its per-element terms and stats.
    fn finish(&self, ap: Tensor<1>, an: Tensor<1>, zero: Tensor<1>) -> LossOutput {
        let ap_host = to_host(&ap);
        let an_host = to_host(&an);
        let v = self.hinge_argument(ap, an);
        let num_active = to_host(&v).iter().filter(|&&x| x > 0.0).count();
        let values = if self.smooth { softplus(v) } else { relu(v) };
        let per = PerElementLoss { terms: vec![LossTerms { kind: ElementKind::Triplet, values }], zero };
        let host = vec![to_host(&per.terms[0].values)];
        let loss = self.reducer.reduce(&per, &host, KindPooling::Separate);
        let stats = LossStats::new(to_host(&loss)[0], &ap_host, &an_host, ap_host.len(), num_active);
        LossOutput::new(loss, stats)
    }

    fn empty(&self, zero: Tensor<1>) -> LossOutput {
        LossOutput::new(zero, LossStats::new(0.0, &[], &[], 0, 0))
    }

    /// The loss of `batch` over `tuples`, planned (see the `batch` module docs): fused
    /// (no triplet listed, O(B²) memory) for every valid triplet and for a
    /// [`TripletMarginMiner`](crate::TripletMarginMiner) on this loss's distance, one
    /// weight matrix for other miners, gathered for given tuples.
    ///
    /// `L = reduce_(a,p,n)( max(0, d(a, p) − d(a, n) + m) )` for distances
    /// (`s(a, n) − s(a, p) + m` for similarities); `softplus` instead of `max(0, ·)` when
    /// `smooth`; `d(a, n)` replaced by the closer of it and `d(p, n)` when `swap`. The
    /// triplets are the aligned rows of [`Batch::triplets`], or those of a labelled
    /// batch: `a ≠ p`, `y_a = y_p ≠ y_n` (positives and negatives from the reference set
    /// when given, `p` never `a`'s own row under a self index), all of them or the
    /// miner's / given ones. Pairs (given or mined) are combined per anchor, as PML does.
    ///
    /// # Shapes
    /// - labelled: `embeddings` `[B, d]`, `labels` `B`; reference `[m, d]`, `m` labels
    /// - aligned: `anchor`, `positive`, `negative` `[n, d]`
    /// - output loss: `[1]`
    pub fn forward(&self, batch: Batch<'_>, tuples: Tuples<'_>) -> MarginResult<LossOutput> {
        let b = match batch.resolve()? {
            Resolved::Labelled(b) => b,
            Resolved::Triplets(anchor, positive, negative) => {
                return match tuples {
                    Tuples::All => self.forward_triplets(anchor, positive, negative),
                    _ => Err(aligned_takes_all("an aligned-triplet")),
                };
            }
            Resolved::Pairs(..) | Resolved::InBatchPairs(..) => {
                return Err(MarginError::Unsupported("a triplet loss takes Batch::labelled or Batch::triplets, not aligned pairs".into()));
            }
        };
        match tuples {
            Tuples::All if self.fused_reducer().is_some() => {
                let zero = b.check()?;
                Ok(self.forward_fused(b, Band::All, zero))
            }
            Tuples::All => {
                let all = b.all_triplets();
                self.forward_impl(b.embeddings, b.labels, b.reference, &all)
            }
            Tuples::Triplets(t) => self.forward_impl(b.embeddings, b.labels, b.reference, t),
            Tuples::Pairs(p) => {
                p.check(b.labels.len(), b.ref_labels().len())?;
                self.forward_impl(b.embeddings, b.labels, b.reference, &crate::miner::pairs_to_triplets(p))
            }
            Tuples::Mined(m) => self.forward_with_mining(b, m),
        }
    }

    /// A miner, then this loss: the banded fused path for a [`TripletMarginMiner`]
    /// on this loss's distance (when fusable and the tuples are not wanted), else the
    /// tuples listed on the loss's own matrix ([`TripletMarginLoss::forward_mined`]).
    fn forward_with_mining(&self, b: Labelled<'_>, m: Mining<'_>) -> MarginResult<LossOutput> {
        m.miner.validate()?;
        if let MinerConfig::TripletMargin(miner) = m.miner
            && miner.distance == self.distance
            && self.fused_reducer().is_some()
            && !m.return_tuples
        {
            let zero = b.check()?;
            return Ok(self.forward_fused(b, Band::Miner { kind: miner.kind, margin: miner.margin }, zero));
        }
        let mut out = self.forward_mined(b, m.miner, m.rng)?;
        if !m.return_tuples {
            out.mined = None;
        }
        Ok(out)
    }

    /// Loss on explicit, aligned triplets — row `i` of each input is one triplet.
    fn forward_triplets(&self, anchor: Tensor<2>, positive: Tensor<2>, negative: Tensor<2>) -> MarginResult<LossOutput> {
        check_embeddings("anchor", &anchor)?;
        check_same_shape("positive", &positive, "anchor", &anchor)?;
        check_same_shape("negative", &negative, "anchor", &anchor)?;
        check_embeddings("positive", &positive)?;
        check_embeddings("negative", &negative)?;
        let zero = attached_zero(&anchor) + attached_zero(&positive) + attached_zero(&negative);
        let d = &self.distance;
        let (a, p, n) = (d.prepare(anchor), d.prepare(positive), d.prepare(negative));
        let ap = d.paired_prepared(a.clone(), p.clone());
        let mut an = d.paired_prepared(a, n.clone());
        if self.swap {
            an = d.direction().closest_tensor(an, d.paired_prepared(p, n));
        }
        Ok(self.finish(ap, an, zero))
    }

    /// The gathering path: each listed triplet's distances gathered from one `[n, m]`
    /// matrix with autodiff (the oracle the fused paths are tested against:
    /// [`reference::gathered`](crate::reference::gathered)).
    pub(crate) fn forward_impl(
        &self,
        query: Tensor<2>,
        query_labels: &[i64],
        reference: Option<ReferenceSet<'_>>,
        triplets: &Triplets,
    ) -> MarginResult<LossOutput> {
        let zero = super::check_query_and_reference(&query, query_labels, reference.as_ref())?;
        let n_ref = reference.as_ref().map_or(query_labels.len(), |r| r.labels.len());
        triplets.check(query_labels.len(), n_ref)?;
        if triplets.is_empty() {
            return Ok(self.empty(zero.get()));
        }
        let d = &self.distance;
        let q = d.prepare(query);
        let r = match &reference {
            None => q.clone(),
            Some(r) => d.prepare(r.embeddings.clone()),
        };
        let mat = d.matrix_prepared(q, r.clone());
        let ap = gather_entries(&mat, &triplets.anchor, &triplets.positive);
        let mut an = gather_entries(&mat, &triplets.anchor, &triplets.negative);
        if self.swap {
            let pn = d.paired_prepared(gather_rows(&r, &triplets.positive), gather_rows(&r, &triplets.negative));
            an = d.direction().closest_tensor(an, pn);
        }
        Ok(self.finish(ap, an, zero.get()))
    }

    /// The reducer, when this configuration can skip listing triplets (no swap; a
    /// reducer that counts, [`Reducer::kept_count`]).
    fn fused_reducer(&self) -> Option<Reducer> {
        (!self.swap && self.reducer.kept_count(0, 0).is_some()).then_some(self.reducer)
    }

    /// The fused path: distance matrix with gradient, host plan, `sum(W ⊙ D) + c` (on
    /// rayon's pool when it runs on the host).
    fn forward_fused(&self, b: Labelled<'_>, band: Band, zero: Zero) -> LossOutput {
        let Labelled { embeddings: query, labels, reference, self_index } = b;
        let reference_embeddings = reference.as_ref().map(|r| r.embeddings.clone());
        crate::pool::on_pool(&query.clone(), reference_embeddings.as_ref(), || {
            let reducer = self.fused_reducer().expect("checked by the caller");
            let d = &self.distance;
            let dim = query.dims()[1];
            let ((ops, host), ref_labels) = match reference {
                None => (DistanceOperands::new(*d, query, None), labels.to_vec()),
                Some(r) => (DistanceOperands::new(*d, query, Some(r.embeddings)), r.labels.to_vec()),
            };
            let [n, m] = ops.dims();
            let input = MiningInput::from_host(host, n, m, d.direction(), labels.to_vec(), ref_labels, self_index, dim);
            let euclidean = matches!(d, crate::Distance::Lp(lp) if lp.power == crate::Power::Euclidean);
            let plan = if self.smooth {
                batch_all::softplus_plan(&input, self.margin, band, reducer, euclidean)
            } else {
                batch_all::hinge_plan(&input, self.margin, band, reducer, None, euclidean)
            };
            let empty = plan.num_tuples == 0 || (!self.smooth && plan.num_active == 0);
            let value = if empty { 0.0 } else { plan.value };
            let stats = LossStats {
                loss: value,
                num_tuples: plan.num_tuples,
                num_active: plan.num_active,
                active_fraction: if plan.num_tuples == 0 { 0.0 } else { plan.num_active as f64 / plan.num_tuples as f64 },
                mean_ap_dist: plan.mean_ap,
                mean_an_dist: plan.mean_an,
            };
            let loss = if empty { zero.get() } else { ops.weighted_sum_loss(plan, &input, value) };
            LossOutput::new(loss, stats)
        })
    }
}
