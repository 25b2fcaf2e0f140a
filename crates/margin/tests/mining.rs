//! Miner properties (proptest), refused configurations, serialisation, the
//! reference-set form, and degenerate batches.

mod common;

use common::*;
use margin::{
    Batch, BatchEasyHardMiner, BatchHardMiner, ContrastiveLossConfig, CosineSimilarity, Distance, DistanceWeightedMiner,
    FaceNetSemiHardMiner, MarginError, Mined, MinerConfig, MiningStrategy, MultiSimilarityMiner, PairMarginMiner,
    ReferenceSet, SemiHardFallback, Triplets, TripletMarginLossConfig, TripletMarginMiner, TripletType, Tuples,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn distances() -> [Distance; 2] {
    [Distance::euclidean_normalized(), Distance::Cosine(CosineSimilarity)]
}

/// Every miner config, on `distance`.
fn all_miners(distance: Distance) -> Vec<MinerConfig> {
    use MiningStrategy::*;
    let mut v = vec![
        MinerConfig::BatchHard(BatchHardMiner::new(distance)),
        MinerConfig::SemihardFacenet(FaceNetSemiHardMiner::new(distance)),
        MinerConfig::SemihardFacenet(FaceNetSemiHardMiner { fallback: SemiHardFallback::Hardest, distance }),
        MinerConfig::PairMargin(PairMarginMiner { pos_margin: 0.3, neg_margin: 0.7, distance }),
        MinerConfig::MultiSimilarity(MultiSimilarityMiner { epsilon: 0.1, distance }),
        MinerConfig::DistanceWeighted(DistanceWeightedMiner::default()),
    ];
    for kind in [TripletType::All, TripletType::Hard, TripletType::Semihard, TripletType::Easy] {
        v.push(MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, kind).with_distance(distance)));
    }
    for pos in [Easy, Semihard, Hard, All] {
        for neg in [Easy, Semihard, Hard, All] {
            let m = BatchEasyHardMiner { distance, ..BatchEasyHardMiner::new(pos, neg) };
            if m.validate().is_ok() {
                v.push(MinerConfig::BatchEasyHard(m));
            }
        }
    }
    v
}

fn check_valid(mined: &Mined, ql: &[i64], rl: &[i64], same_set: bool, what: &str) {
    match mined {
        Mined::Triplets(t) => {
            for (a, p, n) in t.triplets.iter() {
                assert_eq!(ql[a], rl[p], "{what}: label[a] = label[p]");
                assert_ne!(ql[a], rl[n], "{what}: label[n] ≠ label[a]");
                assert!(!same_set || a != p, "{what}: a ≠ p");
            }
            assert_eq!(t.stats.num_triplets, t.triplets.len());
        }
        Mined::Pairs(p) => {
            for &(a, j) in &p.pairs.similar {
                assert_eq!(ql[a], rl[j], "{what}: similar pair labels");
                assert!(!same_set || a != j, "{what}: no self pair");
            }
            for &(a, j) in &p.pairs.dissimilar {
                assert_ne!(ql[a], rl[j], "{what}: dissimilar pair labels");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn prop_every_mined_tuple_is_valid(seed in 0u64..1_000_000, b in 1usize..40, classes in 1usize..12, which in 0usize..2) {
        let distance = distances()[which];
        let x = tensor64(&random_rows(seed, b, 5));
        let labels = random_labels(seed, b, classes.min(b));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for m in all_miners(distance) {
            let mined = m.mine(&x, &labels, None, &mut rng).unwrap();
            check_valid(&mined, &labels, &labels, true, &format!("{m:?}"));
        }
    }

    #[test]
    fn prop_semihard_triplets_are_in_the_band(seed in 0u64..1_000_000, b in 2usize..40, classes in 1usize..8,
                                              which in 0usize..2, margin in 0.01f64..1.0) {
        let distance = distances()[which];
        let rows = random_rows(seed, b, 4);
        let labels = random_labels(seed, b, classes.min(b));
        let mined = TripletMarginMiner::new(margin, TripletType::Semihard).with_distance(distance)
            .mine(&tensor64(&rows), &labels, None).unwrap();
        let dir = distance.direction();
        for (a, p, n) in mined.triplets.iter() {
            let ap = margin::reference::distance(&distance, &rows[a], &rows[p]);
            let an = margin::reference::distance(&distance, &rows[a], &rows[n]);
            let delta = -dir.violation(ap, an); // d_an − d_ap, or s_ap − s_an
            prop_assert!(delta > -1e-12 && delta <= margin + 1e-12, "Δ = {delta}, m = {margin}");
        }
    }

    #[test]
    fn prop_batch_hard_is_a_subset_of_all_triplets(seed in 0u64..1_000_000, b in 2usize..40, classes in 1usize..8, which in 0usize..2) {
        let distance = distances()[which];
        let x = tensor64(&random_rows(seed, b, 4));
        let labels = random_labels(seed, b, classes.min(b));
        let hard = BatchHardMiner::new(distance).mine(&x, &labels, None).unwrap().triplets;
        let all: std::collections::HashSet<_> = Triplets::all(&labels).iter().collect();
        prop_assert!(hard.iter().all(|t| all.contains(&t)));
        // One per anchor with a positive and a negative.
        let anchors = (0..b).filter(|&a| {
            labels.iter().enumerate().any(|(j, &y)| j != a && y == labels[a]) && labels.iter().any(|&y| y != labels[a])
        }).count();
        prop_assert_eq!(hard.len(), anchors);
    }

    #[test]
    fn prop_hard_semihard_easy_partition_all_triplets(seed in 0u64..1_000_000, b in 2usize..30, classes in 1usize..6) {
        let x = tensor64(&random_rows(seed, b, 3));
        let labels = random_labels(seed, b, classes.min(b));
        let count = |k| TripletMarginMiner::new(0.3, k).mine(&x, &labels, None).unwrap().triplets.len();
        prop_assert_eq!(count(TripletType::Hard) + count(TripletType::Semihard), count(TripletType::All));
        prop_assert_eq!(count(TripletType::All) + count(TripletType::Easy), Triplets::all(&labels).len());
    }
}

#[test]
fn miners_work_against_a_reference_set() {
    let q = tensor64(&random_rows(1, 10, 4));
    let r = tensor64(&random_rows(2, 25, 4));
    let (ql, rl) = (random_labels(1, 10, 4), random_labels(2, 25, 4));
    let reference = ReferenceSet { embeddings: r, labels: &rl };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for distance in distances() {
        for m in all_miners(distance) {
            let mined = m.mine(&q, &ql, Some(&reference), &mut rng).unwrap();
            check_valid(&mined, &ql, &rl, false, &format!("{m:?}"));
            if let Mined::Triplets(t) = &mined {
                assert!(t.triplets.check(10, 25).is_ok());
            }
        }
    }
}

#[test]
fn refused_batch_easy_hard_combinations_are_typed_errors() {
    use MiningStrategy::*;
    let x = tensor64(&random_rows(1, 8, 3));
    let labels = random_labels(1, 8, 3);
    for (pos, neg) in [(Semihard, Semihard), (All, Semihard), (Semihard, All)] {
        let m = BatchEasyHardMiner::new(pos, neg);
        assert!(matches!(m.mine(&x, &labels, None), Err(MarginError::Unsupported(_))), "{pos:?} {neg:?}");
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(matches!(MinerConfig::BatchEasyHard(m).mine(&x, &labels, None, &mut rng), Err(MarginError::Unsupported(_))));
    }
    assert!(matches!(
        TripletMarginMiner::new(f64::NAN, TripletType::All).mine(&x, &labels, None),
        Err(MarginError::InvalidConfig { field: "margin", .. })
    ));
    assert!(matches!(MultiSimilarityMiner::new(-1.0).mine(&x, &labels, None), Err(MarginError::InvalidConfig { .. })));
}

#[test]
fn distance_weighted_is_deterministic_for_a_seed() {
    let x = tensor64(&random_rows(7, 40, 16));
    let labels = random_labels(7, 40, 8);
    let m = DistanceWeightedMiner { cutoff: 0.5, nonzero_loss_cutoff: 1.6 };
    let draw = |seed| m.mine(&x, &labels, None, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap().triplets;
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
    assert!(!draw(1).is_empty());
    let cos = MinerConfig::BatchHard(BatchHardMiner::new(Distance::Cosine(CosineSimilarity)));
    assert!(cos.validate().is_ok());
}

#[test]
fn miner_config_round_trips_through_json_and_names() {
    for distance in distances() {
        for m in all_miners(distance) {
            let json = serde_json::to_string(&m).unwrap();
            let back: MinerConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, m, "{json}");
            assert!(MinerConfig::NAMES.contains(&m.name()));
            assert_eq!(MinerConfig::default_for(m.name()).unwrap().name(), m.name());
        }
    }
    let m: MinerConfig = serde_json::from_str(r#"{"miner":"triplet-margin","margin":0.1,"type":"semihard"}"#).unwrap();
    assert_eq!(m, MinerConfig::TripletMargin(TripletMarginMiner::new(0.1, TripletType::Semihard)));
}

/// No valid tuple: every miner returns nothing, and the loss on the empty set is
/// a zero attached to the graph whose backward gives zero gradients.
#[test]
fn degenerate_batches_give_empty_tuples_and_attached_zero_loss() {
    let rows = random_rows(5, 6, 3);
    let unique: Vec<i64> = (0..6).collect();
    let one_class = vec![4; 6];
    let triplet = TripletMarginLossConfig::new().init().unwrap();
    let contrastive = ContrastiveLossConfig::new().init().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for labels in [&unique, &one_class] {
        for distance in distances() {
            for m in all_miners(distance) {
                let x = tensor64(&rows);
                let mined = m.mine(&x, labels, None, &mut rng).unwrap();
                let is_pair_miner = matches!(mined, Mined::Pairs(_));
                // One class still has similar pairs; unique labels still have dissimilar ones.
                if !is_pair_miner {
                    assert!(mined.is_empty(), "{m:?} on {labels:?}");
                }
                let triplets = mined.clone().into_triplets();
                assert!(triplets.is_empty(), "{m:?}: no valid triplet exists");
                let out = triplet.forward(Batch::labelled(x.clone(), labels), Tuples::Triplets(&triplets)).unwrap();
                assert_eq!(out.stats.loss, 0.0);
                let g = grad_rows(&x, &out.loss);
                assert!(g.iter().flatten().all(|&v| v == 0.0));
                let x = tensor64(&rows);
                let pairs = mined.into_pairs();
                let out = contrastive.forward(Batch::labelled(x.clone(), labels), Tuples::Pairs(&pairs)).unwrap();
                let g = grad_rows(&x, &out.loss);
                assert!(g.iter().flatten().all(|v| v.is_finite()));
            }
        }
        // The fused all-triplets path: no triplet → attached zero, zero gradient.
        for smooth in [false, true] {
            let x = tensor64(&rows);
            let out = TripletMarginLossConfig::new().with_smooth(smooth).init().unwrap().forward(Batch::labelled(x.clone(), labels), Tuples::All).unwrap();
            assert_eq!((out.stats.loss, out.stats.num_tuples), (0.0, 0));
            let g = grad_rows(&x, &out.loss);
            assert!(g.iter().flatten().all(|&v| v == 0.0));
        }
    }
    // Tuples exist but none is active: still an attached zero.
    let x = tensor64(&[vec![1.0, 0.0], vec![1.0, 0.01], vec![-1.0, 0.0], vec![-1.0, 0.01]]);
    let out = TripletMarginLossConfig::new().with_margin(0.1).init().unwrap().forward(Batch::labelled(x.clone(), &[0, 0, 1, 1]), Tuples::All).unwrap();
    assert_eq!((out.stats.loss, out.stats.num_tuples, out.stats.num_active), (0.0, 8, 0));
    assert!(grad_rows(&x, &out.loss).iter().flatten().all(|&v| v == 0.0));
}
