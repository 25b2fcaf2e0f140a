//! Same inputs → the same bits, whatever the number of threads: the fused losses sum
//! their parallel parts in a fixed order (the seed's "same seed, same result on CPU").

mod common;

use burn::tensor::{Tensor, TensorData};
use common::*;
use margin::{Batch, ContrastiveLossConfig, MinerConfig, Mining, MultiSimilarityMiner, TripletMarginLossConfig, TripletMarginMiner, TripletType, Tuples};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Loss value and gradient, as bits, of every fused path on one `f32` batch.
fn fused_bits(rows: &[Vec<f64>], labels: &[i64]) -> Vec<(String, u64, Vec<u32>)> {
    let device = device();
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    let x = || Tensor::<2>::from_data(TensorData::new(flat.clone(), [rows.len(), rows[0].len()]), &device).require_grad();
    let triplet = TripletMarginLossConfig::new().with_margin(0.2).init().unwrap();
    let contrastive = ContrastiveLossConfig::new().with_pos_margin(0.0).with_neg_margin(0.8).init().unwrap();
    let semihard = MinerConfig::TripletMargin(TripletMarginMiner::new(0.2, TripletType::Semihard));
    let multisim = MinerConfig::MultiSimilarity(MultiSimilarityMiner::new(0.1));
    let mut out = Vec::new();
    for case in 0..5 {
        let x = x();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let batch = Batch::labelled(x.clone(), labels);
        // Batch-all, the semi-hard band, all pairs, multi-similarity fused, and listed.
        let loss = match case {
            0 => triplet.forward(batch, Tuples::All).unwrap(),
            1 => triplet.forward(batch, Tuples::mined(&semihard, &mut rng)).unwrap(),
            2 => contrastive.forward(batch, Tuples::All).unwrap(),
            3 => contrastive.forward(batch, Tuples::mined(&multisim, &mut rng)).unwrap(),
            _ => contrastive.forward(batch, Tuples::Mined(Mining::new(&multisim, &mut rng).returning_tuples())).unwrap(),
        };
        let grads = loss.loss.backward();
        let g = x.grad(&grads).unwrap().into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        out.push((format!("case {case}"), loss.stats.loss.to_bits(), g.iter().map(|v| v.to_bits()).collect()));
    }
    out
}

#[test]
fn fused_losses_give_the_same_bits_on_any_number_of_threads() {
    // 300 rows: past the planners' and kernels' parallel grain, not a multiple of the tiles.
    let rows = random_rows(17, 300, 24);
    let labels = random_labels(18, 300, 60);
    let on = |threads: usize| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| fused_bits(&rows, &labels));
    let one = on(1);
    for threads in [2, 3] {
        for ((what, value, grad), (_, v, g)) in one.iter().zip(on(threads)) {
            assert_eq!(*value, v, "{what}: loss value, 1 vs {threads} threads");
            assert!(*grad == g, "{what}: gradient, 1 vs {threads} threads");
        }
    }
}
