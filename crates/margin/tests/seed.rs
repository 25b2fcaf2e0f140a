//! The seed tutorial's three demos as tests (values printed by its C++ programs).

mod common;

use common::*;
use margin::{
    Batch, ContrastiveLossConfig, Distance, LpDistance, PairPolarity, Power, Reducer, TripletMarginLossConfig, Tuples,
};

fn seed_triplet(normalize: bool) -> f64 {
    let a = tensor64(&[vec![1.0, 0.9, 1.1], vec![0.0, 0.1, -0.1]]);
    let p = tensor64(&[vec![1.1, 1.0, 1.0], vec![0.05, 0.1, 0.0]]);
    let n = tensor64(&[vec![3.0, -2.0, 0.0], vec![-1.0, 1.0, 1.0]]);
    TripletMarginLossConfig::new()
        .with_margin(0.5)
        .with_distance(Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize }))
        .with_reducer(Reducer::Mean)
        .init()
        .unwrap()
        .forward(Batch::triplets(a, p, n), Tuples::All)
        .unwrap()
        .stats
        .loss
}

#[test]
fn seed_batch_triplet_loss_is_zero_without_and_with_l2_normalisation() {
    assert_eq!(format!("{:.6}", seed_triplet(false)), "0.000000");
    assert_eq!(format!("{:.6}", seed_triplet(true)), "0.000000");
}

#[test]
fn seed_contrastive_loss_is_0_093893_with_similar_meaning_same_class() {
    let x = tensor64(&[vec![0.0, 0.0], vec![1.0, 1.0], vec![2.0, 2.0], vec![5.0, 5.0]]);
    let y = tensor64(&[vec![0.1, -0.1], vec![1.2, 1.1], vec![3.0, 2.8], vec![4.6, 5.2]]);
    // The seed's `similar = {1, 1, 0, 0}` with 1 = similar.
    use PairPolarity::{Dissimilar, Similar};
    let out = ContrastiveLossConfig::hadsell(1.0)
        .init()
        .unwrap()
        .forward(Batch::pairs(x.clone(), y, &[Similar, Similar, Dissimilar, Dissimilar]), Tuples::All)
        .unwrap();
    assert_eq!(format!("{:.6}", out.stats.loss), "0.093893");
    assert_eq!(out.stats.num_tuples, 4);
    // d² for both similar pairs and (1 − 0.447)² for the close dissimilar one; the far one is easy.
    assert_eq!(out.stats.num_active, 3);
    // Inverting the polarity gives a different loss: the convention is not symmetric.
    let flipped = ContrastiveLossConfig::hadsell(1.0)
        .init()
        .unwrap()
        .forward(Batch::pairs(x, tensor64(&[vec![0.1, -0.1], vec![1.2, 1.1], vec![3.0, 2.8], vec![4.6, 5.2]]), &[Dissimilar, Dissimilar, Similar, Similar]), Tuples::All)
        .unwrap();
    assert!((flipped.stats.loss - 0.093893).abs() > 0.1);
}

#[path = "../examples/seed_toy.rs"]
#[allow(dead_code)]
mod seed_toy;

#[test]
fn seed_toy_linear_embedding_training_lowers_the_triplet_loss() {
    let losses = seed_toy::train(50, 42);
    let first = losses[0];
    let last = *losses.last().unwrap();
    assert!(first > 0.0, "the toy starts with active triplets (loss {first})");
    assert!(last < 0.5 * first, "loss fell from {first} to {last}");
}
