//! Reference implementations: plain `f64` loops, one triplet or pair at a time.
//!
//! These are the slow, obviously right versions of every loss (the seed's C++
//! transcribed), used as oracles for the tensor code. They take rows as slices
//! and never touch Burn. (Their reducer is written out again on purpose: an oracle
//! that shared [`Reducer`]'s rule could not catch a mistake in it.)
//!
//! [`gathered`] holds the second kind of oracle: the losses' gathering paths (one
//! autodiff graph per listed tuple), against which the fused paths are tested.

pub mod gathered;

use crate::distance::{NORM_EPS, SQRT_EPS};
use crate::{ContrastiveForm, Distance, KindPooling, Pairs, Power, Reducer, Triplets};

/// `x / max(‖x‖, 1e-12)`.
pub fn normalize(x: &[f64]) -> Vec<f64> {
    let norm = x.iter().map(|v| v * v).sum::<f64>().sqrt().max(NORM_EPS);
    x.iter().map(|v| v / norm).collect()
}

/// The distance (or similarity) between two rows, one coordinate at a time.
pub fn distance(d: &Distance, x: &[f64], y: &[f64]) -> f64 {
    let (x, y) = if d.normalizes() { (normalize(x), normalize(y)) } else { (x.to_vec(), y.to_vec()) };
    match d {
        Distance::Lp(lp) => {
            let sq: f64 = x.iter().zip(&y).map(|(a, b)| (a - b) * (a - b)).sum();
            match lp.power {
                Power::SquaredEuclidean => sq,
                Power::Euclidean if sq <= SQRT_EPS => 0.0,
                Power::Euclidean => sq.sqrt(),
            }
        }
        Distance::Cosine(_) | Distance::Dot(_) => x.iter().zip(&y).map(|(a, b)| a * b).sum(),
    }
}

/// Reduces groups of per-element losses exactly as [`Reducer`] documents.
pub fn reduce(reducer: &Reducer, groups: &[Vec<f64>], pooling: KindPooling) -> f64 {
    let one = |v: &[f64]| -> f64 {
        let kept: Vec<f64> = v
            .iter()
            .copied()
            .filter(|&x| match *reducer {
                Reducer::Mean | Reducer::Sum => true,
                Reducer::AvgNonZero => x > 0.0,
                Reducer::Threshold { low, high } => {
                    low.is_none_or(|l| x > l) && high.is_none_or(|h| x < h)
                }
            })
            .collect();
        match (reducer, kept.len()) {
            (_, 0) => 0.0,
            (Reducer::Sum, _) => kept.iter().sum(),
            (_, n) => kept.iter().sum::<f64>() / n as f64,
        }
    };
    match pooling {
        KindPooling::Separate => groups.iter().map(|g| one(g)).sum(),
        KindPooling::Pooled => one(&groups.concat()),
    }
}

/// Parameters of the triplet loss, as plain values.
#[derive(Debug, Clone, Copy)]
pub struct TripletParams {
    /// Margin.
    pub margin: f64,
    /// Distance.
    pub distance: Distance,
    /// Distance swap.
    pub swap: bool,
    /// Softplus instead of hinge.
    pub smooth: bool,
    /// Reducer.
    pub reducer: Reducer,
}

/// Triplet loss over `triplets` of `rows` (anchor, positive and negative all index `rows`):
/// returns `(loss, per-triplet terms)`.
pub fn triplet_loss(p: &TripletParams, rows: &[Vec<f64>], triplets: &Triplets) -> (f64, Vec<f64>) {
    let dir = p.distance.direction();
    let mut terms = Vec::with_capacity(triplets.len());
    for (a, pos, neg) in triplets.iter() {
        let ap = distance(&p.distance, &rows[a], &rows[pos]);
        let mut an = distance(&p.distance, &rows[a], &rows[neg]);
        if p.swap {
            an = dir.closest(an, distance(&p.distance, &rows[pos], &rows[neg]));
        }
        let v = dir.violation(ap, an) + p.margin;
        terms.push(if p.smooth { v.max(0.0) + (-v.abs()).exp().ln_1p() } else { v.max(0.0) });
    }
    (reduce(&p.reducer, std::slice::from_ref(&terms), KindPooling::Separate), terms)
}

/// Parameters of the contrastive loss, as plain values.
#[derive(Debug, Clone, Copy)]
pub struct ContrastiveParams {
    /// Penalty shape.
    pub form: ContrastiveForm,
    /// Margin of similar pairs.
    pub pos_margin: f64,
    /// Margin of dissimilar pairs.
    pub neg_margin: f64,
    /// Distance.
    pub distance: Distance,
    /// Reducer.
    pub reducer: Reducer,
    /// Pooling.
    pub pooling: KindPooling,
}

/// Contrastive loss over `pairs` of `rows`: returns `(loss, similar terms, dissimilar terms)`.
pub fn contrastive_loss(p: &ContrastiveParams, rows: &[Vec<f64>], pairs: &Pairs) -> (f64, Vec<f64>, Vec<f64>) {
    let dir = p.distance.direction();
    let shape = |h: f64| match p.form {
        ContrastiveForm::Linear => h,
        ContrastiveForm::Squared => h * h,
    };
    let pos: Vec<f64> = pairs
        .similar
        .iter()
        .map(|&(i, j)| shape(dir.violation(distance(&p.distance, &rows[i], &rows[j]), p.pos_margin).max(0.0)))
        .collect();
    let neg: Vec<f64> = pairs
        .dissimilar
        .iter()
        .map(|&(i, j)| shape(dir.violation(p.neg_margin, distance(&p.distance, &rows[i], &rows[j])).max(0.0)))
        .collect();
    let mut groups = Vec::new();
    for g in [&pos, &neg] {
        if !g.is_empty() {
            groups.push(g.clone());
        }
    }
    (reduce(&p.reducer, &groups, p.pooling), pos, neg)
}

/// InfoNCE / NT-Xent, written out: the mean over positive pairs `(i, j)` (`y_i = y_j`,
/// `i ≠ j`) of `−log(e^{s_ij/τ} / (e^{s_ij/τ} + Σ_{y_k ≠ y_i} e^{s_ik/τ}))`, `s` the cosine
/// similarity; 0 without a positive pair. (Direct exponentials: fine for the moderate
/// temperatures of the tests.)
pub fn info_nce_loss(rows: &[Vec<f64>], labels: &[i64], temperature: f64) -> f64 {
    let x: Vec<Vec<f64>> = rows.iter().map(|r| normalize(r)).collect();
    let s = |i: usize, k: usize| x[i].iter().zip(&x[k]).map(|(a, b)| a * b).sum::<f64>() / temperature;
    let (mut total, mut n) = (0.0, 0usize);
    for i in 0..rows.len() {
        for j in (0..rows.len()).filter(|&j| j != i && labels[j] == labels[i]) {
            let negatives: f64 = (0..rows.len()).filter(|&k| labels[k] != labels[i]).map(|k| s(i, k).exp()).sum();
            total += -(s(i, j).exp() / (s(i, j).exp() + negatives)).ln();
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { total / n as f64 }
}
