//! The training step `margin train` runs, timed: ConvNet-4 on 28×28 → the bundled default
//! configuration's loss and miner through the loss's one entry point (exactly the call in
//! `Trainer::fit`: `forward(Batch::labelled(..), Tuples::mined(..))`) → backward → Adam, on
//! a P×K batch of random images (P = 32 classes × K = 4, as the default sampler).
//!
//! `cargo run --release -p margin-train --example train_step -- [steps]` (default 20).
//! Prints one JSON line: median and best images/s over `steps` steps after 3 warm-up
//! steps, and the median milliseconds of forward (network), loss (miner + loss forward),
//! backward and optimizer. `bench/peers/convnet_step.py` / margin-models' `convnet_step`
//! time the network with a plain MSE loss instead (the PyTorch comparison).

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use margin::{Batch, MetricLoss, Tuples};
use margin_models::BuildEncoder;
use margin_train::{BuiltLoss, DEFAULT_CONFIG, parse_config};
use rand::SeedableRng;

fn main() {
    margin::alloc::tune();
    let steps: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let cfg = parse_config(DEFAULT_CONFIG, "the bundled configs/omniglot.toml").expect("the bundled configuration parses");
    let (p, k) = (cfg.train.sampler.classes_per_batch, cfg.train.sampler.samples_per_class);
    let batch = p * k;
    let device = Device::flex().autodiff();
    device.seed(7);
    let mut model = cfg.train.model.init(&[1, 28, 28], &device).expect("valid model");
    let built = cfg.train.loss.build().expect("valid loss");
    let miner = cfg.train.miner.build(cfg.train.loss.distance()).expect("valid miner");
    let loss: &dyn MetricLoss = match &built {
        BuiltLoss::Triplet(l) => l,
        BuiltLoss::Contrastive(l) => l,
        BuiltLoss::InfoNce(l) => l,
    };
    let labels: Vec<i64> = (0..batch).map(|i| (i / k) as i64).collect();
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let x = Tensor::<2>::random([batch, 28 * 28], Distribution::Uniform(0.0, 1.0), &device);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (mut fwd, mut lss, mut bwd, mut opt, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for step in 0..steps + 3 {
        let t0 = Instant::now();
        let emb = model.forward_flat(x.clone(), &[1, 28, 28]);
        let _ = margin::to_host(&emb); // the trainer reads the batch back (collapse watch)
        let t1 = Instant::now();
        let tuples = match &miner {
            Some(m) => Tuples::mined(m, &mut rng),
            None => Tuples::All,
        };
        let out = loss.forward(Batch::labelled(emb, &labels), tuples).expect("a valid batch");
        let t2 = Instant::now();
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        let t3 = Instant::now();
        model = optim.step(1e-3, model, grads);
        let t4 = Instant::now();
        if step >= 3 {
            fwd.push((t1 - t0).as_secs_f64());
            lss.push((t2 - t1).as_secs_f64());
            bwd.push((t3 - t2).as_secs_f64());
            opt.push((t4 - t3).as_secs_f64());
            total.push((t4 - t0).as_secs_f64());
        }
    }
    let _ = model.num_params();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let best = total.iter().copied().fold(f64::INFINITY, f64::min);
    let t = median(&mut total);
    println!(
        "{{\"bench\":\"train_step\",\"config\":\"configs/omniglot.toml\",\"miner\":\"{}\",\"batch\":{batch},\"steps\":{steps},\"images_per_s_median\":{:.1},\"images_per_s_best\":{:.1},\"ms_forward\":{:.2},\"ms_loss\":{:.2},\"ms_backward\":{:.2},\"ms_optimizer\":{:.2}}}",
        cfg.train.miner.kind(),
        batch as f64 / t,
        batch as f64 / best,
        1e3 * median(&mut fwd),
        1e3 * median(&mut lss),
        1e3 * median(&mut bwd),
        1e3 * median(&mut opt),
    );
}
