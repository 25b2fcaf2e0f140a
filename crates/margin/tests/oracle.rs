//! The tensor implementation against the naive-loop reference (`margin::reference`)
//! on random inputs, and against central differences of itself in f64, for every
//! loss × distance × reducer combination.

mod common;

use common::*;
use margin::reference::{self, ContrastiveParams, TripletParams};
use margin::{
    Batch, ContrastiveForm, ContrastiveLossConfig, CosineSimilarity, Distance, DotProductSimilarity,
    KindPooling, LpDistance, Pairs, Power, Reducer, TripletMarginLossConfig, Triplets, Tuples,
};

fn distances() -> Vec<Distance> {
    let mut v = Vec::new();
    for power in [Power::Euclidean, Power::SquaredEuclidean] {
        for normalize in [true, false] {
            v.push(Distance::Lp(LpDistance { power, normalize }));
        }
    }
    v.push(Distance::Cosine(CosineSimilarity));
    v.push(Distance::Dot(DotProductSimilarity { normalize: false }));
    v.push(Distance::Dot(DotProductSimilarity { normalize: true }));
    v
}

fn reducers() -> Vec<Reducer> {
    vec![
        Reducer::Mean,
        Reducer::Sum,
        Reducer::AvgNonZero,
        Reducer::Threshold { low: Some(0.05), high: Some(0.6) },
    ]
}

/// A margin that leaves some triplets active and some not, in the distance's units.
fn margin_for(d: &Distance) -> f64 {
    match d {
        Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: false }) => 0.4,
        _ => 0.2,
    }
}

fn triplet_params(d: Distance, reducer: Reducer, swap: bool, smooth: bool) -> TripletParams {
    TripletParams { margin: margin_for(&d), distance: d, swap, smooth, reducer }
}

fn run_triplet(p: &TripletParams, rows: &[Vec<f64>], labels: &[i64], tuples: Option<&Triplets>) -> (f64, Vec<Vec<f64>>) {
    let loss = TripletMarginLossConfig::new()
        .with_margin(p.margin)
        .with_distance(p.distance)
        .with_swap(p.swap)
        .with_smooth(p.smooth)
        .with_reducer(p.reducer)
        .init()
        .unwrap();
    let x = tensor64(rows);
    let out = loss.forward(Batch::labelled(x.clone(), labels), tuples.map_or(Tuples::All, Tuples::Triplets)).unwrap();
    (out.stats.loss, grad_rows(&x, &out.loss))
}

fn contrastive_params(d: Distance, reducer: Reducer, form: ContrastiveForm, pooling: KindPooling) -> ContrastiveParams {
    let (pos_margin, neg_margin) = match d.direction() {
        margin::Direction::SmallerIsCloser => (0.3, 1.1),
        margin::Direction::LargerIsCloser => (0.6, 0.1),
    };
    ContrastiveParams { form, pos_margin, neg_margin, distance: d, reducer, pooling }
}

fn run_contrastive(p: &ContrastiveParams, rows: &[Vec<f64>], labels: &[i64]) -> (f64, Vec<Vec<f64>>) {
    let loss = ContrastiveLossConfig::new()
        .with_form(p.form)
        .with_pos_margin(p.pos_margin)
        .with_neg_margin(p.neg_margin)
        .with_distance(p.distance)
        .with_reducer(p.reducer)
        .with_pooling(p.pooling)
        .init()
        .unwrap();
    let x = tensor64(rows);
    let out = loss.forward(Batch::labelled(x.clone(), labels), Tuples::All).unwrap();
    (out.stats.loss, grad_rows(&x, &out.loss))
}

/// Smallest distance of any discrete decision (hinge, reducer cut) from its threshold.
fn triplet_gap(p: &TripletParams, rows: &[Vec<f64>], t: &Triplets) -> f64 {
    let (_, terms) = reference::triplet_loss(&TripletParams { reducer: Reducer::Sum, smooth: false, ..*p }, rows, t);
    let dir = p.distance.direction();
    let mut gap = f64::INFINITY;
    for (k, (a, pos, neg)) in t.iter().enumerate() {
        let ap = reference::distance(&p.distance, &rows[a], &rows[pos]);
        let mut an = reference::distance(&p.distance, &rows[a], &rows[neg]);
        let pn = reference::distance(&p.distance, &rows[pos], &rows[neg]);
        if p.swap {
            gap = gap.min((an - pn).abs());
            an = dir.closest(an, pn);
        }
        gap = gap.min((dir.violation(ap, an) + p.margin).abs());
        if let Reducer::Threshold { low, high } = p.reducer {
            gap = gap.min((terms[k] - low.unwrap()).abs()).min((terms[k] - high.unwrap()).abs());
        }
    }
    gap
}

fn contrastive_gap(p: &ContrastiveParams, rows: &[Vec<f64>], pairs: &Pairs) -> f64 {
    let (_, pos, neg) = reference::contrastive_loss(&ContrastiveParams { reducer: Reducer::Sum, ..*p }, rows, pairs);
    let dir = p.distance.direction();
    let mut gap = f64::INFINITY;
    for &(i, j) in &pairs.similar {
        gap = gap.min(dir.violation(reference::distance(&p.distance, &rows[i], &rows[j]), p.pos_margin).abs());
    }
    for &(i, j) in &pairs.dissimilar {
        gap = gap.min(dir.violation(p.neg_margin, reference::distance(&p.distance, &rows[i], &rows[j])).abs());
    }
    if let Reducer::Threshold { low, high } = p.reducer {
        for t in pos.iter().chain(&neg) {
            gap = gap.min((t - low.unwrap()).abs()).min((t - high.unwrap()).abs());
        }
    }
    gap
}

/// Random rows whose decisions are all at least `min_gap` from their thresholds.
fn rows_away_from_kinks(seed: u64, b: usize, d: usize, gap: impl Fn(&[Vec<f64>]) -> f64) -> Vec<Vec<f64>> {
    (0..200u64)
        .map(|k| random_rows(seed * 1000 + k, b, d))
        .find(|r| gap(r) > 1e-4)
        .expect("a draw away from every kink within 200 tries")
}

#[test]
fn triplet_matches_reference_for_every_distance_reducer_swap_and_smooth() {
    let labels = random_labels(1, 12, 4);
    let all = Triplets::all(&labels);
    for (i, d) in distances().into_iter().enumerate() {
        for reducer in reducers() {
            for (swap, smooth) in [(false, false), (true, false), (false, true)] {
                let p = triplet_params(d, reducer, swap, smooth);
                let rows = random_rows(100 + i as u64, 12, 5);
                let (ours, _) = run_triplet(&p, &rows, &labels, None);
                let (theirs, _) = reference::triplet_loss(&p, &rows, &all);
                assert_close(ours, theirs, 1e-10, 1e-12, &format!("{d:?} {reducer:?} swap={swap} smooth={smooth}"));
            }
        }
    }
}

#[test]
fn triplet_on_given_tuples_matches_reference() {
    let labels = random_labels(2, 10, 3);
    let rows = random_rows(7, 10, 4);
    let t = Triplets::new(vec![0, 3, 3, 9], vec![labels.iter().skip(1).position(|&l| l == labels[0]).unwrap() + 1, 3, 3, 9], vec![1, 2, 5, 0])
        .unwrap();
    let p = triplet_params(Distance::euclidean_normalized(), Reducer::Mean, false, false);
    let (ours, _) = run_triplet(&p, &rows, &labels, Some(&t));
    let (theirs, _) = reference::triplet_loss(&p, &rows, &t);
    assert_close(ours, theirs, 1e-12, 1e-14, "given tuples");
}

#[test]
fn contrastive_matches_reference_for_every_distance_reducer_form_and_pooling() {
    let labels = random_labels(3, 11, 3);
    let pairs = Pairs::all(&labels);
    for (i, d) in distances().into_iter().enumerate() {
        for reducer in reducers() {
            for form in [ContrastiveForm::Linear, ContrastiveForm::Squared] {
                for pooling in [KindPooling::Separate, KindPooling::Pooled] {
                    let p = contrastive_params(d, reducer, form, pooling);
                    let rows = random_rows(200 + i as u64, 11, 4);
                    let (ours, _) = run_contrastive(&p, &rows, &labels);
                    let (theirs, _, _) = reference::contrastive_loss(&p, &rows, &pairs);
                    assert_close(ours, theirs, 1e-10, 1e-12, &format!("{d:?} {reducer:?} {form:?} {pooling:?}"));
                }
            }
        }
    }
}

#[test]
fn triplet_gradient_matches_central_differences_for_every_combination() {
    let labels = random_labels(4, 7, 3);
    let t = Triplets::all(&labels);
    for (i, d) in distances().into_iter().enumerate() {
        for reducer in reducers() {
            for (swap, smooth) in [(false, false), (true, false), (false, true)] {
                let p = triplet_params(d, reducer, swap, smooth);
                let rows = rows_away_from_kinks(300 + i as u64, 7, 3, |r| triplet_gap(&p, r, &t));
                let (_, grad) = run_triplet(&p, &rows, &labels, None);
                let numeric = numeric_grad(&rows, 1e-6, |r| reference::triplet_loss(&p, r, &t).0);
                assert_rows_close(&grad, &numeric, 1e-5, 1e-7, &format!("{d:?} {reducer:?} swap={swap} smooth={smooth}"));
            }
        }
    }
}

#[test]
fn contrastive_gradient_matches_central_differences_for_every_combination() {
    let labels = random_labels(5, 7, 3);
    let pairs = Pairs::all(&labels);
    for (i, d) in distances().into_iter().enumerate() {
        for reducer in reducers() {
            for form in [ContrastiveForm::Linear, ContrastiveForm::Squared] {
                for pooling in [KindPooling::Separate, KindPooling::Pooled] {
                    let p = contrastive_params(d, reducer, form, pooling);
                    let rows = rows_away_from_kinks(400 + i as u64, 7, 3, |r| contrastive_gap(&p, r, &pairs));
                    let (_, grad) = run_contrastive(&p, &rows, &labels);
                    let numeric = numeric_grad(&rows, 1e-6, |r| reference::contrastive_loss(&p, r, &pairs).0);
                    assert_rows_close(&grad, &numeric, 1e-5, 1e-7, &format!("{d:?} {reducer:?} {form:?} {pooling:?}"));
                }
            }
        }
    }
}
