//! Cross-batch memory: FIFO behaviour, self-pairs excluded, loss against memory.

mod common;

use common::*;
use margin::xbm::CrossBatchMemory;
use margin::{
    BatchHardMiner, ContrastiveLossConfig, MinerConfig, MultiSimilarityMiner, ReferenceSet, Triplets,
    TripletMarginLossConfig, TripletMarginMiner, TripletType,
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

/// Oracle: every valid triplet of the batch against the memory, minus the self pairs.
fn triplets_excluding_self(ql: &[i64], ml: &[i64], slots: &[usize]) -> Triplets {
    let all = Triplets::all_between(ql, ml, false);
    let keep: Vec<usize> = (0..all.len()).filter(|&i| all.positive[i] != slots[all.anchor[i]]).collect();
    Triplets::new(
        keep.iter().map(|&i| all.anchor[i]).collect(),
        keep.iter().map(|&i| all.positive[i]).collect(),
        keep.iter().map(|&i| all.negative[i]).collect(),
    )
    .unwrap()
}

#[test]
fn triplet_loss_against_memory_excludes_self_pairs() {
    let loss = TripletMarginLossConfig::new().with_margin(0.3).init().unwrap();
    let mut mem = CrossBatchMemory::new(40).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    // Two past batches, then the current one.
    for s in 0..2 {
        let x = tensor64(&random_rows(10 + s, 16, 5));
        mem.triplet_loss(&loss, x, &random_labels(10 + s, 16, 4), None, &mut rng).unwrap();
    }
    let rows = random_rows(99, 16, 5);
    let labels = random_labels(99, 16, 4);
    let mut oracle_mem = mem.clone();
    let x = tensor64(&rows);
    let out = mem.triplet_loss(&loss, x.clone(), &labels, None, &mut rng).unwrap();
    let g = grad_rows(&x, &out.loss);

    let slots: Vec<usize> = oracle_mem.enqueue(&tensor64(&rows), &labels).unwrap().into_iter().map(Option::unwrap).collect();
    let ml = oracle_mem.labels();
    let t = triplets_excluding_self(&labels, &ml, &slots);
    let x2 = tensor64(&rows);
    let mem_t = oracle_mem.embeddings(&device(), burn::tensor::DType::F64).unwrap();
    let want = loss.forward_with_reference(x2.clone(), &labels, ReferenceSet { embeddings: mem_t, labels: &ml }, Some(&t)).unwrap();
    let g2 = grad_rows(&x2, &want.loss);
    assert_eq!(mem.len(), 40);
    assert_eq!(out.stats.num_tuples, t.len());
    assert_close(out.stats.loss, want.stats.loss, 1e-9, 1e-12, "xbm value");
    assert_rows_close(&g, &g2, 1e-9, 1e-12, "xbm grad");

    // With miners: never the self pair, and the fused TripletMarginMiner path agrees.
    for miner in [
        MinerConfig::BatchHard(BatchHardMiner::default()),
        MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::Semihard)),
    ] {
        let mut m2 = oracle_mem.clone();
        let out = m2.triplet_loss(&loss, tensor64(&rows), &labels, Some(&miner), &mut rng).unwrap();
        assert!(out.stats.num_tuples > 0, "{miner:?}");
    }
}

#[test]
fn contrastive_loss_against_a_memory_of_one_batch_equals_the_in_batch_loss() {
    let loss = ContrastiveLossConfig::new().init().unwrap();
    let rows = random_rows(5, 20, 4);
    let labels = random_labels(5, 20, 5);
    let mut mem = CrossBatchMemory::new(100).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let out = mem.contrastive_loss(&loss, tensor64(&rows), &labels, None, &mut rng).unwrap();
    let want = loss.forward(tensor64(&rows), &labels, None).unwrap();
    assert_eq!(out.stats.num_tuples, want.stats.num_tuples);
    assert_close(out.stats.loss, want.stats.loss, 1e-9, 1e-12, "value");
    let mut mem = CrossBatchMemory::new(100).unwrap();
    let miner = MinerConfig::MultiSimilarity(MultiSimilarityMiner::default());
    let out = mem.contrastive_loss(&loss, tensor64(&rows), &labels, Some(&miner), &mut rng).unwrap();
    let mined = miner.mine(&tensor64(&rows), &labels, None, &mut rng).unwrap();
    assert_eq!(out.stats.num_tuples, mined.len(), "memory = batch: the same pairs as in-batch mining");
}
