//! Throughput on a `--device` (issue 17): the ConvNet-4 training step `margin train` runs
//! (the bundled default configuration's loss and miner, P×K = 32 × 4, 28×28), a ResNet-18
//! training step (batch 32 at 224×224, triplet loss on a 128-d head, Adam), and the fused
//! losses' forward + backward on all valid tuples at B = 1024…8192 (D = 128, 100 classes), and
//! with `--text FOLDER` (a sentence-transformers folder, e.g. all-MiniLM-L6-v2) text encoding.
//!
//! ```sh
//! cargo run --release -p margin-train --features wgpu --example device_bench -- --device wgpu
//! cargo run --release -p margin-train --features cuda --example device_bench -- --device cuda
//! cargo run --release -p margin-train --example device_bench -- --device cpu --steps 3 --skip-resnet
//! ```
//! (`bench/device_bench.sh DEVICE` does the build and the run.) Prints one JSON line per
//! measurement: median images (rows) per second over `--steps` timed steps after 2 warm-ups.
//! Every step ends with a read-back to the host, so the device's queue is drained inside the
//! timing and transfers are counted. Not run on a real GPU yet (the task that wrote it had
//! none); on CPU it measures `flex` with the fused kernels.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};
use margin::{Batch, ContrastiveLossConfig, MetricLoss, TripletMarginLossConfig, Tuples};
use margin_data::{Freeze, HeadConfig, ModelConfig, ResnetConfig, ResnetDepth};
use margin_models::BuildEncoder;
use margin_train::{DEFAULT_CONFIG, DeviceSpec, parse_config};
use rand::SeedableRng;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `step` over `steps` runs after 2 warm-ups.
fn time(steps: usize, mut step: impl FnMut()) -> f64 {
    let mut t = Vec::with_capacity(steps);
    for i in 0..steps + 2 {
        let t0 = Instant::now();
        step();
        if i >= 2 {
            t.push(t0.elapsed().as_secs_f64());
        }
    }
    median(t)
}

fn convnet_step(device: &Device, spec: DeviceSpec, steps: usize) {
    let cfg = parse_config(DEFAULT_CONFIG, "the bundled configs/omniglot.toml").expect("the bundled configuration parses");
    let (p, k) = (cfg.train.sampler.classes_per_batch, cfg.train.sampler.samples_per_class);
    let batch = p * k;
    device.seed(7);
    let mut model = Some(cfg.train.model.init(&[1, 28, 28], device).expect("valid model"));
    let built = cfg.train.loss.build().expect("valid loss");
    let miner = cfg.train.miner.build(cfg.train.loss.distance()).expect("valid miner");
    let loss: &dyn MetricLoss = built.as_metric_loss();
    let labels: Vec<i64> = (0..batch).map(|i| (i / k) as i64).collect();
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let x = Tensor::<2>::random([batch, 28 * 28], Distribution::Uniform(0.0, 1.0), device);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let s = time(steps, || {
        let m = model.take().expect("the model");
        let emb = m.forward_flat(x.clone(), &[1, 28, 28]);
        let tuples = match &miner {
            Some(mc) => Tuples::mined(mc, &mut rng),
            None => Tuples::All,
        };
        let out = loss.forward(Batch::labelled(emb, &labels), tuples).expect("a valid batch");
        let grads = GradientsParams::from_grads(out.loss.backward(), &m);
        let m = optim.step(1e-3, m, grads);
        let _ = margin::to_host(&m.valid().forward_flat(Tensor::<2>::zeros([1, 28 * 28], &device.clone().inner()), &[1, 28, 28]));
        model = Some(m);
    });
    println!("{{\"bench\":\"convnet4_train_step\",\"device\":\"{spec}\",\"batch\":{batch},\"images_per_s\":{:.1},\"ms\":{:.2}}}", batch as f64 / s, 1e3 * s);
}

fn resnet_step(device: &Device, spec: DeviceSpec, steps: usize) {
    let (batch, hw) = (32usize, 224usize);
    device.seed(7);
    let cfg = ModelConfig::Resnet(ResnetConfig { depth: ResnetDepth::R18, weights: None, head: HeadConfig { embedding_dim: 128, ..HeadConfig::default() }, freeze: Freeze::None });
    let shape = [3, hw, hw];
    let mut model = Some(cfg.init(&shape, device).expect("valid config"));
    let mut optim = AdamConfig::new().init();
    let loss = TripletMarginLossConfig::new().with_margin(0.2).init().expect("valid loss");
    let labels: Vec<i64> = (0..batch).map(|i| (i / 4) as i64).collect();
    let x = Tensor::<2>::random([batch, 3 * hw * hw], Distribution::Normal(0.0, 1.0), device);
    let s = time(steps, || {
        let m = model.take().expect("the model");
        let out = loss.forward(Batch::labelled(m.forward_flat(x.clone(), &shape), &labels), Tuples::All).expect("a valid batch");
        let _ = margin::to_host(&out.loss);
        let grads = GradientsParams::from_grads(out.loss.backward(), &m);
        model = Some(optim.step(1e-4, m, grads));
    });
    println!("{{\"bench\":\"resnet18_train_step\",\"device\":\"{spec}\",\"batch\":{batch},\"size\":{hw},\"images_per_s\":{:.1},\"ms\":{:.1}}}", batch as f64 / s, 1e3 * s);
}

fn losses(device: &Device, spec: DeviceSpec, steps: usize, sizes: &[usize]) {
    let d = 128;
    let triplet = TripletMarginLossConfig::new().with_margin(0.2).init().expect("valid loss");
    let contrastive = ContrastiveLossConfig::new().with_pos_margin(0.0).with_neg_margin(0.5).init().expect("valid loss");
    for &b in sizes {
        let labels: Vec<i64> = (0..b).map(|i| (i % 100) as i64).collect();
        device.seed(b as u64);
        let x0 = Tensor::<2>::random([b, d], Distribution::Normal(0.0, 1.0), device);
        for (name, loss) in [("triplet_all", &triplet as &dyn MetricLoss), ("contrastive_all", &contrastive)] {
            let s = time(steps, || {
                let x = x0.clone().detach().require_grad();
                let out = loss.forward(Batch::labelled(x.clone(), &labels), Tuples::All).expect("a valid batch");
                let g = x.grad(&out.loss.backward()).expect("tracked");
                let _ = margin::to_host(&g.slice([0..1, 0..1]));
            });
            println!("{{\"bench\":\"{name}_fwd_bwd\",\"device\":\"{spec}\",\"batch\":{b},\"dim\":{d},\"rows_per_s\":{:.1},\"ms\":{:.2}}}", b as f64 / s, 1e3 * s);
        }
    }
}

/// Encoding with a sentence-transformers folder on the device: 2,048 sentences of 4–24 words
/// (a fixed vocabulary, so every run encodes the same tokens), batch 64, length-sorted as
/// `margin embed` does; median sentences per second over `steps` passes after 2 warm-ups.
fn text_encode(device: &Device, spec: DeviceSpec, steps: usize, folder: &std::path::Path) {
    let words = ["the", "card", "was", "declined", "when", "I", "tried", "to", "pay", "for", "my", "flight", "how", "do", "transfer", "money", "abroad", "please"];
    let texts: Vec<String> = (0..2048).map(|i| (0..4 + i % 21).map(|j| words[(i * 7 + j * 5) % words.len()]).collect::<Vec<_>>().join(" ")).collect();
    let encoder = margin_models::text::SentenceEncoder::load(folder, &device.clone().inner()).unwrap_or_else(|e| panic!("{e}"));
    let s = time(steps, || {
        let e = encoder.encode(&texts, 64).expect("sentences encode");
        assert!(e.iter().all(|v| v.is_finite()));
    });
    println!("{{\"bench\":\"text_encode\",\"device\":\"{spec}\",\"sentences\":{},\"sentences_per_s\":{:.1},\"ms\":{:.1}}}", texts.len(), texts.len() as f64 / s, 1e3 * s);
}

fn main() {
    margin::alloc::tune();
    let mut args = std::env::args().skip(1);
    let (mut spec, mut steps, mut resnet, mut sizes) = (DeviceSpec::Cpu, 10usize, true, vec![1024usize, 2048, 4096, 8192]);
    let mut text: Option<std::path::PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--device" => spec = args.next().expect("--device SPEC").parse().unwrap_or_else(|e| panic!("{e}")),
            "--steps" => steps = args.next().and_then(|s| s.parse().ok()).expect("--steps N"),
            "--skip-resnet" => resnet = false,
            "--text" => text = Some(args.next().expect("--text FOLDER (a sentence-transformers folder)").into()),
            "--sizes" => sizes = args.next().expect("--sizes B,B,…").split(',').map(|s| s.parse().expect("a batch size")).collect(),
            other => panic!("unknown argument {other} (--device SPEC, --steps N, --skip-resnet, --sizes B,B,…, --text FOLDER)"),
        }
    }
    let device = spec.device().unwrap_or_else(|e| panic!("{e}")).autodiff();
    convnet_step(&device, spec, steps);
    if resnet {
        resnet_step(&device, spec, steps);
    }
    losses(&device, spec, steps, &sizes);
    if let Some(folder) = &text {
        text_encode(&device, spec, steps, folder);
    }
}
