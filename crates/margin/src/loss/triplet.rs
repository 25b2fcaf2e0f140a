//! Triplet margin loss (Schroff et al. 2015, FaceNet; soft margin: Hermans et al. 2017;
//! distance swap: Balntas et al. 2016).

use burn::config::Config;
use burn::tensor::{Tensor, activation::relu};

use super::weighted_grad::DistanceOperands;
use super::batch_all::{self, Band, FusedReduce};
use super::{LossOutput, LossStats, ReferenceSet, Zero, check_query_and_reference, gather_entries, gather_rows};
use crate::miner::{MiningInput, TripletMarginMiner};
use crate::error::Result as MarginResult;
use crate::input::{
    attached_zero, check_embeddings, check_finite_config,
    check_same_shape, to_host,
};
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
        LossOutput { loss, stats }
    }

    fn empty(&self, zero: Tensor<1>) -> LossOutput {
        LossOutput { loss: zero, stats: LossStats::new(0.0, &[], &[], 0, 0) }
    }

    /// Loss on explicit, aligned triplets — row `i` of each input is one triplet.
    ///
    /// `L = reduce_i( max(0, d(a_i, p_i) − d(a_i, n_i) + m) )` for distances
    /// (`s(a_i, n_i) − s(a_i, p_i) + m` for similarities); `softplus` instead of
    /// `max(0, ·)` when `smooth`; `d(a_i, n_i)` replaced by the closer of it and
    /// `d(p_i, n_i)` when `swap`.
    ///
    /// # Shapes
    /// - `anchor`, `positive`, `negative`: `[n, d]`
    /// - output loss: `[1]`
    pub fn forward_triplets(
        &self,
        anchor: Tensor<2>,
        positive: Tensor<2>,
        negative: Tensor<2>,
    ) -> MarginResult<LossOutput> {
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

    /// Loss on a labelled batch: over `tuples` (e.g. from a miner) when given,
    /// else over every valid triplet `(a, p, n)` with `a ≠ p`, `y_a = y_p ≠ y_n`.
    ///
    /// Per triplet, the same term as [`TripletMarginLoss::forward_triplets`], with
    /// distances read from one `[B, B]` distance matrix.
    ///
    /// Without `tuples`, the triplets are never listed when the configuration
    /// allows it (no `swap`; reducer Mean, Sum or AvgNonZero): the loss is then
    /// computed exactly in O(B²) memory (see the `batch_all` module: one `[B, B]`
    /// weight matrix applied to the distance matrix; the soft margin streamed over
    /// anchors). Pass `Some(&Triplets::all(labels))` to force the explicit path.
    ///
    /// # Shapes
    /// - `embeddings`: `[B, d]`, `labels`: `B` values
    /// - output loss: `[1]`
    pub fn forward(&self, embeddings: Tensor<2>, labels: &[i64], tuples: Option<&Triplets>) -> MarginResult<LossOutput> {
        self.forward_impl(embeddings, labels, None, tuples)
    }

    /// [`TripletMarginLoss::forward`] with positives and negatives drawn from a
    /// separate reference set (anchors from the query batch; no self-exclusion).
    ///
    /// # Shapes
    /// - `query`: `[n, d]`, `reference.embeddings`: `[m, d]` → loss `[1]`
    pub fn forward_with_reference(
        &self,
        query: Tensor<2>,
        query_labels: &[i64],
        reference: ReferenceSet<'_>,
        tuples: Option<&Triplets>,
    ) -> MarginResult<LossOutput> {
        self.forward_impl(query, query_labels, Some(reference), tuples)
    }

    fn forward_impl(
        &self,
        query: Tensor<2>,
        query_labels: &[i64],
        reference: Option<ReferenceSet<'_>>,
        tuples: Option<&Triplets>,
    ) -> MarginResult<LossOutput> {
        let zero = check_query_and_reference(&query, query_labels, reference.as_ref())?;
        let n_ref = reference.as_ref().map_or(query_labels.len(), |r| r.labels.len());
        if tuples.is_none() && self.fused_reduce().is_some() {
            let self_index = match &reference {
                None => (0..query_labels.len()).map(Some).collect(),
                Some(_) => vec![None; query_labels.len()],
            };
            return Ok(self.forward_fused(query, query_labels, reference, self_index, Band::All, zero));
        }
        let all;
        let triplets = match tuples {
            Some(t) => {
                t.check(query_labels.len(), n_ref)?;
                t
            }
            None => {
                all = match &reference {
                    None => Triplets::all(query_labels),
                    Some(r) => Triplets::all_between(query_labels, r.labels, false),
                };
                &all
            }
        };
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

    /// The fused reducer, when this configuration can skip listing triplets.
    fn fused_reduce(&self) -> Option<FusedReduce> {
        if self.swap {
            return None;
        }
        match self.reducer {
            Reducer::Mean => Some(FusedReduce::Mean),
            Reducer::Sum => Some(FusedReduce::Sum),
            Reducer::AvgNonZero => Some(FusedReduce::AvgNonZero),
            Reducer::Threshold { .. } => None,
        }
    }

    /// [`TripletMarginMiner`] followed by this loss, on a batch (or query against
    /// `reference`): the same value, gradient and stats as
    /// `forward(x, labels, Some(&miner.mine(..)?.triplets))`.
    ///
    /// When the miner mines with this loss's distance (and the configuration is
    /// fusable, see [`TripletMarginLoss::forward`]) the kept triplets are never
    /// listed: each anchor–positive pair keeps a band of negatives, an interval
    /// of the sorted `d_an`, and the loss is computed in O(B²) memory. Otherwise
    /// it mines explicitly, then evaluates the loss on the mined triplets.
    ///
    /// # Shapes
    /// - `query`: `[n, d]`, `labels`: `n`; `reference.embeddings`: `[m, d]` → loss `[1]`
    pub fn forward_with_miner(
        &self,
        query: Tensor<2>,
        labels: &[i64],
        reference: Option<ReferenceSet<'_>>,
        miner: &TripletMarginMiner,
    ) -> MarginResult<LossOutput> {
        miner.validate()?;
        if miner.distance != self.distance || self.fused_reduce().is_none() {
            let mined = miner.mine(&query, labels, reference.as_ref())?;
            return match reference {
                None => self.forward(query, labels, Some(&mined.triplets)),
                Some(r) => self.forward_with_reference(query, labels, r, Some(&mined.triplets)),
            };
        }
        let self_index = match &reference {
            None => (0..labels.len()).map(Some).collect(),
            Some(_) => vec![None; labels.len()],
        };
        self.forward_excluding(query, labels, reference, self_index, Some(miner))
    }

    /// All-triplets (or [`TripletMarginMiner`]-banded) loss against a reference set in
    /// which query row `a` is also reference row `self_index[a]` (never its own positive):
    /// the cross-batch-memory case. Fused when the configuration allows, else explicit.
    pub(crate) fn forward_excluding(
        &self,
        query: Tensor<2>,
        labels: &[i64],
        reference: Option<ReferenceSet<'_>>,
        self_index: Vec<Option<usize>>,
        miner: Option<&TripletMarginMiner>,
    ) -> MarginResult<LossOutput> {
        let zero = check_query_and_reference(&query, labels, reference.as_ref())?;
        let fusable = self.fused_reduce().is_some() && miner.is_none_or(|m| m.distance == self.distance);
        if fusable {
            let band = miner.map_or(Band::All, |m| Band::Miner { kind: m.kind, margin: m.margin });
            return Ok(self.forward_fused(query, labels, reference, self_index, band, zero));
        }
        // Explicit: list the (mined) triplets, honouring the self map.
        let d = miner.map_or(self.distance, |m| m.distance);
        let input = MiningInput::with_self_index(&d, &query, labels, reference.as_ref(), self_index)?;
        let triplets = match miner {
            Some(m) => m.mine_input(&input).triplets,
            None => TripletMarginMiner { margin: f64::INFINITY, kind: crate::TripletType::All, distance: d }
                .mine_input(&input)
                .triplets,
        };
        match reference {
            None => self.forward(query, labels, Some(&triplets)),
            Some(r) => self.forward_with_reference(query, labels, r, Some(&triplets)),
        }
    }

    /// The fused path: distance matrix with gradient, host plan, `sum(W ⊙ D) + c` (on
    /// rayon's pool when it runs on the host).
    fn forward_fused(
        &self,
        query: Tensor<2>,
        labels: &[i64],
        reference: Option<ReferenceSet<'_>>,
        self_index: Vec<Option<usize>>,
        band: Band,
        zero: Zero,
    ) -> LossOutput {
        let reference_embeddings = reference.as_ref().map(|r| r.embeddings.clone());
        crate::pool::on_pool(&query.clone(), reference_embeddings.as_ref(), || {
            let reduce = self.fused_reduce().expect("checked by the caller");
            let d = &self.distance;
            let dim = query.dims()[1];
            let ((ops, host), ref_labels) = match reference {
                None => (DistanceOperands::new(*d, query, None), labels.to_vec()),
                Some(r) => (DistanceOperands::new(*d, query, Some(r.embeddings)), r.labels.to_vec()),
            };
            let [n, m] = ops.dims();
            let input = MiningInput::from_host(
                host,
                n,
                m,
                d.direction(),
                labels.to_vec(),
                ref_labels,
                self_index,
                dim,
            );
            let euclidean = matches!(d, crate::Distance::Lp(lp) if lp.power == crate::Power::Euclidean);
            let plan = if self.smooth {
                batch_all::softplus_plan(&input, self.margin, band, reduce, euclidean)
            } else {
                batch_all::hinge_plan(&input, self.margin, band, reduce, None, euclidean)
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
            LossOutput { loss, stats }
        })
    }
}
