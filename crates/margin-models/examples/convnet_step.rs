//! Training-step throughput of ConvNet-4 on the `flex` CPU backend.
//!
//! `cargo run --release --example convnet_step -- [batch] [steps]` (defaults 128, 20):
//! ConvNet-4 (64 channels, 28×28×1 input, 64-d output), forward + backward + Adam on a
//! plain MSE loss against random targets — the step the issue compares with PyTorch
//! (`bench/peers/convnet_step.py` measures PyTorch on the same step). Prints one JSON
//! line: median and best images/s over `steps` steps after 3 warm-up steps, and the
//! time split between forward, backward and optimizer.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use margin_data::ModelConfig;
use margin_models::BuildEncoder;

fn main() {
    margin::alloc::tune();
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let batch = args.first().copied().unwrap_or(128);
    let steps = args.get(1).copied().unwrap_or(20);
    let device = Device::flex().autodiff();
    device.seed(7);
    let cfg = ModelConfig::Convnet4 { width: 64, embedding_dim: 64, normalize: false };
    let mut model = cfg.init(&[1, 28, 28], &device).expect("valid config");
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<2>::random([batch, 28 * 28], Distribution::Uniform(0.0, 1.0), &device);
    let target = Tensor::<2>::random([batch, 64], Distribution::Normal(0.0, 1.0), &device);
    let (mut fwd, mut bwd, mut opt, mut total) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for step in 0..steps + 3 {
        let t0 = Instant::now();
        let out = model.forward_flat(x.clone(), &[1, 28, 28]);
        let loss = (out - target.clone()).square().mean();
        let _ = loss.clone().into_scalar::<f32>(); // forward fully executed
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let t2 = Instant::now();
        model = optim.step(1e-3, model, grads);
        let t3 = Instant::now();
        if step >= 3 {
            fwd.push((t1 - t0).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
            opt.push((t3 - t2).as_secs_f64());
            total.push((t3 - t0).as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let best = total.iter().copied().fold(f64::INFINITY, f64::min);
    let t = median(&mut total);
    println!(
        "{{\"bench\":\"convnet4_step\",\"batch\":{batch},\"steps\":{steps},\"threads\":{},\"images_per_s_median\":{:.1},\"images_per_s_best\":{:.1},\"ms_forward\":{:.1},\"ms_backward\":{:.1},\"ms_optimizer\":{:.1}}}",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into()),
        batch as f64 / t,
        batch as f64 / best,
        1e3 * median(&mut fwd),
        1e3 * median(&mut bwd),
        1e3 * median(&mut opt),
    );
}
