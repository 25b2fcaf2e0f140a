//! The all-pairs contrastive loss planned without listing a pair.
//!
//! Every pair `(a, j)` of the distance matrix but a sample with itself is a
//! term: `[d − m_pos]₊` (or its square) for same-label pairs, `[m_neg − d]₊`
//! for the others (distances; mirrored for similarities). Two passes over the
//! matrix, parallel over anchors: the first counts what the reducer averages
//! over (per kind, or pooled), the second writes `W = ∂L/∂D` and the value.
//! The inner loops are specialised at compile time on the contrastive form and
//! the reducer (const generics), and work in "distance convention" `u`
//! (`u = −s` for similarities) so the direction is a sign, not a branch:
//! `h_similar = u − σ·m_pos`, `h_dissimilar = σ·m_neg − u`, `∂h/∂raw = ±σ` with
//! `σ = +1` for distances, `−1` for similarities — the same floating-point
//! expressions as [`ContrastiveLoss::term`](super::contrastive) on `raw = σ·u`.

use rayon::prelude::*;

use super::LossStats;
use super::batch_all::FusedPlan;
use crate::miner::MiningInput;
use crate::{ContrastiveForm, ContrastiveLoss, Direction, KindPooling, Reducer};

/// Which terms a reducer averages over.
const KEEP_ALL: u8 = 0;
const KEEP_NONZERO: u8 = 1;
const KEEP_THRESHOLD: u8 = 2;

/// Per kind (similar, dissimilar): pairs, kept by the reducer, active (`h > 0`), Σ u.
#[derive(Default, Clone, Copy)]
struct Group {
    pairs: usize,
    kept: usize,
    active: usize,
    sum_u: f64,
}

fn add(x: [Group; 2], y: [Group; 2]) -> [Group; 2] {
    [0, 1].map(|k| Group {
        pairs: x[k].pairs + y[k].pairs,
        kept: x[k].kept + y[k].kept,
        active: x[k].active + y[k].active,
        sum_u: x[k].sum_u + y[k].sum_u,
    })
}

/// The loss's parameters in distance convention.
#[derive(Clone, Copy)]
struct Params {
    /// `σ`: +1 for distances, −1 for similarities.
    sign: f64,
    /// `σ·m_pos`, `σ·m_neg`.
    pos_u: f64,
    neg_u: f64,
    low: Option<f64>,
    high: Option<f64>,
}

/// The term and its derivative w.r.t. the raw value, for `h` (0 when `h ≤ 0`).
#[inline(always)]
fn term<const SQUARED: bool>(h: f64, dh: f64) -> (f64, f64) {
    if h <= 0.0 {
        (0.0, 0.0)
    } else if SQUARED {
        (h * h, 2.0 * h * dh)
    } else {
        (h, dh)
    }
}

/// [`Reducer::keeps`] with the reducer's variant known at compile time.
#[inline(always)]
fn keeps<const KEEP: u8>(t: f64, p: &Params) -> bool {
    match KEEP {
        KEEP_ALL => Reducer::Mean.keeps(t),
        KEEP_NONZERO => Reducer::AvgNonZero.keeps(t),
        _ => Reducer::Threshold { low: p.low, high: p.high }.keeps(t),
    }
}

/// `h` and `∂h/∂raw` of pair `(a, j)` with value `u`.
#[inline(always)]
fn hinge(u: f64, similar: bool, p: &Params) -> (f64, f64) {
    if similar { (u - p.pos_u, p.sign) } else { (p.neg_u - u, -p.sign) }
}

/// Pass 1: counts per kind, over the pairs `pairs` keeps.
fn count<const SQUARED: bool, const KEEP: u8>(input: &MiningInput, p: Params, pairs: &(impl PairFilter + ?Sized)) -> [Group; 2] {
    let (labels, ref_labels) = (input.labels(), input.ref_labels());
    // Per row, collected in row order and summed in that order: the same bits on every
    // run, whatever the thread count or stealing.
    let rows: Vec<[Group; 2]> = (0..input.rows())
        .into_par_iter()
        .map(|a| {
            let mut g = [Group::default(); 2];
            {
                let (ya, skip) = (labels[a], input.self_index(a));
                for (j, (&u, &yj)) in input.u_row(a).iter().zip(ref_labels).enumerate() {
                    let similar = ya == yj;
                    if Some(j) == skip || !pairs.keeps(a, j, similar) {
                        continue;
                    }
                    let (h, dh) = hinge(u, similar, &p);
                    let (t, _) = term::<SQUARED>(h, dh);
                    let k = &mut g[usize::from(!similar)];
                    k.pairs += 1;
                    k.sum_u += u;
                    k.active += (h > 0.0) as usize;
                    k.kept += keeps::<KEEP>(t, &p) as usize;
                }
            }
            g
        })
        .collect();
    rows.into_iter().fold([Group::default(); 2], add)
}

/// Pass 2: `W` (raw units), the value and the number of nonzero weights, over the
/// pairs `pairs` keeps.
fn weights<const SQUARED: bool, const KEEP: u8>(input: &MiningInput, p: Params, scale: [f64; 2], pairs: &(impl PairFilter + ?Sized)) -> (Vec<f64>, f64, usize) {
    let (labels, ref_labels) = (input.labels(), input.ref_labels());
    let m = input.cols();
    let n = input.rows();
    if m == 0 {
        return (Vec::new(), 0.0, 0);
    }
    let (mut value, mut nonzero) = (0.0, 0);
    debug_assert_eq!(ref_labels.len(), m, "one reference label per column");
    // SAFETY: every entry is written (0 where no term): each of the `n` rows of `m`
    // entries zips with `u_row(a)` and `ref_labels`, both `m` long (debug builds: the
    // labels checked above, and `build` checks that every entry was written).
    let w = unsafe {
        margin_linalg::buffer::build(n * m, |w| {
            (value, nonzero) = w
                .par_chunks_mut(m)
                .enumerate()
                .map(|(a, row)| {
                    let (ya, skip) = (labels[a], input.self_index(a));
                    let (mut value, mut nonzero) = (0.0, 0usize);
                    for (j, ((wj, &u), &yj)) in row.iter_mut().zip(input.u_row(a)).zip(ref_labels).enumerate() {
                        let similar = ya == yj;
                        let mut weight = 0.0;
                        if Some(j) != skip && pairs.keeps(a, j, similar) {
                            let (h, dh) = hinge(u, similar, &p);
                            let (t, dt) = term::<SQUARED>(h, dh);
                            if (t != 0.0 || dt != 0.0) && keeps::<KEEP>(t, &p) {
                                let s = scale[usize::from(!similar)];
                                value += s * t;
                                weight = s * dt;
                            }
                        }
                        nonzero += usize::from(weight != 0.0);
                        wj.write(weight);
                    }
                    (value, nonzero)
                })
                .collect::<Vec<_>>()
                .into_iter()
                .fold((0.0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
        })
    };
    (w, value, nonzero)
}

fn plan<const SQUARED: bool, const KEEP: u8>(loss: &ContrastiveLoss, input: &MiningInput, p: Params, pairs: &(impl PairFilter + ?Sized)) -> (FusedPlan, f64, LossStats) {
    let [sim, dis] = count::<SQUARED, KEEP>(input, p, pairs);
    let scale_of = |kept: usize| loss.reducer.scale(kept);
    let scale = match loss.pooling {
        KindPooling::Separate => [scale_of(sim.kept), scale_of(dis.kept)],
        KindPooling::Pooled => [scale_of(sim.kept + dis.kept); 2],
    };
    // Late in training (or with a small negative margin) few pairs are active: the
    // count lets such a plan take the sparse backward.
    let (w, value, nonzero) = weights::<SQUARED, KEEP>(input, p, scale, pairs);
    let k = sim.pairs + dis.pairs;
    let active = sim.active + dis.active;
    let stats = LossStats {
        loss: value,
        num_tuples: k,
        num_active: active,
        active_fraction: if k == 0 { 0.0 } else { active as f64 / k as f64 },
        mean_ap_dist: (sim.pairs > 0).then(|| p.sign * sim.sum_u / sim.pairs as f64),
        mean_an_dist: (dis.pairs > 0).then(|| p.sign * dis.sum_u / dis.pairs as f64),
    };
    let plan = FusedPlan::of_weights(w, value, Some(nonzero), k, active);
    (plan, value, stats)
}

/// Which pairs `(a, j)` (never a sample with itself) enter the loss.
pub(super) trait PairFilter: Sync {
    fn keeps(&self, a: usize, j: usize, similar: bool) -> bool;
}

/// Every pair.
pub(super) struct AllPairs;

impl PairFilter for AllPairs {
    #[inline(always)]
    fn keeps(&self, _: usize, _: usize, _: bool) -> bool {
        true
    }
}

/// The pairs a [`MultiSimilarityMiner`](crate::MultiSimilarityMiner) keeps, from its own
/// matrix `mined_on` (distance convention): positive `p` when `u_ap + ε > min_n u_an`,
/// negative `n` when `u_an − ε < max_p u_ap`, for anchors with both — the miner's
/// expressions, so the kept set is the miner's exactly.
pub(super) struct MultiSimilarityPairs<'a> {
    mined_on: &'a MiningInput,
    epsilon: f64,
    /// Per anchor: `(min_n u_an, max_p u_ap)`, `None` without a positive or a negative.
    bounds: Vec<Option<(f64, f64)>>,
}

impl<'a> MultiSimilarityPairs<'a> {
    pub(super) fn new(mined_on: &'a MiningInput, epsilon: f64) -> Self {
        let bounds = (0..mined_on.rows()).into_par_iter().map(|a| crate::miner::multi_similarity_bounds(mined_on, a)).collect();
        MultiSimilarityPairs { mined_on, epsilon, bounds }
    }
}

impl PairFilter for MultiSimilarityPairs<'_> {
    #[inline(always)]
    fn keeps(&self, a: usize, j: usize, similar: bool) -> bool {
        match self.bounds[a] {
            None => false,
            Some((closest_neg, farthest_pos)) => {
                let u = self.mined_on.u(a, j);
                if similar { u + self.epsilon > closest_neg } else { u - self.epsilon < farthest_pos }
            }
        }
    }
}

impl ContrastiveLoss {
    /// The weight matrix of the contrastive loss over every pair `(a, j)` of
    /// `input` but a sample with itself (see the module docs).
    pub(super) fn weighted_all_pairs(&self, input: &MiningInput) -> (FusedPlan, f64, LossStats) {
        self.weighted_filtered_pairs(input, &AllPairs)
    }

    /// [`ContrastiveLoss::weighted_all_pairs`] over the pairs `pairs` keeps.
    pub(super) fn weighted_filtered_pairs(&self, input: &MiningInput, pairs: &(impl PairFilter + ?Sized)) -> (FusedPlan, f64, LossStats) {
        let sign = match input.direction() {
            Direction::SmallerIsCloser => 1.0,
            Direction::LargerIsCloser => -1.0,
        };
        let (low, high) = match self.reducer {
            Reducer::Threshold { low, high } => (low, high),
            _ => (None, None),
        };
        let p = Params { sign, pos_u: sign * self.pos_margin, neg_u: sign * self.neg_margin, low, high };
        let squared = self.form == ContrastiveForm::Squared;
        match (squared, self.reducer) {
            (false, Reducer::Mean | Reducer::Sum) => plan::<false, KEEP_ALL>(self, input, p, pairs),
            (false, Reducer::AvgNonZero) => plan::<false, KEEP_NONZERO>(self, input, p, pairs),
            (false, Reducer::Threshold { .. }) => plan::<false, KEEP_THRESHOLD>(self, input, p, pairs),
            (true, Reducer::Mean | Reducer::Sum) => plan::<true, KEEP_ALL>(self, input, p, pairs),
            (true, Reducer::AvgNonZero) => plan::<true, KEEP_NONZERO>(self, input, p, pairs),
            (true, Reducer::Threshold { .. }) => plan::<true, KEEP_THRESHOLD>(self, input, p, pairs),
        }
    }
}
