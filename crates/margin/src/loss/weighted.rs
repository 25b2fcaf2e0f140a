//! Losses on given tuples through one weight matrix: `L = sum(W ⊙ D) + c`.
//!
//! Every triplet or pair term depends on the distance matrix `D` only through
//! one or two entries, so the gradient of the reduced loss w.r.t. `D` is a
//! `[n, m]` matrix `W` accumulated on the host from the per-term derivatives;
//! `sum(W ⊙ D) + (L − Σ W⊙D)` then has the loss's value and exactly its
//! gradient. Compared with gathering one entry per tuple, this never builds
//! index tensors or per-tuple graphs (millions of pairs for an all-pairs
//! contrastive loss), and lets a miner reuse the loss's own distance matrix
//! when both use the same distance: one GEMM forward, two backward.
//!
//! Paths the losses' `forward` plans into: `forward_mined` (a [`MinerConfig`] then the
//! loss, on the loss's own matrix, tuples returned), `ContrastiveLoss::forward_fused`
//! (given pairs or, without, every pair — never listed) and
//! `ContrastiveLoss::forward_with_multi_similarity` (the miner's pairs, never listed).
//! Every one honours the batch's reference set and self map.

use rand::RngCore;

use super::batch_all::FusedPlan;
use super::weighted_grad::DistanceOperands;
use super::{Labelled, LossOutput, LossStats, Zero};
use crate::error::Result;
use super::contrastive_all::MultiSimilarityPairs;
use crate::miner::{MinerConfig, MiningInput, MultiSimilarityMiner};
use crate::{ContrastiveForm, ContrastiveLoss, Direction, Distance, KindPooling, Pairs, Reducer, TripletMarginLoss, Triplets};

/// Which per-element values a reducer keeps, and its scale.
fn reducer_scale(reducer: &Reducer, values: &[f64]) -> (Vec<bool>, f64) {
    let kept: Vec<bool> = values.iter().map(|&v| reducer.keeps(v)).collect();
    let count = kept.iter().filter(|&&k| k).count();
    (kept, reducer.scale(count))
}

/// Host copy of the batch's matrix (`d`) as a [`MiningInput`], with the batch's self map.
fn host_input(ops: &DistanceOperands, host: Vec<f64>, d: &Distance, b: &Labelled<'_>) -> MiningInput {
    let [n, m] = ops.dims();
    let dim = b.embeddings.dims()[1];
    MiningInput::from_host(host, n, m, d.direction(), b.labels.to_vec(), b.ref_labels().to_vec(), b.self_index.clone(), dim)
}

/// The loss's distance matrix (kept for the written-out backward) and its host copy,
/// and the miner's host matrix when the miner uses another distance (`None`: it mines
/// on the loss's own) — read from the loss's GEMM when both prepare rows alike, else
/// computed on its own.
fn loss_and_miner_inputs(distance: &Distance, miner_distance: Distance, b: &Labelled<'_>) -> Result<(DistanceOperands, MiningInput, Option<MiningInput>)> {
    let other = (miner_distance != *distance).then_some(miner_distance);
    let reference = b.reference.as_ref().map(|r| r.embeddings.clone());
    let (mat, host, miner_host) = DistanceOperands::with_distance_too(*distance, b.embeddings.clone(), reference, other);
    let input = host_input(&mat, host, distance, b);
    let miner_input = match (other, miner_host) {
        (None, _) => None,
        (Some(d), Some(h)) => Some(host_input(&mat, h, &d, b)),
        (Some(d), None) => Some(b.mining_input(&d)?),
    };
    Ok((mat, input, miner_input))
}

/// The loss's distance matrix and its host copy ([`loss_and_miner_inputs`]), and the
/// miner's tuples.
fn mine_on_loss_matrix(distance: &Distance, miner: &MinerConfig, b: &Labelled<'_>, rng: &mut dyn RngCore) -> Result<(DistanceOperands, MiningInput, crate::Mined)> {
    let (mat, input, miner_input) = loss_and_miner_inputs(distance, miner.distance(), b)?;
    let mined = miner.mine_input(miner_input.as_ref().unwrap_or(&input), rng)?;
    Ok((mat, input, mined))
}

/// Positions of `list` grouped by anchor, stably (a counting sort): the pairs of
/// anchor `a` are `list[order[start[a]..start[a + 1]]]`, in list order (`order` is
/// `None` when the list is already grouped: positions `start[a]..start[a + 1]`).
fn bucket_by_anchor(list: &[(usize, usize)], rows: usize) -> (Vec<usize>, Option<Vec<usize>>) {
    let mut start = vec![0usize; rows + 1];
    for &(a, _) in list {
        start[a + 1] += 1;
    }
    for a in 0..rows {
        start[a + 1] += start[a];
    }
    // Miners list pairs anchor by anchor: then the order is the list's own.
    if list.windows(2).all(|w| w[0].0 <= w[1].0) {
        return (start, None);
    }
    let mut next = start.clone();
    let mut order = vec![0usize; list.len()];
    for (k, &(a, _)) in list.iter().enumerate() {
        order[next[a]] = k;
        next[a] += 1;
    }
    (start, Some(order))
}

fn output(plan: FusedPlan, value: f64, ops: &DistanceOperands, input: &MiningInput, zero: Zero, stats: LossStats) -> LossOutput {
    use rayon::prelude::*;
    // (The scan over the weights only runs when the value is 0: usually it is not.)
    let no_weights = || plan.nonzeros_at_most == Some(0) || plan.weights.par_iter().all(|&w| w == 0.0);
    if stats.num_tuples == 0 || value == 0.0 && no_weights() {
        return LossOutput::new(zero.get(), LossStats { loss: 0.0, ..stats });
    }
    let loss = ops.weighted_sum_loss(plan, input, value);
    LossOutput::new(loss, LossStats { loss: value, ..stats })
}

fn sign(dir: Direction) -> f64 {
    match dir {
        Direction::SmallerIsCloser => 1.0,
        Direction::LargerIsCloser => -1.0,
    }
}

impl TripletMarginLoss {
    /// Triplet loss on explicit triplets through one weight matrix (no swap:
    /// the caller falls back to the gathering path for it).
    fn weighted_triplets(&self, input: &MiningInput, t: &Triplets) -> (FusedPlan, f64, LossStats) {
        let m = input.cols();
        let mut w = vec![0.0; input.rows() * m];
        let mut terms = Vec::with_capacity(t.len());
        let mut derivs = Vec::with_capacity(t.len());
        let (mut sum_ap, mut sum_an, mut active) = (0.0, 0.0, 0usize);
        for (a, p, n) in t.iter() {
            let (uap, uan) = (input.u(a, p), input.u(a, n));
            sum_ap += uap;
            sum_an += uan;
            let v = (uap - uan) + self.margin;
            active += (v > 0.0) as usize;
            if self.smooth {
                terms.push(v.max(0.0) + (-v.abs()).exp().ln_1p());
                derivs.push(if v >= 0.0 { 1.0 / (1.0 + (-v).exp()) } else { v.exp() / (1.0 + v.exp()) });
            } else {
                terms.push(v.max(0.0));
                derivs.push(if v > 0.0 { 1.0 } else { 0.0 });
            }
        }
        let (kept, scale) = reducer_scale(&self.reducer, &terms);
        let s = sign(input.direction()) * scale;
        let mut value = 0.0;
        for (i, (a, p, n)) in t.iter().enumerate() {
            if kept[i] {
                value += terms[i];
                w[a * m + p] += s * derivs[i];
                w[a * m + n] -= s * derivs[i];
            }
        }
        value *= scale;
        let k = t.len();
        let stats = LossStats {
            loss: value,
            num_tuples: k,
            num_active: active,
            active_fraction: if k == 0 { 0.0 } else { active as f64 / k as f64 },
            mean_ap_dist: (k > 0).then(|| input.to_raw(sum_ap / k as f64)),
            mean_an_dist: (k > 0).then(|| input.to_raw(sum_an / k as f64)),
        };
        // Each triplet touches two entries of its anchor's row.
        let plan = FusedPlan::of_weights(w, value, Some(2 * k), k, active);
        (plan, value, stats)
    }

    /// A miner, then this loss on its triplets (pairs are combined per anchor,
    /// as PML does), the batch's self map honoured. When the miner uses this loss's
    /// distance, one distance matrix serves both; the loss goes through one weight
    /// matrix on it (with `swap`: gathered). The mined tuples come back in `mined`.
    pub(crate) fn forward_mined(&self, b: Labelled<'_>, miner: &MinerConfig, rng: &mut dyn RngCore) -> Result<LossOutput> {
        miner.validate()?;
        let zero = b.check()?;
        if self.swap {
            let mined = miner.mine_input(&b.mining_input(&miner.distance())?, rng)?;
            let t = mined.clone().into_triplets();
            let out = self.forward_impl(b.embeddings, b.labels, b.reference, &t)?;
            return Ok(LossOutput { mined: Some(mined), ..out });
        }
        let (mat, input, mined) = mine_on_loss_matrix(&self.distance, miner, &b, rng)?;
        let t = mined.clone().into_triplets();
        let (plan, value, stats) = self.weighted_triplets(&input, &t);
        Ok(LossOutput { mined: Some(mined), ..output(plan, value, &mat, &input, zero, stats) })
    }
}

impl ContrastiveLoss {
    /// Per-pair term and its derivative w.r.t. the raw distance.
    #[inline]
    fn term(&self, dir: Direction, raw: f64, similar: bool) -> (f64, f64) {
        // The gathering path's expressions: violation_over(d, pos) / violation_under(neg, d).
        let (h, dh) = match (dir, similar) {
            (Direction::SmallerIsCloser, true) => (raw - self.pos_margin, 1.0),
            (Direction::LargerIsCloser, true) => (-raw + self.pos_margin, -1.0),
            (Direction::SmallerIsCloser, false) => (-raw + self.neg_margin, -1.0),
            (Direction::LargerIsCloser, false) => (raw - self.neg_margin, 1.0),
        };
        if h <= 0.0 {
            return (0.0, 0.0);
        }
        match self.form {
            ContrastiveForm::Linear => (h, dh),
            ContrastiveForm::Squared => (h * h, 2.0 * h * dh),
        }
    }

    /// Contrastive loss on `pairs` (or, when `None`, every pair of the batch but a row
    /// with its own — never listed) through one weight matrix on the distance matrix.
    /// Same value, gradient and stats as the gathering path, in O(B·m) memory whatever
    /// the number of pairs.
    pub(crate) fn forward_fused(&self, b: Labelled<'_>, pairs: Option<&Pairs>) -> Result<LossOutput> {
        let zero = b.check()?;
        if let Some(p) = pairs {
            p.check(b.labels.len(), b.ref_labels().len())?;
        }
        let reference = b.reference.as_ref().map(|r| r.embeddings.clone());
        Ok(crate::pool::on_pool(&b.embeddings.clone(), reference.as_ref(), || {
            let (mat, host) = DistanceOperands::new(self.distance, b.embeddings.clone(), reference.clone());
            let input = host_input(&mat, host, &self.distance, &b);
            let (plan, value, stats) = match pairs {
                Some(p) => self.weighted_pairs(&input, p),
                None => self.weighted_all_pairs(&input),
            };
            output(plan, value, &mat, &input, zero, stats)
        }))
    }

    /// The weight matrix of the contrastive loss over given pairs: counts for the
    /// reducer in parallel over the lists, then `W` in parallel over anchors (each
    /// anchor's pairs in list order, similar before dissimilar, as a sequential
    /// pass would add them).
    fn weighted_pairs(&self, input: &MiningInput, pairs: &Pairs) -> (FusedPlan, f64, LossStats) {
        use rayon::prelude::*;
        let dir = input.direction();
        let (n, m) = (input.rows(), input.cols());
        // Pass 1: counts for the reducer (per group, or pooled).
        let group = |list: &[(usize, usize)], similar: bool| {
            let add = |x: (usize, usize, usize, f64), y: (usize, usize, usize, f64)| (x.0 + y.0, x.1 + y.1, x.2 + y.2, x.3 + y.3);
            // Fixed chunks summed in list order: the same bits on every run, whatever the
            // thread count or stealing.
            list.par_chunks(4096)
                .map(|chunk| {
                    chunk
                        .iter()
                        .map(|&(a, j)| {
                            let raw = input.raw(a, j);
                            let (t, _) = self.term(dir, raw, similar);
                            (1usize, self.reducer.keeps(t) as usize, (t > 0.0) as usize, raw)
                        })
                        .fold((0, 0, 0, 0.0), add)
                })
                .collect::<Vec<_>>()
                .into_iter()
                .fold((0, 0, 0, 0.0), add)
        };
        let (np, kp, ap, sp) = group(&pairs.similar, true);
        let (nn, kn, an, sn) = group(&pairs.dissimilar, false);
        let scale_of = |kept: usize| self.reducer.scale(kept);
        let (scale_p, scale_n) = match self.pooling {
            KindPooling::Separate => (scale_of(kp), scale_of(kn)),
            KindPooling::Pooled => (scale_of(kp + kn), scale_of(kp + kn)),
        };
        // Pass 2: each anchor's row of W from its pairs (bucketed by anchor, list order kept).
        let (sim_start, sim_order) = bucket_by_anchor(&pairs.similar, n);
        let (dis_start, dis_order) = bucket_by_anchor(&pairs.dissimilar, n);
        let mut w = vec![0.0; n * m];
        let value = w
            .par_chunks_mut(m.max(1))
            .enumerate()
            .map(|(a, row)| {
                let mut value = 0.0;
                for (start, order, list, similar, scale) in [
                    (&sim_start, &sim_order, &pairs.similar, true, scale_p),
                    (&dis_start, &dis_order, &pairs.dissimilar, false, scale_n),
                ] {
                    for pos in start[a]..start[a + 1] {
                        let j = list[order.as_ref().map_or(pos, |o| o[pos])].1;
                        let raw = input.raw(a, j);
                        let (t, dt) = self.term(dir, raw, similar);
                        if self.reducer.keeps(t) {
                            value += scale * t;
                            row[j] += scale * dt;
                        }
                    }
                }
                value
            })
            // Collected in row order and summed in that order: the same bits on every run.
            .collect::<Vec<f64>>()
            .into_iter()
            .sum();
        let k = np + nn;
        let active = ap + an;
        let stats = LossStats {
            loss: value,
            num_tuples: k,
            num_active: active,
            active_fraction: if k == 0 { 0.0 } else { active as f64 / k as f64 },
            mean_ap_dist: (np > 0).then(|| sp / np as f64),
            mean_an_dist: (nn > 0).then(|| sn / nn as f64),
        };
        let plan = FusedPlan::of_weights(w, value, Some(k), k, active);
        (plan, value, stats)
    }

    /// [`MultiSimilarityMiner`] followed by this loss, fused: the same value, gradient
    /// and stats as [`ContrastiveLoss::forward_mined`] with that miner, but the mined
    /// pairs (often most of the B² pairs) are never listed — per anchor the miner's two
    /// thresholds are computed on its own matrix (read from this loss's GEMM when both
    /// distances prepare rows alike), and the loss is planned over the pairs they keep.
    pub(crate) fn forward_with_multi_similarity(&self, b: Labelled<'_>, miner: &MultiSimilarityMiner) -> Result<LossOutput> {
        miner.validate()?;
        let zero = b.check()?;
        crate::pool::on_pool(&b.embeddings, b.reference.as_ref().map(|r| &r.embeddings), || {
            let (mat, input, mined_on) = loss_and_miner_inputs(&self.distance, miner.distance, &b)?;
            let pairs = MultiSimilarityPairs::new(mined_on.as_ref().unwrap_or(&input), miner.epsilon);
            let (plan, value, stats) = self.weighted_filtered_pairs(&input, &pairs);
            Ok(output(plan, value, &mat, &input, zero, stats))
        })
    }

    /// A miner, then this loss on its pairs (triplets are split into pairs, as
    /// PML does), the batch's self map honoured. When the miner uses this loss's
    /// distance, one distance matrix serves both; the loss goes through one weight
    /// matrix on it. The mined tuples come back in `mined`.
    pub(crate) fn forward_mined(&self, b: Labelled<'_>, miner: &MinerConfig, rng: &mut dyn RngCore) -> Result<LossOutput> {
        miner.validate()?;
        let zero = b.check()?;
        let (mat, input, mined) = mine_on_loss_matrix(&self.distance, miner, &b, rng)?;
        let (plan, value, stats) = self.weighted_pairs(&input, &mined.pairs());
        Ok(LossOutput { mined: Some(mined), ..output(plan, value, &mat, &input, zero, stats) })
    }
}

#[cfg(test)]
mod tests {
    use super::bucket_by_anchor;

    #[test]
    fn bucket_by_anchor_keeps_list_order_within_each_anchor() {
        // Unordered: a counting sort, stable.
        let list = [(2, 0), (0, 5), (2, 1), (1, 3), (0, 4)];
        let (start, order) = bucket_by_anchor(&list, 3);
        assert_eq!(start, vec![0, 2, 3, 5]);
        assert_eq!(order, Some(vec![1, 4, 3, 0, 2]));
        // Already grouped by anchor: no permutation.
        let grouped = [(0, 5), (0, 4), (1, 3), (2, 0), (2, 1)];
        let (start, order) = bucket_by_anchor(&grouped, 4);
        assert_eq!(start, vec![0, 2, 3, 5, 5]);
        assert_eq!(order, None);
    }
}
