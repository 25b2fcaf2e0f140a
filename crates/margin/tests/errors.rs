//! Bad input gives a typed error naming the input and its shape — never a panic or a NaN.

mod common;

use common::*;
use margin::{
    ContrastiveLossConfig, Distance, MarginError, PairPolarity, Pairs, TripletMarginLossConfig, Triplets,
};

fn triplet() -> margin::TripletMarginLoss {
    TripletMarginLossConfig::new().init().unwrap()
}

#[test]
fn nan_in_embeddings_is_refused_naming_row_and_column() {
    let mut rows = random_rows(1, 4, 3);
    rows[2][1] = f64::NAN;
    let err = triplet().forward(tensor64(&rows), &[0, 0, 1, 1], None).unwrap_err();
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
        .forward_pairs(tensor64(&random_rows(3, 3, 2)), tensor64(&rows), &[PairPolarity::Similar; 3])
        .unwrap_err();
    assert!(matches!(err, MarginError::NonFinite { input: "y", row: 0, col: 0, .. }), "{err:?}");
}

#[test]
fn label_count_must_match_batch_size() {
    let err = triplet().forward(tensor64(&random_rows(1, 4, 3)), &[0, 0, 1], None).unwrap_err();
    assert_eq!(
        err,
        MarginError::LabelCount { input: "embeddings", labels_input: "labels", labels: 3, rows: 4, shape: vec![4, 3] }
    );
    assert_eq!(err.to_string(), "labels has 3 labels but embeddings has 4 rows (shape [4, 3])");
}

#[test]
fn zero_dimensional_embeddings_are_refused() {
    let x = burn::tensor::Tensor::<2>::zeros([4, 0], &device());
    let err = triplet().forward(x, &[0, 0, 1, 1], None).unwrap_err();
    assert!(matches!(err, MarginError::Empty { input: "embeddings", ref shape, .. } if shape == &vec![4, 0]), "{err:?}");
}

#[test]
fn mismatched_anchor_positive_negative_shapes_are_refused() {
    let err = triplet()
        .forward_triplets(tensor64(&random_rows(1, 4, 3)), tensor64(&random_rows(2, 4, 3)), tensor64(&random_rows(3, 3, 3)))
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
        .forward_pairs(tensor64(&random_rows(1, 3, 2)), tensor64(&random_rows(2, 3, 2)), &[PairPolarity::Similar])
        .unwrap_err();
    assert!(matches!(err, MarginError::LabelCount { labels_input: "polarity", labels: 1, rows: 3, .. }), "{err:?}");
}

#[test]
fn out_of_range_tuples_are_refused() {
    let t = Triplets::new(vec![0], vec![1], vec![9]).unwrap();
    let err = triplet().forward(tensor64(&random_rows(1, 4, 3)), &[0, 0, 1, 1], Some(&t)).unwrap_err();
    assert!(matches!(err, MarginError::IndexOutOfRange { input: "triplets.negative", index: 9, bound: 4, .. }));
    let p = Pairs { similar: vec![(0, 7)], dissimilar: vec![] };
    let err = ContrastiveLossConfig::new().init().unwrap().forward(tensor64(&random_rows(1, 4, 3)), &[0, 0, 1, 1], Some(&p)).unwrap_err();
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
        let out = triplet().forward(x.clone(), &labels, None).unwrap();
        assert_eq!(out.stats.loss, 0.0);
        assert_eq!(out.stats.num_tuples, 0);
        assert_eq!(out.stats.mean_ap_dist, None);
        let g = grad_rows(&x, &out.loss);
        assert!(g.iter().flatten().all(|&v| v == 0.0), "{g:?}");
    }
    // Contrastive on all-singletons still has negative pairs; on one class only positives.
    let x = tensor64(&random_rows(9, 1, 3));
    let out = ContrastiveLossConfig::new().init().unwrap().forward(x.clone(), &[3], None).unwrap();
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
            .forward(x.clone(), &[0, 0, 1, 2], None).unwrap();
        assert!(out.stats.loss.is_finite());
        assert!(grad_rows(&x, &out.loss).iter().flatten().all(|v| v.is_finite()), "{distance:?}");
        let x = tensor64(&rows);
        let out = ContrastiveLossConfig::new().with_distance(distance).init().unwrap()
            .forward(x.clone(), &[0, 0, 1, 2], None).unwrap();
        assert!(grad_rows(&x, &out.loss).iter().flatten().all(|v| v.is_finite()), "{distance:?}");
    }
    // A zero vector under cosine similarity and normalised Euclidean distance.
    let rows = vec![vec![0.0, 0.0], vec![0.6, 0.8], vec![1.0, 0.0], vec![0.0, -1.0]];
    for distance in [Distance::Cosine(margin::CosineSimilarity), Distance::euclidean_normalized()] {
        let x = tensor64(&rows);
        let out = TripletMarginLossConfig::new().with_margin(0.5).with_distance(distance).init().unwrap()
            .forward(x.clone(), &[0, 0, 1, 1], None).unwrap();
        assert!(out.stats.loss.is_finite(), "{distance:?}");
        assert!(grad_rows(&x, &out.loss).iter().flatten().all(|v| v.is_finite()), "{distance:?}");
    }
}
