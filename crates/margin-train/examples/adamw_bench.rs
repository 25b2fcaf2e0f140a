//! The optimizer step of a full all-MiniLM-L6-v2 fine-tune (issue 14): AdamW on the
//! encoder's 22.7 M parameters in their shapes (the 30,522 × 384 word table, six layers of
//! four 384 × 384 and two 384 × 1,536 projections; biases and LayerNorms are 0.2 % of it and
//! left out), Burn's `AdamW` beside margin's `FusedAdamW`, and the global-norm clipping
//! before it (`clip_global_norm`, the step's other pass over every gradient; beside it the norm
//! read through clones of the gradients, `global_norm`, as the clipping did before).
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p margin-train --example adamw_bench -- 10
//! ```
//! Prints the median milliseconds per step over N steps (default 10) after 2 warm-ups, one
//! JSON line per optimizer. Every step ends with a read-back of one weight, so the work is done.

use std::time::Instant;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::Device;
use margin_train::{clip_global_norm, global_norm};
use margin_train::fused_adamw::FusedAdamW;

#[derive(Module, Debug)]
struct Shapes {
    layers: Vec<Linear>,
}

fn minilm_shapes(device: &Device) -> Shapes {
    let mut layers = vec![LinearConfig::new(384, 30_522).with_bias(false).init(device)];
    for _ in 0..6 {
        for _ in 0..4 {
            layers.push(LinearConfig::new(384, 384).with_bias(false).init(device));
        }
        layers.push(LinearConfig::new(384, 1536).with_bias(false).init(device));
        layers.push(LinearConfig::new(1536, 384).with_bias(false).init(device));
    }
    Shapes { layers }
}

/// Gradients of Σ w² / n for every weight: dense, non-zero, one per parameter.
fn grads(m: &Shapes) -> GradientsParams {
    let loss = m.layers.iter().map(|l| l.weight.val().powi_scalar(2).mean()).reduce(|a, b| a + b).unwrap();
    GradientsParams::from_grads(loss.backward(), m)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds of clipping + the optimizer's step (gradients computed outside the timing).
fn bench(name: &str, mut optim: ModuleOptimizer, steps: usize, device: &Device) {
    let mut m = minilm_shapes(device);
    let params: usize = m.num_params();
    let (mut cloned, mut clip, mut step) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..steps + 2 {
        let mut g = grads(&m);
        let tc = Instant::now();
        std::hint::black_box(global_norm(&m, &g));
        let t0 = Instant::now();
        clip_global_norm(&m, &mut g, 1.0);
        let t1 = Instant::now();
        m = optim.step(1e-5, m, g);
        let _ = m.layers[0].weight.val().slice([0..1, 0..1]).into_data();
        let t2 = Instant::now();
        if i >= 2 {
            cloned.push((t0 - tc).as_secs_f64() * 1e3);
            clip.push((t1 - t0).as_secs_f64() * 1e3);
            step.push((t2 - t1).as_secs_f64() * 1e3);
        }
    }
    println!("{{\"optimizer\":\"{name}\",\"parameters\":{params},\"norm_through_clones_ms\":{:.1},\"clip_in_place_ms\":{:.1},\"step_ms\":{:.1}}}", median(cloned), median(clip), median(step));
}

fn main() {
    let steps = std::env::args().nth(1).map(|s| s.parse().expect("steps: a number")).unwrap_or(10);
    let device = Device::flex().autodiff();
    device.seed(0);
    for round in 0..2 {
        eprintln!("round {round}");
        bench("burn AdamW", AdamWConfig::new().with_epsilon(1e-8).with_weight_decay(0.01).init(), steps, &device);
        bench("margin FusedAdamW", FusedAdamW::new(1e-8, 0.01).init(), steps, &device);
    }
}
