//! Batch-all triplet loss in O(B²) memory: every valid triplet, never listed.
//!
//! With the hinge, once it is known which triplets are active, the loss is
//! *linear* in the distance matrix `D`:
//!
//! ```text
//! L = s · Σ_{(a,p,n) active} (d_ap − d_an + m) = Σ_ij W_ij · D_ij + s·m·#active
//! ```
//!
//! where `W_ap = s · #{n : (a,p,n) active}`, `W_an = −s · #{p : (a,p,n) active}`
//! and `s` is the reducer's scale (`1/#triplets` for Mean, `1/#active` for
//! AvgNonZero, 1 for Sum). So the whole backward is one constant `B × B` weight
//! matrix: `L = sum(W ⊙ D) + const` has exactly the loss's value and gradient,
//! and `weighted_grad` writes that gradient out (one GEMM) instead of
//! differentiating `D` through autodiff.
//!
//! `W` is computed per anchor on the host: negatives sorted by distance, prefix
//! sums of their distances, and for each positive a binary search for the
//! active set (the negatives with `d_an < d_ap + m` form a prefix) — O(B² log B)
//! time, O(B²) memory. A [`TripletMarginMiner`](crate::TripletMarginMiner)'s
//! kept set is likewise an interval of the sorted negatives (a band of `d_an`
//! around `d_ap`), so miner + loss fuse the same way. When an anchor has few
//! positives (`|P| ≤ 2·log₂|N|`, the usual P×K batch) enumerating its
//! `|P|·|N|` triplets directly is cheaper than sorting, and gives the same sets:
//! every decision is the very floating-point expression of the explicit path,
//! monotone in `d_an`, so both agree on boundaries too.
//!
//! The soft margin (softplus) is not piecewise linear; its `W` (`σ(v)` per
//! triplet, summed) is accumulated streaming over anchors, each anchor's
//! `|P|·|N|` triplets in turn, so memory stays O(B²) as well.
//!
//! All of this works in "distance convention" `u` (`u = −s` for similarities),
//! see [`MiningInput`].


use std::collections::HashMap;

use crate::miner::{MiningInput, TripletType};
use crate::Reducer;

/// Which triplets are kept before the loss: all valid ones, or a
/// [`TripletMarginMiner`](crate::TripletMarginMiner)'s band.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Band {
    /// Every valid triplet.
    All,
    /// Triplets with `t = u_an − u_ap` kept by `kind` under the miner margin `margin`.
    Miner { kind: TripletType, margin: f64 },
}

impl Band {
    /// Lower end of the band holds (monotone: false, then true, as `u_an` grows).
    #[inline]
    fn lower_ok(self, t: f64) -> bool {
        match self {
            Band::All => true,
            Band::Miner { kind, margin } => match kind {
                TripletType::All | TripletType::Hard => true,
                TripletType::Semihard => t > 0.0,
                TripletType::Easy => t > margin,
            },
        }
    }

    /// Upper end of the band holds (monotone: true, then false, as `u_an` grows).
    #[inline]
    fn upper_ok(self, t: f64) -> bool {
        match self {
            Band::All => true,
            Band::Miner { kind, margin } => match kind {
                TripletType::All | TripletType::Semihard => t <= margin,
                TripletType::Hard => t <= margin && t <= 0.0,
                TripletType::Easy => true,
            },
        }
    }

    #[inline]
    fn keeps(self, t: f64) -> bool {
        match self {
            Band::All => true,
            Band::Miner { kind, margin } => kind.keeps(t, margin),
        }
    }
}

/// The result of planning: the weights and the counts.
#[derive(Debug, Clone)]
pub(crate) struct FusedPlan {
    /// `n × m`, row-major: `∂L/∂D = scale · weights`, in the distance's own units.
    pub weights: Vec<f64>,
    /// The factor every weight still takes (the batch-all reducer's scale and the
    /// direction's sign), applied inside the backward's own pass over the matrix
    /// instead of a pass of its own.
    pub scale: f64,
    /// The loss `L` (reduced), summed per term as planned.
    pub value: f64,
    /// `scale · weights` is `∂L/∂D²` rather than `∂L/∂D`: the Euclidean √'s chain rule
    /// (`1/(2D)`, 0 at `D = 0`) was applied by the planner while each row was in cache.
    pub per_squared_distance: bool,
    /// An upper bound on the nonzero entries of `weights`, when the plan knows one
    /// (mined tuples); lets a sparse plan take the sparse backward.
    pub nonzeros_at_most: Option<usize>,
    /// Kept triplets (the loss's tuples).
    pub num_tuples: usize,
    /// Kept triplets with hinge argument `v > 0`.
    pub num_active: usize,
    /// Mean `d_ap`, `d_an` over kept triplets (own units).
    pub mean_ap: Option<f64>,
    pub mean_an: Option<f64>,
}

impl FusedPlan {
    /// A plan whose `weights` are `∂L/∂D` as they stand (scale 1, no chain rule applied),
    /// with no means of its own (the caller's stats carry them).
    pub(crate) fn of_weights(weights: Vec<f64>, value: f64, nonzeros_at_most: Option<usize>, num_tuples: usize, num_active: usize) -> Self {
        FusedPlan { weights, scale: 1.0, per_squared_distance: false, value, nonzeros_at_most, num_tuples, num_active, mean_ap: None, mean_an: None }
    }
}

/// Per-anchor partial results (unscaled).
#[derive(Debug, Clone, Copy, Default)]
struct Partial {
    kept: usize,
    active: usize,
    /// Number of terms `> 0` (the AvgNonZero denominator; = `active` for the hinge).
    nonzero: usize,
    /// Σ of the kept terms (hinge: Σ over active of `v`): the unscaled loss.
    sum_terms: f64,
    sum_ap: f64,
    sum_an: f64,
}

impl std::ops::Add for Partial {
    type Output = Partial;
    fn add(self, o: Partial) -> Partial {
        Partial {
            kept: self.kept + o.kept,
            active: self.active + o.active,
            nonzero: self.nonzero + o.nonzero,
            sum_terms: self.sum_terms + o.sum_terms,
            sum_ap: self.sum_ap + o.sum_ap,
            sum_an: self.sum_an + o.sum_an,
        }
    }
}

/// Per-thread scratch of the row planners (reused across rows: no allocation per row).
#[derive(Default)]
struct Scratch {
    positives: Vec<usize>,
    negative: Vec<f64>,
}

/// A `rows × row_len` matrix whose rows `f(row_index, row, scratch)` fills in parallel
/// (each row zeroed first, while it is in cache: no separate pass over the matrix), then
/// takes through the √'s chain rule when `chain_rule` holds the distances; the per-row
/// results summed.
fn par_rows(rows: usize, row_len: usize, chain_rule: Option<&MiningInput>, f: impl Fn(usize, &mut [f64], &mut Scratch) -> Partial + Sync) -> (Vec<f64>, Partial) {
    use rayon::prelude::*;
    if row_len == 0 {
        return (Vec::new(), Partial::default());
    }
    let mut total = Partial::default();
    let fill = |w: &mut [core::mem::MaybeUninit<f64>]| {
        // Collected in row order and summed in that order: the same bits on every run,
        // whatever the thread count or stealing.
        let parts: Vec<Partial> = w
            .par_chunks_mut(row_len)
            .enumerate()
            .with_min_len(8)
            .map_init(Scratch::default, |scratch, (a, r)| {
                // The row zeroed, and from here on an initialised `&mut [f64]`.
                let r = margin_linalg::buffer::init_fill(r, 0.0);
                let part = f(a, r, scratch);
                if let Some(input) = chain_rule {
                    // The Euclidean distance's `u` is the distance itself.
                    super::weighted_grad::through_sqrt_row(r, input.u_row(a), 1.0);
                }
                part
            })
            .collect();
        total = parts.into_iter().fold(Partial::default(), |x, y| x + y);
    };
    // SAFETY: every entry is written: each row is zeroed (`init_fill`) before `f` sees it,
    // and the rows of `row_len` cover all `rows · row_len` entries (debug builds: checked
    // by `build`).
    let w = unsafe { margin_linalg::buffer::build(rows * row_len, fill) };
    (w, total)
}

/// Hinge argument `v = (u_ap − u_an) + m`, the explicit path's expression bit for bit.
#[inline]
fn hinge_arg(u_ap: f64, u_an: f64, margin: f64) -> f64 {
    (u_ap - u_an) + margin
}

/// Plans the hinge loss over every kept triplet: the weight matrix, counts and stats.
///
/// `force_sort` = `Some(true|false)` forces the sorted / enumerating kernel (tests).
///
/// `euclidean`: the distance is [`Power::Euclidean`](crate::Power), so the planner
/// applies the √'s chain rule to each row (see [`FusedPlan::per_squared_distance`]).
pub(crate) fn hinge_plan(input: &MiningInput, margin: f64, band: Band, reduce: Reducer, force_sort: Option<bool>, euclidean: bool) -> FusedPlan {
    let m = input.cols();
    let chain_rule = euclidean.then_some(input);
    let mut members: HashMap<i64, Vec<usize>> = HashMap::new();
    for (j, &y) in input.ref_labels().iter().enumerate() {
        members.entry(y).or_default().push(j);
    }
    let args = HingeRow { input, members: &members, margin, band, force_sort };
    let (w, total) = par_rows(input.rows(), m, chain_rule, |a, row_w, scratch| hinge_row(&args, a, row_w, scratch));
    finish(input, w, total, reduce, euclidean)
}

/// What every anchor's row of [`hinge_plan`] reads.
struct HingeRow<'a> {
    input: &'a MiningInput,
    /// The reference rows of each label (ascending).
    members: &'a HashMap<i64, Vec<usize>>,
    margin: f64,
    band: Band,
    force_sort: Option<bool>,
}

margin_linalg::avx2_dispatch! {
    /// Plans anchor `a`'s row of the hinge loss into `row_w` (zero on entry).
    fn hinge_row(args: &HingeRow<'_>, a: usize, row_w: &mut [f64], scratch: &mut Scratch) -> Partial = hinge_row_impl
}

#[inline(always)]
fn hinge_row_impl(args: &HingeRow<'_>, a: usize, row_w: &mut [f64], scratch: &mut Scratch) -> Partial {
    let HingeRow { input, margin, band, force_sort, .. } = *args;
    let row = input.u_row(a);
    let (labels, ref_labels) = (input.labels(), input.ref_labels());
    let anchor_label = labels[a];
    let same = args.members.get(&anchor_label).map_or(&[][..], |v| &v[..]);
    let skip = input.self_index(a);
    let Scratch { positives: pos, negative } = scratch;
    pos.clear();
    pos.extend(same.iter().copied().filter(|&j| Some(j) != skip));
    let num_neg = ref_labels.len() - same.len();
    if pos.is_empty() || num_neg == 0 {
        return Partial::default();
    }
    let log2 = (usize::BITS - num_neg.leading_zeros()) as usize;
    let sort = force_sort.unwrap_or(pos.len() > 2 * log2);
    let mut part = Partial::default();
    if !sort {
        // The negatives as a 0/1 mask: the sweeps stay branch-free.
        negative.clear();
        negative.extend(ref_labels.iter().map(|&y| if y != anchor_label { 1.0 } else { 0.0 }));
        let args = Direct { row, negative, margin };
        match band {
            Band::All => direct(&args, &pos, row_w, &mut part, |_| true),
            Band::Miner { kind, margin: band_margin } => match kind {
                TripletType::All => direct(&args, &pos, row_w, &mut part, |t| TripletType::All.keeps(t, band_margin)),
                TripletType::Hard => direct(&args, &pos, row_w, &mut part, |t| TripletType::Hard.keeps(t, band_margin)),
                TripletType::Semihard => direct(&args, &pos, row_w, &mut part, |t| TripletType::Semihard.keeps(t, band_margin)),
                TripletType::Easy => direct(&args, &pos, row_w, &mut part, |t| TripletType::Easy.keeps(t, band_margin)),
            },
        }
    } else {
        let mut sorted: Vec<(f64, usize)> = input.negatives(a).map(|n| (row[n], n)).collect();
        sorted.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));
        let mut prefix = Vec::with_capacity(sorted.len() + 1);
        prefix.push(0.0);
        let mut acc = 0.0;
        for &(u, _) in &sorted {
            acc += u;
            prefix.push(acc);
        }
        // diff[i] += 1 at the start of an active interval, −1 past its end.
        let mut diff = vec![0i64; sorted.len() + 1];
        for &p in pos.iter() {
            let uap = row[p];
            let lo = sorted.partition_point(|&(u, _)| !band.lower_ok(u - uap));
            let hi = sorted.partition_point(|&(u, _)| band.upper_ok(u - uap)).max(lo);
            let act = sorted.partition_point(|&(u, _)| hinge_arg(uap, u, margin) > 0.0);
            let end = act.min(hi).max(lo);
            let (kept, active) = (hi - lo, end - lo);
            part.kept += kept;
            part.active += active;
            part.sum_ap += kept as f64 * uap;
            part.sum_an += prefix[hi] - prefix[lo];
            part.sum_terms += active as f64 * (uap + margin) - (prefix[end] - prefix[lo]);
            row_w[p] += active as f64;
            diff[lo] += 1;
            diff[end] -= 1;
        }
        let mut running = 0i64;
        for (i, &(_, n)) in sorted.iter().enumerate() {
            running += diff[i];
            row_w[n] -= running as f64;
        }
    }
    part.nonzero = part.active;
    part
}

/// One anchor's row for [`direct`].
struct Direct<'a> {
    row: &'a [f64],
    /// 1 where the reference row is a negative of the anchor, else 0.
    negative: &'a [f64],
    margin: f64,
}

/// Lanes of the sweeps' accumulators (one AVX-512 register, two AVX2 ones of `f64`).
const LANES: usize = 8;

/// Enumerates an anchor's `|P| · |N|` triplets: for each positive, one branch-free
/// sweep over the whole row with the negatives as a 0/1 mask (an unpredictable
/// "active?" costs no misprediction). Every decision (kept, active) is the explicit
/// path's floating-point expression; counts are exact, and the sums of distances are
/// accumulated in [`LANES`] interleaved partial sums (so they vectorise).
#[inline(always)]
fn direct(args: &Direct<'_>, pos: &[usize], row_w: &mut [f64], part: &mut Partial, keeps: impl Fn(f64) -> bool) {
    let Direct { row, negative, margin } = *args;
    let body = row.len() / LANES * LANES;
    for &p in pos {
        let uap = row[p];
        // Per triplet (a, p, n): kept `k` (0/1), active `act` (0/1), and the hinge term
        // `act · v` — added to the accumulators `[kept, active, Σ u_an, Σ terms]`.
        let triplet = |w: &mut f64, uan: f64, neg: f64| -> [f64; 4] {
            let k = if keeps(uan - uap) { neg } else { 0.0 };
            let v = hinge_arg(uap, uan, margin);
            let act = if v > 0.0 { k } else { 0.0 };
            *w -= act;
            [k, act, k * uan, act * v]
        };
        // Constant lane indices only: the accumulators stay in registers.
        let mut lanes = [[0.0; LANES]; 4];
        let chunks = row_w[..body].as_chunks_mut::<LANES>().0.iter_mut().zip(row[..body].as_chunks::<LANES>().0).zip(negative[..body].as_chunks::<LANES>().0);
        for ((cw, cu), cn) in chunks {
            // Whole chunks loaded first and stored last: vectorises whatever the compiler
            // can prove about aliasing between the rows.
            let (u, neg, mut w) = (*cu, *cn, *cw);
            for l in 0..LANES {
                let t = triplet(&mut w[l], u[l], neg[l]);
                for (acc, x) in lanes.iter_mut().zip(t) {
                    acc[l] += x;
                }
            }
            *cw = w;
        }
        let mut totals = lanes.map(|acc| acc.iter().sum::<f64>());
        for ((w, &uan), &neg) in row_w[body..].iter_mut().zip(&row[body..]).zip(&negative[body..]) {
            let t = triplet(w, uan, neg);
            totals.iter_mut().zip(t).for_each(|(acc, x)| *acc += x);
        }
        let [kept, active, sum_an, sum_terms] = totals;
        row_w[p] += active;
        part.kept += kept as usize;
        part.active += active as usize;
        part.sum_an += sum_an;
        part.sum_terms += sum_terms;
        part.sum_ap += kept * uap;
    }
}

/// Plans the soft-margin (softplus) loss over every kept triplet, one anchor at a time.
pub(crate) fn softplus_plan(input: &MiningInput, margin: f64, band: Band, reduce: Reducer, euclidean: bool) -> FusedPlan {
    let m = input.cols();
    let chain_rule = euclidean.then_some(input);
    let (w, total) = par_rows(input.rows(), m, chain_rule, |a, row_w, _| {
        let row = input.u_row(a);
        let pos: Vec<usize> = input.positives(a).collect();
        let neg: Vec<usize> = input.negatives(a).collect();
        let mut part = Partial::default();
        for &p in &pos {
            let uap = row[p];
            let mut grad_p = 0.0;
            for &n in &neg {
                let uan = row[n];
                if !band.keeps(uan - uap) {
                    continue;
                }
                let v = hinge_arg(uap, uan, margin);
                // The explicit path's softplus: relu(v) + log1p(exp(−|v|)); its derivative σ(v).
                let term = v.max(0.0) + (-v.abs()).exp().ln_1p();
                let sigma = if v >= 0.0 { 1.0 / (1.0 + (-v).exp()) } else { let e = v.exp(); e / (1.0 + e) };
                part.kept += 1;
                part.active += (v > 0.0) as usize;
                part.nonzero += (term > 0.0) as usize;
                part.sum_terms += term;
                part.sum_ap += uap;
                part.sum_an += uan;
                grad_p += sigma;
                row_w[n] -= sigma;
            }
            row_w[p] += grad_p;
        }
        part
    });
    finish(input, w, total, reduce, euclidean)
}

/// The reducer's scale and the distance's sign (kept as the plan's `scale`), and the value.
fn finish(input: &MiningInput, w: Vec<f64>, t: Partial, reduce: Reducer, per_squared_distance: bool) -> FusedPlan {
    let scale = reduce.scale(reduce.kept_count(t.kept, t.nonzero).expect("a reducer that counts"));
    // ∂u/∂D = −1 for similarities.
    let sign = if input.direction() == crate::Direction::LargerIsCloser { -1.0 } else { 1.0 };
    let value = scale * t.sum_terms;
    let mean = |s: f64| (t.kept > 0).then(|| input.to_raw(s / t.kept as f64));
    FusedPlan {
        weights: w,
        scale: scale * sign,
        per_squared_distance,
        value,
        nonzeros_at_most: None,
        num_tuples: t.kept,
        num_active: t.active,
        mean_ap: mean(t.sum_ap),
        mean_an: mean(t.sum_an),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;

    fn input(seed: u64, b: usize, classes: i64) -> MiningInput {
        // A small LCG: deterministic values without a dev-dependency.
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut v: Vec<f64> = (0..b * b).map(|_| (next() * 8.0).round() / 4.0).collect(); // many ties
        for i in 0..b {
            v[i * b + i] = 0.0;
        }
        let labels: Vec<i64> = (0..b as i64).map(|i| i % classes).collect();
        MiningInput::from_host(v, b, b, Direction::SmallerIsCloser, labels.clone(), labels, (0..b).map(Some).collect(), 4)
    }

    #[test]
    fn sorted_and_enumerating_kernels_agree_even_with_ties() {
        let bands = [
            Band::All,
            Band::Miner { kind: TripletType::All, margin: 0.25 },
            Band::Miner { kind: TripletType::Hard, margin: 0.25 },
            Band::Miner { kind: TripletType::Semihard, margin: 0.5 },
            Band::Miner { kind: TripletType::Easy, margin: 0.25 },
        ];
        for seed in 0..6 {
            let inp = input(seed, 30, 1 + seed as i64 % 4 + 1);
            for band in bands {
                for margin in [0.0, 0.25, 1.0] {
                    let s = hinge_plan(&inp, margin, band, Reducer::AvgNonZero, Some(true), false);
                    let e = hinge_plan(&inp, margin, band, Reducer::AvgNonZero, Some(false), false);
                    assert_eq!((s.num_tuples, s.num_active), (e.num_tuples, e.num_active), "{band:?} {margin}");
                    for (x, y) in s.weights.iter().zip(&e.weights) {
                        assert!((x - y).abs() < 1e-12, "{band:?} {margin}: {x} vs {y}");
                    }
                    assert!((s.value - e.value).abs() < 1e-12 * (1.0 + e.value.abs()), "{band:?} {margin}: value");
                }
            }
        }
    }
}
