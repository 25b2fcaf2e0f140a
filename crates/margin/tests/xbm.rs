//! Cross-batch memory: FIFO behaviour; the loss of a batch against the memory equals the
//! gathering oracle on the tuples listed with the self pairs excluded — value, gradient
//! and counts — for every valid tuple (fused), for a fused miner (triplet-margin band,
//! multi-similarity) and for a listed one (batch-hard). Every comparison is also run
//! against the same oracle with the self pairs *included*, which must disagree: each
//! test fails if self pairs were included, or if the fused and listed paths disagreed.

mod common;

use common::*;
use margin::reference::gathered;
use margin::xbm::CrossBatchMemory;
use margin::{
    BatchHardMiner, ContrastiveLoss, ContrastiveLossConfig, LossStats, MinerConfig, MiningInput, MultiSimilarityMiner,
    Pairs, ReferenceSet, TripletMarginLoss, TripletMarginLossConfig, TripletMarginMiner, TripletType, Triplets,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[test]
fn fifo_evicts_the_oldest_and_reports_slots() {
    let mut m = CrossBatchMemory::new(5).unwrap();
    assert_eq!(m.enqueue(&tensor64(&random_rows(1, 3, 2)), &[1, 2, 3]).unwrap(), vec![Some(0), Some(1), Some(2)]);
    assert_eq!(m.enqueue(&tensor64(&random_rows(2, 3, 2)), &[4, 5, 6]).unwrap(), vec![Some(2), Some(3), Some(4)]);
    assert_eq!(m.labels(), vec![2, 3, 4, 5, 6]);
    assert_eq!(m.enqueue(&tensor64(&random_rows(3, 7, 2)), &[0; 7]).unwrap()[..3], [None, None, Some(0)]);
    assert_eq!(m.len(), 5);
    assert!(m.enqueue(&tensor64(&random_rows(3, 2, 3)), &[0, 0]).is_err(), "dimension changes are refused");
    assert!(CrossBatchMemory::new(0).is_err());
}

/// A memory of capacity 40 holding two past batches (the oldest rows evicted by the
/// current one), and the current batch: 16 rows of 4 classes, row 3 with a label seen
/// nowhere else — its only positive in the memory is its own copy.
struct Setup {
    memory: CrossBatchMemory,
    rows: Vec<Vec<f64>>,
    labels: Vec<i64>,
}

fn setup() -> Setup {
    let mut memory = CrossBatchMemory::new(40).unwrap();
    for s in 0..2 {
        memory.enqueue(&tensor64(&random_rows(10 + s, 16, 5)), &random_labels(10 + s, 16, 4)).unwrap();
    }
    let mut labels = random_labels(99, 16, 4);
    labels[3] = 1000;
    Setup { memory, rows: random_rows(99, 16, 5), labels }
}

/// What the oracle sees: the memory after the batch is enqueued, and each query's slot.
struct After {
    rows: Vec<Vec<f64>>,
    labels: Vec<i64>,
    slots: Vec<Option<usize>>,
}

impl Setup {
    fn after(&self) -> After {
        let mut m = self.memory.clone();
        let slots = m.enqueue(&tensor64(&self.rows), &self.labels).unwrap();
        assert!(slots.iter().all(Option::is_some), "the whole batch is in the memory");
        After { rows: m.to_host_rows(), labels: m.labels(), slots }
    }

    /// The oracle's self map: the slots, or none at all (self pairs included).
    fn self_index(&self, after: &After, exclude_self: bool) -> Vec<Option<usize>> {
        if exclude_self { after.slots.clone() } else { vec![None; self.labels.len()] }
    }

    /// `miner` on the batch against the memory, with the oracle's self map.
    fn mine(&self, after: &After, miner: &MinerConfig, exclude_self: bool) -> margin::Mined {
        let reference = ReferenceSet { embeddings: tensor64(&after.rows), labels: &after.labels };
        let input = MiningInput::with_self_index(&miner.distance(), &tensor64(&self.rows), &self.labels, Some(&reference), self.self_index(after, exclude_self)).unwrap();
        miner.mine_input(&input, &mut ChaCha8Rng::seed_from_u64(1)).unwrap()
    }
}

/// Stats and gradient (w.r.t. the batch) of `f` on a fresh leaf of the batch rows.
fn run(rows: &[Vec<f64>], f: impl FnOnce(burn::tensor::Tensor<2>) -> margin::LossOutput) -> (LossStats, Vec<Vec<f64>>) {
    let x = tensor64(rows);
    let out = f(x.clone());
    (out.stats, grad_rows(&x, &out.loss))
}

/// `got` equals the oracle with self pairs excluded, and differs from the one with them.
fn assert_excludes_self(got: &(LossStats, Vec<Vec<f64>>), excluded: &(LossStats, Vec<Vec<f64>>), included: &LossStats, what: &str) {
    assert!(got.0.num_tuples > 0, "{what}: tuples");
    assert_eq!((got.0.num_tuples, got.0.num_active), (excluded.0.num_tuples, excluded.0.num_active), "{what}: counts");
    assert_close(got.0.loss, excluded.0.loss, 1e-9, 1e-12, &format!("{what}: value"));
    assert_rows_close(&got.1, &excluded.1, 1e-9, 1e-12, &format!("{what}: grad"));
    assert!(
        (included.num_tuples, included.loss) != (got.0.num_tuples, got.0.loss),
        "{what}: the self pairs change the loss here (else this test could not see them)"
    );
}

/// Every valid triplet of the batch against the memory, minus the self pairs when asked.
fn all_triplets(labels: &[i64], after: &After, self_index: &[Option<usize>]) -> Triplets {
    let all = Triplets::all_between(labels, &after.labels, false);
    let keep: Vec<usize> = (0..all.len()).filter(|&i| Some(all.positive[i]) != self_index[all.anchor[i]]).collect();
    Triplets::new(
        keep.iter().map(|&i| all.anchor[i]).collect(),
        keep.iter().map(|&i| all.positive[i]).collect(),
        keep.iter().map(|&i| all.negative[i]).collect(),
    )
    .unwrap()
}

/// The gathering oracle of `loss` on `triplets` of the batch against the memory.
fn triplet_oracle(loss: &TripletMarginLoss, s: &Setup, after: &After, triplets: &Triplets) -> (LossStats, Vec<Vec<f64>>) {
    run(&s.rows, |x| {
        let reference = ReferenceSet { embeddings: tensor64(&after.rows), labels: &after.labels };
        gathered::triplet(loss, x, &s.labels, Some(reference), Some(triplets)).unwrap()
    })
}

#[test]
fn triplet_loss_against_memory_excludes_self_pairs() {
    let loss = TripletMarginLossConfig::new().with_margin(0.3).init().unwrap();
    let s = setup();
    let after = s.after();
    // Every valid triplet: the fused path.
    let got = run(&s.rows, |x| s.memory.clone().triplet_loss(&loss, x, &s.labels, None, &mut ChaCha8Rng::seed_from_u64(1)).unwrap());
    let t = |exclude| all_triplets(&s.labels, &after, &s.self_index(&after, exclude));
    let excluded = triplet_oracle(&loss, &s, &after, &t(true));
    let included = triplet_oracle(&loss, &s, &after, &t(false));
    assert_excludes_self(&got, &excluded, &included.0, "all triplets (fused)");

    // Miners: batch-hard (listed) and the triplet-margin band (fused), against mining
    // with the self map then the gathering loss.
    for miner in [
        MinerConfig::BatchHard(BatchHardMiner::default()),
        MinerConfig::TripletMargin(TripletMarginMiner::new(1.0, TripletType::Semihard)),
    ] {
        let what = format!("{miner:?}");
        let got = run(&s.rows, |x| s.memory.clone().triplet_loss(&loss, x, &s.labels, Some(&miner), &mut ChaCha8Rng::seed_from_u64(1)).unwrap());
        let mined = s.mine(&after, &miner, true).into_triplets();
        assert!(mined.iter().all(|(a, p, _)| Some(p) != after.slots[a]), "{what}: the miner never pairs a query with its copy");
        let excluded = triplet_oracle(&loss, &s, &after, &mined);
        let included = triplet_oracle(&loss, &s, &after, &s.mine(&after, &miner, false).into_triplets());
        assert_excludes_self(&got, &excluded, &included.0, &what);
    }
}

/// The gathering oracle of `loss` on `pairs` of the batch against the memory rows.
fn contrastive_oracle(loss: &ContrastiveLoss, s: &Setup, after: &After, pairs: &Pairs) -> (LossStats, Vec<Vec<f64>>) {
    run(&s.rows, |x| {
        let reference = ReferenceSet { embeddings: tensor64(&after.rows), labels: &after.labels };
        gathered::contrastive(loss, x, &s.labels, Some(reference), Some(pairs)).unwrap()
    })
}

#[test]
fn contrastive_loss_against_memory_excludes_self_pairs() {
    let loss = ContrastiveLossConfig::new().with_neg_margin(0.9).init().unwrap();
    let s = setup();
    let after = s.after();
    let got = run(&s.rows, |x| s.memory.clone().contrastive_loss(&loss, x, &s.labels, None, &mut ChaCha8Rng::seed_from_u64(1)).unwrap());
    let pairs = |exclude: bool| {
        let all = Pairs::all_between(&s.labels, &after.labels, false);
        let self_index = s.self_index(&after, exclude);
        let keep = |v: Vec<(usize, usize)>| v.into_iter().filter(|&(a, j)| Some(j) != self_index[a]).collect();
        Pairs { similar: keep(all.similar), dissimilar: keep(all.dissimilar) }
    };
    let excluded = contrastive_oracle(&loss, &s, &after, &pairs(true));
    let included = contrastive_oracle(&loss, &s, &after, &pairs(false));
    assert_excludes_self(&got, &excluded, &included.0, "all pairs (fused)");

    // Multi-similarity (fused: pairs never listed) and batch-hard (triplets split into pairs,
    // listed). ε = 1: wide enough that a query's copy (distance 0) would be kept.
    for miner in [MinerConfig::MultiSimilarity(MultiSimilarityMiner::new(1.0)), MinerConfig::BatchHard(BatchHardMiner::default())] {
        let what = format!("{miner:?}");
        let got = run(&s.rows, |x| s.memory.clone().contrastive_loss(&loss, x, &s.labels, Some(&miner), &mut ChaCha8Rng::seed_from_u64(1)).unwrap());
        let mined = s.mine(&after, &miner, true).into_pairs();
        assert!(mined.similar.iter().all(|&(a, p)| Some(p) != after.slots[a]), "{what}: the miner never pairs a query with its copy");
        let excluded = contrastive_oracle(&loss, &s, &after, &mined);
        let included = contrastive_oracle(&loss, &s, &after, &s.mine(&after, &miner, false).into_pairs());
        assert_excludes_self(&got, &excluded, &included.0, &what);
    }
}

#[test]
fn contrastive_loss_against_a_memory_of_one_batch_equals_the_in_batch_loss() {
    use margin::{Batch, Tuples};
    let loss = ContrastiveLossConfig::new().init().unwrap();
    let rows = random_rows(5, 20, 4);
    let labels = random_labels(5, 20, 5);
    let xbm = |miner: Option<&MinerConfig>| {
        run(&rows, |x| CrossBatchMemory::new(100).unwrap().contrastive_loss(&loss, x, &labels, miner, &mut ChaCha8Rng::seed_from_u64(1)).unwrap())
    };
    let in_batch = |tuples: Tuples<'_>| run(&rows, |x| loss.forward(Batch::labelled(x, &labels), tuples).unwrap());
    // Values and counts agree; gradients do not (the memory is detached: only the query
    // side of each pair carries one).
    let same = |a: &(LossStats, Vec<Vec<f64>>), b: &(LossStats, Vec<Vec<f64>>), what: &str| {
        assert_eq!((a.0.num_tuples, a.0.num_active), (b.0.num_tuples, b.0.num_active), "{what}: counts");
        assert_close(a.0.loss, b.0.loss, 1e-9, 1e-12, &format!("{what}: value"));
    };
    // Every pair: the memory's self pairs (i, i) are the in-batch diagonal, excluded in both.
    let (got, want) = (xbm(None), in_batch(Tuples::All));
    same(&got, &want, "all pairs");
    // Both (i, j) and (j, i) are pairs, so in-batch each row's gradient is twice its query side.
    let doubled: Vec<Vec<f64>> = got.1.iter().map(|r| r.iter().map(|v| 2.0 * v).collect()).collect();
    assert_rows_close(&doubled, &want.1, 1e-9, 1e-12, "all pairs: grad");
    let miner = MinerConfig::MultiSimilarity(MultiSimilarityMiner::default());
    let mined = miner.mine(&tensor64(&rows), &labels, None, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let got = xbm(Some(&miner));
    assert_eq!(got.0.num_tuples, mined.len(), "memory = batch: the same pairs as in-batch mining");
    same(&got, &in_batch(Tuples::Pairs(&mined.into_pairs())), "multi-similarity");
}
