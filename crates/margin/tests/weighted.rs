//! Losses through one weight matrix (all or given pairs, mined tuples — what `forward`
//! plans into) equal the gathering path (`margin::reference::gathered`) in value,
//! gradient and stats.

mod common;

use common::*;
use margin::reference::gathered;
use margin::{
    Batch, BatchEasyHardMiner, BatchHardMiner, ContrastiveForm, ContrastiveLoss, ContrastiveLossConfig, CosineSimilarity, Distance,
    DistanceWeightedMiner, FaceNetSemiHardMiner, KindPooling, LossOutput, LossStats, MinerConfig, MultiSimilarityMiner,
    Mining, PairMarginMiner, Pairs, Reducer, TripletMarginLossConfig, TripletMarginMiner, TripletType, Tuples,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn same(a: (&LossOutput, &[Vec<f64>]), b: (&LossOutput, &[Vec<f64>]), what: &str) {
    let (sa, sb): (&LossStats, &LossStats) = (&a.0.stats, &b.0.stats);
    assert_eq!((sa.num_tuples, sa.num_active), (sb.num_tuples, sb.num_active), "{what}: counts");
    assert_close(sa.loss, sb.loss, 1e-9, 1e-12, &format!("{what}: value"));
    assert_rows_close(a.1, b.1, 1e-9, 1e-12, &format!("{what}: grad"));
    for (x, y) in [(sa.mean_ap_dist, sb.mean_ap_dist), (sa.mean_an_dist, sb.mean_an_dist)] {
        assert_eq!(x.is_some(), y.is_some(), "{what}: mean presence");
        if let (Some(x), Some(y)) = (x, y) {
            assert_close(x, y, 1e-9, 1e-12, &format!("{what}: mean"));
        }
    }
}

/// The fused and the gathering contrastive loss on `rows` (fresh leaves), each with its gradient.
fn fused_and_gathered(loss: &ContrastiveLoss, rows: &[Vec<f64>], labels: &[i64], pairs: Option<&Pairs>) -> ((LossOutput, Vec<Vec<f64>>), (LossOutput, Vec<Vec<f64>>)) {
    let x = tensor64(rows);
    let f = loss.forward(Batch::labelled(x.clone(), labels), pairs.map_or(Tuples::All, Tuples::Pairs)).unwrap();
    let gf = grad_rows(&x, &f.loss);
    let x = tensor64(rows);
    let n = gathered::contrastive(loss, x.clone(), labels, None, pairs).unwrap();
    let gn = grad_rows(&x, &n.loss);
    ((f, gf), (n, gn))
}

#[test]
fn contrastive_fused_equals_gathering() {
    let mut seed = 0;
    for distance in [Distance::euclidean_normalized(), Distance::Cosine(CosineSimilarity)] {
        for form in [ContrastiveForm::Linear, ContrastiveForm::Squared] {
            for pooling in [KindPooling::Separate, KindPooling::Pooled] {
                for reducer in [Reducer::AvgNonZero, Reducer::Mean, Reducer::Sum, Reducer::Threshold { low: Some(0.05), high: None }] {
                    seed += 1;
                    let (pm, nm) = if distance == Distance::euclidean_normalized() { (0.3, 1.2) } else { (0.8, 0.1) };
                    let loss = ContrastiveLossConfig::new()
                        .with_form(form)
                        .with_pos_margin(pm)
                        .with_neg_margin(nm)
                        .with_distance(distance)
                        .with_reducer(reducer)
                        .with_pooling(pooling)
                        .init()
                        .unwrap();
                    let rows = random_rows(seed, 30, 5);
                    let labels = random_labels(seed, 30, 6);
                    let what = format!("{} {form:?} {pooling:?} {reducer:?}", distance.describe());
                    let some = Pairs::all(&labels);
                    let some = Pairs { similar: some.similar[..some.similar.len() / 2].to_vec(), dissimilar: some.dissimilar[3..].to_vec() };
                    for pairs in [None, Some(&some)] {
                        let ((f, gf), (n, gn)) = fused_and_gathered(&loss, &rows, &labels, pairs);
                        same((&f, &gf), (&n, &gn), &what);
                    }
                }
            }
        }
    }
}

fn miners(distance: Distance) -> Vec<MinerConfig> {
    vec![
        MinerConfig::BatchHard(BatchHardMiner::new(distance)),
        MinerConfig::BatchEasyHard(BatchEasyHardMiner { distance, ..Default::default() }),
        MinerConfig::BatchEasyHard(BatchEasyHardMiner {
            distance,
            ..BatchEasyHardMiner::new(margin::MiningStrategy::Hard, margin::MiningStrategy::All)
        }),
        MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::Semihard).with_distance(distance)),
        MinerConfig::SemihardFacenet(FaceNetSemiHardMiner::new(distance)),
        MinerConfig::PairMargin(PairMarginMiner { pos_margin: 0.4, neg_margin: 0.9, distance }),
        MinerConfig::MultiSimilarity(MultiSimilarityMiner::default()),
        MinerConfig::DistanceWeighted(DistanceWeightedMiner { cutoff: 0.5, nonzero_loss_cutoff: 1.6 }),
    ]
}

/// `Tuples::Mined` asking for the tuples: always the listed path (one weight matrix on
/// the loss's own distance matrix), whatever the miner.
fn mined_listed<'a>(miner: &'a MinerConfig, rng: &'a mut ChaCha8Rng) -> Tuples<'a> {
    Tuples::Mined(Mining::new(miner, rng).returning_tuples())
}

#[test]
fn forward_mined_equals_mine_then_gathering_loss() {
    let mut seed = 50;
    for distance in [Distance::euclidean_normalized(), Distance::Cosine(CosineSimilarity)] {
        for miner in miners(distance) {
            for smooth in [false, true] {
                seed += 1;
                let rows = random_rows(seed, 28, 6);
                let labels = random_labels(seed, 28, 7);
                let what = format!("{miner:?} smooth {smooth}");
                let triplet = TripletMarginLossConfig::new().with_margin(0.3).with_distance(distance).with_smooth(smooth).init().unwrap();
                let x = tensor64(&rows);
                let f = triplet.forward(Batch::labelled(x.clone(), &labels), mined_listed(&miner, &mut ChaCha8Rng::seed_from_u64(seed))).unwrap();
                let gf = grad_rows(&x, &f.loss);
                let x = tensor64(&rows);
                let mined = miner.mine(&x, &labels, None, &mut ChaCha8Rng::seed_from_u64(seed)).unwrap();
                assert_eq!(f.mined.as_ref(), Some(&mined), "{what}: same tuples");
                let n = triplet.forward(Batch::labelled(x.clone(), &labels), Tuples::Triplets(&mined.into_triplets())).unwrap();
                let gn = grad_rows(&x, &n.loss);
                same((&f, &gf), (&n, &gn), &format!("triplet {what}"));

                let contrastive = ContrastiveLossConfig::new().with_distance(distance).with_pos_margin(if smooth { 0.1 } else { 0.0 })
                    .with_neg_margin(if distance == Distance::euclidean_normalized() { 1.0 } else { 0.2 }).init().unwrap();
                let x = tensor64(&rows);
                let f = contrastive.forward(Batch::labelled(x.clone(), &labels), mined_listed(&miner, &mut ChaCha8Rng::seed_from_u64(seed))).unwrap();
                let gf = grad_rows(&x, &f.loss);
                let x = tensor64(&rows);
                let pairs = f.mined.clone().expect("asked for").into_pairs();
                let n = gathered::contrastive(&contrastive, x.clone(), &labels, None, Some(&pairs)).unwrap();
                let gn = grad_rows(&x, &n.loss);
                same((&f, &gf), (&n, &gn), &format!("contrastive {what}"));
            }
        }
    }
}

/// The backward weights are built in 64×64 tiles (W + Wᵀ across tiles) and,
/// for f32 inputs, written in f32: a batch spanning several tiles, both dtypes,
/// both distance directions, against the gathering path.
#[test]
fn fused_backward_crosses_tile_boundaries_in_f64_and_f32() {
    use burn::tensor::{DType, Tensor, TensorData};
    let rows = random_rows(77, 150, 6);
    let labels = random_labels(77, 150, 40);
    for distance in [Distance::euclidean_normalized(), Distance::Cosine(CosineSimilarity)] {
        let (pm, nm) = if distance == Distance::euclidean_normalized() { (0.2, 1.1) } else { (0.8, 0.2) };
        let loss = ContrastiveLossConfig::new().with_pos_margin(pm).with_neg_margin(nm).with_distance(distance).init().unwrap();
        let what = distance.describe();
        let ((f, gf), (n, gn)) = fused_and_gathered(&loss, &rows, &labels, None);
        same((&f, &gf), (&n, &gn), &format!("{what} f64"));
        // f32: same up to f32 rounding.
        let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        let x = Tensor::<2>::from_data(TensorData::new(flat, [150, 6]), (&device(), DType::F32)).require_grad();
        let f = loss.forward(Batch::labelled(x.clone(), &labels), Tuples::All).unwrap();
        let g32 = grad_rows(&x, &f.loss);
        assert_eq!((f.stats.num_tuples, f.stats.num_active), (n.stats.num_tuples, n.stats.num_active), "{what} f32 counts");
        assert_close(f.stats.loss, n.stats.loss, 1e-4, 1e-6, &format!("{what} f32 value"));
        let scale = gn.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        assert_rows_close(&g32, &gn, 1e-3, 1e-4 * scale, &format!("{what} f32 grad"));
    }
}

/// Few mined tuples (batch-hard: two entries per row of W) take the sparse backward,
/// which sums the gradient entry by entry instead of building the `[B, B]` matrix:
/// same value and gradients as the gathering path, for every distance form, with and
/// without a reference set (gradients w.r.t. both).
#[test]
fn sparse_backward_for_few_mined_tuples_equals_gathering() {
    use margin::{LpDistance, Power, ReferenceSet};
    let b = 160;
    let rows = random_rows(91, b, 6);
    let labels = random_labels(91, b, 40);
    let ref_rows = random_rows(92, b, 6);
    let ref_labels = random_labels(92, b, 40);
    let squared = Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: false });
    for distance in [Distance::euclidean_normalized(), squared, Distance::Cosine(CosineSimilarity)] {
        for miner in [MinerConfig::BatchHard(BatchHardMiner::new(distance)), MinerConfig::SemihardFacenet(FaceNetSemiHardMiner::new(distance))] {
            let what = format!("{} {miner:?}", distance.describe());
            let loss = TripletMarginLossConfig::new().with_margin(0.3).with_distance(distance).init().unwrap();
            // Query only.
            let x = tensor64(&rows);
            let f = loss.forward(Batch::labelled(x.clone(), &labels), mined_listed(&miner, &mut ChaCha8Rng::seed_from_u64(1))).unwrap();
            let f_mined = f.mined.clone().expect("asked for");
            assert!(2 * f_mined.len() * 16 <= b * b, "{what}: the sparse path is taken");
            let gf = grad_rows(&x, &f.loss);
            let x = tensor64(&rows);
            let n = loss.forward(Batch::labelled(x.clone(), &labels), Tuples::Triplets(&f_mined.into_triplets())).unwrap();
            let gn = grad_rows(&x, &n.loss);
            same((&f, &gf), (&n, &gn), &format!("{what} query"));
            // Query against a reference set: gradients w.r.t. both.
            let both = |fused: bool| {
                let (x, r) = (tensor64(&rows), tensor64(&ref_rows));
                let reference = ReferenceSet { embeddings: r.clone(), labels: &ref_labels };
                let batch = Batch::labelled(x.clone(), &labels).with_reference(reference);
                let out = if fused {
                    loss.forward(batch, mined_listed(&miner, &mut ChaCha8Rng::seed_from_u64(1))).unwrap()
                } else {
                    let reference_again = ReferenceSet { embeddings: r.clone(), labels: &ref_labels };
                    let mined = miner.mine(&x, &labels, Some(&reference_again), &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
                    loss.forward(batch, Tuples::Triplets(&mined.into_triplets())).unwrap()
                };
                let grads = out.loss.backward();
                let host = |t: &burn::tensor::Tensor<2>| margin::to_host(&t.grad(&grads).expect("tracked")).chunks(6).map(|c| c.to_vec()).collect::<Vec<_>>();
                (out.stats.loss, host(&x), host(&r))
            };
            let (vf, gxf, grf) = both(true);
            let (vn, gxn, grn) = both(false);
            assert_close(vf, vn, 1e-9, 1e-12, &format!("{what} reference value"));
            assert_rows_close(&gxf, &gxn, 1e-9, 1e-12, &format!("{what} reference grad query"));
            assert_rows_close(&grf, &grn, 1e-9, 1e-12, &format!("{what} reference grad reference"));
        }
    }
}

/// The fused multi-similarity + contrastive path (pairs never listed) equals the listed
/// path with that miner (`Tuples::Mined` asking for the pairs): miner on cosine with the loss on normalised
/// Euclidean (one shared GEMM), on the loss's own distance, and on a distance that
/// prepares rows differently (its own GEMM); every reducer; with a reference set.
#[test]
fn fused_multi_similarity_equals_forward_mined() {
    use margin::{LpDistance, Power, ReferenceSet};
    let squared = Distance::Lp(LpDistance { power: Power::SquaredEuclidean, normalize: false });
    let mut seed = 300;
    for (loss_distance, miner_distance) in [
        (Distance::euclidean_normalized(), Distance::Cosine(CosineSimilarity)),
        (Distance::euclidean_normalized(), Distance::euclidean_normalized()),
        (squared, Distance::Cosine(CosineSimilarity)),
        (Distance::Cosine(CosineSimilarity), Distance::Cosine(CosineSimilarity)),
    ] {
        for reducer in [Reducer::AvgNonZero, Reducer::Mean, Reducer::Threshold { low: Some(0.02), high: None }] {
            seed += 1;
            let (pm, nm) = if loss_distance.direction() == margin::Direction::LargerIsCloser { (0.9, 0.3) } else { (0.1, 0.9) };
            let loss = ContrastiveLossConfig::new()
                .with_pos_margin(pm)
                .with_neg_margin(nm)
                .with_distance(loss_distance)
                .with_reducer(reducer)
                .init()
                .unwrap();
            let miner = MultiSimilarityMiner { epsilon: 0.1, distance: miner_distance };
            let what = format!("loss {} miner {} {reducer:?}", loss_distance.describe(), miner_distance.describe());
            let rows = random_rows(seed, 90, 5);
            let labels = random_labels(seed, 90, 12);
            let x = tensor64(&rows);
            let cfg = MinerConfig::MultiSimilarity(miner);
            let f = loss.forward(Batch::labelled(x.clone(), &labels), Tuples::mined(&cfg, &mut ChaCha8Rng::seed_from_u64(0))).unwrap();
            assert!(f.mined.is_none(), "{what}: fused, no pairs listed");
            let gf = grad_rows(&x, &f.loss);
            let x = tensor64(&rows);
            let n = loss.forward(Batch::labelled(x.clone(), &labels), mined_listed(&cfg, &mut ChaCha8Rng::seed_from_u64(0))).unwrap();
            assert!(n.stats.num_tuples > 0, "{what}: pairs mined");
            let gn = grad_rows(&x, &n.loss);
            same((&f, &gf), (&n, &gn), &what);
            // Against a reference set.
            let ref_rows = random_rows(seed + 1000, 70, 5);
            let ref_labels = random_labels(seed + 1000, 70, 12);
            let run = |fused: bool| {
                let (x, r) = (tensor64(&rows), tensor64(&ref_rows));
                let batch = Batch::labelled(x.clone(), &labels).with_reference(ReferenceSet { embeddings: r.clone(), labels: &ref_labels });
                let out = if fused {
                    loss.forward(batch, Tuples::mined(&cfg, &mut ChaCha8Rng::seed_from_u64(0))).unwrap()
                } else {
                    loss.forward(batch, mined_listed(&cfg, &mut ChaCha8Rng::seed_from_u64(0))).unwrap()
                };
                let grads = out.loss.backward();
                let host = |t: &burn::tensor::Tensor<2>| margin::to_host(&t.grad(&grads).expect("tracked")).chunks(5).map(|c| c.to_vec()).collect::<Vec<_>>();
                (out.stats, host(&x), host(&r))
            };
            let (sf, gxf, grf) = run(true);
            let (sn, gxn, grn) = run(false);
            assert_eq!((sf.num_tuples, sf.num_active), (sn.num_tuples, sn.num_active), "{what} reference counts");
            assert_close(sf.loss, sn.loss, 1e-9, 1e-12, &format!("{what} reference value"));
            assert_rows_close(&gxf, &gxn, 1e-9, 1e-12, &format!("{what} reference grad query"));
            assert_rows_close(&grf, &grn, 1e-9, 1e-12, &format!("{what} reference grad reference"));
        }
    }
}

/// An all-pairs contrastive plan with few active pairs (small margins: most pairs
/// already satisfied, as late in training) takes the sparse backward: same value,
/// gradient and stats as the gathering path; and the same with many active pairs
/// (dense backward).
#[test]
fn all_pairs_contrastive_sparse_and_dense_backward_equal_gathering() {
    let rows = random_rows(55, 160, 6);
    let labels = random_labels(55, 160, 40);
    for (pm, nm) in [(1.2, 0.05), (0.0, 1.3)] {
        let loss = ContrastiveLossConfig::new().with_pos_margin(pm).with_neg_margin(nm).with_distance(Distance::euclidean_normalized()).init().unwrap();
        let ((f, gf), (n, gn)) = fused_and_gathered(&loss, &rows, &labels, None);
        let active = n.stats.num_active;
        assert!(active > 0, "margins {pm}/{nm}: some active pairs");
        // Nonzero weights = active pairs here: ≤ 1/16 of the matrix takes the sparse path.
        let sparse = active * 16 <= 160 * 160;
        assert_eq!(sparse, nm < 0.5, "margins {pm}/{nm}: {active} active pairs");
        same((&f, &gf), (&n, &gn), &format!("margins {pm}/{nm}, {active} active of {}", n.stats.num_tuples));
    }
}

/// Against a reference set, every pair and given pairs go through one weight matrix
/// too (`forward` plans them so): value, counts and gradients w.r.t. both sets equal
/// the gathering path's.
#[test]
fn contrastive_with_reference_set_equals_gathering() {
    use margin::ReferenceSet;
    let (rows, ref_rows) = (random_rows(701, 40, 5), random_rows(702, 55, 5));
    let (labels, ref_labels) = (random_labels(701, 40, 6), random_labels(702, 55, 6));
    let some = Pairs::all_between(&labels, &ref_labels, false);
    let some = Pairs { similar: some.similar[1..].to_vec(), dissimilar: some.dissimilar[..some.dissimilar.len() / 3].to_vec() };
    for distance in [Distance::euclidean_normalized(), Distance::Cosine(CosineSimilarity)] {
        let (pm, nm) = if distance == Distance::euclidean_normalized() { (0.2, 1.1) } else { (0.8, 0.2) };
        let loss = ContrastiveLossConfig::new().with_pos_margin(pm).with_neg_margin(nm).with_distance(distance).init().unwrap();
        for pairs in [None, Some(&some)] {
            let run = |planned: bool| {
                let (x, r) = (tensor64(&rows), tensor64(&ref_rows));
                let reference = ReferenceSet { embeddings: r.clone(), labels: &ref_labels };
                let out = if planned {
                    loss.forward(Batch::labelled(x.clone(), &labels).with_reference(reference), pairs.map_or(Tuples::All, Tuples::Pairs)).unwrap()
                } else {
                    gathered::contrastive(&loss, x.clone(), &labels, Some(reference), pairs).unwrap()
                };
                let grads = out.loss.backward();
                let host = |t: &burn::tensor::Tensor<2>| margin::to_host(&t.grad(&grads).expect("tracked")).chunks(5).map(|c| c.to_vec()).collect::<Vec<_>>();
                (out.stats, host(&x), host(&r))
            };
            let what = format!("{} pairs given {}", distance.describe(), pairs.is_some());
            let ((sf, gxf, grf), (sn, gxn, grn)) = (run(true), run(false));
            assert!(sn.num_active > 0, "{what}: active pairs");
            assert_eq!((sf.num_tuples, sf.num_active), (sn.num_tuples, sn.num_active), "{what}: counts");
            assert_close(sf.loss, sn.loss, 1e-9, 1e-12, &format!("{what}: value"));
            assert_rows_close(&gxf, &gxn, 1e-9, 1e-12, &format!("{what}: grad query"));
            assert_rows_close(&grf, &grn, 1e-9, 1e-12, &format!("{what}: grad reference"));
        }
    }
}

/// Given tuples of the other kind are converted as PML converts mined ones: triplets
/// split into pairs for the contrastive loss, pairs combined per anchor for the triplet loss.
#[test]
fn given_tuples_of_the_other_kind_are_converted() {
    let rows = random_rows(801, 24, 5);
    let labels = random_labels(801, 24, 5);
    let contrastive = ContrastiveLossConfig::new().with_neg_margin(1.2).init().unwrap();
    let triplet = TripletMarginLossConfig::new().with_margin(0.4).init().unwrap();
    let t = margin::Triplets::all(&labels);
    let p = Pairs::all(&labels);
    let (x, y) = (tensor64(&rows), tensor64(&rows));
    let got = contrastive.forward(Batch::labelled(x.clone(), &labels), Tuples::Triplets(&t)).unwrap();
    let want = contrastive.forward(Batch::labelled(y.clone(), &labels), Tuples::Pairs(&margin::miner::triplets_to_pairs(&t))).unwrap();
    same((&got, &grad_rows(&x, &got.loss)), (&want, &grad_rows(&y, &want.loss)), "triplets → pairs");
    let (x, y) = (tensor64(&rows), tensor64(&rows));
    let got = triplet.forward(Batch::labelled(x.clone(), &labels), Tuples::Pairs(&p)).unwrap();
    let want = triplet.forward(Batch::labelled(y.clone(), &labels), Tuples::Triplets(&margin::miner::pairs_to_triplets(&p))).unwrap();
    same((&got, &grad_rows(&x, &got.loss)), (&want, &grad_rows(&y, &want.loss)), "pairs → triplets");
}
