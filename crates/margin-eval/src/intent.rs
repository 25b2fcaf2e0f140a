//! Intent classification and out-of-scope rejection from embeddings (the closed-set
//! protocol of CLINC150 / BANKING77; nothing here is text-specific).
//!
//! - **Nearest-neighbour accuracy**: a query takes the label of its nearest reference
//!   row (ties: the smaller index, as [`crate::knn`] breaks them).
//! - **Centroid accuracy**: a query takes the label of the nearest class mean of the
//!   reference rows (the mean of the rows as given; for `cosine` its length does not
//!   matter).
//! - **Out-of-scope rejection**: a query's score is its distance to the nearest
//!   reference row (smaller: more in-scope — for `cosine`, `1 − max cosine similarity`).
//!   AUROC with the in-scope queries as positives (= the Mann–Whitney statistic, from
//!   [`crate::verification`]); FPR at 95 % TPR: the fraction of out-of-scope queries
//!   accepted by the strictest threshold that accepts ≥ 95 % of the in-scope ones.
//! - **Accuracy at a threshold**: accept (predict the nearest neighbour's label) when
//!   the distance is ≤ `t`, else predict out-of-scope; correct when an accepted in-scope
//!   query has the right label or an out-of-scope query is rejected. `t` is chosen on a
//!   validation split ([`choose_threshold`]: the best accuracy there, the smallest such
//!   `t`) and applied unchanged to test — never chosen on test.

use serde::{Deserialize, Serialize};

use crate::data::{Embeddings, Labelled};
use crate::distance::Distance;
use crate::error::{Result, invalid};
use crate::knn::knn;
use crate::verification::{Polarity, VerificationConfig, roc_curve, verification_metrics};
use margin_linalg::Real;

/// Each query's nearest reference row: its label and its distance (in `distance`'s
/// unit, smaller is closer).
pub fn nearest<T: Real>(query: &Embeddings<T>, reference: &Labelled<T>, distance: Distance) -> Result<(Vec<i64>, Vec<f64>)> {
    let nb = knn(query, Some(&reference.embeddings), 1, distance)?;
    let labels = (0..query.rows()).map(|i| reference.labels()[nb.indices_of(i)[0] as usize]).collect();
    let dist = (0..query.rows()).map(|i| nb.values_of(i)[0].to_f64()).collect();
    Ok((labels, dist))
}

/// The class means of `reference` (row-major, classes sorted) and their labels.
pub fn centroids<T: Real>(reference: &Labelled<T>) -> (Vec<T>, Vec<i64>) {
    let d = reference.embeddings.dim();
    let index: std::collections::BTreeMap<i64, usize> = {
        let mut l: Vec<i64> = reference.labels().to_vec();
        l.sort_unstable();
        l.dedup();
        l.into_iter().enumerate().map(|(i, c)| (c, i)).collect()
    };
    let mut sums = vec![0f64; index.len() * d];
    let mut counts = vec![0usize; index.len()];
    for (i, l) in reference.labels().iter().enumerate() {
        let c = index[l];
        counts[c] += 1;
        for (s, v) in sums[c * d..(c + 1) * d].iter_mut().zip(reference.embeddings.row(i)) {
            *s += v.to_f64();
        }
    }
    let means = sums.chunks(d).zip(&counts).flat_map(|(s, &n)| s.iter().map(move |v| T::from_f64(v / n as f64))).collect();
    (means, index.into_keys().collect())
}

/// Closed-set classification accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// Queries.
    pub n_queries: usize,
    /// Reference rows.
    pub n_references: usize,
    /// Accuracy of the nearest reference row's label.
    pub nearest_neighbor_accuracy: f64,
    /// Accuracy of the nearest class mean's label.
    pub centroid_accuracy: f64,
}

/// Nearest-neighbour and centroid accuracy of `query` against `reference`.
pub fn classification<T: Real>(query: &Labelled<T>, reference: &Labelled<T>, distance: Distance) -> Result<Classification> {
    let (nn, _) = nearest(&query.embeddings, reference, distance)?;
    let (means, classes) = centroids(reference);
    let cents = Embeddings::new("class centroids", &means, reference.embeddings.dim())?;
    let cents = Labelled::new(cents, "centroid classes", &classes)?;
    let (cl, _) = nearest(&query.embeddings, &cents, distance)?;
    let acc = |p: &[i64]| p.iter().zip(query.labels()).filter(|(a, b)| a == b).count() as f64 / query.labels().len() as f64;
    Ok(Classification {
        n_queries: query.labels().len(),
        n_references: reference.labels().len(),
        nearest_neighbor_accuracy: acc(&nn),
        centroid_accuracy: acc(&cl),
    })
}

/// Out-of-scope rejection by the distance to the nearest reference row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// In-scope queries (positives).
    pub n_in_scope: usize,
    /// Out-of-scope queries (negatives).
    pub n_out_of_scope: usize,
    /// Area under the ROC, in-scope as positives.
    pub auroc: f64,
    /// Fraction of out-of-scope queries accepted at 95 % in-scope acceptance.
    pub fpr_at_95_tpr: f64,
    /// That threshold (accept when the distance is ≤ it).
    pub distance_at_95_tpr: f64,
}

/// [`Rejection`] from the nearest-reference distances of in-scope and out-of-scope queries.
pub fn rejection(in_scope: &[f64], out_of_scope: &[f64]) -> Result<Rejection> {
    let cfg = VerificationConfig { far_targets: vec![], ..VerificationConfig::default() };
    let auroc = verification_metrics(in_scope, out_of_scope, Polarity::LowerIsGenuine, &cfg)?.auc;
    let roc = roc_curve(in_scope, out_of_scope, Polarity::LowerIsGenuine)?;
    let p = roc.iter().find(|p| p.tar >= 0.95).expect("the loosest ROC point accepts every in-scope query");
    Ok(Rejection { n_in_scope: in_scope.len(), n_out_of_scope: out_of_scope.len(), auroc, fpr_at_95_tpr: p.far, distance_at_95_tpr: p.threshold })
}

/// Accuracy with rejection at one threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdAccuracy {
    /// Accept when the nearest distance is ≤ this.
    pub threshold: f64,
    /// Correct / all queries (in-scope and out-of-scope).
    pub accuracy: f64,
    /// In-scope queries accepted with the right label / in-scope queries.
    pub in_scope_accuracy: f64,
    /// Out-of-scope queries rejected / out-of-scope queries.
    pub out_of_scope_recall: f64,
}

/// [`ThresholdAccuracy`] at `threshold`: `correct[i]` says whether in-scope query `i`'s
/// nearest label is right, `in_scope`/`out_of_scope` are nearest distances.
pub fn accuracy_at(threshold: f64, correct: &[bool], in_scope: &[f64], out_of_scope: &[f64]) -> ThresholdAccuracy {
    let hit = correct.iter().zip(in_scope).filter(|(c, d)| **c && **d <= threshold).count();
    let rejected = out_of_scope.iter().filter(|d| **d > threshold).count();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    ThresholdAccuracy {
        threshold,
        accuracy: ratio(hit + rejected, in_scope.len() + out_of_scope.len()),
        in_scope_accuracy: ratio(hit, in_scope.len()),
        out_of_scope_recall: ratio(rejected, out_of_scope.len()),
    }
}

/// The threshold of best [`accuracy_at`] on a validation split (the smallest of equals),
/// by one sweep over the sorted distances; candidates are every distance and −∞.
pub fn choose_threshold(correct: &[bool], in_scope: &[f64], out_of_scope: &[f64]) -> Result<f64> {
    if correct.len() != in_scope.len() {
        return Err(invalid("correct", format!("{} flags for {} in-scope distances", correct.len(), in_scope.len())));
    }
    if let Some(v) = in_scope.iter().chain(out_of_scope).find(|v| !v.is_finite()) {
        return Err(invalid("distance", format!("{v} is not finite")));
    }
    // (distance, gain when accepted): +1 a correct in-scope, 0 a wrong one, −1 an
    // out-of-scope query (it stops being a correct rejection).
    let mut items: Vec<(f64, i64)> = in_scope.iter().zip(correct).map(|(&d, &c)| (d, i64::from(c))).chain(out_of_scope.iter().map(|&d| (d, -1))).collect();
    items.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut score, mut best, mut best_t) = (0i64, 0i64, f64::NEG_INFINITY);
    let mut i = 0;
    while i < items.len() {
        let t = items[i].0;
        while i < items.len() && items[i].0 == t {
            score += items[i].1;
            i += 1;
        }
        if score > best {
            (best, best_t) = (score, t);
        }
    }
    Ok(best_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_and_centroid_classification() {
        // Class 1's rows straddle a class-2 row: 1-NN and the centroid disagree on q.
        let r = [0.0f64, 0.0, 10.0, 0.0, 6.0, 0.0];
        let labels = [1i64, 1, 2];
        let refs = Labelled::new(Embeddings::new("r", &r, 2).unwrap(), "l", &labels).unwrap();
        let q = [5.5f64, 0.0, 9.0, 0.0];
        let ql = [1i64, 2];
        let qs = Labelled::new(Embeddings::new("q", &q, 2).unwrap(), "ql", &ql).unwrap();
        let c = classification(&qs, &refs, Distance::Euclidean).unwrap();
        // q0 = 5.5: nearest row 6 (class 2, wrong); centroid of class 1 is 5 (right).
        // q1 = 9: nearest row 10 (class 1, wrong); centroids 5 and 6 → class 2 (right).
        assert_eq!((c.nearest_neighbor_accuracy, c.centroid_accuracy), (0.0, 1.0));
        let (means, classes) = centroids(&refs);
        assert_eq!((means, classes), (vec![5.0, 0.0, 6.0, 0.0], vec![1, 2]));
        // Labels first seen out of sorted order: each mean stays with its own label (before:
        // the means were paired with the labels by first appearance, and a frozen
        // all-MiniLM-L6-v2 scored 1.3 % centroid accuracy on CLINC150).
        let r2 = [6.0f64, 0.0, 0.0, 0.0, 10.0, 0.0];
        let l2 = [9i64, 1, 1];
        let refs2 = Labelled::new(Embeddings::new("r", &r2, 2).unwrap(), "l", &l2).unwrap();
        assert_eq!(centroids(&refs2), (vec![5.0, 0.0, 6.0, 0.0], vec![1, 9]));
        let q2 = [4.0f64, 0.0, 6.2, 0.0];
        let ql2 = [1i64, 9];
        let qs2 = Labelled::new(Embeddings::new("q", &q2, 2).unwrap(), "ql", &ql2).unwrap();
        assert_eq!(classification(&qs2, &refs2, Distance::Euclidean).unwrap().centroid_accuracy, 1.0);
    }

    #[test]
    fn rejection_matches_a_hand_count() {
        let ins = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0];
        let outs = [0.35, 1.95, 3.0, 4.0];
        let r = rejection(&ins, &outs).unwrap();
        // 95 % of 20 in-scope = 19 → threshold 1.9; out-of-scope ≤ 1.9: only 0.35.
        assert_eq!((r.distance_at_95_tpr, r.fpr_at_95_tpr), (1.9, 0.25));
        // Pairs (in, out) with in < out: 0.35 beats 3 in-scope, 1.95 beats 19, 3 and 4 all 20.
        let u = (3 + 19 + 20 + 20) as f64 / 80.0;
        assert!((r.auroc - u).abs() < 1e-12, "{} vs {u}", r.auroc);
    }

    #[test]
    fn threshold_is_chosen_by_a_sweep_equal_to_brute_force() {
        let ins = [0.2, 0.4, 0.4, 0.9, 1.2];
        let correct = [true, false, true, true, true];
        let outs = [0.5, 0.95, 1.5];
        let t = choose_threshold(&correct, &ins, &outs).unwrap();
        let mut cands: Vec<f64> = ins.iter().chain(&outs).copied().collect();
        cands.push(f64::NEG_INFINITY);
        let best = cands.iter().map(|&c| accuracy_at(c, &correct, &ins, &outs).accuracy).fold(0.0, f64::max);
        assert_eq!(accuracy_at(t, &correct, &ins, &outs).accuracy, best);
        // Correct counts by threshold: −∞ 3, 0.2 4, 0.4 5, 0.5 4, 0.9 5, 0.95 4, 1.2 5, 1.5 4:
        // the smallest of the best is 0.4.
        assert_eq!(t, 0.4);
        let a = accuracy_at(0.4, &correct, &ins, &outs);
        assert_eq!((a.accuracy, a.in_scope_accuracy, a.out_of_scope_recall), (5.0 / 8.0, 0.4, 1.0));
        assert!(choose_threshold(&correct, &[f64::NAN; 5], &outs).is_err());
    }
}
