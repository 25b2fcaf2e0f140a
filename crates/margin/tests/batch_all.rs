//! The fused O(B²)-memory batch-all triplet loss equals the explicit one (every
//! triplet listed) in value, gradient and counts — on random batches up to
//! B = 64, for both distance directions, every fusable reducer, the soft margin,
//! a separate reference set, and TripletMarginMiner bands.

mod common;

use common::*;
use margin::{
    Batch, CosineSimilarity, Distance, DotProductSimilarity, LpDistance, MinerConfig, Power, ReferenceSet, Reducer, Triplets,
    TripletMarginLossConfig, TripletMarginMiner, TripletType, Tuples,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn distances() -> Vec<Distance> {
    vec![
        Distance::euclidean_normalized(),
        Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: false }),
        Distance::Cosine(CosineSimilarity),
        Distance::Dot(DotProductSimilarity { normalize: false }),
    ]
}

fn loss(distance: Distance, margin: f64, reducer: Reducer, smooth: bool) -> margin::TripletMarginLoss {
    TripletMarginLossConfig::new()
        .with_margin(margin)
        .with_distance(distance)
        .with_reducer(reducer)
        .with_smooth(smooth)
        .init()
        .unwrap()
}

/// Fused (`Tuples::All`) vs explicit (every triplet listed, gathered) on one batch.
fn check_batch(seed: u64, b: usize, d: usize, classes: usize, distance: Distance, margin: f64, reducer: Reducer, smooth: bool) {
    let rows = random_rows(seed, b, d);
    let labels = random_labels(seed, b, classes);
    let l = loss(distance, margin, reducer, smooth);
    let what = format!("seed {seed} B {b} classes {classes} {} m {margin} {reducer:?} smooth {smooth}", distance.describe());

    let x = tensor64(&rows);
    let fused = l.forward(Batch::labelled(x.clone(), &labels), Tuples::All).unwrap();
    let g_fused = grad_rows(&x, &fused.loss);
    let x = tensor64(&rows);
    let naive = l.forward(Batch::labelled(x.clone(), &labels), Tuples::Triplets(&Triplets::all(&labels))).unwrap();
    let g_naive = grad_rows(&x, &naive.loss);

    assert_close(fused.stats.loss, naive.stats.loss, 1e-9, 1e-12, &format!("{what}: value"));
    assert_rows_close(&g_fused, &g_naive, 1e-9, 1e-12, &format!("{what}: grad"));
    assert_eq!(fused.stats.num_tuples, naive.stats.num_tuples, "{what}: tuples");
    assert_eq!(fused.stats.num_active, naive.stats.num_active, "{what}: active");
    for (f, n) in [(fused.stats.mean_ap_dist, naive.stats.mean_ap_dist), (fused.stats.mean_an_dist, naive.stats.mean_an_dist)] {
        match (f, n) {
            (Some(f), Some(n)) => assert_close(f, n, 1e-9, 1e-12, &format!("{what}: mean distance")),
            (f, n) => assert_eq!(f.is_some(), n.is_some(), "{what}: mean distance presence"),
        }
    }
}

#[test]
fn fused_equals_explicit_on_random_batches_up_to_b64() {
    let mut seed = 1;
    for &(b, classes) in &[(8, 3), (16, 4), (33, 5), (48, 12), (64, 16), (64, 3)] {
        for distance in distances() {
            for reducer in [Reducer::AvgNonZero, Reducer::Mean, Reducer::Sum] {
                let margin = if distance.direction() == margin::Direction::SmallerIsCloser { 0.2 } else { 0.1 };
                check_batch(seed, b, 6, classes, distance, margin, reducer, false);
                seed += 1;
            }
            check_batch(seed, b, 6, classes, distance, 0.2, Reducer::AvgNonZero, true);
            seed += 1;
        }
    }
}

#[test]
fn fused_with_miner_equals_mine_then_explicit_loss() {
    let mut seed = 100;
    for kind in [TripletType::All, TripletType::Hard, TripletType::Semihard, TripletType::Easy] {
        for distance in distances() {
            for &(b, classes) in &[(24, 4), (64, 10)] {
                for (loss_margin, reducer, smooth) in
                    [(0.2, Reducer::AvgNonZero, false), (0.5, Reducer::Mean, false), (0.1, Reducer::Mean, true)]
                {
                    seed += 1;
                    let rows = random_rows(seed, b, 5);
                    let labels = random_labels(seed, b, classes);
                    let miner = TripletMarginMiner::new(0.2, kind).with_distance(distance);
                    let l = loss(distance, loss_margin, reducer, smooth);
                    let x = tensor64(&rows);
                    // The miner on the loss's distance: the fused band (triplets never listed).
                    let cfg = MinerConfig::TripletMargin(miner);
                    let fused = l.forward(Batch::labelled(x.clone(), &labels), Tuples::mined(&cfg, &mut ChaCha8Rng::seed_from_u64(0))).unwrap();
                    let g_fused = grad_rows(&x, &fused.loss);
                    let x = tensor64(&rows);
                    let mined = miner.mine(&x, &labels, None).unwrap();
                    let naive = l.forward(Batch::labelled(x.clone(), &labels), Tuples::Triplets(&mined.triplets)).unwrap();
                    let g_naive = grad_rows(&x, &naive.loss);
                    let what = format!("{kind:?} {} B {b} {reducer:?} smooth {smooth}", distance.describe());
                    assert_eq!(fused.stats.num_tuples, mined.triplets.len(), "{what}: kept");
                    assert_eq!(fused.stats.num_active, naive.stats.num_active, "{what}: active");
                    assert_close(fused.stats.loss, naive.stats.loss, 1e-9, 1e-12, &format!("{what}: value"));
                    assert_rows_close(&g_fused, &g_naive, 1e-9, 1e-12, &format!("{what}: grad"));
                }
            }
        }
    }
}

#[test]
fn fused_with_reference_set_equals_explicit() {
    for (seed, distance) in distances().into_iter().enumerate() {
        let seed = seed as u64 + 500;
        let (q_rows, r_rows) = (random_rows(seed, 20, 4), random_rows(seed + 1, 37, 4));
        let (ql, rl) = (random_labels(seed, 20, 5), random_labels(seed + 1, 37, 5));
        let l = loss(distance, 0.2, Reducer::AvgNonZero, false);
        let run = |tuples: Option<&Triplets>| {
            let (q, r) = (tensor64(&q_rows), tensor64(&r_rows));
            let batch = Batch::labelled(q.clone(), &ql).with_reference(ReferenceSet { embeddings: r.clone(), labels: &rl });
            let out = l.forward(batch, tuples.map_or(Tuples::All, Tuples::Triplets)).unwrap();
            let grads = out.loss.backward();
            let g = |t: &burn::tensor::Tensor<2>| margin::to_host(&t.grad(&grads).unwrap());
            (out.stats, g(&q), g(&r))
        };
        let (fs, fq, fr) = run(None);
        let all = Triplets::all_between(&ql, &rl, false);
        let (ns, nq, nr) = run(Some(&all));
        assert_eq!((fs.num_tuples, fs.num_active), (ns.num_tuples, ns.num_active));
        assert_close(fs.loss, ns.loss, 1e-9, 1e-12, "reference value");
        for (a, b) in fq.iter().zip(&nq).chain(fr.iter().zip(&nr)) {
            assert_close(*a, *b, 1e-9, 1e-12, "reference grad");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// The O(B²) batch-all equals the naive version (property form).
    #[test]
    fn prop_fused_batch_all_equals_naive(seed in 0u64..1_000_000, b in 2usize..40, classes in 1usize..10,
                                         which in 0usize..4, margin in 0.0f64..1.0, smooth in any::<bool>()) {
        check_batch(seed, b, 3, classes.min(b), distances()[which], margin, Reducer::AvgNonZero, smooth);
    }
}
