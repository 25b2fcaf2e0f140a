//! Bad input gives a typed error naming the input and its shape — never a panic or a NaN.

mod common;

use common::*;
use margin::{
    Batch, ContrastiveLossConfig, Distance, MarginError, PairPolarity, Pairs, TripletMarginLossConfig, Triplets, Tuples,
};

fn triplet() -> margin::TripletMarginLoss {
    TripletMarginLossConfig::new().init().unwrap()
}

#[test]
fn nan_in_embeddings_is_refused_naming_row_and_column() {
    let mut rows = random_rows(1, 4, 3);
    rows[2][1] = f64::NAN;
    let err = triplet().forward(Batch::labelled(tensor64(&rows), &[0, 0, 1, 1]), Tuples::All).unwrap_err();
    match err {
        MarginError::NonFinite { input: "embeddings", row: 2, col: 1, ref shape, .. } => assert_eq!(shape, &vec![4, 3]),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("row 2"), "{err}");
}

#[test]
fn infinity_in_a_contrastive_input_is_refused() {
    let mut rows = random_rows(2, 3, 2);
    rows[0][0] = f64::INFINITY;
    let err = ContrastiveLossConfig::new()
        .init()
        .unwrap()
        .forward(Batch::pairs(tensor64(&random_rows(3, 3, 2)), tensor64(&rows), &[PairPolarity::Similar; 3]), Tuples::All)
        .unwrap_err();
    assert!(matches!(err, MarginError::NonFinite { input: "y", row: 0, col: 0, .. }), "{err:?}");
}

#[test]
fn label_count_must_match_batch_size() {
    let err = triplet().forward(Batch::labelled(tensor64(&random_rows(1, 4, 3)), &[0, 0, 1]), Tuples::All).unwrap_err();
    assert_eq!(
        err,
        MarginError::LabelCount { input: "embeddings", labels_input: "labels", labels: 3, rows: 4, shape: vec![4, 3] }
    );
    assert_eq!(err.to_string(), "labels has 3 labels but embeddings has 4 rows (shape [4, 3])");
}

#[test]
fn zero_dimensional_embeddings_are_refused() {
    let x = burn::tensor::Tensor::<2>::zeros([4, 0], &device());
    let err = triplet().forward(Batch::labelled(x, &[0, 0, 1, 1]), Tuples::All).unwrap_err();
    assert!(matches!(err, MarginError::Empty { input: "embeddings", ref shape, .. } if shape == &vec![4, 0]), "{err:?}");
}

#[test]
fn mismatched_anchor_positive_negative_shapes_are_refused() {
    let err = triplet()
        .forward(Batch::triplets(tensor64(&random_rows(1, 4, 3)), tensor64(&random_rows(2, 4, 3)), tensor64(&random_rows(3, 3, 3))), Tuples::All)
        .unwrap_err();
    assert_eq!(
        err,
        MarginError::ShapeMismatch { input: "negative", got: vec![3, 3], expected_from: "anchor", expected: vec![4, 3] }
    );
}

#[test]
fn polarity_count_must_match_pair_count() {
    let err = ContrastiveLossConfig::new()
        .init()
        .unwrap()
        .forward(Batch::pairs(tensor64(&random_rows(1, 3, 2)), tensor64(&random_rows(2, 3, 2)), &[PairPolarity::Similar]), Tuples::All)
        .unwrap_err();
    assert!(matches!(err, MarginError::LabelCount { labels_input: "polarity", labels: 1, rows: 3, .. }), "{err:?}");
}

#[test]
fn out_of_range_tuples_are_refused() {
    let t = Triplets::new(vec![0], vec![1], vec![9]).unwrap();
    let err = triplet().forward(Batch::labelled(tensor64(&random_rows(1, 4, 3)), &[0, 0, 1, 1]), Tuples::Triplets(&t)).unwrap_err();
    assert!(matches!(err, MarginError::IndexOutOfRange { input: "triplets.negative", index: 9, bound: 4, .. }));
    let p = Pairs { similar: vec![(0, 7)], dissimilar: vec![] };
    let err = ContrastiveLossConfig::new().init().unwrap().forward(Batch::labelled(tensor64(&random_rows(1, 4, 3)), &[0, 0, 1, 1]), Tuples::Pairs(&p)).unwrap_err();
    assert!(matches!(err, MarginError::IndexOutOfRange { index: 7, bound: 4, .. }), "{err:?}");
}

#[test]
fn non_finite_margin_is_a_config_error() {
    let err = TripletMarginLossConfig::new().with_margin(f64::NAN).init().unwrap_err();
    assert!(matches!(err, MarginError::InvalidConfig { field: "margin", .. }));
}

/// A batch with no valid triplet or pair (one class; all singletons) gives a zero loss
/// attached to the graph: backward runs and every gradient is exactly 0.
#[test]
fn batch_without_valid_tuples_gives_attached_zero_with_zero_gradient() {
    for labels in [[5i64, 5, 5, 5], [1, 2, 3, 4]] {
        let x = tensor64(&random_rows(9, 4, 3));
        let out = triplet().forward(Batch::labelled(x.clone(), &labels), Tuples::All).unwrap();
        assert_eq!(out.stats.loss, 0.0);
        assert_eq!(out.stats.num_tuples, 0);
        assert_eq!(out.stats.mean_ap_dist, None);
        let g = grad_rows(&x, &out.loss);
        assert!(g.iter().flatten().all(|&v| v == 0.0), "{g:?}");
    }
    // Contrastive on all-singletons still has negative pairs; on one class only positives.
    let x = tensor64(&random_rows(9, 1, 3));
    let out = ContrastiveLossConfig::new().init().unwrap().forward(Batch::labelled(x.clone(), &[3]), Tuples::All).unwrap();
    assert_eq!(out.stats.num_tuples, 0);
    assert!(grad_rows(&x, &out.loss).iter().flatten().all(|&v| v == 0.0));
}

/// The seed's numerical pitfalls: gradient of the unsquared distance at zero distance,
/// and cosine of a zero vector.
#[test]
fn identical_points_and_zero_vectors_give_finite_gradients() {
    // Duplicate rows: anchor and positive at distance exactly 0.
    let rows = vec![vec![0.3, -0.2], vec![0.3, -0.2], vec![1.0, 0.5], vec![-0.4, 0.9]];
    for distance in [
        Distance::Lp(margin::LpDistance { power: margin::Power::Euclidean, normalize: false }),
        Distance::euclidean_normalized(),
        Distance::Cosine(margin::CosineSimilarity),
    ] {
        let x = tensor64(&rows);
        let out = TripletMarginLossConfig::new().with_margin(5.0).with_distance(distance).init().unwrap()
            .forward(Batch::labelled(x.clone(), &[0, 0, 1, 2]), Tuples::All).unwrap();
        assert!(out.stats.loss.is_finite());
        assert!(grad_rows(&x, &out.loss).iter().flatten().all(|v| v.is_finite()), "{distance:?}");
        let x = tensor64(&rows);
        let out = ContrastiveLossConfig::new().with_distance(distance).init().unwrap()
            .forward(Batch::labelled(x.clone(), &[0, 0, 1, 2]), Tuples::All).unwrap();
        assert!(grad_rows(&x, &out.loss).iter().flatten().all(|v| v.is_finite()), "{distance:?}");
    }
    // A zero vector under cosine similarity and normalised Euclidean distance.
    let rows = vec![vec![0.0, 0.0], vec![0.6, 0.8], vec![1.0, 0.0], vec![0.0, -1.0]];
    for distance in [Distance::Cosine(margin::CosineSimilarity), Distance::euclidean_normalized()] {
        let x = tensor64(&rows);
        let out = TripletMarginLossConfig::new().with_margin(0.5).with_distance(distance).init().unwrap()
            .forward(Batch::labelled(x.clone(), &[0, 0, 1, 1]), Tuples::All).unwrap();
        assert!(out.stats.loss.is_finite(), "{distance:?}");
        assert!(grad_rows(&x, &out.loss).iter().flatten().all(|v| v.is_finite()), "{distance:?}");
    }
}

/// A batch and tuples that do not go together, and a bad self index, are refused by name.
#[test]
fn mismatched_batch_and_tuples_are_refused() {
    let contrastive = ContrastiveLossConfig::new().init().unwrap();
    let x = || tensor64(&random_rows(4, 4, 3));
    let t = Triplets::new(vec![0], vec![1], vec![2]).unwrap();
    // Aligned rows are their own tuples.
    let err = triplet().forward(Batch::triplets(x(), x(), x()), Tuples::Triplets(&t)).unwrap_err();
    assert!(matches!(err, MarginError::Unsupported(_)), "{err:?}");
    let err = contrastive.forward(Batch::pairs(x(), x(), &[PairPolarity::Similar; 4]), Tuples::Triplets(&t)).unwrap_err();
    assert!(matches!(err, MarginError::Unsupported(_)), "{err:?}");
    // Aligned rows of the other kind.
    assert!(matches!(triplet().forward(Batch::pairs(x(), x(), &[PairPolarity::Similar; 4]), Tuples::All), Err(MarginError::Unsupported(_))));
    assert!(matches!(contrastive.forward(Batch::triplets(x(), x(), x()), Tuples::All), Err(MarginError::Unsupported(_))));
    // A reference set or self index only with a labelled batch; a self index only with a reference set.
    let labels = [0, 0, 1, 1];
    let reference = || margin::ReferenceSet { embeddings: x(), labels: &labels };
    let err = triplet().forward(Batch::triplets(x(), x(), x()).with_reference(reference()), Tuples::All).unwrap_err();
    assert!(matches!(err, MarginError::Unsupported(_)), "{err:?}");
    let err = triplet().forward(Batch::labelled(x(), &labels).with_self_index(vec![None; 4]), Tuples::All).unwrap_err();
    assert!(matches!(err, MarginError::Unsupported(_)), "{err:?}");
    // The self index: one entry per query row, each inside the reference set.
    let err = contrastive.forward(Batch::labelled(x(), &labels).with_reference(reference()).with_self_index(vec![None; 3]), Tuples::All).unwrap_err();
    assert!(matches!(err, MarginError::LengthMismatch { input: "self_index", got: 3, expected: 4, .. }), "{err:?}");
    let err = triplet()
        .forward(Batch::labelled(x(), &labels).with_reference(reference()).with_self_index(vec![Some(0), Some(1), Some(9), None]), Tuples::All)
        .unwrap_err();
    assert!(matches!(err, MarginError::IndexOutOfRange { input: "self_index", position: 2, index: 9, bound: 4 }), "{err:?}");
}
