//! ResNet-18 throughput on the `flex` CPU backend, the step `../shared/peers/resnet_step.py`
//! measures in PyTorch: inference (eval mode, running BatchNorm statistics) and a training
//! step (forward + backward + Adam, MSE against random targets on a 128-d linear head).
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p margin-models --example resnet_bench -- [steps]`
//! (default 6 timed steps after 2 warm-ups, as the PyTorch script; inference is also timed by
//! Burn's ops, `infer_burn_ops_img_per_s`, the path the NHWC plan replaced; `--infer-only` after the
//! step count skips the training step, for profiling inference). Shapes: batch 32 at
//! 224×224 and batch 64 at 112×112. Prints one JSON line per shape with the medians.
//! Run the PyTorch script in the same session (same load) and report the ratio.

use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use margin_data::{Freeze, HeadConfig, ModelConfig, ResnetConfig, ResnetDepth};
use margin_models::BuildEncoder;
use margin_models::resnet::ResNetConfig;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    margin::alloc::tune();
    let steps: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(6);
    let infer_only = std::env::args().any(|a| a == "--infer-only");
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "default".into());
    for (batch, hw) in [(32usize, 224usize), (64, 112)] {
        // Inference.
        let device = Device::flex();
        device.seed(7);
        let net = ResNetConfig::new(ResnetDepth::R18).init(&device);
        let x = Tensor::<4>::random([batch, 3, hw, hw], Distribution::Normal(0.0, 1.0), &device);
        let mut ti = Vec::new();
        for i in 0..steps + 2 {
            let t = Instant::now();
            let f = net.forward_features(x.clone());
            let _ = f.into_data();
            if i >= 2 {
                ti.push(t.elapsed().as_secs_f64());
            }
        }
        // The same forward by Burn's ops (the path before the NHWC plan), 2 timed runs.
        let mut tr = Vec::new();
        for i in 0..3 {
            let t = Instant::now();
            let _ = net.forward_features_reference(x.clone()).into_data();
            if i >= 1 {
                tr.push(t.elapsed().as_secs_f64());
            }
        }
        let reference = batch as f64 / median(tr);
        if infer_only {
            println!(
                "{{\"bench\":\"resnet18\",\"batch\":{batch},\"size\":{hw},\"threads\":\"{threads}\",\"infer_img_per_s\":{:.1},\"infer_burn_ops_img_per_s\":{reference:.1}}}",
                batch as f64 / median(ti)
            );
            continue;
        }
        // Training step.
        let device = Device::flex().autodiff();
        device.seed(7);
        let cfg = ModelConfig::Resnet(ResnetConfig {
            depth: ResnetDepth::R18,
            weights: None,
            head: HeadConfig { embedding_dim: 128, ..HeadConfig::default() },
            freeze: Freeze::None,
        });
        let shape = [3, hw, hw];
        let mut model = cfg.init(&shape, &device).expect("valid config");
        let mut optim = AdamConfig::new().init();
        let x = Tensor::<2>::random([batch, 3 * hw * hw], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<2>::random([batch, 128], Distribution::Normal(0.0, 1.0), &device);
        let (mut fwd, mut tt) = (Vec::new(), Vec::new());
        for i in 0..steps + 2 {
            let t0 = Instant::now();
            let out = model.forward_flat(x.clone(), &shape);
            let loss = (out - y.clone()).square().mean();
            let _ = loss.clone().into_scalar::<f32>();
            let t1 = Instant::now();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-4, model, grads);
            if i >= 2 {
                fwd.push((t1 - t0).as_secs_f64());
                tt.push(t0.elapsed().as_secs_f64());
            }
        }
        let (inf, tr) = (median(ti), median(tt));
        println!(
            "{{\"bench\":\"resnet18\",\"batch\":{batch},\"size\":{hw},\"threads\":\"{threads}\",\"train_img_per_s\":{:.1},\"infer_img_per_s\":{:.1},\"infer_burn_ops_img_per_s\":{reference:.1},\"train_ms_forward\":{:.0},\"train_ms_total\":{:.0}}}",
            batch as f64 / tr,
            batch as f64 / inf,
            1e3 * median(fwd),
            1e3 * tr
        );
    }
}
